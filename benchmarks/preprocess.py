"""Wall time and peak memory of `seq2seq preprocess`, each run in its own subprocess.

Measures, on the shared Bible corpus (es -> en, joint BPE of 8,000 tokens, --workers 2, train+valid+test):
- the corpus as is (1x) and its training set repeated N times (default 30; the files are generated in a temporary
  folder, never in the repository), to check that time grows linearly and memory stays bounded;
- a baseline in the same conditions: the bare Hugging Face `tokenizers` calls (train_from_iterator + encode_batch
  of the same text, same pipeline, same threads), so our overhead shows as a ratio measured side by side;
- the cost of `DataDir.verify()` (sha256 of every file) on the result.

Peak RSS and CPU time (user + system, all threads) come from os.wait4 on each child (its own maximum resident set),
wall time from the parent. CPU time is the figure least disturbed by other load on a shared machine.
Machines are shared and noisy: every configuration runs --runs times and the table shows the median and the minimum.

Usage: python benchmarks/preprocess.py [--data DIR] [--repeat 1 30] [--runs 3] [--workers 2] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bible-es-en"

BASELINE = r"""
import sys, os
from tokenizers import Tokenizer, Regex, normalizers, pre_tokenizers, decoders, models, trainers
prefix, out = sys.argv[1], sys.argv[2]
def lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n")
tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "),
                                       normalizers.Strip()])
tok.pre_tokenizer = pre_tokenizers.Metaspace()
tok.decoder = decoders.Sequence([decoders.Metaspace(), decoders.ByteFallback(), decoders.Fuse()])
trainer = trainers.BpeTrainer(vocab_size=8000 - 256, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                              show_progress=False)
tok.train_from_iterator((l for lang in ("es", "en") for l in lines(f"{prefix}/train.{lang}")), trainer)
n = 0
for split in ("train", "valid", "test"):
    for lang in ("es", "en"):
        chunk = []
        for line in lines(f"{prefix}/{split}.{lang}"):
            chunk.append(line)
            if len(chunk) == 20000:
                n += sum(len(e.ids) for e in tok.encode_batch(chunk, add_special_tokens=False))
                chunk = []
        n += sum(len(e.ids) for e in tok.encode_batch(chunk, add_special_tokens=False))
print(n)
"""


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds user+system) of one child process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # ru_maxrss is in KiB on Linux


def make_corpus(data: Path, repeat: int, folder: Path) -> Path:
    """data's splits, with train repeated `repeat` times (streamed copy; symlinks when repeat == 1)."""
    if repeat == 1:
        return data
    out = folder / f"bible-x{repeat}"
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        for lang in ("es", "en"):
            src, dst = data / f"{split}.{lang}", out / f"{split}.{lang}"
            if split != "train":
                shutil.copyfile(src, dst)
                continue
            with open(dst, "wb") as f:
                for _ in range(repeat):
                    with open(src, "rb") as s:
                        shutil.copyfileobj(s, f)
    return out


def preprocess_cmd(corpus: Path, dest: Path, workers: int) -> list[str]:
    seq2seq = str(Path(sys.executable).with_name("seq2seq"))
    return [seq2seq, "preprocess", "-s", "es", "-t", "en", "--trainpref", f"{corpus}/train", "--validpref",
            f"{corpus}/valid", "--testpref", f"{corpus}/test", "--destdir", str(dest), "--joined-dictionary",
            "--tokenizer", "bpe", "--vocab-size", "8000", "--workers", str(workers), "--force", "--no-progress"]


def measure(args: argparse.Namespace, tmp: Path) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    rows = []
    for repeat in args.repeat:
        corpus = make_corpus(args.data, repeat, tmp)
        pairs = sum(1 for _ in open(corpus / "train.es", "rb"))
        dest = tmp / f"bin-x{repeat}"
        kinds = {"seq2seq preprocess": preprocess_cmd(corpus, dest, args.workers)}
        if args.baseline:
            kinds["bare HF tokenizers"] = [sys.executable, "-c", BASELINE, str(corpus), str(dest)]
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in kinds}
        for _ in range(args.runs):  # interleaved, so that a burst of load on the shared machine hits both alike
            for name, cmd in kinds.items():
                child_env = dict(env, RAYON_NUM_THREADS=str(args.workers)) if name != "seq2seq preprocess" else env
                results[name].append(run_child(cmd, child_env))
        for name in kinds:
            walls, rss, cpu = ([r[i] for r in results[name]] for i in range(3))
            rows.append({"what": name, "repeat": repeat, "train_pairs": pairs,
                         "wall_median_s": statistics.median(walls), "wall_min_s": min(walls),
                         "cpu_median_s": statistics.median(cpu), "peak_rss_mib": max(rss)})
        rows[-len(kinds)]["verify_s"], rows[-len(kinds)]["data_dir_mib"] = verify_cost(dest)
    return rows


def verify_cost(dest: Path) -> tuple[float, float]:
    from seq2seq_cli.data.datadir import DataDir

    size = sum(p.stat().st_size for p in dest.iterdir()) / 2**20
    start = time.perf_counter()
    DataDir(dest).verify()
    return time.perf_counter() - start, size


def versions() -> dict[str, str]:
    import numpy
    import tokenizers

    import seq2seq_cli

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"date": time.strftime("%Y-%m-%d"), "seq2seq_cli": seq2seq_cli.__version__,
            "python": platform.python_version(),
            "tokenizers": tokenizers.__version__, "numpy": numpy.__version__, "cpu": cpu, "cores": str(os.cpu_count())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, nargs="+", default=[1, 30])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="s2s-bench-") as tmp:
        rows = measure(args, Path(tmp))
    info = versions()
    info["load average (1 min) before/after"] = f"{load_before:.2f}/{os.getloadavg()[0]:.2f}"
    if args.json:
        print(json.dumps({"versions": info, "rows": rows}, indent=2))
        return
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    print("\n| what | train pairs | wall median (s) | wall min (s) | CPU median (s) | peak RSS (MiB) | DATA_DIR (MiB) "
          "| verify (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        extra = f"{r['data_dir_mib']:.1f} | {r['verify_s']:.3f}" if "verify_s" in r else " | "
        print(f"| {r['what']} x{r['repeat']} | {r['train_pairs']:,} | {r['wall_median_s']:.2f} | {r['wall_min_s']:.2f} "
              f"| {r['cpu_median_s']:.2f} | {r['peak_rss_mib']:.0f} | {extra} |")


if __name__ == "__main__":
    main()
