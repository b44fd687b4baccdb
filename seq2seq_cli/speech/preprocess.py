"""`seq2seq preprocess --audio`: TSV manifests -> an audio DATA_DIR (filterbank features + target token ids).

Each prefix names a manifest `PREFIX.tsv` (manifest.py). The source side, named by -s (e.g. `-s es` for Spanish
speech, or `-s audio`), is stored as 80-dimensional log-mel filterbanks with utterance CMVN (features.py) in the
float16 array format of data/features.py; the target side (-t) is the `tgt_text` column, tokenized and binarized
exactly as text is (the tokenizer is trained on the training split's tgt_text, or loaded with --tgtdict /
--tokenizer-path). meta.json has one more entry, `audio`, that marks the folder as audio and records the front end.

The speech side has no tokenizer: meta.json points its `tokenizers` entry at the target's, so code keyed by
language (training, checkpoints, ensembles) needs no special case. As for text, only the training split is
filtered (an empty target, or a target longer than --max-length tokens, drops the utterance, counted by reason).

Every manifest is read and every audio path checked before any feature is computed; a bad row fails with its file
and line. The folder is written atomically (staging folder, then rename), as for text.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from seq2seq_cli.config import to_dict
from seq2seq_cli.data import binarize
from seq2seq_cli.data.datadir import check_destination
from seq2seq_cli.data.features import FeatureDatasetWriter
from seq2seq_cli.data.indexed import IndexedDatasetWriter
from seq2seq_cli.data.preprocess import (PreprocessConfig, SplitInput, TokenizerPlan, _common_flags, _get_tokenizer,
                                         _resolve_splits, _validate, datadir_meta, write_datadir)
from seq2seq_cli.errors import ConfigError, DataError
from seq2seq_cli.speech.audio import read_audio
from seq2seq_cli.speech.features import FbankConfig, extract
from seq2seq_cli.speech.manifest import ManifestRow, read_manifest
from seq2seq_cli.tokenization.build import tokenizer_config

logger = logging.getLogger(__name__)


def run_audio_preprocess(cfg: PreprocessConfig) -> Path:
    """Write the audio DATA_DIR described by `cfg` (with cfg.audio set) and return its path.

    Raises:
        ConfigError: flags that do not apply to audio, or the usual preprocess flag problems.
        DataError: a missing manifest, a missing column, a missing, unreadable, empty or wrongly sampled audio file.
    """
    start = time.perf_counter()
    _validate(cfg)
    _validate_audio(cfg)
    plan = _plan_tokenizer(cfg)
    splits = _resolve_splits(cfg)
    manifests = {s.name: Path(str(s.src)[: -len(cfg.source_lang) - 1] + ".tsv") for s in splits}
    rows = {s.name: read_manifest(manifests[s.name], s.flag, need_text=True) for s in splits}
    for name, split_rows in rows.items():
        check_audio_files(manifests[name], split_rows)
    if "train" in rows and not rows["train"]:
        raise DataError(f"{manifests['train']}: no utterances (--trainpref); nothing to train on")
    check_destination(cfg.destdir, cfg.force, list(manifests.values()))
    meta = write_datadir(cfg, lambda staging: _build(cfg, splits, manifests, rows, plan, staging))
    logger.info("wrote %s (%s) in %.1f s", cfg.destdir, ", ".join(meta["splits"]), time.perf_counter() - start)
    return cfg.destdir


def _validate_audio(cfg: PreprocessConfig) -> None:
    for flag, value in (("--srcdict", cfg.srcdict), ("--joined-dictionary", cfg.joined_dictionary)):
        if value:
            raise ConfigError(f"{flag} does not apply to --audio: the source side is speech and has no dictionary; "
                              "drop it (--tgtdict or --tokenizer-path give the target's)")
    if cfg.tokenizer_path and cfg.tgtdict:
        raise ConfigError("--tokenizer-path and --tgtdict both give the target tokenizer with --audio; give one")


def _plan_tokenizer(cfg: PreprocessConfig) -> TokenizerPlan:
    tgt = cfg.target_lang
    plan = TokenizerPlan([tgt], f"tokenizer.{tgt}.json", cfg.tgtdict or cfg.tokenizer_path)
    if plan.source is None:
        if not cfg.trainpref:
            raise ConfigError(f"--trainpref is needed to train the {tgt} tokenizer (or give --tgtdict)")
        plan.config = tokenizer_config(cfg.tokenizer, _common_flags(cfg), cfg.tokenizer_opt)
        plan.meta = {"name": cfg.tokenizer, "config": to_dict(plan.config)}
    return plan


def check_audio_files(manifest: Path, rows: list[ManifestRow]) -> None:
    """Every audio file named in `rows` exists (a cheap pass before the long one).

    Raises:
        DataError: naming the first missing file and its manifest line.
    """
    for row in rows:
        if not row.audio.is_file():
            raise DataError(f"{row.where(manifest)}: audio file {row.audio} does not exist; fix the audio column "
                            "or the file's location (relative paths are relative to the manifest's folder)")


def _build(cfg: PreprocessConfig, splits: list[SplitInput], manifests: dict[str, Path],
           rows: dict[str, list[ManifestRow]], plan: TokenizerPlan, out: Path) -> dict[str, Any]:
    src, tgt = cfg.source_lang, cfg.target_lang
    fbank_cfg = FbankConfig()
    train = next((s for s in splits if s.name == "train"), None)
    if plan.source is None and train is not None:  # the tokenizer trains on the tgt_text column, via a text file
        train.tgt = out / f".train.{tgt}.txt"
        train.tgt.write_text("".join(r.text + "\n" for r in rows["train"]), encoding="utf-8")
        train.pairs = len(rows["train"])
    plan.tokenizer = _get_tokenizer(cfg, plan, train)
    if train is not None and train.tgt.parent == out:
        train.tgt.unlink()
    entry = {"file": plan.file, **plan.meta, "vocab_size": plan.tokenizer.vocab_size}
    files = {plan.file: binarize.write_text(out / plan.file, plan.tokenizer.to_json())}
    results = {split.name: binarize_audio_split(split.name, manifests[split.name], rows[split.name], src, tgt,
                                                plan.tokenizer, fbank_cfg, out, cfg, filter_rows=split.name == "train")
               for split in splits}
    meta = datadir_meta(cfg, False, {src: entry, tgt: entry}, results, files)
    meta["audio"] = {"side": src, "features": {"type": "fbank", **to_dict(fbank_cfg)}, "dtype": "float16"}
    return meta


def binarize_audio_split(name: str, manifest: Path, rows: list[ManifestRow], src: str, tgt: str, tokenizer: Any,
                         fbank_cfg: FbankConfig, out: Path, cfg: PreprocessConfig,
                         filter_rows: bool) -> binarize.SplitResult:
    """Features of every row into out/{name}.{src}.bin/.idx, token ids of its tgt_text into out/{name}.{tgt}.*"""
    dropped = {"empty_side": 0, "longer_than_max_length": 0}
    bar = binarize.progress_bar(len(rows), f"features {name}", "utt", cfg.progress)
    with FeatureDatasetWriter(out / f"{name}.{src}", fbank_cfg.num_mel_bins) as src_out, \
            IndexedDatasetWriter(out / f"{name}.{tgt}", binarize.id_bound(tokenizer)) as tgt_out, bar:
        for start in range(0, len(rows), binarize.CHUNK_LINES):
            chunk = rows[start:start + binarize.CHUNK_LINES]
            for row, ids in zip(chunk, tokenizer.encode_batch([r.text or "" for r in chunk])):
                bar.update()
                if filter_rows and not ids:
                    dropped["empty_side"] += 1
                    continue
                if filter_rows and cfg.max_length is not None and len(ids) > cfg.max_length:
                    dropped["longer_than_max_length"] += 1
                    continue
                where = row.where(manifest)
                src_out.add(extract(read_audio(row.audio, fbank_cfg.sample_rate, where), fbank_cfg, where))
                tgt_out.add(ids)
    kept = tgt_out.num_sentences
    meta = {"sentences": kept, "frames": src_out.num_frames, "tokens": {tgt: tgt_out.num_tokens},
            "inputs": {"manifest": str(manifest)}}
    logger.info("%s: %s utterances, %s frames, %s %s tokens", name, f"{kept:,}", f"{src_out.num_frames:,}",
                f"{tgt_out.num_tokens:,}", tgt)
    filtering: dict[str, Any] = {}
    if filter_rows:
        filtering = {"input_pairs": len(rows), "kept_pairs": kept, "dropped": dropped, "max_length": cfg.max_length}
        logger.info("%s filter: kept %s of %s utterances; dropped %s with an empty target, %s with a target longer "
                    "than --max-length", name, f"{kept:,}", f"{len(rows):,}", f"{dropped['empty_side']:,}",
                    f"{dropped['longer_than_max_length']:,}")
    return binarize.SplitResult(meta, {**src_out.checksums, **tgt_out.checksums}, filtering)
