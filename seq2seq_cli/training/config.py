"""`TrainConfig`: every setting of a training run, each default defined here once (fairseq's flag names).

The components' own settings live in their Config dataclasses (model: TransformerConfig; optimizer: Adam.Config;
...). A field below that is `None` for such a setting means "the component's default": the run only overrides what
the user gave. The model's fields arrive as `KEY=VALUE` strings (`model_overrides`) so that a resumed run can tell
which ones the user set explicitly and compare them with the checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seq2seq_cli.errors import ConfigError

# Used when --arch is not given on a fresh run (a resumed run takes the checkpoint's): fairseq's classic base model.
DEFAULT_ARCH = "transformer"


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, model, batching, optimization, stopping/saving, validation, resuming, runtime, logs."""

    data: Path = _f(Path("data-bin"), "binarized DATA_DIR written by `seq2seq preprocess`")
    source_lang: str | None = _f(None, "source language (default: DATA_DIR's source)")
    target_lang: str | None = _f(None, "target language (default: DATA_DIR's target)")
    train_subset: str = _f("train", "split to train on")
    valid_subset: str = _f("valid", "comma-separated splits to validate on (the first one picks the best checkpoint)")
    disable_validation: bool = _f(False, "never validate (no checkpoint_best.pt)")

    arch: str | None = _f(None, f"model preset (default {DEFAULT_ARCH}; a resumed run keeps its checkpoint's)")
    model_overrides: tuple[str, ...] = _f((), "KEY=VALUE model config fields given on the command line")

    max_tokens: int | None = _f(4096, "max tokens per batch (padding included), both sides")
    batch_size: int | None = _f(None, "max sentences per batch")
    update_freq: int = _f(1, "accumulate gradients over N batches per update")
    skip_invalid_size_inputs_valid_test: bool = _f(False, "skip pairs longer than the model's max positions")
    num_workers: int = _f(0, "data loader worker processes (0: load in the main process)")

    optimizer: str = _f("adam", "optimizer name (see `seq2seq list`)")
    adam_betas: tuple[float, float] | None = _f(None, "Adam betas (default: the optimizer's)")
    adam_eps: float | None = _f(None, "Adam epsilon (default: the optimizer's)")
    weight_decay: float | None = _f(None, "decoupled weight decay (default: the optimizer's)")
    optimizer_opts: tuple[str, ...] = _f((), "KEY=VALUE fields of the optimizer's Config")
    lr: float = _f(5e-4, "peak learning rate")
    lr_scheduler: str = _f("inverse_sqrt", "learning-rate schedule name")
    warmup_updates: int | None = _f(None, "warm-up updates (scheduler default if unset)")
    warmup_init_lr: float | None = _f(None, "learning rate at the start of warm-up")
    min_lr: float | None = _f(None, "floor of the learning rate (cosine)")
    lr_shrink: float | None = _f(None, "shrink factor (fixed, cosine, reduce_lr_on_plateau)")
    end_learning_rate: float | None = _f(None, "final learning rate (polynomial_decay)")
    power: float | None = _f(None, "decay power (polynomial_decay)")
    total_num_update: int | None = _f(None, "updates over which to decay (polynomial_decay)")
    lr_patience: int | None = _f(None, "validations without improvement before shrinking (reduce_lr_on_plateau)")
    lr_scheduler_opts: tuple[str, ...] = _f((), "KEY=VALUE fields of the scheduler's Config")
    clip_norm: float = _f(0.0, "clip gradients to this global norm (0: no clipping)")
    criterion: str = _f("label_smoothed_cross_entropy", "training loss name")
    label_smoothing: float | None = _f(None, "label smoothing epsilon (label_smoothed_cross_entropy)")
    ctc_weight: float | None = _f(None, "weight of the auxiliary CTC loss (label_smoothed_cross_entropy_with_ctc)")
    criterion_opts: tuple[str, ...] = _f((), "KEY=VALUE fields of the criterion's Config")

    max_epoch: int = _f(0, "stop after this epoch (0: no limit)")
    max_update: int = _f(0, "stop after this many updates (0: no limit)")
    stop_time_hours: float = _f(0.0, "stop after this much training time, in hours (0: no limit)")
    save_dir: Path = _f(Path("checkpoints"), "folder for checkpoints, train.log and config.json")
    save_interval: int = _f(1, "save an epoch checkpoint every N epochs")
    save_interval_updates: int = _f(0, "also save (and validate) every N updates (0: off)")
    keep_last_epochs: int = _f(-1, "keep only the last N epoch checkpoints (-1: all)")
    keep_interval_updates: int = _f(-1, "keep only the last N update checkpoints (-1: all)")
    no_epoch_checkpoints: bool = _f(False, "write only checkpoint_last.pt / checkpoint_best.pt at epoch ends")
    no_save: bool = _f(False, "write no checkpoints at all")
    max_skipped_updates: int = _f(10, "stop after N updates in a row skipped for a non-finite loss or gradient or "
                                      "an out-of-memory batch (0: never stop)")
    patience: int = _f(-1, "stop after N validations without improvement (-1: off)")
    best_checkpoint_metric: Literal["loss", "nll_loss", "bleu"] = _f(
        "loss", "validation metric that picks checkpoint_best.pt (nll_loss: the cross-entropy alone, without label "
                "smoothing or an auxiliary CTC term)")
    maximize_best_checkpoint_metric: bool = _f(False, "higher is better (implied for bleu)")

    validate_interval: int = _f(1, "validate every N epochs")
    validate_interval_updates: int = _f(0, "also validate every N updates (0: off)")
    eval_bleu: bool = _f(False, "decode the validation set and report BLEU")
    eval_bleu_args: str = _f("{}", 'JSON decoding options for --eval-bleu, e.g. {"beam": 4}')

    restore_file: str = _f("checkpoint_last.pt", "checkpoint to resume from (relative to save_dir unless a path)")
    finetune_from_model: Path | None = _f(None, "start a new run from this checkpoint's weights")
    reset_optimizer: bool = _f(False, "do not restore optimizer state (nor the update count)")
    reset_lr_scheduler: bool = _f(False, "do not restore the learning-rate schedule")
    reset_dataloader: bool = _f(False, "start again from epoch 1")
    reset_meters: bool = _f(False, "do not restore the meters (wall time, epoch statistics)")

    seed: int = _f(1, "random seed (model init, batch order, dropout)")
    device: str = _f("auto", "auto, cpu, cuda, cuda:N or mps")
    precision: Literal["fp32", "bf16", "fp16"] = _f("fp32", "fp32, bf16 (autocast) or fp16 (CUDA, loss scaling)")
    threads: int | None = _f(None, "CPU threads for torch")
    compile: bool = _f(False, "torch.compile the model")
    distributed_world_size: int | None = _f(None, "train with N processes on this machine, launched through "
                                            "torch.distributed.run (default: torchrun's WORLD_SIZE, else 1)")
    ddp_backend: Literal["nccl", "gloo", "mpi"] | None = _f(None, "torch.distributed backend (default: nccl on "
                                                            "CUDA, gloo otherwise)")

    log_format: Literal["simple", "json"] = _f("simple", "console format of the statistics lines")
    log_interval: int = _f(100, "log training statistics every N updates")
    no_progress: bool = _f(False, "no tqdm progress bar")

    def __post_init__(self) -> None:
        check_train_config(self)

    @property
    def valid_subsets(self) -> list[str]:
        """The splits named by --valid-subset (empty when validation is disabled)."""
        if self.disable_validation:
            return []
        return [s.strip() for s in self.valid_subset.split(",") if s.strip()]

    @property
    def maximize(self) -> bool:
        """Whether a higher best-checkpoint metric is better (BLEU always is)."""
        return self.maximize_best_checkpoint_metric or self.best_checkpoint_metric == "bleu"

    def bleu_options(self) -> tuple[str, dict[str, Any]]:
        """(decoding strategy, its options) from --eval-bleu-args; a "strategy" key picks it (default beam)."""
        options = dict(json.loads(self.eval_bleu_args))
        return str(options.pop("strategy", "beam")), options


