"""Reading audio files: mono PCM at the expected sample rate, as float32 samples on the int16 scale.

soundfile (libsndfile) reads WAV, FLAC, OGG and the other formats libsndfile knows. Samples are scaled to the
16-bit range (-32768 .. 32767), the scale Kaldi's (and fairseq S2T's) filterbanks are defined on.

Sample-rate policy: refuse. A file whose rate differs from the expected one (16 kHz) is an error naming the file,
its rate and a command that converts it; nothing is resampled behind the user's back (a resampler would be a
silent source of mismatch between training and test audio). Multi-channel files are refused the same way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from seq2seq_cli.errors import DataError
from seq2seq_cli.speech import require

INT16_SCALE = 32768.0


def read_audio(path: Path, sample_rate: int, where: str) -> np.ndarray:
    """The samples of `path`, shape (n,) float32 on the int16 scale.

    Args:
        path: the audio file.
        sample_rate: the rate the file must have.
        where: what to name in error messages besides the file, e.g. "train.tsv, line 3".

    Raises:
        DataError: the file is missing, unreadable (not audio, damaged), empty, not mono, or at another rate.
    """
    soundfile = require("soundfile", "reading audio")
    if not path.is_file():
        raise DataError(f"{where}: audio file {path} does not exist; fix the audio column or the file's location "
                        f"(relative paths are relative to the manifest's folder)")
    if path.stat().st_size == 0:
        raise DataError(f"{where}: audio file {path} is empty (0 bytes); re-create it or remove it from the manifest")
    try:
        info = soundfile.info(str(path))
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        reason = " ".join(str(exc).split()).replace(f"Error opening {str(path)!r}: ", "")
        raise DataError(f"{where}: cannot read audio file {path} ({reason}); it must be a WAV, FLAC or OGG file") \
            from None
    if rate != sample_rate:
        raise DataError(f"{where}: {path} has a sample rate of {rate} Hz, expected {sample_rate} Hz; resample it "
                        f"first, e.g. `sox {path} -r {sample_rate} out.wav`")
    if info.channels != 1:
        raise DataError(f"{where}: {path} has {info.channels} channels, expected mono; mix it down first, e.g. "
                        f"`sox {path} -c 1 out.wav`")
    if samples.shape[0] == 0:
        raise DataError(f"{where}: {path} holds no samples (an empty recording); remove it from the manifest")
    return samples[:, 0] * np.float32(INT16_SCALE)
