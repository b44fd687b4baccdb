"""The built-in tokenizers, each a Hugging Face `tokenizers` pipeline trained with `train_from_iterator`.

| name            | model     | pre-tokenizer        | unknown characters          | decoding gives back        |
|-----------------|-----------|----------------------|-----------------------------|----------------------------|
| `bpe` (default) | BPE       | Metaspace ("▁")      | UTF-8 bytes (<0x..> tokens) | the normalized text        |
| `unigram`       | Unigram   | Metaspace            | UTF-8 bytes                 | the normalized text        |
| `char`          | BPE without merges | Metaspace   | UTF-8 bytes (rare chars)    | the normalized text        |
| `wordpiece`     | WordPiece ("##")   | Metaspace   | <unk> (the whole word)      | the text, minus <unk> words |
| `bytelevel-bpe` | BPE       | ByteLevel (GPT-2)    | none (256-byte alphabet)    | the normalized text        |
| `none`          | WordLevel | split on whitespace  | <unk>                       | tokens joined by one space |

Every tokenizer but `none` normalizes as `normalization` says (NFKC by default), optionally lowercases, collapses
runs of whitespace to one space and strips both ends; `none` (for text tokenized elsewhere, fairseq-style) does no
Unicode normalization unless asked. The four special tokens get ids 0-3 (fairseq's <s> <pad> </s> <unk>).

Limitations: a literal "▁" (U+2581) in the input decodes as a space in the Metaspace tokenizers (as in
sentencepiece), and a literal special token such as "</s>" in the text is encoded as that special token.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Literal

from seq2seq_cli.errors import ConfigError
from seq2seq_cli.registry import TOKENIZERS
from seq2seq_cli.tokenization.base import SpecialTokens, Tokenizer

Normalization = Literal["nfkc", "nfc", "nfd", "nfkd", "none"]
NORMALIZATIONS: tuple[str, ...] = ("nfkc", "nfc", "nfd", "nfkd", "none")
BYTE_TOKENS: list[str] = [f"<0x{b:02X}>" for b in range(256)]  # sentencepiece's names, what ByteFallback decodes
_BYTE_SET = frozenset(BYTE_TOKENS)
META = "▁"  # the Metaspace word-start marker

_NORM_HELP = {"help": "Unicode normalization: nfkc, nfc, nfd, nfkd or none."}
_LOWER_HELP = {"help": "Lowercase the text before tokenizing (decoding then gives lowercased text)."}


def _check(cfg: Any, name: str, min_vocab: int) -> None:
    """Validate the fields every built-in Config shares; ConfigError naming the field and the fix."""
    if getattr(cfg, "normalization", "none") not in NORMALIZATIONS:
        raise ConfigError(f"tokenizer {name}: normalization {cfg.normalization!r} is not one of "
                          f"{', '.join(NORMALIZATIONS)}")
    if cfg.vocab_size < min_vocab:
        raise ConfigError(f"tokenizer {name}: vocab_size {cfg.vocab_size} is too small; it needs at least "
                          f"{min_vocab} (4 special tokens{' + 256 byte tokens' if min_vocab > 256 else ''} + 1)")
    if getattr(cfg, "min_frequency", 0) < 0:
        raise ConfigError(f"tokenizer {name}: min_frequency must be >= 0, not {cfg.min_frequency}")


def build_normalizer(normalization: str, lowercase: bool, collapse_spaces: bool = True) -> Any:
    """Unicode normalization, then optional lowercasing, then whitespace runs -> one space and strip."""
    from tokenizers import Regex, normalizers

    steps: list[Any] = []
    if normalization != "none":
        steps.append(getattr(normalizers, normalization.upper())())
    if lowercase:
        steps.append(normalizers.Lowercase())
    if collapse_spaces:  # after NFKC, which turns some characters (NBSP, ideographic space) into spaces
        steps += [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    return normalizers.Sequence(steps) if steps else None


def _metaspace_pipeline(hf: Any, cfg: Any, *extra_decoders: Any) -> Any:
    """Normalizer, Metaspace pre-tokenizer and a decoder that undoes it (after `extra_decoders`)."""
    from tokenizers import decoders, pre_tokenizers

    hf.normalizer = build_normalizer(cfg.normalization, cfg.lowercase)
    hf.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    # Metaspace runs per token (it drops the marker of the first token only), so it must come before Fuse;
    # ByteFallback turns runs of <0x..> tokens back into UTF-8 characters.
    hf.decoder = decoders.Sequence([*extra_decoders,
                                    decoders.Metaspace(replacement=META, prepend_scheme="always", split=True),
                                    decoders.ByteFallback(), decoders.Fuse()])
    return hf


def add_byte_tokens(hf: Any, specials: SpecialTokens) -> Any:
    """Insert the 256 <0x..> byte tokens right after the special tokens and switch byte fallback on.

    HF trainers cannot add them themselves. Ids of the specials stay 0-3; learned tokens move up by 256.
    """
    from tokenizers import Tokenizer as HFTokenizer

    data = json.loads(hf.to_str())
    model = data["model"]
    n_special = len(specials.as_list())
    if model["type"] == "BPE":
        ordered = sorted(model["vocab"], key=model["vocab"].__getitem__)
        learned = [t for t in ordered[n_special:] if t not in _BYTE_SET]
        model["vocab"] = {t: i for i, t in enumerate(ordered[:n_special] + BYTE_TOKENS + learned)}
    else:  # Unigram: a list of [piece, log-prob]; byte pieces only ever match as a fallback
        floor = min((score for _, score in model["vocab"]), default=0.0) - 1.0
        pieces = [p for p in model["vocab"][n_special:] if p[0] not in _BYTE_SET]
        model["vocab"] = model["vocab"][:n_special] + [[b, floor] for b in BYTE_TOKENS] + pieces
    model["byte_fallback"] = True
    return HFTokenizer.from_str(json.dumps(data))


class _HFTokenizer(Tokenizer):
    """Shared `train`: build the pipeline, train it from the iterator, finish it (subclasses fill the steps)."""

    registry_name: ClassVar[str]
    min_vocab: ClassVar[int] = 5

    @classmethod
    def train(cls, cfg: Any, lines: Iterable[str], length: int | None = None,
              specials: SpecialTokens = SpecialTokens()) -> Tokenizer:
        """Train on `lines` (an iterator; the corpus is never held whole) and return the tokenizer.

        Raises:
            ConfigError: a field of `cfg` is out of range.
        """
        _check(cfg, cls.registry_name, cls.min_vocab)
        hf = cls._pipeline(cfg, specials)
        hf.train_from_iterator(lines, trainer=cls._trainer(cfg, specials), length=length)
        return cls(cls._finish(hf, specials), specials)

    @classmethod
    def _pipeline(cls, cfg: Any, specials: SpecialTokens) -> Any:
        raise NotImplementedError

    @classmethod
    def _trainer(cls, cfg: Any, specials: SpecialTokens) -> Any:
        raise NotImplementedError

    @classmethod
    def _finish(cls, hf: Any, specials: SpecialTokens) -> Any:
        return hf


@dataclass(frozen=True)
class TextNormalization:
    """The normalization fields every built-in tokenizer shares (defined once here)."""

    normalization: Normalization = field(default="nfkc", metadata=_NORM_HELP)
    lowercase: bool = field(default=False, metadata=_LOWER_HELP)


@dataclass(frozen=True)
class BpeConfig(TextNormalization):
    """Byte-pair encoding over Metaspace words, with byte fallback (the default tokenizer)."""

    vocab_size: int = field(default=8000, metadata={"help": "Total vocabulary: 4 specials + 256 byte tokens + "
                                                            "characters and merges."})
    min_frequency: int = field(default=2, metadata={"help": "A pair seen fewer times is not merged."})


@TOKENIZERS.register("bpe")
class BpeTokenizer(_HFTokenizer):
    """Subword BPE; unseen characters become UTF-8 byte tokens, so nothing is <unk> and spacing survives."""

    Config = BpeConfig
    registry_name = "bpe"
    min_vocab = 4 + 256 + 1

    @classmethod
    def _pipeline(cls, cfg: BpeConfig, specials: SpecialTokens) -> Any:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models

        return _metaspace_pipeline(HFTokenizer(models.BPE(unk_token=specials.unk, byte_fallback=True)), cfg)

    @classmethod
    def _trainer(cls, cfg: BpeConfig, specials: SpecialTokens) -> Any:
        from tokenizers import trainers

        return trainers.BpeTrainer(vocab_size=cfg.vocab_size - 256, min_frequency=cfg.min_frequency,
                                   special_tokens=specials.as_list(), show_progress=False)

    @classmethod
    def _finish(cls, hf: Any, specials: SpecialTokens) -> Any:
        return add_byte_tokens(hf, specials)


@dataclass(frozen=True)
class UnigramConfig(TextNormalization):
    """A unigram language model over Metaspace words (sentencepiece's default), with byte fallback."""

    vocab_size: int = field(default=8000, metadata={"help": "Total vocabulary, 256 byte tokens included."})
    max_piece_length: int = field(default=16, metadata={"help": "Longest piece, in characters."})
    shrinking_factor: float = field(default=0.75, metadata={"help": "Share of pieces kept at each pruning step."})


@TOKENIZERS.register("unigram")
class UnigramTokenizer(_HFTokenizer):
    """Subword unigram LM (as sentencepiece); unseen characters become UTF-8 byte tokens."""

    Config = UnigramConfig
    registry_name = "unigram"
    min_vocab = 4 + 256 + 1

    @classmethod
    def _pipeline(cls, cfg: UnigramConfig, specials: SpecialTokens) -> Any:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models

        return _metaspace_pipeline(HFTokenizer(models.Unigram()), cfg)

    @classmethod
    def _trainer(cls, cfg: UnigramConfig, specials: SpecialTokens) -> Any:
        from tokenizers import trainers

        return trainers.UnigramTrainer(vocab_size=cfg.vocab_size - 256, special_tokens=specials.as_list(),
                                       unk_token=specials.unk, max_piece_length=cfg.max_piece_length,
                                       shrinking_factor=cfg.shrinking_factor, show_progress=False)

    @classmethod
    def _finish(cls, hf: Any, specials: SpecialTokens) -> Any:
        return add_byte_tokens(hf, specials)


@dataclass(frozen=True)
class CharConfig(TextNormalization):
    """One token per character; the rarest characters (beyond vocab_size) fall back to UTF-8 bytes."""

    vocab_size: int = field(default=1000, metadata={"help": "Total vocabulary: 4 specials + 256 byte tokens + "
                                                            "the most frequent characters (and the space mark)."})


@TOKENIZERS.register("char")
class CharTokenizer(_HFTokenizer):
    """Characters: a BPE model with no merges (so it shares the Metaspace pipeline and byte fallback)."""

    Config = CharConfig
    registry_name = "char"
    min_vocab = 4 + 256 + 1

    @classmethod
    def _pipeline(cls, cfg: CharConfig, specials: SpecialTokens) -> Any:
        return BpeTokenizer._pipeline(cfg, specials)  # type: ignore[arg-type]

    @classmethod
    def _trainer(cls, cfg: CharConfig, specials: SpecialTokens) -> Any:
        from tokenizers import trainers

        # vocab_size 0: the trainer keeps the alphabet (limit_alphabet most frequent characters) and merges nothing
        return trainers.BpeTrainer(vocab_size=0, limit_alphabet=cfg.vocab_size - 4 - 256,
                                   special_tokens=specials.as_list(), show_progress=False)

    @classmethod
    def _finish(cls, hf: Any, specials: SpecialTokens) -> Any:
        return add_byte_tokens(hf, specials)


@dataclass(frozen=True)
class WordPieceConfig(TextNormalization):
    """WordPiece (greedy longest match) over Metaspace words; "##" marks a word-internal piece."""

    vocab_size: int = field(default=8000, metadata={"help": "Total vocabulary, specials included."})
    min_frequency: int = field(default=2, metadata={"help": "A pair seen fewer times is not merged."})
    max_input_chars_per_word: int = field(default=100, metadata={"help": "Longer words become <unk>."})


@TOKENIZERS.register("wordpiece")
class WordPieceTokenizer(_HFTokenizer):
    """WordPiece; a word with a character it has never seen becomes one <unk> (no byte fallback in WordPiece)."""

    Config = WordPieceConfig
    registry_name = "wordpiece"

    @classmethod
    def _pipeline(cls, cfg: WordPieceConfig, specials: SpecialTokens) -> Any:
        from tokenizers import Regex
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models

        model = models.WordPiece(unk_token=specials.unk, continuing_subword_prefix="##",
                                 max_input_chars_per_word=cfg.max_input_chars_per_word)
        # The word boundaries are the "▁" marks, so the "##" prefix is only dropped (not turned into a join).
        return _metaspace_pipeline(HFTokenizer(model), cfg, decoders.Replace(Regex("^##"), ""))

    @classmethod
    def _trainer(cls, cfg: WordPieceConfig, specials: SpecialTokens) -> Any:
        from tokenizers import trainers

        return trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                         special_tokens=specials.as_list(), continuing_subword_prefix="##",
                                         show_progress=False)


