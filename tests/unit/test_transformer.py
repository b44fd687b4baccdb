"""Unit tests of the Transformer model: shapes, masking, incremental decoding, tying, options and presets."""
from __future__ import annotations

import dataclasses
import io

import pytest
import torch
import torch.nn.functional as F

from seq2seq_cli.config import from_dict, to_dict
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.positions import LearnedPositions, sinusoid_table
from seq2seq_cli.models.transformer import TransformerConfig, TransformerModel
from seq2seq_cli.registry import ARCHS, MODELS

PAD, BOS, EOS = 1, 0, 2
VOCAB = 23


def tiny_config(**overrides) -> TransformerConfig:
    sizes = dict(encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=2, encoder_attention_heads=4,
                 decoder_embed_dim=16, decoder_ffn_embed_dim=32, decoder_layers=2, decoder_attention_heads=4,
                 max_source_positions=64, max_target_positions=64)
    return TransformerConfig(**{**sizes, **overrides})


def tiny_model(seed: int = 0, src_vocab: int = VOCAB, tgt_vocab: int = VOCAB, **overrides) -> TransformerModel:
    torch.manual_seed(seed)
    return TransformerModel.build(tiny_config(**overrides), src_vocab, tgt_vocab, PAD).eval()


def batch(seed: int = 1, bsz: int = 3, src_len: int = 7, tgt_len: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """A source batch with right padding in some rows, and a decoder input starting with BOS."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(4, VOCAB, (bsz, src_len), generator=gen)
    src[:, -1] = EOS
    src[0, 4:] = PAD
    src[0, 3] = EOS
    if bsz > 2:
        src[2, 6:] = PAD
        src[2, 5] = EOS
    tgt = torch.randint(4, VOCAB, (bsz, tgt_len), generator=gen)
    tgt[:, 0] = BOS
    return src, tgt


def decode_incrementally(model: TransformerModel, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    enc, state = model.encode(src), {}
    steps = [model.decode(tgt[:, : t + 1], enc, state) for t in range(tgt.size(1))]
    return torch.cat(steps, dim=1)


def test_shapes():
    model = tiny_model()
    src, tgt = batch()
    enc = model.encode(src)
    assert enc.out.shape == (3, 7, 16)
    assert torch.equal(enc.src_pad_mask, src.eq(PAD))
    assert model.decode(tgt, enc).shape == (3, 6, VOCAB)
    assert model(src, tgt).shape == (3, 6, VOCAB)
    assert model.decode(tgt[:, :1], enc, {}).shape == (3, 1, VOCAB)
    assert model.max_positions() == (64, 64)


@pytest.mark.parametrize("all_kept", [False, True])
def test_logits_for_loss_equals_forward_at_kept_rows(all_kept):
    model = tiny_model()
    src, tgt = batch()
    keep = torch.ones_like(tgt, dtype=torch.bool)
    if not all_kept:
        keep[1, 4:] = False
    logits = model.logits_for_loss(src, tgt, keep)
    assert logits.shape == (int(keep.sum()), VOCAB)
    torch.testing.assert_close(logits, model(src, tgt)[keep], rtol=0, atol=1e-5)


def test_forward_with_keep_mask_is_logits_for_loss():
    model = tiny_model()
    src, tgt = batch()
    keep = torch.ones_like(tgt, dtype=torch.bool)
    keep[2, 3:] = False
    torch.testing.assert_close(model(src, tgt, keep), model.logits_for_loss(src, tgt, keep), rtol=0, atol=0)


def test_bf16_autocast_and_bf16_weights_match_fp32_roughly():
    model = tiny_model()
    src, tgt = batch()
    reference = model(src, tgt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = model(src, tgt)
        incremental = decode_incrementally(model, src, tgt)
    model.to(torch.bfloat16)
    cast = decode_incrementally(model, src, tgt)
    assert model.decoder.embed_positions.table.dtype == torch.bfloat16
    for logits in (autocast, incremental, cast):
        torch.testing.assert_close(logits.float(), reference, rtol=0, atol=0.1)


@pytest.mark.parametrize("left_pad", [False, True])
def test_padding_does_not_change_a_sentence(left_pad):
    model = tiny_model(encoder_normalize_before=True)
    src, tgt = batch()
    alone_src = src[0:1, :4]  # row 0 holds 4 real tokens, then padding
    if left_pad:  # the same sentence, padded on the left instead: positions must count real tokens only
        src = src.clone()
        src[0] = torch.cat([torch.full((3,), PAD), alone_src[0]])
    enc_alone, enc_batch = model.encode(alone_src), model.encode(src)
    real = slice(3, 7) if left_pad else slice(0, 4)
    torch.testing.assert_close(enc_batch.out[0:1, real], enc_alone.out, rtol=0, atol=1e-5)
    torch.testing.assert_close(model(src, tgt)[0:1], model(alone_src, tgt[0:1]), rtol=0, atol=1e-5)


def test_decoder_is_causal():
    model = tiny_model()
    src, tgt = batch()
    changed = tgt.clone()
    changed[:, 3] = (tgt[:, 3] + 1 - 4) % (VOCAB - 4) + 4
    before, after = model(src, tgt), model(src, changed)
    torch.testing.assert_close(before[:, :3], after[:, :3], rtol=0, atol=1e-6)
    assert (before[:, 3:] - after[:, 3:]).abs().max() > 1e-3


@pytest.mark.parametrize("normalize_before", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_incremental_decoding_equals_full_decoding(normalize_before, shared):
    model = tiny_model(encoder_normalize_before=normalize_before, decoder_normalize_before=normalize_before,
                       share_all_embeddings=shared)
    src, tgt = batch()
    assert src.eq(PAD).any()
    full = model.decode(tgt, model.encode(src))
    torch.testing.assert_close(decode_incrementally(model, src, tgt), full, rtol=0, atol=1e-5)


def test_incremental_decoding_with_learned_positions_and_gelu():
    model = tiny_model(decoder_learned_pos=True, encoder_learned_pos=True, activation_fn="gelu")
    src, tgt = batch()
    full = model.decode(tgt, model.encode(src))
    torch.testing.assert_close(decode_incrementally(model, src, tgt), full, rtol=0, atol=1e-5)


def test_incremental_state_rejects_a_wrong_prefix_length():
    model = tiny_model()
    src, tgt = batch()
    enc, state = model.encode(src), {}
    model.decode(tgt[:, :1], enc, state)
    with pytest.raises(ValueError, match="must have 2 columns, not 3"):
        model.decode(tgt[:, :3], enc, state)


@pytest.mark.parametrize("new_order", [[2, 0, 0, 1], [1, 2]])
def test_reorder_incremental_state_equals_decoding_the_reordered_batch(new_order):
    model = tiny_model()
    src, tgt = batch()
    order = torch.tensor(new_order)
    enc, state = model.encode(src), {}
    for t in range(3):
        model.decode(tgt[:, : t + 1], enc, state)
    model.reorder_incremental_state(state, order)
    enc = enc.reorder(order)
    reordered_tgt = tgt.index_select(0, order)
    steps = [model.decode(reordered_tgt[:, : t + 1], enc, state) for t in range(3, tgt.size(1))]
    scratch = model.decode(reordered_tgt, model.encode(src.index_select(0, order)))
    torch.testing.assert_close(torch.cat(steps, dim=1), scratch[:, 3:], rtol=0, atol=1e-5)


def test_beam_rows_share_their_sentence_cross_attention_cache():
    """K rows per sentence read one copy of the encoder keys/values, and decode as if each had its own copy."""
    model = tiny_model()
    src, _ = batch()
    beam, length = 2, 7
    hist = torch.randint(4, VOCAB, (3 * beam, length), generator=torch.Generator().manual_seed(5))
    hist[:, 0] = BOS  # every row its own tokens after BOS
    sentence = torch.arange(3).repeat_interleave(beam)  # row i belongs to sentence i // 2
    with torch.inference_mode():
        enc, state = model.encode(src), {}
        model.decode(hist[::beam, :1], enc, state)  # one row per sentence, as beam search's first step
        model.reorder_incremental_state(state, sentence)  # expand to K rows each
        assert state["layers"][0]["memory_k"].size(0) == 3  # not expanded
        outputs = [model.decode(hist[:, :2], enc.reorder(sentence), state)]
        # Hypotheses move within their sentences: rows 0 and 1 swap, both rows of sentence 2 follow row 4.
        move = torch.tensor([1, 0, 2, 3, 4, 4])
        model.reorder_incremental_state(state, move)
        hist, outputs = hist.index_select(0, move), [outputs[0].index_select(0, move)]
        outputs += [model.decode(hist[:, : t + 1], enc.reorder(sentence), state) for t in range(2, 5)]
        # Sentence 1 finishes: its rows leave, and the others go on.
        keep = torch.tensor([0, 1, 4, 5])
        model.reorder_incremental_state(state, keep)
        assert state["layers"][0]["memory_k"].size(0) == 2 and state["layers"][0]["k"].size(0) == 4
        hist, outputs = hist.index_select(0, keep), [out.index_select(0, keep) for out in outputs]
        rows = sentence.index_select(0, keep)
        outputs += [model.decode(hist[:, : t + 1], enc.reorder(rows), state) for t in range(5, length)]
        scratch = model.decode(hist, model.encode(src.index_select(0, rows)))
    torch.testing.assert_close(torch.cat(outputs, dim=1), scratch[:, 1:], rtol=0, atol=1e-5)


def test_share_all_embeddings_ties_the_three_matrices():
    model = tiny_model(share_all_embeddings=True)
    weight = model.encoder.embed_tokens.weight
    assert model.decoder.embed_tokens.weight is weight
    assert model.decoder.output_projection.weight is weight
    untied = tiny_model()
    assert untied.decoder.embed_tokens.weight is not untied.encoder.embed_tokens.weight
    assert untied.decoder.output_projection.weight is not untied.decoder.embed_tokens.weight
    shared_params = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in untied.parameters()) - shared_params == 2 * VOCAB * 16


def test_share_decoder_input_output_embed_ties_only_the_decoder():
    model = tiny_model(src_vocab=30, share_decoder_input_output_embed=True)
    assert model.decoder.output_projection.weight is model.decoder.embed_tokens.weight
    assert model.encoder.embed_tokens.weight is not model.decoder.embed_tokens.weight
    assert model.encoder.embed_tokens.weight.shape == (30, 16)


def test_share_all_embeddings_needs_a_joined_dictionary():
    with pytest.raises(ConfigError, match="source has 30 types and the target 23; preprocess with "
                                          "--joined-dictionary"):
        tiny_model(src_vocab=30, share_all_embeddings=True)


def test_tied_weights_survive_a_weights_only_state_dict_round_trip():
    model = tiny_model(share_all_embeddings=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = tiny_model(seed=5, share_all_embeddings=True)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.decoder.output_projection.weight is fresh.encoder.embed_tokens.weight
    src, tgt = batch()
    torch.testing.assert_close(fresh(src, tgt), model(src, tgt), rtol=0, atol=0)


@pytest.mark.parametrize("option", [dict(activation_fn="gelu"), dict(no_scale_embedding=True),
                                    dict(encoder_normalize_before=True), dict(decoder_normalize_before=True)])
def test_options_change_the_output(option):
    src, tgt = batch()
    base, changed = tiny_model(), tiny_model(**option)
    assert (base(src, tgt) - changed(src, tgt)).abs().max() > 1e-3


def test_pre_ln_adds_a_final_layer_norm():
    post, pre = tiny_model(), tiny_model(encoder_normalize_before=True, decoder_normalize_before=True)
    assert post.encoder.layer_norm is None and post.decoder.layer_norm is None
    assert "encoder.layer_norm.weight" in pre.state_dict() and "decoder.layer_norm.weight" in pre.state_dict()


def test_learned_positions_are_parameters_and_are_used():
    model = tiny_model(encoder_learned_pos=True, decoder_learned_pos=True)
    assert isinstance(model.encoder.embed_positions, LearnedPositions)
    assert model.state_dict()["decoder.embed_positions.weight"].shape == (64, 16)
    assert not any("embed_positions" in k for k in tiny_model().state_dict())  # sinusoids are not stored
    src, tgt = batch()
    before = model(src, tgt)
    with torch.no_grad():
        model.decoder.embed_positions.weight[2].add_(1.0)
    after = model(src, tgt)
    torch.testing.assert_close(before[:, :2], after[:, :2], rtol=0, atol=1e-6)
    assert (before[:, 2] - after[:, 2]).abs().max() > 1e-3


def test_learned_positions_refuse_too_long_inputs():
    model = tiny_model(encoder_learned_pos=True, max_source_positions=5)
    with pytest.raises(ValueError, match="6 positions exceeds the model's 5 learned positions"):
        model.encode(torch.full((1, 6), 5))


def test_sinusoids_follow_fairseq_formula():
    table = sinusoid_table(10, 8)
    # fairseq: half = 4 frequencies exp(-i * log(10000) / 3); sines first, then cosines.
    assert torch.allclose(table[3, :4], torch.sin(3 * torch.exp(torch.arange(4) * -(torch.log(torch.tensor(1e4)) / 3))))
    assert torch.allclose(table[3, 4:], torch.cos(3 * torch.exp(torch.arange(4) * -(torch.log(torch.tensor(1e4)) / 3))))
    model = tiny_model(max_target_positions=4)  # sinusoids extend past max_target_positions
    src, tgt = batch(tgt_len=6)
    assert model(src, tgt).shape == (3, 6, VOCAB)


def test_attention_dropout_is_applied_in_training_only():
    model = tiny_model(dropout=0.0, attention_dropout=0.5)
    src, tgt = batch()
    model.train()
    assert (model(src, tgt) - model(src, tgt)).abs().max() > 1e-4
    model.eval()
    torch.testing.assert_close(model(src, tgt), model(src, tgt), rtol=0, atol=0)


@pytest.mark.parametrize("overrides, message", [
    (dict(encoder_attention_heads=5), "encoder_embed_dim=16 must be divisible by encoder_attention_heads=5"),
    (dict(activation_fn="swish"), "activation_fn='swish': choose one of relu, gelu"),
    (dict(decoder_embed_dim=32), "encoder_embed_dim=16 and decoder_embed_dim=32 must be equal"),
    (dict(decoder_layers=0), "decoder_layers=0: must be at least 1"),
    (dict(dropout=1.0), r"dropout=1.0: must be in \[0, 1\)"),
])
def test_bad_configs_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TransformerModel.build(tiny_config(**overrides), VOCAB, VOCAB, PAD)


def test_config_defaults_are_fairseq_transformer_base():
    cfg = TransformerConfig()
    assert (cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_layers, cfg.encoder_attention_heads) \
        == (512, 2048, 6, 8)
    assert (cfg.dropout, cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn) == (0.1, 0.0, 0.0, "relu")
    assert not cfg.share_all_embeddings and not cfg.encoder_normalize_before
    assert (cfg.max_source_positions, cfg.max_target_positions) == (1024, 1024)
    assert from_dict(TransformerConfig, to_dict(cfg)) == cfg


def expected_parameters(dim: int, ffn: int, layers: int, vocab: int, shared: bool) -> int:
    attention = 4 * (dim * dim + dim)
    feed_forward = dim * ffn + ffn + ffn * dim + dim
    encoder_layer = attention + feed_forward + 2 * 2 * dim
    decoder_layer = 2 * attention + feed_forward + 3 * 2 * dim
    embeddings = vocab * dim if shared else 3 * vocab * dim
    return layers * (encoder_layer + decoder_layer) + embeddings


@pytest.mark.parametrize("arch, dim, ffn, heads, layers, dropout", [
    ("transformer", 512, 2048, 8, 6, 0.1),
    ("transformer_small", 256, 1024, 4, 3, 0.1),
    ("transformer_iwslt_de_en", 512, 1024, 4, 6, 0.1),
    ("transformer_big", 1024, 4096, 16, 6, 0.3),
])
def test_arch_presets_build_with_the_expected_sizes(arch, dim, ffn, heads, layers, dropout):
    assert arch in ARCHS.names()
    name, overrides = ARCHS.get(arch)()
    model_cls = MODELS.get(name, flag="--arch")
    assert model_cls is TransformerModel
    cfg = dataclasses.replace(from_dict(model_cls.Config, overrides), share_all_embeddings=True)
    assert (cfg.decoder_embed_dim, cfg.decoder_ffn_embed_dim, cfg.decoder_attention_heads, cfg.decoder_layers,
            cfg.dropout) == (dim, ffn, heads, layers, dropout)
    with torch.device("meta"):  # sizes only: no memory, no initialization time
        model = model_cls.build(cfg, 8000, 8000, PAD)
    assert model.encoder.layers[0].self_attn.heads == heads
    assert sum(p.numel() for p in model.parameters()) == expected_parameters(dim, ffn, layers, 8000, True)


def test_reference_workload_size():
    """transformer_small with the joined 8,000-token BPE of the reference workload: 7,577,600 parameters."""
    _, overrides = ARCHS.get("transformer_small")()
    cfg = from_dict(TransformerConfig, {**overrides, "share_all_embeddings": True})
    with torch.device("meta"):
        model = TransformerModel.build(cfg, 8000, 8000, PAD)
    assert sum(p.numel() for p in model.parameters()) == 7_577_600
    with torch.device("meta"):
        untied = TransformerModel.build(dataclasses.replace(cfg, share_all_embeddings=False), 8000, 8000, PAD)
    assert sum(p.numel() for p in untied.parameters()) == 7_577_600 + 2 * 8000 * 256


def test_registry_lookup():
    assert MODELS.get("transformer") is TransformerModel
    assert MODELS.get("transformer").Config is TransformerConfig


def test_attention_under_bf16_autocast_runs_in_fp32_on_the_cpu():
    # The CPU SDPA kernel is slow in bf16, so `_attend` upcasts; autocast must not cast its inputs back down.
    from seq2seq_cli.models.attention import SelfAttention, _merge_heads

    torch.manual_seed(0)
    attn = SelfAttention(64, 4).eval()
    q, k, v = (torch.randn(3, 4, 9, 16).to(torch.bfloat16) for _ in range(3))
    with torch.inference_mode():
        exact = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = attn._attend(q, k, v, None, is_causal=True)
            expected = attn.out_proj(_merge_heads(exact.to(torch.bfloat16)))
            in_bf16 = attn.out_proj(_merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True)))
    assert not torch.equal(expected, in_bf16)  # the two kernels do differ on these inputs
    assert torch.equal(got, expected)


def test_projected_logits_for_loss_materialize_to_the_logits():
    model = tiny_model()
    src, tgt = batch()
    keep = torch.ones_like(tgt, dtype=torch.bool)
    keep[0, 2:] = False
    projected = model.logits_for_loss(src, tgt, keep, projected=True)
    assert projected.weight is model.decoder.output_projection.weight
    torch.testing.assert_close(projected.materialize(), model.logits_for_loss(src, tgt, keep), rtol=0, atol=1e-6)


def test_dropout_keeps_each_element_with_probability_one_minus_p_and_rescales():
    from seq2seq_cli.models.dropout import dropout, keep_mask

    torch.manual_seed(0)
    mask = keep_mask((400, 500), 0.1)
    assert mask.dtype == torch.bool and mask.shape == (400, 500)
    assert abs(mask.float().mean().item() - 0.9) < 0.003  # 200,000 draws: the standard error is 0.0007
    assert keep_mask((3, 5), 0.0).all() and not keep_mask((7,), 1 - 2**-40).any()
    x = torch.randn(7, 3, 5, requires_grad=True)
    torch.manual_seed(1)
    y = dropout(x, 0.25, training=True)
    torch.manual_seed(1)
    kept = keep_mask(x.shape, 0.25)
    torch.testing.assert_close(y, torch.where(kept, x / 0.75, 0.0), rtol=0, atol=1e-6)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert dropout(x, 0.25, training=False) is x and dropout(x, 0.0, training=True) is x
    torch.manual_seed(1)
    again = dropout(x, 0.25, training=True)
    torch.testing.assert_close(again, y, rtol=0, atol=0)  # the same seed gives the same mask
    assert not torch.equal(dropout(x, 0.25, training=True), y)  # and the next call another one
