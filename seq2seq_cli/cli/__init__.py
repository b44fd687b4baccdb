"""The `seq2seq` command: a click group whose subcommands are imported only when invoked.

`seq2seq --help` must stay instant, so nothing here imports torch; each subcommand module imports its library code
inside the callback. A `Seq2SeqError` raised anywhere becomes a one-line message and exit status 1, no traceback.
"""
from __future__ import annotations

import importlib

import click

from seq2seq_cli import __version__

# name -> "module:attribute"; help text is duplicated here so that listing commands imports nothing
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "preprocess": ("seq2seq_cli.cli.preprocess:preprocess", "Train a tokenizer and binarize parallel text."),
    "train": ("seq2seq_cli.cli.train:train", "Train a model on a binarized DATA_DIR."),
    "generate": ("seq2seq_cli.cli.generate:generate", "Translate text or a DATA_DIR subset with a checkpoint."),
    "interactive": ("seq2seq_cli.cli.generate:interactive", "Translate stdin line by line with a checkpoint."),
    "score": ("seq2seq_cli.cli.score:score", "Score hypotheses against references (BLEU, chrF, TER)."),
    "average-checkpoints": ("seq2seq_cli.cli.average:average_checkpoints", "Average the weights of checkpoints."),
    "export": ("seq2seq_cli.cli.export:export", "Export a checkpoint to CTranslate2, with a parity check."),
    "list": ("seq2seq_cli.cli.listing:list_components", "List registered components and their config fields."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs (or its help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attr = SUBCOMMANDS[name][0].split(":")
        # No try/except ImportError: a broken import must surface, not become "No such command".
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}:{attr} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # noqa: D401
        from seq2seq_cli.errors import Seq2SeqError

        try:
            return super().invoke(ctx)
        except Seq2SeqError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = getattr(exc, "exit_code", 1)  # 130 after an interrupt, as a shell reports one
            raise error from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="seq2seq")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def cli(verbose: int, quiet: bool) -> None:
    """seq2seq: preprocess, train, generate and score sequence-to-sequence models.

    stdout carries data only (hypotheses, scores); logs and progress bars go to stderr.
    """
    from seq2seq_cli.log import setup_logging

    setup_logging(-1 if quiet else verbose)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="seq2seq")
