"""Chunks for retrieval (``--to chunks``): one JSON line per chunk, ``<stem>.chunks.jsonl``.

The chunking rules and the record's fields are ``chunking``'s; this writer only feeds it the
logical document and writes each record as its chunk closes.
"""

from __future__ import annotations

from typing import Any

from ..chunking import Chunker, ChunkOptions
from ..json_lines import dumps_line
from ..model import DocumentInfo, Element
from .base import Writer


class ChunksWriter(Writer):
    name = "chunks"
    extension = "chunks.jsonl"
    binary = True
    text = True  # UTF-8 lines: `-o - | jq` works
    consumes = "logical"
    description = "retrieval chunks with provenance, one JSON object per chunk (--chunk-*)"

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return frozenset()  # chunks hold text, tables and captions, never characters or pictures

    def begin(self, info: DocumentInfo) -> None:
        self._chunker = Chunker(ChunkOptions.from_options(self.context.options), info)

    def default(self, element: Element) -> None:
        # Every type goes to the chunker, which decides by type (it is shared with Parquet)
        self._emit(self._chunker.feed(element))

    def end(self, info: DocumentInfo) -> None:
        self._emit(self._chunker.finish())

    def _emit(self, records: list[dict]) -> None:
        for record in records:
            self.out.write(dumps_line(record) + b"\n")
