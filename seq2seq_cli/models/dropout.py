"""Dropout whose random mask costs less on the CPU than `F.dropout`'s.

Why: `F.dropout` draws its mask with `bernoulli_`, one random draw and a float compare per element: 10.9 ms for a
(110, 32, 256) activation on our 2-core VMs, 17 calls a training step of the reference model (7% of the step).
Here one 64-bit draw gives the bits of two elements, compared as int32 against a threshold: 4.5 ms for the same
mask (benchmarks.md, "Training on the AVX2 VM, 2026-12-02"). The keep probability is 1 - round(p * 2**32) / 2**32,
within 2**-33 of 1 - p. The bits come from torch's default generator, so `--seed` and the RNG states that
checkpoints save make masks reproducible and resumable exactly as before. On other devices `F.dropout` is used.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A bool tensor of `shape`, each element True (kept) with probability 1 - p (0 <= p < 1)."""
    numel = math.prod(shape)
    threshold = -2**31 + round(p * 2**32)
    if threshold > 2**31 - 1:  # p within 2**-33 of 1: nothing is kept (an int32 compare cannot say so)
        return torch.zeros(shape, dtype=torch.bool, device=device)
    bits = torch.empty((numel + 1) // 2, dtype=torch.int64, device=device).random_(-2**63, None)
    # int32 values are uniform over [-2**31, 2**31): P(value >= threshold) = 1 - round(p * 2**32) / 2**32.
    return bits.view(torch.int32)[:numel].view(shape) >= threshold


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout(x, p, training)` with the mask of `keep_mask` on the CPU; the identity when not training or p = 0.

    Shape: x (...) -> (...)
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)
    return x.mul(keep_mask(x.shape, p, x.device)).mul_(1.0 / (1.0 - p))
