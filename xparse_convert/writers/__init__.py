"""The writer registry: built-in formats plus plug-ins from the ``xparse_convert.writers``
entry-point group."""

from __future__ import annotations

from importlib import metadata

from ..errors import UsageError
from .base import Assets, Option, Writer, WriterContext
from .docx import DocxWriter
from .jsonl import JsonlWriter
from .markdown import MarkdownWriter
from .xlsx import XlsxWriter

ENTRY_POINT_GROUP = "xparse_convert.writers"

BUILTIN: dict[str, type[Writer]] = {
    DocxWriter.name: DocxWriter,
    JsonlWriter.name: JsonlWriter,
    MarkdownWriter.name: MarkdownWriter,
    XlsxWriter.name: XlsxWriter,
}

ALIASES = {"markdown": "md", "json-lines": "jsonl", "word": "docx", "excel": "xlsx"}


def _plugins() -> dict[str, type[Writer]]:
    found: dict[str, type[Writer]] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception as exc:  # a broken plug-in must not break the built-ins
            import warnings

            warnings.warn(f"writer plug-in {entry.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if isinstance(cls, type) and issubclass(cls, Writer):
            found[entry.name] = cls
    return found


def available() -> dict[str, type[Writer]]:
    """Every writer by its ``--to`` name: built-ins first, then plug-ins (which cannot replace a
    built-in)."""
    writers = dict(BUILTIN)
    for name, cls in _plugins().items():
        writers.setdefault(name, cls)
    return writers


def get(name: str) -> type[Writer]:
    """The writer class for a format name; ``UsageError`` naming the choices when unknown."""
    writers = available()
    key = ALIASES.get(name.lower(), name.lower())
    if key in writers:
        return writers[key]
    raise UsageError(f"unknown format {name!r} (choose from {', '.join(sorted(writers))})")


__all__ = ["Assets", "Option", "Writer", "WriterContext", "available", "get", "BUILTIN",
           "ENTRY_POINT_GROUP"]
