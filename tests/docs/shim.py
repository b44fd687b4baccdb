"""The `seq2seq` and `pip` that doc blocks see in the docs test tier (tests/docs/test_doc_blocks.py).

    python tests/docs/shim.py seq2seq ARGS...   the real command; in a `cap` block (DOCS_TEST_CAP=1) with
                                                 blocks.cap_arguments applied
    python tests/docs/shim.py torchrun ARGS...  torch's torchrun; in a `cap` block, the seq2seq command after
                                                 `-m seq2seq_cli` capped the same way
    python tests/docs/shim.py pip install ...   a local folder: a copy installed into DOCS_TEST_SITE (the
                                                 session's site folder, on PYTHONPATH), never into the test
                                                 environment; this project with extras: checks that the extras'
                                                 packages are installed; anything else fails
"""
from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.docs.blocks import REPO, cap_arguments  # noqa: E402

PROJECT = "seq2seq_cli"


def run_seq2seq(args: list[str]) -> None:
    if os.environ.get("DOCS_TEST_CAP") == "1":
        args = cap_arguments(args)
        print(f"[docs tier, cap] seq2seq {' '.join(args)}", file=sys.stderr)
    from seq2seq_cli.cli import cli

    sys.argv = ["seq2seq", *args]
    cli(args, prog_name="seq2seq")


def _project_requirements(extras: list[str]) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    lines = cfg["options"]["install_requires"].split("\n")
    for extra in extras:
        if extra not in cfg["options.extras_require"]:
            sys.exit(f"[docs tier] pip: {PROJECT} has no extra {extra!r}")
        lines += cfg["options.extras_require"][extra].split("\n")
    return [re.split(r"[<>=!~ \[;]", line.strip())[0] for line in lines if line.strip()]


def _check_project(extras: list[str]) -> None:
    missing = []
    for name in _project_requirements(extras):
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    if missing:
        sys.exit(f"[docs tier] pip: the test environment lacks {', '.join(missing)}")
    print(f"[docs tier] pip: {PROJECT}[{','.join(extras)}] is installed in the test environment", file=sys.stderr)


def _install_folder(folder: Path) -> None:
    site = os.environ["DOCS_TEST_SITE"]
    with tempfile.TemporaryDirectory() as tmp:  # build from a copy: no build/ or *.egg-info in the checkout
        copy = Path(tmp) / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                               "--no-input", "--disable-pip-version-check", "--no-index", "-q", "--upgrade",
                               "--target", site, str(copy)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"[docs tier] pip install {folder} failed:\n{proc.stdout}{proc.stderr}")
    print(f"[docs tier] pip: installed {folder} into the session's site folder", file=sys.stderr)


def run_pip(args: list[str]) -> None:
    if not args or args[0] != "install":
        sys.exit(f"[docs tier] pip {' '.join(args)}: only `pip install` is supported in a run block")
    it = iter(args[1:])
    targets: list[str] = []
    for a in it:
        if a in ("-c", "--constraint", "-r", "--requirement"):
            value = next(it, "")
            if a in ("-r", "--requirement") or not Path(value).is_file():
                sys.exit(f"[docs tier] pip {a} {value}: not supported, or no such file")
        elif a in ("-e", "--editable"):
            targets.append(next(it, ""))
        elif a.startswith("-"):
            if a not in ("-q", "--quiet", "-U", "--upgrade", "--no-deps"):
                sys.exit(f"[docs tier] pip install {a}: not supported in a run block")
        else:
            targets.append(a)
    for target in targets:
        m = re.fullmatch(r"(.+?)(?:\[([\w,\-]+)\])?", target)
        where, extras = m.group(1), [e for e in (m.group(2) or "").split(",") if e]
        path = Path(where)
        if where.replace("-", "_") == PROJECT or (path / "setup.cfg").resolve() == REPO / "setup.cfg":
            _check_project(extras)
        elif path.is_dir() and not extras:
            _install_folder(path)
        else:
            sys.exit(f"[docs tier] pip install {target}: a registry package; mark the block `skip network`")


def run_torchrun(args: list[str]) -> None:
    """torchrun itself; in a `cap` block, the seq2seq command after `-m seq2seq_cli` capped as `seq2seq`'s."""
    if os.environ.get("DOCS_TEST_CAP") == "1":
        for k, a in enumerate(args[:-1]):
            if a in ("-m", "--module") and args[k + 1] == "seq2seq_cli":
                args = [*args[:k + 2], *cap_arguments(args[k + 2:])]
                print(f"[docs tier, cap] torchrun {' '.join(args)}", file=sys.stderr)
                break
    os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", *args])


if __name__ == "__main__":
    tool, rest = sys.argv[1], sys.argv[2:]
    {"seq2seq": run_seq2seq, "pip": run_pip, "torchrun": run_torchrun}[tool](rest)
