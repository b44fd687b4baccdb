"""Speech input: TSV manifests, audio loading, Kaldi-compatible filterbank features, SpecAugment, WER.

Speech recognition and speech translation run through the same commands as text: `preprocess --audio` turns
manifests into an audio DATA_DIR, `train` trains an `s2t_transformer` on it, `generate` decodes an audio DATA_DIR or
a manifest, and `score --metrics wer` scores the text. docs/speech.md has the walk-through.

The libraries (kaldi-native-fbank, soundfile, jiwer) are the optional extra `speech`; `require` says how to
install it when one is missing.
"""
from __future__ import annotations

import importlib
from typing import Any

from seq2seq_cli.errors import ConfigError

INSTALL_HINT = "pip install 'seq2seq_cli[speech]'"


def require(module: str, what: str) -> Any:
    """Import `module` (a library of the `speech` extra), or fail with how to install it.

    Raises:
        ConfigError: the module is not installed; the message names `what` needs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs the Python package {module!r}, which is not installed; install the speech "
                          f"extra: {INSTALL_HINT}") from None
