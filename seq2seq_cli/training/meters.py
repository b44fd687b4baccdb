"""Training statistics with fairseq's names: loss, nll_loss, ppl, wps, ups, wpb, bsz, lr, gnorm, num_updates, wall.

A `StatsWindow` sums an update span's losses as tensors on the training device and turns them into numbers only
when asked (at log time): the training step itself never waits for the device. Losses are summed in nats over
target tokens and reported in base 2 per token, as fairseq does (ppl = 2 ** nll_loss).

Time spent validating or saving is excluded from a window's speed figures (wps, ups) through `Clock.pause`.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch

LN2 = math.log(2.0)


class Clock:
    """Wall time of the run (including earlier runs it resumes) and the time excluded from speed figures."""

    def __init__(self, offset: float = 0.0) -> None:
        self.start = time.perf_counter()
        self.offset = offset  # seconds of training done by the runs this one resumes
        self.excluded = 0.0  # seconds spent in `pause()` blocks so far

    def wall(self) -> float:
        """Cumulative seconds of training, earlier runs included (fairseq's `wall`)."""
        return self.offset + time.perf_counter() - self.start

    @contextmanager
    def pause(self) -> Iterator[None]:
        """Exclude the time of the block (validation, saving) from speed figures."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - begin


class StatsWindow:
    """Sums over a span of updates (one log interval, or one epoch)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.loss: torch.Tensor | float = 0.0  # nats, summed over target tokens
        self.nll_loss: torch.Tensor | float = 0.0
        self.gnorm: torch.Tensor | float = 0.0  # sum over the updates where it was measured
        self.gnorm_count = 0
        self.ntokens = 0
        self.nsentences = 0
        self.updates = 0
        self._start = time.perf_counter()
        self._excluded_at_start = self.clock.excluded
        self._elapsed_before = 0.0  # seconds carried over from a checkpoint (a resumed epoch)

    def add(self, loss: torch.Tensor, nll_loss: torch.Tensor, ntokens: int, nsentences: int,
            gnorm: torch.Tensor | None) -> None:
        """Add one update's sums (tensors stay on the device: no synchronization here)."""
        self.loss = self.loss + loss
        self.nll_loss = self.nll_loss + nll_loss
        if gnorm is not None:
            self.gnorm = self.gnorm + gnorm
            self.gnorm_count += 1
        self.ntokens += ntokens
        self.nsentences += nsentences
        self.updates += 1

    def sum_over_ranks(self, device: torch.device) -> None:
        """Sum the losses and counts over all torch.distributed ranks (gnorm is already global after DDP's sync).

        Every rank must call this at the same point (log intervals and epoch ends are the same update on all ranks).
        """
        import torch.distributed as dist

        totals = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device) for v in
                              (self.loss, self.nll_loss, self.ntokens, self.nsentences)])
        dist.all_reduce(totals)
        self.loss, self.nll_loss = totals[0], totals[1]
        self.ntokens, self.nsentences = int(totals[2]), int(totals[3])

    def elapsed(self) -> float:
        """Seconds of training in this window, excluding paused time."""
        excluded = self.clock.excluded - self._excluded_at_start
        return self._elapsed_before + max(time.perf_counter() - self._start - excluded, 1e-9)

    def stats(self, **extra: Any) -> dict[str, Any]:
        """fairseq's statistics of the window (this reads the device: call at log time only)."""
        ntokens, updates = max(self.ntokens, 1), max(self.updates, 1)
        loss = float(self.loss) / ntokens / LN2
        nll_loss = float(self.nll_loss) / ntokens / LN2
        elapsed = self.elapsed()
        stats: dict[str, Any] = {
            "loss": loss, "nll_loss": nll_loss, "ppl": _ppl(nll_loss), "wps": self.ntokens / elapsed,
            "ups": self.updates / elapsed, "wpb": self.ntokens / updates, "bsz": self.nsentences / updates,
        }
        if self.gnorm_count:
            stats["gnorm"] = float(self.gnorm) / self.gnorm_count
        stats.update(extra)
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers (for checkpoints; reads the device)."""
        return {"loss": float(self.loss), "nll_loss": float(self.nll_loss), "gnorm": float(self.gnorm),
                "gnorm_count": self.gnorm_count, "ntokens": self.ntokens, "nsentences": self.nsentences,
                "updates": self.updates, "elapsed": self.elapsed()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        self.loss, self.nll_loss, self.gnorm = state["loss"], state["nll_loss"], state["gnorm"]
        self.gnorm_count, self.ntokens = state["gnorm_count"], state["ntokens"]
        self.nsentences, self.updates = state["nsentences"], state["updates"]
        self._elapsed_before = state["elapsed"]


def _ppl(loss_base2: float) -> float:
    try:
        return 2.0 ** loss_base2
    except OverflowError:
        return float("inf")


def format_stats(stats: dict[str, Any], log_format: str, prefix: str = "") -> str:
    """A console line: fairseq's `key=value` list (simple) or a JSON object (json)."""
    if log_format == "json":
        import json

        return json.dumps({k: _round(v) for k, v in stats.items()})
    items = ", ".join(f"{k}={_round(v)}" for k, v in stats.items())
    return f"{prefix}{items}"


def _round(value: Any) -> Any:
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return float(f"{value:.3g}")  # learning rates: keep the significant digits
        return round(value, 3)
    return value
