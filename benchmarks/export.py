"""PyTorch decoding vs the CTranslate2 export (float32 and int8), side by side in one run.

Usage:
    python benchmarks/export.py --path CHECKPOINT --input test.es --reference test.en
        [--limit N] [--threads 2] [--beam 5] [--batch-size 64] [--rounds 1] [--max-len-b 200]

The checkpoint is exported twice (float32, int8) into a temporary folder with the same converter as
`seq2seq export`; then each engine translates the input through the same `Translator` interface as
`seq2seq generate --path CKPT|DIR` (CTranslate2's time includes the teacher-forced pass that gives positional
scores), with beam 5 and batches of 64 sentences by default, the three engines interleaved round by round. Reported
per engine: sentences/s (best round; model load and tokenization excluded), BLEU (sacreBLEU defaults, detokenized,
against the raw reference), and how many outputs equal PyTorch's (identical, near-ties within 1e-4, other).
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from seq2seq_cli.decoding.config import SearchConfig, build_strategy
from seq2seq_cli.decoding.ct2_backend import CT2Translator
from seq2seq_cli.decoding.translator import Translator
from seq2seq_cli.export.parity import NEAR_TIE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help="checkpoint to export")
    parser.add_argument("--input", required=True, type=Path, help="source text, one sentence a line")
    parser.add_argument("--reference", type=Path, help="reference text, for BLEU")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the best time is reported")
    parser.add_argument("--max-len-b", type=int, default=SearchConfig.max_len_b,
                        help="output length limit (as generate's flag); lower it to time an untrained model")
    return parser.parse_args()


def main() -> None:
    import ctranslate2

    from seq2seq_cli.checkpoint import load_model
    from seq2seq_cli.export.converter import write_model

    args = parse_args()
    torch.set_num_threads(args.threads)
    lines = args.input.read_text(encoding="utf-8").splitlines()[: args.limit]
    refs = args.reference.read_text(encoding="utf-8").splitlines()[: args.limit] if args.reference else None
    loaded = load_model(args.path, "cpu")
    engines = {"pytorch fp32": Translator([loaded.model], loaded.src_tokenizer, loaded.tgt_tokenizer,
                                          torch.device("cpu"), state=loaded.state)}
    with tempfile.TemporaryDirectory() as tmp:
        for quantization in (None, "int8"):
            folder = Path(tmp) / (quantization or "float32")
            write_model(loaded, folder, quantization)
            engines[f"ctranslate2 {quantization or 'float32'}"] = CT2Translator.load(folder, "cpu",
                                                                                     threads=args.threads)
        src_ids = engines["pytorch fp32"].encode(lines)
        strategy, cfg = build_strategy("beam", {"beam": args.beam}), SearchConfig(max_len_b=args.max_len_b)
        print(f"# seq2seq_cli benchmark: {len(lines)} sentences, beam {args.beam}, batch {args.batch_size}, "
              f"max_len_b {args.max_len_b}, "
              f"{args.threads} threads; torch {torch.__version__}, ctranslate2 {ctranslate2.__version__}, "
              f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        best: dict[str, float] = {}
        hyps: dict[str, list] = {}
        for _ in range(args.rounds):
            for name, engine in engines.items():
                start = time.perf_counter()
                hyps[name] = engine.generate_ids(src_ids, strategy, cfg, batch_size=args.batch_size)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    ours = hyps["pytorch fp32"]
    for name, engine in engines.items():
        result = {"engine": name, "sentences": len(lines), "seconds": round(best[name], 2),
                  "sent_per_s": round(len(lines) / best[name], 2)}
        if name != "pytorch fp32":
            result["speedup"] = round(best["pytorch fp32"] / best[name], 2)
        if refs is not None:
            from sacrebleu.metrics import BLEU

            text = engine.detokenize([h[0].tokens for h in hyps[name]])
            result["bleu"] = round(BLEU().corpus_score(text, [refs]).score, 2)
        same = sum(a[0].tokens == b[0].tokens for a, b in zip(ours, hyps[name]))
        ties = sum(a[0].tokens != b[0].tokens and abs(a[0].score - b[0].score) <= NEAR_TIE
                   for a, b in zip(ours, hyps[name]))
        result.update(identical_to_pytorch=same, near_ties=ties, other=len(lines) - same - ties)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
