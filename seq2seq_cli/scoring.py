"""Scoring hypotheses against references with sacreBLEU's metric objects (BLEU, chrF, chrF++, TER).

Every number comes from sacreBLEU itself (`sacrebleu.metrics.BLEU`, `CHRF`, `TER`, and
`sacrebleu.significance.PairedTest` for the paired bootstrap test), so a score equals what `sacrebleu` prints for
the same files and options, and the sacreBLEU signature goes with it. This module only reads the files (strict UTF-8,
equal line counts, the same line splitting as sacreBLEU: on "\\n" only, trailing whitespace stripped), builds the
metrics and formats the results.

Limitations: no sacreBLEU test-set download (`-t`); TER uses sacreBLEU's defaults (case-insensitive, so
`--lowercase` does not change it); the paired test is the bootstrap one (not approximate randomization).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from seq2seq_cli.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("bleu", "chrf", "chrf++", "ter", "wer")  # wer: jiwer (speech/wer.py), `speech` extra
STDIN = "-"


@dataclass(frozen=True)
class ScoreConfig:
    """What to score, with which metrics and how to print it."""

    sys: tuple[str, ...] = field(metadata={"help": "Hypothesis files ('-' = stdin); the first is the baseline."})
    refs: tuple[str, ...] = field(metadata={"help": "Reference files, line-aligned with the hypotheses."})
    metrics: tuple[str, ...] = field(default=("bleu",), metadata={"help": "Any of bleu, chrf, chrf++, ter, wer."})
    tokenize: str | None = field(default=None, metadata={"help": "BLEU tokenizer; None = sacreBLEU's default (13a)."})
    lowercase: bool = field(default=False, metadata={"help": "Lowercase before BLEU, chrF and WER (TER is always)."})
    wer_remove_punct: bool = field(default=False, metadata={
        "help": "WER: remove punctuation before counting words (fairseq's --wer-remove-punct)."})
    sentence_level: bool = field(default=False, metadata={"help": "One score per segment instead of per corpus."})
    json: bool = field(default=False, metadata={"help": "One JSON object per line instead of text."})
    paired_bs_n: int = field(default=1000, metadata={"help": "Bootstrap resamples of the paired test."})
    seed: int = field(default=12345, metadata={"help": "Seed of the paired bootstrap test (sacreBLEU's default)."})


@dataclass
class MetricResult:
    """One score: of a system (or of one of its segments) under one metric."""

    system: str
    metric: str  # our name: bleu, chrf, chrf++, ter
    name: str  # sacreBLEU's: BLEU, chrF2, chrF2++, TER
    score: float
    signature: str
    verbose: str = ""  # sacreBLEU's details, e.g. "58.4/33.1/21.0/13.6 (BP = 1.000 ratio = ...)"
    segment: int | None = None  # 1-based, with --sentence-level
    baseline: bool | None = None  # paired test only, as are the three below
    mean: float | None = None  # bootstrap estimate of the true score
    ci: float | None = None  # half-width of its 95% confidence interval
    p_value: float | None = None  # vs the baseline (None for the baseline itself)

    def to_text(self) -> str:
        """sacreBLEU's line, `NAME|signature = score details`, plus the paired-test figures when present."""
        line = f"{self.name}|{self.signature} = {self.score:.2f}"
        if self.mean is not None and self.ci is not None:
            line += f" (μ = {self.mean:.2f} ± {self.ci:.2f})"
        if self.p_value is not None:
            line += f" (p = {self.p_value:.4f}){'*' if self.p_value < 0.05 else ''}"
        if self.verbose:
            line += f" {self.verbose}"
        return line

    def to_json(self) -> str:
        """One JSON object; fields that do not apply (segment, paired-test figures) are left out."""
        data = {k: v for k, v in vars(self).items() if v is not None and v != ""}
        return json.dumps(data, ensure_ascii=False)


def run_score(cfg: ScoreConfig) -> Iterator[str]:
    """Score as `cfg` says and yield the output lines (text or JSON): what `seq2seq score` prints on stdout."""
    for result in score_files(cfg):
        if cfg.json:
            yield result.to_json()
        elif len(cfg.sys) > 1:  # several systems: say which line is whose
            yield f"{result.system}\t{result.to_text()}"
        else:
            yield result.to_text()