def _positive(cfg: TrainConfig, name: str, minimum: int | float = 1) -> None:
    value = getattr(cfg, name)
    if value is not None and value < minimum:
        raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least {minimum}")


def check_train_config(cfg: TrainConfig) -> None:
    """Raise ConfigError for settings that cannot work, naming the flag."""
    for name in ("max_tokens", "batch_size", "update_freq", "save_interval", "validate_interval", "log_interval",
                 "distributed_world_size"):
        _positive(cfg, name)
    for name in ("max_epoch", "max_update", "stop_time_hours", "save_interval_updates", "validate_interval_updates",
                 "num_workers", "clip_norm", "max_skipped_updates"):
        _positive(cfg, name, 0)
    if cfg.max_tokens is None and cfg.batch_size is None:
        raise ConfigError("give --max-tokens or --batch-size (or both) to size the batches")
    if cfg.lr <= 0:
        raise ConfigError(f"--lr {cfg.lr}: must be positive")
    try:
        options = json.loads(cfg.eval_bleu_args)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--eval-bleu-args {cfg.eval_bleu_args!r}: not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise ConfigError(f'--eval-bleu-args {cfg.eval_bleu_args!r}: expected a JSON object such as {{"beam": 4}}')
    if cfg.best_checkpoint_metric == "bleu" and not cfg.eval_bleu:
        raise ConfigError("--best-checkpoint-metric bleu needs --eval-bleu")
    if not cfg.disable_validation and not cfg.valid_subsets:
        raise ConfigError("--valid-subset is empty; name a split or use --disable-validation")
    if cfg.finetune_from_model is not None and cfg.restore_file != TrainConfig.restore_file:
        raise ConfigError("--finetune-from-model and --restore-file cannot be used together: the first starts a new "
                          "run from a model's weights, the second resumes a run")
