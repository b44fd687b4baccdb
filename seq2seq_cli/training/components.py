"""Resolve the model config and build the optimizer, LR scheduler and criterion from a `TrainConfig`.

Precedence of model settings: the model's dataclass default < the arch preset < command-line flags. On resume, the
model config comes from the checkpoint and a flag that contradicts it is an error (never a silent override); when
fine-tuning, flags apply on top of the checkpoint's config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from seq2seq_cli.config import apply_overrides, coerce, field_types, from_dict, override_key
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import ARCHS, CRITERIA, LR_SCHEDULERS, MODELS, OPTIMIZERS, Registry
from seq2seq_cli.training.config import DEFAULT_ARCH, TrainConfig

# TrainConfig fields that are shortcuts for fields of the chosen component's Config (fairseq's flag names).
OPTIMIZER_FIELDS = ("adam_betas", "adam_eps", "weight_decay")
SCHEDULER_FIELDS = ("warmup_updates", "warmup_init_lr", "min_lr", "lr_shrink", "end_learning_rate", "power",
                    "total_num_update", "lr_patience")
CRITERION_FIELDS = ("label_smoothing", "ctc_weight")


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build: registry name, the arch preset it came from, and its resolved Config."""

    name: str
    arch: str | None
    config: Any


def model_from_arch(cfg: TrainConfig) -> ModelSpec:
    """A new model: dataclass defaults < --arch preset < flags."""
    arch = cfg.arch or DEFAULT_ARCH
    name, preset = ARCHS.get(arch, flag="--arch")()
    cls = MODELS.get(name, flag="--arch")
    try:
        model_cfg = dataclasses.replace(cls.Config(), **preset)
    except TypeError as exc:  # a preset naming a field the model lacks: a bug in the arch's plugin
        raise ConfigError(f"--arch {arch}: preset does not fit {cls.__name__}.Config ({exc})") from None
    return ModelSpec(name, arch, apply_overrides(model_cfg, cfg.model_overrides, "--model-opt"))


def model_from_checkpoint(cfg: TrainConfig, state: dict[str, Any], source: str, resume: bool) -> ModelSpec:
    """The model of a checkpoint; `resume` forbids flags that differ from it, fine-tuning applies them."""
    name = state["model"]["name"]
    arch = state["model"].get("arch")
    cls = MODELS.get(name, flag="--arch")
    saved = from_dict(cls.Config, state["model"].get("config", {}), source=f"{source}: model config")
    how = ("drop the flag to resume this run, or start a new one with a fresh --save-dir "
           "(add --finetune-from-model to start from its weights)")
    if cfg.arch is not None and arch is not None and cfg.arch != arch:
        if resume:
            raise ConfigError(f"--arch {cfg.arch} contradicts the checkpoint {source}, which has arch {arch}; {how}")
        raise ConfigError(f"--arch {cfg.arch} contradicts --finetune-from-model {source} (arch {arch}); "
                          "drop --arch: the model comes from the checkpoint")
    if not resume:
        return ModelSpec(name, arch, apply_overrides(saved, cfg.model_overrides, "--model-opt"))
    types = field_types(cls.Config)
    for item in cfg.model_overrides:
        key, text = override_key(item), item.partition("=")[2]
        if key not in types:
            apply_overrides(saved, [item], "--model-opt")  # raises the unknown-field error
        value = coerce(types[key], text.strip(), f"--model-opt {key}")
        if value != getattr(saved, key):
            raise ConfigError(f"--{key.replace('_', '-')} {text.strip()} contradicts the checkpoint {source}, "
                              f"which has {key}={getattr(saved, key)!r}; {how}")
    return ModelSpec(name, arch, saved)


