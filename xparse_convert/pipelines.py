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
    """The result files a path names: a file; every ``.json``/``.json.gz`` below a folder;
    the matches of a glob (``out/**/*.json``); in sorted order, lazily per folder."""
    text = os.fspath(path_or_glob)
    path = Path(text)
    if path.is_file():
        yield path
        return
    if path.is_dir():
        found = False
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for file in sorted(files):
                if file.endswith(RESULT_SUFFIXES) and not file.startswith("."):
                    found = True
                    yield Path(folder) / file
        if not found:
            raise UsageError(f"{text}: no .json or .json.gz results in this folder")
        return
    matches = sorted(glob.iglob(text, recursive=True))
    if not matches:
        raise UsageError(f"{text}: no such file, folder or matching results")
    for match in matches:
        if Path(match).is_file():
            yield Path(match)
