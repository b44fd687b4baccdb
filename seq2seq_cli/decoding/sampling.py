"""Sampling (fairseq's `Sampling`): draw each next token from the model's distribution, optionally restricted to
the k most probable tokens (`--sampling-topk`) or to the smallest set whose probability reaches p
(`--sampling-topp`, nucleus sampling). `--temperature` (a loop option) reshapes the distribution first.

As in fairseq, `--beam K` independent samples are drawn per sentence; with `--nbest 1` the best-scoring one is
output. A sample's score is the log-probability under the (tempered) model, not under the truncated distribution.
Draws come from the loop's `torch.Generator`, so `--seed` makes them reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from seq2seq_cli.decoding.base import DecodingStrategy
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import DECODING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling options (fairseq's names and defaults)."""

    beam: int = field(default=5, metadata={"help": "number of samples drawn per sentence (fairseq's --beam)"})
    sampling_topk: int = field(default=-1, metadata={"help": "sample from the k most probable tokens (-1: all)"})
    sampling_topp: float = field(default=-1.0, metadata={
        "help": "sample from the smallest token set whose probability reaches p (-1: off)"})

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ConfigError(f"--beam {self.beam}: must be at least 1")
        if self.sampling_topk == 0 or self.sampling_topk < -1:
            raise ConfigError(f"--sampling-topk {self.sampling_topk}: must be -1 (off) or at least 1")
        if self.sampling_topp != -1.0 and not 0.0 < self.sampling_topp <= 1.0:
            raise ConfigError(f"--sampling-topp {self.sampling_topp}: must be -1 (off) or in (0, 1]")


@DECODING.register("sampling")
class Sampling(DecodingStrategy):
    """K independent samples per sentence; each live hypothesis extends itself by one drawn token."""

    Config = SamplingConfig

    def step(self, step: int, lprobs: "torch.Tensor", scores: "torch.Tensor"
             ) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """Shape: lprobs (B, K, V), scores (B, K) -> three (B, K) tensors (see DecodingStrategy.step)."""
        bsz, beam, _ = lprobs.shape
        if step == 0:
            lprobs = lprobs[:, :1, :]  # identical rows: draw all K first tokens from one
        probs, vocab_ids = self._candidates(lprobs)  # (B, K or 1, V')
        # A row with no probability mass left (everything blocked) would make multinomial fail: spread it evenly.
        probs = probs.masked_fill(probs.sum(-1, keepdim=True) <= 0, 1.0)
        rows = probs.reshape(-1, probs.size(-1))
        draws = rows.multinomial(beam if step == 0 else 1, replacement=True, generator=self.generator)
        draws = draws.view(bsz, beam)  # index into the last dim of probs
        if vocab_ids is None:
            tokens = draws
        else:
            tokens = vocab_ids.expand(bsz, beam, -1).gather(2, draws.unsqueeze(-1)).squeeze(-1)
        token_lprobs = lprobs.expand(bsz, beam, -1).gather(2, tokens.unsqueeze(-1)).squeeze(-1)
        beams = draws.new_zeros(bsz, beam) if step == 0 else _arange_like(draws, beam).expand(bsz, beam)
        return scores.gather(1, beams) + token_lprobs, tokens, beams

    def _candidates(self, lprobs: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """Probabilities to draw from and, when truncated, the vocabulary id of each column (None = identity).

        Shape: lprobs (B, R, V) -> probs (B, R, V'), ids (B, R, V') or None
        """
        topk, topp = self.cfg.sampling_topk, self.cfg.sampling_topp
        if topp > 0:
            probs, ids = lprobs.exp().sort(dim=-1, descending=True)
            # Keep a token if the mass before it is below p: the token that crosses p is included.
            before = probs.cumsum(-1) - probs
            probs = probs.masked_fill(before >= topp, 0.0)
            keep = int((before < topp).sum(-1).max())  # drop the all-zero tail columns
            return probs[..., :keep], ids[..., :keep]
        if topk > 0:
            top_lprobs, ids = lprobs.topk(min(topk, lprobs.size(-1)), dim=-1)
            return top_lprobs.exp(), ids
        return lprobs.exp(), None


def _arange_like(t: "torch.Tensor", n: int) -> "torch.Tensor":
    """(1, n) tensor [[0, 1, ..., n-1]] on t's device."""
    return t.new_ones(1, n).cumsum(1) - 1
