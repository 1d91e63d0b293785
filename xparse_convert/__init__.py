"""xparse-convert: stream TextIn xParse results into DOCX, XLSX, HTML, JSONL and Markdown.

The public API::

    from xparse_convert import iter_elements, iter_tables, convert, convert_many, Writer
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from .batch import convert_many
from .convert import Report, convert
from .diagnostics import Diagnostics
from .errors import ApiError, InputError, OutputError, UsageError, XParseError
from .info import inspect
from .info import render as render_info
from .model import DocumentInfo, Element
from .pipelines import iter_chunks
from .reader import Reader, iter_elements
from .source import SourceLike
from .stages import logical
from .tables import Cell, Table
from .writers import Option, Writer, WriterContext

__version__ = "0.1.0"


def iter_tables(src: SourceLike, *, name: str | None = None, skip: Collection[str] = ()
                ) -> Iterator[Table]:
    """Every logical table of a result, streaming: continuation chains stitched into one
    ``Table`` (grid, spans, ``header_rows``, ``caption``, ``pages``, per-row provenance);
    ``skip``: element fields left out unread (see ``Reader``)."""
    with Reader(src, name=name, skip=skip) as reader:
        for element in logical(reader.elements(), reader.diag):
            if element.type == "Table" and element.table is not None:
                yield element.table  # its caption set by ``logical``


__all__ = [
    "ApiError", "Cell", "Diagnostics", "DocumentInfo", "Element", "InputError", "Option",
    "OutputError", "Reader", "Report", "Table", "UsageError", "Writer", "WriterContext",
    "XParseError", "convert", "convert_many", "inspect", "iter_chunks", "iter_elements",
    "iter_tables",
    "render_info", "__version__",
]
