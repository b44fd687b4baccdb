"""DDP training through the real command line: `seq2seq train --distributed-world-size 2` (torch's elastic launcher,
2 gloo processes on the CPU) against one process accumulating 2 batches per update; resuming with another
number of processes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint
from tests.conftest import invoke
from tests.distributed.conftest import REFERENCE_UPDATES, RUN
from tests.train_fixtures import losses_by_update, ok, read_log, tagged


def _train_one(runner, data, save, *extra):
    return invoke(runner, ["train", data, "--save-dir", save, *RUN, *[str(e) for e in extra]])


@pytest.mark.slow  # a 2-process job (the session's reference run)
def test_two_processes_match_one_process_with_update_freq_2(runner, ddp_data, ddp_reference, tmp_path):
    one = tmp_path / "one"
    ok(_train_one(runner, ddp_data, one, "--max-update", REFERENCE_UPDATES, "--update-freq", 2))
    ddp = ddp_reference["save"]
    ddp_log, one_log = read_log(ddp), read_log(one)
    # rank r takes batches r, r + 2, ...: one process with --update-freq 2 sees the same pairs per update
    assert losses_by_update(ddp_log) == pytest.approx(losses_by_update(one_log), abs=1e-5)
    assert len(losses_by_update(ddp_log)) == REFERENCE_UPDATES
    for a, b in zip(tagged(ddp_log, "train_inner"), tagged(one_log, "train_inner"), strict=True):
        assert (a["wpb"], a["bsz"]) == (b["wpb"], b["bsz"])  # statistics summed over both ranks
        assert a["gnorm"] == pytest.approx(b["gnorm"], rel=1e-4)
    weights = [load_checkpoint(d / "checkpoint_last.pt")["model"]["state_dict"] for d in (ddp, one)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], atol=1e-5, rtol=0, msg=name)
    assert sorted(p.name for p in ddp.glob("*.pt")) == sorted(p.name for p in one.glob("*.pt"))


@pytest.mark.slow
def test_distributed_world_size_2_runs_end_to_end_and_only_rank_0_logs(ddp_reference):
    save, stderr = ddp_reference["save"], ddp_reference["stderr"]
    assert "launching 2 processes: torchrun --standalone --nnodes 1 --nproc-per-node 2" in stderr
    assert "joined a process group of 2 processes (backend gloo); this is rank 0" in stderr
    assert "this is rank 1" not in stderr  # rank 1 logs warnings only
    assert stderr.count(f"done training: max_update {REFERENCE_UPDATES}") == 1
    # validated at 20 epoch ends and 15 interval saves (every 4 updates), 5 of which fall on an epoch end
    assert stderr.count("| valid on 'valid' |") == 30
    config = json.loads((save / "config.json").read_text(encoding="utf-8"))
    assert config["world_size"] == 2
    state = load_checkpoint(save / "checkpoint_last.pt")["train"]
    assert state["num_updates"] == REFERENCE_UPDATES
    assert state["iterator"] == {"epoch": REFERENCE_UPDATES // 3 + 1, "iterations_in_epoch": 0, "world_size": 2}


@pytest.mark.slow
def test_another_world_size_resumes_from_an_epoch_end_but_not_mid_epoch(runner, ddp_data, ddp_reference, tmp_path):
    mid = tmp_path / "mid"  # checkpoint_2_4.pt: update 4 is the first of epoch 2's 3 updates
    mid.mkdir()
    shutil.copy(ddp_reference["save"] / "checkpoint_2_4.pt", mid / "checkpoint_last.pt")
    result = _train_one(runner, ddp_data, mid, "--max-update", 8)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {mid / 'checkpoint_last.pt'} was saved by 2 process(es) in the middle of epoch 2; resume it with "
        "2 (torchrun --nproc_per_node, --distributed-world-size), or with 1 from an end-of-epoch checkpoint "
        "(--restore-file checkpoint1.pt)")

    end = tmp_path / "end"  # checkpoint2.pt: the end of epoch 2 (6 updates); one process continues with epoch 3
    end.mkdir()
    shutil.copy(ddp_reference["save"] / "checkpoint2.pt", end / "checkpoint_last.pt")
    result = ok(_train_one(runner, ddp_data, end, "--max-update", 8))
    assert "was saved by 2 process(es), this run has 1: each update now sees 0.5 times as many tokens" \
        in result.stderr
    assert [(r["num_updates"], r["epoch"]) for r in tagged(read_log(end), "train_inner")] == [(7, 3), (8, 3)]


def test_ddp_backend_needs_a_job(runner, ddp_data, tmp_path):
    result = _train_one(runner, ddp_data, tmp_path / "ck", "--ddp-backend", "gloo")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --ddp-backend gloo: this run is a single process (no torchrun, no --distributed-world-size N); "
        "drop the flag")


def test_distributed_world_size_is_checked(runner, ddp_data, tmp_path, monkeypatch):
    result = _train_one(runner, ddp_data, tmp_path / "ck", "--distributed-world-size", 0)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: --distributed-world-size 0: must be at least 1"
    # under torchrun the flag must agree with the job torchrun started
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "1")):
        monkeypatch.setenv(name, value)
    result = _train_one(runner, ddp_data, tmp_path / "ck", "--distributed-world-size", 2)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --distributed-world-size 2, but torchrun started 1 processes; drop the flag under torchrun")


def _count_all_reduces(rank: int, data: str, save: str, init: str, out: str) -> None:
    """Worker: one update of 2 accumulated batches, then one of 1 batch; writes how often DDP communicated."""
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from seq2seq_cli.training.config import TrainConfig
    from seq2seq_cli.training.setup import build_parts
    from seq2seq_cli.training.trainer import Trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)
    try:
        cfg = TrainConfig(data=Path(data), save_dir=Path(save), arch="transformer_small", device="cpu",
                          model_overrides=("encoder_layers=1", "decoder_layers=1", "encoder_embed_dim=16",
                                           "decoder_embed_dim=16"), max_tokens=256, update_freq=2, no_progress=True)
        trainer = Trainer(build_parts(cfg))
        calls = []

        def hook(state, bucket):
            calls.append(1)
            return allreduce_hook(state, bucket)

        trainer.forward_module.register_comm_hook(None, hook)
        batches = iter(trainer.epoch_itr.next_epoch_itr())
        trainer.train_step([next(batches), next(batches)])  # --update-freq 2
        accumulated = len(calls)
        trainer.train_step([next(batches)])
        Path(out, f"rank{rank}").write_text(f"{accumulated} {len(calls) - accumulated}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes
def test_update_freq_skips_the_all_reduce_of_inner_batches(ddp_data, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_count_all_reduces, args=(str(ddp_data), str(tmp_path / "ck"), str(tmp_path / "pg"), str(tmp_path)),
             nprocs=2)
    counts = [tuple(map(int, (tmp_path / f"rank{r}").read_text().split())) for r in (0, 1)]
    # an update of 2 batches communicates as often as an update of 1 (once per gradient bucket): no_sync works
    assert counts[0] == counts[1] and counts[0][0] == counts[0][1] > 0
