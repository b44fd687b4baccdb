"""Beam search (fairseq's `BeamSearch`): keep the K best prefixes of each sentence by cumulative log-probability.

The length penalty (`--lenpen`) is applied by the loop when a hypothesis finishes, as in fairseq: the final score is
sum(log p) / length ** lenpen, and a sentence stops once K hypotheses have finished (fairseq's early stopping).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from seq2seq_cli.decoding.base import DecodingStrategy
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import DECODING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class BeamConfig:
    """Beam search options (fairseq's names and defaults)."""

    beam: int = field(default=5, metadata={"help": "beam size: hypotheses kept per sentence"})

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ConfigError(f"--beam {self.beam}: must be at least 1")


@DECODING.register("beam")
class BeamSearch(DecodingStrategy):
    """Top 2K continuations over all K hypotheses x V tokens, so K survive even when some of them end."""

    Config = BeamConfig

    def step(self, step: int, lprobs: "torch.Tensor", scores: "torch.Tensor"
             ) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """Shape: lprobs (B, K, V), scores (B, K) -> three (B, 2K) tensors, best first."""
        bsz, beam, vocab = lprobs.shape
        if step == 0:
            flat = lprobs[:, 0, :]  # all K rows are the same BOS prefix: expand from one
            top_scores, top_idx = flat.topk(min(2 * beam, vocab), dim=1)
            return top_scores, top_idx, top_idx.new_zeros(top_idx.shape)
        # A sentence's 2K best continuations are among its rows' own 2K best: take those first (one read of the
        # N x V log-probabilities), then add the scores to K x 2K candidates instead of to all K x V. The sums are
        # the same float additions as lprobs + scores over the whole vocabulary, so the candidates are too.
        width = min(2 * beam, vocab)
        row_lprobs, row_tokens = lprobs.topk(width, dim=2)  # (B, K, width)
        cand = (row_lprobs + scores.unsqueeze(-1)).view(bsz, -1)
        top_scores, top_idx = cand.topk(min(2 * beam, cand.size(1)), dim=1)
        return top_scores, row_tokens.view(bsz, -1).gather(1, top_idx), top_idx // width
