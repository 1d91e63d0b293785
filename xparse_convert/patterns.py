"""Regular expressions compiled on first use.

A character class over the CJK blocks takes Python's ``re`` 3-20 ms to compile (it fills a
table entry by entry), and a module that compiles five of them at import makes every command
pay for them, ``--version`` and a JSONL conversion too.  ``LazyPattern`` compiles when its
first method is called; after that the compiled pattern's methods are the object's own
attributes, so a hot loop pays nothing extra.
"""

from __future__ import annotations

import re
from typing import Any

_METHODS = ("findall", "finditer", "fullmatch", "match", "search", "split", "sub", "subn")


class LazyPattern:
    """``re.compile(source, flags)``, deferred: use it as the pattern (its matching methods
    and ``pattern``/``flags``)."""

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags

    def __getattr__(self, name: str) -> Any:
        # only called for attributes the object lacks: the first use of any of them
        if name.startswith("__"):
            raise AttributeError(name)
        compiled = re.compile(self._source, self._flags)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        return getattr(compiled, name)


__all__ = ["LazyPattern"]
