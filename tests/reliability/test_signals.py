"""Signals: the first Ctrl-C (SIGINT) or a SIGTERM saves checkpoint_last.pt and exits 130 with a one-line message,
and the run resumes from it exactly; a second Ctrl-C exits at once, without saving."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint
from tests.train_fixtures import FAST, TINY_MODEL, data_dir  # noqa: F401

RUN = [*TINY_MODEL, *FAST, "--threads", 1, "--log-interval", 1]
SLOW_UPDATE_SECONDS = 30.0


def _pace(seconds: float) -> None:
    # (runs in the forked child) every update after the first takes `seconds` more, as with a large model
    from seq2seq_cli.training import trainer

    original = trainer.Trainer.train_step

    def train_step(self, batches):
        if self.num_updates >= 1:
            time.sleep(seconds)
        return original(self, batches)

    trainer.Trainer.train_step = train_step


def paced_updates() -> None:
    """Updates of 2 s: a signal sent just after update N is logged lands in update N + 1."""
    _pace(2.0)


def slow_updates() -> None:
    """Updates of 30 s: time enough to see the first Ctrl-C handled and send a second during the same update."""
    _pace(SLOW_UPDATE_SECONDS)


def _wait_for(path: Path, text: str, deadline: float) -> None:
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in {path}"
        time.sleep(0.005)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_first_interrupt_saves_and_exits_cleanly_then_resume_is_exact(fork_server, data_dir, tmp_path,  # noqa: F811
                                                                        sig):
    save, log = tmp_path / "ck", tmp_path / "run.log"
    deadline = time.monotonic() + 300
    pid = fork_server.start(["train", data_dir, "--save-dir", save, *RUN, "--max-update", 1_000_000], log,
                            setup="tests.reliability.test_signals:paced_updates")
    _wait_for(save / "train.log", '"num_updates": 3,', deadline)  # mid-epoch 1, before any checkpoint
    os.kill(pid, sig)
    assert fork_server.wait() == 130, log.read_text()
    text = log.read_text()
    name = signal.Signals(sig).name
    assert f"{name} received: saving a checkpoint after this update, then stopping" in text
    errors = [line for line in text.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in text, text
    assert load_checkpoint(save / "checkpoint_last.pt")["train"]["num_updates"] == 4
    assert errors == [f"Error: interrupted by {name} at update 4: saved {save / 'checkpoint_last.pt'}; run the same "
                      "command again to resume"]
    assert '"tag": "valid"' not in (save / "train.log").read_text()  # saved at once, without validating

    target = 8
    code = fork_server.run(["train", data_dir, "--save-dir", save, *RUN, "--max-update", target], log)
    assert code == 0, log.read_text()
    assert fork_server.run(["train", data_dir, "--save-dir", tmp_path / "ref", *RUN, "--max-update", target],
                      tmp_path / "ref.log") == 0
    resumed, reference = (load_checkpoint(d / "checkpoint_last.pt")["model"]["state_dict"]
                          for d in (save, tmp_path / "ref"))
    assert all(torch.equal(resumed[k], v) for k, v in reference.items())


def test_second_ctrl_c_exits_at_once_without_saving(fork_server, data_dir, tmp_path):  # noqa: F811
    save, log = tmp_path / "ck", tmp_path / "run.log"
    deadline = time.monotonic() + 300
    pid = fork_server.start(["train", data_dir, "--save-dir", save, *RUN, "--max-update", 1_000_000], log,
                       setup="tests.reliability.test_signals:slow_updates")
    _wait_for(save / "train.log", '"num_updates": 1,', deadline)  # now in the 30-second second update
    os.kill(pid, signal.SIGINT)
    _wait_for(log, "SIGINT received: saving a checkpoint after this update", deadline)
    sent = time.monotonic()
    os.kill(pid, signal.SIGINT)
    code = fork_server.wait()
    assert time.monotonic() - sent < SLOW_UPDATE_SECONDS / 2, "the second Ctrl-C did not stop the update in progress"
    text = log.read_text()
    assert code == 1 and "second interrupt: exiting at once, without saving" in text and "Aborted!" in text, text
    assert "Traceback" not in text
    assert not list(save.glob("*.pt")) and not list(save.glob(".*.tmp"))  # nothing saved, nothing half-written
