"""JSONL: one line per input element, lossless, with the document context each line needs to
stand alone in an ETL table.

Line schema version 1 (documented in the README; additions only within a version):
every field of the element as the input had it (legacy input: the mapped 1.x shape), plus

``_schema``  ``"xparse-convert.jsonl/1"``
``_input``   the input's name (output stem)
``_file_id`` / ``_file_name`` / ``_schema_version``  from the result (null when unknown yet)
``_index``   the element's 0-based position in the input's element list

With ``--jsonl-cells`` each line is one cell of a logical table instead:
``_schema`` ``"xparse-convert.jsonl-cells/1"``, ``_input``, ``_file_id``, ``_file_name``,
``table_id`` (its first element id), ``table_index``, ``row``, ``col`` (0-based), ``row_span``,
``col_span``, ``header``, ``text``, ``page``, ``element_id``.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..json_lines import dumps_line
from ..model import HEAVY_FIELDS, DocumentInfo, Element
from .base import Option, Writer

LINE_SCHEMA = "xparse-convert.jsonl/1"
CELL_SCHEMA = "xparse-convert.jsonl-cells/1"


def _drop(value: Any, names: frozenset[str]) -> Any:
    """A copy of ``value`` without keys in ``names`` at any depth (shares untouched parts)."""
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            if key in names:
                changed = True
                continue
            new = _drop(item, names)
            changed = changed or new is not item
            out[key] = new
        return out if changed else value
    if isinstance(value, list):
        items = [_drop(item, names) for item in value]
        if any(a is not b for a, b in zip(items, value)):
            return items
    return value


class JsonlWriter(Writer):
    name = "jsonl"
    extension = "jsonl"
    binary = True
    text = True  # UTF-8 lines: `-o - | jq` works
    consumes = "raw"
    description = "one JSON object per element (lossless), or per table cell"
    options = (
        Option("drop", "leave out heavy fields: char_details, base64", kind=list,
               choices=HEAVY_FIELDS),
        Option("cells", "one line per table cell of each logical table instead of per element",
               False, kind=bool),
    )

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return frozenset(HEAVY_FIELDS) - frozenset(options.get("jsonl_drop") or ())

    @classmethod
    def consumption(cls, options: dict[str, Any]) -> str:
        return "logical" if options.get("jsonl_cells") else "raw"

    def begin(self, info: DocumentInfo) -> None:
        self._drop = frozenset(self.option("jsonl_drop") or ())
        self._cells = bool(self.option("jsonl_cells"))
        self._table_index = 0
        context = {
            "_schema": CELL_SCHEMA if self._cells else LINE_SCHEMA,
            "_input": info.name,
            "_file_id": info.file_id,
            "_file_name": info.filename,
        }
        if not self._cells:
            context["_schema_version"] = info.schema_version
        # Spliced in front of each element's own JSON object: no per-line dict copies.
        self._prefix = orjson.dumps(context)[:-1]

    def write(self, element: Element) -> None:
        if self._cells:
            if element.type == "Table" and element.table is not None:
                self._write_cells(element)
            return
        raw = _drop(element.raw, self._drop) if self._drop else element.raw
        line = dumps_line(raw)
        index = b'"_index":%d' % element.index
        if line == b"{}":
            self.out.write(self._prefix + b"," + index + b"}\n")
        else:
            self.out.write(self._prefix + b"," + index + b"," + line[1:] + b"\n")

    def _write_cells(self, element: Element) -> None:
        table = element.table
        assert table is not None
        for cell in table.cells:
            record = {
                "table_id": element.id,
                "table_index": self._table_index,
                "row": cell.row,
                "col": cell.col,
                "row_span": cell.row_span,
                "col_span": cell.col_span,
                "header": cell.row < table.header_rows,
                "text": cell.text,
                "page": table.row_pages[cell.row] if cell.row < len(table.row_pages) else None,
                "element_id": table.row_element_ids[cell.row]
                if cell.row < len(table.row_element_ids) else None,
            }
            self.out.write(self._prefix + b"," + dumps_line(record)[1:] + b"\n")
        self._table_index += 1
