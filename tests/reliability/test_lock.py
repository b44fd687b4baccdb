"""One writer per --save-dir: a second `seq2seq train` is refused while the first runs, and a SIGKILLed first run
leaves no stale lock."""
from __future__ import annotations

import os
import signal
import time

import pytest

from seq2seq_cli.errors import TrainingError
from seq2seq_cli.training.lock import LOCK_FILE, save_dir_lock
from tests.reliability.helpers import assert_clean_error
from tests.train_fixtures import FAST, TINY_MODEL, data_dir, ok, train  # noqa: F401


def test_the_lock_excludes_a_second_holder_and_is_released(tmp_path):
    save = tmp_path / "ck"
    with save_dir_lock(save):
        assert f"pid {os.getpid()} on " in (save / LOCK_FILE).read_text()
        with pytest.raises(TrainingError, match=f"--save-dir {save} is in use by another seq2seq train "
                                                f"\\(pid {os.getpid()} on .*\\); wait for it to finish"):
            with save_dir_lock(save):
                pass
    with save_dir_lock(save):  # released on exit
        pass


def test_an_unwritable_save_dir_is_one_clear_error(runner, data_dir, tmp_path):  # noqa: F811
    (tmp_path / "file").write_text("not a folder")
    assert_clean_error(train(runner, data_dir, tmp_path / "file" / "ck"), f"--save-dir {tmp_path / 'file' / 'ck'}: "
                       "cannot write there (Not a directory); choose another --save-dir")


def test_temp_files_of_a_killed_write_are_removed_by_the_next_holder(tmp_path):
    save = tmp_path / "ck"
    save.mkdir()
    for name in (".checkpoint_last.pt.abc123.tmp", ".config.json.xyz.tmp"):
        (save / name).write_bytes(b"half")
    (save / "notes.tmp").write_text("not ours")
    with save_dir_lock(save):
        assert sorted(p.name for p in save.iterdir()) == [LOCK_FILE, "notes.tmp"]


def test_a_second_train_is_refused_while_the_first_runs_and_a_sigkill_frees_the_folder(runner, data_dir, tmp_path,
                                                                                      fork_server):
    save, server = tmp_path / "ck", fork_server
    pid = server.start(["train", data_dir, "--save-dir", save, *TINY_MODEL, *FAST, "--threads", 1,
                        "--max-update", 1_000_000, "--log-interval", 1], tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while not (save / "train.log").exists() or not (save / "train.log").read_text():
        assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
        time.sleep(0.01)
    assert f"pid {pid} on " in (save / LOCK_FILE).read_text()
    second = train(runner, data_dir, save, "--max-update", 3)
    assert_clean_error(second, f"--save-dir {save} is in use by another seq2seq train (pid {pid} on ",
                       "wait for it to finish, or choose another --save-dir")
    os.kill(pid, signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL
    result = ok(train(runner, data_dir, save, "--max-update", 3))  # the kernel dropped the lock with the process
    assert f"pid {os.getpid()} on " in (save / LOCK_FILE).read_text()
    assert "done training" in result.stderr
