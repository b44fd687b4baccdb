"""Decoding: strategy steps, the generation loop's bookkeeping and constraints, and equivalences that must hold for
any weights (cached = uncached, beam 1 = greedy, batched = one by one, top-k 1 = greedy, seeds, ensembles)."""
from __future__ import annotations

import logging
import math

import pytest
import torch

from seq2seq_cli.decoding.base import Hypothesis
from seq2seq_cli.decoding.config import SearchConfig, build_strategy, split_options
from seq2seq_cli.decoding.ensemble import Ensemble
from seq2seq_cli.decoding.run import translate_ids
from seq2seq_cli.decoding.translator import Translator, make_generator, plan_batches, post_process
from seq2seq_cli.errors import ConfigError, UnknownComponentError
from tests.decoding_fixtures import MAX_POSITIONS, copy_sentences, load_translator, tiny_checkpoint

SOURCES = ["a b c d", "", "p o n m l k j", "x@@ a", "e f e f e f", "b", "g h i j k l m n o p a b"]


@pytest.fixture(scope="module")
def translator() -> Translator:
    return load_translator()


@pytest.fixture(scope="module")
def src_ids(translator: Translator) -> list[list[int]]:
    return translator.encode(SOURCES)


def decode(translator: Translator, src_ids, strategy: str = "beam", seed: int | None = None,
           incremental: bool = True, batch_size: int | None = None, prefixes=None, **options):
    strategy_options, cfg = split_options(strategy, options)
    strat = build_strategy(strategy, strategy_options, make_generator(seed, torch.device("cpu")))
    return translator.generate_ids(src_ids, strat, cfg, batch_size=batch_size, incremental=incremental,
                                   prefixes=prefixes)


