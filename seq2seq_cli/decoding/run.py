"""`run_generate`: what `seq2seq generate` and `seq2seq interactive` do, as a library function yielding output
lines; and `translate_ids`, the id-level entry point for other code (e.g. validation BLEU during training).

Inputs: raw text (`--input FILE` or stdin), tokenized with the checkpoint's tokenizer; or a DATA_DIR subset, whose
references are printed (fairseq format) and scored with BLEU at the end (log, stderr). Output lines come in input
order: batches are formed by length and restored. Nothing is dropped: every input gives exactly nbest hypotheses
(an empty line gives an empty one; an over-long one is truncated with a warning naming it).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence, TextIO

from seq2seq_cli.decoding.base import DecodingStrategy, Hypothesis
from seq2seq_cli.decoding.config import GenerateConfig, SearchConfig, build_strategy, check_nbest, split_options
from seq2seq_cli.decoding.output import Result, format_result
from seq2seq_cli.errors import ConfigError, DataError

__all__ = ["GenerateConfig", "SearchConfig", "run_generate", "translate_ids"]

logger = logging.getLogger(__name__)


def run_generate(cfg: GenerateConfig, stdin: TextIO | None = None) -> Iterator[str]:
    """Decode as `cfg` says and yield stdout's lines, in input order (streamed chunk by chunk with buffer_size).

    Raises:
        ConfigError, CheckpointError, DataError, DataFormatError, DeviceError: user mistakes or damaged inputs.
    """
    from seq2seq_cli import distributed
    from seq2seq_cli.decoding.translator import Translator, make_generator
    from seq2seq_cli.device import resolve_device, set_threads
    from seq2seq_cli.speech.generate import generate_speech, is_speech_run

    if cfg.data_dir is None and (cfg.prefix_size or cfg.score_reference):
        flag = "--prefix-size" if cfg.prefix_size else "--score-reference"
        raise ConfigError(f"{flag} needs references: give a DATA_DIR (and --gen-subset) instead of raw text")
    where = distributed.placement()
    if where.distributed and cfg.data_dir is None:
        raise ConfigError(f"under torchrun ({where.world_size} processes) generate splits a DATA_DIR subset "
                          "across the processes; raw text (--input or stdin) is decoded by one process: run it "
                          "without torchrun")
    set_threads(cfg.threads)
    device = resolve_device(cfg.device, *((where.local_rank, where.local_world_size) if where.distributed
                                          else (None, 1)))
    # Strategy problems (unknown name, bad option, --nbest > --beam) fail before the checkpoint loads.
    strategy = build_strategy(cfg.strategy, cfg.strategy_options, make_generator(cfg.seed, device))
    if not cfg.score_reference:
        check_nbest(cfg.search.nbest, strategy.beam_size, cfg.strategy)
    if cfg.score_reference and (cfg.lm_path is not None or cfg.search.lm_weight):
        flag = "--lm-path" if cfg.lm_path is not None else "--lm-weight"
        raise ConfigError(f"{flag} does not apply to --score-reference (it scores with the model alone)")
    translator = Translator.load(cfg.path, device, cfg.precision, cfg.lm_path)
    if cfg.output_format == "fairseq":
        logger.info("NOTE: hypothesis and token scores are output in base 2")
    if is_speech_run(cfg, translator):  # audio in: features instead of token ids (speech/generate.py)
        if where.distributed:
            raise ConfigError("generate with a speech checkpoint runs in one process; run it without torchrun")
        yield from generate_speech(cfg, translator, strategy)
        return
    if cfg.data_dir is None:
        yield from _generate_text(cfg, translator, strategy, stdin)
        return
    # Only Python objects are exchanged, once, at the end: gloo serves them whatever the device.
    distributed.join(where, device, backend="gloo")
    try:
        yield from _generate_subset(cfg, translator, strategy, where)
    finally:
        distributed.leave()


def _generate_text(cfg: GenerateConfig, translator: Any, strategy: DecodingStrategy,
                   stdin: TextIO | None) -> Iterator[str]:
    from seq2seq_cli.decoding.translator import iter_chunks

    name = str(cfg.input) if cfg.input is not None else "stdin"
    done = 0
    for chunk in iter_chunks(read_input(cfg.input, stdin), cfg.buffer_size):
        src_ids = translator.encode(chunk, first_line=done + 1, source=name)
        hyps = translator.generate_ids(src_ids, strategy, cfg.search, batch_size=cfg.batch_size,
                                       max_tokens=cfg.max_tokens, progress=cfg.progress and cfg.buffer_size == 0)
        for j, (line, nbest) in enumerate(zip(chunk, hyps)):
            texts = translator.detokenize([h.tokens for h in nbest], cfg.remove_bpe)
            yield from format_result(Result(done + j, line, nbest, texts), cfg.output_format,
                                     translator.tgt_tokenizer, cfg.remove_bpe)
        done += len(chunk)


def _generate_subset(cfg: GenerateConfig, translator: Any, strategy: DecodingStrategy,
                     where: Any) -> Iterator[str]:
    """Decode the subset; under torchrun rank r decodes sentences r, r + W, ... and rank 0 prints them all."""
    from seq2seq_cli.decoding.translator import truncate
    from seq2seq_cli.distributed import gather_to_rank0

    src_ids, ref_ids, sources, refs = _read_subset(cfg, translator)
    mine = range(where.rank, len(src_ids), where.world_size)  # strided: every rank gets short and long sentences
    src_mine = [src_ids[i] for i in mine]
    progress = cfg.progress and where.rank == 0
    if cfg.score_reference:
        limit = translator.ensemble.max_positions()[1] - 1
        targets = [truncate(ref_ids[i], limit, f"{cfg.gen_subset} sentence {i}", "target") for i in mine]
        hyps = [[h] for h in translator.score_ids(src_mine, targets, batch_size=cfg.batch_size,
                                                   max_tokens=cfg.max_tokens, progress=progress)]
    else:
        prefixes = [ref_ids[i][: cfg.prefix_size] for i in mine] if cfg.prefix_size else None
        hyps = translator.generate_ids(src_mine, strategy, cfg.search, prefixes=prefixes, batch_size=cfg.batch_size,
                                       max_tokens=cfg.max_tokens, progress=progress)
    done = []  # (input index, output lines, best hypothesis)
    for i, nbest in zip(mine, hyps):
        texts = translator.detokenize([h.tokens for h in nbest], cfg.remove_bpe)
        lines = format_result(Result(i, sources[i], nbest, texts, refs[i]), cfg.output_format,
                              translator.tgt_tokenizer, cfg.remove_bpe)
        done.append((i, lines, texts[0]))
    shards = gather_to_rank0(done, where)
    if shards is None:  # not rank 0: rank 0 prints
        return
    merged = sorted((item for shard in shards for item in shard), key=lambda item: item[0])
    for _, lines, _ in merged:
        yield from lines
    if not cfg.score_reference:
        _log_bleu([best for _, _, best in merged], refs, cfg)


def _read_subset(cfg: GenerateConfig, translator: Any) -> tuple[list[list[int]], list[list[int]], list[str],
                                                                list[str]]:
    """(source ids + EOS, reference ids, source text, reference text) of DATA_DIR's --gen-subset."""
    from seq2seq_cli.data.datadir import DataDir
    from seq2seq_cli.decoding.translator import post_process, truncate

    data = DataDir(cfg.data_dir)
    data.verify(data.split_files(cfg.gen_subset))  # a damaged file is named, not decoded into garbage
    _check_same_vocabulary(data, translator, cfg)
    src_ds = data.dataset(cfg.gen_subset, data.src_lang)
    tgt_ds = data.dataset(cfg.gen_subset, data.tgt_lang)
    if len(src_ds) != len(tgt_ds):
        raise DataError(f"{cfg.data_dir}: split {cfg.gen_subset!r} has {len(src_ds)} {data.src_lang} but "
                        f"{len(tgt_ds)} {data.tgt_lang} sentences; re-run seq2seq preprocess")
    limit = translator.ensemble.max_positions()[0] - 1
    eos = translator.src_tokenizer.eos_id
    src = [truncate(src_ds[i].tolist(), limit, f"{cfg.gen_subset} sentence {i}", "source") for i in range(len(src_ds))]
    refs = [tgt_ds[i].tolist() for i in range(len(tgt_ds))]
    sources = [post_process(t, cfg.remove_bpe) for t in translator.src_tokenizer.decode_batch(src)] if src else []
    return [s + [eos] for s in src], refs, sources, translator.detokenize(refs, cfg.remove_bpe)


