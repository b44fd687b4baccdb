"""Ctrl-C and SIGTERM during training: the first one saves a checkpoint and stops; a second Ctrl-C stops at once.

The first SIGINT (Ctrl-C) or SIGTERM (what schedulers send before preempting a job) only sets a flag: the current
update finishes, `Trainer.stop_reason` sees the flag, checkpoint_last.pt is written (no validation: the user is
waiting) and the command exits with status 130 and a one-line message saying how to resume. A second SIGINT raises
KeyboardInterrupt at once, wherever the run is; a checkpoint being written then is abandoned (its temp file is
removed) and the previous one stays intact, since every write is atomic.

Only the main thread can install signal handlers; elsewhere (a library caller's worker thread) nothing is
installed and Ctrl-C keeps Python's default behaviour.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Any, Iterator

logger = logging.getLogger("seq2seq_cli.training.trainer")

INTERRUPTED = "interrupted"


class InterruptFlag:
    """Set by the first SIGINT/SIGTERM; read by the training loop after every update."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            logger.warning("second interrupt: exiting at once, without saving")
            raise KeyboardInterrupt
        if not self.requested:
            self.signal_name = signal.Signals(signum).name
            logger.warning("%s received: saving a checkpoint after this update, then stopping (press Ctrl-C again "
                           "to exit at once, without saving)", self.signal_name)


@contextlib.contextmanager
def interrupt_flag() -> Iterator[InterruptFlag]:
    """Install the handlers for the block (main thread only) and restore the previous ones afterwards."""
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
