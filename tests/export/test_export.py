"""`seq2seq export --format ctranslate2` end to end, on tiny models trained by `seq2seq train` in the test.

Four models cover the issue's grid (post-LN / pre-LN x shared / separate embeddings), with gelu and learned
positions on two of them. Each exports with its parity check on the copy task's test split.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import invoke
from tests.train_fixtures import make_data_dir, ok, train

MAX_POS = 32  # a low length limit keeps the decoding of a poor hypothesis short
VARIANTS = {
    "post-ln-shared": ["--share-all-embeddings"],
    "post-ln-separate": ["--activation-fn", "gelu", "--model-opt", "decoder_learned_pos=true"],
    "pre-ln-shared": ["--encoder-normalize-before", "--decoder-normalize-before", "--share-all-embeddings",
                      "--model-opt", "encoder_learned_pos=true"],
    "pre-ln-separate": ["--encoder-normalize-before", "--decoder-normalize-before",
                        "--share-decoder-input-output-embed"],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def data(root) -> Path:
    return make_data_dir(root)


@pytest.fixture(scope="module")
def checkpoints(root, data) -> dict[str, Path]:
    out = {}
    for name, flags in VARIANTS.items():
        # 150 small updates: enough that <pad> and <s> get little probability, as in any trained model (CTranslate2
        # renormalizes after masking them, we do not: an untrained model's beams can differ, see docs/export.md).
        ok(train(CliRunner(), data, root / name, "--max-update", 150, "--max-tokens", 128, "--disable-validation",
                 "--lr", 0.01, "--dropout", 0, "--no-epoch-checkpoints", "--max-source-positions", MAX_POS,
                 "--max-target-positions", MAX_POS, "--log-interval", 100, *flags))
        out[name] = root / name / "checkpoint_last.pt"
    return out


@pytest.fixture(scope="module")
def exported(root, checkpoints) -> dict[str, Path]:
    """Each checkpoint exported (float32) with its parity check on the test split."""
    out = {}
    for name, ckpt in checkpoints.items():
        result = ok(invoke(CliRunner(), ["export", "--path", ckpt, "--out", root / f"{name}-ct2",
                                         "--check-file", root / "raw" / "test.src"]))
        out[name] = root / f"{name}-ct2"
        (root / f"{name}.log").write_text(result.stderr, encoding="utf-8")
    return out


def parity_of(folder: Path) -> dict[str, dict]:
    meta = json.loads((folder / "seq2seq_export.json").read_text(encoding="utf-8"))
    return {r["strategy"]: r for r in meta["parity"]}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_exports_with_parity(name, root, exported) -> None:
    folder = exported[name]
    assert {"model.bin", "config.json", "seq2seq_export.json", "tokenizer.src.json", "tokenizer.tgt.json"} <= {
        p.name for p in folder.iterdir()}
    parity = parity_of(folder)
    assert set(parity) == {"greedy", "beam"}
    for report in parity.values():
        assert report["lines"] == 20
        assert report["identical"] + report["near_ties"] + report["renormalization"] + report["length_limited"] == 20
        assert report["identical"] >= 18  # near-ties are rare: the check compares real outputs
    log = (root / f"{name}.log").read_text(encoding="utf-8")
    assert "parity greedy: " in log and "parity beam: " in log
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]  # no temporary folder left behind


def test_decoding_starts_from_our_bos_and_appends_our_eos(exported) -> None:
    config = json.loads((exported["post-ln-shared"] / "config.json").read_text(encoding="utf-8"))
    assert config["decoder_start_token"] == "<s>" and config["add_source_eos"] is True
    assert config["layer_norm_epsilon"] == pytest.approx(1e-5)
    vocab = json.loads((exported["post-ln-shared"] / "shared_vocabulary.json").read_text(encoding="utf-8"))
    assert vocab[:4] == ["<s>", "<pad>", "</s>", "<unk>"]  # our ids, in order


def test_a_wrong_position_offset_fails_the_check_and_writes_nothing(root, checkpoints, monkeypatch) -> None:
    # fairseq's tables start at padding_idx + 1: exporting a table shifted like that must be caught.
    import seq2seq_cli.export.converter as converter

    real = converter.sinusoid_table
    monkeypatch.setattr(converter, "sinusoid_table", lambda n, dim: real(n + 2, dim)[2:])
    out = root / "shifted"
    result = invoke(CliRunner(), ["export", "--path", checkpoints["post-ln-shared"], "--out", out,
                                  "--check-file", root / "raw" / "test.src"])
    assert result.exit_code == 1
    assert "parity check failed (greedy) at " in result.stderr and "test.src line 1 " in result.stderr
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not [p for p in root.iterdir() if p.name.startswith(".shifted")]


def test_int8_reports_agreement_and_bleu(root, checkpoints) -> None:
    out = root / "int8"
    result = ok(invoke(CliRunner(), ["export", "--path", checkpoints["pre-ln-separate"], "--out", out,
                                     "--quantization", "int8", "--check-file", root / "raw" / "test.src",
                                     "--check-ref", root / "raw" / "test.tgt", "--check-lines", 10]))
    assert "parity beam: " in result.stderr and "/10 identical" in result.stderr
    assert "int8: " in result.stderr and "beam outputs identical to float32 PyTorch; BLEU " in result.stderr
    meta = json.loads((out / "seq2seq_export.json").read_text(encoding="utf-8"))
    assert meta["quantization"] == "int8" and meta["quantized_agreement"]["lines"] == 10
    assert 0.0 <= meta["quantized_agreement"]["agreement"] <= 1.0 and meta["quantized_agreement"]["bleu_ours"] > 0
    assert not (out / "float32").exists()


def test_no_check_skips_and_says_so(root, checkpoints) -> None:
    result = ok(invoke(CliRunner(), ["export", "--path", checkpoints["post-ln-shared"], "--out", root / "unchecked",
                                     "--no-check"]))
    assert "--no-check" in result.stderr and "parity" not in result.stderr
    assert json.loads((root / "unchecked" / "seq2seq_export.json").read_text(encoding="utf-8"))["parity"] is None


def test_existing_out_needs_force(root, checkpoints, exported) -> None:
    out = root / "again"
    out.mkdir()
    (out / "old.txt").write_text("x", encoding="utf-8")
    args = ["export", "--path", checkpoints["post-ln-shared"], "--out", out, "--no-check"]
    result = invoke(CliRunner(), args)
    assert result.exit_code == 1 and f"--out {out} already exists; remove it or pass --force" in result.stderr
    ok(invoke(CliRunner(), args + ["--force"]))
    assert (out / "model.bin").is_file() and not (out / "old.txt").exists()


@pytest.mark.parametrize("args, message", [
    (["--check-lines", "0"], "--check-lines 0: must be at least 1"),
    (["--check-ref", "x.txt", "--no-check"], "--check-ref needs --check-file"),
    ([], "give --check-file FILE (source sentences, e.g. the test set) for the parity check, or --no-check"),
])
def test_bad_flags(root, checkpoints, args, message) -> None:
    result = invoke(CliRunner(), ["export", "--path", checkpoints["post-ln-shared"], "--out", root / "bad", *args])
    assert result.exit_code == 1 and message in result.stderr
    assert not (root / "bad").exists()


def test_check_ref_must_match_the_check_lines(root, checkpoints) -> None:
    refs = root / "short.ref"
    refs.write_text("a\nb\n", encoding="utf-8")
    result = invoke(CliRunner(), ["export", "--path", checkpoints["post-ln-shared"], "--out", root / "bad",
                                  "--check-file", root / "raw" / "test.src", "--check-ref", refs,
                                  "--quantization", "int8"])
    assert result.exit_code == 1
    assert f"--check-ref {refs}: 2 lines for the 20 checked lines" in result.stderr


def test_without_ctranslate2_says_how_to_install(root, checkpoints, exported, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # `import ctranslate2` now raises ImportError
    hint = "CTranslate2 is not installed; pip install 'seq2seq_cli[ct2]' (ctranslate2==4.8.5)"
    result = invoke(CliRunner(), ["export", "--path", checkpoints["post-ln-shared"], "--out", root / "none",
                                  "--no-check"])
    assert result.exit_code == 1 and hint in result.stderr and "Traceback" not in result.stderr
    result = invoke(CliRunner(), ["generate", "--path", exported["post-ln-shared"], "--device", "cpu"],
                    input="a b\n")
    assert result.exit_code == 1 and hint in result.stderr


def test_a_setting_ctranslate2_cannot_express_is_refused(root, checkpoints) -> None:
    from dataclasses import dataclass, field

    from seq2seq_cli.checkpoint import load_checkpoint, save_checkpoint
    from seq2seq_cli.models.transformer import TransformerConfig, TransformerModel
    from seq2seq_cli.registry import MODELS

    @dataclass(frozen=True)
    class AlibiConfig(TransformerConfig):
        alibi_slopes: bool = field(default=True, metadata={"help": "ALiBi attention biases"})

    class AlibiTransformer(TransformerModel):
        Config = AlibiConfig

    MODELS.register("transformer_alibi_test")(AlibiTransformer)
    try:
        state = load_checkpoint(checkpoints["post-ln-shared"])
        state["model"]["name"] = "transformer_alibi_test"
        save_checkpoint(state, root / "alibi.pt")
        result = invoke(CliRunner(), ["export", "--path", root / "alibi.pt", "--out", root / "alibi", "--no-check"])
    finally:
        del MODELS._entries["transformer_alibi_test"]
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert (f"{root / 'alibi.pt'}: model setting alibi_slopes=True has no CTranslate2 equivalent the exporter "
            "knows of; the model cannot be exported") in result.stderr
    assert not (root / "alibi").exists()


def test_quantizing_leaves_the_model_weights_alone(root, checkpoints) -> None:
    # CTranslate2 quantizes the spec's arrays in place: they must be copies, or the PyTorch side of the check
    # (and anything else holding the model) would decode with int8-rounded weights.
    import torch

    from seq2seq_cli.checkpoint import load_model
    from seq2seq_cli.export.converter import write_model

    loaded = load_model(checkpoints["pre-ln-separate"])
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    write_model(loaded, root / "int8-unit", "int8")
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
