"""examples/translation: run.sh from a corpus to a BLEU score, its corpus check, and the SWORD rebuild (corpus.py).

run.sh runs for real on a tiny copy of the bundled sample (its own verse lists: SPLITS), one update; the Debian
rebuild runs with stand-ins for `mod2imp` and `seq2seq` on PATH (no apt, no network, no training), which also
records the commands run.sh gives.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BIBLE_SAMPLE, REPO

EXAMPLE = REPO / "examples" / "translation"
SIZES = {"train": 40, "valid": 3, "test": 3}

_spec = importlib.util.spec_from_file_location("translation_corpus", EXAMPLE / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


def tiny_corpus(root: Path) -> tuple[Path, Path]:
    """(DATA, SPLITS): the first lines of each split of the bundled sample, and their verse lists."""
    data, splits = root / "data", root / "splits"
    data.mkdir(parents=True)
    splits.mkdir()
    for split, n in SIZES.items():
        for ext in ("es", "en", "ref"):
            lines = (BIBLE_SAMPLE / f"{split}.{ext}").read_text(encoding="utf-8").splitlines()[:n]
            (data / f"{split}.{ext}").write_text("\n".join(lines) + "\n", encoding="utf-8")
        refs = (data / f"{split}.ref").read_text(encoding="utf-8").splitlines()
        (splits / f"{split}.verses").write_text("\n".join(corpus.ranges(refs)) + "\n", encoding="utf-8")
    return data, splits


def run_sh(out: Path, path_first: Path | None = None, **env: str | Path) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # seq2seq of the test environment
    path = os.pathsep.join([*([str(path_first)] if path_first else []), bin_dir, os.environ["PATH"]])
    full_env = {**os.environ, "PATH": path, "OUT": str(out), "THREADS": "1", "OMP_NUM_THREADS": "1",
                **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["bash", str(EXAMPLE / "run.sh")], capture_output=True, text=True, env=full_env,
                          timeout=600)


def test_run_sh_goes_from_a_corpus_copy_to_a_bleu_score(tmp_path):
    data, splits = tiny_corpus(tmp_path)
    proc = run_sh(tmp_path / "out", DATA=data, SPLITS=splits, MAX_UPDATE=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.splitlines()[-1]
    assert re.fullmatch(r"BLEU\|nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:\S+ = \d+\.\d+ .*", last)
    steps = re.findall(r"^== \[(\d)/5\] (\w+)", proc.stderr, flags=re.M)
    assert steps == [("1", "corpus"), ("2", "preprocess"), ("3", "train"), ("4", "generate"), ("5", "score")]
    assert f"corpus: copied into {tmp_path / 'out' / 'corpus'}: the verses listed in {splits}" in proc.stderr
    for name in ("train.es", "test.en", "valid.ref"):
        assert (tmp_path / "out" / "corpus" / name).read_bytes() == (data / name).read_bytes()
    assert len((tmp_path / "out" / "test.hyp").read_text(encoding="utf-8").splitlines()) == SIZES["test"]
    assert (tmp_path / "out" / "test.score").read_text(encoding="utf-8").splitlines()[-1] == last


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.joinpath("train.ref").write_text("Genesis 1:1\nGenesis 1:3\n", encoding="utf-8"),
     "{data}/train.ref line 2: 'Genesis 1:3', but the train split has 'Genesis 1:2' there ({splits}/train.verses); "
     "this is not the shipped corpus"),
    (lambda d: [d.joinpath(f"valid.{e}").write_text("".join(d.joinpath(f"valid.{e}").read_text(
        encoding="utf-8").splitlines(True)[:2]), encoding="utf-8") for e in ("es", "en", "ref")],
     "{data}/valid.ref: 2 verses, but the valid split has 3 ({splits}/valid.verses); this is not the shipped corpus"),
    (lambda d: d.joinpath("test.en").write_text("one line\n", encoding="utf-8"),
     "{data}/test.en: 1 lines, but test.ref lists 3 verses; line i of every file is verse i"),
    (lambda d: d.joinpath("test.es").unlink(),
     "{data}/test.es: missing (each split needs .es, .en and .ref files)"),
])
def test_run_sh_refuses_a_corpus_that_does_not_match_the_verse_lists(tmp_path, damage, message):
    data, splits = tiny_corpus(tmp_path)
    damage(data)
    proc = run_sh(tmp_path / "out", DATA=data, SPLITS=splits)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "Error: " + message.format(data=data, splits=splits)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # nothing half-copied, nothing trained


def test_run_sh_without_a_corpus_says_what_to_set(tmp_path):
    proc = run_sh(tmp_path / "out", DATA=tmp_path / "nowhere")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (f"Error: DATA={tmp_path / 'nowhere'}: no such folder (give the folder "
                                            "with {train,valid,test}.{es,en,ref}, or DATA=debian)")


def test_the_shipped_verse_lists():
    refs = {split: corpus.expand(EXAMPLE / "splits" / f"{split}.verses") for split in corpus.SPLITS}
    assert {split: len(r) for split, r in refs.items()} == {"train": 28409, "valid": 552, "test": 1024}
    assert refs["train"][:2] == ["Genesis 1:1", "Genesis 1:2"] and refs["valid"][0] == "Jonah 1:1"
    assert refs["test"][0] == "Song of Solomon 1:1"
    assert sum(len(set(r)) for r in refs.values()) == len(set().union(*refs.values())) == 29985  # disjoint
    for split, r in refs.items():  # the compact form is canonical: expanding and compressing gives it back
        assert corpus.ranges(r) == (EXAMPLE / "splits" / f"{split}.verses").read_text(encoding="utf-8").splitlines()
    # The bundled sample is a prefix of the shipped splits.
    for split in corpus.SPLITS:
        sample = (BIBLE_SAMPLE / f"{split}.ref").read_text(encoding="utf-8").splitlines()
        assert refs[split][:len(sample)] == sample


def test_verse_list_errors(tmp_path):
    bad = tmp_path / "bad.verses"
    bad.write_text("Genesis 1:1-3\nGenesis 1:9-4\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match=re.escape(f"{bad} line 2: 'Genesis 1:9-4' is not 'BOOK "
                                                           "CHAPTER:VERSE[-VERSE]'")):
        corpus.expand(bad)
    assert corpus.ranges(["Jude 1:1", "Jude 1:2", "Jude 1:4", "John 3:5", "John 4:6", "John 4:7"]) == [
        "Jude 1:1-2", "Jude 1:4", "John 3:5", "John 4:6-7"]


# A stand-in for `mod2imp MODULE`: two verses per split of the tiny corpus's books, with OSIS markup to clean.
FAKE_EXPORT = {
    "spaRV1909eb": {"Genesis 1:1": '<title type="x-gen">Génesis</title><w lemma="x">EN</w> el principio crió '
                                   'Dios<note type="study">o: creó</note> los cielos y la tierra.',
                    "Genesis 1:2": "Y la tierra\nestaba  desordenada &amp; vacía ."},
    "engKJV2006eb": {"Genesis 1:1": '<milestone type="x-p" marker="¶"/>In the beginning <transChange '
                                    'type="added">God</transChange> created the heaven and the earth.',
                     "Genesis 1:2": 'And the earth was <rdg type="x-alternative">void</rdg>without form<note '
                                    'type="x-strongsMarkup">H8414</note>, and void.'},
}


def fake_tools(root: Path) -> Path:
    """A bin folder with `mod2imp` (prints FAKE_EXPORT[MODULE]) and `seq2seq` (logs its arguments, prints a score)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    exports = root / "exports"
    exports.mkdir()
    for module, verses in FAKE_EXPORT.items():
        (exports / module).write_text("".join(f"$$${ref}\n{text}\n" for ref, text in verses.items()),
                                      encoding="utf-8")
    (bin_dir / "mod2imp").write_text(f'#!/usr/bin/env bash\ncat "{exports}/$1"\n', encoding="utf-8")
    (bin_dir / "seq2seq").write_text(f'#!/usr/bin/env bash\necho "$@" >> "{root}/seq2seq.log"\n'
                                     '[ "$1" != score ] || echo "BLEU = 1.0"\n', encoding="utf-8")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def test_run_sh_rebuilds_the_corpus_from_sword_exports(tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    for split in corpus.SPLITS:
        (splits / f"{split}.verses").write_text("Genesis 1:1-2\n", encoding="utf-8")
    proc = run_sh(tmp_path / "out", path_first=fake_tools(tmp_path), DATA="debian", SPLITS=splits, MAX_UPDATE=7)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "BLEU = 1.0"
    rebuilt = tmp_path / "out" / "corpus"
    for split in corpus.SPLITS:
        assert (rebuilt / f"{split}.es").read_text(encoding="utf-8") == (
            "EN el principio crió Dios los cielos y la tierra.\nY la tierra estaba desordenada & vacía.\n")
        assert (rebuilt / f"{split}.en").read_text(encoding="utf-8") == (
            "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.\n")
        assert (rebuilt / f"{split}.ref").read_text(encoding="utf-8") == "Genesis 1:1\nGenesis 1:2\n"
    c, out = tmp_path / "out" / "corpus", tmp_path / "out"
    assert (tmp_path / "seq2seq.log").read_text(encoding="utf-8").splitlines() == [
        f"preprocess -s es -t en --trainpref {c}/train --validpref {c}/valid --testpref {c}/test --destdir "
        f"{out}/data-bin --joined-dictionary --tokenizer bpe --vocab-size 8000 --workers 1 --no-progress",
        f"train {out}/data-bin --arch transformer_small --share-all-embeddings --optimizer adam --adam-betas (0.9, "
        "0.98) --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 300 --criterion label_smoothed_cross_entropy "
        "--label-smoothing 0.1 --max-tokens 4096 --threads 1 --seed 1 --max-update 7 --save-dir "
        f"{out}/checkpoints --no-epoch-checkpoints --disable-validation --log-interval 50 --no-progress",
        f"generate --path {out}/checkpoints/checkpoint_last.pt --input {c}/test.es --beam 5 --threads 1 --no-progress",
        f"score --sys {out}/test.hyp --ref {c}/test.en --metrics bleu",
    ]


def test_rebuild_refuses_a_verse_the_export_lacks(tmp_path):
    fake_tools(tmp_path)
    splits = tmp_path / "splits"
    splits.mkdir()
    for split in corpus.SPLITS:
        (splits / f"{split}.verses").write_text("Genesis 1:1-3\n", encoding="utf-8")
    es, en = tmp_path / "exports" / "spaRV1909eb", tmp_path / "exports" / "engKJV2006eb"
    with pytest.raises(corpus.CorpusError, match=re.escape(
            f"{es}: verse 'Genesis 1:3' of the train split is missing or empty (another module version?)")):
        corpus.rebuild({"es": es, "en": en}, splits, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_copy_says_whether_its_text_is_the_shipped_text(tmp_path, capsys):
    import hashlib

    data, splits = tiny_corpus(tmp_path)
    names = [f"{split}.{lang}" for split in corpus.SPLITS for lang in corpus.LANGS]
    (splits / "SHA256SUMS").write_text("".join(f"{hashlib.sha256((data / n).read_bytes()).hexdigest()}  {n}\n"
                                               for n in names), encoding="utf-8")
    assert corpus.main(["check", str(data), str(splits), str(tmp_path / "same")]) == 0
    assert capsys.readouterr().err == (f"corpus: copied into {tmp_path / 'same'}: the verses listed in {splits}; "
                                       "same text as the shipped corpus\n")
    (data / "valid.en").write_text("Other\nwords\nhere\n", encoding="utf-8")
    assert corpus.main(["check", str(data), str(splits), str(tmp_path / "other")]) == 0
    assert capsys.readouterr().err == (f"corpus: copied into {tmp_path / 'other'}: the verses listed in {splits}; "
                                       "text differs from the shipped corpus in valid.en (BLEU may differ)\n")
