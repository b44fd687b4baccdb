"""Every subcommand answers --help; the root command's --help and --version never import torch."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from seq2seq_cli import __version__
from seq2seq_cli.cli import SUBCOMMANDS
from tests.conftest import REPO, invoke


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_subcommand_help(runner, name):
    result = invoke(runner, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert re.match(rf"Usage: \S+ {name} \[OPTIONS\]", result.stdout), result.stdout
    assert "--user-dir" in result.stdout  # every subcommand takes plugins first


def test_root_help_lists_every_subcommand(runner):
    result = invoke(runner, ["--help"])
    assert result.exit_code == 0
    for name, (_, summary) in SUBCOMMANDS.items():
        assert f"{name}" in result.stdout and summary in result.stdout


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_root_help_and_version_do_not_import_torch(args):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from seq2seq_cli.cli import cli\n"
        f"result = CliRunner().invoke(cli, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "sys.stdout.write(result.output)\n"
        "heavy = [m for m in ('torch',) if m in sys.modules]\n"
        "assert not heavy, f'imported by seq2seq {args}: {heavy}'\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert ("Commands:" in proc.stdout) if args == ["--help"] else (__version__ in proc.stdout)


def test_python_dash_m_version():
    proc = subprocess.run([sys.executable, "-m", "seq2seq_cli", "--version"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"seq2seq, version {__version__}"
