"""Training throughput on the reference workload, beside the calibration probe, in one run.

Runs `seq2seq train` for a few updates per setting (interleaved rounds, so machine noise hits every setting alike)
and reports the median steady-state wps (target tokens per second, counted like fairseq's wps) from train.log,
skipping the first logged interval (warm-up). Run the probe in the same session:
`python ../shared/bench/probe.py` and compare ratios, not absolute figures.

Usage:
    python benchmarks/train_speed.py DATA_BIN [--updates 40] [--rounds 2] [--precision fp32 bf16]
DATA_BIN is the reference DATA_DIR: the Bible corpus preprocessed with a joined BPE of 8,000 (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REFERENCE_FLAGS = [
    "--arch", "transformer_small", "--share-all-embeddings", "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)",
    "--lr", "7e-4", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "1000",
    "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--max-tokens", "4096",
    "--threads", "2", "--seed", "1", "--no-save", "--disable-validation", "--no-progress",
]


def one_run(data_bin: str, precision: str, updates: int) -> tuple[float, int]:
    """Median wps of the logged intervals after the first, and the peak RSS (KiB) of the run."""
    with tempfile.TemporaryDirectory() as save_dir:
        cmd = [sys.executable, "-m", "seq2seq_cli", "train", data_bin, *REFERENCE_FLAGS, "--precision", precision,
               "--max-update", str(updates), "--log-interval", "10", "--save-dir", save_dir]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, stderr = proc.communicate()
        peak_kib = _children_peak()
        if proc.returncode != 0:
            raise SystemExit(f"train failed:\n{stderr[-2000:]}")
        records = [json.loads(line) for line in (Path(save_dir) / "train.log").read_text().splitlines()]
        wps = [r["wps"] for r in records if r.get("tag") == "train_inner"][1:]
        return statistics.median(wps), peak_kib


def _children_peak() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_bin")
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    results: dict[str, list[float]] = {p: [] for p in args.precision}
    for _ in range(args.rounds):
        for precision in args.precision:
            wps, _peak = one_run(args.data_bin, precision, args.updates)
            results[precision].append(wps)
            print(f"{precision}: {wps:.0f} target tok/s", file=sys.stderr)
    for precision, values in results.items():
        print(f"{precision}: median {statistics.median(values):.0f} target tok/s over {len(values)} runs "
              f"(peak RSS of all runs so far: {_children_peak() / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
