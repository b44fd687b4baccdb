"""Transformer blocks: the encoder layer and the decoder layer, post-LN (the original) or pre-LN.

Post-LN (`normalize_before=False`): x = LayerNorm(x + Dropout(Sublayer(x))) for each sublayer.
Pre-LN (`normalize_before=True`):   x = x + Dropout(Sublayer(LayerNorm(x))); the stack then ends with one more
LayerNorm (held by the encoder/decoder, not here).

Parameter names follow fairseq's (`self_attn`, `self_attn_layer_norm`, `encoder_attn`, `encoder_attn_layer_norm`,
`fc1`, `fc2`, `final_layer_norm`), which keeps conversion scripts (fairseq, CTranslate2) straightforward.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.models.attention import CrossAttention, SelfAttention
from seq2seq_cli.models.dropout import dropout

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


class _Block(nn.Module):
    """What encoder and decoder layers share: the residual wiring and the position-wise feed-forward part."""

    def __init__(self, dim: int, ffn_dim: int, dropout: float, activation_dropout: float, activation_fn: str,
                 normalize_before: bool) -> None:
        super().__init__()
        self.normalize_before, self.dropout, self.activation_dropout = normalize_before, dropout, activation_dropout
        self.activation = ACTIVATIONS[activation_fn]
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """fc2(activation_dropout(activation(fc1(x)))); shape (B, T, D) -> (B, T, D)."""
        h = self.activation(self.fc1(x))
        if self.activation_dropout > 0:
            h = dropout(h, self.activation_dropout, self.training)
        return self.fc2(h)

    def _residual(self, x: torch.Tensor, norm: nn.LayerNorm, sublayer: Callable[[torch.Tensor], torch.Tensor]
                  ) -> torch.Tensor:
        h = sublayer(norm(x) if self.normalize_before else x)
        x = x + dropout(h, self.dropout, self.training)
        return x if self.normalize_before else norm(x)


class EncoderLayer(_Block):
    """Self-attention then feed-forward, each with dropout, a residual connection and a LayerNorm."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, dropout: float, attention_dropout: float,
                 activation_dropout: float, activation_fn: str, normalize_before: bool) -> None:
        super().__init__(dim, ffn_dim, dropout, activation_dropout, activation_fn, normalize_before)
        self.self_attn = SelfAttention(dim, heads, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """Encode one layer.

        Shape:
            x: (B, S, D); attn_mask: (B, 1, 1, S) bool SDPA mask (True = may attend) or None -> (B, S, D)
        """
        x = self._residual(x, self.self_attn_layer_norm, lambda h: self.self_attn(h, attn_mask))
        return self._residual(x, self.final_layer_norm, self._feed_forward)


class DecoderLayer(_Block):
    """Causal self-attention, cross-attention to the encoder output, then feed-forward.

    Without `cross_attention` (a language model's layer: models/transformer_lm.py) the middle sublayer is absent
    and `memory` is not read.
    """

    def __init__(self, dim: int, ffn_dim: int, heads: int, dropout: float, attention_dropout: float,
                 activation_dropout: float, activation_fn: str, normalize_before: bool,
                 cross_attention: bool = True) -> None:
        super().__init__(dim, ffn_dim, dropout, activation_dropout, activation_fn, normalize_before)
        self.self_attn = SelfAttention(dim, heads, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.encoder_attn = CrossAttention(dim, heads, attention_dropout) if cross_attention else None
        self.encoder_attn_layer_norm = nn.LayerNorm(dim) if cross_attention else None

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_attn_mask: torch.Tensor | None,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Decode one layer.

        Without `cache`, all T positions are computed with causal self-attention. With a `cache` (one dict per
        layer, owned by the caller), `x` holds only the newest position, whose self-attention keys/values are
        appended to the cache; the cross-attention keys/values of `memory` are computed on the first call only.

        Shape:
            x: (B, T, D); memory: (B, S, D); memory_attn_mask: (B, 1, 1, S) SDPA mask or None -> (B, T, D)
        """
        x = self._residual(x, self.self_attn_layer_norm,
                           lambda h: self.self_attn(h, is_causal=True, cache=cache))
        if self.encoder_attn is not None:
            x = self._residual(x, self.encoder_attn_layer_norm,
                               lambda h: self.encoder_attn(h, memory, memory_attn_mask, cache=cache))
        return self._residual(x, self.final_layer_norm, self._feed_forward)
