"""`seq2seq average-checkpoints`: the mean of the weights, fairseq's file selection, and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import invoke


def fake_state(seed: int, epoch: int = 1, updates: int = 0, keys: tuple[str, ...] = ("enc.weight", "dec.bias"),
               tokenizer: str = "tok-json") -> dict:
    gen = torch.Generator().manual_seed(seed)
    weights = {k: torch.randn(3, 2, generator=gen) for k in keys}
    weights["enc.steps"] = torch.tensor([seed, 10 * seed])  # an integer buffer: copied, not averaged
    weights["half"] = torch.randn(4, generator=gen).to(torch.bfloat16)
    return {"format_version": 1, "tool_version": "0.1.0",
            "model": {"name": "transformer", "arch": "transformer_small", "config": {"seed": seed},
                      "state_dict": weights},
            "tokenizers": {"src": tokenizer, "tgt": tokenizer}, "langs": {"src": "es", "tgt": "en"},
            "train": {"epoch": epoch, "num_updates": updates, "optimizer": {"state": {}}}}


def run_dir(tmp_path: Path) -> Path:
    """A save dir with fairseq's names: epochs 1-4 and update checkpoints after 100..400 updates."""
    save_dir = tmp_path / "run"
    for epoch in range(1, 5):
        save_checkpoint(fake_state(epoch, epoch, 100 * epoch), save_dir / f"checkpoint{epoch}.pt")
        save_checkpoint(fake_state(10 + epoch, epoch, 100 * epoch), save_dir / f"checkpoint_{epoch}_{100 * epoch}.pt")
    save_checkpoint(fake_state(99, 4, 400), save_dir / "checkpoint_last.pt")
    save_checkpoint(fake_state(98, 4, 400), save_dir / "checkpoint_best.pt")
    return save_dir


def expected_mean(seeds: list[int]) -> dict[str, torch.Tensor]:
    states = [fake_state(s)["model"]["state_dict"] for s in seeds]
    mean = {k: sum(s[k].float() for s in states) / len(states) for k in ("enc.weight", "dec.bias", "half")}
    mean["half"] = mean["half"].to(torch.bfloat16)
    mean["enc.steps"] = states[0]["enc.steps"]
    return mean


def assert_weights(path: Path, seeds: list[int]) -> dict:
    state = load_checkpoint(path)  # loads with weights_only=True
    weights = state["model"]["state_dict"]
    expected = expected_mean(seeds)
    assert set(weights) == set(expected)
    for key, value in expected.items():
        assert weights[key].dtype == value.dtype
        torch.testing.assert_close(weights[key], value)
    return state


def test_average_files(runner, tmp_path):
    paths = []
    for seed in (1, 2, 3):
        paths.append(tmp_path / f"c{seed}.pt")
        save_checkpoint(fake_state(seed), paths[-1])
    out = tmp_path / "avg.pt"
    result = invoke(runner, ["average-checkpoints", "--inputs", *paths, "--output", out])
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout == ""
    state = assert_weights(out, [1, 2, 3])
    assert "train" not in state  # training state is dropped
    assert state["model"]["config"] == {"seed": 3}  # everything else from the last checkpoint
    assert state["tokenizers"] == {"src": "tok-json", "tgt": "tok-json"}
    assert state["averaged_from"] == [str(p) for p in paths]


def test_repeated_inputs_flag_works_too(runner, tmp_path):
    for seed in (4, 5):
        save_checkpoint(fake_state(seed), tmp_path / f"c{seed}.pt")
    out = tmp_path / "avg.pt"
    result = invoke(runner, ["average-checkpoints", "--inputs", tmp_path / "c4.pt", "--inputs", tmp_path / "c5.pt",
                             "--output", out])
    assert result.exit_code == 0, result.stderr
    assert_weights(out, [4, 5])


def test_num_epoch_checkpoints_picks_the_last_epochs(runner, tmp_path):
    out = tmp_path / "avg.pt"
    result = invoke(runner, ["average-checkpoints", "--inputs", run_dir(tmp_path), "--num-epoch-checkpoints", 2,
                             "--output", out])
    assert result.exit_code == 0, result.stderr
    assert_weights(out, [4, 3])  # checkpoint4.pt, checkpoint3.pt (newest first), not _last/_best/update ones


def test_num_update_checkpoints_picks_the_last_updates(runner, tmp_path):
    out = tmp_path / "avg.pt"
    result = invoke(runner, ["average-checkpoints", "--inputs", run_dir(tmp_path), "--num-update-checkpoints", 3,
                             "--output", out])
    assert result.exit_code == 0, result.stderr
    assert_weights(out, [14, 13, 12])


