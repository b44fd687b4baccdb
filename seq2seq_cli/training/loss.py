"""Training criteria: label-smoothed cross-entropy (fairseq's formula) and plain cross-entropy.

Both take the logits at the non-pad target positions only, compute in fp32 whatever the logits' dtype (bf16
autocast), and return sums in nats; the trainer divides by the update's target tokens and logs base 2 as fairseq.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import CRITERIA


def _nll_and_smooth(logits: torch.Tensor, target: torch.Tensor, smooth: bool,
                    ignore_index: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Summed NLL of the targets and (if `smooth`) summed -log p over the vocabulary, from one log_softmax.

    Shape:
        logits: (N, V) any float dtype; target: (N,) int64.
    """
    lprobs = F.log_softmax(logits, dim=-1, dtype=torch.float32)  # upcast inside the kernel, no fp32 copy of logits
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    smooth_loss = -lprobs.sum(-1) if smooth else None
    if ignore_index is not None:
        keep = target != ignore_index
        nll = nll.masked_fill(~keep, 0.0)
        if smooth_loss is not None:
            smooth_loss = smooth_loss.masked_fill(~keep, 0.0)
    return nll.sum(), (smooth_loss.sum() if smooth_loss is not None else None)


@CRITERIA.register("label_smoothed_cross_entropy")
class LabelSmoothedCrossEntropy:
    """Cross-entropy against targets smoothed as in fairseq: eps_i = eps / (V - 1) on every other token.

    loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v), which equals torch's
    `F.cross_entropy(label_smoothing=eps * V / (V - 1))`.
    """

    @dataclass(frozen=True)
    class Config:
        """Settings of label_smoothed_cross_entropy."""

        label_smoothing: float = field(default=0.0, metadata={"help": "epsilon for label smoothing (0: none)"})

    def __init__(self, cfg: "LabelSmoothedCrossEntropy.Config") -> None:
        if not 0.0 <= cfg.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing {cfg.label_smoothing}: must be in [0, 1)")
        self.cfg = cfg
        self.eps = cfg.label_smoothing

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, *,
                 ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss_sum, nll_loss_sum) in nats, summed over the N positions (fp32 scalars).

        Args:
            logits: scores at the non-pad target positions.
            target: the target ids at those positions.
            ignore_index: optionally, a target id (pad) whose positions count for nothing.

        Shape:
            logits: (N, V); target: (N,).
        """
        if self.eps == 0.0:
            nll, _ = _nll_and_smooth(logits, target, False, ignore_index)
            return nll, nll.detach()
        nll, smooth = _nll_and_smooth(logits, target, True, ignore_index)
        eps_i = self.eps / (logits.size(-1) - 1)
        loss = (1.0 - self.eps - eps_i) * nll + eps_i * smooth
        return loss, nll.detach()


@CRITERIA.register("cross_entropy")
class CrossEntropy:
    """Plain cross-entropy (negative log-likelihood of the targets)."""

    @dataclass(frozen=True)
    class Config:
        """cross_entropy has no settings."""

    def __init__(self, cfg: "CrossEntropy.Config") -> None:
        self.cfg = cfg

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, *,
                 ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss_sum, nll_loss_sum) in nats; both the same number here.

        Shape:
            logits: (N, V); target: (N,).
        """
        nll, _ = _nll_and_smooth(logits, target, False, ignore_index)
        return nll, nll.detach()
