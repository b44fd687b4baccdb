"""Greedy decoding: the single most probable next token at every step (one hypothesis per sentence)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from seq2seq_cli.decoding.base import DecodingStrategy
from seq2seq_cli.registry import DECODING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class GreedyConfig:
    """Greedy search has no options of its own (length limits and penalties belong to the loop)."""


@DECODING.register("greedy")
class GreedySearch(DecodingStrategy):
    """Argmax at each step; equals beam search with beam 1."""

    Config = GreedyConfig

    @property
    def beam_size(self) -> int:
        return 1

    def step(self, step: int, lprobs: "torch.Tensor", scores: "torch.Tensor"
             ) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """Shape: lprobs (B, 1, V), scores (B, 1) -> three (B, 1) tensors (see DecodingStrategy.step)."""
        best, tokens = lprobs.max(dim=-1)  # (B, 1) each
        return scores + best, tokens, tokens.new_zeros(tokens.shape)
