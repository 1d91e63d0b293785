"""Data for pipelines in Python: chunks of a saved result, streamed, and the saved results a
path, folder or glob names (what the LangChain and LlamaIndex loaders read)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import options as option_rules
from .chunking import Chunker, ChunkOptions
from .errors import UsageError
from .reader import Reader
from .source import SourceLike
from .stages import Dropped, logical, select

RESULT_SUFFIXES = (".json", ".json.gz")


def iter_chunks(src: SourceLike, *, name: str | None = None,
                options: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The chunk records of one result (the ``--to chunks`` lines), each as soon as its
    chunk closes.  ``options`` takes the conversion options (``chunk_size``, ``pages``,
    ``furniture``...)."""
    from .writers.chunks import ChunksWriter

    opts = option_rules.normalise(options, [ChunksWriter])
    chunk_options = ChunkOptions.from_options(opts)
    with Reader(src, name=name, max_depth=opts["max_depth"],
                max_string_mb=opts["max_string_mb"]) as reader:
        dropped = Dropped()
        stream = select(reader.elements(), pages=opts["pages"], types=opts["types"],
                        exclude_types=opts["exclude_types"], furniture=bool(opts["furniture"]),
                        dropped=dropped)
        chunker = Chunker(chunk_options, reader.info)
        yield from chunker.chunks(logical(stream, reader.diag, dropped))


def result_paths(path_or_glob: str | os.PathLike[str]) -> Iterator[Path]:
    """The result files a path names: a file; every ``.json``/``.json.gz`` below a folder
    (hidden files and folders left out); the files a glob matches (``out/**/*.json``); in
    sorted order, lazily per folder.  ``UsageError`` when it names none."""
    text = os.fspath(path_or_glob)
    path = Path(text)
    if path.is_file():
        yield path
        return
    if path.is_dir():
        found = False
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(files):
                if file.endswith(RESULT_SUFFIXES) and not file.startswith("."):
                    found = True
                    yield Path(folder) / file
        if not found:
            raise UsageError(f"{text}: no .json or .json.gz results in this folder")
        return
    matches = [Path(m) for m in sorted(glob.iglob(text, recursive=True))]
    files = [m for m in matches if m.is_file()]
    if not files:
        raise UsageError(f"{text}: no such file, folder or matching results"
                         if not matches else f"{text}: the glob matches folders only")
    yield from files


def documents(path_or_glob: str | os.PathLike[str], mode: str = "chunks",
              options: dict[str, Any] | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, text, metadata) for every chunk (``mode="chunks"``) or every logical element with
    text (``mode="elements"``: one element each, never split) of the results a path, folder
    or glob names, streamed; what the loaders turn into their Documents.  Metadata holds
    scalars and lists of scalars only (see ``flat_metadata``)."""
    if mode not in ("chunks", "elements"):
        raise UsageError(f"mode must be chunks or elements, not {mode!r}")
    opts = dict(options or {})
    if mode == "elements":
        opts.update(chunk_by="element", chunk_size=ELEMENT_SIZE, chunk_overlap=0)
    for path in result_paths(path_or_glob):
        for record in iter_chunks(path, options=opts):
            yield record["chunk_id"], record["text"], flat_metadata(record, str(path))


ELEMENT_SIZE = 1 << 40  # "never split" for the elements mode
# the bulky fields a vector store keeps but an embedding or a prompt needs not see
BULKY_METADATA = ("boxes", "spans", "tables", "type_counts", "element_ids", "chunk_id")


def flat_metadata(record: dict[str, Any], source: str) -> dict[str, Any]:
    """A chunk record as vector stores take metadata: scalars and lists of scalars; boxes,
    spans, table rows and type counts as JSON strings; no None and no empty list (Chroma
    refuses both)."""
    import orjson

    meta: dict[str, Any] = {
        "source": source, "input": record["_input"], "file_id": record["_file_id"],
        "file_name": record["_file_name"], "chunk_id": record["chunk_id"],
        "chunk_index": record["chunk_index"], "headings": record["headings"],
        "heading": " > ".join(record["headings"]) or None,
        "element_ids": record["element_ids"], "pages": record["pages"],
        "page": record["pages"][0] if record["pages"] else None,
        "types": sorted(record["types"]),
        "table_ids": list(dict.fromkeys(t["table_id"] for t in record["tables"])),
        "size": record["size"], "oversize": record["oversize"], "overlap": record["overlap"],
        "boxes": orjson.dumps(record["boxes"]).decode(),
        "spans": orjson.dumps(record["spans"]).decode(),
        "tables": orjson.dumps(record["tables"]).decode(),
        "type_counts": orjson.dumps(record["types"], option=orjson.OPT_SORT_KEYS).decode(),
    }
    return {k: v for k, v in meta.items() if v is not None and v != []}
