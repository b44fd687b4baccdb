"""`seq2seq preprocess`: train (or load) tokenizers and binarize parallel text into a DATA_DIR.

Steps: check the flags; find every input file, check it is UTF-8 and count its lines (source and target must
agree); check --destdir; get the tokenizer(s): trained from the training text (all of it, or a uniform random
sample of --tokenizer-train-lines pairs), or loaded from --tokenizer-path / --srcdict / --tgtdict; then encode each
split in chunks with `encode_batch` and write the .bin/.idx files, meta.json last, into a staging folder that is
renamed to --destdir at the end.

Memory stays bounded: the corpus is streamed (tokenizer training reads an iterator; encoding reads CHUNK_LINES pairs
at a time), so peak memory depends on the vocabulary and the chunk, not on the corpus size.

Threads: `--workers N` is the number of threads the Rust tokenizer library (Rayon) may use for training and
encoding; Python itself waits meanwhile, so the run keeps N cores busy. N = 1 switches the library's parallelism off.
Rayon reads RAYON_NUM_THREADS once per process, when its pool starts: a second run in the same Python process keeps
the first run's thread count.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterator

from seq2seq_cli import __version__
from seq2seq_cli.config import to_dict
from seq2seq_cli.data import binarize
from seq2seq_cli.data.datadir import (FORMAT_VERSION, META_FILE, check_destination, publish, seal_meta,
                                      staging_dir)
from seq2seq_cli.data.text import check_parallel, count_lines, read_sampled_lines, sample_indices
from seq2seq_cli.errors import ConfigError, DataError
from seq2seq_cli.registry import TOKENIZERS
from seq2seq_cli.tokenization.base import Tokenizer
from seq2seq_cli.tokenization.build import load_tokenizer_file, special_tokens, tokenizer_config
from seq2seq_cli.tokenization.hf import NoneTokenizer

logger = logging.getLogger(__name__)


def _opt(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class PreprocessConfig:
    """Everything `seq2seq preprocess` needs (flag names are fairseq's where fairseq has the flag)."""

    source_lang: str | None = _opt(None, "Source language: the suffix of the source text files.")
    target_lang: str | None = _opt(None, "Target language: the suffix of the target text files (required unless "
                                         "--only-source).")
    trainpref: str | None = _opt(None, "Training file prefix: PREFIX.{src,tgt}.")
    validpref: str | None = _opt(None, "Validation prefix(es), comma-separated: valid, valid1, valid2, ...")
    testpref: str | None = _opt(None, "Test prefix(es), comma-separated: test, test1, ...")
    destdir: Path = _opt(Path("data-bin"), "The DATA_DIR to write.")
    workers: int = _opt(1, "Threads the Rust tokenizer library (Rayon) may use to train and encode; the run keeps "
                           "this many cores busy (1 = no parallelism).")
    joined_dictionary: bool = _opt(False, "One tokenizer for both languages, trained on both sides.")
    tokenizer: str = _opt("bpe", "Tokenizer to train (see `seq2seq list tokenizer`).")
    vocab_size: int | None = _opt(None, "Vocabulary size [default: the tokenizer's].")
    min_frequency: int | None = _opt(None, "Minimum frequency of a merge/token [default: the tokenizer's].")
    normalization: str | None = _opt(None, "Unicode normalization nfkc|nfc|nfd|nfkd|none [default: the "
                                           "tokenizer's].")
    lowercase: bool | None = _opt(None, "Lowercase before tokenizing [default: the tokenizer's].")
    tokenizer_opt: tuple[str, ...] = _opt((), "Other fields of the tokenizer's Config, KEY=VALUE.")
    tokenizer_train_lines: int | None = _opt(None, "Train the tokenizer on a uniform random sample of this many "
                                                   "training pairs (seeded by --seed) instead of all of them.")
    seed: int = _opt(1, "Seed of the --tokenizer-train-lines sample.")
    tokenizer_path: Path | None = _opt(None, "Use this tokenizer.json for both languages instead of training one.")
    srcdict: Path | None = _opt(None, "Source dictionary: a fairseq dict.txt (or a tokenizer.json).")
    tgtdict: Path | None = _opt(None, "Target dictionary: a fairseq dict.txt (or a tokenizer.json).")
    bos_token: str | None = _opt(None, "Name of the begin-of-sentence token [default: <s>].")
    pad_token: str | None = _opt(None, "Name of the padding token [default: <pad>].")
    eos_token: str | None = _opt(None, "Name of the end-of-sentence token [default: </s>].")
    unk_token: str | None = _opt(None, "Name of the unknown token [default: <unk>].")
    max_length: int | None = _opt(None, "Drop training pairs with a side longer than this many tokens.")
    only_source: bool = _opt(False, "Monolingual text for a language model (`--arch transformer_lm`): read "
                                    "PREFIX.SRC only, with no -t; --srcdict reuses another model's target "
                                    "tokenizer, so that the LM can be fused with it (generate --lm-path).")
    audio: bool = _opt(False, "The source side is speech: each prefix names a TSV manifest PREFIX.tsv (columns id, "
                              "audio, n_frames, tgt_text; docs/speech.md); needs the `speech` extra.")
    force: bool = _opt(False, "Replace --destdir if it already holds data.")
    progress: bool = _opt(True, "Show progress bars on stderr (when it is a terminal).")


@dataclass
class SplitInput:
    """One split to binarize: its name and its two text files."""

    name: str
    flag: str
    src: Path
    tgt: Path
    pairs: int = 0


@dataclass
class TokenizerPlan:
    """Where the tokenizer serving `langs` comes from, and the file it is saved to."""

    langs: list[str]
    file: str
    source: Path | None  # None: train it
    config: Any = None  # the Config of the tokenizer to train
    tokenizer: Tokenizer | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def run_preprocess(cfg: PreprocessConfig) -> Path:
    """Write the DATA_DIR described by `cfg` and return its path.

    Raises:
        ConfigError: bad flags, --destdir holding other data without --force, a tokenizer problem.
        UnknownComponentError: --tokenizer names no registered tokenizer.
        DataError: a missing, non-UTF-8 or misaligned input file.
    """
    if cfg.audio and cfg.only_source:
        raise ConfigError("--only-source reads text for a language model; it does not combine with --audio")
    if cfg.audio:
        from seq2seq_cli.speech.preprocess import run_audio_preprocess

        return run_audio_preprocess(cfg)
    start = time.perf_counter()
    _validate(cfg)
    plans = _plan_tokenizers(cfg)
    splits = _resolve_splits(cfg)
    check_destination(cfg.destdir, cfg.force, [p for s in splits for p in (s.src, s.tgt)])
    for split in splits:  # one streaming pass per file: exists, UTF-8, line counts agree
        split.pairs = count_lines(split.src, split.flag) if cfg.only_source else \
            check_parallel(split.src, split.tgt, split.flag)
    meta = write_datadir(cfg, lambda staging: _build(cfg, splits, plans, staging))
    logger.info("wrote %s (%s) in %.1f s", cfg.destdir, ", ".join(meta["splits"]), time.perf_counter() - start)
    return cfg.destdir


def write_datadir(cfg: PreprocessConfig, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run `build(staging)` (which writes the files and returns meta.json's content) in a staging folder, write
    meta.json last, and rename the folder to --destdir; on any failure the staging folder is removed."""
    staging = staging_dir(cfg.destdir)
    try:
        with tokenizer_threads(cfg.workers), binarize.progress_logging():
            meta = seal_meta(build(staging))
            binarize.write_json(staging / META_FILE, meta)
        publish(staging, cfg.destdir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):  # e.g. ENOSPC: the staging folder is gone, --destdir was never touched
            where = f"{exc.filename}: " if exc.filename else ""
            raise DataError(f"--destdir {cfg.destdir}: cannot write the DATA_DIR ({where}{exc.strerror or exc}); "
                            "nothing was changed there (earlier data, if any, is intact); free disk space or choose "
                            "another --destdir, then run again") from None
        raise
    return meta


def _validate(cfg: PreprocessConfig) -> None:
    if cfg.only_source:
        _validate_monolingual(cfg)
    elif not cfg.source_lang or not cfg.target_lang:
        raise ConfigError("both -s/--source-lang and -t/--target-lang are required")
    elif cfg.source_lang == cfg.target_lang:
        raise ConfigError(f"-s/--source-lang and -t/--target-lang are both {cfg.source_lang!r}; they must differ")
    if not (cfg.trainpref or cfg.validpref or cfg.testpref):
        raise ConfigError("nothing to preprocess: give --trainpref, --validpref and/or --testpref")
    for flag, value in (("--workers", cfg.workers), ("--tokenizer-train-lines", cfg.tokenizer_train_lines),
                        ("--max-length", cfg.max_length)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, not {value}")
    if cfg.tokenizer_path and (cfg.srcdict or cfg.tgtdict):
        raise ConfigError("--tokenizer-path gives the tokenizer of both languages; drop --srcdict/--tgtdict")
    if cfg.joined_dictionary and cfg.srcdict and cfg.tgtdict:
        raise ConfigError("--joined-dictionary uses one dictionary: give --srcdict or --tgtdict, not both")


def _validate_monolingual(cfg: PreprocessConfig) -> None:
    """--only-source: one language (-s), so no target-side flag applies."""
    if not cfg.source_lang:
        raise ConfigError("--only-source needs -s/--source-lang: the suffix of the text files (PREFIX.LANG)")
    for flag, value in (("-t/--target-lang", cfg.target_lang), ("--tgtdict", cfg.tgtdict),
                        ("--joined-dictionary", cfg.joined_dictionary)):
        if value:
            raise ConfigError(f"--only-source writes one language ({cfg.source_lang}); drop {flag}")


def _plan_tokenizers(cfg: PreprocessConfig) -> list[TokenizerPlan]:
    """Decide which tokenizer serves which language; checks the tokenizer name early when one is trained."""
    src, tgt = cfg.source_lang, cfg.target_lang
    if cfg.only_source:
        plans = [TokenizerPlan([src], f"tokenizer.{src}.json", cfg.tokenizer_path or cfg.srcdict)]
    elif cfg.tokenizer_path or cfg.joined_dictionary:
        if cfg.tokenizer_path and not cfg.joined_dictionary:
            logger.info("--tokenizer-path: one tokenizer for both languages (a joined dictionary)")
        plans = [TokenizerPlan([src, tgt], "tokenizer.json", cfg.tokenizer_path or cfg.srcdict or cfg.tgtdict)]
    else:
        plans = [TokenizerPlan([src], f"tokenizer.{src}.json", cfg.srcdict),
                 TokenizerPlan([tgt], f"tokenizer.{tgt}.json", cfg.tgtdict)]
    training = [plan for plan in plans if plan.source is None]
    if training:
        if not cfg.trainpref:
            raise ConfigError(f"--trainpref is needed to train the {'+'.join(training[0].langs)} tokenizer "
                              f"(or give --tokenizer-path, --srcdict/--tgtdict)")
        cfg_tok = tokenizer_config(cfg.tokenizer, _common_flags(cfg), cfg.tokenizer_opt)
        for plan in training:
            plan.config = cfg_tok
            plan.meta = {"name": cfg.tokenizer, "config": to_dict(cfg_tok)}
    else:
        given = [flag for flag, value in _common_flags(cfg).items() if value is not None]
        given += ["--tokenizer-opt"] * bool(cfg.tokenizer_opt) + ["--tokenizer-train-lines"] * bool(
            cfg.tokenizer_train_lines)
        if given:
            raise ConfigError(f"{', '.join(given)} only apply when a tokenizer is trained, and every tokenizer "
                              f"here comes from a file; drop them")
    return plans


def _common_flags(cfg: PreprocessConfig) -> dict[str, Any]:
    return {"--vocab-size": cfg.vocab_size, "--min-frequency": cfg.min_frequency,
            "--normalization": cfg.normalization, "--lowercase": cfg.lowercase}


def _resolve_splits(cfg: PreprocessConfig) -> list[SplitInput]:
    """The splits to write, with fairseq's names: train, valid, valid1, ..., test, test1, ..."""
    splits = []
    for flag, base, prefixes in (("--trainpref", "train", cfg.trainpref), ("--validpref", "valid", cfg.validpref),
                                 ("--testpref", "test", cfg.testpref)):
        names = [p.strip() for p in (prefixes or "").split(",")] if prefixes else []
        if base == "train" and len(names) > 1:
            raise ConfigError(f"--trainpref takes one prefix, not {len(names)}")
        for i, prefix in enumerate(names):
            if not prefix:
                raise ConfigError(f"{flag} {prefixes!r}: empty prefix in the list")
            src = Path(f"{prefix}.{cfg.source_lang}")
            # --only-source: the one file is both sides of the split (written once: binarize.binarize_split)
            tgt = src if cfg.only_source else Path(f"{prefix}.{cfg.target_lang}")
            splits.append(SplitInput(base if i == 0 else f"{base}{i}", flag, src, tgt))
    return splits


def _build(cfg: PreprocessConfig, splits: list[SplitInput], plans: list[TokenizerPlan], out: Path) -> dict:
    """Tokenizers, then every split, into the staging folder `out`; returns meta.json's content."""
    files: dict[str, dict[str, Any]] = {}
    train = next((s for s in splits if s.name == "train"), None)
    for plan in plans:
        plan.tokenizer = _get_tokenizer(cfg, plan, train)
        files[plan.file] = binarize.write_text(out / plan.file, plan.tokenizer.to_json())
    by_lang = {lang: plan for plan in plans for lang in plan.langs}
    tokenizers = {lang: plan.tokenizer for lang, plan in by_lang.items()}
    tgt_lang = cfg.source_lang if cfg.only_source else cfg.target_lang
    results = {split.name: binarize.binarize_split(split, cfg.source_lang, tgt_lang, tokenizers, out,
                                                   max_length=cfg.max_length, filter_pairs=split.name == "train",
                                                   progress=cfg.progress)
               for split in splits}
    return datadir_meta(cfg, len(plans) == 1, {lang: {"file": plan.file, **plan.meta,
                                                      "vocab_size": plan.tokenizer.vocab_size}
                                               for lang, plan in by_lang.items()}, results, files)


def datadir_meta(cfg: PreprocessConfig, joined: bool, tokenizers: dict[str, Any],
                 results: dict[str, binarize.SplitResult], files: dict[str, Any]) -> dict[str, Any]:
    """meta.json's content (docs/data-format.md) from the tokenizer entries and each split's result; `files`
    (the tokenizer files' checksums) gains the splits' files."""
    for result in results.values():
        files.update(result.checksums)
    mono = {"monolingual": True} if cfg.only_source else {}  # langs src == tgt: one language, one file a split
    return {
        "format_version": FORMAT_VERSION, "tool_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "langs": {"src": cfg.source_lang, "tgt": cfg.target_lang or cfg.source_lang}, **mono,
        "joined": joined, "tokenizers": tokenizers,
        "splits": {name: result.meta for name, result in results.items()},
        "filtering": {"train": results["train"].filtering} if "train" in results else {},
        "files": files, "checksum": "sha256",
        "preprocess": to_dict(cfg),
    }


def _get_tokenizer(cfg: PreprocessConfig, plan: TokenizerPlan, train: SplitInput | None) -> Tokenizer:
    names = {"bos": cfg.bos_token, "pad": cfg.pad_token, "eos": cfg.eos_token, "unk": cfg.unk_token}
    if plan.source is not None:
        flag = "--tokenizer-path" if cfg.tokenizer_path else "--srcdict" if plan.source == cfg.srcdict else "--tgtdict"
        tokenizer = load_tokenizer_file(plan.source, flag, names)
        plan.meta = {"name": "none" if isinstance(tokenizer, NoneTokenizer) else None, "source": str(plan.source)}
        logger.info("%s tokenizer: %s (%d entries)", "+".join(plan.langs), plan.source, tokenizer.vocab_size)
        return tokenizer
    assert train is not None  # _plan_tokenizers checked --trainpref
    if train.pairs == 0:
        files = str(train.src) if cfg.only_source else f"{train.src} and {train.tgt}"
        raise DataError(f"{files} {'is' if cfg.only_source else 'are'} empty (--trainpref): nothing to train the "
                        "tokenizer on")
    indices = sample_indices(train.pairs, cfg.tokenizer_train_lines, cfg.seed) if cfg.tokenizer_train_lines else None
    used = len(indices) if indices is not None else train.pairs
    files = [train.src if lang == cfg.source_lang else train.tgt for lang in plan.langs]
    plan.meta["trained_on"] = {"pairs": used, "lines": used * len(files), "sample": None if indices is None else
                               {"method": "uniform", "pairs": used, "of": train.pairs, "seed": cfg.seed}}
    how = (f"a uniform random sample of {used:,} of the {train.pairs:,} training pairs (--tokenizer-train-lines, "
           f"--seed {cfg.seed})" if indices is not None else f"all {train.pairs:,} training pairs")
    logger.info("training the %s tokenizer for %s on %s of %s", cfg.tokenizer, "+".join(plan.langs), how,
                " + ".join(map(str, files)))
    lines = binarize.progress(chain.from_iterable(read_sampled_lines(f, indices) for f in files), used * len(files),
                              "tokenizer", "line", cfg.progress)
    specials = special_tokens(**names)
    cls = TOKENIZERS.get(cfg.tokenizer, flag="--tokenizer")
    tokenizer = cls.train(plan.config, lines, used * len(files), specials)
    logger.info("%s tokenizer: %d entries", "+".join(plan.langs), tokenizer.vocab_size)
    return tokenizer


@contextmanager
def tokenizer_threads(workers: int) -> Iterator[None]:
    """Limit the Rust tokenizer library to `workers` threads while inside (see the module docstring)."""
    names = ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if workers > 1 else "false"
    os.environ["RAYON_NUM_THREADS"] = str(workers)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
