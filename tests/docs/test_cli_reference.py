"""docs/cli.md is the output of every `--help`: regenerate it with `python -m seq2seq_cli.cli.reference`."""
from __future__ import annotations

import re

import pytest

from seq2seq_cli.cli import SUBCOMMANDS, cli
from seq2seq_cli.cli.reference import WIDTH, render, section_title
from tests.conftest import REPO

DOC = REPO / "docs" / "cli.md"
STALE = "docs/cli.md is out of date: run `python -m seq2seq_cli.cli.reference > docs/cli.md`"


def documented_sections() -> dict[str, str]:
    """Section title -> the text block under it."""
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in re.finditer(r"^(## seq2seq[^\n]*)\n\n```text\n(.*?)\n```$", text,
                                                          re.S | re.M)}


@pytest.mark.parametrize("name", [None, *SUBCOMMANDS])
def test_each_section_is_what_help_prints(runner, name) -> None:
    args = ["--help"] if name is None else [name, "--help"]
    result = runner.invoke(cli, args, prog_name="seq2seq", terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    assert documented_sections().get(section_title(name)) == result.stdout.rstrip("\n"), STALE


def test_the_file_is_the_generator_output_and_lists_every_command() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), STALE
    assert set(documented_sections()) == {section_title(n) for n in [None, *SUBCOMMANDS]}
