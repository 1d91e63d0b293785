"""A LangChain document loader for saved xParse results (``xparse-convert[langchain]``).

    from xparse_convert.integrations.langchain import XParseResultLoader
    docs = XParseResultLoader("results/**/*.json").lazy_load()

Reads the files (a result, a folder, a glob), never the API; streams (one result open at a
time, one chunk at a time); metadata as ``pipelines.flat_metadata`` gives it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

try:
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("XParseResultLoader needs langchain-core: pip install "
                      "'xparse-convert[langchain]'") from exc

from ..pipelines import documents


class XParseResultLoader(BaseLoader):
    """Documents of saved results: one per chunk (``mode="chunks"``; ``options`` takes the
    ``chunk_*`` options and the filters) or one per logical element (``mode="elements"``)."""

    def __init__(self, path_or_glob: str | os.PathLike[str], mode: str = "chunks",
                 options: dict[str, Any] | None = None) -> None:
        self.path = path_or_glob
        self.mode = mode
        self.options = options

    def lazy_load(self) -> Iterator[Document]:
        for id_, text, metadata in documents(self.path, self.mode, self.options):
            yield Document(page_content=text, metadata=metadata, id=id_)
