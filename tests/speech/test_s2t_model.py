"""s2t_transformer: subsampled lengths and masks (odd lengths), batch invariance, SpecAugment, config checks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.s2t_transformer import S2TTransformerConfig, S2TTransformerModel, subsampled_lengths
from seq2seq_cli.registry import ARCHS, MODELS
from seq2seq_cli.speech.data import collate_features
from seq2seq_cli.speech.specaugment import SpecAugment

TINY = dict(encoder_layers=1, decoder_layers=1, encoder_embed_dim=16, decoder_embed_dim=16, encoder_ffn_embed_dim=32,
            decoder_ffn_embed_dim=32, encoder_attention_heads=2, decoder_attention_heads=2, conv_channels=12,
            input_feat_per_channel=6, dropout=0.0)


def tiny_model(**overrides) -> S2TTransformerModel:
    torch.manual_seed(0)
    return S2TTransformerModel.build(S2TTransformerConfig(**{**TINY, **overrides}), 9, 9, 1).eval()


def utterances(lengths, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (n, dim)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("kernels", ["5,5", "3,3,3", "5"])
def test_output_lengths_match_the_mask_for_odd_lengths(kernels):
    model = tiny_model(conv_kernel_sizes=kernels)
    layers = len(kernels.split(","))
    lengths = [1, 3, 7, 37, 19, 5]
    enc = model.encode(collate_features(utterances(lengths)))
    expected = subsampled_lengths(torch.tensor(lengths), layers)
    # each stride-2 layer keeps floor((n - 1) / 2) + 1 = ceil(n / 2) frames, so the stack keeps ceil(n / 2^layers)
    assert expected.tolist() == [-(-n // 2 ** layers) for n in lengths]
    assert enc.out.shape[:2] == (len(lengths), int(expected.max()))
    assert (~enc.src_pad_mask).sum(dim=1).tolist() == expected.tolist()
    for n in (1, 3, 7, 37):  # alone, the conv stack itself gives that many frames
        alone = model.encode(collate_features(utterances([n])))
        assert alone.out.size(1) == int(subsampled_lengths(torch.tensor([n]), layers))


def test_subsampled_lengths_two_layers():
    assert subsampled_lengths(torch.tensor([1, 2, 3, 4, 5, 7, 9, 37, 100]), 2).tolist() == [1, 1, 1, 1, 2, 2, 3, 10, 25]


def test_an_utterance_encodes_the_same_alone_and_in_a_padded_batch():
    model = tiny_model()
    feats = utterances([23, 9, 40])
    batch = model.encode(collate_features(feats))
    for row, f in enumerate(feats):
        alone = model.encode(collate_features([f]))
        n = alone.out.size(1)
        torch.testing.assert_close(batch.out[row, :n], alone.out[0], atol=1e-5, rtol=1e-5)


def test_decode_shapes_and_incremental_equal_full():
    model = tiny_model()
    enc = model.encode(collate_features(utterances([20, 11])))
    tgt = torch.tensor([[0, 4, 5, 6], [0, 7, 8, 1]])
    full = model.decode(tgt, enc)
    assert full.shape == (2, 4, 9)
    state: dict = {}
    steps = [model.decode(tgt[:, :t + 1], enc, state)[:, -1] for t in range(3)]
    torch.testing.assert_close(torch.stack(steps, 1), full[:, :3], atol=1e-5, rtol=1e-5)


def test_wrong_input_width_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects \(B, T, 7\) features \(values \+ a real-frame flag\), got shape "
                                         r"\(1, 5, 4\)"):
        tiny_model().encode(torch.zeros(1, 5, 4))


def test_specaugment_masks_only_in_training_inside_real_frames():
    aug = SpecAugment(freq_mask_n=2, freq_mask_f=3, time_mask_n=2, time_mask_t=4, time_mask_p=0.5)
    x = torch.ones(3, 20, 10)
    lengths = torch.tensor([20, 8, 3])
    x[1, 8:] = 0.0
    x[2, 3:] = 0.0
    aug.eval()
    assert torch.equal(aug(x, lengths), x)
    aug.train()
    torch.manual_seed(0)
    out = aug(x, lengths)
    torch.manual_seed(0)
    assert torch.equal(aug(x, lengths), out)  # the same seed, the same masks
    assert torch.equal(out[1, 8:], x[1, 8:]) and torch.equal(out[2, 3:], x[2, 3:])  # padding untouched
    masked_any = False
    for row, n in enumerate(lengths.tolist()):
        real = out[row, :n]
        zero_bins = (real == 0).all(dim=0).sum().item()  # frequency masks span every frame
        zero_frames = (real == 0).all(dim=1).sum().item()
        assert zero_bins <= 2 * 3 and zero_frames <= 2 * min(4, int(0.5 * n))
        masked_any |= zero_bins > 0 or zero_frames > 0
    assert masked_any
    assert torch.equal(SpecAugment(0, 27, 0, 100, 1.0).train()(x, lengths), x)  # both counts 0: off


def test_model_applies_specaugment_only_when_training():
    model = tiny_model(freq_mask_n=2, freq_mask_f=3, time_mask_n=2, time_mask_t=5)
    src = collate_features(utterances([30]))
    assert torch.equal(model.encode(src).out, model.encode(src).out)  # eval: deterministic, no masking
    model.train()
    model.encoder.dropout = 0.0
    torch.manual_seed(1)
    masked = model.encoder.spec_augment(src[:, :, :-1], torch.tensor([30]))
    assert not torch.equal(masked, src[:, :, :-1])


def test_config_checks():
    with pytest.raises(ConfigError, match="share_all_embeddings does not apply to s2t_transformer"):
        tiny_model(share_all_embeddings=True)
    with pytest.raises(ConfigError, match=r"conv_kernel_sizes='5,x': give comma-separated positive integers"):
        tiny_model(conv_kernel_sizes="5,x")
    with pytest.raises(ConfigError, match=r"time_mask_p=1.5: must be in \[0, 1\]"):
        tiny_model(time_mask_p=1.5)


def test_registered_with_presets():
    assert MODELS.get("s2t_transformer") is S2TTransformerModel
    base = S2TTransformerConfig()
    assert (base.encoder_layers, base.decoder_layers, base.encoder_embed_dim, base.encoder_normalize_before,
            base.max_source_positions) == (12, 6, 512, True, 6000)
    name, small = ARCHS.get("s2t_transformer_s")()
    cfg = dataclasses.replace(S2TTransformerConfig(), **small)
    assert name == "s2t_transformer"
    assert (cfg.encoder_layers, cfg.decoder_layers, cfg.encoder_embed_dim, cfg.encoder_attention_heads) == (12, 6, 256,
                                                                                                             4)
    assert ARCHS.get("s2t_transformer")() == ("s2t_transformer", {})
