"""Batch benchmark: many generated results converted to every format with ``--jobs 1`` and
``--jobs 2``; prints files/s, pages/s, the speed-up (ideal on 2 cores: 2x) and the per-file
overhead of a batch (a 1-page result, end to end).

    python benchmarks/batch.py [--files 40] [--pages 50] [--runs 3] [--formats ...]

Inputs are generated once into ``benchmarks/out/batch-<files>x<pages>/`` (git-ignored).
Runs alternate between the cases (the machine drifts); medians are reported, with the CPU
seconds of each run (the command and every process below it) and the load average, since
on a shared machine the wall-clock speed-up is only as good as the cores that were free.
"""

from __future__ import annotations

import argparse
import os
import resource
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

TARGET = 1.8  # --jobs 2 over --jobs 1 on 2 cores


def prepare(folder: Path, files: int, pages: int) -> None:
    """Generate ``files`` results of ``pages`` pages (different seeds) unless present."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        path = folder / f"result-{i:04d}.json"
        if not path.exists():
            generate(path, pages=pages, images=i % 2 == 0, seed=i)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_batch(inputs: list[Path], formats: str, jobs: int, scratch: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one CLI batch run into a fresh output folder (CPU: the
    command and every process below it, each reaped by its parent)."""
    out = Path(tempfile.mkdtemp(prefix="batch-out-", dir=scratch))
    try:
        cpu = _children_cpu()
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", *map(str, inputs),
                               "--to", formats, "-o", str(out), "--jobs", str(jobs), "--quiet"],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"batch run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return seconds, _children_cpu() - cpu
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--overhead-files", type=int, default=40,
                        help="1-page results in the batch that measures the per-file overhead")
    parser.add_argument("--formats", default="docx,xlsx,html,jsonl,md")
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    args = parser.parse_args()
    folder = args.workdir / f"batch-{args.files}x{args.pages}"
    small_folder = args.workdir / f"batch-{args.overhead_files}x1"
    prepare(folder, args.files, args.pages)
    prepare(small_folder, args.overhead_files, 1)
    inputs = sorted(folder.glob("result-*.json"))[:args.files]
    small = sorted(small_folder.glob("result-*.json"))[:args.overhead_files]
    size = sum(p.stat().st_size for p in inputs) / 1e6
    print(f"machine: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
          f"load average {_load()}")
    print(f"input: {args.files} results x {args.pages} pages ({size:.0f} MB), formats "
          f"{args.formats}, {args.runs} runs each, interleaved, medians")
    cases = {"jobs 1": (inputs, 1), "jobs 2": (inputs, 2),
             "1 x 1 page": (small[:1], 1), f"{len(small)} x 1 page": (small, 1)}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (files, jobs) in cases.items():
            times[name].append(run_batch(files, args.formats, jobs, args.workdir))
    print(f"load average after: {_load()}")

    print(f"\n{'case':>12}  {'wall s':>7}  {'CPU s':>7}  {'cores':>5}  {'files/s':>7}  "
          f"{'pages/s':>7}  runs (wall s)")
    wall: dict[str, float] = {}
    for name in ("jobs 1", "jobs 2"):
        values = times[name]
        wall[name] = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        runs = ", ".join(f"{w:.1f}" for w, _ in values)
        print(f"{name:>12}  {wall[name]:>7.2f}  {cpu:>7.2f}  {cpu / wall[name]:>5.2f}  "
              f"{args.files / wall[name]:>7.1f}  {args.files * args.pages / wall[name]:>7.0f}"
              f"  {runs}")
    one, many = (statistics.median(w for w, _ in times[n]) for n in list(cases)[2:])
    one_cpu, many_cpu = (statistics.median(c for _, c in times[n]) for n in list(cases)[2:])
    per_file = (many - one) / max(len(small) - 1, 1)
    per_file_cpu = (many_cpu - one_cpu) / max(len(small) - 1, 1)
    print(f"\nper-file overhead (a 1-page result, end to end in a --jobs 1 batch of "
          f"{len(small)} minus a batch of 1): {per_file * 1000:.0f} ms wall, "
          f"{per_file_cpu * 1000:.0f} ms CPU; a batch's fixed start: {one:.2f} s wall")
    # what two free cores would give, from CPU seconds (which the other load barely moves):
    # the batch's fixed start runs alone, the rest splits over two workers (an upper bound:
    # the last file can leave one core idle)
    cpu1, cpu2 = (statistics.median(c for _, c in times[n]) for n in ("jobs 1", "jobs 2"))
    bound = cpu1 / (one_cpu + (cpu2 - one_cpu) / 2)
    print(f"on two free cores, from CPU seconds: at most {bound:.2f}x (fixed start "
          f"{one_cpu:.2f} s CPU)")
    speedup = wall["jobs 1"] / wall["jobs 2"]
    verdict = "PASS" if speedup >= TARGET else "FAIL"
    print(f"speed-up --jobs 2 over --jobs 1: {speedup:.2f}x (target >= {TARGET}x, ideal 2x): "
          f"{verdict}")
    return 0 if speedup >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
