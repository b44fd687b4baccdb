"""Binarized 2-D float16 arrays (speech features): `{prefix}.bin` + `{prefix}.idx`, read through np.memmap.

The same family as the token ids of indexed.py (a .bin of concatenated data, an .idx of sizes and offsets, a
magic and a version), with its own magic so that neither reader mistakes the other's files:

- `.bin`: the frames of every utterance, concatenated, row-major float16 little-endian; utterance i is an
  (n_frames_i, dim) array.
- `.idx`: a 24-byte header, then `count` int64 frame counts, then `count` int64 offsets (in frames, into .bin):
  ```
  magic    8 bytes   b"S2SFEAT\\x00"
  version  uint32    FEATURE_INDEX_VERSION (1)
  dim      uint32    values per frame (80 for 80-dimensional filterbanks)
  count    uint64    number of utterances
  ```
So each array's shape, (sizes[i], dim), is in the index. The reader checks the header, the file sizes and that the
offsets follow the sizes, so a truncated or damaged file fails with a `DataFormatError` naming it. Content
checksums live in meta.json, as for token files.

float16 keeps about 3 significant digits, plenty for normalized log-mel energies (|x| rarely above 10), and
halves the disk and page-cache footprint of float32.
"""
from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from seq2seq_cli.data.indexed import _check_index, write_index
from seq2seq_cli.errors import DataError, DataFormatError

MAGIC = b"S2SFEAT\x00"
FEATURE_INDEX_VERSION = 1
HEADER = struct.Struct("<8sIIQ")  # magic, version, dim, utterance count
DTYPE = np.dtype("<f2")


class FeatureDatasetWriter:
    """Writes `{prefix}.bin/.idx` one (n_frames, dim) array at a time; only the frame counts stay in memory.

    Use as a context manager (or call `close()`); `checksums` then maps each file name to its sha256 and size.
    """

    def __init__(self, prefix: Path, dim: int) -> None:
        self.prefix, self.dim = Path(prefix), dim
        self._bin_path = self.prefix.with_name(self.prefix.name + ".bin")
        self._idx_path = self.prefix.with_name(self.prefix.name + ".idx")
        self._bin = open(self._bin_path, "wb")
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._sizes: list[int] = []
        self.checksums: dict[str, dict[str, object]] = {}

    def add(self, array: np.ndarray) -> None:
        """Append one utterance, shape (n_frames, dim); stored as float16."""
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ValueError(f"expected an (n, {self.dim}) array, got shape {array.shape}")
        data = np.ascontiguousarray(array, dtype=DTYPE).tobytes()
        self._bin.write(data)
        self._hash.update(data)
        self._bytes += len(data)
        self._sizes.append(array.shape[0])

    @property
    def num_frames(self) -> int:
        return sum(self._sizes)

    def close(self) -> None:
        """Finish the .bin, write the .idx, fill `checksums`."""
        if self._bin.closed:
            return
        self._bin.close()
        header = HEADER.pack(MAGIC, FEATURE_INDEX_VERSION, self.dim, len(self._sizes))
        self.checksums = write_index(self._idx_path, header, np.asarray(self._sizes), self._bin_path,
                                     self._hash.hexdigest(), self._bytes)

    def __enter__(self) -> "FeatureDatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller discards the staging folder
            self._bin.close()


class FeatureDataset:
    """Read-only `{prefix}.bin/.idx`: `len(ds)`, `ds[i]` (a read-only (n_frames, dim) float16 view), `ds.sizes`."""

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = Path(prefix)
        self.idx_path = self.prefix.with_name(self.prefix.name + ".idx")
        self.bin_path = self.prefix.with_name(self.prefix.name + ".bin")
        for path in (self.idx_path, self.bin_path):
            if not path.is_file():
                raise DataError(f"{path}: no such file; re-run seq2seq preprocess to create it")
        self.dim, count = _read_header(self.idx_path)
        index = np.fromfile(self.idx_path, dtype="<i8", offset=HEADER.size, count=2 * count)
        self.sizes: np.ndarray = index[:count]
        self._offsets: np.ndarray = index[count:]
        self.num_frames = _check_index(self.idx_path, self.sizes, self._offsets)  # offsets follow the sizes
        expected = self.num_frames * self.dim * DTYPE.itemsize
        actual = self.bin_path.stat().st_size
        if actual != expected:
            raise DataFormatError(f"{self.bin_path}: {actual} bytes, expected {expected} ({self.num_frames} frames "
                                  f"of {self.dim} float16 values per the .idx); the file is truncated or damaged; "
                                  "re-run seq2seq preprocess")
        self._data = np.memmap(self.bin_path, dtype=DTYPE, mode="r", shape=(self.num_frames, self.dim)) \
            if self.num_frames else np.zeros((0, self.dim), dtype=DTYPE)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"utterance {i} out of range for {self.bin_path} ({len(self)} utterances)")
        start = int(self._offsets[i])
        return self._data[start:start + int(self.sizes[i])]


def _read_header(path: Path) -> tuple[int, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER.size)
    if len(head) >= len(MAGIC) and not head.startswith(MAGIC):
        raise DataFormatError(f"{path}: not a seq2seq_cli feature index (bad magic {head[:8]!r}); "
                              "re-run seq2seq preprocess")
    if len(head) < HEADER.size:
        raise DataFormatError(f"{path}: truncated header ({size} bytes); re-run seq2seq preprocess")
    _, version, dim, count = HEADER.unpack(head)
    if version > FEATURE_INDEX_VERSION:
        raise DataFormatError(f"{path}: feature format v{version} is newer than this seq2seq_cli (reads "
                              f"v{FEATURE_INDEX_VERSION}); upgrade seq2seq_cli")
    if version < 1 or dim < 1:
        raise DataFormatError(f"{path}: damaged header (version {version}, dim {dim}); re-run seq2seq preprocess")
    expected = HEADER.size + 16 * count
    if size != expected:
        raise DataFormatError(f"{path}: {size} bytes, expected {expected} for {count} utterances (truncated or "
                              "damaged); re-run seq2seq preprocess")
    return dim, count
