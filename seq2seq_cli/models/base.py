"""The model contract that training, decoding and plugins rely on.

A model is an encoder-decoder split the way beam search needs it (as in the Annotated Transformer):

    enc = model.encode(src_tokens)                       # once per batch
    logits = model.decode(tgt_in, enc)                   # teacher forcing: all positions at once
    state = {}                                           # incremental decoding: one new position per call
    logits = model.decode(tgt_in[:, : t + 1], enc, state)   # only the last position is computed

Conventions: batch_first; boolean masks with torch's polarity (True = may not attend / is padding);
`src_pad_mask` is True at padding. Token id tensors are int64.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class EncoderOut:
    """What the encoder hands the decoder.

    Shape:
        out: (B, S, D) encoder states
        src_pad_mask: (B, S) bool, True at padding
    """

    out: torch.Tensor
    src_pad_mask: torch.Tensor

    def reorder(self, new_order: torch.Tensor) -> "EncoderOut":
        """Select batch rows `new_order` (B',), e.g. to expand each sentence to its beam."""
        return EncoderOut(self.out.index_select(0, new_order), self.src_pad_mask.index_select(0, new_order))


@dataclass
class ProjectedLogits:
    """Logits not computed yet: `hidden @ weight.T` at N target positions, for a criterion that projects piece by
    piece (training/loss.py), so that no (N, V) tensor is ever materialized (112 MB at the reference batch, and
    as much again for its gradient).

    `dtype` is what the projection runs in: the autocast dtype where the model ran under autocast (bf16), else the
    hidden states' own; the criterion runs outside autocast, so it has to be told.

    Shape:
        hidden: (N, D); weight: (V, D)
    """

    hidden: torch.Tensor
    weight: torch.Tensor
    dtype: torch.dtype

    @classmethod
    def of(cls, hidden: torch.Tensor, weight: torch.Tensor) -> "ProjectedLogits":
        """Record the projection of `hidden` by `weight` in the dtype the current autocast state would use."""
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        return cls(hidden, weight, dtype)

    def materialize(self) -> torch.Tensor:
        """The (N, V) logits, in `dtype`."""
        return self.hidden.to(self.dtype) @ self.weight.to(self.dtype).t()


# Incremental state: a dict owned by the caller, filled by the decoder (per-layer key/value caches).
IncrementalState = dict[str, Any]


class Seq2SeqModel(nn.Module):
    """Base class of registered models. Subclasses define a dataclass `Config` and implement the methods below."""

    Config: ClassVar[type]

    @classmethod
    def build(cls, cfg: Any, src_vocab_size: int, tgt_vocab_size: int, pad_id: int) -> "Seq2SeqModel":
        """Construct the model from its config and the vocabulary sizes."""
        raise NotImplementedError

    def encode(self, src_tokens: torch.Tensor) -> EncoderOut:
        """Encode a padded source batch.

        Shape:
            src_tokens: (B, S) int64, padded with the pad id (which the model knows from `build`)
        """
        raise NotImplementedError

    def decode(self, tgt_in: torch.Tensor, enc: EncoderOut,
               incremental_state: IncrementalState | None = None) -> torch.Tensor:
        """Next-token logits (before softmax).

        Args:
            tgt_in: (B, T) decoder input, starting with BOS.
            enc: the encoder output for the same B rows.
            incremental_state: None to compute all T positions (training, scoring). A dict to decode
                incrementally: the caller passes the whole prefix each step, the decoder computes only the last
                position using (and extending) the cache kept in the dict, and returns (B, 1, V).
        Returns:
            (B, T, V) logits, or (B, 1, V) when incremental.
        """
        raise NotImplementedError

    def reorder_incremental_state(self, incremental_state: IncrementalState, new_order: torch.Tensor) -> None:
        """Reorder the cached keys/values in place along the batch dimension (beam search moves hypotheses)."""
        raise NotImplementedError

    def forward(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V)."""
        return self.decode(tgt_in, self.encode(src_tokens))

    def logits_for_loss(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, keep_mask: torch.Tensor,
                        projected: bool = False) -> torch.Tensor | ProjectedLogits:
        """Teacher-forced logits at the positions where `keep_mask` is True (the non-padding targets).

        Training only needs these rows; a model may override this to skip the output projection at padding, and,
        asked for `projected`, to return `ProjectedLogits` (hidden states and output weight) instead of logits.
        Every criterion accepts both; this default always returns logits.

        Shape:
            src_tokens: (B, S); tgt_in: (B, T); keep_mask: (B, T) bool -> (N, V) with N = keep_mask.sum()
        """
        return self.forward(src_tokens, tgt_in)[keep_mask]

    def max_positions(self) -> tuple[int, int]:
        """(max source length, max target length) in tokens, EOS/BOS included."""
        raise NotImplementedError
