"""Throughput of one training step of our Transformer beside torch's plain nn.Transformer, in one run.

A step is forward + cross-entropy + backward + AdamW update, on the reference size (3+3 layers, d 256, FFN 1024,
4 heads, dropout 0.1, vocab 8,000, shared embeddings for ours) and the batch of ../shared/bench/probe.py
(110 sentences x 32 source and 32 target tokens, 3,520 target tokens). The nn.Transformer step is the probe's,
with AdamW instead of Adam so both sides run the same optimizer. `--varied-lengths` makes the batch realistic
(lengths vary, padding at the end): nn.Transformer then gets key padding masks and ignore_index, and tokens/s
counts real target tokens only. Both models are timed alternately, round after
round, and the best round of each is reported (the machine is shared: the best round is the least disturbed).

Usage: python benchmarks/model_step.py [--threads 2] [--steps 5] [--rounds 3] [--precision fp32 bf16]
       [--varied-lengths]
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from seq2seq_cli.config import from_dict
from seq2seq_cli.registry import ARCHS, CRITERIA, MODELS

VOCAB, DIM, FFN, HEADS, LAYERS = 8000, 256, 1024, 4, 3
PAD = 1


def make_batch(batch: int, src_len: int, tgt_len: int, varied: bool) -> tuple[torch.Tensor, ...]:
    """(src, tgt_in, tgt_out) without special ids; with `varied`, lengths 0.5x..1.5x the given ones, right-padded.

    Shape:
        -> three (B, L) int64 tensors; src is (B, 1.5 * src_len) when varied
    """
    gen = torch.Generator().manual_seed(0)
    if not varied:
        return tuple(torch.randint(4, VOCAB, (batch, n), generator=gen) for n in (src_len, tgt_len, tgt_len))
    out = []
    for n in (src_len, tgt_len):
        lengths = torch.randint(n // 2, n + n // 2 + 1, (batch, 1), generator=gen)
        tokens = torch.randint(4, VOCAB, (batch, int(lengths.max())), generator=gen)
        out.append(tokens.masked_fill(torch.arange(tokens.size(1)) >= lengths, PAD))
    src, tgt_in = out
    tgt_out = torch.randint(4, VOCAB, tgt_in.shape, generator=gen).masked_fill(tgt_in.eq(PAD), PAD)
    return src, tgt_in, tgt_out


def reference_step(bf16: bool, batch: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    """The probe's nn.Transformer training step (embeddings shared by source and target, a biased output layer),
    with key padding masks and ignore_index when the batch has padding."""
    torch.manual_seed(0)
    src, tgt_in, tgt_out = batch
    emb = nn.Embedding(VOCAB, DIM)
    model = nn.Transformer(DIM, HEADS, LAYERS, LAYERS, FFN, 0.1, batch_first=True)
    out = nn.Linear(DIM, VOCAB)
    opt = torch.optim.AdamW([*emb.parameters(), *model.parameters(), *out.parameters()], lr=1e-4)
    mask = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1))
    src_pad, tgt_pad = None, None
    if bool(src.eq(PAD).any()):  # padding masks, all boolean (torch warns when float and bool masks are mixed)
        src_pad, tgt_pad, mask = src.eq(PAD), tgt_in.eq(PAD), mask.isinf()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = model(emb(src), emb(tgt_in), tgt_mask=mask, tgt_is_causal=True, src_key_padding_mask=src_pad,
                           tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
            loss = F.cross_entropy(out(hidden).float().view(-1, VOCAB), tgt_out.view(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def our_step(bf16: bool, batch: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    """Our `transformer_small` (shared embeddings, fairseq's dropouts) as training runs it: `logits_for_loss` with
    `projected=True`, then the criterion (here `cross_entropy`, the same loss as the reference step's)."""
    torch.manual_seed(0)
    src, tgt_in, tgt_out = batch
    name, overrides = ARCHS.get("transformer_small")()
    model_cls = MODELS.get(name)
    cfg = from_dict(model_cls.Config, {**overrides, "share_all_embeddings": True})
    model = model_cls.build(cfg, VOCAB, VOCAB, PAD).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    keep = tgt_out.ne(PAD)
    criterion = CRITERIA.get("cross_entropy")(CRITERIA.get("cross_entropy").Config())
    ntokens = int(keep.sum())

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # the training path: batch_loss's
            logits = model.logits_for_loss(src, tgt_in, keep, projected=True)
        loss = criterion(logits, tgt_out[keep])[0] / ntokens
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def time_steps(step: Callable[[], None], steps: int) -> float:
    """Seconds per step, after one warm-up step."""
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best is reported")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=110)
    parser.add_argument("--src-len", type=int, default=32)
    parser.add_argument("--tgt-len", type=int, default=32)
    parser.add_argument("--varied-lengths", action="store_true",
                        help="lengths 0.5x..1.5x --src-len/--tgt-len, padded (counts only real target tokens)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch} x ({args.src_len}, {args.tgt_len})")
    batch = make_batch(args.batch, args.src_len, args.tgt_len, args.varied_lengths)
    tokens = int(batch[2].ne(PAD).sum())
    print(f"{tokens} target tokens a batch, {int(batch[0].ne(PAD).sum())} source tokens")
    for precision in args.precision:
        bf16 = precision == "bf16"
        steps = {"nn.Transformer": reference_step(bf16, batch), "seq2seq_cli": our_step(bf16, batch)}
        best = {name: float("inf") for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                best[name] = min(best[name], time_steps(step, args.steps))
        ref, ours = tokens / best["nn.Transformer"], tokens / best["seq2seq_cli"]
        print(f"{precision}: nn.Transformer {ref:.0f} tgt tok/s | seq2seq_cli {ours:.0f} tgt tok/s | "
              f"ratio {ours / ref:.2f}")


if __name__ == "__main__":
    main()
