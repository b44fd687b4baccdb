"""DATA_DIR: what `seq2seq preprocess` writes and `train`/`generate` read (docs/data-format.md describes it).

```
meta.json                 format_version, tool_version, langs, joined, tokenizers, splits, filtering, files
tokenizer.json            one tokenizer for both languages (joined), or tokenizer.{lang}.json, one per language
{split}.{lang}.bin/.idx   token ids (indexed.py)
```
`DataDir(path)` validates meta.json (including its own checksum, `meta_sha256`); datasets and tokenizers are opened
on demand; `verify()` checks every file (or the files of some splits) against the sha256 recorded in meta.json.

Writing is atomic at the folder level: preprocess builds everything in a hidden staging folder beside the
destination (`staging_dir`) and renames it into place at the end (`publish`), so an interrupted run never leaves a
folder that looks finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from seq2seq_cli.data.indexed import IndexedDataset
from seq2seq_cli.errors import ConfigError, DataError, DataFormatError
from seq2seq_cli.tokenization.base import Tokenizer

META_FILE = "meta.json"
META_DIGEST = "meta_sha256"  # meta.json's checksum of its own other fields (absent in older folders: not checked)
FORMAT_VERSION = 1
_REQUIRED = ("format_version", "langs", "joined", "tokenizers", "splits", "files")


class DataDir:
    """A preprocessed DATA_DIR, read-only.

    Raises (on construction):
        DataFormatError: meta.json is missing, not JSON, lacks a field, or comes from a newer format.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.src_lang: str = self.meta["langs"]["src"]
        self.tgt_lang: str = self.meta["langs"]["tgt"]
        self.joined: bool = bool(self.meta["joined"])
        self.splits: list[str] = list(self.meta["splits"])
        # `preprocess --only-source`: one language (src == tgt), one file a split, for a language model
        self.monolingual: bool = bool(self.meta.get("monolingual", False))
        self._tokenizers: dict[str, Tokenizer] = {}  # by file name, so a joined tokenizer is one object

    @property
    def langs(self) -> list[str]:
        """The languages held, source first (one for a monolingual DATA_DIR)."""
        return list(dict.fromkeys([self.src_lang, self.tgt_lang]))

    def _check_lang(self, lang: str) -> None:
        if lang not in self.langs:
            raise DataError(f"{self.path}: no language {lang!r}; it holds {' and '.join(self.langs)}")

    def tokenizer_file(self, lang: str) -> Path:
        """The tokenizer.json file of `lang` (the same file for both languages when joined)."""
        self._check_lang(lang)
        return self.path / self.meta["tokenizers"][lang]["file"]

    def tokenizer_json(self, lang: str) -> str:
        """The tokenizer JSON text of `lang` (what checkpoints store)."""
        path = self.tokenizer_file(lang)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataFormatError(f"{path}: missing from the DATA_DIR; re-run seq2seq preprocess") from None
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path}: damaged (not UTF-8 at byte {exc.start}); re-run seq2seq preprocess") \
                from None

    def tokenizer(self, lang: str) -> Tokenizer:
        """The tokenizer of `lang`; one shared object for both languages when the dictionary is joined."""
        name = self.tokenizer_file(lang).name
        if name not in self._tokenizers:
            self._tokenizers[name] = Tokenizer.from_json(self.tokenizer_json(lang), source=str(self.path / name))
        return self._tokenizers[name]

    def dataset(self, split: str, lang: str) -> IndexedDataset:
        """The binarized sentences of `split` in `lang`.

        Raises:
            DataError: no such split or language (naming the file and what exists).
            DataFormatError: the files are damaged or disagree with meta.json.
        """
        self._check_lang(lang)
        if split not in self.splits:
            raise DataError(f"{self.path / f'{split}.{lang}.bin'}: no split {split!r} in {self.path} "
                            f"(it has: {', '.join(self.splits) or 'none'})")
        ds = IndexedDataset(self.path / f"{split}.{lang}")
        expected = self.meta["splits"][split]["sentences"]
        if len(ds) != expected:
            raise DataFormatError(f"{ds.idx_path}: {len(ds)} sentences, but meta.json says {expected}; "
                                  f"re-run seq2seq preprocess")
        return ds

    def split_files(self, split: str) -> list[str]:
        """The files that reading `split` touches: its .bin/.idx in both languages and the tokenizer file(s)."""
        tokenizers = dict.fromkeys(self.tokenizer_file(lang).name for lang in self.langs)
        return [f"{split}.{lang}.{ext}" for lang in self.langs for ext in ("idx", "bin")] + list(tokenizers)

    def verify(self, names: Iterable[str] | None = None) -> None:
        """Check every file listed in meta.json (or only `names`) against its recorded size and sha256.

        Raises:
            DataFormatError: a file is missing or its content changed (naming it).
        """
        wanted = None if names is None else set(names)
        for name, expected in self.meta["files"].items():
            if wanted is not None and name not in wanted:
                continue
            path = self.path / name
            if not path.is_file():
                raise DataFormatError(f"{path}: listed in meta.json but missing; re-run seq2seq preprocess")
            size = path.stat().st_size
            digest = file_sha256(path) if size == expected["bytes"] else None
            if digest != expected["sha256"]:
                found = f"sha256 {digest}" if digest else f"{size} bytes instead of {expected['bytes']}"
                raise DataFormatError(f"{path}: checksum mismatch ({found}); the file is damaged or was changed "
                                      f"after preprocessing; re-run seq2seq preprocess")


