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
from .. import storage
from ..convert import Report
from ..errors import UsageError
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


RESULT_SUFFIXES = (".json", ".json.gz")


def results_in(folder: str | os.PathLike, storage_options: dict[str, Any] | None = None
               ) -> Iterator[Path | storage.ObjectPath]:
    """The result files below ``folder`` (every ``*.json``/``*.json.gz``), unordered; below a
    prefix in an object store (``s3://bucket/results/``), its objects."""
    if isinstance(folder, str) and storage.is_url(folder):
        return (storage.ObjectPath(u) for u in storage.find(folder, RESULT_SUFFIXES,
                                                             storage_options))
    return (p for p in Path(storage.local(os.fspath(folder))).rglob("*")
            if p.is_file() and p.name.lower().endswith(RESULT_SUFFIXES))


def is_folder(given: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> bool:
    """True when an input names a folder of results (or a prefix of objects)."""
    if isinstance(given, str) and storage.is_url(given):
        return storage.is_prefix(given, storage_options)
    return os.fspath(given) != "-" and os.path.isdir(storage.local(os.fspath(given)))


def plan_jobs(sources: Iterable[str | os.PathLike | Job], writers: Sequence[type[Writer]],
              out_dir: str | os.PathLike | None,
              storage_options: dict[str, Any] | None = None) -> list[Job | Report]:
    """Expand folders and prefixes (``results_in`` them, subfolders mirrored under
    ``out_dir``), in order; a ``Job`` is taken as it is (its own folder and name); an input
    that would write the same outputs as an earlier one is a failed ``Report`` in its
    place."""
    planned: list[Job | Report] = []
    claimed: dict[object, str] = {}
    for src in sources:
        given = src.source if isinstance(src, Job) else storage.local(os.fspath(src))
        if isinstance(src, Job):
            entries: list[tuple[object, object]] = [(given, None)]
        elif is_folder(given, storage_options):
            root = storage.location(given)
            found = sorted(results_in(given, storage_options))
            found = [p for p, report in zip(found, _run_reports(found, storage_options))
                     if not report]
            entries = [(p, mirrored(p, root, out_dir)) for p in found]
        else:
            entries = [(given, out_dir or None)]
        for path, folder in entries:
            job = src if isinstance(src, Job) else Job(
                str(path), str(folder) if folder is not None else None)
            paths = [p.resolve() for p in targets_of(job, writers).values()]
            clash = next((claimed[p] for p in paths if p in claimed), None)
            if clash is not None:
                planned.append(Report(source=job.source, error=(
                    f"its output would overwrite the output of {clash} in this run")))
                continue
            claimed.update((p, job.source) for p in paths)
            planned.append(job)
    return planned


def _check_review_pdf(options: dict[str, Any] | None, planned: list[Job | Report]) -> None:
    """One ``--review-pdf`` file behind every input's boxes would draw the wrong pages."""
    pdf = (options or {}).get("review_pdf")
    if pdf and sum(isinstance(job, Job) for job in planned) > 1 and not os.path.isdir(pdf):
        raise UsageError(f"--review-pdf {pdf}: a batch needs a folder of <stem>.pdf files, "
                         "one per input, not one PDF for all of them")


def _run_reports(found: list[Any], storage_options: dict[str, Any] | None) -> list[bool]:
    """Which of ``found`` are run reports, by their first bytes (the objects of a prefix
    fetched concurrently)."""
    remote = [str(p) for p in found if isinstance(p, storage.ObjectPath)]
    heads = iter(storage.heads(remote, 200, storage_options))
    marks = []
    for path in found:
        if isinstance(path, storage.ObjectPath):
            head = next(heads)
        else:
            try:
                with open(path, "rb") as handle:
                    head = handle.read(200)
            except OSError:
                head = b""
        report = _RUN_REPORT_HEAD.match(head) is not None
        if report:
            log.warning("note: %s: a run report (%s), not a result; skipped", path,
                        RUN_REPORT_SCHEMA)
        marks.append(report)
    return marks


def _modified(place: object, storage_options: dict[str, Any] | None) -> float | None:
    if isinstance(place, storage.ObjectPath) or storage.is_url(place):
        try:
            return storage.modified(str(place), storage_options)
        except UsageError:
            raise
        except Exception:  # denied, unreachable: not known to be up to date
            return None
    try:
        return os.stat(place).st_mtime  # type: ignore[arg-type]
    except OSError:
        return None


def is_up_to_date(job: Job, writers: Sequence[type[Writer]],
                  storage_options: dict[str, Any] | None = None) -> bool:
    """Every output exists and is newer than the input (a rerun after a crash skips it);
    objects in a store by their modification times."""
    try:
        source_time = _modified(job.source, storage_options)
        if source_time is None:
            return False
        for target in targets_of(job, writers).values():
            when = _modified(target, storage_options)
            if when is None or when < source_time:
                return False
        return True
    except (OSError, UsageError):
        return False


def convert_many(sources: Iterable[str | os.PathLike | Job], to: str | Sequence[str] = "jsonl",
                 out_dir: str | os.PathLike | None = None,
                 options: dict[str, Any] | None = None, *, jobs: int | None = None,
                 executor: Executor | None = None, timeout: float | None = None,
                 memory_limit_mb: int | None = None, skip_existing: bool = False,
                 on_planned: Callable[[int], None] | None = None,
                 on_report: Callable[[Report], None] | None = None,
                 storage_options: dict[str, Any] | None = None) -> list[Report]:
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
    runs left in the output folders are removed first.  Inputs and ``out_dir`` may be URLs
    (``s3://bucket/results/``), opened with ``storage_options``; on a cluster these carry no
    credential (workers use their own environment and profiles).
    """
    from .isolation import NOT_CONVERTED, run_isolated

    writers = formats(to)
    names = [w.name for w in writers]
    if storage_options is not None:
        options = {**(options or {}), option_rules.STORAGE_OPTIONS: storage_options}
    # fail fast on bad options
    storage_options = option_rules.normalise(options, writers)[option_rules.STORAGE_OPTIONS]
    _keep_secrets_home(storage_options, executor)
    planned = plan_jobs(sources, writers, out_dir, storage_options)
    _check_review_pdf(options, planned)
    remove_stale_temporaries(job.folder for job in planned if isinstance(job, Job))
    if on_planned is not None:
        on_planned(len(planned))
    results: dict[int, Report] = {}

    def done(index: int, report: Report) -> None:
        report.source = storage.display(report.source)  # a signed URL's query is a secret
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
            elif skip_existing and is_up_to_date(job, writers, storage_options):
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
            source=storage.display(job.source), error=NOT_CONVERTED, interrupted=True)
            for i, job in enumerate(planned)]) from None
    finally:
        if own:
            pool.shutdown(wait=not interrupted, cancel_futures=interrupted)
        if server is not None:
            server.close()
    return [results[i] for i in range(len(planned))]


def _keep_secrets_home(storage_options: dict[str, Any], executor: Executor | None) -> None:
    """Credentials among the storage options may reach this machine's own workers (through
    a pipe), never another machine's: a cluster's workers use their own environment."""
    if executor is not None and not isinstance(executor, ThreadPoolExecutor):
        storage.refuse_secrets(storage_options)


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


def write_run_report(path: str | os.PathLike, reports: list[Report], seconds: float,
                     storage_options: dict[str, Any] | None = None) -> None:
    """The batch's outcome as JSON, written atomically (``-``: to standard output; a URL: an
    object): every input with its result.  ``_schema`` comes first, so a later batch over
    the folder knows the file for what it is."""
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
    with AtomicFile(path, binary=False, storage_options=storage_options) as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
