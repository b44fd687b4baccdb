"""torchrun's environment, the backend choice, and how `--distributed-world-size` builds the launch."""
from __future__ import annotations

import re

import pytest
import torch
import torch.distributed as dist

from seq2seq_cli import distributed
from seq2seq_cli.distributed import Placement
from seq2seq_cli.errors import ConfigError
from tests.distributed.conftest import run, train_command


def _error(fn, *args) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return str(info.value)


def test_placement_comes_from_torchruns_environment():
    assert distributed.placement({}) == Placement(0, 1, 0, 1)
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert distributed.placement(env) == Placement(3, 4, 1, 2) and distributed.placement(env).distributed
    assert _error(distributed.placement, {**env, "RANK": "x"}) == (
        "torchrun's environment is not integers (RANK='x', WORLD_SIZE='4', LOCAL_RANK='1', LOCAL_WORLD_SIZE='2'); "
        "start the job with torchrun")
    assert _error(distributed.placement, {**env, "RANK": "4"}) == (
        "inconsistent torchrun environment: RANK=4 WORLD_SIZE=4 LOCAL_RANK=1 LOCAL_WORLD_SIZE=2; start the job with "
        "torchrun")


def test_backend_is_nccl_on_cuda_and_gloo_elsewhere(monkeypatch):
    assert distributed.default_backend(torch.device("cuda", 0)) == "nccl"
    assert distributed.default_backend(torch.device("cpu")) == "gloo"
    distributed.check_backend("gloo", torch.device("cpu"))
    assert _error(distributed.check_backend, "nccl", torch.device("cpu")) == (
        "--ddp-backend nccl needs CUDA devices (this run is on cpu); use --ddp-backend gloo, or leave it unset")
    assert _error(distributed.check_backend, "ucx", torch.device("cpu")) == (
        "--ddp-backend 'ucx': expected nccl, gloo, mpi")
    monkeypatch.setattr(dist, "is_backend_available", lambda name: name == "gloo")
    assert _error(distributed.check_backend, "mpi", torch.device("cpu")) == (
        "--ddp-backend mpi: this torch build has no mpi backend; use --ddp-backend gloo")


def test_launch_argv_reruns_the_command_without_the_launch_flag():
    args = ["DATA", "--distributed-world-size", "2", "--lr", "1e-3", "--distributed-world-size=2", "--seed", "3"]
    assert distributed.without_option(args, "--distributed-world-size") == ["DATA", "--lr", "1e-3", "--seed", "3"]
    assert distributed.torchrun_argv(2, ["train", "DATA"]) == [
        "--standalone", "--nnodes", "1", "--nproc-per-node", "2", "--max-restarts", "0", "--module", "seq2seq_cli",
        "train", "DATA"]
    from torch.distributed.run import parse_args

    parsed = parse_args(distributed.torchrun_argv(2, ["-v", "train", "DATA"]))  # torchrun accepts it as is
    assert (parsed.standalone, parsed.nproc_per_node, parsed.module, parsed.training_script,
            parsed.training_script_args) == (True, "2", True, "seq2seq_cli", ["-v", "train", "DATA"])


def test_launch_needs_a_gpu_per_process_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    distributed.check_launch(2, "auto")
    distributed.check_launch(8, "cpu")
    assert _error(distributed.check_launch, 4, "cuda") == (
        "--distributed-world-size 4: only 2 CUDA device(s) visible; use at most 2 processes, or --device cpu")
    assert _error(distributed.check_launch, 2, "cuda:1") == (
        "--distributed-world-size 2 with --device cuda:1: the processes would share one GPU; use --device cuda and "
        "choose the GPUs with CUDA_VISIBLE_DEVICES")


@pytest.mark.slow  # a 2-process job whose workers fail at start-up
def test_failed_workers_give_their_error_and_one_summary_line(ddp_data, tmp_path):
    done = run(train_command(ddp_data, tmp_path / "ck", "--train-subset", "nosuch", "--distributed-world-size", 2))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    # the rank that fails first is reported (the launcher then stops the other one with SIGTERM)
    assert re.fullmatch(r"Error: [12] of 2 processes failed \(rank [01]: exit code 1\); see its error above",
                        lines[-1])
    assert f"Error: --train-subset nosuch: {ddp_data} has no split 'nosuch' (it has: train, valid, test)" in lines
    assert "Traceback" not in done.stderr


def test_ranks_that_disagree_on_how_the_run_starts_are_stopped(monkeypatch):
    # what rank 1 of a 2-machine job would report if its machine had no copy of SAVE_DIR/checkpoint_last.pt
    def gather(values, value):
        values[:] = [value, ("new", 0)]

    monkeypatch.setattr(dist, "all_gather_object", gather)
    two = Placement(0, 2, 0, 1)
    distributed.check_agree(("new", 0), two, "how the run starts", "share it")
    assert _error(distributed.check_agree, ("resume", 8), two, "how the run starts (mode, updates done)",
                  "every machine must see the same --save-dir (put it on shared storage)") == (
        "the processes disagree on how the run starts (mode, updates done): rank 0 has ('resume', 8), rank 1 has "
        "('new', 0); every machine must see the same --save-dir (put it on shared storage)")
    distributed.check_agree(("resume", 8), Placement(), "x", "y")  # a single process has nobody to disagree with
