"""The element list's bytes cut into batches of whole elements, each decoded by msgspec.

ijson builds every value of every element through Python calls (the bare walk runs at about
20 MB/s); msgspec decodes a batch of whole elements in C, four to five times faster (orjson
is as fast, but turns an integer beyond 64 bits into a float; msgspec keeps it exact).  What it
takes is to know where elements end without parsing them: the structure guard already knows
the nesting depth and string state at the end of every chunk, and from there the bytes after a
candidate ``}`` tell the depth right after it (``structure.depth_before``).  A ``}`` that
leaves the nesting at the list's own level ends an element.  Candidates are tried from the end
of the chunk: first the boundary the list itself shows (``},{"<first key>"``, learnt from the
first element), then any ``},``; when none is an element's end (one element longer than the
chunk, or an unusual layout) the chunk is searched exactly, block by block, skipping blocks
that stay deeper than the list.

A batch that msgspec refuses is read again by ijson, which either reads it (yajl accepts what
msgspec does not) or raises the error the reader reports, with its position.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Iterator
from typing import Any, NamedTuple

import ijson
import msgspec

from . import structure

QUICK_TRIES = 8  # candidates tried from the end of a chunk before the exact search
BLOCK = 16 << 10  # the exact search's unit: its state is computed at C speed, block by block
SMALL_BLOCK = 512  # the unit inside the block that holds what is looked for
_ANY_END = re.compile(rb"[}\]]\s*,")
_FIRST_KEY = re.compile(rb'\s*\{\s*"([^"\\]{1,64})"')
_DECODER = msgspec.json.Decoder()


class Batch(NamedTuple):
    data: bytes  # whole elements between commas at the list's level
    start: int  # the position of ``data[0]`` in the filtered stream
    first: bool  # the list's first batch (no comma before it)
    closed: bool  # False: the input ended inside the list


class ListCutter:
    """Takes an element list's bytes chunk by chunk, from the byte after its ``[``, each
    with the nesting depth and string state at its end, and gives back the elements each
    chunk completes; ``level`` is the depth inside the list.  Once the list's ``]`` has
    been met, ``end`` is its position and ``after`` the bytes from it on that were fed."""

    def __init__(self, level: int, start: int, skip: Collection[str] = ()) -> None:
        self.level = level
        self._skip = fields_pattern(skip)
        # the bytes after the last cut: they start at the list's level, outside any string
        self._pending: list[bytes] = []
        self._pending_start = start
        self._position = start  # where the next chunk starts
        self._depth, self._in_string = level, False  # the state where it starts
        self._first = True
        self._boundary: re.Pattern[bytes] | None = None
        self.end: int | None = None
        self.after = b""

    def feed(self, chunk: bytes, depth_after: int, in_string_after: bool) -> list[Any]:
        depth, in_string = self._depth, self._in_string
        self._depth, self._in_string = depth_after, in_string_after
        self._position += len(chunk)
        if self._boundary is None and self._first:
            self._learn_boundary(chunk)
        if depth_after < self.level:  # the list has ended
            data = b"".join([*self._pending, chunk])
            end = _first_close_below(data, self.level)
            assert end >= 0, "the structure state says the list has ended"
            return self._end_at(data, end)
        cut = self._quick_cut(chunk, depth_after, in_string_after)
        if cut < 0:
            cut = self._exact_cut(chunk, depth, in_string)
        if cut < 0:
            self._pending.append(chunk)
            return []
        batch = self._take(chunk, cut)
        items = _fast_decode(batch, self._skip)
        if items is not None:
            return items
        # A cut after the list's end (a value after the list nests like an element) makes
        # the batch malformed: the list's ``]`` is in it.
        end = _first_close_below(batch.data, self.level)
        if end >= 0:
            self._pending.insert(0, batch.data)
            self._pending_start = batch.start
            self._first = batch.first
            return self._end_at(b"".join(self._pending), end)
        return decode(batch, self._skip)

    def finish(self) -> list[Any]:
        """The input ended inside the list (a truncated file): raises the parser's error."""
        return decode(Batch(b"".join(self._pending), self._pending_start, self._first, False),
                      self._skip)

    def _end_at(self, data: bytes, end: int) -> list[Any]:
        """``data`` (the pending bytes) holds the list's ``]`` at ``end``."""
        self.end = self._pending_start + end
        self.after = data[end:]
        batch = Batch(data[:end], self._pending_start, self._first, True)
        self._pending = []
        if batch.first and not batch.data.strip():
            return []  # an empty list
        return decode(batch, self._skip)

    def _take(self, chunk: bytes, cut: int) -> Batch:
        # a cut follows a closing bracket: the batch holds at least that element
        batch = Batch(b"".join([*self._pending, chunk[:cut]]), self._pending_start,
                      self._first, True)
        self._pending = [chunk[cut:]] if cut < len(chunk) else []
        self._pending_start = self._position - (len(chunk) - cut)
        self._first = False
        return batch

    def _learn_boundary(self, chunk: bytes) -> None:
        """Elements of one list mostly start with the same key: ``},{"key"`` is then a
        boundary that nested objects rarely share."""
        match = _FIRST_KEY.match(b"".join(self._pending) + chunk)
        if match:
            key = re.escape(match.group(1))
            self._boundary = re.compile(rb'}\s*,\s*\{\s*"' + key + rb'"')

    def _quick_cut(self, chunk: bytes, depth_after: int, in_string_after: bool) -> int:
        tries = 0
        for pattern in (self._boundary, _ANY_END):
            if pattern is None:
                continue
            window = len(chunk) if pattern is self._boundary else min(len(chunk), BLOCK)
            for match in reversed(list(pattern.finditer(chunk, len(chunk) - window))):
                after = match.start() + 1
                if structure.depth_before(chunk[after:], depth_after,
                                          in_string_after) == self.level:
                    return after
                tries += 1
                if tries >= QUICK_TRIES:
                    return -1
        return -1

    def _exact_cut(self, chunk: bytes, depth: int, in_string: bool) -> int:
        """The index after the last bracket of ``chunk`` that closes an element, or -1;
        ``depth`` and ``in_string``: the state at the chunk's start."""
        for block_start, block, block_depth, block_in_string in reversed(
                list(_blocks(chunk, depth, in_string))):
            if structure.lowest_depth(block, block_depth, block_in_string) > self.level:
                continue  # all inside one element
            last = -1
            for after, level in structure.closes(block, block_depth, block_in_string):
                if level == self.level:
                    last = after
            if last >= 0:
                return block_start + last
        return -1


