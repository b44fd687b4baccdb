"""80-dimensional Kaldi-compatible log-mel filterbanks (kaldi-native-fbank) with utterance-level CMVN.

The settings are fairseq S2T's (`torchaudio.compliance.kaldi.fbank(waveform * 32768, num_mel_bins=80)`), i.e.
Kaldi's defaults: 25 ms Povey windows every 10 ms, pre-emphasis 0.97, DC removal, a 512-point FFT, power spectrum,
mel bins from 20 Hz to Nyquist, log with a float32-epsilon floor, frames that fit entirely in the signal
(snip_edges), and no dither (Kaldi dithers by default; we do not, so features are reproducible).

Utterance-level CMVN (fairseq's `utterance_cmvn` transform): each feature dimension of an utterance is shifted to
mean 0 and scaled to variance 1 over that utterance's frames (the variance floored at 1e-10, so a constant
dimension does not divide by zero).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seq2seq_cli.errors import DataError
from seq2seq_cli.speech import require

VARIANCE_FLOOR = 1e-10


@dataclass(frozen=True)
class FbankConfig:
    """The filterbank front end; recorded in meta.json, and fixed so that training and generation agree."""

    num_mel_bins: int = field(default=80, metadata={"help": "mel bins (feature dimension)"})
    sample_rate: int = field(default=16000, metadata={"help": "the audio's required sample rate, in Hz"})
    frame_length_ms: float = field(default=25.0, metadata={"help": "window length"})
    frame_shift_ms: float = field(default=10.0, metadata={"help": "window step"})
    cmvn: str = field(default="utterance", metadata={"help": "mean/variance normalization: per utterance"})

    def min_samples(self) -> int:
        """Shortest signal that yields one frame."""
        return int(self.sample_rate * self.frame_length_ms / 1000)


def fbank(samples: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    """Log-mel filterbank energies of `samples` (int16 scale, at cfg.sample_rate).

    Shape:
        samples: (n,) float32 -> (1 + (n - window) // shift, num_mel_bins) float32
    """
    knf = require("kaldi_native_fbank", "computing filterbank features")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = cfg.sample_rate
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = cfg.num_mel_bins
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(cfg.sample_rate, np.ascontiguousarray(samples, dtype=np.float32))
    computer.input_finished()
    frames = [computer.get_frame(i) for i in range(computer.num_frames_ready)]
    return np.asarray(frames, dtype=np.float32).reshape(len(frames), cfg.num_mel_bins)


def utterance_cmvn(feats: np.ndarray) -> np.ndarray:
    """Each column shifted to mean 0 and scaled to variance 1; shape (T, D) -> (T, D) float32."""
    x = feats.astype(np.float64)
    mean = x.mean(axis=0)
    var = np.maximum((x * x).mean(axis=0) - mean * mean, VARIANCE_FLOOR)
    return ((x - mean) / np.sqrt(var)).astype(np.float32)


def extract(samples: np.ndarray, cfg: FbankConfig, where: str) -> np.ndarray:
    """The model's input features of one utterance: CMVN(fbank(samples)), shape (T, num_mel_bins) float32.

    Raises:
        DataError: the signal is shorter than one window (naming `where`).
    """
    if len(samples) < cfg.min_samples():
        raise DataError(f"{where}: {len(samples)} samples, shorter than one {cfg.frame_length_ms:g} ms window "
                        f"({cfg.min_samples()} samples at {cfg.sample_rate} Hz); remove it from the manifest")
    return utterance_cmvn(fbank(samples, cfg))
