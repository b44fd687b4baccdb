"""The generation loop: runs a `DecodingStrategy` step by step and keeps the books (fairseq's SequenceGenerator).

Per batch of B sentences and K = strategy.beam_size hypotheses each, the loop keeps N = B*K live rows:
- the decoder runs incrementally: each model's cache grows by one position a step; cross-attention keys/values are
  computed once (at the first step) and only reordered afterwards;
- before `step()` it constrains the log-probabilities: never <pad> or <s>; `unkpen` off <unk>; EOS forced once a
  row reaches its sentence's max length (max_len_a * source length + max_len_b, at most the model's target
  positions - 1; 0 for an empty source, which yields an empty hypothesis); the reference prefix forced
  (`prefix_tokens`); EOS blocked before `min_len`; repeated n-grams blocked;
- after `step()` it finalizes EOS candidates among the first K (score normalized by length ** lenpen), keeps the
  first K other candidates as the next live rows (rows that had to take an EOS candidate are dead: score -inf), and
  drops sentences that are done (K finished, or max length reached) from every tensor and cache, so later steps
  only compute rows that matter.
Everything is vectorized over the N rows; Python loops only over finished hypotheses (to build `Hypothesis`).

Known limitations: as fairseq, a sentence stops as soon as K hypotheses have finished, even if a live one could
still overtake them after length normalization; no constraints beyond a forced prefix; no alignment output.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from seq2seq_cli.decoding.base import DecodingStrategy, Hypothesis
from seq2seq_cli.decoding.config import SearchConfig, check_nbest
from seq2seq_cli.decoding.ctc_prefix import with_ctc
from seq2seq_cli.decoding.ensemble import Ensemble
from seq2seq_cli.decoding.lm_fusion import with_lm
from seq2seq_cli.models.base import EncoderOut

logger = logging.getLogger(__name__)

NEG_INF = float("-inf")


@dataclass(frozen=True)
class Specials:
    """Target-side special token ids."""

    bos: int
    eos: int
    pad: int
    unk: int

    @classmethod
    def of(cls, tokenizer: Any) -> "Specials":
        return cls(tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.unk_id)


@dataclass
class _Live:
    """The live part of a search: b sentences x K rows. Row r belongs to sentence r // K."""

    tokens: torch.Tensor  # (N, T + 2): BOS then the tokens chosen so far
    scores: torch.Tensor  # (N,): cumulative score of each row (-inf: dead)
    positional: torch.Tensor  # (N, T + 1): log-probability of each chosen token
    sent_ids: torch.Tensor  # (b,): index of each live sentence in the input batch
    max_lens: torch.Tensor  # (b,)
    n_final: torch.Tensor  # (b,): finished hypotheses so far
    prefix: torch.Tensor | None  # (b, P) forced tokens, padded with pad
    encs: list[EncoderOut]  # one per model: b rows before the first step, N rows after
    states: list[dict] | None  # one incremental state per model; None = recompute the prefix every step
    shortest: int  # min(max_lens), to skip the forced-EOS mask until some row needs it


def max_lengths(src_lengths: torch.Tensor, cfg: SearchConfig, max_target_positions: int) -> torch.Tensor:
    """Per-sentence output length limit (tokens before EOS), fairseq's int(a * src_len + b) capped by the model.

    Shape: src_lengths (B,) source tokens without EOS -> (B,)
    """
    limit = (cfg.max_len_a * src_lengths.double() + cfg.max_len_b).floor().long()
    limit = limit.clamp(min=0, max=max_target_positions - 1)
    return limit.masked_fill(src_lengths == 0, 0)  # an empty source gives an empty output


