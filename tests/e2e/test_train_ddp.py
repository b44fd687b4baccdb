"""The trainer under torch.distributed (2 CPU processes, gloo): the same updates as one process accumulating.

Launching is torchrun's job; here two spawned processes join a gloo group themselves and call `run_training`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.train_fixtures import data_dir, losses_by_update, ok, read_log, tagged, train  # noqa: F401

TINY = ("encoder_layers=1", "decoder_layers=1", "encoder_embed_dim=16", "decoder_embed_dim=16",
        "encoder_ffn_embed_dim=32", "decoder_ffn_embed_dim=32", "encoder_attention_heads=2",
        "decoder_attention_heads=2", "dropout=0.0")


def _worker(rank: int, world: int, data: str, save: str, init: str) -> None:
    import torch
    import torch.distributed as dist

    from seq2seq_cli.training.config import TrainConfig
    from seq2seq_cli.training.trainer import run_training

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        run_training(TrainConfig(data=Path(data), save_dir=Path(save), arch="transformer_small", device="cpu",
                                 model_overrides=TINY, max_tokens=256, max_update=4, log_interval=1,
                                 no_progress=True, lr=3e-3, warmup_updates=5))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes that each import torch
def test_two_ranks_match_one_process_with_update_freq_2(runner, data_dir, tmp_path):
    import torch.multiprocessing as mp

    ddp = tmp_path / "ddp"
    mp.spawn(_worker, args=(2, str(data_dir), str(ddp), str(tmp_path / "pg")), nprocs=2)
    # rank r takes batches r, r + 2, ...: one process with --update-freq 2 sees the same pairs per update
    ok(train(runner, data_dir, tmp_path / "one", "--max-update", 4, "--log-interval", 1, "--update-freq", 2,
             "--dropout", 0))
    ddp_log, one_log = read_log(ddp), read_log(tmp_path / "one")
    assert losses_by_update(ddp_log) == pytest.approx(losses_by_update(one_log), abs=1e-5)
    for a, b in zip(tagged(ddp_log, "train_inner"), tagged(one_log, "train_inner")):
        assert (a["wpb"], a["bsz"]) == (b["wpb"], b["bsz"])  # statistics summed over both ranks
        assert a["gnorm"] == pytest.approx(b["gnorm"], rel=1e-4)
    assert sorted(p.name for p in ddp.glob("*.pt")) == sorted(p.name for p in (tmp_path / "one").glob("*.pt"))
