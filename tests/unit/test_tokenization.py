"""The built-in tokenizers, fairseq dict.txt loading, tokenizer configs from flags, and streaming text reads."""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from seq2seq_cli.data.text import check_parallel, count_lines, read_lines, read_sampled_lines, sample_indices
from seq2seq_cli.errors import ConfigError, DataError, DataFormatError, UnknownComponentError
from seq2seq_cli.registry import TOKENIZERS
from seq2seq_cli.tokenization.base import SpecialTokens, Tokenizer
from seq2seq_cli.tokenization.build import load_tokenizer_file, tokenizer_config
from seq2seq_cli.tokenization.fairseq_dict import load_fairseq_dict, read_fairseq_dict
from tests.conftest import BIBLE_SAMPLE

TRAIN = [line for lang in ("es", "en") for line in (BIBLE_SAMPLE / f"train.{lang}").read_text().splitlines()[:300]]
# Unseen characters, runs of spaces, NBSP and a ligature that NFKC rewrites
TRICKY = ["  Hola,   mundo!  ", "naïve café 漢字 \u00a0 x", "ﬁn del capítulo", "EN el principio crió Dios."]
SUBWORD_KINDS = ["bpe", "unigram", "char", "bytelevel-bpe"]  # decode(encode(x)) == normalized x, even unseen chars


def normalized(text: str, form: str = "NFKC", lower: bool = False) -> str:
    """What the built-in normalizers produce, computed independently: Unicode form, lowercase, spaces collapsed."""
    text = unicodedata.normalize(form, text) if form != "none" else text
    return " ".join((text.lower() if lower else text).split())


def train(name: str, lines: list[str] = TRAIN, **fields) -> Tokenizer:
    cls = TOKENIZERS.get(name)
    vocab = {"vocab_size": 400} if name != "none" else {}
    return cls.train(cls.Config(**{**vocab, **fields}), iter(lines), len(lines))


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Tokenizer]:
    return {name: train(name) for name in ["bpe", "unigram", "char", "wordpiece", "bytelevel-bpe", "none"]}


