"""`--device`, `--precision`, `--threads`: resolution and every error message. The errors that need a GPU to arise
are produced with torch.cuda (and torch.backends.mps) mocked."""
from __future__ import annotations

import logging
import re
import sys

import pytest
import torch

from seq2seq_cli.device import autocast, check_precision, resolve_device, set_threads, tune_allocator
from seq2seq_cli.errors import DeviceError
from tests.conftest import REPO


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two CUDA devices, as torch sees them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")


def _message(spec: str, *args) -> str:
    with pytest.raises(DeviceError) as info:
        resolve_device(spec, *args)
    return str(info.value)


def test_cpu_and_auto_without_accelerators(no_accelerator, caplog):
    assert resolve_device("cpu") == torch.device("cpu")
    with caplog.at_level(logging.INFO, logger="seq2seq_cli"):
        assert resolve_device("auto") == torch.device("cpu")
    assert "device: cpu (--device auto)" in caplog.messages


def test_auto_picks_cuda_then_mps_and_logs_its_choice(monkeypatch, two_gpus, caplog):
    with caplog.at_level(logging.INFO, logger="seq2seq_cli"):
        assert resolve_device("auto") == torch.device("cuda", 0)
        assert resolve_device("auto", 1, 2) == torch.device("cuda", 1)  # torchrun's LOCAL_RANK 1
    assert caplog.messages == ["device: cuda:0 (--device auto; CUDA_VISIBLE_DEVICES=4,5)",
                               "device: cuda:1 (--device auto; CUDA_VISIBLE_DEVICES=4,5)"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu", "", "cuda0"])
def test_unknown_device_string(spec):
    assert _message(spec) == f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps"


@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_requested_where_absent(no_accelerator, spec):
    assert _message(spec) == (f"--device {spec}: CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu")


def test_mps_requested_where_absent(no_accelerator):
    assert _message("mps") == "--device mps: MPS is not available on this machine; use --device cpu"


def test_cuda_index_beyond_the_visible_devices(two_gpus):
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("CUDA") == torch.device("cuda", 0)
    assert _message("cuda:7") == ("--device cuda:7: only 2 CUDA device(s) visible (CUDA_VISIBLE_DEVICES=4,5); use "
                                  "cuda:0 .. cuda:1")


def test_more_processes_per_machine_than_gpus(two_gpus):
    assert resolve_device("cuda", 1, 2) == torch.device("cuda", 1)
    assert _message("cuda", 2, 3) == (
        "--device cuda: process 2 on this machine needs cuda:2, but only 2 CUDA device(s) visible "
        "(CUDA_VISIBLE_DEVICES=4,5); start at most 2 process(es) per machine (torchrun --nproc_per_node, or "
        "--distributed-world-size)")
    assert _message("cuda:1", 0, 2) == (
        "--device cuda:1: the 2 processes on this machine would share one GPU; use --device cuda (each process "
        "takes the GPU of its LOCAL_RANK) and choose the GPUs with CUDA_VISIBLE_DEVICES")
    assert resolve_device("cuda:1", 0, 1) == torch.device("cuda", 1)  # one process per machine may pick its GPU


def test_fp16_on_cpu_is_refused_and_bf16_allowed():
    with pytest.raises(DeviceError) as info:
        check_precision("fp16", torch.device("cpu"))
    assert str(info.value) == "--precision fp16 needs a CUDA device (this run is on cpu); use --precision bf16 or fp32"
    check_precision("bf16", torch.device("cpu"))
    with autocast("bf16", torch.device("cpu")):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_bf16_on_a_gpu_without_native_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    check_precision("fp16", torch.device("cuda", 0))
    with pytest.raises(DeviceError) as info:
        check_precision("bf16", torch.device("cuda", 0))
    assert str(info.value) == ("--precision bf16: cuda:0 has no native bfloat16 (it needs compute capability 8.0 "
                               "or newer); use --precision fp16 or fp32")


@pytest.mark.parametrize("command", [["train", "DATA"], ["generate", "--path", "ck.pt"],
                                     ["interactive", "--path", "ck.pt"]])
def test_train_generate_and_interactive_share_the_device_flags(runner, command):
    from tests.conftest import invoke

    out = invoke(runner, [command[0], "--help"]).output
    for flag in ("--device auto|cpu|cuda|cuda:N|mps", "--precision [fp32|bf16|fp16", "--threads INTEGER"):
        assert flag in out, (command, flag)
    # decoding commands also offer int8 (CPU dynamic quantization); train does not
    assert ("--precision [fp32|bf16|fp16|int8]" in out) == (command[0] != "train")


def test_fp16_on_cpu_is_a_one_line_cli_error(runner, tmp_path):
    from tests.conftest import invoke

    result = invoke(runner, ["interactive", "--path", tmp_path / "none.pt", "--device", "cpu", "--precision",
                             "fp16"], input="a\n")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: --precision fp16 needs a CUDA device (this run is on cpu); use "
                                     "--precision bf16 or fp32")


def test_only_the_device_module_calls_torch_cuda():
    # One module resolves devices; a stray torch.cuda call elsewhere would bypass its checks and messages.
    pattern = re.compile(r"torch\.cuda\b|torch\.backends\.mps\b|\.cuda\(")
    offenders = [f"{path.relative_to(REPO)}:{n}" for path in sorted((REPO / "seq2seq_cli").rglob("*.py"))
                 if path.name != "device.py"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_threads_are_applied_and_validated():
    old = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
    with pytest.raises(DeviceError) as info:
        set_threads(0)
    assert str(info.value) == "--threads 0: must be at least 1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_allocator_tuning_applies_on_glibc_and_yields_to_the_users_environment(monkeypatch):
    assert tune_allocator() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert tune_allocator() is False
