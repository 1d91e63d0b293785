"""Text bound for a terminal: values from an input or a server are shown, never obeyed.

An element id of ``\\r\\x1b[2K...`` would otherwise erase the line and forge a message, and
``\\x1b[2J`` would clear the screen; a bidi override (U+202E) would reorder what follows.
"""

from __future__ import annotations

import re

# C0 controls (newline and tab included: a value never starts a line of its own), DEL, C1
# controls, and the bidi embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control and bidi control character shown as an escape
    (``\\x1b``, ``\\u202e``, ``\\n``); everything else, non-ASCII letters included, unchanged."""
    return _UNSAFE.sub(_escape, text)
