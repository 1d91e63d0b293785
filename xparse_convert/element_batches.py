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

Fields no writer reads (``char_details``: most of a result saved with character details) are
skipped unread: an element whose bytes mention such a field is decoded as raw members
(msgspec steps over a value it keeps raw in C, validating it but building nothing), and only
the members that mention it are looked into, down to the field itself.  Building the objects
of ``char_details`` costs more than all the rest of the reading.
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
_BEFORE_KEY = re.compile(rb'}\s*,\s*\{\s*\Z')  # what precedes an element's first key
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
        self._skip = frozenset(skip) or None
        # the bytes after the last cut: they start at the list's level, outside any string
        self._pending: list[bytes] = []
        self._pending_start = start
        self._position = start  # where the next chunk starts
        self._depth, self._in_string = level, False  # the state where it starts
        self._first = True
        self._first_key: bytes | None = None  # the key elements start with, quoted
        self.end: int | None = None
        self.after = b""

    def feed(self, chunk: bytes, depth_after: int, in_string_after: bool) -> list[Any]:
        depth, in_string = self._depth, self._in_string
        self._depth, self._in_string = depth_after, in_string_after
        self._position += len(chunk)
        if self._first_key is None and self._first:
            self._learn_first_key(chunk)
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

    def _learn_first_key(self, chunk: bytes) -> None:
        """Elements of one list mostly start with the same key: ``},{"key"`` is then a
        boundary that nested objects rarely share."""
        match = _FIRST_KEY.match(b"".join(self._pending) + chunk)
        if match:
            self._first_key = b'"' + match.group(1) + b'"'

    def _quick_cut(self, chunk: bytes, depth_after: int, in_string_after: bool) -> int:
        for tries, after in enumerate(self._boundaries(chunk), 1):
            if structure.depth_before(chunk[after:], depth_after,
                                      in_string_after) == self.level:
                return after
            if tries >= QUICK_TRIES:
                break
        return -1

    def _boundaries(self, chunk: bytes) -> Iterator[int]:
        """Candidate cuts (the index after a ``}``), from the end of the chunk: before the
        learnt first key (found backwards with ``rfind``, at C speed), then any ``},``."""
        key = self._first_key
        if key is not None:
            at = len(chunk)
            for _ in range(QUICK_TRIES):
                at = chunk.rfind(key, 0, at)
                if at < 0:
                    break
                match = _BEFORE_KEY.search(chunk, max(0, at - 64), at)
                if match is not None:
                    yield match.start() + 1
        window = min(len(chunk), BLOCK)
        for match in reversed(list(_ANY_END.finditer(chunk, len(chunk) - window))):
            yield match.start() + 1

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
    outside any string) below ``level``, or -1.  Windows that double in size find the part
    that holds it at C speed (``structure.depth_profile``), halving narrows it down, and only
    a small block is scanned token by token: the cost follows the value's size."""
    depth, in_string, size = level, False, SMALL_BLOCK * 8
    while start < len(data):
        end = structure.cut_point(data, start, size)
        lowest, depth_after, in_string_after = structure.depth_profile(
            data[start:end], depth, in_string)
        if lowest < level:
            return _close_within(data, start, end, depth, in_string, level)
        start, depth, in_string, size = end, depth_after, in_string_after, size * 2
    return -1


def _close_within(data: bytes, start: int, end: int, depth: int, in_string: bool,
                  level: int) -> int:
    """``_first_close_below`` where ``data[start:end]`` is known to hold the bracket."""
    while end - start > SMALL_BLOCK:
        middle = structure.cut_point(data, start, (end - start) // 2)
        if middle >= end:
            break
        lowest, depth_after, in_string_after = structure.depth_profile(
            data[start:middle], depth, in_string)
        if lowest < level:
            end = middle
        else:
            start, depth, in_string = middle, depth_after, in_string_after
    for after, depth_after in structure.closes(data[start:end], depth, in_string):
        if depth_after < level:
            return start + after - 1
    return -1


def _blocks(data: bytes, depth: int, in_string: bool
            ) -> Iterator[tuple[int, bytes, int, bool]]:
    """``data`` in blocks of about ``BLOCK`` bytes with the state at each block's start.
    A block never ends inside an escape (``structure.cut_point``)."""
    guard = structure.StructureGuard.follower(depth, in_string)
    start = 0
    while start < len(data):
        end = structure.cut_point(data, start, BLOCK)
        block = data[start:end]
        yield start, block, guard.depth, guard.in_string
        guard.feed(block)
        start = end


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


def _fast_decode(batch: Batch, skip: frozenset[str] | None) -> list[Any] | None:
    """The elements of ``batch`` by msgspec, without the skipped fields; None when msgspec
    refuses it."""
    text = _opener(batch) + batch.data + b"]"
    try:
        keys = _quoted(skip) if skip else ()
        if skip and any(key in text for key in keys):
            items = [_without(raw, skip, keys) for raw in _RAW_LIST.decode(text)]
        else:  # nothing to skip here: one call builds every element
            items = _DECODER.decode(text)
    except msgspec.DecodeError:
        return None
    return items if batch.first else items[1:]


def decode(batch: Batch, skip: frozenset[str] | None = None) -> list[Any]:
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
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_MAP = msgspec.json.Decoder(dict[str, msgspec.Raw])


def without_fields(data: bytes, names: Collection[str]) -> Any:
    """The JSON value ``data`` decoded without the object members named ``names``, at any
    depth.  msgspec steps over a value it is only asked to keep raw in C, building nothing,
    and only the values whose bytes mention a name are looked into."""
    return _without(msgspec.Raw(data), frozenset(names), _quoted(names))


def _quoted(names: Collection[str]) -> tuple[bytes, ...]:
    return tuple(f'"{name}"'.encode() for name in names)


def _without(raw: msgspec.Raw, names: frozenset[str], keys: tuple[bytes, ...]) -> Any:
    text = bytes(raw)
    if not any(key in text for key in keys):
        return _DECODER.decode(text)
    if text[:1] == b"{":
        return {key: _without(value, names, keys) for key, value in _RAW_MAP.decode(text).items()
                if key not in names}
    if text[:1] == b"[":
        return [_without(value, names, keys) for value in _RAW_LIST.decode(text)]
    return _DECODER.decode(text)  # a string that mentions a name


__all__ = ["Batch", "BatchError", "ListCutter", "decode", "without_fields"]
