"""Validation: loss on the validation splits and, with --eval-bleu, BLEU of decoded hypotheses.

BLEU is sacreBLEU's corpus BLEU (default signature) of the detokenized hypotheses against the detokenized
references, both decoded from token ids with the target tokenizer, and is reported with its signature.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from seq2seq_cli.device import autocast
from seq2seq_cli.errors import ConfigError, Seq2SeqError
from seq2seq_cli.training.datasets import Split, epoch_iterator
from seq2seq_cli.training.loss import batch_loss
from seq2seq_cli.training.meters import LN2

_TRANSLATE_OPTIONS = ("batch_size", "max_tokens", "seed", "precision")  # translate_ids' own, not the strategy's


def check_bleu_options(cfg: Any) -> None:
    """Fail at start-up, not at the first validation, when --eval-bleu-args names no valid decoding option."""
    from seq2seq_cli.decoding.config import build_strategy, split_options

    strategy, options = cfg.bleu_options()
    for key in _TRANSLATE_OPTIONS:
        options.pop(key, None)
    try:
        strategy_options, _ = split_options(strategy, options)
        build_strategy(strategy, strategy_options)
    except (Seq2SeqError, TypeError) as exc:
        raise ConfigError(f"--eval-bleu-args {cfg.eval_bleu_args}: {exc}") from None


class Validator:
    """Computes validation statistics for the run's validation splits."""

    def __init__(self, parts: Any) -> None:
        self.cfg, self.device = parts.cfg, parts.device
        self.criterion = parts.criterion
        self.splits: list[Split] = parts.valid
        self.rank, self.world_size = parts.rank, parts.world_size
        self.tgt_tokenizer = parts.data.tgt_tokenizer
        self.bos, self.pad, self.eos = self.tgt_tokenizer.bos_id, self.tgt_tokenizer.pad_id, self.tgt_tokenizer.eos_id

    @torch.no_grad()
    def run(self, split: Split, model: nn.Module) -> dict[str, Any]:
        """fairseq's valid statistics (loss, nll_loss, ppl, wps, wpb, bsz), plus bleu with --eval-bleu."""
        was_training = model.training
        model.eval()
        try:
            stats = self._loss(split, model)
            if self.cfg.eval_bleu:
                stats.update(self.bleu(split, model))
        finally:
            model.train(was_training)
        return stats

    def _loss(self, split: Split, model: nn.Module) -> dict[str, Any]:
        start = time.perf_counter()
        itr = epoch_iterator(split, self.cfg, shuffle=False, rank=self.rank, world_size=self.world_size)
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, nll, ntokens, nsentences
        batches = 0
        for batch in itr.next_epoch_itr():
            batch = batch.to(self.device)
            loss, nll = batch_loss(model.logits_for_loss, self.criterion, batch, self.bos, self.pad, self.eos,
                                   lambda: autocast(self.cfg.precision, self.device))
            sums += torch.stack([loss.double(), nll.double(), sums.new_tensor(batch.ntokens),
                                 sums.new_tensor(batch.nsentences)])
            batches += 1
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(sums)
        loss, nll, ntokens, nsentences = sums.tolist()
        ntokens = max(ntokens, 1.0)
        nll_base2 = nll / ntokens / LN2
        elapsed = max(time.perf_counter() - start, 1e-9)
        return {"loss": loss / ntokens / LN2, "nll_loss": nll_base2, "ppl": 2.0 ** min(nll_base2, 1000.0),
                "wps": ntokens / elapsed, "wpb": ntokens / max(batches, 1), "bsz": nsentences / max(batches, 1)}

    def bleu(self, split: Split, model: nn.Module) -> dict[str, Any]:
        """Decode the split's sources and score them with sacreBLEU; {"bleu": score, "bleu_signature": ...}."""
        from sacrebleu.metrics import BLEU

        from seq2seq_cli.decoding.run import translate_ids

        strategy, options = self.cfg.bleu_options()
        options.setdefault("precision", self.cfg.precision)
        indices = np.sort(np.concatenate(split.batches)) if split.batches else np.zeros(0, dtype=np.int64)
        eos = self.tgt_tokenizer.eos_id
        src_ids = [split.src[int(i)].tolist() + [eos] for i in indices]
        nbest = translate_ids([model], src_ids, self.tgt_tokenizer, strategy, options)  # batches by length itself
        hyps = [hyp[0].tokens if hyp else [] for hyp in nbest]
        refs = self.tgt_tokenizer.decode_batch([split.tgt[int(i)].tolist() for i in indices])
        metric = BLEU()
        score = metric.corpus_score(self.tgt_tokenizer.decode_batch(hyps), [refs])
        value = score.score if math.isfinite(score.score) else 0.0
        return {"bleu": value, "bleu_signature": str(metric.get_signature())}