@dataclass(frozen=True)
class ByteLevelBpeConfig(TextNormalization):
    """GPT-2 style byte-level BPE: the alphabet is the 256 bytes, so nothing is ever unknown."""

    vocab_size: int = field(default=8000, metadata={"help": "Total vocabulary: specials + 256 bytes + merges."})
    min_frequency: int = field(default=2, metadata={"help": "A pair seen fewer times is not merged."})


@TOKENIZERS.register("bytelevel-bpe")
class ByteLevelBpeTokenizer(_HFTokenizer):
    """Byte-level BPE (GPT-2's pre-tokenization regex, a space prefixed to the first word and removed again)."""

    Config = ByteLevelBpeConfig
    registry_name = "bytelevel-bpe"
    min_vocab = 4 + 256 + 1

    @classmethod
    def _pipeline(cls, cfg: ByteLevelBpeConfig, specials: SpecialTokens) -> Any:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers

        hf = HFTokenizer(models.BPE())
        hf.normalizer = build_normalizer(cfg.normalization, cfg.lowercase)
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        hf.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
        return hf

    @classmethod
    def _trainer(cls, cfg: ByteLevelBpeConfig, specials: SpecialTokens) -> Any:
        from tokenizers import pre_tokenizers, trainers

        return trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                   special_tokens=specials.as_list(), show_progress=False,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


