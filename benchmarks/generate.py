"""Decoding speed: translate a test set with a checkpoint, report sentences/s and output tokens/s (model load and
tokenization excluded), for beam search (beam 5, batch 64: the reference workload) and greedy search.

Usage:
    python benchmarks/generate.py --path CHECKPOINT --input test.es [--reference test.en] [--threads 2]
        [--runs beam:5:64 greedy:1:64] [--limit N] [--precision bf16] [--max-len-a A --max-len-b B]
        [--hyps-out DIR]

Each run is `strategy:beam:batch_size`. It goes through the same `Translator` as `seq2seq generate`, so the figures
are the CLI's minus process start-up and checkpoint loading. With --reference, BLEU (sacreBLEU defaults) is printed
too, a check that a speed-up did not change the output; --hyps-out writes each run's hypotheses to
DIR/STRATEGY-BEAM-BATCH.PRECISION.txt, to `cmp` against another version of the code (run this script with that
version on PYTHONPATH).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from seq2seq_cli.decoding.config import SearchConfig, build_strategy
from seq2seq_cli.decoding.translator import Translator


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help="checkpoint (several separated by ':' = ensemble)")
    parser.add_argument("--input", required=True, type=Path, help="source text, one sentence a line")
    parser.add_argument("--reference", type=Path, help="reference text, for BLEU")
    parser.add_argument("--runs", nargs="+", default=["beam:5:64", "greedy:1:64"], help="strategy:beam:batch_size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"])
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    parser.add_argument("--max-len-a", type=float, default=SearchConfig.max_len_a,
                        help="as generate's flag; with --max-len-b, bounds an untrained model's outputs")
    parser.add_argument("--max-len-b", type=int, default=SearchConfig.max_len_b, help="as generate's flag")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.add_argument("--hyps-out", type=Path, help="write each run's hypotheses (one per line) into this folder")
    return parser.parse_args()


def run_once(translator: Translator, src_ids: list[list[int]], spec: str, search: SearchConfig) -> dict:
    strategy, beam, batch = spec.split(":")
    options = {"beam": int(beam)} if strategy != "greedy" else {}
    strat = build_strategy(strategy, options)
    start, cpu_start = time.perf_counter(), time.process_time()
    hyps = translator.generate_ids(src_ids, strat, search, batch_size=int(batch))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    out_tokens = sum(len(h[0].tokens) + 1 for h in hyps)  # EOS counted, as fairseq's tok/s
    return {"run": spec, "sentences": len(src_ids), "seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
            "sent_per_s": round(len(src_ids) / seconds, 1), "tok_per_s": round(out_tokens / seconds, 1),
            "hyps": [h[0].tokens for h in hyps]}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator.load(args.path, "cpu", args.precision)
    lines = args.input.read_text(encoding="utf-8").splitlines()[: args.limit]
    src_ids = translator.encode(lines)
    refs = args.reference.read_text(encoding="utf-8").splitlines()[: args.limit] if args.reference else None
    print(f"# torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"{len(lines)} sentences, precision {args.precision}")
    for spec in args.runs:
        result = run_once(translator, src_ids, spec, SearchConfig(max_len_a=args.max_len_a, max_len_b=args.max_len_b))
        hyps = translator.detokenize(result.pop("hyps"))
        if args.hyps_out is not None:
            args.hyps_out.mkdir(parents=True, exist_ok=True)
            name = f"{spec.replace(':', '-')}.{args.precision}.txt"
            (args.hyps_out / name).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        if refs is not None:
            from sacrebleu.metrics import BLEU

            result["bleu"] = round(BLEU().corpus_score(hyps, [refs]).score, 2)
        print(json.dumps(result) if args.json else "  ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
