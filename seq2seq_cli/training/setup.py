"""Assemble a training run from a `TrainConfig`: device, data, model, loss, optimizer, schedule, batches.

Everything that can be wrong with the flags, the data or a checkpoint to resume is found here, before the first
update. How the run starts:

- resume: --restore-file (default SAVE_DIR/checkpoint_last.pt) exists: model config and training state come from
  it; a model flag that contradicts it is an error.
- fine-tune: --finetune-from-model and nothing to resume: the model (config and weights) comes from that file,
  flags apply on top, the training state starts fresh.
- new: the model comes from --arch and the flags.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seq2seq_cli import device as devices
from seq2seq_cli import distributed
from seq2seq_cli.checkpoint import build_model, load_checkpoint
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.training import components
from seq2seq_cli.training.checkpointing import restore_path
from seq2seq_cli.training.config import TrainConfig
from seq2seq_cli.training.datasets import Split, TrainData, check_data_fits, load_split, open_data
from seq2seq_cli.training.validation import check_bleu_options

logger = logging.getLogger(__name__)


@dataclass
class Start:
    """Where the run starts: mode "new", "resume" or "finetune", and the checkpoint it reads (if any)."""

    mode: str
    state: dict[str, Any] | None = None
    path: Path | None = None


@dataclass
class RunParts:
    """Everything the Trainer needs, built and checked."""

    cfg: TrainConfig
    device: torch.device
    data: TrainData
    spec: components.ModelSpec
    model: nn.Module
    criterion: Any
    train: Split
    valid: list[Split]
    start: Start
    rank: int = 0
    world_size: int = 1


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (model initialization; dropout is re-seeded at every update)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def find_start(cfg: TrainConfig) -> Start:
    """Resume, fine-tune or start anew (see the module docstring)."""
    path = restore_path(cfg)
    if path is not None:
        if cfg.finetune_from_model is not None:
            logger.warning("%s exists: resuming that run; --finetune-from-model is ignored", path)
        return Start("resume", load_checkpoint(path), path)
    if cfg.finetune_from_model is not None:
        return Start("finetune", load_checkpoint(cfg.finetune_from_model), Path(cfg.finetune_from_model))
    return Start("new")


def check_compatible(start: Start, data: TrainData, cfg: TrainConfig) -> None:
    """A checkpoint must share the DATA_DIR's tokenizers (and, to resume, its direction)."""
    if start.state is None:
        return
    state, source = start.state, start.path
    if state.get("tokenizers") != data.tokenizer_json():
        raise ConfigError(f"{source} was trained with other tokenizers than {cfg.data} has; use the DATA_DIR it "
                          "was trained on (or start a new run with a fresh --save-dir)")
    langs = {"src": data.src_lang, "tgt": data.tgt_lang}
    if start.mode == "resume" and state.get("langs") != langs:
        saved = state.get("langs") or {}
        raise ConfigError(f"{source} trains {saved.get('src')}->{saved.get('tgt')}, not {langs['src']}->"
                          f"{langs['tgt']}; drop -s/-t to resume it, or use a fresh --save-dir")


def check_world_size(start: Start, world_size: int, reset_dataloader: bool) -> None:
    """A run resumes mid-epoch only with the number of processes that saved it; at an epoch's end, with any.

    Why: each rank's position in the epoch is a count of its own batches (rank r takes batches r, r + W, ...);
    with another W that count points elsewhere, so batches would be repeated or skipped.
    """
    if start.mode != "resume" or reset_dataloader:
        return
    position = start.state["train"]["iterator"]
    saved = position.get("world_size")
    if saved is None or saved == world_size:
        return
    if position["iterations_in_epoch"] > 0:
        epoch = position["epoch"]
        other = (f"from an end-of-epoch checkpoint (--restore-file checkpoint{epoch - 1}.pt)" if epoch > 1
                 else "from the start of the data (--reset-dataloader)")
        raise ConfigError(f"{start.path} was saved by {saved} process(es) in the middle of epoch {epoch}; resume "
                          f"it with {saved} (torchrun --nproc_per_node, --distributed-world-size), or with "
                          f"{world_size} {other}")
    logger.warning("%s was saved by %d process(es), this run has %d: each update now sees %s as many tokens "
                   "(scale --lr or --update-freq to keep the schedule)", start.path, saved, world_size,
                   f"{world_size / saved:g} times")


