"""The audio pipeline end to end on tiny synthetic speech: preprocess --audio -> train -> generate -> score wer."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jiwer
import numpy as np
import pytest

from seq2seq_cli.data.datadir import DataDir
from seq2seq_cli.speech.audio import read_audio
from seq2seq_cli.speech.data import feature_dataset
from seq2seq_cli.speech.features import FbankConfig, extract
from seq2seq_cli.speech.manifest import read_manifest
from tests.conftest import invoke
from tests.speech.clips import write_tone_corpus
from tests.speech.test_bad_input import assert_error
from tests.train_fixtures import make_data_dir, ok

TINY_S2T = ["--arch", "s2t_transformer_xs", "--encoder-layers", "1", "--decoder-layers", "1",
            "--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32",
            "--decoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
            "--model-opt", "conv_channels=16", "--dropout", "0.1"]
FAST = ["--max-tokens", "2000", "--lr", "0.003", "--warmup-updates", "5", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("speech") / "raw")


@pytest.fixture(scope="module")
def audio_data(corpus: Path) -> Path:
    from click.testing import CliRunner

    dest = corpus.parent / "data"
    ok(invoke(CliRunner(), ["preprocess", "--audio", "-s", "audio", "-t", "en", "--trainpref", corpus / "train",
                            "--validpref", corpus / "valid", "--testpref", corpus / "test", "--destdir", dest,
                            "--tokenizer", "none"]))
    return dest


@pytest.fixture(scope="module")
def checkpoint(audio_data: Path) -> Path:
    from click.testing import CliRunner

    save = audio_data.parent / "ck"
    ok(invoke(CliRunner(), ["train", audio_data, "--save-dir", save, *TINY_S2T, *FAST, "--max-update", "12",
                            "--no-epoch-checkpoints"]))
    return save / "checkpoint_last.pt"


def test_preprocess_stores_fbank_features_and_target_ids(audio_data, corpus):
    dd = DataDir(audio_data)
    dd.verify()
    assert dd.meta["audio"] == {"side": "audio", "dtype": "float16", "features": {
        "type": "fbank", "num_mel_bins": 80, "sample_rate": 16000, "frame_length_ms": 25.0, "frame_shift_ms": 10.0,
        "cmvn": "utterance"}}
    assert dd.splits == ["train", "valid", "test"] and dd.meta["splits"]["train"]["sentences"] == 40
    assert dd.tokenizer("audio") is dd.tokenizer("en")  # the speech side borrows the target's entry
    rows = read_manifest(corpus / "valid.tsv", "--validpref", need_text=True)
    feats, targets = feature_dataset(dd, "valid"), dd.dataset("valid", "en")
    assert len(feats) == len(rows) == 6 and feats.dim == 80
    for i, row in enumerate(rows):
        expected = extract(read_audio(row.audio, 16000, "test"), FbankConfig(), "test")
        np.testing.assert_array_equal(feats[i], expected.astype(np.float16))
        assert dd.tokenizer("en").decode_batch([targets[i].tolist()]) == [row.text]
    assert feats.sizes.sum() == dd.meta["splits"]["valid"]["frames"]


def test_train_generate_and_score_wer(runner, checkpoint, audio_data, corpus, tmp_path):
    state = json.loads((checkpoint.parent / "config.json").read_text())
    assert state["model"]["name"] == "s2t_transformer"
    from_data = invoke(runner, ["generate", audio_data, "--path", checkpoint, "--beam", "2", "--device", "cpu",
                                "--no-progress"])
    ok(from_data)
    hyps = from_data.stdout.splitlines()
    assert len(hyps) == 6
    assert re.search(r"Generate test with beam: WER\|nrefs:1\|case:mixed\|tok:words\|version:jiwer-[\d.]+ = "
                     r"[\d.]+ \(S \d+, D \d+, I \d+, N 2\d\)", from_data.stderr), from_data.stderr
    # a manifest decodes exactly as its preprocessed DATA_DIR (the same features, rounded to float16 alike)
    from_manifest = invoke(runner, ["generate", "--input", corpus / "test.tsv", "--path", checkpoint, "--beam", "2",
                                    "--device", "cpu", "--no-progress"])
    assert ok(from_manifest).stdout.splitlines() == hyps

    refs = [row.text for row in read_manifest(corpus / "test.tsv", "--input", need_text=True)]
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    scored = ok(invoke(runner, ["score", "-s", tmp_path / "hyp.txt", "-r", tmp_path / "ref.txt", "-m", "wer",
                                "--json"]))
    result = json.loads(scored.stdout)
    truth = jiwer.process_words(refs, hyps)
    assert result["score"] == pytest.approx(100 * truth.wer)
    assert result["verbose"] == f"(S {truth.substitutions}, D {truth.deletions}, I {truth.insertions}, N " \
                                f"{truth.hits + truth.substitutions + truth.deletions})"

    int8 = ok(invoke(runner, ["generate", audio_data, "--path", checkpoint, "--beam", "2", "--device", "cpu",
                              "--precision", "int8", "--no-progress"])).stdout.splitlines()
    assert len(int8) == len(hyps)  # quantized decoding runs too (its outputs may differ slightly)

    fairseq = ok(invoke(runner, ["generate", audio_data, "--path", checkpoint, "--beam", "2", "--device", "cpu",
                                 "--output-format", "fairseq", "--no-progress"])).stdout.splitlines()
    assert fairseq[0] == "S-0\ttest utterance 0" and fairseq[1] == f"T-0\t{refs[0]}"


def test_score_wer_numbers_and_options(runner, tmp_path):
    (tmp_path / "ref").write_text("a b c\nd e\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("a x c d\nD e\n", encoding="utf-8")
    text = ok(invoke(runner, ["score", "-s", tmp_path / "hyp", "-r", tmp_path / "ref", "-m", "wer"])).stdout
    assert re.fullmatch(r"WER\|nrefs:1\|case:mixed\|tok:words\|version:jiwer-[\d.]+ = 60\.00 \(S 2, D 0, I 1, N 5\)\n",
                        text)
    lower = ok(invoke(runner, ["score", "-s", tmp_path / "hyp", "-r", tmp_path / "ref", "-m", "wer", "-lc"])).stdout
    assert "case:lc" in lower and "= 40.00 (S 1, D 0, I 1, N 5)" in lower
    segments = ok(invoke(runner, ["score", "-s", tmp_path / "hyp", "-r", tmp_path / "ref", "-m", "wer",
                                  "--sentence-level"])).stdout.splitlines()
    assert [line.split(" = ")[1] for line in segments] == ["66.67 (S 1, D 0, I 1, N 3)", "50.00 (S 1, D 0, I 0, N 2)"]
    (tmp_path / "ref2").write_text("Thy cheeks are comely, with rows of jewels.\nThe doves’ eyes\n", encoding="utf-8")
    (tmp_path / "hyp2").write_text("thy cheeks: are comely with rows of Jewels\nthe doves eyes !\n", encoding="utf-8")
    both = ["score", "-s", tmp_path / "hyp2", "-r", tmp_path / "ref2", "-m", "wer", "-lc"]
    assert "= 45.45 (S 4, D 0, I 1, N 11)" in ok(invoke(runner, both)).stdout
    plain = ok(invoke(runner, [*both, "--wer-remove-punct"])).stdout
    assert re.fullmatch(r"WER\|nrefs:1\|case:lc\|punct:removed\|tok:words\|version:jiwer-[\d.]+ = 0\.00 "
                        r"\(S 0, D 0, I 0, N 11\)\n", plain)
    cased = ok(invoke(runner, [*both[:-1], "--wer-remove-punct"])).stdout
    assert "= 27.27 (S 3, D 0, I 0, N 11)" in cased  # Thy/thy, Jewels/jewels, The/the: case still counts
    assert_error(invoke(runner, ["score", "-s", tmp_path / "hyp2", "-r", tmp_path / "ref2", "--wer-remove-punct"]),
                 "--wer-remove-punct applies to WER only; add wer to --metrics or drop the flag")
    paired = invoke(runner, ["score", "-s", tmp_path / "hyp", "-s", tmp_path / "ref", "-r", tmp_path / "ref", "-m",
                             "wer"])
    assert_error(paired, "the paired bootstrap test (several --sys) covers bleu, chrf, chrf++ and ter, not wer; "
                         "score each system alone for its WER")


def test_models_and_data_must_match(runner, checkpoint, audio_data, tmp_path):
    text_model = invoke(runner, ["train", audio_data, "--save-dir", tmp_path / "t", "--arch", "transformer_small",
                                 *FAST, "--max-update", "1"])
    assert_error(text_model, f"{audio_data} holds audio features, but model 'transformer' reads token ids; use "
                             "--arch s2t_transformer (or s2t_transformer_s, s2t_transformer_xs)")
    text_data = make_data_dir(tmp_path / "text")
    speech_on_text = invoke(runner, ["train", text_data, "--save-dir", tmp_path / "s", *TINY_S2T, *FAST])
    assert_error(speech_on_text, f"model 's2t_transformer' reads audio features, but {text_data} holds text; make an "
                                 "audio DATA_DIR with `seq2seq preprocess --audio` (docs/speech.md)")
    reverse = invoke(runner, ["train", audio_data, "--save-dir", tmp_path / "r", *TINY_S2T, *FAST, "-s", "en",
                              "-t", "audio"])
    assert_error(reverse, f"{audio_data} is an audio DATA_DIR whose speech side is 'audio'; it trains audio->en only "
                          "(drop -s/-t)")
    bleu = invoke(runner, ["train", audio_data, "--save-dir", tmp_path / "b", *TINY_S2T, *FAST, "--eval-bleu"])
    assert_error(bleu, f"--eval-bleu does not support the audio DATA_DIR {audio_data} yet; decode it with "
                       "`seq2seq generate` and score with `seq2seq score`")
    stdin = invoke(runner, ["generate", "--path", checkpoint, "--device", "cpu"], input="do re\n")
    assert_error(stdin, f"{checkpoint} is a speech model: give an audio DATA_DIR or --input MANIFEST.tsv (columns "
                        "id, audio[, n_frames, tgt_text]); it does not read text from stdin")
    on_text = invoke(runner, ["generate", text_data, "--path", checkpoint, "--device", "cpu"])
    assert_error(on_text, f"{checkpoint} is a speech model, but {text_data} holds text; give an audio DATA_DIR "
                          "(seq2seq preprocess --audio) or --input MANIFEST.tsv")


def test_resume_repeats_the_uninterrupted_run_with_specaugment(runner, audio_data, tmp_path):
    from tests.train_fixtures import losses_by_update, read_log

    masks = ["--model-opt", "freq_mask_n=2", "--model-opt", "time_mask_n=2", "--model-opt", "time_mask_t=10"]
    args = [*TINY_S2T, *masks, *FAST, "--log-interval", "1", "--save-interval-updates", "3"]
    ok(invoke(runner, ["train", audio_data, "--save-dir", tmp_path / "ref", *args, "--max-update", "6"]))
    reference = losses_by_update(read_log(tmp_path / "ref"))
    ok(invoke(runner, ["train", audio_data, "--save-dir", tmp_path / "ck", *args, "--max-update", "3"]))
    ok(invoke(runner, ["train", audio_data, "--save-dir", tmp_path / "ck", *args, "--max-update", "6"]))
    resumed = losses_by_update(read_log(tmp_path / "ck"))
    assert [resumed[n] for n in range(1, 7)] == pytest.approx([reference[n] for n in range(1, 7)], abs=1e-6)


def test_training_split_filtering_and_a_reused_target_dictionary(runner, audio_data, corpus, tmp_path):
    rows = (corpus / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, first, second, third = rows[:4]
    empty_target = "\t".join(second.split("\t")[:3] + [""])
    long_target = "\t".join(third.split("\t")[:3] + ["do re mi fa so la do re"])
    (tmp_path / "train.tsv").write_text("\n".join([header, first, empty_target, long_target]) + "\n", encoding="utf-8")
    (tmp_path / "clips").symlink_to(corpus / "clips")
    tokenizer = audio_data / "tokenizer.en.json"
    ok(invoke(runner, ["preprocess", "--audio", "-s", "audio", "-t", "en", "--trainpref", tmp_path / "train",
                       "--destdir", tmp_path / "bin", "--tgtdict", tokenizer, "--max-length", "5"]))
    dd = DataDir(tmp_path / "bin")
    assert dd.meta["filtering"]["train"] == {"input_pairs": 3, "kept_pairs": 1, "max_length": 5,
                                             "dropped": {"empty_side": 1, "longer_than_max_length": 1}}
    assert (tmp_path / "bin" / "tokenizer.en.json").read_text() == tokenizer.read_text()
    assert len(feature_dataset(dd, "train")) == len(dd.dataset("train", "en")) == 1


def test_speech_generate_refuses_torchrun(runner, checkpoint, audio_data, monkeypatch):
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    result = invoke(runner, ["generate", audio_data, "--path", checkpoint, "--device", "cpu"])
    assert_error(result, "generate with a speech checkpoint runs in one process; run it without torchrun")


def test_the_python_api_refuses_text_for_a_speech_checkpoint(checkpoint):
    import seq2seq_cli
    from seq2seq_cli.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^this checkpoint is a speech model: its input is audio, not text; decode "
                                          r"audio with `seq2seq generate --input MANIFEST.tsv` or an audio DATA_DIR"):
        seq2seq_cli.load(str(checkpoint)).translate(["hello"])
