"""`seq2seq train` end to end on a tiny copy task: artifacts, logs, flags, and bad input."""
from __future__ import annotations

import json
import math

import pytest
import torch

from seq2seq_cli.checkpoint import load_checkpoint, load_model
from tests.train_fixtures import (data_dir, losses_by_update, make_data_dir, ok, read_log,  # noqa: F401
                                  tagged, train)

FAIRSEQ_FIELDS = {"loss", "nll_loss", "ppl", "wps", "ups", "wpb", "bsz", "lr", "gnorm", "num_updates", "wall",
                  "epoch"}


def test_two_epochs_write_fairseq_artifacts(runner, data_dir, tmp_path):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-epoch", 2, "--log-interval", 2))
    names = sorted(p.name for p in save.iterdir())
    assert names == [".lock", "checkpoint1.pt", "checkpoint2.pt", "checkpoint_best.pt", "checkpoint_last.pt",
                     "config.json", "train.log"]
    records = read_log(save)
    inner, epochs, valid = (tagged(records, t) for t in ("train_inner", "train", "valid"))
    assert [r["epoch"] for r in epochs] == [1, 2] and [r["epoch"] for r in valid] == [1, 2]
    assert all(FAIRSEQ_FIELDS <= set(r) for r in inner + epochs)
    assert all(r["num_updates"] % 2 == 0 for r in inner)  # --log-interval 2
    per_epoch = epochs[0]["num_updates"]
    assert per_epoch == 6 and epochs[1]["num_updates"] == 12  # 200 pairs in 6 batches of <= 256 tokens
    for r in inner:
        assert math.isclose(r["ppl"], 2 ** r["nll_loss"], rel_tol=1e-9)
    # label smoothing is 0 by default: loss == nll_loss
    assert all(math.isclose(r["loss"], r["nll_loss"]) for r in inner)

    state = torch.load(save / "checkpoint_last.pt", weights_only=True)  # plain tensors and primitives only
    assert state["train"]["num_updates"] == epochs[1]["num_updates"]
    assert state["train"]["iterator"] == {"epoch": 3, "iterations_in_epoch": 0, "world_size": 1}
    assert state["model"]["config"]["encoder_layers"] == 1 and state["model"]["arch"] == "transformer_small"
    assert state["langs"] == {"src": "src", "tgt": "tgt"}
    assert state["tokenizers"]["src"] == (data_dir / "tokenizer.json").read_text(encoding="utf-8")
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state["model"]["state_dict"])
    assert load_checkpoint(save / "checkpoint1.pt")["train"]["num_updates"] == per_epoch
    best = min(valid, key=lambda r: r["loss"])
    assert load_checkpoint(save / "checkpoint_best.pt")["train"]["num_updates"] == best["num_updates"]

    config = json.loads((save / "config.json").read_text())
    assert config["model"]["config"]["encoder_embed_dim"] == 16 and config["train"]["max_epoch"] == 2
    loaded = load_model(save / "checkpoint_last.pt", "cpu")
    assert loaded.model_config.decoder_layers == 1 and not loaded.model.training


def test_the_copy_task_is_learned(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-epoch", 25, "--disable-validation", "--log-interval", 50,
             "--lr", 0.01, "--dropout", 0, "--no-epoch-checkpoints"))
    epochs = tagged(read_log(tmp_path / "ck"), "train")
    assert len(epochs) == 25 and epochs[-1]["loss"] < epochs[0]["loss"] - 1.5
    assert not (tmp_path / "ck" / "checkpoint_best.pt").exists()  # --disable-validation: no best
    assert not tagged(read_log(tmp_path / "ck"), "valid")


def test_max_update_interval_checkpoints_and_keep(runner, data_dir, tmp_path):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-update", 10, "--save-interval-updates", 2, "--keep-interval-updates", 2,
             "--no-epoch-checkpoints", "--log-interval", 1))
    names = sorted(p.name for p in save.glob("checkpoint*.pt"))
    # 6 batches per epoch: updates 8 and 10 are in epoch 2; older interval checkpoints were deleted
    assert names == ["checkpoint_2_10.pt", "checkpoint_2_8.pt", "checkpoint_best.pt", "checkpoint_last.pt"]
    assert load_checkpoint(save / "checkpoint_last.pt")["train"]["num_updates"] == 10
    records = read_log(save)
    assert max(r["num_updates"] for r in tagged(records, "train_inner")) == 10
    # a mid-epoch save validates (so that checkpoint_best can be judged), as fairseq does
    assert [r["num_updates"] for r in tagged(records, "valid")] == [2, 4, 6, 8, 10]


