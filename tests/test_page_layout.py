"""Page sizes and table column widths (``writers/page_layout.py``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xparse_convert.model import PageInfo
from xparse_convert.tables import table_from_text
from xparse_convert.writers.page_layout import (
    A4,
    CELL_PAD,
    document_page,
    layout_table,
    longest_token,
    page_size,
)


def test_pages_snap_to_standard_sizes():
    assert page_size(1191, 1684, 144) == A4  # the sample: 8.27 x 11.69 in
    assert page_size(910, 1287, None) == A4  # no dpi: the ISO A aspect is A4
    letter = page_size(1700, 2200, 200)
    assert letter.name == "Letter" and not letter.landscape
    assert page_size(1684, 1191, 144) == A4.turned()
    assert page_size(None, 1000, 144) is None
    assert document_page([]) == A4
    pages = [PageInfo(n, 1700, 2200, raw={"dpi": 200}) for n in range(3)]
    assert document_page([*pages, PageInfo(9, 1191, 1684, raw={"dpi": 144})]).name == "Letter"


def test_unbreakable_pieces():
    assert longest_token("共 3,339,803,183 股") == longest_token("3,339,803,183")
    assert longest_token("议案名称") == 2.0  # CJK may break between any two characters
    assert longest_token("2018-02-23 a") > longest_token("a b c d e")


def test_a_table_too_wide_for_portrait_shrinks_then_turns():
    row = "\t".join(["7,862,984,813"] * 4)
    narrow = layout_table(table_from_text(row), 9026, 13958)
    assert not narrow.landscape and sum(narrow.widths) == 9026
    wide = layout_table(table_from_text("\t".join(["7,862,984,813"] * 12)), 9026, 13958)
    assert wide.landscape and wide.font_size is not None and sum(wide.widths) == 13958


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.from_regex(r"[0-9,.%]{1,14}|[a-z ]{0,30}|[议案名称]{0,12}",
                                       fullmatch=True), min_size=1, max_size=12),
                min_size=1, max_size=5))
def test_widths_fill_the_column_and_never_break_a_token(rows):
    width = max(len(r) for r in rows)
    table = table_from_text("\n".join("\t".join(r + [""] * (width - len(r))) for r in rows))
    layout = layout_table(table, 9026, 13958)
    assert sum(layout.widths) == (13958 if layout.landscape else 9026)
    if layout.font_size is None or layout.font_size >= 16:
        size = layout.font_size or 22
        for cell in table.cells:
            if cell.col_span == 1 and cell.text:
                need = longest_token(cell.text) * size * 5 + CELL_PAD
                assert layout.widths[cell.col] >= need - 1 or layout.font_size == 16
