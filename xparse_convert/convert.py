"""Converting one input: one parse feeds every requested writer; outputs appear atomically.
``convert`` raises ``XParseError`` when the input cannot be converted (see ``batch`` for many
inputs)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import options as option_rules
from .diagnostics import Diagnostics
from .errors import UsageError, XParseError
from .model import Element
from .output import OutputSet
from .reader import Reader
from .source import SourceLike
from .stages import Dropped, logical, select
from .storage import Remote, display, is_url
from .targets import assets_folder, check_stem, formats, output_folder, output_paths, streamable
from .writers import Writer, WriterContext
from .writers.base import unread_fields

log = logging.getLogger("xparse_convert")

# what an input can do to its own conversion (``Report.failed``): anything else is a bug
INPUT_FAILURES: tuple[type[BaseException], ...] = (XParseError, OSError, MemoryError)


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
    skipped: bool = False  # outputs were newer than the input (``skip_existing``)
    interrupted: bool = False  # not converted: the batch was stopped (Ctrl-C, SIGTERM) first

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, source: str, exc: BaseException, *, seconds: float = 0.0,
               memory_limit_mb: int | None = None) -> Report:
        """The one report of a conversion that raised ``exc`` (the one exception policy):
        ``XParseError``, ``OSError`` and ``MemoryError`` are the input's own reason; anything
        else is an internal error, said as such.  Callers that can show a traceback (the
        command line with ``--debug``) let those through instead of calling this
        (``INPUT_FAILURES`` names the input's own)."""
        limit = f" (limit {memory_limit_mb} MB)" if memory_limit_mb else ""
        where = None
        if isinstance(exc, XParseError):
            source, error, where = exc.source or source, exc.message, exc.where
        elif isinstance(exc, MemoryError) or (memory_limit_mb and isinstance(
                exc, (ImportError, OSError)) and "map" in str(exc)):
            error = f"out of memory{limit}"  # under a cap, a library may not even load
        elif isinstance(exc, OSError):
            error = f"{exc.strerror or exc}"
        else:  # a bug must fail this input with its reason, not the run
            error = f"internal error ({type(exc).__name__}: {exc}); please report it"
        return cls(source=source, error=error, error_where=where, seconds=seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "ok": self.ok, "outputs": self.outputs,
            "error": self.error, "error_where": self.error_where, "warnings": self.warnings,
            "warning_count": self.warning_count, "pages": self.pages,
            "elements": self.elements, "seconds": round(self.seconds, 3), "bytes": self.bytes,
            "skipped": self.skipped, "interrupted": self.interrupted,
        }


def convert(src: SourceLike, to: str | Sequence[str] = "jsonl", out_dir: str | os.PathLike | None
            = None, options: dict[str, Any] | None = None, *, name: str | None = None,
            stem: str | None = None, stdout: bool = False,
            progress: Callable[[int], None] | None = None,
            storage_options: dict[str, Any] | None = None) -> Report:
    """Convert one xParse result to the formats in ``to`` (``"docx,md"`` or a list).

    Outputs are ``out_dir/<stem>.<ext>`` (default: beside the input; the current folder for
    streams), written atomically; ``stem`` (else ``name``, else the input's name without
    extension) must be a plain file name.  ``name`` also names a stream in messages.
    ``stdout=True`` writes the single text format to standard output.  Raises
    ``XParseError`` on failure, leaving nothing behind.  ``src`` and ``out_dir`` may be URLs
    (``s3://bucket/key.json``, ``s3://bucket/out/``; see ``storage``), opened with
    ``storage_options`` (the protocol's fsspec options; also ``options["storage_options"]``).
    """
    started = time.perf_counter()
    writers_cls = formats(to)
    if storage_options is not None:
        options = {**(options or {}), option_rules.STORAGE_OPTIONS: storage_options}
    opts = option_rules.normalise(options, writers_cls)
    remote_options = opts[option_rules.STORAGE_OPTIONS]
    if isinstance(src, str) and is_url(src):
        src = Remote(src, remote_options)
    for given in (name, stem):
        if given is not None:
            check_stem(given)
    if stdout and (len(writers_cls) != 1 or not streamable(writers_cls[0])):
        raise UsageError("-o - (standard output) takes one input and one text format")
    if stdout and opts["images"] is None:
        opts["images"] = "embed"  # a stream cannot point at files beside it
    diag = Diagnostics(name or (display(src.url) if isinstance(src, Remote) else str(src)))
    wants_markdown = any(w.wants_engine_markdown(opts) for w in writers_cls)
    with Reader(src, name=name, want_markdown=wants_markdown, diagnostics=diag,
                progress=progress, max_depth=opts["max_depth"],
                max_string_mb=opts["max_string_mb"],
                skip=unread_fields(writers_cls, opts)) as reader:
        source = reader.source
        diag.source = source.name
        folder = output_folder(source.location, out_dir)
        stem = stem or source.stem
        targets = output_paths(stem, folder, writers_cls)
        outputs = OutputSet(assets_folder(stem, folder), remote_options)
        report = Report(source=source.name, bytes=source.size)
        writers: list[Writer] = []
        try:
            context = WriterContext(options=opts, diag=diag, assets=outputs.assets,
                                    engine_markdown=reader.markdown,
                                    open_output=lambda ext, binary: outputs.open(
                                        folder / f"{stem}.{ext}", binary))
            for cls in writers_cls:
                writers.append(cls(outputs.open(None if stdout else targets[cls.name],
                                                cls.binary), context))
            _run(reader, writers, opts, diag)
            if context.text_stats:
                stats = context.text_stats
                diag.warn("text-cleaned", f"{stats.removed} control character(s) removed and "
                          f"{stats.replaced} invalid character(s) replaced to keep the output "
                          "valid")
            outputs.commit()
        except BaseException:
            _discard(writers, outputs)
            raise
        report.outputs = {k: ("-" if stdout else str(v)) for k, v in targets.items()}
        report.pages = reader.info.page_count
        report.elements = reader.info.element_count
    report.warnings = diag.lines()
    report.warning_count = diag.count
    report.seconds = time.perf_counter() - started
    return report


def _discard(writers: list[Writer], outputs: OutputSet) -> None:
    """Undo a failed conversion: every begun writer's ``abort`` runs and every temporary file
    goes, whatever one of them raises (on a full disk an abort can fail too); the caller then
    sees the error that failed the conversion, not one from the cleanup."""
    try:
        for writer in writers:
            if writer.begun:
                try:
                    writer.abort()
                except Exception as exc:
                    log.debug("%s: abort failed: %s", writer.name, exc)
    finally:
        outputs.abort()


def _run(reader: Reader, writers: list[Writer], opts: dict[str, Any], diag: Diagnostics) -> None:
    """One pass: raw writers see every selected element, logical writers the logical
    document."""
    raw = [w for w in writers if w.consumption(opts) in ("raw", "both")]
    logical_writers = [w for w in writers if w.consumption(opts) in ("logical", "both")]
    info = reader.info
    for writer in writers:
        writer.begin(info)
        writer.begun = True
    dropped = Dropped()  # what select left out, for the stage that joins chains
    furniture = bool(opts["furniture"])
    choice = _Choice(opts)
    # furniture for writers that place it themselves, whatever --furniture says
    placing = [w for w in logical_writers if w.page_furniture] if not furniture else []
    # raw writers see furniture whatever --furniture says; without them one filter does all
    stream: Iterator[Element] = select(choice.watch(reader.elements()), pages=opts["pages"],
                                       types=opts["types"], exclude_types=opts["exclude_types"],
                                       furniture=furniture or bool(raw) or bool(placing),
                                       dropped=dropped)
    stream = choice.count(stream)
    if raw:
        stream = _tee(stream, raw)
    if placing:
        stream = _furniture_to(stream, placing)
    elif raw and not furniture:
        stream = select(stream, furniture=False, dropped=dropped)
    if logical_writers:
        document = logical(stream, diag, dropped)
        for element in document:
            for writer in logical_writers:
                writer.write(element)
    else:
        for _ in stream:
            pass
    choice.report(info, diag)
    for writer in writers:
        writer.end(info)


class _Choice:
    """What ``--pages``/``--types``/``--exclude-types`` chose from one input, so that a choice
    that selects nothing, or pages the document does not have, is said and not silent."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.pages = opts["pages"]
        self.types = opts["types"]
        self.exclude = opts["exclude_types"]
        self.active = any(v is not None for v in (self.pages, self.types, self.exclude))
        self.seen: dict[str, int] = {}
        self.kept = 0

    def watch(self, elements: Iterator[Element]) -> Iterator[Element]:
        """The input's elements, counted by type (what the filters chose from)."""
        return self._counted(elements, self._saw) if self.active else elements

    def count(self, elements: Iterator[Element]) -> Iterator[Element]:
        """The chosen elements, counted.  Furniture counts as chosen here: leaving it out is
        the default, not the user's filter."""
        return self._counted(elements, self._kept) if self.active else elements

    def _saw(self, element: Element) -> None:
        self.seen[element.type] = self.seen.get(element.type, 0) + 1

    def _kept(self, element: Element) -> None:
        self.kept += 1

    @staticmethod
    def _counted(elements: Iterator[Element], note: Callable[[Element], None]
                 ) -> Iterator[Element]:
        for element in elements:
            note(element)
            yield element

    def report(self, info: Any, diag: Diagnostics) -> None:
        if not self.active:
            return
        total = info.page_count
        beyond = [(a, b) for a, b in self.pages.ranges if a > total or (b or 0) > total] \
            if self.pages is not None and total else []
        if beyond:
            asked = ",".join(str(a) if a == b else f"{a}-{'' if b is None else b}"
                             for a, b in beyond)
            diag.warn("pages-beyond", f"--pages {asked} goes beyond the document's {total} "
                      f"page{'s' if total != 1 else ''}")
        if self.kept or not self.seen or (
                beyond and self.types is None and self.exclude is None):
            return
        asked_for = []
        if self.types is not None:
            asked_for.append(f"--types {','.join(sorted(self.types))}")
        if self.exclude is not None:
            asked_for.append(f"--exclude-types {','.join(sorted(self.exclude))}")
        if self.pages is not None:
            asked_for.append("--pages")
        present = sorted(self.seen, key=lambda t: -self.seen[t])
        hint = ""
        if self.types is not None:
            near = sorted({p for p in present for t in self.types
                           if p != t and p.lower() == t.lower()})
            if near:
                hint = f"; did you mean {', '.join(near)}?"
        diag.warn("selected-nothing", f"{' with '.join(asked_for)} selected no element of "
                  f"this input (its types: {', '.join(present[:8])}"
                  f"{', ...' if len(present) > 8 else ''}){hint}")


def _furniture_to(stream: Iterable[Element], writers: list[Writer]) -> Iterator[Element]:
    """The stream without its furniture, which goes to ``writers`` as it is read (outside
    the logical stage, so it cannot change how the other writers' document is joined)."""
    for element in stream:
        if element.is_furniture:
            for writer in writers:
                writer.write(element)
        else:
            yield element


def _tee(stream: Iterable[Element], writers: list[Writer]) -> Iterator[Element]:
    for element in stream:
        for writer in writers:
            writer.write_raw(element)
        yield element
