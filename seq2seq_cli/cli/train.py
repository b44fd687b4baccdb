"""`seq2seq train DATA_DIR`: flags (fairseq's names) -> TrainConfig -> `run_training`.

Defaults live in `TrainConfig` and the components' Config dataclasses; click options default to None ("not
given") so that a resumed run can tell the flags the user set from the defaults. Model fields: the common ones
have their own flags, every other field goes through `--model-opt KEY=VALUE` (applied after the flags).
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import click

from seq2seq_cli.cli.options import device_options, progress_option, user_dir_option
from seq2seq_cli.config import field_types
from seq2seq_cli.training.config import TrainConfig

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}

# Model flags with their own option: (flag stem, click type). Each becomes a `field=value` model override.
MODEL_VALUE_FLAGS: list[tuple[str, Any]] = [
    ("encoder-layers", int), ("decoder-layers", int), ("encoder-embed-dim", int), ("decoder-embed-dim", int),
    ("encoder-ffn-embed-dim", int), ("decoder-ffn-embed-dim", int), ("encoder-attention-heads", int),
    ("decoder-attention-heads", int), ("dropout", float), ("attention-dropout", float),
    ("activation-dropout", float), ("activation-fn", str), ("max-source-positions", int),
    ("max-target-positions", int),
]
MODEL_BOOL_FLAGS = ["share-all-embeddings", "share-decoder-input-output-embed", "encoder-normalize-before",
                    "decoder-normalize-before"]


def _help(name: str) -> str:
    """Help of TrainConfig field `name`, with its default (the one place it is defined)."""
    f = _FIELDS[name]
    default = f.default
    if isinstance(default, (tuple, list)) or default is None or default is False:
        return f.metadata["help"]
    return f"{f.metadata['help']} [default: {default}]"


def _choice(name: str) -> click.Choice:
    """The choices of TrainConfig field `name`, from its Literal type (optionally `| None`): listed once, there."""
    tp = field_types(TrainConfig)[name]
    literal = next(a for a in (tp, *typing.get_args(tp)) if typing.get_origin(a) is typing.Literal)
    return click.Choice(list(typing.get_args(literal)))


def _opt(*decls: str, name: str, **kwargs: Any):
    """A click option for TrainConfig field `name`: default None (= the dataclass default), help from the field."""
    if kwargs.get("is_flag"):
        kwargs.setdefault("default", False)
    else:
        kwargs.setdefault("default", None)
    return click.option(*decls, name, help=_help(name), **kwargs)


def _model_options(f: Any) -> Any:
    for stem in reversed(MODEL_BOOL_FLAGS):
        f = click.option(f"--{stem}/--no-{stem}", stem.replace("-", "_"), default=None,
                         help=f"model field {stem.replace('-', '_')} (default: the arch's)")(f)
    for stem, tp in reversed(MODEL_VALUE_FLAGS):
        f = click.option(f"--{stem}", stem.replace("-", "_"), type=tp, default=None,
                         help=f"model field {stem.replace('-', '_')} (default: the arch's)")(f)
    f = click.option("--model-opt", "model_opts", multiple=True, metavar="KEY=VALUE",
                     help="any model config field (see `seq2seq list`); applied after the flags above")(f)
    f = _opt("-a", "--arch", name="arch", metavar="NAME")(f)
    return f


def _parse_betas(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    parts = value.strip().strip("()[]").replace(",", " ").split()
    try:
        betas = tuple(float(p) for p in parts)
    except ValueError:
        betas = ()
    if len(betas) != 2:
        raise click.BadParameter(f"{value!r}: expected two numbers, e.g. '(0.9, 0.98)'", ctx=ctx, param=param)
    return betas  # type: ignore[return-value]


def _optimization_options(f: Any) -> Any:
    opts = [
        _opt("--optimizer", name="optimizer", metavar="NAME"),
        _opt("--adam-betas", name="adam_betas", callback=_parse_betas, metavar="'(B1, B2)'"),
        _opt("--adam-eps", name="adam_eps", type=float), _opt("--weight-decay", name="weight_decay", type=float),
        click.option("--optimizer-opt", "optimizer_opts", multiple=True, metavar="KEY=VALUE",
                     help="any field of the optimizer's Config"),
        _opt("--lr", name="lr", type=float), _opt("--lr-scheduler", name="lr_scheduler", metavar="NAME"),
        _opt("--warmup-updates", name="warmup_updates", type=int),
        _opt("--warmup-init-lr", name="warmup_init_lr", type=float), _opt("--min-lr", name="min_lr", type=float),
        _opt("--lr-shrink", name="lr_shrink", type=float),
        _opt("--end-learning-rate", name="end_learning_rate", type=float),
        _opt("--power", name="power", type=float), _opt("--total-num-update", name="total_num_update", type=int),
        _opt("--lr-patience", name="lr_patience", type=int),
        click.option("--lr-scheduler-opt", "lr_scheduler_opts", multiple=True, metavar="KEY=VALUE",
                     help="any field of the scheduler's Config"),
        _opt("--clip-norm", name="clip_norm", type=float),
        _opt("--criterion", name="criterion", metavar="NAME"),
        _opt("--label-smoothing", name="label_smoothing", type=float),
        _opt("--ctc-weight", name="ctc_weight", type=float),
        click.option("--criterion-opt", "criterion_opts", multiple=True, metavar="KEY=VALUE",
                     help="any field of the criterion's Config"),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _data_and_batch_options(f: Any) -> Any:
    opts = [
        _opt("-s", "--source-lang", name="source_lang"), _opt("-t", "--target-lang", name="target_lang"),
        _opt("--train-subset", name="train_subset"), _opt("--valid-subset", name="valid_subset"),
        _opt("--disable-validation", name="disable_validation", is_flag=True),
        _opt("--max-tokens", name="max_tokens", type=int),
        _opt("--batch-size", "--max-sentences", name="batch_size", type=int),
        _opt("--update-freq", name="update_freq", type=int),
        _opt("--skip-invalid-size-inputs-valid-test", name="skip_invalid_size_inputs_valid_test", is_flag=True),
        _opt("--num-workers", name="num_workers", type=int),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _run_options(f: Any) -> Any:
    opts = [
        _opt("--max-epoch", name="max_epoch", type=int), _opt("--max-update", name="max_update", type=int),
        _opt("--stop-time-hours", name="stop_time_hours", type=float),
        _opt("--save-dir", name="save_dir", type=click.Path(file_okay=False, path_type=Path)),
        _opt("--save-interval", name="save_interval", type=int),
        _opt("--save-interval-updates", name="save_interval_updates", type=int),
        _opt("--keep-last-epochs", name="keep_last_epochs", type=int),
        _opt("--keep-interval-updates", name="keep_interval_updates", type=int),
        _opt("--no-epoch-checkpoints", name="no_epoch_checkpoints", is_flag=True),
        _opt("--no-save", name="no_save", is_flag=True), _opt("--patience", name="patience", type=int),
        _opt("--max-skipped-updates", name="max_skipped_updates", type=int),
        _opt("--best-checkpoint-metric", name="best_checkpoint_metric", type=_choice("best_checkpoint_metric")),
        _opt("--maximize-best-checkpoint-metric", name="maximize_best_checkpoint_metric", is_flag=True),
        _opt("--validate-interval", name="validate_interval", type=int),
        _opt("--validate-interval-updates", name="validate_interval_updates", type=int),
        _opt("--eval-bleu", name="eval_bleu", is_flag=True),
        _opt("--eval-bleu-args", name="eval_bleu_args", metavar="JSON"),
        _opt("--restore-file", name="restore_file"),
        _opt("--finetune-from-model", name="finetune_from_model",
             type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        _opt("--reset-optimizer", name="reset_optimizer", is_flag=True),
        _opt("--reset-lr-scheduler", name="reset_lr_scheduler", is_flag=True),
        _opt("--reset-dataloader", name="reset_dataloader", is_flag=True),
        _opt("--reset-meters", name="reset_meters", is_flag=True),
        _opt("--seed", name="seed", type=int), _opt("--compile", name="compile", is_flag=True),
        _opt("--distributed-world-size", name="distributed_world_size", type=int, metavar="N"),
        _opt("--ddp-backend", name="ddp_backend", type=_choice("ddp_backend")),
        _opt("--log-format", name="log_format", type=_choice("log_format")),
        _opt("--log-interval", name="log_interval", type=int),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_train_config(data_dir: Path, flags: dict[str, Any]) -> TrainConfig:
    """TrainConfig from the parsed flags: only the flags the user gave override the dataclass defaults."""
    overrides = []
    for stem, _ in MODEL_VALUE_FLAGS:
        value = flags.pop(stem.replace("-", "_"))
        if value is not None:
            overrides.append(f"{stem.replace('-', '_')}={value}")
    for stem in MODEL_BOOL_FLAGS:
        value = flags.pop(stem.replace("-", "_"))
        if value is not None:
            overrides.append(f"{stem.replace('-', '_')}={str(value).lower()}")
    overrides.extend(flags.pop("model_opts"))
    given = {k: v for k, v in flags.items() if v is not None and v is not False and v != ()}
    return TrainConfig(data=data_dir, model_overrides=tuple(overrides), **given)


_RAW_ARGS = "seq2seq_cli.train.args"


class TrainCommand(click.Command):
    """Keeps its raw arguments: `--distributed-world-size N` runs the same command line in N processes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_RAW_ARGS] = list(args)
        return super().parse_args(ctx, args)


