"""Decoding with an exported CTranslate2 model (`seq2seq export`): what `generate`, `interactive` and
`seq2seq_cli.load` run when `--path` is an exported folder.

`CT2Translator` is a `Translator` (same tokenization, truncation, batching by length, output order and formats);
only the search runs in CTranslate2. Our rules are passed explicitly where CTranslate2's defaults differ:
- length penalty: CTranslate2 divides by len ** lenpen with len excluding EOS unless `return_end_token`; we set it,
  so len counts the EOS as ours does (and strip the EOS from the tokens);
- stopping: with a length penalty, CTranslate2 stops a sentence once beam_size * patience hypotheses finished
  (patience 1: fairseq's early stopping, ours); candidates are the top 2K, EOS among the first K finishes, as ours;
- never <pad> or <s> (`suppress_sequences`), EOS blocked before min_len (`min_decoding_length`, same step count);
- max length: per sentence `max_len_a * source length + max_len_b` capped by the model (`search.max_lengths`),
  passed as `max_decoding_length` = max_len + 1 (that many tokens counting the EOS); sentences of a batch with
  different limits are decoded in separate calls;
- sampling: ours draws --beam K independent samples per sentence; CTranslate2 does exactly that with beam_size 1
  and num_hypotheses K; top-k -1 (all) is its 0, top-p -1 (off) its 1.0; `--seed` seeds its RNG;
- defaults: beam 5 (ours) rather than CTranslate2's 2.
Positional scores (fairseq's P- lines, jsonl) and the hypothesis scores come from a teacher-forced `score_batch` of
the hypotheses, as CTranslate2's search does not return positional scores and its own scores are renormalized after
masking (see `CT2Engine.translate`). At the length limit CTranslate2 ends a hypothesis on any token where
ours forces EOS: that token is cut and EOS scored instead, which makes greedy exact and beam search close (its last
step may keep other prefixes than ours). Remaining differences (docs/export.md): --temperature only reshapes sampling
(refused for greedy/beam) and sampled scores are under the untempered model; --unkpen only as 0 or inf; no
--prefix-size; with lenpen 0 CTranslate2 stops when the best beam ends. The one rule no option changes, the
log-softmax taken after masking, changes which beams CTranslate2 keeps where candidates nearly tie; `CT2RuleEnsemble`
replays it with our weights and search, which the parity check uses to tell such lines from conversion errors.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch

from seq2seq_cli.decoding.base import DecodingStrategy, Hypothesis, normalized_score
from seq2seq_cli.decoding.config import SearchConfig, check_nbest
from seq2seq_cli.decoding.search import Specials, max_lengths, strategy_name
from seq2seq_cli.decoding.translator import Translator, _progress, plan_batches
from seq2seq_cli.errors import CheckpointError, ConfigError, DeviceError
from seq2seq_cli.export.layout import (SRC_TOKENIZER, TGT_TOKENIZER, import_ctranslate2, is_exported_model,
                                       read_metadata)

STRATEGIES = ("greedy", "beam", "sampling")


def ct2_device(device: torch.device) -> tuple[str, int]:
    """CTranslate2's (device, device_index) for a resolved torch device.

    Raises:
        DeviceError: a device CTranslate2 does not run on (mps).
    """
    if device.type == "cpu":
        return "cpu", 0
    if device.type == "cuda":
        return "cuda", device.index or 0
    raise DeviceError(f"--device {device}: CTranslate2 runs on cpu or cuda only; use --device cpu")


def compute_type(precision: str, quantization: str) -> str:
    """CTranslate2's compute_type: the exported weight type for fp32 (an int8 export computes in int8), int8 for
    --precision int8 (weights quantized at load), else the --precision's float type (kept int8 weights where the
    export is int8)."""
    if precision == "fp32":
        return "default"
    if precision == "int8":
        return "int8"
    float_type = {"bf16": "bfloat16", "fp16": "float16"}[precision]
    return f"int8_{float_type}" if quantization == "int8" else float_type


class CT2Engine:
    """The exported model as a decoding engine: a `ctranslate2.Translator`, its vocabularies and its limits.

    Ids on both sides are ours: tokens are sent to CTranslate2 as the strings of our vocabulary, which is its own.
    """

    def __init__(self, translator: Any, src_vocab: list[str], tgt_vocab: list[str], max_positions: tuple[int, int],
                 specials: Specials) -> None:
        self.translator = translator
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.tgt_index = {token: i for i, token in enumerate(tgt_vocab)}
        self.limits = max_positions
        self.specials = specials

    def max_positions(self) -> tuple[int, int]:
        """(source, target) limits, EOS/BOS included, as `Ensemble.max_positions`."""
        return self.limits

    def _src_tokens(self, src_ids: Sequence[Sequence[int]]) -> list[list[str]]:
        # CTranslate2 appends EOS itself (add_source_eos): send the ids before it.
        return [[self.src_vocab[i] for i in ids[:-1]] for ids in src_ids]

    def options(self, strategy: DecodingStrategy, cfg: SearchConfig) -> dict[str, Any]:
        """translate_batch options equivalent to `strategy` + `cfg` (see the module docstring).

        Raises:
            ConfigError: a strategy or option CTranslate2 cannot follow as we do.
        """
        name = strategy_name(strategy)
        if name not in STRATEGIES:
            raise ConfigError(f"--strategy {name}: an exported CTranslate2 model decodes with "
                              f"{', '.join(STRATEGIES)} only")
        if cfg.unkpen not in (0.0, math.inf):
            raise ConfigError(f"--unkpen {cfg.unkpen}: an exported CTranslate2 model can only forbid <unk> "
                              "(--unkpen inf) or not (0)")
        if cfg.temperature != 1.0 and name != "sampling":
            raise ConfigError(f"--temperature {cfg.temperature}: with an exported CTranslate2 model the "
                              "temperature applies to sampling only")
        if cfg.ctc_weight:
            raise ConfigError(f"--ctc-weight {cfg.ctc_weight}: an exported CTranslate2 model is a text model "
                              "without a CTC head")
        if cfg.lm_weight:
            raise ConfigError(f"--lm-weight {cfg.lm_weight}: an exported CTranslate2 model decodes without a "
                              "language model; decode a .pt checkpoint with --lm-path")
        suppress = [[self.tgt_vocab[i]] for i in never_generated(self.specials)]
        opts: dict[str, Any] = dict(
            length_penalty=cfg.lenpen, patience=1.0, min_decoding_length=cfg.min_len, return_end_token=True,
            return_scores=True, no_repeat_ngram_size=cfg.no_repeat_ngram_size, disable_unk=cfg.unkpen == math.inf,
            suppress_sequences=suppress, max_input_length=0,
        )
        if name == "sampling":
            topk, topp = strategy.cfg.sampling_topk, strategy.cfg.sampling_topp
            opts.update(beam_size=1, num_hypotheses=strategy.beam_size, sampling_topk=0 if topk == -1 else topk,
                        sampling_topp=1.0 if topp == -1 else topp, sampling_temperature=cfg.temperature)
            if topk == 1:  # argmax "sampling": CTranslate2 allows only one hypothesis; they would all be equal
                opts["num_hypotheses"] = 1
        else:
            # All K finished hypotheses, which we re-rank by our scores (see `translate`), not just its top nbest.
            opts.update(beam_size=strategy.beam_size, num_hypotheses=strategy.beam_size)
        return opts

    def translate(self, src_ids: Sequence[Sequence[int]], max_len: int, opts: dict[str, Any], nbest: int,
                  lenpen: float) -> list[list[Hypothesis]]:
        """Decode sources (ids ending with EOS) that share the output limit `max_len` (tokens before EOS).

        Scores are recomputed from the positional scores, as ours: CTranslate2 renormalizes the log-probabilities
        after masking tokens (<pad>, <s>, EOS before min_len), we do not (fairseq does not), and it scores samples
        under the truncated distribution. Its own scores only rank the beam during the search.
        """
        if max_len == 0:  # only EOS is possible (an empty source): its score, without a search
            eos = self.score(src_ids, [[] for _ in src_ids])
            return [[Hypothesis([], p[0], p)] * nbest for p in eos]
        results = self.translator.translate_batch(self._src_tokens(src_ids), max_decoding_length=max_len + 1,
                                                  **{**opts, "min_decoding_length": min(opts["min_decoding_length"],
                                                                                         max_len + 1)})
        hyps: list[list[Hypothesis]] = []
        for res in results:
            nb: list[Hypothesis] = []
            for tokens, score in zip(res.hypotheses, res.scores):
                ids = [self.tgt_index[t] for t in tokens]
                if ids and ids[-1] == self.specials.eos:
                    ids = ids[:-1]
                if len(ids) > max_len:
                    # At the limit CTranslate2 ends on any token where we force EOS: cut it (EOS is scored after);
                    # two beams that differed only in that token are one hypothesis for us.
                    ids = ids[:max_len]
                    if any(h.tokens == ids for h in nb):
                        continue
                nb.append(Hypothesis(ids, score))
            hyps.append(nb)
        self._positional(src_ids, hyps, lenpen)
        return [_fill(sorted(nb, key=lambda h: h.score, reverse=True)[:nbest], nbest) for nb in hyps]

    def _positional(self, src_ids: Sequence[Sequence[int]], hyps: list[list[Hypothesis]], lenpen: float) -> None:
        pairs = [(i, h) for i, nb in enumerate(hyps) for h in nb]
        lprobs = self.score([src_ids[i] for i, _ in pairs], [h.tokens for _, h in pairs])
        for (_, hyp), positional in zip(pairs, lprobs):
            hyp.positional_scores = positional
            hyp.score = normalized_score(positional, lenpen)

    def score(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Teacher-forced log-probabilities of each target token and of the final EOS (len + 1 values)."""
        if not src_ids:
            return []
        target = [[self.tgt_vocab[i] for i in ids] for ids in tgt_ids]
        results = self.translator.score_batch(self._src_tokens(src_ids), target, max_input_length=0)
        return [list(r.log_probs) for r in results]