def _check_same_vocabulary(data: Any, translator: Any, cfg: GenerateConfig) -> None:
    from seq2seq_cli.errors import CheckpointError

    for lang, tokenizer in ((data.src_lang, translator.src_tokenizer), (data.tgt_lang, translator.tgt_tokenizer)):
        if data.tokenizer(lang).hf.get_vocab(with_added_tokens=True) != tokenizer.hf.get_vocab(with_added_tokens=True):
            raise CheckpointError(
                f"{cfg.path}: its {lang} vocabulary differs from {cfg.data_dir}'s; decode a DATA_DIR made with the "
                "checkpoint's tokenizer (the one it was trained on), or give raw text with --input")


def _log_bleu(hyps: list[str], refs: list[str], cfg: GenerateConfig) -> None:
    from seq2seq_cli.scoring import ScoreConfig, score_corpus

    if not hyps:
        return
    result = score_corpus(ScoreConfig(sys=("hyp",), refs=("ref",)), {"hyp": hyps}, [refs])[0]
    logger.info("Generate %s with %s: %s", cfg.gen_subset, _describe(cfg), result.to_text())


def _describe(cfg: GenerateConfig) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in cfg.strategy_options.items())
    return f"{cfg.strategy}" + (f" ({opts})" if opts else "")


def read_input(path: Path | None, stdin: TextIO | None = None) -> Iterator[str]:
    """Lines of `path` (or stdin) without line endings, decoded as UTF-8; read lazily, one line at a time.

    Raises:
        DataError: a missing file, or a line that is not UTF-8 (naming the file and line).
    """
    name = str(path) if path is not None else "stdin"
    if path is not None:
        if not Path(path).is_file():
            raise DataError(f"--input {path}: no such file")
        with open(path, "rb") as f:
            yield from _decode_lines(f, name)
        return
    stream = stdin if stdin is not None else sys.stdin
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text stream without a byte buffer (e.g. io.StringIO): already decoded
        for line in iter(stream.readline, ""):
            yield line.rstrip("\n").removesuffix("\r")
        return
    yield from _decode_lines(binary, name)


