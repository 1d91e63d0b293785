"""Numbers in table text: ``1,234.50``, ``-3.2%``, ``(1,200)``, ``+18.4%`` become a value and
a number format that displays them exactly as written, unless converting would lose
information (leading zeros, more than 15 significant digits, long digit strings that are
identifiers); then they stay text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

_NUMBER = re.compile(
    r"^(?P<open>\()?(?P<sign>[+-])?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
    r"(?P<pct>%)?(?P<close>\))?$"
)
MAX_DIGITS = 15  # Excel keeps 15 significant digits
ID_DIGITS = 12  # a plain run of this many digits is an identifier, not a quantity


@dataclass(frozen=True)
class Number:
    value: int | float
    format: str  # Excel number format code


def parse_number(text: str) -> Number | None:
    """The number ``text`` shows, with a format that shows it the same way; None for text."""
    stripped = text.strip()
    if not stripped or len(stripped) > 40:
        return None
    match = _NUMBER.match(stripped)
    if match is None:
        return None
    opened, closed = bool(match.group("open")), bool(match.group("close"))
    if opened != closed or (opened and match.group("sign")):
        return None
    whole = match.group("int")
    digits = whole.replace(",", "")
    frac = match.group("frac") or ""
    grouped = "," in whole
    if len(digits) > 1 and digits[0] == "0":
        return None  # leading zeros: a code, keep it as written
    significant = (digits + frac).lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:
        return None
    if not grouped and not frac and len(digits) >= ID_DIGITS:
        return None
    negative = opened or match.group("sign") == "-"
    pct = bool(match.group("pct"))
    body = ("#,##0" if grouped else "0") + ("." + "0" * len(frac) if frac else "")
    if pct:
        body += "%"
    if opened:
        fmt = f"{body};({body})"
    elif match.group("sign") == "+":
        fmt = f"+{body};-{body};{body}"
    else:
        fmt = body
    number_text = f"{digits}.{frac}" if frac else digits
    value: int | float
    if pct:
        value = float(Decimal(number_text) / 100)  # 22.7% is 0.227, not 0.22699999999999998
    elif frac:
        value = float(number_text)
    else:
        value = int(digits)
    if negative:
        value = -value
    return Number(value, fmt)
