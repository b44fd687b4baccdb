"""seq2seq_cli: a command-line sequence-to-sequence toolkit (preprocess, train, generate, score).

This module must stay light: `seq2seq --help` imports it, and must not import torch.
`seq2seq_cli.load(...)` (the Python API) is resolved lazily on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def __getattr__(name: str):
    # Lazy so that `import seq2seq_cli` stays cheap; the hub module imports torch.
    if name == "load":
        from seq2seq_cli.hub import load

        return load
    raise AttributeError(f"module 'seq2seq_cli' has no attribute {name!r}")