def assert_same(a: list[list[Hypothesis]], b: list[list[Hypothesis]], tol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for hyps_a, hyps_b in zip(a, b):
        assert [h.tokens for h in hyps_a] == [h.tokens for h in hyps_b]
        for ha, hb in zip(hyps_a, hyps_b):
            assert ha.score == pytest.approx(hb.score, abs=tol)
            assert ha.positional_scores == pytest.approx(hb.positional_scores, abs=tol)


# ----------------------------------------------------------------------------------------------- strategy steps


def test_beam_step_expands_row_zero_first_and_returns_2k_best() -> None:
    strategy = build_strategy("beam", {"beam": 2})
    lprobs = torch.log_softmax(torch.randn(3, 2, 7), -1)
    scores, tokens, beams = strategy.step(0, lprobs, torch.zeros(3, 2))
    assert scores.shape == tokens.shape == beams.shape == (3, 4)
    assert (beams == 0).all()  # identical rows at step 0: only row 0 is expanded
    assert torch.equal(scores, lprobs[:, 0].topk(4).values)
    prev = torch.tensor([[-1.0, -2.0]] * 3)
    scores, tokens, beams = strategy.step(1, lprobs, prev)
    expected = (lprobs + prev.unsqueeze(-1)).view(3, -1).topk(4)
    assert torch.equal(scores, expected.values)
    assert torch.equal(beams * 7 + tokens, expected.indices)


def test_greedy_step_takes_the_argmax() -> None:
    lprobs = torch.log_softmax(torch.randn(4, 1, 9), -1)
    scores, tokens, beams = build_strategy("greedy").step(3, lprobs, torch.full((4, 1), -1.5))
    assert torch.equal(tokens[:, 0], lprobs[:, 0].argmax(-1))
    assert torch.allclose(scores[:, 0], lprobs[:, 0].max(-1).values - 1.5)
    assert (beams == 0).all()


def test_topp_keeps_the_token_that_crosses_p_and_nothing_after() -> None:
    probs = torch.tensor([[[0.5, 0.3, 0.15, 0.05]]])
    strategy = build_strategy("sampling", {"beam": 1, "sampling_topp": 0.7})
    kept, ids = strategy._candidates(probs.log())
    assert ids[0, 0].tolist() == [0, 1]  # 0.5 < 0.7, then 0.3 crosses it: both kept, 0.15 and 0.05 not
    assert kept[0, 0].tolist() == pytest.approx([0.5, 0.3])


def test_sampling_draws_only_from_the_top_k() -> None:
    lprobs = torch.log_softmax(torch.randn(2, 3, 50), -1)
    strategy = build_strategy("sampling", {"beam": 3, "sampling_topk": 2}, torch.Generator().manual_seed(0))
    for step in (0, 1):
        _, tokens, beams = strategy.step(step, lprobs, torch.zeros(2, 3))
        top2 = lprobs[:, 0 if step == 0 else slice(None)].topk(2, -1).indices
        source_rows = beams if step else torch.zeros_like(beams)
        for b in range(2):
            for k in range(3):
                row = top2[b] if step == 0 else top2[b, source_rows[b, k]]
                assert tokens[b, k] in row


# ----------------------------------------------------------------------------------------------- equivalences


@pytest.mark.parametrize("strategy,options", [("greedy", {}), ("beam", {"beam": 4, "nbest": 4}),
                                              ("sampling", {"beam": 3, "nbest": 3})])
def test_cached_equals_uncached(translator, src_ids, strategy, options) -> None:
    cached = decode(translator, src_ids, strategy, seed=7, **options)
    uncached = decode(translator, src_ids, strategy, seed=7, incremental=False, **options)
    assert_same(cached, uncached)


def test_beam_one_equals_greedy(translator, src_ids) -> None:
    assert_same(decode(translator, src_ids, "beam", beam=1), decode(translator, src_ids, "greedy"))


def test_batched_equals_one_by_one(translator, src_ids) -> None:
    batched = decode(translator, src_ids, "beam", beam=4, nbest=3)
    single = [decode(translator, [ids], "beam", beam=4, nbest=3)[0] for ids in src_ids]
    # Padding changes the attention kernels (masked vs not), so float32 results differ in the last digits.
    assert_same(batched, single, tol=1e-4)


def test_sampling_top1_equals_greedy(translator, src_ids) -> None:
    assert_same(decode(translator, src_ids, "sampling", seed=3, beam=1, sampling_topk=1),
                decode(translator, src_ids, "greedy"))


def test_tiny_topp_equals_greedy(translator, src_ids) -> None:
    # p below every top probability: the nucleus is the single most probable token.
    assert_same(decode(translator, src_ids, "sampling", seed=3, beam=1, sampling_topp=1e-6),
                decode(translator, src_ids, "greedy"))


def test_same_seed_same_samples_other_seed_other_samples(translator, src_ids) -> None:
    first = decode(translator, src_ids, "sampling", seed=11, temperature=3.0)
    assert_same(first, decode(translator, src_ids, "sampling", seed=11, temperature=3.0), tol=0)
    other = decode(translator, src_ids, "sampling", seed=12, temperature=3.0)
    assert [h[0].tokens for h in first] != [h[0].tokens for h in other]


def test_output_order_equals_input_order(translator) -> None:
    sentences = copy_sentences(20, seed=5, min_len=1, max_len=12)
    ids = translator.encode(sentences)
    forward = decode(translator, ids, batch_size=4)
    backward = decode(translator, ids[::-1], batch_size=4)
    assert_same(forward, backward[::-1], tol=1e-4)  # other batch neighbours: see test_batched_equals_one_by_one
    assert [len(h) for h in forward] == [1] * 20


def test_ensemble_of_one_checkpoint_twice_equals_it(src_ids) -> None:
    path = tiny_checkpoint().checkpoint
    single = load_translator(path)
    double = load_translator(f"{path}:{path}")
    assert len(double.ensemble) == 2
    assert_same(decode(single, src_ids, beam=3, nbest=2), decode(double, src_ids, beam=3, nbest=2))


def test_ensemble_averages_probabilities() -> None:
    ck = tiny_checkpoint()
    a, b = load_translator(ck.checkpoint), load_translator(ck.other)
    both = Ensemble([a.ensemble.models[0], b.ensemble.models[0]])
    src = torch.tensor([a.encode(["a b c"])[0]])
    tgt_in = torch.tensor([[a.specials.bos, 5, 6]])
    with torch.inference_mode():
        got = both.next_lprobs(tgt_in, both.encode(src), None)
        p = [m.decode(tgt_in, m.encode(src))[:, -1].softmax(-1) for m in both.models]
    assert torch.allclose(got, ((p[0] + p[1]) / 2).log(), atol=1e-5)


# ----------------------------------------------------------------------------------------------- bookkeeping


def test_scores_are_length_normalized_sums_of_positional_scores(translator, src_ids) -> None:
    for lenpen in (1.0, 0.3, 2.0):
        for hyps in decode(translator, src_ids, beam=4, nbest=4, lenpen=lenpen):
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            for h in hyps:
                assert len(h.positional_scores) == len(h.tokens) + 1  # EOS included
                assert h.score == pytest.approx(sum(h.positional_scores) / (len(h.tokens) + 1) ** lenpen, abs=1e-5)


def test_nbest_gives_distinct_hypotheses_and_never_more_than_beam(translator, src_ids) -> None:
    hyps = decode(translator, src_ids[:1], beam=5, nbest=5)[0]
    assert len({tuple(h.tokens) for h in hyps}) == 5
    with pytest.raises(ConfigError, match=r"--nbest 3 is larger than --beam 2"):
        decode(translator, src_ids, beam=2, nbest=3)
    with pytest.raises(ConfigError, match=r"--nbest 2 is larger than --beam 1"):
        decode(translator, src_ids, "greedy", nbest=2)


def test_empty_source_gives_an_empty_hypothesis(translator) -> None:
    hyps = decode(translator, translator.encode(["", "a"]), beam=3, nbest=2)
    assert [h.tokens for h in hyps[0]] == [[], []]
    assert math.isfinite(hyps[0][0].score) and len(hyps[0][0].positional_scores) == 1
    assert hyps[1][0].tokens  # the other sentence is decoded normally


def test_copy_model_copies(translator) -> None:
    # The fixture's model was trained to copy; a decoding bug (wrong cache order, EOS handling) breaks this.
    sentences = copy_sentences(30, seed=3)
    outputs = translator.translate(sentences)
    assert sum(o == s for o, s in zip(outputs, sentences)) >= 10


def test_max_and_min_length(translator, src_ids) -> None:
    for hyps in decode(translator, src_ids, max_len_b=2):
        assert len(hyps[0].tokens) <= 2
    lengths = [len(i) - 1 for i in src_ids]
    for hyps, n in zip(decode(translator, src_ids, max_len_a=0.5, max_len_b=1), lengths):
        assert len(hyps[0].tokens) <= (int(0.5 * n + 1) if n else 0)
    for hyps, n in zip(decode(translator, src_ids, min_len=15), lengths):
        assert len(hyps[0].tokens) >= 15 if n else hyps[0].tokens == []


def test_length_is_capped_by_the_model_positions(translator) -> None:
    hyps = decode(translator, translator.encode(["a b"]), max_len_b=10_000, min_len=10_000)
    assert len(hyps[0][0].tokens) == MAX_POSITIONS - 1


def test_unk_penalty(translator, src_ids) -> None:
    unk = translator.specials.unk
    plain = decode(translator, src_ids, beam=2)
    assert not any(unk in h[0].tokens for h in plain)
    rewarded = decode(translator, src_ids, beam=2, unkpen=-50.0)  # a negative penalty is a bonus
    assert all(h[0].tokens and set(h[0].tokens) == {unk} for h, ids in zip(rewarded, src_ids) if len(ids) > 1)


def test_no_repeat_ngram_blocking(translator) -> None:
    ids = translator.encode(["a b a b a b", "c c c d"])
    plain = decode(translator, ids, "greedy")
    assert any(_has_repeated_ngram(h[0].tokens, 2) for h in plain)  # the copy model repeats what it sees
    for n in (1, 2):
        for hyps in decode(translator, ids, beam=3, nbest=3, no_repeat_ngram_size=n):
            assert not any(_has_repeated_ngram(h.tokens, n) for h in hyps)


def _has_repeated_ngram(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def test_prefix_is_forced(translator, src_ids) -> None:
    prefix_tokens = translator.encode_targets(["p p p", "", "a"])
    prefixes = [prefix_tokens[i % 3] for i in range(len(src_ids))]
    for hyps, prefix, ids in zip(decode(translator, src_ids, beam=3, nbest=2, prefixes=prefixes), prefixes, src_ids):
        for h in hyps:
            if len(ids) > 1:  # an empty source still gives an empty output
                assert h.tokens[: len(prefix)] == prefix


def test_temperature_scales_the_logits(translator, src_ids) -> None:
    base = decode(translator, src_ids, "greedy")
    hot = decode(translator, src_ids, "greedy", temperature=2.0)
    assert [h[0].tokens for h in base] == [h[0].tokens for h in hot]  # argmax does not change
    # A flatter distribution gives the argmax less probability.
    assert all(h[0].score < b[0].score for h, b, i in zip(hot, base, src_ids) if len(i) > 1)


def test_score_of_the_greedy_output_equals_its_positional_scores(translator, src_ids) -> None:
    greedy = decode(translator, src_ids, "greedy")
    scored = translator.score_ids(src_ids, [h[0].tokens for h in greedy])
    for g, s in zip(greedy, scored):
        assert s.positional_scores == pytest.approx(g[0].positional_scores, abs=1e-4)
        assert s.score == pytest.approx(sum(g[0].positional_scores) / len(g[0].positional_scores), abs=1e-4)


# ----------------------------------------------------------------------------------------------- batching, errors


def test_plan_batches_covers_every_index_once_within_limits() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 40]
    for batch_size, max_tokens in ((2, None), (None, 20), (3, 16), (None, None)):
        batches = plan_batches(lengths, batch_size, max_tokens)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert batch_size is None or len(b) <= batch_size
            assert max_tokens is None or len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_tokens


def test_over_long_line_is_truncated_and_warned(translator, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="seq2seq_cli"):
        ids = translator.encode(["a b", " ".join(["a"] * 100)], first_line=5, source="in.txt")
    assert len(ids[1]) == MAX_POSITIONS and ids[1][-1] == translator.src_tokenizer.eos_id
    assert "in.txt line 6: 100 source tokens" in caplog.text
    assert "line 5" not in caplog.text


def test_unknown_strategy_lists_the_available_ones() -> None:
    with pytest.raises(UnknownComponentError, match=r"unknown decoding strategy 'nope' \(--strategy\); "
                                                    r"available: beam, ([\w-]+, )*greedy, ([\w-]+, )*sampling"):
        # plugins (installed, or registered by other tests) may sit between the built-ins
        build_strategy("nope")


def test_strategy_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"--beam: strategy 'greedy' has no option 'beam' \(its options: none\)"):
        build_strategy("greedy", {"beam": 5})
    with pytest.raises(ConfigError, match=r"--strategy-opt width: strategy 'beam' has no option 'width'"):
        build_strategy("beam", {"width": "3"})
    with pytest.raises(ConfigError, match=r"--sampling-topp 1.5"):
        build_strategy("sampling", {"sampling_topp": "1.5"})
    assert build_strategy("beam", {"beam": "7"}).beam_size == 7  # strings are coerced (--strategy-opt beam=7)
    with pytest.raises(ConfigError, match=r"--temperature 0"):
        SearchConfig(temperature=0)


