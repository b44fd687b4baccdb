"""Multi-head attention on top of `torch.nn.functional.scaled_dot_product_attention` (SDPA).

Two modules, both with standard biased q/k/v/out projections (as fairseq's MultiheadAttention and CTranslate2's
MultiHeadAttentionSpec), stored fused so one matmul computes them:

- `SelfAttention`: `qkv_proj` (3D x D; rows q, k, v in that order) and `out_proj`.
- `CrossAttention`: `q_proj` (D x D), `kv_proj` (2D x D; rows k, v) and `out_proj`.

An exporter splits the fused weights with `weight.chunk(3)` / `weight.chunk(2)` along dim 0.

Mask polarity: our masks are True where attention is *not* allowed (torch's nn.Transformer convention), but a
boolean `attn_mask` given to SDPA is True where attention *is* allowed. `key_padding_attn_mask` does the conversion
in one place; nothing else passes masks to SDPA.

Incremental decoding caches live in a plain dict per layer, batch first, so reordering is an `index_select(0, .)`:
- self-attention: buffers cache["k"], cache["v"] of shape (B, H, capacity, D/H) holding cache["len"] positions.
  Beam search reorders the rows every step anyway; `reorder_self_attention_cache` copies the filled part into a
  buffer one position longer, and the next step writes its column there: one copy of the cache a step, where a
  reorder followed by a `torch.cat` makes two. Without a reorder (greedy), a step grows the buffer as a cat would.
- cross-attention: the keys/values of the encoder output, cache["memory_k"], cache["memory_v"] (M, H, S, D/H), one
  row per *sentence*. With B = M * g decoder rows (beam search: g hypotheses per sentence, stored consecutively),
  the g rows of a sentence are attended as g query positions of one row, so the encoder keys/values are neither
  copied K times nor reordered when hypotheses move (fairseq copies them per hypothesis).
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn


def key_padding_attn_mask(pad_mask: torch.Tensor | None) -> torch.Tensor | None:
    """SDPA's boolean mask (True = may attend) from a key padding mask (True = padding); None if there is none.

    Shape:
        pad_mask: (B, S) bool -> (B, 1, 1, S) bool, broadcast over heads and query positions
    """
    if pad_mask is None:
        return None
    return ~pad_mask[:, None, None, :]


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, D/H), a view."""
    bsz, length, dim = x.shape
    return x.view(bsz, length, heads, dim // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D/H) -> (B, T, D)."""
    bsz, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(bsz, length, heads * head_dim)


def _init_projection(linear: nn.Linear, parts: int) -> None:
    # fairseq initializes q, k and v separately with xavier_uniform(gain=1/sqrt(2)); do the same per fused block.
    for block in linear.weight.data.chunk(parts, dim=0):
        nn.init.xavier_uniform_(block, gain=1 / math.sqrt(2))
    nn.init.zeros_(linear.bias)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None,
                is_causal: bool) -> torch.Tensor:
        dtype = q.dtype
        fp32 = contextlib.nullcontext()
        if q.device.type == "cpu" and (dtype in (torch.bfloat16, torch.float16) or torch.is_autocast_enabled("cpu")):
            # torch 2.13's CPU SDPA kernel runs 2-3x slower in bf16 than in fp32 (forward + backward, 110 x 4 heads
            # x 32 x 64, measured). Attention is a small share of the FLOPs at our lengths: compute it in fp32.
            # Autocast must be off for that: it casts SDPA's inputs back to bf16 (which made attention 23% of a
            # bf16 training step, against 6% of an fp32 one: benchmarks.md).
            q, k, v = q.float(), k.float(), v.float()
            fp32 = torch.autocast("cpu", enabled=False)
        with fp32:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0, is_causal=is_causal
            )
        return self.out_proj(_merge_heads(out.to(dtype)))


