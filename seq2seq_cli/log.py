"""Logging setup: console records go to stderr in fairseq's layout; stdout is kept for data (hypotheses, scores).

Only the CLI calls `setup_logging`; library modules just use `logging.getLogger(__name__)`.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

CONSOLE_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"


def setup_logging(verbosity: int = 0) -> None:
    """Send records of the `seq2seq_cli` logger to stderr; verbosity -1 = WARNING, 0 = INFO, 1 = DEBUG."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.WARNING)
    root = logging.getLogger("seq2seq_cli")
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_seq2seq_console", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler._seq2seq_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.propagate = False


class JsonLinesHandler(logging.Handler):
    """Writes records that carry a `stats` dict (extra={"stats": {...}}) as one JSON object per line.

    This is SAVE_DIR/train.log: fairseq's field names (loss, nll_loss, ppl, wps, ...) so log tooling keeps working,
    whatever the console format is.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        stats = getattr(record, "stats", None)
        if stats is None:
            return
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
                 "tag": getattr(record, "tag", ""), **stats}
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        super().close()
