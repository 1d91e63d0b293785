#!/usr/bin/env python3
"""Benchmark xparse-convert's writers against a bare-parse floor and a load-everything baseline.

For every generated input (``--pages`` x ``--variants``) every task runs ``--runs`` times,
interleaved round-robin (run 1 of every task, then run 2 of every task, ...), each run in a fresh
subprocess; the table reports medians, because this machine's speed drifts by up to 1.7x.

Tasks
    ``floor``           a bare ``ijson.items`` loop over the element list: the least a streaming
                        converter has to do.
    ``floor-nomd``      the same loop over a copy of the input whose top-level ``markdown`` value
                        is emptied: the floor without lexing that one huge string.
    ``naive``           ``orjson.loads`` of the whole file, then a loop over ``data.elements``.
    ``logical``         the package's reading and logical stage, no writer: the elements read,
                        continuations joined, tables built and stitched, captions attached.
                        Run with the data formats (chunks, parquet): what every logical
                        writer pays before it writes anything.  It reads every field, as
                        Parquet does; chunks skips char_details and base64 unread, so on
                        the char-details input chunks takes less than this.
    ``baseline:<fmt>``  the function ``BASELINES[<fmt>]`` (a load-everything converter to that
                        format), for each format asked for that has one.
    ``<fmt>``           ``xparse_convert.convert(path, to=<fmt>, out_dir=<tmp>)``.

Peak RSS is the child's ``VmHWM`` (``/proc/self/status``), not ``ru_maxrss``: on Linux a child
started by ``subprocess`` (vfork + exec) inherits its parent's ``ru_maxrss`` high-water mark, so
``ru_maxrss`` would report the benchmark driver's own peak for every small task. ``VmHWM``
belongs to the address space that ``exec`` creates, so it is per run.

    python benchmarks/run.py                 # 100 and 1000 pages, 3 variants, jsonl and md
    python benchmarks/run.py --formats jsonl,md,docx,xlsx --json out/results-full.json
    python benchmarks/run.py --quick         # 100 pages, 1 run: a smoke run
    python benchmarks/run.py --formats jsonl,md,docx --runs 5 --json results.json

See benchmarks/README.md for the columns and the targets.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
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
    "formulas": {"images": False, "char_details": False, "formulas": True},
}
ELEMENTS_PREFIX = "data.elements.item"
BUF_SIZE = 1 << 20
WORKER_FLAG = "--_worker"
RESULT_MARK = "@@bench-result@@ "

NOMD_TASK = "floor-nomd"
LOGICAL_TASK = "logical"
DEFAULT_TIMEOUT = 900.0

# The targets the project holds itself to (see README.md).
TARGET_FORMAT, TARGET_VARIANT, TARGET_PAGES = "jsonl", "char_details", 1000
TARGET_RSS_MB = 150.0
TARGET_FLOOR_RATIO = 1.5
# Peak RSS < TARGET_RSS_MB at TARGET_PAGES: format -> the variants it is checked on (None: all).
RSS_TARGETS: dict[str, tuple[str, ...] | None] = {
    "jsonl": ("char_details",),
    "docx": None,
    "xlsx": None,
}
# The reader skips what the document writers never read (char_details): on the 1000-page
# char-details input each runs within this fraction of the floor's wall time, at most
# SKIP_RSS_MB; "a+b" is one conversion to several formats in one pass.
SKIP_VARIANT = "char_details"
SKIP_RSS_MB = 100.0
SKIP_TARGETS: dict[str, float] = {"docx": 0.5, "html": 0.5, "md": 0.5, "xlsx": 0.5,
                                  "docx+xlsx+html+md": 0.6}
# "At least N times faster than the format's baseline": format -> (N, variants), every page count.
SPEEDUP_TARGETS: dict[str, tuple[float, tuple[str, ...]]] = {
    "docx": (10.0, ("plain", "images")),
    "xlsx": (2.0, ("plain",)),
}
# The data formats against the JSONL writer, on the same input in the same interleaved run (the
# ratio survives the machine's drift, absolute times do not): at TARGET_PAGES, on each variant,
# wall time at most this times jsonl's, peak RSS at most DATA_RSS_MB.
DATA_VARIANTS = ("plain", "char_details")
DATA_RSS_MB = 150.0
DATA_TARGETS: dict[str, float] = {"chunks": 1.5, "parquet": 1.5}
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


def task_logical(path: str, out_dir: str) -> dict[str, Any]:
    """The logical document, as a logical writer receives it, and nothing written."""
    from xparse_convert import Reader, logical

    count = 0
    with Reader(path) as reader:
        for _ in logical(reader.elements(), reader.diag):
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


def baseline_docx(path: str, out_dir: str) -> dict[str, Any]:
    """The naive DOCX way: load everything, build the document with python-docx's object API."""
    import base64
    import io

    import docx
    import orjson
    from docx.shared import Inches

    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    doc = docx.Document()
    counts = {"elements": 0, "tables": 0, "images": 0}
    for element in data["data"]["elements"]:
        counts["elements"] += 1
        kind, text = element.get("type"), element.get("text") or ""
        structure = element.get("table_structure")
        image = (element.get("image_data") or {}).get("base64")
        if kind == "Title":
            depth = (element.get("metadata") or {}).get("category_depth") or 0
            doc.add_heading(text, level=min(depth + 1, 9))
        elif kind == "Table" and structure and structure.get("cells"):
            table = doc.add_table(rows=structure["rows"], cols=structure["cols"])
            for cell in structure["cells"]:
                row, col = cell["row"] - 1, cell["col"] - 1
                first = table.cell(row, col)
                first.text = cell.get("text") or ""
                row_span, col_span = cell.get("row_span") or 1, cell.get("col_span") or 1
                if row_span > 1 or col_span > 1:
                    first.merge(table.cell(row + row_span - 1, col + col_span - 1))
            counts["tables"] += 1
        elif kind == "Image" and image:
            doc.add_picture(io.BytesIO(base64.b64decode(image)), width=Inches(5))
            counts["images"] += 1
        else:
            doc.add_paragraph(text)
    doc.save(str(Path(out_dir) / (Path(path).stem + ".docx")))
    return counts


