"""The structure of the JSON byte stream, followed at C speed: nesting depth and whether a
position is inside a string, chunk by chunk, before any parser sees the bytes.

yajl (ijson's C backend) has no depth limit and its object builder costs memory growing with
depth squared (100,000 nested arrays: 24 GB); it lexes a token that spans many reads from its
first byte on every read (one long string: quadratic time).  ``StructureGuard`` bounds the
depth and tells the reader where a chunk starts and ends (inside a string or not), so the
reader can hand a long token to the parser in one piece and drop runs of whitespace.

How a chunk is read without a Python loop over its bytes: escapes are removed (a regex),
every byte but ``" [ ] { }`` is deleted (``bytes.translate``), empty pairs of quotes are
removed (``replace``) and the few strings still holding brackets by one regular expression;
the brackets left are all
structure, their net count is the depth change, and removing adjacent ``[]`` pairs pass by
pass bounds the depth inside the chunk.  Only a chunk whose depth may pass the limit is
scanned exactly (a loop over its structural bytes), to say where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .errors import InputError

DEFAULT_MAX_DEPTH = 512  # real results nest under 20
DEFAULT_MAX_STRING_MB = 256  # a longer string value is refused (the reader reads it whole)

_STRUCTURAL = b'"[]{}'
_DELETE = bytes(b for b in range(256) if b not in _STRUCTURAL)
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_ESCAPE = re.compile(rb'\\[\\"]')  # the escapes that can hide or fake a quote
# After escapes are gone, a string is a quote, anything but a quote, a quote.
_STRING = re.compile(rb'"[^"]*"')
_TOKEN = re.compile(rb'\\.|["\[\]{}]', re.S)
# A key that holds an element list, as it can only appear outside a string (checked below).
LIST_KEY = re.compile(rb'"(elements|detail)"\s*:\s*\[')


class ChunkShape:
    """What a chunk is: whether it starts and ends inside a string, or lies inside one."""

    __slots__ = ("starts_in_string", "ends_in_string", "within_string")

    def __init__(self, starts_in_string: bool, ends_in_string: bool, within_string: bool
                 ) -> None:
        self.starts_in_string = starts_in_string
        self.ends_in_string = ends_in_string
        self.within_string = within_string  # all of it inside one string


class StructureGuard:
    """Follows depth and string state over consecutive chunks (which never end inside an
    escape); raises ``InputError`` when the nesting passes ``max_depth``.  Remembers where
    keys that may hold an element list occur outside strings, with their depth."""

    def __init__(self, max_depth: int = DEFAULT_MAX_DEPTH, source: str = "") -> None:
        self.max_depth = max_depth
        self.source = source
        self.depth = 0
        self.in_string = False
        self.position = 0  # bytes seen
        self._within = False
        # (key, depth of the key, position of the list's "[")
        self.list_keys: list[tuple[str, int, int]] = []
        # the keys looked for: both until the reader knows the shape, then its own
        self.list_keys_sought: tuple[bytes, ...] = (b'"elements"', b'"detail"')
        # maps a position in the bytes seen to the input's byte offset (the reader knows
        # what it cut out before the guard saw the bytes), for messages
        self.input_offset: Callable[[int], int] = lambda position: position

    @classmethod
    def follower(cls, depth: int, in_string: bool = False) -> StructureGuard:
        """A guard that only follows the state from ``depth``/``in_string`` on: no depth
        limit, no list keys (for bytes the reader's own guard has checked already)."""
        guard = cls(max_depth=1 << 62)
        guard.list_keys_sought = ()
        guard.depth, guard.in_string = depth, in_string
        return guard

    def feed(self, chunk: bytes) -> ChunkShape:
        start_in_string = self.in_string
        self._within = False
        if chunk:
            if any(key in chunk for key in self.list_keys_sought):
                self._note_list_keys(chunk)
            if not self._fast(chunk):
                self._exact(chunk)
            self.position += len(chunk)
        return ChunkShape(start_in_string, self.in_string, self._within)

    def _fast(self, chunk: bytes) -> bool:
        """The depth and string state after ``chunk`` without looking at each byte; False
        when only the exact scan can tell."""
        brackets, ends_in_string = _outside_strings(_marks(chunk), self.in_string)
        if brackets is None:
            self._within = True  # all of it inside one string
            return True
        opened = brackets.count(b"[")
        if opened:
            end_depth = self.depth + opened - brackets.count(b"]")
            if self.depth + opened > self.max_depth:
                # the depth may pass the limit: measure the peak
                passes, rest = _without_pairs(brackets, self.max_depth + 1)
                closers = len(rest) - len(rest.lstrip(b"]"))
                level = max(self.depth, self.depth - closers + (len(rest) - closers))
                if level + passes > self.max_depth:
                    return False
            self.depth = end_depth
        else:
            self.depth -= brackets.count(b"]")
        self.in_string = ends_in_string
        return True

    def _exact(self, chunk: bytes) -> None:
        depth, in_string = self.depth, self.in_string
        for match in _TOKEN.finditer(chunk):
            token = match.group()
            if in_string:
                if token == b'"':
                    in_string = False
                continue
            if token == b'"':
                in_string = True
            elif token in (b"[", b"{"):
                depth += 1
                if depth > self.max_depth:
                    self._too_deep(self.position + match.start())
            elif token in (b"]", b"}"):
                depth -= 1
        self.depth, self.in_string = depth, in_string

    def _too_deep(self, position: int) -> None:
        where = self.input_offset(position)
        raise InputError(f"nesting deeper than {self.max_depth} levels (real results nest "
                         "under 20; see --max-depth)", source=self.source,
                         where=f"byte {where}")

    def _note_list_keys(self, chunk: bytes) -> None:
        """Keys ``elements``/``detail`` outside strings, with their depth and where their
        list opens (exact, from a scan of the chunk up to them: such keys are few)."""
        for match in LIST_KEY.finditer(chunk):
            depth, in_string = self._state_at(chunk, match.start())
            if not in_string:
                self.list_keys.append((match.group(1).decode(), depth, self.position +
                                       match.end() - 1))

    def _state_at(self, chunk: bytes, stop: int) -> tuple[int, bool]:
        state = (self.depth, self.in_string)
        for _, depth, in_string, _ in _steps(chunk, self.depth, self.in_string, stop):
            state = (depth, in_string)
        return state


def _marks(chunk: bytes) -> bytes:
    """``chunk`` reduced to its quotes and brackets (``{}`` as ``[]``), escapes removed; the
    chunk must not end inside an escape."""
    # only then can a quote be escaped: \" and \\ escapes go (a lone backslash is looked
    # for first: memchr, where a search for two bytes ending in a quote is slow)
    if b"\\" in chunk and b'\\"' in chunk:
        chunk = _ESCAPE.sub(b"", chunk)
    return chunk.translate(_TO_SQUARE, _DELETE)


def _outside_strings(marks: bytes, in_string: bool) -> tuple[bytes | None, bool]:
    """The brackets of ``marks`` that are structure, and whether it ends inside a string;
    ``(None, True)`` when all of it lies inside one string."""
    if in_string:
        end = marks.find(b'"')
        if end < 0:
            return None, True
        marks = marks[end + 1:]
    # Two adjacent quotes go first: that removes no bracket and keeps the parity of the
    # quotes before every bracket, which is all that says whether it is in a string; what
    # is left is the few strings that hold brackets, and the brackets.
    marks = marks.replace(b'""', b"")
    if b'"' in marks:
        marks = _STRING.sub(b"", marks)
    open_at = marks.find(b'"')  # what is left of a quote: a string still open
    if open_at >= 0:
        return marks[:open_at], True
    return marks, False


def _without_pairs(brackets: bytes, most: int) -> tuple[int, bytes]:
    """Adjacent ``[]`` pairs removed pass by pass (at most ``most`` passes): the passes
    taken (the nesting inside the chunk) and what is left, ``]]..[[``."""
    passes = 0
    while passes < most:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets, passes = shorter, passes + 1
    return passes, brackets


def depth_before(chunk: bytes, depth_after: int, in_string_after: bool) -> int | None:
    """The nesting depth at the start of ``chunk`` from the state at its end; None when the
    chunk starts inside a string.  Quote parity read backwards says where strings are, as
    it does forwards."""
    marks = _marks(chunk)
    if in_string_after == (marks.count(b'"') % 2 == 0):
        return None
    brackets, _ = _outside_strings(marks, False)
    assert brackets is not None
    return depth_after - brackets.count(b"[") + brackets.count(b"]")


def lowest_depth(chunk: bytes, depth: int, in_string: bool) -> int:
    """The lowest nesting depth reached inside ``chunk``, from the state at its start."""
    return depth_profile(chunk, depth, in_string)[0]


def depth_profile(chunk: bytes, depth: int, in_string: bool) -> tuple[int, int, bool]:
    """From the state at the start of ``chunk``: the lowest depth reached inside it, and the
    depth and string state at its end."""
    brackets, ends_in_string = _outside_strings(_marks(chunk), in_string)
    if not brackets:
        return depth, depth, ends_in_string
    end_depth = depth + brackets.count(b"[") - brackets.count(b"]")
    _, rest = _without_pairs(brackets, len(brackets))
    return depth - (len(rest) - len(rest.lstrip(b"]"))), end_depth, ends_in_string


def closes(chunk: bytes, depth: int, in_string: bool) -> Iterator[tuple[int, int]]:
    """Every closing bracket of ``chunk`` outside strings, as (index after it, depth after
    it), from the state at the chunk's start: the exact scan, one step per token."""
    for end, depth_after, _, closed in _steps(chunk, depth, in_string):
        if closed:
            yield end, depth_after


def _steps(chunk: bytes, depth: int, in_string: bool, stop: int | None = None
           ) -> Iterator[tuple[int, int, bool, bool]]:
    """After every token of ``chunk[:stop]`` (a quote, a bracket, an escape): the index
    after it, the depth and string state there, and whether it closed a bracket."""
    for match in _TOKEN.finditer(chunk, 0, len(chunk) if stop is None else stop):
        token = match.group()
        closed = False
        if in_string:
            in_string = token != b'"'
        elif token == b'"':
            in_string = True
        elif token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
            closed = True
        yield match.end(), depth, in_string, closed


def cut_point(data: bytes, start: int, size: int) -> int:
    """Where a chunk of about ``size`` bytes from ``start`` may end without splitting an
    escape: before the run of backslashes ``size`` falls after, or after the character that
    follows the run when the run is all there is."""
    end = start + size
    if end >= len(data):
        return len(data)
    cut = end
    while cut > start and data[cut - 1] == 0x5C:
        cut -= 1
    if cut > start:
        return cut
    while end < len(data) and data[end] == 0x5C:
        end += 1
    return min(end + 1, len(data))


def whitespace_only(chunk: bytes) -> bool:
    return not chunk.strip()


__all__ = ["ChunkShape", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_STRING_MB", "StructureGuard",
           "closes", "cut_point", "depth_before", "depth_profile", "lowest_depth",
           "whitespace_only"]
