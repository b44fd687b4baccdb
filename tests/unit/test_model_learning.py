"""The Transformer learns: tiny post-LN and pre-LN models learn to copy and to reverse sequences on CPU.

Each case trains from scratch with its own small loop (Adam, short warm-up), then checks teacher-forced token
accuracy on held-out sequences and that greedy decoding (through the incremental cache) reproduces them exactly.
"""
from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from seq2seq_cli.models.transformer import TransformerConfig, TransformerModel

BOS, PAD, EOS = 0, 1, 2
SYMBOLS = list(range(4, 14))  # ten content tokens after the four specials
VOCAB = 14


def make_pairs(n: int, seed: int, reverse: bool) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        ids = [rng.choice(SYMBOLS) for _ in range(rng.randint(2, 8))]
        pairs.append((ids, ids[::-1] if reverse else ids))
    return pairs


def collate(pairs: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source ids+[eos], decoder input [bos]+ids, decoder target ids+[eos]; right-padded."""
    def pad(rows: list[list[int]]) -> torch.Tensor:
        width = max(map(len, rows))
        return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])

    return (pad([src + [EOS] for src, _ in pairs]), pad([[BOS] + tgt for _, tgt in pairs]),
            pad([tgt + [EOS] for _, tgt in pairs]))


def train(model: TransformerModel, pairs: list, steps: int, seed: int, warmup: int = 40) -> None:
    rng = random.Random(seed)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98), fused=True)  # fused: less overhead

    def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 0: converges fast and settles
        return min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * max(0, step - warmup) / (steps - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    for _ in range(steps):
        src, tgt_in, tgt_out = collate(rng.sample(pairs, 32))
        keep = tgt_out.ne(PAD)
        loss = F.cross_entropy(model.logits_for_loss(src, tgt_in, keep), tgt_out[keep])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()


def token_accuracy(model: TransformerModel, pairs: list) -> float:
    src, tgt_in, tgt_out = collate(pairs)
    keep = tgt_out.ne(PAD)
    with torch.no_grad():
        predicted = model(src, tgt_in).argmax(-1)
    return float((predicted[keep] == tgt_out[keep]).float().mean())


def greedy(model: TransformerModel, src_ids: list[int], max_len: int = 12) -> list[int]:
    with torch.no_grad():
        enc, state = model.encode(torch.tensor([src_ids + [EOS]])), {}
        prefix = torch.tensor([[BOS]])
        for _ in range(max_len):
            token = model.decode(prefix, enc, state)[0, -1].argmax()
            if int(token) == EOS:
                break
            prefix = torch.cat([prefix, token.view(1, 1)], dim=1)
    return prefix[0, 1:].tolist()


@pytest.mark.parametrize("reverse, steps", [(False, 300), (True, 400)], ids=["copy", "reverse"])
@pytest.mark.parametrize("normalize_before", [False, True], ids=["post-ln", "pre-ln"])
def test_learns_the_task(normalize_before, reverse, steps):
    torch.manual_seed(0)
    cfg = TransformerConfig(
        encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_layers=2, encoder_attention_heads=4,
        decoder_embed_dim=64, decoder_ffn_embed_dim=128, decoder_layers=2, decoder_attention_heads=4,
        encoder_normalize_before=normalize_before, decoder_normalize_before=normalize_before,
        dropout=0.0, share_all_embeddings=True, max_source_positions=16, max_target_positions=16,
    )
    model = TransformerModel.build(cfg, VOCAB, VOCAB, PAD)
    train(model, make_pairs(2000, seed=1, reverse=reverse), steps=steps, seed=2)
    held_out = make_pairs(200, seed=3, reverse=reverse)
    assert token_accuracy(model, held_out) >= 0.98
    for src, tgt in held_out[:6]:
        assert greedy(model, src) == tgt
