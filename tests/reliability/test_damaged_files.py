"""Damaged files: a truncated or bit-flipped .bin, .idx, meta.json, tokenizer.json or checkpoint is reported, with
the file's name and what to do, by every command that reads it; and single-bit flips anywhere in a file are either
refused or provably harmless (the content read is the original)."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint
from seq2seq_cli.data.datadir import META_DIGEST, DataDir
from seq2seq_cli.errors import Seq2SeqError
from seq2seq_cli.tokenization.base import Tokenizer
from tests.conftest import invoke
from tests.reliability.helpers import assert_clean_error, checkpoint_command, flip_bit, truncate

DAMAGES = {"truncated": truncate, "bit-flipped": flip_bit}
DATA_ADVICE = "re-run seq2seq preprocess"
CHECKPOINT_ADVICE = "use another checkpoint"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------------------------ DATA_DIR files


def _data_command(command: str, data: Path, ckpt: Path, tmp_path: Path) -> list:
    if command == "train":
        return ["train", data, "--save-dir", tmp_path / "new", "--device", "cpu", "--no-progress"]
    return ["generate", data, "--path", ckpt, "--gen-subset", "test", "--device", "cpu"]


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command, name", [
    ("train", "train.src.bin"), ("train", "train.tgt.idx"), ("train", "meta.json"), ("train", "tokenizer.json"),
    ("generate", "test.src.bin"), ("generate", "test.tgt.idx"), ("generate", "meta.json"),
    ("generate", "tokenizer.json"),
])
def test_a_damaged_data_dir_file_is_named_by_every_command_that_reads_it(runner, trained, tmp_path, command, name,
                                                                          damage):
    data, save = trained
    copy = _copy(data, tmp_path / "data")
    DAMAGES[damage](copy / name)
    result = invoke(runner, _data_command(command, copy, save / "checkpoint_last.pt", tmp_path))
    assert_clean_error(result, f"{copy / name}: ", DATA_ADVICE)
    assert result.stdout == ""


# ------------------------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", ["generate", "interactive", "average-checkpoints", "train (resume)",
                                     "train --restore-file", "train --finetune-from-model"])
def test_a_damaged_checkpoint_is_named_by_every_command_that_reads_it(runner, trained, tmp_path, command, damage):
    save = _copy(trained[1], tmp_path / "ck")
    path = save / "checkpoint_last.pt"
    before = {p.name: p.read_bytes() for p in save.iterdir() if p.name != path.name and p.suffix == ".pt"}
    DAMAGES[damage](path)
    args, stdin = checkpoint_command(command, path, (trained[0], save), tmp_path)
    result = invoke(runner, args, input=stdin)
    what = "truncated checkpoint" if damage == "truncated" else "damaged checkpoint"
    assert_clean_error(result, f"{path}: {what}", CHECKPOINT_ADVICE)
    assert result.stdout == "" and not (tmp_path / "avg.pt").exists()
    assert {n: (save / n).read_bytes() for n in before} == before  # the other checkpoints are untouched


# ------------------------------------------------------------------------------------------------ preprocess inputs


def _flip_in_vocabulary(path: Path) -> None:
    """Flip a bit of a vocabulary entry: the file stays valid JSON, only a token changes ("b" becomes "c")."""
    flip_bit(path, path.read_bytes().index(b'"b":', path.read_bytes().index(b'"vocab"')) + 1, bit=0)


@pytest.mark.parametrize("damage, what", [("truncated", "not a valid tokenizer.json"),
                                          ("bit-flipped", "not a valid tokenizer.json"),
                                          ("vocabulary-flipped", "damaged tokenizer.json (its content does not match "
                                                                 "the sha256 it carries")])
@pytest.mark.parametrize("flag", ["--tokenizer-path", "--srcdict"])
def test_preprocess_names_a_damaged_tokenizer_file(runner, trained, tmp_path, flag, damage, what):
    data = trained[0]
    tok = tmp_path / "tokenizer.json"
    shutil.copyfile(data / "tokenizer.json", tok)
    {**DAMAGES, "vocabulary-flipped": _flip_in_vocabulary}[damage](tok)
    raw = data.parent / "raw"
    result = invoke(runner, ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--destdir",
                             tmp_path / "out", flag, tok])
    assert_clean_error(result, f"{flag} {tok}: {what}")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ every bit


FLIPS = 120


def _flips(path: Path, rng: random.Random):
    data = path.read_bytes()
    for _ in range(FLIPS):
        damaged = bytearray(data)
        damaged[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        yield
    path.write_bytes(data)


def test_single_bit_flips_in_a_checkpoint_are_refused_or_harmless(trained, tmp_path):
    path = tmp_path / "checkpoint.pt"
    shutil.copyfile(trained[1] / "checkpoint_last.pt", path)
    original = load_checkpoint(path)
    refused = 0
    for _ in _flips(path, random.Random(1)):
        try:
            state = load_checkpoint(path)
        except Seq2SeqError:
            refused += 1
            continue
        # loaded: the flip hit zip bookkeeping that torch ignores; every value must be the original one
        for key, tensor in original["model"]["state_dict"].items():
            assert torch.equal(state["model"]["state_dict"][key], tensor)
        assert state["train"]["num_updates"] == original["train"]["num_updates"]
    assert refused > FLIPS // 2
    print(f"checkpoint: {refused} of {FLIPS} single-bit flips refused, the rest harmless")


@pytest.mark.parametrize("name", ["train.src.bin", "train.src.idx", "meta.json", "tokenizer.json"])
def test_single_bit_flips_in_data_dir_files_are_refused_or_harmless(trained, tmp_path, name):
    copy = _copy(trained[0], tmp_path / "data")
    original_meta = json.loads((copy / "meta.json").read_text())
    original_vocab = Tokenizer.from_json((copy / "tokenizer.json").read_text()).hf.get_vocab()
    refused = 0
    for _ in _flips(copy / name, random.Random(2)):
        try:
            data = DataDir(copy)
            data.verify()
            vocab = data.tokenizer("src").hf.get_vocab()
        except Seq2SeqError:
            refused += 1
            continue
        assert name == "meta.json", f"a flip in {name} went unnoticed"
        # read fine: only the name of the checksum key itself can have changed; the content is the original
        assert {k: v for k, v in data.meta.items() if k in original_meta} == \
            {k: v for k, v in original_meta.items() if k != META_DIGEST} and vocab == original_vocab
    assert refused >= FLIPS - 2
    print(f"{name}: {refused} of {FLIPS} single-bit flips refused, the rest harmless")
