"""Parquet (``--to parquet``, needs ``xparse-convert[parquet]``): ``<stem>.elements.parquet``
(one row per input element), ``<stem>.cells.parquet`` (one row per cell of each logical
table) and, with ``--parquet-chunks``, ``<stem>.chunks.parquet`` (one row per chunk).

The schemas are fixed (``ELEMENT_COLUMNS``, ``CELL_COLUMNS``, ``CHUNK_COLUMNS``; documented in
the README), so a folder of results reads as one table.  An element's documented fields get
typed columns when their value has the column's type; everything else, and any value of
another type, stays in ``raw_json``, so the element is the typed columns plus ``raw_json``,
exactly.  Rows are written in row groups as they come (``ROW_GROUP_ROWS`` rows or
``ROW_GROUP_BYTES`` of text, whichever comes first): memory stays flat.
"""

from __future__ import annotations

import os
from array import array
from itertools import accumulate
from typing import IO, Any

from ..chunking import Chunker, ChunkOptions
from ..errors import OutputError, UsageError
from ..json_lines import dumps_line
from ..model import DocumentInfo, Element
from .base import Option, Writer

ROW_GROUP_ROWS = 4096
ROW_GROUP_BYTES = 4 << 20  # of text; a row group's peak memory is many times this (measured)
DICTIONARY_COLUMNS = ("_input", "_file_id", "_file_name", "_schema_version", "type",
                      "sub_type", "parent_id", "table_id", "element_id")

# (column, arrow type name); the arrow types are made when pyarrow is imported
CONTEXT_COLUMNS = (("_input", "string"), ("_file_id", "string"), ("_file_name", "string"))
ELEMENT_COLUMNS = CONTEXT_COLUMNS + (
    ("_schema_version", "string"), ("_index", "int64"),
    ("element_id", "string"), ("type", "string"), ("sub_type", "string"), ("text", "string"),
    ("page_number", "int64"), ("coordinates", "list<double>"),
    ("parent_id", "string"), ("category_depth", "int64"), ("is_continuation", "bool"),
    ("continuation_of", "string"), ("ref_element_id", "string"),
    ("children_ids", "list<string>"), ("raw_json", "string"),
)
CELL_COLUMNS = CONTEXT_COLUMNS + (
    ("table_id", "string"), ("table_index", "int64"), ("row", "int64"), ("col", "int64"),
    ("row_span", "int64"), ("col_span", "int64"), ("header", "bool"), ("text", "string"),
    ("page", "int64"), ("element_id", "string"), ("raw_json", "string"),
)
CHUNK_COLUMNS = CONTEXT_COLUMNS + (
    ("chunk_id", "string"), ("chunk_index", "int64"), ("text", "string"),
    ("headings", "list<string>"), ("element_ids", "list<string>"), ("pages", "list<int64>"),
    ("boxes", "list<box>"), ("types", "map<string,int64>"), ("tables", "list<table>"),
    ("spans", "list<span>"), ("size", "int64"), ("oversize", "bool"), ("overlap", "int64"),
)
# element fields lifted into columns: (column, key in the element or its metadata)
_TOP = (("element_id", "element_id"), ("type", "type"), ("sub_type", "sub_type"),
        ("text", "text"), ("page_number", "page_number"), ("coordinates", "coordinates"))
_META = (("parent_id", "parent_id"), ("category_depth", "category_depth"),
         ("is_continuation", "is_continuation"), ("continuation_of", "continuation_of"),
         ("ref_element_id", "ref_element_id"), ("children_ids", "children_ids"))
_KINDS = dict(ELEMENT_COLUMNS)


def _arrow(name: str) -> Any:
    import pyarrow as pa

    simple = {"string": pa.string(), "int64": pa.int64(), "bool": pa.bool_(),
              "double": pa.float64()}
    if name in simple:
        return simple[name]
    if name == "list<box>":
        return pa.list_(pa.struct([("element_id", pa.string()), ("page", pa.int64()),
                                   ("coordinates", pa.list_(pa.float64()))]))
    if name == "list<table>":
        return pa.list_(pa.struct([("table_id", pa.string()), ("row_start", pa.int64()),
                                   ("row_end", pa.int64()), ("header_rows", pa.int64())]))
    if name == "list<span>":
        return pa.list_(pa.struct([("element_id", pa.string()), ("start", pa.int64()),
                                   ("end", pa.int64()), ("element_start", pa.int64()),
                                   ("overlap", pa.bool_())]))
    if name == "map<string,int64>":
        return pa.map_(pa.string(), pa.int64())
    if name.startswith("list<"):
        return pa.list_(simple[name[5:-1]])
    raise ValueError(name)


