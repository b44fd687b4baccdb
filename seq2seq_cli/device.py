"""Resolve `--device`, `--precision` and `--threads`. The only module that asks torch which devices exist.

An explicit request for a device that is absent is an error, never a silent fallback to the CPU.
"""
from __future__ import annotations

import contextlib
import logging
import re
import torch

from seq2seq_cli.errors import DeviceError

logger = logging.getLogger(__name__)

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn a `--device` value into a torch.device.

    Raises:
        DeviceError: for a malformed value or a device that is not available on this machine.
    """
    spec = spec.strip().lower()
    if not _DEVICE_RE.match(spec):
        raise DeviceError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
        logger.info("device: %s (--device auto)", device)
        return device
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec}: CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"--device {spec}: only {count} CUDA device(s) visible "
                              "(check CUDA_VISIBLE_DEVICES); use cuda:0 .. cuda:{count - 1}")
        return torch.device("cuda", index)
    if spec == "mps" and not _mps_available():
        raise DeviceError("--device mps: MPS is not available on this machine; use --device cpu")
    return torch.device(spec)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse precisions the device cannot run."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise DeviceError(f"--precision {precision!r}: expected fp32, bf16 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(f"--precision fp16 needs a CUDA device (this run is on {device.type}); "
                          "use --precision bf16 or fp32")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for `precision` on `device` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def tune_allocator() -> bool:
    """Keep glibc malloc from returning large freed blocks to the kernel after every training step.

    Why: by default glibc serves blocks over 128 KiB (adaptively up to 32 MiB) with mmap and gives them back on free,
    so each step's activations are fresh pages that the kernel must fault in and zero again. On the 2-core VMs we
    measure on this made fp32 training about 7% slower (2,400 vs 2,570 target tok/s, docs/benchmarks.md) and small
    tensor ops up to 40x slower. Same effect as MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647.
    A no-op (returns False) where libc has no mallopt (macOS, Windows, musl) or the user set those variables.
    """
    import ctypes
    import ctypes.util
    import os

    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h> constants
    mmap_ok = mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    trim_ok = mallopt(m_trim_threshold, 2**31 - 1)  # the value is a C int: 2 GiB is the most it can say
    return bool(mmap_ok and trim_ok)


def set_threads(threads: int | None) -> None:
    """Apply `--threads` to torch's intra-op pool (and tune the allocator: see `tune_allocator`)."""
    tune_allocator()
    if threads is None:
        return
    if threads < 1:
        raise DeviceError(f"--threads {threads}: must be at least 1")
    torch.set_num_threads(threads)
