"""Hostile checkpoints: a .pt whose pickle would create a file when loaded is refused by every command that loads
checkpoints, and the file is not created (the same payload, loaded unsafely, does create it)."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import invoke
from tests.reliability.helpers import assert_clean_error, checkpoint_command
from tests.train_fixtures import ok


class CreatesFile:
    """Unpickling this calls open(marker, "w"): a stand-in for any code a stranger's file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_state(good: Path, marker: Path) -> dict:
    state = torch.load(good, weights_only=True)
    state["train"]["note"] = CreatesFile(marker)  # a real checkpoint with the payload tucked inside
    return state


def write_hostile(kind: str, good: Path, path: Path, marker: Path) -> None:
    if kind == "torch zip":
        torch.save(_hostile_state(good, marker), path)
    elif kind == "legacy torch":
        torch.save(_hostile_state(good, marker), path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle
        path.write_bytes(pickle.dumps(_hostile_state(good, marker)))


REFUSALS = {"torch zip": "refusing to load: the file holds Python objects that could run code",
            "legacy torch": "not a seq2seq_cli checkpoint (not a torch zip archive)",
            "pickle": "not a seq2seq_cli checkpoint (not a torch zip archive)"}


@pytest.mark.parametrize("kind", REFUSALS)
def test_the_payload_is_real(trained, tmp_path, kind):
    marker = tmp_path / "pwned"
    write_hostile(kind, trained[1] / "checkpoint_last.pt", tmp_path / "evil.pt", marker)
    if kind == "pickle":
        pickle.loads((tmp_path / "evil.pt").read_bytes())
    else:
        torch.load(tmp_path / "evil.pt", weights_only=False)  # what a trusting loader does
    assert marker.exists()


@pytest.mark.parametrize("kind", REFUSALS)
@pytest.mark.parametrize("command", ["generate", "interactive", "average-checkpoints", "train (resume)",
                                     "train --restore-file", "train --finetune-from-model"])
def test_every_command_refuses_a_hostile_checkpoint(runner, trained, tmp_path, command, kind):
    data, save = trained
    copy = tmp_path / "ck"
    shutil.copytree(save, copy)
    path, marker = copy / "checkpoint_last.pt", tmp_path / "pwned"
    write_hostile(kind, save / "checkpoint_last.pt", path, marker)
    args, stdin = checkpoint_command(command, path, (data, copy), tmp_path)
    result = invoke(runner, args, input=stdin)
    assert_clean_error(result, f"{path}: {REFUSALS[kind]}")
    assert not marker.exists(), "the payload ran"
    assert result.stdout == "" and not (tmp_path / "avg.pt").exists()


def test_a_good_checkpoint_still_loads_everywhere(runner, trained, tmp_path):
    # the commands above fail because of the payload, not because of how they are called
    data, save = trained
    for command in ("generate", "interactive", "average-checkpoints", "train --finetune-from-model"):
        args, stdin = checkpoint_command(command, save / "checkpoint_last.pt", trained, tmp_path / command)
        result = ok(invoke(runner, args + (["--max-update", 1] if command.startswith("train") else []), input=stdin))
        if command in ("generate", "interactive"):
            assert len(result.stdout.splitlines()) == 1, result.stdout  # one hypothesis for the one input line
        elif command == "average-checkpoints":
            assert (tmp_path / command / "avg.pt").is_file()
        else:
            assert (tmp_path / command / "new" / "checkpoint_last.pt").is_file()
