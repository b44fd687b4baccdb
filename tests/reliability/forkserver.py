"""A fork server for the crash, lock and signal tests: import torch and seq2seq_cli once, then run each
`seq2seq` command in a forked child, so that killing and restarting a run costs milliseconds, not an interpreter start.

The server never runs a torch operation itself (so forking is safe: no thread pool exists yet). Protocol, one JSON
document per line: the test writes `{"argv": [...], "log": PATH, "setup": "module:function" or null}`; the server
answers `{"pid": N}` once the child runs `seq2seq ARGV` (stdout and stderr to PATH; `setup`, a test helper, is called
first in the child, e.g. to slow the updates down), then `{"exit": CODE}` when it ends (-9 after a SIGKILL).
`ForkServer` is the test side.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ForkServer:
    """The test side: starts the server, runs commands in its children, waits for them."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.forkserver"], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def start(self, argv: list, log: Path, setup: str | None = None) -> int:
        """Start `seq2seq ARGV` (output to `log`); returns its pid."""
        request = {"argv": [str(a) for a in argv], "log": str(log), "setup": setup}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["pid"]

    def wait(self) -> int:
        """The exit status of the command started last (negative: killed by that signal)."""
        return json.loads(self.proc.stdout.readline())["exit"]

    def run(self, argv: list, log: Path, setup: str | None = None) -> int:
        self.start(argv, log, setup)
        return self.wait()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _child(argv: list[str], log: str, setup: str | None) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 0
    try:
        if setup:
            module, name = setup.split(":")
            getattr(importlib.import_module(module), name)()
        from seq2seq_cli.cli import cli

        cli.main(args=argv, prog_name="seq2seq", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report any escape as a failure, with its traceback in the log
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _preload() -> None:
    """The expensive imports, done once in the server for every child (torch.optim imports torch._dynamo: seconds)."""
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401
    import tqdm.contrib.logging  # noqa: F401

    import seq2seq_cli.cli.train  # noqa: F401
    import seq2seq_cli.data.datadir  # noqa: F401
    import seq2seq_cli.models.transformer  # noqa: F401
    import seq2seq_cli.tokenization.hf  # noqa: F401
    import seq2seq_cli.training.batching  # noqa: F401
    import seq2seq_cli.training.loss  # noqa: F401
    import seq2seq_cli.training.lr_scheduler  # noqa: F401
    import seq2seq_cli.training.optim  # noqa: F401
    import seq2seq_cli.training.trainer  # noqa: F401


def main() -> None:
    _preload()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request["argv"], request["log"], request.get("setup"))
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
