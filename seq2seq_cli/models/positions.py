"""Positional encodings: fairseq-style sinusoids (the default) and learned position embeddings.

Both map a (B, T) tensor of position indices (0 = first token) to (B, T, D) vectors; `positions_of` computes those
indices so that padding anywhere (left or right) does not shift the positions of the real tokens.

The sinusoid table is fairseq's `SinusoidalPositionalEmbedding.get_embedding` (sines in the first half of the
vector, cosines in the second), indexed from position 0 instead of fairseq's `padding_idx + 1`. It is a
non-persistent buffer, so checkpoints do not carry it; an exporter (e.g. to CTranslate2, whose TransformerSpec
stores the table as `position_encodings`) recomputes it with `sinusoid_table`.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """The sinusoidal encodings of positions 0 .. num_positions - 1.

    Shape:
        returns (num_positions, dim) float32
    """
    half = dim // 2
    # max(1, .) keeps dim=2 finite (fairseq divides by half - 1 as well).
    step = math.log(10000.0) / max(1, half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    angles = torch.arange(num_positions, dtype=torch.float32)[:, None] * freqs[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:  # odd width: one zero column, as fairseq
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    return table


def positions_of(pad_mask: torch.Tensor | None, length: int, device: torch.device) -> torch.Tensor:
    """Position indices of a batch: 0, 1, 2, ... over the real tokens of each row.

    Without padding this is a plain arange (1, T), broadcast over the batch. With padding, the index counts only
    non-padding tokens (fairseq's `make_positions`), so a left-padded row numbers its tokens from 0 as well; the
    value at padding is irrelevant (padding is never attended to).

    Shape:
        pad_mask: (B, T) bool, True at padding, or None -> (B, T) or (1, T) int64
    """
    if pad_mask is None:
        return torch.arange(length, device=device).unsqueeze(0)
    return (torch.cumsum(~pad_mask, dim=1) - 1).clamp_(min=0)


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal position encodings (no parameters)."""

    def __init__(self, dim: int, max_positions: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("table", sinusoid_table(max_positions, dim), persistent=False)

    def forward(self, positions: torch.Tensor, num_positions: int) -> torch.Tensor:
        """Encodings of `positions`, all of which are below `num_positions` (the caller knows that bound).

        Shape:
            positions: (B, T) int64 -> (B, T, D)
        """
        table = self.table
        if num_positions > table.size(0):  # longer than max_*_positions: sinusoids extend, as in fairseq
            table = sinusoid_table(num_positions, self.dim).to(table)
        return nn.functional.embedding(positions, table)


class LearnedPositions(nn.Embedding):
    """Learned position embeddings, one vector per position up to `max_positions` (fairseq's --*-learned-pos)."""

    def __init__(self, dim: int, max_positions: int) -> None:
        super().__init__(max_positions, dim)
        nn.init.normal_(self.weight, mean=0.0, std=dim ** -0.5)

    def forward(self, positions: torch.Tensor, num_positions: int) -> torch.Tensor:  # type: ignore[override]
        """Embeddings of `positions`, all of which are below `num_positions`.

        Shape:
            positions: (B, T) int64 -> (B, T, D)
        """
        if num_positions > self.num_embeddings:
            raise ValueError(
                f"a sequence of {num_positions} positions exceeds the model's {self.num_embeddings} learned "
                "positions; truncate inputs to model.max_positions()"
            )
        return super().forward(positions)


def build_positions(dim: int, max_positions: int, learned: bool) -> nn.Module:
    """Learned or sinusoidal position encodings of width `dim`."""
    return LearnedPositions(dim, max_positions) if learned else SinusoidalPositions(dim, max_positions)
