"""The training and decoding view of an audio DATA_DIR: feature datasets, speech pairs and their collation.

A batch's source is one float tensor (B, T, F + 1): the features, right-padded with zeros, and a last channel that
is 1.0 at real frames (see models/s2t_transformer.py for why). Source sizes are counted in frames, so
`--max-tokens` and `--max-source-positions` count frames on the source side, as in fairseq S2T.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from seq2seq_cli.data.features import FeatureDataset
from seq2seq_cli.errors import ConfigError, DataError, DataFormatError
from seq2seq_cli.training.batching import PairDataset


def is_audio(datadir: Any) -> bool:
    """Whether a DataDir was written by `preprocess --audio`."""
    return isinstance(datadir.meta.get("audio"), dict)


def audio_side(datadir: Any) -> str:
    return datadir.meta["audio"]["side"]


def num_features(datadir: Any) -> int:
    return int(datadir.meta["audio"]["features"]["num_mel_bins"])


def feature_dataset(datadir: Any, split: str) -> FeatureDataset:
    """The features of `split` (the speech side), checked against meta.json.

    Raises:
        DataError / DataFormatError: the split is unknown, or its files are missing, damaged or disagree.
    """
    side = audio_side(datadir)
    if split not in datadir.splits:
        raise DataError(f"{datadir.path / f'{split}.{side}.bin'}: no split {split!r} in {datadir.path} "
                        f"(it has: {', '.join(datadir.splits) or 'none'})")
    ds = FeatureDataset(datadir.path / f"{split}.{side}")
    expected = datadir.meta["splits"][split]["sentences"]
    if len(ds) != expected or ds.dim != num_features(datadir):
        raise DataFormatError(f"{ds.idx_path}: {len(ds)} utterances of {ds.dim} features, but meta.json says "
                              f"{expected} of {num_features(datadir)}; re-run seq2seq preprocess")
    return ds


def check_direction(datadir: Any, src: str, flag_hint: str) -> None:
    """Speech can only be the source side."""
    side = audio_side(datadir)
    if src != side:
        raise ConfigError(f"{datadir.path} is an audio DATA_DIR whose speech side is {side!r}; it trains {side}->"
                          f"{datadir.tgt_lang} only ({flag_hint})")


def check_model_fits(datadir: Any, model_name: str, model_cfg: Any) -> None:
    """An audio DATA_DIR needs a speech model with as many input features as the data has, and a text DATA_DIR
    a text model."""
    wanted = getattr(model_cfg, "input_feat_per_channel", None)
    if not is_audio(datadir):
        if wanted is not None:
            raise ConfigError(f"model {model_name!r} reads audio features, but {datadir.path} holds text; make an "
                              "audio DATA_DIR with `seq2seq preprocess --audio` (docs/speech.md)")
        return
    if wanted is None:
        raise ConfigError(f"{datadir.path} holds audio features, but model {model_name!r} reads token ids; use "
                          "--arch s2t_transformer (or s2t_transformer_s, s2t_transformer_xs)")
    if wanted != num_features(datadir):
        raise ConfigError(f"the model reads {wanted} features per frame (input_feat_per_channel) but "
                          f"{datadir.path} has {num_features(datadir)}; set --model-opt "
                          f"input_feat_per_channel={num_features(datadir)}")


def collate_features(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """Right-padded features plus the real-frame flag channel.

    Shape:
        arrays: B arrays (T_i, F) -> (B, max T_i, F + 1) float32
    """
    num = arrays[0].shape[1]
    out = np.zeros((len(arrays), max(max(len(a) for a in arrays), 1), num + 1), dtype=np.float32)
    for row, a in enumerate(arrays):
        out[row, :len(a), :num] = a
        out[row, :len(a), num] = 1.0
    return torch.from_numpy(out)


class SpeechPairDataset(PairDataset):
    """Feature arrays paired with target ids; source sizes are frame counts (no eos is added to audio)."""

    def __init__(self, src: FeatureDataset, tgt: Any, *, bos: int, eos: int, pad: int) -> None:
        super().__init__(src, tgt, bos=bos, eos=eos, pad=pad)
        self.src_sizes = np.asarray(src.sizes, dtype=np.int64)

    def collate_source(self, indices: np.ndarray) -> torch.Tensor:
        """Shape: (B,) indices -> (B, T, F + 1) float32 features with the real-frame flag."""
        return collate_features([self.src[int(i)] for i in indices])
