"""A tiny trained checkpoint for the decoding tests, built once per test process.

A copy task (the target repeats the source words) over a word-level ("none") tokenizer whose vocabulary includes
subword-nmt style tokens ("x@@"), so `--remove-bpe` has something to remove. The model is a 2+2-layer Transformer of
width 32 trained for a few hundred steps: enough to copy short sentences (the tests check it), small enough to train
in seconds. Its target positions are few (MAX_POSITIONS), so an over-long input line is easy to make.
"""
from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

WORDS = "a b c d e f g h i j k l m n o p x@@ y@@".split()
MAX_POSITIONS = 48


@dataclass(frozen=True)
class TinyCheckpoint:
    folder: Path
    checkpoint: Path  # trained copy model
    other: Path  # the same architecture, other (random) weights: for ensembles of different models
    raw: Path  # folder with {train,valid,test}.{src,tgt}
    tokenizer_json: Path


def copy_sentences(n: int, seed: int, min_len: int = 2, max_len: int = 8) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(min_len, max_len))) for _ in range(n)]


def model_config(**overrides):
    from seq2seq_cli.models.transformer import TransformerConfig

    sizes = dict(encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_layers=2, encoder_attention_heads=4,
                 decoder_embed_dim=32, decoder_ffn_embed_dim=64, decoder_layers=2, decoder_attention_heads=4,
                 dropout=0.0, share_all_embeddings=True, max_source_positions=MAX_POSITIONS,
                 max_target_positions=MAX_POSITIONS)
    return TransformerConfig(**{**sizes, **overrides})


def train_tokenizer(lines: list[str]):
    from seq2seq_cli.registry import TOKENIZERS

    cls = TOKENIZERS.get("none")
    return cls.train(cls.Config(), iter(lines))


def _train_copy_model(tokenizer, sentences: list[str], steps: int, seed: int):
    import torch

    from seq2seq_cli.models.transformer import TransformerModel

    torch.manual_seed(seed)
    model = TransformerModel.build(model_config(), tokenizer.vocab_size, tokenizer.vocab_size, tokenizer.pad_id)
    ids = tokenizer.encode_batch(sentences)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        batch = [ids[rng.randrange(len(ids))] for _ in range(32)]
        width = max(len(s) for s in batch) + 1
        src = torch.full((32, width), tokenizer.pad_id)
        tgt_in, tgt_out = src.clone(), src.clone()
        for row, seq in enumerate(batch):
            src[row, : len(seq) + 1] = torch.tensor(seq + [tokenizer.eos_id])
            tgt_in[row, : len(seq) + 1] = torch.tensor([tokenizer.bos_id] + seq)
            tgt_out[row, : len(seq) + 1] = torch.tensor(seq + [tokenizer.eos_id])
        keep = tgt_out.ne(tokenizer.pad_id)
        loss = torch.nn.functional.cross_entropy(model.logits_for_loss(src, tgt_in, keep), tgt_out[keep])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def save_model(model, tokenizer, path: Path) -> None:
    from seq2seq_cli.checkpoint import save_checkpoint
    from seq2seq_cli.config import to_dict

    text = tokenizer.to_json()
    save_checkpoint({
        "format_version": 1, "tool_version": "0.1.0",
        "model": {"name": "transformer", "arch": None, "config": to_dict(model.cfg), "state_dict": model.state_dict()},
        "tokenizers": {"src": text, "tgt": text}, "langs": {"src": "src", "tgt": "tgt"},
    }, path)


@functools.lru_cache(maxsize=None)
def tiny_checkpoint() -> TinyCheckpoint:
    """Build (once per process) the corpus, tokenizer and checkpoints in a temporary folder."""
    import torch

    folder = Path(tempfile.mkdtemp(prefix="seq2seq-decoding-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    raw = folder / "raw"
    raw.mkdir()
    splits = {"train": copy_sentences(400, 1), "valid": copy_sentences(10, 2), "test": copy_sentences(12, 3)}
    for split, lines in splits.items():
        for side in ("src", "tgt"):
            (raw / f"{split}.{side}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = train_tokenizer(splits["train"] + [" ".join(WORDS)])
    (folder / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trained = _train_copy_model(tokenizer, splits["train"], steps=250, seed=0)
        other = _train_copy_model(tokenizer, splits["train"], steps=0, seed=1)
    finally:
        torch.set_num_threads(threads)
    save_model(trained, tokenizer, folder / "checkpoint.pt")
    save_model(other, tokenizer, folder / "other.pt")
    return TinyCheckpoint(folder, folder / "checkpoint.pt", folder / "other.pt", raw, folder / "tokenizer.json")


def load_translator(path: Path | str | None = None):
    from seq2seq_cli.decoding.translator import Translator

    return Translator.load(str(path or tiny_checkpoint().checkpoint), "cpu")
