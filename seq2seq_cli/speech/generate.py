"""`seq2seq generate` with a speech checkpoint: audio in (an audio DATA_DIR subset, or a manifest), text out.

- `generate AUDIO_DATA_DIR --path ckpt [--gen-subset test]`: the stored features of the subset; references are
  the subset's targets (shown by the fairseq/jsonl formats; WER and BLEU end the log on stderr).
- `generate --input MANIFEST.tsv --path ckpt`: features computed from the audio files exactly as preprocess does
  (features.py; the checkpoint's model says how many mel bins); a `tgt_text` column, when present, serves as the
  references.

Output order is input order (batches are formed by length and restored), as for text. Not supported for speech:
stdin input, --prefix-size and --score-reference.
"""
from __future__ import annotations

import logging
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from seq2seq_cli.decoding.base import DecodingStrategy, Hypothesis
from seq2seq_cli.decoding.config import GenerateConfig
from seq2seq_cli.decoding.output import Result, format_result
from seq2seq_cli.errors import ConfigError

logger = logging.getLogger(__name__)


def is_speech_run(cfg: GenerateConfig, translator: Any) -> bool:
    """Whether the checkpoint is a speech model; a text checkpoint given an audio DATA_DIR is an error."""
    if translator.takes_audio:
        return True
    if cfg.data_dir is not None:
        from seq2seq_cli.data.datadir import read_meta

        if "audio" in read_meta(cfg.data_dir):
            raise ConfigError(f"{cfg.data_dir} is an audio DATA_DIR, but {cfg.path} is a text model; decode it "
                              "with a checkpoint of an s2t_transformer trained on audio")
    return False


def generate_speech(cfg: GenerateConfig, translator: Any, strategy: DecodingStrategy) -> Iterator[str]:
    """Decode audio with a speech checkpoint and yield stdout's lines (see the module docstring)."""
    for flag, value in (("--prefix-size", cfg.prefix_size), ("--score-reference", cfg.score_reference)):
        if value:
            raise ConfigError(f"{flag} is not supported with a speech checkpoint yet")
    if cfg.data_dir is not None:
        feats, names, refs = _read_audio_subset(cfg, translator)
    elif cfg.input is not None:
        feats, names, refs = _read_manifest(cfg, translator)
    else:
        raise ConfigError(f"{cfg.path} is a speech model: give an audio DATA_DIR or --input MANIFEST.tsv "
                          "(columns id, audio[, n_frames, tgt_text]); it does not read text from stdin")
    hyps = decode_features(translator, feats, strategy, cfg)
    best = []
    for i, nbest in enumerate(hyps):
        texts = translator.detokenize([h.tokens for h in nbest], cfg.remove_bpe)
        best.append(texts[0] if texts else "")
        yield from format_result(Result(i, names[i], nbest, texts, refs[i] if refs else None), cfg.output_format,
                                 translator.tgt_tokenizer, cfg.remove_bpe)
    if refs and best:
        _log_scores(best, refs, cfg)


def _read_audio_subset(cfg: GenerateConfig, translator: Any) -> tuple[list[np.ndarray], list[str], list[str]]:
    from seq2seq_cli.data.datadir import DataDir
    from seq2seq_cli.decoding.run import _check_same_vocabulary
    from seq2seq_cli.speech.data import feature_dataset, is_audio

    data = DataDir(cfg.data_dir)
    if not is_audio(data):
        raise ConfigError(f"{cfg.path} is a speech model, but {cfg.data_dir} holds text; give an audio DATA_DIR "
                          "(seq2seq preprocess --audio) or --input MANIFEST.tsv")
    _check_same_vocabulary(data, translator, cfg)
    src = feature_dataset(data, cfg.gen_subset)
    tgt = data.dataset(cfg.gen_subset, data.tgt_lang)
    feats = [np.asarray(src[i], dtype=np.float32) for i in range(len(src))]
    refs = translator.detokenize([tgt[i].tolist() for i in range(len(tgt))], cfg.remove_bpe)
    return feats, [f"{cfg.gen_subset} utterance {i}" for i in range(len(src))], refs


def _read_manifest(cfg: GenerateConfig, translator: Any) -> tuple[list[np.ndarray], list[str], list[str] | None]:
    from seq2seq_cli.speech.audio import read_audio
    from seq2seq_cli.speech.features import FbankConfig, extract
    from seq2seq_cli.speech.manifest import read_manifest

    rows = read_manifest(cfg.input, "--input", need_text=False)
    fbank_cfg = FbankConfig(num_mel_bins=translator.ensemble.models[0].cfg.input_feat_per_channel)
    # Rounded through float16 as preprocess stores them: a manifest decodes exactly as its preprocessed DATA_DIR.
    feats = [extract(read_audio(r.audio, fbank_cfg.sample_rate, r.where(cfg.input)), fbank_cfg, r.where(cfg.input))
             .astype(np.float16).astype(np.float32) for r in rows]
    has_text = bool(rows) and rows[0].text is not None
    return feats, [r.id for r in rows], [r.text or "" for r in rows] if has_text else None


def decode_features(translator: Any, feats: Sequence[np.ndarray], strategy: DecodingStrategy,
                    cfg: GenerateConfig) -> list[list[Hypothesis]]:
    """N-best hypotheses of each utterance's features (T_i, F), in input order; batches counted in frames."""
    from seq2seq_cli.decoding.search import search
    from seq2seq_cli.decoding.translator import _progress, plan_batches
    from seq2seq_cli.device import autocast
    from seq2seq_cli.speech.data import collate_features

    device = translator.device
    wanted = translator.ensemble.models[0].cfg.input_feat_per_channel
    if feats and feats[0].shape[1] != wanted:
        raise ConfigError(f"the features have {feats[0].shape[1]} values per frame but {cfg.path} reads {wanted}")
    results: list[list[Hypothesis]] = [[] for _ in feats]
    bar = _progress(len(feats), cfg.progress)
    # translator._autocast: int8 models are quantized at load time, not autocast
    with bar, torch.inference_mode(), autocast(translator._autocast, device):
        for batch in plan_batches([len(f) for f in feats], cfg.batch_size, cfg.max_tokens):
            src = collate_features([feats[i] for i in batch]).to(device)
            lengths = torch.tensor([len(feats[i]) for i in batch], device=device)
            hyps = search(translator.ensemble, src, lengths, strategy, cfg.search, translator.specials, None, True)
            for i, sentence_hyps in zip(batch, hyps):
                results[i] = sentence_hyps
            bar.update(len(batch))
    return results


def _log_scores(hyps: list[str], refs: list[str], cfg: GenerateConfig) -> None:
    from seq2seq_cli.scoring import ScoreConfig, score_corpus

    what = cfg.gen_subset if cfg.data_dir is not None else str(cfg.input)
    results = score_corpus(ScoreConfig(sys=("hyp",), refs=("ref",), metrics=("wer", "bleu")), {"hyp": hyps}, [refs])
    for result in results:
        logger.info("Generate %s with %s: %s", what, cfg.strategy, result.to_text())
