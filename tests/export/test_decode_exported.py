"""`generate`, `interactive` and `seq2seq_cli.load` on an exported folder decode as on the checkpoint (CLI runs)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import invoke
from tests.decoding_fixtures import copy_sentences, tiny_checkpoint
from tests.train_fixtures import ok


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict[str, Path]:
    """The decoding tests' trained copy model (2+2 layers, width 32, shared embeddings), exported with its check."""
    tiny = tiny_checkpoint()
    root = tmp_path_factory.mktemp("decode")
    raw = tiny.raw
    ok(invoke(CliRunner(), ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--validpref",
                            raw / "valid", "--testpref", raw / "test", "--joined-dictionary", "--tokenizer-path",
                            tiny.tokenizer_json, "--destdir", root / "data-bin"]))
    ok(invoke(CliRunner(), ["export", "--path", tiny.checkpoint, "--out", root / "ct2", "--check-file",
                            raw / "test.src"]))
    source = root / "input.txt"
    source.write_text("\n".join(copy_sentences(16, 11) + ["", "x@@ y@@ a", "p"]) + "\n", encoding="utf-8")
    return {"ckpt": tiny.checkpoint, "dir": root / "ct2", "data": root / "data-bin", "input": source}


def run(path: Path, *args, command: str = "generate", input: str | None = None):
    return ok(invoke(CliRunner(), [command, "--path", path, "--device", "cpu", *args], input=input))


