"""Training criteria: label-smoothed cross-entropy (fairseq's formula), plain cross-entropy, and label-smoothed
cross-entropy plus an auxiliary CTC loss on the encoder (fairseq's `label_smoothed_cross_entropy_with_ctc`).

All take the logits at the non-pad target positions only, compute in fp32 whatever the logits' dtype (bf16
autocast), and return sums in nats; the trainer divides by the update's target tokens and logs base 2 as fairseq.
`batch_loss` is the one place where a batch meets the model and the criterion (training and validation).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.base import ProjectedLogits
from seq2seq_cli.registry import CRITERIA


# Rows of logits handled at once by `_SmoothedCrossEntropy`: about 8 MiB of fp32 per piece, under glibc's largest
# mmap threshold (32 MiB, which `device.tune_allocator` sets), so that the pieces are reused heap memory.
_CHUNK_BYTES = 8 * 2**20
# The same for `_ProjectedSmoothedCrossEntropy`, whose pieces also feed matrix products: 16 MiB (524 rows of 8,000)
# measured fastest of 8, 16 and 31 MiB at the reference batch (537 against 579 and 554 ms forward + backward).
_PROJECTED_CHUNK_BYTES = 16 * 2**20


def _piece_loss(x: torch.Tensor, target: torch.Tensor, eps: float, eps_i: float,
                in_place: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax, smoothed loss and NLL of a piece of fp32 logits (see `_SmoothedCrossEntropy` for the formula);
    with `in_place`, the softmax overwrites `x`.

    Shape: x (n, V) fp32, target (n,) -> p (n, V), loss (n,), nll (n,)
    """
    vocab = x.size(-1)
    top = x.amax(dim=-1, keepdim=True)
    picked = x.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    summed = x.sum(dim=-1) if eps else None
    p = (x.sub_(top) if in_place else torch.sub(x, top)).exp_()
    total = p.sum(dim=-1, keepdim=True)
    lse = (top + total.log()).squeeze(-1)
    nll = lse - picked
    loss = (1.0 - eps - eps_i) * nll
    if eps:
        loss = loss + eps_i * (vocab * lse - summed)
    return p.div_(total), loss, nll


