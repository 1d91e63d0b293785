"""A LlamaIndex reader for saved xParse results (``xparse-convert[llama-index]``).

    from xparse_convert.integrations.llama_index import XParseResultReader
    docs = XParseResultReader().load_data("results/")

Reads the files (a result, a folder, a glob), never the API; ``lazy_load_data`` streams.
The bulky metadata (boxes, spans, table rows) is kept from embeddings and prompts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

try:
    from llama_index.core.readers.base import BaseReader
    from llama_index.core.schema import Document
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("XParseResultReader needs llama-index-core: pip install "
                      "'xparse-convert[llama-index]'") from exc

from ..pipelines import BULKY_METADATA, documents


class XParseResultReader(BaseReader):
    """Documents of saved results: one per chunk (``mode="chunks"``; ``options`` takes the
    ``chunk_*`` options and the filters) or one per logical element (``mode="elements"``)."""

    def __init__(self, mode: str = "chunks", options: dict[str, Any] | None = None) -> None:
        self.mode = mode
        self.options = options

    def lazy_load_data(self, path_or_glob: str | os.PathLike[str],  # type: ignore[override]
                       **load_kwargs: Any) -> Iterable[Document]:
        for id_, text, metadata in documents(path_or_glob, self.mode, self.options):
            bulky = [k for k in BULKY_METADATA if k in metadata]
            yield Document(text=text, metadata=metadata, id_=id_,
                           excluded_embed_metadata_keys=bulky,
                           excluded_llm_metadata_keys=bulky)

    def load_data(self, path_or_glob: str | os.PathLike[str],  # type: ignore[override]
                  **load_kwargs: Any) -> list[Document]:
        return list(self.lazy_load_data(path_or_glob, **load_kwargs))
