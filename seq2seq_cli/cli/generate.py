"""`seq2seq generate` and `seq2seq interactive`: translate with a checkpoint (fairseq-generate/-interactive flags).

Hypotheses go to stdout (in input order); logs, warnings, the BLEU line and the progress bar go to stderr.
Defaults live in the config dataclasses (`SearchConfig`, `GenerateConfig`, each strategy's Config); click passes
None for a flag that was not given, and the help text shows the dataclass default.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import click

from seq2seq_cli.cli.options import decoding_device_options, progress_option, user_dir_option
from seq2seq_cli.decoding.beam import BeamConfig
from seq2seq_cli.decoding.config import DEFAULT_MAX_TOKENS, GenerateConfig, SearchConfig
from seq2seq_cli.decoding.sampling import SamplingConfig

F = Callable[..., Any]

INTERACTIVE_BUFFER_SIZE = 1  # fairseq-interactive: answer every line as soon as it is read
_SEARCH = {f.name: f for f in dataclasses.fields(SearchConfig)}
_GENERATE = {f.name: f for f in dataclasses.fields(GenerateConfig)}


def _search_help(name: str) -> str:
    f = _SEARCH[name]
    return f"{f.metadata['help'][0].upper()}{f.metadata['help'][1:]}  [default: {f.default}]"


def decoding_options(f: F) -> F:
    """Flags shared by generate and interactive (strategy, search, batching, output)."""
    options = [
        click.option("--path", required=True, metavar="FILE[:FILE...]",
                     help="Checkpoint to decode with; several separated by ':' decode as an ensemble (probabilities "
                          "averaged)."),
        click.option("--lm-path", default=None, metavar="FILE",
                     help="A language model checkpoint (--arch transformer_lm, trained on the target language with "
                          "the model's target tokenizer) fused with the model's scores, weighted by --lm-weight."),
        click.option("--strategy", default=None, metavar="NAME",
                     help=f"Decoding strategy: greedy, beam, sampling, or a plugin's  "
                          f"[default: {_GENERATE['strategy'].default}]."),
        click.option("--sampling", is_flag=True, help="Same as --strategy sampling (fairseq's spelling)."),
        click.option("--strategy-opt", "strategy_opts", multiple=True, metavar="KEY=VALUE",
                     help="A field of the strategy's Config (for plugin strategies; see `seq2seq list decoding`)."),
        click.option("--beam", type=int, default=None,
                     help=f"Beam size (beam), or samples per sentence (sampling)  [default: {BeamConfig.beam}]."),
        click.option("--sampling-topk", type=int, default=None,
                     help=f"Sample from the k most probable tokens  [default: {SamplingConfig.sampling_topk}, all]."),
        click.option("--sampling-topp", type=float, default=None,
                     help=f"Nucleus sampling: the smallest set with probability p  "
                          f"[default: {SamplingConfig.sampling_topp}, off]."),
    ]
    options += [click.option(f"--{name.replace('_', '-')}", type=type(field.default), default=None,
                             help=_search_help(name)) for name, field in _SEARCH.items()]
    options += [
        click.option("--seed", type=int, default=None, help="Seed of the sampling RNG (same seed, same samples)."),
        click.option("--batch-size", type=int, default=None, help="Max sentences per batch."),
        click.option("--max-tokens", type=int, default=None,
                     help=f"Max source tokens per batch, padding included  "
                          f"[default: {DEFAULT_MAX_TOKENS} if no --batch-size]."),
        click.option("--remove-bpe", is_flag=False, flag_value="@@ ", default=None, metavar="[SYMBOL]",
                     help="Remove a BPE continuation marker from the output (default marker '@@ '; "
                          "'sentencepiece' for ▁ pieces): for models trained on already-tokenized text."),
        click.option("--output-format", type=click.Choice(["plain", "fairseq", "jsonl"]), default=None,
                     help="plain: one hypothesis a line; fairseq: S-/T-/H-/D-/P- lines; jsonl: n-best with scores  "
                          f"[default: {_GENERATE['output_format'].default}]."),
        decoding_device_options,
        user_dir_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _strategy_options(sampling: bool, strategy: str | None, strategy_opts: tuple[str, ...],
                      flags: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(strategy name, its options) from --strategy/--sampling, the explicit flags and --strategy-opt."""
    from seq2seq_cli.errors import ConfigError

    if sampling:
        if strategy not in (None, "sampling"):
            raise ConfigError(f"--sampling contradicts --strategy {strategy}; give one of them")
        strategy = "sampling"
    options = {k: v for k, v in flags.items() if v is not None}
    for item in strategy_opts:
        if "=" not in item:
            raise ConfigError(f"--strategy-opt {item!r}: expected KEY=VALUE")
        key, value = (part.strip() for part in item.split("=", 1))
        key = key.lstrip("-").replace("-", "_")
        if key in options:
            raise ConfigError(f"--strategy-opt {item!r}: {key} is already set (by its own flag or an earlier "
                              "--strategy-opt); give it once")
        options[key] = value
    return strategy, options


