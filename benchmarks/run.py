#!/usr/bin/env python3
"""Benchmark xparse-convert's writers against a bare-parse floor and a load-everything baseline.

For every generated input (``--pages`` x ``--variants``) every task runs ``--runs`` times,
interleaved round-robin (run 1 of every task, then run 2 of every task, ...), each run in a fresh
subprocess; the table reports medians, because this machine's speed drifts by up to 1.7x.

Tasks
    ``floor``           a bare ``ijson.items`` loop over the element list: the least a streaming
                        converter has to do.
    ``naive``           ``orjson.loads`` of the whole file, then a loop over ``data.elements``.
    ``baseline:<fmt>``  the function ``BASELINES[<fmt>]`` (a load-everything converter to that
                        format), for each format asked for that has one.
    ``<fmt>``           ``xparse_convert.convert(path, to=<fmt>, out_dir=<tmp>)``.

Peak RSS is the child's ``VmHWM`` (``/proc/self/status``), not ``ru_maxrss``: on Linux a child
started by ``subprocess`` (vfork + exec) inherits its parent's ``ru_maxrss`` high-water mark, so
``ru_maxrss`` would report the benchmark driver's own peak for every small task. ``VmHWM``
belongs to the address space that ``exec`` creates, so it is per run.

    python benchmarks/run.py                 # 100 and 1000 pages, 3 variants, jsonl and md
    python benchmarks/run.py --quick         # 100 pages, 1 run: a smoke run
    python benchmarks/run.py --formats jsonl,md,docx --runs 5 --json results.json

See benchmarks/README.md for the columns and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_WORKDIR = HERE / "out"
VARIANTS: dict[str, dict[str, bool]] = {
    "plain": {"images": False, "char_details": False},
    "images": {"images": True, "char_details": False},
    "char_details": {"images": False, "char_details": True},
}
ELEMENTS_PREFIX = "data.elements.item"
BUF_SIZE = 1 << 20
WORKER_FLAG = "--_worker"
RESULT_MARK = "@@bench-result@@ "

# The targets the project holds itself to (see README.md).
TARGET_FORMAT, TARGET_VARIANT, TARGET_PAGES = "jsonl", "char_details", 1000
TARGET_RSS_MB = 150.0
TARGET_FLOOR_RATIO = 1.5
FLAT_TOLERANCE = 1.25  # "flat": peak RSS at the largest input at most this times the smallest


# -- the work each task does (runs inside the worker subprocess) ----------------------------
def task_floor(path: str, out_dir: str) -> dict[str, Any]:
    """The floor: a bare C-backend ijson loop over the element list, nothing built or written."""
    import ijson

    count = 0
    with open(path, "rb") as f:
        for _ in ijson.items(f, ELEMENTS_PREFIX, use_float=True, buf_size=BUF_SIZE):
            count += 1
    return {"elements": count}


def task_naive(path: str, out_dir: str) -> dict[str, Any]:
    """Load everything: ``orjson.loads`` of the whole file, then a loop over the elements."""
    import orjson

    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    count = 0
    for _ in data["data"]["elements"]:
        count += 1
    return {"elements": count}


def baseline_jsonl(path: str, out_dir: str) -> dict[str, Any]:
    """A naive JSONL converter: load everything, write each element as one orjson line."""
    import orjson

    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    count = 0
    with open(Path(out_dir) / (Path(path).stem + ".jsonl"), "wb", buffering=BUF_SIZE) as out:
        for element in data["data"]["elements"]:
            out.write(orjson.dumps(element) + b"\n")
            count += 1
    return {"elements": count}


# A load-everything (or third-party) converter per output format: ``fn(path, out_dir)``, writing
# its output into ``out_dir`` and returning a dict of extra facts (may be empty). Each one gets a
# ``baseline:<fmt>`` row whenever <fmt> is benchmarked, and that format's "ratio to naive" is
# measured against it instead of the plain ``naive`` task. Add DOCX/XLSX/HTML ones here.
BASELINES: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "jsonl": baseline_jsonl,
}


def task_convert(fmt: str, path: str, out_dir: str) -> dict[str, Any]:
    """The package under test: one ``convert`` call to one format."""
    import xparse_convert

    report = xparse_convert.convert(path, to=fmt, out_dir=out_dir)
    return {"elements": report.elements, "pages": report.pages,
            "warning_count": report.warning_count, "warnings": report.warnings[:5]}


def _peak_rss_kb() -> tuple[int, str]:
    """This process's peak resident set in KiB and where it came from (see module docstring)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), "VmHWM"
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (maxrss // 1024 if sys.platform == "darwin" else maxrss), "ru_maxrss"


def _dir_bytes(folder: str) -> int:
    """Total size of the files below ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def worker(task: str, path: str, out_dir: str) -> int:
    """Run one task once (in a fresh interpreter), print its measurements as one JSON line.

    Imports happen before the clock starts: the time is the work, not interpreter start-up.
    """
    import ijson  # noqa: F401  (imported up front for every task, like the converter does)
    import orjson  # noqa: F401

    work: Callable[[str, str], dict[str, Any]]
    if task == "floor":
        work = task_floor
    elif task == "naive":
        work = task_naive
    elif task.startswith("baseline:"):
        work = BASELINES[task.partition(":")[2]]
    else:
        import xparse_convert  # noqa: F401

        def work(p: str, o: str) -> dict[str, Any]:
            return task_convert(task, p, o)
    started = time.perf_counter()
    facts = work(path, out_dir)
    seconds = time.perf_counter() - started
    peak_kb, peak_source = _peak_rss_kb()
    result = {"seconds": seconds, "peak_rss_kb": peak_kb, "peak_rss_source": peak_source,
              "output_bytes": _dir_bytes(out_dir), **facts}
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    return 0


# -- the driver ------------------------------------------------------------------------------
@dataclass
class Input:
    """One generated input file."""

    path: Path
    pages: int
    variant: str
    bytes: int = 0

    @property
    def mb(self) -> float:
        return self.bytes / 1e6


@dataclass
class Row:
    """Every run of one task on one input, and their medians."""

    input: str
    variant: str
    pages: int
    input_bytes: int
    task: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def _ok(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if "seconds" in r]

    @property
    def wall(self) -> float | None:
        ok = self._ok()
        return statistics.median(r["seconds"] for r in ok) if ok else None

    @property
    def rss_mb(self) -> float | None:
        ok = self._ok()
        return statistics.median(r["peak_rss_kb"] for r in ok) / 1024 if ok else None

    @property
    def mb_per_s(self) -> float | None:
        wall = self.wall
        return self.input_bytes / 1e6 / wall if wall else None

    @property
    def pages_per_s(self) -> float | None:
        wall = self.wall
        return self.pages / wall if wall else None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import ijson
    import orjson

    try:
        import xparse_convert
        version = xparse_convert.__version__
    except Exception as exc:  # the package may be mid-edit; the table will show the errors
        version = f"import failed: {exc}"
    cpu_model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu_model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                              if line.startswith("model name")), "")
    except OSError:
        pass
    memory_gb = None
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_gb": round(memory_gb, 1) if memory_gb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "ijson": getattr(ijson, "__version__", "?"),
        "ijson_backend": ijson.backend,
        "orjson": orjson.__version__,
        "xparse_convert": version,
    }


def prepare_input(workdir: Path, pages: int, variant: str) -> Input:
    """The generated input for ``pages`` x ``variant``, generated only when missing."""
    sys.path.insert(0, str(HERE))
    from generate import generate  # the deterministic generator beside this script

    path = workdir / f"bench_{pages}p_{variant}.json"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        partial = path.with_name(path.name + ".tmp")
        generate(partial, pages=pages, seed=0, **VARIANTS[variant])
        partial.replace(path)
        print(f"  {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    return Input(path, pages, variant, path.stat().st_size)


def warm_page_cache(path: Path) -> None:
    """Read the file once so that run 1 of the first task does not pay for a cold cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def run_once(task: str, item: Input, workdir: Path, timeout: float) -> dict[str, Any]:
    """One run of ``task`` on ``item`` in a fresh subprocess; its outputs are deleted after."""
    runs_dir = workdir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    out_dir = tempfile.mkdtemp(prefix=f"{task.replace(':', '-')}-", dir=runs_dir)
    command = [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG, task,
               str(item.path), out_dir]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=str(HERE))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK):])
            if proc.stderr.strip():
                result["stderr"] = proc.stderr.strip()[-2000:]
            return result
    tail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
    return {"error": f"exit code {proc.returncode}: {tail}"}