@pytest.mark.parametrize("name", ["bpe", "unigram", "char", "wordpiece", "bytelevel-bpe", "none"])
def test_special_ids_are_fairseqs_and_json_round_trip_keeps_ids(tokenizers, name):
    tok = tokenizers[name]
    assert (tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    restored = Tokenizer.from_json(tok.to_json())
    assert type(restored) is Tokenizer  # no need for the class that trained it
    assert restored.encode_batch(TRAIN[:50] + TRICKY) == tok.encode_batch(TRAIN[:50] + TRICKY)
    assert restored.vocab_size == tok.vocab_size


@pytest.mark.parametrize("name", SUBWORD_KINDS)
def test_subword_round_trip_even_for_unseen_characters(tokenizers, name):
    tok = tokenizers[name]
    texts = TRAIN[::7] + TRICKY
    ids = tok.encode_batch(texts)
    assert tok.decode_batch(ids) == [normalized(t) for t in texts]
    assert all(tok.unk_id not in x and x for x in ids)  # nothing unknown: bytes cover it


def test_wordpiece_round_trip_on_known_text_and_unk_for_unseen(tokenizers):
    tok = tokenizers["wordpiece"]
    texts = TRAIN[::7]
    assert tok.decode_batch(tok.encode_batch(texts)) == [normalized(t) for t in texts]
    (ids,) = tok.encode_batch(["Dios 漢字 Dios"])
    assert tok.unk_id in ids and tok.decode_batch([ids]) == ["Dios Dios"]


def test_none_splits_on_whitespace_and_joins_with_spaces(tokenizers):
    tok = tokenizers["none"]
    line = TRAIN[0]  # "EN el principio crió Dios los cielos y la tierra."
    (ids,) = tok.encode_batch(["  " + line.replace(" ", "   ") + " "])
    assert len(ids) == len(line.split()) and tok.decode_batch([ids]) == [line]
    assert tok.tokens(ids) == line.split()
    assert tok.encode_batch(["zzqq"]) == [[tok.unk_id]]


def test_vocab_size_is_the_total(tokenizers):
    for name in ["bpe", "unigram", "wordpiece", "bytelevel-bpe"]:
        assert tokenizers[name].vocab_size == 400, name
    assert 260 < tokenizers["char"].vocab_size <= 400  # specials + bytes + the characters seen


def test_char_keeps_the_most_frequent_characters_and_falls_back_to_bytes():
    tok = train("char", vocab_size=4 + 256 + 10)
    assert tok.vocab_size == 270
    text = "ñandú"
    (ids,) = tok.encode_batch([text])
    assert len(ids) > len(text) + 1  # rare characters became several byte tokens
    assert tok.decode_batch([ids]) == [text]


@pytest.mark.parametrize("form", ["nfc", "nfd", "nfkd", "none"])
def test_normalization_option(form):
    tok = train("bpe", normalization=form)
    text = "ﬁn  de Cañón"
    (ids,) = tok.encode_batch([text])
    expected = normalized(text, form.upper() if form != "none" else "none")
    assert tok.decode_batch([ids]) == [expected]
    assert ("ﬁ" in expected) == (form in ("nfc", "nfd", "none"))  # only the K forms rewrite the ligature


def test_lowercase_option():
    tok = train("unigram", lines=TRAIN[:100], lowercase=True)
    assert tok.decode_batch(tok.encode_batch(["EN el PRINCIPIO"])) == ["en el principio"]


def test_min_frequency_changes_the_vocabulary():
    low, high = train("none", min_frequency=1), train("none", min_frequency=3)
    assert high.vocab_size < low.vocab_size


@pytest.mark.parametrize("fields, message", [
    ({"vocab_size": 200}, "vocab_size 200 is too small; it needs at least 261"),
    ({"normalization": "nfx"}, "normalization 'nfx' is not one of nfkc, nfc, nfd, nfkd, none"),
    ({"min_frequency": -1}, "min_frequency must be >= 0"),
])
def test_config_checks(fields, message):
    with pytest.raises(ConfigError, match=message):
        train("bpe", lines=TRAIN[:10], **fields)


def test_tokenizer_config_from_flags_and_opts():
    cfg = tokenizer_config("wordpiece", {"--vocab-size": 500, "--lowercase": None},
                           ["max_input_chars_per_word=20", "min-frequency=3"])
    assert (cfg.vocab_size, cfg.lowercase, cfg.max_input_chars_per_word, cfg.min_frequency) == (500, False, 20, 3)
    with pytest.raises(ConfigError, match="--min-frequency: tokenizer 'unigram' has no min_frequency setting"):
        tokenizer_config("unigram", {"--min-frequency": 2})
    with pytest.raises(ConfigError, match="--tokenizer-opt 'nope=1': .*has no field 'nope'"):
        tokenizer_config("bpe", {}, ["nope=1"])
    with pytest.raises(UnknownComponentError, match=r"unknown tokenizer 'bpee' \(--tokenizer\); available: .*bpe"):
        tokenizer_config("bpee", {})


# --- fairseq dict.txt and tokenizer files -----------------------------------------------------------------------

def test_fairseq_dict_gives_fairseqs_ids(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("the 120\nDi@@ 30\nos 29\n<unk> 1 #fairseq:overwrite\nmadeupword0000 0\n", encoding="utf-8")
    vocab = read_fairseq_dict(path)
    assert vocab == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "the": 4, "Di@@": 5, "os": 6,
                     "madeupword0000": 7}
    tok = load_fairseq_dict(path)
    assert tok.encode_batch(["the  Di@@ os xyz"]) == [[4, 5, 6, 3]]
    assert tok.decode_batch([[4, 5, 6, 2]]) == ["the Di@@ os"]


@pytest.mark.parametrize("content, message", [
    ("a 1\nb 2\na 3\n", r"line 3: duplicate token 'a'; mark the line with #fairseq:overwrite"),
    ("a 1\nb\n", r"line 2: expected 'TOKEN COUNT \[#fairseq:overwrite\]', got 'b'"),
    ("a x\n", r"line 1: expected 'TOKEN COUNT"),
])
def test_fairseq_dict_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "dict.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"{path}, {message}"):
        read_fairseq_dict(path)


def third_party_tokenizer(path: Path) -> Path:
    """A tokenizer.json made without seq2seq_cli, with other special names and truncation switched on."""
    from tokenizers import Tokenizer as HF
    from tokenizers import models, pre_tokenizers, trainers

    hf = HF(models.WordLevel(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf.train_from_iterator(TRAIN, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[BOS]", "[EOS]"],
                                                            show_progress=False))
    hf.enable_truncation(3)
    hf.save(str(path))
    return path


def test_third_party_tokenizer_with_mapped_specials(tmp_path):
    path = third_party_tokenizer(tmp_path / "tokenizer.json")
    names = {"bos": "[BOS]", "pad": "[PAD]", "eos": "[EOS]", "unk": "[UNK]"}
    tok = load_tokenizer_file(path, "--tokenizer-path", names)
    assert (tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id) == (2, 0, 3, 1)
    assert len(tok.encode_batch([TRAIN[0]])[0]) == len(TRAIN[0].split())  # the file's truncation is off
    restored = Tokenizer.from_json(tok.to_json())  # the mapping travels with the JSON
    assert restored.specials == SpecialTokens(bos="[BOS]", pad="[PAD]", eos="[EOS]", unk="[UNK]")


def test_third_party_tokenizer_missing_special_names_the_flag(tmp_path):
    path = third_party_tokenizer(tmp_path / "tokenizer.json")
    with pytest.raises(ConfigError, match=rf"--tokenizer-path {path}: the tokenizer has no bos token '<s>'; "
                                          r"name the one it uses with --bos-token"):
        load_tokenizer_file(path, "--tokenizer-path", {"bos": None, "pad": "[PAD]", "eos": "[EOS]", "unk": "[UNK]"})


# --- streaming text ---------------------------------------------------------------------------------------------

def test_count_and_read_lines_agree(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("uno\r\ndos\n\ntres\rmás\ncuatro".encode())  # CRLF, an empty line, a lone CR, no final newline
    assert count_lines(path) == 5
    assert list(read_lines(path)) == ["uno", "dos", "", "tres\rmás", "cuatro"]


def test_invalid_utf8_names_file_and_line(tmp_path, monkeypatch):
    import seq2seq_cli.data.text as text

    monkeypatch.setattr(text, "BLOCK_BYTES", 7)  # many blocks: the line number must survive block boundaries
    path = tmp_path / "bad.es"
    path.write_bytes("año uno\nño dos\n".encode() + b"tres \xff\n" + "cuatro\n".encode())
    with pytest.raises(DataError, match=rf"{path}, line 3: not valid UTF-8 .*at byte 6 of the line"):
        count_lines(path)


def test_check_parallel_names_both_files_and_counts(tmp_path):
    (tmp_path / "a.es").write_text("1\n2\n3\n")
    (tmp_path / "a.en").write_text("1\n2\n")
    with pytest.raises(DataError, match=rf"{tmp_path / 'a.es'} has 3 lines but {tmp_path / 'a.en'} has 2"):
        check_parallel(tmp_path / "a.es", tmp_path / "a.en")
    with pytest.raises(DataError, match=r"a.fr: no such file \(from --trainpref\)"):
        check_parallel(tmp_path / "a.fr", tmp_path / "a.en", "--trainpref")


def test_sample_is_uniform_seeded_and_streamed(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    indices = sample_indices(100, 10, seed=1)
    assert indices == sorted(set(indices)) and len(indices) == 10
    assert indices == sample_indices(100, 10, seed=1) != sample_indices(100, 10, seed=2)
    assert list(read_sampled_lines(path, indices)) == [f"line {i}" for i in indices]
    assert sample_indices(100, 100, seed=1) is None  # the whole file
    assert json.dumps(indices)  # plain ints
