"""Binarized datasets (.bin/.idx) and the DATA_DIR reader: round trips, dtype choice, damage detection."""
from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq_cli.data.datadir import META_DIGEST, DataDir, check_destination, publish, seal_meta, staging_dir
from seq2seq_cli.data.indexed import HEADER, INDEX_VERSION, IndexedDataset, IndexedDatasetWriter, best_dtype
from seq2seq_cli.data.preprocess import PreprocessConfig, run_preprocess
from seq2seq_cli.errors import ConfigError, DataError, DataFormatError
from tests.conftest import write_copy_corpus


def write(prefix: Path, sentences: list[list[int]], vocab_size: int, chunk: int = 3) -> IndexedDatasetWriter:
    with IndexedDatasetWriter(prefix, vocab_size) as writer:
        for i in range(0, len(sentences), chunk):
            writer.add_batch(sentences[i:i + chunk])
    return writer


def random_sentences(n: int, vocab_size: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab_size) for _ in range(rng.randint(0, 12))] for _ in range(n)]


@pytest.mark.parametrize("vocab_size, dtype", [(100, np.uint16), (65536, np.uint16), (65537, np.int32),
                                               (250_000, np.int32)])
def test_best_dtype(vocab_size, dtype):
    assert best_dtype(vocab_size) == np.dtype(dtype)


@pytest.mark.parametrize("vocab_size, itemsize", [(65536, 2), (70_000, 4)])
def test_dtype_on_disk_and_largest_ids_round_trip(tmp_path, vocab_size, itemsize):
    sentences = [[0, vocab_size - 1], [vocab_size - 1], [65535, 1, 2]]
    writer = write(tmp_path / "x", sentences, vocab_size)
    assert (tmp_path / "x.bin").stat().st_size == 6 * itemsize  # 6 ids, nothing else
    ds = IndexedDataset(tmp_path / "x")
    assert ds[0].dtype.itemsize == itemsize
    assert [ds[i].tolist() for i in range(len(ds))] == sentences
    assert writer.num_tokens == 6 and writer.num_sentences == 3


def test_round_trip_and_random_access(tmp_path):
    sentences = random_sentences(500, 8000)
    sentences[7] = []  # empty sentences are kept (valid/test keep every line)
    write(tmp_path / "train.en", sentences, 8000, chunk=64)
    ds = IndexedDataset(tmp_path / "train.en")
    assert len(ds) == 500
    assert ds.sizes.dtype == np.int64 and ds.sizes.tolist() == [len(s) for s in sentences]
    order = list(range(500))
    random.Random(1).shuffle(order)
    for i in order:
        assert ds[i].tolist() == sentences[i]
    assert ds[-1].tolist() == sentences[-1]
    assert ds[7].size == 0
    with pytest.raises(IndexError, match="out of range"):
        ds[500]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 69_999), max_size=20), max_size=40), st.integers(1, 10))
def test_round_trip_property(tmp_path_factory, sentences, chunk):
    folder = tmp_path_factory.mktemp("prop")
    write(folder / "d", sentences, 70_000, chunk=chunk)
    ds = IndexedDataset(folder / "d")
    assert [x.tolist() for x in ds] == sentences


def test_empty_dataset(tmp_path):
    write(tmp_path / "e", [], 10)
    ds = IndexedDataset(tmp_path / "e")
    assert len(ds) == 0 and ds.sizes.tolist() == []


def test_checksums_match_files(tmp_path):
    import hashlib

    writer = write(tmp_path / "c", random_sentences(20, 50), 50)
    for name in ("c.bin", "c.idx"):
        data = (tmp_path / name).read_bytes()
        assert writer.checksums[name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@pytest.fixture
def dataset(tmp_path) -> Path:
    write(tmp_path / "d", random_sentences(30, 300), 300)
    return tmp_path / "d"


def test_bad_magic(dataset):
    idx = dataset.with_suffix(".idx")
    idx.write_bytes(b"MMIDIDX\x00" + idx.read_bytes()[8:])
    with pytest.raises(DataFormatError, match=rf"{idx}: not a seq2seq_cli index file \(bad magic"):
        IndexedDataset(dataset)


def test_truncated_bin(dataset):
    bin_path = dataset.with_suffix(".bin")
    bin_path.write_bytes(bin_path.read_bytes()[:-2])
    with pytest.raises(DataFormatError, match=rf"{bin_path}: \d+ bytes, expected \d+ .*truncated or damaged"):
        IndexedDataset(dataset)


@pytest.mark.parametrize("keep", [5, 30, HEADER.size + 8])
def test_truncated_idx(dataset, keep):
    idx = dataset.with_suffix(".idx")
    idx.write_bytes(idx.read_bytes()[:keep])
    with pytest.raises(DataFormatError, match=rf"{idx}: .*(truncated|damaged)"):
        IndexedDataset(dataset)


def test_newer_version_says_upgrade(dataset):
    idx = dataset.with_suffix(".idx")
    data = bytearray(idx.read_bytes())
    struct.pack_into("<I", data, 8, INDEX_VERSION + 1)
    idx.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=rf"{idx}: format v2 is newer than this seq2seq_cli \(reads v1\); "
                                              r"upgrade seq2seq_cli"):
        IndexedDataset(dataset)


