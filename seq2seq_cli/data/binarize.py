"""Encode one split of parallel text in chunks and write its .bin/.idx pair (plus small file helpers for preprocess).

Only the training split is filtered: a pair with an empty side (no token after normalization) is dropped, and so
is a pair with a side longer than `max_length` tokens (counted without BOS/EOS) when that is set. Every dropped
pair is counted by reason; valid and test splits keep every line, empty ones included, so that their line i is
still the reference's line i.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from seq2seq_cli.data.indexed import IndexedDatasetWriter
from seq2seq_cli.data.text import read_chunks, read_pair_chunks
from seq2seq_cli.tokenization.base import Tokenizer

logger = logging.getLogger(__name__)

# Lines per encode_batch call: enough to keep the Rust side's threads busy; the Encoding objects of a call take
# about 10 KB per line, so 5,000 lines keep that at ~50 MB (20,000 measured ~160 MB, and no faster).
CHUNK_LINES = 5_000


class _Split(Protocol):
    name: str
    src: Path
    tgt: Path
    pairs: int


@dataclass
class SplitResult:
    """What binarizing one split produced: meta.json's entries for it and its files' checksums."""

    meta: dict[str, Any]
    checksums: dict[str, dict[str, Any]]
    filtering: dict[str, Any] = field(default_factory=dict)


def binarize_split(split: _Split, src_lang: str, tgt_lang: str, tokenizers: dict[str, Tokenizer], out: Path,
                   max_length: int | None, filter_pairs: bool, progress: bool) -> SplitResult:
    """Encode `split` (its src/tgt files) with the tokenizer of each language into out/{split}.{lang}.bin/.idx.

    With src_lang == tgt_lang (`preprocess --only-source`) the one file is encoded and written once, and its
    sentences are filtered as pairs of a sentence with itself.
    """
    src_tok, tgt_tok = tokenizers[src_lang], tokenizers[tgt_lang]
    mono = src_lang == tgt_lang
    dropped = {"empty_side": 0, "longer_than_max_length": 0}
    bar = progress_bar(split.pairs, f"binarize {split.name}", "sent", progress)
    with IndexedDatasetWriter(out / f"{split.name}.{src_lang}", id_bound(src_tok)) as src_out, \
            (contextlib.nullcontext(src_out) if mono else
             IndexedDatasetWriter(out / f"{split.name}.{tgt_lang}", id_bound(tgt_tok))) as tgt_out, bar:
        chunks = ((lines, lines) for lines in read_chunks(split.src, CHUNK_LINES)) if mono else \
            read_pair_chunks(split.src, split.tgt, CHUNK_LINES)
        for src_lines, tgt_lines in chunks:
            src_ids = src_tok.encode_batch(src_lines)
            tgt_ids = src_ids if mono else tgt_tok.encode_batch(tgt_lines)
            if filter_pairs:
                src_ids, tgt_ids = filter_pairs_by_length(src_ids, tgt_ids, max_length, dropped)
            src_out.add_batch(src_ids)
            if not mono:
                tgt_out.add_batch(tgt_ids)
            bar.update(len(src_lines))
    kept = src_out.num_sentences
    meta = {"sentences": kept, "tokens": {src_lang: src_out.num_tokens, tgt_lang: tgt_out.num_tokens},
            "inputs": {src_lang: str(split.src), tgt_lang: str(split.tgt)}}
    if mono:
        logger.info("%s: %s sentences, %s %s tokens", split.name, f"{kept:,}", f"{src_out.num_tokens:,}", src_lang)
    else:
        logger.info("%s: %s sentences, %s %s tokens, %s %s tokens", split.name, f"{kept:,}",
                    f"{src_out.num_tokens:,}", src_lang, f"{tgt_out.num_tokens:,}", tgt_lang)
    filtering: dict[str, Any] = {}
    if filter_pairs:
        filtering = {"input_pairs": split.pairs, "kept_pairs": kept, "dropped": dropped, "max_length": max_length}
        limit = f"--max-length {max_length}" if max_length else "--max-length (not set)"
        unit, empty, longer = ("lines", "empty", "longer") if mono else \
            ("pairs", "with an empty side", "with a side longer")
        logger.info("%s filter: kept %s of %s %s; dropped %s %s, %s %s than %s tokens", split.name, f"{kept:,}",
                    f"{split.pairs:,}", unit, f"{dropped['empty_side']:,}", empty,
                    f"{dropped['longer_than_max_length']:,}", longer, limit)
    return SplitResult(meta, {**src_out.checksums, **tgt_out.checksums}, filtering)


def filter_pairs_by_length(src_ids: list[list[int]], tgt_ids: list[list[int]], max_length: int | None,
                           dropped: dict[str, int]) -> tuple[list[list[int]], list[list[int]]]:
    """Drop pairs with an empty side, or a side longer than `max_length`; count each reason in `dropped`."""
    keep_src, keep_tgt = [], []
    for src, tgt in zip(src_ids, tgt_ids):
        if not src or not tgt:
            dropped["empty_side"] += 1
        elif max_length is not None and (len(src) > max_length or len(tgt) > max_length):
            dropped["longer_than_max_length"] += 1
        else:
            keep_src.append(src)
            keep_tgt.append(tgt)
    return keep_src, keep_tgt


def id_bound(tokenizer: Tokenizer) -> int:
    """One more than the largest id the tokenizer can produce (ids of a third-party file need not be dense)."""
    return max(max(tokenizer.hf.get_vocab(with_added_tokens=True).values(), default=0) + 1, tokenizer.vocab_size)


def write_text(path: Path, text: str) -> dict[str, Any]:
    """Write `text` as UTF-8 and return its checksum entry for meta.json."""
    data = text.encode("utf-8")
    path.write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON (meta.json is meant to be read by people too)."""
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def progress_bar(total: int, desc: str, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr; off with --no-progress, and (disable=None) when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=None if enabled else True,
                leave=False)


def progress(items: Iterable[Any], total: int, desc: str, unit: str, enabled: bool) -> Iterator[Any]:
    """`items`, counted on a progress bar."""
    with progress_bar(total, desc, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update()


@contextmanager
def progress_logging() -> Iterator[None]:
    """Route log records through tqdm while bars are shown, so that a log line does not break a bar."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger("seq2seq_cli")]):
        yield
