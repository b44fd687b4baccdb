"""The Tokenizer contract shared by preprocess, train, generate and plugins.

Every tokenizer is a Hugging Face `tokenizers.Tokenizer` pipeline (normalizer, pre-tokenizer, model, decoder) plus
the names of four special tokens. A registered subclass only says how to *build and train* one from text
(`train`); after that the pipeline's JSON is all there is: DATA_DIR/tokenizer.json and the checkpoint hold it, and
`Tokenizer.from_json` restores it without knowing which subclass made it (so a checkpoint decodes even where the
plugin that trained its tokenizer is not installed).

Ids: `encode_batch` returns ids *without* BOS/EOS; the data and model code add EOS (and BOS as the decoder's
first input) themselves.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from seq2seq_cli.errors import ConfigError


@dataclass(frozen=True)
class SpecialTokens:
    """Names of the special tokens; fairseq's spellings by default."""

    bos: str = "<s>"
    pad: str = "<pad>"
    eos: str = "</s>"
    unk: str = "<unk>"

    def as_list(self) -> list[str]:
        """In fairseq's id order (<s>=0, <pad>=1, </s>=2, <unk>=3), the order trainers are given them."""
        return [self.bos, self.pad, self.eos, self.unk]


class Tokenizer:
    """A trained tokenizer: an HF pipeline plus the ids of BOS, PAD, EOS and UNK.

    Subclasses set `Config` (a dataclass) and implement `train`.
    """

    Config: ClassVar[type]

    def __init__(self, hf_tokenizer: Any, specials: SpecialTokens = SpecialTokens()) -> None:
        self.hf = hf_tokenizer
        self.specials = specials
        ids = {}
        for role, token in (("bos", specials.bos), ("pad", specials.pad), ("eos", specials.eos),
                            ("unk", specials.unk)):
            token_id = hf_tokenizer.token_to_id(token)
            if token_id is None:
                raise ConfigError(
                    f"the tokenizer has no {role} token {token!r}; name the one it uses with --{role}-token"
                )
            ids[role] = token_id
        self.bos_id, self.pad_id, self.eos_id, self.unk_id = ids["bos"], ids["pad"], ids["eos"], ids["unk"]

    @classmethod
    def train(cls, cfg: Any, lines: Iterable[str], length: int | None = None,
              specials: SpecialTokens = SpecialTokens()) -> "Tokenizer":
        """Train a tokenizer of this kind on `lines` (an iterator: the corpus is never held whole)."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without BOS/EOS."""
        return [enc.ids for enc in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode_batch(self, ids: list[list[int]]) -> list[str]:
        """Detokenized text of each id list; special tokens are dropped."""
        return self.hf.decode_batch([list(map(int, x)) for x in ids], skip_special_tokens=True)

    def tokens(self, ids: list[int]) -> list[str]:
        """The token strings of `ids` (for fairseq-style H- lines and JSON output)."""
        return [self.hf.id_to_token(int(i)) or self.specials.unk for i in ids]

    def to_json(self) -> str:
        """The whole pipeline plus the special token names and the pipeline's checksum, as one JSON document."""
        data = json.loads(self.hf.to_str())
        data["seq2seq_cli"] = {"specials": dataclasses.asdict(self.specials), "sha256": pipeline_digest(data)}
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, specials: SpecialTokens | None = None, source: str = "tokenizer") -> "Tokenizer":
        """Restore a tokenizer saved by `to_json` (or a third party's tokenizer.json with `specials` given)."""
        from tokenizers import Tokenizer as HFTokenizer

        try:
            data = json.loads(text)
            extra = data.pop("seq2seq_cli", None) if isinstance(data, dict) else None
        except Exception as exc:
            raise ConfigError(f"{source}: not a valid tokenizer.json ({exc}); re-run preprocess") from None
        if not isinstance(extra, (dict, type(None))) or (extra and not isinstance(extra.get("specials", {}), dict)):
            raise ConfigError(f"{source}: damaged tokenizer.json (bad 'seq2seq_cli' entry); re-run preprocess")
        if extra and "sha256" in extra and extra["sha256"] != pipeline_digest(data):
            raise ConfigError(f"{source}: damaged tokenizer.json (its content does not match the sha256 it carries: "
                              "a byte changed after it was written); use an undamaged copy or re-run preprocess")
        try:
            hf = HFTokenizer.from_str(json.dumps(data))
        except Exception as exc:  # the tokenizers library raises plain Exceptions for bad JSON
            raise ConfigError(f"{source}: not a valid tokenizer.json ({exc}); re-run preprocess") from None
        if specials is None:
            try:
                specials = SpecialTokens(**extra["specials"]) if extra else SpecialTokens()
            except (KeyError, TypeError):
                raise ConfigError(f"{source}: damaged tokenizer.json (bad special token names); re-run preprocess"
                                  ) from None
        try:
            return Tokenizer(hf, specials)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def pipeline_digest(data: dict[str, Any]) -> str:
    """sha256 of a tokenizer.json's pipeline (without the "seq2seq_cli" key) in canonical JSON: sorted keys, no spaces.

    Stored by `to_json` and checked by `from_json`, so that a changed byte in a vocabulary is an error, not a
    silently different tokenizer. Third-party files carry none and are not checked.
    """
    text = json.dumps({k: v for k, v in data.items() if k != "seq2seq_cli"}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
