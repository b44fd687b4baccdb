"""TSV manifests of audio: one utterance per line, fairseq S2T's layout.

```
id      audio               n_frames   tgt_text
utt1    clips/utt1.wav      312        In the beginning God created the heaven and the earth.
```
Columns are tab-separated (no quoting). With a header line (its first field is `id`), columns are found by name:
`id` and `audio` are required, `tgt_text` too when the target is needed (preprocess), `n_frames` and any other
column (speaker, src_text, ...) are read past. Without a header, the first line's column count decides: 2 columns
are id, audio; 3 are id, audio, tgt_text; 4 are id, audio, n_frames, tgt_text. `n_frames` is never trusted: the
features are computed from the audio. A relative audio path is relative to the manifest's folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seq2seq_cli.errors import DataError

REQUIRED = ("id", "audio")
TEXT = "tgt_text"
_POSITIONAL = {2: ("id", "audio"), 3: ("id", "audio", TEXT), 4: ("id", "audio", "n_frames", TEXT)}


@dataclass(frozen=True)
class ManifestRow:
    """One utterance: its id, its audio file (resolved), its target text (None if the manifest has none)."""

    id: str
    audio: Path
    text: str | None
    line: int  # 1-based line number in the manifest

    def where(self, manifest: Path) -> str:
        return f"{manifest}, line {self.line} (id {self.id})"


def read_manifest(path: Path, flag: str, need_text: bool) -> list[ManifestRow]:
    """Every row of the manifest at `path`.

    Args:
        flag: the flag that named the file, for messages (e.g. "--trainpref").
        need_text: the tgt_text column is required.

    Raises:
        DataError: the file is missing, not UTF-8, empty, lacks a column, or has a row of the wrong width.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such manifest (from {flag}); a manifest is a TSV file with columns id, audio, "
                        "n_frames, tgt_text")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason}); convert the manifest to UTF-8") from None
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty manifest (from {flag}); nothing to read")
    first = lines[0].rstrip("\r").split("\t")
    header = first[0] == "id"
    columns = _columns(path, first, header, need_text)
    rows = []
    for number, raw in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        fields = raw.rstrip("\r").split("\t")
        if len(fields) != len(columns):
            raise DataError(f"{path}, line {number}: {len(fields)} tab-separated column(s), expected {len(columns)} "
                            f"({', '.join(columns)})")
        row = dict(zip(columns, fields))
        if not row["id"] or not row["audio"]:
            raise DataError(f"{path}, line {number}: empty {'id' if not row['id'] else 'audio'} column")
        audio = Path(row["audio"])
        rows.append(ManifestRow(row["id"], audio if audio.is_absolute() else path.parent / audio,
                                row.get(TEXT), number))
    return rows


def _columns(path: Path, first: list[str], header: bool, need_text: bool) -> list[str]:
    required = REQUIRED + ((TEXT,) if need_text else ())
    if header:
        missing = [name for name in required if name not in first]
        if missing:
            raise DataError(f"{path}, line 1: the header lacks column(s) {', '.join(missing)} (it has "
                            f"{', '.join(first)}); a manifest needs {', '.join(required)}")
        return first
    columns = _POSITIONAL.get(len(first))
    if columns is None or (need_text and TEXT not in columns):
        raise DataError(f"{path}, line 1: {len(first)} tab-separated column(s) and no header; expected "
                        f"{'id, audio, tgt_text' if need_text else 'id, audio'} (or fairseq's id, audio, n_frames, "
                        "tgt_text), or a header line naming the columns")
    return list(columns)