@torch.inference_mode()
def search(ensemble: Ensemble, src_tokens: torch.Tensor, src_lengths: torch.Tensor, strategy: DecodingStrategy,
           cfg: SearchConfig, specials: Specials, prefix_tokens: torch.Tensor | None = None,
           incremental: bool = True, finish_all: bool = False) -> list[list[Hypothesis]]:
    """Decode a batch; return cfg.nbest hypotheses per sentence, best first, in batch order.

    Args:
        ensemble: the model(s), in eval mode.
        src_tokens: source ids with EOS, right-padded.
        src_lengths: source lengths without EOS (for max_len_a, and 0 marks an empty source).
        strategy: picks candidates each step.
        cfg: loop options.
        specials: target special ids.
        prefix_tokens: tokens every hypothesis must start with, right-padded with `specials.pad`.
        incremental: False recomputes the whole prefix each step (no cache): slow, for tests of the cache.
        finish_all: finish every EOS candidate among the first K, also beyond K in all, before taking the best
            nbest (CTranslate2's rule; only the parity check's replay of CTranslate2 uses it, see export/parity.py).

    Shape:
        src_tokens: (B, S); src_lengths: (B,); prefix_tokens: (B, P)
    """
    beam = strategy.beam_size
    check_nbest(cfg.nbest, beam, strategy_name(strategy))
    ensemble = with_lm(ensemble, cfg.lm_weight, strategy)  # --lm-path/--lm-weight: lm_fusion.py
    ensemble = with_ctc(ensemble, cfg.ctc_weight, specials, strategy, prefix_tokens)  # --ctc-weight: ctc_prefix.py
    max_lens = max_lengths(src_lengths, cfg, ensemble.max_positions()[1])
    live = _start(ensemble, src_tokens, max_lens, beam, specials, prefix_tokens, incremental)
    finalized: list[list[Hypothesis]] = [[] for _ in range(src_tokens.size(0))]
    step = 0
    while True:
        lprobs = _next_lprobs(ensemble, live, step, beam, cfg.temperature)
        lprobs = _constrain(lprobs, step, live, beam, cfg, specials)
        b = live.sent_ids.numel()
        cand = _pad_candidates(strategy.step(step, lprobs.view(b, beam, -1), live.scores.view(b, beam)), beam,
                               specials)
        eos_mask = _finalize(step, live, cand, lprobs, beam, cfg, specials, finalized, finish_all)
        done = (live.n_final >= beam) | (live.max_lens <= step)
        n_done = int(done.sum())  # one host sync a step for both questions: all done? any done?
        if n_done == b:
            break
        _advance(step, live, cand, lprobs, eos_mask, done if n_done else None, beam, ensemble)
        step += 1
    return [_nbest(hyps, cfg.nbest) for hyps in finalized]


def strategy_name(strategy: DecodingStrategy) -> str:
    """The name a strategy was built under (`build_strategy` records it), for messages."""
    return getattr(strategy, "name", type(strategy).__name__)


def _start(ensemble: Ensemble, src_tokens: torch.Tensor, max_lens: torch.Tensor, beam: int, specials: Specials,
           prefix_tokens: torch.Tensor | None, incremental: bool) -> _Live:
    """Encode once, then give every sentence K rows that start from BOS."""
    bsz, device = src_tokens.size(0), src_tokens.device
    longest = int(max_lens.max())
    tokens = torch.full((bsz * beam, longest + 2), specials.pad, dtype=torch.long, device=device)
    tokens[:, 0] = specials.bos
    return _Live(
        tokens=tokens, scores=torch.zeros(bsz * beam, device=device),
        positional=torch.zeros(bsz * beam, longest + 1, device=device),
        sent_ids=torch.arange(bsz, device=device), max_lens=max_lens, n_final=torch.zeros_like(max_lens),
        prefix=prefix_tokens, encs=ensemble.encode(src_tokens),
        states=ensemble.new_states() if incremental else None, shortest=int(max_lens.min()),
    )


def _next_lprobs(ensemble: Ensemble, live: _Live, step: int, beam: int, temperature: float) -> torch.Tensor:
    """Next-token log-probabilities of the N live rows, shape (N, V).

    The first step runs one row per sentence (its K rows are all just BOS) and copies the result: the decoder and
    the cross-attention keys/values are computed once per sentence, not K times; `_advance` then expands the caches.
    """
    if step == 0:
        return ensemble.next_lprobs(live.tokens[::beam, :1], live.encs, live.states, temperature
                                    ).repeat_interleave(beam, dim=0)
    return ensemble.next_lprobs(live.tokens[:, : step + 1], live.encs, live.states, temperature)