def never_generated(specials: Specials) -> list[int]:
    """Target ids both engines never generate: <pad>, and <s> unless it is also the EOS (`search._constrain`)."""
    return [specials.pad] + ([specials.bos] if specials.bos != specials.eos else [])


class CT2RuleEnsemble:
    """Our ensemble under CTranslate2's rule for masked tokens: log-softmax *after* masking (ours: before).

    CTranslate2 masks <pad> and <s> (`suppress_sequences`), <unk> with --unkpen inf (`disable_unk`) and EOS before
    --min-len (`min_decoding_length`) in the logits, then takes the log-softmax, so the other tokens of a row gain
    -log(1 - masked mass); we (and fairseq) mask the log-probabilities. The gain differs from row to row, so where two
    candidates' scores are closer than that, the engines keep different beams. Decoding with this ensemble through
    our own search (`search.search`, the same pruning, stopping and length-penalty rules) ranks beams as CTranslate2
    does, with our weights: the parity check re-decodes the lines whose outputs differ with it, to tell such a
    difference from a conversion error. Normal decoding never uses it.

    The masks are those of the search options the check runs (`SearchConfig` defaults; --no-repeat-ngram-size,
    which CTranslate2 also applies before its softmax, is not replayed).
    """

    def __init__(self, ensemble: Any, specials: Specials, cfg: SearchConfig) -> None:
        self.inner = ensemble
        self.masked = never_generated(specials) + ([specials.unk] if cfg.unkpen == math.inf else [])
        self.eos, self.min_len = specials.eos, cfg.min_len

    def __getattr__(self, name: str) -> Any:  # models, encode, reorder, ...: the inner ensemble's
        return getattr(self.inner, name)

    def next_lprobs(self, tgt_in: torch.Tensor, encs: list[Any], states: list[dict] | None,
                    temperature: float = 1.0) -> torch.Tensor:
        """As `Ensemble.next_lprobs`, renormalized after masking. Shape: tgt_in (N, T) -> (N, V)."""
        lprobs = self.inner.next_lprobs(tgt_in, encs, states, temperature)
        lprobs[:, self.masked] = -math.inf
        if tgt_in.size(1) - 1 < self.min_len:  # the token chosen now is number T - 1 (0-based), as `step`
            lprobs[:, self.eos] = -math.inf
        return torch.log_softmax(lprobs, dim=-1)


