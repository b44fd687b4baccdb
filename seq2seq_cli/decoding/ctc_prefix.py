"""Joint CTC/attention decoding (`--ctc-weight`): the decoder's scores combined with the CTC head's prefix scores.

A speech model trained with an auxiliary CTC loss (training/loss.py) has a CTC head on its encoder. Its frame-level
distribution gives, for any prefix h, the CTC prefix probability psi(h): the probability that the utterance's label
sequence starts with h (Watanabe et al. 2017, "Hybrid CTC/attention architecture for end-to-end speech
recognition"; ESPnet's `CTCPrefixScore`). Beam search then ranks a continuation c of h by

    (1 - w) * log p_att(c | h) + w * (log psi(h + c) - log psi(h)),   w = --ctc-weight,

and EOS by the same with log p_ctc(h), the probability of exactly h, in place of log psi(h + c). Summed over a
hypothesis the CTC part telescopes to w * log p_ctc(hypothesis), so a hypothesis that repeats a phrase the audio
does not contain, or stops before the audio ends, scores low: the attention decoder's loops end.

Only the attention decoder's best `prebeam` tokens of each row (ESPnet's pre-beam: 1.5 x the beam) and EOS get a
CTC score; every other token is -inf. With a language model (`--lm-path`, lm_fusion.py) the pre-beam ranks by
(1 - w) * log p_att + W * log p_lm, as ESPnet's ranks by all its full scorers. The prefix recursion runs over the encoder frames, so its cost per step is
O(frames x rows x prebeam), small beside the decoder.

The scorer is a wrapper with the `Ensemble` interface, so the search loop needs no special case: its CTC
log-probabilities ride along as one more `EncoderOut` (reordered and dropped with the encoder outputs), and its
recursion state as one more incremental state (reordered with the decoder caches). Without an incremental state
(`search(..., incremental=False)`, the loop's check of its caches) it recomputes psi(h) from the whole prefix.

Known limitations: no forced prefix (`--prefix-size`) and no sampling (joint scores are not a distribution).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from seq2seq_cli.decoding.ensemble import Ensemble
from seq2seq_cli.decoding.lm_fusion import LMFusion
from seq2seq_cli.decoding.sampling import Sampling
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.base import EncoderOut, IncrementalState

NEG_INF = float("-inf")
PREBEAM_RATIO = 1.5  # ESPnet's pre_beam_ratio: CTC scores the attention decoder's best 1.5 x beam tokens a row


def prebeam_size(beam: int) -> int:
    """Tokens a row that get a CTC prefix score each step (EOS comes on top)."""
    return max(2, int(PREBEAM_RATIO * beam))


class CTCState:
    """The CTC forward variables of one prefix per row.

    Attributes:
        r: (T, N, 2) log-probabilities that frames 0..t emit the prefix, the last frame being its last label
            (index 0, r^n) or a blank (index 1, r^b).
        psi: (N,) log prefix probability of the prefix.
        last: (N,) the prefix's last token (-1 for the empty prefix).
    """

    def __init__(self, r: torch.Tensor, psi: torch.Tensor, last: torch.Tensor) -> None:
        self.r, self.psi, self.last = r, psi, last

    @classmethod
    def empty(cls, x_blank: torch.Tensor) -> "CTCState":
        """The empty prefix: all blanks so far.  Shape: x_blank (T, N) -> r (T, N, 2)."""
        r = torch.full((*x_blank.shape, 2), NEG_INF, device=x_blank.device)
        r[:, :, 1] = x_blank.cumsum(0)
        n = x_blank.size(1)
        return cls(r, x_blank.new_zeros(n), torch.full((n,), -1, dtype=torch.long, device=x_blank.device))


def extend(state: CTCState, x: torch.Tensor, cand: torch.Tensor, blank: int, first: bool
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefix scores of every candidate continuation, and their forward variables.

    Args:
        state: the rows' current prefixes.
        x: frame log-probabilities, -inf beyond each row's length (so later frames add nothing).
        cand: candidate tokens per row (none of them the blank).
        blank: the blank id.
        first: whether the prefixes are empty (the first step).

    Shape:
        x: (T, N, V); cand: (N, C) -> psi (N, C), r (T, N, C, 2)
    """
    frames, rows = x.shape[:2]
    index = cand.unsqueeze(0).expand(frames, -1, -1)
    x_c = x.gather(2, index)  # (T, N, C)
    x_b = x[:, :, blank].unsqueeze(2)  # (T, N, 1)
    r_sum = torch.logaddexp(state.r[:, :, 0], state.r[:, :, 1])  # (T, N)
    # phi: the prefix's probability ending by frame t, in a way that lets c start at t + 1: after a blank only,
    # when c repeats the prefix's last label (CTC merges repeats that are not separated by a blank).
    repeat = cand.eq(state.last.unsqueeze(1)).unsqueeze(0)  # (1, N, C)
    phi = torch.where(repeat, state.r[:, :, 1].unsqueeze(2), r_sum.unsqueeze(2))  # (T, N, C)
    impossible = torch.full_like(x_c[0], NEG_INF)
    r_n, r_b = [x_c[0] if first else impossible], [impossible]  # one frame emits a label only after nothing
    for t in range(1, frames):  # the recursion is sequential in t; every step is vectorized over rows x candidates
        n_prev, b_prev = r_n[-1], r_b[-1]
        r_n.append(torch.logaddexp(n_prev, phi[t - 1]) + x_c[t])
        r_b.append(torch.logaddexp(n_prev, b_prev) + x_b[t])
    # psi(h + c) = sum over the frame t where c is first emitted; frames past a row's length have x = -inf.
    starts = torch.cat([r_n[0].unsqueeze(0), phi[:-1] + x_c[1:]], dim=0)
    return torch.logsumexp(starts, dim=0), torch.stack([torch.stack(r_n), torch.stack(r_b)], dim=3)


