"""Helpers for the training tests: a tiny DATA_DIR made by `seq2seq preprocess`, tiny-model flags, train.log reading."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke, write_copy_corpus

# A model of a few thousand parameters: each update takes milliseconds on one CPU thread.
TINY_MODEL = ["--arch", "transformer_small", "--encoder-layers", "1", "--decoder-layers", "1",
              "--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32",
              "--decoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2", "--decoder-attention-heads", "2"]
FAST = ["--max-tokens", "256", "--lr", "0.003", "--warmup-updates", "5", "--device", "cpu", "--no-progress"]


def make_data_dir(root: Path, n_train: int = 200, reverse: bool = False, extra: list[str] | None = None) -> Path:
    """Preprocess a synthetic copy (or reverse) corpus into root/data with a word-level joined vocabulary."""
    from click.testing import CliRunner

    raw = write_copy_corpus(root / "raw", n_train=n_train, reverse=reverse)
    dest = root / "data"
    result = invoke(CliRunner(), ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train",
                                  "--validpref", raw / "valid", "--testpref", raw / "test", "--destdir", dest,
                                  "--joined-dictionary", "--tokenizer", "none", *(extra or [])])
    assert result.exit_code == 0, result.output
    return dest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny preprocessed copy task (200 training pairs, word vocabulary of 20 types), shared by a module."""
    return make_data_dir(tmp_path_factory.mktemp("copy"))


def train(runner: Any, data: Path, save_dir: Path, *extra: Any, model: list[str] | None = None):
    """`seq2seq train DATA --save-dir SAVE_DIR` with the tiny model and fast settings, plus `extra` flags."""
    args = ["train", data, "--save-dir", save_dir, *(TINY_MODEL if model is None else model), *FAST,
            *[str(e) for e in extra]]
    return invoke(runner, args)


def read_log(save_dir: Path) -> list[dict[str, Any]]:
    """The records of SAVE_DIR/train.log."""
    lines = (Path(save_dir) / "train.log").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def tagged(records: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [r for r in records if r["tag"] == tag]


def losses_by_update(records: list[dict[str, Any]]) -> dict[int, float]:
    """num_updates -> loss of the train_inner records (later records win: a resumed run repeats updates)."""
    return {r["num_updates"]: r["loss"] for r in tagged(records, "train_inner")}


def ok(result: Any) -> Any:
    """Assert a CLI run succeeded, showing its output otherwise."""
    assert result.exit_code == 0, (result.output, result.exception)
    return result
