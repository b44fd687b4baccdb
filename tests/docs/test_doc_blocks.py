"""The docs test tier: the blocks of README.md and docs/*.md run, so the docs cannot rot (pytest marker `docs`).

The convention (also in /work/wt/DOCS-TIER.md for the doc writers):

Fences
- Shell commands go in ```bash blocks (```sh runs too). Every fence names its language: ```text for output, error
  messages and file trees; a bare ``` fails `test_every_fence_names_its_language`, so no command hides from the tier.
- ```python blocks run too, each as `python -` in the session folder (one process per block). ini/toml/json/text
  blocks are not run.

Sessions
- The blocks of one file run in order, each with `bash -euo pipefail`, in one scratch folder: a doc is a session,
  what one block writes the next reads (`cd` does not carry over). The folder starts with `corpus/` and
  `bible-es-en/`, both the bundled sample (examples/data/bible-sample; `bible-es-en/` stands in for the full corpus,
  so commands naming it run as written, and fast), and symlinks `examples`, `benchmarks`, `constraints.txt`,
  `setup.cfg`, `pyproject.toml` to the checkout, so repo-relative paths work as from the repo root.
- PATH: the test environment's bin folder (seq2seq, python, torchrun) behind three shims (tests/docs/shim.py):
  `pip install FOLDER` installs a copy into the session's own site folder (on PYTHONPATH), never into the test
  environment; `torchrun` is torch's (capped in `cap` blocks as `seq2seq` is); `pip install` of this project with extras checks that the extras are installed and installs nothing;
  other pip uses fail. `seq2seq` is the real command, except in `cap` blocks. OMP_NUM_THREADS=1.

Markers: an HTML comment on the line directly above the opening fence, parts separated by `;`
- `<!-- docs-test: skip REASON -->` (REASON: gpu, multi-node, root, long, install, network or audio, then `: why`):
  not run; every seq2seq command in it is still parsed against the click definitions (subcommand, flag names,
  values of choice/int/float flags, required and extra arguments), as is every command of every run block.
- `<!-- docs-test: needs data-bin checkpoints -->`: put before the block: `data-bin` (joint BPE 1,000 of the sample,
  es -> en) and/or `checkpoints` (a tiny transformer, 1+1 layers of d 32, trained 2 updates on it: checkpoint_best.pt,
  checkpoint_last.pt, train.log, config.json), built once per test run.
- `<!-- docs-test: file PATH -->`: the block is the content of PATH (written into the session folder, not run).
- `<!-- docs-test: cap -->`: long trainings are cut: `seq2seq train` gets `--max-update 3` (replacing any
  `--max-update`/`--stop-time-hours`) and a tiny model (1+1 layers, d 32) appended after the block's own flags, so
  they win; `generate`/`interactive` get `--max-len-a 0 --max-len-b 10`, `export` `--check-lines 10`. A block that runs `seq2seq train` without
  `--max-update` must be marked `cap` or `skip` (`test_long_trainings_are_capped`).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import BIBLE_SAMPLE, invoke
from tests.docs.blocks import (CAP_MAX_UPDATE, REPO, TINY_MODEL, Block, DocTierError, Marker, cap_arguments,
                               check_invocation, documents, drop_placeholders, read_blocks, seq2seq_invocations, shell_commands)

pytestmark = pytest.mark.docs

DOCS = documents()
DOC_IDS = [str(d.relative_to(REPO)) for d in DOCS]
RUN_DOCS = [d for d in DOCS if any(b.runs or b.marker.file for b in read_blocks(d))]  # the others: commands checked
LINKED = ("examples", "benchmarks", "constraints.txt", "setup.cfg", "pyproject.toml")
BLOCK_TIMEOUT = 900  # seconds: a hang guard (a block takes seconds on a quiet machine, minutes on a loaded one)


class Artifacts:
    """DATA_DIR and checkpoints of the sample, built on first use and copied into sessions that need them."""

    def __init__(self, root: Path):
        self.root = root

    def get(self, name: str) -> Path:
        path = self.root / name
        if path.exists():
            return path
        if name == "data-bin":
            result = invoke(CliRunner(), ["preprocess", "-s", "es", "-t", "en", "--trainpref", BIBLE_SAMPLE / "train",
                                          "--validpref", BIBLE_SAMPLE / "valid", "--testpref", BIBLE_SAMPLE / "test",
                                          "--joined-dictionary", "--tokenizer", "bpe", "--vocab-size", "1000",
                                          "--destdir", path])
        else:
            result = invoke(CliRunner(), ["train", self.get("data-bin"), "--arch", "transformer", *TINY_MODEL,
                                          "--share-all-embeddings", "--max-tokens", "2048", "--max-update", "2",
                                          "--seed", "1", "--save-dir", path])
        assert result.exit_code == 0, result.output
        return path


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    return Artifacts(tmp_path_factory.mktemp("docs-artifacts"))


def new_session(tmp: Path) -> tuple[Path, dict[str, str]]:
    """The scratch folder of one doc, and the environment its blocks run in."""
    work, shims, site = tmp / "session", tmp / "shims", tmp / "site"
    for folder in (work, shims, site):
        folder.mkdir()
    for name in ("corpus", "bible-es-en"):
        shutil.copytree(BIBLE_SAMPLE, work / name, ignore=shutil.ignore_patterns("README.md"))
    for name in LINKED:
        (work / name).symlink_to(REPO / name)
    for tool in ("seq2seq", "pip", "torchrun"):
        shim = shims / tool
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "tests" / "docs" / "shim.py"}" {tool} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ, PATH=os.pathsep.join([str(shims), str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")]),
               PYTHONPATH=str(site), DOCS_TEST_SITE=str(site), OMP_NUM_THREADS="1", DOCS_TEST_CAP="0")
    return work, env


@dataclass
class BlockRun:
    """What running one block gave: its exit code (0 for a `file` block, which is only written) and its output."""

    block: Block
    returncode: int
    stdout: str = ""
    stderr: str = ""

    def report(self) -> str:
        return (f"{self.block.where}: the block exited with {self.returncode}\n--- block:\n{self.block.text}"
                f"--- stdout (end):\n{self.stdout[-3000:]}\n--- stderr (end):\n{self.stderr[-3000:]}")


def run_block(block: Block, work: Path, env: dict[str, str], artifacts: Artifacts) -> BlockRun:
    """Run (or, for a `file` block, write) `block` in the session `work`; fails the test on a hang."""
    for name in block.marker.needs:
        if not (work / name).exists():
            shutil.copytree(artifacts.get(name), work / name)
    if block.marker.file:
        target = work / block.marker.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text, encoding="utf-8")
        return BlockRun(block, 0)
    argv = ["bash", "-euo", "pipefail", "-c", block.text] if block.is_shell else [sys.executable, "-"]
    # A session of its own, so a timeout stops the block's every process (torchrun's workers included).
    proc = subprocess.Popen(argv, cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=dict(env, DOCS_TEST_CAP="1" if block.marker.cap
                                                                         else "0"))
    try:
        stdout, stderr = proc.communicate(None if block.is_shell else block.text, timeout=BLOCK_TIMEOUT)
    except BaseException as exc:  # a timeout, or Ctrl-C of the test run: the block's processes go too
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT} s (mark it `cap` or `skip long`)\n"
                    f"--- stderr (end):\n{stderr[-3000:]}")
    return BlockRun(block, proc.returncode, stdout, stderr)


# --- the docs ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_every_fence_names_its_language(doc: Path) -> None:
    bare = [b.where for b in read_blocks(doc) if not b.lang]
    assert not bare, f"fenced blocks without a language (```bash, ```text, ...): {', '.join(bare)}"


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_seq2seq_commands_match_the_cli(doc: Path) -> None:
    """Every seq2seq command of every shell block, run or skipped, parses against its click definition."""
    problems = []
    for block in read_blocks(doc):
        if block.is_shell:
            for args in seq2seq_invocations(block.text):
                try:
                    check_invocation(args)
                except DocTierError as exc:
                    problems.append(f"{block.where}: {exc}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_long_trainings_are_capped(doc: Path) -> None:
    uncapped = [b.where for b in read_blocks(doc) if b.runs and not b.marker.cap and b.is_shell
                and any(a[0] == "train" and "--max-update" not in a for a in seq2seq_invocations(b.text))]
    assert not uncapped, f"blocks that train without --max-update: mark them `cap` or `skip`: {', '.join(uncapped)}"


@pytest.mark.parametrize("doc", RUN_DOCS, ids=[str(d.relative_to(REPO)) for d in RUN_DOCS])
def test_the_blocks_run_in_order(doc: Path, tmp_path: Path, artifacts: Artifacts) -> None:
    blocks = [b for b in read_blocks(doc) if b.runs or b.marker.file]
    assert blocks, f"{doc}: no block to run (RUN_DOCS holds only docs that have some)"
    work, env = new_session(tmp_path)
    for block in blocks:  # in order, in one session: a block may use what the blocks before it made
        ran = run_block(block, work, env, artifacts)
        assert ran.returncode == 0, ran.report()


@pytest.mark.parametrize("lang, text", [("bash", "echo partial\nexit 3\n"), ("python", "raise SystemExit(3)\n")])
def test_a_failing_block_fails_its_session(tmp_path: Path, artifacts: Artifacts, lang: str, text: str) -> None:
    # what test_the_blocks_run_in_order rests on: a block that exits non-zero is seen, its report naming its place
    work, env = new_session(tmp_path)
    block = Block(REPO / "docs" / "getting-started.md", 7, lang, text, Marker())
    ran = run_block(block, work, env, artifacts)
    assert ran.returncode == 3
    assert ran.report().startswith("docs/getting-started.md:7: the block exited with 3\n--- block:\n")
    assert ("partial" in ran.stdout) == (lang == "bash")


def test_a_file_block_is_written_not_run(tmp_path: Path, artifacts: Artifacts) -> None:
    work, env = new_session(tmp_path)
    block = Block(REPO / "docs" / "getting-started.md", 9, "python", "raise SystemExit(3)\n",
                  Marker(file="pkg/mod.py"))
    assert run_block(block, work, env, artifacts).returncode == 0
    assert (work / "pkg" / "mod.py").read_text(encoding="utf-8") == "raise SystemExit(3)\n"


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = [b.text.strip() for b in read_blocks(REPO / "README.md") if b.is_shell]
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] in readme, f".ci/run runs {ci[-1]!r}, which is not a README block"


def test_the_index_lists_every_doc_page() -> None:
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in (REPO / "docs").glob("*.md") if p.name != "README.md" and f"({p.name})" not in index]
    assert not missing, f"docs/README.md does not link {', '.join(missing)}"


# --- the tier's own machinery ----------------------------------------------------------------------------------

def test_shell_commands_are_split_at_operators_continuations_and_heredocs() -> None:
    text = ("OUT=x seq2seq generate --path c.pt --beam 5 < in.txt 2> log | tee out  # a comment\n"
            "cat > p.py <<'EOF'\nseq2seq not a command\nEOF\n"
            "seq2seq score --sys h \\\n    --ref 'a b' && echo done\n")
    assert shell_commands(text) == [["OUT=x", "seq2seq", "generate", "--path", "c.pt", "--beam", "5"], ["tee", "out"],
                                    ["cat"], ["seq2seq", "score", "--sys", "h", "--ref", "a b"], ["echo", "done"]]
    assert seq2seq_invocations(text + "torchrun --nproc_per_node 2 -m seq2seq_cli -q train d\n") == [
        ["generate", "--path", "c.pt", "--beam", "5"], ["score", "--sys", "h", "--ref", "a b"], ["train", "d"]]


@pytest.mark.parametrize("args, message", [
    (["trian", "d"], "no such subcommand: seq2seq trian"),
    (["train", "d", "--no-such-flag"], "seq2seq train: No such option '--no-such-flag'"),
    (["train", "d", "--max-update", "many"], "seq2seq train --max-update: Invalid value for '--max-update': 'many' is"),
    (["generate", "--path", "c.pt", "--output-format", "xml"], "seq2seq generate --output-format: Invalid value"),
    (["generate", "--path", "c.pt", "--strategy", "nucleus"], "--strategy nucleus: no such decoding; available: beam"),
    (["train", "d", "--arch", "transformer_smal"], "--arch transformer_smal: no such arch; available: s2t_transformer"),
    (["train"], "seq2seq train: missing argument DATA_DIR"),
    (["score", "--sys", "h", "--ref", "r", "extra"], "unexpected extra argument(s) extra"),
])
def test_the_command_check_names_what_is_wrong(args, message) -> None:
    with pytest.raises(DocTierError) as info:
        check_invocation(args)
    assert message in str(info.value)


def test_the_command_check_accepts_placeholders() -> None:
    documented = ["DATA_DIR", "--arch", "transformer_small", "...", "[--precision", "bf16]"]
    assert drop_placeholders(documented) == ["DATA_DIR", "--arch", "transformer_small"]
    assert check_invocation(["train", *documented]) is None  # no DocTierError
    assert check_invocation(["generate", "--help"]) is None


def test_cap_replaces_the_training_length_and_appends_a_tiny_model() -> None:
    args = ["train", "d", "--max-update", "800", "--stop-time-hours", "0.4", "--arch", "transformer_small"]
    assert cap_arguments(args) == ["train", "d", "--arch", "transformer_small", "--max-update", str(CAP_MAX_UPDATE),
                                   *TINY_MODEL]
    assert cap_arguments(["generate", "--path", "c"])[-4:] == ["--max-len-a", "0", "--max-len-b", "10"]
    assert cap_arguments(["export", "--path", "c"])[-2:] == ["--check-lines", "10"]
    assert cap_arguments(["score", "--sys", "h"]) == ["score", "--sys", "h"]


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_skipped_shell_blocks_are_valid_bash(doc: Path) -> None:
    """What the tier cannot run is at least parsed by bash (`bash -n`: quotes, continuations, operators)."""
    for block in read_blocks(doc):
        if block.is_shell and block.marker.skip:
            proc = subprocess.run(["bash", "-n", "-c", block.text], capture_output=True, text=True)
            assert proc.returncode == 0, f"{block.where}: {proc.stderr}"


@pytest.mark.parametrize("args, message", [
    (["install", "requests"], "pip install requests: a registry package; mark the block `skip network`"),
    (["install", "-e", ".[gpu]"], "seq2seq_cli has no extra 'gpu'"),
    (["uninstall", "x"], "only `pip install` is supported in a run block"),
])
def test_the_pip_shim_refuses_what_it_cannot_do_offline(tmp_path: Path, args, message) -> None:
    work, env = new_session(tmp_path)
    proc = subprocess.run(["pip", *args], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_the_pip_shim_checks_the_project_extras_and_installs_folders_into_the_session(tmp_path: Path) -> None:
    work, env = new_session(tmp_path)
    (work / "pkg" / "docs_tier_probe").mkdir(parents=True)
    (work / "pkg" / "docs_tier_probe" / "__init__.py").write_text("VALUE = 7\n")
    (work / "pkg" / "setup.cfg").write_text("[metadata]\nname = docs-tier-probe\nversion = 1\n[options]\n"
                                            "packages = docs_tier_probe\n")
    (work / "pkg" / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n'
                                                 'build-backend = "setuptools.build_meta"\n')
    proc = subprocess.run("pip install -c constraints.txt -e '.[speech]' && pip install ./pkg && "
                          "python -c 'import docs_tier_probe; print(docs_tier_probe.__file__)'",
                          shell=True, cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "seq2seq_cli[speech] is installed in the test environment" in proc.stderr
    assert proc.stdout.startswith(env["DOCS_TEST_SITE"])  # the session's site folder, not the test environment
