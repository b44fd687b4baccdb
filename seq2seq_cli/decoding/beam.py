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
            cand = lprobs[:, :1, :]  # all K rows are the same BOS prefix: expand from one
        else:
            cand = lprobs + scores.unsqueeze(-1)
        flat = cand.reshape(bsz, -1)
        top_scores, top_idx = flat.topk(min(2 * beam, flat.size(1)), dim=1)
        return top_scores, top_idx % vocab, top_idx // vocab
