"""Text cleaning shared by every writer: the one place that decides what a character may be."""

from __future__ import annotations

import re
import unicodedata

# XML 1.0 forbids C0 controls except tab/newline/CR, the noncharacters U+FFFE/U+FFFF; lone
# surrogates cannot be encoded at all.  Python strings from JSON may hold all of these (a
# "\ud800" escape decodes to a lone surrogate), so every XML or text writer passes through here.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ANY_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

REPLACEMENT = "\ufffd"


class TextStats:
    """Counts of characters removed or replaced by cleaning, summed over a conversion."""

    __slots__ = ("removed", "replaced")

    def __init__(self) -> None:
        self.removed = 0
        self.replaced = 0

    def __bool__(self) -> bool:
        return bool(self.removed or self.replaced)


def replace_bad(value: str) -> str:
    """``value`` with each character ``clean_text`` would drop or replace made U+FFFD, one for
    one: for text whose offsets are handed on (chunk spans), which dropping would shift."""
    return _ANY_BAD.sub(REPLACEMENT, value)


def clean_text(value: str, stats: TextStats | None = None) -> str:
    """Return ``value`` safe for XML and UTF-8: illegal controls dropped, lone surrogates
    replaced by U+FFFD.  Counts go to ``stats``.  Everything else is kept as it is."""
    if _ANY_BAD.search(value) is None:
        return value
    value, replaced = _SURROGATE.subn(REPLACEMENT, value)
    value, removed = _XML_ILLEGAL.subn("", value)
    if stats is not None:
        stats.replaced += replaced
        stats.removed += removed
    return value


_DISPLAY_DELIMS = re.compile(r"^\s*(\$\$|\\\[)\s*(.*?)\s*(\$\$|\\\])\s*$", re.S)
_INLINE_DELIMS = re.compile(r"^\s*\$\s*(.*?)\s*\$\s*$", re.S)


def strip_math_delimiters(text: str) -> str:
    """LaTeX without ``$$``/``\\[``/``$`` around it."""
    match = _DISPLAY_DELIMS.match(text)
    if match:
        return match.group(2)
    match = _INLINE_DELIMS.match(text)
    if match:
        return match.group(1)
    return text.strip()


def fold_spaces(text: str) -> str:
    """Text on one line: every run of whitespace one space, none at either end (how a
    caption reads wherever it is shown)."""
    return " ".join(text.split())


def join_glue(left: str, right: str) -> str:
    """What goes between two pieces of one paragraph split across pages: nothing after a
    hyphen or whitespace, before whitespace, or next to CJK and fullwidth text (which has no
    spaces); else one space."""
    if not left or not right:
        return ""
    a, b = left[-1], right[0]
    if a == "-" or a.isspace() or b.isspace():
        return ""
    return "" if ord(a) > 0x2E7F or ord(b) > 0x2E7F else " "


# ``find_bad(s)`` is None when ``clean_text(s)`` would return ``s`` unchanged (a hot-path test).
find_bad = _ANY_BAD.search


def replace_surrogates(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD (it could not be encoded)."""
    return _SURROGATE.sub(REPLACEMENT, value)


def display_width(value: str) -> int:
    """Width in monospace columns: East Asian wide and fullwidth characters count double."""
    if value.isascii():
        return len(value)
    width = 0
    for ch in value:
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width
