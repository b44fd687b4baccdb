"""One writer per --save-dir: `seq2seq train` holds an exclusive lock on SAVE_DIR/.lock while it runs.

The lock is `fcntl.flock` on an open file: the kernel drops it when the process ends in any way (exit, crash,
SIGKILL, OOM kill), so a killed run never leaves a stale lock behind, and a second run on the same folder is refused
at once instead of interleaving checkpoints with the first. The file holds the holder's pid and host for the
message; its presence means nothing (only the lock does), so it is never deleted.

The folder's only writer may then also remove the temp files (`.checkpoint*.tmp`, `.config.json.*.tmp`) of a run
that was killed while writing: nobody else can be writing them.

Limitations: flock is advisory and local to one machine on some network file systems (old NFS); on platforms
without fcntl (Windows) no lock is taken and a warning says so.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from seq2seq_cli.errors import TrainingError

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@contextlib.contextmanager
def save_dir_lock(save_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of `save_dir` (created if needed) for the duration of the block.

    Raises:
        TrainingError: another process holds it (naming the folder and, if known, the holder).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        logger.warning("no file locking on this platform: make sure no other run uses --save-dir %s", save_dir)
        yield
        return
    save_dir = Path(save_dir)
    path = save_dir / LOCK_FILE
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TrainingError(f"--save-dir {save_dir}: cannot write there ({exc.strerror or exc}); choose another "
                            "--save-dir") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise TrainingError(f"--save-dir {save_dir} is in use by another seq2seq train ({holder or 'unknown'}); "
                                "wait for it to finish, or choose another --save-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        remove_stale_temp_files(save_dir)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def remove_stale_temp_files(save_dir: Path) -> None:
    """Delete the temp files that an interrupted checkpoint write left (only the lock holder may call this)."""
    for tmp in [*Path(save_dir).glob(".checkpoint*.tmp"), *Path(save_dir).glob(".config.json.*.tmp")]:
        tmp.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted write", tmp)
