"""Numbers in table text: ``1,234.50``, ``-3.2%``, ``(1,200)``, ``+18.4%`` become a value and
a number format that displays them exactly as written, unless converting would lose
information (leading zeros, more than 15 significant digits, long digit strings that are
identifiers); then they stay text."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MAX_DIGITS = 15  # Excel keeps 15 significant digits
ID_DIGITS = 12  # a plain run of this many digits is an identifier, not a quantity


@dataclass(frozen=True)
class Number:
    value: int | float
    format: str  # Excel number format code


def parse_number(text: str) -> Number | None:
    """The number ``text`` shows, with a format that shows it the same way; None for text.

    Accepted: optional sign or accounting parentheses, digits (thousands grouped by commas
    or not), an optional decimal part, an optional percent sign.  Written without a regex:
    it runs on every cell of every table.
    """
    s = text.strip()
    if not s or len(s) > 40 or not (s[0].isdigit() or s[0] in "+-(") or not s.isascii():
        return None
    opened = s[0] == "("
    if opened:
        if len(s) < 3 or s[-1] != ")":
            return None
        s = s[1:-1]
    sign = ""
    if s[:1] in ("+", "-"):
        if opened:
            return None
        sign, s = s[0], s[1:]
    pct = s.endswith("%")
    if pct:
        s = s[:-1]
    whole, dot, frac = s.partition(".")
    if dot and not frac.isdigit():
        return None
    grouped = "," in whole
    if grouped:
        groups = whole.split(",")
        if not (0 < len(groups[0]) <= 3 and groups[0].isdigit() and all(
                len(g) == 3 and g.isdigit() for g in groups[1:])):
            return None
        digits = "".join(groups)
    elif whole.isdigit():
        digits = whole
    else:
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None  # leading zeros: a code, keep it as written
    significant = (digits + frac).lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:
        return None
    if not grouped and not frac and len(digits) >= ID_DIGITS:
        return None
    body = ("#,##0" if grouped else "0") + ("." + "0" * len(frac) if frac else "")
    if pct:
        body += "%"
    if opened:
        fmt = f"{body};({body})"
    elif sign == "+":
        fmt = f"+{body};-{body};{body}"
    else:
        fmt = body
    value: int | float
    if pct:
        value = float(Decimal(f"{digits}.{frac}" if frac else digits) / 100)
    elif frac:
        value = float(f"{digits}.{frac}")
    else:
        value = int(digits)
    if opened or sign == "-":
        value = -value
    return Number(value, fmt)