def _decode_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    # readline (not iteration with read-ahead) so interactive use answers each line as soon as it arrives.
    for number, raw in enumerate(iter(stream.readline, b""), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}, line {number}: not valid UTF-8 ({exc.reason}); "
                            "convert the input to UTF-8 (e.g. with iconv)") from None
        yield line.rstrip("\n").removesuffix("\r")


def translate_ids(models: Sequence[Any], src_ids: Sequence[Sequence[int]], tgt_tokenizer: Any,
                  strategy: str = "beam", options: dict[str, Any] | None = None) -> list[list[Hypothesis]]:
    """Decode token ids with one model or an ensemble: nbest hypotheses per source, in input order.

    Args:
        models: Seq2SeqModels (put in eval mode for the call, then restored).
        src_ids: source ids, each ending with EOS.
        tgt_tokenizer: gives the BOS/EOS/PAD/UNK ids.
        strategy: a registered decoding strategy.
        options: fields of the strategy's Config and of SearchConfig, plus `batch_size`, `max_tokens` (default:
            fairseq's 12000-token batches), `seed`, `precision`.
    """
    from seq2seq_cli.decoding.ensemble import Ensemble
    from seq2seq_cli.decoding.search import Specials
    from seq2seq_cli.decoding.translator import decode_batches, make_generator

    options = dict(options or {})
    batching = {k: options.pop(k) for k in ("batch_size", "max_tokens") if k in options}
    seed, precision = options.pop("seed", None), options.pop("precision", "fp32")
    strategy_options, search_cfg = split_options(strategy, options)
    device = next(models[0].parameters()).device
    strat = build_strategy(strategy, strategy_options, make_generator(seed, device))
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        return decode_batches(Ensemble(models), src_ids, strat, search_cfg, Specials.of(tgt_tokenizer),
                              precision=precision, **batching)
    finally:
        for m, training in zip(models, was_training):
            m.train(training)