def test_keep_last_epochs_and_save_interval(runner, data_dir, tmp_path):
    save = tmp_path / "ck"
    ok(train(runner, data_dir, save, "--max-epoch", 4, "--save-interval", 2, "--keep-last-epochs", 1))
    assert sorted(p.name for p in save.glob("checkpoint*.pt")) == ["checkpoint4.pt", "checkpoint_best.pt",
                                                                    "checkpoint_last.pt"]


def test_no_save_writes_no_checkpoint(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 3, "--no-save"))
    assert not list((tmp_path / "ck").glob("*.pt"))
    assert (tmp_path / "ck" / "train.log").exists()


def test_validate_interval_updates_and_interval_epochs(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "a", "--max-epoch", 2, "--validate-interval-updates", 4,
             "--validate-interval", 2, "--no-save"))
    valid = tagged(read_log(tmp_path / "a"), "valid")
    # updates 4, 8 (interval), then the end of epoch 2 (update 12); not the end of epoch 1 (update 6)
    assert [r["num_updates"] for r in valid] == [4, 8, 12]


def test_patience_and_maximize_flag(runner, data_dir, tmp_path):
    # The loss falls at every validation; maximizing it means no validation after the first is an improvement.
    ok(train(runner, data_dir, tmp_path / "ck", "--max-epoch", 10, "--patience", 2,
             "--maximize-best-checkpoint-metric"))
    valid = tagged(read_log(tmp_path / "ck"), "valid")
    assert len(valid) == 3 and valid[-1]["best_loss"] == valid[0]["loss"]
    assert load_checkpoint(tmp_path / "ck" / "checkpoint_best.pt")["train"]["num_updates"] == valid[0]["num_updates"]


