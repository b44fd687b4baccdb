"""Getting a tokenizer for preprocess: a registered tokenizer's config from flags, or an existing file.

- `tokenizer_config` fills a registered tokenizer's `Config` from its defaults, the common flags (--vocab-size,
  --min-frequency, --normalization, --lowercase) and `--tokenizer-opt KEY=VALUE`; a flag the tokenizer has no
  field for is an error, not silently ignored.
- `load_tokenizer_file` reads a tokenizer.json (ours or a third party's, special tokens mapped by name) or a
  fairseq dict.txt, and switches off any truncation or padding a third-party file carries (they would cut or pad
  the binarized data).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from seq2seq_cli.config import apply_overrides, coerce, field_types
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import TOKENIZERS
from seq2seq_cli.tokenization.base import SpecialTokens, Tokenizer

logger = logging.getLogger(__name__)


def tokenizer_config(name: str, common: dict[str, Any], opts: tuple[str, ...] | list[str] = ()) -> Any:
    """The Config of tokenizer `name` with the flags in `common` (flag name -> value, None = not given) and opts.

    Raises:
        UnknownComponentError: `name` is not a registered tokenizer (the message lists them).
        ConfigError: a given flag is not a field of that tokenizer's Config, or a value does not fit.
    """
    cls = TOKENIZERS.get(name, flag="--tokenizer")
    cfg = cls.Config()
    types = field_types(cls.Config)
    changes = {}
    for flag, value in common.items():
        if value is None:
            continue
        key = flag.lstrip("-").replace("-", "_")
        if key not in types:
            raise ConfigError(f"{flag}: tokenizer {name!r} has no {key} setting (its settings: "
                              f"{', '.join(types) or 'none'}); drop the flag or choose another --tokenizer")
        changes[key] = coerce(types[key], str(value), flag) if isinstance(value, str) else value
    return apply_overrides(dataclasses.replace(cfg, **changes), list(opts), flag="--tokenizer-opt")


def special_tokens(base: SpecialTokens | None = None, **names: str | None) -> SpecialTokens:
    """`base` (default: fairseq's names) with the names given (bos=..., pad=..., eos=..., unk=...) replaced."""
    base = base or SpecialTokens()
    return dataclasses.replace(base, **{k: v for k, v in names.items() if v is not None})


def load_tokenizer_file(path: Path, flag: str, names: dict[str, str | None]) -> Tokenizer:
    """A tokenizer from a tokenizer.json (by content) or a fairseq dict.txt (anything else).

    `names` maps bos/pad/eos/unk to the names given with --bos-token & co. (None = keep the file's own, or fairseq's).

    Raises:
        ConfigError: the file is missing or unreadable, or lacks one of the special tokens (naming the flag to map it).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: no such file")
    with open(path, "rb") as f:
        is_json = f.read(64).lstrip().startswith(b"{")
    if not is_json:
        from seq2seq_cli.tokenization.fairseq_dict import load_fairseq_dict

        return load_fairseq_dict(path, special_tokens(**names))
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        stored = json.loads(text).get("seq2seq_cli", {}).get("specials")
        base = SpecialTokens(**stored) if stored else None
    except (json.JSONDecodeError, AttributeError, TypeError):
        base = None  # Tokenizer.from_json reports the bad JSON or the damaged entry
    specials = special_tokens(base, **names)
    tokenizer = Tokenizer.from_json(text, specials=specials, source=f"{flag} {path}")
    if tokenizer.hf.truncation or tokenizer.hf.padding:
        logger.info("%s: switching off the file's truncation/padding settings", path)
        tokenizer.hf.no_truncation()
        tokenizer.hf.no_padding()
    return tokenizer
