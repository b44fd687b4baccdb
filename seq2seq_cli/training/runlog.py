"""What a run writes besides checkpoints: SAVE_DIR/config.json and SAVE_DIR/train.log.

Statistics records go to two places: the console (through this package's logger, so -q/-v apply) and train.log
(one JSON object per record with fairseq's field names, whatever the console format and verbosity).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from seq2seq_cli.config import to_dict
from seq2seq_cli.log import JsonLinesHandler

logger = logging.getLogger("seq2seq_cli.training.trainer")

# Statistics only; never propagates to the console handler (the console gets its own formatted line).
STATS_LOGGER = logging.getLogger("seq2seq_cli.training.stats")
STATS_LOGGER.propagate = False
STATS_LOGGER.setLevel(logging.INFO)


def emit_stats(tag: str, stats: dict[str, Any], line: str, level: int = logging.INFO) -> None:
    """Log `line` on the console and `stats` into train.log (tag: train_inner, train, valid or skip)."""
    logger.log(level, line)
    STATS_LOGGER.info(tag, extra={"stats": stats, "tag": tag})


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON through a temp file in the same folder and os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolved_config(parts: Any) -> dict[str, Any]:
    """The run's full configuration: training flags, the model (name, arch, every field) and the data."""
    return {
        "train": to_dict(parts.cfg),
        "model": {"name": parts.spec.name, "arch": parts.spec.arch, "config": to_dict(parts.spec.config)},
        "data": {"path": str(parts.cfg.data), "src_lang": parts.data.src_lang, "tgt_lang": parts.data.tgt_lang},
        "start": {"mode": parts.start.mode, "checkpoint": str(parts.start.path) if parts.start.path else None},
        "world_size": parts.world_size,
    }


@contextlib.contextmanager
def run_logging(parts: Any, write: bool) -> Iterator[None]:
    """Write config.json and attach train.log for the duration of the run (only where `write`, i.e. rank 0)."""
    if not write:
        yield
        return
    save_dir = Path(parts.cfg.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    config = resolved_config(parts)
    write_json_atomic(save_dir / "config.json", config)
    logger.info("configuration: %s", json.dumps(config["train"]))
    logger.info("model: %s", json.dumps(config["model"]))
    handler = JsonLinesHandler(save_dir / "train.log")
    STATS_LOGGER.addHandler(handler)
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(loggers=[logging.getLogger("seq2seq_cli")]):
            yield
    finally:
        STATS_LOGGER.removeHandler(handler)
        handler.close()
