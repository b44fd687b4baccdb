"""Batches of sentence pairs: size filtering, length-bucketed token-budget batching, and a resumable epoch iterator.

- `PairDataset` pairs the source and target `IndexedDataset`s of one split and collates a list of indices into a
  `Batch` (source + eos, bos + target, target + eos; right-padded with pad).
- `filter_by_size` splits the indices into kept and skipped (longer than the model's positions), so the trainer
  can count and report what it drops before the first update instead of failing mid-epoch.
- `batch_by_size` sorts by length and cuts the sorted list into batches whose cost, rows x longest side (padding
  counts, as in fairseq), stays within `--max-tokens`, with at most `--batch-size` rows. The batch list is made
  once; each epoch only shuffles its order (`EpochBatchIterator`), as fairseq does.

Limitations: when sharded across ranks, the batch list is padded by repeating batches from the start of the
epoch's order, so with W ranks up to W - 1 batches are seen twice in an epoch (fairseq uses dummy batches).
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from seq2seq_cli.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """A collated batch of sentence pairs.

    Shape:
        src_tokens: (B, S) int64, source ids + eos, right-padded with pad.
        tgt_in: (B, T) int64, bos + target ids, right-padded.
        tgt_out: (B, T) int64, target ids + eos, right-padded.
        ids: (B,) int64, the pairs' indices in their split.
    """

    src_tokens: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    ids: torch.Tensor
    ntokens: int  # non-pad target tokens (len(ids) + sum of target lengths)
    nsentences: int

    def to(self, device: Any) -> "Batch":
        """The same batch with its tensors on `device`."""
        return Batch(self.src_tokens.to(device), self.tgt_in.to(device), self.tgt_out.to(device),
                     self.ids.to(device), self.ntokens, self.nsentences)


class PairDataset:
    """Source and target IndexedDatasets of one split, with the special ids; sizes include the added eos/bos."""

    def __init__(self, src: Any, tgt: Any, *, bos: int, eos: int, pad: int) -> None:
        if len(src) != len(tgt):
            raise DataError(f"source and target datasets differ in length ({len(src)} vs {len(tgt)} sentences); "
                            "run `seq2seq preprocess` again")
        self.src, self.tgt = src, tgt
        self.bos, self.eos, self.pad = bos, eos, pad
        self.src_sizes = np.asarray(src.sizes, dtype=np.int64) + 1  # + eos
        self.tgt_sizes = np.asarray(tgt.sizes, dtype=np.int64) + 1  # + eos (tgt_out) or bos (tgt_in)

    def __len__(self) -> int:
        return len(self.src)

    def collate(self, indices: np.ndarray) -> Batch:
        """The pairs at `indices` (in that order) as a padded `Batch`."""
        indices = np.asarray(indices, dtype=np.int64)
        n = len(indices)
        tgt_len = self.tgt_sizes[indices]
        tgt_in = np.full((n, int(tgt_len.max(initial=1))), self.pad, dtype=np.int64)
        tgt_out = np.full_like(tgt_in, self.pad)
        for row, i in enumerate(indices.tolist()):
            t = self.tgt[i]
            tgt_in[row, 0] = self.bos
            tgt_in[row, 1:len(t) + 1] = t
            tgt_out[row, :len(t)] = t
            tgt_out[row, len(t)] = self.eos
        return Batch(self.collate_source(indices), torch.from_numpy(tgt_in), torch.from_numpy(tgt_out),
                     torch.from_numpy(indices.copy()), int(tgt_len.sum()), n)

    def collate_source(self, indices: np.ndarray) -> torch.Tensor:
        """Source ids + eos of the pairs at `indices`, right-padded: (B, S) int64 (speech overrides this)."""
        src = np.full((len(indices), int(self.src_sizes[indices].max(initial=1))), self.pad, dtype=np.int64)
        for row, i in enumerate(indices.tolist()):
            s = self.src[i]
            src[row, :len(s)] = s
            src[row, len(s)] = self.eos
        return torch.from_numpy(src)


def filter_by_size(dataset: PairDataset, max_source_positions: int,
                   max_target_positions: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices, skipped indices): pairs whose source or target (with eos/bos) exceed the limits are skipped."""
    fits = (dataset.src_sizes <= max_source_positions) & (dataset.tgt_sizes <= max_target_positions)
    return np.flatnonzero(fits).astype(np.int64), np.flatnonzero(~fits).astype(np.int64)


def batch_by_size(indices: np.ndarray, src_sizes: np.ndarray, tgt_sizes: np.ndarray, *, max_tokens: int | None,
                  max_sentences: int | None, seed: int) -> list[np.ndarray]:
    """Cut `indices` into length-bucketed batches.

    Pairs are sorted by their longer side, then target, then source length, with seeded random tie-breaking, so
    neighbours have similar lengths. Each batch is the longest run of sorted pairs whose cost, rows x longest side
    (padding counts), is at most `max_tokens`, with at most `max_sentences` rows.

    Args:
        indices: the pairs to batch (e.g. the kept indices of `filter_by_size`).
        src_sizes, tgt_sizes: lengths of every pair of the split, with eos/bos, indexed by pair index.
        max_tokens: token budget of a batch, or None for no budget.
        max_sentences: most rows in a batch, or None for no limit.
        seed: seeds the tie-breaking among pairs of equal lengths.

    Returns:
        Batches of pair indices (int64), in order of increasing length.

    Raises:
        ConfigError: neither limit is given, or a pair alone exceeds `max_tokens`.
    """
    if max_tokens is None and max_sentences is None:
        raise ConfigError("give --max-tokens or --batch-size (or both) to size the batches")
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    src, tgt = np.asarray(src_sizes)[indices], np.asarray(tgt_sizes)[indices]
    longest = np.maximum(src, tgt)
    if max_tokens is not None and longest.max() > max_tokens:
        bad = int(np.argmax(longest))
        raise ConfigError(
            f"sentence pair {int(indices[bad])} has {int(src[bad])} source and {int(tgt[bad])} target tokens "
            f"(with eos/bos), more than --max-tokens {max_tokens}; raise --max-tokens, or lower "
            "--max-source-positions / --max-target-positions with --skip-invalid-size-inputs-valid-test")
    tie = np.random.RandomState(seed).random_sample(len(indices))
    order = np.lexsort((tie, src, tgt, longest))  # last key is the primary one
    lengths = longest[order].tolist()
    cap = max_sentences if max_sentences is not None else len(order)
    budget = max_tokens if max_tokens is not None else float("inf")
    starts = _batch_starts(lengths, budget, cap)
    sorted_indices = indices[order]
    return [sorted_indices[a:b] for a, b in zip(starts, starts[1:] + [len(order)])]


