"""Word error rate with jiwer, shaped like a sacreBLEU metric so that `score --metrics wer` reuses scoring.py.

WER = (substitutions + deletions + insertions) / reference words, in percent (lower is better), over the whole
corpus (errors and words summed over segments, not an average of segment rates). Words are whitespace-separated
(jiwer's default transform: surrounding and repeated spaces do not count); case matters unless --lowercase;
punctuation is part of a word, as in the references, unless --wer-remove-punct: then every punctuation character
(Unicode category P*, the apostrophe included) is deleted from both sides and a word left empty disappears, so
"mercy." equals "mercy" and "doves’" equals "doves". One reference per segment.

fairseq's --wer-remove-punct drops only the tokens that are all punctuation (after its --wer-tokenizer split
them off); deleting the characters gives the same count on untokenized text, which is what `generate` writes.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from importlib.metadata import version
from typing import Sequence

from seq2seq_cli.errors import ConfigError, DataError
from seq2seq_cli.speech import require


@dataclass
class WERScore:
    """Attributes named as sacreBLEU's scores' (name, score, _verbose), which scoring.py reads."""

    score: float
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    name: str = "WER"

    @property
    def _verbose(self) -> str:
        return f"(S {self.substitutions}, D {self.deletions}, I {self.insertions}, N {self.ref_words})"


class WERSignature:
    def __init__(self, lowercase: bool, remove_punct: bool = False) -> None:
        punct = "|punct:removed" if remove_punct else ""
        self.text = (f"nrefs:1|case:{'lc' if lowercase else 'mixed'}{punct}|tok:words|"
                     f"version:jiwer-{version('jiwer')}")

    def format(self) -> str:
        return self.text


class WER:
    """`WER(lowercase, remove_punct, references=[[ref, ...]])`; `corpus_score(hyps, None)`, `sentence_score(hyp,
    [ref])`."""

    def __init__(self, lowercase: bool = False, remove_punct: bool = False,
                 references: Sequence[Sequence[str]] | None = None) -> None:
        require("jiwer", "--metrics wer")
        if references is not None and len(references) != 1:
            raise ConfigError(f"--metrics wer takes one --ref, not {len(references)}")
        self.lowercase, self.remove_punct = lowercase, remove_punct
        self.refs = list(references[0]) if references is not None else None

    def _prepare(self, lines: Sequence[str]) -> list[str]:
        lines = [line.lower() for line in lines] if self.lowercase else list(lines)
        return [remove_punctuation(line) for line in lines] if self.remove_punct else lines

    def _score(self, hyps: Sequence[str], refs: Sequence[str]) -> WERScore:
        import jiwer

        out = jiwer.process_words(self._prepare(refs), self._prepare(hyps))
        words = out.hits + out.substitutions + out.deletions
        if words == 0:
            raise DataError("the references hold no words; WER is undefined")
        errors = out.substitutions + out.deletions + out.insertions
        return WERScore(100.0 * errors / words, out.substitutions, out.deletions, out.insertions, words)

    def corpus_score(self, hyps: Sequence[str], references: Sequence[Sequence[str]] | None) -> WERScore:
        """Corpus WER of `hyps` against the given (or cached) single reference."""
        refs = list(references[0]) if references is not None else self.refs
        if refs is None:
            raise ValueError("WER.corpus_score needs references")
        return self._score(hyps, refs)

    def sentence_score(self, hyp: str, refs: Sequence[str]) -> WERScore:
        if len(refs) != 1:
            raise ConfigError(f"--metrics wer takes one --ref, not {len(refs)}")
        return self._score([hyp], [refs[0]])

    def get_signature(self) -> WERSignature:
        return WERSignature(self.lowercase, self.remove_punct)


def remove_punctuation(line: str) -> str:
    """`line` without its punctuation characters; words left empty disappear ("a , b." -> "a b")."""
    kept = "".join(c for c in line if not unicodedata.category(c).startswith("P"))
    return " ".join(kept.split())