def _fill(hyps: list[Hypothesis], nbest: int) -> list[Hypothesis]:
    """Exactly nbest hypotheses, as `search._nbest` (the last one repeated when fewer finished)."""
    while len(hyps) < nbest:
        hyps.append(hyps[-1])
    return hyps


class CT2Translator(Translator):
    """A `Translator` over an exported CTranslate2 model (see the module docstring)."""

    def __init__(self, engine: CT2Engine, src_tokenizer: Any, tgt_tokenizer: Any, device: torch.device,
                 precision: str = "fp32", state: dict | None = None) -> None:
        # No super().__init__: there are no torch models; `ensemble` is the engine (max_positions, decoding).
        self.ensemble = engine
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.device, self.precision = device, precision
        self.state = state or {}
        self.specials = engine.specials

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32",
             threads: int | None = None) -> "CT2Translator":
        """Load an exported folder. `threads`: CTranslate2's intra-op threads (default: torch's setting, which
        `--threads` sets).

        Raises:
            CheckpointError: not an exported folder, or one whose files are damaged; ConfigError: ctranslate2 is
                not installed; DeviceError: a device CTranslate2 does not run on.
        """
        from seq2seq_cli.device import check_precision, resolve_device
        from seq2seq_cli.tokenization.base import Tokenizer

        path = Path(path)
        if not is_exported_model(path):
            raise CheckpointError(f"{path}: not a folder written by seq2seq export")
        ct2 = import_ctranslate2()
        device = resolve_device(device) if isinstance(device, str) else device
        if precision != "int8":  # int8 is CTranslate2's own quantization here, checked below with the others
            check_precision(precision, device)
        meta = read_metadata(path)
        src_tok = Tokenizer.from_json((path / SRC_TOKENIZER).read_text(encoding="utf-8"),
                                      source=str(path / SRC_TOKENIZER))
        tgt_tok = Tokenizer.from_json((path / TGT_TOKENIZER).read_text(encoding="utf-8"),
                                      source=str(path / TGT_TOKENIZER))
        kind, index = ct2_device(device)
        compute = compute_type(precision, meta.get("quantization", "float32"))
        supported = ct2.get_supported_compute_types(kind, index)
        if compute != "default" and compute not in supported:
            raise DeviceError(f"--precision {precision}: CTranslate2 cannot compute in {compute} on this {kind} "
                              f"(it can: {', '.join(sorted(supported))}); use --precision fp32")
        try:
            translator = ct2.Translator(str(path), device=kind, device_index=index, compute_type=compute,
                                        intra_threads=threads or torch.get_num_threads())
        except (RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: CTranslate2 cannot load this model ({exc})") from None
        vocab = [src_tok.hf.id_to_token(i) for i in range(src_tok.vocab_size)]
        tgt_vocab = [tgt_tok.hf.id_to_token(i) for i in range(tgt_tok.vocab_size)]
        src_max, tgt_max = meta["max_positions"]
        engine = CT2Engine(translator, vocab, tgt_vocab, (src_max, tgt_max), Specials.of(tgt_tok))
        return cls(engine, src_tok, tgt_tok, device, precision, {"langs": meta.get("langs", {}), "export": meta})

    def generate_ids(self, src_ids: Sequence[Sequence[int]], strategy: DecodingStrategy, cfg: SearchConfig, *,
                     prefixes: Sequence[Sequence[int]] | None = None, batch_size: int | None = None,
                     max_tokens: int | None = None, progress: bool = False, incremental: bool = True
                     ) -> list[list[Hypothesis]]:
        """As `Translator.generate_ids`; batches as ours (by length, --batch-size / --max-tokens)."""
        if prefixes is not None and any(prefixes):
            raise ConfigError("--prefix-size is not supported with an exported CTranslate2 model; decode with the "
                              "checkpoint")
        check_nbest(cfg.nbest, strategy.beam_size, strategy_name(strategy))
        engine = self.ensemble
        opts = engine.options(strategy, cfg)
        sampling = strategy_name(strategy) == "sampling"
        generator = getattr(strategy, "generator", None)
        if sampling and generator is not None:  # --seed: make the draws reproducible
            import_ctranslate2().set_random_seed(generator.initial_seed())
        limits = max_lengths(torch.tensor([len(s) - 1 for s in src_ids]), cfg, engine.max_positions()[1]).tolist()
        results: list[list[Hypothesis]] = [[] for _ in src_ids]
        with _progress(len(src_ids), progress) as bar:
            for batch in plan_batches([len(s) for s in src_ids], batch_size, max_tokens):
                by_limit: dict[int, list[int]] = {}
                for i in batch:
                    by_limit.setdefault(limits[i], []).append(i)
                for limit, group in by_limit.items():
                    hyps = engine.translate([src_ids[i] for i in group], limit, opts, cfg.nbest, cfg.lenpen)
                    for i, nbest in zip(group, hyps):
                        results[i] = nbest
                bar.update(len(batch))
        return results

    def score_ids(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], *,
                  batch_size: int | None = None, max_tokens: int | None = None, progress: bool = False
                  ) -> list[Hypothesis]:
        """As `Translator.score_ids` (fairseq's --score-reference), with CTranslate2's teacher-forced scoring."""
        results: list[Hypothesis] = [Hypothesis([], 0.0) for _ in src_ids]
        lengths = [max(len(s), len(t) + 1) for s, t in zip(src_ids, tgt_ids)]
        with _progress(len(src_ids), progress) as bar:
            for batch in plan_batches(lengths, batch_size, max_tokens):
                lprobs = self.ensemble.score([src_ids[i] for i in batch], [tgt_ids[i] for i in batch])
                for i, positional in zip(batch, lprobs):
                    results[i] = Hypothesis(list(tgt_ids[i]), sum(positional) / len(positional), positional)
                bar.update(len(batch))
        return results