@dataclass(frozen=True)
class NoneConfig(TextNormalization):
    """Text already tokenized (e.g. BPE'd with subword-nmt): split on whitespace, one id per distinct token."""

    vocab_size: int = field(default=0, metadata={"help": "Most frequent tokens kept, specials included; 0 keeps "
                                                         "all (as fairseq's --nwordssrc -1)."})
    min_frequency: int = field(default=0, metadata={"help": "Tokens seen fewer times become <unk> (fairseq's "
                                                            "--thresholdsrc + 1)."})
    normalization: Normalization = field(default="none", metadata=_NORM_HELP)


def build_none_pipeline(vocab: dict[str, int], cfg: NoneConfig, specials: SpecialTokens) -> Any:
    """A WordLevel pipeline over whitespace-split tokens; with no decoder, HF joins tokens with one space."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    hf = HFTokenizer(models.WordLevel(vocab or None, unk_token=specials.unk))
    hf.normalizer = build_normalizer(cfg.normalization, cfg.lowercase, collapse_spaces=False)
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return hf


@TOKENIZERS.register("none")
class NoneTokenizer(_HFTokenizer):
    """Whitespace-separated tokens, as fairseq's Dictionary (and what --srcdict/--tgtdict dict.txt files build)."""

    Config = NoneConfig
    registry_name = "none"
    min_vocab = 0

    @classmethod
    def _pipeline(cls, cfg: NoneConfig, specials: SpecialTokens) -> Any:
        return build_none_pipeline({}, cfg, specials)

    @classmethod
    def _trainer(cls, cfg: NoneConfig, specials: SpecialTokens) -> Any:
        from tokenizers import trainers

        size = cfg.vocab_size if cfg.vocab_size > 0 else 2**31 - 1
        return trainers.WordLevelTrainer(vocab_size=size, min_frequency=cfg.min_frequency,
                                         special_tokens=specials.as_list(), show_progress=False)
