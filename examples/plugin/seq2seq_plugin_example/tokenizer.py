"""`lowercase-word`: a word-level tokenizer that lowercases and splits on whitespace and punctuation.

It shows the whole contract of a tokenizer plugin: subclass `seq2seq_cli.tokenization.base.Tokenizer`, give it a
dataclass `Config` (its fields are what `seq2seq list tokenizer` shows and `--tokenizer-opt` may set), and build and
train a Hugging Face `tokenizers` pipeline in `train`. Nothing else is needed at generate time: the pipeline's JSON
is saved in DATA_DIR and in checkpoints, and it decodes without this package.

Limitation: decoding joins words with spaces, so punctuation comes back detached ("hello , world") and the case is
lost; fine for a demonstration, not for a published BLEU score.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from seq2seq_cli.registry import TOKENIZERS
from seq2seq_cli.tokenization.base import SpecialTokens, Tokenizer


@TOKENIZERS.register("lowercase-word")
class LowercaseWordTokenizer(Tokenizer):
    """Lowercased words and punctuation marks, one token each (a WordLevel vocabulary)."""

    @dataclass(frozen=True)
    class Config:
        """Options of the lowercase-word tokenizer."""

        vocab_size: int = field(default=8000, metadata={"help": "Most frequent words kept (specials included)."})
        min_frequency: int = field(default=1, metadata={"help": "Words seen fewer times become <unk>."})

    @classmethod
    def train(cls, cfg: Config, lines: Iterable[str], length: int | None = None,
              specials: SpecialTokens = SpecialTokens()) -> "LowercaseWordTokenizer":
        """Train the vocabulary on `lines` (streamed: the corpus is never held whole)."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, normalizers, pre_tokenizers, trainers

        hf = HFTokenizer(models.WordLevel(unk_token=specials.unk))
        hf.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        hf.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+ runs and punctuation runs
        trainer = trainers.WordLevelTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                            special_tokens=specials.as_list(), show_progress=False)
        hf.train_from_iterator(lines, trainer=trainer, length=length)
        return cls(hf, specials)
