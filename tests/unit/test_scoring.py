"""scoring.py against sacreBLEU's own Python API, plus its file reading and input checks."""
from __future__ import annotations

import json
import os

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

from seq2seq_cli.errors import ConfigError, DataError
from seq2seq_cli.scoring import METRICS, MetricResult, ScoreConfig, parse_metrics, read_lines, score_files
from tests.scoring_fixtures import read, score_files as files  # noqa: F401  (fixture)


def cfg_for(files, *systems: str, refs=("ref_kjv", "ref_web"), **kwargs) -> ScoreConfig:
    return ScoreConfig(sys=tuple(str(files[s]) for s in systems), refs=tuple(str(files[r]) for r in refs), **kwargs)


def test_bleu_equals_sacrebleu_corpus_bleu_with_two_references(files):
    (result,) = score_files(cfg_for(files, "sys_a"))
    expected = sacrebleu.corpus_bleu(read(files["sys_a"]), [read(files["ref_kjv"]), read(files["ref_web"])])
    assert result.score == pytest.approx(expected.score, abs=1e-9)
    assert 10 < result.score < 90  # a real comparison, not a trivial 0 or 100
    assert result.signature == "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:" + sacrebleu.__version__
    assert result.verbose.startswith(f"{expected.precisions[0]:.1f}/")


@pytest.mark.parametrize("metric, make", [
    ("chrf", lambda: CHRF()),
    ("chrf++", lambda: CHRF(word_order=2)),
    ("ter", lambda: TER()),
])
def test_chrf_chrfpp_ter_equal_sacrebleu(files, metric, make):
    (result,) = score_files(cfg_for(files, "sys_b", metrics=(metric,)))
    refs = [read(files["ref_kjv"]), read(files["ref_web"])]
    expected = make().corpus_score(read(files["sys_b"]), refs)
    assert (result.name, result.score) == (expected.name, pytest.approx(expected.score, abs=1e-9))


def test_tokenize_and_lowercase_reach_sacrebleu(files):
    # Uppercase hypotheses: case-sensitive BLEU drops, --lowercase restores it; tokenize=char changes the score.
    upper = files["sys_a"].with_name("upper.txt")
    upper.write_text(files["sys_a"].read_text(encoding="utf-8").upper(), encoding="utf-8")
    files = {**files, "upper": upper}
    refs = [read(files["ref_kjv"]), read(files["ref_web"])]
    mixed, lower, char = (score_files(cfg_for(files, "upper", **kw))[0] for kw in
                          ({}, {"lowercase": True}, {"tokenize": "char"}))
    assert lower.score == pytest.approx(BLEU(lowercase=True).corpus_score(read(upper), refs).score)
    assert char.score == pytest.approx(BLEU(tokenize="char").corpus_score(read(upper), refs).score)
    assert mixed.score < lower.score and "case:lc" in lower.signature and "tok:char" in char.signature


def test_sentence_level_equals_sacrebleu_sentence_scores(files):
    results = score_files(cfg_for(files, "sys_a", metrics=("bleu", "chrf"), sentence_level=True))
    hyps, kjv, web = read(files["sys_a"]), read(files["ref_kjv"]), read(files["ref_web"])
    assert [r.segment for r in results[:4]] == [1, 1, 2, 2]
    bleu = [r for r in results if r.metric == "bleu"]
    chrf = [r for r in results if r.metric == "chrf"]
    assert len(bleu) == len(chrf) == len(hyps) == 100
    metric = BLEU(effective_order=True)  # what sacreBLEU's CLI uses for sentence BLEU
    assert [r.score for r in bleu] == pytest.approx([metric.sentence_score(h, [a, b]).score
                                                     for h, a, b in zip(hyps, kjv, web)])
    assert chrf[5].score == pytest.approx(CHRF().sentence_score(hyps[5], [kjv[5], web[5]]).score)
    assert "eff:yes" in bleu[0].signature


def test_paired_bootstrap_equals_sacrebleu_paired_test(files, monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "999")  # must be overridden by cfg.seed, then restored
    results = score_files(cfg_for(files, "sys_a", "sys_b", refs=("ref_kjv",), metrics=("bleu", "chrf"),
                                  paired_bs_n=200, seed=7))
    assert os.environ["SACREBLEU_SEED"] == "999"
    hyps_a, hyps_b, ref = read(files["sys_a"]), read(files["sys_b"]), read(files["ref_kjv"])
    monkeypatch.setenv("SACREBLEU_SEED", "7")
    sigs, scores = PairedTest([("a", hyps_a), ("b", hyps_b)], {"BLEU": BLEU(references=[ref]),
                                                               "chrF2": CHRF(references=[ref])},
                              references=None, test_type="bs", n_samples=200)()
    by_key = {(r.system, r.metric): r for r in results}
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        base, other = by_key[str(files["sys_a"]), metric], by_key[str(files["sys_b"]), metric]
        assert base.baseline and not other.baseline and base.p_value is None
        assert (base.mean, base.ci) == pytest.approx((scores[name][0].mean, scores[name][0].ci))
        assert (other.score, other.mean, other.ci, other.p_value) == pytest.approx(
            (scores[name][1].score, scores[name][1].mean, scores[name][1].ci, scores[name][1].p_value))
        assert base.signature == sigs[name].format() and "bs:200|seed:7" in base.signature
    assert [r.system for r in results] == [str(files["sys_a"])] * 2 + [str(files["sys_b"])] * 2


