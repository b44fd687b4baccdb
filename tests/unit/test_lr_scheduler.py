"""LR schedules: fairseq's closed-form values at chosen updates, and state_dict round trips."""
from __future__ import annotations

import math

import pytest
import torch

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import LR_SCHEDULERS

LR = 1e-3


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=123.0)


def make(name: str, max_update: int = 1000, lr: float = LR, **kwargs):
    cls = LR_SCHEDULERS.get(name)
    sched = cls(cls.Config(**kwargs), optimizer(), lr, max_update)
    sched.step_update(0)
    return sched


def at(sched, num_updates: int) -> float:
    lr = sched.step_update(num_updates)
    assert sched.optimizer.param_groups[0]["lr"] == lr == sched.get_lr()
    return lr


def test_inverse_sqrt_closed_form():
    sched = make("inverse_sqrt", warmup_updates=100, warmup_init_lr=1e-7)
    assert sched.optimizer.param_groups[0]["lr"] == pytest.approx(1e-7)
    for n in (0, 1, 50, 99):
        assert at(sched, n) == pytest.approx(1e-7 + n * (LR - 1e-7) / 100)
    for n in (100, 101, 400, 10_000):
        assert at(sched, n) == pytest.approx(LR * math.sqrt(100 / n))


def test_inverse_sqrt_default_warmup_starts_at_zero():
    sched = make("inverse_sqrt")  # warmup_updates 4000, warmup_init_lr -1 -> 0
    assert at(sched, 0) == 0.0
    assert at(sched, 2000) == pytest.approx(LR / 2)
    assert at(sched, 16000) == pytest.approx(LR / 2)


def test_inverse_sqrt_without_warmup():
    sched = make("inverse_sqrt", warmup_updates=0)
    assert at(sched, 0) == pytest.approx(LR)
    assert at(sched, 25) == pytest.approx(LR / 5)


def test_fixed_with_warmup_and_force_anneal():
    sched = make("fixed", warmup_updates=10, force_anneal=3, lr_shrink=0.5)
    assert at(sched, 0) == pytest.approx(LR * 1 / 10)  # fairseq: (num_updates + 1) / warmup_updates
    assert at(sched, 4) == pytest.approx(LR * 5 / 10)
    assert at(sched, 10) == pytest.approx(LR)
    assert sched.step_epoch(1, 3.0) == pytest.approx(LR)  # epoch 2 still at lr
    assert sched.step_epoch(2, 3.0) == pytest.approx(LR * 0.5 ** 1)  # epoch 3 = force_anneal: lr * shrink^(3+1-3)
    assert sched.step_epoch(3, 3.0) == pytest.approx(LR * 0.5 ** 2)
    assert at(sched, 500) == pytest.approx(LR * 0.25)  # updates keep the epoch's lr


def test_cosine_closed_form():
    sched = make("cosine", max_update=1100, warmup_updates=100, min_lr=1e-5)
    assert at(sched, 0) == pytest.approx(1e-5)  # warm-up starts at min_lr by default
    assert at(sched, 50) == pytest.approx(1e-5 + 50 * (LR - 1e-5) / 100)
    for n in (100, 350, 600, 1099):
        t = (n - 100) / 1000
        assert at(sched, n) == pytest.approx(1e-5 + 0.5 * (LR - 1e-5) * (1 + math.cos(math.pi * t)))


def test_cosine_periods_with_t_mult_and_shrink():
    sched = make("cosine", lr_period_updates=100, t_mult=2.0, lr_shrink=0.5, min_lr=0.0)
    # periods: [0, 100) length 100, [100, 300) length 200 at half the lr, [300, 700) at a quarter
    assert at(sched, 50) == pytest.approx(0.5 * LR * (1 + math.cos(math.pi * 0.5)))
    assert at(sched, 100) == pytest.approx(0.5 * LR)
    assert at(sched, 200) == pytest.approx(0.5 * 0.5 * LR * (1 + math.cos(math.pi * 0.5)))
    assert at(sched, 300) == pytest.approx(0.25 * LR)


def test_cosine_needs_a_period():
    with pytest.raises(ConfigError, match="cosine needs --max-update"):
        make("cosine", max_update=0)
    with pytest.raises(ConfigError, match="must be greater than --min-lr"):
        make("cosine", min_lr=1.0)