def score_files(cfg: ScoreConfig) -> list[MetricResult]:
    """Read the files named in `cfg` and score them.

    Raises:
        ConfigError: bad metric names or option values.
        DataError: a missing or undecodable file, or line counts that differ.
    """
    metrics = parse_metrics(cfg.metrics)
    check_config(cfg)
    if cfg.wer_remove_punct and "wer" not in metrics:
        raise ConfigError("--wer-remove-punct applies to WER only; add wer to --metrics or drop the flag")
    _check_inputs(cfg)
    refs = [read_lines(path, "--ref") for path in cfg.refs]
    systems = {display_name(path): read_lines(path, "--sys") for path in cfg.sys}
    check_lengths(cfg, systems, refs)
    logger.info("scoring %d system(s) of %d segments against %d reference(s) with %s",
                len(systems), len(refs[0]), len(refs), ", ".join(metrics))
    cfg = replace(cfg, metrics=metrics)
    if cfg.sentence_level:
        return score_sentences(cfg, systems, refs)
    if len(systems) > 1:
        if "wer" in metrics:
            raise ConfigError("the paired bootstrap test (several --sys) covers bleu, chrf, chrf++ and ter, not wer; "
                              "score each system alone for its WER")
        return paired_bootstrap(cfg, systems, refs)
    return score_corpus(cfg, systems, refs)


