"""Converting inputs: one parse feeds every requested writer; outputs appear atomically.

``convert`` handles one input and raises ``XParseError`` when it fails; ``convert_many`` runs
a batch (serially or in a process pool) and returns one ``Report`` per input, a failure in one
never stopping the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import options as option_rules
from .diagnostics import Diagnostics
from .errors import UsageError, XParseError
from .model import Element
from .output import OutputSet
from .reader import Reader
from .source import SourceLike, stem_of
from .stages import logical, select
from .writers import Writer, WriterContext, get


@dataclass
class Report:
    """What happened to one input."""

    source: str
    outputs: dict[str, str] = field(default_factory=dict)  # format -> path ("-" for stdout)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    error: str | None = None
    error_where: str | None = None
    pages: int | None = None
    elements: int = 0
    seconds: float = 0.0
    bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "ok": self.ok, "outputs": self.outputs,
            "error": self.error, "error_where": self.error_where, "warnings": self.warnings,
            "warning_count": self.warning_count, "pages": self.pages,
            "elements": self.elements, "seconds": round(self.seconds, 3), "bytes": self.bytes,
        }


def _formats(to: str | Sequence[str]) -> list[type[Writer]]:
    names = [n.strip() for n in (to.split(",") if isinstance(to, str) else to) if n.strip()]
    if not names:
        raise UsageError("no output format given")
    writers: list[type[Writer]] = []
    for name in names:
        cls = get(name)
        if cls not in writers:
            writers.append(cls)
    return writers


def output_paths(stem: str, out_dir: Path, writers: Sequence[type[Writer]]) -> dict[str, Path]:
    return {w.name: out_dir / f"{stem}.{w.extension}" for w in writers}


def convert(src: SourceLike, to: str | Sequence[str] = "jsonl", out_dir: str | os.PathLike | None
            = None, options: dict[str, Any] | None = None, *, name: str | None = None,
            stdout: bool = False, progress: Callable[[int], None] | None = None) -> Report:
    """Convert one xParse result to the formats in ``to`` (``"docx,md"`` or a list).

    Outputs are ``out_dir/<stem>.<ext>`` (default: beside the input; the current folder for
    streams), written atomically.  ``stdout=True`` writes the single text format to standard
    output.  Raises ``XParseError`` on failure, leaving nothing behind.
    """
    started = time.perf_counter()
    writers_cls = _formats(to)
    opts = option_rules.normalise(options, writers_cls)
    if stdout and (len(writers_cls) != 1 or writers_cls[0].binary):
        raise UsageError("-o - (standard output) takes one input and one text format")
    diag = Diagnostics(name or str(src))
    wants_markdown = any(w.wants_engine_markdown(opts) for w in writers_cls)
    with Reader(src, name=name, want_markdown=wants_markdown, diagnostics=diag,
                progress=progress) as reader:
        source = reader.source
        diag.source = source.name
        if out_dir is not None:
            folder = Path(out_dir)
        elif source.path is not None:
            folder = source.path.parent
        else:
            folder = Path.cwd()
        targets = output_paths(source.stem, folder, writers_cls)
        outputs = OutputSet(folder / f"{source.stem}_files")
        report = Report(source=source.name, bytes=source.size)
        try:
            context = WriterContext(options=opts, diag=diag, assets=outputs.assets,
                                    engine_markdown=reader.markdown)
            writers = [cls(outputs.open(None if stdout else targets[cls.name], cls.binary),
                           context) for cls in writers_cls]
            _run(reader, writers, opts, diag)
            if context.text_stats:
                stats = context.text_stats
                diag.warn("text-cleaned", f"{stats.removed} control character(s) removed and "
                          f"{stats.replaced} invalid character(s) replaced to keep the output "
                          "valid")
            outputs.commit()
        except BaseException:
            outputs.abort()
            raise
        report.outputs = {k: ("-" if stdout else str(v)) for k, v in targets.items()}
        report.pages = reader.info.page_count
        report.elements = reader.info.element_count
    report.warnings = diag.lines()
    report.warning_count = diag.count
    report.seconds = time.perf_counter() - started
    return report


def _run(reader: Reader, writers: list[Writer], opts: dict[str, Any], diag: Diagnostics) -> None:
    """One pass: raw writers see every selected element, logical writers the logical
    document."""
    raw = [w for w in writers if w.consumption(opts) == "raw"]
    logical_writers = [w for w in writers if w.consumption(opts) == "logical"]
    info = reader.info
    for writer in writers:
        writer.begin(info)
    dropped: set[str] = set()
    stream: Iterator[Element] = select(reader.elements(), pages=opts["pages"],
                                       types=opts["types"], exclude_types=opts["exclude_types"],
                                       dropped=dropped)
    if raw:
        stream = _tee(stream, raw)
    if logical_writers:
        furniture = bool(opts["furniture"])
        document = logical(select(stream, furniture=furniture, dropped=dropped), diag, dropped)
        for element in document:
            for writer in logical_writers:
                writer.write(element)
    else:
        for _ in stream:
            pass
    for writer in writers:
        writer.end(info)


def _tee(stream: Iterable[Element], writers: list[Writer]) -> Iterator[Element]:
    for element in stream:
        for writer in writers:
            writer.write(element)
        yield element


# -- batches -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One input of a batch, with where its outputs go."""

    source: str
    out_dir: str | None
    name: str | None = None


