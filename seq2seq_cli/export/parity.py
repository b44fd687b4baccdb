"""The parity check of an export: the exported model decodes a sample as our PyTorch decoding does.

fp32 (`check_parity`): greedy and beam (5) outputs must equal ours token for token. A line may differ only for a
reason that is not the conversion, each counted in `StrategyParity`:
- near-tie: the two engines' best hypotheses score within `NEAR_TIE` of each other (length-normalized
  log-probability under our model, see ct2_backend), i.e. rounding in the last bits picked the other of two
  equally good outputs;
- renormalization (beam only): CTranslate2 takes the log-softmax after masking <pad>, <s> and early EOS, we before
  (fairseq's rule), so its beam scores exceed ours by -log(1 - masked mass) summed along each beam: 1e-5 to 1e-3 on
  a trained model, different for each beam. Where two candidates at the beam's pruning boundary are closer than
  that, the engines keep different beams, and the outputs can then part by much more than NEAR_TIE (on the
  reference model, line 382 of the Bible test set: the 5th and 6th candidates of step 18 are 6.3e-5 apart in ours
  and swap under CTranslate2's rule; the final scores differ by 0.018). Such a line is re-decoded by *our* search
  with *our* weights under CTranslate2's rules (`replay_ct2_rule`: `CT2RuleEnsemble` renormalizes, `finish_all`
  finishes every EOS among the first K as CTranslate2 does); it counts only if that gives CTranslate2's output
  token for token. This stays strict: a wrong weight, length penalty, stopping or EOS rule in the export changes
  what CTranslate2 computes but not the replay, so the two disagree and the check fails. Greedy needs no such
  case (renormalizing a row does not change its argmax);
- length limit (beam only): an output reached the length limit, where the engines' last-step rules differ (see
  ct2_backend). Greedy outputs at the limit must be identical.
Anything else raises ExportError naming the first differing line. The replay runs only on the differing lines of
the check: normal decoding is untouched.

Quantized (`compare_quantized`): outputs are expected to change a little; the agreement rate with ours and the BLEU
of both (against references when given, else of the quantized output against ours) are reported.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from seq2seq_cli.decoding.base import Hypothesis, normalized_score
from seq2seq_cli.decoding.config import SearchConfig, build_strategy
from seq2seq_cli.decoding.search import max_lengths
from seq2seq_cli.errors import ExportError

logger = logging.getLogger(__name__)

NEAR_TIE = 1e-4  # |score difference| of the best hypotheses below which a different output counts as a tie
CHECKS: tuple[tuple[str, dict[str, Any]], ...] = (("greedy", {}), ("beam", {"beam": 5}))
# Sentences per batch in the check (the reference workload's). generate's default budget (12,000 source tokens,
# ~300 Bible verses x 5 beams) made a 1,024-line check peak at 14.5 GB of RSS; outputs do not depend on batching.
CHECK_BATCH_SIZE = 64


@dataclass
class StrategyParity:
    """Agreement of one strategy on the sample: every line is identical, a near-tie, explained by CTranslate2's
    renormalization, or length-limited (see the module docstring)."""

    strategy: str
    lines: int
    identical: int = 0
    near_ties: int = 0
    renormalization: int = 0  # beam: our search under CTranslate2's masking rule gives its output (see module doc)
    length_limited: int = 0  # beam: an output reached the length limit, where the engines' rules differ

    def to_text(self) -> str:
        return (f"parity {self.strategy}: {self.identical}/{self.lines} identical, {self.near_ties} near-ties "
                f"(scores within {NEAR_TIE:g}), {self.renormalization} explained by CTranslate2's renormalization "
                f"after masking, {self.length_limited} differing at the length limit")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QuantizedAgreement:
    """How a quantized export's beam outputs compare with ours on the sample."""

    quantization: str
    lines: int
    agreement: float  # fraction of lines with identical outputs
    bleu_ours: float | None  # against --check-ref; None without references
    bleu_quantized: float  # against --check-ref, or against our outputs without references

    def to_text(self) -> str:
        if self.bleu_ours is None:
            bleu = f"BLEU {self.bleu_quantized:.2f} against our outputs (no --check-ref)"
        else:
            bleu = (f"BLEU {self.bleu_quantized:.2f} vs ours {self.bleu_ours:.2f} "
                    f"({self.bleu_quantized - self.bleu_ours:+.2f})")
        return (f"{self.quantization}: {self.agreement:.1%} of {self.lines} beam outputs identical to float32 "
                f"PyTorch; {bleu}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decode_both(ours: Any, exported: Any, lines: Sequence[str], strategy: str, options: dict[str, Any],
                source: str) -> tuple[list[list[int]], list[list[Hypothesis]], list[list[Hypothesis]]]:
    """(source ids, our hypotheses, the exported model's) for `lines`, with default search options."""
    src_ids = ours.encode(list(lines), source=source)
    strat = build_strategy(strategy, options)
    cfg = SearchConfig()
    return (src_ids, ours.generate_ids(src_ids, strat, cfg, batch_size=CHECK_BATCH_SIZE),
            exported.generate_ids(src_ids, strat, cfg, batch_size=CHECK_BATCH_SIZE))