def parse_metrics(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Metric names from `--metrics` values (each may hold commas), lowercased and deduplicated, in order."""
    out: list[str] = []
    for item in names:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in METRICS:
                raise ConfigError(f"unknown metric {name!r} (--metrics); available: {', '.join(METRICS)}")
            if name not in out:
                out.append(name)
    if not out:
        raise ConfigError(f"--metrics: no metric given; available: {', '.join(METRICS)}")
    return tuple(out)


def check_config(cfg: ScoreConfig) -> None:
    """Option values and combinations sacreBLEU would reject (or silently misread)."""
    if not cfg.sys:
        raise ConfigError("no hypotheses: give --sys FILE (or --sys - for stdin)")
    if not cfg.refs:
        raise ConfigError("no references: give --ref FILE (repeat it for several references)")
    if cfg.sentence_level and len(cfg.sys) > 1:
        raise ConfigError("--sentence-level scores one --sys at a time; drop the paired test or run once per system")
    if cfg.paired_bs_n < 1:
        raise ConfigError(f"--paired-bs-n {cfg.paired_bs_n}: give a positive number of resamples (e.g. 1000)")
    if cfg.seed < 1:  # sacreBLEU's paired test treats a seed of 0 as "no seed", so results would not repeat
        raise ConfigError(f"--seed {cfg.seed}: give a positive seed (sacreBLEU reads 0 as 'unseeded')")
    if cfg.tokenize is not None:
        from sacrebleu.metrics.bleu import BLEU

        if cfg.tokenize not in BLEU.TOKENIZERS:
            raise ConfigError(f"--tokenize {cfg.tokenize!r}: choose one of {', '.join(BLEU.TOKENIZERS)}")


def _check_inputs(cfg: ScoreConfig) -> None:
    if (cfg.sys + cfg.refs).count(STDIN) > 1:
        raise ConfigError("'-' (stdin) can be given only once among --sys and --ref")
    for path in cfg.sys:
        if cfg.sys.count(path) > 1:  # results are keyed by file name, and a system vs itself tests nothing
            raise ConfigError(f"--sys {path} is given twice; give each system once")


def display_name(path: str) -> str:
    """How a file is named in the output: its path as given, or <stdin>."""
    return "<stdin>" if path == STDIN else str(path)


def read_lines(path: str | Path, flag: str) -> list[str]:
    """Lines of a UTF-8 text file (or stdin for '-'), split as sacreBLEU does: on "\\n", trailing space stripped.

    Raises:
        DataError: the file is missing, is a folder, or is not valid UTF-8 (naming the line).
    """
    name = display_name(str(path))
    if str(path) == STDIN:
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise DataError(f"{flag} {path}: no such file") from None
        except IsADirectoryError:
            raise DataError(f"{flag} {path}: is a folder; give a text file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{flag} {name}: line {line}, byte {column}: not valid UTF-8 ({exc.reason}); convert the file to UTF-8"
        ) from None
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline ends the last line; it does not start another
        lines.pop()
    return [line.rstrip() for line in lines]


def check_lengths(cfg: ScoreConfig, systems: dict[str, list[str]], refs: list[list[str]]) -> None:
    """Every system and every reference must have the same number of lines (and at least one)."""
    ref0_name, ref0 = display_name(cfg.refs[0]), refs[0]
    if not ref0:
        raise DataError(f"--ref {ref0_name} is empty; nothing to score")
    for path, ref in zip(cfg.refs[1:], refs[1:]):
        if len(ref) != len(ref0):
            raise DataError(f"--ref {display_name(path)} has {len(ref)} lines but --ref {ref0_name} has {len(ref0)}; "
                            "every reference must have one line per segment")
    for name, hyps in systems.items():
        if len(hyps) != len(ref0):
            raise DataError(f"--sys {name} has {len(hyps)} lines but --ref {ref0_name} has {len(ref0)}; "
                            "give one hypothesis line per reference line")


def build_metric(name: str, cfg: ScoreConfig, refs: list[list[str]] | None = None) -> Any:
    """The sacreBLEU metric object for `name` with `cfg`'s options; `refs` (if given) are cached in it."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    if name == "wer":
        from seq2seq_cli.speech.wer import WER

        return WER(lowercase=cfg.lowercase, remove_punct=cfg.wer_remove_punct, references=refs)
    try:
        if name == "bleu":
            # sacreBLEU turns on effective order for sentence-level BLEU (its own CLI does the same)
            return BLEU(tokenize=cfg.tokenize, lowercase=cfg.lowercase, effective_order=cfg.sentence_level,
                        references=refs)
        if name in ("chrf", "chrf++"):
            return CHRF(word_order=2 if name == "chrf++" else 0, lowercase=cfg.lowercase, references=refs)
        return TER(references=refs)
    except (ImportError, RuntimeError) as exc:  # e.g. --tokenize ja-mecab without its extra packages
        raise ConfigError(f"--tokenize {cfg.tokenize}: {' '.join(str(exc).split())}") from None


def score_corpus(cfg: ScoreConfig, systems: dict[str, list[str]], refs: list[list[str]]) -> list[MetricResult]:
    """Corpus-level scores of each system under each metric."""
    results = []
    for metric_name in cfg.metrics:
        metric = build_metric(metric_name, cfg, refs)
        for system, hyps in systems.items():
            score = metric.corpus_score(hyps, None)
            results.append(MetricResult(system, metric_name, score.name, score.score,
                                        metric.get_signature().format(), verbose=score._verbose))
    return results


def score_sentences(cfg: ScoreConfig, systems: dict[str, list[str]], refs: list[list[str]]) -> list[MetricResult]:
    """Segment-level scores of the (single) system: for each segment, one result per metric."""
    (system, hyps), = systems.items()
    metrics = {name: build_metric(name, cfg) for name in cfg.metrics}
    signatures: dict[str, str] = {}
    results = []
    for i, (hyp, *seg_refs) in enumerate(zip(hyps, *refs), start=1):
        for metric_name, metric in metrics.items():
            score = metric.sentence_score(hyp, seg_refs)
            if metric_name not in signatures:  # known once a score is computed (it counts the references)
                signatures[metric_name] = metric.get_signature().format()
            results.append(MetricResult(system, metric_name, score.name, score.score, signatures[metric_name],
                                        verbose=score._verbose, segment=i))
    return results


@contextlib.contextmanager
def _sacrebleu_seed(seed: int) -> Iterator[None]:
    # sacreBLEU's paired test reads its seed only from this variable; set it for the test and restore it after.
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if old is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(cfg: ScoreConfig, systems: dict[str, list[str]], refs: list[list[str]]) -> list[MetricResult]:
    """sacreBLEU's paired bootstrap resampling test of every system against the first (the baseline)."""
    from sacrebleu.significance import PairedTest

    metrics = {name: build_metric(name, cfg, refs) for name in cfg.metrics}
    names = list(systems)
    logger.info("paired bootstrap test (%d resamples, seed %d) against the baseline %s; * marks p < 0.05",
                cfg.paired_bs_n, cfg.seed, names[0])
    with _sacrebleu_seed(cfg.seed):
        test = PairedTest(list(systems.items()), metrics, references=None, test_type="bs",
                          n_samples=cfg.paired_bs_n)
        signatures, scores = test()
    results = []
    # sacreBLEU keys its results by score name (BLEU, chrF2, ...), in the order of `metrics`
    for metric_name, score_name in zip(metrics, signatures):
        signature = signatures[score_name].format()
        for i, res in enumerate(scores[score_name]):
            results.append(MetricResult(names[i], metric_name, score_name, float(res.score), signature,
                                        baseline=(i == 0), mean=_float(res.mean), ci=_float(res.ci),
                                        p_value=_float(res.p_value)))
    return sorted(results, key=lambda r: names.index(r.system))  # grouped by system, metrics in the given order


def _float(value: Any) -> float | None:
    return None if value is None else float(value)  # numpy scalars -> float, for JSON
