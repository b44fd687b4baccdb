"""Option decorators shared by several subcommands, so a flag is spelled and documented once."""
from __future__ import annotations

from typing import Callable

import click

F = Callable[..., object]


def _import_user_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Eager callback: the plugin registers its components before other options are used.
    if value:
        from seq2seq_cli.errors import Seq2SeqError
        from seq2seq_cli.registry import import_user_dir

        try:
            import_user_dir(value)
        except Seq2SeqError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def user_dir_option(f: F) -> F:
    """`--user-dir PATH`: import a local plugin module or package first (as in fairseq)."""
    return click.option(
        "--user-dir", type=click.Path(), default=None, is_eager=True, expose_value=False,
        callback=_import_user_dir, help="Import a local plugin module or package (registers its components) first.",
    )(f)


def device_options(f: F) -> F:
    """`--device`, `--precision`, `--threads`: where and how the model runs."""
    return _device_options(f, ["fp32", "bf16", "fp16"],
                           "Numeric precision: bf16 autocast on CPU and CUDA; fp16 on CUDA only.")


def decoding_device_options(f: F) -> F:
    """`device_options` for decoding commands, whose --precision also offers int8 (CPU)."""
    return _device_options(f, ["fp32", "bf16", "fp16", "int8"],
                           "Numeric precision: bf16 autocast on CPU and CUDA; fp16 on CUDA only; int8 (dynamic "
                           "quantization of the linear layers) on CPU only.")


def _device_options(f: F, precisions: list[str], precision_help: str) -> F:
    f = click.option("--threads", type=int, default=None,
                     help="CPU threads for torch (default: torch's own choice).")(f)
    f = click.option("--precision", type=click.Choice(precisions), default="fp32", show_default=True,
                     help=precision_help)(f)
    f = click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
                     help="Device to run on; auto picks CUDA, then MPS, then CPU.")(f)
    return f


def progress_option(f: F) -> F:
    """`--no-progress`: no tqdm bar (bars are on stderr and off when stderr is not a terminal anyway)."""
    return click.option("--no-progress", is_flag=True, help="Disable progress bars.")(f)
