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
from .stages import Dropped, logical, select
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


def streamable(writer: type[Writer]) -> bool:
    """True when the format is text that a pipe or terminal can take (JSONL is, though it is
    written as bytes; DOCX and XLSX are not)."""
    return writer.text if writer.text is not None else not writer.binary


def check_stem(stem: str, label: str = "output name") -> str:
    """``stem`` when it names a file and nothing else: no folder part, absolute or relative,
    so outputs named by it stay in their folder; else ``UsageError``."""
    if (not stem or stem in (".", "..") or any(c in stem for c in "/\\\0")
            or os.path.isabs(stem)):
        raise UsageError(f"{label} {stem!r} must be a plain file name (no folder, no '..'), "
                         "so the outputs stay in their folder")
    return stem


@dataclass(frozen=True)
class OutputTarget:
    """Where ``-o`` sends the outputs: standard output, one file (``folder``/``stem`` +
    the format's extension), or a folder (``None``: beside each input)."""

    formats: tuple[str, ...]
    folder: Path | None = None
    stem: str | None = None  # the output name when -o names a file, or --name
    stdout: bool = False
    file: Path | None = None  # -o as given, when it names a file


def resolve_output(output: str | os.PathLike | None, to: str | Sequence[str] | None, *,
                   several_inputs: bool = False, name: str | None = None) -> OutputTarget:
    """The one rule for ``-o`` (pandoc's): ``-`` is standard output; a path ending in the
    extension of the single requested format is that file (without ``to``, a known extension
    chooses the format: ``-o out.docx`` is DOCX); anything else (an existing folder, a path
    ending in ``/``, any other name) is a folder.  A file with several inputs or formats, or
    whose extension is not the requested format's, is a ``UsageError``, as is a ``name`` that
    is not a plain file name or that competes with a file ``-o``."""
    from .writers import available

    requested = formats(to) if to else []
    if name is not None:
        check_stem(name, "--name")
        if several_inputs:
            raise UsageError("--name names the outputs of one input; there are several")
    if output is not None and os.fspath(output) == "-":
        if several_inputs:
            raise UsageError("-o - (standard output) takes exactly one input")
        if len(requested) != 1 or not streamable(requested[0]):
            pipeable = sorted(n for n, w in available().items() if streamable(w))
            raise UsageError("-o - (standard output) takes one input and one text format "
                             f"({', '.join(pipeable)})")
        return OutputTarget((requested[0].name,), stdout=True, stem=name)
    path = Path(output) if output is not None else None
    text = os.fspath(output) if output is not None else ""
    extension = path.suffix[1:].lower() if path is not None else ""
    is_folder = text.endswith(("/", os.sep)) or (path is not None and path.is_dir())
    by_extension = [w for w in available().values() if w.extension.lower() == extension]
    if path is None or is_folder or not extension or not by_extension:
        if not requested:
            raise UsageError("--to FMT is required (see --list-formats), or -o FILE with the "
                             "format's extension")
        return OutputTarget(tuple(w.name for w in requested), folder=path, stem=name)
    if not requested:
        if len(by_extension) > 1:
            raise UsageError(f"-o {text}: .{extension} is written by "
                             f"{', '.join(w.name for w in by_extension)}; choose with --to")
        requested = by_extension
    if len(requested) > 1:
        raise UsageError(f"-o {text} names one file, but --to asks for {len(requested)} "
                         "formats; name a folder for several")
    if requested[0].extension.lower() != extension:
        raise UsageError(f"-o {text} ends in .{extension}, but --to asks for "
                         f"{requested[0].name} (.{requested[0].extension}); name a folder "
                         f"or a .{requested[0].extension} file")
    if several_inputs:
        raise UsageError(f"-o {text} names one file, but there are several inputs; name a "
                         "folder")
    if name is not None:
        raise UsageError(f"--name and -o {text} both name the output; give one of them")
    stem = path.name[: -len(path.suffix)]
    return OutputTarget((requested[0].name,), folder=path.parent, stem=check_stem(stem, "-o"),
                        file=path)


def convert(src: SourceLike, to: str | Sequence[str] = "jsonl", out_dir: str | os.PathLike | None
            = None, options: dict[str, Any] | None = None, *, name: str | None = None,
            stem: str | None = None, stdout: bool = False,
            progress: Callable[[int], None] | None = None) -> Report:
    """Convert one xParse result to the formats in ``to`` (``"docx,md"`` or a list).

    Outputs are ``out_dir/<stem>.<ext>`` (default: beside the input; the current folder for
    streams), written atomically; ``stem`` (else ``name``, else the input's name without
    extension) must be a plain file name.  ``name`` also names a stream in messages.
    ``stdout=True`` writes the single text format to standard output.  Raises
    ``XParseError`` on failure, leaving nothing behind.
    """
    started = time.perf_counter()
    writers_cls = formats(to)
    opts = option_rules.normalise(options, writers_cls)
    for given in (name, stem):
        if given is not None:
            check_stem(given)
    if stdout and (len(writers_cls) != 1 or not streamable(writers_cls[0])):
        raise UsageError("-o - (standard output) takes one input and one text format")
    if stdout and opts["images"] is None:
        opts["images"] = "embed"  # a stream cannot point at files beside it
    diag = Diagnostics(name or str(src))
    wants_markdown = any(w.wants_engine_markdown(opts) for w in writers_cls)
    with Reader(src, name=name, want_markdown=wants_markdown, diagnostics=diag,
                progress=progress, max_depth=opts["max_depth"],
                max_string_mb=opts["max_string_mb"]) as reader:
        source = reader.source
        diag.source = source.name
        if out_dir is not None:
            folder = Path(out_dir)
        elif source.path is not None:
            folder = source.path.parent
        else:
            folder = Path.cwd()
        stem = stem or source.stem
        targets = output_paths(stem, folder, writers_cls)
        outputs = OutputSet(folder / f"{stem}_files")
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
            writer.write(element)
        yield element
