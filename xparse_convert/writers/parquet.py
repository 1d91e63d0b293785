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

import ctypes
import functools
import os
import struct
import sys
from array import array
from collections.abc import Sequence
from itertools import accumulate, chain, repeat
from operator import is_not
from typing import IO, Any

from ..chunking import Chunker, ChunkOptions
from ..errors import OutputError, UsageError
from ..json_lines import dumps_line
from ..model import DocumentInfo, Element
from .base import Option, Writer

ROW_GROUP_ROWS = 4096
ROW_GROUP_BYTES = 4 << 20  # of raw_json and text, as buffered (UTF-8), handed to Arrow uncopied
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
_TEXT = [column for column, _ in _TOP].index("text")


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


_NUMBERS = {int, float}
_BELOW_1E300 = (1e300).__gt__
_EXACT_IN_DOUBLE = 1 << 53  # an integer past it would come back as another number


def _is_int64(value: Any) -> bool:
    return type(value) is int and -(1 << 63) <= value < (1 << 63)


def _is_doubles(value: Any) -> bool:
    """Finite numbers below 1e300, not bools, integers only where a double holds them
    exactly (maps: a hot path)."""
    if not isinstance(value, list):
        return False
    types = {*map(type, value)}
    return types <= _NUMBERS and all(map(_BELOW_1E300, map(abs, value))) and (
        int not in types or all(abs(v) <= _EXACT_IN_DOUBLE for v in value if type(v) is int))


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# Which values go into a column of each kind unchanged (the others stay in raw_json)
_FITS: dict[str, Any] = {
    "string": str.__instancecheck__, "int64": _is_int64, "bool": bool.__instancecheck__,
    "list<double>": _is_doubles, "list<string>": _is_strings,
}


def _fits(kind: str, value: Any) -> bool:
    """True when ``value`` goes into a column of ``kind`` unchanged."""
    check = _FITS.get(kind)
    return check is not None and check(value)


# (key, the test of its column's type) in column order; the row tuple is built in
# ELEMENT_COLUMNS's order
_TOP_FITS = tuple((key, _FITS[_KINDS[column]]) for column, key in _TOP)
_META_FITS = tuple((key, _FITS[_KINDS[column]]) for column, key in _META)


# Columns are built with map and join rather than loops: a row group is thousands of values
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def _bits(flags: bytes) -> Any:
    """An Arrow bitmap of ``flags`` (one byte 0 or 1 per value), least significant bit first."""
    import pyarrow as pa

    number = int(flags[::-1].translate(_DIGITS) or b"0", 2)
    return pa.py_buffer(number.to_bytes((len(flags) + 7) // 8, "little"))


def _validity(values: Sequence[Any]) -> Any:
    """The validity bitmap of ``values`` (bit i set when values[i] is not None), or None when
    none is None."""
    if None not in values:
        return None
    return _bits(bytes(map(is_not, values, repeat(None))))


def _offsets(lengths: Any) -> Any:
    """An Arrow offsets buffer (int32) of consecutive lengths."""
    return _offsets_buffer(list(accumulate(lengths, initial=0)))


def _offsets_buffer(offsets: list[int]) -> Any:
    """An Arrow offsets buffer (int32, little-endian) of ``offsets``; struct packs a list
    about twice as fast as array() takes an iterator."""
    import pyarrow as pa

    return pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets))  # struct.error past 2 GiB


def _lengths(values: Sequence[Any], valid: Any) -> Any:
    return map(len, values) if valid is None else (0 if v is None else len(v) for v in values)


def _string_data(values: Sequence[Any], valid: Any) -> tuple[Any, bytes]:
    """Offsets and UTF-8 bytes of a string column (values str or None; raw_json has its own
    buffer, ``_RawColumn``)."""
    present = values if valid is None else ["" if v is None else v for v in values]
    text = "".join(present)
    if text.isascii():  # one character, one byte: the lengths are the offsets
        return _offsets(map(len, present)), text.encode("ascii")
    data = list(map(str.encode, present))
    return _offsets(map(len, data)), b"".join(data)