def test_different_seeds_give_different_bootstrap_estimates(files):
    def means(seed):
        results = score_files(cfg_for(files, "sys_a", "sys_b", paired_bs_n=50, seed=seed))
        return [r.mean for r in results]

    assert means(1) == means(1)
    assert means(1) != means(2)


def test_read_lines_splits_like_sacrebleu(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes("a b  \r\n\nc\rd\n last".encode("utf-8"))
    assert read_lines(path, "--sys") == ["a b", "", "c\rd", " last"]  # only \n ends a line
    path.write_bytes(b"")
    assert read_lines(path, "--sys") == []


def test_read_lines_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\nstill ok\ncaf\u00e9\n".encode("latin-1"))
    message = rf"^--ref {path}: line 3, byte 4: not valid UTF-8 .*convert the file to UTF-8$"
    with pytest.raises(DataError, match=message):
        read_lines(path, "--ref")


def test_read_lines_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=rf"^--sys {tmp_path / 'nope.txt'}: no such file$"):
        read_lines(tmp_path / "nope.txt", "--sys")
    with pytest.raises(DataError, match="is a folder"):
        read_lines(tmp_path, "--ref")


def test_parse_metrics():
    assert parse_metrics(["BLEU, chrf++", "ter,bleu"]) == ("bleu", "chrf++", "ter")
    message = r"^unknown metric 'meteor' \(--metrics\); available: bleu, chrf, chrf\+\+, ter, wer$"
    with pytest.raises(ConfigError, match=message):
        parse_metrics(["bleu,meteor"])
    with pytest.raises(ConfigError, match="no metric given"):
        parse_metrics([" , "])
    assert METRICS == ("bleu", "chrf", "chrf++", "ter", "wer")


def test_line_count_mismatch_names_both_files_and_counts(files, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("".join(f"line {i}\n" for i in range(99)), encoding="utf-8")
    files = {**files, "short": short}
    with pytest.raises(DataError, match=rf"^--sys {short} has 99 lines but --ref {files['ref_kjv']} has 100; "):
        score_files(cfg_for(files, "short"))
    with pytest.raises(DataError, match=rf"^--ref {short} has 99 lines but --ref {files['ref_kjv']} has 100; "):
        score_files(cfg_for(files, "sys_a", refs=("ref_kjv", "short")))


@pytest.mark.parametrize("kwargs, message", [
    ({"sys": ("a", "a")}, r"--sys a is given twice"),
    ({"sys": ("-",), "refs": ("-",)}, r"'-' \(stdin\) can be given only once"),
    ({"sys": ("a", "b"), "sentence_level": True}, r"--sentence-level scores one --sys at a time"),
    ({"paired_bs_n": 0}, r"--paired-bs-n 0: give a positive number"),
    ({"seed": 0}, r"--seed 0: give a positive seed"),
    ({"tokenize": "moses"}, r"--tokenize 'moses': choose one of none, zh, 13a, intl, char"),
    ({"sys": ()}, r"no hypotheses: give --sys FILE"),
    ({"refs": ()}, r"no references: give --ref FILE"),
])
def test_config_errors(kwargs, message):
    cfg = ScoreConfig(**{"sys": ("a",), "refs": ("r",), **kwargs})
    with pytest.raises(ConfigError, match=message):
        score_files(cfg)


def test_metric_result_text_matches_sacrebleu_format(files):
    (result,) = score_files(cfg_for(files, "sys_a"))
    metric = BLEU()
    score = metric.corpus_score(read(files["sys_a"]), [read(files["ref_kjv"]), read(files["ref_web"])])
    assert result.to_text() == score.format(width=2, signature=metric.get_signature().format())


def test_metric_result_json_leaves_out_what_does_not_apply():
    data = json.loads(MetricResult("s.txt", "ter", "TER", 41.5, "nrefs:1", baseline=False, mean=41.0, ci=1.5,
                                   p_value=0.01).to_json())
    assert data == {"system": "s.txt", "metric": "ter", "name": "TER", "score": 41.5, "signature": "nrefs:1",
                    "baseline": False, "mean": 41.0, "ci": 1.5, "p_value": 0.01}
    text = MetricResult("s.txt", "ter", "TER", 41.5, "nrefs:1", mean=41.0, ci=1.5, p_value=0.01).to_text()
    assert text == "TER|nrefs:1 = 41.50 (μ = 41.00 ± 1.50) (p = 0.0100)*"
