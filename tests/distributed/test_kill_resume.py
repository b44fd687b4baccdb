"""A 2-process run killed with SIGKILL (the launcher and both workers, as when a machine dies) and started again with
the same command repeats the uninterrupted run's updates.

torchrun starts each worker in a session of its own, so killing the launcher's process group would leave the
workers running: the test kills the three processes by id.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seq2seq_cli.checkpoint import load_checkpoint
from tests.conftest import REPO
from tests.distributed.conftest import REFERENCE_UPDATES, env, run, train_command
from tests.train_fixtures import losses_by_update, read_log


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "zombie"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
@pytest.mark.slow  # two 2-process jobs
def test_sigkilled_two_process_run_resumes_exactly(ddp_data, ddp_reference, tmp_path):
    save = tmp_path / "ck"
    args = train_command(ddp_data, save, "--max-update", REFERENCE_UPDATES, "--distributed-world-size", 2)
    job = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while not list(save.glob("checkpoint_*_8.pt")):
            assert job.poll() is None, job.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint at update 8"
            time.sleep(0.002)
        workers = _children(job.pid)
        for pid in [job.pid, *workers]:  # the launcher first: it must not see its workers die
            os.kill(pid, signal.SIGKILL)
    finally:
        job.wait(timeout=60)
        for pid in workers:  # reaped by init once the launcher is gone; wait until they are
            while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
                time.sleep(0.01)
    assert job.returncode == -signal.SIGKILL and len(workers) == 2
    resumed_from = load_checkpoint(save / "checkpoint_last.pt")["train"]["num_updates"]
    # checkpoint_last.pt: update 8's (mid-epoch 3), a later one, or the epoch end at 6 if the kill came before
    # update 8's file got that name too
    assert 6 <= resumed_from < REFERENCE_UPDATES, "the run finished before it was killed"
    assert resumed_from % 3 == 0 or resumed_from % 4 == 0
    skip = len(read_log(save))

    restart = run(args)
    assert restart.returncode == 0, restart.stderr
    assert f"resumed from {save / 'checkpoint_last.pt'}" in restart.stderr
    resumed = losses_by_update(read_log(save)[skip:])
    assert sorted(resumed) == list(range(resumed_from + 1, REFERENCE_UPDATES + 1))
    for n, loss in resumed.items():
        assert loss == pytest.approx(ddp_reference["losses"][n], abs=1e-6), n
    final = [load_checkpoint(d / "checkpoint_last.pt")["model"]["state_dict"] for d in (save, ddp_reference["save"])]
    for name, tensor in final[0].items():
        assert (tensor - final[1][name]).abs().max() <= 1e-6, name
