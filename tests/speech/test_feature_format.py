"""The float16 2-D feature array format (data/features.py): round trip with shapes, and damaged files."""
from __future__ import annotations

import numpy as np
import pytest

from seq2seq_cli.data.features import HEADER, FeatureDataset, FeatureDatasetWriter
from seq2seq_cli.data.indexed import IndexedDataset
from seq2seq_cli.errors import DataFormatError


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return [rng.normal(0, 2, (n, 5)).astype(np.float32) for n in (3, 1, 0, 7)]


def write(prefix, arrays, dim=5):
    with FeatureDatasetWriter(prefix, dim) as writer:
        for a in arrays:
            writer.add(a)
    return writer


def test_round_trip_keeps_shapes_and_float16_values(tmp_path, arrays):
    writer = write(tmp_path / "train.audio", arrays)
    assert set(writer.checksums) == {"train.audio.bin", "train.audio.idx"}
    ds = FeatureDataset(tmp_path / "train.audio")
    assert len(ds) == 4 and ds.dim == 5 and ds.sizes.tolist() == [3, 1, 0, 7]
    for i, a in enumerate(arrays):
        assert ds[i].shape == a.shape and ds[i].dtype == np.float16
        np.testing.assert_array_equal(ds[i], a.astype(np.float16))
    assert (tmp_path / "train.audio.bin").stat().st_size == 11 * 5 * 2


def test_wrong_width_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected an \(n, 5\) array, got shape \(2, 4\)"):
        write(tmp_path / "x", [np.zeros((2, 4), np.float32)])


def test_truncated_bin_names_the_file(tmp_path, arrays):
    write(tmp_path / "t", arrays)
    data = (tmp_path / "t.bin").read_bytes()
    (tmp_path / "t.bin").write_bytes(data[:-2])
    with pytest.raises(DataFormatError, match=r"t\.bin: 108 bytes, expected 110 \(11 frames of 5 float16 values per "
                                              r"the \.idx\); the file is truncated or damaged"):
        FeatureDataset(tmp_path / "t")


def test_newer_version_and_foreign_magic(tmp_path, arrays):
    write(tmp_path / "t", arrays)
    idx = bytearray((tmp_path / "t.idx").read_bytes())
    idx[8] = 2
    (tmp_path / "t.idx").write_bytes(bytes(idx))
    with pytest.raises(DataFormatError, match=r"feature format v2 is newer than this seq2seq_cli \(reads v1\); "
                                              r"upgrade seq2seq_cli"):
        FeatureDataset(tmp_path / "t")
    idx[8] = 1
    (tmp_path / "t.idx").write_bytes(bytes(idx))
    # neither reader takes the other's files
    with pytest.raises(DataFormatError, match=r"not a seq2seq_cli index file \(bad magic b'S2SFEAT\\x00'\)"):
        IndexedDataset(tmp_path / "t")
    (tmp_path / "t.idx").write_bytes(b"S2SIDX\x00\x00" + bytes(HEADER.size - 8))
    with pytest.raises(DataFormatError, match=r"not a seq2seq_cli feature index \(bad magic b'S2SIDX\\x00\\x00'\)"):
        FeatureDataset(tmp_path / "t")
