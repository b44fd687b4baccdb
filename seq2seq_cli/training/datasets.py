"""The training run's view of a DATA_DIR: language direction, tokenizers, and the batched splits.

Every problem with the data is found at start-up (missing split, wrong language, a pair longer than the model
accepts, a sentence longer than --max-tokens), never in the middle of an epoch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from seq2seq_cli.errors import ConfigError, DataError
from seq2seq_cli.training.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainData:
    """An opened DATA_DIR and the direction trained (which may be the reverse of the preprocessed one)."""

    datadir: Any  # seq2seq_cli.data.datadir.DataDir
    src_lang: str
    tgt_lang: str
    src_tokenizer: Any
    tgt_tokenizer: Any

    def tokenizer_json(self) -> dict[str, str]:
        return {"src": self.datadir.tokenizer_json(self.src_lang), "tgt": self.datadir.tokenizer_json(self.tgt_lang)}


@dataclass
class Split:
    """One split, paired and cut into batches (the batch list is fixed; each epoch only reorders it)."""

    name: str
    dataset: Any  # seq2seq_cli.training.batching.PairDataset
    batches: list[np.ndarray]
    skipped: int
    src: Any  # the source and target IndexedDatasets (token ids without eos/bos)
    tgt: Any


def open_data(cfg: TrainConfig) -> TrainData:
    """Open and check DATA_DIR; -s/-t may pick the reverse direction of the preprocessed pair."""
    from seq2seq_cli.data.datadir import DataDir

    dd = DataDir(cfg.data)
    if dd.monolingual:
        return _open_monolingual(cfg, dd)
    langs = [dd.src_lang, dd.tgt_lang]
    src = cfg.source_lang or (dd.tgt_lang if cfg.target_lang == dd.src_lang else dd.src_lang)
    tgt = cfg.target_lang or (dd.src_lang if src == dd.tgt_lang else dd.tgt_lang)
    for flag, lang in (("-s/--source-lang", src), ("-t/--target-lang", tgt)):
        if lang not in langs:
            raise ConfigError(f"{flag} {lang}: {cfg.data} holds languages {dd.src_lang} and {dd.tgt_lang} "
                              f"(preprocessed as {dd.src_lang}->{dd.tgt_lang}); choose one of them")
    if src == tgt:
        raise ConfigError(f"-s/--source-lang and -t/--target-lang are both {src}; {cfg.data} holds "
                          f"{dd.src_lang}->{dd.tgt_lang}")
    for split in [cfg.train_subset, *cfg.valid_subsets]:
        if split not in dd.splits:
            flag = "--train-subset" if split == cfg.train_subset else "--valid-subset"
            raise DataError(f"{flag} {split}: {cfg.data} has no split {split!r} "
                            f"(it has: {', '.join(dd.splits)})")
    if "audio" in dd.meta:
        from seq2seq_cli.speech.data import check_direction

        check_direction(dd, src, "drop -s/-t")
        if cfg.eval_bleu:
            raise ConfigError(f"--eval-bleu does not support the audio DATA_DIR {cfg.data} yet; decode it with "
                              "`seq2seq generate` and score with `seq2seq score`")
    dd.verify()
    return TrainData(dd, src, tgt, dd.tokenizer(src), dd.tokenizer(tgt))


def _open_monolingual(cfg: TrainConfig, dd: Any) -> TrainData:
    """A language model's DATA_DIR (`preprocess --only-source`): one language, read as both sides."""
    lang = dd.src_lang
    for flag, value in (("-s/--source-lang", cfg.source_lang), ("-t/--target-lang", cfg.target_lang)):
        if value and value != lang:
            raise ConfigError(f"{flag} {value}: {cfg.data} is monolingual {lang} text (preprocess --only-source); "
                              f"drop {flag.split('/')[0]}")
    if cfg.eval_bleu:
        raise ConfigError(f"--eval-bleu translates; {cfg.data} is monolingual text for a language model: drop it "
                          "(validation reports the loss and perplexity)")
    for split in [cfg.train_subset, *cfg.valid_subsets]:
        if split not in dd.splits:
            flag = "--train-subset" if split == cfg.train_subset else "--valid-subset"
            raise DataError(f"{flag} {split}: {cfg.data} has no split {split!r} (it has: {', '.join(dd.splits)})")
    dd.verify()
    tok = dd.tokenizer(lang)
    return TrainData(dd, lang, lang, tok, tok)