def test_translate_ids_contract_and_train_mode_restored(translator, src_ids) -> None:
    model = translator.ensemble.models[0]
    model.train()
    try:
        out = translate_ids([model], src_ids, translator.tgt_tokenizer, "beam", {"beam": 3, "nbest": 2,
                                                                                   "batch_size": 2})
        assert model.training
    finally:
        model.eval()
    assert_same(out, decode(translator, src_ids, beam=3, nbest=2))


def test_remove_bpe_post_processing() -> None:
    assert post_process("th@@ e c@@ at", "@@ ") == "the cat"
    assert post_process("a x@@", "@@ ") == "a x"  # fairseq appends a space first: a final marker goes too
    assert post_process("\u2581the \u2581c at", "sentencepiece") == "the cat"
    assert post_process("a@@ b", None) == "a@@ b"


def test_cross_attention_keys_values_are_computed_once_per_sentence(translator, src_ids) -> None:
    model = translator.ensemble.models[0]
    calls = []
    hooks = [m.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
             for name, m in model.named_modules() if name.endswith(".kv_proj")]
    assert hooks, "the model has no kv_proj modules: update this test to its cross-attention"
    try:
        decode(translator, src_ids, beam=4)
    finally:
        for h in hooks:
            h.remove()
    assert calls == [len(src_ids)] * len(hooks)  # one call per layer, one row per sentence (not per beam row)
