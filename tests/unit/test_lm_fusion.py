"""The language model (models/transformer_lm.py) and shallow fusion (decoding/lm_fusion.py): the LM's cache against
recomputation, fused hypothesis scores against their definition (model + W x LM, token by token), the loop's
equivalences with an LM (cached == uncached, batched == one-by-one, beam 1 == greedy), and the errors."""
from __future__ import annotations

import pytest
import torch

from seq2seq_cli.decoding.config import SearchConfig, build_strategy
from seq2seq_cli.decoding.ensemble import Ensemble
from seq2seq_cli.decoding.lm_fusion import LMFusion, with_lm
from seq2seq_cli.decoding.translator import Translator
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.transformer_lm import TransformerLanguageModel, TransformerLMConfig
from tests.decoding_fixtures import MAX_POSITIONS, load_translator
from tests.unit.test_decoding import assert_same, decode

SOURCES = ["a b c d", "p o n m l k j", "x@@ a", "e f e f e f", "b", "g h i j k l m n o p a b"]
WEIGHT = 0.7


def tiny_lm(vocab: int, pad: int, seed: int = 0, **overrides) -> TransformerLanguageModel:
    torch.manual_seed(seed)
    cfg = TransformerLMConfig(**{**dict(decoder_embed_dim=32, decoder_ffn_embed_dim=64, decoder_layers=2,
                                        decoder_attention_heads=4, dropout=0.0,
                                        max_target_positions=MAX_POSITIONS), **overrides})
    return TransformerLanguageModel.build(cfg, vocab, vocab, pad).eval()


@pytest.fixture(scope="module")
def plain() -> Translator:
    return load_translator()


@pytest.fixture(scope="module")
def lm(plain: Translator) -> TransformerLanguageModel:
    tok = plain.tgt_tokenizer
    return tiny_lm(tok.vocab_size, tok.pad_id)


@pytest.fixture(scope="module")
def fused(plain: Translator, lm: TransformerLanguageModel) -> Translator:
    return Translator(plain.ensemble.models, plain.src_tokenizer, plain.tgt_tokenizer, plain.device, lm=lm)


@pytest.fixture(scope="module")
def src_ids(plain: Translator) -> list[list[int]]:
    return plain.encode(SOURCES)


# ----------------------------------------------------------------------------------------------- the model


def test_lm_has_no_cross_attention_and_ignores_the_source(lm: TransformerLanguageModel) -> None:
    assert not any("encoder_attn" in name for name in lm.state_dict())
    tgt_in = torch.tensor([[0, 5, 6, 7], [0, 8, 9, 1]])
    short, long = torch.tensor([[4, 2], [5, 2]]), torch.randint(3, 10, (2, 9))
    with torch.no_grad():
        assert torch.equal(lm(short, tgt_in), lm(long, tgt_in))
        assert lm.encode(long).out.shape == (2, 0, 32)


def test_lm_cached_steps_equal_the_full_prefix_and_follow_reordering(lm: TransformerLanguageModel) -> None:
    torch.manual_seed(1)
    tgt = torch.randint(3, 12, (3, 6))
    tgt[:, 0] = 0
    src = torch.zeros(3, 1, dtype=torch.long)
    with torch.no_grad():
        full = lm.decode(tgt, lm.encode(src))  # (3, 6, V)
        state: dict = {}
        enc = lm.encode(src)
        for t in range(4):
            step = lm.decode(tgt[:, : t + 1], enc, state)
            torch.testing.assert_close(step[:, 0], full[:, t], atol=1e-5, rtol=1e-5)
        order = torch.tensor([2, 0, 0])
        lm.reorder_incremental_state(state, order)
        moved = lm.decode(tgt[order, :5], enc.reorder(order), state)
    torch.testing.assert_close(moved[:, 0], full[order, 4], atol=1e-5, rtol=1e-5)


