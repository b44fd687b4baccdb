"""Learning-rate schedules with fairseq's semantics: inverse_sqrt, fixed, cosine, polynomial_decay,
reduce_lr_on_plateau.

Every schedule is driven by the trainer through two calls: `step_update(num_updates)` after every update (and once
with 0 right after construction, so the first update uses the warm-up start lr) and `step_epoch(epoch, val_loss)`
at the end of each epoch. Both set the optimizer's lr and return it. The update-driven schedules are pure functions
of `num_updates`; the state a schedule keeps across calls (fixed's annealed lr, the plateau's best loss) is in its
`state_dict`.

Differences from fairseq: `--lr` is one number, not a per-epoch list; inverse_sqrt with 0 warm-up updates decays
as lr / sqrt(num_updates) (fairseq's formula would give lr 0); reduce_lr_on_plateau always minimizes the
validation loss it is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import LR_SCHEDULERS


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


class LRScheduler:
    """Base class: holds the optimizer and the current lr; subclasses compute the lr."""

    # names of the attributes saved by state_dict (besides "lr")
    _state_keys: tuple[str, ...] = ()

    def __init__(self, cfg: Any, optimizer: torch.optim.Optimizer, lr: float, max_update: int) -> None:
        if lr <= 0:
            raise ConfigError(f"--lr {lr}: must be positive")
        if getattr(cfg, "warmup_updates", 0) < 0:
            raise ConfigError(f"--warmup-updates {cfg.warmup_updates}: must be 0 or more")
        self.cfg, self.optimizer = cfg, optimizer
        self.base_lr, self.max_update = lr, max_update
        self.lr = lr

    def set_lr(self, lr: float) -> float:
        """Set the optimizer's lr (every param group) and remember it."""
        self.lr = float(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        return self.lr

    def get_lr(self) -> float:
        return self.lr

    def step_update(self, num_updates: int) -> float:
        """Called after every update; sets and returns the lr for the next update."""
        return self.lr

    def step_epoch(self, epoch: int, val_loss: float | None = None) -> float:
        """Called at the end of each epoch (with the validation loss when there was a validation)."""
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, **{k: getattr(self, k) for k in self._state_keys}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self._state_keys:
            if key in state:
                setattr(self, key, state[key])
        self.set_lr(state["lr"])


def _warmup_init_lr(cfg: Any, default: float) -> float:
    """fairseq's convention: a negative --warmup-init-lr means `default`."""
    return default if cfg.warmup_init_lr < 0 else cfg.warmup_init_lr


@LR_SCHEDULERS.register("inverse_sqrt")
class InverseSqrt(LRScheduler):
    """Linear warm-up from warmup_init_lr to lr over warmup_updates, then lr * sqrt(warmup_updates / num_updates)."""

    @dataclass(frozen=True)
    class Config:
        """Settings of inverse_sqrt."""

        warmup_updates: int = _f(4000, "warm up the learning rate linearly for this many updates")
        warmup_init_lr: float = _f(-1.0, "initial learning rate during warm-up (-1: 0 with warm-up, else --lr)")

    def __init__(self, cfg: Config, optimizer: torch.optim.Optimizer, lr: float, max_update: int) -> None:
        super().__init__(cfg, optimizer, lr, max_update)
        self.warmup_init_lr = _warmup_init_lr(cfg, 0.0 if cfg.warmup_updates > 0 else lr)
        self.set_lr(self.warmup_init_lr)

    def step_update(self, num_updates: int) -> float:
        warmup = self.cfg.warmup_updates
        if num_updates < warmup:
            return self.set_lr(self.warmup_init_lr + num_updates * (self.base_lr - self.warmup_init_lr) / warmup)
        return self.set_lr(self.base_lr * math.sqrt(max(warmup, 1) / max(num_updates, 1)))


@LR_SCHEDULERS.register("fixed")
class Fixed(LRScheduler):
    """A constant lr, annealed by lr_shrink every epoch from epoch force_anneal on; optional linear warm-up."""

    @dataclass(frozen=True)
    class Config:
        """Settings of fixed."""

        force_anneal: int | None = _f(None, "from this epoch on, multiply the lr by lr_shrink every epoch")
        lr_shrink: float = _f(0.1, "annealing factor")
        warmup_updates: int = _f(0, "warm up the learning rate linearly for this many updates")

    _state_keys = ("epoch_lr",)

    def __init__(self, cfg: Config, optimizer: torch.optim.Optimizer, lr: float, max_update: int) -> None:
        super().__init__(cfg, optimizer, lr, max_update)
        self.epoch_lr = self._lr_of_epoch(1)  # the lr of the current epoch, before warm-up scaling
        self.set_lr(self.epoch_lr)

    def _lr_of_epoch(self, epoch: int) -> float:
        anneal = self.cfg.force_anneal
        if anneal is None or epoch < anneal:
            return self.base_lr
        return self.base_lr * self.cfg.lr_shrink ** (epoch + 1 - anneal)

    def step_epoch(self, epoch: int, val_loss: float | None = None) -> float:
        # fairseq sets the lr at the *start* of an epoch; our hook runs at the end of `epoch`, for the next one
        self.epoch_lr = self._lr_of_epoch(epoch + 1)
        return self.set_lr(self.epoch_lr)

    def step_update(self, num_updates: int) -> float:
        warmup = self.cfg.warmup_updates
        if warmup > 0 and num_updates < warmup:
            return self.set_lr(self.epoch_lr * (num_updates + 1) / warmup)
        return self.set_lr(self.epoch_lr)


@LR_SCHEDULERS.register("cosine")
class Cosine(LRScheduler):
    """Linear warm-up, then cosine annealing from lr to min_lr over periods (SGDR, Loshchilov & Hutter 2016).

    Period i lasts lr_period_updates * t_mult**i updates (default: all of max_update after warm-up) and its
    bounds are shrunk by lr_shrink**i.
    """

    @dataclass(frozen=True)
    class Config:
        """Settings of cosine."""

        warmup_updates: int = _f(0, "warm up the learning rate linearly for this many updates")
        warmup_init_lr: float = _f(-1.0, "initial learning rate during warm-up (-1: min_lr)")
        min_lr: float = _f(0.0, "lowest learning rate of a period")
        t_mult: float = _f(1.0, "factor by which each period is longer than the previous one")
        lr_period_updates: int = _f(-1, "updates of the first period (-1: --max-update minus warm-up)")
        lr_shrink: float = _f(0.1, "factor applied to the lr bounds after each period")

    def __init__(self, cfg: Config, optimizer: torch.optim.Optimizer, lr: float, max_update: int) -> None:
        super().__init__(cfg, optimizer, lr, max_update)
        if lr <= cfg.min_lr:
            raise ConfigError(f"--lr-scheduler cosine: --lr {lr} must be greater than --min-lr {cfg.min_lr}")
        self.period = cfg.lr_period_updates
        if self.period <= 0:
            self.period = max_update - cfg.warmup_updates
            if max_update <= 0 or self.period <= 0:
                raise ConfigError("--lr-scheduler cosine needs --max-update (greater than --warmup-updates) or "
                                  "--lr-scheduler-opt lr_period_updates=N")
        self.warmup_init_lr = _warmup_init_lr(cfg, cfg.min_lr)
        self.set_lr(self.warmup_init_lr)

    def step_update(self, num_updates: int) -> float:
        cfg = self.cfg
        if num_updates < cfg.warmup_updates:
            step = (self.base_lr - self.warmup_init_lr) / cfg.warmup_updates
            return self.set_lr(self.warmup_init_lr + num_updates * step)
        done = num_updates - cfg.warmup_updates
        if cfg.t_mult != 1:
            i = math.floor(math.log(1 - done / self.period * (1 - cfg.t_mult), cfg.t_mult))
            t_i = cfg.t_mult ** i * self.period
            t_curr = done - (1 - cfg.t_mult ** i) / (1 - cfg.t_mult) * self.period
        else:
            i = math.floor(done / self.period)
            t_i, t_curr = self.period, done - self.period * i
        shrink = cfg.lr_shrink ** i
        low, high = cfg.min_lr * shrink, self.base_lr * shrink
        return self.set_lr(low + 0.5 * (high - low) * (1 + math.cos(math.pi * t_curr / t_i)))


@LR_SCHEDULERS.register("polynomial_decay")
class PolynomialDecay(LRScheduler):
    """Linear warm-up to lr, then polynomial decay to end_learning_rate at total_num_update."""

    @dataclass(frozen=True)
    class Config:
        """Settings of polynomial_decay."""

        warmup_updates: int = _f(0, "warm up the learning rate linearly for this many updates")
        end_learning_rate: float = _f(0.0, "learning rate at total_num_update and after")
        power: float = _f(1.0, "decay power (1: linear)")
        total_num_update: int = _f(0, "update at which the decay ends (0: --max-update)")

    def __init__(self, cfg: Config, optimizer: torch.optim.Optimizer, lr: float, max_update: int) -> None:
        super().__init__(cfg, optimizer, lr, max_update)
        self.total = cfg.total_num_update if cfg.total_num_update > 0 else max_update
        if self.total <= cfg.warmup_updates:
            raise ConfigError("--lr-scheduler polynomial_decay needs --total-num-update (or --max-update) greater "
                              f"than --warmup-updates {cfg.warmup_updates}")
        self.set_lr(lr / cfg.warmup_updates if cfg.warmup_updates > 0 else lr)

    def step_update(self, num_updates: int) -> float:
        cfg = self.cfg
        if cfg.warmup_updates > 0 and num_updates <= cfg.warmup_updates:
            return self.set_lr(self.base_lr * num_updates / cfg.warmup_updates)
        if num_updates >= self.total:
            return self.set_lr(cfg.end_learning_rate)
        remaining = 1 - (num_updates - cfg.warmup_updates) / (self.total - cfg.warmup_updates)
        return self.set_lr((self.base_lr - cfg.end_learning_rate) * remaining ** cfg.power + cfg.end_learning_rate)


@LR_SCHEDULERS.register("reduce_lr_on_plateau")
class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by lr_shrink when the validation loss has not improved for more than lr_patience epochs.

    An improvement is a loss below best * (1 - lr_threshold) (torch's relative threshold). Optional linear warm-up;
    validation losses seen during warm-up are not counted.
    """

    @dataclass(frozen=True)
    class Config:
        """Settings of reduce_lr_on_plateau."""

        lr_shrink: float = _f(0.1, "factor by which the lr is multiplied on a plateau")
        lr_threshold: float = _f(1e-4, "relative improvement of the loss that counts as one")
        lr_patience: int = _f(0, "epochs without improvement tolerated before shrinking the lr")
        warmup_updates: int = _f(0, "warm up the learning rate linearly for this many updates")
        warmup_init_lr: float = _f(-1.0, "initial learning rate during warm-up (-1: 0 with warm-up, else --lr)")

    _state_keys = ("best", "num_bad_epochs", "warmup_end")

    def __init__(self, cfg: Config, optimizer: torch.optim.Optimizer, lr: float, max_update: int) -> None:
        super().__init__(cfg, optimizer, lr, max_update)
        if not 0 < cfg.lr_shrink < 1:
            raise ConfigError(f"--lr-shrink {cfg.lr_shrink}: must be between 0 and 1 for reduce_lr_on_plateau")
        self.warmup_init_lr = _warmup_init_lr(cfg, 0.0 if cfg.warmup_updates > 0 else lr)
        self.best = math.inf
        self.num_bad_epochs = 0
        self.warmup_end = cfg.warmup_updates <= 0
        self.set_lr(self.warmup_init_lr)

    def step_update(self, num_updates: int) -> float:
        warmup = self.cfg.warmup_updates
        if warmup > 0 and num_updates <= warmup:
            return self.set_lr(self.warmup_init_lr + num_updates * (self.base_lr - self.warmup_init_lr) / warmup)
        self.warmup_end = True
        return self.set_lr(self.lr)

    def step_epoch(self, epoch: int, val_loss: float | None = None) -> float:
        if val_loss is None or not self.warmup_end:
            return self.lr
        if val_loss < self.best * (1 - self.cfg.lr_threshold):
            self.best, self.num_bad_epochs = float(val_loss), 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.cfg.lr_patience:
            self.num_bad_epochs = 0
            return self.set_lr(self.lr * self.cfg.lr_shrink)
        return self.lr