def test_stop_time_hours(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--stop-time-hours", 1e-9, "--max-epoch", 5, "--log-interval", 1))
    assert max(losses_by_update(read_log(tmp_path / "ck"))) == 1


def test_a_run_resumed_after_its_time_is_spent_trains_no_further(runner, data_dir, tmp_path):
    """Running a finished --stop-time-hours command again (a recipe's second run) leaves its checkpoints alone."""
    args = ("--stop-time-hours", 1e-9, "--max-epoch", 5, "--log-interval", 1)
    ok(train(runner, data_dir, tmp_path / "ck", *args))
    last = tmp_path / "ck" / "checkpoint_last.pt"
    first = last.read_bytes()
    again = ok(train(runner, data_dir, tmp_path / "ck", *args))
    assert "done training: stop_time_hours 1e-09 (epoch 1, 1 updates," in again.stderr
    assert last.read_bytes() == first and load_checkpoint(last)["train"]["num_updates"] == 1


def test_same_seed_same_losses_other_seed_differs(runner, data_dir, tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        ok(train(runner, data_dir, tmp_path / name, "--max-update", 4, "--log-interval", 1, "--no-save",
                 "--seed", seed))
        runs[name] = losses_by_update(read_log(tmp_path / name))
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_num_workers_give_the_same_losses(runner, data_dir, tmp_path):
    for name, workers in (("a", 0), ("b", 1)):
        ok(train(runner, data_dir, tmp_path / name, "--max-update", 4, "--log-interval", 1, "--no-save",
                 "--num-workers", workers))
    assert losses_by_update(read_log(tmp_path / "a")) == pytest.approx(losses_by_update(read_log(tmp_path / "b")),
                                                                       abs=1e-6)


def test_update_freq_accumulates_like_one_big_batch(runner, data_dir, tmp_path):
    # --batch-size 8 --update-freq 2 sees 16 sentences per update, so wpb/bsz double against --update-freq 1
    for name, freq in (("one", 1), ("two", 2)):
        ok(train(runner, data_dir, tmp_path / name, "--batch-size", 8, "--update-freq", freq, "--max-epoch", 1,
                 "--no-save", "--disable-validation"))
    one, two = (tagged(read_log(tmp_path / n), "train")[0] for n in ("one", "two"))
    assert one["num_updates"] == 25 and two["num_updates"] == 13
    assert one["bsz"] == 8 and two["bsz"] == pytest.approx(200 / 13)


def test_update_freq_gradient_equals_concatenated_batch(data_dir, tmp_path):
    """The loss of an update is summed over its micro-batches and divided by their total target tokens."""
    from seq2seq_cli.training.config import TrainConfig
    from seq2seq_cli.training.setup import build_parts
    from seq2seq_cli.training.trainer import Trainer

    cfg = TrainConfig(data=data_dir, save_dir=tmp_path / "ck", arch="transformer_small", device="cpu",
                      model_overrides=("encoder_layers=1", "decoder_layers=1", "encoder_embed_dim=16",
                                       "decoder_embed_dim=16", "encoder_attention_heads=2",
                                       "decoder_attention_heads=2", "dropout=0.0"), batch_size=10)
    trainer = Trainer(build_parts(cfg))
    pair = trainer.parts.train.dataset
    halves = [pair.collate(trainer.parts.train.batches[0]), pair.collate(trainer.parts.train.batches[-1])]
    whole = pair.collate(list(trainer.parts.train.batches[0]) + list(trainer.parts.train.batches[-1]))
    grads = []
    for batches in (halves, [whole]):
        ntokens = sum(b.ntokens for b in batches)
        trainer.model.zero_grad()
        for b in batches:
            loss, _ = trainer._forward(b)
            (loss / ntokens).backward()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.params]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    trainer.model.zero_grad()
    trainer.train_step(halves)  # the real step runs on the same two micro-batches
    assert trainer.num_updates == 1


def test_clip_norm_limits_the_update(runner, data_dir, tmp_path):
    # With Adam, a gradient clipped to a norm far below epsilon barely moves the weights: the loss stays put.
    for name, clip in (("free", 0), ("clipped", 1e-12)):
        ok(train(runner, data_dir, tmp_path / name, "--max-update", 12, "--log-interval", 6, "--no-save",
                 "--clip-norm", clip))
    free, clipped = (losses_by_update(read_log(tmp_path / n)) for n in ("free", "clipped"))
    assert clipped[12] > clipped[6] - 0.05 and free[12] < free[6] - 0.2


def test_criterion_and_label_smoothing(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ls", "--max-update", 2, "--log-interval", 1, "--no-save",
             "--label-smoothing", 0.1))
    ok(train(runner, data_dir, tmp_path / "ce", "--max-update", 2, "--log-interval", 1, "--no-save",
             "--criterion", "cross_entropy"))
    ls, ce = (tagged(read_log(tmp_path / n), "train_inner")[0] for n in ("ls", "ce"))
    assert ls["loss"] > ls["nll_loss"] + 1e-4  # near-uniform predictions at the start: a small difference
    assert ce["loss"] == ce["nll_loss"] and ce["nll_loss"] == pytest.approx(ls["nll_loss"], abs=1e-6)


@pytest.mark.parametrize("flags, expected", [
    (["--lr-scheduler", "fixed", "--warmup-updates", 0], lambda n: 0.003),
    (["--lr-scheduler", "inverse_sqrt", "--warmup-updates", 4, "--warmup-init-lr", 0.001],
     lambda n: 0.001 + n * (0.003 - 0.001) / 4 if n < 4 else 0.003 * math.sqrt(4 / n)),
    (["--lr-scheduler", "polynomial_decay", "--warmup-updates", 0, "--total-num-update", 10,
      "--end-learning-rate", 0.001, "--power", 2.0],
     lambda n: 0.001 + (0.003 - 0.001) * (1 - n / 10) ** 2),
    (["--lr-scheduler", "cosine", "--warmup-updates", 0, "--min-lr", 0.0, "--lr-scheduler-opt",
      "lr_period_updates=8"], lambda n: 0.003 * (1 + math.cos(math.pi * n / 8)) / 2),
])
def test_lr_schedulers(runner, data_dir, tmp_path, flags, expected):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 6, "--log-interval", 1, "--no-save", *flags))
    for r in tagged(read_log(tmp_path / "ck"), "train_inner"):
        assert r["lr"] == pytest.approx(expected(r["num_updates"]), rel=1e-6), r


