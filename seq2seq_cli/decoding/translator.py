"""Decoding many sentences: batches formed by length, decoded with `search.search`, returned in input order.

`decode_batches` and `score_batches` work on token ids (what `translate_ids` and validation use); `Translator` adds
the checkpoint's tokenizers around them (text in, text out) and is what both `seq2seq generate` and the Python API
(`seq2seq_cli.load`) run, so the two give the same output.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from seq2seq_cli.decoding.base import DecodingStrategy, Hypothesis
from seq2seq_cli.decoding.config import DEFAULT_MAX_TOKENS, SearchConfig, build_strategy, check_nbest, split_options
from seq2seq_cli.decoding.ensemble import Ensemble
from seq2seq_cli.decoding.search import Specials, search, strategy_name
from seq2seq_cli.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)


def plan_batches(lengths: Sequence[int], batch_size: int | None = None, max_tokens: int | None = None
                 ) -> list[list[int]]:
    """Group indices into batches of similar length, longest first (so memory peaks early).

    A batch holds at most `batch_size` sentences and at most `max_tokens` tokens counting padding
    (sentences x longest); a sentence longer than `max_tokens` on its own still gets a batch (nothing is dropped).
    """
    if batch_size is None and max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        full = (batch_size is not None and len(current) >= batch_size) or (
            max_tokens is not None and (len(current) + 1) * max(longest, 1) > max_tokens)
        if current and full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _pad(seqs: Sequence[Sequence[int]], pad: int, device: torch.device, prepend: int | None = None,
         append: int | None = None) -> torch.Tensor:
    """Right-padded (B, L) int64 tensor of `seqs`, optionally with a token added before/after each."""
    extra = (prepend is not None) + (append is not None)
    out = torch.full((len(seqs), max(len(s) for s in seqs) + extra), pad, dtype=torch.long)
    for row, seq in enumerate(seqs):
        full = ([prepend] if prepend is not None else []) + list(seq) + ([append] if append is not None else [])
        out[row, : len(full)] = torch.tensor(full, dtype=torch.long)
    return out.to(device)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    # disable=None: off when stderr is not a terminal (logs, CI), as the style guide asks.
    return tqdm(total=total, unit="sent", file=sys.stderr, disable=None if enabled else True, leave=False)


def decode_batches(ensemble: Ensemble, src_ids: Sequence[Sequence[int]], strategy: DecodingStrategy,
                   cfg: SearchConfig, specials: Specials, *, prefixes: Sequence[Sequence[int]] | None = None,
                   batch_size: int | None = None, max_tokens: int | None = None, precision: str = "fp32",
                   progress: bool = False, incremental: bool = True) -> list[list[Hypothesis]]:
    """Decode every source (ids ending with EOS); hypotheses come back in input order.

    Args:
        prefixes: per sentence, target tokens every hypothesis must start with (`--prefix-size`).
        Others: see `search.search` and `plan_batches`.
    """
    from seq2seq_cli.device import autocast

    check_nbest(cfg.nbest, strategy.beam_size, strategy_name(strategy))
    device = next(ensemble.models[0].parameters()).device
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    bar = _progress(len(src_ids), progress)
    with bar, _redirect_logging(progress), torch.inference_mode(), autocast(precision, device):
        for batch in plan_batches([len(s) for s in src_ids], batch_size, max_tokens):
            src = _pad([src_ids[i] for i in batch], specials.pad, device)
            lengths = torch.tensor([len(src_ids[i]) - 1 for i in batch], device=device)
            prefix = None
            if prefixes is not None and any(prefixes[i] for i in batch):
                prefix = _pad([prefixes[i] for i in batch], specials.pad, device)
            hyps = search(ensemble, src, lengths, strategy, cfg, specials, prefix, incremental)
            for i, sentence_hyps in zip(batch, hyps):
                results[i] = sentence_hyps
            bar.update(len(batch))
    return results


def score_batches(ensemble: Ensemble, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]],
                  specials: Specials, *, batch_size: int | None = None, max_tokens: int | None = None,
                  precision: str = "fp32", progress: bool = False) -> list[Hypothesis]:
    """Score given targets (ids without BOS/EOS) under the model: fairseq's --score-reference.

    Each result holds the target, its positional log-probabilities (EOS included) and, as `score`, their mean.
    """
    from seq2seq_cli.device import autocast

    device = next(ensemble.models[0].parameters()).device
    results: list[Hypothesis] = [Hypothesis([], 0.0) for _ in src_ids]
    bar = _progress(len(src_ids), progress)
    lengths = [max(len(s), len(t) + 1) for s, t in zip(src_ids, tgt_ids)]
    with bar, _redirect_logging(progress), torch.inference_mode(), autocast(precision, device):
        for batch in plan_batches(lengths, batch_size, max_tokens):
            src = _pad([src_ids[i] for i in batch], specials.pad, device)
            tgt_in = _pad([tgt_ids[i] for i in batch], specials.pad, device, prepend=specials.bos)
            tgt_out = _pad([tgt_ids[i] for i in batch], specials.pad, device, append=specials.eos)
            lprobs = ensemble.target_lprobs(src, tgt_in, tgt_out).tolist()
            for row, i in enumerate(batch):
                positional = lprobs[row][: len(tgt_ids[i]) + 1]
                results[i] = Hypothesis(list(tgt_ids[i]), sum(positional) / len(positional), positional)
            bar.update(len(batch))
    return results


def _redirect_logging(progress: bool) -> Any:
    if not progress:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(loggers=[logging.getLogger("seq2seq_cli")])


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """The sampling RNG: seeded when `seed` is given, else None (torch's global RNG)."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


class Translator:
    """Text in, text out with one checkpoint (or an ensemble): the engine behind `generate` and `seq2seq_cli.load`.

    Attributes:
        ensemble: the model(s); src_tokenizer / tgt_tokenizer: the checkpoint's tokenizers; device; precision.
    """

    def __init__(self, models: Sequence[Any], src_tokenizer: Any, tgt_tokenizer: Any, device: torch.device,
                 precision: str = "fp32", state: dict | None = None, lm: Any = None) -> None:
        self.ensemble = Ensemble(models, lm)
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.device, self.precision = device, precision
        self.state = state or {}  # the first checkpoint's metadata (langs, configs)
        self.specials = Specials.of(tgt_tokenizer)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32",
             lm_path: str | Path | None = None) -> "Translator":
        """Load one checkpoint, or several separated by ':' as an ensemble (same tokenizers required), and
        optionally a language model to fuse with them (`lm_path`, its vocabulary the models' target one).

        Raises:
            CheckpointError: a missing, damaged or incompatible checkpoint (or LM).
        """
        from seq2seq_cli.checkpoint import load_model
        from seq2seq_cli.decoding.quantize import check_int8, quantize_for_decoding
        from seq2seq_cli.device import check_precision, resolve_device

        device = resolve_device(device) if isinstance(device, str) else device
        from seq2seq_cli.export.layout import is_exported_model

        if is_exported_model(path):  # a folder from `seq2seq export`: decode with CTranslate2 (its own checks)
            from seq2seq_cli.decoding.ct2_backend import CT2Translator

            if lm_path is not None:
                raise ConfigError(f"--lm-path: {path} is an exported CTranslate2 model, which decodes without a "
                                  "language model; decode a .pt checkpoint to fuse one")

            return CT2Translator.load(path, device, precision)
        if precision == "int8":
            check_int8(device)
        else:
            check_precision(precision, device)
        paths = [p for p in str(path).split(":") if p]
        if not paths:
            raise CheckpointError("--path is empty; give a checkpoint file (several separated by ':')")
        loaded = [load_model(p, device) for p in paths]
        for one in loaded:
            if _is_lm(one.model):
                raise CheckpointError(f"{one.path}: a language model ({one.model_name}) scores text but does not "
                                      "translate; give it as --lm-path beside a translation or speech checkpoint")
        lm = _load_lm(lm_path, loaded[0], device) if lm_path is not None else None
        for other in loaded[1:]:
            for side in ("src", "tgt"):
                if _vocab(getattr(other, f"{side}_tokenizer")) != _vocab(getattr(loaded[0], f"{side}_tokenizer")):
                    raise CheckpointError(
                        f"{other.path}: its {side} vocabulary differs from {loaded[0].path}'s; an ensemble needs "
                        "checkpoints trained on the same DATA_DIR (the same tokenizers)")
        first = loaded[0]
        models = [quantize_for_decoding(m.model) if precision == "int8" else m.model for m in loaded]
        if lm is not None and precision == "int8":
            lm = quantize_for_decoding(lm)
        return cls(models, first.src_tokenizer, first.tgt_tokenizer, device, precision, first.state, lm)

    @property
    def takes_audio(self) -> bool:
        """Whether the models read audio features (a speech checkpoint) rather than source text."""
        models = getattr(self.ensemble, "models", None)  # an exported CTranslate2 engine has none: text only
        return bool(models) and getattr(models[0], "source_kind", "text") == "audio"

    @property
    def _autocast(self) -> str:
        """The autocast precision: none for int8 (its models are quantized at load time instead)."""
        return "fp32" if self.precision == "int8" else self.precision

    # ------------------------------------------------------------------------------------------ ids <-> text

    def encode(self, lines: Sequence[str], first_line: int = 1, source: str = "input") -> list[list[int]]:
        """Source ids + EOS of each line; a line longer than the model's source positions is truncated (warned).

        Raises:
            ConfigError: the checkpoint is a speech model, whose input is audio, not text.
        """
        if self.takes_audio:
            raise ConfigError("this checkpoint is a speech model: its input is audio, not text; decode audio with "
                              "`seq2seq generate --input MANIFEST.tsv` or an audio DATA_DIR (docs/speech.md)")
        limit = self.ensemble.max_positions()[0] - 1
        ids = self.src_tokenizer.encode_batch(list(lines)) if lines else []
        return [truncate(seq, limit, f"{source} line {first_line + i}", "source") + [self.src_tokenizer.eos_id]
                for i, seq in enumerate(ids)]

    def encode_targets(self, lines: Sequence[str], first_line: int = 1, source: str = "target") -> list[list[int]]:
        """Target ids (no BOS/EOS), truncated to what the decoder can take (warned)."""
        limit = self.ensemble.max_positions()[1] - 1
        ids = self.tgt_tokenizer.encode_batch(list(lines)) if lines else []
        return [truncate(seq, limit, f"{source} line {first_line + i}", "target") for i, seq in enumerate(ids)]

    def detokenize(self, tokens: Sequence[Sequence[int]], remove_bpe: str | None = None) -> list[str]:
        """Target text of each id list, with an optional BPE marker removed (see `post_process`)."""
        if not tokens:
            return []
        return [post_process(text, remove_bpe) for text in self.tgt_tokenizer.decode_batch([list(t) for t in tokens])]

    # ------------------------------------------------------------------------------------------ decoding

    def generate_ids(self, src_ids: Sequence[Sequence[int]], strategy: DecodingStrategy, cfg: SearchConfig, *,
                     prefixes: Sequence[Sequence[int]] | None = None, batch_size: int | None = None,
                     max_tokens: int | None = None, progress: bool = False, incremental: bool = True
                     ) -> list[list[Hypothesis]]:
        """`decode_batches` with this translator's models, specials and precision."""
        return decode_batches(self.ensemble, src_ids, strategy, cfg, self.specials, prefixes=prefixes,
                              batch_size=batch_size, max_tokens=max_tokens, precision=self._autocast,
                              progress=progress, incremental=incremental)

    def score_ids(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], *,
                  batch_size: int | None = None, max_tokens: int | None = None, progress: bool = False
                  ) -> list[Hypothesis]:
        """`score_batches` with this translator's models, specials and precision.

        Raises:
            ConfigError: a language model is loaded (scores are the model's alone; the LM would be ignored).
        """
        if self.ensemble.lm is not None:
            raise ConfigError("scoring uses the model alone, not a language model: load the checkpoint without "
                              "lm_path (--lm-path) to score")
        return score_batches(self.ensemble, src_ids, tgt_ids, self.specials, batch_size=batch_size,
                             max_tokens=max_tokens, precision=self._autocast, progress=progress)

    def generate(self, sentences: Sequence[str], strategy: str = "beam", *, seed: int | None = None,
                 batch_size: int | None = None, max_tokens: int | None = None, **options: Any
                 ) -> list[list[Hypothesis]]:
        """N-best hypotheses (ids and scores) of each sentence.

        Args:
            sentences: raw source text.
            strategy: a registered decoding strategy.
            seed: seeds the sampling RNG.
            options: fields of the strategy's Config (beam, sampling_topk, ...) or of SearchConfig (nbest, lenpen,
                max_len_a, max_len_b, min_len, unkpen, no_repeat_ngram_size, temperature).
        """
        strategy_options, cfg = split_options(strategy, {k: v for k, v in options.items() if v is not None})
        strat = build_strategy(strategy, strategy_options, make_generator(seed, self.device))
        return self.generate_ids(self.encode(sentences), strat, cfg, batch_size=batch_size, max_tokens=max_tokens)

    def translate(self, sentences: Sequence[str], beam: int | None = None, **options: Any) -> list[str]:
        """The best translation of each sentence (beam search unless `strategy=` says otherwise).

        `beam=None` keeps the strategy's default; other options as in `generate`.
        """
        hyps = self.generate(sentences, beam=beam, **options)
        return self.detokenize([h[0].tokens for h in hyps])

    def sample(self, sentences: Sequence[str], beam: int = 1, **options: Any) -> list[str]:
        """One random translation per sentence (`beam` samples drawn, the best kept); options as in `generate`
        (sampling_topk, sampling_topp, temperature, seed, ...)."""
        hyps = self.generate(sentences, strategy="sampling", beam=beam, **options)
        return self.detokenize([h[0].tokens for h in hyps])

    def score(self, sources: Sequence[str], targets: Sequence[str], batch_size: int | None = None) -> list[float]:
        """Mean log-probability per target token (EOS included) of each (source, target) pair."""
        if len(sources) != len(targets):
            raise ConfigError(f"score: {len(sources)} sources but {len(targets)} targets; give one target each")
        results = self.score_ids(self.encode(sources), self.encode_targets(targets), batch_size=batch_size)
        return [r.score for r in results]