def _array(kind: Any, values: Sequence[Any]) -> Any:
    """One column of a row group as an Arrow array of type ``kind``, built from its buffers.

    Not ``pa.array``: it asks pandas whether each value is array-like, so with pandas installed
    the first call imports it (about 50 MB and 0.4 s here) for values that never are."""
    import pyarrow as pa

    n = len(values)
    valid = _validity(values)
    if kind == pa.string():
        offsets, data = _string_data(values, valid)
        return pa.Array.from_buffers(kind, n, [valid, offsets, pa.py_buffer(data)])
    if kind == pa.int64() or kind == pa.float64():
        typecode, zero = ("q", 0) if kind == pa.int64() else ("d", 0.0)
        try:
            numbers = array(typecode, values if valid is None else
                            [zero if v is None else v for v in values])
        except OverflowError:  # a derived number past int64 (a page 2**70): null here;
            # raw_json keeps it (a double column gets only what _is_doubles passed)
            return _array(kind, [None if type(v) is int and not _is_int64(v) else v
                                 for v in values])
        return pa.Array.from_buffers(kind, n, [valid, pa.py_buffer(numbers)])
    if kind == pa.bool_():
        return pa.Array.from_buffers(kind, n, [valid, _bits(bytes(map(bool, values)))])
    if pa.types.is_map(kind):  # values: lists of (key, item) pairs
        pairs = list(chain.from_iterable(filter(None, values)))
        entry_type = pa.struct([kind.key_field, kind.item_field])
        keys = _array(kind.key_type, [k for k, _ in pairs])
        items = _array(kind.item_type, [i for _, i in pairs])
        entry = pa.Array.from_buffers(entry_type, len(pairs), [None], children=[keys, items])
        return pa.Array.from_buffers(kind, n, [valid, _offsets(_lengths(values, valid))],
                                     children=[entry])
    if pa.types.is_list(kind):
        child = _array(kind.value_type, list(chain.from_iterable(filter(None, values))))
        return pa.Array.from_buffers(kind, n, [valid, _offsets(_lengths(values, valid))],
                                     children=[child])
    if pa.types.is_struct(kind):  # values: dicts
        children = [_array(field.type, [None if v is None else v.get(field.name)
                                        for v in values]) for field in kind]
        return pa.Array.from_buffers(kind, n, [valid], children=children)
    raise ValueError(f"no Arrow builder for {kind}")