def test_inconsistent_offsets(dataset):
    idx = dataset.with_suffix(".idx")
    data = bytearray(idx.read_bytes())
    count = struct.unpack_from("<Q", data, 16)[0]
    struct.pack_into("<q", data, HEADER.size + 8 * count + 8 * 3, 1)  # offset of sentence 3
    idx.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="sizes and offsets disagree"):
        IndexedDataset(dataset)


def test_missing_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path / 'nope.idx'}: no such file"):
        IndexedDataset(tmp_path / "nope")


# --- DataDir ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    raw = write_copy_corpus(tmp_path_factory.mktemp("raw"), n_train=60, n_valid=8, n_test=8)
    dest = tmp_path_factory.mktemp("bin") / "data-bin"
    run_preprocess(PreprocessConfig(source_lang="src", target_lang="tgt", trainpref=str(raw / "train"),
                                    validpref=str(raw / "valid"), destdir=dest, tokenizer="none", progress=False))
    return dest


def copy_of(data_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(data_dir, tmp_path / "copy"))


def test_datadir_reads_meta_and_datasets(data_dir):
    dd = DataDir(data_dir)
    assert (dd.src_lang, dd.tgt_lang, dd.splits, dd.joined) == ("src", "tgt", ["train", "valid"], False)
    assert dd.tokenizer("src") is not dd.tokenizer("tgt")
    ds = dd.dataset("valid", "tgt")
    assert len(ds) == 8 and ds.sizes.dtype == np.int64
    assert dd.tokenizer_json("src") == (data_dir / "tokenizer.src.json").read_text(encoding="utf-8")
    dd.verify()


def test_datadir_missing_split_and_language(data_dir):
    dd = DataDir(data_dir)
    with pytest.raises(DataError, match=r"test\.src\.bin: no split 'test' .*it has: train, valid"):
        dd.dataset("test", "src")
    with pytest.raises(DataError, match="no language 'fr'; it holds src and tgt"):
        dd.dataset("train", "fr")


def test_verify_detects_a_flipped_byte(data_dir, tmp_path):
    copy = copy_of(data_dir, tmp_path)
    path = copy / "train.tgt.bin"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    dd = DataDir(copy)
    with pytest.raises(DataFormatError, match=rf"{path}: checksum mismatch \(sha256 [0-9a-f]{{64}}\)"):
        dd.verify()


def test_verify_detects_a_missing_file(data_dir, tmp_path):
    copy = copy_of(data_dir, tmp_path)
    (copy / "tokenizer.src.json").unlink()
    with pytest.raises(DataFormatError, match="tokenizer.src.json: listed in meta.json but missing"):
        DataDir(copy).verify()


def test_meta_newer_format_damaged_or_absent(data_dir, tmp_path):
    copy = copy_of(data_dir, tmp_path)
    meta = json.loads((copy / "meta.json").read_text())
    meta["format_version"] = 2
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match=r"format v2 is newer than this seq2seq_cli \(reads v1\); upgrade"):
        DataDir(copy)
    (copy / "meta.json").write_text("{not json")
    with pytest.raises(DataFormatError, match=r"meta.json: damaged"):
        DataDir(copy)
    (copy / "meta.json").unlink()
    with pytest.raises(DataFormatError, match="not a DATA_DIR .no meta.json.; create one with seq2seq preprocess"):
        DataDir(copy)
    with pytest.raises(DataFormatError, match="no such folder"):
        DataDir(tmp_path / "absent")


def test_sentence_count_must_match_meta(data_dir, tmp_path):
    copy = copy_of(data_dir, tmp_path)
    meta = json.loads((copy / "meta.json").read_text())
    meta["splits"]["valid"]["sentences"] += 1
    meta.pop(META_DIGEST)  # a consistent meta.json (re-sealed) that disagrees with the .idx
    (copy / "meta.json").write_text(json.dumps(seal_meta(meta)))
    with pytest.raises(DataFormatError, match="8 sentences, but meta.json says 9"):
        DataDir(copy).dataset("valid", "src")


def test_destination_checks_and_publish(tmp_path):
    dest = tmp_path / "out"
    check_destination(dest, force=False, inputs=[])  # absent: fine
    dest.mkdir()
    check_destination(dest, force=False, inputs=[])  # empty: fine
    (dest / "old.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"--destdir .*out already holds data \(old.txt, ...\); use --force"):
        check_destination(dest, force=False, inputs=[])
    with pytest.raises(ConfigError, match="contains the input file"):
        check_destination(dest, force=True, inputs=[dest / "old.txt"])
    staging = staging_dir(dest)
    (staging / "meta.json").write_text("{}")
    publish(staging, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["meta.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left behind