def test_checkpoint_upper_bound(runner, tmp_path):
    save_dir = run_dir(tmp_path)
    out = tmp_path / "avg.pt"
    result = invoke(runner, ["average-checkpoints", "--inputs", save_dir, "--num-epoch-checkpoints", 2,
                             "--checkpoint-upper-bound", 3, "--output", out])
    assert result.exit_code == 0, result.stderr
    assert_weights(out, [3, 2])
    result = invoke(runner, ["average-checkpoints", "--inputs", save_dir, "--num-update-checkpoints", 2,
                             "--checkpoint-upper-bound", 250, "--output", out])
    assert result.exit_code == 0, result.stderr
    assert_weights(out, [12, 11])


def error_of(runner, args: list) -> str:
    result = invoke(runner, ["average-checkpoints", *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    return result.stderr


def test_too_few_checkpoints_found(runner, tmp_path):
    save_dir = run_dir(tmp_path)
    out = tmp_path / "avg.pt"
    message = error_of(runner, ["--inputs", save_dir, "--num-epoch-checkpoints", 5, "--output", out])
    assert (f"Error: {save_dir}: found 4 epoch checkpoint(s) (checkpoint{{epoch}}.pt), but "
            "--num-epoch-checkpoints asks for 5") in message
    message = error_of(runner, ["--inputs", save_dir, "--num-update-checkpoints", 2, "--checkpoint-upper-bound",
                                150, "--output", out])
    assert "found 1 update checkpoint(s) (checkpoint_{epoch}_{updates}.pt) up to update 150" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "found 0 epoch checkpoint(s)" in error_of(runner, ["--inputs", empty, "--num-epoch-checkpoints", 1,
                                                              "--output", out])
    assert not out.exists()


def test_missing_file(runner, tmp_path):
    save_checkpoint(fake_state(1), tmp_path / "a.pt")
    message = error_of(runner, ["--inputs", tmp_path / "a.pt", tmp_path / "nope.pt", "--output", tmp_path / "o.pt"])
    assert f"Error: {tmp_path / 'nope.pt'}: no such checkpoint file" in message
    assert not (tmp_path / "o.pt").exists()


def test_mismatched_keys(runner, tmp_path):
    save_checkpoint(fake_state(1), tmp_path / "a.pt")
    save_checkpoint(fake_state(2, keys=("enc.weight", "other.bias")), tmp_path / "b.pt")
    message = error_of(runner, ["--inputs", tmp_path / "a.pt", tmp_path / "b.pt", "--output", tmp_path / "o.pt"])
    assert (f"Error: {tmp_path / 'b.pt'}: its parameters differ from those of {tmp_path / 'a.pt'} "
            "(missing dec.bias; extra other.bias); only checkpoints of the same model can be averaged") in message


def test_mismatched_shapes_and_tokenizers(runner, tmp_path):
    save_checkpoint(fake_state(1), tmp_path / "a.pt")
    other = fake_state(2)
    other["model"]["state_dict"]["dec.bias"] = torch.zeros(5)
    save_checkpoint(other, tmp_path / "b.pt")
    save_checkpoint(fake_state(3, tokenizer="another-json"), tmp_path / "c.pt")
    out = tmp_path / "o.pt"
    assert "parameter dec.bias is (5,) torch.float32, but (3, 2) torch.float32" in error_of(
        runner, ["--inputs", tmp_path / "a.pt", tmp_path / "b.pt", "--output", out])
    assert "its tokenizers differ" in error_of(runner, ["--inputs", tmp_path / "a.pt", tmp_path / "c.pt",
                                                        "--output", out])


@pytest.mark.parametrize("args,message", [
    (["--num-epoch-checkpoints", 1, "--num-update-checkpoints", 1],
     "--num-epoch-checkpoints and --num-update-checkpoints cannot be used together"),
    (["--checkpoint-upper-bound", 3], "--checkpoint-upper-bound needs --num-epoch-checkpoints"),
    ([], "is a folder: give checkpoint files, or add --num-epoch-checkpoints"),
])
def test_inconsistent_flags(runner, tmp_path, args, message):
    save_dir = run_dir(tmp_path)
    assert message in error_of(runner, ["--inputs", save_dir, *args, "--output", tmp_path / "o.pt"])


def test_folder_selection_needs_one_folder(runner, tmp_path):
    save_dir = run_dir(tmp_path)
    assert "needs exactly one folder in --inputs (got 2)" in error_of(
        runner, ["--inputs", save_dir, save_dir, "--num-epoch-checkpoints", 1, "--output", tmp_path / "o.pt"])
    assert "not a folder" in error_of(
        runner, ["--inputs", save_dir / "checkpoint1.pt", "--num-epoch-checkpoints", 1, "--output",
                 tmp_path / "o.pt"])
