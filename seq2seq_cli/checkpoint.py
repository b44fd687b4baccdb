"""Checkpoints: plain dicts of tensors and primitives, written atomically, read with `weights_only=True`.

Layout (format_version 1)::

    {"format_version": 1, "tool_version": "0.1.0",
     "model": {"name": "transformer", "arch": "transformer_small", "config": {...}, "state_dict": {...}},
     "tokenizers": {"src": "<json>", "tgt": "<json>"},     # the same text twice when the dictionary is joined
     "langs": {"src": "es", "tgt": "en"},
     "train": {...},                                      # resume state; absent in averaged / exported files
     "sha256": "<hex>"}                                   # content checksum (see `content_digest`)

A checkpoint from a stranger must never run code, so only `torch.load(..., weights_only=True)` reads one; anything
that needs a pickle of a Python object (a dataclass, a Namespace, a numpy array) must be turned into primitives
before saving. Older format versions are upgraded on load through `MIGRATIONS`, in version order.

torch's zip archive has no checksum that `torch.load` checks: a flipped bit in a tensor loads as a different
number. So `save_checkpoint` stores a sha256 of the whole content (every key, value and tensor byte) and
`load_checkpoint` recomputes it: a damaged file is refused by name instead of giving a silently different model.
Files without the entry (written before it existed) load unchecked.

Known limitations: `load_model` builds the model on the CPU and then moves it, so peak host memory is about twice the
model's size.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from seq2seq_cli import __version__
from seq2seq_cli.errors import CheckpointError, Seq2SeqError, UnknownComponentError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DIGEST_KEY = "sha256"

# version v -> function turning a version-v checkpoint dict into a version-(v + 1) one. Applied in order on load.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


# ----------------------------------------------------------------------------------------------------- writing


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically: a temp file in the same folder, fsync, then os.replace.

    A crash at any moment leaves either the old file or the new one, never a half-written checkpoint.

    Raises:
        CheckpointError: the file cannot be written (disk full, quota, permissions); `path` is left as it was.
    """
    path = Path(path)
    state = {**{k: v for k, v in state.items() if k != DIGEST_KEY}, DIGEST_KEY: content_digest(state)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        _remove_quietly(tmp)
        cause = _os_error(exc)
        if cause is not None:
            raise _write_error(path, cause) from None
        raise
    _fsync_dir(path.parent)


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed write: itself, or the one torch's zip writer wrapped in a RuntimeError."""
    while exc is not None:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def content_digest(state: dict[str, Any]) -> str:
    """sha256 over the checkpoint's content (without its DIGEST_KEY): keys, primitives, tensor dtypes, shapes, bytes.

    The walk is in dict order, which pickling keeps, so the value computed before saving is recomputed on loading.
    """
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def _feed(digest: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(obj, dict):
        digest.update(f"D{len(obj)}:".encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"L{len(obj)}:".encode())
        for value in obj:
            _feed(digest, value)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        digest.update(f"S{len(data)}:".encode() + data)
    elif isinstance(obj, bytes):
        digest.update(f"B{len(obj)}:".encode() + obj)
    elif isinstance(obj, float) and math.isnan(obj):
        digest.update(b"Fnan;")
    else:  # None, bool, int, float, and whatever else weights_only lets through
        digest.update(f"{type(obj).__name__}{obj!r};".encode())


def _write_error(path: Path, exc: OSError) -> CheckpointError:
    previous = "the previous file is intact" if path.exists() else "no partial file was left"
    return CheckpointError(f"{path}: cannot write the checkpoint ({exc.strerror or exc}); {previous}; free disk "
                           "space (or choose another folder) and run again")


def copy_checkpoint(src: str | Path, dst: str | Path) -> None:
    """Give the already written checkpoint `src` a second name `dst`, atomically and cheaply.

    A hard link costs nothing; where links are not supported we copy. Either way the new name appears through
    os.replace, so a reader never sees a partial file. Replacing `dst` later never changes `src` (os.replace swaps
    directory entries, it does not write into the shared inode).
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        return
    tmp = dst.parent / f".{dst.name}.{os.getpid()}.tmp"
    _remove_quietly(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException as exc:
        _remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise _write_error(dst, exc) from None
        raise
    _fsync_dir(dst.parent)


def _remove_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (e.g. Windows), where it is skipped.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unwrap_model(module: nn.Module) -> nn.Module:
    """The plain model inside DDP (`.module`) and torch.compile (`._orig_mod`) wrappers, in any nesting.

    Save `unwrap_model(model).state_dict()` so the keys carry no `module.` / `_orig_mod.` prefixes.
    """
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


# ----------------------------------------------------------------------------------------------------- reading


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (weights_only, tensors on the CPU) and upgrade it to FORMAT_VERSION.

    Raises:
        CheckpointError: the file is missing, truncated or damaged, not a seq2seq_cli checkpoint, would need to run
            code to load (unsafe pickle), or comes from a newer seq2seq_cli.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "no such checkpoint file"
        raise CheckpointError(f"{path}: {what}")
    state = _torch_load(path)
    if not isinstance(state, dict) or "format_version" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a seq2seq_cli checkpoint (no format_version/model entries); "
                              "checkpoints of other toolkits must be converted first")
    _check_version(state["format_version"], path)  # before the checksum: a newer format may compute it otherwise
    if DIGEST_KEY in state and state[DIGEST_KEY] != content_digest(state):
        raise CheckpointError(f"{path}: damaged checkpoint (its content does not match the sha256 stored in it: a byte "
                              "changed after it was written); use another checkpoint (e.g. an earlier checkpoint_*.pt)")
    return _migrate(state, path)


def _torch_load(path: Path) -> Any:
    with open(path, "rb") as f:
        magic = f.read(4)
    # torch.save writes a zip archive; anything else (text, an old-style pickle, a stray file) is not ours.
    if magic != b"PK\x03\x04":
        what = "empty file" if not magic else "not a torch zip archive"
        raise CheckpointError(f"{path}: not a seq2seq_cli checkpoint ({what}); "
                              "if a training run was interrupted, use another checkpoint (e.g. checkpoint_last.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(
                f"{path}: refusing to load: the file holds Python objects that could run code when unpickled "
                "(only tensors and primitives are allowed); it was not written by seq2seq_cli or was tampered with"
            ) from None
        raise CheckpointError(f"{path}: damaged checkpoint ({_short(exc)})") from None
    except Exception as exc:  # the unpickler raises many types (KeyError, RuntimeError, ...) on damaged input
        if "central directory" in str(exc) or isinstance(exc, (EOFError, zipfile.BadZipFile)):
            raise CheckpointError(f"{path}: truncated checkpoint (the zip archive is incomplete); "
                                  "use another checkpoint (e.g. an earlier checkpoint_*.pt)") from None
        raise CheckpointError(f"{path}: damaged checkpoint ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _check_version(version: Any, path: Path) -> None:
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format v{version} is newer than this seq2seq_cli {__version__} "
            f"(reads up to v{FORMAT_VERSION}); upgrade seq2seq_cli"
        )


def _migrate(state: dict[str, Any], path: Path) -> dict[str, Any]:
    version = state["format_version"]
    while version < FORMAT_VERSION:
        if version not in MIGRATIONS:
            raise CheckpointError(f"{path}: no migration from checkpoint format v{version}")
        state = MIGRATIONS[version](state)
        version += 1
        state["format_version"] = version
    return state


# ----------------------------------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, ready for inference (eval mode, on its device)."""

    model: nn.Module
    src_tokenizer: Any  # seq2seq_cli.tokenization.base.Tokenizer
    tgt_tokenizer: Any
    model_name: str
    model_config: Any  # the model's Config dataclass
    state: dict[str, Any] = field(default_factory=dict)  # the checkpoint without weights and optimizer state
    path: Path | None = None


def build_model(name: str, model_cfg: Any, src_tokenizer: Any, tgt_tokenizer: Any) -> nn.Module:
    """Build registered model `name` from its Config and the two tokenizers (vocabulary sizes, pad id)."""
    from seq2seq_cli.registry import MODELS

    cls = MODELS.get(name, flag="--arch")
    return cls.build(model_cfg, src_tokenizer.vocab_size, tgt_tokenizer.vocab_size, tgt_tokenizer.pad_id)


def model_config_from_state(state: dict[str, Any], source: str = "checkpoint") -> tuple[str, Any]:
    """(model name, Config dataclass) from a checkpoint dict; fields missing in older files take their defaults."""
    from seq2seq_cli.config import from_dict
    from seq2seq_cli.registry import MODELS

    name = state["model"].get("name")
    try:
        cls = MODELS.get(name)
    except UnknownComponentError as exc:
        raise CheckpointError(f"{source}: the checkpoint needs model {name!r}, which is not available ({exc}); "
                              "install the plugin that defines it or pass --user-dir") from None
    try:
        cfg = from_dict(cls.Config, state["model"].get("config", {}), source=f"{source}: model config")
    except Seq2SeqError as exc:
        raise CheckpointError(str(exc)) from None
    return name, cfg


def tokenizers_from_state(state: dict[str, Any], source: str = "checkpoint") -> tuple[Any, Any]:
    """(source tokenizer, target tokenizer) restored from the JSON stored in the checkpoint."""
    from seq2seq_cli.tokenization.base import Tokenizer

    toks = state.get("tokenizers") or {}
    if "src" not in toks or "tgt" not in toks:
        raise CheckpointError(f"{source}: the checkpoint holds no tokenizers; it cannot translate raw text")
    try:
        src = Tokenizer.from_json(toks["src"], source=f"{source}: source tokenizer")
        tgt = src if toks["tgt"] == toks["src"] else Tokenizer.from_json(toks["tgt"],
                                                                           source=f"{source}: target tokenizer")
    except Seq2SeqError as exc:
        raise CheckpointError(str(exc)) from None
    return src, tgt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint and rebuild its model (eval mode, on `device`) and tokenizers.

    Raises:
        CheckpointError: see `load_checkpoint`; also when the weights do not fit the stored model config.
    """
    path = Path(path)
    state = load_checkpoint(path)
    name, cfg = model_config_from_state(state, str(path))
    src_tok, tgt_tok = tokenizers_from_state(state, str(path))
    model = build_model(name, cfg, src_tok, tgt_tok)
    try:
        model.load_state_dict(state["model"]["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not match the stored model config ({_short(exc)})") from None
    model.to(device).eval()
    return LoadedModel(model=model, src_tokenizer=src_tok, tgt_tokenizer=tgt_tok, model_name=name, model_config=cfg,
                       state=_light_state(state), path=path)


def _light_state(state: dict[str, Any]) -> dict[str, Any]:
    # Inference keeps the metadata (configs, langs, progress) but not the weights or the optimizer's moments.
    light = {k: v for k, v in state.items() if k not in ("model", "train")}
    light["model"] = {k: v for k, v in state["model"].items() if k != "state_dict"}
    train = state.get("train")
    if isinstance(train, dict):
        light["train"] = {k: v for k, v in train.items() if k in ("config", "num_updates", "epoch", "best")}
    return light
