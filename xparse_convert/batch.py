"""Batches: many inputs converted on all cores, or on any ``concurrent.futures.Executor``
(a Dask cluster's ``Client(...).get_executor()`` included), one report per input.

Each input runs in its own child process (``isolation``), so a file that crashes, runs out of
memory or hangs fails alone and the pool stays healthy; the executor only schedules.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import options as option_rules
from .convert import Report, convert, formats, output_paths
from .errors import XParseError
from .source import stem_of


@dataclass(frozen=True)
class Job:
    """One input of a batch and the folder its outputs go to (None: beside the input)."""

    source: str
    out_dir: str | None
    name: str | None = None


def run_job(job: Job, to: Sequence[str], options: dict[str, Any] | None) -> Report:
    """Convert one job in this process, turning every failure into a report."""
    started = time.perf_counter()
    try:
        return convert(job.source, to, job.out_dir, options, name=job.name)
    except XParseError as exc:
        return Report(source=job.source, error=exc.message, error_where=exc.where,
                      seconds=time.perf_counter() - started)
    except MemoryError:
        return Report(source=job.source, error="out of memory",
                      seconds=time.perf_counter() - started)
    except OSError as exc:
        return Report(source=job.source, error=f"{exc.strerror or exc}",
                      seconds=time.perf_counter() - started)


def targets_of(job: Job, to: Sequence[str]) -> dict[str, Path]:
    folder = Path(job.out_dir) if job.out_dir else Path(job.source).parent
    return output_paths(job.name or stem_of(job.source), folder, formats(to))


def results_in(folder: str | os.PathLike) -> Iterator[Path]:
    """The result files below ``folder`` (every ``*.json``/``*.json.gz``), unordered."""
    return (p for p in Path(folder).rglob("*")
            if p.is_file() and p.name.lower().endswith((".json", ".json.gz")))


def plan_jobs(sources: Iterable[str | os.PathLike | Job], to: Sequence[str],
              out_dir: str | os.PathLike | None) -> list[Job | Report]:
    """Expand folders (``results_in`` them, subfolders mirrored under ``out_dir``), in order;
    a ``Job`` is taken as it is (its own folder and name); an input that would write the same
    outputs as an earlier one is a failed ``Report`` in its place."""
    planned: list[Job | Report] = []
    claimed: dict[Path, str] = {}
    for src in sources:
        src_path = Path(src.source if isinstance(src, Job) else src)
        if isinstance(src, Job):
            entries = [(src_path, None)]
        elif src_path.is_dir():
            found = sorted(results_in(src_path))
            entries = [(p, Path(out_dir) / p.parent.relative_to(src_path) if out_dir else None)
                       for p in found]
        else:
            entries = [(src_path, Path(out_dir) if out_dir else None)]
        for path, folder in entries:
            job = src if isinstance(src, Job) else Job(
                os.fspath(path), os.fspath(folder) if folder is not None else None)
            paths = [p.resolve() for p in targets_of(job, to).values()]
            clash = next((claimed[p] for p in paths if p in claimed), None)
            if clash is not None:
                planned.append(Report(source=job.source, error=(
                    f"its output would overwrite the output of {clash} in this run")))
                continue
            claimed.update((p, job.source) for p in paths)
            planned.append(job)
    return planned


def is_up_to_date(job: Job, to: Sequence[str]) -> bool:
    """Every output exists and is newer than the input (a rerun after a crash skips it)."""
    try:
        source_time = os.stat(job.source).st_mtime
        return all(p.stat().st_mtime >= source_time for p in targets_of(job, to).values())
    except OSError:
        return False


def convert_many(sources: Iterable[str | os.PathLike | Job], to: str | Sequence[str] = "jsonl",
                 out_dir: str | os.PathLike | None = None,
                 options: dict[str, Any] | None = None, *, jobs: int | None = None,
                 executor: Executor | None = None, timeout: float | None = None,
                 memory_limit_mb: int | None = None, skip_existing: bool = False,
                 on_planned: Callable[[int], None] | None = None,
                 on_report: Callable[[Report], None] | None = None) -> list[Report]:
    """Convert many inputs; one report per input, in input order.

    Without an ``executor`` a local pool of ``jobs`` workers (default: one per core) runs
    them; any ``concurrent.futures.Executor`` can be given instead (its workers need this
    package installed).  Each input runs in a child process, killed after ``timeout``
    seconds and capped at ``memory_limit_mb``; a failing input is a report with ``error``
    set and never stops the others.  ``options`` must be plain values (they travel as
    JSON).  A ``Job`` among ``sources`` keeps its own folder and output name.
    ``on_planned`` learns how many inputs there are once folders are expanded; ``on_report``
    sees each report as soon as it is done.
    """
    from .isolation import run_isolated

    writers = formats(to)
    names = [w.name for w in writers]
    option_rules.normalise(options, writers)  # fail fast on bad options
    planned = plan_jobs(sources, names, out_dir)
    if on_planned is not None:
        on_planned(len(planned))
    results: dict[int, Report] = {}

    def done(index: int, report: Report) -> None:
        results[index] = report
        if on_report is not None:
            on_report(report)

    pending: list[tuple[int, Job]] = []
    for index, job in enumerate(planned):
        if isinstance(job, Report):
            done(index, job)
        elif skip_existing and is_up_to_date(job, names):
            done(index, Report(source=job.source, skipped=True, outputs={
                k: str(v) for k, v in targets_of(job, names).items()}))
        else:
            pending.append((index, job))
    own = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    try:
        futures: dict[Future[Report], tuple[int, Job]] = {
            pool.submit(run_isolated, job, names, options, timeout, memory_limit_mb):
                (index, job) for index, job in pending}
        for future in as_completed(futures):
            index, job = futures[future]
            try:
                report = future.result()
            except Exception as exc:  # the executor itself failed this task
                report = Report(source=job.source, error=f"worker failed: {exc}")
            done(index, report)
    finally:
        if own:
            pool.shutdown()
    return [results[i] for i in range(len(planned))]


def write_run_report(path: str | os.PathLike, reports: list[Report], seconds: float) -> None:
    """The batch's outcome as JSON, written atomically: every input with its result."""
    failed = [r for r in reports if not r.ok]
    summary = {
        "inputs": len(reports),
        "converted": sum(1 for r in reports if r.ok and not r.skipped),
        "skipped": sum(1 for r in reports if r.skipped),
        "failed": len(failed),
        "pages": sum(r.pages or 0 for r in reports),
        "seconds": round(seconds, 3),
    }
    document = {"summary": summary, "inputs": [r.as_dict() for r in reports]}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
    os.replace(temp, target)