def _launch(ctx: click.Context, cfg: TrainConfig) -> None:
    """Hand this command (without --distributed-world-size) to torch.distributed.run, N processes here."""
    from seq2seq_cli import distributed

    distributed.check_launch(cfg.distributed_world_size, cfg.device)
    root = ctx.find_root().params
    verbosity = ["-q"] if root.get("quiet") else ["-v"] * int(root.get("verbose") or 0)
    args = distributed.without_option(ctx.meta[_RAW_ARGS], "--distributed-world-size")
    distributed.launch(cfg.distributed_world_size, [*verbosity, "train", *args])


@click.command(cls=TrainCommand, context_settings={"max_content_width": 110})
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_data_and_batch_options
@_model_options
@_optimization_options
@_run_options
@device_options
@progress_option
@user_dir_option
def train(data_dir: Path, **flags: Any) -> None:
    """Train a model on the binarized DATA_DIR written by `seq2seq preprocess`.

    Checkpoints, train.log (one JSON record per line) and config.json go to --save-dir. Running the same command
    again resumes from SAVE_DIR/checkpoint_last.pt. Under torchrun (or with --distributed-world-size N) every
    process trains on its share of the batches; rank 0 logs and saves (docs/distributed.md).
    """
    from seq2seq_cli import distributed

    for key in ("model_opts", "optimizer_opts", "lr_scheduler_opts", "criterion_opts"):
        flags[key] = tuple(flags[key])
    cfg = build_train_config(data_dir, flags)
    if (cfg.distributed_world_size or 1) > 1 and not distributed.launched_by_torchrun():
        _launch(click.get_current_context(), cfg)
        return
    from seq2seq_cli.training.trainer import run_training

    try:
        run_training(cfg)
    finally:
        distributed.leave()
