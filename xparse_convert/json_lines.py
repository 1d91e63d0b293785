"""One JSON value as one line of bytes, whatever the input held: the JSONL, chunk and Parquet
writers all write such lines."""

from __future__ import annotations

import json
from typing import Any

import orjson

from .text import replace_surrogates


def _sanitise(value: Any) -> Any:
    """A copy with lone surrogates replaced: orjson refuses them, and so would any reader.
    Nothing else changes (control characters are escaped as orjson escapes them)."""
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, dict):
        return {replace_surrogates(str(k)): _sanitise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitise(v) for v in value]
    return value


def dumps_line(value: Any) -> bytes:
    """One JSON line.  What orjson refuses (lone surrogates, integers beyond 64 bits) goes
    through the standard library's encoder instead, surrogates replaced."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(_sanitise(value), ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8", "replace")


__all__ = ["dumps_line"]
