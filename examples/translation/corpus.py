"""The Bible es-en corpus of examples/translation: its splits as verse lists, checked or rebuilt.

The splits are defined by their verses, not by files: `splits/{train,valid,test}.verses` list them compactly, one
run of consecutive verses of a chapter a line ("Genesis 1:1-31", "Jonah 2:1"), in corpus order; expanded, they are
the `.ref` files of the shipped corpus (one reference a line, "Genesis 1:1"). `splits/SHA256SUMS` holds the
checksums of the shipped text files, to tell whether a copy or a rebuild has the very same text.

    python corpus.py check DATA SPLITS OUT     # a local copy: verify it against the verse lists, copy it to OUT
    python corpus.py sword ES.imp EN.imp SPLITS OUT   # rebuild from `mod2imp` exports of the SWORD modules
    python corpus.py ranges REF_FILE           # print the compact verse list of a .ref file (to make splits/)

Errors are one line on stderr naming the file and line, exit status 1. Standard library only (it runs before the
toolkit is needed).
"""
from __future__ import annotations

import hashlib
import html
import re
import shutil
import sys
import tempfile
from pathlib import Path

SPLITS = ("train", "valid", "test")
LANGS = ("es", "en")
_RUN = re.compile(r"^(?P<book>.+) (?P<chapter>\d+):(?P<first>\d+)(?:-(?P<last>\d+))?$")
_REF = re.compile(r"^(?P<book>.+) (?P<chapter>\d+):(?P<verse>\d+)$")


class CorpusError(Exception):
    """A corpus that does not match its verse lists (the message names the file and line)."""


def expand(verses_file: Path) -> list[str]:
    """The references of a `.verses` file, in order ("Genesis 1:1-3" -> Genesis 1:1, 1:2, 1:3)."""
    refs: list[str] = []
    for number, line in enumerate(verses_file.read_text(encoding="utf-8").splitlines(), 1):
        match = _RUN.match(line.strip())
        if not match or (match["last"] and int(match["last"]) < int(match["first"])):
            raise CorpusError(f"{verses_file} line {number}: {line!r} is not 'BOOK CHAPTER:VERSE[-VERSE]'")
        last = int(match["last"] or match["first"])
        refs += [f"{match['book']} {match['chapter']}:{v}" for v in range(int(match["first"]), last + 1)]
    return refs


def ranges(refs: list[str]) -> list[str]:
    """The compact lines of a reference list: the inverse of `expand`."""
    lines: list[str] = []
    run: tuple[str, str, int, int] | None = None  # book, chapter, first, last
    for ref in refs:
        match = _REF.match(ref)
        if not match:
            raise CorpusError(f"{ref!r} is not 'BOOK CHAPTER:VERSE'")
        book, chapter, verse = match["book"], match["chapter"], int(match["verse"])
        if run and run[:2] == (book, chapter) and verse == run[3] + 1:
            run = (book, chapter, run[2], verse)
            continue
        if run:
            lines.append(_run_line(*run))
        run = (book, chapter, verse, verse)
    if run:
        lines.append(_run_line(*run))
    return lines


def _run_line(book: str, chapter: str, first: int, last: int) -> str:
    return f"{book} {chapter}:{first}" + (f"-{last}" if last != first else "")


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CorpusError(f"{path}: missing (each split needs .es, .en and .ref files)")
    return path.read_text(encoding="utf-8").splitlines()


def check(data: Path, splits: Path) -> None:
    """Raise CorpusError unless every split of `data` has exactly the verses of `splits`, one line each."""
    for split in SPLITS:
        expected = expand(splits / f"{split}.verses")
        refs = _lines(data / f"{split}.ref")
        for number, (got, want) in enumerate(zip(refs, expected), 1):
            if got != want:
                raise CorpusError(f"{data / f'{split}.ref'} line {number}: {got!r}, but the {split} split has "
                                  f"{want!r} there ({splits / f'{split}.verses'}); this is not the shipped corpus")
        if len(refs) != len(expected):
            raise CorpusError(f"{data / f'{split}.ref'}: {len(refs)} verses, but the {split} split has "
                              f"{len(expected)} ({splits / f'{split}.verses'}); this is not the shipped corpus")
        for lang in LANGS:
            lines = _lines(data / f"{split}.{lang}")
            if len(lines) != len(refs):
                raise CorpusError(f"{data / f'{split}.{lang}'}: {len(lines)} lines, but {split}.ref lists "
                                  f"{len(refs)} verses; line i of every file is verse i")
            empty = next((i for i, line in enumerate(lines, 1) if not line.strip()), None)
            if empty is not None:
                raise CorpusError(f"{data / f'{split}.{lang}'} line {empty}: empty ({refs[empty - 1]})")


