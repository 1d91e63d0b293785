"""Numeric-looking table text: converted only when nothing is lost."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from xparse_convert.numbers import parse_number


@pytest.mark.parametrize("text,value,fmt", [
    ("1,234.50", 1234.5, "#,##0.00"),
    ("-3.2%", -0.032, "0.0%"),
    ("(1,200)", -1200, "#,##0;(#,##0)"),
    ("+18.4%", 0.184, "+0.0%;-0.0%;0.0%"),
    ("22.7%", 0.227, "0.0%"),
    ("0", 0, "0"),
    ("0.54", 0.54, "0.00"),
    ("128600", 128600, "0"),
    (" 42 ", 42, "0"),
])
def test_numbers(text, value, fmt):
    number = parse_number(text)
    assert number is not None
    assert number.value == value and number.format == fmt


@pytest.mark.parametrize("text", [
    "007", "0012.5", "1234567890123456", "123456789012", "1,23", "12.", ".5", "1e5", "-",
    "(+5)", "(5", "5)", "1 000", "¥100", "2024-01-01", "", "abc", "12:30", "1.2.3",
])
def test_text_stays_text(text):
    assert parse_number(text) is None


@given(st.integers(min_value=-(10**14), max_value=10**14), st.integers(0, 4),
       st.booleans())
def test_round_trip_through_the_format(whole, decimals, grouped):
    """The value and format display what the text said."""
    assume(grouped or decimals or abs(whole) < 10**11)  # long bare digit runs are ids
    assume(len(str(abs(whole))) + decimals <= 15)  # Excel keeps 15 significant digits
    sign = "-" if whole < 0 else ""
    digits = f"{abs(whole):,}" if grouped else str(abs(whole))
    text = f"{sign}{digits}" + (f".{'5' * decimals}" if decimals else "")
    number = parse_number(text)
    assert number is not None
    shown = f"{abs(number.value):,.{decimals}f}" if grouped else \
        f"{abs(number.value):.{decimals}f}"
    assert f"{'-' if number.value < 0 else ''}{shown}" == text