def test_reduce_lr_on_plateau_flags(runner, data_dir, tmp_path):
    # lr_threshold 0.9: only a 90% drop of the valid loss counts as progress, so from epoch 2 on every epoch is a
    # plateau and the lr is halved after it (the first validation only sets the reference)
    ok(train(runner, data_dir, tmp_path / "ck", "--max-epoch", 4, "--lr", 1e-3, "--lr-scheduler",
             "reduce_lr_on_plateau", "--warmup-updates", 0, "--lr-shrink", 0.5, "--lr-patience", 0,
             "--lr-scheduler-opt", "lr_threshold=0.9", "--no-save"))
    lrs = [r["lr"] for r in tagged(read_log(tmp_path / "ck"), "train")]
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_adam_flags_reach_the_optimizer(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 1, "--adam-betas", "(0.8, 0.95)", "--adam-eps",
             1e-6, "--weight-decay", 0.01))
    group = load_checkpoint(tmp_path / "ck" / "checkpoint_last.pt")["train"]["optimizer"]["param_groups"][0]
    assert tuple(group["betas"]) == (0.8, 0.95) and group["eps"] == 1e-6 and group["weight_decay"] == 0.01


def test_model_flag_precedence(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 1, "--dropout", 0.3, "--share-all-embeddings",
             "--model-opt", "encoder_learned_pos=true", "--model-opt", "decoder-learned-pos=1",
             "--activation-fn", "gelu", "--max-source-positions", 64, "--decoder-normalize-before"))
    config = load_checkpoint(tmp_path / "ck" / "checkpoint_last.pt")["model"]["config"]
    assert config["dropout"] == 0.3 and config["share_all_embeddings"] and config["activation_fn"] == "gelu"
    assert config["encoder_learned_pos"] and config["decoder_learned_pos"] and config["decoder_normalize_before"]
    assert config["max_source_positions"] == 64
    assert config["encoder_layers"] == 1  # flag beats the preset (3)...
    assert config["decoder_ffn_embed_dim"] == 32
    assert config["max_target_positions"] == 1024  # ...and the preset leaves the dataclass default


def test_default_arch_is_transformer(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 1, "--no-save", "--encoder-layers", 1,
             "--decoder-layers", 1, model=[]))
    config = json.loads((tmp_path / "ck" / "config.json").read_text())["model"]
    assert config["arch"] == "transformer" and config["config"]["encoder_embed_dim"] == 512


def test_log_format_json_and_precision_bf16(runner, data_dir, tmp_path):
    result = ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 2, "--log-interval", 1, "--log-format",
                      "json", "--precision", "bf16", "--threads", 1))
    lines = [line.split(" | ", 3)[3] for line in result.stderr.splitlines() if "num_updates" in line]
    assert json.loads(lines[0])["num_updates"] == 1
    assert result.stdout == ""  # stdout is for data only
    records = tagged(read_log(tmp_path / "ck"), "train_inner")
    assert len(records) == 2 and all(math.isfinite(r["loss"]) for r in records)
    assert load_checkpoint(tmp_path / "ck" / "checkpoint_last.pt")["train"]["config"]["precision"] == "bf16"


def test_threads_flag(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 1, "--no-save", "--threads", 2))
    assert torch.get_num_threads() == 2  # the autouse fixture restores the test's single thread afterwards


def test_user_dir_arch_plugin(runner, data_dir, tmp_path):
    plugin = tmp_path / "train_arch_plugin_d1.py"
    plugin.write_text(
        "from seq2seq_cli.registry import ARCHS\n\n\n"
        "@ARCHS.register('tiny_test_arch')\n"
        "def tiny():\n"
        "    return 'transformer', {\n"
        "    'encoder_layers': 1, 'decoder_layers': 1, 'encoder_embed_dim': 8,\n"
        "    'decoder_embed_dim': 8, 'encoder_attention_heads': 1, 'decoder_attention_heads': 1,\n"
        "    'encoder_ffn_embed_dim': 8, 'decoder_ffn_embed_dim': 8}\n")
    ok(train(runner, data_dir, tmp_path / "ck", "--user-dir", plugin, "--max-update", 1, "--arch", "tiny_test_arch",
             "--decoder-ffn-embed-dim", 12, model=[]))
    state = load_checkpoint(tmp_path / "ck" / "checkpoint_last.pt")
    assert state["model"]["arch"] == "tiny_test_arch"
    config = state["model"]["config"]
    assert config["encoder_embed_dim"] == 8 and config["decoder_ffn_embed_dim"] == 12  # preset < flag


