"""The streaming reader: input bytes -> document info + one ``Element`` at a time.

One pass, never the whole ``elements`` array in memory:

1. ``_MarkdownSkipper`` filters the bytes.  The whole-document ``markdown`` string is one huge
   token that yajl lexes in quadratic time, so its value is cut out at the byte level (and
   copied aside when a writer asked for it) before ijson sees it.
2. The *head* (everything before the element list) is parsed event by event in Python: it is
   small, it tells the shape (API envelope, bare ``data``, bare list, legacy), and its
   top-level fields reach the writers at ``begin``.
3. The element list is parsed by ijson's C ``items`` over the same bytes (the head replayed
   from a buffer), which is as fast as a bare ijson loop.
4. The *tail* (fields after the list) is found by scanning the last bytes backwards from the
   end of input, where the parse state is known (outside any string), to the bracket that
   closes the list; it is parsed like the head and reaches the writers at ``end``.
"""

from __future__ import annotations

import gzip
import io
import re
import tempfile
import warnings
import zlib
from collections.abc import Callable, Collection, Iterator
from typing import IO, Any

import ijson
import orjson

from .codes import PARTIAL, SUCCESS, describe
from .diagnostics import Diagnostics
from .element_batches import BatchError, ListCutter
from .errors import ApiError, InputError
from .legacy import LegacyPages, map_detail
from .model import KNOWN_TYPES, DocumentInfo, Element, PageInfo
from .source import Source, SourceLike, open_source
from .structure import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STRING_MB,
    StructureGuard,
    cut_point,
    whitespace_only,
)
from .text import clean_text
from .values import as_int, is_int

CHUNK = 1 << 20
# Reads handed to the element parser are capped so that the bytes kept after the last element
# (where the tail is looked for, backwards) stay small; yajl costs the same either way.
TAIL_CHUNK = 64 << 10

if ijson.backend != "yajl2_c":  # pragma: no cover - depends on the installed wheel
    warnings.warn(f"ijson's C backend (yajl2_c) is missing; using the slower {ijson.backend}",
                  RuntimeWarning, stacklevel=2)

# Where the element list lives, by shape (the names ``info --json`` reports; ``SHAPES`` in
# the model says them in words).  Containers are the objects whose direct keys are document
# fields.
_LIST_PREFIXES = {
    "data.elements": "envelope",  # {code, message|msg, data: {..., elements}}
    "elements": "data",  # a bare data object (an async result_url download)
    "result.detail": "legacy",  # {code, message, result: {detail, pages, markdown}}
    "data.result.detail": "legacy-web",  # {code, msg, data: {result: {...}}} (web front-ends)
    "detail": "legacy-bare",  # a legacy result object saved without its envelope
}
_CONTAINERS = frozenset({"", "data", "result", "data.result"})
# Where legacy page data may be; it holds pictures, so it is read one page at a time.
_PAGE_PREFIXES = ("result.pages", "data.result.pages", "pages")
_TAIL_OPENERS = {  # synthetic head that puts a parser in the state right after the list
    "envelope": b'{"data":{"elements":[]',
    "data": b'{"elements":[]',
    "legacy": b'{"result":{"detail":[]',
    "legacy-web": b'{"data":{"result":{"detail":[]',
    "legacy-bare": b'{"detail":[]',
}
_LIST_DEPTH = {"envelope": 2, "data": 1, "legacy": 2, "legacy-web": 3, "legacy-bare": 1,
               "elements": 0}
# The envelope's own keys (at the top level): the rest are the result's fields
_ENVELOPE_KEYS = frozenset({"code", "message", "msg", "location", "data", "result"})
_LIST_KEY = {"envelope": "elements", "data": "elements", "legacy": "detail",
             "legacy-web": "detail", "legacy-bare": "detail"}