def baseline_xlsx(path: str, out_dir: str) -> dict[str, Any]:
    """The naive XLSX way: load everything, one openpyxl in-memory sheet per Table element."""
    import openpyxl
    import orjson

    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    counts = {"elements": 0, "tables": 0}
    for element in data["data"]["elements"]:
        counts["elements"] += 1
        structure = element.get("table_structure")
        if element.get("type") != "Table" or not structure:
            continue
        counts["tables"] += 1
        sheet = workbook.create_sheet(f"Table {counts['tables']}")
        for cell in structure.get("cells") or ():
            row, col = cell["row"], cell["col"]
            sheet.cell(row=row, column=col, value=cell.get("text"))
            row_span, col_span = cell.get("row_span") or 1, cell.get("col_span") or 1
            if row_span > 1 or col_span > 1:
                sheet.merge_cells(start_row=row, start_column=col,
                                  end_row=row + row_span - 1, end_column=col + col_span - 1)
    if not workbook.worksheets:
        workbook.create_sheet("Sheet1")
    workbook.save(str(Path(out_dir) / (Path(path).stem + ".xlsx")))
    return counts


# A load-everything (or third-party) converter per output format: ``fn(path, out_dir)``, writing
# its output into ``out_dir`` and returning a dict of extra facts (may be empty). Each one gets a
# ``baseline:<fmt>`` row whenever <fmt> is benchmarked, and that format's "ratio to naive" is
# measured against it instead of the plain ``naive`` task. Add an HTML one here.
BASELINES: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "jsonl": baseline_jsonl,
    "docx": baseline_docx,
    "xlsx": baseline_xlsx,
}
# Modules a baseline imports, imported before its clock starts (like ``xparse_convert`` is).
BASELINE_IMPORTS: dict[str, tuple[str, ...]] = {
    "docx": ("docx", "docx.shared"),
    "xlsx": ("openpyxl",),
}
# A writer that imports its library when its conversion begins (not with its module, which
# ``--help`` loads): format -> "module:function" that imports it the writer's way, called before
# the clock starts, as the baselines' libraries are imported.
WRITER_IMPORTS: dict[str, str] = {
    "parquet": "xparse_convert.writers.parquet:require_pyarrow",
}


