"""`seq2seq score` through the CLI: every flag, agreement with sacreBLEU's Python API, and each bad input."""
from __future__ import annotations

import json
import re

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER

from tests.conftest import invoke
from tests.scoring_fixtures import read, score_files as files  # noqa: F401  (fixture)

SCORE_LINE = re.compile(r"^(?P<name>[\w+]+)\|(?P<sig>\S+) = (?P<score>\d+\.\d\d)\b")


def ok(result) -> list[str]:
    """stdout lines of a run that must have succeeded."""
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def assert_error(result, message: str, exit_code: int = 1) -> None:
    """A clean failure: exit code, the message on stderr, no traceback, nothing on stdout."""
    assert result.exit_code == exit_code, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no uncaught exception
    assert result.stdout == ""


def parse(line: str) -> tuple[str, str, float]:
    match = SCORE_LINE.match(line)
    assert match, line
    return match["name"], match["sig"], float(match["score"])


def test_bleu_with_two_references_agrees_with_sacrebleu_api(runner, files):
    result = invoke(runner, ["score", "--sys", files["sys_a"], "-r", files["ref_kjv"], "--ref", files["ref_web"]])
    (line,) = ok(result)
    name, sig, value = parse(line)
    expected = sacrebleu.corpus_bleu(read(files["sys_a"]), [read(files["ref_kjv"]), read(files["ref_web"])])
    assert name == "BLEU" and sig == f"nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}"
    assert abs(value - expected.score) <= 0.01
    # the one-reference score differs, so the second --ref was really used
    single = sacrebleu.corpus_bleu(read(files["sys_a"]), [read(files["ref_kjv"])]).score
    assert abs(single - expected.score) > 1
    assert "scoring 1 system(s) of 100 segments against 2 reference(s)" in result.stderr  # logs on stderr


def test_metrics_option_picks_metrics_in_order(runner, files):
    result = invoke(runner, ["score", "-s", files["sys_b"], "-r", files["ref_kjv"], "-r", files["ref_web"],
                             "--metrics", "chrf,chrf++", "-m", "TER"])
    lines = ok(result)
    hyps, refs = read(files["sys_b"]), [read(files["ref_kjv"]), read(files["ref_web"])]
    expected = [CHRF().corpus_score(hyps, refs), CHRF(word_order=2).corpus_score(hyps, refs),
                TER().corpus_score(hyps, refs)]
    assert len(lines) == 3
    for line, exp in zip(lines, expected):
        name, sig, value = parse(line)
        assert name == exp.name and abs(value - exp.score) <= 0.01
    assert "nw:2" in lines[1] and "tok:tercom" in lines[2]


def test_tokenize_option(runner, files):
    (line,) = ok(invoke(runner, ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "--tokenize", "char"]))
    _, sig, value = parse(line)
    expected = BLEU(tokenize="char").corpus_score(read(files["sys_a"]), [read(files["ref_kjv"])]).score
    default = BLEU().corpus_score(read(files["sys_a"]), [read(files["ref_kjv"])]).score
    assert "tok:char" in sig and abs(value - expected) <= 0.01 and abs(value - default) > 1


@pytest.mark.parametrize("flag", ["--lowercase", "-lc"])
def test_lowercase_option(runner, files, tmp_path, flag):
    upper = tmp_path / "upper.txt"
    upper.write_text(files["sys_a"].read_text(encoding="utf-8").upper(), encoding="utf-8")
    args = ["score", "-s", upper, "-r", files["ref_kjv"], "-m", "bleu,chrf"]
    mixed = [parse(line) for line in ok(invoke(runner, args))]
    lower = [parse(line) for line in ok(invoke(runner, args + [flag]))]
    refs = [read(files["ref_kjv"])]
    assert abs(lower[0][2] - BLEU(lowercase=True).corpus_score(read(upper), refs).score) <= 0.01
    assert abs(lower[1][2] - CHRF(lowercase=True).corpus_score(read(upper), refs).score) <= 0.01
    assert lower[0][2] > mixed[0][2] + 10 and lower[1][2] > mixed[1][2] + 10
    assert all("case:lc" in sig for _, sig, _ in lower)


def test_json_option(runner, files):
    lines = ok(invoke(runner, ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "-r", files["ref_web"],
                               "--json", "-m", "bleu,ter"]))
    objs = [json.loads(line) for line in lines]  # stdout is nothing but JSON lines
    refs = [read(files["ref_kjv"]), read(files["ref_web"])]
    assert [o["metric"] for o in objs] == ["bleu", "ter"]
    assert objs[0]["score"] == pytest.approx(sacrebleu.corpus_bleu(read(files["sys_a"]), refs).score, abs=1e-9)
    assert objs[1]["score"] == pytest.approx(TER().corpus_score(read(files["sys_a"]), refs).score, abs=1e-9)
    assert objs[0]["system"] == str(files["sys_a"]) and objs[0]["signature"].startswith("nrefs:2|")
    assert "BP = " in objs[0]["verbose"] and "p_value" not in objs[0]


def test_sentence_level_option(runner, files):
    args = ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "--sentence-level"]
    lines = ok(invoke(runner, args))
    hyps, refs = read(files["sys_a"]), read(files["ref_kjv"])
    metric = BLEU(effective_order=True)
    expected = [metric.sentence_score(h, [r]).score for h, r in zip(hyps, refs)]
    assert len(lines) == 100
    assert all(abs(parse(line)[2] - exp) <= 0.01 for line, exp in zip(lines, expected))
    assert "eff:yes" in lines[0]

    objs = [json.loads(line) for line in ok(invoke(runner, args + ["--json"]))]
    assert [o["segment"] for o in objs] == list(range(1, 101))
    assert [o["score"] for o in objs] == pytest.approx(expected)


