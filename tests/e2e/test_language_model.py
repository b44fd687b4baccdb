"""A language model through the four commands: `preprocess --only-source`, `train --arch transformer_lm`, and
`generate --lm-path --lm-weight` fusing it with a translation model; each mistake's exact message."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import seq2seq_cli
from seq2seq_cli.data.datadir import DataDir
from tests.conftest import invoke
from tests.speech.test_bad_input import assert_error
from tests.train_fixtures import make_data_dir, ok, read_log, tagged, train

HOW = ("preprocess --only-source -s TGT --srcdict with the model's target tokenizer file: "
       "DATA_DIR/tokenizer.TGT.json, or DATA_DIR/tokenizer.json when joined")
TINY_LM = ["--arch", "transformer_lm", "--decoder-layers", "1", "--decoder-embed-dim", "16",
           "--decoder-ffn-embed-dim", "32", "--decoder-attention-heads", "2"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lm")


@pytest.fixture(scope="module")
def mt_data(root: Path) -> Path:
    return make_data_dir(root)  # root/raw/{train,valid,test}.{src,tgt}, root/data (joined word vocabulary)


def only_source(*extra) -> list:
    return ["preprocess", "--only-source", "-s", "tgt", *[str(e) for e in extra]]


@pytest.fixture(scope="module")
def lm_data(root: Path, mt_data: Path) -> tuple[Path, object]:
    from click.testing import CliRunner

    result = ok(invoke(CliRunner(), only_source("--trainpref", root / "raw" / "train", "--validpref",
                                                root / "raw" / "valid", "--srcdict", mt_data / "tokenizer.json",
                                                "--destdir", root / "lm-data")))
    return root / "lm-data", result


@pytest.fixture(scope="module")
def mt_ckpt(root: Path, mt_data: Path) -> Path:
    from click.testing import CliRunner

    ok(train(CliRunner(), mt_data, root / "mt", "--max-update", 60))
    return root / "mt" / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def lm_ckpt(root: Path, lm_data) -> Path:
    from click.testing import CliRunner

    ok(train(CliRunner(), lm_data[0], root / "lm", "--max-update", 60, model=TINY_LM))
    return root / "lm" / "checkpoint_last.pt"


# ----------------------------------------------------------------------------------------------- preprocess


def test_only_source_writes_one_language_that_decodes_to_the_text(root, lm_data, mt_data) -> None:
    dest, result = lm_data
    dd = DataDir(dest)
    dd.verify()
    assert dd.monolingual and dd.langs == ["tgt"] and dd.splits == ["train", "valid"]
    assert sorted(p.name for p in dest.iterdir()) == ["meta.json", "tokenizer.tgt.json", "train.tgt.bin",
                                                      "train.tgt.idx", "valid.tgt.bin", "valid.tgt.idx"]
    assert (dest / "tokenizer.tgt.json").read_text() == (mt_data / "tokenizer.json").read_text()
    for split in ("train", "valid"):
        text = (root / "raw" / f"{split}.tgt").read_text(encoding="utf-8").splitlines()
        ds = dd.dataset(split, "tgt")
        assert dd.tokenizer("tgt").decode_batch([x.tolist() for x in ds]) == text
    assert "train filter: kept 200 of 200 lines; dropped 0 empty, 0 longer than --max-length (not set) tokens" \
        in result.stderr


def test_only_source_filters_and_counts_lines(runner, tmp_path) -> None:
    (tmp_path / "train.en").write_text("a b\n\na b c d e f\nc\n", encoding="utf-8")
    result = ok(invoke(runner, ["preprocess", "--only-source", "-s", "en", "--trainpref", tmp_path / "train",
                                "--tokenizer", "none", "--max-length", 3, "--destdir", tmp_path / "bin"]))
    assert "train filter: kept 2 of 4 lines; dropped 1 empty, 1 longer than --max-length 3 tokens" in result.stderr
    dd = DataDir(tmp_path / "bin")
    assert dd.tokenizer("en").decode_batch([x.tolist() for x in dd.dataset("train", "en")]) == ["a b", "c"]


@pytest.mark.parametrize("extra, message", [
    (["-t", "src"], "--only-source writes one language (tgt); drop -t/--target-lang"),
    (["--tgtdict", "x.json"], "--only-source writes one language (tgt); drop --tgtdict"),
    (["--joined-dictionary"], "--only-source writes one language (tgt); drop --joined-dictionary"),
    (["--audio"], "--only-source reads text for a language model; it does not combine with --audio"),
])
def test_only_source_refuses_target_side_flags(runner, root, mt_data, tmp_path, extra, message) -> None:
    result = invoke(runner, only_source("--trainpref", root / "raw" / "train", "--destdir", tmp_path / "b", *extra))
    assert_error(result, message)
    assert not (tmp_path / "b").exists()


def test_only_source_empty_training_file(runner, tmp_path) -> None:
    (tmp_path / "train.en").write_text("", encoding="utf-8")
    result = invoke(runner, ["preprocess", "--only-source", "-s", "en", "--trainpref", tmp_path / "train",
                             "--destdir", tmp_path / "bin"])
    assert_error(result, f"{tmp_path / 'train.en'} is empty (--trainpref): nothing to train the tokenizer on")


# ----------------------------------------------------------------------------------------------- train


def test_the_lm_trains_and_validates(lm_ckpt: Path) -> None:
    records = read_log(lm_ckpt.parent)
    valid = [r["loss"] for r in tagged(records, "valid")]
    assert len(valid) == 10  # one validation per epoch (200 sentences in 6 batches of 256 tokens)
    # Random words: from about log2(vocabulary) bits towards log2(16 words + EOS) = 4.09, the text's entropy.
    assert valid[-1] < valid[0] - 0.4 and valid[-1] < 4.3
    state = torch.load(lm_ckpt, map_location="cpu", weights_only=True)
    assert state["model"]["name"] == "transformer_lm" and state["langs"] == {"src": "tgt", "tgt": "tgt"}


def test_train_refuses_a_model_that_does_not_fit_the_data(runner, root, mt_data, lm_data, tmp_path) -> None:
    lm_dir = lm_data[0]
    assert_error(train(runner, lm_dir, tmp_path / "a"),
                 f"{lm_dir} is monolingual text (preprocess --only-source): it trains a language model (--arch "
                 "transformer_lm or transformer_lm_small), not transformer")
    assert_error(train(runner, mt_data, tmp_path / "b", model=TINY_LM),
                 "transformer_lm is a language model: it trains on monolingual text; preprocess the target side "
                 f"with `seq2seq preprocess --only-source -s tgt --srcdict {mt_data / 'tokenizer.json'} ...`")
    assert_error(train(runner, lm_dir, tmp_path / "c", "--eval-bleu", model=TINY_LM),
                 f"--eval-bleu translates; {lm_dir} is monolingual text for a language model: drop it (validation "
                 "reports the loss and perplexity)")
    assert_error(train(runner, lm_dir, tmp_path / "d", "-t", "src", model=TINY_LM),
                 f"-t/--target-lang src: {lm_dir} is monolingual tgt text (preprocess --only-source); drop -t")
    assert not any((tmp_path / name / "checkpoint_last.pt").exists() for name in "abcd")


# ----------------------------------------------------------------------------------------------- generate


def test_generate_with_the_lm_equals_the_python_api(runner, root, mt_ckpt, lm_ckpt) -> None:
    src = root / "raw" / "test.src"
    args = ["generate", "--path", mt_ckpt, "--input", src, "--beam", 3, "--device", "cpu"]
    fused = ok(invoke(runner, [*args, "--lm-path", lm_ckpt, "--lm-weight", 0.5]))
    plain = ok(invoke(runner, args))
    lines = src.read_text(encoding="utf-8").splitlines()
    assert len(fused.stdout.splitlines()) == len(lines)
    api = seq2seq_cli.load(mt_ckpt, lm_path=lm_ckpt).translate(lines, beam=3, lm_weight=0.5)
    assert fused.stdout.splitlines() == api
    strong = ok(invoke(runner, [*args, "--lm-path", lm_ckpt, "--lm-weight", 20]))
    assert strong.stdout != plain.stdout  # the LM's share reaches the output


def test_generate_lm_mistakes(runner, root, mt_ckpt, lm_ckpt, tmp_path) -> None:
    src = root / "raw" / "test.src"
    base = ["generate", "--input", src, "--device", "cpu"]
    assert_error(invoke(runner, [*base, "--path", lm_ckpt]),
                 f"{lm_ckpt}: a language model (transformer_lm) scores text but does not translate; give it as "
                 "--lm-path beside a translation or speech checkpoint")
    assert_error(invoke(runner, [*base, "--path", mt_ckpt, "--lm-path", mt_ckpt, "--lm-weight", 0.3]),
                 f"--lm-path {mt_ckpt}: a transformer model, not a language model; train one with --arch "
                 "transformer_lm on `preprocess --only-source` data")
    assert_error(invoke(runner, [*base, "--path", mt_ckpt, "--lm-weight", 0.3]),
                 "--lm-weight 0.3 needs a language model: give --lm-path LM.pt (a transformer_lm checkpoint over "
                 "the model's target vocabulary; docs/speech.md)")
    assert_error(invoke(runner, [*base, "--path", mt_ckpt, "--lm-path", lm_ckpt]),
                 "--lm-path needs --lm-weight W > 0, the LM's share of the score (tune it on a validation set; 0.1 "
                 "to 0.5 is common)")
    assert_error(invoke(runner, ["generate", root / "data", "--path", mt_ckpt, "--lm-path", lm_ckpt,
                                 "--lm-weight", 0.3, "--score-reference", "--device", "cpu"]),
                 "--lm-path does not apply to --score-reference (it scores with the model alone)")
    assert_error(invoke(runner, ["generate", root / "data", "--path", mt_ckpt, "--lm-weight", 0.3,
                                 "--score-reference", "--device", "cpu"]),
                 "--lm-weight does not apply to --score-reference (it scores with the model alone)")


def tiny_lm_from(runner, tmp_path: Path, lang: str, prefix: Path, *tokenizer: object) -> Path:
    """A 2-update tiny LM of PREFIX.LANG (`tokenizer`: the preprocess flags that choose its tokenizer)."""
    ok(invoke(runner, ["preprocess", "--only-source", "-s", lang, "--trainpref", prefix, *tokenizer,
                       "--destdir", tmp_path / "data"]))
    ok(train(runner, tmp_path / "data", tmp_path / "lm", "--max-update", 2, "--disable-validation", model=TINY_LM))
    return tmp_path / "lm" / "checkpoint_last.pt"


def generate_with_lm(runner, root: Path, mt_ckpt: Path, lm: Path):
    return invoke(runner, ["generate", "--input", root / "raw" / "test.src", "--device", "cpu", "--path", mt_ckpt,
                           "--lm-path", lm, "--lm-weight", 0.3])


def test_generate_refuses_an_lm_over_another_vocabulary(runner, root, mt_ckpt, tmp_path) -> None:
    (tmp_path / "train.tgt").write_text("q r s\nr s t\n", encoding="utf-8")
    other = tiny_lm_from(runner, tmp_path, "tgt", tmp_path / "train", "--tokenizer", "none")
    assert_error(generate_with_lm(runner, root, mt_ckpt, other),
                 f"--lm-path {other}: its vocabulary differs from the target vocabulary of {mt_ckpt}; train the LM "
                 f"on text binarized with that tokenizer ({HOW})")


def test_generate_refuses_an_lm_of_the_source_language_with_a_joined_vocabulary(runner, root, mt_data, mt_ckpt,
                                                                                 tmp_path) -> None:
    """The vocabularies match (one joined tokenizer), so only the language tells the mistake."""
    src_lm = tiny_lm_from(runner, tmp_path, "src", root / "raw" / "train", "--srcdict", mt_data / "tokenizer.json")
    assert_error(generate_with_lm(runner, root, mt_ckpt, src_lm),
                 f"--lm-path {src_lm}: a language model of 'src', but {mt_ckpt} writes 'tgt'; train the LM on tgt "
                 f"text ({HOW})")


def test_scoring_refuses_a_loaded_lm(mt_ckpt, lm_ckpt) -> None:
    from seq2seq_cli.errors import ConfigError

    fused = seq2seq_cli.load(mt_ckpt, lm_path=lm_ckpt)
    with pytest.raises(ConfigError) as err:
        fused.score(["a b"], ["a b"])
    assert str(err.value) == ("scoring uses the model alone, not a language model: load the checkpoint without "
                              "lm_path (--lm-path) to score")
    assert len(seq2seq_cli.load(mt_ckpt).score(["a b"], ["a b"])) == 1
