"""`seq2seq average-checkpoints`: average the weights of checkpoints (fairseq's scripts/average_checkpoints.py)."""
from __future__ import annotations

from pathlib import Path

import click

from seq2seq_cli.cli.options import user_dir_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--inputs", "inputs", multiple=True, required=True, type=click.Path(path_type=Path),
              metavar="PATH...", help="Checkpoint files to average (fairseq style: --inputs a.pt b.pt), or one run "
                                      "folder with --num-epoch-checkpoints / --num-update-checkpoints.")
@click.argument("more_inputs", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write the averaged checkpoint to (written atomically).")
@click.option("--num-epoch-checkpoints", type=click.IntRange(min=1), default=None,
              help="Average the last N epoch checkpoints (checkpoint{epoch}.pt) of the --inputs folder.")
@click.option("--num-update-checkpoints", type=click.IntRange(min=1), default=None,
              help="Average the last N update checkpoints (checkpoint_{epoch}_{updates}.pt) of the --inputs folder.")
@click.option("--checkpoint-upper-bound", type=int, default=None,
              help="With --num-*-checkpoints: ignore checkpoints after this epoch (or update).")
@user_dir_option
def average_checkpoints(inputs: tuple[Path, ...], more_inputs: tuple[Path, ...], output: Path,
                        num_epoch_checkpoints: int | None, num_update_checkpoints: int | None,
                        checkpoint_upper_bound: int | None) -> None:
    """Write a checkpoint whose weights are the mean of those of several checkpoints.

    The model config and tokenizers come from the last checkpoint; the training state is not kept, so the result
    is for `seq2seq generate` (or fine-tuning), not for resuming.
    """
    from seq2seq_cli.training.averaging import AverageConfig, run_average

    cfg = AverageConfig(inputs=inputs + more_inputs, output=output, num_epoch_checkpoints=num_epoch_checkpoints,
                        num_update_checkpoints=num_update_checkpoints,
                        checkpoint_upper_bound=checkpoint_upper_bound)
    run_average(cfg)
