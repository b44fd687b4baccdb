"""Joint CTC/attention decoding (`--ctc-weight`, decoding/ctc_prefix.py): the prefix scores against a brute-force
sum over alignments, the joint hypothesis score against its definition, the loop's equivalences (cached ==
uncached, batched == one-by-one, beam 1 == greedy), the errors, and a real `generate` run."""
from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from seq2seq_cli.decoding.config import SearchConfig, build_strategy
from seq2seq_cli.decoding.ctc_prefix import CTCState, extend, full_scores, prebeam_size
from seq2seq_cli.decoding.ensemble import Ensemble
from seq2seq_cli.decoding.search import Specials, search
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.base import EncoderOut
from seq2seq_cli.speech.data import collate_features
from tests.conftest import invoke
from tests.speech.test_bad_input import assert_error
from tests.speech.test_ctc import ctc_run  # noqa: F401 (module fixture)
from tests.speech.test_pipeline import audio_data, corpus  # noqa: F401 (module fixtures)
from tests.speech.test_s2t_model import tiny_model, utterances
from tests.train_fixtures import ok

SPECIALS = Specials(bos=0, eos=2, pad=1, unk=3)
BLANK = SPECIALS.bos


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    """CTC's many-to-one map: merge repeats, then drop blanks."""
    merged = [label for i, label in enumerate(path) if i == 0 or label != path[i - 1]]
    return tuple(label for label in merged if label != BLANK)


def brute_force(x: torch.Tensor, prefix: tuple[int, ...]) -> tuple[float, float]:
    """(log psi(prefix), log p(prefix)) by summing over all V^T alignments.  Shape: x (T, V)"""
    table = x.double().tolist()
    starts, exact = [], []
    for path in itertools.product(range(x.size(1)), repeat=x.size(0)):
        labels = collapse(path)
        logp = sum(table[t][label] for t, label in enumerate(path))
        if labels[: len(prefix)] == prefix:
            starts.append(logp)
        if labels == prefix:
            exact.append(logp)
    return tuple(float(torch.logsumexp(torch.tensor(v, dtype=torch.float64), 0)) if v else -math.inf
                 for v in (starts, exact))


def assert_log_close(got: float, want: float) -> None:
    if math.isinf(want):
        assert got == want
    else:
        assert got == pytest.approx(want, abs=1e-4)


def prefix_state(x: torch.Tensor, prefix: tuple[int, ...]) -> CTCState:
    state = CTCState.empty(x[:, :, BLANK])
    for k, label in enumerate(prefix):
        token = torch.full((x.size(1), 1), label)
        psi, r = extend(state, x, token, BLANK, first=k == 0)
        state = CTCState(r[:, :, 0], psi[:, 0], token[:, 0])
    return state


@pytest.mark.parametrize("prefix", [(), (3,), (3, 3), (4, 3), (3, 4, 3), (4, 4, 4)])
def test_prefix_and_full_scores_equal_the_sum_over_alignments(prefix):
    torch.manual_seed(0)
    frames, vocab = 6, 5
    x = torch.randn(frames, 2, vocab).log_softmax(-1)
    x[4:, 1] = -math.inf  # the second row has 4 real frames: padding must not count
    lengths = torch.tensor([6, 4])
    state = prefix_state(x, prefix)
    full = full_scores(state, lengths)
    for row, n in enumerate(lengths.tolist()):
        want_psi, want_full = brute_force(x[:n, row], prefix)
        assert_log_close(float(state.psi[row]), want_psi)
        assert_log_close(float(full[row]), want_full)
        if prefix:  # and the full score is what torch's CTC loss computes
            loss = F.ctc_loss(x[:n, row: row + 1], torch.tensor([prefix]), torch.tensor([n]),
                              torch.tensor([len(prefix)]), blank=BLANK, reduction="sum")
            assert_log_close(float(full[row]), -float(loss))
    assert math.isinf(brute_force(x[:4, 1], (4, 4, 4))[0])  # the case list reaches an impossible prefix


CFG = SearchConfig(max_len_b=6, ctc_weight=0.4, nbest=3)
LENGTHS = [37, 12, 25]
FEATS = dict(zip(LENGTHS, utterances(LENGTHS)))


def decode(model, lengths, cfg: SearchConfig, strategy="beam", incremental=True, models=None, **options):
    src = collate_features([FEATS[n] if n in FEATS else utterances([n])[0] for n in lengths])
    return search(Ensemble(models or [model]), src, torch.tensor(lengths), build_strategy(strategy, options), cfg,
                  SPECIALS, None, incremental)