def text_differences(data: Path, splits: Path) -> list[str]:
    """The text files of `data` whose checksum differs from the shipped corpus's (splits/SHA256SUMS)."""
    sums = splits / "SHA256SUMS"
    if not sums.is_file():
        return []
    differ = []
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, name = line.split()
        if hashlib.sha256((data / name).read_bytes()).hexdigest() != digest:
            differ.append(name)
    return differ


def copy_corpus(data: Path, splits: Path, out: Path) -> None:
    """Check `data`, then copy its split files into `out` (written to a temporary folder, then renamed)."""
    check(data, splits)
    _publish(out, lambda tmp: [shutil.copyfile(data / f"{s}.{ext}", tmp / f"{s}.{ext}")
                               for s in SPLITS for ext in (*LANGS, "ref")])


def _publish(out: Path, write) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# -------------------------------------------------------------------------------------------- SWORD rebuild

# OSIS elements whose content is not verse text: footnotes and cross-references, headings, variant readings.
_DROP = re.compile(r"<(note|title|rdg)\b[^>]*?(?<!/)>.*?</\1>|<seg\b[^>]*type=\"x-variant\"[^>]*>.*?</seg>",
                   re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def clean_osis(markup: str) -> str:
    """Verse text from OSIS markup: notes, titles and variant readings removed, tags stripped, whitespace normalized."""
    text = _DROP.sub(" ", markup)
    text = html.unescape(_TAG.sub(" ", text))
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([,.;:?!)])", r"\1", text)  # a tag between a word and its punctuation left a space


def read_imp(path: Path) -> dict[str, str]:
    """{reference: verse text} from a `mod2imp` export: `$$$Book C:V` header lines, each followed by its markup."""
    verses: dict[str, str] = {}
    ref, body = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("$$$"):
            if ref is not None:
                verses[ref] = clean_osis("\n".join(body))
            ref, body = line[3:].strip(), []
        elif ref is not None:
            body.append(line)
    if ref is not None:
        verses[ref] = clean_osis("\n".join(body))
    return verses


def rebuild(imps: dict[str, Path], splits: Path, out: Path) -> None:
    """Write the splits' verses, in order, from the exports `imps` ({lang: .imp file}); refuse a missing verse."""
    texts = {lang: read_imp(path) for lang, path in imps.items()}

    def write(tmp: Path) -> None:
        for split in SPLITS:
            refs = expand(splits / f"{split}.verses")
            for lang, verses in texts.items():
                lines = []
                for ref in refs:
                    if not verses.get(ref):
                        raise CorpusError(f"{imps[lang]}: verse {ref!r} of the {split} split is missing or empty "
                                          "(another module version?)")
                    lines.append(verses[ref])
                (tmp / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
            (tmp / f"{split}.ref").write_text("\n".join(refs) + "\n", encoding="utf-8")

    _publish(out, write)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["check"] and len(argv) == 4:
            data, splits, out = map(Path, argv[1:])
            copy_corpus(data, splits, out)
        elif argv[:1] == ["sword"] and len(argv) == 5:
            es, en, splits, out = map(Path, argv[1:])
            rebuild({"es": es, "en": en}, splits, out)
        elif argv[:1] == ["ranges"] and len(argv) == 2:
            print("\n".join(ranges(_lines(Path(argv[1])))))
            return 0
        else:
            print(__doc__, file=sys.stderr)
            return 2
        differ = text_differences(out, splits)
        verb = "copied" if argv[0] == "check" else "rebuilt"
        print(f"corpus: {verb} into {out}: the verses listed in {splits}"
              + (f"; text differs from the shipped corpus in {', '.join(differ)} (BLEU may differ)" if differ
                 else "; same text as the shipped corpus" if (splits / "SHA256SUMS").is_file() else ""),
              file=sys.stderr)
        return 0
    except CorpusError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
