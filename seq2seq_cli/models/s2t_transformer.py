"""The speech-to-text Transformer (fairseq's `s2t_transformer`), registered as model `s2t_transformer`.

Filterbank frames go through SpecAugment (training only), a convolutional subsampler (two 1-D convolutions of
stride 2, each followed by a GLU: time / 4) and the same Transformer encoder layers as the text model; the decoder
is the text model's `TransformerDecoder`, unchanged. Defaults are fairseq's `s2t_transformer` base architecture
(pre-LN, 12 encoder and 6 decoder layers, d 512); `s2t_transformer_s` and `s2t_transformer_xs` are its smaller
presets.

Source input: one float tensor (B, T, F + 1): F feature values per frame and, as the last channel, 1.0 for a real
frame and 0.0 for padding (`speech.batching.collate_features` builds it). Carrying the padding in the tensor keeps
the model contract of models/base.py (`encode(src_tokens)`), so training, DDP, beam search and ensembles need no
speech-specific path.

The subsampler zeroes padded positions after each convolution, so an utterance encodes the same alone as in a
padded batch (fairseq lets padding leak into the last real frames).

With `ctc_head` (switched on by `--criterion label_smoothed_cross_entropy_with_ctc`) a linear layer maps the
encoder output to the target vocabulary for an auxiliary CTC loss; `generate --ctc-weight` also uses it for joint
CTC/attention decoding (decoding/ctc_prefix.py).

Known limitations: `share_all_embeddings` does not apply (there are no source embeddings); time warping is not
part of SpecAugment here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.attention import key_padding_attn_mask
from seq2seq_cli.models.base import EncoderOut
from seq2seq_cli.models.dropout import dropout
from seq2seq_cli.models.layers import EncoderLayer
from seq2seq_cli.models.positions import build_positions, positions_of
from seq2seq_cli.models.transformer import (TransformerConfig, TransformerDecoder, TransformerModel, _embedding,
                                            _sizes, check_config)
from seq2seq_cli.registry import ARCHS, MODELS
from seq2seq_cli.speech.specaugment import SpecAugment


@dataclass(frozen=True)
class S2TTransformerConfig(TransformerConfig):
    """TransformerConfig with fairseq S2T's defaults, plus the speech front end and SpecAugment."""

    encoder_layers: int = field(default=12, metadata={"help": "number of encoder layers"})
    encoder_normalize_before: bool = field(default=True, metadata={"help": "pre-LN encoder (LayerNorm first)"})
    decoder_normalize_before: bool = field(default=True, metadata={"help": "pre-LN decoder (LayerNorm first)"})
    max_source_positions: int = field(default=6000, metadata={"help": "longest source, in feature frames"})
    input_feat_per_channel: int = field(default=80, metadata={"help": "feature values per frame (mel bins)"})
    conv_kernel_sizes: str = field(default="5,5", metadata={"help": "kernel sizes of the stride-2 convolutions"})
    conv_channels: int = field(default=1024, metadata={"help": "channels of the inner convolution(s)"})
    freq_mask_n: int = field(default=1, metadata={"help": "SpecAugment: frequency masks per utterance"})
    freq_mask_f: int = field(default=27, metadata={"help": "SpecAugment: widest frequency mask, in mel bins"})
    time_mask_n: int = field(default=1, metadata={"help": "SpecAugment: time masks per utterance"})
    time_mask_t: int = field(default=100, metadata={"help": "SpecAugment: widest time mask, in frames"})
    time_mask_p: float = field(default=1.0, metadata={"help": "SpecAugment: time mask at most this share of frames"})
    ctc_head: bool = field(default=False, metadata={"help": "a linear layer from the encoder output to the target "
                                                            "vocabulary, trained by an auxiliary CTC loss (set by "
                                                            "--criterion label_smoothed_cross_entropy_with_ctc)"})

    def kernel_sizes(self) -> list[int]:
        try:
            sizes = [int(k) for k in self.conv_kernel_sizes.split(",")]
        except ValueError:
            sizes = []
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"conv_kernel_sizes={self.conv_kernel_sizes!r}: give comma-separated positive "
                              "integers, e.g. 5,5")
        return sizes