@pytest.fixture(scope="module")
def model():
    return tiny_model(ctc_head=True)


def test_a_hypothesis_scores_the_weighted_sum_of_attention_and_ctc_log_probabilities(model):
    w = CFG.ctc_weight
    hyps = decode(model, LENGTHS, dataclasses.replace(CFG, lenpen=0.0), beam=3)
    src = collate_features([FEATS[n] for n in LENGTHS])
    with torch.no_grad():
        enc = model.encode(src)
        ctc = model.ctc_lprobs(enc).transpose(0, 1)
    frames = (~enc.src_pad_mask).sum(1)
    checked = 0
    for i, nbest in enumerate(hyps):
        for hyp in nbest:
            tgt = torch.tensor([[SPECIALS.bos, *hyp.tokens]]), torch.tensor([[*hyp.tokens, SPECIALS.eos]])
            with torch.no_grad():
                att = Ensemble([model]).target_lprobs(src[i: i + 1], *tgt)[0]
            labels = torch.tensor(hyp.tokens, dtype=torch.long).view(1, -1)
            ctc_loss = F.ctc_loss(ctc[:, i: i + 1], labels, frames[i: i + 1], torch.tensor([len(hyp.tokens)]),
                                  blank=BLANK, reduction="sum")
            want = (1 - w) * float(att.sum()) - w * float(ctc_loss)
            assert hyp.score == pytest.approx(want, abs=1e-4)
            assert sum(hyp.positional_scores) == pytest.approx(want, abs=1e-4)
            checked += 1
    assert checked == 9


def test_with_a_language_model_the_score_adds_its_weighted_log_probability(model):
    """--ctc-weight with --lm-path: ESPnet's (1 - w) att + w ctc + W lm, over the whole hypothesis."""
    from tests.unit.test_lm_fusion import tiny_lm

    w, lm_weight = CFG.ctc_weight, 0.6
    lm = tiny_lm(9, SPECIALS.pad, decoder_embed_dim=16, decoder_ffn_embed_dim=32, decoder_attention_heads=2)
    src = collate_features([FEATS[n] for n in LENGTHS])
    cfg = dataclasses.replace(CFG, lenpen=0.0, lm_weight=lm_weight)
    fused = search(Ensemble([model], lm), src, torch.tensor(LENGTHS), build_strategy("beam", {"beam": 3}), cfg,
                   SPECIALS, None, True)
    plain = decode(model, LENGTHS, dataclasses.replace(CFG, lenpen=0.0), beam=3)
    assert [[h.tokens for h in n] for n in fused] != [[h.tokens for h in n] for n in plain]
    with torch.no_grad():
        enc = model.encode(src)
        ctc = model.ctc_lprobs(enc).transpose(0, 1)
    frames = (~enc.src_pad_mask).sum(1)
    for i, nbest in enumerate(fused):
        for hyp in nbest:
            tgt = torch.tensor([[SPECIALS.bos, *hyp.tokens]]), torch.tensor([[*hyp.tokens, SPECIALS.eos]])
            with torch.no_grad():
                att = Ensemble([model]).target_lprobs(src[i: i + 1], *tgt)[0]
                lm_lp = Ensemble([lm]).target_lprobs(src[i: i + 1], *tgt)[0]
            ctc_loss = F.ctc_loss(ctc[:, i: i + 1], torch.tensor([hyp.tokens]), frames[i: i + 1],
                                  torch.tensor([len(hyp.tokens)]), blank=BLANK, reduction="sum")
            want = (1 - w) * float(att.sum()) - w * float(ctc_loss) + lm_weight * float(lm_lp.sum())
            assert hyp.score == pytest.approx(want, abs=1e-4)


class PrefixBlindLM(torch.nn.Module):
    """A test double of a language model: the same next-token log-probabilities after any prefix."""

    def __init__(self, lprobs: torch.Tensor) -> None:
        super().__init__()
        self.lprobs = lprobs

    def encode(self, src_tokens: torch.Tensor) -> EncoderOut:
        rows = src_tokens.size(0)
        return EncoderOut(torch.zeros(rows, 0, 1), torch.zeros(rows, 0, dtype=torch.bool))

    def decode(self, tgt_in, enc, incremental_state=None) -> torch.Tensor:
        steps = 1 if incremental_state is not None else tgt_in.size(1)
        return self.lprobs.expand(tgt_in.size(0), steps, -1)

    def reorder_incremental_state(self, incremental_state, new_order) -> None:
        pass

    def max_positions(self) -> tuple[int, int]:
        return 1 << 30, 1 << 30


