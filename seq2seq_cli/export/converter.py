"""Fill CTranslate2's `TransformerSpec` from a seq2seq_cli Transformer and write it, with our tokenizers, to a folder.

The mapping is one to one (attention.py and layers.py keep CTranslate2's layout in mind):
- embeddings and the output projection as they are (tied weights are written once: CTranslate2 aliases equal
  variables), `scale_embeddings` = our embed_scale (sqrt(d), or 1 with no_scale_embedding);
- position encodings as a table, `position_encodings.encodings`: our sinusoids (`sinusoid_table`: sines in the first
  half, positions counted from 0 at the first token, unlike fairseq's padding_idx + 1 offset, which the fairseq
  converter has to cut off) or the learned embedding matrix. CTranslate2 adds row t to the t-th token on both
  sides, so whatever convention the table follows is preserved exactly;
- self-attention: our fused `qkv_proj` (rows q, k, v) is CTranslate2's fused `linear[0]` as is; cross-attention:
  `q_proj` is `linear[0]`, the fused `kv_proj` (rows k, v) is `linear[1]`; `out_proj` is the last linear;
- post-LN or pre-LN per stack (`pre_norm`), the pre-LN stacks' final LayerNorm, and LayerNorm's epsilon;
- special tokens: decoding starts from our BOS (`decoder_start_token`), and CTranslate2 appends our EOS to the
  source (`add_source_eos`), as our encoder input has it.

Settings are checked against a list of those the mapping handles (`check_expressible`): anything else, e.g. a
plugin model or a config field added later, is refused with its name rather than exported approximately.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seq2seq_cli import __version__
from seq2seq_cli.checkpoint import LoadedModel
from seq2seq_cli.errors import ExportError
from seq2seq_cli.export.layout import (CT2_VERSION, FORMAT_VERSION, METADATA, SRC_TOKENIZER, TGT_TOKENIZER,
                                       import_ctranslate2)
from seq2seq_cli.models.positions import LearnedPositions, sinusoid_table

logger = logging.getLogger(__name__)

# Config fields the mapping handles. Training-only fields do not change inference; the others are mapped above.
_TRAINING_ONLY = {"dropout", "attention_dropout", "activation_dropout"}
_MAPPED = {
    "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_layers", "encoder_attention_heads",
    "encoder_normalize_before", "encoder_learned_pos", "decoder_embed_dim", "decoder_ffn_embed_dim",
    "decoder_layers", "decoder_attention_heads", "decoder_normalize_before", "decoder_learned_pos",
    "activation_fn", "share_all_embeddings", "share_decoder_input_output_embed", "no_scale_embedding",
    "max_source_positions", "max_target_positions",
}


def check_expressible(loaded: LoadedModel) -> None:
    """Refuse a model that CTranslate2's TransformerSpec cannot express, naming the setting.

    Raises:
        ExportError: a model that is not a TransformerModel, a config field the mapping does not know (e.g. one a
            plugin subclass adds), or an activation CTranslate2 lacks.
    """
    from seq2seq_cli.models.transformer import TransformerModel

    where = str(loaded.path)
    # A plugin deriving from our Transformer passes if it adds no setting; the parity check then tests the rest.
    if not isinstance(loaded.model, TransformerModel):
        raise ExportError(f"{where}: model {loaded.model_name!r} cannot be exported to CTranslate2: only the "
                          "'transformer' model (any --arch preset) maps onto its TransformerSpec")
    cfg = loaded.model_config
    for f in dataclasses.fields(cfg):
        if f.name not in _MAPPED | _TRAINING_ONLY:
            raise ExportError(f"{where}: model setting {f.name}={getattr(cfg, f.name)!r} has no CTranslate2 "
                              "equivalent the exporter knows of; the model cannot be exported")
    if cfg.activation_fn not in _activations(import_ctranslate2()):
        raise ExportError(f"{where}: model setting activation_fn={cfg.activation_fn!r} has no CTranslate2 equivalent "
                          f"(it has {', '.join(_activations(import_ctranslate2()))})")


def _activations(ct2: Any) -> dict[str, Any]:
    # torch's F.gelu is the exact (erf) GELU, CTranslate2's GELU; GELUTanh would be the approximation.
    act = ct2.specs.Activation
    return {"relu": act.RELU, "gelu": act.GELU}


def vocabulary(tokenizer: Any, side: str) -> list[str]:
    """The tokens of `tokenizer` in id order (CTranslate2 maps strings to ids by position in this list).

    Raises:
        ExportError: an id without a token, or two ids with the same token (the ids could not round-trip).
    """
    tokens = [tokenizer.hf.id_to_token(i) for i in range(tokenizer.vocab_size)]
    missing = [i for i, t in enumerate(tokens) if t is None]
    if missing:
        raise ExportError(f"the {side} vocabulary has no token for id {missing[0]}; re-run preprocess")
    if len(set(tokens)) != len(tokens):
        raise ExportError(f"the {side} vocabulary holds a token twice; CTranslate2 needs one id per token")
    return tokens


def build_spec(loaded: LoadedModel) -> Any:
    """A validated `ctranslate2.specs.TransformerSpec` holding the model's weights (float32, not yet quantized)."""
    ct2 = import_ctranslate2()
    check_expressible(loaded)
    cfg, model = loaded.model_config, loaded.model
    act = _activations(ct2)[cfg.activation_fn]
    specs = ct2.specs
    encoder = specs.TransformerEncoderSpec(cfg.encoder_layers, cfg.encoder_attention_heads,
                                           pre_norm=cfg.encoder_normalize_before, activation=act)
    decoder = specs.TransformerDecoderSpec(cfg.decoder_layers, cfg.decoder_attention_heads,
                                           pre_norm=cfg.decoder_normalize_before, activation=act)
    spec = specs.TransformerSpec(encoder, decoder)
    with torch.no_grad():
        _set_stack(encoder, model.encoder, cfg.max_source_positions, embeddings=encoder.embeddings[0])
        for layer_spec, layer in zip(encoder.layer, model.encoder.layers):
            _set_attention(layer_spec.self_attention, layer.self_attn, layer.self_attn_layer_norm, "qkv_proj")
            _set_ffn(layer_spec.ffn, layer)
        _set_stack(decoder, model.decoder, cfg.max_target_positions, embeddings=decoder.embeddings)
        _set_linear(decoder.projection, model.decoder.output_projection)
        for layer_spec, layer in zip(decoder.layer, model.decoder.layers):
            _set_attention(layer_spec.self_attention, layer.self_attn, layer.self_attn_layer_norm, "qkv_proj")
            _set_attention(layer_spec.attention, layer.encoder_attn, layer.encoder_attn_layer_norm, "q_proj",
                           "kv_proj")
            _set_ffn(layer_spec.ffn, layer)
    src_tok, tgt_tok = loaded.src_tokenizer, loaded.tgt_tokenizer
    spec.register_source_vocabulary(vocabulary(src_tok, "source"))
    spec.register_target_vocabulary(vocabulary(tgt_tok, "target"))
    specials = tgt_tok.specials
    config = spec.config
    config.bos_token, config.eos_token, config.unk_token = specials.bos, specials.eos, specials.unk
    config.decoder_start_token = specials.bos  # fairseq's converter starts from EOS; our decoder starts from BOS
    config.add_source_eos = True
    config.layer_norm_epsilon = _layer_norm_eps(model)
    if src_tok.specials.eos != specials.eos:
        raise ExportError(f"the source EOS {src_tok.specials.eos!r} differs from the target EOS {specials.eos!r}; "
                          "CTranslate2 appends one EOS token to both")
    spec.validate()
    return spec