class _RawColumn:
    """A row group's ``raw_json`` values appended into one buffer as they come, which becomes
    the column's data as it is: no bytes object per value is kept (orjson's hold a buffer of
    16 KB or more whatever their length: 4096 buffered values of 2 KB took 64 MB) and none is
    copied again into the column."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offsets = [0]
        self.nulls: list[int] = []  # rows without a value

    def add(self, value: bytes | None) -> None:
        if value is None:
            self.nulls.append(len(self.offsets) - 1)
        else:
            self.data += value
        self.offsets.append(len(self.data))

    def array(self) -> Any:
        import pyarrow as pa

        n = len(self.offsets) - 1
        valid = None
        if self.nulls:
            flags = bytearray(b"\x01") * n
            for row in self.nulls:
                flags[row] = 0
            valid = _bits(bytes(flags))
        return pa.Array.from_buffers(pa.string(), n, [valid, _offsets_buffer(self.offsets),
                                                     pa.py_buffer(self.data)])


class _Table:
    """One Parquet file written in row groups: rows (tuples in column order, without the
    ``raw_json`` value when the table has one: ``add`` takes it apart) are buffered and turned
    into columns when the row group is full."""

    def __init__(self, out: IO[bytes], columns: tuple[tuple[str, str], ...]) -> None:
        import pyarrow.parquet as pq

        self.schema = schema(columns)
        # dictionaries only for the columns that repeat: a dictionary of raw_json or text
        # values costs memory for every distinct value of a row group
        self.writer = pq.ParquetWriter(out, self.schema, compression="zstd",
                                       use_dictionary=[n for n in DICTIONARY_COLUMNS
                                                       if n in self.schema.names])
        self.has_raw = columns[-1][0] == "raw_json"
        self.rows: list[tuple[Any, ...]] = []
        self.raw = _RawColumn()
        self.bytes = 0

    def add(self, row: tuple[Any, ...], size: int = 0, raw_json: bytes | None = None) -> None:
        """One row; ``size`` counts its text towards ``ROW_GROUP_BYTES`` (``raw_json``, the
        last column's UTF-8 bytes, counts itself)."""
        self.rows.append(row)
        if self.has_raw:
            self.raw.add(raw_json)
            size += len(raw_json or b"")
        self.bytes += size
        if len(self.rows) >= ROW_GROUP_ROWS or self.bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            columns = list(zip(*self.rows))
            raw, self.raw = self.raw, _RawColumn()
            self.rows = []
            self.bytes = 0
            fields = list(self.schema)
            arrays = []
            for field in fields[:-1] if self.has_raw else fields:
                arrays.append(_array(field.type, columns.pop(0)))  # let each column go
            if self.has_raw:
                arrays.append(raw.array())
            del raw
            self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
            del arrays
            release_free_memory()

    def close(self) -> None:
        self.flush()
        self.writer.close()

    def abandon(self) -> None:
        """Close without flushing, never raising: the file is being deleted.  Otherwise the
        garbage collector closes pyarrow's writer later, into a closed file, and prints the
        error as a traceback."""
        self.rows = []
        try:
            self.writer.close()
        except Exception:  # the error that failed the conversion may be this file's own
            pass
        finally:
            self.writer.is_open = False


# glibc's malloc raises its mmap threshold to the size of each large mapped block freed (up to
# 32 MB); after that a row group's buffers (megabytes each, made and freed every row group)
# come from the heap, where the small objects living between them keep the freed space from
# going back to the system.  Measured on the 1000-page char-details input: peak RSS grew with
# the input (176 MB at 1000 pages, 146 at 100).  A fixed threshold (it also stops the
# adjustment) keeps blocks of a row group's size mapped, returned when freed; not lower: the
# reader's buffers of about 1 MB, mapped afresh each time, cost 8% more CPU.  The values made
# on the way (each raw_json from orjson, tens of KB, before it joins its column's buffer; the
# decoded elements) still come from the heap, so after each row group the free pages among
# the live objects are handed back (malloc_trim: 0.25 s in 40): flat at about 100-115 MB.
MMAP_THRESHOLD = ROW_GROUP_BYTES // 2
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, <malloc.h>


@functools.cache
def _glibc() -> Any:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018  (musl and others lack malloc_trim)
    except (OSError, AttributeError):
        return None
    return libc


def keep_large_blocks_mapped() -> None:
    """Fix glibc malloc's mmap threshold at ``MMAP_THRESHOLD`` for this process (see above);
    nothing elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc; nothing elsewhere)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


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
        keep_large_blocks_mapped()
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

    def _context(self) -> tuple[Any, ...]:
        info = self._info
        return info.name, info.file_id, info.filename

    # -- elements (every input element, as JSONL has them) ----------------------------------
    def write_raw(self, element: Element) -> None:
        rest = dict(element.raw)
        top = [rest.pop(key) if key in rest and fits(rest[key]) else None
               for key, fits in _TOP_FITS]
        meta = rest.get("metadata")
        if isinstance(meta, dict):
            meta = dict(meta)
            lifted = [meta.pop(key) if key in meta and fits(meta[key]) else None
                      for key, fits in _META_FITS]
            rest["metadata"] = meta
        else:
            lifted = [None] * len(_META_FITS)
        text = top[_TEXT]
        self._elements.add((*self._context(), self._info.schema_version, element.index, *top,
                            *lifted), len(text or ""), dumps_line(rest))

    # -- the logical document: cells, chunks ------------------------------------------------
    def default(self, element: Element) -> None:
        if self._chunker is not None:
            self._write_chunks(self._chunker.feed(element))

    def table(self, el: Element) -> None:
        table = el.table
        if table is not None:
            context = self._context()
            header_rows, pages, owners = table.header_rows, table.row_pages, table.row_element_ids
            for cell in table.cells:
                row = cell.row
                self._cells.add((*context, el.id, self._table_index, row, cell.col,
                                 cell.row_span, cell.col_span, row < header_rows, cell.text,
                                 pages[row] if row < len(pages) else None,
                                 owners[row] if row < len(owners) else None),
                                len(cell.text),
                                dumps_line(cell.raw) if cell.raw is not None else None)
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
            self._chunks.add(tuple(row.get(name) for name, _ in CHUNK_COLUMNS),
                             len(record["text"]))

    def end(self, info: DocumentInfo) -> None:
        if self._chunker is not None:
            self._write_chunks(self._chunker.finish())
        self._elements.close()
        self._cells.close()
        if self._chunks is not None:
            self._chunks.close()

    def abort(self) -> None:
        for name in ("_elements", "_cells", "_chunks"):  # begin may have failed midway
            table = getattr(self, name, None)
            if table is not None:
                table.abandon()
