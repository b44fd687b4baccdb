"""Synthesize a speech corpus from the Bible corpus's splits with espeak-ng (the fixed recipe of docs/speech.md).

For each language L in --langs (en: English speech, es: Spanish speech), writes OUT/L/{train,valid,test}.tsv
(fairseq S2T manifests: id, audio, n_frames, tgt_text) and OUT/L/clips/*.flac. The target text is always the
English (KJV) verse: en gives speech recognition, es speech translation.

The recipe (all draws from seed 1):
- verses: --train verses (6,000) drawn from the train split among those whose English and Spanish sides both
  have at most --max-words (30) words; --test verses (300) drawn from the test split; --valid (100) from valid;
- per clip: a voice among espeak-ng's voices of the language (MBROLA voices excluded: they need extra packages)
  with a variant among m1-m8, f1-f5 or none; a rate of 130-190 words per minute; a pitch of 30-70; white noise at
  a signal-to-noise ratio of 10-30 dB; all uniform;
- audio: espeak-ng's 22,050 Hz output resampled to 16 kHz mono (band-limited, by FFT), 16-bit FLAC.

The same seed gives the same corpus: the parameters of every clip are drawn in order in the main process, and
worker processes only render them. A clip's file name ends with a digest of its parameters, and a clip already on
disk is not rendered again, so an interrupted run picks up where it stopped. Usage: python synthesize.py --data ../../../shared/data/bible-es-en --out data
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
VOICES = {"en": ["en-029", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us",
                 "en-us-nyc"],
          "es": ["es", "es-419"]}
VARIANTS = [""] + [f"m{i}" for i in range(1, 9)] + [f"f{i}" for i in range(1, 6)]


@dataclass(frozen=True)
class Clip:
    """Everything needed to render one clip."""

    path: Path
    text: str
    voice: str
    rate_wpm: int
    pitch: int
    snr_db: float
    noise_seed: int


def select(data: Path, split: str, count: int, max_words: int | None, rng: random.Random) -> list[int]:
    """Indices of `count` verses of `split` (sorted), drawn uniformly among those short enough."""
    en = (data / f"{split}.en").read_text(encoding="utf-8").splitlines()
    es = (data / f"{split}.es").read_text(encoding="utf-8").splitlines()
    pool = [i for i, (a, b) in enumerate(zip(en, es))
            if max_words is None or (len(a.split()) <= max_words and len(b.split()) <= max_words)]
    if len(pool) < count:
        sys.exit(f"{data}/{split}: only {len(pool)} verses qualify, fewer than {count}")
    return sorted(rng.sample(pool, count))


def plan(data: Path, out: Path, lang: str, split: str, indices: list[int], rng: random.Random) -> list[Clip]:
    texts = (data / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
    clips = []
    for i in indices:
        variant = rng.choice(VARIANTS)
        voice = rng.choice(VOICES[lang]) + (f"+{variant}" if variant else "")
        rate_wpm, pitch, snr_db, noise_seed = rng.randint(130, 190), rng.randint(30, 70), rng.uniform(10.0, 30.0), \
            rng.getrandbits(32)
        # The name carries a digest of everything that shapes the audio, so a rerun (after an interruption, or
        # with other --train/--test counts) reuses exactly the clips it would render again, and no other.
        digest = hashlib.sha256(repr((texts[i], voice, rate_wpm, pitch, snr_db, noise_seed)).encode()).hexdigest()
        clips.append(Clip(out / "clips" / f"{split}-{i}-{digest[:10]}.flac", texts[i], voice, rate_wpm, pitch, snr_db,
                          noise_seed))
    return clips


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling by FFT (keep the spectrum below the new Nyquist frequency)."""
    n_out = int(round(len(x) * dst_rate / src_rate))
    spectrum = np.fft.rfft(x)[: n_out // 2 + 1]
    return np.fft.irfft(spectrum, n_out) * (n_out / len(x))


def n_frames(samples: int) -> int:
    """10 ms frames of 25 ms windows over `samples` 16 kHz samples (fairseq's n_frames)."""
    return 1 + max(0, (samples - 400) // 160)


def render(clip: Clip) -> int:
    """Synthesize, resample, add noise, write; returns the number of 10 ms frames (fairseq's n_frames).

    A clip already on disk is kept (files are only ever complete: written to a temporary name, then renamed).
    """
    if clip.path.exists():
        return n_frames(soundfile.info(str(clip.path)).frames)
    wav = subprocess.run(["espeak-ng", "-v", clip.voice, "-s", str(clip.rate_wpm), "-p", str(clip.pitch), "--stdout",
                          clip.text], check=True, capture_output=True).stdout
    import io

    speech, rate = soundfile.read(io.BytesIO(wav), dtype="float64")
    speech = resample(speech, rate, RATE)
    power = float(np.mean(speech ** 2)) or 1e-10
    noise = np.random.default_rng(clip.noise_seed).normal(0.0, np.sqrt(power / 10 ** (clip.snr_db / 10)), len(speech))
    mixed = speech + noise
    mixed /= max(1.0, float(np.abs(mixed).max()) / 0.99)  # no clipping
    partial = clip.path.with_name(clip.path.name + ".part")
    soundfile.write(str(partial), mixed.astype(np.float32), RATE, subtype="PCM_16", format="FLAC")
    os.replace(partial, clip.path)
    return n_frames(len(mixed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the Bible corpus folder ({train,valid,test}.{en,es})")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--langs", default="en,es", help="speech languages to synthesize (en, es)")
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--valid", type=int, default=100)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--max-words", type=int, default=30, help="longest training verse, in words")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for split in ("train", "valid", "test"):
        for lang in ("en", "es"):
            if not (args.data / f"{split}.{lang}").is_file():
                sys.exit(f"{args.data / f'{split}.{lang}'}: no such file; give --data the Bible corpus folder")
    rng = random.Random(args.seed)
    chosen = {"train": select(args.data, "train", args.train, args.max_words, rng),
              "valid": select(args.data, "valid", args.valid, None, rng),
              "test": select(args.data, "test", args.test, None, rng)}
    for lang in args.langs.split(","):
        out = args.out / lang
        (out / "clips").mkdir(parents=True, exist_ok=True)
        lang_rng = random.Random(f"{args.seed}-{lang}")
        for split, indices in chosen.items():
            clips = plan(args.data, out, lang, split, indices, lang_rng)
            targets = (args.data / f"{split}.en").read_text(encoding="utf-8").splitlines()
            with ProcessPoolExecutor(args.workers) as pool:
                frames = list(pool.map(render, clips, chunksize=16))
            rows = ["id\taudio\tn_frames\ttgt_text"] + [
                f"{split}-{i}\tclips/{clip.path.name}\t{n}\t{targets[i]}" for i, clip, n in zip(indices, clips, frames)]
            (out / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
            print(f"{out / split}.tsv: {len(clips)} clips, {sum(frames) / 100 / 3600:.2f} h", file=sys.stderr)


if __name__ == "__main__":
    main()
