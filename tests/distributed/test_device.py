"""Device, precision and thread resolution on a CPU-only machine."""
from __future__ import annotations

import sys

import pytest
import torch

from seq2seq_cli.device import autocast, check_precision, resolve_device, set_threads, tune_allocator
from seq2seq_cli.errors import DeviceError

NO_CUDA = not torch.cuda.is_available()


def test_auto_and_cpu_resolve_to_cpu_without_accelerators():
    assert resolve_device("cpu") == torch.device("cpu")
    if NO_CUDA and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu", ""])
def test_malformed_device_is_refused(spec):
    with pytest.raises(DeviceError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device(spec)


@pytest.mark.skipif(not NO_CUDA, reason="checks the message on machines without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_explicit_cuda_without_cuda_is_a_clear_error(spec):
    with pytest.raises(DeviceError, match=rf"--device {spec}: CUDA is not available .*use --device cpu"):
        resolve_device(spec)


def test_fp16_on_cpu_is_refused_and_bf16_allowed():
    with pytest.raises(DeviceError, match="--precision fp16 needs a CUDA device"):
        check_precision("fp16", torch.device("cpu"))
    check_precision("bf16", torch.device("cpu"))
    with autocast("bf16", torch.device("cpu")):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_threads_are_applied_and_validated():
    old = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
    with pytest.raises(DeviceError, match="--threads 0: must be at least 1"):
        set_threads(0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_allocator_tuning_applies_on_glibc_and_yields_to_the_users_environment(monkeypatch):
    assert tune_allocator() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert tune_allocator() is False