def _constrain(lprobs: torch.Tensor, step: int, live: _Live, beam: int, cfg: SearchConfig,
               specials: Specials) -> torch.Tensor:
    """Apply the loop's rules to the next-token log-probabilities (see the module docstring).

    Shape: lprobs (N, V) -> (N, V)
    """
    if bool(lprobs.sum().isnan()):  # a NaN would poison topk: ban those tokens
        # Looking for one is a read of the N x V scores (a sum is NaN if any term is), replacing them a read and a
        # write: replace only when there is one (rare: a damaged or overflowing model).
        lprobs = lprobs.nan_to_num_(nan=NEG_INF, posinf=float("inf"), neginf=NEG_INF)
    lprobs[:, specials.pad] = NEG_INF
    if specials.bos != specials.eos:
        lprobs[:, specials.bos] = NEG_INF
    if cfg.unkpen:
        lprobs[:, specials.unk] -= cfg.unkpen
    if cfg.no_repeat_ngram_size > 0 and step + 1 >= cfg.no_repeat_ngram_size:
        _block_repeats(lprobs, live.tokens[:, : step + 1], cfg.no_repeat_ngram_size)
    at_end = (live.max_lens <= step).repeat_interleave(beam) if step >= live.shortest else None
    forced = None
    if live.prefix is not None and step < live.prefix.size(1):
        lprobs, forced = _force_prefix(lprobs, live.prefix[:, step].repeat_interleave(beam), at_end, specials)
    if step < cfg.min_len:
        # No EOS yet, except where the length limit or a forced prefix decides instead.
        free = torch.ones_like(lprobs[:, 0], dtype=torch.bool)
        for mask in (at_end, forced):
            if mask is not None:
                free &= ~mask
        lprobs[:, specials.eos] = lprobs[:, specials.eos].masked_fill(free, NEG_INF)
    if at_end is not None:
        eos_lprobs = lprobs[:, specials.eos].clone()
        lprobs = lprobs.masked_fill(at_end.unsqueeze(1), NEG_INF)
        lprobs[:, specials.eos] = torch.where(at_end, eos_lprobs, lprobs[:, specials.eos])
    return lprobs


def _force_prefix(lprobs: torch.Tensor, prefix: torch.Tensor, at_end: torch.Tensor | None,
                  specials: Specials) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with a prefix token keep only that token's log-probability (fairseq's prefix_tokens).

    Shape: lprobs (N, V), prefix (N,) -> lprobs (N, V), forced rows (N,) bool
    """
    forced = prefix.ne(specials.pad)
    if at_end is not None:
        forced &= ~at_end
    index = prefix.clamp(min=0).unsqueeze(1)
    only = torch.full_like(lprobs, NEG_INF).scatter_(1, index, lprobs.gather(1, index))
    return torch.where(forced.unsqueeze(1), only, lprobs), forced


def _block_repeats(lprobs: torch.Tensor, history: torch.Tensor, n: int) -> None:
    """Ban, in place, every token that would complete an n-gram already in `history` (BOS included, as fairseq).

    Shape: lprobs (N, V), history (N, L) with L >= n
    """
    windows = history.unfold(1, n, 1)  # (N, L - n + 1, n)
    context = history[:, history.size(1) - n + 1:]  # the last n - 1 tokens, (N, n - 1)
    match = (windows[:, :, :-1] == context.unsqueeze(1)).all(-1)  # (N, W)
    penalty = torch.zeros(match.shape, dtype=lprobs.dtype, device=lprobs.device).masked_fill_(match, NEG_INF)
    lprobs.scatter_add_(1, windows[:, :, -1], penalty)  # -inf + x = -inf; duplicates add harmlessly


def _pad_candidates(cand: tuple[torch.Tensor, torch.Tensor, torch.Tensor], beam: int, specials: Specials
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ensure at least K candidates per sentence (a tiny vocabulary can give fewer) by adding impossible ones."""
    scores, tokens, beams = cand
    missing = beam - scores.size(1)
    if missing <= 0:
        return cand
    b = scores.size(0)
    return (torch.cat([scores, scores.new_full((b, missing), NEG_INF)], 1),
            torch.cat([tokens, tokens.new_full((b, missing), specials.pad)], 1),
            torch.cat([beams, beams.new_zeros(b, missing)], 1))


def _finalize(step: int, live: _Live, cand: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lprobs: torch.Tensor,
              beam: int, cfg: SearchConfig, specials: Specials, finalized: list[list[Hypothesis]],
              finish_all: bool = False) -> torch.Tensor:
    """Turn EOS candidates among the first K of each sentence into Hypotheses; return the EOS mask (b, C).

    A sentence takes at most K finished hypotheses in all (the best-ranked first), unless `finish_all`.
    """
    cand_scores, cand_tokens, cand_beams = cand
    eos_mask = cand_tokens.eq(specials.eos) & cand_scores.ne(NEG_INF)
    first = eos_mask[:, :beam]
    if not finish_all:
        first = first & (first.long().cumsum(1) <= (beam - live.n_final).unsqueeze(1))
    if not bool(first.any()):
        return eos_mask
    live.n_final += first.sum(1)
    sent, col = first.nonzero(as_tuple=True)
    rows = cand_beams[sent, col] + sent * beam
    final_scores = cand_scores[sent, col]
    tokens = live.tokens[rows, 1: step + 1]
    # Positional scores are read off the log-probabilities, not differenced from cumulative sums (exact).
    positional = torch.cat([live.positional[rows, :step], lprobs[rows, specials.eos].unsqueeze(1)], dim=1)
    normalized = final_scores / (step + 1) ** cfg.lenpen  # the length counts the EOS, as fairseq
    for i, toks, pos, score in zip(live.sent_ids[sent].tolist(), tokens.tolist(), positional.tolist(),
                                   normalized.tolist()):
        finalized[i].append(Hypothesis(tokens=toks, score=score, positional_scores=pos))
    return eos_mask


