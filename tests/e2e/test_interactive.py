"""`seq2seq interactive`: line-by-line translation from stdin, answered (and flushed) as each line arrives."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading

import pytest

from tests.conftest import REPO, invoke
from tests.decoding_fixtures import tiny_checkpoint

LINES = ["a b c d", "", "p o n m", "e f e f", "b"]


@pytest.fixture(scope="module")
def ckpt() -> str:
    return str(tiny_checkpoint().checkpoint)


def test_interactive_equals_generate_line_for_line(runner, ckpt) -> None:
    text = "\n".join(LINES) + "\n"
    expected = invoke(runner, ["generate", "--path", ckpt, "--device", "cpu"], input=text)
    assert expected.exit_code == 0, expected.stderr
    for extra in ([], ["--buffer-size", "2"], ["--buffer-size", "10"]):
        result = invoke(runner, ["interactive", "--path", ckpt, "--device", "cpu", *extra], input=text)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected.stdout
        assert result.stdout.split("\n")[:-1][1] == ""  # the empty line gets an empty answer
    fair = invoke(runner, ["interactive", "--path", ckpt, "--output-format", "fairseq", "--nbest", "2"], input=text)
    assert [line.split("\t")[0] for line in fair.stdout.splitlines()[:5]] == ["S-0", "H-0", "D-0", "P-0", "H-0"]


def test_interactive_rejects_a_bad_buffer_size(runner, ckpt) -> None:
    result = invoke(runner, ["interactive", "--path", ckpt, "--buffer-size", "0"], input="a\n")
    assert result.exit_code == 1 and "--buffer-size 0: must be at least 1" in result.stderr


def test_each_line_is_answered_before_the_next_is_sent(ckpt) -> None:
    # A real pipe: the answer to line 1 must arrive while stdin is still open (no waiting for EOF or a full buffer).
    proc = subprocess.Popen([sys.executable, "-m", "seq2seq_cli", "-q", "interactive", "--path", ckpt, "--device",
                             "cpu", "--threads", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    answers: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [answers.put(line) for line in proc.stdout], daemon=True).start()
    try:
        for line in ("a b c", "d e"):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answer = answers.get(timeout=120)  # generous: the first answer waits for torch to import
            assert answer.endswith("\n") and len(answer.split()) >= 1
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