def read_meta(path: Path) -> dict[str, Any]:
    """Load and check DATA_DIR/meta.json."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        what = "no such folder" if not Path(path).exists() else f"no {META_FILE}"
        raise DataFormatError(f"{path}: not a DATA_DIR ({what}); create one with seq2seq preprocess")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{meta_path}: damaged ({exc}); re-run seq2seq preprocess") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("format_version"), int):
        raise DataFormatError(f"{meta_path}: no format_version; not written by seq2seq preprocess")
    if meta["format_version"] > FORMAT_VERSION:
        raise DataFormatError(f"{meta_path}: format v{meta['format_version']} is newer than this seq2seq_cli "
                              f"(reads v{FORMAT_VERSION}); upgrade seq2seq_cli")
    if META_DIGEST in meta and meta.pop(META_DIGEST) != meta_digest(meta):
        raise DataFormatError(f"{meta_path}: damaged (its content does not match its {META_DIGEST}; a byte changed "
                              "after preprocessing); re-run seq2seq preprocess")
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise DataFormatError(f"{meta_path}: missing field(s) {', '.join(missing)}; re-run seq2seq preprocess")
    return meta


def meta_digest(meta: dict[str, Any]) -> str:
    """sha256 of meta.json's fields (without META_DIGEST) in a canonical form: sorted keys, no spaces, UTF-8."""
    text = json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` with its META_DIGEST added (last), so that any later change to meta.json is detected on reading."""
    return {**meta, META_DIGEST: meta_digest(meta)}


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def check_destination(dest: Path, force: bool, inputs: Iterable[Path]) -> None:
    """Refuse a destination that holds other data (unless `force`), or that contains an input file.

    Raises:
        ConfigError: naming --destdir and saying what to do.
    """
    dest = Path(dest)
    if not dest.exists() and not dest.is_symlink():
        return
    resolved = dest.resolve()
    for path in inputs:
        if resolved in Path(path).resolve().parents:
            raise ConfigError(f"--destdir {dest} contains the input file {path}; replacing it would delete that "
                              f"file; choose another --destdir")
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        return
    if not force:
        what = "is a file" if not dest.is_dir() else \
            f"already holds data ({', '.join(sorted(p.name for p in dest.iterdir())[:3])}, ...)"
        raise ConfigError(f"--destdir {dest} {what}; use --force to replace it, or choose another --destdir")


def staging_dir(dest: Path) -> Path:
    """A new hidden folder beside `dest`, on the same file system, so that the final rename is atomic."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))


def publish(staging: Path, dest: Path) -> None:
    """Move the finished `staging` folder to `dest`, replacing what is there (checked by check_destination)."""
    dest = Path(dest)
    old = None
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        dest.rmdir()
    elif dest.exists() or dest.is_symlink():
        # Move the old data aside first: between the two renames nothing is at dest, never a mix of old and new.
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent)) / dest.name
        os.rename(dest, old)
    os.rename(staging, dest)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)
