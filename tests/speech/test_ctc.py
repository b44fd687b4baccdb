"""The auxiliary CTC loss of speech models: the model's CTC head, the criterion switching it on, its errors, and a
real training run through the CLI (the head is trained, saved, reloaded; fine-tuning without CTC freezes it)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from seq2seq_cli.checkpoint import load_checkpoint
from seq2seq_cli.errors import ConfigError
from seq2seq_cli.models.s2t_transformer import subsampled_lengths
from seq2seq_cli.speech.data import collate_features
from seq2seq_cli.training import components
from seq2seq_cli.training.config import TrainConfig
from tests.conftest import invoke
from tests.speech.test_bad_input import assert_error
from tests.speech.test_pipeline import FAST, TINY_S2T, audio_data, corpus  # noqa: F401 (module fixtures)
from tests.speech.test_s2t_model import tiny_model, utterances
from tests.train_fixtures import ok

CTC = ["--criterion", "label_smoothed_cross_entropy_with_ctc", "--ctc-weight", "0.5"]


def test_the_head_gives_log_probs_over_the_real_encoder_positions():
    model = tiny_model(ctc_head=True)
    lengths = [37, 12, 5]
    src = collate_features(utterances(lengths))
    tgt_in = torch.tensor([[0, 4, 5, 6], [0, 7, 8, 1], [0, 3, 1, 1]])
    keep = torch.tensor([[True] * 4, [True, True, True, False], [True, True, False, False]])
    logits, lprobs, input_lengths = model.logits_for_loss(src, tgt_in, keep, with_ctc=True)
    torch.testing.assert_close(logits, model.logits_for_loss(src, tgt_in, keep), rtol=0, atol=0)
    assert input_lengths.tolist() == subsampled_lengths(torch.tensor(lengths), 2).tolist()
    assert lprobs.shape == (int(input_lengths.max()), 3, 9) and lprobs.dtype == torch.float32
    torch.testing.assert_close(lprobs.exp().sum(-1), torch.ones(lprobs.shape[:2]))


def test_the_head_is_built_last_so_the_rest_of_the_model_is_unchanged():
    with_head, without = tiny_model(ctc_head=True).state_dict(), tiny_model().state_dict()
    assert sorted(set(with_head) - set(without)) == ["ctc_proj.bias", "ctc_proj.weight"]
    for name, value in without.items():
        assert torch.equal(with_head[name], value), name


def test_asking_a_model_without_the_head_for_ctc_is_a_clear_error():
    model = tiny_model()
    src = collate_features(utterances([9]))
    with pytest.raises(ConfigError, match=r"this s2t_transformer has no CTC head \(ctc_head=false\)"):
        model.logits_for_loss(src, torch.tensor([[0, 4]]), torch.tensor([[True, True]]), with_ctc=True)


def spec_for(arch: str, criterion: str, overrides: tuple[str, ...] = ()) -> components.ModelSpec:
    cfg = TrainConfig(data="d", arch=arch, criterion=criterion, model_overrides=overrides)
    return components.fit_criterion(components.model_from_arch(cfg), cfg, None)


def test_the_ctc_criterion_switches_the_head_on_and_others_leave_it_off():
    assert spec_for("s2t_transformer_xs", "label_smoothed_cross_entropy_with_ctc").config.ctc_head is True
    assert spec_for("s2t_transformer_xs", "label_smoothed_cross_entropy").config.ctc_head is False


def test_criterion_and_model_that_do_not_fit_are_refused():
    with pytest.raises(ConfigError, match=r"^--criterion label_smoothed_cross_entropy_with_ctc needs a model with a "
                                          r"CTC head on its encoder \(the s2t_transformer archs\); model transformer "
                                          r"has none$"):
        spec_for("transformer_small", "label_smoothed_cross_entropy_with_ctc")
    with pytest.raises(ConfigError, match=r"^--model-opt ctc_head=false contradicts --criterion "
                                          r"label_smoothed_cross_entropy_with_ctc, which trains that head$"):
        spec_for("s2t_transformer_xs", "label_smoothed_cross_entropy_with_ctc", ("ctc_head=false",))
    with pytest.raises(ConfigError, match=r"^--model-opt ctc_head=true: --criterion cross_entropy would leave that "
                                          r"head untrained; use --criterion label_smoothed_cross_entropy_with_ctc$"):
        spec_for("s2t_transformer_xs", "cross_entropy", ("ctc_head=true",))


@pytest.fixture(scope="module")
def ctc_run(audio_data: Path) -> Path:  # noqa: F811 (the imported module fixture)
    save = audio_data.parent / "ck-ctc"
    ok(invoke(CliRunner(), ["train", audio_data, "--save-dir", save, *TINY_S2T, *FAST, *CTC, "--max-update", "8",
                            "--no-epoch-checkpoints", "--seed", "3"]))
    return save


def test_training_with_ctc_trains_saves_and_decodes_with_the_head(runner, ctc_run, audio_data):  # noqa: F811
    state = load_checkpoint(ctc_run / "checkpoint_last.pt")
    weights = state["model"]["state_dict"]
    assert state["model"]["config"]["ctc_head"] is True and "ctc_proj.weight" in weights
    assert state["train"]["num_updates"] == 8
    result = invoke(runner, ["generate", audio_data, "--path", ctc_run / "checkpoint_last.pt", "--beam", "2",
                             "--device", "cpu", "--no-progress"])
    ok(result)
    assert len(result.stdout.splitlines()) == 6


def test_the_ctc_loss_is_part_of_the_logged_loss(ctc_run, audio_data, tmp_path):  # noqa: F811
    import json

    def first_loss(save: Path) -> tuple[float, float]:
        rows = [json.loads(line) for line in (save / "train.log").read_text().splitlines()]
        row = next(r for r in rows if r.get("tag") == "train_inner")
        return row["loss"], row["nll_loss"]

    plain = tmp_path / "plain"
    ok(invoke(CliRunner(), ["train", audio_data, "--save-dir", plain, *TINY_S2T, *FAST, "--max-update", "1",
                            "--log-interval", "1", "--no-epoch-checkpoints", "--seed", "3", "--log-format", "json"]))
    with_ctc = tmp_path / "ctc"
    ok(invoke(CliRunner(), ["train", audio_data, "--save-dir", with_ctc, *TINY_S2T, *FAST, *CTC, "--max-update", "1",
                            "--log-interval", "1", "--no-epoch-checkpoints", "--seed", "3", "--log-format", "json"]))
    (plain_loss, plain_nll), (ctc_loss, ctc_nll) = first_loss(plain), first_loss(with_ctc)
    # same seed, same model apart from the head built last: the decoder's nll is the same, the loss adds CTC
    assert ctc_nll == pytest.approx(plain_nll, abs=1e-6)
    assert ctc_loss > plain_loss + 0.1


def test_the_ctc_loss_trains_the_head(ctc_run, audio_data, tmp_path):  # noqa: F811
    # ctc_weight 0: the head gets zero gradients, and Adam (no weight decay) leaves it at its initialization
    save = tmp_path / "w0"
    ok(invoke(CliRunner(), ["train", audio_data, "--save-dir", save, *TINY_S2T, *FAST, *CTC, "--ctc-weight", "0",
                            "--max-update", "8", "--no-epoch-checkpoints", "--seed", "3"]))
    initial = load_checkpoint(save / "checkpoint_last.pt")["model"]["state_dict"]
    trained = load_checkpoint(ctc_run / "checkpoint_last.pt")["model"]["state_dict"]
    assert not torch.equal(initial["ctc_proj.weight"], trained["ctc_proj.weight"])


def test_fine_tuning_without_ctc_freezes_the_head(runner, ctc_run, audio_data, tmp_path):  # noqa: F811
    save = tmp_path / "ft"
    ok(invoke(runner, ["train", audio_data, "--save-dir", save, *FAST, "--max-update", "3", "--no-epoch-checkpoints",
                       "--finetune-from-model", ctc_run / "checkpoint_last.pt"]))
    before = load_checkpoint(ctc_run / "checkpoint_last.pt")["model"]["state_dict"]
    after = load_checkpoint(save / "checkpoint_last.pt")["model"]["state_dict"]
    assert torch.equal(before["ctc_proj.weight"], after["ctc_proj.weight"])
    assert not torch.equal(before["decoder.output_projection.weight"], after["decoder.output_projection.weight"])


def test_resuming_a_run_without_the_head_with_ctc_is_refused(runner, audio_data, tmp_path):  # noqa: F811
    save = tmp_path / "plain"
    ok(invoke(runner, ["train", audio_data, "--save-dir", save, *TINY_S2T, *FAST, "--max-update", "1",
                       "--no-epoch-checkpoints"]))
    result = invoke(runner, ["train", audio_data, "--save-dir", save, *TINY_S2T, *FAST, *CTC, "--max-update", "2",
                             "--no-epoch-checkpoints"])
    assert_error(result, f"--criterion label_smoothed_cross_entropy_with_ctc needs a CTC head, and the model of "
                         f"{save / 'checkpoint_last.pt'} was trained without one; use --criterion "
                         "label_smoothed_cross_entropy, or train a new model (a fresh --save-dir)")


def test_ctc_weight_without_the_ctc_criterion_is_refused():
    cfg = TrainConfig(data="d", criterion="label_smoothed_cross_entropy", ctc_weight=0.3)
    with pytest.raises(ConfigError, match=r"^--ctc-weight does not apply to --criterion label_smoothed_cross_entropy "
                                          r"\(its settings: label_smoothing\)$"):
        components.check_components(cfg)
    ctc_cfg = dataclasses.replace(cfg, criterion="label_smoothed_cross_entropy_with_ctc")
    assert components.build_criterion(ctc_cfg).ctc_weight == 0.3


@pytest.mark.slow  # a 2-process job
def test_two_processes_with_ctc_match_one_process_with_update_freq_2(runner, audio_data, tmp_path):  # noqa: F811
    from tests.distributed.conftest import run
    from tests.train_fixtures import losses_by_update, read_log

    # dropout and SpecAugment off: each rank would draw its own masks, which one process cannot repeat
    flags = [*TINY_S2T, *FAST, *CTC, "--dropout", "0", "--model-opt", "freq_mask_n=0", "--model-opt",
             "time_mask_n=0", "--max-update", "4", "--log-interval", "1", "--threads", "1", "--no-epoch-checkpoints",
             "--log-format", "json"]
    ddp, one = tmp_path / "ddp", tmp_path / "one"
    done = run(["-m", "seq2seq_cli", "train", str(audio_data), "--save-dir", str(ddp), *map(str, flags),
                "--distributed-world-size", "2"])
    assert done.returncode == 0, done.stderr
    ok(invoke(runner, ["train", audio_data, "--save-dir", one, *flags, "--update-freq", "2"]))
    ddp_losses, one_losses = losses_by_update(read_log(ddp)), losses_by_update(read_log(one))
    assert len(ddp_losses) == 4
    assert ddp_losses == pytest.approx(one_losses, abs=1e-5)
    heads = [load_checkpoint(d / "checkpoint_last.pt")["model"]["state_dict"]["ctc_proj.weight"] for d in (ddp, one)]
    torch.testing.assert_close(heads[0], heads[1], atol=1e-5, rtol=0)