def _advance(step: int, live: _Live, cand: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lprobs: torch.Tensor,
             eos_mask: torch.Tensor, done: torch.Tensor | None, beam: int, ensemble: Ensemble) -> None:
    """Keep the first K non-EOS candidates of each unfinished sentence as its rows; drop finished sentences
    (`done`, None when there are none)."""
    cand_scores, cand_tokens, cand_beams = cand
    b, width = cand_scores.shape
    # Non-EOS candidates first, each group in candidate order (fairseq's active_mask trick).
    order_key = eos_mask.long() * width + torch.arange(width, device=eos_mask.device)
    pick = order_key.topk(beam, dim=1, largest=False).indices  # (b, K)
    rows = cand_beams.gather(1, pick) + torch.arange(b, device=pick.device).unsqueeze(1) * beam
    tokens = cand_tokens.gather(1, pick)
    scores = cand_scores.gather(1, pick).masked_fill(eos_mask.gather(1, pick), NEG_INF)  # took an EOS: dead
    if done is not None:
        keep = (~done).nonzero().squeeze(1)
        rows, tokens, scores = rows[keep], tokens[keep], scores[keep]
        _drop_finished(live, keep, step, beam)
    rows = rows.view(-1)
    live.tokens = live.tokens.index_select(0, rows)
    live.tokens[:, step + 1] = tokens.view(-1)
    live.scores = scores.view(-1)
    live.positional = live.positional.index_select(0, rows)
    live.positional[:, step] = lprobs[rows, live.tokens[:, step + 1]]
    _reorder_caches(live, rows, step, beam, b * beam, ensemble)


def _drop_finished(live: _Live, keep: torch.Tensor, step: int, beam: int) -> None:
    """Keep only sentences `keep` in the per-sentence tensors (and, after step 0, in the encoder outputs)."""
    live.sent_ids, live.max_lens, live.n_final = live.sent_ids[keep], live.max_lens[keep], live.n_final[keep]
    live.prefix = live.prefix[keep] if live.prefix is not None else None
    live.shortest = int(live.max_lens.min())
    if step > 0:  # at step 0 the encoder outputs are per sentence and get expanded in _reorder_caches
        sentence_rows = (keep.unsqueeze(1) * beam + torch.arange(beam, device=keep.device)).view(-1)
        live.encs = [enc.reorder(sentence_rows) for enc in live.encs]


def _reorder_caches(live: _Live, rows: torch.Tensor, step: int, beam: int, old_rows: int, ensemble: Ensemble) -> None:
    """Make the incremental states (and, at step 0, the encoder outputs) follow the new rows."""
    if step == 0:  # caches and encoder outputs hold one row per sentence so far (see _next_lprobs)
        sentence_of_row = rows // beam
        live.encs = [enc.reorder(sentence_of_row) for enc in live.encs]
        if live.states is not None:
            ensemble.reorder(live.states, sentence_of_row)
    # Greedy and sampling keep each row in place until a sentence finishes: skip the cache copy then.
    elif live.states is not None and not (rows.numel() == old_rows and _is_identity(rows)):
        ensemble.reorder(live.states, rows)


def _is_identity(rows: torch.Tensor) -> bool:
    return bool(torch.equal(rows, torch.arange(rows.numel(), device=rows.device)))


def _nbest(hyps: list[Hypothesis], nbest: int) -> list[Hypothesis]:
    """The best `nbest`, never fewer, so every input gets its lines.

    Fewer can finish when few continuations are possible (an empty source has only the empty output; a tiny
    vocabulary; every token blocked): the last one is repeated, or, if none finished at all, an empty hypothesis
    with score -inf stands in (with a warning).
    """
    hyps = sorted(hyps, key=lambda h: h.score, reverse=True)[:nbest]
    if not hyps:
        logger.warning("a sentence finished without any possible hypothesis (every continuation was blocked); "
                       "its output is empty")
        hyps = [Hypothesis(tokens=[], score=NEG_INF, positional_scores=[])]
    while len(hyps) < nbest:
        hyps.append(hyps[-1])
    return hyps
