"""A fork server for the crash harness: import torch and seq2seq_cli once, then run each `seq2seq` command in a
forked child, so that killing and restarting a training run costs milliseconds instead of an interpreter start.

The server never runs a torch operation itself (so forking is safe: no thread pool exists yet). Protocol, one JSON
document per line: the test writes `{"argv": [...], "log": PATH}`; the server answers `{"pid": N}` once the child
runs `seq2seq ARGV` (stdout and stderr to PATH), then `{"exit": CODE}` when it ends (-9 after a SIGKILL).
"""
from __future__ import annotations

import json
import os
import sys

import torch  # noqa: F401 - the expensive imports, done once for every child
import torch._dynamo  # noqa: F401 - torch.optim.Optimizer imports it on first use: seconds
import tqdm.contrib.logging  # noqa: F401

import seq2seq_cli.cli.train  # noqa: F401
import seq2seq_cli.data.datadir  # noqa: F401
import seq2seq_cli.training.batching  # noqa: F401
import seq2seq_cli.training.trainer  # noqa: F401
from seq2seq_cli.cli import cli
import seq2seq_cli.models.transformer  # noqa: F401
import seq2seq_cli.tokenization.hf  # noqa: F401
import seq2seq_cli.training.loss  # noqa: F401
import seq2seq_cli.training.lr_scheduler  # noqa: F401
import seq2seq_cli.training.optim  # noqa: F401


def _child(argv: list[str], log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 0
    try:
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


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request["argv"], request["log"])
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
