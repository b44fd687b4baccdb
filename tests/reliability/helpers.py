"""Shared helpers of the reliability tests: what a clean error looks like, damaging files, a full disk, and the
command lines that read a checkpoint."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any


def assert_clean_error(result: Any, *fragments: str, code: int = 1) -> str:
    """A CLI run failed the way a user's problem must: exit `code`, one 'Error:' line naming `fragments`, no traceback.

    Returns the error line.
    """
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not an escaped exception (a traceback)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def truncate(path: Path) -> None:
    """Cut the file to half its size (an interrupted copy or download)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_bit(path: Path, position: int | None = None, bit: int = 3) -> None:
    """Flip one bit at `position` (default: the middle of the file): a failing disk or memory."""
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if position is None else position
    data[position] ^= 1 << bit
    path.write_bytes(bytes(data))


class FullDisk:
    """A writable file that raises ENOSPC, as the kernel does, once `budget` bytes have been written to it."""

    def __init__(self, file: Any, budget: int) -> None:
        self._file, self._budget = file, budget

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        if size > self._budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget -= size
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> "FullDisk":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._file.close()


def checkpoint_command(command: str, path: Path, trained: tuple[Path, Path],
                       tmp_path: Path) -> tuple[list, str | None]:
    """The command line of `command` reading checkpoint `path` (trained: DATA_DIR, SAVE_DIR), and its stdin."""
    data, save = trained
    if command == "generate":
        return ["generate", "--path", path, "--device", "cpu"], "a b c\n"
    if command == "interactive":
        return ["interactive", "--path", path, "--device", "cpu"], "a b c\n"
    if command == "average-checkpoints":
        return ["average-checkpoints", "--inputs", save / "checkpoint_1_2.pt", path, "--output",
                tmp_path / "avg.pt"], None
    if command == "train --finetune-from-model":
        return ["train", data, "--save-dir", tmp_path / "new", "--finetune-from-model", path, "--device", "cpu"], None
    if command == "train --restore-file":
        return ["train", data, "--save-dir", tmp_path / "new", "--restore-file", path, "--device", "cpu"], None
    return ["train", data, "--save-dir", path.parent, "--max-update", 5, "--device", "cpu"], None  # resume