def _config(path: str, kwargs: dict[str, Any], **extra: Any) -> GenerateConfig:
    """GenerateConfig from the shared flags (`kwargs`, consumed) plus command-specific fields."""
    strategy, strategy_options = _strategy_options(
        kwargs.pop("sampling"), kwargs.pop("strategy"), kwargs.pop("strategy_opts"),
        {name: kwargs.pop(name) for name in ("beam", "sampling_topk", "sampling_topp")})
    search = SearchConfig(**{name: v for name in _SEARCH if (v := kwargs.pop(name)) is not None})
    given = {k: v for k, v in {**kwargs, **extra}.items() if v is not None}
    if strategy is not None:
        given["strategy"] = strategy
    return GenerateConfig(path=path, strategy_options=strategy_options, search=search, **given)


def _echo_all(cfg: GenerateConfig) -> None:
    from seq2seq_cli.decoding.run import run_generate

    for line in run_generate(cfg):
        click.echo(line)  # flushes: a pipe reader (or interactive user) sees each result at once


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data_dir", required=False, type=click.Path(path_type=Path))
@click.option("-i", "--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Raw source text, one sentence a line  [default: stdin, unless DATA_DIR is given].")
@click.option("--gen-subset", default=None,
              help=f"Split of DATA_DIR to decode  [default: {_GENERATE['gen_subset'].default}].")
@click.option("--prefix-size", type=int, default=None,
              help="Force the first N tokens of the reference (DATA_DIR only)  [default: 0].")
@click.option("--score-reference", is_flag=True, default=None,
              help="Score the references of DATA_DIR instead of generating (mean log-prob per token).")
@decoding_options
@progress_option
def generate(data_dir: Path | None, input_path: Path | None, path: str, no_progress: bool, **kwargs: Any) -> None:
    """Translate raw text (--input FILE or stdin) or a DATA_DIR subset with a checkpoint.

    With DATA_DIR, references are known: fairseq output shows them, and BLEU with its sacreBLEU signature ends
    the log on stderr.
    """
    from seq2seq_cli.errors import ConfigError

    if data_dir is not None and input_path is not None:
        raise ConfigError("give either DATA_DIR or --input, not both")
    if data_dir is None and kwargs.get("gen_subset") is not None:
        raise ConfigError(f"--gen-subset {kwargs['gen_subset']} needs a DATA_DIR (raw text has no subsets)")
    cfg = _config(path, kwargs, data_dir=data_dir, input=input_path, progress=not no_progress)
    _echo_all(cfg)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--buffer-size", type=int, default=None,
              help=f"Lines read before decoding them as a batch  [default: {INTERACTIVE_BUFFER_SIZE}].")
@click.option("-i", "--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read from FILE instead of stdin.")
@decoding_options
def interactive(buffer_size: int | None, input_path: Path | None, path: str, **kwargs: Any) -> None:
    """Translate stdin line by line: each line's translation is printed (and flushed) as soon as it is decoded."""
    if buffer_size is not None and buffer_size < 1:
        from seq2seq_cli.errors import ConfigError

        raise ConfigError(f"--buffer-size {buffer_size}: must be at least 1")
    cfg = _config(path, kwargs, input=input_path, progress=False,
                  buffer_size=buffer_size if buffer_size is not None else INTERACTIVE_BUFFER_SIZE)
    _echo_all(cfg)