def schema(columns: tuple[tuple[str, str], ...]) -> Any:
    """The pyarrow schema of one of the column tuples."""
    import pyarrow as pa

    return pa.schema([(name, _arrow(kind)) for name, kind in columns])


def _fits(kind: str, value: Any) -> bool:
    """True when ``value`` goes into a column of ``kind`` unchanged."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "int64":
        return type(value) is int and -(1 << 63) <= value < (1 << 63)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list<double>":
        return isinstance(value, list) and all(
            type(v) in (int, float) and abs(v) < 1e300 for v in value)
    if kind == "list<string>":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False


def _validity(values: list[Any]) -> Any:
    """The validity bitmap of ``values`` (bit i set when values[i] is not None), or None when
    none is None."""
    import pyarrow as pa

    if None not in values:
        return None
    return pa.py_buffer(_bits([v is not None for v in values]))


def _bits(flags: list[bool]) -> bytes:
    """Flags as an Arrow bitmap: least significant bit first."""
    number = int("".join("1" if f else "0" for f in reversed(flags)) or "0", 2)
    return number.to_bytes((len(flags) + 7) // 8, "little")


def _offsets(lengths: Any) -> Any:
    """An Arrow offsets buffer (int32) of consecutive lengths."""
    import pyarrow as pa

    offsets = array("i", accumulate(lengths, initial=0))  # OverflowError past 2 GiB
    return pa.py_buffer(offsets)


def _array(kind: Any, values: list[Any]) -> Any:
    """One column of a row group as an Arrow array of type ``kind``, built from its buffers.

    Not ``pa.array``: it asks pandas whether each value is array-like, so with pandas installed
    the first call imports it (about 50 MB and 0.4 s here) for values that never are."""
    import pyarrow as pa

    n = len(values)
    valid = _validity(values)
    if kind == pa.string():
        data = [v.encode("utf-8") if isinstance(v, str) else v or b"" for v in values]
        return pa.Array.from_buffers(kind, n, [valid, _offsets(map(len, data)),
                                               pa.py_buffer(b"".join(data))])
    if kind == pa.int64():
        ints = array("q", [0 if v is None else v for v in values])
        return pa.Array.from_buffers(kind, n, [valid, pa.py_buffer(ints)])
    if kind == pa.float64():
        floats = array("d", [0.0 if v is None else v for v in values])
        return pa.Array.from_buffers(kind, n, [valid, pa.py_buffer(floats)])
    if kind == pa.bool_():
        return pa.Array.from_buffers(kind, n, [valid, pa.py_buffer(_bits([bool(v) for v in
                                                                          values]))])
    if pa.types.is_map(kind):  # values: lists of (key, item) pairs
        pairs = [pair for v in values if v is not None for pair in v]
        entry_type = pa.struct([kind.key_field, kind.item_field])
        keys = _array(kind.key_type, [k for k, _ in pairs])
        items = _array(kind.item_type, [i for _, i in pairs])
        entry = pa.Array.from_buffers(entry_type, len(pairs), [None], children=[keys, items])
        return pa.Array.from_buffers(kind, n, [valid, _offsets(len(v) if v is not None else 0
                                                               for v in values)],
                                     children=[entry])
    if pa.types.is_list(kind):
        flat = [x for v in values if v is not None for x in v]
        child = _array(kind.value_type, flat)
        return pa.Array.from_buffers(kind, n, [valid, _offsets(len(v) if v is not None else 0
                                                               for v in values)],
                                     children=[child])
    if pa.types.is_struct(kind):  # values: dicts
        children = [_array(field.type, [None if v is None else v.get(field.name)
                                        for v in values]) for field in kind]
        return pa.Array.from_buffers(kind, n, [valid], children=children)
    raise ValueError(f"no Arrow builder for {kind}")


class _Table:
    """One Parquet file written in row groups."""

    def __init__(self, out: IO[bytes], columns: tuple[tuple[str, str], ...]) -> None:
        import pyarrow.parquet as pq

        self.columns = columns
        self.schema = schema(columns)
        # dictionaries only for the columns that repeat: a dictionary of raw_json or text
        # values costs memory for every distinct value of a row group
        self.writer = pq.ParquetWriter(out, self.schema, compression="zstd",
                                       use_dictionary=[n for n in DICTIONARY_COLUMNS
                                                       if n in self.schema.names])
        self.rows: dict[str, list[Any]] = {name: [] for name, _ in columns}
        self.count = 0
        self.bytes = 0

    def add(self, row: dict[str, Any], size: int = 0) -> None:
        for name, values in self.rows.items():
            values.append(row.get(name))
        self.count += 1
        self.bytes += size
        if self.count >= ROW_GROUP_ROWS or self.bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.count:
            rows, self.rows = self.rows, {name: [] for name, _ in self.columns}
            arrays = []
            for field in self.schema:
                arrays.append(_array(field.type, rows.pop(field.name)))  # let each list go
            self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
            self.count = self.bytes = 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def require_pyarrow() -> Any:
    """pyarrow, imported the way this writer needs it; ``UsageError`` when it is missing.

    Imported here, not with the module: the registry loads every writer class for ``--help``."""
    # Address space, for --memory-limit (these take effect only when pyarrow is not
    # imported yet): numpy, which pyarrow imports, reserves buffers per OpenBLAS thread,
    # and jemalloc reserves arenas; one thread and the system allocator do here.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        import pyarrow
    except ImportError:
        raise UsageError("--to parquet needs pyarrow: pip install "
                         "'xparse-convert[parquet]'") from None
    return pyarrow


class ParquetWriter(Writer):
    name = "parquet"
    extension = "elements.parquet"
    binary = True
    consumes = "both"  # elements as they come; cells (and chunks) of the logical document
    description = "Parquet files of elements, table cells and (--parquet-chunks) chunks"
    options = (
        Option("chunks", "also write <stem>.chunks.parquet (the --chunk-* options apply)",
               False, kind=bool),
    )

    def begin(self, info: DocumentInfo) -> None:
        require_pyarrow()
        if self.context.open_output is None:
            raise OutputError("the parquet writer needs its cells file beside its output")
        self._info = info
        self._elements = _Table(self.out, ELEMENT_COLUMNS)
        self._cells = _Table(self.context.open_output("cells.parquet", True), CELL_COLUMNS)
        self._chunks: _Table | None = None
        self._chunker: Chunker | None = None
        if self.option("parquet_chunks"):
            self._chunks = _Table(self.context.open_output("chunks.parquet", True),
                                  CHUNK_COLUMNS)
            self._chunker = Chunker(ChunkOptions.from_options(self.context.options), info)
        self._table_index = 0

    def _context(self) -> dict[str, Any]:
        info = self._info
        return {"_input": info.name, "_file_id": info.file_id, "_file_name": info.filename}

    # -- elements (every input element, as JSONL has them) ----------------------------------
    def write_raw(self, element: Element) -> None:
        row = self._context()
        row["_schema_version"] = self._info.schema_version
        row["_index"] = element.index
        rest = dict(element.raw)
        for column, key in _TOP:
            if key in rest and _fits(_KINDS[column], rest[key]):
                row[column] = rest.pop(key)
        meta = rest.get("metadata")
        if isinstance(meta, dict):
            meta = dict(meta)
            for column, key in _META:
                if key in meta and _fits(_KINDS[column], meta[key]):
                    row[column] = meta.pop(key)
            rest["metadata"] = meta
        raw_json = dumps_line(rest)  # UTF-8 bytes: the column takes them as they are
        row["raw_json"] = raw_json
        self._elements.add(row, len(raw_json) + len(row.get("text") or ""))

    # -- the logical document: cells, chunks ------------------------------------------------
    def default(self, element: Element) -> None:
        if self._chunker is not None:
            self._write_chunks(self._chunker.feed(element))

    def table(self, el: Element) -> None:
        table = el.table
        if table is not None:
            context = self._context()
            for cell in table.cells:
                raw_json = dumps_line(cell.raw) if cell.raw is not None else None
                row = dict(context, table_id=el.id, table_index=self._table_index,
                           row=cell.row, col=cell.col, row_span=cell.row_span,
                           col_span=cell.col_span, header=cell.row < table.header_rows,
                           text=cell.text, raw_json=raw_json,
                           page=table.row_pages[cell.row]
                           if cell.row < len(table.row_pages) else None,
                           element_id=table.row_element_ids[cell.row]
                           if cell.row < len(table.row_element_ids) else None)
                self._cells.add(row, len(cell.text) + len(raw_json or ""))
            self._table_index += 1
        self.default(el)

    def _write_chunks(self, records: list[dict[str, Any]]) -> None:
        assert self._chunks is not None
        for record in records:
            row = dict(record)
            row["types"] = sorted(record["types"].items())
            row["boxes"] = [dict(box, coordinates=box["coordinates"]
                                 if _fits("list<double>", box["coordinates"]) else None)
                            for box in record["boxes"]]
            self._chunks.add(row, len(record["text"]))

    def end(self, info: DocumentInfo) -> None:
        if self._chunker is not None:
            self._write_chunks(self._chunker.finish())
        self._elements.close()
        self._cells.close()
        if self._chunks is not None:
            self._chunks.close()