def task_convert(fmt: str, path: str, out_dir: str) -> dict[str, Any]:
    """The package under test: one ``convert`` call to one format."""
    import xparse_convert

    report = xparse_convert.convert(path, to=fmt.split("+"), out_dir=out_dir)
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
    if task in ("floor", NOMD_TASK):  # floor-nomd gets the copy without markdown as its input
        work = task_floor
    elif task == "naive":
        work = task_naive
    elif task == LOGICAL_TASK:
        import xparse_convert  # noqa: F401  (before the clock, as for the writers)

        work = task_logical
    elif task.startswith("baseline:"):
        fmt = task.partition(":")[2]
        for module in BASELINE_IMPORTS.get(fmt, ()):
            importlib.import_module(module)
        work = BASELINES[fmt]
    else:
        import xparse_convert  # noqa: F401
        from xparse_convert.writers import get

        # the writer's module (imported on first use) loads before the clock starts, as the
        # baselines' libraries do
        for name in task.split("+"):
            get(name)
            if name in WRITER_IMPORTS:  # (an older package in --compare may lack it)
                module, _, function = WRITER_IMPORTS[name].partition(":")
                load = getattr(importlib.import_module(module), function, None)
                if load is not None:
                    load()

        def work(p: str, o: str) -> dict[str, Any]:
            return task_convert(task, p, o)
    started, cpu_started = time.perf_counter(), time.process_time()
    facts = work(path, out_dir)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started  # every thread of the process
    peak_kb, peak_source = _peak_rss_kb()
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kb": peak_kb,
              "peak_rss_source": peak_source,
              "output_bytes": _dir_bytes(out_dir), **facts}
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    return 0


# -- the driver ------------------------------------------------------------------------------
@dataclass
class Input:
    """One generated input file (and its copy with the markdown emptied, for ``floor-nomd``)."""

    path: Path
    pages: int
    variant: str
    bytes: int = 0
    nomd_path: Path | None = None

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

    def timed_out(self) -> list[dict[str, Any]]:
        """The runs given up after ``--timeout`` seconds."""
        return [r for r in self.runs if "timed_out_after" in r]

    def _walls(self) -> list[tuple[float, bool]]:
        """(seconds, is a lower bound) of every finished or timed-out run."""
        return ([(r["seconds"], False) for r in self._ok()]
                + [(r["timed_out_after"], True) for r in self.timed_out()])

    def _rss_kb(self) -> list[tuple[float, bool]]:
        return ([(r["peak_rss_kb"], False) for r in self._ok()]
                + [(r["peak_rss_kb_so_far"], True) for r in self.timed_out()
                   if r.get("peak_rss_kb_so_far")])

    @property
    def wall(self) -> float | None:
        """Median wall time; a timed-out run counts as its timeout (see ``wall_is_lower_bound``)."""
        return _median_bound(self._walls())[0]

    @property
    def wall_is_lower_bound(self) -> bool:
        """Whether timed-out runs reach the median: the true median is then larger."""
        return _median_bound(self._walls())[1]

    @property
    def cpu(self) -> float | None:
        """Median CPU seconds (user + system, all threads) of the finished runs."""
        values = [r["cpu_seconds"] for r in self._ok() if "cpu_seconds" in r]
        return statistics.median(values) if values else None

    @property
    def rss_mb(self) -> float | None:
        value = _median_bound(self._rss_kb())[0]
        return value / 1024 if value is not None else None

    @property
    def rss_is_lower_bound(self) -> bool:
        return _median_bound(self._rss_kb())[1]

    @property
    def mb_per_s(self) -> float | None:
        wall = self.wall
        return self.input_bytes / 1e6 / wall if wall else None

    @property
    def pages_per_s(self) -> float | None:
        wall = self.wall
        return self.pages / wall if wall else None


def _median_bound(values: Sequence[tuple[float, bool]]) -> tuple[float | None, bool]:
    """Median of (value, is a lower bound) pairs, and whether a lower bound reaches the median."""
    if not values:
        return None, False
    ordered = sorted(values)
    n = len(ordered)
    middle = ordered[(n - 1) // 2: n // 2 + 1]
    return statistics.median(v for v, _ in ordered), any(bound for _, bound in middle)


def package_stamp() -> str | None:
    """The newest source file of the installed ``xparse_convert`` and its mtime, to notice
    edits made to the package while a run is going (every run imports it afresh)."""
    import importlib.util

    spec = importlib.util.find_spec("xparse_convert")
    if spec is None or not spec.origin:
        return None
    files = [(f.stat().st_mtime, f) for f in Path(spec.origin).parent.rglob("*.py")]
    if not files:
        return None
    mtime, newest = max(files)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime))
    return f"{newest.relative_to(Path(spec.origin).parent.parent)} {stamp}"


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
        "xparse_convert_newest_file": package_stamp(),
        "baseline_libraries": _library_versions(("python-docx", "openpyxl")),
    }


