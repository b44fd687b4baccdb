"""Configuration of decoding: the loop's options (`SearchConfig`), a whole generate run (`GenerateConfig`), and
the resolution of `--strategy NAME` plus options into a strategy instance.

Options are split by owner: a strategy's `Config` holds what its `step()` needs (beam size, top-k, ...); the loop's
`SearchConfig` holds what applies to every strategy (n-best, length penalty and limits, unk penalty, n-gram
blocking, temperature; the CTC weight of joint decoding, ESPnet's; the LM weight of shallow fusion), as fairseq's
SequenceGenerator does. Names and
defaults are fairseq's.

No torch import here: the CLI reads these defaults for its help text.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from seq2seq_cli.config import coerce, field_types
from seq2seq_cli.errors import ConfigError

OutputFormat = Literal["plain", "fairseq", "jsonl"]
DEFAULT_MAX_TOKENS = 12000  # fairseq-generate's batch budget when neither --batch-size nor --max-tokens is given


@dataclass(frozen=True)
class SearchConfig:
    """Options of the generation loop, shared by all strategies (fairseq's names and defaults)."""

    nbest: int = field(default=1, metadata={"help": "hypotheses output per input (at most the beam size)"})
    lenpen: float = field(default=1.0, metadata={
        "help": "length penalty: score = sum(log p) / length ** lenpen (<1 favours short, >1 long outputs)"})
    unkpen: float = field(default=0.0, metadata={"help": "subtracted from the log-probability of <unk>"})
    max_len_a: float = field(default=0.0, metadata={"help": "max output length = a * source length + b"})
    max_len_b: int = field(default=200, metadata={"help": "max output length = a * source length + b"})
    min_len: int = field(default=1, metadata={"help": "min output length, in tokens (EOS excluded)"})
    no_repeat_ngram_size: int = field(default=0, metadata={"help": "never repeat an n-gram of this size (0: off)"})
    temperature: float = field(default=1.0, metadata={"help": "divide the logits by this before the softmax"})
    ctc_weight: float = field(default=0.0, metadata={
        "help": "joint CTC/attention decoding of a speech model with a CTC head: weight of the CTC prefix score "
                "(0: the decoder alone)"})
    lm_weight: float = field(default=0.0, metadata={
        "help": "shallow fusion: weight of the --lm-path language model's log-probabilities, added to the "
                "model's scores (0: no LM)"})

    def __post_init__(self) -> None:
        for name, low in (("nbest", 1), ("max_len_b", 0), ("min_len", 0), ("no_repeat_ngram_size", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least {low}")
        if self.max_len_a < 0:
            raise ConfigError(f"--max-len-a {self.max_len_a}: must not be negative")
        if not self.temperature > 0:
            raise ConfigError(f"--temperature {self.temperature}: must be greater than 0")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ConfigError(f"--ctc-weight {self.ctc_weight}: must be in [0, 1]")
        if not self.lm_weight >= 0.0:
            raise ConfigError(f"--lm-weight {self.lm_weight}: must not be negative")


@dataclass(frozen=True)
class GenerateConfig:
    """One `seq2seq generate` (or `interactive`) run: what to decode, how, and how to print it."""

    path: str = field(metadata={"help": "checkpoint file(s); several separated by ':' decode as an ensemble"})
    lm_path: str | None = field(default=None, metadata={
        "help": "a language model checkpoint (transformer_lm) fused with the model in beam search (--lm-weight)"})
    data_dir: Path | None = field(default=None, metadata={"help": "DATA_DIR to decode a subset of, with references"})
    gen_subset: str = field(default="test", metadata={"help": "split of DATA_DIR to decode"})
    input: Path | None = field(default=None, metadata={"help": "raw source text, one sentence a line (None: stdin)"})
    strategy: str = field(default="beam", metadata={"help": "decoding strategy: greedy, beam, sampling or a plugin"})
    strategy_options: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "fields of the strategy's Config (values may be strings, as from --strategy-opt KEY=VALUE)"})
    search: SearchConfig = field(default_factory=SearchConfig)
    prefix_size: int = field(default=0, metadata={"help": "force the first N tokens of the reference (DATA_DIR)"})
    score_reference: bool = field(default=False, metadata={"help": "score the references instead of generating"})
    batch_size: int | None = field(default=None, metadata={"help": "max sentences per batch"})
    max_tokens: int | None = field(default=None, metadata={
        "help": f"max source tokens per batch, padding included ({DEFAULT_MAX_TOKENS} when neither limit is given)"})
    remove_bpe: str | None = field(default=None, metadata={
        "help": "remove this BPE continuation marker from outputs and references (e.g. '@@ ')"})
    output_format: OutputFormat = field(default="plain", metadata={"help": "plain, fairseq or jsonl"})
    seed: int | None = field(default=None, metadata={"help": "seed of the sampling RNG"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N, mps"})
    precision: str = field(default="fp32", metadata={"help": "fp32, bf16, fp16"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads"})
    progress: bool = field(default=True, metadata={"help": "tqdm bar on stderr (when it is a terminal)"})
    buffer_size: int = field(default=0, metadata={
        "help": "read this many lines before decoding them (0: the whole input; interactive uses 1)"})

    def __post_init__(self) -> None:
        if self.output_format not in ("plain", "fairseq", "jsonl"):
            raise ConfigError(f"--output-format {self.output_format!r}: choose plain, fairseq or jsonl")
        for name in ("batch_size", "max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least 1")
        if self.prefix_size < 0:
            raise ConfigError(f"--prefix-size {self.prefix_size}: must not be negative")
        if self.buffer_size < 0:
            raise ConfigError(f"--buffer-size {self.buffer_size}: must not be negative")


# How explicit flags are spelled, for messages about options a strategy does not have.
_FLAGS = {"beam": "--beam", "sampling_topk": "--sampling-topk", "sampling_topp": "--sampling-topp"}


def strategy_config(cls: type, options: Mapping[str, Any], strategy: str) -> Any:
    """Build `cls.Config` from `options` ({field: value}; string values are coerced by the field's type).

    Raises:
        ConfigError: an option the strategy does not have (listing its fields), or a value that does not parse.
    """
    config_cls = cls.Config
    types = field_types(config_cls)
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = key.strip().lstrip("-").replace("-", "_")
        flag = _FLAGS.get(name, f"--strategy-opt {name}")
        if name not in types:
            fields = ", ".join(types) or "none"
            raise ConfigError(f"{flag}: strategy {strategy!r} has no option {name!r} (its options: {fields})")
        values[name] = coerce(types[name], value, flag) if isinstance(value, str) else value
    return config_cls(**values)


def build_strategy(name: str, options: Mapping[str, Any] | None = None, generator: Any = None) -> Any:
    """The registered strategy `name` with its Config built from `options`.

    Raises:
        UnknownComponentError: no such strategy (the message lists the available ones).
        ConfigError: see `strategy_config`.
    """
    from seq2seq_cli.registry import DECODING

    cls = DECODING.get(name, flag="--strategy")
    strategy = cls(strategy_config(cls, options or {}, name), generator=generator)
    strategy.name = name
    return strategy


def split_options(strategy: str, options: Mapping[str, Any]) -> tuple[dict[str, Any], SearchConfig]:
    """Split flat options (as the Python API and `translate_ids` take them) into the strategy's and the loop's.

    Loop fields (`SearchConfig`) go to the loop; everything else must be a field of the strategy's Config.
    """
    loop_fields = {f.name for f in dataclasses.fields(SearchConfig)}
    loop = {k: v for k, v in options.items() if k in loop_fields}
    rest = {k: v for k, v in options.items() if k not in loop_fields}
    return rest, SearchConfig(**loop)


def check_nbest(nbest: int, beam_size: int, strategy: str) -> None:
    """--nbest cannot exceed the hypotheses a strategy keeps."""
    if nbest > beam_size:
        raise ConfigError(f"--nbest {nbest} is larger than --beam {beam_size} (strategy {strategy!r} keeps "
                          f"{beam_size} hypothes{'is' if beam_size == 1 else 'es'} per sentence); "
                          f"raise --beam or lower --nbest")
