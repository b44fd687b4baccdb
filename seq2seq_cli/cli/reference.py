"""The command-line reference, docs/cli.md, generated from the click definitions.

    python -m seq2seq_cli.cli.reference > docs/cli.md

`tests/docs/test_cli_reference.py` compares every section of docs/cli.md with what `seq2seq COMMAND --help` prints,
so a flag added, renamed or re-documented without regenerating the file fails the suite.
"""
from __future__ import annotations

import click

WIDTH = 100  # the help width docs/cli.md is rendered at (the root group's max_content_width)

HEADER = """# Command-line reference

Generated from the click definitions by `python -m seq2seq_cli.cli.reference > docs/cli.md`; a test fails when this
file and `seq2seq COMMAND --help` disagree. Every command also takes `--user-dir PATH` (a plugin to import first)
where it lists it. Flags named after fairseq's mean what they mean there; the differences are in
`docs/design-notes.md`.
"""


def help_text(name: str | None) -> str:
    """What `seq2seq NAME --help` prints at WIDTH columns (`seq2seq --help` for None)."""
    from seq2seq_cli.cli import cli

    # The group's own context settings (-h/--help), as the real command line has them; subcommands inherit them.
    root = click.Context(cli, info_name="seq2seq", terminal_width=WIDTH,
                         **{**cli.context_settings, "max_content_width": WIDTH})
    if name is None:
        return cli.get_help(root)
    command = cli.get_command(root, name)
    ctx = click.Context(command, info_name=name, parent=root, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(ctx)


def section_title(name: str | None) -> str:
    return "## seq2seq" if name is None else f"## seq2seq {name}"


def render() -> str:
    """docs/cli.md: the header, then one section per command with its --help in a text block."""
    from seq2seq_cli.cli import SUBCOMMANDS

    parts = [HEADER]
    for name in [None, *SUBCOMMANDS]:
        parts.append(f"{section_title(name)}\n\n```text\n{help_text(name)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    click.echo(render(), nl=False)
