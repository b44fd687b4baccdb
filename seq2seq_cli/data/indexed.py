"""Binarized token ids on disk: `{prefix}.bin` + `{prefix}.idx`, read with O(1) random access through np.memmap.

Layout (all little-endian; docs/data-format.md has the full description):

- `.bin`: the token ids of every sentence, concatenated, no separators, no BOS/EOS; uint16 when every id fits
  (vocabulary of at most 65,536 entries), else int32.
- `.idx`: a 24-byte header, then `count` int64 sentence sizes, then `count` int64 offsets (in tokens, into .bin):
  ```
  magic    8 bytes   b"S2SIDX\\x00\\x00"
  version  uint32    INDEX_VERSION (1)
  dtype    uint8     1 = uint16, 2 = int32
  padding  3 bytes
  count    uint64    number of sentences
  ```
Sizes and offsets are stored as int64 so that the reader hands out `sizes` without a copy. The reader checks the
header, the file sizes and that offsets agree with sizes, so a truncated or damaged file fails with a
`DataFormatError` naming it instead of yielding garbage ids. Content checksums live in meta.json (datadir.py).

Limitations: a dataset is written once, front to back; there is no append to an existing one.
"""
from __future__ import annotations

import hashlib
import itertools
import struct
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from seq2seq_cli.errors import DataError, DataFormatError

MAGIC = b"S2SIDX\x00\x00"
INDEX_VERSION = 1
HEADER = struct.Struct("<8sIB3xQ")  # magic, version, dtype code, padding, sentence count
DTYPE_CODES: dict[int, type] = {1: np.uint16, 2: np.int32}
_CODE_OF = {np.dtype(v): k for k, v in DTYPE_CODES.items()}


