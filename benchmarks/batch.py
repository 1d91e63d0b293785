"""Batch benchmark: many generated results converted to every format with ``--jobs 1`` and
``--jobs 2``; prints files/s, pages/s and the speed-up (ideal on 2 cores: 2x).

    python benchmarks/batch.py [--files 200] [--pages 50] [--runs 3] [--formats ...]

Inputs are generated once into ``benchmarks/out/batch-<files>x<pages>/`` (git-ignored).
Runs alternate between the job counts (the machine drifts); medians are reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402


def prepare(folder: Path, files: int, pages: int) -> None:
    """Generate ``files`` results of ``pages`` pages (different seeds) unless present."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        path = folder / f"result-{i:04d}.json"
        if not path.exists():
            generate(path, pages=pages, images=i % 2 == 0, seed=i)


def run_batch(inputs: Path, formats: str, jobs: int) -> float:
    """Wall seconds of one CLI batch run into a fresh output folder."""
    out = Path(tempfile.mkdtemp(prefix="batch-out-", dir=inputs.parent))
    try:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(inputs), "--to",
                               formats, "-o", str(out), "--jobs", str(jobs), "--quiet"],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"batch run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="docx,xlsx,html,jsonl,md")
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    args = parser.parse_args()
    inputs = args.workdir / f"batch-{args.files}x{args.pages}"
    prepare(inputs, args.files, args.pages)
    size = sum(p.stat().st_size for p in inputs.iterdir()) / 1e6
    print(f"machine: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print(f"input: {args.files} results x {args.pages} pages ({size:.0f} MB), formats "
          f"{args.formats}, {args.runs} runs each, alternating, medians")
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.runs):
        for jobs in (1, 2):
            times[jobs].append(run_batch(inputs, args.formats, jobs))
    print(f"\n{'jobs':>4}  {'wall s':>8}  {'files/s':>8}  {'pages/s':>8}  {'MB/s':>6}  runs")
    medians = {}
    for jobs, values in times.items():
        wall = medians[jobs] = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"{jobs:>4}  {wall:>8.1f}  {args.files / wall:>8.1f}  "
              f"{args.files * args.pages / wall:>8.0f}  {size / wall:>6.1f}  {runs}")
    speedup = medians[1] / medians[2]
    verdict = "PASS" if speedup >= 1.7 else "FAIL"
    print(f"\nspeed-up --jobs 2 over --jobs 1: {speedup:.2f}x (target >= 1.7x, ideal 2x): "
          f"{verdict}")
    return 0 if speedup >= 1.7 else 1


if __name__ == "__main__":
    sys.exit(main())
