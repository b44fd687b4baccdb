"""The Python API, as fairseq's hub interface:

    import seq2seq_cli
    model = seq2seq_cli.load("checkpoints/checkpoint_best.pt", device="cpu")
    model.translate(["Hola mundo.", "¿Cómo estás?"], beam=5)        # -> list[str]
    model.sample(["Hola mundo."], sampling_topk=10, seed=1)           # -> list[str]
    model.score(["Hola mundo."], ["Hello world."])                     # -> list[float], mean log-prob per token
    model.generate(["Hola mundo."], nbest=3, beam=5)                   # -> list[list[Hypothesis]]

It returns the same `Translator` that `seq2seq generate` runs, so the API and the CLI give the same output for the
same options. Several checkpoints separated by ':' load as an ensemble.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from seq2seq_cli.decoding.base import Hypothesis
from seq2seq_cli.decoding.translator import Translator

__all__ = ["Hypothesis", "Translator", "load"]


def load(path: str | Path, device: str = "cpu", precision: str = "fp32", threads: int | None = None,
         user_dir: str | Path | None = None, lm_path: str | Path | None = None, **kwargs: Any) -> Translator:
    """Load a checkpoint (or a ':'-separated ensemble) for translation.

    Args:
        path: checkpoint file(s).
        device: auto, cpu, cuda, cuda:N or mps.
        precision: fp32, bf16 (CPU or CUDA), fp16 (CUDA) or int8 (CPU; see `decoding.quantize`).
        threads: torch CPU threads (None: leave torch's setting).
        user_dir: a plugin module or package to import first (models, strategies), as --user-dir.
        lm_path: a language model checkpoint to fuse with the model (as --lm-path; pass lm_weight= to translate()).

    Raises:
        CheckpointError: missing, damaged or incompatible checkpoint; DeviceError: unavailable device/precision.
    """
    from seq2seq_cli.device import set_threads
    from seq2seq_cli.errors import ConfigError

    if kwargs:
        raise ConfigError(f"load(): unknown argument(s) {', '.join(sorted(kwargs))}; decoding options go to "
                          "translate()/sample()/generate()")
    if user_dir is not None:
        from seq2seq_cli.registry import import_user_dir

        import_user_dir(user_dir)
    set_threads(threads)
    return Translator.load(path, device, precision, lm_path)
