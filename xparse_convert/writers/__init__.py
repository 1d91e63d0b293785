"""The writer registry: built-in formats plus plug-ins from the ``xparse_convert.writers``
entry-point group.  Writers are imported when first used, so a JSONL run never loads the
DOCX machinery."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import UsageError
from .base import Assets, Option, PageBreaks, Writer, WriterContext

if TYPE_CHECKING:
    from importlib import metadata

ENTRY_POINT_GROUP = "xparse_convert.writers"

# name -> "module:Class" (or a Writer class registered at run time)
BUILTIN: dict[str, str | type[Writer]] = {
    "chunks": "xparse_convert.writers.chunks:ChunksWriter",
    "docx": "xparse_convert.writers.docx:DocxWriter",
    "html": "xparse_convert.writers.html:HtmlWriter",
    "jsonl": "xparse_convert.writers.jsonl:JsonlWriter",
    "md": "xparse_convert.writers.markdown:MarkdownWriter",
    "parquet": "xparse_convert.writers.parquet:ParquetWriter",
    "review": "xparse_convert.writers.review:ReviewWriter",
    "xlsx": "xparse_convert.writers.xlsx:XlsxWriter",
}

ALIASES = {"markdown": "md", "json-lines": "jsonl", "word": "docx", "excel": "xlsx", "htm": "html"}


def _load(spec: str | type[Writer]) -> type[Writer]:
    if isinstance(spec, str):
        module, _, attr = spec.partition(":")
        return getattr(import_module(module), attr)
    return spec


def _entry_points() -> list[metadata.EntryPoint]:
    from importlib import metadata  # 20-30 ms of imports, paid only when plug-ins are looked up

    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _plugins() -> dict[str, type[Writer]]:
    found: dict[str, type[Writer]] = {}
    for entry in _entry_points():
        if entry.name in BUILTIN:
            continue  # a plug-in cannot replace a built-in
        try:
            cls = entry.load()
        except Exception as exc:  # a broken plug-in must not break the built-ins
            import warnings

            warnings.warn(f"writer plug-in {entry.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if isinstance(cls, type) and issubclass(cls, Writer):
            found[entry.name] = cls
            undeclared = cls.undeclared_methods()
            if undeclared:
                import warnings

                warnings.warn(f"writer plug-in {entry.name!r}: method(s) "
                              f"{', '.join(undeclared)} are not called for any element type; "
                              "declare the types they render in the class's `types`",
                              stacklevel=2)
    return found


def available() -> dict[str, type[Writer]]:
    """Every writer by its ``--to`` name: built-ins first, then plug-ins."""
    writers = {name: _load(spec) for name, spec in BUILTIN.items()}
    writers.update(_plugins())
    return writers


def get(name: str) -> type[Writer]:
    """The writer class for a format name; ``UsageError`` naming the choices when unknown."""
    key = ALIASES.get(name.lower(), name.lower())
    if key in BUILTIN:
        return _load(BUILTIN[key])
    plugins = _plugins()
    if key in plugins:
        return plugins[key]
    choices = sorted({*BUILTIN, *plugins})
    raise UsageError(f"unknown format {name!r} (choose from {', '.join(choices)})")


def names() -> list[str]:
    """Every format name, without importing the writers."""
    return sorted({*BUILTIN, *(e.name for e in _entry_points())})


__all__ = ["Assets", "Option", "PageBreaks", "Writer", "WriterContext", "available", "get",
           "names", "BUILTIN", "ENTRY_POINT_GROUP"]
