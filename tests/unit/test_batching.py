"""Batching: size filtering, token-budget batches, collation, and the resumable, sharded epoch iterator."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq_cli.data.indexed import IndexedDataset, IndexedDatasetWriter
from seq2seq_cli.errors import ConfigError, DataError
from seq2seq_cli.training.batching import (Batch, EpochBatchIterator, PairDataset, batch_by_size,
                                           filter_by_size)

BOS, PAD, EOS = 0, 1, 2


def write_dataset(prefix: Path, sentences: list[list[int]]) -> IndexedDataset:
    with IndexedDatasetWriter(prefix, vocab_size=1000) as writer:
        writer.add_batch(sentences)
    return IndexedDataset(prefix)


def random_sentences(n: int, seed: int, max_len: int = 30) -> list[list[int]]:
    rng = np.random.RandomState(seed)
    return [rng.randint(4, 1000, size=rng.randint(1, max_len + 1)).tolist() for _ in range(n)]


@pytest.fixture
def pairs(tmp_path: Path) -> PairDataset:
    src = write_dataset(tmp_path / "train.src", random_sentences(300, seed=1))
    tgt = write_dataset(tmp_path / "train.tgt", random_sentences(300, seed=2))
    return PairDataset(src, tgt, bos=BOS, eos=EOS, pad=PAD)


def batches_of(pairs: PairDataset, max_tokens: int | None = 200, max_sentences: int | None = None,
               seed: int = 1) -> list[np.ndarray]:
    return batch_by_size(np.arange(len(pairs)), pairs.src_sizes, pairs.tgt_sizes, max_tokens=max_tokens,
                         max_sentences=max_sentences, seed=seed)


def cost(pairs: PairDataset, batch: np.ndarray) -> int:
    return len(batch) * int(max(pairs.src_sizes[batch].max(), pairs.tgt_sizes[batch].max()))


def as_lists(batches) -> list[list[int]]:
    return [b.ids.tolist() if isinstance(b, Batch) else np.asarray(b).tolist() for b in batches]


# ------------------------------------------------------------------------------------------------ batch_by_size


def test_no_batch_exceeds_max_tokens_counting_padding(pairs):
    batches = batches_of(pairs, max_tokens=200)
    assert max(cost(pairs, b) for b in batches) <= 200
    # the budget is used, not wasted: batches are cut greedily from the length-sorted list
    assert np.mean([cost(pairs, b) for b in batches]) > 150


def test_padding_is_counted_on_both_sides(tmp_path):
    # one short source with a long target: the row costs the longer side
    src = write_dataset(tmp_path / "s", [[5]] * 4)
    tgt = write_dataset(tmp_path / "t", [[5] * 9] * 4)
    pairs = PairDataset(src, tgt, bos=BOS, eos=EOS, pad=PAD)
    batches = batches_of(pairs, max_tokens=25)  # each row costs 10 tokens -> at most 2 per batch
    assert sorted(len(b) for b in batches) == [2, 2]


def test_every_index_appears_exactly_once(pairs):
    kept = np.arange(0, len(pairs), 3)
    batches = batch_by_size(kept, pairs.src_sizes, pairs.tgt_sizes, max_tokens=150, max_sentences=None, seed=1)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == kept.tolist()
    assert all(b.dtype == np.int64 for b in batches)


def test_max_sentences_limits_rows(pairs):
    batches = batches_of(pairs, max_tokens=None, max_sentences=7)
    assert max(len(b) for b in batches) == 7
    assert sum(len(b) for b in batches) == len(pairs)
    both = batches_of(pairs, max_tokens=400, max_sentences=5)
    assert max(len(b) for b in both) <= 5 and max(cost(pairs, b) for b in both) <= 400


def test_batches_group_similar_lengths(pairs):
    batches = batches_of(pairs, max_tokens=200)
    longest = [int(np.maximum(pairs.src_sizes[b], pairs.tgt_sizes[b]).max()) for b in batches]
    assert longest == sorted(longest)


def test_same_seed_same_batches_other_seed_other_ties(pairs):
    assert as_lists(batches_of(pairs, seed=3)) == as_lists(batches_of(pairs, seed=3))
    assert as_lists(batches_of(pairs, seed=3)) != as_lists(batches_of(pairs, seed=4))


def test_sentence_longer_than_max_tokens_is_a_config_error(pairs):
    longest = int(np.argmax(np.maximum(pairs.src_sizes, pairs.tgt_sizes)))
    size = int(max(pairs.src_sizes[longest], pairs.tgt_sizes[longest]))
    with pytest.raises(ConfigError, match=rf"sentence pair {longest} has .* more than --max-tokens {size - 1}; "
                                          r"raise --max-tokens"):
        batches_of(pairs, max_tokens=size - 1)
    assert batches_of(pairs, max_tokens=size)  # exactly at the budget is fine


def test_no_limit_at_all_is_a_config_error(pairs):
    with pytest.raises(ConfigError, match="--max-tokens or --batch-size"):
        batches_of(pairs, max_tokens=None, max_sentences=None)


def test_batch_by_size_is_fast():
    n = 30_000
    rng = np.random.RandomState(0)
    src, tgt = rng.randint(2, 120, size=n), rng.randint(2, 120, size=n)
    start = time.perf_counter()
    batches = batch_by_size(np.arange(n), src, tgt, max_tokens=4096, max_sentences=None, seed=1)
    assert time.perf_counter() - start < 1.0
    assert sum(len(b) for b in batches) == n


# ------------------------------------------------------------------------------------------------ filter, collate


def test_filter_by_size_counts_pairs_over_either_limit(tmp_path):
    src = write_dataset(tmp_path / "s", [[5] * 3, [5] * 9, [5] * 3, [5] * 4])
    tgt = write_dataset(tmp_path / "t", [[6] * 3, [6] * 3, [6] * 8, [6] * 4])
    pairs = PairDataset(src, tgt, bos=BOS, eos=EOS, pad=PAD)
    kept, skipped = filter_by_size(pairs, 5, 5)  # limits include eos/bos: 4 ids + 1
    assert kept.tolist() == [0, 3] and skipped.tolist() == [1, 2]
    kept, skipped = filter_by_size(pairs, 10, 5)
    assert kept.tolist() == [0, 1, 3] and skipped.tolist() == [2]


def test_pair_dataset_sizes_include_eos(tmp_path):
    pairs = PairDataset(write_dataset(tmp_path / "s", [[7, 8], [9]]), write_dataset(tmp_path / "t", [[4], [4, 5, 6]]),
                        bos=BOS, eos=EOS, pad=PAD)
    assert pairs.src_sizes.tolist() == [3, 2] and pairs.tgt_sizes.tolist() == [2, 4]


def test_mismatched_lengths_are_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"differ in length \(2 vs 1 sentences\)"):
        PairDataset(write_dataset(tmp_path / "s", [[7], [8]]), write_dataset(tmp_path / "t", [[4]]),
                    bos=BOS, eos=EOS, pad=PAD)


def test_collate_appends_eos_prepends_bos_pads_right(tmp_path):
    pairs = PairDataset(write_dataset(tmp_path / "s", [[10, 11, 12], [13], [14, 15]]),
                        write_dataset(tmp_path / "t", [[20], [21, 22, 23], [24]]), bos=BOS, eos=EOS, pad=PAD)
    batch = pairs.collate(np.array([1, 0]))
    assert batch.src_tokens.tolist() == [[13, EOS, PAD, PAD], [10, 11, 12, EOS]]
    assert batch.tgt_in.tolist() == [[BOS, 21, 22, 23], [BOS, 20, PAD, PAD]]
    assert batch.tgt_out.tolist() == [[21, 22, 23, EOS], [20, EOS, PAD, PAD]]
    assert batch.ids.tolist() == [1, 0]
    assert batch.ntokens == 6 and batch.nsentences == 2
    assert all(t.dtype == torch.int64 for t in (batch.src_tokens, batch.tgt_in, batch.tgt_out, batch.ids))
    moved = batch.to("cpu")
    assert torch.equal(moved.tgt_out, batch.tgt_out) and moved.ntokens == 6


# ------------------------------------------------------------------------------------------------ EpochBatchIterator


def epoch(itr: EpochBatchIterator) -> list[list[int]]:
    return as_lists(itr.next_epoch_itr())


def test_epochs_reorder_the_same_batches(pairs):
    batches = batches_of(pairs)
    itr = EpochBatchIterator(pairs, batches, seed=1)
    first, second = epoch(itr), epoch(itr)
    assert itr.epoch == 2
    assert first != second
    assert sorted(map(tuple, first)) == sorted(map(tuple, second)) == sorted(tuple(b.tolist()) for b in batches)
    assert epoch(EpochBatchIterator(pairs, batches, seed=1)) == first  # same seed -> same order
    assert epoch(EpochBatchIterator(pairs, batches, seed=1, epoch=2)) == second


def test_no_shuffle_keeps_the_batch_order(pairs):
    batches = batches_of(pairs)
    itr = EpochBatchIterator(pairs, batches, seed=1, shuffle=False)
    assert epoch(itr) == epoch(itr) == as_lists(batches)


def test_two_ranks_get_disjoint_batches_with_equal_counts(pairs):
    batches = batches_of(pairs, max_tokens=300)[:-1]
    if len(batches) % 2 == 0:  # make the count odd, so that padding by repetition is exercised
        batches = batches[:-1]
    shards = [epoch(EpochBatchIterator(pairs, batches, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == (len(batches) + 1) // 2
    assert len(EpochBatchIterator(pairs, batches, seed=1, rank=1, world_size=2)) == len(shards[1])
    distinct = [set(map(tuple, s)) for s in shards]
    # one batch is repeated to even out the counts; apart from it the shards are disjoint and cover everything
    assert len(distinct[0] & distinct[1]) <= 1
    assert distinct[0] | distinct[1] == {tuple(b.tolist()) for b in batches}


def test_bad_rank_is_a_config_error(pairs):
    with pytest.raises(ConfigError, match="rank 2 is outside a world of size 2"):
        EpochBatchIterator(pairs, batches_of(pairs), seed=1, rank=2, world_size=2)


def test_resume_mid_epoch_gives_exactly_the_remaining_batches(pairs):
    batches = batches_of(pairs)
    full = EpochBatchIterator(pairs, batches, seed=5)
    epoch(full)
    expected = epoch(full)  # the whole of epoch 2
    itr = EpochBatchIterator(pairs, batches, seed=5)
    epoch(itr)
    it = itr.next_epoch_itr()
    seen = [next(it).ids.tolist() for _ in range(3)]
    state = itr.state_dict()
    assert state == {"epoch": 2, "iterations_in_epoch": 3, "world_size": 1}
    resumed = EpochBatchIterator(pairs, batches, seed=5)
    resumed.load_state_dict(state)
    rest = epoch(resumed)
    assert seen + rest == expected
    assert resumed.end_of_epoch() and resumed.epoch == 2
    assert epoch(resumed) == epoch(full)  # and the next epoch is epoch 3 in both


def test_state_at_end_of_epoch_points_to_the_next_one(pairs):
    itr = EpochBatchIterator(pairs, batches_of(pairs), seed=1)
    assert not itr.end_of_epoch()
    epoch(itr)
    assert itr.end_of_epoch()
    assert itr.state_dict() == {"epoch": 2, "iterations_in_epoch": 0, "world_size": 1}


def test_workers_give_the_same_batches(pairs):
    batches = batches_of(pairs, max_tokens=600)
    in_process = list(EpochBatchIterator(pairs, batches, seed=1).next_epoch_itr())
    itr = EpochBatchIterator(pairs, batches, seed=1, num_workers=1)
    with_workers = list(itr.next_epoch_itr())
    assert itr.iterations_in_epoch == len(batches)
    assert len(with_workers) == len(in_process)
    for a, b in zip(in_process, with_workers):
        assert torch.equal(a.src_tokens, b.src_tokens) and torch.equal(a.tgt_out, b.tgt_out)


def test_uneven_shards_cover_every_batch_once(pairs):
    batches = batches_of(pairs, max_tokens=300)
    if len(batches) % 2 == 0:
        batches = batches[:-1]
    shards = [epoch(EpochBatchIterator(pairs, batches, seed=1, shuffle=False, rank=r, world_size=2,
                                       even_shards=False)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) + 1
    assert len(EpochBatchIterator(pairs, batches, seed=1, rank=1, world_size=2, even_shards=False)) == len(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(as_lists(batches))
