"""`transformer_layerdrop`: the Transformer with LayerDrop (Fan et al., 2019, "Reducing Transformer Depth on
Demand with Structured Dropout"), plus the arch preset `transformer_layerdrop_small`.

It shows the contract of a model plugin by subclassing the built-in `transformer` model: a dataclass `Config`
(here the Transformer's, with two more fields), `build`, and the rest inherited. During training each encoder
(decoder) layer is skipped with probability `encoder_layerdrop` (`decoder_layerdrop`), independently at every
forward pass: a regularizer for deep models, and the reason the trained model stays usable with fewer layers.
In evaluation mode (validation, generate) every layer runs, so decoding is exactly the Transformer's.

The parameters and their names are those of the `transformer` model (the layers are only wrapped), so a
checkpoint's weights load into either class. The skips are drawn from torch's default generator, which the trainer
re-seeds at every update: a resumed run skips the same layers as an uninterrupted one.

Known limitation: with distributed training, a skipped layer gets no gradient on that rank, which
DistributedDataParallel reports as an error; train LayerDrop models on one process.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.transformer import TransformerConfig, TransformerModel, transformer_small
from seq2seq_cli.registry import ARCHS, MODELS


@dataclass(frozen=True)
class LayerDropTransformerConfig(TransformerConfig):
    """The Transformer's fields plus the LayerDrop rates (fairseq's names; Fan et al. recommend 0.2)."""

    encoder_layerdrop: float = field(default=0.2, metadata={
        "help": "probability of skipping each encoder layer in a training forward pass"})
    decoder_layerdrop: float = field(default=0.2, metadata={
        "help": "probability of skipping each decoder layer in a training forward pass"})


class LayerDropModuleList(nn.ModuleList):
    """A ModuleList whose iteration skips each layer with probability `p` while training (fairseq's class).

    `len()` and indexing still see every layer, and so do `parameters()` and the state dict; the decoder's
    per-layer caches are built only in evaluation mode, where nothing is skipped. Only iterating over the list in
    training mode skips layers: index it (`layers[i] for i in range(len(layers))`) to visit them all.
    """

    def __init__(self, p: float, modules: nn.ModuleList) -> None:
        super().__init__(modules)
        self.p = p

    def __iter__(self) -> Iterator[nn.Module]:
        layers = list(super().__iter__())
        if not self.training or self.p == 0.0:
            return iter(layers)
        keep = (torch.rand(len(layers)) >= self.p).tolist()  # one draw per layer and forward pass
        return iter([layer for layer, k in zip(layers, keep) if k])


@MODELS.register("transformer_layerdrop")
class LayerDropTransformer(TransformerModel):
    """The `transformer` model whose encoder and decoder layers are dropped at random while training."""

    Config = LayerDropTransformerConfig

    @classmethod
    def build(cls, cfg: LayerDropTransformerConfig, src_vocab_size: int, tgt_vocab_size: int,
              pad_id: int) -> "LayerDropTransformer":
        """Build the Transformer, then wrap its layer lists.

        Raises:
            ConfigError: a LayerDrop rate outside [0, 1), or any Transformer setting that does not fit.
        """
        for name in ("encoder_layerdrop", "decoder_layerdrop"):
            if not 0.0 <= getattr(cfg, name) < 1.0:
                raise ConfigError(f"{name}={getattr(cfg, name)}: must be in [0, 1)")
        model = super().build(cfg, src_vocab_size, tgt_vocab_size, pad_id)
        model.encoder.layers = LayerDropModuleList(cfg.encoder_layerdrop, model.encoder.layers)
        model.decoder.layers = LayerDropModuleList(cfg.decoder_layerdrop, model.decoder.layers)
        return model


@ARCHS.register("transformer_layerdrop_small")
def transformer_layerdrop_small() -> tuple[str, dict]:
    """The reference workload's sizes (transformer_small: 3+3 layers, d 256) with LayerDrop 0.2."""
    return "transformer_layerdrop", transformer_small()[1]
