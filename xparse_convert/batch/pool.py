"""Batches: many inputs converted on all cores, or on any ``concurrent.futures.Executor``
(a Dask cluster's ``Client(...).get_executor()`` included), one report per input.

Each input runs in its own child process (``isolation``), so a file that crashes, runs out of
memory or hangs fails alone and the pool stays healthy; the executor only schedules.

Ctrl-C (a ``KeyboardInterrupt`` in the calling thread) stops the batch: no further input is
handed out, running jobs see a stop flag and kill their child (a ``distributed.Event`` on Dask,
polled by the job on its worker), and ``BatchInterrupted`` carries one report per input.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed, wait
from pathlib import Path
from typing import Any

from .. import options as option_rules
from ..convert import Report
from ..output import AtomicFile, remove_stale_temporaries
from ..targets import formats, mirrored
from ..writers import Writer
from .jobs import Job, targets_of

log = logging.getLogger("xparse_convert")

RUN_REPORT_SCHEMA = "xparse-convert.run-report/1"
# how a run report begins (``write_run_report`` puts ``_schema`` first): a batch over a folder
# that holds last run's report must not take it for an input
_RUN_REPORT_HEAD = re.compile(rb'\s*\{\s*"_schema"\s*:\s*"xparse-convert\.run-report/')
GRACE = 1.0  # seconds an interrupted batch waits for its running jobs to stop


class BatchInterrupted(KeyboardInterrupt):
    """A batch stopped by Ctrl-C or a signal.  ``reports`` has one report per input, in input
    order: what had finished, and ``interrupted`` reports for the inputs not converted."""

    def __init__(self, reports: list[Report]) -> None:
        super().__init__("interrupted")
        self.reports = reports


def results_in(folder: str | os.PathLike) -> Iterator[Path]:
    """The result files below ``folder`` (every ``*.json``/``*.json.gz``), unordered."""
    return (p for p in Path(folder).rglob("*")
            if p.is_file() and p.name.lower().endswith((".json", ".json.gz")))


def plan_jobs(sources: Iterable[str | os.PathLike | Job], writers: Sequence[type[Writer]],
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
            found = sorted(p for p in results_in(src_path) if not _is_run_report(p))
            entries = [(p, mirrored(p, src_path, out_dir)) for p in found]
        else:
            entries = [(src_path, Path(out_dir) if out_dir else None)]
        for path, folder in entries:
            job = src if isinstance(src, Job) else Job(
                os.fspath(path), os.fspath(folder) if folder is not None else None)
            paths = [p.resolve() for p in targets_of(job, writers).values()]
            clash = next((claimed[p] for p in paths if p in claimed), None)
            if clash is not None:
                planned.append(Report(source=job.source, error=(
                    f"its output would overwrite the output of {clash} in this run")))
                continue
            claimed.update((p, job.source) for p in paths)
            planned.append(job)
    return planned


def _is_run_report(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(200)
    except OSError:
        return False
    if _RUN_REPORT_HEAD.match(head) is None:
        return False
    log.warning("note: %s: a run report (%s), not a result; skipped", path, RUN_REPORT_SCHEMA)
    return True


def is_up_to_date(job: Job, writers: Sequence[type[Writer]]) -> bool:
    """Every output exists and is newer than the input (a rerun after a crash skips it)."""
    try:
        source_time = os.stat(job.source).st_mtime
        return all(p.stat().st_mtime >= source_time for p in targets_of(job, writers).values())
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
    sees each report as soon as it is done.  A ``KeyboardInterrupt`` stops the batch within
    about a second and raises ``BatchInterrupted`` (see there).  Temporary files that killed
    runs left in the output folders are removed first.
    """
    from .isolation import NOT_CONVERTED, run_isolated

    writers = formats(to)
    names = [w.name for w in writers]
    option_rules.normalise(options, writers)  # fail fast on bad options
    planned = plan_jobs(sources, writers, out_dir)
    remove_stale_temporaries(job.folder for job in planned if isinstance(job, Job))
    if on_planned is not None:
        on_planned(len(planned))
    results: dict[int, Report] = {}

    def done(index: int, report: Report) -> None:
        results[index] = report
        if on_report is not None:
            on_report(report)

    own = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    stop = _stop_flag(executor)
    futures: dict[Future[Report], tuple[int, Job]] = {}
    server = None
    interrupted = False
    try:
        pending: list[tuple[int, Job]] = []
        for index, job in enumerate(planned):
            if isinstance(job, Report):
                done(index, job)
            elif skip_existing and is_up_to_date(job, writers):
                done(index, Report(source=job.source, skipped=True, outputs={
                    k: str(v) for k, v in targets_of(job, writers).items()}))
            else:
                pending.append((index, job))
        server = _fork_server(executor, names) if pending else None
        for index, job in pending:
            future = pool.submit(run_isolated, job, names, options, timeout, memory_limit_mb,
                                 stop, server)
            futures[future] = (index, job)
        for future in as_completed(futures):
            index, job = futures[future]
            done(index, _outcome(future, job))
    except KeyboardInterrupt:
        interrupted = True
        _wind_down(stop, futures, results, done)
        raise BatchInterrupted([results.get(i) or Report(
            source=job.source, error=NOT_CONVERTED, interrupted=True)
            for i, job in enumerate(planned)]) from None
    finally:
        if own:
            pool.shutdown(wait=not interrupted, cancel_futures=interrupted)
        if server is not None:
            server.close()
    return [results[i] for i in range(len(planned))]


