"""Streaming reads of plain-text corpora: one sentence per line, UTF-8.

Lines end at "\\n" only; a trailing "\\r" is dropped too (CRLF files), and a last line without a newline counts.
A lone "\\r" or a Unicode line separator inside a line stays part of it, so `count_lines` (which counts bytes) and
`read_lines` (which iterates text) always agree, and line i of a source file stays aligned with line i of its target.

Nothing here holds a whole file in memory: files are scanned in blocks and read line by line.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

from seq2seq_cli.errors import DataError

BLOCK_BYTES = 1 << 22  # 4 MiB blocks for the counting/validation scan


def count_lines(path: Path, flag: str | None = None) -> int:
    """Number of lines in `path`, checking on the way that it is valid UTF-8.

    Raises:
        DataError: the file is missing (naming `flag`, e.g. "--trainpref", when given), or a line is not UTF-8
            (naming the file and the 1-based line number).
    """
    path = Path(path)
    if not path.is_file():
        where = f" (from {flag})" if flag else ""
        raise DataError(f"{path}: no such file{where}; check the prefix and the language suffixes")
    lines, tail = 0, b""
    with open(path, "rb") as f:
        while block := f.read(BLOCK_BYTES):
            block = tail + block
            cut = block.rfind(b"\n") + 1  # validate whole lines only: a character may straddle two blocks
            _check_utf8(path, block[:cut], lines)
            lines += block.count(b"\n", 0, cut)
            tail = block[cut:]
    if tail:
        _check_utf8(path, tail, lines)
        lines += 1
    return lines


def _check_utf8(path: Path, data: bytes, lines_before: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 ({exc.reason} at byte {column} of the line); "
                        f"convert the file to UTF-8 (e.g. with iconv)") from None


def read_lines(path: Path) -> Iterator[str]:
    """The lines of `path` without their line endings, streamed."""
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            yield line.rstrip("\n").removesuffix("\r")


def check_parallel(src: Path, tgt: Path, flag: str | None = None) -> int:
    """Count both files' lines; they must match. Returns the number of sentence pairs.

    Raises:
        DataError: a file is missing or not UTF-8, or the line counts differ (both files and counts named).
    """
    n_src, n_tgt = count_lines(src, flag), count_lines(tgt, flag)
    if n_src != n_tgt:
        raise DataError(f"{src} has {n_src} lines but {tgt} has {n_tgt}; line i of both files must be the same "
                        f"sentence pair")
    return n_src


def read_chunks(path: Path, chunk_lines: int) -> Iterator[list[str]]:
    """The file's lines in chunks of up to `chunk_lines`."""
    lines = read_lines(path)
    while chunk := [line for _, line in zip(range(chunk_lines), lines)]:
        yield chunk


def read_pair_chunks(src: Path, tgt: Path, chunk_lines: int) -> Iterator[tuple[list[str], list[str]]]:
    """(source lines, target lines) in aligned chunks of up to `chunk_lines` pairs."""
    src_it, tgt_it = read_lines(src), read_lines(tgt)
    while True:
        src_chunk = [line for _, line in zip(range(chunk_lines), src_it)]
        tgt_chunk = [line for _, line in zip(range(len(src_chunk)), tgt_it)]
        if not src_chunk:
            return
        yield src_chunk, tgt_chunk


def sample_indices(n_lines: int, n_sample: int, seed: int) -> list[int] | None:
    """A uniform random sample (without replacement) of `n_sample` line numbers out of `n_lines`, sorted.

    None when the sample would be the whole file. The line count is known beforehand (count_lines), so this is
    an exact uniform sample that needs no reservoir; it costs O(n_sample) memory.
    """
    if n_sample >= n_lines:
        return None
    return sorted(random.Random(seed).sample(range(n_lines), n_sample))


def read_sampled_lines(path: Path, indices: list[int] | None) -> Iterator[str]:
    """The lines of `path` whose 0-based numbers are in the sorted list `indices` (all lines if None)."""
    if indices is None:
        yield from read_lines(path)
        return
    wanted = iter(indices)
    next_wanted = next(wanted, None)
    for i, line in enumerate(read_lines(path)):
        if i == next_wanted:
            yield line
            next_wanted = next(wanted, None)
            if next_wanted is None:
                return