def run_job(job: Job, to: Sequence[str], options: dict[str, Any] | None) -> Report:
    """Convert one job, turning every failure into a report (safe to run in a worker)."""
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


def plan_jobs(sources: Iterable[str | os.PathLike], to: Sequence[str],
              out_dir: str | os.PathLike | None) -> tuple[list[Job], list[Report]]:
    """Expand folders (every ``*.json``/``*.json.gz`` below them, mirrored under ``out_dir``)
    and refuse a second input that would write the same outputs as an earlier one."""
    writers = _formats(to)
    jobs: list[Job] = []
    refused: list[Report] = []
    claimed: dict[Path, str] = {}
    for src in sources:
        src_path = Path(src)
        if os.fspath(src) != "-" and src_path.is_dir():
            found = sorted(p for p in src_path.rglob("*")
                           if p.is_file() and p.name.lower().endswith((".json", ".json.gz")))
            entries = [(p, Path(out_dir) / p.parent.relative_to(src_path) if out_dir else None)
                       for p in found]
        else:
            entries = [(src_path, Path(out_dir) if out_dir else None)]
        for path, folder in entries:
            stem = stem_of(os.fspath(path))
            target_dir = folder if folder is not None else (
                path.parent if os.fspath(path) != "-" else Path.cwd())
            paths = output_paths(stem, target_dir, writers).values()
            clash = next((claimed[p] for p in paths if p.resolve() in claimed), None)
            if clash is not None:
                refused.append(Report(source=os.fspath(path), error=(
                    f"its output would overwrite the output of {clash} in this run")))
                continue
            for p in paths:
                claimed[p.resolve()] = os.fspath(path)
            jobs.append(Job(os.fspath(path), os.fspath(folder) if folder is not None else None))
    return jobs, refused


def convert_many(sources: Iterable[str | os.PathLike], to: str | Sequence[str] = "jsonl",
                 out_dir: str | os.PathLike | None = None,
                 options: dict[str, Any] | None = None, *, jobs: int = 1,
                 executor: Executor | None = None,
                 on_report: Callable[[Report], None] | None = None) -> list[Report]:
    """Convert many inputs; one report per input, in input order.

    ``jobs`` > 1 uses a process pool of that size; an ``executor`` given is used as it is.
    A failing input is a report with ``error`` set; the others go on.
    """
    formats = [w.name for w in _formats(to)]
    option_rules.normalise(options, [get(f) for f in formats])  # fail fast on bad options
    planned, refused = plan_jobs(sources, formats, out_dir)
    reports: list[Report] = []
    if executor is None and jobs <= 1:
        for job in planned:
            report = run_job(job, formats, options)
            reports.append(report)
            if on_report:
                on_report(report)
    else:
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=jobs)
        try:
            futures = [pool.submit(run_job, job, formats, options) for job in planned]
            for job, future in zip(planned, futures):
                try:
                    report = future.result()
                except Exception as exc:  # a worker that died takes only its own input
                    report = Report(source=job.source, error=f"worker failed: {exc}")
                reports.append(report)
                if on_report:
                    on_report(report)
        finally:
            if own:
                pool.shutdown()
    for report in refused:
        if on_report:
            on_report(report)
    return reports + refused