def test_subsets_and_reversed_direction(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-epoch", 1, "--train-subset", "valid", "--valid-subset",
             "test,valid", "-s", "tgt", "-t", "src"))
    records = read_log(tmp_path / "ck")
    assert tagged(records, "train")[0]["bsz"] == 20  # the 20-pair valid split, one batch
    assert [r["subset"] for r in tagged(records, "valid")] == ["test", "valid"]
    assert load_checkpoint(tmp_path / "ck" / "checkpoint_last.pt")["langs"] == {"src": "tgt", "tgt": "src"}


def test_skip_invalid_size_inputs(runner, data_dir, tmp_path):
    # pairs of up to 8 words + eos: a source limit of 6 positions leaves some out
    result = train(runner, data_dir, tmp_path / "a", "--max-update", 1, "--max-source-positions", 6)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "pair(s) are too long for the model: train pair" in result.stderr
    assert "--skip-invalid-size-inputs-valid-test" in result.stderr
    result = ok(train(runner, data_dir, tmp_path / "b", "--max-update", 1, "--max-source-positions", 6,
                      "--skip-invalid-size-inputs-valid-test"))
    assert "train: skipped" in result.stderr and "valid: skipped" in result.stderr


def test_nll_loss_picks_the_best_checkpoint(runner, data_dir, tmp_path):
    # nll_loss is minimized (its running minimum is logged as best_nll_loss) and picks checkpoint_best.pt;
    # maximized, the first validation stays the best, as the falling nll never beats it.
    for name, extra in (("min", ()), ("max", ("--maximize-best-checkpoint-metric",))):
        ok(train(runner, data_dir, tmp_path / name, "--max-epoch", 4, "--label-smoothing", 0.3,
                 "--best-checkpoint-metric", "nll_loss", *extra))
        valid = tagged(read_log(tmp_path / name), "valid")
        assert len(valid) == 4 and "best_loss" not in valid[0]
        pick = max if extra else min
        assert [r["best_nll_loss"] for r in valid] == [pick(r["nll_loss"] for r in valid[:i + 1])
                                                      for i in range(len(valid))]
        best = pick(valid, key=lambda r: r["nll_loss"])
        assert load_checkpoint(tmp_path / name / "checkpoint_best.pt")["train"]["num_updates"] == best["num_updates"]
    assert valid[-1]["best_nll_loss"] == valid[0]["nll_loss"] > valid[-1]["nll_loss"]


