"""Resuming and fine-tuning: exact resume (also after SIGKILL), --reset-* flags, conflicts with the checkpoint."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seq2seq_cli.checkpoint import load_checkpoint
from tests.conftest import REPO
from tests.train_fixtures import (FAST, TINY_MODEL, data_dir, losses_by_update, make_data_dir, ok,  # noqa: F401
                                  read_log, tagged, train)

# The data has 200 pairs in 6 batches: epoch e holds updates 6(e-1)+1 .. 6e.


def _new_records(save_dir: Path, skip: int) -> list[dict]:
    return read_log(save_dir)[skip:]


def _assert_same_losses(resumed: dict[int, float], reference: dict[int, float], first: int, count: int) -> None:
    assert min(resumed) == first, f"the resumed run should start at update {first}, not {min(resumed)}"
    for n in range(first, first + count):
        assert resumed[n] == pytest.approx(reference[n], abs=1e-6), n


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory) -> dict[int, float]:  # noqa: F811
    """Per-update losses of an uninterrupted 40-update run (dropout on, so the RNG state matters)."""
    from click.testing import CliRunner

    save = tmp_path_factory.mktemp("reference") / "ck"
    ok(train(CliRunner(), data_dir, save, "--max-update", 40, "--log-interval", 1, "--save-interval-updates", 7))
    return losses_by_update(read_log(save))


@pytest.mark.parametrize("stop_at", [10, 12])  # mid-epoch 2, and the exact end of epoch 2
def test_resume_repeats_the_uninterrupted_run(runner, data_dir, tmp_path, reference, stop_at):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", stop_at, "--log-interval", 1, "--save-interval-updates", 7))
    assert load_checkpoint(save / "checkpoint_last.pt")["train"]["num_updates"] == stop_at
    skip = len(read_log(save))
    ok(train(runner, data_dir, save, "--max-update", 40, "--log-interval", 1, "--save-interval-updates", 7))
    _assert_same_losses(losses_by_update(_new_records(save, skip)), reference, stop_at + 1, 20)


def _subprocess_train(data: Path, save: Path, max_update: int) -> list[str]:
    return [sys.executable, "-m", "seq2seq_cli", "train", str(data), "--save-dir", str(save), *TINY_MODEL, *FAST,
            "--threads", "1", "--max-update", str(max_update), "--log-interval", "1", "--save-interval-updates", "7"]


def test_sigkill_then_restart_repeats_the_uninterrupted_run(data_dir, tmp_path, reference):
    save = tmp_path / "ck"
    command = _subprocess_train(data_dir, save, 40)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(save.glob("checkpoint_*_14.pt")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint at update 14"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no atexit: as a crash or an OOM kill
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    resumed_from = load_checkpoint(save / "checkpoint_last.pt")["train"]["num_updates"]
    # whichever save completed last: an epoch end (every 6 updates) or an interval (every 7); 40 was not reached
    assert 12 <= resumed_from < 40 and (resumed_from % 6 == 0 or resumed_from % 7 == 0)
    skip = len(read_log(save))
    restart = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    assert f"resumed from {save / 'checkpoint_last.pt'}" in restart.stderr
    resumed = losses_by_update(_new_records(save, skip))
    _assert_same_losses(resumed, reference, resumed_from + 1, min(20, 40 - resumed_from))


def test_epoch_statistics_survive_a_mid_epoch_resume_unless_reset_meters(runner, data_dir, tmp_path):
    runs = {}
    for name, extra in (("full", None), ("resumed", []), ("reset", ["--reset-meters"])):
        save = tmp_path / name
        if extra is not None:  # stop after update 9 (mid-epoch 2), then finish epoch 2
            ok(train(runner, data_dir, save, "--max-update", 9))
        ok(train(runner, data_dir, save, "--max-epoch", 2, *(extra or [])))
        runs[name] = tagged(read_log(save), "train")[-1]
    assert runs["resumed"]["epoch"] == 2 and runs["resumed"]["loss"] == pytest.approx(runs["full"]["loss"], abs=1e-6)
    assert runs["resumed"]["bsz"] == pytest.approx(runs["full"]["bsz"])
    assert runs["reset"]["loss"] != pytest.approx(runs["full"]["loss"], abs=1e-4)  # only updates 10-12 counted
    # wall time continues from the checkpoint's (restored meters) or restarts from zero (--reset-meters)
    walls = {name: load_checkpoint(tmp_path / name / "checkpoint2.pt")["train"]["meters"]["wall"]
             for name in ("resumed", "reset")}
    first_part = load_checkpoint(tmp_path / "resumed" / "checkpoint1.pt")["train"]["meters"]["wall"]
    assert walls["resumed"] > first_part and walls["reset"] < walls["resumed"]


def test_a_finished_run_does_nothing_more(runner, data_dir, tmp_path):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", 3, "--log-interval", 1))
    before = read_log(save)
    result = ok(train(runner, data_dir, save, "--max-update", 3, "--log-interval", 1))
    assert read_log(save) == before and "done training: max_update 3" in result.stderr


def test_reset_optimizer_and_dataloader(runner, data_dir, tmp_path):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", 8, "--log-interval", 1))
    skip = len(read_log(save))
    ok(train(runner, data_dir, save, "--max-update", 3, "--log-interval", 1, "--reset-optimizer",
             "--reset-dataloader"))
    new = tagged(_new_records(save, skip), "train_inner")
    assert [r["num_updates"] for r in new] == [1, 2, 3]  # the update count restarted with the optimizer
    assert [r["epoch"] for r in new] == [1, 1, 1]  # and the data from epoch 1
    assert new[0]["lr"] == pytest.approx(0.003 * 1 / 5)  # warm-up again (--warmup-updates 5): lr after update 1

    save2 = tmp_path / "ck2"
    ok(train(runner, data_dir, save2, "--max-update", 8, "--log-interval", 1))
    skip = len(read_log(save2))
    ok(train(runner, data_dir, save2, "--max-update", 10, "--log-interval", 1))
    new = tagged(_new_records(save2, skip), "train_inner")
    assert [(r["num_updates"], r["epoch"]) for r in new] == [(9, 2), (10, 2)]


def test_reset_lr_scheduler(runner, data_dir, tmp_path):
    plateau = ["--lr", 1e-3, "--lr-scheduler", "reduce_lr_on_plateau", "--warmup-updates", 0, "--lr-shrink", 0.5,
               "--lr-scheduler-opt", "lr_threshold=0.9", "--log-interval", 1]
    for name, extra in (("kept", []), ("reset", ["--reset-lr-scheduler"])):
        save = tmp_path / name
        ok(train(runner, data_dir, save, "--max-epoch", 3, *plateau))  # shrinks after epochs 2 and 3
        skip = len(read_log(save))
        ok(train(runner, data_dir, save, "--max-epoch", 4, *plateau, *extra))
        first = tagged(_new_records(save, skip), "train_inner")[0]
        assert first["num_updates"] == 19
        assert first["lr"] == pytest.approx(2.5e-4 if name == "kept" else 1e-3)


def test_restore_file_from_another_folder(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "a", "--max-update", 7, "--save-interval-updates", 7))
    ok(train(runner, data_dir, tmp_path / "b", "--max-update", 9, "--log-interval", 1,
             "--restore-file", tmp_path / "a" / "checkpoint_2_7.pt"))
    assert [r["num_updates"] for r in tagged(read_log(tmp_path / "b"), "train_inner")] == [8, 9]
    assert load_checkpoint(tmp_path / "b" / "checkpoint_last.pt")["train"]["num_updates"] == 9


@pytest.mark.parametrize("flags, fragments", [
    (["--encoder-layers", "2"], ["--encoder-layers 2 contradicts the checkpoint", "encoder_layers=1",
                                 "drop the flag", "fresh --save-dir", "--finetune-from-model"]),
    (["--model-opt", "dropout=0.3"], ["--dropout 0.3 contradicts the checkpoint", "dropout=0.1"]),
    (["--arch", "transformer"], ["--arch transformer contradicts the checkpoint", "transformer_small"]),
    (["-s", "tgt", "-t", "src"], ["trains src->tgt, not tgt->src"]),
])
def test_flags_that_contradict_the_checkpoint(runner, data_dir, tmp_path, flags, fragments):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", 2))
    model = [a for a in TINY_MODEL if a not in ("--arch", "transformer_small")] if "--arch" in flags else TINY_MODEL
    result = train(runner, data_dir, save, "--max-update", 4, *flags, model=model)
    assert result.exit_code == 1 and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    # the same flags as the checkpoint (and no model flags at all) are fine
    ok(train(runner, data_dir, save, "--max-update", 3, model=[]))


def test_finetune_from_model(runner, data_dir, tmp_path):
    base = tmp_path / "base"
    ok(train(runner, data_dir, base, "--max-epoch", 6, "--lr", 0.01, "--log-interval", 6))
    last = tagged(read_log(base), "train_inner")[-1]["loss"]
    ok(train(runner, data_dir, tmp_path / "ft", "--max-update", 2, "--log-interval", 1, "--dropout", 0.2,
             "--finetune-from-model", base / "checkpoint_last.pt", model=[]))
    records = tagged(read_log(tmp_path / "ft"), "train_inner")
    assert records[0]["num_updates"] == 1 and records[0]["epoch"] == 1  # a new run...
    fresh = losses_by_update(read_log(base))
    assert records[0]["loss"] < last + 0.3 and records[0]["loss"] < fresh.get(1, 99) - 0.3  # ...from those weights
    state = load_checkpoint(tmp_path / "ft" / "checkpoint_last.pt")
    assert state["model"]["config"]["dropout"] == 0.2 and state["model"]["config"]["encoder_layers"] == 1

    other = make_data_dir(tmp_path / "other", n_train=20, reverse=True)
    result = train(runner, other, tmp_path / "ft2", "--max-update", 1, "--finetune-from-model",
                   base / "checkpoint_last.pt", model=[])
    assert result.exit_code == 1 and "was trained with other tokenizers than" in result.stderr

    result = train(runner, data_dir, tmp_path / "ft3", "--max-update", 1, "--encoder-layers", 2,
                   "--finetune-from-model", base / "checkpoint_last.pt", model=[])
    assert result.exit_code == 1 and "do not fit the model built from the flags" in result.stderr
