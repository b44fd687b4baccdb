"""`seq2seq preprocess` through the CLI: outputs, every flag, and each bad input (exit code, message, no traceback)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path

import pytest

from seq2seq_cli.data.datadir import DataDir
from tests.conftest import REPO, invoke, write_copy_corpus

KINDS = ["bpe", "unigram", "wordpiece", "bytelevel-bpe", "char", "none"]


def pp(runner, *args):
    """Run `seq2seq preprocess ARGS`."""
    return invoke(runner, ["preprocess", *args])


def ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.stderr
    return result


def assert_error(result, *messages: str) -> None:
    """A clean failure: exit 1, `Error: ...` naming what is wrong on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.stderr.count("Error: ") == 1, result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def copy_args(raw: Path, dest: Path, *extra) -> list:
    return ["-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--validpref", raw / "valid",
            "--testpref", raw / "test", "--destdir", dest, *extra]


def decoded(dd: DataDir, split: str, lang: str) -> list[str]:
    ds = dd.dataset(split, lang)
    return dd.tokenizer(lang).decode_batch([x.tolist() for x in ds])


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_bible_sample_valid_decodes_to_the_normalized_text(runner, bible_sample, tmp_path):
    dest = tmp_path / "bin"
    result = ok(pp(runner, "-s", "es", "-t", "en", "--trainpref", bible_sample / "train", "--validpref",
                   bible_sample / "valid", "--destdir", dest, "--joined-dictionary", "--vocab-size", 1000))
    dd = DataDir(dest)
    dd.verify()
    assert dd.joined and dd.tokenizer("es") is dd.tokenizer("en") and (dest / "tokenizer.json").is_file()
    assert dd.tokenizer("es").vocab_size == 1000
    for lang in ("es", "en"):
        raw = lines(bible_sample / f"valid.{lang}")
        expected = [" ".join(unicodedata.normalize("NFKC", line).split()) for line in raw]
        assert decoded(dd, "valid", lang) == expected
        normalizer = dd.tokenizer(lang).hf.normalizer
        assert expected == [normalizer.normalize_str(line) for line in raw]
    meta = dd.meta
    assert meta["splits"]["valid"]["sentences"] == 100 and meta["splits"]["train"]["sentences"] == 2000
    assert meta["tokenizers"]["es"]["name"] == "bpe" and meta["tokenizers"]["es"]["config"]["vocab_size"] == 1000
    assert meta["splits"]["train"]["tokens"]["es"] == int(dd.dataset("train", "es").sizes.sum())
    assert "train filter: kept 2,000 of 2,000 pairs" in result.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_every_tokenizer_end_to_end(runner, copy_corpus, tmp_path, kind):
    dest = tmp_path / "bin"
    vocab = [] if kind == "none" else ["--vocab-size", 300]
    ok(pp(runner, *copy_args(copy_corpus, dest, "--tokenizer", kind, *vocab)))
    dd = DataDir(dest)
    assert not dd.joined and dd.splits == ["train", "valid", "test"]
    assert (dest / "tokenizer.src.json").is_file() and (dest / "tokenizer.tgt.json").is_file()
    assert dd.meta["tokenizers"]["tgt"]["name"] == kind
    for split in dd.splits:
        for lang in ("src", "tgt"):
            assert decoded(dd, split, lang) == lines(copy_corpus / f"{split}.{lang}")


def test_validpref_and_testpref_lists(runner, tmp_path):
    raw_a = write_copy_corpus(tmp_path / "a", n_train=50, n_valid=5, n_test=6, seed=1)
    raw_b = write_copy_corpus(tmp_path / "b", n_train=5, n_valid=7, n_test=8, seed=2)
    dest = tmp_path / "bin"
    ok(pp(runner, "-s", "src", "-t", "tgt", "--trainpref", raw_a / "train", "--validpref",
          f"{raw_a / 'valid'},{raw_b / 'valid'},{raw_b / 'train'}", "--testpref", f"{raw_a / 'test'},{raw_b / 'test'}",
          "--destdir", dest, "--tokenizer", "none"))
    dd = DataDir(dest)
    assert dd.splits == ["train", "valid", "valid1", "valid2", "test", "test1"]
    sizes = {split: len(dd.dataset(split, "src")) for split in dd.splits}
    assert sizes == {"train": 50, "valid": 5, "valid1": 7, "valid2": 5, "test": 6, "test1": 8}
    assert decoded(dd, "valid1", "tgt") == lines(raw_b / "valid.tgt")