def test_eval_bleu_picks_the_best_checkpoint(runner, data_dir, tmp_path):
    common = ["--max-epoch", 20, "--lr", 0.01, "--dropout", 0, "--validate-interval", 10, "--eval-bleu",
              "--no-epoch-checkpoints"]
    ok(train(runner, data_dir, tmp_path / "a", *common, "--best-checkpoint-metric", "bleu",
             "--eval-bleu-args", '{"beam": 2, "max_len_a": 1.0, "max_len_b": 2}'))
    valid = tagged(read_log(tmp_path / "a"), "valid")
    assert [r["num_updates"] for r in valid] == [60, 120]
    assert all(r["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
               for r in valid)
    best = max(valid, key=lambda r: r["bleu"])
    assert valid[-1]["best_bleu"] == best["bleu"] > 2  # BLEU is maximized without --maximize-...
    assert load_checkpoint(tmp_path / "a" / "checkpoint_best.pt")["train"]["num_updates"] == best["num_updates"]
    # the decoding options reach the decoder: at most 1 target token per sentence gives BLEU ~0
    ok(train(runner, data_dir, tmp_path / "b", *common, "--eval-bleu-args",
             '{"strategy": "greedy", "max_len_a": 0, "max_len_b": 1}'))
    assert tagged(read_log(tmp_path / "b"), "valid")[-1]["bleu"] < 0.5


@pytest.mark.slow  # torch.compile takes tens of seconds on a loaded CPU
def test_compile_trains_and_saves_plain_weights(runner, data_dir, tmp_path):
    ok(train(runner, data_dir, tmp_path / "ck", "--max-update", 2, "--compile", "--dropout", 0))
    state = load_checkpoint(tmp_path / "ck" / "checkpoint_last.pt")
    assert not any("_orig_mod" in k or k.startswith("model.") for k in state["model"]["state_dict"])
    load_model(tmp_path / "ck" / "checkpoint_last.pt")


# ------------------------------------------------------------------------------------------------ bad input


def _fails(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is not None
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("flags, fragments", [
    (["--arch", "nope"], ["unknown arch 'nope' (--arch); available:", "transformer_small"]),
    (["--optimizer", "sgdx"], ["unknown optimizer 'sgdx' (--optimizer); available: adam"]),
    (["--lr-scheduler", "step"], ["unknown lr scheduler 'step' (--lr-scheduler); available:", "inverse_sqrt"]),
    (["--criterion", "ctc"], ["unknown criterion 'ctc' (--criterion); available:", "cross_entropy"]),
    (["--device", "cuda"], ["--device cuda: CUDA is not available", "use --device cpu"]),
    (["--precision", "fp16"], ["--precision fp16 needs a CUDA device"]),
    (["--max-tokens", "5"], ["more than --max-tokens 5", "raise --max-tokens"]),
    (["-s", "de"], ["-s/--source-lang de:", "holds languages src and tgt"]),
    (["--valid-subset", "dev"], ["--valid-subset dev:", "has no split 'dev'", "train, valid, test"]),
    (["--min-lr", "0.1"], ["--min-lr does not apply to --lr-scheduler inverse_sqrt"]),
    (["--model-opt", "warp=9"], ["TransformerConfig has no field 'warp'"]),
    (["--adam-betas", "0.9"], ["expected two numbers"]),
    (["--eval-bleu-args", "{beam"], ["--eval-bleu-args", "not valid JSON"]),
    (["--best-checkpoint-metric", "bleu"], ["--best-checkpoint-metric bleu needs --eval-bleu"]),
    (["--eval-bleu", "--eval-bleu-args", '{"beem": 4}'], ["--eval-bleu-args", "has no option 'beem'"]),
    (["--restore-file", "nothere.pt"], ["--restore-file nothere.pt: no such file"]),
    (["--encoder-embed-dim", "15"], ["must be divisible by encoder_attention_heads"]),
])
def test_bad_flags(runner, data_dir, tmp_path, flags, fragments):
    result = train(runner, data_dir, tmp_path / "ck", "--max-update", 1, *flags)
    if "--adam-betas" in flags:  # a click parameter error: usage message, exit 2
        assert result.exit_code == 2 and "expected two numbers" in result.stderr
        return
    _fails(result, *fragments)
    assert not list((tmp_path / "ck").glob("*.pt")) if (tmp_path / "ck").exists() else True


def test_newer_or_damaged_data_dir(runner, data_dir, tmp_path):
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(data_dir, newer)
    meta = json.loads((newer / "meta.json").read_text())
    (newer / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    _fails(train(runner, newer, tmp_path / "a", "--max-update", 1), "format v99 is newer", "upgrade seq2seq_cli")

    damaged = tmp_path / "damaged"
    shutil.copytree(data_dir, damaged)
    data = bytearray((damaged / "train.tgt.bin").read_bytes())
    data[0] ^= 1
    (damaged / "train.tgt.bin").write_bytes(bytes(data))
    _fails(train(runner, damaged, tmp_path / "b", "--max-update", 1), "train.tgt.bin: checksum mismatch")

    _fails(train(runner, tmp_path, tmp_path / "c", "--max-update", 1), "not a DATA_DIR")
    assert not any((tmp_path / name).exists() and any((tmp_path / name).glob("*.pt")) for name in "abc")


def test_long_sentences_against_max_tokens_say_what_to_do(runner, tmp_path):
    data = make_data_dir(tmp_path / "d", n_train=30)
    _fails(train(runner, data, tmp_path / "ck", "--max-update", 1, "--max-tokens", 6, "--batch-size", 4),
           "more than --max-tokens 6", "raise --max-tokens")
    assert not list((tmp_path / "ck").glob("*.pt")) if (tmp_path / "ck").exists() else True
