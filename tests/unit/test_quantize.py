"""`--precision int8`: dynamic int8 quantization for CPU decoding (seq2seq_cli/decoding/quantize.py)."""
from __future__ import annotations

import pytest
import torch

import seq2seq_cli
from seq2seq_cli.decoding import quantize
from seq2seq_cli.errors import DeviceError
from tests.conftest import invoke
from tests.decoding_fixtures import copy_sentences, tiny_checkpoint

LINES = copy_sentences(40, 11)


@pytest.fixture(scope="module")
def ckpt() -> str:
    return str(tiny_checkpoint().checkpoint)


def test_int8_model_has_quantized_linears_and_leaves_the_fp32_model_alone(ckpt) -> None:
    fp32 = seq2seq_cli.load(ckpt)
    model = fp32.ensemble.models[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize.quantize_for_decoding(model)
    names = {type(m).__name__ for m in q.modules()}
    assert "Linear" in names and not any(isinstance(m, torch.nn.Linear) for m in q.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(isinstance(m, torch.nn.Linear) for m in (model.decoder.output_projection, model.decoder.layers[0].fc1))


def test_int8_translates_like_fp32_on_a_trained_model(ckpt) -> None:
    fp32 = seq2seq_cli.load(ckpt).translate(LINES, beam=4)
    int8 = seq2seq_cli.load(ckpt, precision="int8").translate(LINES, beam=4)
    assert fp32.count("") == 0  # the copy model works at all
    same = sum(a == b for a, b in zip(fp32, int8))
    assert same >= 0.9 * len(LINES), list(zip(fp32, int8))


def test_int8_logits_stay_close_to_fp32(ckpt) -> None:
    fp32 = seq2seq_cli.load(ckpt)
    model = fp32.ensemble.models[0]
    q = quantize.quantize_for_decoding(model)
    src = torch.tensor([fp32.encode(["a b c d e"])[0]])
    tgt = torch.tensor([[fp32.specials.bos] + fp32.encode_targets(["a b c d e"])[0]])
    with torch.inference_mode():
        ref, got = model.decode(tgt, model.encode(src)), q.decode(tgt, q.encode(src))
    error = (got - ref).abs().max()
    assert error < 0.05 * ref.abs().max()
    # An error of at most `error` per logit can swap the best two tokens only where fp32 ranks them less than
    # 2 * error apart (this copy model has such a near tie, which AVX-512 VNNI's int8 kernels flip and AVX2's do
    # not): the best token must agree everywhere else, and most positions are such.
    best_two = ref.topk(2, dim=-1).values
    clear = (best_two[..., 0] - best_two[..., 1]) > 2 * error
    assert clear.float().mean() >= 0.75, (ref.argmax(-1), got.argmax(-1))
    assert torch.equal(got.argmax(-1)[clear], ref.argmax(-1)[clear])


def test_cli_int8_equals_the_api(runner, ckpt) -> None:
    result = invoke(runner, ["generate", "--path", ckpt, "--device", "cpu", "--precision", "int8", "--beam", "3"],
                    input="\n".join(LINES) + "\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == seq2seq_cli.load(ckpt, precision="int8").translate(LINES, beam=3)


def test_int8_is_refused_off_the_cpu() -> None:
    with pytest.raises(DeviceError, match=r"^--precision int8 runs on the CPU only \(this run is on cuda:0\); "
                                          r"use --precision fp16 or bf16 on GPUs$"):
        quantize.check_int8(torch.device("cuda:0"))


def test_int8_without_quantization_kernels_says_so(runner, ckpt, monkeypatch) -> None:
    monkeypatch.setattr(quantize, "_engines", lambda: [])
    result = invoke(runner, ["generate", "--path", ckpt, "--device", "cpu", "--precision", "int8"], input="a b\n")
    assert result.exit_code == 1
    assert "--precision int8 needs torch's dynamic quantization" in result.stderr
    assert "use --precision fp32" in result.stderr and "Traceback" not in result.stderr


def test_train_does_not_offer_int8(runner) -> None:
    result = invoke(runner, ["train", "--help"])
    assert result.exit_code == 0 and "fp32|bf16|fp16]" in result.stdout and "int8" not in result.stdout
