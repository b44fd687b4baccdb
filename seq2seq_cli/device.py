"""Resolve `--device`, `--precision` and `--threads`. The only module that asks torch which devices exist.

An explicit request for a device that is absent is an error, never a silent fallback to the CPU. CUDA devices are
the ones CUDA_VISIBLE_DEVICES lets this process see (torch numbers them from 0). Under torchrun every process on a
machine takes the GPU of its local rank (`local_rank`), so `--device cuda` (or auto) means "my GPU".
"""
from __future__ import annotations

import contextlib
import logging
import os
import re

import torch

from seq2seq_cli.errors import DeviceError

logger = logging.getLogger(__name__)

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto", local_rank: int | None = None, local_world_size: int = 1) -> torch.device:
    """Turn a `--device` value into a torch.device.

    Args:
        spec: auto, cpu, cuda, cuda:N or mps.
        local_rank: this process's rank on its machine under torchrun (None: not distributed); `cuda` and auto
            then pick cuda:local_rank.
        local_world_size: processes on this machine; more than one cannot share an explicit cuda:N.

    Raises:
        DeviceError: for a malformed value or a device that is not available on this machine.
    """
    spec = spec.strip().lower()
    if not _DEVICE_RE.match(spec):
        raise DeviceError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            device = _cuda_device(spec, local_rank or 0, local_rank)
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        logger.info("device: %s (--device auto%s)", device,
                    f"; CUDA_VISIBLE_DEVICES={visible}" if device.type == "cuda" and visible is not None else "")
        return device
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec}: CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu")
        if ":" in spec and local_world_size > 1:
            raise DeviceError(f"--device {spec}: the {local_world_size} processes on this machine would share one "
                              "GPU; use --device cuda (each process takes the GPU of its LOCAL_RANK) and choose "
                              "the GPUs with CUDA_VISIBLE_DEVICES")
        index = int(spec.split(":")[1]) if ":" in spec else (local_rank or 0)
        return _cuda_device(spec, index, local_rank if ":" not in spec else None)
    if spec == "mps" and not _mps_available():
        raise DeviceError("--device mps: MPS is not available on this machine; use --device cpu")
    return torch.device(spec)


def _cuda_device(spec: str, index: int, local_rank: int | None) -> torch.device:
    count = torch.cuda.device_count()
    if index < count:
        return torch.device("cuda", index)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    seen = f"{count} CUDA device(s) visible (CUDA_VISIBLE_DEVICES={visible if visible is not None else 'unset'})"
    if local_rank is not None:
        raise DeviceError(f"--device {spec}: process {local_rank} on this machine needs cuda:{index}, but only "
                          f"{seen}; start at most {count} process(es) per machine "
                          "(torchrun --nproc_per_node, or --distributed-world-size)")
    raise DeviceError(f"--device {spec}: only {seen}; use cuda:0 .. cuda:{count - 1}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cuda_device_count() -> int:
    """CUDA devices this process can see (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def bind(device: torch.device) -> None:
    """Make `device` the current CUDA device of this process (NCCL and CUDA's default stream use it)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)


def cuda_rng_states() -> list[torch.Tensor] | None:
    """The RNG state of every visible CUDA device (None without CUDA), for exact resume."""
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def set_cuda_rng_states(states: list[torch.Tensor] | None) -> None:
    """Restore `cuda_rng_states()`, when this machine has as many devices as the one that saved them."""
    if states and torch.cuda.is_available() and len(states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states)


# What running out of device memory raises: torch.OutOfMemoryError (torch >= 2.5; torch.cuda's is an alias).
OUT_OF_MEMORY: type[BaseException] = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def free_cached_memory(device: torch.device) -> None:
    """Return the allocator's cached blocks to the device (after a batch ran out of memory)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse precisions the device cannot run."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise DeviceError(f"--precision {precision!r}: expected fp32, bf16 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(f"--precision fp16 needs a CUDA device (this run is on {device.type}); "
                          "use --precision bf16 or fp32")
    # Without native support (compute capability < 8.0) CUDA emulates bf16, many times slower than fp16.
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise DeviceError(f"--precision bf16: {device} has no native bfloat16 (it needs compute capability 8.0 or "
                          "newer); use --precision fp16 or fp32")


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
