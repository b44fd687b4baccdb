"""The Transformer encoder-decoder (Vaswani et al., 2017), registered as model `transformer`, plus arch presets.

Faithful to fairseq's `transformer` model: post-LN blocks by default (`*_normalize_before` for pre-LN with a final
LayerNorm), token embeddings scaled by sqrt(d) plus sinusoidal (or learned) positions, dropout on embeddings and
on each residual branch, optional tied embeddings, and an output projection without bias. Everything stays
inside what CTranslate2's TransformerSpec can express, so an exporter remains possible (split the fused
`qkv_proj`/`kv_proj` weights, see attention.py; the sinusoid table comes from `positions.sinusoid_table`).

Speed notes (training): the decoder's self-attention uses SDPA's `is_causal=True` and no mask; encoder and
cross-attention pass a padding mask only when the batch has padding; `logits_for_loss` projects only the
non-padding target rows onto the vocabulary.

Known limitations: decoder inputs must be right-padded (padding only after the real tokens, the sequence
convention of this project); encoder and decoder widths must be equal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.attention import key_padding_attn_mask, memory_rows, reorder_self_attention_cache
from seq2seq_cli.models.base import EncoderOut, IncrementalState, ProjectedLogits, Seq2SeqModel
from seq2seq_cli.models.dropout import dropout
from seq2seq_cli.models.layers import ACTIVATIONS, DecoderLayer, EncoderLayer
from seq2seq_cli.models.positions import build_positions, positions_of
from seq2seq_cli.registry import ARCHS, MODELS


@dataclass(frozen=True)
class TransformerConfig:
    """Transformer hyper-parameters; field names are fairseq's flags, defaults fairseq's `transformer` arch."""

    encoder_embed_dim: int = field(default=512, metadata={"help": "encoder embedding dimension"})
    encoder_ffn_embed_dim: int = field(default=2048, metadata={"help": "encoder feed-forward inner dimension"})
    encoder_layers: int = field(default=6, metadata={"help": "number of encoder layers"})
    encoder_attention_heads: int = field(default=8, metadata={"help": "encoder attention heads"})
    encoder_normalize_before: bool = field(default=False, metadata={"help": "pre-LN encoder (LayerNorm first)"})
    encoder_learned_pos: bool = field(default=False, metadata={"help": "learned encoder positions"})
    decoder_embed_dim: int = field(default=512, metadata={"help": "decoder embedding dimension"})
    decoder_ffn_embed_dim: int = field(default=2048, metadata={"help": "decoder feed-forward inner dimension"})
    decoder_layers: int = field(default=6, metadata={"help": "number of decoder layers"})
    decoder_attention_heads: int = field(default=8, metadata={"help": "decoder attention heads"})
    decoder_normalize_before: bool = field(default=False, metadata={"help": "pre-LN decoder (LayerNorm first)"})
    decoder_learned_pos: bool = field(default=False, metadata={"help": "learned decoder positions"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings and residual branches"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    activation_fn: Literal["relu", "gelu"] = field(default="relu", metadata={"help": "FFN activation: relu, gelu"})
    share_all_embeddings: bool = field(
        default=False, metadata={"help": "tie encoder, decoder and output embeddings (needs a joined dictionary)"})
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "tie the decoder embeddings and the output projection"})
    no_scale_embedding: bool = field(default=False, metadata={"help": "do not scale embeddings by sqrt(dim)"})
    max_source_positions: int = field(default=1024, metadata={"help": "longest source, in tokens (with EOS)"})
    max_target_positions: int = field(default=1024, metadata={"help": "longest target, in tokens (with BOS)"})


def check_config(cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
    """Raise ConfigError when `cfg` cannot build a model for these vocabularies."""
    if cfg.activation_fn not in ACTIVATIONS:
        raise ConfigError(f"activation_fn={cfg.activation_fn!r}: choose one of {', '.join(ACTIVATIONS)}")
    for side in ("encoder", "decoder"):
        dim, heads = getattr(cfg, f"{side}_embed_dim"), getattr(cfg, f"{side}_attention_heads")
        for name in ("embed_dim", "ffn_embed_dim", "layers", "attention_heads"):
            if getattr(cfg, f"{side}_{name}") < 1:
                raise ConfigError(f"{side}_{name}={getattr(cfg, f'{side}_{name}')}: must be at least 1")
        if dim % heads:
            raise ConfigError(f"{side}_embed_dim={dim} must be divisible by {side}_attention_heads={heads}")
    if cfg.encoder_embed_dim != cfg.decoder_embed_dim:
        raise ConfigError(f"encoder_embed_dim={cfg.encoder_embed_dim} and decoder_embed_dim="
                          f"{cfg.decoder_embed_dim} must be equal")
    for name in ("dropout", "attention_dropout", "activation_dropout"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise ConfigError(f"{name}={getattr(cfg, name)}: must be in [0, 1)")
    if cfg.share_all_embeddings and src_vocab_size != tgt_vocab_size:
        raise ConfigError(
            f"share_all_embeddings needs one vocabulary for both languages, but the source has {src_vocab_size} "
            f"types and the target {tgt_vocab_size}; preprocess with --joined-dictionary"
        )


def _embedding(vocab_size: int, dim: int, pad_id: int) -> nn.Embedding:
    emb = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
    nn.init.normal_(emb.weight, mean=0.0, std=dim ** -0.5)  # fairseq's init; the padding row stays zero
    nn.init.zeros_(emb.weight[pad_id])
    return emb


class _Stack(nn.Module):
    """Embedding front end shared by encoder and decoder: scaled tokens + positions, then dropout."""

    def __init__(self, embed_tokens: nn.Embedding, max_positions: int, learned_pos: bool, dropout: float,
                 no_scale: bool, normalize_before: bool) -> None:
        super().__init__()
        dim = embed_tokens.embedding_dim
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if no_scale else math.sqrt(dim)
        self.embed_positions = build_positions(dim, max_positions, learned_pos)
        self.dropout = dropout
        # Pre-LN stacks end with a LayerNorm (their layers' outputs are not normalized); post-LN ones do not.
        self.layer_norm = nn.LayerNorm(dim) if normalize_before else None

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor, num_positions: int) -> torch.Tensor:
        x = self.embed_scale * self.embed_tokens(tokens) + self.embed_positions(positions, num_positions)
        return dropout(x, self.dropout, self.training)

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(x) if self.layer_norm is not None else x


class TransformerEncoder(_Stack):
    """Token embeddings + positions, then `encoder_layers` EncoderLayers."""

    def __init__(self, cfg: TransformerConfig, embed_tokens: nn.Embedding) -> None:
        super().__init__(embed_tokens, cfg.max_source_positions, cfg.encoder_learned_pos, cfg.dropout,
                         cfg.no_scale_embedding, cfg.encoder_normalize_before)
        self.padding_idx = embed_tokens.padding_idx
        self.layers = nn.ModuleList(
            EncoderLayer(cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads, cfg.dropout,
                         cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn,
                         cfg.encoder_normalize_before)
            for _ in range(cfg.encoder_layers)
        )

    def forward(self, src_tokens: torch.Tensor) -> EncoderOut:
        """Shape: src_tokens (B, S) -> EncoderOut(out (B, S, D), src_pad_mask (B, S))."""
        src_pad_mask = src_tokens.eq(self.padding_idx)
        # Without padding, no mask at all: SDPA then runs its unmasked (fastest) kernel.
        has_pad = bool(src_pad_mask.any())
        length = src_tokens.size(1)
        positions = positions_of(src_pad_mask if has_pad else None, length, src_tokens.device)
        x = self._embed(src_tokens, positions, length)
        attn_mask = key_padding_attn_mask(src_pad_mask) if has_pad else None
        for layer in self.layers:
            x = layer(x, attn_mask)
        return EncoderOut(self._final_norm(x), src_pad_mask)


class TransformerDecoder(_Stack):
    """Token embeddings + positions, `decoder_layers` DecoderLayers, and the output projection (no bias); without
    `cross_attention`, a language model's stack (models/transformer_lm.py)."""

    def __init__(self, cfg: TransformerConfig, embed_tokens: nn.Embedding, tie_output: bool,
                 cross_attention: bool = True) -> None:
        super().__init__(embed_tokens, cfg.max_target_positions, cfg.decoder_learned_pos, cfg.dropout,
                         cfg.no_scale_embedding, cfg.decoder_normalize_before)
        self.layers = nn.ModuleList(
            DecoderLayer(cfg.decoder_embed_dim, cfg.decoder_ffn_embed_dim, cfg.decoder_attention_heads, cfg.dropout,
                         cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn,
                         cfg.decoder_normalize_before, cross_attention)
            for _ in range(cfg.decoder_layers)
        )
        vocab_size, dim = embed_tokens.weight.shape
        self.output_projection = nn.Linear(dim, vocab_size, bias=False)
        if tie_output:
            self.output_projection.weight = embed_tokens.weight
        else:
            nn.init.normal_(self.output_projection.weight, mean=0.0, std=dim ** -0.5)

    def kept_logits(self, hidden: torch.Tensor, keep_mask: torch.Tensor,
                    projected: bool = False) -> torch.Tensor | ProjectedLogits:
        """The output projection of `hidden` at the kept positions, or with `projected` its `ProjectedLogits`.

        Shape: hidden (B, T, D), keep_mask (B, T) bool -> (N, V), N = keep_mask.sum(), row-major
        """
        if bool(keep_mask.all()):
            hidden = hidden.reshape(-1, hidden.size(-1))  # a view: no gather when nothing is padding
        else:
            hidden = hidden[keep_mask]
        if projected:
            return ProjectedLogits.of(hidden, self.output_projection.weight)
        return self.output_projection(hidden)

    def features(self, tgt_in: torch.Tensor, enc: EncoderOut,
                 incremental_state: IncrementalState | None = None) -> torch.Tensor:
        """Hidden states before the output projection.

        Training runs all T positions with causal self-attention and no padding mask: `tgt_in` is right-padded,
        so every real position i attends only to positions <= i, which are all real; the outputs at padded
        positions are garbage that the loss ignores. With `incremental_state`, only the last position is
        computed (see `TransformerModel.decode`).

        Shape:
            tgt_in: (B, T) -> (B, T, D), or (B, 1, D) when incremental
        """
        length = tgt_in.size(1)
        if incremental_state is None:
            positions = torch.arange(length, device=tgt_in.device).unsqueeze(0)
            memory_mask = key_padding_attn_mask(enc.src_pad_mask) if bool(enc.src_pad_mask.any()) else None
            caches: list[dict | None] = [None] * len(self.layers)
        else:
            memory_mask, caches = self._incremental_caches(incremental_state, enc, length)
            positions = torch.full((1, 1), length - 1, dtype=torch.long, device=tgt_in.device)
            tgt_in = tgt_in[:, -1:]
        x = self._embed(tgt_in, positions, length)
        for layer, cache in zip(self.layers, caches):
            x = layer(x, enc.out, memory_mask, cache)
        return self._final_norm(x)

    def _incremental_caches(self, state: IncrementalState, enc: EncoderOut, length: int
                            ) -> tuple[torch.Tensor | None, list[dict]]:
        """The source mask and the per-layer caches kept in `state`, created on the first step."""
        steps = state.get("steps", 0)
        if steps != length - 1:
            raise ValueError(f"incremental_state holds {steps} decoded positions, so tgt_in must have "
                             f"{steps + 1} columns, not {length}")
        state["steps"] = length
        if "layers" not in state:
            has_pad = bool(enc.src_pad_mask.any())
            state["memory_mask"] = key_padding_attn_mask(enc.src_pad_mask) if has_pad else None
            state["layers"] = [{} for _ in self.layers]
        return state["memory_mask"], state["layers"]

    def forward(self, tgt_in: torch.Tensor, enc: EncoderOut,
                incremental_state: IncrementalState | None = None) -> torch.Tensor:
        """Logits; shape (B, T) -> (B, T, V), or (B, 1, V) when incremental."""
        return self.output_projection(self.features(tgt_in, enc, incremental_state))