def test_sys_from_stdin(runner, files):
    from_file = ok(invoke(runner, ["score", "-s", files["sys_b"], "-r", files["ref_kjv"]]))
    from_stdin = ok(invoke(runner, ["score", "-s", "-", "-r", files["ref_kjv"]],
                           input=files["sys_b"].read_text(encoding="utf-8")))
    assert from_stdin == from_file


def test_several_systems_run_the_paired_bootstrap_test(runner, files):
    args = ["score", "-s", files["sys_a"], "--sys", files["sys_b"], "-r", files["ref_kjv"], "-m", "bleu,chrf",
            "--paired-bs-n", "100", "--seed", "3"]
    lines = ok(invoke(runner, args))
    assert len(lines) == 4
    systems = [line.split("\t")[0] for line in lines]
    assert systems == [str(files["sys_a"])] * 2 + [str(files["sys_b"])] * 2
    scores = [parse(line.split("\t")[1]) for line in lines]
    assert all("|bs:100|seed:3|" in f"|{sig}|" for _, sig, _ in scores)
    assert "(p = " not in lines[0] and re.search(r"\(μ = [\d.]+ ± [\d.]+\) \(p = 0\.\d{4}\)\*?", lines[2])
    # sys_b is much better than sys_a: the difference is significant with 100 resamples (p = 1/101)
    assert "(p = 0.0099)*" in lines[2]

    objs = [json.loads(line) for line in ok(invoke(runner, args + ["--json"]))]
    assert [o["baseline"] for o in objs] == [True, True, False, False]
    assert objs[2]["p_value"] == pytest.approx(1 / 101) and "p_value" not in objs[0]
    other_seed = [json.loads(line) for line in ok(invoke(runner, args[:-1] + ["4", "--json"]))]
    assert [o["mean"] for o in other_seed] != [o["mean"] for o in objs]
    assert [o["score"] for o in other_seed] == [o["score"] for o in objs]  # only the resampling changed


def test_default_paired_bs_n_and_seed_are_sacrebleus(runner, files):
    (line, _) = ok(invoke(runner, ["score", "-s", files["sys_a"], "-s", files["sys_b"], "-r", files["ref_kjv"]]))
    assert "|bs:1000|seed:12345|" in line


def test_line_count_mismatch(runner, files, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("".join(read(files["sys_a"])[i] + "\n" for i in range(97)), encoding="utf-8")
    result = invoke(runner, ["score", "-s", short, "-r", files["ref_kjv"]])
    assert_error(result, f"Error: --sys {short} has 97 lines but --ref {files['ref_kjv']} has 100")


@pytest.mark.parametrize("flag", ["-s", "-r"])
def test_missing_file(runner, files, tmp_path, flag):
    missing = tmp_path / "missing.txt"
    args = ["score", "-s", files["sys_a"], "-r", files["ref_kjv"]]
    args[args.index(flag) + 1] = missing
    name = "--sys" if flag == "-s" else "--ref"
    assert_error(invoke(runner, args), f"Error: {name} {missing}: no such file")


def test_invalid_utf8(runner, files, tmp_path):
    bad = tmp_path / "bad.txt"
    lines = read(files["sys_a"])
    lines[41] = lines[41] + " caf\u00e9"
    bad.write_bytes("\n".join(lines).encode("utf-8").replace("caf\u00e9".encode("utf-8"), b"caf\xe9") + b"\n")
    result = invoke(runner, ["score", "-s", bad, "-r", files["ref_kjv"]])
    assert_error(result, f"Error: --sys {bad}: line 42, byte ")
    assert "not valid UTF-8" in result.stderr


def test_unknown_metric(runner, files):
    result = invoke(runner, ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "-m", "bleu,meteor"])
    assert_error(result, "Error: unknown metric 'meteor' (--metrics); available: bleu, chrf, chrf++, ter, wer")


def test_unknown_tokenize_is_a_usage_error(runner, files):
    result = invoke(runner, ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "--tokenize", "moses"])
    assert_error(result, "Invalid value for '--tokenize'", exit_code=2)
    assert "'13a'" in result.stderr


def test_bad_combinations(runner, files):
    result = invoke(runner, ["score", "-s", files["sys_a"], "-s", files["sys_b"], "-r", files["ref_kjv"],
                             "--sentence-level"])
    assert_error(result, "Error: --sentence-level scores one --sys at a time")
    assert_error(invoke(runner, ["score", "-s", "-", "-r", "-"], input="x\n"),
                 "Error: '-' (stdin) can be given only once")
    assert_error(invoke(runner, ["score", "-s", files["sys_a"], "-s", files["sys_b"], "-r", files["ref_kjv"],
                                 "--seed", "0"]), "Error: --seed 0: give a positive seed")
    assert_error(invoke(runner, ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "--paired-bs-n", "-5"]),
                 "Error: --paired-bs-n -5: give a positive number")


def test_sys_and_ref_are_required(runner, files):
    assert_error(invoke(runner, ["score", "-r", files["ref_kjv"]]), "Missing option '-s' / '--sys'", exit_code=2)
    assert_error(invoke(runner, ["score", "-s", files["sys_a"]]), "Missing option '-r' / '--ref'", exit_code=2)


def test_tokenize_without_its_extra_packages(runner, files):
    import importlib.util

    if importlib.util.find_spec("mecab_ko") is not None:
        pytest.skip("mecab_ko is installed here, so ko-mecab works")
    result = invoke(runner, ["score", "-s", files["sys_a"], "-r", files["ref_kjv"], "--tokenize", "ko-mecab"])
    assert_error(result, "Error: --tokenize ko-mecab: Korean tokenization requires extra dependencies")
    assert "pip install sacrebleu[ko]" in result.stderr
