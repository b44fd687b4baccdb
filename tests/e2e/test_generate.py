"""`seq2seq generate` end to end on a tiny copy-task checkpoint: inputs, output formats, every flag, bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seq2seq_cli.registry import DECODING
from tests.conftest import invoke
from tests.decoding_fixtures import MAX_POSITIONS, tiny_checkpoint

LINES = ["a b c d", "", "p o n m l k j", "x@@ a b", "e f e f e f", "b", "g h i j k l m n o p a b"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_checkpoint()


@pytest.fixture(scope="module")
def ckpt(tiny) -> str:
    return str(tiny.checkpoint)


@pytest.fixture(scope="module")
def src_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "input.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_bin(tiny, tmp_path_factory) -> Path:
    from click.testing import CliRunner

    dest = tmp_path_factory.mktemp("gen") / "data-bin"
    raw = tiny.raw
    result = invoke(CliRunner(), ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train",
                                  "--validpref", raw / "valid", "--testpref", raw / "test", "--joined-dictionary",
                                  "--tokenizer-path", tiny.tokenizer_json, "--destdir", dest])
    assert result.exit_code == 0, result.output
    return dest


def run(runner, ckpt: str, *args, input: str | None = None, ok: bool = True):
    result = invoke(runner, ["generate", "--path", ckpt, "--device", "cpu", *args], input=input)
    if ok:
        assert result.exit_code == 0, result.stderr
    return result


def lines_of(result) -> list[str]:
    return result.stdout.split("\n")[:-1]


def jsonl(result) -> list[dict]:
    return [json.loads(line) for line in lines_of(result)]


# ----------------------------------------------------------------------------------------------- inputs & outputs


def test_one_line_per_input_line_even_empty_and_over_long(runner, ckpt, tmp_path) -> None:
    long_line = " ".join(["a"] * (MAX_POSITIONS + 20))
    path = tmp_path / "in.txt"
    path.write_text("a b c\n\n" + long_line + "\nd e\n", encoding="utf-8")
    result = run(runner, ckpt, "--input", path, "--no-progress")
    out = lines_of(result)
    assert len(out) == 4
    assert out[1] == ""
    assert out[0] and out[2] and out[3]
    assert f"{path} line 3: {MAX_POSITIONS + 20} source tokens" in result.stderr and "truncated" in result.stderr
    assert "line 1:" not in result.stderr and "Traceback" not in result.stderr


def test_stdin_equals_input_file_and_copies(runner, ckpt, src_file) -> None:
    from_file = run(runner, ckpt, "--input", src_file)
    from_stdin = run(runner, ckpt, input=src_file.read_text(encoding="utf-8"))
    assert from_file.stdout == from_stdin.stdout
    out = lines_of(from_file)
    assert len(out) == len(LINES)
    assert sum(o == s for o, s in zip(out, LINES)) >= 3  # the tiny model copies short lines


def test_nbest_gives_n_lines_per_input_best_first(runner, ckpt, src_file) -> None:
    best = lines_of(run(runner, ckpt, "--input", src_file, "--beam", "3"))
    three = lines_of(run(runner, ckpt, "--input", src_file, "--beam", "3", "--nbest", "3"))
    assert len(three) == 3 * len(LINES)
    assert three[::3] == best
    assert three[3:6] == ["", "", ""]  # the empty line: its only (empty) hypothesis, three times


def test_fairseq_format(runner, ckpt, src_file) -> None:
    plain = lines_of(run(runner, ckpt, "--input", src_file))
    fair = lines_of(run(runner, ckpt, "--input", src_file, "--output-format", "fairseq"))
    records = jsonl(run(runner, ckpt, "--input", src_file, "--output-format", "jsonl"))
    assert len(fair) == 4 * len(LINES)
    for i, line in enumerate(LINES):
        s, h, d, p = (f.split("\t") for f in fair[4 * i: 4 * i + 4])
        assert s == [f"S-{i}", line]
        assert h[0] == f"H-{i}" and d[0] == f"D-{i}" and p[0] == f"P-{i}"
        assert d[2] == plain[i] and h[2] == " ".join(records[i]["hypotheses"][0]["tokens"])
        nats = records[i]["hypotheses"][0]["score"]
        assert float(h[1]) == pytest.approx(nats / math.log(2)) and float(d[1]) == float(h[1])  # base 2
        positional = [float(x) for x in p[1].split()]
        assert positional == pytest.approx([x / math.log(2) for x in records[i]["hypotheses"][0]["positional_scores"]],
                                           abs=1e-4)


def test_jsonl_format(runner, ckpt, src_file, tiny) -> None:
    from seq2seq_cli.tokenization.base import Tokenizer

    tokenizer = Tokenizer.from_json(tiny.tokenizer_json.read_text(encoding="utf-8"))
    records = jsonl(run(runner, ckpt, "--input", src_file, "--output-format", "jsonl", "--beam", "4", "--nbest", "2"))
    assert [r["id"] for r in records] == list(range(len(LINES)))
    assert [r["source"] for r in records] == LINES
    for r in records:
        assert len(r["hypotheses"]) == 2
        h = r["hypotheses"][0]
        assert set(h) == {"text", "tokens", "token_ids", "score", "positional_scores"}
        assert h["tokens"] == tokenizer.tokens(h["token_ids"])
        assert len(h["positional_scores"]) == len(h["token_ids"]) + 1
        assert r["hypotheses"][0]["score"] >= r["hypotheses"][1]["score"]


def test_input_not_utf8_names_the_line(runner, ckpt, tmp_path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a b\nc \xff d\n")
    result = run(runner, ckpt, "--input", path, ok=False)
    assert result.exit_code == 1
    assert f"Error: {path}, line 2: not valid UTF-8" in result.stderr
    assert result.stdout == ""


# ----------------------------------------------------------------------------------------------- DATA_DIR


def test_data_dir_subset_with_references_and_bleu(runner, ckpt, data_bin, tiny) -> None:
    refs = (tiny.raw / "test.tgt").read_text(encoding="utf-8").splitlines()
    result = run(runner, ckpt, data_bin, "--gen-subset", "test", "--output-format", "fairseq")
    t_lines = [line.split("\t", 1) for line in lines_of(result) if line.startswith("T-")]
    assert [t for _, t in t_lines] == refs
    assert [k for k, _ in t_lines] == [f"T-{i}" for i in range(len(refs))]
    assert "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in result.stderr
    assert "BLEU" not in result.stdout
    valid = run(runner, ckpt, data_bin, "--gen-subset", "valid")
    assert len(lines_of(valid)) == len((tiny.raw / "valid.tgt").read_text(encoding="utf-8").splitlines())


def test_prefix_size_forces_the_reference_start(runner, ckpt, data_bin, tiny) -> None:
    refs = (tiny.raw / "test.tgt").read_text(encoding="utf-8").splitlines()
    out = lines_of(run(runner, ckpt, data_bin, "--prefix-size", "2", "--lenpen", "0.1", "--max-len-b", "3"))
    assert all(o.split()[:2] == r.split()[:2] for o, r in zip(out, refs))
    result = run(runner, ckpt, "--prefix-size", "2", input="a b\n", ok=False)
    assert result.exit_code == 1 and "--prefix-size needs references" in result.stderr


def test_score_reference(runner, ckpt, data_bin, tiny) -> None:
    import seq2seq_cli

    src = (tiny.raw / "test.src").read_text(encoding="utf-8").splitlines()
    refs = (tiny.raw / "test.tgt").read_text(encoding="utf-8").splitlines()
    assert lines_of(run(runner, ckpt, data_bin, "--score-reference")) == refs
    records = jsonl(run(runner, ckpt, data_bin, "--score-reference", "--output-format", "jsonl"))
    expected = seq2seq_cli.load(ckpt).score(src, refs)
    assert [r["hypotheses"][0]["score"] for r in records] == pytest.approx(expected, abs=1e-5)


def test_data_dir_with_another_vocabulary_is_refused(runner, ckpt, tiny, tmp_path) -> None:
    raw = tiny.raw
    result = invoke(runner, ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--testpref",
                             raw / "test", "--joined-dictionary", "--tokenizer", "char", "--destdir", tmp_path / "d"])
    assert result.exit_code == 0, result.stderr
    result = run(runner, ckpt, tmp_path / "d", ok=False)
    assert result.exit_code == 1 and "vocabulary differs from" in result.stderr
    result = run(runner, ckpt, tmp_path / "d", "--input", tiny.raw / "test.src", ok=False)
    assert result.exit_code == 1 and "either DATA_DIR or --input" in result.stderr


# ----------------------------------------------------------------------------------------------- strategies


def test_strategy_flags_and_options(runner, ckpt, src_file) -> None:
    greedy = run(runner, ckpt, "--input", src_file, "--strategy", "greedy").stdout
    assert run(runner, ckpt, "--input", src_file, "--beam", "1").stdout == greedy
    assert run(runner, ckpt, "--input", src_file, "--sampling", "--beam", "1", "--sampling-topk", "1").stdout == greedy
    assert run(runner, ckpt, "--input", src_file, "--strategy", "sampling", "--strategy-opt", "beam=1",
               "--strategy-opt", "sampling_topk=1").stdout == greedy
    assert run(runner, ckpt, "--input", src_file, "--sampling", "--beam", "1", "--sampling-topp", "0.000001",
               "--seed", "1").stdout == greedy


def test_strategy_errors(runner, ckpt) -> None:
    cases = [
        (["--strategy", "nope"],  # the installed example plugin adds names: see tests/e2e/test_plugin.py
         f"Error: unknown decoding strategy 'nope' (--strategy); available: {', '.join(DECODING.names())}\n"),
        (["--strategy-opt", "width=3"], "--strategy-opt width: strategy 'beam' has no option 'width'"),
        (["--strategy-opt", "width"], "--strategy-opt 'width': expected KEY=VALUE"),
        (["--strategy", "greedy", "--beam", "4"], "--beam: strategy 'greedy' has no option 'beam'"),
        (["--sampling", "--strategy", "beam"], "--sampling contradicts --strategy beam"),
        (["--beam", "2", "--nbest", "3"], "--nbest 3 is larger than --beam 2"),
        (["--beam", "0"], "--beam 0: must be at least 1"),
        (["--temperature", "0"], "--temperature 0.0: must be greater than 0"),
        (["--gen-subset", "valid"], "--gen-subset valid needs a DATA_DIR"),
        (["--beam", "2", "--strategy-opt", "beam=3"], "beam is already set"),
    ]
    for args, message in cases:
        result = run(runner, ckpt, *args, input="a b\n", ok=False)
        assert result.exit_code == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_sampling_seed(runner, ckpt, src_file) -> None:
    args = ["--input", src_file, "--sampling", "--temperature", "3", "--beam", "1"]
    first = run(runner, ckpt, *args, "--seed", "5").stdout
    assert run(runner, ckpt, *args, "--seed", "5").stdout == first
    assert run(runner, ckpt, *args, "--seed", "6").stdout != first


def test_plugin_strategy_with_user_dir(runner, ckpt, src_file, tmp_path_factory) -> None:
    plugin = tmp_path_factory.mktemp("plugin") / "kth_best_strategy.py"
    plugin.write_text('''
from dataclasses import dataclass
from seq2seq_cli.decoding.base import DecodingStrategy
from seq2seq_cli.registry import DECODING

@DECODING.register("kth_best")
class KthBest(DecodingStrategy):
    @dataclass(frozen=True)
    class Config:
        rank: int = 1
    def step(self, step, lprobs, scores):
        values, tokens = lprobs[:, 0].topk(self.cfg.rank + 1, dim=-1)
        return scores + values[:, -1:], tokens[:, -1:], tokens.new_zeros(tokens.size(0), 1)
''', encoding="utf-8")
    greedy = run(runner, ckpt, "--input", src_file, "--strategy", "greedy").stdout
    kth = ["--user-dir", plugin, "--input", src_file, "--strategy", "kth_best", "--max-len-b", "5"]
    assert run(runner, ckpt, *kth, "--strategy-opt", "rank=0", "--max-len-b", "200").stdout == greedy
    assert run(runner, ckpt, *kth).stdout != greedy
    result = run(runner, ckpt, "--user-dir", plugin, "--strategy", "nope", input="a\n", ok=False)
    listed = result.stderr.split("available: ")[1].strip().split(", ")
    assert listed == sorted(listed) and {"beam", "greedy", "kth_best", "sampling"} <= set(listed)


# ----------------------------------------------------------------------------------------------- search flags


def test_length_flags(runner, ckpt, src_file) -> None:
    def lengths(*args):
        return [len(r["hypotheses"][0]["token_ids"]) for r in jsonl(run(runner, ckpt, "--input", src_file,
                                                                       "--output-format", "jsonl", *args))]
    src_lengths = [len(line.split()) for line in LINES]
    assert max(lengths("--max-len-b", "2")) <= 2
    assert all(n <= int(0.5 * s) for n, s in zip(lengths("--max-len-a", "0.5", "--max-len-b", "0"), src_lengths))
    assert all(n >= 12 or s == 0 for n, s in zip(lengths("--min-len", "12"), src_lengths))


def test_penalty_flags(runner, ckpt, src_file, tiny) -> None:
    from seq2seq_cli.tokenization.base import Tokenizer

    unk = Tokenizer.from_json(tiny.tokenizer_json.read_text(encoding="utf-8")).unk_id

    def records(*args):
        return [r["hypotheses"] for r in jsonl(run(runner, ckpt, "--input", src_file, "--output-format", "jsonl",
                                                   *args))]
    for r in records("--lenpen", "0.5", "--beam", "3", "--nbest", "3"):
        for h in r:
            assert h["score"] == pytest.approx(sum(h["positional_scores"]) / len(h["positional_scores"]) ** 0.5)
    assert not any(unk in r[0]["token_ids"] for r in records())
    assert any(unk in r[0]["token_ids"] for r in records("--unkpen", "-50"))
    for r in records("--no-repeat-ngram-size", "1", "--beam", "2", "--nbest", "2"):
        for h in r:
            assert len(set(h["token_ids"])) == len(h["token_ids"])
    plain_scores = [r[0]["score"] for r in records("--strategy", "greedy")]
    hot_scores = [r[0]["score"] for r in records("--strategy", "greedy", "--temperature", "2")]
    assert all(h < p for h, p, line in zip(hot_scores, plain_scores, LINES) if line)


def test_remove_bpe(runner, ckpt, src_file) -> None:
    from seq2seq_cli.decoding.translator import post_process

    plain = lines_of(run(runner, ckpt, "--input", src_file))
    removed = lines_of(run(runner, ckpt, "--input", src_file, "--remove-bpe"))
    assert removed == [post_process(line, "@@ ") for line in plain]
    assert removed != plain and not any("@@" in line for line in removed)
    explicit = lines_of(run(runner, ckpt, "--input", src_file, "--remove-bpe", "@@ "))
    assert explicit == removed


def test_batching_flags_do_not_change_the_output(runner, ckpt, src_file) -> None:
    default = run(runner, ckpt, "--input", src_file).stdout
    assert run(runner, ckpt, "--input", src_file, "--batch-size", "1").stdout == default
    assert run(runner, ckpt, "--input", src_file, "--max-tokens", "8").stdout == default
    result = run(runner, ckpt, "--input", src_file, "--batch-size", "0", ok=False)
    assert result.exit_code == 1 and "--batch-size 0: must be at least 1" in result.stderr


def test_device_flags(runner, ckpt, src_file) -> None:
    default = run(runner, ckpt, "--input", src_file).stdout
    assert run(runner, ckpt, "--input", src_file, "--threads", "2").stdout == default
    assert torch.get_num_threads() == 2  # the conftest's one-thread setting was overridden (and is restored after)
    assert len(lines_of(run(runner, ckpt, "--input", src_file, "--precision", "bf16"))) == len(LINES)
    if not torch.cuda.is_available():
        result = run(runner, ckpt, "--device", "cuda", input="a\n", ok=False)
        assert result.exit_code == 1 and "CUDA is not available" in result.stderr
    result = run(runner, ckpt, "--precision", "fp16", input="a\n", ok=False)
    assert result.exit_code == 1 and "--precision fp16 needs a CUDA device" in result.stderr


# ----------------------------------------------------------------------------------------------- checkpoints


def test_ensemble_path(runner, ckpt, src_file, tiny) -> None:
    single = run(runner, ckpt, "--input", src_file, "--output-format", "jsonl")
    twice = run(runner, f"{ckpt}:{ckpt}", "--input", src_file, "--output-format", "jsonl")
    for a, b in zip(jsonl(single), jsonl(twice)):
        assert a["hypotheses"][0]["token_ids"] == b["hypotheses"][0]["token_ids"]
        assert a["hypotheses"][0]["score"] == pytest.approx(b["hypotheses"][0]["score"], abs=1e-5)
    mixed = run(runner, f"{ckpt}:{tiny.other}", "--input", src_file, "--output-format", "jsonl")
    assert [r["hypotheses"][0]["score"] for r in jsonl(mixed)] != [r["hypotheses"][0]["score"] for r in jsonl(single)]


def test_bad_checkpoints(runner, ckpt, tmp_path) -> None:
    data = Path(ckpt).read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint", encoding="utf-8")
    state = torch.load(ckpt, weights_only=True)
    state["format_version"] = 99
    torch.save(state, tmp_path / "newer.pt")
    state["format_version"] = 1
    state["model"]["config"]["decoder_layers"] = 3  # the weights no longer fit the config
    state.pop("sha256")  # (an edited file without a content checksum: one with it is refused as damaged)
    torch.save(state, tmp_path / "mismatch.pt")
    cases = [
        (tmp_path / "missing.pt", "no such checkpoint file"),
        (tmp_path / "truncated.pt", "truncated checkpoint"),
        (tmp_path / "text.pt", "not a seq2seq_cli checkpoint"),
        (tmp_path / "newer.pt", "checkpoint format v99 is newer"),
        (tmp_path / "mismatch.pt", "the weights do not match the stored model config"),
        (f"{ckpt}:{tmp_path / 'missing.pt'}", "no such checkpoint file"),
    ]
    for path, message in cases:
        result = run(runner, str(path), input="a b\n", ok=False)
        assert result.exit_code == 1, path
        assert result.stderr.count("Error: ") == 1 and message in result.stderr, (path, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
