"""`seq2seq export`: write a checkpoint as a CTranslate2 model folder, after checking that it decodes as ours.

The report (parity per strategy, quantized agreement) goes to stderr; stdout stays empty. Defaults live in
`ExportConfig`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from seq2seq_cli.cli.options import user_dir_option
from seq2seq_cli.export.layout import QUANTIZATIONS
from seq2seq_cli.export.run import FORMATS, ExportConfig

_FIELDS = {f.name: f for f in dataclasses.fields(ExportConfig)}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--format", "format_", type=click.Choice(FORMATS), default=_FIELDS["format"].default, show_default=True,
              help="Target inference engine.")
@click.option("--path", required=True, type=click.Path(path_type=Path), help="Checkpoint to export.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Folder to write (atomically: a temporary folder renamed once the check passed).")
@click.option("--quantization", type=click.Choice(QUANTIZATIONS), default=None,
              help="Weight type of the exported model  [default: float32]; the parity check then also reports the "
                   "agreement with float32 PyTorch and the BLEU difference.")
@click.option("--check-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Source sentences for the parity check, e.g. the test set (required unless --no-check).")
@click.option("--check-ref", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="References of --check-file (for the BLEU of a quantized export).")
@click.option("--check-lines", type=int, default=_FIELDS["check_lines"].default, show_default=True,
              help="Lines of --check-file to check.")
@click.option("--no-check", is_flag=True, help="Skip the parity check (not recommended).")
@click.option("--force", is_flag=True, help="Replace an existing --out.")
@user_dir_option
def export(format_: str, path: Path, out: Path, quantization: str | None, check_file: Path | None,
           check_ref: Path | None, check_lines: int, no_check: bool, force: bool) -> None:
    """Export a checkpoint for CTranslate2 (fast CPU/GPU inference); `generate --path OUT` then decodes with it.

    By default greedy and beam-5 outputs of the exported float32 model must equal ours on the check sentences
    (near-ties and differences CTranslate2's documented rules explain aside, see docs/export.md); otherwise
    nothing is written.
    """
    import logging

    from seq2seq_cli.export.run import run_export

    cfg = ExportConfig(path=path, out=out, format=format_, quantization=quantization, check=not no_check,
                       check_file=check_file, check_ref=check_ref, check_lines=check_lines, force=force)
    run_export(cfg)  # logs the parity report as it goes
    log = logging.getLogger("seq2seq_cli.export")
    log.info("exported %s to %s (%s)", path, out, quantization or "float32")
    if not cfg.check:
        log.warning("--no-check: the exported model was not compared with the checkpoint")
