"""`--precision int8` for decoding on the CPU: dynamic int8 quantization of the models' linear layers.

Every `nn.Linear` (attention projections, feed-forward layers, the output projection) gets int8 weights, quantized
once per output channel when the model is loaded, and quantizes its input on the fly per batch (torch's dynamic
quantization, fbgemm/x86 kernels). Embeddings, LayerNorms and attention itself stay fp32. On AVX2 CPUs without
bf16 matrix units this roughly halves the time of the matrix products that dominate a decoding step, at a small
cost in accuracy (docs/benchmarks.md measures both). It applies to decoding only: training in int8 is not offered.

torch has marked its eager quantization API deprecated (in favour of the separate `torchao` package) but still
ships it; if a future torch drops it, `--precision int8` fails with a message saying so, and fp32 still works.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from seq2seq_cli.errors import DeviceError


def check_int8(device: torch.device) -> None:
    """Refuse `--precision int8` where it cannot run.

    Raises:
        DeviceError: a non-CPU device, or a torch without dynamic quantization kernels.
    """
    if device.type != "cpu":
        raise DeviceError(f"--precision int8 runs on the CPU only (this run is on {device}); "
                          "use --precision fp16 or bf16 on GPUs")
    engines = _engines()
    if not engines:
        raise DeviceError(f"--precision int8 needs torch's dynamic quantization (torch.ao.quantization with fbgemm, "
                          f"x86 or qnnpack kernels), which torch {torch.__version__} does not have; "
                          "use --precision fp32")


def quantize_for_decoding(model: nn.Module) -> nn.Module:
    """An int8 copy of `model` for decoding: every nn.Linear becomes a dynamically quantized one.

    The copy shares nothing with `model` (tied weights are quantized once per module that uses them); the input
    model is left as it was.
    """
    from torch.ao.quantization import quantize_dynamic

    engine = _engines()[0]
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch warns that eager quantization is deprecated, on every call; the message means nothing to a
        # user who asked for --precision int8 (the module docstring says what happens if it goes away).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def _engines() -> list[str]:
    """Usable quantized engines, best first for this CPU."""
    try:
        import torch.ao.quantization  # noqa: F401
    except ImportError:
        return []
    supported = set(torch.backends.quantized.supported_engines)
    return [name for name in ("x86", "fbgemm", "qnnpack") if name in supported]