def task_list(formats: Sequence[str]) -> list[str]:
    """The tasks of one input, in run order."""
    tasks = ["floor", "naive"]
    tasks += [f"baseline:{fmt}" for fmt in formats if fmt in BASELINES]
    tasks += list(formats)
    return tasks


def benchmark_input(item: Input, formats: Sequence[str], runs: int, workdir: Path,
                    timeout: float) -> list[Row]:
    """Every task on one input, ``runs`` rounds, round-robin."""
    tasks = task_list(formats)
    rows = {t: Row(item.path.name, item.variant, item.pages, item.bytes, t) for t in tasks}
    warm_page_cache(item.path)
    for number in range(1, runs + 1):
        for task in tasks:
            result = run_once(task, item, workdir, timeout)
            result["run"] = number
            rows[task].runs.append(result)
            if "error" in result:
                rows[task].errors.append(result["error"])
                note = "ERROR " + result["error"].splitlines()[-1][:100]
            else:
                note = f"{result['seconds']:7.2f} s {result['peak_rss_kb'] / 1024:7.1f} MB"
            print(f"  {item.path.name:<32} run {number}/{runs} {task:<16} {note}",
                  file=sys.stderr, flush=True)
    return list(rows.values())


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(headers: Sequence[str], lines: Sequence[Sequence[str]], left: int = 0) -> str:
    """Aligned plain text: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h)
              for i, h in enumerate(headers)]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(headers), rule, *(render(r) for r in lines)])


def naive_reference(row: Row, by_task: dict[str, Row]) -> Row | None:
    """What a row's "ratio to naive" divides by: its format's baseline, else ``naive``."""
    baseline = by_task.get(f"baseline:{row.task}")
    return baseline if baseline is not None and baseline.wall else by_task.get("naive")


def ratios(rows: Sequence[Row]) -> dict[int, tuple[float | None, float | None]]:
    """(ratio to floor, ratio to naive) of every row, keyed by ``id(row)``."""
    out: dict[int, tuple[float | None, float | None]] = {}
    groups: dict[str, dict[str, Row]] = {}
    for row in rows:
        groups.setdefault(row.input, {})[row.task] = row
    for row in rows:
        by_task = groups[row.input]
        floor, naive = by_task.get("floor"), naive_reference(row, by_task)
        to_floor = row.wall / floor.wall if row.wall and floor and floor.wall else None
        to_naive = row.wall / naive.wall if row.wall and naive and naive.wall else None
        out[id(row)] = (to_floor, to_naive)
    return out


def results_table(rows: Sequence[Row]) -> str:
    """The main table."""
    headers = ["input", "variant", "pages", "input MB", "task", "wall s", "peak RSS MB",
               "MB/s", "pages/s", "x floor", "x naive"]
    rat = ratios(rows)
    lines = []
    for row in rows:
        to_floor, to_naive = rat[id(row)]
        failed = not row.wall
        lines.append([
            row.input, row.variant, str(row.pages), f"{row.input_bytes / 1e6:.1f}", row.task,
            "ERROR" if failed else _fmt(row.wall, 2), _fmt(row.rss_mb, 1),
            _fmt(row.mb_per_s, 1), _fmt(row.pages_per_s, 1),
            _fmt(to_floor, 2), _fmt(to_naive, 2),
        ])
    return _table(headers, lines, left=2)


def flatness(rows: Sequence[Row]) -> dict[str, dict[str, float | None]]:
    """Per task and variant: median peak RSS at the most pages / at the fewest pages."""
    pages = sorted({r.pages for r in rows})
    out: dict[str, dict[str, float | None]] = {}
    if len(pages) < 2:
        return out
    index = {(r.task, r.variant, r.pages): r for r in rows}
    for task in dict.fromkeys(r.task for r in rows):
        for variant in dict.fromkeys(r.variant for r in rows):
            small, large = index.get((task, variant, pages[0])), index.get((task, variant,
                                                                             pages[-1]))
            if small is None or large is None:
                continue
            value = (large.rss_mb / small.rss_mb
                     if large.rss_mb and small.rss_mb else None)
            out.setdefault(task, {})[variant] = value
    return out


def flatness_table(flat: dict[str, dict[str, float | None]], low: int, high: int) -> str:
    """Memory flatness, one line per task, one column per variant."""
    variants = list(dict.fromkeys(v for per in flat.values() for v in per))
    lines = [[task, *(_fmt(per.get(v), 2) for v in variants)] for task, per in flat.items()]
    return (f"Memory flatness: peak RSS at {high} pages / peak RSS at {low} pages "
            f"(1.00 = flat; the whole-file tasks grow with the input)\n"
            + _table(["task", *variants], lines, left=1))


def target_lines(rows: Sequence[Row], flat: dict[str, dict[str, float | None]]) -> list[str]:
    """PASS/FAIL against the project's targets, for what this run measured."""
    out: list[str] = []
    rat = ratios(rows)
    target = next((r for r in rows if r.task == TARGET_FORMAT and r.variant == TARGET_VARIANT
                   and r.pages == TARGET_PAGES), None)
    if target is not None and target.wall:
        rss, to_floor = target.rss_mb or 0.0, rat[id(target)][0]
        out.append(f"{'PASS' if rss < TARGET_RSS_MB else 'FAIL'}  {TARGET_FORMAT} "
                   f"{TARGET_PAGES}p {TARGET_VARIANT}: peak RSS {rss:.1f} MB "
                   f"(target < {TARGET_RSS_MB:.0f} MB)")
        if to_floor is not None:
            out.append(f"{'PASS' if to_floor <= TARGET_FLOOR_RATIO else 'FAIL'}  "
                       f"{TARGET_FORMAT} {TARGET_PAGES}p {TARGET_VARIANT}: wall "
                       f"{to_floor:.2f}x floor (target <= {TARGET_FLOOR_RATIO}x)")
    for task, per in flat.items():
        if task in ("floor", "naive") or task.startswith("baseline:"):
            continue
        for variant, value in per.items():
            if value is not None:
                out.append(f"{'PASS' if value <= FLAT_TOLERANCE else 'FAIL'}  {task} "
                           f"{variant}: memory {value:.2f}x from fewest to most pages "
                           f"(flat: <= {FLAT_TOLERANCE}x)")
    return out