@MODELS.register("transformer")
class TransformerModel(Seq2SeqModel):
    """Encoder-decoder Transformer; see the module docstring."""

    Config = TransformerConfig

    def __init__(self, cfg: TransformerConfig, encoder: TransformerEncoder, decoder: TransformerDecoder) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def build(cls, cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int,
              pad_id: int) -> "TransformerModel":
        """Build the model.

        Raises:
            ConfigError: inconsistent settings, e.g. share_all_embeddings with two vocabularies.
        """
        check_config(cfg, src_vocab_size, tgt_vocab_size)
        src_embed = _embedding(src_vocab_size, cfg.encoder_embed_dim, pad_id)
        tgt_embed = src_embed if cfg.share_all_embeddings else _embedding(tgt_vocab_size, cfg.decoder_embed_dim,
                                                                         pad_id)
        tie_output = cfg.share_all_embeddings or cfg.share_decoder_input_output_embed
        return cls(cfg, TransformerEncoder(cfg, src_embed), TransformerDecoder(cfg, tgt_embed, tie_output))

    def encode(self, src_tokens: torch.Tensor) -> EncoderOut:
        """Shape: src_tokens (B, S) int64 -> EncoderOut(out (B, S, D), src_pad_mask (B, S))."""
        return self.encoder(src_tokens)

    def decode(self, tgt_in: torch.Tensor, enc: EncoderOut,
               incremental_state: IncrementalState | None = None) -> torch.Tensor:
        """Next-token logits.

        Incremental decoding: pass the same dict every step with the whole prefix (B, t+1); only position t is
        computed. The dict keeps, per layer, the self-attention keys/values of positions 0..t-1 and the
        cross-attention keys/values of the encoder output (computed at the first step from `enc`, which later
        steps do not read), plus the source padding mask.

        Shape:
            tgt_in: (B, T) -> (B, T, V), or (B, 1, V) with `incremental_state`
        """
        return self.decoder(tgt_in, enc, incremental_state)

    def reorder_incremental_state(self, incremental_state: IncrementalState, new_order: torch.Tensor) -> None:
        """Select batch rows `new_order` (B',) of the cache, in place; B' may differ from B.

        The cross-attention keys/values stay one row per sentence (see attention.py): they are only selected when
        sentences leave (or are repeated), not when hypotheses move within their sentences.
        """
        layers = incremental_state.get("layers")
        if not layers or "memory_k" not in layers[0]:
            return  # nothing decoded yet
        group = layers[0]["k"].size(0) // layers[0]["memory_k"].size(0)  # decoder rows per encoder row
        sentences, _ = memory_rows(torch.div(new_order, group, rounding_mode="floor"))
        unchanged = sentences.numel() == layers[0]["memory_k"].size(0) and bool(
            torch.equal(sentences, torch.arange(sentences.numel(), device=sentences.device)))
        if not unchanged:
            if incremental_state.get("memory_mask") is not None:
                incremental_state["memory_mask"] = incremental_state["memory_mask"].index_select(0, sentences)
        for cache in layers:
            reorder_self_attention_cache(cache, new_order)
            if not unchanged:
                cache["memory_k"] = cache["memory_k"].index_select(0, sentences)
                cache["memory_v"] = cache["memory_v"].index_select(0, sentences)

    def forward(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor,
                keep_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, T, V); with `keep_mask`, only the kept rows (N, V), as `logits_for_loss`.

        Training under DistributedDataParallel must go through `forward` (DDP synchronizes gradients only for
        calls of the wrapper), so call `ddp_model(src_tokens, tgt_in, keep_mask)` rather than `logits_for_loss`.
        """
        if keep_mask is not None:
            return self.logits_for_loss(src_tokens, tgt_in, keep_mask)
        return self.decode(tgt_in, self.encode(src_tokens))

    def logits_for_loss(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, keep_mask: torch.Tensor,
                        projected: bool = False) -> torch.Tensor | ProjectedLogits:
        """Logits of the kept (non-padding) target positions only: the vocabulary projection skips padding.
        With `projected`, the projection is left to the criterion (`ProjectedLogits`, training's path).

        Shape:
            src_tokens: (B, S); tgt_in: (B, T); keep_mask: (B, T) bool -> (N, V), N = keep_mask.sum(), row-major
        """
        return self.decoder.kept_logits(self.decoder.features(tgt_in, self.encode(src_tokens)), keep_mask, projected)

    def max_positions(self) -> tuple[int, int]:
        """(max source length, max target length) in tokens."""
        return self.cfg.max_source_positions, self.cfg.max_target_positions


# Arch presets (fairseq's --arch): each returns (model name, {config field: value}); the rest keeps its default.

@ARCHS.register("transformer")
def transformer() -> tuple[str, dict]:
    """fairseq's `transformer` base: 6+6 layers, d 512, FFN 2048, 8 heads."""
    return "transformer", {}


@ARCHS.register("transformer_small")
def transformer_small() -> tuple[str, dict]:
    """The reference workload: 3+3 layers, d 256, FFN 1024, 4 heads."""
    return "transformer", _sizes(256, 1024, 4, 3)


@ARCHS.register("transformer_iwslt_de_en")
def transformer_iwslt_de_en() -> tuple[str, dict]:
    """fairseq's `transformer_iwslt_de_en`: 6+6 layers, d 512, FFN 1024, 4 heads."""
    return "transformer", _sizes(512, 1024, 4, 6)


@ARCHS.register("transformer_big")
def transformer_big() -> tuple[str, dict]:
    """fairseq's `transformer_vaswani_wmt_en_de_big`: 6+6 layers, d 1024, FFN 4096, 16 heads, dropout 0.3."""
    return "transformer", {**_sizes(1024, 4096, 16, 6), "dropout": 0.3}


def _sizes(dim: int, ffn: int, heads: int, layers: int) -> dict:
    return {f"{side}_{name}": value for side in ("encoder", "decoder")
            for name, value in (("embed_dim", dim), ("ffn_embed_dim", ffn), ("attention_heads", heads),
                                ("layers", layers))}
