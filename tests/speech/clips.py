"""Tiny synthetic speech for the tests: each word is a tone of its own pitch, so a model can learn the mapping.

Clips are written at test time (16 kHz mono 16-bit PCM WAV), together with fairseq S2T-style manifests.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

RATE = 16000
WORDS = {"do": 262.0, "re": 294.0, "mi": 330.0, "fa": 349.0, "so": 392.0, "la": 440.0}


def tone_clip(words: list[str], rng: np.random.Generator, rate: int = RATE, word_s: float = 0.12,
              gap_s: float = 0.03) -> np.ndarray:
    """Float samples in [-1, 1]: one tone per word, short gaps, light noise."""
    parts = []
    for word in words:
        t = np.arange(int(rate * word_s)) / rate
        parts += [0.5 * np.sin(2 * np.pi * WORDS[word] * t), np.zeros(int(rate * gap_s))]
    signal = np.concatenate(parts)
    return (signal + rng.normal(0, 0.01, len(signal))).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    import soundfile

    data = np.repeat(samples[:, None], channels, axis=1) if channels > 1 else samples
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, rate, subtype="PCM_16")
    return path


def write_tone_corpus(folder: Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """folder/{split}.tsv manifests (header id, audio, n_frames, tgt_text) and folder/clips/*.wav."""
    sizes = sizes or {"train": 40, "valid": 6, "test": 6}
    rng, pick = np.random.default_rng(seed), random.Random(seed)
    for split, n in sizes.items():
        lines = ["id\taudio\tn_frames\ttgt_text"]
        for i in range(n):
            words = [pick.choice(sorted(WORDS)) for _ in range(pick.randint(2, 4))]
            clip = write_wav(folder / "clips" / f"{split}{i}.wav", tone_clip(words, rng))
            lines.append(f"{split}{i}\tclips/{clip.name}\t{len(tone_clip(words, rng)) // 160}\t{' '.join(words)}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
