"""The training loop: `run_training(cfg)` and the `Trainer` that owns the model, optimizer and schedule.

One update = `--update-freq` batches. Its loss is summed over all of them and divided by the update's total target
tokens (over all ranks), as fairseq does, so gradient accumulation and DDP give the same gradients as one big
batch. The step stays lean: losses are kept as device tensors and read only at log time; logits are computed only
at non-padding positions (`model.logits_for_loss`); the gradient norm is computed when clipping or logging.

Exact resume: dropout is re-seeded at every update from (seed, num_updates) and batch order depends only on
(seed, epoch), so a run restarted from any checkpoint repeats the uninterrupted run's updates.

Faults (faults.py): an update with a non-finite loss or gradient, or whose batch runs out of device memory, is
skipped with a warning; --max-skipped-updates in a row stop the run. Telling a finite update from a bad one reads
the gradient norm once per update (one device sync), as fairseq does. Ctrl-C/SIGTERM (interrupts.py) save and stop.

DDP: when torch.distributed is initialized (torchrun), the model is wrapped in DistributedDataParallel, rank 0
logs and saves, and inner accumulation steps skip the gradient all-reduce (`no_sync`). Launching is not our job.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from seq2seq_cli import __version__
from seq2seq_cli.checkpoint import FORMAT_VERSION, unwrap_model
from seq2seq_cli.config import to_dict
from seq2seq_cli.device import OUT_OF_MEMORY, autocast, free_cached_memory
from seq2seq_cli.errors import Interrupted, Seq2SeqError, TrainingError
from seq2seq_cli.training import checkpointing, components
from seq2seq_cli.training.config import TrainConfig
from seq2seq_cli.training.datasets import epoch_iterator
from seq2seq_cli.training.faults import NON_FINITE, OOM, SkipCounter
from seq2seq_cli.training.interrupts import INTERRUPTED, InterruptFlag, interrupt_flag
from seq2seq_cli.training.lock import save_dir_lock
from seq2seq_cli.training.loss import batch_loss
from seq2seq_cli.training.meters import Clock, StatsWindow, format_stats
from seq2seq_cli.training.runlog import emit_stats, run_logging
from seq2seq_cli.training.setup import RunParts, build_parts
from seq2seq_cli.training.validation import Validator

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run reports."""

    num_updates: int
    epoch: int
    best: float | None
    stop_reason: str
    last_checkpoint: Path | None


