"""`seq2seq score`: BLEU, chrF, chrF++ and TER of hypotheses against references, with sacreBLEU's signature.

Scores go to stdout (text, or one JSON object per line with --json); logs go to stderr.
"""
from __future__ import annotations

import dataclasses

import click
from sacrebleu.metrics.bleu import BLEU  # light (no torch): for the --tokenize choices and default

from seq2seq_cli.cli.options import user_dir_option
from seq2seq_cli.scoring import METRICS, ScoreConfig  # light: sacreBLEU's metrics are imported when scoring

# Shown in --help; the defaults themselves live in ScoreConfig (click gets None and leaves the field alone).
DEFAULTS = {f.name: f.default for f in dataclasses.fields(ScoreConfig)}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--sys", "sys_paths", multiple=True, required=True, metavar="FILE|-",
              help="Hypotheses, one per line ('-' = stdin). Repeat for several systems: the first is the baseline "
                   "of a paired bootstrap test.")
@click.option("-r", "--ref", "refs", multiple=True, required=True, metavar="FILE",
              help="References, line-aligned with the hypotheses. Repeat for several references.")
@click.option("-m", "--metrics", multiple=True, metavar="LIST",
              help=f"Comma-separated metrics among {', '.join(METRICS)}  [default: {','.join(DEFAULTS['metrics'])}].")
@click.option("--tokenize", type=click.Choice(list(BLEU.TOKENIZERS)), default=None,
              help=f"sacreBLEU's tokenizer for BLEU  [default: {BLEU.TOKENIZER_DEFAULT}].")
@click.option("-lc", "--lowercase", is_flag=True, default=None,
              help="Case-insensitive BLEU, chrF and WER (TER is case-insensitive anyway, as in sacreBLEU).")
@click.option("--wer-remove-punct", is_flag=True, default=None,
              help="WER: remove punctuation from hypotheses and references before counting words (fairseq's "
                   "flag; the signature says punct:removed).")
@click.option("--sentence-level", is_flag=True, default=None,
              help="One score per segment (one line each) instead of one per corpus.")
@click.option("--json", "as_json", is_flag=True, default=None, help="One JSON object per line instead of text.")
@click.option("--paired-bs-n", type=int, default=None,
              help=f"Resamples of the paired bootstrap test (several --sys)  [default: {DEFAULTS['paired_bs_n']}].")
@click.option("--seed", type=int, default=None,
              help=f"Seed of the paired bootstrap test  [default: {DEFAULTS['seed']}].")
@user_dir_option
def score(sys_paths: tuple[str, ...], refs: tuple[str, ...], metrics: tuple[str, ...], tokenize: str | None,
          lowercase: bool | None, wer_remove_punct: bool | None, sentence_level: bool | None, as_json: bool | None, paired_bs_n: int | None,
          seed: int | None) -> None:
    """Score hypotheses against references with sacreBLEU (BLEU, chrF, chrF++, TER).

    Prints each score with its sacreBLEU signature, e.g.
    `BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 27.30 ...`.
    With several --sys, each system is compared with the first by paired bootstrap resampling.
    """
    from seq2seq_cli.scoring import run_score

    given = {"metrics": metrics or None, "tokenize": tokenize, "lowercase": lowercase,
             "wer_remove_punct": wer_remove_punct,
             "sentence_level": sentence_level, "json": as_json, "paired_bs_n": paired_bs_n, "seed": seed}
    cfg = ScoreConfig(sys=sys_paths, refs=refs, **{k: v for k, v in given.items() if v is not None})
    for line in run_score(cfg):
        click.echo(line)
