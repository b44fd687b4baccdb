"""`run_export`: what `seq2seq export` does: convert, check parity, then publish the folder atomically.

Everything is written into a temporary folder next to --out; the parity check runs on it; only a model that passed
is renamed to --out (with --force, an existing --out is replaced only then). A failed check or a crash leaves
--out as it was. With --quantization the check converts twice: float32 for the strict check (it proves the
conversion) and the quantized model that is published, whose agreement with ours and BLEU are reported.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq_cli.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

FORMATS = ("ctranslate2",)


@dataclass(frozen=True)
class ExportConfig:
    """One `seq2seq export` run."""

    path: Path = field(metadata={"help": "checkpoint to export"})
    out: Path = field(metadata={"help": "folder to write the exported model to (must not exist, unless force)"})
    format: str = field(default="ctranslate2", metadata={"help": "target engine: ctranslate2"})
    quantization: str | None = field(default=None, metadata={
        "help": "weight type: int8, int16, float16, bfloat16 (None: float32)"})
    check: bool = field(default=True, metadata={"help": "run the parity check before publishing"})
    check_file: Path | None = field(default=None, metadata={
        "help": "source sentences for the parity check, e.g. the test set (required unless check is off)"})
    check_ref: Path | None = field(default=None, metadata={
        "help": "references of --check-file, for the BLEU of a quantized export"})
    check_lines: int = field(default=200, metadata={"help": "how many lines of --check-file to check"})
    force: bool = field(default=False, metadata={"help": "replace an existing --out"})

    def __post_init__(self) -> None:
        from seq2seq_cli.export.layout import QUANTIZATIONS

        if self.format not in FORMATS:
            raise ConfigError(f"--format {self.format!r}: choose {', '.join(FORMATS)}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"--quantization {self.quantization!r}: choose {', '.join(QUANTIZATIONS)}")
        if self.check_lines < 1:
            raise ConfigError(f"--check-lines {self.check_lines}: must be at least 1")
        if self.check and self.check_file is None:
            # Real sentences: the check should measure real use; on random token soup a model is unsure everywhere
            # and its outputs run to the length limit, where the engines' rules differ (docs/export.md).
            raise ConfigError("give --check-file FILE (source sentences, e.g. the test set) for the parity check, "
                              "or --no-check to export without it")
        if self.check_ref is not None and self.check_file is None:
            raise ConfigError("--check-ref needs --check-file (the sources it translates)")


@dataclass
class ExportReport:
    """What `run_export` wrote and measured (also in OUT/seq2seq_export.json)."""

    out: Path
    parity: list[Any] = field(default_factory=list)  # StrategyParity per strategy; empty with --no-check
    quantized: Any = None  # QuantizedAgreement, with --quantization


def run_export(cfg: ExportConfig) -> ExportReport:
    """Export `cfg.path` to `cfg.out` (see the module docstring).

    Raises:
        ConfigError: bad flags, ctranslate2 missing, --out exists; CheckpointError: a bad checkpoint;
        ExportError: a setting CTranslate2 cannot express, or a failed parity check; DataError: a bad check file.
    """
    from seq2seq_cli.checkpoint import load_model
    from seq2seq_cli.export.converter import check_expressible, write_model
    from seq2seq_cli.export.layout import import_ctranslate2

    out = Path(cfg.out)
    if out.exists() and not cfg.force:
        raise ConfigError(f"--out {out} already exists; remove it or pass --force to replace it")
    import_ctranslate2()
    loaded = load_model(cfg.path, "cpu")
    check_expressible(loaded)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    report = ExportReport(out)
    try:
        final = work / "model"
        if cfg.check:
            lines, refs, source = check_sample(cfg, loaded)
            fp32 = final if cfg.quantization is None else work / "float32"
            write_model(loaded, fp32, None)
            report.parity, report.quantized = _check(loaded, fp32, final, cfg, lines, refs, source)
        extra = {"parity": [r.to_dict() for r in report.parity] or None,
                 "quantized_agreement": report.quantized.to_dict() if report.quantized else None}
        if final.exists():  # written for the check: add the report to its metadata
            from seq2seq_cli.export.converter import metadata, write_metadata

            write_metadata(final, metadata(loaded, cfg.quantization, extra))
        else:
            write_model(loaded, final, cfg.quantization, extra)
        _publish(final, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _check(loaded: Any, fp32: Path, final: Path, cfg: ExportConfig, lines: list[str], refs: list[str] | None,
           source: str) -> tuple[list[Any], Any]:
    from seq2seq_cli.decoding.ct2_backend import CT2Translator
    from seq2seq_cli.decoding.translator import Translator
    from seq2seq_cli.export.converter import write_model
    from seq2seq_cli.export.parity import check_parity, compare_quantized

    import torch

    ours = Translator([loaded.model], loaded.src_tokenizer, loaded.tgt_tokenizer, torch.device("cpu"))
    parity = check_parity(ours, CT2Translator.load(fp32, "cpu"), lines, source)
    for r in parity:
        logger.info("%s", r.to_text())
    if cfg.quantization is None:
        return parity, None
    write_model(loaded, final, cfg.quantization)
    agreement = compare_quantized(ours, CT2Translator.load(final, "cpu"), cfg.quantization, lines, refs, source)
    logger.info("%s", agreement.to_text())
    return parity, agreement


def check_sample(cfg: ExportConfig, loaded: Any) -> tuple[list[str], list[str] | None, str]:
    """(source lines, references or None, name for messages) of the parity check."""
    from seq2seq_cli.decoding.run import read_input

    lines = _head(read_input(cfg.check_file), cfg.check_lines)
    if not lines:
        raise DataError(f"--check-file {cfg.check_file}: empty; give source sentences, one a line")
    if cfg.check_ref is None:
        return lines, None, str(cfg.check_file)
    refs = _head(read_input(cfg.check_ref), len(lines))
    if len(refs) != len(lines):
        raise DataError(f"--check-ref {cfg.check_ref}: {len(refs)} lines for the {len(lines)} checked lines of "
                        f"--check-file {cfg.check_file}; give one reference per source line")
    return lines, refs, str(cfg.check_file)


def _head(lines: Any, n: int) -> list[str]:
    out = []
    for line in lines:
        if len(out) >= n:
            break
        out.append(line)
    return out


def _publish(folder: Path, out: Path, work: Path) -> None:
    """Rename `folder` to `out`; an existing `out` (--force) is moved into `work` first and removed with it."""
    if out.exists() or out.is_symlink():
        if out.is_dir() and not out.is_symlink():
            out.rename(work / "replaced")
        else:
            out.unlink()
    folder.rename(out)