def test_with_a_language_model_the_prebeam_ranks_by_decoder_and_lm(model):
    """ESPnet's pre-beam: a token the decoder alone ranks below the pre-beam gets in when the LM wants it."""
    beam = 2
    src = collate_features([FEATS[n] for n in LENGTHS])
    with torch.no_grad():
        ens = Ensemble([model])
        encs = ens.encode(src)
        att = ens.next_lprobs(torch.full((len(LENGTHS), 1), SPECIALS.bos), encs, None)  # (B, V)
    labels = att[:, 3:]  # unk and the words: what the pre-beam chooses among (blank, pad and EOS never)
    wanted = 3 + int(labels[0].argmin())  # the decoder's least likely label for utterance 0
    assert wanted not in (3 + labels[0].topk(prebeam_size(beam)).indices).tolist()
    lm = PrefixBlindLM(torch.full((att.size(1),), -20.0).index_fill(0, torch.tensor([wanted]), 0.0))
    cfg = dataclasses.replace(CFG, nbest=beam)
    fused = search(Ensemble([model], lm), src, torch.tensor(LENGTHS), build_strategy("beam", {"beam": beam}),
                   dataclasses.replace(cfg, lm_weight=5.0), SPECIALS, None, True)
    assert [h.tokens[0] for h in fused[0]] == [wanted, wanted]
    assert wanted not in [h.tokens[0] for h in decode(model, LENGTHS, cfg, beam=beam)[0]]


def test_cached_equals_uncached(model):
    cached = decode(model, LENGTHS, CFG, beam=3)
    uncached = decode(model, LENGTHS, CFG, incremental=False, beam=3)
    for a, b in zip(cached, uncached):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        for ha, hb in zip(a, b):
            assert ha.score == pytest.approx(hb.score, abs=1e-5)


def test_batched_equals_one_by_one(model):
    batched = decode(model, LENGTHS, CFG, beam=3)
    for n, together in zip(LENGTHS, batched):
        alone = decode(model, [n], CFG, beam=3)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together]
        assert [h.score for h in alone] == pytest.approx([h.score for h in together], abs=1e-5)


def test_beam_one_equals_greedy(model):
    cfg = dataclasses.replace(CFG, nbest=1)
    beam = decode(model, LENGTHS, cfg, beam=1)
    greedy = decode(model, LENGTHS, cfg, strategy="greedy")
    assert [h[0].tokens for h in beam] == [h[0].tokens for h in greedy]
    assert [h[0].score for h in beam] == pytest.approx([h[0].score for h in greedy], abs=1e-5)


def test_an_ensemble_of_one_model_twice_equals_the_model(model):
    one = decode(model, LENGTHS, CFG, beam=3)
    twice = decode(None, LENGTHS, CFG, models=[model, model], beam=3)
    assert [[h.tokens for h in n] for n in one] == [[h.tokens for h in n] for n in twice]
    for a, b in zip(one, twice):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
    other = tiny_model(ctc_head=True, conv_kernel_sizes="5")  # time / 2 instead of / 4: other CTC frames
    with pytest.raises(ConfigError, match=r"^--ctc-weight with an ensemble: the models subsample the audio "
                                          r"differently"):
        decode(None, LENGTHS, CFG, models=[model, other], beam=3)


def test_the_ctc_weight_changes_the_outputs_and_never_exceeds_what_ctc_can_emit(model):
    # 5 frames subsample to 2 encoder positions: CTC can emit at most 2 labels, so joint hypotheses stop there,
    # while the attention decoder alone runs to the length limit.
    alone = decode(model, [5], dataclasses.replace(CFG, ctc_weight=0.0, nbest=1), beam=3)[0][0]
    joint = decode(model, [5], dataclasses.replace(CFG, nbest=1), beam=3)[0][0]
    assert len(alone.tokens) == CFG.max_len_b
    assert 1 <= len(joint.tokens) <= 2


def test_the_prebeam_is_one_and_a_half_beams():
    assert [prebeam_size(k) for k in (1, 2, 4, 5, 10)] == [2, 3, 6, 7, 15]


