"""File names made from remote values (a URL's path, a result's file name, a job id).

A server or a document author chooses these strings, so they are data until this one policy
has made them a plain name: it can never climb out of the output folder, hide itself, reorder
how a terminal shows it, or replace a file that is already there.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path

MAX_NAME_BYTES = 200  # leaves room for an extension and a temporary-file decoration in 255

# Separators, C0/C1 controls and DEL, the bidi embeddings, overrides and isolates
# (U+202A-202E, U+2066-2069) that make a terminal or a file manager show another name, and
# lone surrogates (JSON can hold them; no file system name can).
_UNSAFE = re.compile("[/\\\\\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_lock = threading.Lock()  # parse converts documents in threads that share one ``taken``


def safe_name(value: str, folder: str | os.PathLike, taken: set[Path] | None = None, *,
              suffixes: Iterable[str] = ("",), fallback: str = "") -> str:
    """A plain file name made from ``value``: NFC, each ``/``, ``\\``, control or bidi
    character replaced by ``_``, no leading dots or spaces, at most 200 bytes of UTF-8 (cut at
    a character boundary).  Empty, it becomes ``fallback`` (made safe the same way), else
    ``result``.  A name already in ``taken`` (``folder/name`` paths claimed in this run), or
    for which ``folder/name+suffix`` exists for any of ``suffixes``, gets ``-2``, ``-3``...;
    the name returned is added to ``taken``.  ``folder/name`` is always directly inside
    ``folder``."""
    base = _clean(value) or _clean(fallback) or "result"
    suffixes = tuple(suffixes) or ("",)
    where = Path(folder)
    resolved = where.resolve()
    with _lock:
        number = 1
        while True:
            tail = "" if number == 1 else f"-{number}"
            name = _cut(base, MAX_NAME_BYTES - len(tail)) + tail
            claimed = taken is not None and resolved / name in taken
            if not claimed and not any(os.path.lexists(where / f"{name}{s}") for s in suffixes):
                break
            number += 1
        if taken is not None:
            taken.add(resolved / name)
    return name


def _clean(value: str) -> str:
    text = _UNSAFE.sub("_", unicodedata.normalize("NFC", value))
    # "." and ".." are the folder itself and its parent; a leading dot hides the file
    return _cut(text.lstrip(". ").rstrip(" "), MAX_NAME_BYTES)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")
