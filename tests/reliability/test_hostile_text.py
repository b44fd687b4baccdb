"""Hostile text: random Unicode, control characters, very long lines, binary data, CRLF and empty files fed to
preprocess, generate, interactive and score. Each run gives the correct output (one line per input line, or a
valid DATA_DIR, or a score) or one clear error line; never a traceback. Each oracle below predicts which."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq_cli.data.datadir import DataDir
from tests.conftest import invoke
from tests.decoding_fixtures import tiny_checkpoint
from tests.reliability.helpers import assert_clean_error

EXAMPLES = 30
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

LINE = st.one_of(
    st.text(max_size=30),  # any code point but surrogates: letters of every script, emoji, combining marks, ...
    st.text(st.characters(categories=("Cc", "Cf", "Zl", "Zp", "Zs", "Co")), max_size=12),  # controls, BOM, U+2028
    st.sampled_from(["", " ", "\t", "\r", "a\rb", "\x00", "\ufeff", "\u2028", "\x85", "\x1b[31m"]),
    st.just("a b c d " * 1500),  # 12,000 characters
)
TEXT = st.builds(lambda lines, eol, last: (eol.join(lines) + (eol if last and lines else "")).encode("utf-8"),
                 st.lists(LINE, max_size=6), st.sampled_from(["\n", "\r\n"]), st.booleans())
CONTENT = st.one_of(TEXT, TEXT, st.binary(max_size=120))  # two thirds text (possibly empty), one third any bytes


@st.composite
def parallel(draw) -> tuple[bytes, bytes]:
    """Two files: mostly line-aligned text (so that the success path is taken), sometimes any two contents."""
    if draw(st.integers(0, 3)) == 0:
        return draw(CONTENT), draw(CONTENT)
    pairs = draw(st.lists(st.tuples(LINE, LINE), max_size=6))
    eol, last = draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans())
    sides = []
    for side in zip(*pairs) if pairs else ((), ()):
        lines = [line.replace("\n", " ") for line in side]  # one line each, so both files have as many
        sides.append((eol.join(lines) + (eol if last and lines else "")).encode("utf-8"))
    return sides[0], sides[1]


def n_lines(data: bytes) -> int:
    """Lines as the commands count them: split on b"\\n"; a final newline ends the last line."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def first_bad_line(data: bytes) -> int | None:
    """1-based line of the first invalid UTF-8 byte, or None when the data is UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return None


def _check_translation(result, data: bytes, source: str) -> None:
    bad = first_bad_line(data)
    if bad is None:
        assert result.exit_code == 0, (data, result.output, result.exception)
        assert result.stdout.count("\n") == n_lines(data)  # one hypothesis line per input line, none dropped
        assert result.stdout == "" or result.stdout.endswith("\n")
    else:
        assert_clean_error(result, f"{source}, line {bad}: not valid UTF-8")


@SETTINGS
@given(data=CONTENT)
def test_generate_any_input_file(runner, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.txt"
        path.write_bytes(data)
        result = invoke(runner, ["generate", "--path", tiny_checkpoint().checkpoint, "--input", path, "--beam", 2,
                                 "--device", "cpu"])
        _check_translation(result, data, str(path))


@SETTINGS
@given(data=CONTENT)
def test_interactive_any_stdin(runner, data):
    result = invoke(runner, ["interactive", "--path", tiny_checkpoint().checkpoint, "--beam", 2, "--device", "cpu"],
                    input=data)
    _check_translation(result, data, "stdin")


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


@SETTINGS
@given(files=parallel())
def test_score_any_files(runner, files):
    hyp, ref = files
    with tempfile.TemporaryDirectory() as tmp:
        hyp_path, ref_path = Path(tmp) / "hyp.txt", Path(tmp) / "ref.txt"
        hyp_path.write_bytes(hyp)
        ref_path.write_bytes(ref)
        result = invoke(runner, ["score", "--sys", hyp_path, "--ref", ref_path])
    if first_bad_line(hyp) is not None or first_bad_line(ref) is not None:
        assert_clean_error(result, "not valid UTF-8")
    elif not _lines(ref):
        assert_clean_error(result, "is empty; nothing to score")
    elif len(_lines(hyp)) != len(_lines(ref)):
        assert_clean_error(result, f"has {len(_lines(hyp))} lines")
    else:
        assert result.exit_code == 0, (hyp, ref, result.output, result.exception)
        assert result.stdout.startswith("BLEU") or "BLEU" in result.stdout.splitlines()[0], result.stdout


@SETTINGS
@given(train=parallel(), valid=TEXT)
def test_preprocess_any_parallel_text(runner, train, valid):
    src, tgt = train
    with tempfile.TemporaryDirectory() as tmp:
        raw, dest = Path(tmp) / "raw", Path(tmp) / "data"
        raw.mkdir()
        for name, data in (("train.src", src), ("train.tgt", tgt), ("valid.src", valid), ("valid.tgt", valid)):
            (raw / name).write_bytes(data)
        result = invoke(runner, ["preprocess", "-s", "src", "-t", "tgt", "--trainpref", raw / "train", "--validpref",
                                 raw / "valid", "--destdir", dest, "--joined-dictionary", "--vocab-size", 300])
        bad = {name: first_bad_line(data) for name, data in (("train.src", src), ("train.tgt", tgt))}
        if any(bad.values()):
            name = next(n for n, line in bad.items() if line)
            assert_clean_error(result, f"{raw / name}, line {bad[name]}: not valid UTF-8")
        elif n_lines(src) != n_lines(tgt):
            assert_clean_error(result, f"has {n_lines(src)} lines but")
        elif n_lines(src) == 0:
            assert_clean_error(result, "are empty (--trainpref): nothing to train the tokenizer on")
        else:
            assert result.exit_code in (0, 1), result.exception
            if result.exit_code == 1:  # e.g. every training pair has an empty side after normalization
                assert_clean_error(result)
                return
            data = DataDir(dest)
            data.verify()
            assert len(data.dataset("valid", "src")) == len(data.dataset("valid", "tgt")) == n_lines(valid)
            assert len(data.dataset("train", "src")) <= n_lines(src)