def notes(rows: Sequence[Row]) -> list[str]:
    """Errors, warnings and stray stderr output worth reading, one entry per row."""
    out: list[str] = []
    for row in rows:
        where = f"{row.input} {row.task}"
        if row.errors:
            out.append(f"{where}: {len(row.errors)} failed run(s): {row.errors[0][-1500:]}")
        ok = [r for r in row.runs if "seconds" in r]
        if ok and ok[0].get("warning_count"):
            out.append(f"{where}: {ok[0]['warning_count']} warning(s): "
                       + "; ".join(ok[0].get("warnings", [])))
        stderr = next((r["stderr"] for r in ok if r.get("stderr")), None)
        if stderr:
            out.append(f"{where}: stderr: {stderr[-500:]}")
        counts = {r.get("elements") for r in ok}
        if len(counts) > 1:
            out.append(f"{where}: element counts differ between runs: {sorted(counts)}")
    return out


def resolve_formats(names: str) -> list[str]:
    """Canonical writer names (aliases resolved); exits with the choices on an unknown name."""
    from xparse_convert.errors import UsageError
    from xparse_convert.writers import get

    formats: list[str] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        try:
            canonical = get(name).name
        except UsageError as exc:
            raise SystemExit(f"run.py: {getattr(exc, 'message', exc)}") from None
        if canonical not in formats:
            formats.append(canonical)
    return formats


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=_int_list, default=[100, 1000],
                        help="page counts of the generated inputs (default 100,1000)")
    parser.add_argument("--variants", default="plain,images,char_details",
                        help=f"input variants, from {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--formats", default="jsonl,md",
                        help="writer formats, any registered name (default jsonl,md)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per task, interleaved round-robin (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 100 pages only, 1 run")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="cache of generated inputs (default benchmarks/out/)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds before one run is given up (default 1800)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.pages, args.runs = [100], 1
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    args.variants = variants
    if args.runs < 1 or not args.pages or min(args.pages) < 1:
        parser.error("--runs and --pages must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Generate what is missing, run everything, print the tables (and save JSON if asked)."""
    args = parse_args(argv)
    formats = resolve_formats(args.formats)
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    header = (f"machine: {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable) "
              f"{machine['cpu_model']}, {machine['memory_gb']} GB RAM; "
              f"Python {machine['python']}; ijson {machine['ijson']} backend "
              f"{machine['ijson_backend']}; orjson {machine['orjson']}; "
              f"xparse_convert {machine['xparse_convert']}")
    print(header, flush=True)
    print(f"runs: {args.runs} per task, round-robin, medians; formats: {', '.join(formats)}",
          flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    for pages in args.pages:
        for variant in args.variants:
            item = prepare_input(workdir, pages, variant)
            rows += benchmark_input(item, formats, args.runs, workdir, args.timeout)
    shutil.rmtree(workdir / "runs", ignore_errors=True)
    flat = flatness(rows)
    print()
    print(results_table(rows))
    if flat:
        print()
        print(flatness_table(flat, min(args.pages), max(args.pages)))
    checks = target_lines(rows, flat)
    if checks:
        print()
        print("Targets:")
        print("\n".join("  " + c for c in checks))
    remarks = notes(rows)
    if remarks:
        print()
        print("Notes:")
        print("\n".join("  " + r for r in remarks))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        rat = ratios(rows)
        payload = {
            "machine": machine,
            "settings": {"pages": args.pages, "variants": args.variants, "formats": formats,
                         "runs": args.runs, "workdir": str(workdir)},
            "results": [
                {**asdict(row), "wall_s": row.wall,
                 "peak_rss_mb": row.rss_mb, "mb_per_s": row.mb_per_s,
                 "pages_per_s": row.pages_per_s, "ratio_to_floor": rat[id(row)][0],
                 "ratio_to_naive": rat[id(row)][1]}
                for row in rows
            ],
            "flatness": flat,
            "targets": checks,
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        print(f"results saved to {args.json}")
    return 1 if any(row.errors for row in rows) else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == WORKER_FLAG:
        sys.exit(worker(*sys.argv[2:5]))
    sys.exit(main())