def jsonl(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_same_hypotheses(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert [h["token_ids"] for h in a["hypotheses"]] == [h["token_ids"] for h in b["hypotheses"]], a["source"]
        assert [h["text"] for h in a["hypotheses"]] == [h["text"] for h in b["hypotheses"]]
        for ha, hb in zip(a["hypotheses"], b["hypotheses"]):
            assert hb["score"] == pytest.approx(ha["score"], abs=1e-4)
            assert hb["positional_scores"] == pytest.approx(ha["positional_scores"], abs=1e-4)


@pytest.mark.parametrize("flags", [
    [],
    ["--beam", "4", "--nbest", "2"],
    ["--lenpen", "0.5", "--nbest", "2"],
    ["--lenpen", "2"],
    ["--strategy", "greedy"],
    ["--strategy", "greedy", "--max-len-b", "3"],  # the length limit: we force EOS, CTranslate2's token is cut
    ["--max-len-a", "1.5", "--max-len-b", "1", "--strategy", "greedy"],  # per-sentence limits in one batch
    ["--min-len", "4", "--strategy", "greedy"],  # beam: CTranslate2 renormalizes after blocking EOS (docs)
    ["--no-repeat-ngram-size", "2"],
    ["--unkpen", "inf"],
    ["--batch-size", "3", "--threads", "2"],
    ["--max-tokens", "20"],
], ids=lambda flags: " ".join(flags) or "defaults")
def test_generate_equals_the_checkpoint(model, flags) -> None:
    args = ["--input", model["input"], "--output-format", "jsonl", *flags]
    assert_same_hypotheses(jsonl(run(model["ckpt"], *args)), jsonl(run(model["dir"], *args)))


def test_plain_and_fairseq_output(model) -> None:
    for fmt in ("plain", "fairseq"):
        ours = run(model["ckpt"], "--input", model["input"], "--output-format", fmt, "--nbest", "2").stdout
        theirs = run(model["dir"], "--input", model["input"], "--output-format", fmt, "--nbest", "2").stdout
        if fmt == "plain":
            assert theirs == ours
            continue
        a, b = ours.splitlines(), theirs.splitlines()
        assert [line.split("\t")[0] for line in a] == [line.split("\t")[0] for line in b]
        for x, y in zip(a, b):
            if x[0] in "HD":  # tag, score (base 2), text
                tag, score, text = x.split("\t")
                assert y.split("\t")[0] == tag and y.split("\t")[2] == text
                assert float(y.split("\t")[1]) == pytest.approx(float(score), abs=1e-4)
            elif x[0] == "S":
                assert x == y


def test_interactive_and_the_python_api(model) -> None:
    import seq2seq_cli

    text = model["input"].read_text(encoding="utf-8")
    ours = run(model["ckpt"], command="interactive", input=text).stdout
    assert run(model["dir"], command="interactive", input=text).stdout == ours
    lines = text.splitlines()
    exported = seq2seq_cli.load(model["dir"])
    assert exported.translate(lines) == seq2seq_cli.load(model["ckpt"]).translate(lines)
    assert exported.state["export"]["quantization"] == "float32"


def test_data_dir_subset_and_score_reference(model) -> None:
    args = [model["data"], "--gen-subset", "test", "--output-format", "jsonl"]
    ours, theirs = run(model["ckpt"], *args), run(model["dir"], *args)
    assert_same_hypotheses(jsonl(ours), jsonl(theirs))
    bleu = [line for line in theirs.stderr.splitlines() if "BLEU" in line]
    assert bleu and bleu[-1].split("BLEU")[1] == [line for line in ours.stderr.splitlines()
                                                  if "BLEU" in line][-1].split("BLEU")[1]
    scored = [jsonl(run(path, *args, "--score-reference")) for path in (model["ckpt"], model["dir"])]
    assert_same_hypotheses(*scored)


def test_sampling(model) -> None:
    args = ["--input", model["input"], "--output-format", "jsonl", "--sampling"]
    first = jsonl(run(model["dir"], *args, "--beam", "3", "--nbest", "3", "--seed", "7"))
    assert first == jsonl(run(model["dir"], *args, "--beam", "3", "--nbest", "3", "--seed", "7"))
    assert all(len(r["hypotheses"]) == 3 for r in first)
    for r in first:  # n-best best first, by our score (length-normalized log-probability)
        scores = [h["score"] for h in r["hypotheses"]]
        assert scores == sorted(scores, reverse=True)
        for h in r["hypotheses"]:
            assert h["score"] == pytest.approx(sum(h["positional_scores"]) / len(h["positional_scores"]), abs=1e-5)
    # top-k 1 draws the argmax: greedy decoding of the checkpoint
    greedy = jsonl(run(model["ckpt"], "--input", model["input"], "--output-format", "jsonl", "--strategy", "greedy"))
    assert_same_hypotheses(greedy, jsonl(run(model["dir"], *args, "--beam", "2", "--sampling-topk", "1")))
    nucleus = jsonl(run(model["dir"], *args, "--sampling-topp", "0.3", "--seed", "1", "--temperature", "0.5"))
    assert len(nucleus) == len(first) and nucleus[-3]["hypotheses"][0]["token_ids"] == []  # the empty line


@pytest.mark.parametrize("flags, message", [
    (["--unkpen", "1"], "--unkpen 1.0: an exported CTranslate2 model can only forbid <unk> (--unkpen inf) or not (0)"),
    (["--temperature", "2"], "--temperature 2.0: with an exported CTranslate2 model the temperature applies to "
                             "sampling only"),
])
def test_options_ctranslate2_cannot_follow_are_refused(model, flags, message) -> None:
    result = invoke(CliRunner(), ["generate", "--path", model["dir"], "--device", "cpu", *flags], input="a b\n")
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_precision_ctranslate2_cannot_compute_is_refused(model) -> None:
    import ctranslate2

    if "bfloat16" in ctranslate2.get_supported_compute_types("cpu"):
        result = ok(invoke(CliRunner(), ["generate", "--path", model["dir"], "--device", "cpu", "--precision", "bf16"],
                           input="a b\n"))
        assert result.stdout.count("\n") == 1
    else:  # this CPU has no bf16 kernels in CTranslate2 (the development VMs)
        result = invoke(CliRunner(), ["generate", "--path", model["dir"], "--device", "cpu", "--precision", "bf16"],
                        input="a b\n")
        assert result.exit_code == 1
        assert "--precision bf16: CTranslate2 cannot compute in bfloat16 on this cpu (it can: " in result.stderr


def test_precision_int8_quantizes_a_float32_export_at_load(model) -> None:
    text = model["input"].read_text(encoding="utf-8")
    result = run(model["dir"], "--precision", "int8", input=text)
    assert result.stdout.count("\n") == text.count("\n")
    assert result.stdout.splitlines()[0] == run(model["ckpt"], input=text).stdout.splitlines()[0]  # a copy task


def test_prefix_size_is_refused(model) -> None:
    result = invoke(CliRunner(), ["generate", model["data"], "--path", model["dir"], "--device", "cpu",
                                  "--prefix-size", "1"])
    assert result.exit_code == 1
    assert "--prefix-size is not supported with an exported CTranslate2 model" in result.stderr


def test_devices_ctranslate2_lacks() -> None:
    import torch

    from seq2seq_cli.decoding.ct2_backend import ct2_device
    from seq2seq_cli.errors import DeviceError

    assert ct2_device(torch.device("cpu")) == ("cpu", 0)
    assert ct2_device(torch.device("cuda", 1)) == ("cuda", 1)
    with pytest.raises(DeviceError, match="CTranslate2 runs on cpu or cuda only; use --device cpu"):
        ct2_device(torch.device("mps"))