def _batch_starts(lengths: list[int], budget: float, cap: int) -> list[int]:
    """Start positions of the greedy batches over non-decreasing `lengths`.

    With sorted lengths, the cost of rows i..j is (j - i + 1) * lengths[j], which grows with j, so the end of
    each batch is found by binary search: O(batches x log n) Python steps instead of one per sentence.
    """
    starts, i, n = [], 0, len(lengths)
    while i < n:
        hi = min(n, i + cap)
        # largest j in [i, hi) with (j - i + 1) * lengths[j] <= budget; at least i itself (checked by the caller)
        j = bisect.bisect_right(range(i, hi), budget, key=lambda k: (k - i + 1) * lengths[k]) + i
        starts.append(i)
        i = max(j, i + 1)
    return starts


class _BatchList(torch.utils.data.Dataset):
    """A torch Dataset whose items are collated batches, for a DataLoader with worker processes."""

    def __init__(self, dataset: PairDataset, batches: list[np.ndarray]) -> None:
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return self.dataset.collate(self.batches[i])


def _identity(item: Any) -> Any:
    return item


class EpochBatchIterator:
    """Deterministic batches for every epoch, sharded across ranks and resumable mid-epoch.

    The batch list is fixed; each epoch's *order* is a permutation from numpy RandomState(seed + epoch) (identity
    when `shuffle` is False). Rank r takes batches r, r + W, ... of that order; the order is padded by repetition
    so every rank has the same count (DDP training needs it), unless `even_shards` is False (validation, where
    a repeated batch would count twice in the summed loss and ranks only meet at the final all_reduce).
    `next_epoch_itr()` starts the next epoch, or after `load_state_dict` (and on the first call) continues the
    current one from `iterations_in_epoch`.
    """

    def __init__(self, dataset: PairDataset, batches: list[np.ndarray], *, seed: int, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1, epoch: int = 1, num_workers: int = 0,
                 even_shards: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside a world of size {world_size}")
        if num_workers < 0:
            raise ConfigError(f"--num-workers {num_workers}: must be 0 or more")
        self.dataset, self.batches = dataset, batches
        self.seed, self.shuffle = seed, shuffle
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.even_shards = even_shards
        self.epoch = epoch
        self.iterations_in_epoch = 0
        self._resume = True  # the next next_epoch_itr() continues self.epoch instead of starting a new one

    def __len__(self) -> int:
        if self.even_shards:
            return -(-len(self.batches) // self.world_size)
        return len(range(self.rank, len(self.batches), self.world_size))

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The batches this rank sees in `epoch`, in order."""
        n = len(self.batches)
        if self.shuffle:
            order = np.random.RandomState(self.seed + epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.even_shards:
            order = np.resize(order, len(self) * self.world_size)  # pad by repeating from the start
        return [self.batches[i] for i in order[self.rank::self.world_size]]

    def next_epoch_itr(self) -> Iterator[Batch]:
        """An iterator over the rest of the current epoch (after a resume) or over the next epoch."""
        if not self._resume:
            self.epoch += 1
            self.iterations_in_epoch = 0
        self._resume = False
        remaining = self.epoch_batches(self.epoch)[self.iterations_in_epoch:]
        return self._iterate(remaining)

    def _iterate(self, batches: list[np.ndarray]) -> Iterator[Batch]:
        if self.num_workers > 0 and batches:
            loader = torch.utils.data.DataLoader(_BatchList(self.dataset, batches), batch_size=None,
                                                 shuffle=False, num_workers=self.num_workers,
                                                 collate_fn=_identity)
            source: Any = iter(loader)
        else:
            source = (self.dataset.collate(b) for b in batches)
        for batch in source:
            self.iterations_in_epoch += 1  # counted when handed out: a checkpoint taken after it skips it
            yield batch

    def end_of_epoch(self) -> bool:
        """True when the current epoch's batches have all been handed out."""
        return not self._resume and self.iterations_in_epoch >= len(self)

    def state_dict(self) -> dict[str, int]:
        """{"epoch", "iterations_in_epoch", "world_size"}: where the next batch comes from (a finished epoch
        points at the next); the position counts this rank's batches, so it holds for `world_size` ranks only."""
        if self.end_of_epoch():
            return {"epoch": self.epoch + 1, "iterations_in_epoch": 0, "world_size": self.world_size}
        return {"epoch": self.epoch, "iterations_in_epoch": self.iterations_in_epoch, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next `next_epoch_itr()` continue exactly where `state` was taken."""
        self.epoch = int(state["epoch"])
        self.iterations_in_epoch = int(state["iterations_in_epoch"])
        self._resume = True