def _fork_server(executor: Executor | None, names: list[str]) -> Any:
    """A fork server for jobs that run in this process (see ``forkserver``): the imports are
    paid once, not once per file; ``None`` where jobs run elsewhere or cannot fork."""
    if not (executor is None or isinstance(executor, ThreadPoolExecutor)) \
            or not hasattr(os, "fork"):
        return None
    from .forkserver import ForkServer

    try:
        return ForkServer(names)
    except OSError:
        return None


def _outcome(future: Future[Report], job: Job) -> Report:
    try:
        return future.result()
    except Exception as exc:  # the executor itself failed this task
        return Report(source=job.source, error=f"worker failed: {exc}")


def _stop_flag(executor: Executor | None) -> Any:
    """The flag running jobs poll: a ``threading.Event`` for jobs in this process, a
    ``distributed.Event`` (shared through the scheduler) for a Dask cluster; ``None`` for
    other executors, whose running jobs cannot be reached (only the queued ones are
    cancelled)."""
    if executor is None or isinstance(executor, ThreadPoolExecutor):
        return threading.Event()
    if type(executor).__module__.startswith("distributed"):
        from distributed import Event

        # the executor's own client: the default one may belong to another cluster
        return Event(f"xparse-convert-stop-{uuid.uuid4().hex}",
                     client=getattr(executor, "_client", None))
    return None


def _wind_down(stop: Any, futures: dict[Future[Report], tuple[int, Job]],
               results: dict[int, Report], done: Callable[[int, Report], None]) -> None:
    """Stop an interrupted batch within ``GRACE`` seconds: set the stop flag, cancel what has
    not started, and collect what finishes meanwhile (a job that completed is kept)."""
    deadline = time.monotonic() + GRACE
    if stop is not None:
        # a Dask Event is set through the scheduler: never wait on it past the deadline
        setter = threading.Thread(target=stop.set, name="stop-batch", daemon=True)
        setter.start()
        setter.join(GRACE / 2)
    running = []
    for future in futures:
        if time.monotonic() < deadline and not future.cancel():
            running.append(future)
    wait(running, timeout=max(deadline - time.monotonic(), 0.0))
    for future in running:
        index, job = futures[future]
        if index in results or not future.done() or future.cancelled():
            continue
        report = _outcome(future, job)
        if not report.interrupted:
            done(index, report)


def write_run_report(path: str | os.PathLike, reports: list[Report], seconds: float) -> None:
    """The batch's outcome as JSON, written atomically (``-``: to standard output): every
    input with its result.  ``_schema`` comes first, so a later batch over the folder knows
    the file for what it is."""
    summary = {
        "inputs": len(reports),
        "converted": sum(1 for r in reports if r.ok and not r.skipped),
        "skipped": sum(1 for r in reports if r.skipped),
        "failed": sum(1 for r in reports if not r.ok and not r.interrupted),
        "not_converted": sum(1 for r in reports if r.interrupted),
        "pages": sum(r.pages or 0 for r in reports),
        "seconds": round(seconds, 3),
    }
    document = {"_schema": RUN_REPORT_SCHEMA, "summary": summary,
                "inputs": [r.as_dict() for r in reports]}
    if os.fspath(path) == "-":
        json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    with AtomicFile(path, binary=False) as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
