"""Crash anywhere: SIGKILL `seq2seq train` at random moments (a third of them while a checkpoint is being written),
restart it each time, and check that nothing is ever lost or half-written and that the final model is bit for bit
the one of an uninterrupted run.

The runs are forked from a server that imported torch once (forkserver.py), so a kill-and-restart costs
milliseconds; each child runs the real `seq2seq train` command line.
"""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint
from tests.train_fixtures import FAST, TINY_MODEL, data_dir  # noqa: F401

KILLS = 24
MAX_UPDATE = 150
# Save every 2 updates and keep 2 update checkpoints, so kills also land in links, pruning and epoch-end saves.
RUN = [*TINY_MODEL, *FAST, "--threads", "1", "--max-update", str(MAX_UPDATE), "--save-interval-updates", "2",
       "--keep-interval-updates", "2", "--log-interval", "1"]


def _temp_files(save: Path) -> list[str]:
    try:
        return [n for n in os.listdir(save) if n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # the server reaps its children at once, so an ended run is gone
    except ProcessLookupError:
        return False
    return True


def _kill_when(pid: int, save: Path, mode: str, rng: random.Random, deadline: float) -> bool:
    """SIGKILL `pid` at a moment chosen by `mode`; returns whether a checkpoint temp file existed at that moment.

    The moments count this run's own events (checkpoint writes begun, updates logged), not seconds, so that each
    restart makes some progress however loaded the machine is.
    """
    if mode == "during-write":  # busy-poll the folder; kill in the 1st or 2nd write of this run
        target, writes, writing = rng.randint(1, 2), 0, False
        while writes < target and _alive(pid) and time.monotonic() < deadline:
            now = bool(_temp_files(save))
            writes += now and not writing
            writing = now
    else:  # "mid-training": after 1-5 updates of this run, plus up to 2 ms; "anywhere": at a random time up to
        # 1 s after start (start-up and resuming included) but before its 6th update, so that work remains
        start, target = _size(save / "train.log"), rng.randint(1, 5) if mode == "mid-training" else 6
        until = time.monotonic() + (rng.uniform(0, 1.0) if mode == "anywhere" else 1e9)
        while _alive(pid) and time.monotonic() < min(deadline, until):
            try:
                text = (save / "train.log").read_bytes()[start:]
            except FileNotFoundError:
                text = b""
            if text.count(b'"train_inner"') >= target:
                break
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.002))
    writing = bool(_temp_files(save))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return writing


def _every_checkpoint_is_valid(save: Path) -> int:
    """Load each checkpoint file (content checksum included); returns checkpoint_last.pt's update count."""
    for path in save.glob("checkpoint*.pt"):
        load_checkpoint(path)  # raises CheckpointError for a half-written or damaged file
    last = save / "checkpoint_last.pt"
    return load_checkpoint(last)["train"]["num_updates"] if last.exists() else 0


def _same_tensors(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(data_dir, tmp_path, fork_server):  # noqa: F811
    server, rng = fork_server, random.Random(5)
    reference = tmp_path / "reference"
    server.start(["train", data_dir, "--save-dir", reference, *RUN], tmp_path / "reference.log")
    assert server.wait() == 0, (tmp_path / "reference.log").read_text()

    save = tmp_path / "crashed"
    kills, during_write, progress = 0, 0, [0]
    deadline = time.monotonic() + 600  # a guard against a hang, not a speed test
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills in the time budget"
        mode = ("during-write", "mid-training", "anywhere")[kills % 3]
        log = tmp_path / f"run{kills}.log"
        pid = server.start(["train", data_dir, "--save-dir", save, *RUN], log)
        writing = _kill_when(pid, save, mode, rng, deadline)
        code = server.wait()
        if code == 0:  # the run finished before the kill: too little work left for the remaining kills
            pytest.fail(f"the run finished after {kills} kills; raise MAX_UPDATE")
        assert code == -signal.SIGKILL, log.read_text()
        kills += 1
        during_write += writing
        done = _every_checkpoint_is_valid(save)
        assert done >= progress[-1], f"kill {kills}: checkpoint_last.pt went back from {progress[-1]} to {done}"
        progress.append(done)
    log = tmp_path / "final.log"
    server.start(["train", data_dir, "--save-dir", save, *RUN], log)
    assert server.wait() == 0, log.read_text()
    assert f"resumed from {save / 'checkpoint_last.pt'}" in log.read_text()

    assert during_write >= KILLS // 6, f"only {during_write} kills landed while a checkpoint was being written"
    assert progress[-1] > 0 and len(set(progress)) > KILLS // 3, progress  # the kills were spread over the run
    assert not _temp_files(save), "a restart must remove the temp files of killed writes"
    final, expected = (load_checkpoint(d / "checkpoint_last.pt") for d in (save, reference))
    assert final["train"]["num_updates"] == expected["train"]["num_updates"] == MAX_UPDATE
    assert _same_tensors(final["model"]["state_dict"], expected["model"]["state_dict"])
    assert _same_tensors(final["train"]["optimizer"], expected["train"]["optimizer"])
    assert final["train"]["best"] == expected["train"]["best"]
    print(f"crash harness: {kills} kills ({during_write} during a checkpoint write), checkpoint_last.pt at "
          f"updates {progress[1:]}")