def _numpy(t: torch.Tensor) -> np.ndarray:
    # A copy: CTranslate2's optimize() quantizes the arrays in place, which must not touch the model's weights.
    return t.detach().cpu().float().numpy().copy()


def _set_stack(spec: Any, stack: nn.Module, max_positions: int, embeddings: Any) -> None:
    embeddings.weight = _numpy(stack.embed_tokens.weight)
    spec.scale_embeddings = float(stack.embed_scale)
    positions = stack.embed_positions
    if isinstance(positions, LearnedPositions):
        table = positions.weight
    else:
        table = sinusoid_table(max_positions, stack.embed_tokens.embedding_dim)
    spec.position_encodings.encodings = _numpy(table)
    if stack.layer_norm is not None:
        _set_layer_norm(spec.layer_norm, stack.layer_norm)


def _set_attention(spec: Any, attn: nn.Module, norm: nn.LayerNorm, *projections: str) -> None:
    for linear_spec, name in zip(spec.linear, [*projections, "out_proj"]):
        _set_linear(linear_spec, getattr(attn, name))
    _set_layer_norm(spec.layer_norm, norm)


def _set_ffn(spec: Any, layer: nn.Module) -> None:
    _set_layer_norm(spec.layer_norm, layer.final_layer_norm)
    _set_linear(spec.linear_0, layer.fc1)
    _set_linear(spec.linear_1, layer.fc2)


def _set_linear(spec: Any, linear: nn.Linear) -> None:
    spec.weight = _numpy(linear.weight)
    if linear.bias is not None:
        spec.bias = _numpy(linear.bias)


def _set_layer_norm(spec: Any, norm: nn.LayerNorm) -> None:
    spec.gamma = _numpy(norm.weight)
    spec.beta = _numpy(norm.bias)


def _layer_norm_eps(model: nn.Module) -> float:
    eps = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) != 1:
        raise ExportError(f"the model's LayerNorms use several epsilons ({sorted(eps)}); CTranslate2 takes one")
    return float(eps.pop())


def write_model(loaded: LoadedModel, folder: Path, quantization: str | None, extra: dict[str, Any] | None = None
                ) -> None:
    """Write the CTranslate2 model (quantized when asked), our tokenizers and the metadata into `folder` (new).

    `extra` adds entries to the metadata (e.g. the parity report).
    """
    spec = build_spec(loaded)
    spec.optimize(quantization=quantization)
    folder.mkdir(parents=True)
    spec.save(str(folder))
    (folder / SRC_TOKENIZER).write_text(loaded.src_tokenizer.to_json(), encoding="utf-8")
    (folder / TGT_TOKENIZER).write_text(loaded.tgt_tokenizer.to_json(), encoding="utf-8")
    write_metadata(folder, metadata(loaded, quantization, extra))


def metadata(loaded: LoadedModel, quantization: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from seq2seq_cli.config import to_dict

    src_max, tgt_max = loaded.model.max_positions()
    return {
        "format_version": FORMAT_VERSION, "tool_version": __version__, "format": "ctranslate2",
        "ctranslate2_version": import_ctranslate2().__version__, "tested_ctranslate2_version": CT2_VERSION,
        "source_checkpoint": str(loaded.path), "quantization": quantization or "float32",
        "model": {"name": loaded.model_name, "config": to_dict(loaded.model_config)},
        "max_positions": [src_max, tgt_max], "langs": loaded.state.get("langs", {}), **(extra or {}),
    }


def write_metadata(folder: Path, meta: dict[str, Any]) -> None:
    (folder / METADATA).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
