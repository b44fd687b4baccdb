"""Shallow fusion with a language model (`generate --lm-path LM.pt --lm-weight W`), fairseq's and ESPnet's.

Beam search ranks a continuation c of a hypothesis h by

    score(c | h) + W * log p_lm(c | h),

where score is what decoding would use without the LM: the model's (or ensemble's) log-probability, or the joint
CTC/attention score with `--ctc-weight` (ctc_prefix.py wraps the fusion and weights its two parts apart, so with
both the score is ESPnet's (1 - w) * att + w * ctc + W * lm, and the CTC pre-beam ranks by (1 - w) * att + W * lm,
as ESPnet's does: the LM can bring in a token the decoder alone ranks too low to be scored). EOS gets the LM's end-of-sentence probability the same way, so the LM also
judges where a sentence ends. The LM (models/transformer_lm.py) must predict the model's target vocabulary: train
it on target-language text binarized with the model's target tokenizer (`preprocess --only-source --srcdict`).

The fusion is a wrapper with the `Ensemble` interface, as the CTC scorer is, so the search loop needs no special
case: the LM's (empty) encoder output and its self-attention cache ride along as one more EncoderOut and one more
incremental state, reordered and dropped with the model's.

Known limitations: no sampling (fused scores are not a distribution); `--score-reference` scores with the model
alone and so refuses an LM.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from seq2seq_cli.decoding.sampling import Sampling
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.base import EncoderOut, IncrementalState, Seq2SeqModel


class LMFusion:
    """An `Ensemble` (or CTC scorer) whose next-token scores add `weight` x the LM's log-probabilities."""

    def __init__(self, inner: Any, lm: Seq2SeqModel, weight: float) -> None:
        self.inner, self.lm, self.weight = inner, lm, weight

    def __getattr__(self, name: str) -> Any:  # models, ...: the inner ensemble's
        return getattr(self.inner, name)

    def max_positions(self) -> tuple[int, int]:
        """The inner limits, the target one capped by the LM's."""
        src, tgt = self.inner.max_positions()
        return src, min(tgt, self.lm.max_positions()[1])

    def encode(self, src_tokens: torch.Tensor) -> list[EncoderOut]:
        """The inner encoder outputs, then the LM's empty memory (B, 0, D)."""
        return [*self.inner.encode(src_tokens), self.lm.encode(src_tokens)]

    def new_states(self) -> list[IncrementalState]:
        return [*self.inner.new_states(), {}]

    def next_lprobs(self, tgt_in: torch.Tensor, encs: list[EncoderOut], states: list[IncrementalState] | None,
                    temperature: float = 1.0) -> torch.Tensor:
        """Fused scores of the token after `tgt_in` (the temperature applies to the model, not the LM).

        Shape: tgt_in (N, L), BOS first -> (N, V)
        """
        model, lm = self.score_parts(tgt_in, encs, states, temperature)
        return model + lm

    def score_parts(self, tgt_in: torch.Tensor, encs: list[EncoderOut], states: list[IncrementalState] | None,
                    temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(the model's log-probabilities, W x the LM's) of the token after `tgt_in`, apart: the CTC scorer
        weights the first alone and ranks its pre-beam by both (ctc_prefix.py).

        Shape: tgt_in (N, L), BOS first -> (N, V), (N, V)
        """
        inner = self.inner.next_lprobs(tgt_in, encs[:-1], states[:-1] if states is not None else None, temperature)
        logits = self.lm.decode(tgt_in, encs[-1], states[-1] if states is not None else None)[:, -1, :]
        return inner, self.weight * F.log_softmax(logits.float(), dim=-1)

    def reorder(self, states: list[IncrementalState], new_order: torch.Tensor) -> None:
        """Select rows `new_order` of the inner states and of the LM's cache, in place."""
        self.inner.reorder(states[:-1], new_order)
        self.lm.reorder_incremental_state(states[-1], new_order)

    def target_lprobs(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        raise ConfigError("--lm-path does not apply to --score-reference (it scores with the model alone)")


def with_lm(ensemble: Any, weight: float, strategy: Any) -> Any:
    """The ensemble itself without an LM (`ensemble.lm` None), else its fused view (the search loop calls this).

    Raises:
        ConfigError: an LM without a weight or a weight without an LM, or sampling.
    """
    lm = getattr(ensemble, "lm", None)
    if lm is None:
        if weight:
            raise ConfigError(f"--lm-weight {weight} needs a language model: give --lm-path LM.pt (a transformer_lm "
                              "checkpoint over the model's target vocabulary; docs/speech.md)")
        return ensemble
    if not weight:
        raise ConfigError("--lm-path needs --lm-weight W > 0, the LM's share of the score (tune it on a validation "
                          "set; 0.1 to 0.5 is common)")
    if isinstance(strategy, Sampling):
        raise ConfigError(f"--lm-weight {weight}: fused scores are not a distribution to sample from; decode with "
                          "--strategy beam or greedy")
    return LMFusion(ensemble, lm, weight)
