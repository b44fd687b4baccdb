"""Shared fixtures: tiny synthetic corpora, the bundled Bible sample, and a CLI runner.

Every tokenizer and model in the tests is trained inside the test run, from these files.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
BIBLE_SAMPLE = REPO / "examples" / "data" / "bible-sample"


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run beside each other on small machines; one intra-op thread keeps them from oversubscribing.
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def runner() -> CliRunner:
    """A click CliRunner; stdout and stderr are separate (click >= 8.2), as a shell sees them."""
    return CliRunner()


def invoke(runner: CliRunner, args: list[str], input: str | None = None):
    """Run `seq2seq ARGS` in-process and return click's Result."""
    from seq2seq_cli.cli import cli

    return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)


def write_copy_corpus(folder: Path, n_train: int = 200, n_valid: int = 20, n_test: int = 20,
                      seed: int = 0, reverse: bool = False) -> Path:
    """A synthetic parallel corpus src->tgt where the target copies (or reverses) the source words.

    Files: folder/{train,valid,test}.{src,tgt}. Returns `folder`.
    """
    rng = random.Random(seed)
    words = "a b c d e f g h i j k l m n o p".split()
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        src_lines, tgt_lines = [], []
        for _ in range(n):
            sent = [rng.choice(words) for _ in range(rng.randint(2, 8))]
            src_lines.append(" ".join(sent))
            tgt_lines.append(" ".join(reversed(sent) if reverse else sent))
        (folder / f"{split}.src").write_text("\n".join(src_lines) + "\n", encoding="utf-8")
        (folder / f"{split}.tgt").write_text("\n".join(tgt_lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def copy_corpus(tmp_path: Path) -> Path:
    return write_copy_corpus(tmp_path / "raw")


@pytest.fixture(scope="session")
def bible_sample() -> Path:
    """The bundled Bible sample: {train,valid,test}.{es,en}."""
    return BIBLE_SAMPLE
