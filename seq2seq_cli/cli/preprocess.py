"""`seq2seq preprocess`: flags -> PreprocessConfig -> run_preprocess (help and defaults from the dataclass)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from seq2seq_cli.cli.options import progress_option, user_dir_option


def _help(name: str) -> str:
    # The dataclass holds each help text and default once; data.preprocess imports no torch.
    from seq2seq_cli.data.preprocess import PreprocessConfig

    f = {f.name: f for f in dataclasses.fields(PreprocessConfig)}[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    text = f.metadata["help"]
    return text + (f" [default: {default}]" if default not in (None, False, ()) and "[default" not in text else "")


def _path(**kw: Any) -> click.Path:
    return click.Path(path_type=Path, **kw)


@click.command()
@click.option("-s", "--source-lang", required=True, help=_help("source_lang"))
@click.option("-t", "--target-lang", help=_help("target_lang"))
@click.option("--trainpref", metavar="PREFIX", help=_help("trainpref"))
@click.option("--validpref", metavar="PREFIX[,PREFIX...]", help=_help("validpref"))
@click.option("--testpref", metavar="PREFIX[,PREFIX...]", help=_help("testpref"))
@click.option("--destdir", type=_path(), help=_help("destdir"))
@click.option("--workers", type=int, help=_help("workers"))
@click.option("--joined-dictionary", is_flag=True, default=None, help=_help("joined_dictionary"))
@click.option("--tokenizer", metavar="NAME", help=_help("tokenizer"))
@click.option("--vocab-size", type=int, help=_help("vocab_size"))
@click.option("--min-frequency", type=int, help=_help("min_frequency"))
@click.option("--normalization", type=click.Choice(["nfkc", "nfc", "nfd", "nfkd", "none"]), help=_help("normalization"))
@click.option("--lowercase/--no-lowercase", default=None, help=_help("lowercase"))
@click.option("--tokenizer-opt", "tokenizer_opt", multiple=True, metavar="KEY=VALUE", help=_help("tokenizer_opt"))
@click.option("--tokenizer-train-lines", type=int, metavar="N", help=_help("tokenizer_train_lines"))
@click.option("--seed", type=int, help=_help("seed"))
@click.option("--tokenizer-path", type=_path(dir_okay=False), help=_help("tokenizer_path"))
@click.option("--srcdict", type=_path(dir_okay=False), help=_help("srcdict"))
@click.option("--tgtdict", type=_path(dir_okay=False), help=_help("tgtdict"))
@click.option("--bos-token", help=_help("bos_token"))
@click.option("--pad-token", help=_help("pad_token"))
@click.option("--eos-token", help=_help("eos_token"))
@click.option("--unk-token", help=_help("unk_token"))
@click.option("--max-length", type=int, metavar="TOKENS", help=_help("max_length"))
@click.option("--only-source", is_flag=True, default=None, help=_help("only_source"))
@click.option("--audio", is_flag=True, default=None, help=_help("audio"))
@click.option("--force", is_flag=True, default=None, help=_help("force"))
@progress_option
@user_dir_option
def preprocess(no_progress: bool, **flags: Any) -> None:
    """Train a tokenizer and binarize parallel text into a DATA_DIR (fairseq-preprocess's flags).

    Reads PREFIX.SRC and PREFIX.TGT for each prefix (PREFIX.SRC alone with --only-source: a language model's
    text); writes --destdir atomically (nothing appears there until the run succeeds).
    """
    from seq2seq_cli.data.preprocess import PreprocessConfig, run_preprocess

    given = {k: v for k, v in flags.items() if v is not None and v != ()}
    if no_progress:
        given["progress"] = False
    run_preprocess(PreprocessConfig(**given))
