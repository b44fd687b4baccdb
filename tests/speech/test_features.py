"""Filterbank features: Kaldi-compatible (checked against an independent NumPy implementation of Kaldi's fbank),
utterance CMVN, and the too-short signal error."""
from __future__ import annotations

import numpy as np
import pytest

from seq2seq_cli.errors import DataError
from seq2seq_cli.speech.features import FbankConfig, extract, fbank, utterance_cmvn


def kaldi_fbank_reference(x: np.ndarray, rate: int = 16000, bins: int = 80) -> np.ndarray:
    """Kaldi's compute-fbank-feats defaults (dither 0), written from Kaldi's feature-window.cc / mel-computations.cc:
    25 ms Povey window every 10 ms, snip_edges, DC removal, pre-emphasis 0.97, 512-point power spectrum, mel
    triangles (1127 ln(1 + f / 700)) from 20 Hz to Nyquist over bins 0..255, log floored at float32 epsilon."""
    x = np.asarray(x, np.float64)
    length, shift, fft = 400, 160, 512
    frames = 1 + (len(x) - length) // shift
    j = np.arange(length)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * j / (length - 1))) ** 0.85
    mel = lambda f: 1127.0 * np.log(1 + f / 700.0)  # noqa: E731
    low, high = mel(20.0), mel(rate / 2)
    step = (high - low) / (bins + 1)
    fft_mel = mel(np.arange(fft // 2) * rate / fft)
    banks = np.zeros((bins, fft // 2))
    for b in range(bins):
        left, center, right = low + b * step, low + (b + 1) * step, low + (b + 2) * step
        up = (fft_mel > left) & (fft_mel <= center)
        down = (fft_mel > center) & (fft_mel < right)
        banks[b, up] = (fft_mel[up] - left) / (center - left)
        banks[b, down] = (right - fft_mel[down]) / (right - center)
    out = []
    for i in range(frames):
        w = x[i * shift:i * shift + length].copy()
        w -= w.mean()
        w[1:] -= 0.97 * w[:-1]
        w[0] -= 0.97 * w[0]
        power = np.abs(np.fft.rfft(w * window, fft)) ** 2
        out.append(np.log(np.maximum(banks @ power[:fft // 2], np.finfo(np.float32).eps)))
    return np.array(out)


@pytest.mark.parametrize("n", [400, 12345, 16000])
def test_fbank_matches_kaldi(n):
    rng = np.random.default_rng(n)
    x = (8000 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000) + rng.normal(0, 300, n)).astype(np.float32)
    ours = fbank(x, FbankConfig())
    ref = kaldi_fbank_reference(x)
    assert ours.shape == ref.shape == (1 + (n - 400) // 160, 80)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_utterance_cmvn_zero_mean_unit_variance_and_constant_columns():
    rng = np.random.default_rng(0)
    feats = rng.normal(5.0, 3.0, (50, 4)).astype(np.float32)
    feats[:, 2] = 7.0  # a constant dimension must not divide by zero
    out = utterance_cmvn(feats)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, [0, 1, 3]].std(axis=0), 1.0, atol=1e-4)
    assert np.all(out[:, 2] == 0.0)


def test_extract_is_cmvn_of_fbank():
    x = np.random.default_rng(1).normal(0, 1000, 4000).astype(np.float32)
    cfg = FbankConfig()
    np.testing.assert_array_equal(extract(x, cfg, "here"), utterance_cmvn(fbank(x, cfg)))


def test_a_signal_shorter_than_one_window_is_refused():
    with pytest.raises(DataError, match=r"^clip\.wav: 399 samples, shorter than one 25 ms window \(400 samples at "
                                        r"16000 Hz\); remove it from the manifest$"):
        extract(np.zeros(399, np.float32), FbankConfig(), "clip.wav")
