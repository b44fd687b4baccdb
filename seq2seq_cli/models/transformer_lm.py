"""A decoder-only Transformer language model, registered as model `transformer_lm` (fairseq's `transformer_lm`).

The stack is the Transformer's decoder without its cross-attention sublayers: token embeddings scaled by sqrt(d)
plus sinusoidal (or learned) positions, `decoder_layers` blocks of causal self-attention and feed-forward (post-LN;
pre-LN with `decoder_normalize_before`), and an output projection without bias. It predicts a sentence's tokens
from BOS on, exactly as a translation model's decoder does, so an LM trained on the target language with the
target tokenizer of a recognition or translation model can be fused with it in beam search (`generate --lm-path
--lm-weight`: decoding/lm_fusion.py).

It keeps the `Seq2SeqModel` contract so that training, checkpoints, averaging and decoding need no special case:
it trains on a monolingual DATA_DIR (`preprocess --only-source`), and `encode` ignores the source and returns an
empty memory (B, 0, D) that the decoder never reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.attention import reorder_self_attention_cache
from seq2seq_cli.models.base import EncoderOut, IncrementalState, ProjectedLogits, Seq2SeqModel
from seq2seq_cli.models.transformer import TransformerConfig, TransformerDecoder, _embedding, check_config
from seq2seq_cli.registry import ARCHS, MODELS

NO_SOURCE_LIMIT = 1 << 30  # an LM reads no source: the data's (copied) source side is never too long


@dataclass(frozen=True)
class TransformerLMConfig:
    """Language model hyper-parameters; field names are fairseq's flags, defaults fairseq's `transformer_lm`."""

    decoder_embed_dim: int = field(default=512, metadata={"help": "embedding dimension"})
    decoder_ffn_embed_dim: int = field(default=2048, metadata={"help": "feed-forward inner dimension"})
    decoder_layers: int = field(default=6, metadata={"help": "number of layers"})
    decoder_attention_heads: int = field(default=8, metadata={"help": "attention heads"})
    decoder_normalize_before: bool = field(default=False, metadata={"help": "pre-LN layers (LayerNorm first)"})
    decoder_learned_pos: bool = field(default=False, metadata={"help": "learned positions"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings and residual branches"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    activation_fn: Literal["relu", "gelu"] = field(default="relu", metadata={"help": "FFN activation: relu, gelu"})
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "tie the input embeddings and the output projection"})
    no_scale_embedding: bool = field(default=False, metadata={"help": "do not scale embeddings by sqrt(dim)"})
    max_target_positions: int = field(default=1024, metadata={"help": "longest sentence, in tokens (with BOS)"})

    def as_transformer(self) -> TransformerConfig:
        """The same decoder as a TransformerConfig (the encoder fields mirror it and are not used)."""
        return TransformerConfig(
            encoder_embed_dim=self.decoder_embed_dim, encoder_attention_heads=self.decoder_attention_heads,
            decoder_embed_dim=self.decoder_embed_dim, decoder_ffn_embed_dim=self.decoder_ffn_embed_dim,
            decoder_layers=self.decoder_layers, decoder_attention_heads=self.decoder_attention_heads,
            decoder_normalize_before=self.decoder_normalize_before, decoder_learned_pos=self.decoder_learned_pos,
            dropout=self.dropout, attention_dropout=self.attention_dropout,
            activation_dropout=self.activation_dropout, activation_fn=self.activation_fn,
            no_scale_embedding=self.no_scale_embedding, max_target_positions=self.max_target_positions)


@MODELS.register("transformer_lm")
class TransformerLanguageModel(Seq2SeqModel):
    """Decoder-only Transformer LM; see the module docstring."""

    Config = TransformerLMConfig
    source_kind = "none"  # what it conditions on: nothing (decoding/lm_fusion.py fuses it with another model)

    def __init__(self, cfg: TransformerLMConfig, decoder: TransformerDecoder) -> None:
        super().__init__()
        self.cfg = cfg
        self.decoder = decoder

    @classmethod
    def build(cls, cfg: TransformerLMConfig, src_vocab_size: int, tgt_vocab_size: int,
              pad_id: int) -> "TransformerLanguageModel":
        """Build the LM over the target vocabulary (`src_vocab_size` is not used: there is no source).

        Raises:
            ConfigError: inconsistent settings (sizes, dropout).
        """
        inner = cfg.as_transformer()
        try:
            check_config(inner, src_vocab_size, tgt_vocab_size)
        except ConfigError as exc:  # name the LM's own fields, not the mirrored encoder's
            raise ConfigError(str(exc).replace("encoder_", "decoder_")) from None
        embed = _embedding(tgt_vocab_size, cfg.decoder_embed_dim, pad_id)
        return cls(cfg, TransformerDecoder(inner, embed, cfg.share_decoder_input_output_embed, cross_attention=False))

    def encode(self, src_tokens: torch.Tensor) -> EncoderOut:
        """No source: an empty memory that the search loop can reorder like any encoder output.

        Shape: src_tokens (B, S) -> EncoderOut(out (B, 0, D), src_pad_mask (B, 0))
        """
        rows = src_tokens.size(0)
        weight = self.decoder.embed_tokens.weight
        return EncoderOut(weight.new_zeros(rows, 0, weight.size(1)),
                          torch.zeros(rows, 0, dtype=torch.bool, device=src_tokens.device))

    def decode(self, tgt_in: torch.Tensor, enc: EncoderOut,
               incremental_state: IncrementalState | None = None) -> torch.Tensor:
        """Next-token logits; `enc` is not read.

        Shape: tgt_in (B, T) -> (B, T, V), or (B, 1, V) with `incremental_state`
        """
        return self.decoder(tgt_in, enc, incremental_state)

    def reorder_incremental_state(self, incremental_state: IncrementalState, new_order: torch.Tensor) -> None:
        """Select rows `new_order` (B',) of every layer's self-attention cache, in place."""
        for cache in incremental_state.get("layers", ()):
            reorder_self_attention_cache(cache, new_order)

    def forward(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor,
                keep_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, T, V); with `keep_mask`, only the kept rows (N, V) (see TransformerModel)."""
        if keep_mask is not None:
            return self.logits_for_loss(src_tokens, tgt_in, keep_mask)
        return self.decode(tgt_in, self.encode(src_tokens))

    def logits_for_loss(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, keep_mask: torch.Tensor,
                        projected: bool = False) -> torch.Tensor | ProjectedLogits:
        """Logits at the kept (non-padding) positions only.  Shape: tgt_in, keep_mask (B, T) -> (N, V)"""
        return self.decoder.kept_logits(self.decoder.features(tgt_in, self.encode(src_tokens)), keep_mask, projected)

    def max_positions(self) -> tuple[int, int]:
        """(source limit: none, max sentence length) in tokens."""
        return NO_SOURCE_LIMIT, self.cfg.max_target_positions


@ARCHS.register("transformer_lm")
def transformer_lm() -> tuple[str, dict]:
    """fairseq's `transformer_lm`: 6 layers, d 512, FFN 2048, 8 heads."""
    return "transformer_lm", {}


@ARCHS.register("transformer_lm_small")
def transformer_lm_small() -> tuple[str, dict]:
    """A CPU-sized LM: 4 layers, d 256, FFN 1024, 4 heads, tied input and output embeddings."""
    return "transformer_lm", {"decoder_embed_dim": 256, "decoder_ffn_embed_dim": 1024, "decoder_layers": 4,
                              "decoder_attention_heads": 4, "share_decoder_input_output_embed": True}