def _library_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of the baselines' third-party libraries (absent ones left out)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


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
    nomd = path.with_name(f"{path.stem}_nomd.json")
    if not nomd.exists() or nomd.stat().st_mtime < path.stat().st_mtime:
        partial = nomd.with_name(nomd.name + ".tmp")
        started = time.perf_counter()
        removed = strip_markdown(path, partial)
        partial.replace(nomd)
        print(f"made {nomd.name}: markdown value of {removed / 1e6:.1f} MB emptied in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return Input(path, pages, variant, path.stat().st_size, nomd)


_MARKDOWN_KEY = b'"markdown":"'
_STRING_STOP = re.compile(rb'["\\]')


def strip_markdown(source: Path, target: Path, chunk: int = 8 << 20) -> int:
    """Copy ``source`` to ``target`` with the first ``"markdown":"..."`` value emptied.

    A streaming byte-level rewrite, nothing parsed: the key is found as bytes (in compact JSON a
    quote that is not preceded by a backslash cannot be inside a string, so ``"markdown":"`` only
    matches a real key; the generator writes ``data.markdown`` before the elements), the string
    body is skipped up to its closing quote (a backslash skips the byte after it), and the rest
    is copied. Returns the number of bytes dropped.
    """
    dropped = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        carry = b""
        while True:  # find the key, keeping a tail in case it straddles two chunks
            block = src.read(chunk)
            if not block:
                raise ValueError(f"{source}: no {_MARKDOWN_KEY.decode()} found")
            buffer = carry + block
            found = buffer.find(_MARKDOWN_KEY)
            if found >= 0:
                out.write(buffer[: found + len(_MARKDOWN_KEY)])
                rest = buffer[found + len(_MARKDOWN_KEY):]
                break
            keep = len(_MARKDOWN_KEY) - 1
            out.write(buffer[:-keep])
            carry = buffer[-keep:]
        position = 0
        while True:  # skip the string body
            match = _STRING_STOP.search(rest, position)
            while match is not None and match.group() == b"\\":
                position = match.start() + 2
                match = _STRING_STOP.search(rest, position)
            if match is not None:
                dropped += match.start()
                out.write(rest[match.start():])  # the closing quote and what follows
                break
            dropped += len(rest)
            position = max(0, position - len(rest))  # a backslash ended the chunk
            rest = src.read(chunk)
            if not rest:
                raise ValueError(f"{source}: the markdown string does not end")
        shutil.copyfileobj(src, out, chunk)
    return dropped


def warm_page_cache(path: Path) -> None:
    """Read the file once so that run 1 of the first task does not pay for a cold cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def run_once(task: str, item: Input, workdir: Path, timeout: float,
             python: str = sys.executable) -> dict[str, Any]:
    """One run of ``task`` on ``item`` in a fresh subprocess of ``python`` (whose installed
    xparse_convert is measured); its outputs are deleted after."""
    runs_dir = workdir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    out_dir = tempfile.mkdtemp(prefix=f"{task.replace(':', '-')}-", dir=runs_dir)
    source = item.nomd_path if task == NOMD_TASK and item.nomd_path else item.path
    command = [python, str(Path(__file__).resolve()), WORKER_FLAG, task,
               str(source), out_dir]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=str(HERE))
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            peak_kb = _child_peak_rss_kb(proc.pid)  # before the kill: the peak so far
            proc.kill()
            proc.communicate()
            return {"timed_out_after": timeout, "peak_rss_kb_so_far": peak_kb}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK):])
            if stderr.strip():
                result["stderr"] = stderr.strip()[-2000:]
            return result
    tail = (stderr.strip() or stdout.strip())[-2000:]
    return {"error": f"exit code {proc.returncode}: {tail}"}


def _child_peak_rss_kb(pid: int) -> int | None:
    """``VmHWM`` of a running child of ours, in KiB (None when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def task_list(formats: Sequence[str]) -> list[str]:
    """The tasks of one input, in run order."""
    tasks = ["floor", NOMD_TASK, "naive"]
    if any(fmt in DATA_TARGETS for fmt in formats):
        tasks.append(LOGICAL_TASK)
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
            elif "timed_out_after" in result:
                so_far = result.get("peak_rss_kb_so_far")
                note = (f"TIMEOUT after {result['timed_out_after']:.0f} s"
                        + (f", {so_far / 1024:.1f} MB so far" if so_far else ""))
            else:
                note = f"{result['seconds']:7.2f} s {result['peak_rss_kb'] / 1024:7.1f} MB"
            print(f"  {item.path.name:<32} run {number}/{runs} {task:<16} {note}",
                  file=sys.stderr, flush=True)
    return list(rows.values())


def _fmt(value: float | None, digits: int, mark: str = "") -> str:
    """A number, "-" when missing; ``mark`` ">" / "<" flags a bound, "?" an unknown value."""
    if value is None:
        return "-"
    return "?" if mark == "?" else f"{mark}{value:.{digits}f}"


Ratio = tuple[float | None, str]  # (value, "" exact / ">" lower bound / "<" upper bound / "?")


def _ratio(num: Row | None, den: Row | None) -> Ratio:
    """num.wall / den.wall, with how exact it is when either side timed out."""
    if num is None or den is None or not num.wall or not den.wall:
        return None, ""
    high, low = num.wall_is_lower_bound, den.wall_is_lower_bound
    return num.wall / den.wall, "?" if high and low else ">" if high else "<" if low else ""


def _table(headers: Sequence[str], lines: Sequence[Sequence[str]], left: int = 0) -> str:
    """Aligned plain text: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h)
              for i, h in enumerate(headers)]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(headers), rule, *(render(r) for r in lines)])


def _reference_name(row: Row, rows: Sequence[Row]) -> str | None:
    """The task a row's "x naive" divides by."""
    by_task = {r.task: r for r in rows if r.input == row.input}
    reference = naive_reference(row, by_task)
    return reference.task if reference is not None else None


def naive_reference(row: Row, by_task: dict[str, Row]) -> Row | None:
    """What a row's "ratio to naive" divides by: its format's baseline, else ``naive``."""
    baseline = by_task.get(f"baseline:{row.task}")
    return baseline if baseline is not None and baseline.wall else by_task.get("naive")


def ratios(rows: Sequence[Row]) -> dict[int, tuple[Ratio, Ratio]]:
    """(ratio to floor, ratio to naive) of every row, keyed by ``id(row)``."""
    out: dict[int, tuple[Ratio, Ratio]] = {}
    groups: dict[str, dict[str, Row]] = {}
    for row in rows:
        groups.setdefault(row.input, {})[row.task] = row
    for row in rows:
        by_task = groups[row.input]
        out[id(row)] = (_ratio(row, by_task.get("floor")),
                        _ratio(row, naive_reference(row, by_task)))
    return out


def results_table(rows: Sequence[Row]) -> str:
    """The main table."""
    headers = ["input", "variant", "pages", "input MB", "task", "wall s", "cpu s", "peak RSS MB",
               "MB/s", "pages/s", "x floor", "x naive"]
    rat = ratios(rows)
    lines = []
    for row in rows:
        (to_floor, floor_mark), (to_naive, naive_mark) = rat[id(row)]
        failed = not row.wall
        slow = ">" if row.wall_is_lower_bound else ""
        lines.append([
            row.input, row.variant, str(row.pages), f"{row.input_bytes / 1e6:.1f}", row.task,
            "ERROR" if failed else _fmt(row.wall, 2, slow), _fmt(row.cpu, 2),
            _fmt(row.rss_mb, 1, ">" if row.rss_is_lower_bound else ""),
            _fmt(row.mb_per_s, 1, "<" if slow else ""),
            _fmt(row.pages_per_s, 1, "<" if slow else ""),
            _fmt(to_floor, 2, floor_mark), _fmt(to_naive, 2, naive_mark),
        ])
    table = _table(headers, lines, left=2)
    timed_out = [row for row in rows if row.timed_out()]
    if timed_out:
        limit = max(r["timed_out_after"] for row in timed_out for r in row.timed_out())
        table += (
            f"\n'>' / '<': a run was stopped at the timeout ({limit:.0f} s), so that median is a "
            "lower bound ('>'), and so are the ratios built on it: in 'x floor' and 'x naive' a "
            "'>' is a lower bound, a '<' an upper bound (e.g. '<0.05' in 'x naive' = at least 20x "
            "faster than the timed-out baseline). Peak RSS of a timed-out run is its peak so far."
        )
    return table


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


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "OPEN"}[ok]


def target_lines(rows: Sequence[Row], flat: dict[str, dict[str, float | None]]) -> list[str]:
    """PASS/FAIL against the project's targets, for what this run measured.

    OPEN: a timeout left the answer undecided (the bound measured does not settle it).
    """
    out: list[str] = []
    rat = ratios(rows)
    by_key = {(r.task, r.variant, r.pages): r for r in rows}
    groups: dict[str, dict[str, Row]] = {}
    for row in rows:
        groups.setdefault(row.input, {})[row.task] = row
    largest = max((r.pages for r in rows), default=0)
    # Peak RSS at TARGET_PAGES.
    for fmt, variants in RSS_TARGETS.items():
        for variant in variants or VARIANTS:
            row = by_key.get((fmt, variant, TARGET_PAGES))
            if row is None:
                continue
            where = f"{fmt} {TARGET_PAGES}p {variant}"
            if row.rss_mb is None:
                out.append(f"FAIL  {where}: no finished run (target peak RSS < "
                           f"{TARGET_RSS_MB:.0f} MB)")
                continue
            ok: bool | None = row.rss_mb < TARGET_RSS_MB
            if row.rss_is_lower_bound and ok:
                ok = None
            out.append(f"{_verdict(ok)}  {where}: peak RSS "
                       f"{'>' if row.rss_is_lower_bound else ''}{row.rss_mb:.1f} MB "
                       f"(target < {TARGET_RSS_MB:.0f} MB)")
            if fmt == TARGET_FORMAT and variant == TARGET_VARIANT:
                to_floor, mark = rat[id(row)][0]
                if to_floor is not None:
                    ok = to_floor <= TARGET_FLOOR_RATIO
                    if mark == "?" or (mark == "<" and not ok) or (mark == ">" and ok):
                        ok = None
                    out.append(f"{_verdict(ok)}  {where}: wall "
                               f"{_fmt(to_floor, 2, mark)}x floor "
                               f"(target <= {TARGET_FLOOR_RATIO}x)")
    # The skip: document writers on the char-details input, against the floor.
    for fmt, limit in SKIP_TARGETS.items():
        row = by_key.get((fmt, SKIP_VARIANT, TARGET_PAGES))
        if row is None:
            continue
        where = f"{fmt} {TARGET_PAGES}p {SKIP_VARIANT}"
        to_floor, mark = rat[id(row)][0]
        ok = None if to_floor is None or mark == "?" else to_floor <= limit
        out.append(f"{_verdict(ok)}  {where}: wall {_fmt(to_floor, 2, mark)}x floor "
                   f"(target <= {limit}x)")
        if row.rss_mb is not None:
            out.append(f"{_verdict(row.rss_mb <= SKIP_RSS_MB)}  {where}: peak RSS "
                       f"{row.rss_mb:.1f} MB (target <= {SKIP_RSS_MB:.0f} MB)")
    # The data formats against the JSONL writer on the same input.
    for fmt, limit in DATA_TARGETS.items():
        for variant in DATA_VARIANTS:
            row = by_key.get((fmt, variant, TARGET_PAGES))
            if row is None:
                continue
            where = f"{fmt} {TARGET_PAGES}p {variant}"
            jsonl = by_key.get(("jsonl", variant, TARGET_PAGES))
            if jsonl is None:
                out.append(f"OPEN  {where}: jsonl not measured (target wall <= {limit}x jsonl)")
            else:
                to_jsonl, mark = _ratio(row, jsonl)
                ok = None if to_jsonl is None else to_jsonl <= limit
                if mark == "?" or (mark == "<" and not ok) or (mark == ">" and ok):
                    ok = None
                out.append(f"{_verdict(ok)}  {where}: wall {_fmt(to_jsonl, 2, mark)}x jsonl "
                           f"(target <= {limit}x)")
            floor = by_key.get((LOGICAL_TASK, variant, TARGET_PAGES))
            if floor is not None and jsonl is not None:  # context: what reading costs
                to_floor, mark = _ratio(row, floor)
                floor_to_jsonl, floor_mark = _ratio(floor, jsonl)
                out.append(f"      {where}: wall {_fmt(to_floor, 2, mark)}x the logical "
                           f"stage alone (which is {_fmt(floor_to_jsonl, 2, floor_mark)}x "
                           "jsonl)")
            if row.rss_mb is None:
                out.append(f"FAIL  {where}: no finished run (target peak RSS <= "
                           f"{DATA_RSS_MB:.0f} MB)")
                continue
            ok = row.rss_mb <= DATA_RSS_MB
            if row.rss_is_lower_bound and ok:
                ok = None
            out.append(f"{_verdict(ok)}  {where}: peak RSS "
                       f"{'>' if row.rss_is_lower_bound else ''}{row.rss_mb:.1f} MB "
                       f"(target <= {DATA_RSS_MB:.0f} MB)")
    # Speed-ups over each format's own baseline, every page count.
    for fmt, (factor, variants) in SPEEDUP_TARGETS.items():
        for pages in sorted({r.pages for r in rows}):
            for variant in variants:
                row = by_key.get((fmt, variant, pages))
                base = by_key.get((f"baseline:{fmt}", variant, pages))
                if row is None or base is None:
                    continue
                where = f"{fmt} {pages}p {variant}"
                if not row.wall or not base.wall:
                    out.append(f"FAIL  {where}: no finished run to compare "
                               f"(target >= {factor:.0f}x faster than baseline:{fmt})")
                    continue
                speedup = base.wall / row.wall
                # The baseline timed out: the speed-up is a lower bound; ours timed out: upper.
                mark = ("?" if base.wall_is_lower_bound and row.wall_is_lower_bound
                        else ">=" if base.wall_is_lower_bound
                        else "<=" if row.wall_is_lower_bound else "")
                ok = speedup >= factor
                if mark == "?" or (mark == ">=" and not ok) or (mark == "<=" and ok):
                    ok = None
                told = {"": "", "?": " (both timed out: unknown)",
                        ">=": f" (a lower bound: baseline:{fmt} timed out after "
                              f"{base.wall:.0f} s)",
                        "<=": f" (an upper bound: {fmt} timed out)"}[mark]
                shown = "?" if mark == "?" else f"{mark}{speedup:.1f}"
                out.append(f"{_verdict(ok)}  {where}: {shown}x faster than baseline:{fmt}"
                           f"{told} (target >= {factor:.0f}x)")
    # Memory flat from the fewest to the most pages, every format and variant.
    for task, per in flat.items():
        if task in ("floor", NOMD_TASK, "naive") or task.startswith("baseline:"):
            continue
        for variant, value in per.items():
            if value is not None:
                out.append(f"{'PASS' if value <= FLAT_TOLERANCE else 'FAIL'}  {task} "
                           f"{variant}: memory {value:.2f}x from fewest to most pages "
                           f"(flat: <= {FLAT_TOLERANCE}x)")
            else:
                out.append(f"FAIL  {task} {variant}: memory flatness not measured "
                           f"(a run failed at {largest}p or at the fewest pages)")
    return out


def notes(rows: Sequence[Row]) -> list[str]:
    """Errors, warnings and stray stderr output worth reading, one entry per row."""
    out: list[str] = []
    for row in rows:
        where = f"{row.input} {row.task}"
        if row.errors:
            out.append(f"{where}: {len(row.errors)} failed run(s): {row.errors[0][-1500:]}")
        stopped = row.timed_out()
        if stopped:
            so_far = [r["peak_rss_kb_so_far"] / 1024 for r in stopped
                      if r.get("peak_rss_kb_so_far")]
            out.append(f"{where}: {len(stopped)} of {len(row.runs)} run(s) timed out after "
                       f"{stopped[0]['timed_out_after']:.0f} s"
                       + (f" (peak RSS so far up to {max(so_far):.0f} MB)" if so_far else "")
                       + ("; its median wall time is a lower bound" if row.wall_is_lower_bound
                          else "; the median is still exact"))
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
    floors: dict[str, dict[str, set[Any]]] = {}
    for row in rows:
        if row.task in ("floor", NOMD_TASK):
            floors.setdefault(row.input, {})[row.task] = {r.get("elements") for r in row._ok()}
    for name, per in floors.items():
        if len(per) == 2 and per["floor"] and per[NOMD_TASK] and per["floor"] != per[NOMD_TASK]:
            out.append(f"{name}: {NOMD_TASK} saw {sorted(per[NOMD_TASK])} elements, floor "
                       f"{sorted(per['floor'])}: the copy without markdown is broken")
    return out


def resolve_formats(names: str) -> list[str]:
    """Canonical writer names (aliases resolved); exits with the choices on an unknown name."""
    from xparse_convert.errors import UsageError
    from xparse_convert.writers import get

    formats: list[str] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        try:  # "a+b": one conversion to several formats
            canonical = "+".join(get(part).name for part in name.split("+"))
        except UsageError as exc:
            raise SystemExit(f"run.py: {getattr(exc, 'message', exc)}") from None
        if canonical not in formats:
            formats.append(canonical)
    return formats


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


COMPARE_LIMIT = 1.05  # "no slowdown": the change's median at most 5% above the base's


def compare(items: Sequence[Input], formats: Sequence[str], runs: int, workdir: Path,
            timeout: float, base: str, change: str) -> int:
    """Every format on every input under two interpreters (each with its own install of
    xparse_convert), base and change alternating run by run; prints medians and ratios.
    Returns 1 when a change median is more than ``COMPARE_LIMIT`` times the base's."""
    lines = []
    worse = False
    for item in items:
        warm_page_cache(item.path)
        for fmt in formats:
            results: dict[str, list[dict[str, Any]]] = {"base": [], "change": []}
            for number in range(1, runs + 1):
                order = (("base", base), ("change", change)) if number % 2 else (
                    ("change", change), ("base", base))  # alternate who goes first
                for label, python in order:
                    result = run_once(fmt, item, workdir, timeout, python)
                    results[label].append(result)
                    note = (f"{result['seconds']:7.2f} s" if "seconds" in result else
                            str(result)[:100])
                    print(f"  {item.path.name:<32} run {number}/{runs} {fmt:<6} {label:<6} "
                          f"{note}", file=sys.stderr, flush=True)
            walls = {k: statistics.median(r["seconds"] for r in v if "seconds" in r)
                     if any("seconds" in r for r in v) else None for k, v in results.items()}
            rss = {k: statistics.median(r["peak_rss_kb"] / 1024 for r in v if "seconds" in r)
                   if any("seconds" in r for r in v) else None for k, v in results.items()}
            ratio = walls["change"] / walls["base"] if walls["base"] and walls["change"] \
                else None
            ok = ratio is not None and ratio <= COMPARE_LIMIT
            worse = worse or not ok
            lines.append([item.path.name, fmt, _fmt(walls["base"], 2), _fmt(walls["change"], 2),
                          _fmt(ratio, 3), _fmt(rss["base"], 1), _fmt(rss["change"], 1),
                          _verdict(ok)])
    print()
    print(_table(["input", "format", "base s", "change s", "ratio", "base MB", "change MB",
                  f"<= {COMPARE_LIMIT}x"], lines, left=2))
    return 1 if worse else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=_int_list, default=[100, 1000],
                        help="page counts of the generated inputs (default 100,1000)")
    parser.add_argument("--variants", default="plain,images,char_details",
                        help=f"input variants, from {', '.join(VARIANTS)} "
                             "(default: plain,images,char_details)")
    parser.add_argument("--formats", default="jsonl,md",
                        help="writer formats, any registered name (default jsonl,md)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per task, interleaved round-robin (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 100 pages only, 1 run")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="cache of generated inputs (default benchmarks/out/)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds before one run is stopped and reported as timed out "
                             f"(default {DEFAULT_TIMEOUT:.0f})")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save the results here")
    parser.add_argument("--compare", metavar="BASE_PYTHON",
                        help="compare two installs instead: the formats under BASE_PYTHON "
                             "(a venv with the parent commit installed) against --python, "
                             "alternating, medians, ratios (exit 1 above 1.05x)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the change in --compare (default: this one)")
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
              f"xparse_convert {machine['xparse_convert']} (newest file "
              f"{machine['xparse_convert_newest_file']}); "
              + "; ".join(f"{k} {v}" for k, v in machine["baseline_libraries"].items()))
    print(header, flush=True)
    print(f"runs: {args.runs} per task, round-robin, medians; formats: {', '.join(formats)}",
          flush=True)
    started = time.perf_counter()
    if args.compare:
        items = [prepare_input(workdir, pages, variant) for pages in args.pages
                 for variant in args.variants]
        status = compare(items, formats, args.runs, workdir, args.timeout, args.compare,
                         args.python)
        shutil.rmtree(workdir / "runs", ignore_errors=True)
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
        return status
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
    stamp_after = package_stamp()
    if stamp_after != machine["xparse_convert_newest_file"]:
        remarks.append(f"the package changed during the run (newest file at the start: "
                       f"{machine['xparse_convert_newest_file']}, at the end: {stamp_after}): "
                       "rows measured before and after the edit are not comparable")
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
                         "runs": args.runs, "workdir": str(workdir),
                         "timeout_s": args.timeout},
            "results": [
                {**asdict(row), "wall_s": row.wall,
                 "wall_is_lower_bound": row.wall_is_lower_bound,
                 "cpu_s": row.cpu, "peak_rss_mb": row.rss_mb,
                 "peak_rss_is_lower_bound": row.rss_is_lower_bound,
                 "mb_per_s": row.mb_per_s, "pages_per_s": row.pages_per_s,
                 "ratio_to_floor": rat[id(row)][0][0],
                 "ratio_to_floor_bound": rat[id(row)][0][1],
                 "ratio_to_naive": rat[id(row)][1][0],
                 "ratio_to_naive_bound": rat[id(row)][1][1],
                 "naive_reference": _reference_name(row, rows)}
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
