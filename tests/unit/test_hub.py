"""The Python API (`seq2seq_cli.load`): the same results as the CLI, and clear errors."""
from __future__ import annotations

import pytest

import seq2seq_cli
from seq2seq_cli.decoding.base import Hypothesis
from seq2seq_cli.errors import CheckpointError, ConfigError
from tests.conftest import invoke
from tests.decoding_fixtures import copy_sentences, tiny_checkpoint

LINES = ["a b c d", "", "p o n m l k j", "x@@ a b", "e f e f e f"]


@pytest.fixture(scope="module")
def ckpt() -> str:
    return str(tiny_checkpoint().checkpoint)


@pytest.fixture(scope="module")
def model(ckpt):
    return seq2seq_cli.load(ckpt, device="cpu")


def cli_lines(runner, ckpt: str, *args: str) -> list[str]:
    result = invoke(runner, ["generate", "--path", ckpt, "--device", "cpu", *args], input="\n".join(LINES) + "\n")
    assert result.exit_code == 0, result.stderr
    return result.stdout.split("\n")[:-1]


def test_translate_equals_the_cli(runner, ckpt, model) -> None:
    assert model.translate(LINES) == cli_lines(runner, ckpt)
    assert model.translate(LINES, beam=3, lenpen=0.3, max_len_b=4) == cli_lines(
        runner, ckpt, "--beam", "3", "--lenpen", "0.3", "--max-len-b", "4")
    assert model.translate(LINES, strategy="greedy", no_repeat_ngram_size=2) == cli_lines(
        runner, ckpt, "--strategy", "greedy", "--no-repeat-ngram-size", "2")


def test_sample_is_seeded_and_topk1_is_greedy(runner, ckpt, model) -> None:
    assert model.sample(LINES, sampling_topk=1, seed=1) == model.translate(LINES, strategy="greedy")
    hot = dict(temperature=3.0, seed=4)
    assert model.sample(LINES, **hot) == model.sample(LINES, **hot)
    assert model.sample(LINES, **hot) == cli_lines(runner, ckpt, "--sampling", "--beam", "1", "--temperature", "3",
                                                   "--seed", "4")


def test_generate_returns_nbest_hypotheses(model) -> None:
    hyps = model.generate(LINES, beam=4, nbest=3)
    assert [len(h) for h in hyps] == [3] * len(LINES)
    assert all(isinstance(h, Hypothesis) for nbest in hyps for h in nbest)
    assert model.detokenize([hyps[0][0].tokens]) == model.translate(LINES[:1], beam=4)


def test_score(model) -> None:
    sources = copy_sentences(6, seed=9)
    right = model.score(sources, sources)
    wrong = model.score(sources, [" ".join(reversed(s.split())) + " a b" for s in sources])
    assert len(right) == 6 and all(isinstance(x, float) for x in right)
    assert sum(right) > sum(wrong)  # the copy model prefers the copy
    with pytest.raises(ConfigError, match="2 sources but 1 targets"):
        model.score(["a", "b"], ["a"])


def test_load_errors(ckpt, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        seq2seq_cli.load(tmp_path / "nope.pt")
    with pytest.raises(ConfigError, match="unknown argument"):
        seq2seq_cli.load(ckpt, beam=5)
    model = seq2seq_cli.load(f"{ckpt}:{ckpt}")
    assert len(model.ensemble) == 2
    with pytest.raises(ConfigError, match="strategy 'beam' has no option 'topk'"):
        model.translate(["a"], topk=3)