def test_lm_trains_by_teacher_forcing_like_a_decoder(lm: TransformerLanguageModel) -> None:
    """logits_for_loss at the kept positions equals the full forward pass there (what the criteria rely on)."""
    tgt_in = torch.tensor([[0, 5, 6, 7], [0, 8, 1, 1]])
    keep = tgt_in.ne(1)
    src = torch.zeros(2, 1, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(lm(src, tgt_in, keep), lm(src, tgt_in)[keep], atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------------------------- fusion


def test_fused_scores_are_the_model_plus_weight_times_the_lm(fused, plain, lm, src_ids) -> None:
    """Every positional score of a fused hypothesis (EOS included) is log p_model + W log p_lm of that token."""
    hyps = decode(fused, src_ids, "beam", beam=4, nbest=2, lm_weight=WEIGHT, lenpen=1.0)
    model_alone, lm_alone = Ensemble(plain.ensemble.models), Ensemble([lm])
    specials = plain.specials
    for src, nbest in zip(src_ids, hyps):
        for hyp in nbest:
            src_t = torch.tensor([src])
            tgt_in = torch.tensor([[specials.bos, *hyp.tokens]])
            tgt_out = torch.tensor([[*hyp.tokens, specials.eos]])
            with torch.no_grad():
                want = (model_alone.target_lprobs(src_t, tgt_in, tgt_out)
                        + WEIGHT * lm_alone.target_lprobs(src_t, tgt_in, tgt_out))[0]
            assert hyp.positional_scores == pytest.approx(want.tolist(), abs=1e-4)
            assert hyp.score == pytest.approx(sum(hyp.positional_scores) / len(hyp.positional_scores), abs=1e-4)


def test_the_lm_changes_the_output_and_a_tiny_weight_does_not(fused, plain, src_ids) -> None:
    alone = decode(plain, src_ids, "beam", beam=4)
    strong = decode(fused, src_ids, "beam", beam=4, lm_weight=5.0)
    faint = decode(fused, src_ids, "beam", beam=4, lm_weight=1e-7)
    assert [h[0].tokens for h in strong] != [h[0].tokens for h in alone]
    assert_same(faint, alone, tol=1e-4)


@pytest.mark.parametrize("strategy,options", [("greedy", {}), ("beam", {"beam": 4, "nbest": 3})])
def test_fusion_cached_equals_uncached(fused, src_ids, strategy, options) -> None:
    cached = decode(fused, src_ids, strategy, lm_weight=WEIGHT, **options)
    uncached = decode(fused, src_ids, strategy, lm_weight=WEIGHT, incremental=False, **options)
    assert_same(cached, uncached, tol=1e-4)


def test_fusion_batched_equals_one_by_one(fused, src_ids) -> None:
    batched = decode(fused, src_ids, "beam", beam=3, nbest=3, lm_weight=WEIGHT)
    single = [decode(fused, [ids], "beam", beam=3, nbest=3, lm_weight=WEIGHT)[0] for ids in src_ids]
    assert_same(batched, single, tol=1e-4)


def test_fusion_beam_one_equals_greedy(fused, src_ids) -> None:
    assert_same(decode(fused, src_ids, "beam", beam=1, lm_weight=WEIGHT),
                decode(fused, src_ids, "greedy", lm_weight=WEIGHT), tol=1e-5)


def test_fusion_caps_the_length_at_the_lm_positions(plain, lm) -> None:
    short = tiny_lm(plain.tgt_tokenizer.vocab_size, plain.tgt_tokenizer.pad_id, max_target_positions=5)
    assert LMFusion(plain.ensemble, short, WEIGHT).max_positions()[1] == 5
    assert LMFusion(plain.ensemble, lm, WEIGHT).max_positions() == plain.ensemble.max_positions()


def test_fusion_errors(fused, plain) -> None:
    beam, sampling = build_strategy("beam", {"beam": 2}), build_strategy("sampling", {"beam": 2})
    with pytest.raises(ConfigError) as err:
        with_lm(plain.ensemble, 0.3, beam)
    assert str(err.value) == ("--lm-weight 0.3 needs a language model: give --lm-path LM.pt (a transformer_lm "
                              "checkpoint over the model's target vocabulary; docs/speech.md)")
    with pytest.raises(ConfigError) as err:
        with_lm(fused.ensemble, 0.0, beam)
    assert str(err.value) == ("--lm-path needs --lm-weight W > 0, the LM's share of the score (tune it on a "
                              "validation set; 0.1 to 0.5 is common)")
    with pytest.raises(ConfigError) as err:
        with_lm(fused.ensemble, 0.3, sampling)
    assert str(err.value) == ("--lm-weight 0.3: fused scores are not a distribution to sample from; decode with "
                              "--strategy beam or greedy")
    with pytest.raises(ConfigError) as err:
        SearchConfig(lm_weight=-0.1)
    assert str(err.value) == "--lm-weight -0.1: must not be negative"