class LossForward(nn.Module):
    """`model.logits_for_loss` as a module's forward, so DDP and torch.compile wrap the training computation."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, keep_mask: torch.Tensor,
                projected: bool = False, with_ctc: bool = False) -> Any:
        """Shape: (B, S), (B, T), (B, T) bool -> (N, V) logits at the N kept positions, or their ProjectedLogits
        (with_ctc: see S2TTransformerModel.logits_for_loss)."""
        if with_ctc:
            return self.model.logits_for_loss(src_tokens, tgt_in, keep_mask, projected, with_ctc=True)
        return self.model.logits_for_loss(src_tokens, tgt_in, keep_mask, projected)


def grouped(batches: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive groups of `size` batches (the last group of an epoch may be shorter)."""
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class Trainer:
    """Runs updates, validation and checkpointing for one training run."""

    def __init__(self, parts: RunParts) -> None:
        self.parts, self.cfg, self.device = parts, parts.cfg, parts.device
        self.model, self.criterion = parts.model, parts.criterion
        self.rank, self.world_size = parts.rank, parts.world_size
        tok = parts.data.tgt_tokenizer
        self.bos, self.pad, self.eos = tok.bos_id, tok.pad_id, tok.eos_id
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = components.build_optimizer(self.cfg, self.params)
        self.scheduler = components.build_lr_scheduler(self.cfg, self.optimizer)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.cfg.precision == "fp16" else None
        self.forward_module = self._wrap(LossForward(self.model))
        self.epoch_itr = epoch_iterator(parts.train, self.cfg, shuffle=True, rank=self.rank,
                                        world_size=self.world_size)
        self.validator = Validator(parts)
        self.num_updates = 0
        self.best: float | None = None
        self.num_bad_validations = 0  # for --patience
        self.clock = Clock()
        self.interval, self.epoch_stats = StatsWindow(self.clock), StatsWindow(self.clock)
        self.last_checkpoint: Path | None = None
        self.skips = SkipCounter(self.cfg.max_skipped_updates)
        self.interrupt = InterruptFlag()  # run_training installs the signal handlers that set it
        self.scheduler.step_update(0)
        if parts.start.mode == "resume":
            self.load_state(parts.start.state["train"])

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
        if self.cfg.compile:
            module = torch.compile(module, dynamic=True)
        return module

    # ------------------------------------------------------------------------------------------------ the loop

    def train(self) -> TrainResult:
        """Train until a stopping condition holds; returns where it stopped."""
        # A resumed run that is already done (--max-update reached, or --stop-time-hours spent by the runs it
        # resumes) stops before its first update, so running the same command again changes nothing. (fairseq
        # makes one more update in the second case.) A fresh run always makes its first update.
        stop = None
        if self.cfg.max_update and self.num_updates >= self.cfg.max_update:
            stop = f"max_update {self.cfg.max_update}"
        elif self.cfg.stop_time_hours and self.clock.offset >= self.cfg.stop_time_hours * 3600:
            stop = f"stop_time_hours {self.cfg.stop_time_hours}"
        while stop is None:
            if self.cfg.max_epoch and self.next_epoch() > self.cfg.max_epoch:
                stop = f"max_epoch {self.cfg.max_epoch}"
                break
            stop = self.train_epoch()
        logger.info("done training: %s (epoch %d, %d updates, %.1f s)", stop, self.epoch_itr.epoch,
                    self.num_updates, self.clock.wall())
        return TrainResult(self.num_updates, self.epoch_itr.epoch, self.best, stop, self.last_checkpoint)

    def next_epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self.epoch_itr.state_dict()["epoch"]

    def train_epoch(self) -> str | None:
        """One epoch (or the rest of one, after a mid-epoch resume); returns a stop reason or None."""
        itr = self.epoch_itr.next_epoch_itr()
        epoch = self.epoch_itr.epoch
        freq = self.cfg.update_freq
        progress = self._progress_bar(epoch, math.ceil(len(self.epoch_itr) / freq),
                                      self.epoch_itr.iterations_in_epoch // freq)
        stop = None
        with progress:
            for batches in grouped(itr, freq):
                applied = self.train_step(batches)
                progress.update()
                if applied and self.num_updates % self.cfg.log_interval == 0:
                    self.log_interval(epoch, progress)
                stop = self.stop_reason()
                if self.epoch_itr.end_of_epoch():
                    break
                if not applied and stop is None:  # a skipped update: the intervals were handled at this count
                    continue
                stop = self.validate_and_save(epoch, end_of_epoch=False, stop=stop)
                if stop is not None:
                    return stop
        self.log_epoch(epoch)
        return self.validate_and_save(epoch, end_of_epoch=True, stop=stop)

    def _progress_bar(self, epoch: int, total: int, initial: int) -> Any:
        from tqdm.auto import tqdm

        disable = True if (self.cfg.no_progress or self.rank != 0) else None  # None: off when not a terminal
        return tqdm(total=total, initial=initial, desc=f"epoch {epoch:03d}", unit="upd", leave=False,
                    file=sys.stderr, disable=disable, dynamic_ncols=True)

    def stop_reason(self) -> str | None:
        """Ctrl-C/SIGTERM, --max-update or --stop-time-hours (checked after every update)."""
        requested = self.interrupt.requested
        if self.world_size > 1:  # all ranks must stop after the same update, or the others hang in the all-reduce
            requested = self._global_sum(int(requested)) > 0
        if requested:
            return INTERRUPTED
        if self.cfg.max_update and self.num_updates >= self.cfg.max_update:
            return f"max_update {self.cfg.max_update}"
        if self.cfg.stop_time_hours and self.clock.wall() >= self.cfg.stop_time_hours * 3600:
            return f"stop_time_hours {self.cfg.stop_time_hours}"
        return None

    # ------------------------------------------------------------------------------------------------ one update

    def train_step(self, batches: list[Any]) -> bool:
        """One update over `batches` (the micro-batches of gradient accumulation); False if it had to be skipped."""
        # Dropout masks depend only on (seed, update): a resumed run draws the same ones as an uninterrupted run.
        torch.manual_seed(self.cfg.seed + self.num_updates)
        self.model.train()
        ntokens = sum(b.ntokens for b in batches)
        nsentences = sum(b.nsentences for b in batches)
        # DDP averages gradients over ranks; multiplying by world_size turns that into a sum over all tokens.
        scale = self.world_size / self._global_sum(ntokens)
        sums = self._forward_backward(batches, scale)
        if sums is None:  # out of memory; the failed batch's activations are released by now
            self.optimizer.zero_grad(set_to_none=True)
            free_cached_memory(self.device)
            self.skips.skip(OOM, self.num_updates, self.epoch_itr.epoch,
                            f" ({ntokens} target tokens, {nsentences} sentences)")
            return False
        loss_sum, nll_sum = sums
        gnorm = self._optimizer_step(loss_sum)
        if gnorm is None:
            self.skips.skip(NON_FINITE, self.num_updates, self.epoch_itr.epoch)
            return False
        self.skips.good()
        self.num_updates += 1
        self.scheduler.step_update(self.num_updates)
        for window in (self.interval, self.epoch_stats):
            window.add(loss_sum, nll_sum, ntokens, nsentences, gnorm)
        return True

    def _forward_backward(self, batches: list[Any], scale: float) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Accumulate the gradients of `batches`; (loss sum, nll sum) on the device, or None if out of memory."""
        loss_sum = nll_sum = torch.zeros((), device=self.device)
        try:
            for i, batch in enumerate(batches):
                sync = i == len(batches) - 1
                with self._maybe_no_sync(sync):
                    loss, nll = self._forward(batch.to(self.device))
                    self._backward(loss * scale)
                loss_sum = loss_sum + loss.detach()
                nll_sum = nll_sum + nll.detach()
        except OUT_OF_MEMORY:
            if self.world_size > 1:  # the other ranks wait in the all-reduce: skipping here would hang them
                raise TrainingError(f"out of memory at update {self.num_updates + 1} on rank {self.rank}; lower "
                                    "--max-tokens or --batch-size (raise --update-freq to keep the batch per update)"
                                    ) from None
            return None
        return loss_sum, nll_sum

    def _forward(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_loss(self.forward_module, self.criterion, batch, self.bos, self.pad, self.eos,
                          lambda: autocast(self.cfg.precision, self.device))

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()

    def _maybe_no_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        if sync or self.world_size == 1:
            return contextlib.nullcontext()
        return self.forward_module.no_sync()

    def _global_sum(self, value: int) -> float:
        if self.world_size == 1:
            return float(value)
        import torch.distributed as dist

        total = torch.tensor(float(value), device=self.device)
        dist.all_reduce(total)
        return float(total)

    def _optimizer_step(self, loss_sum: torch.Tensor) -> torch.Tensor | None:
        """Unscale (fp16), clip or measure the gradient norm, step, and free the gradients.

        The norm (logged as gnorm) is one fused foreach reduction over the gradients. Returns None, without
        stepping, when the loss or the norm is not finite (an fp16 overflow lowers the loss scale as usual).
        """
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.clip_norm > 0:
            gnorm = nn.utils.clip_grad_norm_(self.params, self.cfg.clip_norm)
        else:
            gnorm = nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        if not bool(torch.isfinite(gnorm) & torch.isfinite(loss_sum)):  # the one sync per update
            if self.scaler is not None:
                self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            return None
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return gnorm.detach()

    # ------------------------------------------------------------------------------------------------ logging

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def log_interval(self, epoch: int, progress: Any) -> None:
        if self.world_size > 1:
            self.interval.sum_over_ranks(self.device)
        stats = self.interval.stats(num_updates=self.num_updates, lr=self.lr(), wall=round(self.clock.wall(), 1),
                                    epoch=epoch)
        self.interval.reset()
        self._check_finite(stats)
        if self.rank == 0:
            progress.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.3g}", wps=f"{stats['wps']:.0f}",
                                 refresh=False)
            line = format_stats(stats, self.cfg.log_format, f"epoch {epoch:03d} | update {self.num_updates} | ")
            emit_stats("train_inner", stats, line)

    def log_epoch(self, epoch: int) -> None:
        if self.epoch_stats.updates == 0:
            return
        if self.world_size > 1:
            self.epoch_stats.sum_over_ranks(self.device)
        stats = self.epoch_stats.stats(num_updates=self.num_updates, lr=self.lr(), wall=round(self.clock.wall(), 1),
                                       epoch=epoch)
        self.epoch_stats.reset()
        self._check_finite(stats)
        if self.rank == 0:
            emit_stats("train", stats, format_stats(stats, self.cfg.log_format, f"epoch {epoch:03d} | train | "))

    def _check_finite(self, stats: dict[str, Any]) -> None:
        if not math.isfinite(stats["loss"]):
            raise Seq2SeqError(f"training diverged: the loss is {stats['loss']} at update {self.num_updates}; "
                               "lower --lr, raise --warmup-updates, or set --clip-norm")

    # ------------------------------------------------------------------------------------------------ checkpoints

    def validate_and_save(self, epoch: int, end_of_epoch: bool, stop: str | None) -> str | None:
        """Validate and save when an interval (or the end) is reached, as fairseq; returns the stop reason."""
        cfg, n = self.cfg, self.num_updates

        def every(k: int) -> bool:
            return k > 0 and n % k == 0

        due = (end_of_epoch and epoch % cfg.save_interval == 0) or every(cfg.save_interval_updates)
        do_save = due or stop is not None
        # An interrupted run saves at once; it validates only where the uninterrupted run would (exact resume).
        stopping = stop is not None and stop != INTERRUPTED
        do_validate = (not end_of_epoch and due) or (end_of_epoch and epoch % cfg.validate_interval == 0) \
            or stopping or every(cfg.validate_interval_updates)
        with self.clock.pause():
            val, improved = None, False
            if do_validate and self.validator.splits:
                val, improved = self.validate(epoch)
                if cfg.patience > 0 and self.num_bad_validations >= cfg.patience:
                    logger.info("no improvement in the last %d validations: stopping (--patience)", cfg.patience)
                    stop = stop or f"patience {cfg.patience}"
            if end_of_epoch:
                self.scheduler.step_epoch(epoch, val)
            if do_save and not cfg.no_save and self.rank == 0:
                self.save(epoch, end_of_epoch, improved)
        return stop

    def validate(self, epoch: int) -> tuple[float, bool]:
        """Validate every subset; returns (first subset's loss, whether the best metric improved)."""
        first_loss, improved = None, False
        for i, split in enumerate(self.validator.splits):
            stats = self.validator.run(split, self.model)
            if i == 0:
                first_loss = stats["loss"]
                improved = self._update_best(stats[self.cfg.best_checkpoint_metric])
            stats.update(num_updates=self.num_updates, epoch=epoch,
                         **{f"best_{self.cfg.best_checkpoint_metric}": self.best})
            if self.rank == 0:
                line = format_stats(stats, self.cfg.log_format, f"epoch {epoch:03d} | valid on '{split.name}' | ")
                emit_stats("valid", {"subset": split.name, **stats}, line)
        return first_loss, improved

    def _update_best(self, value: float) -> bool:
        better = self.best is None or (value > self.best if self.cfg.maximize else value < self.best)
        if better:
            self.best, self.num_bad_validations = value, 0
        else:
            self.num_bad_validations += 1
        return better

    def save(self, epoch: int, end_of_epoch: bool, is_best: bool) -> None:
        names = checkpointing.checkpoint_names(self.cfg, epoch, self.num_updates, end_of_epoch, is_best)
        save_dir = self.cfg.save_dir
        self.last_checkpoint = checkpointing.write_checkpoint(self.state_dict(), save_dir, names)
        checkpointing.prune_checkpoints(self.cfg, save_dir)

    def state_dict(self) -> dict[str, Any]:
        """The whole checkpoint: model, tokenizers, langs and the training state (tensors and primitives only)."""
        parts = self.parts
        train = {
            "config": to_dict(self.cfg), "num_updates": self.num_updates, "epoch": self.epoch_itr.epoch,
            "iterator": self.epoch_itr.state_dict(), "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": checkpointing.rng_state(), "seed": self.cfg.seed,
            "best": {"metric": self.cfg.best_checkpoint_metric, "value": self.best, "maximize": self.cfg.maximize},
            "num_bad_validations": self.num_bad_validations, "skipped_updates": self.skips.state_dict(),
            "meters": {"wall": self.clock.wall(), "epoch": self.epoch_stats.state_dict()},
        }
        return {
            "format_version": FORMAT_VERSION, "tool_version": __version__,
            "model": {"name": parts.spec.name, "arch": parts.spec.arch, "config": to_dict(parts.spec.config),
                      "state_dict": unwrap_model(self.model).state_dict()},
            "tokenizers": parts.data.tokenizer_json(),
            "langs": {"src": parts.data.src_lang, "tgt": parts.data.tgt_lang},
            "train": train,
        }

    def load_state(self, train: dict[str, Any]) -> None:
        """Restore the training state of a checkpoint, honouring the --reset-* flags."""
        cfg = self.cfg
        if not cfg.reset_optimizer:
            self.optimizer.load_state_dict(train["optimizer"])  # also restores the exact current lr
            self.num_updates = train["num_updates"]
            if self.scaler is not None and train.get("grad_scaler"):
                self.scaler.load_state_dict(train["grad_scaler"])
        if not cfg.reset_lr_scheduler:
            self.scheduler.load_state_dict(train["lr_scheduler"])
        if cfg.reset_optimizer or cfg.reset_lr_scheduler:
            self.scheduler.step_update(self.num_updates)
        if not cfg.reset_dataloader:
            self.epoch_itr.load_state_dict(train["iterator"])
        if not cfg.reset_meters:
            self.clock.offset = train["meters"]["wall"]
            if self.rank == 0:  # the saved sums are rank 0's (other ranks' shares are not in the checkpoint)
                self.epoch_stats.load_state_dict(train["meters"]["epoch"])
        best = train.get("best") or {}
        if best.get("metric") == cfg.best_checkpoint_metric:
            self.best = best.get("value")
            self.num_bad_validations = train.get("num_bad_validations", 0)
        self.skips.load_state_dict(train.get("skipped_updates"))
        checkpointing.set_rng_state(train["rng"])
        logger.info("resumed from %s: epoch %d, %d updates done", self.parts.start.path, self.epoch_itr.epoch,
                    self.num_updates)


def run_training(cfg: TrainConfig) -> TrainResult:
    """Train a model as configured; checkpoints, train.log and config.json go to cfg.save_dir.

    One run per --save-dir at a time (lock.py). Ctrl-C or SIGTERM saves checkpoint_last.pt and stops (interrupts.py).

    Raises:
        Seq2SeqError: for every problem with the flags, the data or a checkpoint (found before the first update).
        TrainingError: another run holds --save-dir, or too many updates in a row had to be skipped.
        Interrupted: after the checkpoint an interrupt asked for is saved.
    """
    from seq2seq_cli import distributed

    # Rank 0 holds the lock for the job (under torchrun the rank is known from the environment before joining).
    lock = save_dir_lock(cfg.save_dir) if distributed.placement().rank == 0 else contextlib.nullcontext()
    with lock:
        parts = build_parts(cfg)
        trainer = Trainer(parts)
        with run_logging(parts, write=parts.rank == 0), interrupt_flag() as trainer.interrupt:
            result = trainer.train()
    if result.stop_reason == INTERRUPTED:
        saved = f"saved {result.last_checkpoint}" if result.last_checkpoint else \
            "nothing saved (--no-save)" if cfg.no_save else "rank 0 saved the checkpoint"
        by = trainer.interrupt.signal_name or "a signal to another rank"
        raise Interrupted(f"interrupted by {by} at update {result.num_updates}: {saved}; "
                          "run the same command again to resume")
    return result
