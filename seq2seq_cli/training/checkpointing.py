"""Which checkpoint files a training run writes and keeps (fairseq's names), and the RNG state they carry.

Names: `checkpoint{epoch}.pt` at epoch ends, `checkpoint_{epoch}_{updates}.pt` every --save-interval-updates,
`checkpoint_best.pt` when the validation metric improves, `checkpoint_last.pt` at every save. The state is
serialized once, to the first name; the other names are hard links (or copies) made atomically.
"""
from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2seq_cli import device as devices
from seq2seq_cli.checkpoint import copy_checkpoint, save_checkpoint
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.training.config import TrainConfig

logger = logging.getLogger(__name__)

_EPOCH_RE = re.compile(r"^checkpoint(\d+)\.pt$")
_UPDATE_RE = re.compile(r"^checkpoint_(\d+)_(\d+)\.pt$")


def checkpoint_names(cfg: TrainConfig, epoch: int, num_updates: int, end_of_epoch: bool, is_best: bool) -> list[str]:
    """The file names to write at this save point, in writing order (the first one is serialized)."""
    names = []
    if end_of_epoch and not cfg.no_epoch_checkpoints and epoch % cfg.save_interval == 0:
        names.append(f"checkpoint{epoch}.pt")
    if not end_of_epoch and cfg.save_interval_updates > 0 and num_updates % cfg.save_interval_updates == 0:
        names.append(f"checkpoint_{epoch}_{num_updates}.pt")
    if is_best:
        names.append("checkpoint_best.pt")
    names.append("checkpoint_last.pt")
    return names


def write_checkpoint(state: dict[str, Any], save_dir: Path, names: list[str]) -> Path:
    """Serialize `state` once under names[0] and give it the other names; returns the first path."""
    first = save_dir / names[0]
    save_checkpoint(state, first)
    for name in names[1:]:
        copy_checkpoint(first, save_dir / name)
    also = f" (also as {', '.join(names[1:])})" if names[1:] else ""
    logger.info("saved checkpoint %s%s", first, also)
    return first


def prune_checkpoints(cfg: TrainConfig, save_dir: Path) -> None:
    """Delete the oldest update/epoch checkpoints beyond --keep-interval-updates / --keep-last-epochs."""
    for keep, pattern, key in ((cfg.keep_interval_updates, _UPDATE_RE, lambda m: int(m.group(2))),
                               (cfg.keep_last_epochs, _EPOCH_RE, lambda m: int(m.group(1)))):
        if keep < 0:
            continue
        found = sorted(((key(m), p) for p in save_dir.iterdir() if (m := pattern.match(p.name))), reverse=True)
        for _, path in found[keep:]:
            path.unlink(missing_ok=True)
            logger.info("removed old checkpoint %s", path)


def restore_path(cfg: TrainConfig) -> Path | None:
    """The checkpoint to resume from: --restore-file (relative to --save-dir unless a path), if it exists.

    Raises:
        ConfigError: an explicitly given --restore-file does not exist.
    """
    given = Path(cfg.restore_file)
    path = given if given.is_absolute() or given.parent != Path(".") else cfg.save_dir / given
    if path.is_file():
        return path
    if cfg.restore_file != TrainConfig.restore_file:
        raise ConfigError(f"--restore-file {cfg.restore_file}: no such file ({path})")
    return None


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and primitives (loadable with weights_only=True)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    cuda = devices.cuda_rng_states()
    if cuda is not None:
        state["cuda"] = cuda
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved (CUDA states only when this machine has as many devices)."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    devices.set_cuda_rng_states(state.get("cuda"))
