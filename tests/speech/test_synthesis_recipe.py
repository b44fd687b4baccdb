"""examples/speech/synthesize.py without espeak-ng: the verse selection, the per-clip draws and the resampler."""
from __future__ import annotations

import importlib.util
import random
import sys

import numpy as np
import pytest

from tests.conftest import BIBLE_SAMPLE, REPO


@pytest.fixture(scope="module")
def synth():
    name = "examples_speech_synthesize"  # dataclasses need the module in sys.modules while it executes
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "speech" / "synthesize.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


def test_resampling_keeps_a_tone(synth):
    t = np.arange(22050) / 22050
    out = synth.resample(np.sin(2 * np.pi * 1000 * t), 22050, 16000)
    assert len(out) == 16000
    np.testing.assert_allclose(out, np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000), atol=1e-6)


def test_the_recipe_is_fixed_by_the_seed(synth, tmp_path):
    def draw():
        rng = random.Random(1)
        chosen = synth.select(BIBLE_SAMPLE, "train", 20, 30, rng)
        return chosen, synth.plan(BIBLE_SAMPLE, tmp_path, "es", "train", chosen, random.Random("1-es"))

    (chosen, clips), (again, clips_again) = draw(), draw()
    assert chosen == again and clips == clips_again and len(clips) == 20
    en = (BIBLE_SAMPLE / "train.en").read_text(encoding="utf-8").splitlines()
    es = (BIBLE_SAMPLE / "train.es").read_text(encoding="utf-8").splitlines()
    assert all(len(en[i].split()) <= 30 and len(es[i].split()) <= 30 for i in chosen)
    for clip, i in zip(clips, chosen):
        assert clip.text == es[i] and clip.voice.split("+")[0] in synth.VOICES["es"]
        assert 130 <= clip.rate_wpm <= 190 and 30 <= clip.pitch <= 70 and 10.0 <= clip.snr_db <= 30.0


def test_a_rerun_keeps_rendered_clips_and_names_follow_the_parameters(synth, tmp_path, monkeypatch):
    import soundfile

    chosen = synth.select(BIBLE_SAMPLE, "test", 3, None, random.Random(1))
    clips = synth.plan(BIBLE_SAMPLE, tmp_path, "en", "test", chosen, random.Random("1-en"))
    other = synth.plan(BIBLE_SAMPLE, tmp_path, "en", "test", chosen, random.Random("2-en"))
    assert len({c.path.name for c in clips + other}) == 6  # other draws, other files
    assert all(c.path.name.startswith(f"test-{i}-") for c, i in zip(clips, chosen))
    (tmp_path / "clips").mkdir()
    soundfile.write(str(clips[0].path), np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16", format="FLAC")

    def no_espeak(*args, **kwargs):
        raise AssertionError("espeak-ng ran for a clip that was already rendered")

    monkeypatch.setattr(synth.subprocess, "run", no_espeak)
    assert synth.render(clips[0]) == 1 + (16000 - 400) // 160
    with pytest.raises(AssertionError, match="already rendered"):
        synth.render(clips[1])
    assert not list((tmp_path / "clips").glob("*.part"))