def best_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id of a vocabulary of `vocab_size` entries fits in it, else int32."""
    return np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32)


class IndexedDatasetWriter:
    """Writes `{prefix}.bin` and `{prefix}.idx`, streaming: only the sentence sizes are held in memory.

    Use as a context manager, or call `close()`; `checksums` then maps each file name to its sha256 and size.
    """

    def __init__(self, prefix: Path, vocab_size: int) -> None:
        self.prefix = Path(prefix)
        self.dtype = best_dtype(vocab_size)
        self._bin_path = self.prefix.with_name(self.prefix.name + ".bin")
        self._idx_path = self.prefix.with_name(self.prefix.name + ".idx")
        self._bin = open(self._bin_path, "wb")
        self._bin_hash = hashlib.sha256()
        self._bin_bytes = 0
        self._sizes: list[np.ndarray] = []
        self.num_tokens = 0
        self.checksums: dict[str, dict[str, object]] = {}

    def add_batch(self, batch: Sequence[Sequence[int]]) -> None:
        """Append sentences (each a sequence of token ids, without BOS/EOS)."""
        sizes = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        total = int(sizes.sum())
        # np.fromiter over the chained lists is the fastest flattening of list[list[int]] (no intermediate list).
        flat = np.fromiter(itertools.chain.from_iterable(batch), dtype=self.dtype, count=total)
        data = flat.tobytes()
        self._bin.write(data)
        self._bin_hash.update(data)
        self._bin_bytes += len(data)
        self._sizes.append(sizes)
        self.num_tokens += total

    def add(self, ids: Sequence[int]) -> None:
        """Append one sentence."""
        self.add_batch([ids])

    @property
    def num_sentences(self) -> int:
        return sum(len(s) for s in self._sizes)

    def close(self) -> None:
        """Finish the .bin, write the .idx, and fill `checksums`."""
        if self._bin.closed:
            return
        self._bin.close()
        sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int64)
        header = HEADER.pack(MAGIC, INDEX_VERSION, _CODE_OF[self.dtype], len(sizes))
        self.checksums = write_index(self._idx_path, header, sizes, self._bin_path, self._bin_hash.hexdigest(),
                                     self._bin_bytes)

    def __enter__(self) -> "IndexedDatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # leave no complete-looking pair behind; the caller removes the half-written .bin
            self._bin.close()


def write_index(idx_path: Path, header: bytes, sizes: np.ndarray, bin_path: Path, bin_sha256: str,
                bin_bytes: int) -> dict[str, dict]:
    """Write an .idx (`header`, then int64 sizes and their offsets, little-endian); return both files' checksums.

    Shared by the token and the feature index formats, which differ only in their headers and units.
    """
    sizes = np.asarray(sizes, dtype="<i8")
    offsets = np.zeros(len(sizes), dtype="<i8")
    np.cumsum(sizes[:-1], out=offsets[1:])
    index = header + sizes.tobytes() + offsets.tobytes()
    idx_path.write_bytes(index)
    return {bin_path.name: {"sha256": bin_sha256, "bytes": bin_bytes},
            idx_path.name: {"sha256": hashlib.sha256(index).hexdigest(), "bytes": len(index)}}


class IndexedDataset:
    """Read-only access to `{prefix}.bin/.idx`: `len(ds)`, `ds[i]` (ids of sentence i), `ds.sizes`.

    `ds[i]` is a read-only view into the memory-mapped .bin in the stored dtype (uint16 or int32); convert with
    `.astype(np.int64)` before building tensors. Nothing is read until it is indexed.
    """

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = Path(prefix)
        self.idx_path = self.prefix.with_name(self.prefix.name + ".idx")
        self.bin_path = self.prefix.with_name(self.prefix.name + ".bin")
        for path in (self.idx_path, self.bin_path):
            if not path.is_file():
                raise DataError(f"{path}: no such file; re-run seq2seq preprocess to create it")
        self.dtype, count = _read_header(self.idx_path)
        index = np.memmap(self.idx_path, dtype="<i8", mode="r", offset=HEADER.size, shape=(2 * count,)) \
            if count else np.zeros(0, dtype="<i8")
        self.sizes: np.ndarray = np.asarray(index[:count])
        self._offsets: np.ndarray = np.asarray(index[count:])
        self.num_tokens = _check_index(self.idx_path, self.sizes, self._offsets)
        self._data = _map_bin(self.bin_path, self.dtype, self.num_tokens)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sentence {i} out of range for {self.bin_path} ({len(self)} sentences)")
        start = int(self._offsets[i])
        return self._data[start:start + int(self.sizes[i])]

    def __iter__(self) -> Iterable[np.ndarray]:
        return (self[i] for i in range(len(self)))


def _read_header(path: Path) -> tuple[np.dtype, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER.size)
    if len(head) >= len(MAGIC) and not head.startswith(MAGIC):
        raise DataFormatError(f"{path}: not a seq2seq_cli index file (bad magic {head[:8]!r}); "
                              f"re-run seq2seq preprocess")
    if len(head) < HEADER.size:
        raise DataFormatError(f"{path}: truncated header ({size} bytes); re-run seq2seq preprocess")
    _, version, code, count = HEADER.unpack(head)
    if version > INDEX_VERSION:
        raise DataFormatError(f"{path}: format v{version} is newer than this seq2seq_cli (reads v{INDEX_VERSION}); "
                              f"upgrade seq2seq_cli")
    if version < 1 or code not in DTYPE_CODES:
        raise DataFormatError(f"{path}: damaged header (version {version}, dtype code {code}); "
                              f"re-run seq2seq preprocess")
    expected = HEADER.size + 16 * count
    if size != expected:
        raise DataFormatError(f"{path}: {size} bytes, expected {expected} for {count} sentences (truncated or "
                              f"damaged); re-run seq2seq preprocess")
    return np.dtype(DTYPE_CODES[code]), count


def _check_index(path: Path, sizes: np.ndarray, offsets: np.ndarray) -> int:
    """Offsets must start at 0 and follow the sizes; returns the total number of tokens."""
    if len(sizes) == 0:
        return 0
    ok = sizes.min() >= 0 and offsets[0] == 0 and np.array_equal(offsets[1:], offsets[:-1] + sizes[:-1])
    if not ok:
        raise DataFormatError(f"{path}: sizes and offsets disagree (damaged index); re-run seq2seq preprocess")
    return int(offsets[-1] + sizes[-1])


def _map_bin(path: Path, dtype: np.dtype, num_tokens: int) -> np.ndarray:
    expected = num_tokens * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise DataFormatError(f"{path}: {actual} bytes, expected {expected} ({num_tokens} {dtype.name} ids per the "
                              f".idx); the file is truncated or damaged; re-run seq2seq preprocess")
    if num_tokens == 0:  # mmap cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype.newbyteorder("<"), mode="r", shape=(num_tokens,))
