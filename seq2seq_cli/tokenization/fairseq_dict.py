"""fairseq `dict.txt` files as `none` tokenizers, so a fairseq data setup (BPE'd text + dictionaries) carries over.

A dict.txt line is `TOKEN COUNT` or `TOKEN COUNT #fairseq:overwrite`; the count is ignored here (the file order
already reflects it). fairseq's Dictionary puts <s> <pad> </s> <unk> at ids 0-3 and the file's tokens after them
in file order, and so does the tokenizer built here: ids are the same as fairseq's.

Limitation: a token marked `#fairseq:overwrite` that is already present (fairseq appends a second entry for it)
keeps its first id, so ids after it differ from fairseq's in that rare case.
"""
from __future__ import annotations

import logging
from pathlib import Path

from seq2seq_cli.errors import DataFormatError
from seq2seq_cli.tokenization.base import SpecialTokens, Tokenizer

logger = logging.getLogger(__name__)

OVERWRITE_FLAG = "#fairseq:overwrite"


def read_fairseq_dict(path: Path, specials: SpecialTokens = SpecialTokens()) -> dict[str, int]:
    """token -> id: the special tokens first (ids 0-3), then the file's tokens in order.

    Raises:
        DataFormatError: the file is missing, not UTF-8, or has a malformed line or an unflagged duplicate
            (naming the file and line).
    """
    path = Path(path)
    vocab = {token: i for i, token in enumerate(specials.as_list())}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such dictionary file") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not valid UTF-8 ({exc.reason}); a dict.txt is UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), start=1):
        token, overwrite = _parse_line(path, number, line)
        if token in vocab:
            if not overwrite and token not in specials.as_list():
                raise DataFormatError(f"{path}, line {number}: duplicate token {token!r}; mark the line with "
                                      f"{OVERWRITE_FLAG} if that is intended")
            logger.debug("%s, line %d: %r already has id %d; keeping it", path, number, token, vocab[token])
            continue
        vocab[token] = len(vocab)
    return vocab


def _parse_line(path: Path, number: int, line: str) -> tuple[str, bool]:
    fields = line.rstrip().rsplit(" ", 1)
    overwrite = len(fields) == 2 and fields[1] == OVERWRITE_FLAG
    if overwrite:
        fields = fields[0].rsplit(" ", 1)
    if len(fields) != 2 or not fields[0] or not fields[1].lstrip("-").isdigit():
        raise DataFormatError(f"{path}, line {number}: expected 'TOKEN COUNT [{OVERWRITE_FLAG}]', got {line!r}")
    return fields[0], overwrite


def load_fairseq_dict(path: Path, specials: SpecialTokens = SpecialTokens()) -> Tokenizer:
    """A `none` tokenizer (whitespace split, WordLevel, decode joins with spaces) over the tokens of dict.txt."""
    from seq2seq_cli.tokenization.hf import NoneConfig, NoneTokenizer, build_none_pipeline

    vocab = read_fairseq_dict(path, specials)
    hf = build_none_pipeline(vocab, NoneConfig(), specials)
    hf.add_special_tokens(specials.as_list())  # already in the vocabulary (ids 0-3); this marks them special
    return NoneTokenizer(hf, specials)
