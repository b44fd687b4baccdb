"""The decoding-strategy contract and the hypothesis record.

A strategy is one small `step()` over log-probabilities, as fairseq's `Search.step`: given the log-probabilities of
the next token for each of the K live hypotheses of each sentence and their scores so far, it proposes candidates
(next token, which hypothesis it extends, cumulative score). The generation loop (`search.py`) keeps the books:
it applies length limits and penalties to the log-probabilities before `step()`, turns candidates ending in EOS into
finished hypotheses, keeps the first K other candidates as the next live hypotheses, and reorders the decoder state.

Plugins subclass `DecodingStrategy`, define a dataclass `Config`, and register with
`@DECODING.register("name")` (from `seq2seq_cli.registry`); `--strategy name --strategy-opt field=value` uses them.

No torch import here: the CLI reads strategy defaults without loading torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch


@dataclass
class Hypothesis:
    """One finished output sequence.

    Attributes:
        tokens: target ids, without BOS and EOS.
        score: the length-normalized log-probability (natural log): sum(positional_scores) / len ** lenpen,
            where len counts the EOS; or, from scoring a given target, the mean log-probability per token.
        positional_scores: log-probability of each token and of the final EOS (len(tokens) + 1 values).
    """

    tokens: list[int]
    score: float
    positional_scores: list[float] = field(default_factory=list)


def normalized_score(positional_scores: list[float], lenpen: float) -> float:
    """A hypothesis' score from its positional scores (EOS included): sum / len ** lenpen, as the search's."""
    return sum(positional_scores) / len(positional_scores) ** lenpen


class DecodingStrategy:
    """Base class of registered decoding strategies.

    Subclasses set `Config` (a dataclass) and implement `step`. `beam_size` is K, the number of live hypotheses
    kept per sentence (and the number of finished ones collected before a sentence stops); the default reads
    `cfg.beam` when the Config has that field, else 1.
    """

    Config: ClassVar[type]

    def __init__(self, cfg: Any, generator: "torch.Generator | None" = None) -> None:
        self.cfg = cfg
        self.generator = generator  # for strategies that draw random numbers

    @property
    def beam_size(self) -> int:
        return int(getattr(self.cfg, "beam", 1))

    def step(self, step: int, lprobs: "torch.Tensor", scores: "torch.Tensor"
             ) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """Propose candidates for the next token.

        At step 0 the K rows of a sentence are identical (all start from BOS); a strategy keeping K > 1 distinct
        hypotheses should expand from row 0 only, as beam search and sampling do. The loop finalizes candidates
        that are EOS among the first K; the first K non-EOS candidates become the next live hypotheses, so
        return candidates best first and at least K of them (2K lets beam search keep K after some end).
        Candidates with score -inf are never finalized (they mark impossible continuations).

        Args:
            step: 0-based index of the token being chosen.
            lprobs: log-probabilities of the next token, already constrained by the loop (min/max length, unk
                penalty, n-gram blocking, prefix forcing).
            scores: cumulative (unnormalized) scores of the live hypotheses; zeros at step 0; -inf for dead rows.

        Shape:
            lprobs: (B, K, V); scores: (B, K)
            returns (cand_scores, cand_tokens, cand_beams), each (B, C): the cumulative score of each candidate,
            its token id, and the index in [0, K) of the hypothesis it extends.
        """
        raise NotImplementedError
