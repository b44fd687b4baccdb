"""seq2seq_cli.checkpoint: safe loading, atomic writes, migrations, unwrapping, model rebuilding."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from seq2seq_cli import checkpoint as ckpt
from seq2seq_cli.errors import CheckpointError
from seq2seq_cli.models.base import EncoderOut, Seq2SeqModel
from seq2seq_cli.registry import MODELS


class TinyModel(Seq2SeqModel):
    """A stand-in model so these tests do not depend on the Transformer."""

    @dataclasses.dataclass(frozen=True)
    class Config:
        dim: int = 4

    def __init__(self, cfg, src_vocab: int, tgt_vocab: int, pad: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(src_vocab, cfg.dim, padding_idx=pad)
        self.out = nn.Linear(cfg.dim, tgt_vocab)
        self.pad = pad

    @classmethod
    def build(cls, cfg, src_vocab_size, tgt_vocab_size, pad_id):
        return cls(cfg, src_vocab_size, tgt_vocab_size, pad_id)

    def encode(self, src_tokens):
        return EncoderOut(self.emb(src_tokens), src_tokens.eq(self.pad))

    def decode(self, tgt_in, enc, incremental_state=None):
        return self.out(self.emb(tgt_in) + enc.out.mean(1, keepdim=True))


if "test_tiny" not in MODELS._entries:
    MODELS.register("test_tiny")(TinyModel)


def _word_tokenizer_json() -> str:
    from tokenizers import Tokenizer as HF
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    from seq2seq_cli.tokenization.base import Tokenizer

    vocab = {w: i for i, w in enumerate(["<s>", "<pad>", "</s>", "<unk>", "a", "b", "c"])}
    hf = HF(WordLevel(vocab, unk_token="<unk>"))
    hf.pre_tokenizer = WhitespaceSplit()
    return Tokenizer(hf).to_json()


def _state(model: nn.Module | None = None, version: int = ckpt.FORMAT_VERSION) -> dict:
    if model is None:
        model = TinyModel(TinyModel.Config(), 7, 7, 1)
    tok = _word_tokenizer_json()
    return {"format_version": version, "tool_version": "0.1.0",
            "model": {"name": "test_tiny", "arch": None, "config": {"dim": 4},
                      "state_dict": ckpt.unwrap_model(model).state_dict()},
            "tokenizers": {"src": tok, "tgt": tok}, "langs": {"src": "x", "tgt": "y"},
            "train": {"num_updates": 3, "epoch": 1, "optimizer": {"state": {}}, "rng": {"python": (3, (1, 2), None)}}}


def test_round_trip_preserves_tensors_and_primitives(tmp_path: Path) -> None:
    state = _state()
    ckpt.save_checkpoint(state, tmp_path / "c.pt")
    back = ckpt.load_checkpoint(tmp_path / "c.pt")
    assert back["train"] == state["train"]
    for key, value in state["model"]["state_dict"].items():
        assert torch.equal(back["model"]["state_dict"][key], value)
    # the file is readable by plain torch.load with weights_only=True: no Python objects inside
    assert torch.load(tmp_path / "c.pt", weights_only=True)["langs"] == {"src": "x", "tgt": "y"}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp files left


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    ckpt.save_checkpoint(_state(), path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        ckpt.save_checkpoint({"bad": lambda: 0}, path)  # lambdas cannot be pickled: torch.save fails midway
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_copy_checkpoint_is_independent_of_later_overwrites(tmp_path: Path) -> None:
    first = _state()
    ckpt.save_checkpoint(first, tmp_path / "checkpoint_1_3.pt")
    ckpt.copy_checkpoint(tmp_path / "checkpoint_1_3.pt", tmp_path / "checkpoint_last.pt")
    second = _state()
    second["train"]["num_updates"] = 99
    ckpt.save_checkpoint(second, tmp_path / "checkpoint_last.pt")
    assert ckpt.load_checkpoint(tmp_path / "checkpoint_1_3.pt")["train"]["num_updates"] == 3
    assert ckpt.load_checkpoint(tmp_path / "checkpoint_last.pt")["train"]["num_updates"] == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_1_3.pt", "checkpoint_last.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such checkpoint file"),
    (lambda p: p.write_bytes(b""), r"not a seq2seq_cli checkpoint \(empty file\)"),
    (lambda p: p.write_text("hello world"), r"not a seq2seq_cli checkpoint \(not a torch zip archive\)"),
    (lambda p: torch.save({"x": _Evil()}, p), "refusing to load: the file holds Python objects"),
    (lambda p: torch.save({"weights": torch.ones(2)}, p), r"not a seq2seq_cli checkpoint \(no format_version"),
    (lambda p: torch.save([1, 2], p), r"not a seq2seq_cli checkpoint \(no format_version"),
    (lambda p: torch.save(_state(version=ckpt.FORMAT_VERSION + 1), p),
     f"format v{ckpt.FORMAT_VERSION + 1} is newer than this seq2seq_cli .*; upgrade seq2seq_cli"),
])
def test_bad_files_raise_checkpoint_error(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "c.pt"
    make(path)
    with pytest.raises(CheckpointError, match=message):
        ckpt.load_checkpoint(path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    ckpt.save_checkpoint(_state(), tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"t\.pt: truncated checkpoint"):
        ckpt.load_checkpoint(tmp_path / "t.pt")


def test_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a folder"):
        ckpt.load_checkpoint(tmp_path)


def test_migrations_apply_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def v1_to_v2(state):
        calls.append(1)
        state["langs"]["renamed"] = True
        return state

    def v2_to_v3(state):
        calls.append(2)
        assert state["format_version"] == 2  # the loader stamps each intermediate version
        return state

    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 3)
    monkeypatch.setattr(ckpt, "MIGRATIONS", {2: v2_to_v3, 1: v1_to_v2})
    torch.save(_state(version=1), tmp_path / "old.pt")
    state = ckpt.load_checkpoint(tmp_path / "old.pt")
    assert calls == [1, 2] and state["format_version"] == 3 and state["langs"]["renamed"]


def test_missing_migration_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 2)
    monkeypatch.setattr(ckpt, "MIGRATIONS", {})
    torch.save(_state(version=1), tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="no migration from checkpoint format v1"):
        ckpt.load_checkpoint(tmp_path / "old.pt")


def test_unwrap_model_strips_compile_wrapper() -> None:
    model = TinyModel(TinyModel.Config(), 7, 7, 1)
    compiled = torch.compile(model)
    assert any(k.startswith("_orig_mod.") for k in compiled.state_dict())
    assert ckpt.unwrap_model(compiled) is model
    assert ckpt.unwrap_model(model) is model


def test_unwrap_model_strips_ddp(tmp_path: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model = TinyModel(TinyModel.Config(), 7, 7, 1)
        wrapped = torch.compile(nn.parallel.DistributedDataParallel(model))
        assert ckpt.unwrap_model(wrapped) is model
    finally:
        dist.destroy_process_group()


def test_load_model_rebuilds_model_and_tokenizers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyModel(TinyModel.Config(), 7, 7, 1)
    ckpt.save_checkpoint(_state(torch.compile(model)), tmp_path / "c.pt")
    loaded = ckpt.load_model(tmp_path / "c.pt", "cpu")
    assert not loaded.model.training and loaded.model_name == "test_tiny"
    assert loaded.model_config == TinyModel.Config(dim=4)
    assert loaded.src_tokenizer.encode_batch(["a c"]) == [[4, 6]] and loaded.tgt_tokenizer.pad_id == 1
    src = torch.tensor([[4, 5, 2]])
    assert torch.equal(loaded.model(src, src), model.eval()(src, src))
    # inference state keeps metadata, drops weights and optimizer moments
    assert "state_dict" not in loaded.state["model"] and "optimizer" not in loaded.state["train"]
    assert loaded.state["train"]["num_updates"] == 3


def test_load_model_with_unknown_model_name(tmp_path: Path) -> None:
    state = _state()
    state["model"]["name"] = "no_such_model"
    ckpt.save_checkpoint(state, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="needs model 'no_such_model'.*--user-dir"):
        ckpt.load_model(tmp_path / "c.pt")


def test_load_model_with_mismatched_weights(tmp_path: Path) -> None:
    state = _state()
    state["model"]["config"] = {"dim": 8}
    ckpt.save_checkpoint(state, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="weights do not match the stored model config"):
        ckpt.load_model(tmp_path / "c.pt")


def test_load_model_with_unknown_config_field(tmp_path: Path) -> None:
    state = _state()
    state["model"]["config"] = {"dim": 4, "warp_drive": 1}
    ckpt.save_checkpoint(state, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="unknown field.*warp_drive"):
        ckpt.load_model(tmp_path / "c.pt")
