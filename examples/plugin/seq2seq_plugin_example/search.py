"""`diverse-beam`: diverse beam search (Vijayakumar et al., 2018, "Diverse Beam Search: Decoding Diverse
Solutions from Neural Sequence Models"), fairseq's `--diverse-beam-groups` / `--diverse-beam-strength`.

It shows the contract of a decoding-strategy plugin: subclass `seq2seq_cli.decoding.base.DecodingStrategy`, give it
a dataclass `Config` (with a `beam` field, which `--beam` sets), and implement `step`; the generation loop keeps the
books (lengths, EOS, finished hypotheses, decoder state).

The K hypotheses of a sentence are split into G groups of K/G; rows g, g+G, g+2G, ... form group g. At each step
the groups choose in turn, each by beam search over its own rows, and group g's log-probability of a token is
lowered by `diverse_beam_strength` times the number of earlier groups (0..g-1) that chose that token at this step
(the paper's Hamming diversity; a group's choices are its K/G best candidates, whereas fairseq also counts the K/G
spares that beam search proposes in case some hypotheses end). So with `--nbest K` the n-best list holds
translations kept apart rather than K near-copies. The penalty only ranks; a hypothesis's score stays its
log-probability under the model (unlike fairseq, which adds the penalties into the scores), so scores compare
across strategies.

Candidates of the groups are interleaved (group 0's best, group 1's best, ..., then the second best of each), as in
fairseq; after a hypothesis finishes, the loop's next rows can shift between groups, as they do in fairseq.
With one group this is beam search.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from seq2seq_cli.decoding.base import DecodingStrategy
from seq2seq_cli.decoding.beam import BeamConfig, BeamSearch
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import DECODING


@dataclass(frozen=True)
class DiverseBeamConfig:
    """Options of diverse beam search (fairseq's names)."""

    beam: int = field(default=BeamConfig.beam, metadata={"help": "beam size K: hypotheses kept per sentence"})
    diverse_beam_groups: int = field(default=0, metadata={
        "help": "number of groups G; K must be a multiple of it (0: one group per hypothesis, G = K)"})
    diverse_beam_strength: float = field(default=0.5, metadata={
        "help": "penalty per earlier group that chose the same token at the same step"})

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ConfigError(f"--beam {self.beam}: must be at least 1")
        if self.diverse_beam_groups < 0:
            raise ConfigError(f"--strategy-opt diverse_beam_groups={self.diverse_beam_groups}: must be 0 (one "
                              "group per hypothesis) or at least 1")
        if self.diverse_beam_groups and self.beam % self.diverse_beam_groups:
            raise ConfigError(f"--beam {self.beam} is not a multiple of --strategy-opt diverse_beam_groups="
                              f"{self.diverse_beam_groups}; choose a beam of G x (hypotheses per group)")
        if self.diverse_beam_strength < 0:
            raise ConfigError(f"--strategy-opt diverse_beam_strength={self.diverse_beam_strength}: must not be "
                              "negative")


@DECODING.register("diverse-beam")
class DiverseBeamSearch(DecodingStrategy):
    """Beam search in G groups with a Hamming diversity penalty between groups (see the module docstring)."""

    Config = DiverseBeamConfig

    @property
    def groups(self) -> int:
        return self.cfg.diverse_beam_groups or self.cfg.beam

    def step(self, step: int, lprobs: torch.Tensor, scores: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shape: lprobs (B, K, V), scores (B, K) -> three (B, 2K) tensors, interleaved by group."""
        bsz, _, vocab = lprobs.shape
        groups = self.groups
        per_group = self.beam_size // groups
        group_search = BeamSearch(BeamConfig(beam=per_group))
        chosen = lprobs.new_zeros(bsz, vocab)  # how many earlier groups chose each token at this step
        out_scores, out_tokens, out_beams = [], [], []
        for g in range(groups):
            penalty = self.cfg.diverse_beam_strength * chosen
            # The group's own beam search over its rows g, g+G, ...; at step 0 it expands its row 0 only.
            cand_scores, tokens, beams = group_search.step(step, lprobs[:, g::groups, :] - penalty.unsqueeze(1),
                                                           scores[:, g::groups])
            out_scores.append(cand_scores + penalty.gather(1, tokens))  # back to the model's log-probability
            out_tokens.append(tokens)
            out_beams.append(beams * groups + g)  # the group's row index -> the sentence's row index
            # The group's choices are its first K/G candidates (the rest are spares in case some end, as in beam
            # search); impossible ones (-inf: blocked tokens, dead rows) choose nothing.
            kept, kept_scores = tokens[:, :per_group], cand_scores[:, :per_group]
            chosen.scatter_add_(1, kept, kept_scores.isfinite().to(chosen.dtype))
        return tuple(torch.stack(t, dim=2).view(bsz, -1) for t in (out_scores, out_tokens, out_beams))