# -- byte level ----------------------------------------------------------------------------
_MARKDOWN_KEY = re.compile(rb'"markdown"\s*:\s*"')
_CARRY = 64
# A \uD800-\uDFFF escape that is not half of a valid pair.  yajl turns a lone high surrogate
# into "?" and a lone low one into bytes Python cannot decode (the whole parse fails), so both
# become U+FFFD here.  The leading group keeps an even run of backslashes (an escaped
# backslash followed by the letters "ud800" is text, not an escape).
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)((?:\\\\)*)(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


SMALL_VALUE = 64 << 10  # a "markdown" value this short costs yajl nothing: it stays
_SCALAR_RUN = re.compile(rb"[0-9A-Za-z+\-.]+")  # a chunk that is all one number or literal


class _MarkdownSkipper:
    """Cuts the long string value of a ``"markdown"`` key out of the byte stream (it becomes
    ``""``), copying the first one aside when ``capture`` is set.  Values under
    ``SMALL_VALUE`` bytes pass through untouched (an element's own ``markdown`` field stays
    lossless; a short document markdown reaches the reader's field collector).

    The key pattern cannot occur inside a JSON string (quotes there are escaped), except after
    an escaped quote, which is checked.  Holds at most ``_CARRY`` bytes between reads.
    """

    def __init__(self, stream: IO[bytes], capture: bool, *,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 max_string: int = DEFAULT_MAX_STRING_MB << 20, source: str = "") -> None:
        self._stream = stream
        self.guard = StructureGuard(max_depth, source)
        self._max_string = max_string
        self.whitespace_dropped = 0  # runs of whitespace between tokens, never parsed
        self._carry = b""
        self._before = b""  # a few bytes already passed on, for the escape check
        self._in_value = False
        self._backslashes = 0
        self._capture = capture
        self.captured: IO[bytes] | None = None
        self.values_skipped = 0
        self.bytes_skipped = 0
        self._value = bytearray()  # the start of the current value, until it proves long
        self._eliding = False
        self.bytes_in = 0
        self.surrogates_replaced = 0
        self._held = b""  # a possibly unfinished escape, kept for the surrogate check
        self._context = b""  # the last bytes handed out
        self._eof = False

    def read(self, size: int = CHUNK) -> bytes:
        """``read_chunk``, for a parser that reads a file."""
        return self.read_chunk(size)

    def read_chunk(self, size: int = CHUNK) -> bytes:
        """About ``size`` filtered bytes; ``b""`` only at the end of input.  Every chunk
        passes the structure guard (depth limit); a string that spans whole chunks goes out
        in one piece up to its end (yajl lexes a token over many reads from its start each
        time: quadratic), and a chunk of whitespace between tokens not at all."""
        if size == 0:  # ijson probes with read(0) to tell bytes from text
            return b""
        while True:
            out = self._escaped_chunk(size)
            if not out:
                return b""
            shape = self.guard.feed(out)
            if shape.within_string:
                return self._rest_of_string(out, size)
            if not shape.starts_in_string and not shape.ends_in_string and \
                    whitespace_only(out):
                self.whitespace_dropped += len(out)
                self.guard.position -= len(out)  # positions count the bytes handed out
                continue
            if len(out) >= SMALL_VALUE and not shape.starts_in_string and \
                    _SCALAR_RUN.fullmatch(out):
                raise InputError(f"a number or word longer than {len(out)} bytes",
                                 source=self.guard.source,
                                 where=f"near byte {self.bytes_in}")
            return out

    def _rest_of_string(self, first: bytes, size: int) -> bytes:
        """``first`` (all inside a string) and the following chunks up to the one that ends
        the string, as one chunk, refused past the string limit."""
        parts = [first]
        total = len(first)
        while True:
            more = self._escaped_chunk(max(size, total))
            if not more:
                break
            parts.append(more)
            total += len(more)
            if total > self._max_string:
                raise InputError(f"a string value longer than {self._max_string >> 20} MB "
                                 "(see --max-string-mb)", source=self.guard.source,
                                 where=f"near byte {self.bytes_in}")
            if not self.guard.feed(more).within_string:
                break
        return b"".join(parts)

    def _escaped_chunk(self, size: int) -> bytes:
        """Filtered bytes that never end inside an escape (the guard relies on it)."""
        while True:
            out = self._held + self._read_filtered(size)
            self._held = b""
            if not out:
                return b""
            cut = len(out)
            if not self._eof and b"\\" in out[-11:]:
                # An escape starting in the last 11 bytes may be cut short, or be the first
                # half of a pair: hold it (with the backslash run it ends) for the next read.
                cut = out.find(b"\\", max(len(out) - 11, 0))
                while cut > 0 and out[cut - 1] == 0x5C:
                    cut -= 1
            out, self._held = self._fix_surrogates(out, cut), out[cut:]
            if out or self._eof:
                return out

    def _fix_surrogates(self, data: bytes, cut: int) -> bytes:
        """``data[:cut]`` with lone surrogate escapes replaced; the bytes after ``cut`` serve
        as lookahead, those handed out before as lookbehind."""
        # only where a surrogate escape can be (a backslash first: memchr, the fast search)
        if b"\\" in data and (b"\\ud" in data or b"\\uD" in data):
            buf = self._context + data
            start = len(self._context)
            end = start + cut
            parts: list[bytes] = []
            last = start
            for match in _LONE_SURROGATE.finditer(buf, start):
                if match.start() >= end:
                    break
                parts.append(buf[last:match.start()])
                parts.append(match.group(1) + b"\\ufffd")
                last = match.end()
                self.surrogates_replaced += 1
            parts.append(buf[last:end])
            data = b"".join(parts)
        else:
            data = data[:cut]
        if data:
            self._context = (self._context + data[-16:])[-16:]
        return data

    def _read_filtered(self, size: int) -> bytes:
        while True:
            if self._eof:
                # a value still held as "maybe short" when the input ends goes out as it was,
                # so the parser sees (and reports) the truncation where it really is
                out, self._carry = bytes(self._value) + self._carry, b""
                self._value.clear()
                return out
            data = self._stream.read(size)
            self.bytes_in += len(data)
            if not data:
                self._eof = True
                continue
            out = self._filter(self._carry + data)
            if out:
                return out

    def _take(self, segment: bytes) -> None:
        """Bytes of the current value: held while it may still be short, then cut."""
        if not self._eliding:
            self._value.extend(segment)
            if len(self._value) <= SMALL_VALUE:
                return
            self._eliding = True
            self.values_skipped += 1
            segment = bytes(self._value)
            self._value.clear()
        self.bytes_skipped += len(segment)
        if self._capture and self.values_skipped == 1:
            if self.captured is None:
                self.captured = tempfile.SpooledTemporaryFile(max_size=16 << 20)
            self.captured.write(segment)

    def _end_value(self, out: list[bytes]) -> None:
        if not self._eliding:  # short after all: it goes through as it was
            out.append(bytes(self._value))
            self._value.clear()
        self._eliding = False

    def _filter(self, buf: bytes) -> bytes:
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while pos < end:
            if self._in_value:
                quote = buf.find(b'"', pos)
                if quote < 0:
                    segment = buf[pos:]
                    stripped = segment.rstrip(b"\\")
                    run = len(segment) - len(stripped)
                    self._backslashes = self._backslashes + run if not stripped else run
                    self._take(segment)
                    pos = end
                    break
                segment = buf[pos:quote]
                stripped = segment.rstrip(b"\\")
                run = len(segment) - len(stripped)
                if not stripped:
                    run += self._backslashes
                if run % 2:  # an escaped quote: still inside the value
                    self._take(buf[pos:quote + 1])
                    self._backslashes = 0
                    pos = quote + 1
                    continue
                self._take(segment)
                self._end_value(out)
                self._backslashes = 0
                self._in_value = False
                pos = quote  # the closing quote goes out with the next segment
                continue
            match = _MARKDOWN_KEY.search(buf, pos)
            if match is None:
                keep = end if self._eof else max(pos, end - _CARRY)
                out.append(buf[pos:keep])
                self._carry = buf[keep:]
                self._note_before(buf[:keep])
                return b"".join(out)
            context = self._before + buf[:match.start()]
            run = len(context) - len(context.rstrip(b"\\"))
            if run % 2:
                out.append(buf[pos:match.start() + 1])
                pos = match.start() + 1
                continue
            out.append(buf[pos:match.end()])
            self._in_value = True
            self._backslashes = 0
            pos = match.end()
        self._carry = b""
        self._note_before(buf)
        return b"".join(out)

    def _note_before(self, passed: bytes) -> None:
        if passed:
            self._before = (self._before + passed[-16:])[-16:]

    def markdown(self) -> str | None:
        """The first skipped markdown value, decoded; None when none was captured."""
        if self.captured is None:
            return None
        self.captured.seek(0)
        raw = b'"' + self.captured.read() + b'"'
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # lone surrogate escapes: the stdlib decodes them
            import json

            return clean_text(json.loads(raw.decode("utf-8", "replace")))


class _ChunkLog:
    """The bytes read since the last element ended: where the tail of the document is."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._spill: IO[bytes] | None = None

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > 64 << 20:  # one enormous element: keep it on disk, not in memory
            if self._spill is None:
                self._spill = tempfile.TemporaryFile()
            self._spill.write(b"".join(self._chunks[:-1]))
            self._chunks = self._chunks[-1:]
            self._size = len(chunk)

    def restart(self) -> None:
        """Forget everything but the chunk being parsed now (an element just ended in it)."""
        self._chunks = self._chunks[-1:]
        self._size = sum(len(c) for c in self._chunks)
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def data(self) -> bytes:
        head = b""
        if self._spill is not None:
            self._spill.seek(0)
            head = self._spill.read()
        return head + b"".join(self._chunks)


class _ReplayStream:
    """What ijson reads during the element phase: the head bytes again, then the rest."""

    def __init__(self, head: IO[bytes], skipper: _MarkdownSkipper, log: _ChunkLog,
                 progress: Callable[[int], None] | None) -> None:
        self._head = head
        self._skipper = skipper
        self._log = log
        self._progress = progress
        self.position = 0  # filtered bytes handed to the parser so far
        self.last_chunk = b""
        self.last_start = 0

    def read(self, size: int = CHUNK) -> bytes:
        if size == 0:
            return b""
        size = min(size, TAIL_CHUNK)
        data = self._head.read(size) if self._head is not None else b""
        if not data:
            self._head = None  # type: ignore[assignment]
            data = self._skipper.read_chunk(size)
            if self._progress is not None:
                self._progress(self._skipper.bytes_in)
        self._log.add(data)
        self.last_chunk = data
        self.last_start = self.position
        self.position += len(data)
        return data


# -- head and tail: event-level collection of document fields ------------------------------
class _FieldCollector:
    """Builds the values of the keys directly under the document containers (``""``,
    ``data``, ``result``) from ijson events, and stops at the element list.

    ``item_handlers`` receive the items of arrays too large to hold (legacy ``pages``) one at
    a time instead.
    """

    def __init__(self, item_handlers: dict[str, Callable[[Any], None]] | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.list_prefix: str | None = None
        self.root_type: str | None = None
        self._builder: ijson.ObjectBuilder | None = None
        self._prefix = ""
        self._depth = 0
        self._handlers = item_handlers or {}
        self._streaming: str | None = None
        self._keys: set[tuple[str, str]] = set()
        self.keys: list[tuple[str, str]] = []  # (container, key) of every document key, in order
        self.duplicates: list[str] = []  # document keys met twice in one container

    def feed(self, events: Iterator[tuple[str, str, Any]]) -> bool:
        """Consume events until the element list starts (True) or events run out (False)."""
        for prefix, event, value in events:
            if self.root_type is None:
                self.root_type = event
                if event == "start_array":
                    self.list_prefix = ""
                    return True
            if self._builder is not None:
                self._builder.event(event, value)
                if event in ("start_map", "start_array"):
                    self._depth += 1
                elif event in ("end_map", "end_array"):
                    self._depth -= 1
                if self._depth == 0:
                    self._finish_value(self._builder.value)
                continue
            if self._streaming is not None:
                if prefix == self._streaming and event == "end_array":
                    self._streaming = None
                    continue
                self._start_value(prefix, event, value)
                continue
            if event == "map_key":
                if prefix in _CONTAINERS:
                    if (prefix, value) in self._keys:
                        self.duplicates.append(f"{prefix}.{value}" if prefix else value)
                    self._keys.add((prefix, value))
                    self.keys.append((prefix, value))
                continue
            if event == "end_map":
                continue
            if prefix in _LIST_PREFIXES and event == "start_array":
                self.list_prefix = prefix
                return True
            if prefix in _CONTAINERS and event == "start_map":
                continue
            parent = prefix.rpartition(".")[0] if "." in prefix else ""
            if parent in _CONTAINERS:
                if prefix in self._handlers and event == "start_array":
                    self._streaming = prefix
                    continue
                self._start_value(prefix, event, value)
        return False

    def _start_value(self, prefix: str, event: str, value: Any) -> None:
        self._prefix = prefix
        if event in ("start_map", "start_array"):
            self._builder = ijson.ObjectBuilder()
            self._builder.event(event, value)
            self._depth = 1
        else:
            self._finish_value(value, prefix)

    def _finish_value(self, value: Any, prefix: str | None = None) -> None:
        prefix = self._prefix if prefix is None else prefix
        self._builder = None
        if self._streaming is not None:
            self._handlers[self._streaming](value)
        else:
            self.values[prefix] = value


def _list_end_candidates(buf: bytes, depth: int, key: str) -> Iterator[int]:
    """Indexes in ``buf`` where the ``]`` closing the element list may be, best first.

    The scan runs backwards from the end of the document, where the parser is known to be
    outside any string and at nesting level 0, so the level it tracks is the true one.  Every
    value after the list lies wholly inside ``buf`` (it starts where the last element ended),
    so the list is an array at level ``depth`` whose key is ``key``, or the one that reaches
    past the start of ``buf``.  Callers confirm a candidate by parsing what follows it.
    ``buf`` is small: the chunk in which the last element ended (reads are capped at
    ``TAIL_CHUNK``) and what follows it.
    """
    outcome = _scan_back(buf, depth, key)
    yield from outcome.named
    if not outcome.complete and outcome.open_list is not None and \
            outcome.open_list not in outcome.named:
        yield outcome.open_list


class _ScanOutcome:
    __slots__ = ("named", "complete", "open_list")

    def __init__(self) -> None:
        self.named: list[int] = []  # list ends identified by their key
        self.complete = True  # False: the scan ran into the start of the buffer
        self.open_list: int | None = None  # the array still open at the buffer's start


def _scan_back(buf: bytes, depth: int, key: str) -> _ScanOutcome:
    outcome = _ScanOutcome()
    tokens = [m.start() for m in _STRUCTURE.finditer(buf)]
    level = 0
    candidate: int | None = None  # the ']' at the list's level that we are inside or just left
    awaiting_key = False
    i = len(tokens) - 1
    while i >= 0:
        pos = tokens[i]
        ch = buf[pos]
        if ch == 0x22:  # a string ends here: find its opening quote
            j = i - 1
            while j >= 0:
                q = tokens[j]
                if buf[q] == 0x22:
                    k = q
                    while k > 0 and buf[k - 1] == 0x5C:
                        k -= 1
                    if (q - k) % 2 == 0:
                        break
                j -= 1
            if j < 0:  # the string began before the buffer
                break
            if awaiting_key:
                awaiting_key = False
                try:
                    name = orjson.loads(buf[tokens[j]:pos + 1])
                except orjson.JSONDecodeError:
                    name = None
                if name == key and candidate is not None:
                    outcome.named.append(candidate)
                candidate = None
            i = j - 1
            continue
        if ch in (0x5D, 0x7D):  # ']' or '}'
            if level == depth:
                candidate = pos if ch == 0x5D else None
                awaiting_key = False
            level += 1
        else:  # '[' or '{'
            level -= 1
            if level < 0:  # left the document: the tail was not where expected
                return outcome
            awaiting_key = level == depth and candidate is not None
        i -= 1
    outcome.complete = False
    if level > depth:
        outcome.open_list = candidate
    return outcome


_STRUCTURE = re.compile(rb'[\[\]{}"]')


# -- element construction ------------------------------------------------------------------
def _coerce_page(value: Any, where: str, diag: Diagnostics) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        diag.warn("field-type", f"page_number {value!r} is not a number; ignored", where)
        return None
    number = as_int(value)
    if number is not None and not isinstance(value, str):
        return number
    if number is not None:
        diag.warn("field-type", f"page_number {value!r} is a string; read as a number", where)
        return number
    diag.warn("field-type", f"page_number {str(value)[:40]!r} is not a number; ignored", where)
    return None


def make_element(raw: Any, index: int, diag: Diagnostics, coord_unit: str = "normalized"
                 ) -> Element | None:
    """An ``Element`` from one entry of the element list; None (with a warning) when the entry
    cannot be an element at all.  Wrong field types are repaired where the meaning is clear."""
    if not isinstance(raw, dict):
        diag.warn("bad-element", f"entry is a {type(raw).__name__}, not an object; skipped",
                  f"element #{index}")
        return None
    id_, type_, text = raw.get("element_id"), raw.get("type"), raw.get("text")
    page, meta = raw.get("page_number"), raw.get("metadata")
    if type(id_) is str and id_ and type(type_) is str and type_ in KNOWN_TYPES and \
            type(text) is str and (type(page) is int or page is None) and \
            (meta is None or type(meta) is dict):  # a well-formed element: nothing to repair
        return Element(raw, index, type_=type_, text=text, page=page, id_=id_,
                       coord_unit=coord_unit)
    if is_int(id_):
        id_ = str(id_)
    if not isinstance(id_, str) or not id_:
        id_ = f"#{index}"
        diag.warn("missing-id", "element has no element_id; using its position",
                  f"element #{index}")
    where = f"element {id_} (#{index})"
    type_ = raw.get("type")
    if not isinstance(type_, str) or not type_:
        diag.warn("field-type", f"type {type_!r} is missing or not a string; treated as "
                  "UncategorizedText", where)
        type_ = "UncategorizedText"
    elif type_ not in KNOWN_TYPES:
        diag.warn("unknown-type", f"unknown element type {type_!r}; kept as text", where)
    text = raw.get("text")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        else:
            diag.warn("field-type", f"text is a {type(text).__name__}; ignored", where)
            text = ""
    page = _coerce_page(raw.get("page_number"), where, diag)
    meta = raw.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        diag.warn("field-type", "metadata is not an object; ignored", where)
    return Element(raw, index, type_=type_, text=text, page=page, id_=id_, coord_unit=coord_unit)


# A gzip stream that ends early or is damaged fails inside the parser's read().
_ARCHIVE_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
_READ_ERRORS = (ijson.JSONError, UnicodeDecodeError, *_ARCHIVE_ERRORS)


# -- the reader ----------------------------------------------------------------------------
class Reader:
    """Reads one input.  Use as a context manager::

        with Reader("result.json") as reader:
            info = reader.info            # fields before the element list
            for element in reader.elements():
                ...
            reader.info                   # now also the fields after it

    ``want_markdown`` copies the engine's whole-document markdown aside (``markdown()``).
    ``skip`` names element fields (``model.HEAVY_FIELDS``: ``char_details``, ``base64``)
    left out of every element at any depth, unread: stepped over by the decoder, which checks
    that they are valid JSON but builds nothing of them (``element_batches``).
    """

    def __init__(self, src: SourceLike, *, name: str | None = None, want_markdown: bool = False,
                 diagnostics: Diagnostics | None = None,
                 progress: Callable[[int], None] | None = None,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 max_string_mb: int = DEFAULT_MAX_STRING_MB,
                 skip: Collection[str] = ()) -> None:
        self._skip = tuple(skip)
        self.source: Source = open_source(src, name=name)
        self.diag = diagnostics if diagnostics is not None else Diagnostics(self.source.name)
        self.info = DocumentInfo(name=self.source.stem, source=self.source.name)
        self._limits = {"max_depth": max_depth, "max_string": max_string_mb << 20,
                        "source": self.source.name}
        self._skipper = _MarkdownSkipper(self.source.stream, want_markdown, **self._limits)
        self._skipper.guard.input_offset = self._source_offset
        self._progress = progress
        self._log = _ChunkLog()
        self._legacy_pages: LegacyPages | None = None
        self._tail_pages: LegacyPages | None = None
        self._short_markdown: str | None = None  # a markdown short enough to stay in stream
        self._plain_pages: dict[str, list[Any]] = {}  # 1.x pages met in the head, by prefix
        self._head_keys: set[tuple[str, str]] = set()
        self._head_buffer = tempfile.SpooledTemporaryFile(max_size=32 << 20)
        self._consumed = False
        self._list_end_known = False
        self._list_end = 0  # the position of the list's closing bracket, once known
        self._closed = False
        try:
            self._read_head()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.source.close()
        self._head_buffer.close()
        for pages in (self._legacy_pages, self._tail_pages):
            if pages is not None:
                pages.close()

    # -- errors ----------------------------------------------------------------------
    def _json_error(self, exc: Exception, *, position: int, chunk: bytes, chunk_start: int
                    ) -> InputError:
        if isinstance(exc, _ARCHIVE_ERRORS):
            return InputError("the compressed input is truncated or corrupt",
                              source=self.source.name,
                              where=f"near byte {self._source_offset(position)} (uncompressed)")
        if isinstance(exc, UnicodeDecodeError):
            return InputError("the text is not valid UTF-8", source=self.source.name,
                              where=f"near byte {self._source_offset(chunk_start)}")
        raw = exc.args[0] if exc.args else ""
        # yajl's messages arrive as bytes; they quote input bytes, which are never shown raw
        message = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(exc)).strip()
        first = message.split("\n", 1)[0]
        if "premature EOF" in message or "Incomplete JSON" in message:
            return InputError("the JSON ends too early (truncated file?)", source=self.source.name,
                              where=f"byte {self._source_offset(position)}")
        offset = _yajl_error_offset(message, chunk)
        where = f"byte {self._source_offset(chunk_start + offset)}" if offset is not None else \
            f"near byte {self._source_offset(position)}"
        what = first.replace("lexical error: ", "").replace("parse error: ", "").rstrip(".")
        if "invalid bytes in UTF8 string" in what:
            return InputError("the text is not valid UTF-8 (saved as Latin-1 or GBK? save it "
                              "as UTF-8)", source=self.source.name, where=where)
        if "integer overflow" in what:
            return InputError("a number too large to read (more than 64 bits)",
                              source=self.source.name, where=where)
        return InputError(f"malformed JSON: {what}", source=self.source.name, where=where)

    def _source_offset(self, filtered: int) -> int:
        # Offsets after a skipped markdown value are shifted by its length; BOMs by theirs.
        shift = (self._skipper.bytes_skipped if self._skipper.values_skipped else 0) + \
            self._skipper.whitespace_dropped
        bom = 3 if self.source.encoding == "utf-8-sig" else 0
        return filtered + shift + bom

    # -- head --------------------------------------------------------------------------
    def _read_head(self) -> None:
        head = self._head_buffer
        position = 0
        last_chunk = b""
        last_start = 0
        held = b""  # read from the skipper, not yet handed to the parser

        class _HeadStream:
            def read(_self, size: int = CHUNK) -> bytes:  # noqa: N805
                nonlocal position, last_chunk, last_start, held
                if size == 0:
                    return b""
                if not held:
                    held = self._skipper.read_chunk(size)
                    head.write(held)
                data = held[:self._head_cut(position, held)]
                held = held[len(data):]
                last_chunk, last_start = data, position
                position += len(data)
                return data

        self._legacy_pages = LegacyPages()
        collector = _FieldCollector({prefix: self._page_handler(prefix)
                                     for prefix in _PAGE_PREFIXES})
        # small reads: the head is usually a few kilobytes, and yajl parses a whole read at once
        events = ijson.parse(_HeadStream(), use_float=True, buf_size=TAIL_CHUNK)
        try:
            found = collector.feed(events)
        except _READ_ERRORS as exc:
            if position == 0 and not isinstance(exc, _ARCHIVE_ERRORS):
                raise InputError("the input is empty", source=self.source.name,
                                 where="byte 0") from None
            raise self._json_error(exc, position=position, chunk=last_chunk,
                                   chunk_start=last_start) from None
        if collector.root_type is None:
            raise InputError("the input is empty", source=self.source.name, where="byte 0")
        if collector.root_type not in ("start_map", "start_array"):
            raise InputError(f"the top level is a {collector.root_type.replace('_', ' ')}, not "
                             "an object or a list of elements", source=self.source.name,
                             where="byte 0")
        values = {**collector.values, **self._plain_pages}
        self._check_duplicates(collector.duplicates)
        self._head_keys = set(collector.keys)
        self._apply_fields(values)
        if not found:
            self._check_code()
            raise InputError(not_a_result(values), source=self.source.name)
        prefix = collector.list_prefix or ""
        self.info.shape = "elements" if prefix == "" else _LIST_PREFIXES[prefix]
        self._list_prefix = prefix
        # from now on the guard looks only for this shape's list key (a second list)
        self._skipper.guard.list_keys_sought = () if prefix == "" else (
            f'"{_LIST_KEY[self.info.shape]}"'.encode(),)
        self._check_code()
        if self.is_legacy:
            self._prepare_legacy()
        else:
            self._legacy_pages.close()
            self._legacy_pages = None
        head.seek(0)

    def _head_cut(self, position: int, held: bytes) -> int:
        """How much of ``held`` (at ``position``) the head parser gets: up to the next list's
        ``[``.  What follows may be the element list, which is read in batches; yajl would
        lex a whole read, and refuse what the batches read (integers beyond 64 bits)."""
        end = position + len(held)
        for _, _, bracket in self._skipper.guard.list_keys:
            if position <= bracket < end:
                return bracket - position + 1
        if position == 0 and held.lstrip()[:1] == b"[":  # a top-level list of elements
            return len(held) - len(held.lstrip()) + 1
        return len(held)

    @property
    def is_legacy(self) -> bool:
        return self.info.shape.startswith("legacy")

    def _page_handler(self, prefix: str) -> Callable[[Any], None]:
        """Items of a ``pages`` array in the head: legacy pages (they have ``page_id``) go to
        the legacy page store one at a time, 1.x pages (small) are kept as the field's value."""
        def handle(page: Any) -> None:
            if isinstance(page, dict) and "page_id" in page and "page_number" not in page:
                assert self._legacy_pages is not None
                self._legacy_pages.add_page(page)
            else:
                self._plain_pages.setdefault(prefix, []).append(page)
        return handle

    def _check_tail_keys(self, shape: str, keys: Iterator[tuple[str, str]]) -> None:
        """Duplicates among the tail's keys and between head and tail; the keys of the
        synthetic opener put before the tail are not the input's."""
        container = ""
        synthetic: set[tuple[str, str]] = set()
        for part in _LIST_PREFIXES_BY_SHAPE[shape].split("."):
            synthetic.add((container, part))
            container = f"{container}.{part}" if container else part
        seen = set(self._head_keys)
        for pair in keys:
            if pair in synthetic:
                synthetic.discard(pair)
                continue
            if pair in seen:
                self._check_duplicates([f"{pair[0]}.{pair[1]}" if pair[0] else pair[1]])
            seen.add(pair)

    def _check_second_list(self) -> None:
        """An element list key met twice where the list lives (``data`` or ``elements`` given
        twice): the parser has read both lists under the same path, where standard JSON
        parsers keep only the last."""
        shape = self.info.shape
        if shape == "elements":
            return
        key, depth = _LIST_KEY[shape], _LIST_DEPTH[shape]
        found = [p for k, d, p in self._skipper.guard.list_keys if k == key and d == depth]
        if len(found) > 1:
            container = _LIST_PREFIXES_BY_SHAPE[shape].rpartition(".")[0] or key
            raise InputError(f"the element list appears twice ({container!r} or {key!r} given "
                             "twice); a result must have one", source=self.source.name,
                             where=f"byte {self._source_offset(found[1])}")

    def _check_duplicates(self, duplicates: list[str]) -> None:
        """A key repeated at the top level or directly in ``data``/``result`` is refused:
        standard JSON parsers keep only the last one, so two readers would disagree."""
        if duplicates:
            raise InputError(f"the key {duplicates[0]!r} appears twice; a result must have each "
                             "of its document keys once", source=self.source.name)

    def _prepare_legacy(self) -> None:
        pages = self._legacy_pages
        assert pages is not None
        if not pages.pages:
            if self.source.reopenable:
                # detail comes before pages here: one extra pass over pages for sizes/images
                self._prescan_legacy_pages(pages)
            else:
                self.diag.warn("legacy-pages", "page data comes after the blocks in a stream "
                               "that cannot be read twice: positions stay in pixels and page "
                               "images are left out")
        for number, page in pages.pages.items():
            self.info.pages[number] = page

    def _prescan_legacy_pages(self, pages: LegacyPages) -> None:
        stream = self.source.reopen()
        skipper = _MarkdownSkipper(stream, capture=False, **self._limits)

        container = _LIST_PREFIXES_BY_SHAPE[self.info.shape].rpartition("detail")[0]
        try:
            for page in ijson.items(skipper, f"{container}pages.item", use_float=True,
                                    buf_size=CHUNK):
                pages.add_page(page)
        except _READ_ERRORS:
            pass  # the main pass reports malformed JSON with its position

    def _apply_fields(self, values: dict[str, Any]) -> None:
        """Document fields (by prefix) onto ``info``: the envelope's own keys, then the result's."""
        for prefix, value in values.items():
            container, _, key = prefix.rpartition(".")
            if container == "" and key in _ENVELOPE_KEYS:
                self._apply_envelope_field(key, value)
            else:
                self._apply_result_field(key, value)

    def _apply_envelope_field(self, key: str, value: Any) -> None:
        info = self.info
        if key == "code":
            info.code = as_int(value)
            info.extra["code"] = value
        elif key == "message" or (key == "msg" and info.message is None):
            # web front-ends write msg; when both are there, message wins
            info.message = value if isinstance(value, str) else None
        else:
            info.extra[key] = value

    def _apply_result_field(self, key: str, value: Any) -> None:
        info = self.info
        if key == "schema_version" and isinstance(value, str):
            info.schema_version = value
        elif key in ("file_id", "job_id") and isinstance(value, (str, int)):
            setattr(info, key, str(value))
        elif key == "metadata" and isinstance(value, dict):
            info.metadata = value
        elif key == "pages" and isinstance(value, list) and not self.is_legacy:
            self._apply_pages(value)
        elif key == "title_tree" and isinstance(value, list):
            info.title_tree = value
        elif key == "summary" and isinstance(value, dict):
            info.summary = value
        elif key == "markdown":
            if isinstance(value, str) and value:
                self._short_markdown = value
        else:
            info.extra[key] = value

    def _apply_pages(self, pages: list[Any]) -> None:
        """1.x ``pages[]``: page sizes and images by page number."""
        for page in pages:
            if not isinstance(page, dict):
                continue
            number = as_int(page.get("page_number"))
            if number is None:
                continue
            width, height, url = (page.get(k) for k in ("page_width", "page_height",
                                                        "page_image_url"))
            self.info.pages[number] = PageInfo(
                number, float(width) if isinstance(width, (int, float)) else None,
                float(height) if isinstance(height, (int, float)) else None,
                url if isinstance(url, str) else None, page)

    def _check_code(self) -> None:
        code = self.info.extra.get("code")  # as given, for the message
        if code is None:
            return
        number = self.info.code
        if number == SUCCESS:
            return
        if number == PARTIAL:
            if not self.info.partial:
                self.info.partial = True
                self.diag.warn("partial", f"the API reported code {PARTIAL} ({describe(PARTIAL)});"
                               " converting the pages that are there")
            return
        location = self.info.extra.get("location")
        where = None
        if isinstance(location, dict):
            parts = [f"{k} {location[k]}" for k in ("stage", "page_number", "element_id")
                     if location.get(k) is not None]
            where = ", ".join(parts) or None
        server = self.info.message
        text = f"the API returned code {code}: {describe(number)}"
        if server:
            text += f" (server said: {server})"
        raise ApiError(text, code=code, source=self.source.name, where=where)

    # -- elements ----------------------------------------------------------------------
    def elements(self) -> Iterator[Element]:
        """Every element in input order.  Can be iterated once."""
        if self._consumed:
            raise RuntimeError("the element stream has already been read")
        self._consumed = True
        stream = _ReplayStream(self._head_buffer, self._skipper, self._log, self._progress)
        prefix = f"{self._list_prefix}.item" if self._list_prefix else "item"
        legacy = self.is_legacy
        pages = self._legacy_pages
        index = 0
        objects = 0
        kinds: set[str] = set()
        seen_pages: set[int] = set()
        located = self._list_start()
        self._list_end_known = located is not None
        items = self._batched_items(*located) if located is not None else \
            ijson.items(stream, prefix, use_float=True, buf_size=CHUNK)
        try:
            for raw in items:
                self._log.restart()
                if isinstance(raw, dict):
                    objects += 1
                elif len(kinds) < 3:
                    kinds.add(_JSON_KINDS.get(type(raw), type(raw).__name__))
                unit = "normalized"
                if legacy and isinstance(raw, dict):
                    raw, unit = map_detail(raw, pages)
                element = make_element(raw, index, self.diag, unit)
                index += 1
                if element is None:
                    continue
                if element.page is not None:
                    seen_pages.add(element.page)
                yield element
        except _READ_ERRORS as exc:
            raise self._json_error(exc, position=stream.position, chunk=stream.last_chunk,
                                   chunk_start=stream.last_start) from None
        except BatchError as exc:
            raise self._json_error(exc.error, position=exc.text_start + len(exc.text),
                                   chunk=exc.text, chunk_start=exc.text_start) from None
        except InputError as exc:  # the structure guard: name the element it was in
            if exc.where and exc.where.startswith(("byte", "near byte")):
                exc.where = f"element #{index}, {exc.where}"
            raise
        self.info.element_count = index
        self.info.page_count_seen = max(seen_pages) if seen_pages else 0
        self._check_second_list()
        if index and not objects:
            raise InputError(f"this is a JSON list of {index} entr{'y' if index == 1 else 'ies'} "
                             f"({', '.join(sorted(kinds))}) with no element objects, not a "
                             "TextIn result", source=self.source.name)
        if not index:
            self.diag.warn("empty", "the result holds no elements; the outputs are empty")
        if pages is not None and pages.unmatched:
            self.diag.warn("legacy-pictures", f"{len(pages.unmatched)} picture(s) could not be "
                           "matched to the page images (first: element "
                           f"{pages.unmatched[0]}); shown as not available")
        if self._skipper.surrogates_replaced:
            self.diag.warn("text-cleaned", f"{self._skipper.surrogates_replaced} lone surrogate "
                           "escape(s) in the input replaced by U+FFFD")
        self._read_tail()
        if self._skipper.values_skipped > 1:  # the document has one markdown: the rest were
            # fields of its elements (or deeper), cut all the same
            self.diag.warn("markdown-cut", f"{self._skipper.values_skipped} \"markdown\" "
                           f"values of {SMALL_VALUE >> 10} KB or more were cut, not only the "
                           "document's: an element's own markdown field that long is empty "
                           "in the outputs")

    # -- the element list in batches (element_batches), when its start is known ----------
    def _list_start(self) -> tuple[int, int] | None:
        """Where the element list's ``[`` is in the filtered stream and the nesting depth
        inside it.  The guard noted where the list's key is; None when it did not see it in
        the head (the key split across two reads): the elements are then read by ijson."""
        head = self._head_buffer
        if self.info.shape == "elements":
            head.seek(0)
            opening = head.read(4096)
            at = len(opening) - len(opening.lstrip())
            return (at, 1) if opening[at:at + 1] == b"[" else None
        key, depth = _LIST_KEY[self.info.shape], _LIST_DEPTH[self.info.shape]
        found = [p for k, d, p in self._skipper.guard.list_keys if k == key and d == depth]
        return (found[0], depth + 1) if found else None

    def _list_chunks(self, start: int, level: int) -> Iterator[tuple[bytes, int, bool]]:
        """The filtered bytes after the list's ``[``, chunk by chunk, each with the nesting
        depth and string state at its end: first what the head read (its state worked out
        here), then the rest from the skipper (whose guard knows the state)."""
        head = self._head_buffer
        head.seek(start + 1)
        rest = head.read()
        state = StructureGuard.follower(level)
        at = 0
        while at < len(rest):
            end = cut_point(rest, at, CHUNK)
            piece = rest[at:end]
            state.feed(piece)
            yield piece, state.depth, state.in_string
            at = end
        del rest
        guard = self._skipper.guard
        while True:
            chunk = self._skipper.read_chunk(CHUNK)
            if self._progress is not None:
                self._progress(self._skipper.bytes_in)
            if not chunk:
                return
            yield chunk, guard.depth, guard.in_string

    def _batched_items(self, start: int, level: int) -> Iterator[Any]:
        """The raw elements, decoded batch by batch; what follows the list goes to the
        chunk log for the tail."""
        cutter = ListCutter(level, start + 1, self._skip)
        for chunk, depth, in_string in self._list_chunks(start, level):
            if cutter.end is not None:
                self._log.add(chunk)
                continue
            yield from cutter.feed(chunk, depth, in_string)
            if cutter.end is not None:
                self._log.add(cutter.after)
                self._list_end = cutter.end
        if cutter.end is None:
            yield from cutter.finish()  # raises: the input ends inside the list

    def _read_tail(self) -> None:
        shape = self.info.shape
        if self._list_end_known:
            self._read_known_tail()
            return
        if shape == "elements":
            return
        buf = self._log.data()
        for end in _list_end_candidates(buf, _LIST_DEPTH[shape], _LIST_KEY[shape]):
            document = _TAIL_OPENERS[shape] + buf[end + 1:]
            try:
                values = self._tail_values(shape, document)
            except (ijson.JSONError, ValueError):
                continue  # not the list's end after all
            self._apply_fields(values)
            self._check_code()
            return
        self.diag.warn("tail", "could not locate the end of the element list; fields after it "
                       "(pages, title_tree, summary) are ignored")

    def _read_known_tail(self) -> None:
        """The fields after a list whose closing ``]`` is known (``buf`` starts with it)."""
        shape = self.info.shape
        buf = self._log.data()
        opener = b"[]" if shape == "elements" else _TAIL_OPENERS[shape]
        document = opener + buf[1:]
        try:
            if shape == "elements":
                for _ in ijson.parse(io.BytesIO(document)):
                    pass  # only whitespace may follow a top-level list
                return
            values = self._tail_values(shape, document)
        except _READ_ERRORS as exc:
            start = self._list_end + 1 - len(opener)
            raise self._json_error(exc, position=start + len(document), chunk=document,
                                   chunk_start=start) from None
        self._apply_fields(values)
        self._check_code()

    def _tail_values(self, shape: str, document: bytes) -> dict[str, Any]:
        """The document fields in the tail, by prefix.  Raises on malformed JSON."""
        if shape.startswith("legacy"):  # legacy pages hold pictures: one page at a time
            collector = _FieldCollector({prefix: self._tail_legacy_page
                                         for prefix in _PAGE_PREFIXES})
            events = ijson.parse(io.BytesIO(document), use_float=True)
            if collector.feed(events):  # stops at the synthetic empty list; go on after it
                collector.feed(events)
            self._check_tail_keys(shape, iter(collector.keys))
            return {k: v for k, v in collector.values.items() if not k.endswith(".detail")}
        # ijson's C backend builds the values; a key seen twice in a container is refused
        values: dict[str, Any] = {}
        keys: list[tuple[str, str]] = []
        for container in (("", "data") if shape == "envelope" else ("",)):
            for key, value in ijson.kvitems(document, container, use_float=True):
                keys.append((container, key))
                if key == "elements" or (container == "" and key == "data"):
                    continue
                values[f"{container}.{key}" if container else key] = value
        self._check_tail_keys(shape, iter(keys))
        return values

    def _tail_legacy_page(self, page: Any) -> None:
        if self._tail_pages is None:
            self._tail_pages = LegacyPages(keep_images=False)
        self._tail_pages.add_page(page)
        for number, info in self._tail_pages.pages.items():
            self.info.pages.setdefault(number, info)

    def markdown(self) -> str | None:
        """The engine's whole-document markdown (``want_markdown=True``), after the stream.
        None when the input had none."""
        long_value = self._skipper.markdown()
        return long_value if long_value is not None else self._short_markdown


_JSON_KINDS = {int: "numbers", float: "numbers", str: "strings", list: "lists", bool: "booleans",
               type(None): "nulls"}
_LIST_PREFIXES_BY_SHAPE = {shape: prefix for prefix, shape in _LIST_PREFIXES.items()}


def not_a_result(values: dict[str, Any]) -> str:
    """What a JSON object without an element list is, in words."""
    keys = {k.rpartition(".")[2] for k in values}
    inner = {k.rpartition(".")[2] for k in values if k.startswith(("result.", "data.result."))}
    if "lines" in inner:
        return ("this is a TextIn text-recognition (OCR) result (result.lines), not a "
                "document-parsing result; it is not supported")
    if "markdown" in inner and "pages" in inner:
        return ("this is a TextIn x_to_markdown result (result.markdown and pages, no "
                "blocks), not a document-parsing result; it is not supported")
    if "object_list" in inner or "item_list" in inner:
        return ("this is a TextIn recognition result (receipts, forms), not a "
                "document-parsing result; it is not supported")
    pages = values.get("pages")
    if isinstance(pages, list) and any(isinstance(p, dict) and "result" in p for p in pages):
        return ("this is a TextIn recognition result (pages[].result), not a "
                "document-parsing result; it is not supported")
    shown = ", ".join(sorted(keys)[:8]) or "none"
    return ("no element list found: a JSON object with the keys " + shown + " (expected "
            "data.elements, elements, result.detail, data.result.detail, detail or a "
            "top-level array of elements)")


_CONTEXT = re.compile(r"\n( *)(.*)\n *\(right here\) ------\^")


def _yajl_error_offset(message: str, chunk: bytes) -> int | None:
    """Offset within ``chunk`` of a yajl error, recovered from its verbose context line
    (yajl prints up to 30 bytes either side of the error and a caret under it)."""
    match = _CONTEXT.search(message)
    if not match:
        return None
    indent, context = len(match.group(1)), match.group(2).rstrip()
    if not context:
        return None
    probe = context.encode("utf-8", "replace")
    before = 40 - indent if indent > 10 else 30
    normalised = chunk.replace(b"\n", b" ").replace(b"\r", b" ").replace(b"\t", b" ")
    found = normalised.find(probe)
    if found < 0:
        return None
    # yajl's offset counts the byte it stopped on; the error is at that byte
    return max(found + before - 1, 0)


def iter_elements(src: SourceLike, *, name: str | None = None, skip: Collection[str] = ()
                  ) -> Iterator[Element]:
    """Every element of an xParse result, in input order, streaming; ``skip``: fields left
    out unread (see ``Reader``), e.g. ``skip=("char_details",)``."""
    with Reader(src, name=name, skip=skip) as reader:
        yield from reader.elements()
