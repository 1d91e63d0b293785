"""Tolerant JSON values, one home: what counts as an integer or a name when a result's fields
come as numbers, numeric strings, booleans or nothing at all."""

from __future__ import annotations

from typing import TypeGuard


def is_int(value: object) -> TypeGuard[int]:
    """True for a JSON integer; booleans are not numbers here (``True`` is an ``int`` to
    Python, never to a result)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: object) -> int | None:
    """An integer from an int, an integral float or a string of ASCII digits (at most 18,
    optionally signed); else None.  Booleans are not numbers here."""
    if type(value) is int:  # the common case first (bool is a subclass, not this type)
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(text)
    return None


def str_or_none(value: object) -> str | None:
    """A name (an id, a reference): a non-empty string as it is, an integer as its digits;
    else None."""
    if value is None:  # the common case: every element has these fields, most are null
        return None
    if isinstance(value, str) and value:
        return value
    if is_int(value):
        return str(value)
    return None
