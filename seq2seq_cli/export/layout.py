"""What an exported CTranslate2 folder holds, and how to recognize one. No torch or ctranslate2 import here.

    DIR/model.bin, config.json, shared_vocabulary.json      CTranslate2's own files (or source_/target_vocabulary.json
                                                            when the dictionaries are not joined)
    DIR/tokenizer.src.json, tokenizer.tgt.json              our tokenizers (the same text twice when joined)
    DIR/seq2seq_export.json                                 what was exported from where, the limits and specials
                                                            decoding needs, and the parity report

Token ids are identical on both sides: the vocabularies list our tokenizer's tokens in id order.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seq2seq_cli.errors import CheckpointError, ConfigError

METADATA = "seq2seq_export.json"
SRC_TOKENIZER = "tokenizer.src.json"
TGT_TOKENIZER = "tokenizer.tgt.json"
FORMAT_VERSION = 1
CT2_VERSION = "4.8.5"  # the version constraints.txt pins; others may work but are not what the parity tests ran
# --quantization choices: CTranslate2's weight types (float32 is the default, no flag needed).
QUANTIZATIONS = ("int8", "int16", "float16", "bfloat16")
INSTALL_HINT = f"pip install 'seq2seq_cli[ct2]' (ctranslate2=={CT2_VERSION})"


def is_exported_model(path: str | Path) -> bool:
    """True when `path` is a folder written by `seq2seq export` (decoded with CTranslate2, not torch)."""
    path = Path(path)
    return path.is_dir() and (path / METADATA).is_file()


def import_ctranslate2() -> Any:
    """The ctranslate2 module, or a ConfigError saying how to install it."""
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError(f"CTranslate2 is not installed; {INSTALL_HINT}") from None
    return ctranslate2


def read_metadata(folder: Path) -> dict[str, Any]:
    """DIR/seq2seq_export.json, checked for a format this version reads."""
    path = Path(folder) / METADATA
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable export metadata ({exc}); re-run seq2seq export") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: export format {version!r} is not one this seq2seq_cli reads "
                              f"(up to {FORMAT_VERSION}); upgrade seq2seq_cli or re-export")
    return meta
