"""Updates that cannot be applied: a non-finite loss or gradient, or a batch that runs out of device memory.

Such an update is skipped (the gradients are dropped, the optimizer, schedule and update count do not move) with a
warning and a `skip` record in train.log. A few in a row happen (an fp16 loss scale settling, one huge batch); many
in a row mean the run has diverged or does not fit the device, so after --max-skipped-updates consecutive skips the
run stops with a `TrainingError`, before any bad update reaches the model or a checkpoint: the last checkpoint
stays the last good one.

Limitation: with several ranks (DDP) an out-of-memory error on one rank cannot be skipped (the other ranks wait in
the gradient all-reduce); it stops the run instead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from seq2seq_cli.errors import TrainingError
from seq2seq_cli.training.runlog import emit_stats

logger = logging.getLogger("seq2seq_cli.training.trainer")

NON_FINITE = "non-finite loss or gradient"
OOM = "out of memory"


@dataclass
class SkipCounter:
    """Counts skipped updates: in a row (reset by every good update) and in total (kept in the checkpoint)."""

    limit: int  # --max-skipped-updates: consecutive skips that stop the run (0: never stop)
    in_a_row: int = 0
    total: int = 0

    def good(self) -> None:
        """An update was applied."""
        self.in_a_row = 0

    def skip(self, reason: str, num_updates: int, epoch: int, detail: str = "") -> None:
        """Record a skipped update; log it (console warning + train.log record) and stop when over the limit.

        Raises:
            TrainingError: `limit` updates in a row were skipped.
        """
        self.in_a_row += 1
        self.total += 1
        emit_stats("skip", {"reason": reason, "num_updates": num_updates, "epoch": epoch,
                            "skipped_in_a_row": self.in_a_row, "skipped_total": self.total},
                   f"epoch {epoch:03d} | update {num_updates + 1} skipped: {reason}{detail} "
                   f"({self.in_a_row} in a row, {self.total} in total)", level=logging.WARNING)
        if self.limit and self.in_a_row >= self.limit:
            what = ("the model has diverged: lower --lr, raise --warmup-updates or set --clip-norm" if reason ==
                    NON_FINITE else "the batches do not fit the device: lower --max-tokens or --batch-size "
                    "(raise --update-freq to keep the same batch per update)")
            raise TrainingError(f"stopping: {self.in_a_row} updates in a row were skipped ({reason}) at update "
                                f"{num_updates + 1}; {what}; the last checkpoint is from before these updates "
                                f"(--max-skipped-updates {self.limit})")

    def state_dict(self) -> dict[str, int]:
        return {"in_a_row": self.in_a_row, "total": self.total}

    def load_state_dict(self, state: dict[str, int] | None) -> None:
        state = state or {}
        self.in_a_row, self.total = int(state.get("in_a_row", 0)), int(state.get("total", 0))