def check_parity(ours: Any, exported: Any, lines: Sequence[str], source: str) -> list[StrategyParity]:
    """Run `CHECKS` on `lines` with both translators; raise ExportError at the first real difference."""
    reports = []
    for strategy, options in CHECKS:
        src_ids, mine, theirs = decode_both(ours, exported, lines, strategy, options, source)
        limits = max_lengths(_lengths(src_ids), SearchConfig(), ours.ensemble.max_positions()[1]).tolist()
        differing = [i for i, (a, b) in enumerate(zip(mine, theirs)) if a[0].tokens != b[0].tokens]
        replayed = replay_ct2_rule(ours, src_ids, differing, strategy, options) if strategy == "beam" else {}
        report = StrategyParity(strategy, len(lines))
        for i, (a, b) in enumerate(zip(mine, theirs)):
            best, other = a[0], b[0]
            if best.tokens == other.tokens:
                report.identical += 1
            elif abs(best.score - other.score) <= NEAR_TIE:
                report.near_ties += 1
            elif i in replayed and replayed[i] == other.tokens:
                report.renormalization += 1
                logger.info("parity %s: %s line %d differs by CTranslate2's renormalization (scores %.6f, "
                            "CTranslate2 %.6f)", strategy, source, i + 1, best.score, other.score)
            elif strategy == "beam" and limits[i] in (len(best.tokens), len(other.tokens)):
                report.length_limited += 1  # the engines' last-step rules differ there (see ct2_backend)
            else:
                raise ExportError(
                    f"parity check failed ({strategy}) at {source} line {i + 1} {lines[i]!r}: PyTorch gives "
                    f"{_text(ours, best)!r} (score {best.score:.6f}), CTranslate2 {_text(ours, other)!r} "
                    f"(score {other.score:.6f}); the {i} lines before it agreed; nothing was written")
        reports.append(report)
    return reports


def replay_ct2_rule(ours: Any, src_ids: list[list[int]], indices: Sequence[int], strategy: str,
                    options: dict[str, Any]) -> dict[int, list[int]]:
    """{index: best tokens} of our search on sources `indices` under CTranslate2's rules (module doc).

    As CTranslate2: log-probabilities renormalized after masking (`CT2RuleEnsemble`), every EOS candidate among the
    first K finished (`finish_all`), the K best by those scores kept; then, as `CT2Engine.translate`, re-ranked by
    our model's scores. One sentence at a time: only the few differing lines are replayed.
    """
    import torch

    from seq2seq_cli.decoding.ct2_backend import CT2RuleEnsemble
    from seq2seq_cli.decoding.search import search

    strat, cfg = build_strategy(strategy, options), SearchConfig()
    ensemble = CT2RuleEnsemble(ours.ensemble, ours.specials, cfg)
    best = {}
    for i in indices:
        finished = search(ensemble, torch.tensor([src_ids[i]]), _lengths([src_ids[i]]), strat,
                          dataclasses.replace(cfg, nbest=strat.beam_size), ours.specials, finish_all=True)[0]
        rescored = ours.score_ids([src_ids[i]] * len(finished), [h.tokens for h in finished])
        scores = [normalized_score(h.positional_scores, cfg.lenpen) for h in rescored]
        best[i] = rescored[scores.index(max(scores))].tokens
    return best


def compare_quantized(ours: Any, quantized: Any, quantization: str, lines: Sequence[str], refs: list[str] | None,
                      source: str) -> QuantizedAgreement:
    """Beam-5 outputs of both on `lines`: the agreement rate and BLEU (see QuantizedAgreement)."""
    _, mine, theirs = decode_both(ours, quantized, lines, *CHECKS[1], source)
    same = sum(a[0].tokens == b[0].tokens for a, b in zip(mine, theirs))
    our_text = ours.detokenize([h[0].tokens for h in mine])
    their_text = ours.detokenize([h[0].tokens for h in theirs])
    rate = same / max(1, len(lines))
    if refs is None:
        return QuantizedAgreement(quantization, len(lines), rate, None, _bleu(their_text, our_text))
    return QuantizedAgreement(quantization, len(lines), rate, _bleu(our_text, refs), _bleu(their_text, refs))


def _bleu(hyps: list[str], refs: list[str]) -> float:
    from seq2seq_cli.scoring import ScoreConfig, score_corpus

    return score_corpus(ScoreConfig(sys=("hyp",), refs=("ref",)), {"hyp": hyps}, [refs])[0].score


def _lengths(src_ids: list[list[int]]) -> Any:
    import torch

    return torch.tensor([len(s) - 1 for s in src_ids])


def _text(translator: Any, hyp: Hypothesis) -> str:
    return translator.detokenize([hyp.tokens])[0]