def _first_close_below(data: bytes, level: int, start: int = 0) -> int:
    """The index of the bracket that takes ``data[start:]`` (which starts at ``level``,
    outside any string) below ``level``, or -1.  The block that holds it is found at C
    speed, then a small block inside it, and only that is scanned token by token."""
    depth, in_string, end = level, False, len(data)
    for size in (BLOCK, SMALL_BLOCK):
        for block_start, block, block_depth, block_in_string in _blocks(
                data, depth, in_string, start, end, size):
            if structure.lowest_depth(block, block_depth, block_in_string) < level:
                start, end = block_start, block_start + len(block)
                depth, in_string = block_depth, block_in_string
                break
        else:
            return -1
    for after, depth_after in structure.closes(data[start:end], depth, in_string):
        if depth_after < level:
            return start + after - 1
    return -1


def _blocks(data: bytes, depth: int, in_string: bool, start: int = 0, end: int | None = None,
            size: int = BLOCK) -> Iterator[tuple[int, bytes, int, bool]]:
    """``data[start:end]`` in blocks of about ``size`` bytes with the state at each block's
    start.  A block never ends inside an escape (``structure.cut_point``; ``end`` must not
    fall inside one either)."""
    end = len(data) if end is None else end
    guard = structure.StructureGuard(max_depth=1 << 62)
    guard.list_keys_sought = ()
    guard.depth, guard.in_string = depth, in_string
    while start < end:
        stop = min(structure.cut_point(data, start, size), end)
        block = data[start:stop]
        yield start, block, guard.depth, guard.in_string
        guard.feed(block)
        start = stop


