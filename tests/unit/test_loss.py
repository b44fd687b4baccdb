"""Criteria: fairseq's label-smoothed cross-entropy against direct computations; fp32 for bf16 logits."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import CRITERIA


def make(name: str, **kwargs):
    cls = CRITERIA.get(name)
    return cls(cls.Config(**kwargs))


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(13, 11, generator=gen) * 3, torch.randint(0, 11, (13,), generator=gen)


def test_no_smoothing_equals_cross_entropy_sum(data):
    logits, target = data
    loss, nll = make("label_smoothed_cross_entropy", label_smoothing=0.0)(logits, target)
    expected = F.cross_entropy(logits, target, reduction="sum")
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(nll, expected)


def test_smoothing_follows_fairseq_formula(data):
    logits, target = data
    eps, vocab = 0.1, logits.size(-1)
    loss, nll = make("label_smoothed_cross_entropy", label_smoothing=eps)(logits, target)
    lprobs = torch.log_softmax(logits.double(), -1)
    nll_i = -lprobs[torch.arange(len(target)), target]
    eps_i = eps / (vocab - 1)
    expected = ((1 - eps - eps_i) * nll_i + eps_i * (-lprobs.sum(-1))).sum()
    torch.testing.assert_close(loss.double(), expected)
    torch.testing.assert_close(nll.double(), nll_i.sum())
    # the same as torch's smoothing with eps * V / (V - 1) (torch spreads eps/V over all V tokens)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, label_smoothing=eps * vocab / (vocab - 1),
                                                     reduction="sum"))


def test_smoothing_gradient_matches_torch(data):
    logits, target = data
    eps, vocab = 0.2, logits.size(-1)
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    make("label_smoothed_cross_entropy", label_smoothing=eps)(a, target)[0].backward()
    F.cross_entropy(b, target, label_smoothing=eps * vocab / (vocab - 1), reduction="sum").backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_bf16_logits_are_computed_in_fp32(data):
    logits, target = data
    low = logits.to(torch.bfloat16)
    loss, nll = make("label_smoothed_cross_entropy", label_smoothing=0.1)(low, target)
    assert loss.dtype == nll.dtype == torch.float32
    ref, ref_nll = make("label_smoothed_cross_entropy", label_smoothing=0.1)(low.float(), target)
    torch.testing.assert_close(loss, ref)  # same value as upcasting first: no bf16 rounding of log-probs
    torch.testing.assert_close(nll, ref_nll)


def test_nll_is_detached_and_loss_is_not(data):
    logits, target = data
    logits = logits.requires_grad_()
    loss, nll = make("label_smoothed_cross_entropy", label_smoothing=0.1)(logits, target)
    assert loss.requires_grad and not nll.requires_grad


def test_ignore_index_drops_those_positions(data):
    logits, target = data
    target = target.clone()
    target[:4] = 1
    crit = make("label_smoothed_cross_entropy", label_smoothing=0.1)
    masked = crit(logits, target, ignore_index=1)
    keep = target != 1
    direct = crit(logits[keep], target[keep])
    torch.testing.assert_close(masked[0], direct[0])
    torch.testing.assert_close(masked[1], direct[1])


def test_cross_entropy_criterion(data):
    logits, target = data
    cls = CRITERIA.get("cross_entropy")
    assert dataclasses.is_dataclass(cls.Config) and dataclasses.fields(cls.Config) == ()
    loss, nll = cls(cls.Config())(logits, target)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, reduction="sum"))
    torch.testing.assert_close(nll, loss.detach())


@pytest.mark.parametrize("eps", [-0.1, 1.0])
def test_label_smoothing_out_of_range(eps):
    with pytest.raises(ConfigError, match=rf"--label-smoothing {eps}: must be in \[0, 1\)"):
        make("label_smoothed_cross_entropy", label_smoothing=eps)


# ------------------------------------------------------------------------------------- label_smoothed_cross_entropy_with_ctc

BOS, PAD, EOS = 0, 1, 2


def ctc_inputs(lengths=(9, 6, 4), targets=((5, 6, 6, 7, EOS), (8, 3, EOS, PAD, PAD), (4, EOS, PAD, PAD, PAD)), vocab=11):
    from seq2seq_cli.training.loss import CtcInputs

    gen = torch.Generator().manual_seed(1)
    lprobs = torch.randn(max(lengths), len(lengths), vocab, generator=gen).log_softmax(-1)
    return CtcInputs(lprobs, torch.tensor(lengths), torch.tensor(targets), BOS, PAD, EOS)


def test_ctc_criterion_adds_weighted_ctc_of_targets_without_eos_or_pad(data):
    logits, target = data
    ctc = ctc_inputs()
    loss, nll = make("label_smoothed_cross_entropy_with_ctc", label_smoothing=0.1, ctc_weight=0.4)(
        logits, target, ctc=ctc)
    ls_loss, ls_nll = make("label_smoothed_cross_entropy", label_smoothing=0.1)(logits, target)
    # one row at a time, with its labels written out by hand: (5, 6, 6, 7), (8, 3), (4)
    by_row = sum(F.ctc_loss(ctc.lprobs[:n, i:i + 1], torch.tensor([labels]), torch.tensor([n]),
                            torch.tensor([len(labels)]), blank=BOS, reduction="sum")
                 for i, (n, labels) in enumerate(zip((9, 6, 4), ([5, 6, 6, 7], [8, 3], [4]))))
    torch.testing.assert_close(loss, ls_loss + 0.4 * by_row)
    torch.testing.assert_close(nll, ls_nll)  # nll_loss stays the decoder's, as fairseq logs it


def test_ctc_weight_zero_is_label_smoothed_cross_entropy(data):
    logits, target = data
    loss, _ = make("label_smoothed_cross_entropy_with_ctc", label_smoothing=0.1, ctc_weight=0.0)(
        logits, target, ctc=ctc_inputs())
    torch.testing.assert_close(loss, make("label_smoothed_cross_entropy", label_smoothing=0.1)(logits, target)[0])


def test_an_unalignable_row_counts_zero_not_infinity(data):
    logits, target = data
    # row 2 has 2 encoder positions for the 3 labels (4, 4, 4), which need 5 (blanks between repeats)
    ctc = ctc_inputs(lengths=(9, 6, 2), targets=((5, 6, 6, 7, EOS), (8, 3, EOS, PAD, PAD), (4, 4, 4, EOS, PAD)))
    crit = make("label_smoothed_cross_entropy_with_ctc", ctc_weight=1.0)
    loss, _ = crit(logits, target, ctc=ctc)
    assert torch.isfinite(loss)
    two_rows = ctc_inputs(lengths=(9, 6), targets=((5, 6, 6, 7, EOS), (8, 3, EOS, PAD, PAD)))
    two_rows.lprobs = ctc.lprobs[:, :2]
    torch.testing.assert_close(loss, crit(logits, target, ctc=two_rows)[0])


def test_ctc_gradient_reaches_the_log_probs(data):
    logits, target = data
    ctc = ctc_inputs()
    ctc.lprobs.requires_grad_(True)
    loss, _ = make("label_smoothed_cross_entropy_with_ctc")(logits, target, ctc=ctc)
    loss.backward()
    assert ctc.lprobs.grad is not None and ctc.lprobs.grad.abs().sum() > 0


def test_ctc_criterion_errors(data):
    with pytest.raises(ConfigError, match=r"^--criterion-opt ctc_weight=-0.5: must be 0 or more$"):
        make("label_smoothed_cross_entropy_with_ctc", ctc_weight=-0.5)
    with pytest.raises(ValueError, match="needs the CTC inputs"):
        make("label_smoothed_cross_entropy_with_ctc")(*data)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_pieces_give_torchs_loss_and_gradient_with_ignored_positions(monkeypatch, eps):
    # The loss works on row pieces of _CHUNK_BYTES: make them 3 rows of 11 so 13 rows span five uneven pieces.
    from seq2seq_cli.training import loss as loss_module

    monkeypatch.setattr(loss_module, "_CHUNK_BYTES", 3 * 4 * 11)
    gen = torch.Generator().manual_seed(1)
    logits, target = torch.randn(13, 11, generator=gen) * 3, torch.randint(0, 11, (13,), generator=gen)
    target[[0, 5, 12]] = 1
    vocab = logits.size(-1)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    loss, nll = make("label_smoothed_cross_entropy", label_smoothing=eps)(a, target, ignore_index=1)
    (loss * 0.5).backward()
    expected = F.cross_entropy(b, target, ignore_index=1, label_smoothing=eps * vocab / (vocab - 1), reduction="sum")
    (expected * 0.5).backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(nll, F.cross_entropy(logits, target, ignore_index=1, reduction="sum"))
    torch.testing.assert_close(a.grad, b.grad)
    assert not a.grad[[0, 5, 12]].any()  # ignored rows get no gradient


def test_both_outputs_carry_gradient_and_bf16_gets_a_bf16_gradient():
    from seq2seq_cli.training.loss import _smoothed_nll

    gen = torch.Generator().manual_seed(2)
    logits, target = torch.randn(9, 7, generator=gen), torch.randint(0, 7, (9,), generator=gen)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    loss, nll = _smoothed_nll(a, target, 0.3, None)
    (2.0 * loss - 3.0 * nll).backward()
    lprobs = torch.log_softmax(b, -1)
    ref_nll = -lprobs.gather(-1, target[:, None]).sum()
    eps_i = 0.3 / 6
    ref_loss = (1 - 0.3 - eps_i) * ref_nll + eps_i * -lprobs.sum()
    (2.0 * ref_loss - 3.0 * ref_nll).backward()
    torch.testing.assert_close(a.grad, b.grad)
    low = logits.to(torch.bfloat16).requires_grad_()
    _smoothed_nll(low, target, 0.1, None)[0].backward()
    assert low.grad.dtype == torch.bfloat16


def _projected_case(seed: int = 3):
    gen = torch.Generator().manual_seed(seed)
    hidden, weight = torch.randn(13, 5, generator=gen), torch.randn(11, 5, generator=gen)
    target = torch.randint(0, 11, (13,), generator=gen)
    target[[0, 5, 12]] = 1
    return hidden, weight, target


@pytest.mark.parametrize("name,eps", [("label_smoothed_cross_entropy", 0.0), ("label_smoothed_cross_entropy", 0.1),
                                      ("cross_entropy", 0.0)])
def test_projected_logits_give_the_loss_and_gradients_of_the_materialized_logits(monkeypatch, name, eps):
    # Pieces of 3 rows: 13 rows span five uneven pieces; the gradients of both inputs are computed in forward.
    from seq2seq_cli.models.base import ProjectedLogits
    from seq2seq_cli.training import loss as loss_module

    monkeypatch.setattr(loss_module, "_PROJECTED_CHUNK_BYTES", 3 * 4 * 11)
    hidden, weight, target = _projected_case()
    h1, w1 = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    h2, w2 = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    kwargs = {"label_smoothing": eps} if name != "cross_entropy" else {}
    criterion = make(name, **kwargs)
    loss, nll = criterion(ProjectedLogits.of(h1, w1), target, ignore_index=1)
    (loss * 0.25).backward()
    logits = h2 @ w2.t()
    expected = F.cross_entropy(logits, target, ignore_index=1, label_smoothing=eps * 11 / 10, reduction="sum")
    (expected * 0.25).backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(nll, F.cross_entropy(logits.detach(), target, ignore_index=1, reduction="sum"))
    torch.testing.assert_close(h1.grad, h2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)
    assert not h1.grad[[0, 5, 12]].any()  # ignored rows get no gradient
    assert not nll.requires_grad


def test_projected_logits_follow_autocast_and_skip_gradients_without_grad_mode():
    from seq2seq_cli.models.base import ProjectedLogits
    from seq2seq_cli.training.loss import _smoothed_nll

    hidden, weight, target = _projected_case(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        projected = ProjectedLogits.of(hidden.requires_grad_(), weight.requires_grad_())
        materialized = F.linear(hidden, weight)
    assert projected.dtype == torch.bfloat16 == materialized.dtype
    torch.testing.assert_close(projected.materialize(), materialized, rtol=0, atol=0)
    loss, _ = _smoothed_nll(projected, target, 0.1, None)
    reference, _ = _smoothed_nll(materialized, target, 0.1, None)
    torch.testing.assert_close(loss, reference)  # the same bf16 logits, the same fp32 arithmetic after them
    loss.backward()
    assert hidden.grad.dtype == weight.grad.dtype == torch.float32
    with torch.no_grad():
        again, _ = _smoothed_nll(ProjectedLogits.of(hidden, weight), target, 0.1, None)
    torch.testing.assert_close(again, _smoothed_nll(F.linear(hidden, weight).detach(), target, 0.1, None)[0])