def fit_criterion(spec: ModelSpec, cfg: TrainConfig, source: str | None) -> ModelSpec:
    """The model spec a criterion needs: one that reads the encoder through a CTC head (`uses_ctc`) switches the
    head on for a new model; a checkpoint's model (`source`) must already have it.

    Raises:
        ConfigError: the model has no CTC head and cannot get one here.
    """
    cls = CRITERIA.get(cfg.criterion, flag="--criterion")
    if not getattr(cls, "uses_ctc", False):
        if source is None and getattr(spec.config, "ctc_head", False):
            raise ConfigError(f"--model-opt ctc_head=true: --criterion {cfg.criterion} would leave that head "
                              "untrained; use --criterion label_smoothed_cross_entropy_with_ctc")
        return spec
    flag = f"--criterion {cfg.criterion}"
    if "ctc_head" not in {f.name for f in dataclasses.fields(spec.config)}:
        raise ConfigError(f"{flag} needs a model with a CTC head on its encoder (the s2t_transformer archs); "
                          f"model {spec.name} has none")
    if spec.config.ctc_head:
        return spec
    if source is not None:
        raise ConfigError(f"{flag} needs a CTC head, and the model of {source} was trained without one; use "
                          "--criterion label_smoothed_cross_entropy, or train a new model (a fresh --save-dir)")
    if any(override_key(item) == "ctc_head" for item in cfg.model_overrides):
        raise ConfigError(f"--model-opt ctc_head=false contradicts {flag}, which trains that head")
    return dataclasses.replace(spec, config=dataclasses.replace(spec.config, ctc_head=True))


def component_config(registry: Registry, name: str, flag: str, explicit: dict[str, Any], opts: tuple[str, ...],
                     opts_flag: str) -> tuple[Any, Any]:
    """(class, Config) of a registered component: its defaults < explicit flags < KEY=VALUE options."""
    cls = registry.get(name, flag=flag)
    component_cfg = cls.Config()
    names = [f.name for f in dataclasses.fields(component_cfg)]
    given = {k: v for k, v in explicit.items() if v is not None}
    for key in given:
        if key not in names:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to {flag} {name} "
                              f"(its settings: {', '.join(names) or 'none'})")
    if given:
        component_cfg = from_dict(type(component_cfg), {**dataclasses.asdict(component_cfg), **given},
                                  source=f"{flag} {name}")
    return cls, apply_overrides(component_cfg, opts, opts_flag)


def _explicit(cfg: TrainConfig, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(cfg, n) for n in names}


def build_criterion(cfg: TrainConfig) -> Any:
    """The training loss (`--criterion`)."""
    cls, ccfg = component_config(CRITERIA, cfg.criterion, "--criterion", _explicit(cfg, CRITERION_FIELDS),
                                 cfg.criterion_opts, "--criterion-opt")
    return cls(ccfg)


def build_optimizer(cfg: TrainConfig, params: list[Any]) -> Any:
    """The torch optimizer (`--optimizer`) over `params`, at learning rate --lr."""
    cls, ocfg = component_config(OPTIMIZERS, cfg.optimizer, "--optimizer", _explicit(cfg, OPTIMIZER_FIELDS),
                                 cfg.optimizer_opts, "--optimizer-opt")
    return cls.build(ocfg, params, cfg.lr)


def build_lr_scheduler(cfg: TrainConfig, optimizer: Any) -> Any:
    """The learning-rate schedule (`--lr-scheduler`); it sets the optimizer's lr after every update."""
    cls, scfg = component_config(LR_SCHEDULERS, cfg.lr_scheduler, "--lr-scheduler",
                                 _explicit(cfg, SCHEDULER_FIELDS), cfg.lr_scheduler_opts, "--lr-scheduler-opt")
    return cls(scfg, optimizer, cfg.lr, cfg.max_update)


def check_components(cfg: TrainConfig) -> None:
    """Fail early (before loading data or building the model) on unknown names or inapplicable flags."""
    component_config(CRITERIA, cfg.criterion, "--criterion", _explicit(cfg, CRITERION_FIELDS), cfg.criterion_opts,
                     "--criterion-opt")
    component_config(OPTIMIZERS, cfg.optimizer, "--optimizer", _explicit(cfg, OPTIMIZER_FIELDS), cfg.optimizer_opts,
                     "--optimizer-opt")
    component_config(LR_SCHEDULERS, cfg.lr_scheduler, "--lr-scheduler", _explicit(cfg, SCHEDULER_FIELDS),
                     cfg.lr_scheduler_opts, "--lr-scheduler-opt")