def truncate(ids: list[int], limit: int, where: str, side: str) -> list[int]:
    """`ids` cut to `limit` tokens, with a warning naming `where` when that drops any."""
    if len(ids) <= limit:
        return list(ids)
    logger.warning("%s: %d %s tokens, more than the model's %d positions allow (%d + EOS); truncated",
                   where, len(ids), side, limit + 1, limit)
    return list(ids[:limit])


def post_process(text: str, remove_bpe: str | None) -> str:
    """fairseq's --post-process/--remove-bpe: drop a BPE continuation marker ("@@ " joins "the@@ re" to "there");
    "sentencepiece" turns "▁"-marked pieces back into words."""
    if not remove_bpe:
        return text
    if remove_bpe == "sentencepiece":
        return text.replace(" ", "").replace("\u2581", " ").strip()
    return (text + " ").replace(remove_bpe, "").rstrip()


def _is_lm(model: Any) -> bool:
    return getattr(model, "source_kind", "text") == "none"


def _load_lm(lm_path: str | Path, first: Any, device: torch.device) -> Any:
    """The --lm-path model, checked to be a language model over `first`'s target vocabulary."""
    from seq2seq_cli.checkpoint import load_model

    lm = load_model(lm_path, device)
    if not _is_lm(lm.model):
        raise CheckpointError(f"--lm-path {lm_path}: a {lm.model_name} model, not a language model; train one with "
                              "--arch transformer_lm on `preprocess --only-source` data")
    how = ("preprocess --only-source -s TGT --srcdict with the model's target tokenizer file: DATA_DIR/"
           "tokenizer.TGT.json, or DATA_DIR/tokenizer.json when joined")
    if _vocab(lm.tgt_tokenizer) != _vocab(first.tgt_tokenizer):
        raise CheckpointError(f"--lm-path {lm_path}: its vocabulary differs from the target vocabulary of "
                              f"{first.path}; train the LM on text binarized with that tokenizer ({how})")
    # A joined dictionary serves both languages, so the vocabulary alone cannot tell a source-side LM.
    lm_lang, tgt_lang = lm.state.get("langs", {}).get("tgt"), first.state.get("langs", {}).get("tgt")
    if lm_lang and tgt_lang and lm_lang != tgt_lang:
        raise CheckpointError(f"--lm-path {lm_path}: a language model of {lm_lang!r}, but {first.path} writes "
                              f"{tgt_lang!r}; train the LM on {tgt_lang} text ({how})")
    return lm.model


def _vocab(tokenizer: Any) -> dict[str, int]:
    return tokenizer.hf.get_vocab(with_added_tokens=True)


def iter_chunks(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of `size` lines (0: one list of everything); the last may be shorter."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if size and len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
