"""Bad speech input, each with its exact message: manifests, audio files, sample rates, flags, model/data mismatch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seq2seq_cli.errors import ConfigError
from tests.conftest import invoke
from tests.speech.clips import tone_clip, write_wav

HEADER = "id\taudio\tn_frames\ttgt_text"


def assert_error(result, message: str) -> None:
    """exit 1, exactly one line `Error: MESSAGE` on stderr, no traceback, nothing on stdout."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stderr.strip().splitlines()[-1] == f"Error: {message}", result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    write_wav(tmp_path / "clips" / "good.wav", tone_clip(["do", "re"], rng))
    return tmp_path


def preprocess(runner, folder: Path, rows: list[str], *extra: str):
    (folder / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return invoke(runner, ["preprocess", "--audio", "-s", "audio", "-t", "en", "--trainpref", folder / "train",
                           "--destdir", folder / "bin", "--tokenizer", "none", *extra])


def test_missing_audio_file_names_it_and_the_manifest_line(runner, folder):
    result = preprocess(runner, folder, [HEADER, "a\tclips/good.wav\t30\tdo re", "b\tclips/nope.wav\t30\tmi"])
    assert_error(result, f"{folder / 'train.tsv'}, line 3 (id b): audio file {folder / 'clips' / 'nope.wav'} does "
                         "not exist; fix the audio column or the file's location (relative paths are relative to the "
                         "manifest's folder)")
    assert not (folder / "bin").exists()  # nothing half-written


def test_unreadable_audio_file(runner, folder):
    (folder / "clips" / "text.wav").write_text("not audio at all", encoding="utf-8")
    result = preprocess(runner, folder, [HEADER, "a\tclips/text.wav\t30\tdo"])
    assert_error(result, f"{folder / 'train.tsv'}, line 2 (id a): cannot read audio file {folder / 'clips/text.wav'} "
                         "(Format not recognised.); it must be a WAV, FLAC or OGG file")
    assert not (folder / "bin").exists() and not list(folder.glob(".bin.tmp-*"))


def test_empty_audio_files(runner, folder):
    (folder / "clips" / "zero.wav").write_bytes(b"")
    result = preprocess(runner, folder, [HEADER, "a\tclips/zero.wav\t0\tdo"])
    assert_error(result, f"{folder / 'train.tsv'}, line 2 (id a): audio file {folder / 'clips/zero.wav'} is empty "
                         "(0 bytes); re-create it or remove it from the manifest")
    write_wav(folder / "clips" / "silent.wav", np.zeros(0, np.float32))
    result = preprocess(runner, folder, [HEADER, "a\tclips/good.wav\t30\tdo", "b\tclips/silent.wav\t0\tre"])
    assert_error(result, f"{folder / 'train.tsv'}, line 3 (id b): {folder / 'clips/silent.wav'} holds no samples "
                         "(an empty recording); remove it from the manifest")


def test_wrong_sample_rate_is_refused_not_resampled(runner, folder):
    write_wav(folder / "clips" / "8k.wav", tone_clip(["do"], np.random.default_rng(0), rate=8000), rate=8000)
    result = preprocess(runner, folder, [HEADER, "a\tclips/8k.wav\t30\tdo"])
    path = folder / "clips/8k.wav"
    assert_error(result, f"{folder / 'train.tsv'}, line 2 (id a): {path} has a sample rate of 8000 Hz, expected "
                         f"16000 Hz; resample it first, e.g. `sox {path} -r 16000 out.wav`")


def test_stereo_is_refused(runner, folder):
    write_wav(folder / "clips" / "st.wav", tone_clip(["do"], np.random.default_rng(0)), channels=2)
    result = preprocess(runner, folder, [HEADER, "a\tclips/st.wav\t30\tdo"])
    path = folder / "clips/st.wav"
    assert_error(result, f"{folder / 'train.tsv'}, line 2 (id a): {path} has 2 channels, expected mono; mix it down "
                         f"first, e.g. `sox {path} -c 1 out.wav`")


def test_manifest_with_missing_columns(runner, folder):
    manifest = folder / "train.tsv"
    result = preprocess(runner, folder, ["id\taudio\tn_frames", "a\tclips/good.wav\t30"])
    assert_error(result, f"{manifest}, line 1: the header lacks column(s) tgt_text (it has id, audio, n_frames); a "
                         "manifest needs id, audio, tgt_text")
    result = preprocess(runner, folder, ["a\tclips/good.wav"])
    assert_error(result, f"{manifest}, line 1: 2 tab-separated column(s) and no header; expected id, audio, tgt_text "
                         "(or fairseq's id, audio, n_frames, tgt_text), or a header line naming the columns")
    result = preprocess(runner, folder, [HEADER, "a\tclips/good.wav\t30\tdo", "b\tclips/good.wav\tre"])
    assert_error(result, f"{manifest}, line 3: 3 tab-separated column(s), expected 4 (id, audio, n_frames, "
                         "tgt_text)")


def test_headerless_manifests_and_extra_columns_are_read(runner, folder):
    ok = preprocess(runner, folder, ["a\tclips/good.wav\tdo re", "b\tclips/good.wav\tre"])
    assert ok.exit_code == 0, ok.output
    ok = preprocess(runner, folder, ["id\taudio\tn_frames\ttgt_text\tspeaker", "a\tclips/good.wav\t30\tdo re\tspk1"],
                    "--force")
    assert ok.exit_code == 0, ok.output


def test_missing_manifest_and_flags_that_do_not_apply(runner, folder):
    result = invoke(runner, ["preprocess", "--audio", "-s", "audio", "-t", "en", "--trainpref", folder / "nothing",
                             "--destdir", folder / "bin"])
    assert_error(result, f"{folder / 'nothing.tsv'}: no such manifest (from --trainpref); a manifest is a TSV file "
                         "with columns id, audio, n_frames, tgt_text")
    result = preprocess(runner, folder, [HEADER, "a\tclips/good.wav\t30\tdo"], "--joined-dictionary")
    assert_error(result, "--joined-dictionary does not apply to --audio: the source side is speech and has no "
                         "dictionary; drop it (--tgtdict or --tokenizer-path give the target's)")


def test_a_missing_speech_library_says_how_to_install_it(monkeypatch):
    import importlib

    from seq2seq_cli import speech

    real = importlib.import_module

    def fake(name, *args):
        if name == "kaldi_native_fbank":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ConfigError, match=r"^computing filterbank features needs the Python package "
                                          r"'kaldi_native_fbank', which is not installed; install the speech extra: "
                                          r"pip install 'seq2seq_cli\[speech\]'$"):
        speech.require("kaldi_native_fbank", "computing filterbank features")