def check_s2t_config(cfg: S2TTransformerConfig, tgt_vocab_size: int) -> None:
    """Raise ConfigError when `cfg` cannot build a speech model."""
    check_config(cfg, tgt_vocab_size, tgt_vocab_size)
    if cfg.share_all_embeddings:
        raise ConfigError("share_all_embeddings does not apply to s2t_transformer (its source is audio, with no "
                          "embeddings); use share_decoder_input_output_embed")
    cfg.kernel_sizes()
    for name in ("input_feat_per_channel", "conv_channels"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name}={getattr(cfg, name)}: must be at least 1")
    for name in ("freq_mask_n", "freq_mask_f", "time_mask_n", "time_mask_t"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name}={getattr(cfg, name)}: must be 0 or more")
    if not 0.0 <= cfg.time_mask_p <= 1.0:
        raise ConfigError(f"time_mask_p={cfg.time_mask_p}: must be in [0, 1]")


def subsampled_lengths(lengths: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Frames after `num_layers` stride-2 convolutions padded by k // 2 (odd k): floor((n - 1) / 2) + 1 each."""
    for _ in range(num_layers):
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
    return lengths


class Conv1dSubsampler(nn.Module):
    """Stride-2 1-D convolutions over time, each followed by a GLU over channels (fairseq's Conv1dSubsampler)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_sizes: list[int]) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else mid_channels // 2,
                      mid_channels if i < len(kernel_sizes) - 1 else out_channels * 2, k, stride=2, padding=k // 2)
            for i, k in enumerate(kernel_sizes))

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape: feats (B, T, C_in), lengths (B,) -> ((B, T', C_out), lengths (B,)), T' = T / 2^layers rounded up."""
        x = feats.transpose(1, 2)  # (B, C, T)
        for conv in self.conv_layers:
            x = F.glu(conv(x), dim=1)
            lengths = subsampled_lengths(lengths, 1)
            real = torch.arange(x.size(2), device=x.device)[None, :] < lengths[:, None]
            x = x * real[:, None, :].to(x.dtype)  # padding stays zero, as the next layer's own zero padding
        return x.transpose(1, 2), lengths


class S2TTransformerEncoder(nn.Module):
    """SpecAugment, the subsampler, scaled features + positions, then `encoder_layers` EncoderLayers."""

    def __init__(self, cfg: S2TTransformerConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.num_features = cfg.input_feat_per_channel
        self.spec_augment = SpecAugment(cfg.freq_mask_n, cfg.freq_mask_f, cfg.time_mask_n, cfg.time_mask_t,
                                        cfg.time_mask_p)
        self.subsample = Conv1dSubsampler(cfg.input_feat_per_channel, cfg.conv_channels, dim, cfg.kernel_sizes())
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
        self.embed_positions = build_positions(dim, cfg.max_source_positions, cfg.encoder_learned_pos)
        self.dropout = cfg.dropout
        self.layers = nn.ModuleList(
            EncoderLayer(dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads, cfg.dropout,
                         cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn,
                         cfg.encoder_normalize_before)
            for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim) if cfg.encoder_normalize_before else None

    def forward(self, src: torch.Tensor) -> EncoderOut:
        """Shape: src (B, T, F + 1), the last channel 1.0 at real frames -> EncoderOut((B, T', D), (B, T'))."""
        if src.dim() != 3 or src.size(2) != self.num_features + 1:
            raise ValueError(f"s2t_transformer expects (B, T, {self.num_features + 1}) features (values + a "
                             f"real-frame flag), got shape {tuple(src.shape)}")
        lengths = src[:, :, -1].sum(dim=1).round().long()
        feats = self.spec_augment(src[:, :, :-1], lengths)
        x, lengths = self.subsample(feats, lengths)
        length = x.size(1)
        src_pad_mask = torch.arange(length, device=x.device)[None, :] >= lengths[:, None]
        has_pad = bool(src_pad_mask.any())
        positions = positions_of(src_pad_mask if has_pad else None, length, x.device)
        x = self.embed_scale * x + self.embed_positions(positions, length)
        x = dropout(x, self.dropout, self.training)
        attn_mask = key_padding_attn_mask(src_pad_mask) if has_pad else None
        for layer in self.layers:
            x = layer(x, attn_mask)
        return EncoderOut(self.layer_norm(x) if self.layer_norm is not None else x, src_pad_mask)


@MODELS.register("s2t_transformer")
class S2TTransformerModel(TransformerModel):
    """Speech encoder + Transformer decoder; decoding, scoring and the loss path are TransformerModel's."""

    Config = S2TTransformerConfig
    source_kind = "audio"  # what `generate` feeds it: features from audio, not token ids

    @classmethod
    def build(cls, cfg: S2TTransformerConfig, src_vocab_size: int, tgt_vocab_size: int,
              pad_id: int) -> "S2TTransformerModel":
        """Build the model; `src_vocab_size` is ignored (the source is audio).

        Raises:
            ConfigError: inconsistent settings.
        """
        check_s2t_config(cfg, tgt_vocab_size)
        tgt_embed = _embedding(tgt_vocab_size, cfg.decoder_embed_dim, pad_id)
        decoder = TransformerDecoder(cfg, tgt_embed, cfg.share_decoder_input_output_embed)
        model = cls(cfg, S2TTransformerEncoder(cfg), decoder)
        # Built last, so a model without the head creates (and draws random numbers for) exactly what it did before.
        model.ctc_proj = nn.Linear(cfg.encoder_embed_dim, tgt_vocab_size) if cfg.ctc_head else None
        return model

    def logits_for_loss(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, keep_mask: torch.Tensor,
                        projected: bool = False, with_ctc: bool = False) -> Any:
        """Teacher-forced logits at the kept target positions (`projected`: as `ProjectedLogits`); with `with_ctc`,
        also the CTC head's output.

        Shape:
            src_tokens: (B, T, F + 1); tgt_in, keep_mask: (B, U) -> logits (N, V), N = keep_mask.sum();
            with_ctc: (logits, lprobs (S', B, V) fp32 log-probabilities, input_lengths (B,) int64).
        """
        if not with_ctc:
            return super().logits_for_loss(src_tokens, tgt_in, keep_mask, projected)
        if self.ctc_proj is None:
            raise ConfigError("this s2t_transformer has no CTC head (ctc_head=false); train it with "
                              "--criterion label_smoothed_cross_entropy")
        enc = self.encode(src_tokens)
        logits = self.decoder.kept_logits(self.decoder.features(tgt_in, enc), keep_mask, projected)
        lprobs = self.ctc_lprobs(enc).transpose(0, 1)
        return logits, lprobs, (~enc.src_pad_mask).sum(dim=1)

    def ctc_lprobs(self, enc: EncoderOut) -> torch.Tensor:
        """The CTC head's log-probabilities over the target vocabulary (blank = the bos id), in float32.

        Shape: enc.out (B, S', D) -> (B, S', V); padded positions hold garbage (enc.src_pad_mask says which).
        """
        if self.ctc_proj is None:
            raise ConfigError("this s2t_transformer has no CTC head (ctc_head=false); train it with "
                              "--criterion label_smoothed_cross_entropy_with_ctc to use one")
        return F.log_softmax(self.ctc_proj(enc.out), dim=-1, dtype=torch.float32)


# Arch presets: fairseq's s2t_transformer (base), s2t_transformer_s and s2t_transformer_xs.

@ARCHS.register("s2t_transformer")
def s2t_transformer() -> tuple[str, dict]:
    """fairseq's base: 12 encoder + 6 decoder layers, d 512, FFN 2048, 8 heads, pre-LN."""
    return "s2t_transformer", {}


@ARCHS.register("s2t_transformer_s")
def s2t_transformer_s() -> tuple[str, dict]:
    """fairseq's small: 12 + 6 layers, d 256, FFN 2048, 4 heads."""
    return "s2t_transformer", {**_sizes(256, 2048, 4, 6), "encoder_layers": 12}


@ARCHS.register("s2t_transformer_xs")
def s2t_transformer_xs() -> tuple[str, dict]:
    """fairseq's extra small: 6 + 3 layers, d 256, FFN 1024, 4 heads, dropout 0.3 (fits CPU training)."""
    return "s2t_transformer", {**_sizes(256, 1024, 4, 3), "encoder_layers": 6, "dropout": 0.3}