def test_tokenizer_path_reuse_gives_the_same_ids(runner, copy_corpus, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    ok(pp(runner, *copy_args(copy_corpus, first, "--joined-dictionary", "--vocab-size", 300)))
    # a different corpus would train a different tokenizer; reuse must not retrain
    other = write_copy_corpus(tmp_path / "other", n_train=40, seed=9)
    result = ok(pp(runner, *copy_args(other, second, "--tokenizer-path", first / "tokenizer.json")))
    assert (second / "tokenizer.json").read_text() == (first / "tokenizer.json").read_text()
    a, b = DataDir(first), DataDir(second)
    assert b.joined and b.meta["tokenizers"]["src"]["source"] == str(first / "tokenizer.json")
    assert [x.tolist() for x in b.dataset("valid", "src")] == a.tokenizer("src").encode_batch(
        lines(other / "valid.src"))
    assert "training" not in result.stderr


def test_srcdict_and_tgtdict_from_fairseq(runner, copy_corpus, tmp_path):
    words = "a b c d e f g h i j k l m n o p".split()
    (tmp_path / "dict.src.txt").write_text("".join(f"{w} {100 - i}\n" for i, w in enumerate(words)))
    (tmp_path / "dict.tgt.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(reversed(words[:8]))))
    dest = tmp_path / "bin"
    ok(pp(runner, *copy_args(copy_corpus, dest, "--srcdict", tmp_path / "dict.src.txt", "--tgtdict",
                             tmp_path / "dict.tgt.txt")))
    dd = DataDir(dest)
    first_src = lines(copy_corpus / "valid.src")[0].split()
    assert dd.dataset("valid", "src")[0].tolist() == [4 + words.index(w) for w in first_src]  # fairseq's ids
    tgt_vocab = list(reversed(words[:8]))
    first_tgt = lines(copy_corpus / "valid.tgt")[0].split()
    assert dd.dataset("valid", "tgt")[0].tolist() == [4 + tgt_vocab.index(w) if w in tgt_vocab else 3
                                                      for w in first_tgt]
    assert dd.tokenizer("src").vocab_size == 20 and dd.meta["tokenizers"]["src"]["name"] == "none"
    assert decoded(dd, "test", "src") == lines(copy_corpus / "test.src")


def test_srcdict_with_joined_dictionary_serves_both_sides(runner, copy_corpus, tmp_path):
    (tmp_path / "dict.txt").write_text("".join(f"{w} 1\n" for w in "a b c d e f g h i j k l m n o p".split()))
    dest = tmp_path / "bin"
    ok(pp(runner, *copy_args(copy_corpus, dest, "--joined-dictionary", "--srcdict", tmp_path / "dict.txt")))
    dd = DataDir(dest)
    assert dd.joined and decoded(dd, "train", "tgt") == lines(copy_corpus / "train.tgt")


def third_party_json(path: Path, lines_: list[str]) -> Path:
    from tokenizers import Tokenizer as HF
    from tokenizers import models, pre_tokenizers, trainers

    hf = HF(models.WordLevel(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf.train_from_iterator(lines_, trainers.WordLevelTrainer(special_tokens=["[CLS]", "[SEP]", "[PAD]", "[UNK]"],
                                                             show_progress=False))
    hf.save(str(path))
    return path


def test_third_party_tokenizer_path_with_token_names(runner, copy_corpus, tmp_path):
    path = third_party_json(tmp_path / "tok.json", lines(copy_corpus / "train.src"))
    dest = tmp_path / "bin"
    ok(pp(runner, *copy_args(copy_corpus, dest, "--tokenizer-path", path, "--bos-token", "[CLS]", "--eos-token",
                             "[SEP]", "--pad-token", "[PAD]", "--unk-token", "[UNK]")))
    tok = DataDir(dest).tokenizer("src")
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.specials.bos == "[CLS]" and decoded(DataDir(dest), "valid", "src") == lines(copy_corpus / "valid.src")


def test_third_party_tokenizer_missing_a_special_token(runner, copy_corpus, tmp_path):
    path = third_party_json(tmp_path / "tok.json", lines(copy_corpus / "train.src"))
    dest = tmp_path / "bin"
    result = pp(runner, *copy_args(copy_corpus, dest, "--tokenizer-path", path, "--bos-token", "[CLS]",
                                   "--pad-token", "[PAD]", "--unk-token", "[UNK]"))
    assert_error(result, f"--tokenizer-path {path}: the tokenizer has no eos token '</s>'; name the one it uses "
                         "with --eos-token")
    assert not dest.exists()


def test_tokenizer_train_lines_samples_and_is_recorded(runner, bible_sample, tmp_path):
    def run(dest, *extra):
        return ok(pp(runner, "-s", "es", "-t", "en", "--trainpref", bible_sample / "train", "--destdir", dest,
                     "--joined-dictionary", "--vocab-size", 500, *extra))

    full = run(tmp_path / "full")
    result = run(tmp_path / "s1", "--tokenizer-train-lines", 100)
    run(tmp_path / "s2", "--tokenizer-train-lines", 100, "--seed", 2)
    assert "uniform random sample of 100 of the 2,000 training pairs" in result.stderr
    assert "all 2,000 training pairs" in full.stderr
    meta = DataDir(tmp_path / "s1").meta["tokenizers"]["es"]["trained_on"]
    assert meta == {"pairs": 100, "lines": 200, "sample": {"method": "uniform", "pairs": 100, "of": 2000, "seed": 1}}
    vocab = {name: (tmp_path / name / "tokenizer.json").read_text() for name in ("full", "s1", "s2")}
    assert len(set(vocab.values())) == 3  # the sample, and the seed, change the tokenizer
    assert len(DataDir(tmp_path / "s1").dataset("train", "es")) == 2000  # all pairs are still binarized


def test_max_length_and_empty_side_filtering(runner, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    src = ["a b", "", "a b c d e f g", "c d", "e", "f f f"]
    tgt = ["a b", "x", "a b", "c d e f g h i j", "", "f f f"]
    for split in ("train", "valid"):
        (raw / f"{split}.src").write_text("\n".join(src) + "\n")
        (raw / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
    dest = tmp_path / "bin"
    result = ok(pp(runner, "-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--validpref", raw / "valid",
                   "--destdir", dest, "--tokenizer", "none", "--max-length", 5))
    dd = DataDir(dest)
    assert decoded(dd, "train", "src") == ["a b", "f f f"]
    assert decoded(dd, "valid", "src") == src and decoded(dd, "valid", "tgt") == tgt  # valid keeps every line
    assert dd.meta["filtering"]["train"] == {"input_pairs": 6, "kept_pairs": 2, "max_length": 5,
                                             "dropped": {"empty_side": 2, "longer_than_max_length": 2}}
    assert ("train filter: kept 2 of 6 pairs; dropped 2 with an empty side, 2 with a side longer than "
            "--max-length 5 tokens") in result.stderr


def test_tokenizer_options_reach_the_tokenizer(runner, copy_corpus, tmp_path):
    dest = tmp_path / "bin"
    ok(pp(runner, *copy_args(copy_corpus, dest, "--tokenizer", "wordpiece", "--vocab-size", 40, "--min-frequency",
                             3, "--normalization", "nfd", "--lowercase", "--tokenizer-opt",
                             "max_input_chars_per_word=50")))
    dd = DataDir(dest)
    cfg = dd.meta["tokenizers"]["src"]["config"]
    assert cfg == {"vocab_size": 40, "min_frequency": 3, "normalization": "nfd", "lowercase": True,
                   "max_input_chars_per_word": 50}
    tok = dd.tokenizer("src")
    assert tok.vocab_size == 40
    assert tok.hf.normalizer.normalize_str("ÁB") == "a\u0301b"  # NFD, then lowercase
    saved = json.loads(dd.tokenizer_json("src"))
    assert saved["model"]["max_input_chars_per_word"] == 50


def test_flag_the_tokenizer_lacks_is_an_error(runner, copy_corpus, tmp_path):
    result = pp(runner, *copy_args(copy_corpus, tmp_path / "bin", "--tokenizer", "unigram", "--min-frequency", 2))
    assert_error(result, "--min-frequency: tokenizer 'unigram' has no min_frequency setting")


def test_no_progress_switches_bars_off(runner, copy_corpus, tmp_path, monkeypatch):
    from seq2seq_cli.data import binarize

    seen = []
    real = binarize.progress_bar
    monkeypatch.setattr(binarize, "progress_bar", lambda *a: seen.append(a[-1]) or real(*a))
    ok(pp(runner, *copy_args(copy_corpus, tmp_path / "a", "--tokenizer", "none")))
    assert seen and all(seen)
    seen.clear()
    ok(pp(runner, *copy_args(copy_corpus, tmp_path / "b", "--tokenizer", "none", "--no-progress")))
    assert seen and not any(seen)


def test_default_destdir_is_data_bin(runner, copy_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(pp(runner, "-s", "src", "-t", "tgt", "--trainpref", copy_corpus / "train", "--tokenizer", "none"))
    assert DataDir(tmp_path / "data-bin").splits == ["train"]


def test_force_replaces_and_its_absence_refuses(runner, copy_corpus, tmp_path):
    dest = tmp_path / "bin"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    result = pp(runner, *copy_args(copy_corpus, dest, "--tokenizer", "none"))
    assert_error(result, f"--destdir {dest} already holds data (notes.txt, ...); use --force to replace it")
    assert (dest / "notes.txt").read_text() == "mine"
    ok(pp(runner, *copy_args(copy_corpus, dest, "--tokenizer", "none", "--force")))
    assert not (dest / "notes.txt").exists() and DataDir(dest).splits == ["train", "valid", "test"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "raw"]  # no staging/old folders left


def test_user_dir_plugin_tokenizer(runner, copy_corpus, tmp_path):
    name = f"s2s_test_tok_{uuid.uuid4().hex[:8]}"
    plugin = tmp_path / f"{name}.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from seq2seq_cli.registry import TOKENIZERS\n"
        "from seq2seq_cli.tokenization.hf import NoneTokenizer\n"
        f"@TOKENIZERS.register({name!r})\n"
        "class Upper(NoneTokenizer):\n"
        "    @dataclass(frozen=True)\n"
        "    class Config(NoneTokenizer.Config):\n"
        "        lowercase: bool = True\n"
    )
    dest = tmp_path / "bin"
    ok(pp(runner, "--user-dir", plugin, *copy_args(copy_corpus, dest, "--tokenizer", name)))
    meta = DataDir(dest).meta["tokenizers"]["src"]
    assert meta["name"] == name and meta["config"]["lowercase"] is True
    assert decoded(DataDir(dest), "valid", "src") == lines(copy_corpus / "valid.src")  # the corpus is lowercase


# --- bad inputs ----------------------------------------------------------------------------------------------------

def test_missing_input_file(runner, copy_corpus, tmp_path):
    (copy_corpus / "valid.tgt").unlink()
    result = pp(runner, *copy_args(copy_corpus, tmp_path / "bin"))
    assert_error(result, f"{copy_corpus / 'valid.tgt'}: no such file (from --validpref)")
    assert not (tmp_path / "bin").exists()


def test_line_counts_differ(runner, copy_corpus, tmp_path):
    path = copy_corpus / "train.tgt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-3]))
    result = pp(runner, *copy_args(copy_corpus, tmp_path / "bin"))
    assert_error(result, f"{copy_corpus / 'train.src'} has 200 lines but {path} has 197")


def test_invalid_utf8(runner, copy_corpus, tmp_path):
    path = copy_corpus / "test.src"
    data = path.read_bytes().split(b"\n")
    data[4] += b" \xc3("
    path.write_bytes(b"\n".join(data))
    result = pp(runner, *copy_args(copy_corpus, tmp_path / "bin"))
    assert_error(result, f"{path}, line 5: not valid UTF-8")


def test_unknown_tokenizer_lists_the_available_ones(runner, copy_corpus, tmp_path):
    result = pp(runner, *copy_args(copy_corpus, tmp_path / "bin", "--tokenizer", "sentencepiece"))
    assert_error(result, "unknown tokenizer 'sentencepiece' (--tokenizer); available: bpe, bytelevel-bpe, char, ")
    listed = result.stderr.split("available: ")[1].strip().split(", ")
    assert set(KINDS) <= set(listed) and listed == sorted(listed)  # plus any installed plugin


def test_crash_mid_write_leaves_no_finished_looking_data_dir(runner, copy_corpus, tmp_path, monkeypatch):
    from seq2seq_cli.data.indexed import IndexedDatasetWriter

    dest = tmp_path / "bin"
    ok(pp(runner, *copy_args(copy_corpus, dest, "--tokenizer", "none")))
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    calls = []
    real = IndexedDatasetWriter.add_batch

    def failing(self, batch):
        calls.append(1)
        if len(calls) == 3:  # train written, valid half-way
            raise OSError("disk full (simulated)")
        real(self, batch)

    monkeypatch.setattr(IndexedDatasetWriter, "add_batch", failing)
    result = pp(runner, *copy_args(copy_corpus, dest, "--tokenizer", "none", "--vocab-size", 10, "--force"))
    assert result.exit_code != 0 and len(calls) == 3
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before  # the old DATA_DIR is untouched
    calls.clear()
    fresh = tmp_path / "fresh"
    result = pp(runner, *copy_args(copy_corpus, fresh, "--tokenizer", "none"))
    assert result.exit_code != 0 and len(calls) == 3 and not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "raw"]  # staging folders removed


def test_destdir_containing_inputs_is_refused_even_with_force(runner, copy_corpus):
    result = pp(runner, *copy_args(copy_corpus, copy_corpus, "--tokenizer", "none", "--force"))
    assert_error(result, f"--destdir {copy_corpus} contains the input file")
    assert (copy_corpus / "train.src").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--workers", 0], "--workers must be at least 1, not 0"),
    (["--joined-dictionary", "--srcdict", "x", "--tgtdict", "y"], "--joined-dictionary uses one dictionary"),
    (["--tokenizer-path", "x.json", "--srcdict", "x"], "--tokenizer-path gives the tokenizer of both languages"),
])
def test_conflicting_or_bad_flags(runner, copy_corpus, tmp_path, extra, message):
    assert_error(pp(runner, *copy_args(copy_corpus, tmp_path / "bin", *extra)), message)


def test_empty_training_files(runner, copy_corpus, tmp_path):
    for lang in ("src", "tgt"):
        (copy_corpus / f"train.{lang}").write_text("")
    result = pp(runner, *copy_args(copy_corpus, tmp_path / "bin"))
    assert_error(result, f"{copy_corpus / 'train.src'} and {copy_corpus / 'train.tgt'} are empty (--trainpref)")
    assert not (tmp_path / "bin").exists()


def test_same_language_twice(runner, copy_corpus, tmp_path):
    result = pp(runner, "-s", "src", "-t", "src", "--trainpref", copy_corpus / "train", "--destdir", tmp_path / "b")
    assert_error(result, "-s/--source-lang and -t/--target-lang are both 'src'")


# --- processes: no torch, thread count ----------------------------------------------------------------------------

def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=env)


def test_preprocess_does_not_import_torch(copy_corpus, tmp_path):
    code = (
        "import sys\n"
        "from seq2seq_cli.cli import cli\n"
        f"args = {[str(a) for a in copy_args(copy_corpus, tmp_path / 'bin', '--vocab-size', 300)]!r}\n"
        "cli.main(['preprocess', *args], standalone_mode=False)\n"
        "from seq2seq_cli.data.datadir import DataDir\n"
        f"DataDir({str(tmp_path / 'bin')!r}).verify()\n"
        "assert 'torch' not in sys.modules, 'preprocess imported torch'\n"
        "print('ok')\n"
    )
    proc = _python(code)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
def test_workers_bounds_the_tokenizer_threads(copy_corpus, tmp_path):
    def threads_after(workers: int) -> int:
        code = (
            "import os\n"
            "from seq2seq_cli.data.preprocess import PreprocessConfig, run_preprocess\n"
            "run_preprocess(PreprocessConfig(source_lang='src', target_lang='tgt',"
            f" trainpref={str(copy_corpus / 'train')!r}, destdir={str(tmp_path / f'w{workers}')!r},"
            f" workers={workers}, vocab_size=300, progress=False))\n"
            "print(len(os.listdir('/proc/self/task')))\n"
        )
        proc = _python(code)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout)

    one, three = threads_after(1), threads_after(3)
    assert three - one == 3  # the Rayon pool exists only with --workers > 1, and has exactly that many threads