def model_spec(cfg: TrainConfig, start: Start) -> components.ModelSpec:
    if start.state is None:
        return components.model_from_arch(cfg)
    return components.model_from_checkpoint(cfg, start.state, str(start.path), resume=start.mode == "resume")


def build_train_model(cfg: TrainConfig, spec: components.ModelSpec, data: TrainData, start: Start,
                      device: torch.device) -> nn.Module:
    """Build the model (seeded), load the checkpoint's weights when resuming or fine-tuning, move to `device`."""
    seed_everything(cfg.seed)
    model = build_model(spec.name, spec.config, data.src_tokenizer, data.tgt_tokenizer)
    if start.state is not None:
        try:
            model.load_state_dict(start.state["model"]["state_dict"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"the weights of {start.path} do not fit the model built from the flags ({first}); "
                              "drop the model flags that change its shape") from None
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("model %s (arch %s): %d parameters", spec.name, spec.arch, n_params)
    return model.to(device)


def build_parts(cfg: TrainConfig) -> RunParts:
    """Check the configuration and build every part of the run."""
    devices.set_threads(cfg.threads)
    where = distributed.placement()
    in_job = where.distributed or distributed.launched_by_torchrun()
    if cfg.distributed_world_size is not None and in_job and cfg.distributed_world_size != where.world_size:
        raise ConfigError(f"--distributed-world-size {cfg.distributed_world_size}, but torchrun started "
                          f"{where.world_size} processes; drop the flag under torchrun")
    if cfg.ddp_backend is not None and not where.distributed:
        raise ConfigError(f"--ddp-backend {cfg.ddp_backend}: this run is a single process (no torchrun, no "
                          "--distributed-world-size N); drop the flag")
    local = (where.local_rank, where.local_world_size) if where.distributed else (None, 1)
    device = devices.resolve_device(cfg.device, *local)
    devices.check_precision(cfg.precision, device)
    distributed.join(where, device, cfg.ddp_backend)
    components.check_components(cfg)
    if cfg.eval_bleu:
        check_bleu_options(cfg)
    data = open_data(cfg)
    start = find_start(cfg)
    # On several machines each one reads SAVE_DIR: a checkpoint only rank 0's machine has would split the job.
    distributed.check_agree((start.mode, start.state["train"]["num_updates"] if start.mode == "resume" else 0),
                            where, "how the run starts (mode, updates done)",
                            "every machine must see the same --save-dir (put it on shared storage)")
    check_compatible(start, data, cfg)
    check_world_size(start, where.world_size, cfg.reset_dataloader)
    spec = components.fit_criterion(model_spec(cfg, start), cfg, None if start.state is None else str(start.path))
    check_data_fits(data, spec.name, spec.config)
    model = build_train_model(cfg, spec, data, start, device)
    criterion = components.build_criterion(cfg)
    if getattr(model, "ctc_proj", None) is not None and not getattr(criterion, "uses_ctc", False):
        # A CTC head that this criterion does not train (fine-tuning with plain cross-entropy) stays as it is:
        # frozen, so that DDP does not wait for gradients it never gets.
        model.ctc_proj.requires_grad_(False)
    max_positions = model.max_positions()
    train = load_split(data, cfg.train_subset, cfg, max_positions)
    valid = [load_split(data, name, cfg, max_positions) for name in cfg.valid_subsets]
    direction, unit = (f"a language model of {data.src_lang}", "sentences") if data.datadir.monolingual else \
        (f"{data.src_lang}->{data.tgt_lang}", "pairs")
    logger.info("training %s on %s: %d %s in %d batches; validating on %s", direction, cfg.train_subset,
                len(train.dataset) - train.skipped, unit, len(train.batches), ", ".join(cfg.valid_subsets) or "nothing")
    return RunParts(cfg, device, data, spec, model, criterion, train, valid, start, where.rank,
                    where.world_size)