def check_data_fits(data: TrainData, model_name: str, model_cfg: Any) -> None:
    """Audio data needs a speech model, text data a text model (speech models say so in their Config), and
    monolingual text a language model (whose class has `source_kind` "none")."""
    from seq2seq_cli.registry import MODELS

    is_lm = getattr(MODELS.get(model_name), "source_kind", None) == "none"
    if data.datadir.monolingual and not is_lm:
        raise ConfigError(f"{data.datadir.path} is monolingual text (preprocess --only-source): it trains a "
                          f"language model (--arch transformer_lm or transformer_lm_small), not {model_name}")
    if is_lm and not data.datadir.monolingual:
        raise ConfigError(f"{model_name} is a language model: it trains on monolingual text; preprocess the "
                          f"target side with `seq2seq preprocess --only-source -s {data.tgt_lang} --srcdict "
                          f"{data.datadir.tokenizer_file(data.tgt_lang)} ...`")
    if "audio" in data.datadir.meta or hasattr(model_cfg, "input_feat_per_channel"):
        from seq2seq_cli.speech.data import check_model_fits

        check_model_fits(data.datadir, model_name, model_cfg)


def load_split(data: TrainData, split: str, cfg: TrainConfig, max_positions: tuple[int, int]) -> Split:
    """Pair, size-filter and batch one split.

    Raises:
        ConfigError: a pair exceeds the model's max positions (without --skip-invalid-size-inputs-valid-test),
            or a sentence alone exceeds --max-tokens.
    """
    from seq2seq_cli.training.batching import PairDataset, batch_by_size, filter_by_size

    tok = data.tgt_tokenizer
    tgt = data.datadir.dataset(split, data.tgt_lang)
    if "audio" in data.datadir.meta:  # features (frames) on the source side
        from seq2seq_cli.speech.data import SpeechPairDataset, feature_dataset

        src = feature_dataset(data.datadir, split)
        pair: PairDataset = SpeechPairDataset(src, tgt, bos=tok.bos_id, eos=tok.eos_id, pad=tok.pad_id)
    else:
        src = data.datadir.dataset(split, data.src_lang)
        pair = PairDataset(src, tgt, bos=tok.bos_id, eos=tok.eos_id, pad=tok.pad_id)
    kept, skipped = filter_by_size(pair, *max_positions)
    if len(skipped):
        first = int(skipped[0])
        where = (f"{split} pair {first} has {int(pair.src_sizes[first])} source and {int(pair.tgt_sizes[first])} "
                 f"target tokens (with eos/bos); the model accepts {max_positions[0]} and {max_positions[1]}")
        if not cfg.skip_invalid_size_inputs_valid_test:
            raise ConfigError(f"{len(skipped)} {split} pair(s) are too long for the model: {where}. Use "
                              "--skip-invalid-size-inputs-valid-test to skip them, or raise "
                              "--max-source-positions / --max-target-positions")
        logger.warning("%s: skipped %d of %d pair(s) longer than the model's max positions (e.g. %s)",
                       split, len(skipped), len(pair), where)
    if len(kept) == 0:
        raise DataError(f"{split}: no sentence pair left to batch ({len(pair)} in the split, {len(skipped)} too long)")
    batches = batch_by_size(kept, pair.src_sizes, pair.tgt_sizes, max_tokens=cfg.max_tokens,
                            max_sentences=cfg.batch_size, seed=cfg.seed)
    return Split(split, pair, batches, len(skipped), src, tgt)


def epoch_iterator(split: Split, cfg: TrainConfig, *, shuffle: bool, rank: int, world_size: int,
                   epoch: int = 1) -> Any:
    """A resumable iterator over the split's batches (shuffled per epoch when training)."""
    from seq2seq_cli.training.batching import EpochBatchIterator

    return EpochBatchIterator(split.dataset, split.batches, seed=cfg.seed, shuffle=shuffle, rank=rank,
                              world_size=world_size, epoch=epoch, num_workers=cfg.num_workers)
