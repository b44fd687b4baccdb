"""User-facing errors.

A `Seq2SeqError` is a user's mistake or a damaged input: the CLI prints its message (no traceback) and exits 1.
Anything else that escapes is a bug and keeps its traceback. Messages name the file, line or flag and say what to do.
"""
from __future__ import annotations


class Seq2SeqError(Exception):
    """Base class of every error the CLI reports without a traceback."""


class ConfigError(Seq2SeqError):
    """A flag, config file or combination of settings is invalid."""


class UnknownComponentError(ConfigError):
    """A registry lookup named a component that does not exist."""


class DataError(Seq2SeqError):
    """Input text is unusable (missing file, mismatched line counts, bad encoding)."""


class DataFormatError(Seq2SeqError):
    """A binarized DATA_DIR file is damaged, or from a newer format than this version reads."""


class CheckpointError(Seq2SeqError):
    """A checkpoint is missing, damaged, unsafe or incompatible."""


class DeviceError(ConfigError):
    """A requested device or precision is not available here."""


class ExportError(Seq2SeqError):
    """A model cannot be exported (a setting the target engine cannot express) or failed its parity check."""


class TrainingError(Seq2SeqError):
    """Training cannot go on: too many skipped updates, or another run holds the --save-dir."""


class Interrupted(Seq2SeqError):
    """The user interrupted a command (Ctrl-C, SIGTERM) after it saved its work; exit status 130 as a shell's."""

    exit_code = 130