def _piece_gradient_(p: torch.Tensor, target: torch.Tensor, on_p: torch.Tensor, flat: torch.Tensor | None,
                     on_target: torch.Tensor) -> torch.Tensor:
    """Turn a piece of softmax p into the gradient on_p * p - flat - on_target * onehot(target), in place
    (flat None: no smoothing, nothing to subtract).

    Shape: p (n, V); target, on_p, flat, on_target (n,) -> p
    """
    p.mul_(on_p.unsqueeze(-1))
    if flat is not None:
        p.sub_(flat.unsqueeze(-1))
    return p.scatter_add_(-1, target.unsqueeze(-1), -on_target.unsqueeze(-1))


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Label-smoothed cross-entropy of logits, piece by piece, with its gradient written out.

    Why: through autograd, `log_softmax` then `gather` and `sum` allocate four (N, V) fp32 tensors a step (the
    log-probabilities, a zero-filled gradient, the gathered and broadcast parts, log_softmax's backward): 112 MB
    each at the reference batch, which glibc maps fresh from the kernel every time (they are over its mmap
    threshold), so every pass also pays page faults. Working on row pieces of `_CHUNK_BYTES` reuses the same heap
    memory; only the gradient of the logits is one new (N, V) tensor. Forward + backward at the reference batch
    (3,500 x 8,000): 173 -> 79 ms in fp32, 216 -> 65 ms in bf16 (benchmarks.md, "The AVX-512 VM").

    With eps_i = eps / (V - 1), p = softmax(logits) and lse = logsumexp(logits), a kept row's loss is
        (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v),
    where nll = lse - logit_target and sum_v(-log p_v) = V * lse - sum_v logit_v,
    and its gradient p - eps_i - (1 - eps - eps_i) * onehot(target), as (1 - eps - eps_i) + V * eps_i = 1.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None,
                eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        vocab = logits.size(-1)
        eps_i = eps / (vocab - 1) if eps else 0.0
        rows = max(1, _CHUNK_BYTES // (4 * vocab))
        probs, losses, nlls = [], [], []
        for x, tgt in zip(logits.split(rows), target.split(rows)):
            # fp32 sums whatever the logits' dtype (bf16 autocast); x is a view for fp32 logits: not in place
            p, loss, nll = _piece_loss(x.float(), tgt, eps, eps_i, in_place=False)
            probs.append(p)
            losses.append(loss)
            nlls.append(nll)
        loss, nll = torch.cat(losses), torch.cat(nlls)
        if keep is not None:
            loss, nll = loss.masked_fill(~keep, 0.0), nll.masked_fill(~keep, 0.0)
        ctx.save_for_backward(target, keep, *probs)
        ctx.eps, ctx.eps_i, ctx.dtype = eps, eps_i, logits.dtype
        return loss.sum(), nll.sum()

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor, grad_nll: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        # d/dlogits of grad_loss * loss + grad_nll * nll, per kept row:
        #   (grad_loss + grad_nll) * p - grad_loss * eps_i - (grad_loss * (1 - eps - eps_i) + grad_nll) * onehot
        target, keep, *probs = ctx.saved_tensors
        on_p = (grad_loss + grad_nll).expand(target.shape)
        on_target = (grad_loss * (1.0 - ctx.eps - ctx.eps_i) + grad_nll).expand(target.shape)
        flat = (grad_loss * ctx.eps_i).expand(target.shape)
        if keep is not None:
            on_p, on_target, flat = on_p * keep, on_target * keep, flat * keep
        grad = torch.empty(target.size(0), probs[0].size(-1), dtype=ctx.dtype, device=target.device)
        start = 0
        for p in probs:  # each piece of p becomes that piece of the gradient, in place
            end = start + p.size(0)
            grad[start:end] = _piece_gradient_(p, target[start:end], on_p[start:end],
                                               flat[start:end] if ctx.eps_i else None, on_target[start:end])
            start = end
        return grad, None, None, None


class _ProjectedSmoothedCrossEntropy(torch.autograd.Function):
    """The same loss from the hidden states and the output weight: the projection, the loss and the gradients of
    both inputs are computed piece by piece in the forward pass, so no (N, V) tensor exists at any time.

    Why: `_SmoothedCrossEntropy` still needs the (N, V) logits and returns an (N, V) gradient: two 112 MB tensors
    a step at the reference batch, over glibc's largest mmap threshold, so the kernel faults in and zeroes 56,000
    fresh pages for them every step (the profile showed the gradient's piece copies at 11 ms per 8 MB, against
    0.7 ms into memory already mapped). Here each piece's logits land in one reused buffer; the piece's gradient
    (p - eps_i - (1 - eps - eps_i) * onehot, on that buffer) goes straight into the two matrix products of the
    projection's backward, which need it only while it is there. The products have the same FLOPs as before.

    Computing the gradients before backward is sound because the loss is a sum: d(c * loss) = c * d(loss) for the
    scalar c that backward brings (1 / tokens, a grad scaler's factor). The summed NLL is returned as a
    non-differentiable output (the criteria detach it anyway). With `need_grad` False (validation), the gradient
    work is skipped.
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                keep: torch.Tensor | None, eps: float, dtype: torch.dtype,
                need_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n, vocab = hidden.size(0), weight.size(0)
        eps_i = eps / (vocab - 1) if eps else 0.0
        rows = max(1, _PROJECTED_CHUNK_BYTES // (4 * vocab))
        h, w = hidden.to(dtype), weight.to(dtype)  # no copies in fp32
        buf = torch.empty(min(rows, max(n, 1)), vocab, device=hidden.device)  # fp32 logits of one piece
        loss, nll = hidden.new_empty(n, dtype=torch.float32), hidden.new_empty(n, dtype=torch.float32)
        grad_h = torch.empty_like(h) if need_grad else None
        grad_w = torch.zeros(weight.shape, device=weight.device) if need_grad else None  # fp32 accumulator
        # d(loss)/d(logits) of a row is on_p * (p - eps_i - (1 - eps - eps_i) * onehot): 0 for ignored rows
        on_p = keep.float() if keep is not None else hidden.new_ones(n, dtype=torch.float32)
        for start in range(0, n, rows):
            end = min(start + rows, n)
            x, tgt = buf[: end - start], target[start:end]
            if dtype == torch.float32:
                torch.mm(h[start:end], w.t(), out=x)
            else:
                x.copy_(h[start:end] @ w.t())  # bf16 product, fp32 softmax: as autocast's linear then .float()
            p, loss[start:end], nll[start:end] = _piece_loss(x, tgt, eps, eps_i, in_place=True)
            if not need_grad:
                continue
            g = _piece_gradient_(p, tgt, on_p[start:end], eps_i * on_p[start:end] if eps_i else None,
                                 (1.0 - eps - eps_i) * on_p[start:end]).to(dtype)
            torch.mm(g, w, out=grad_h[start:end])
            if dtype == torch.float32:
                grad_w.addmm_(g.t(), h[start:end])
            else:
                grad_w += g.t() @ h[start:end]
        if keep is not None:
            loss, nll = loss.masked_fill(~keep, 0.0), nll.masked_fill(~keep, 0.0)
        nll = nll.sum()
        ctx.mark_non_differentiable(nll)
        if need_grad:
            ctx.save_for_backward(grad_h, grad_w)
        ctx.dtypes = hidden.dtype, weight.dtype
        return loss.sum(), nll

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor, grad_nll: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors
        h_dtype, w_dtype = ctx.dtypes
        return (grad_h * grad_loss).to(h_dtype), (grad_w * grad_loss).to(w_dtype), None, None, None, None, None


def _smoothed_nll(logits: torch.Tensor | ProjectedLogits, target: torch.Tensor, eps: float,
                  ignore_index: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, nll): summed label-smoothed loss (eps = 0: plain cross-entropy) and summed NLL, fp32 scalars in nats.

    Shape:
        logits: (N, V) any float dtype, or `ProjectedLogits` of N rows; target: (N,) int64.
    """
    keep = target != ignore_index if ignore_index is not None else None
    if isinstance(logits, ProjectedLogits):
        need_grad = torch.is_grad_enabled() and (logits.hidden.requires_grad or logits.weight.requires_grad)
        return _ProjectedSmoothedCrossEntropy.apply(logits.hidden, logits.weight, target, keep, eps, logits.dtype,
                                                    need_grad)
    return _SmoothedCrossEntropy.apply(logits, target, keep, eps)


@CRITERIA.register("label_smoothed_cross_entropy")
class LabelSmoothedCrossEntropy:
    """Cross-entropy against targets smoothed as in fairseq: eps_i = eps / (V - 1) on every other token.

    loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v), which equals torch's
    `F.cross_entropy(label_smoothing=eps * V / (V - 1))`.
    """

    @dataclass(frozen=True)
    class Config:
        """Settings of label_smoothed_cross_entropy."""

        label_smoothing: float = field(default=0.0, metadata={"help": "epsilon for label smoothing (0: none)"})

    def __init__(self, cfg: "LabelSmoothedCrossEntropy.Config") -> None:
        if not 0.0 <= cfg.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing {cfg.label_smoothing}: must be in [0, 1)")
        self.cfg = cfg
        self.eps = cfg.label_smoothing

    def __call__(self, logits: torch.Tensor | ProjectedLogits, target: torch.Tensor, *,
                 ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss_sum, nll_loss_sum) in nats, summed over the N positions (fp32 scalars).

        Args:
            logits: scores at the non-pad target positions.
            target: the target ids at those positions.
            ignore_index: optionally, a target id (pad) whose positions count for nothing.

        Shape:
            logits: (N, V) or ProjectedLogits of N rows; target: (N,).
        """
        loss, nll = _smoothed_nll(logits, target, self.eps, ignore_index)
        return loss, nll.detach()


@CRITERIA.register("cross_entropy")
class CrossEntropy:
    """Plain cross-entropy (negative log-likelihood of the targets)."""

    @dataclass(frozen=True)
    class Config:
        """cross_entropy has no settings."""

    def __init__(self, cfg: "CrossEntropy.Config") -> None:
        self.cfg = cfg

    def __call__(self, logits: torch.Tensor | ProjectedLogits, target: torch.Tensor, *,
                 ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss_sum, nll_loss_sum) in nats; both the same number here.

        Shape:
            logits: (N, V) or ProjectedLogits of N rows; target: (N,).
        """
        loss, nll = _smoothed_nll(logits, target, 0.0, ignore_index)
        return loss, nll.detach()


@dataclass
class CtcInputs:
    """What the CTC loss reads from the encoder side, for one batch.

    Shape:
        lprobs: (S', B, V) fp32 log-probabilities of the model's CTC head over the encoder's S' positions.
        input_lengths: (B,) int64, the real (non-padding) encoder positions of each row.
        targets: (B, T) int64, the decoder's targets (ids + eos, right-padded); eos and pad are not CTC labels.
    """

    lprobs: torch.Tensor
    input_lengths: torch.Tensor
    targets: torch.Tensor
    blank: int  # the bos id: it never occurs inside a target, as fairseq's blank (index 0, its <s>)
    pad: int
    eos: int


def ctc_loss_sum(ctc: CtcInputs) -> torch.Tensor:
    """Summed CTC loss (nats) of the batch's rows against their targets without eos.

    A row whose target cannot be aligned (more labels than encoder positions, counting the blank needed between
    repeats) has an infinite loss; it counts zero, as fairseq's `zero_infinity=True`, so one such utterance does not
    end the run. The decoder's cross-entropy still trains on it.
    """
    labels = (ctc.targets != ctc.pad) & (ctc.targets != ctc.eos)
    return F.ctc_loss(ctc.lprobs, ctc.targets[labels], ctc.input_lengths, labels.sum(dim=1), blank=ctc.blank,
                      reduction="sum", zero_infinity=True)


@CRITERIA.register("label_smoothed_cross_entropy_with_ctc")
class LabelSmoothedCrossEntropyWithCtc(LabelSmoothedCrossEntropy):
    """label_smoothed_cross_entropy + ctc_weight x CTC loss of the encoder's CTC head (fairseq's formula: added,
    not interpolated). For speech models (s2t_transformer): the CTC loss makes the encoder align audio frames with
    target tokens early in training, which the attention decoder alone learns slowly. The head (a linear layer from
    the encoder output to the target vocabulary, model field `ctc_head`) is switched on for a new model by this
    criterion; decoding does not use it.
    """

    uses_ctc = True  # training asks the model for CtcInputs (batch_loss)

    @dataclass(frozen=True)
    class Config:
        """Settings of label_smoothed_cross_entropy_with_ctc."""

        label_smoothing: float = field(default=0.0, metadata={"help": "epsilon for label smoothing (0: none)"})
        ctc_weight: float = field(default=1.0, metadata={"help": "weight of the CTC loss added to the "
                                                                 "cross-entropy (fairseq's default 1.0)"})

    def __init__(self, cfg: "LabelSmoothedCrossEntropyWithCtc.Config") -> None:
        super().__init__(cfg)
        if cfg.ctc_weight < 0.0:
            raise ConfigError(f"--criterion-opt ctc_weight={cfg.ctc_weight}: must be 0 or more")
        self.ctc_weight = cfg.ctc_weight

    def __call__(self, logits: torch.Tensor | ProjectedLogits, target: torch.Tensor, *, ignore_index: int | None = None,
                 ctc: CtcInputs | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss_sum, nll_loss_sum) in nats: the cross-entropy's, plus ctc_weight x the CTC sum in the loss.

        Shape:
            logits: (N, V) or ProjectedLogits of N rows; target: (N,); ctc: see CtcInputs.
        """
        if ctc is None:
            raise ValueError("label_smoothed_cross_entropy_with_ctc needs the CTC inputs (see batch_loss)")
        loss, nll = super().__call__(logits, target, ignore_index=ignore_index)
        return loss + self.ctc_weight * ctc_loss_sum(ctc), nll


def batch_loss(forward: Callable[..., Any], criterion: Any, batch: Any, bos: int, pad: int, eos: int,
               precision: Callable[[], contextlib.AbstractContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss_sum, nll_sum) of `batch`: `forward` is the model's `logits_for_loss` (or a module wrapping it, for DDP),
    run under `precision()` (autocast); the criterion runs outside it, in fp32.

    A criterion with `uses_ctc` also gets the CTC head's log-probabilities, computed in the same forward call so
    that DDP sees every parameter used.
    """
    keep = batch.tgt_out.ne(pad)
    uses_ctc = getattr(criterion, "uses_ctc", False)
    with precision():  # projected: the criterion does the output projection (ProjectedLogits)
        out = forward(batch.src_tokens, batch.tgt_in, keep, projected=True, with_ctc=True) if uses_ctc else \
            forward(batch.src_tokens, batch.tgt_in, keep, projected=True)
    if not uses_ctc:
        return criterion(out, batch.tgt_out[keep])
    logits, lprobs, input_lengths = out
    return criterion(logits, batch.tgt_out[keep], ctc=CtcInputs(lprobs, input_lengths, batch.tgt_out, bos, pad, eos))