class SelfAttention(_Attention):
    """Multi-head self-attention with a fused q/k/v projection."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__(dim, heads, dropout)
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        _init_projection(self.qkv_proj, 3)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Attend from every position of `x` to every allowed position of `x`.

        Args:
            x: queries, keys and values.
            attn_mask: SDPA mask (True = may attend), e.g. from `key_padding_attn_mask`, or None.
            is_causal: position i attends to positions <= i only.
            cache: incremental decoding: `x` holds only the newest position(s); their keys/values are appended to
                cache["k"], cache["v"] and the queries attend to all cached positions (all of which are earlier,
                so no mask is needed).

        Shape:
            x: (B, T, D) -> (B, T, D)
        """
        bsz, length, _ = x.shape
        # One matmul, then views: (B, T, 3, H, Dh) -> (3, B, H, T, Dh); SDPA accepts these strided views.
        qkv = self.qkv_proj(x).view(bsz, length, 3, self.heads, self.dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if cache is not None:
            k, v = _append(cache, k, v)
            is_causal = False  # the new queries come after every cached key
        return self._attend(q, k, v, attn_mask, is_causal)


class CrossAttention(_Attention):
    """Multi-head attention from decoder queries to encoder keys/values (fused k/v projection)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__(dim, heads, dropout)
        self.q_proj = nn.Linear(dim, dim)
        self.kv_proj = nn.Linear(dim, 2 * dim)
        _init_projection(self.q_proj, 1)
        _init_projection(self.kv_proj, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, attn_mask: torch.Tensor | None = None,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Attend from the decoder states `x` to the encoder output `memory`.

        Args:
            x: decoder states (queries).
            memory: encoder output (keys and values); unused when `cache` already holds its projections.
            attn_mask: SDPA mask (True = may attend) over the source positions, or None.
            cache: incremental decoding: the keys/values of `memory` are computed once per sentence and kept
                in cache["memory_k"], cache["memory_v"].

        Shape:
            x: (B, T, D), memory: (B, S, D), attn_mask: (B, 1, 1, S) -> (B, T, D)
        """
        if cache is not None and "memory_k" in cache:
            k, v = cache["memory_k"], cache["memory_v"]
        else:
            bsz, src_len, _ = memory.shape
            kv = self.kv_proj(memory).view(bsz, src_len, 2, self.heads, self.dim // self.heads)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
            if cache is not None:
                cache["memory_k"], cache["memory_v"] = k, v
        rows, length, dim = x.shape
        sentences = k.size(0)
        if rows == sentences:
            return self._attend(_split_heads(self.q_proj(x), self.heads), k, v, attn_mask, is_causal=False)
        if rows % sentences:
            raise ValueError(f"{rows} decoder rows cannot share the cached keys/values of {sentences} sentences")
        # Rows r*g .. r*g+g-1 belong to sentence r: view them as g*T query positions of one row (no copy).
        q = _split_heads(self.q_proj(x).view(sentences, (rows // sentences) * length, dim), self.heads)
        return self._attend(q, k, v, attn_mask, is_causal=False).view(rows, length, dim)


def _append(cache: dict, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the new positions' keys/values into the cache's buffers; return views of every cached position.

    Shape: k, v (B, H, T_new, Dh) -> two (B, H, len + T_new, Dh) views
    """
    length, new = cache.get("len", 0), k.size(2)
    if "k" not in cache or length + new > cache["k"].size(2):
        # No room (no reorder since the last step): grow to exactly the new length, as a torch.cat would, so that
        # attention reads contiguous tensors (a roomier buffer gives strided views, which SDPA's CPU kernel copies).
        capacity = length + new
        for key in ("k", "v"):
            grown = k.new_empty(k.size(0), k.size(1), capacity, k.size(3))
            if length:
                grown[:, :, :length] = cache[key][:, :, :length]
            cache[key] = grown
    cache["k"][:, :, length:length + new] = k
    cache["v"][:, :, length:length + new] = v
    cache["len"] = length + new
    return cache["k"][:, :, :length + new], cache["v"][:, :, :length + new]


def reorder_self_attention_cache(cache: dict, new_order: torch.Tensor) -> None:
    """Select rows `new_order` (B',) of a self-attention cache, copying only the filled positions.

    The new buffers have room for exactly one more position: after the next step's write they are full, so
    attention reads contiguous tensors (SDPA's CPU kernel copies strided keys/values first, measured 1.5x slower).
    """
    if "k" not in cache:
        return
    length = cache["len"]
    for key in ("k", "v"):
        old = cache[key]
        _, heads, _, head_dim = old.shape
        new = old.new_empty((new_order.numel(), heads, length + 1, head_dim))
        if old.device.type == "cpu" and not old.requires_grad:
            # index_select writes straight into the strided view: one copy (an index_select then a slice
            # assignment would make two). out= is refused under autograd, hence the condition.
            torch.index_select(old[:, :, :length], 0, new_order, out=new[:, :, :length])
        else:
            new[:, :, :length] = old[:, :, :length].index_select(0, new_order)
        cache[key] = new


def memory_rows(row_sentences: torch.Tensor) -> tuple[torch.Tensor, int]:
    """How decoder rows map onto cached encoder rows after a reorder.

    `row_sentences[i]` is the encoder row that new decoder row i reads. When the rows form equal consecutive
    groups (beam search: K rows per sentence), one encoder row per group is kept: returns (the group's encoder
    rows, group size). Otherwise each decoder row gets its own copy: returns (row_sentences, 1).

    Shape: row_sentences (B',) -> (M',), int
    """
    groups, counts = torch.unique_consecutive(row_sentences, return_counts=True)
    if counts.numel() and bool((counts == counts[0]).all()):
        return groups, int(counts[0])
    return row_sentences, 1
