"""Several models decoding as one: fairseq's ensemble, averaging probabilities (not log-probabilities).

The ensemble's next-token log-probability is log(mean_i p_i) = logsumexp_i(log p_i) - log(n). With one model it is
that model's log-softmax. Each model keeps its own encoder output and incremental decoder state.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from seq2seq_cli.models.base import EncoderOut, IncrementalState, Seq2SeqModel


class Ensemble:
    """The decoding-side view of one or more models with the same vocabularies.

    `lm`, a language model over the same target vocabulary, is not part of the average: the search loop fuses it
    with the ensemble's scores when --lm-weight is set (lm_fusion.py).
    """

    def __init__(self, models: Sequence[Seq2SeqModel], lm: Seq2SeqModel | None = None) -> None:
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.models = list(models)
        self.lm = lm

    def __len__(self) -> int:
        return len(self.models)

    def max_positions(self) -> tuple[int, int]:
        """(source, target) limits every model can handle."""
        limits = [m.max_positions() for m in self.models]
        return min(s for s, _ in limits), min(t for _, t in limits)

    def encode(self, src_tokens: torch.Tensor) -> list[EncoderOut]:
        """Shape: src_tokens (B, S) -> one EncoderOut per model, each (B, S, D_i)."""
        return [m.encode(src_tokens) for m in self.models]

    def new_states(self) -> list[IncrementalState]:
        return [{} for _ in self.models]

    def next_lprobs(self, tgt_in: torch.Tensor, encs: list[EncoderOut], states: list[IncrementalState] | None,
                    temperature: float = 1.0) -> torch.Tensor:
        """Log-probabilities of the token after `tgt_in`, in float32.

        Args:
            tgt_in: the whole prefix, BOS first.
            encs: the models' encoder outputs for these rows.
            states: the models' incremental states (only the last position is computed), or None to recompute the
                whole prefix (slow; used to check the cache).
            temperature: logits are divided by it before the softmax.

        Shape:
            tgt_in: (N, T) -> (N, V)
        """
        lprobs = []
        for i, model in enumerate(self.models):
            logits = model.decode(tgt_in, encs[i], states[i] if states is not None else None)[:, -1, :]
            logits = logits.float()
            if temperature != 1.0:
                logits = logits / temperature
            lprobs.append(F.log_softmax(logits, dim=-1))
        return _average(lprobs)

    def reorder(self, states: list[IncrementalState], new_order: torch.Tensor) -> None:
        """Select rows `new_order` of every model's incremental state, in place."""
        for model, state in zip(self.models, states):
            model.reorder_incremental_state(state, new_order)

    def target_lprobs(self, src_tokens: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log-probability of each target token (ensemble average of probabilities), float32.

        Shape:
            src_tokens: (B, S); tgt_in, tgt_out: (B, T) -> (B, T) (padding positions hold garbage)
        """
        per_model = []
        for model in self.models:
            logits = model.decode(tgt_in, model.encode(src_tokens)).float()
            lprobs = F.log_softmax(logits, dim=-1)
            per_model.append(lprobs.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1))
        return _average(per_model)


def _average(lprobs: list[torch.Tensor]) -> torch.Tensor:
    """log(mean(exp(x_i))) over the list; the identity for one tensor."""
    if len(lprobs) == 1:
        return lprobs[0]
    return torch.logsumexp(torch.stack(lprobs), dim=0) - math.log(len(lprobs))
