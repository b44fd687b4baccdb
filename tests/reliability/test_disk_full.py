"""Disk full: ENOSPC while writing a checkpoint or a DATA_DIR. The previous checkpoint / data stays byte for byte
intact, no temp file or staging folder is left, and one line says what happened (exit 1)."""
from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from seq2seq_cli.data import indexed
from seq2seq_cli.data.datadir import DataDir
from tests.conftest import invoke
from tests.reliability.helpers import FullDisk, assert_clean_error
from tests.train_fixtures import data_dir, make_data_dir, ok, train  # noqa: F401


def fill_disk_for_checkpoints(monkeypatch, budget: int = 4096) -> None:
    """Checkpoint temp files get ENOSPC after `budget` bytes; every other file (train.log, config.json) is fine."""
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        return FullDisk(file, budget) if name.startswith(".checkpoint") else file

    monkeypatch.setattr(os, "fdopen", fdopen)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("extra, first, previous", [
    ([], "checkpoint1.pt", "no partial file was left"),  # a new file name (epoch 1 ends at update 6)
    (["--no-epoch-checkpoints", "--disable-validation"], "checkpoint_last.pt", "the previous file is intact"),
])
def test_enospc_while_saving_a_checkpoint(runner, data_dir, tmp_path, monkeypatch, extra, first, previous):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", 4, *extra))
    before = snapshot(save)
    fill_disk_for_checkpoints(monkeypatch)
    result = train(runner, data_dir, save, "--max-update", 8, *extra)
    assert_clean_error(result, f"{save / first}: cannot write the checkpoint (No space left on device)", previous,
                       "free disk space (or choose another folder) and run again")
    after = snapshot(save)
    for name, data in before.items():
        if name.endswith(".pt"):
            assert after[name] == data, f"{name} changed"
    assert not [n for n in os.listdir(save) if n.endswith(".tmp")]
    monkeypatch.undo()  # space freed: the same command resumes from the intact checkpoint
    result = ok(train(runner, data_dir, save, "--max-update", 8, *extra))
    assert f"resumed from {save / 'checkpoint_last.pt'}" in result.stderr


def fill_disk_for_data(monkeypatch, budget: int = 64) -> None:
    """The .bin files preprocess writes get ENOSPC after `budget` bytes."""

    def full_open(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        return FullDisk(file, budget) if "w" in mode else file

    monkeypatch.setattr(indexed, "open", full_open, raising=False)


@pytest.mark.parametrize("existing", [True, False])
def test_enospc_while_writing_a_data_dir(runner, tmp_path, monkeypatch, existing):
    dest = make_data_dir(tmp_path) if existing else tmp_path / "data"
    if not existing:
        make_data_dir(tmp_path / "other")  # only to get the raw text
    raw = tmp_path / ("raw" if existing else "other/raw")
    before = snapshot(dest) if existing else None
    fill_disk_for_data(monkeypatch)
    result = invoke(runner, ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--validpref",
                             raw / "valid", "--destdir", dest, "--joined-dictionary", "--tokenizer", "none",
                             "--force"])
    assert_clean_error(result, f"--destdir {dest}: cannot write the DATA_DIR (No space left on device)",
                       "nothing was changed there (earlier data, if any, is intact)", "free disk space")
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")], "staging folder left"
    if existing:
        assert snapshot(dest) == before
        DataDir(dest).verify()
    else:
        assert not dest.exists()
