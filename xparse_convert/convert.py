"""Converting one input: one parse feeds every requested writer; outputs appear atomically.
``convert`` raises ``XParseError`` when the input cannot be converted (see ``batch`` for many
inputs)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import options as option_rules
from .diagnostics import Diagnostics
from .errors import UsageError
from .model import Element
from .output import OutputSet
from .reader import Reader
from .source import SourceLike
from .stages import logical, select
from .writers import Writer, WriterContext, get

log = logging.getLogger("xparse_convert")


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "ok": self.ok, "outputs": self.outputs,
            "error": self.error, "error_where": self.error_where, "warnings": self.warnings,
            "warning_count": self.warning_count, "pages": self.pages,
            "elements": self.elements, "seconds": round(self.seconds, 3), "bytes": self.bytes,
            "skipped": self.skipped, "interrupted": self.interrupted,
        }


def formats(to: str | Sequence[str]) -> list[type[Writer]]:
    """The writer classes for ``"docx,md"`` or a list of names, each once, in order."""
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
    writers_cls = formats(to)
    opts = option_rules.normalise(options, writers_cls)
    if stdout and (len(writers_cls) != 1 or writers_cls[0].binary):
        raise UsageError("-o - (standard output) takes one input and one text format")
    if stdout and opts["images"] is None:
        opts["images"] = "embed"  # a stream cannot point at files beside it
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
        writers: list[Writer] = []
        try:
            context = WriterContext(options=opts, diag=diag, assets=outputs.assets,
                                    engine_markdown=reader.markdown)
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
    raw = [w for w in writers if w.consumption(opts) == "raw"]
    logical_writers = [w for w in writers if w.consumption(opts) == "logical"]
    info = reader.info
    for writer in writers:
        writer.begin(info)
        writer.begun = True
    dropped: set[str] = set()
    furniture = bool(opts["furniture"])
    # raw writers see furniture whatever --furniture says; without them one filter does all
    stream: Iterator[Element] = select(reader.elements(), pages=opts["pages"],
                                       types=opts["types"], exclude_types=opts["exclude_types"],
                                       furniture=furniture or bool(raw), dropped=dropped)
    if raw:
        stream = _tee(stream, raw)
        if not furniture:
            stream = select(stream, furniture=False, dropped=dropped)
    if logical_writers:
        document = logical(stream, diag, dropped)
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
