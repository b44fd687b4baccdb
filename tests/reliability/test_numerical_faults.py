"""Numerical faults: a non-finite loss or gradient, or an out-of-memory batch (simulated on the CPU), skips the
update with a warning and a train.log record; --max-skipped-updates in a row stop the run with the last good
checkpoint intact (bit for bit the checkpoint of a clean run that stopped there)."""
from __future__ import annotations

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint
from seq2seq_cli.device import OUT_OF_MEMORY
from seq2seq_cli.training import trainer as trainer_module
from tests.reliability.helpers import assert_clean_error
from tests.train_fixtures import data_dir, ok, read_log, tagged, train  # noqa: F401

REASONS = {"loss": "non-finite loss or gradient", "grad": "non-finite loss or gradient", "oom": "out of memory"}


def poison(monkeypatch, kind: str, attempts) -> list[list[torch.Tensor]]:
    """Make update attempts number `attempts` (0-based, in calls of train_step) fail in the way `kind` says.

    Returns, per attempt, the model parameters at its start (to check that a skipped update changed nothing).
    """
    params_at_start: list[list[torch.Tensor]] = []
    original_step, original_forward = trainer_module.Trainer.train_step, trainer_module.Trainer._forward
    original_backward = trainer_module.Trainer._backward

    def train_step(self, batches):
        params_at_start.append([p.detach().clone() for p in self.model.parameters()])
        return original_step(self, batches)

    def bad() -> bool:
        return len(params_at_start) - 1 in attempts

    def forward(self, batch):
        if kind == "oom" and bad():
            raise OUT_OF_MEMORY("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        loss, nll = original_forward(self, batch)
        return (loss * float("nan"), nll) if kind == "loss" and bad() else (loss, nll)

    def backward(self, loss):
        original_backward(self, loss)
        if kind == "grad" and bad():
            next(self.model.parameters()).grad[0].fill_(float("inf"))

    monkeypatch.setattr(trainer_module.Trainer, "train_step", train_step)
    monkeypatch.setattr(trainer_module.Trainer, "_forward", forward)
    monkeypatch.setattr(trainer_module.Trainer, "_backward", backward)
    return params_at_start


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("kind", ["loss", "grad", "oom"])
def test_bad_updates_are_skipped_with_a_warning_and_a_counter(runner, data_dir, tmp_path, monkeypatch, kind):
    params = poison(monkeypatch, kind, attempts={3, 4})
    save = tmp_path / "ck"
    result = ok(train(runner, data_dir, save, "--max-update", 8, "--log-interval", 1))
    reason = REASONS[kind]
    assert f"update 4 skipped: {reason}" in result.stderr and "(2 in a row, 2 in total)" in result.stderr
    assert "WARNING" in next(line for line in result.stderr.splitlines() if "update 4 skipped" in line)
    skips = tagged(read_log(save), "skip")
    assert [(r["reason"], r["num_updates"], r["skipped_in_a_row"], r["skipped_total"]) for r in skips] == \
        [(reason, 3, 1, 1), (reason, 3, 2, 2)]
    # attempts 3 and 4 were skipped: the model entering attempts 4 and 5 is the one that entered attempt 3
    assert _same(params[3], params[4]) and _same(params[3], params[5]) and not _same(params[5], params[6])
    inner = tagged(read_log(save), "train_inner")
    assert [r["num_updates"] for r in inner] == list(range(1, 9))  # 8 real updates from 10 attempts
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in inner)
    state = load_checkpoint(save / "checkpoint_last.pt")["train"]
    assert state["num_updates"] == 8 and state["skipped_updates"] == {"in_a_row": 0, "total": 2}
    assert state["optimizer"]["state"][0]["step"].item() == 8  # Adam stepped 8 times, not 10


@pytest.mark.parametrize("kind", ["loss", "oom"])
def test_too_many_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint(runner, data_dir, tmp_path, monkeypatch,
                                                                          kind):
    clean = tmp_path / "clean"
    ok(train(runner, data_dir, clean, "--max-update", 4, "--save-interval-updates", 2))
    poison(monkeypatch, kind, attempts=range(4, 1000))  # every update after the 4th fails
    save = tmp_path / "ck"
    result = train(runner, data_dir, save, "--max-update", 20, "--save-interval-updates", 2,
                   "--max-skipped-updates", 3)
    advice = "lower --lr" if kind == "loss" else "lower --max-tokens or --batch-size"
    assert_clean_error(result, f"stopping: 3 updates in a row were skipped ({REASONS[kind]}) at update 5", advice,
                       "the last checkpoint is from before these updates (--max-skipped-updates 3)")
    assert len(tagged(read_log(save), "skip")) == 3
    last, good = load_checkpoint(save / "checkpoint_last.pt"), load_checkpoint(clean / "checkpoint_last.pt")
    assert last["train"]["num_updates"] == 4
    assert all(torch.equal(last["model"]["state_dict"][k], v) for k, v in good["model"]["state_dict"].items())
    # epoch 1 (6 batches) ended after two skips: its save holds the same good weights and the count so far
    assert last["train"]["skipped_updates"] == {"in_a_row": 2, "total": 2}


def test_max_skipped_updates_zero_never_stops_and_negative_is_refused(runner, data_dir, tmp_path, monkeypatch):
    poison(monkeypatch, "loss", attempts=range(2, 14))  # 12 bad attempts in a row
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", 4, "--max-skipped-updates", 0))
    assert len(tagged(read_log(save), "skip")) == 12
    assert load_checkpoint(save / "checkpoint_last.pt")["train"]["num_updates"] == 4
    assert_clean_error(train(runner, data_dir, tmp_path / "x", "--max-skipped-updates", -1),
                       "--max-skipped-updates -1: must be at least 0")