def test_polynomial_decay_closed_form():
    sched = make("polynomial_decay", max_update=1000, warmup_updates=100, end_learning_rate=1e-5, power=2.0)
    assert at(sched, 0) == 0.0
    assert at(sched, 40) == pytest.approx(LR * 0.4)
    assert at(sched, 100) == pytest.approx(LR)
    for n in (200, 550, 999):
        remaining = 1 - (n - 100) / 900
        assert at(sched, n) == pytest.approx((LR - 1e-5) * remaining ** 2 + 1e-5)
    assert at(sched, 1000) == at(sched, 5000) == pytest.approx(1e-5)


def test_polynomial_decay_total_num_update_overrides_max_update():
    sched = make("polynomial_decay", max_update=0, total_num_update=200)
    assert at(sched, 100) == pytest.approx(LR / 2)
    with pytest.raises(ConfigError, match="needs --total-num-update"):
        make("polynomial_decay", max_update=0)


def test_reduce_lr_on_plateau_patience_and_threshold():
    sched = make("reduce_lr_on_plateau", lr_patience=1, lr_shrink=0.5, lr_threshold=0.01)
    assert at(sched, 5) == pytest.approx(LR)
    assert sched.step_epoch(1, 4.0) == pytest.approx(LR)  # first loss: best
    assert sched.step_epoch(2, 3.99) == pytest.approx(LR)  # not 1% better: 1 bad epoch, within patience
    assert sched.step_epoch(3, 3.98) == pytest.approx(LR / 2)  # 2 bad epochs > patience 1: shrink
    assert sched.step_epoch(4, 3.0) == pytest.approx(LR / 2)  # improvement
    assert sched.step_epoch(5, None) == pytest.approx(LR / 2)  # no validation: no change
    assert at(sched, 500) == pytest.approx(LR / 2)  # updates keep the shrunk lr


def test_reduce_lr_on_plateau_warmup():
    sched = make("reduce_lr_on_plateau", warmup_updates=10, lr_patience=0)
    assert at(sched, 0) == 0.0
    assert at(sched, 5) == pytest.approx(LR / 2)
    assert sched.step_epoch(1, 5.0) == pytest.approx(LR / 2)  # losses during warm-up do not count
    assert sched.step_epoch(1, 6.0) == pytest.approx(LR / 2)
    assert at(sched, 10) == pytest.approx(LR)
    assert at(sched, 11) == pytest.approx(LR)
    assert sched.step_epoch(2, 5.0) == pytest.approx(LR)
    assert sched.step_epoch(3, 5.0) == pytest.approx(LR * 0.1)


SCHEDULES = [
    ("inverse_sqrt", {"warmup_updates": 10}),
    ("fixed", {"force_anneal": 2, "warmup_updates": 5}),
    ("cosine", {"warmup_updates": 10, "t_mult": 1.5, "lr_period_updates": 20}),
    ("polynomial_decay", {"warmup_updates": 10, "power": 0.5}),
    ("reduce_lr_on_plateau", {"warmup_updates": 3, "lr_patience": 0}),
]


def drive(sched, start: int, stop: int, losses: list[float]) -> list[float]:
    """Updates start..stop-1 with an epoch end every 7 updates; the lrs seen."""
    lrs = []
    for n in range(start, stop):
        lrs.append(sched.step_update(n))
        if n % 7 == 6:
            lrs.append(sched.step_epoch(n // 7 + 1, losses[(n // 7) % len(losses)]))
    return lrs


@pytest.mark.parametrize("name,kwargs", SCHEDULES)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    losses = [5.0, 4.0, 4.5, 3.0, 4.4, 3.1, 3.2]  # epoch 5 (after the restart) is no improvement
    reference = make(name, max_update=100, **kwargs)
    expected = drive(reference, 1, 60, losses)
    first = make(name, max_update=100, **kwargs)
    head = drive(first, 1, 30, losses)
    state = first.state_dict()
    restored = make(name, max_update=100, **kwargs)  # a fresh one, as after a restart
    restored.load_state_dict(state)
    assert restored.optimizer.param_groups[0]["lr"] == first.get_lr()
    assert head + drive(restored, 30, 60, losses) == expected
    assert len(set(expected)) > 2  # the schedule moved
