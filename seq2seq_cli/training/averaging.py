"""Checkpoint averaging (fairseq's scripts/average_checkpoints.py): the mean of the weights of several checkpoints.

The average is taken in fp32 over floating-point tensors and cast back to each tensor's dtype; integer tensors
(counters, buffers) are copied from the first checkpoint. Everything else (model config, tokenizers, languages)
comes from the last checkpoint given; the training state (optimizer moments, iterator position) is dropped, so
the result is for generation or fine-tuning, not for resuming. Checkpoints are read one at a time, so memory is
about two models whatever their number.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from seq2seq_cli.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

# fairseq's file names: checkpoint{epoch}.pt and checkpoint_{epoch}_{updates}.pt
_PATTERNS = {"epoch": re.compile(r"checkpoint(\d+)\.pt"), "update": re.compile(r"checkpoint_\d+_(\d+)\.pt")}
_NAMES = {"epoch": "checkpoint{epoch}.pt", "update": "checkpoint_{epoch}_{updates}.pt"}


def last_checkpoints(save_dir: Path, n: int, by: Literal["epoch", "update"] = "epoch",
                     upper_bound: int | None = None) -> list[Path]:
    """The `n` newest epoch (or update) checkpoints in `save_dir`, newest first, ignoring those after `upper_bound`.

    Raises:
        ConfigError: `save_dir` is not a folder, or `n` < 1.
        CheckpointError: fewer than `n` matching checkpoints.
    """
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        raise ConfigError(f"--inputs {save_dir}: not a folder (--num-{by}-checkpoints needs the folder of a run)")
    if n < 1:
        raise ConfigError(f"--num-{by}-checkpoints {n}: must be at least 1")
    found = []
    for path in save_dir.iterdir():
        match = _PATTERNS[by].fullmatch(path.name)
        if match and (upper_bound is None or int(match.group(1)) <= upper_bound):
            found.append((int(match.group(1)), path))
    if len(found) < n:
        bound = f" up to {by} {upper_bound} (--checkpoint-upper-bound)" if upper_bound is not None else ""
        raise CheckpointError(f"{save_dir}: found {len(found)} {by} checkpoint(s) ({_NAMES[by]}){bound}, "
                              f"but --num-{by}-checkpoints asks for {n}")
    found.sort(key=lambda item: item[0], reverse=True)
    return [path for _, path in found[:n]]


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """A checkpoint dict whose model weights are the mean of those of `paths`.

    Raises:
        ConfigError: no paths.
        CheckpointError: a file is missing or damaged, or the checkpoints hold different models (parameter
            names, shapes) or different tokenizers.
    """
    from seq2seq_cli.checkpoint import load_checkpoint

    if not paths:
        raise ConfigError("no checkpoints to average; give files with --inputs, or a folder with "
                          "--num-epoch-checkpoints / --num-update-checkpoints")
    sums: dict[str, torch.Tensor] = {}
    first: dict[str, torch.Tensor] = {}
    state: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    for i, path in enumerate(paths):
        state = load_checkpoint(path)
        weights = state["model"].get("state_dict")
        if not isinstance(weights, dict):
            raise CheckpointError(f"{path}: the checkpoint holds no model weights (model.state_dict)")
        if i == 0:
            first, reference = weights, state
            sums = {k: v.detach().to(torch.float32).clone() for k, v in weights.items() if v.is_floating_point()}
            continue
        _check_compatible(reference, paths[0], state, path)
        for key, total in sums.items():
            total.add_(weights[key].to(torch.float32))
    averaged = {}
    for key, value in first.items():
        averaged[key] = (sums[key] / len(paths)).to(value.dtype) if key in sums else value.clone()
    result = {k: v for k, v in state.items() if k != "train"}
    result["model"] = {**state["model"], "state_dict": averaged}
    result["averaged_from"] = [str(p) for p in paths]
    return result


def _check_compatible(reference: dict[str, Any], ref_path: Path, state: dict[str, Any], path: Path) -> None:
    """CheckpointError unless `state` holds the same parameters (names, shapes, dtypes) and tokenizers."""
    ref_w, w = reference["model"]["state_dict"], state["model"]["state_dict"]
    if list(ref_w) != list(w):
        missing, extra = sorted(set(ref_w) - set(w)), sorted(set(w) - set(ref_w))
        detail = f"missing {', '.join(missing[:5]) or 'none'}; extra {', '.join(extra[:5]) or 'none'}"
        if not missing and not extra:
            detail = "the same names in a different order"
        raise CheckpointError(f"{path}: its parameters differ from those of {ref_path} ({detail}); "
                              "only checkpoints of the same model can be averaged")
    for key, value in ref_w.items():
        if w[key].shape != value.shape or w[key].dtype != value.dtype:
            raise CheckpointError(f"{path}: parameter {key} is {tuple(w[key].shape)} {w[key].dtype}, but "
                                  f"{tuple(value.shape)} {value.dtype} in {ref_path}; only checkpoints of the "
                                  "same model can be averaged")
    if reference.get("tokenizers") != state.get("tokenizers"):
        raise CheckpointError(f"{path}: its tokenizers differ from those of {ref_path}; only checkpoints of the "
                              "same run (same vocabulary) can be averaged")


@dataclass(frozen=True)
class AverageConfig:
    """`seq2seq average-checkpoints`: which checkpoints to average and where to write the result."""

    inputs: tuple[Path, ...] = field(default=(), metadata={"help": "checkpoint files, or one run folder"})
    output: Path = field(default=Path("averaged.pt"), metadata={"help": "file to write"})
    num_epoch_checkpoints: int | None = field(default=None, metadata={"help": "average the last N epoch checkpoints"})
    num_update_checkpoints: int | None = field(default=None,
                                              metadata={"help": "average the last N update checkpoints"})
    checkpoint_upper_bound: int | None = field(default=None,
                                               metadata={"help": "ignore checkpoints after this epoch/update"})


def select_checkpoints(cfg: AverageConfig) -> list[Path]:
    """The checkpoint files `cfg` names: its files, or the last N epoch/update checkpoints of its folder.

    Raises:
        ConfigError: inconsistent flags.
        CheckpointError: see `last_checkpoints`.
    """
    if cfg.num_epoch_checkpoints is not None and cfg.num_update_checkpoints is not None:
        raise ConfigError("--num-epoch-checkpoints and --num-update-checkpoints cannot be used together")
    if cfg.num_epoch_checkpoints is None and cfg.num_update_checkpoints is None:
        if cfg.checkpoint_upper_bound is not None:
            raise ConfigError("--checkpoint-upper-bound needs --num-epoch-checkpoints or --num-update-checkpoints")
        for path in cfg.inputs:
            if Path(path).is_dir():
                raise ConfigError(f"--inputs {path} is a folder: give checkpoint files, or add "
                                  "--num-epoch-checkpoints N / --num-update-checkpoints N to pick from it")
        return [Path(p) for p in cfg.inputs]
    by: Literal["epoch", "update"] = "epoch" if cfg.num_epoch_checkpoints is not None else "update"
    n = cfg.num_epoch_checkpoints if by == "epoch" else cfg.num_update_checkpoints
    if len(cfg.inputs) != 1:
        raise ConfigError(f"--num-{by}-checkpoints needs exactly one folder in --inputs (got {len(cfg.inputs)})")
    return last_checkpoints(Path(cfg.inputs[0]), int(n), by, cfg.checkpoint_upper_bound)  # type: ignore[arg-type]


def run_average(cfg: AverageConfig) -> list[Path]:
    """Average the checkpoints `cfg` selects and write `cfg.output` atomically; returns the files averaged."""
    from seq2seq_cli.checkpoint import save_checkpoint

    paths = select_checkpoints(cfg)
    logger.info("averaging %d checkpoint(s): %s", len(paths), ", ".join(str(p) for p in paths))
    averaged = average_checkpoints(paths)
    save_checkpoint(averaged, cfg.output)
    logger.info("wrote the averaged checkpoint to %s", cfg.output)
    return paths