def test_bad_uses_are_refused(model):
    with pytest.raises(ConfigError, match=r"^--ctc-weight 1.5: must be in \[0, 1\]$"):
        SearchConfig(ctc_weight=1.5)
    no_head = tiny_model()
    with pytest.raises(ConfigError, match=r"^--ctc-weight 0.4: the model has no CTC head; joint CTC/attention "
                                          r"decoding needs an s2t_transformer trained with --criterion "
                                          r"label_smoothed_cross_entropy_with_ctc \(or give --ctc-weight 0\)$"):
        decode(no_head, [9], CFG, beam=3)
    with pytest.raises(ConfigError, match=r"^--ctc-weight 0.4: joint CTC/attention scores are not a distribution "
                                          r"to sample from; decode with --strategy beam or greedy$"):
        decode(model, [9], dataclasses.replace(CFG, nbest=1), strategy="sampling")
    src = collate_features(utterances([9]))
    with pytest.raises(ConfigError, match=r"^--ctc-weight 0.4 cannot be combined with --prefix-size$"):
        search(Ensemble([model]), src, torch.tensor([9]), build_strategy("beam", {"beam": 2}),
               dataclasses.replace(CFG, nbest=1), SPECIALS, torch.tensor([[4]]))


def test_generate_with_ctc_weight_on_a_ctc_checkpoint(runner, ctc_run, audio_data):  # noqa: F811
    ckpt = ctc_run / "checkpoint_last.pt"
    args = ["generate", audio_data, "--path", ckpt, "--beam", "3", "--device", "cpu", "--no-progress"]
    joint = ok(invoke(runner, [*args, "--ctc-weight", "0.5", "--output-format", "jsonl"]))
    assert len(joint.stdout.splitlines()) == 6
    assert_error(invoke(runner, [*args, "--ctc-weight", "-0.1"]), "--ctc-weight -0.1: must be in [0, 1]")


def test_generate_fuses_a_language_model_with_joint_ctc_decoding(runner, ctc_run, audio_data, tmp_path):  # noqa: F811
    """The speech path end to end: an LM over the audio DATA_DIR's target vocabulary, trained on the transcripts,
    fused with the CTC checkpoint from the command line; its weight reaches the output."""
    from tests.e2e.test_language_model import TINY_LM
    from tests.train_fixtures import train

    texts = [line.split("\t")[3] for line in (audio_data.parent / "raw" / "train.tsv").read_text().splitlines()[1:]]
    (tmp_path / "lm.en").write_text("\n".join(texts) + "\n", encoding="utf-8")
    ok(invoke(runner, ["preprocess", "--only-source", "-s", "en", "--trainpref", tmp_path / "lm", "--srcdict",
                       audio_data / "tokenizer.en.json", "--destdir", tmp_path / "bin-lm"]))
    ok(train(runner, tmp_path / "bin-lm", tmp_path / "lm", "--max-update", 4, "--disable-validation", model=TINY_LM))
    args = ["generate", audio_data, "--path", ctc_run / "checkpoint_last.pt", "--beam", "3", "--ctc-weight", "0.5",
            "--device", "cpu", "--no-progress"]
    plain = ok(invoke(runner, args)).stdout.splitlines()
    lm = ["--lm-path", tmp_path / "lm" / "checkpoint_last.pt", "--lm-weight"]
    faint = ok(invoke(runner, [*args, *lm, "1e-9"])).stdout.splitlines()
    strong = ok(invoke(runner, [*args, *lm, "50"])).stdout.splitlines()
    assert len(plain) == 6 and faint == plain
    assert len(strong) == 6 and strong != plain


def test_generate_with_ctc_weight_and_a_model_without_the_head(runner, audio_data):  # noqa: F811
    from tests.speech.test_pipeline import FAST, TINY_S2T

    save = audio_data.parent / "ck-no-ctc"
    if not (save / "checkpoint_last.pt").exists():
        ok(invoke(runner, ["train", audio_data, "--save-dir", save, *TINY_S2T, *FAST, "--max-update", "1",
                           "--no-epoch-checkpoints"]))
    result = invoke(runner, ["generate", audio_data, "--path", save / "checkpoint_last.pt", "--ctc-weight", "0.3",
                             "--device", "cpu", "--no-progress"])
    assert_error(result, "--ctc-weight 0.3: the model has no CTC head; joint CTC/attention decoding needs an "
                         "s2t_transformer trained with --criterion label_smoothed_cross_entropy_with_ctc (or give "
                         "--ctc-weight 0)")
