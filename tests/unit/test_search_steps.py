"""The loop's per-step shortcuts give what the plain formulas give: beam search's candidates from each row's 2K best
equal the top 2K over all K x V continuations, and the NaN guard (replace only when a NaN is there) bans exactly
the NaN tokens."""
from __future__ import annotations

import pytest
import torch

from seq2seq_cli.decoding.config import SearchConfig, build_strategy
from seq2seq_cli.decoding.search import Specials, _constrain, _Live

NEG_INF = float("-inf")


def full_vocabulary_beam_step(lprobs: torch.Tensor, scores: torch.Tensor, beam: int):
    """fairseq's beam step: the top 2K of lprobs + scores over all K x V (B, K, V) continuations."""
    vocab = lprobs.size(2)
    flat = (lprobs + scores.unsqueeze(-1)).reshape(lprobs.size(0), -1)
    top = flat.topk(min(2 * beam, flat.size(1)), dim=1)
    return top.values, top.indices % vocab, top.indices // vocab


@pytest.mark.parametrize("beam,vocab", [(5, 300), (4, 3), (1, 50), (3, 6)])
def test_beam_step_equals_the_top_2k_over_the_whole_vocabulary(beam: int, vocab: int) -> None:
    gen = torch.Generator().manual_seed(beam * 1000 + vocab)
    lprobs = torch.log_softmax(torch.randn(6, beam, vocab, generator=gen), -1)
    lprobs[:, :, 0] = NEG_INF  # banned tokens (pad) stay banned
    lprobs[1, 0, vocab // 2] = NEG_INF
    scores = -10 * torch.rand(6, beam, generator=gen)
    scores[2, 0] = NEG_INF  # a dead row: all its continuations are impossible
    got = build_strategy("beam", {"beam": beam}).step(3, lprobs, scores)
    expected = full_vocabulary_beam_step(lprobs, scores, beam)
    assert torch.equal(got[0], expected[0])  # bit for bit: the same float additions
    finite = expected[0] > NEG_INF  # -inf candidates tie: which token/row fills them is arbitrary (never used)
    for g, e in zip(got[1:], expected[1:]):
        assert torch.equal(g[finite], e[finite])


def _live(rows: int, max_len: int = 50) -> _Live:
    return _Live(tokens=torch.full((rows, max_len + 2), 5), scores=torch.zeros(rows),
                 positional=torch.zeros(rows, max_len + 1), sent_ids=torch.arange(rows),
                 max_lens=torch.full((rows,), max_len), n_final=torch.zeros(rows, dtype=torch.long), prefix=None,
                 encs=[], states=None, shortest=max_len)


@pytest.mark.parametrize("bad", [[], [(0, 7)], [(1, 3), (1, 4), (3, 0)]])
def test_nan_guard_bans_exactly_the_nan_tokens(bad: list[tuple[int, int]]) -> None:
    specials = Specials(bos=0, eos=2, pad=1, unk=3)
    lprobs = torch.log_softmax(torch.randn(4, 20, generator=torch.Generator().manual_seed(len(bad))), -1)
    lprobs[2, 9] = NEG_INF
    for row, col in bad:
        lprobs[row, col] = float("nan")
    expected = torch.where(lprobs.isnan(), NEG_INF, lprobs)
    expected[:, [specials.pad, specials.bos]] = NEG_INF
    got = _constrain(lprobs.clone(), 3, _live(4), 1, SearchConfig(), specials)
    assert not got.isnan().any()
    assert torch.equal(got, expected)