class BatchError(Exception):
    """ijson's error for a batch, with the text it read and where that text starts."""

    def __init__(self, error: Exception, text: bytes, text_start: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.text = text
        self.text_start = text_start


def _opener(batch: Batch) -> bytes:
    # A batch after the first starts with the comma before its first element: a leading 0
    # makes it an array again (and a trailing comma before the list's end malformed).
    return b"[" if batch.first else b"[0"


def _fast_decode(batch: Batch, skip: re.Pattern[bytes] | None) -> list[Any] | None:
    """The elements of ``batch`` by msgspec, without the skipped fields; None when msgspec
    refuses it."""
    data = batch.data if skip is None else without_fields(batch.data, skip)
    try:
        items = _DECODER.decode(_opener(batch) + data + b"]")
    except msgspec.DecodeError:
        return None
    return items if batch.first else items[1:]


def decode(batch: Batch, skip: re.Pattern[bytes] | None = None) -> list[Any]:
    """The elements of ``batch``; raises ``BatchError`` for malformed JSON.  What msgspec
    refuses is read whole by ijson (the skipped fields too: no output reads them)."""
    if batch.closed:
        items = _fast_decode(batch, skip)
        if items is not None:
            return items
    opener = _opener(batch)
    text = opener + batch.data + (b"]" if batch.closed else b"")
    try:
        items = list(ijson.items(io.BytesIO(text), "item", use_float=True))
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise BatchError(exc, text, batch.start - len(opener)) from None
    return items if batch.first else items[1:]


# -- fields skipped unread -------------------------------------------------------------------
_SCALAR = re.compile(rb"-?[0-9][0-9.eE+\-]*|true|false|null")
_SPACE = re.compile(rb"\s*")


def fields_pattern(names: Collection[str]) -> re.Pattern[bytes] | None:
    """The pattern of a member named one of ``names`` (a key, its colon); None for none."""
    if not names:
        return None
    alternatives = b"|".join(re.escape(name.encode()) for name in sorted(names))
    return re.compile(rb'"(?:' + alternatives + rb')"\s*:\s*')


def without_fields(data: bytes, member: re.Pattern[bytes]) -> bytes:
    """``data`` (which starts outside any string) without the object members ``member``
    finds, at any depth, each with one comma.  A member is cut by its bytes: inside its value
    only the string and bracket structure is read.  A value that does not end in ``data``
    stays (the decoder reports it)."""
    parts: list[bytes] = []
    kept = 0  # data[kept:] is not yet in parts
    known = 0  # data[known] is outside any string
    search = 0
    while True:
        match = member.search(data, search)
        if match is None:
            break
        quotes = structure.quote_count(data[known:match.start()])
        if quotes % 2:  # inside a string: a text that mentions the key
            search = match.start() + 1
            continue
        end = _value_end(data, match.end())
        if end < 0:
            break
        start = match.start()
        after = _SPACE.match(data, end).end()
        if data[after:after + 1] == b",":
            end = after + 1  # the comma after it goes with it
        else:  # the last member: the comma before it goes
            before = start
            while before > 0 and data[before - 1] in b" \t\r\n":
                before -= 1
            if data[before - 1:before] == b",":
                start = before - 1
        parts.append(data[kept:start])
        kept = known = search = end
    if not parts:
        return data
    parts.append(data[kept:])
    return b"".join(parts)


def _value_end(data: bytes, start: int) -> int:
    """The index after the JSON value at ``start``, or -1 when it does not end in ``data``."""
    opener = data[start:start + 1]
    if opener in (b"[", b"{"):
        close = _first_close_below(data, 1, start + 1)
        return close + 1 if close >= 0 else -1
    if opener == b'"':
        at = start + 1
        while True:
            at = data.find(b'"', at)
            if at < 0:
                return -1
            backslash = at
            while data[backslash - 1] == 0x5C:
                backslash -= 1
            if (at - backslash) % 2 == 0:
                return at + 1
            at += 1
    scalar = _SCALAR.match(data, start)
    return scalar.end() if scalar else -1


__all__ = ["Batch", "BatchError", "ListCutter", "decode", "fields_pattern", "without_fields"]