def full_scores(state: CTCState, lengths: torch.Tensor) -> torch.Tensor:
    """log p_ctc(prefix): the prefix as the whole label sequence (what EOS scores).  Shape: -> (N,)"""
    at_end = state.r.gather(0, (lengths - 1).view(1, -1, 1).expand(1, -1, 2)).squeeze(0)  # (N, 2)
    return torch.logaddexp(at_end[:, 0], at_end[:, 1])


class CTCPrefixEnsemble:
    """An `Ensemble` whose next-token scores are joint CTC/attention scores (see the module docstring)."""

    def __init__(self, inner: Ensemble, weight: float, blank: int, eos: int, pad: int, prebeam: int) -> None:
        for i, model in enumerate(inner.models):
            if getattr(model, "ctc_proj", None) is None:
                what = "model" if len(inner.models) == 1 else f"model {i + 1} of the ensemble"
                raise ConfigError(f"--ctc-weight {weight}: the {what} has no CTC head; joint CTC/attention decoding "
                                  "needs an s2t_transformer trained with --criterion "
                                  "label_smoothed_cross_entropy_with_ctc (or give --ctc-weight 0)")
        self.inner = inner
        self.weight, self.blank, self.eos, self.pad, self.prebeam = weight, blank, eos, pad, prebeam

    def __getattr__(self, name: str) -> Any:  # models, max_positions, ...: the inner ensemble's
        return getattr(self.inner, name)

    def encode(self, src_tokens: torch.Tensor) -> list[EncoderOut]:
        """The models' encoder outputs, then the CTC frame log-probabilities as one more EncoderOut (B, T', V).

        An ensemble's CTC distribution is the mean of its models' frame probabilities (as for the decoder).
        """
        encs = self.inner.encode(src_tokens)
        per_model = [model.ctc_lprobs(enc) for model, enc in zip(self.models, encs)]
        shapes = {tuple(lp.shape) for lp in per_model}
        if len(shapes) > 1:
            raise ConfigError("--ctc-weight with an ensemble: the models subsample the audio differently "
                              f"({sorted(shapes)} frames x vocabulary); joint CTC decoding needs the same frames")
        lprobs = per_model[0] if len(per_model) == 1 else (
            torch.logsumexp(torch.stack(per_model), dim=0) - math.log(len(per_model)))
        pad_mask = encs[0].src_pad_mask
        return [*encs, EncoderOut(lprobs.masked_fill(pad_mask.unsqueeze(2), NEG_INF), pad_mask)]

    def new_states(self) -> list[IncrementalState]:
        return [*self.inner.new_states(), {}]

    def next_lprobs(self, tgt_in: torch.Tensor, encs: list[EncoderOut], states: list[IncrementalState] | None,
                    temperature: float = 1.0) -> torch.Tensor:
        """Joint scores of the token after `tgt_in`: -inf outside the CTC-scored candidates.

        Shape: tgt_in (N, L), BOS first -> (N, V)
        """
        inner_states = states[:-1] if states is not None else None
        if isinstance(self.inner, LMFusion):  # (1 - w) weights the decoder alone; the LM keeps its own weight
            att, fused = self.inner.score_parts(tgt_in, encs[:-1], inner_states, temperature)
        else:
            att, fused = self.inner.next_lprobs(tgt_in, encs[:-1], inner_states, temperature), None
        w = self.weight
        # What the pre-beam ranks, and what the CTC gain is added to: (1 - w) att, plus W lm with an LM (ESPnet's
        # pre-beam by the full scorers), so that the LM can bring in a token the decoder alone ranks too low.
        base = (1 - w) * att if fused is None else (1 - w) * att + fused
        x = encs[-1].out.transpose(0, 1)  # (T, N, V)
        lengths = (~encs[-1].src_pad_mask).sum(dim=1).clamp(min=1)
        own = states[-1] if states is not None else None
        state = self._prefix_state(tgt_in, x, own)
        ranked = (att if fused is None else base).clone()  # att: (1 - w) att ranks the same, but not at w = 1
        for token in {self.blank, self.pad, self.eos}:  # never a candidate label; EOS is scored on its own
            ranked[:, token] = NEG_INF
        cand = ranked.topk(min(self.prebeam, att.size(1)), dim=1).indices  # (N, C)
        psi, r = extend(state, x, cand, self.blank, first=tgt_in.size(1) == 1)
        # A dead row (psi -inf: a prefix CTC cannot emit) stays -inf rather than becoming -inf - -inf = NaN.
        alive = state.psi.ne(NEG_INF)
        gain = (psi - state.psi.unsqueeze(1)).masked_fill(~alive.unsqueeze(1), NEG_INF)
        eos_gain = (full_scores(state, lengths) - state.psi).masked_fill(~alive, NEG_INF)
        joint = torch.full_like(att, NEG_INF)
        joint.scatter_(1, cand, base.gather(1, cand) + w * gain)
        joint[:, self.eos] = base[:, self.eos] + w * eos_gain
        if own is not None:  # the next step reads the chosen candidate's variables from here
            own.update(cand=cand, psi=psi, r=r)
        return joint

    def _prefix_state(self, tgt_in: torch.Tensor, x: torch.Tensor, own: IncrementalState | None) -> CTCState:
        """The CTC state of each row's prefix tgt_in[:, 1:]: from the last step's candidates, or recomputed."""
        x_blank = x[:, :, self.blank]
        if own is None or "cand" not in own:
            state = CTCState.empty(x_blank)
            for k in range(1, tgt_in.size(1)):  # no cache (or the first step): one label at a time
                token = tgt_in[:, k: k + 1]
                psi, r = extend(state, x, token, self.blank, first=k == 1)
                state = CTCState(r[:, :, 0], psi[:, 0], token[:, 0])
            return state
        # Each row's last token is one of the candidates its parent row scored (the loop reordered them with it).
        last = tgt_in[:, -1]
        hit = own["cand"].eq(last.unsqueeze(1))  # (N, C)
        col = hit.float().argmax(dim=1)
        rows = torch.arange(last.numel(), device=last.device)
        r = own["r"][:, rows, col]  # (T, N, 2)
        psi = own["psi"][rows, col]
        # A row that continued with a token CTC did not score (EOS of a dead row, padding) has no prefix: -inf.
        found = hit.any(dim=1)
        return CTCState(r.masked_fill(~found.view(1, -1, 1), NEG_INF), psi.masked_fill(~found, NEG_INF), last)

    def reorder(self, states: list[IncrementalState], new_order: torch.Tensor) -> None:
        """Select rows `new_order` of the decoder caches and of the CTC candidates' variables."""
        self.inner.reorder(states[:-1], new_order)
        own = states[-1]
        if "cand" in own:
            own.update(cand=own["cand"].index_select(0, new_order), psi=own["psi"].index_select(0, new_order),
                       r=own["r"].index_select(1, new_order))

    def target_lprobs(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        raise ConfigError("--ctc-weight does not apply to --score-reference (it scores with the decoder only)")


def with_ctc(ensemble: Ensemble, weight: float, specials: Any, strategy: Any, prefix_tokens: Any) -> Any:
    """The ensemble itself for weight 0, else its joint CTC/attention view (the search loop calls this).

    Raises:
        ConfigError: a model without a CTC head, sampling, or a forced prefix.
    """
    if weight == 0:
        return ensemble
    if isinstance(strategy, Sampling):
        raise ConfigError(f"--ctc-weight {weight}: joint CTC/attention scores are not a distribution to sample "
                          "from; decode with --strategy beam or greedy")
    if prefix_tokens is not None:
        raise ConfigError(f"--ctc-weight {weight} cannot be combined with --prefix-size")
    return CTCPrefixEnsemble(ensemble, weight, specials.bos, specials.eos, specials.pad,
                             prebeam_size(strategy.beam_size))
