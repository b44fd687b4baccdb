"""Shared by the distributed tests: one 2-process training run (the reference), and subprocess helpers.

Every job here is real: `python -m seq2seq_cli train ... --distributed-world-size 2` (which runs torch's elastic
launcher) or `python -m torch.distributed.run` (torchrun) itself, with gloo on the CPU and one thread a process.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.train_fixtures import FAST, TINY_MODEL, losses_by_update, make_data_dir, read_log

# 200 pairs in 6 batches: with 2 ranks an epoch is 3 updates. Dropout 0: one process with --update-freq 2
# then computes exactly what two ranks compute (with dropout on, each rank would draw its own masks).
RUN = [*TINY_MODEL, *FAST, "--threads", "1", "--dropout", "0", "--log-interval", "1",
       "--save-interval-updates", "4"]
REFERENCE_UPDATES = 60
TIMEOUT = 240


def env() -> dict[str, str]:
    """The workers' environment: one OpenMP thread each (2 cores shared by the whole test run)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def train_command(data: Path, save: Path, *extra: Any) -> list[str]:
    """`seq2seq train` as torchrun's workers run it: the module, the reference flags, then `extra`."""
    return ["-m", "seq2seq_cli", "train", str(data), "--save-dir", str(save), *RUN, *[str(e) for e in extra]]


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run `python ARGS` from the repository root; returns the finished process (text output captured)."""
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=TIMEOUT, **kwargs)


def free_port() -> int:
    """A TCP port nobody listens on right now (for a rendezvous endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ddp_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("ddp-copy"))


@pytest.fixture(scope="session")
def ddp_reference(ddp_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted `--distributed-world-size 2` run of 60 updates: its save dir, losses and stderr."""
    save = tmp_path_factory.mktemp("ddp-reference") / "ck"
    done = run(train_command(ddp_data, save, "--max-update", REFERENCE_UPDATES, "--distributed-world-size", 2))
    assert done.returncode == 0, done.stderr
    return {"save": save, "losses": losses_by_update(read_log(save)), "stderr": done.stderr}
