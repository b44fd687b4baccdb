"""A real 2-node job on one machine: two torchrun agents (--nnodes 2 --nproc_per_node 1) meet through a c10d
rendezvous on 127.0.0.1 and train with gloo, as two machines would (each machine runs the same command)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.distributed.conftest import TIMEOUT, env, free_port, train_command
from tests.train_fixtures import losses_by_update, read_log


@pytest.mark.slow  # two torchrun agents and their workers
def test_two_nodes_meet_by_c10d_rendezvous_and_train_like_two_local_processes(ddp_data, ddp_reference, tmp_path):
    port, save, updates = free_port(), tmp_path / "ck", 6
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-nodes",
                "--max-restarts", "0"]
    command = [*torchrun, *train_command(ddp_data, save, "--max-update", updates)]
    nodes = [subprocess.Popen(command, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=TIMEOUT))
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.wait()
    assert [node.returncode for node in nodes] == [0, 0], [err for _, err in outputs]
    errs = [err for _, err in outputs]
    assert sum("joined a process group of 2 processes (backend gloo); this is rank 0" in e for e in errs) == 1
    assert sum(e.count(f"done training: max_update {updates}") for e in errs) == 1  # only rank 0 logs
    # the same job as two processes on one node: rank r takes batches r, r + 2, ... wherever it runs
    losses = losses_by_update(read_log(save))
    assert sorted(losses) == list(range(1, updates + 1))
    for n, loss in losses.items():
        assert loss == pytest.approx(ddp_reference["losses"][n], abs=1e-6), n
