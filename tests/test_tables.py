"""Table grids: sources, repair rules, header rows, stitching, and grid invariants."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import structure
from hypothesis import given, settings
from hypothesis import strategies as st

from xparse_convert.tables import (
    MAX_EMPTY_SLOTS,
    Cell,
    Covered,
    Table,
    TableTooLarge,
    build_table,
    table_from_html,
    table_from_pipe,
    table_from_structure,
    table_from_text,
)


def assert_grid_sound(table: Table) -> None:
    """Rectangular, every slot covered by exactly one cell, spans inside the grid."""
    seen: dict[tuple[int, int], Cell] = {}
    for cell in table.cells:
        assert cell.row_span >= 1 and cell.col_span >= 1
        assert cell.row + cell.row_span <= table.n_rows
        assert cell.col + cell.col_span <= table.n_cols
        for r in range(cell.row, cell.row + cell.row_span):
            for c in range(cell.col, cell.col + cell.col_span):
                assert (r, c) not in seen, f"slot {(r, c)} covered twice"
                seen[(r, c)] = cell
    assert len(seen) == table.n_rows * table.n_cols
    assert [c for c in table.cells if c.header != (c.row < table.header_rows)] == []
    grid = table.grid()
    assert len(grid) == table.n_rows and all(len(row) == table.n_cols for row in grid)


def test_structure_with_spans():
    table = table_from_structure(structure([
        (1, 1, 2, 1, "a"), (1, 2, 1, 2, "b"), (2, 2, 1, 1, "c"), (2, 3, 1, 1, "d"),
        (3, 1, 1, 3, "e")]))
    assert (table.n_rows, table.n_cols) == (3, 3)
    assert sorted(table.merged_ranges()) == [(0, 0, 2, 1), (0, 1, 1, 2), (2, 0, 1, 3)]
    assert table.text_grid() == [["a", "b", ""], ["", "c", "d"], ["e", "", ""]]
    grid = table.grid()
    assert isinstance(grid[1][0], Covered) and grid[1][0].starts_row_span
    assert not table.repairs
    assert_grid_sound(table)


def test_sparse_cells_are_filled():
    table = table_from_structure(structure([(1, 1, 1, 1, "a"), (2, 3, 1, 1, "z")],
                                           rows=2, cols=3))
    assert table.text_grid() == [["a", "", ""], ["", "", "z"]]
    assert any("4 empty cells" in r for r in table.repairs)


@pytest.mark.parametrize("span", [0, -2, "x", 1.5, True])
def test_bad_spans_become_one(span):
    table = table_from_structure({"cells": [{"row": 1, "col": 1, "row_span": span,
                                             "col_span": 1, "text": "a"}]})
    assert table.cells[0].row_span == 1
    assert_grid_sound(table)


def test_spans_clamped_to_the_declared_grid():
    table = table_from_structure(structure([(1, 1, 5, 9, "a")], rows=2, cols=3))
    assert (table.n_rows, table.n_cols) == (2, 3)
    assert table.merged_ranges() == [(0, 0, 2, 3)]
    assert len(table.repairs) == 2


def test_overlaps_first_come():
    table = table_from_structure(structure([
        (1, 1, 2, 2, "big"), (2, 2, 1, 1, "inside"), (1, 3, 2, 1, "right"),
        (2, 1, 1, 3, "wide")], rows=3, cols=3))
    texts = {(c.row, c.col): c.text for c in table.cells}
    assert texts[(0, 0)] == "big\ninside\nwide"  # covered anchors give their text away
    assert_grid_sound(table)


def test_overlapping_span_shrinks():
    table = table_from_structure(structure([(1, 2, 2, 1, "down"), (1, 1, 1, 3, "wide")],
                                           rows=2, cols=3))
    wide = next(c for c in table.cells if c.text == "wide")
    assert (wide.row_span, wide.col_span) == (1, 1)
    assert_grid_sound(table)


def test_absurd_sizes_are_refused_not_allocated():
    table = table_from_structure(structure([(1, 1, 1, 1, "a"), (1_000_000_000, 1, 1, 1, "b")],
                                           rows=1_000_000_000, cols=2))
    assert (table.n_rows, table.n_cols) == (1, 2)
    assert any("beyond any plausible table" in r for r in table.repairs)
    assert any("declared 1000000000 rows ignored" in r for r in table.repairs)
    with pytest.raises(TableTooLarge):
        table_from_structure(structure([(1, 1, 1, 1, "a"), (100_000, 16_000, 1, 1, "b")]))
    # a spanned cell beyond MAX_COLS inside a declared grid that rule 8 lets stand: dropped
    # by rule 2 whether the other cells would have been placed in one step or one by one
    wide = table_from_structure(structure([(1, 1, 1, 600_000, "A"), (1, 600_001, 1, 1, "B"),
                                           (1, 600_002, 1, 399_999, "D"),
                                           (1, 1_000_001, 1, 2, "C")], rows=1, cols=1_000_002))
    assert "C" not in [c.text for c in wide.cells]
    assert any("beyond any plausible table" in r for r in wide.repairs)


def test_cell_images_from_both_schema_versions():
    table = table_from_structure({"cells": [
        {"row": 1, "col": 1, "text": "", "image_data": {"image_url": "https://x/a.png"}},
        {"row": 1, "col": 2, "text": "", "image_datas": [{"image_url": "https://x/b.png"}]},
    ]})
    assert [c.images[0].url for c in table.cells] == ["https://x/a.png", "https://x/b.png"]


def test_roles_and_layout_decide_header_rows():
    cells = [{"row": r, "col": 1, "text": str(r), "role": "header" if r <= 2 else "body"}
             for r in (1, 2, 3)]
    assert table_from_structure({"cells": cells}).header_rows == 2
    assert table_from_structure({"cells": cells, "table_layout": {"header_rows": 1}}
                                ).header_rows == 1


@pytest.mark.parametrize("row_base, col_base", [(0, 0), (0, 1), (1, 0)])
def test_cells_numbered_from_zero_keep_their_texts(row_base, col_base):
    """Rule 9: a structure whose cells start at row or column 0 (1.x results exist with both)
    is read as 0-based there: every text in its place, no cell dropped."""
    raw = [(r, c, f"r{r}c{c}") for r in range(3) for c in range(2)]
    cells = [{"row": r + row_base, "col": c + col_base, "text": text,
              "role": "header" if r == 0 else "data"} for r, c, text in raw]
    table = table_from_structure({"cells": cells})
    assert (table.n_rows, table.n_cols) == (3, 2)
    assert table.text_grid() == [[f"r{r}c{c}" for c in range(2)] for r in range(3)]
    assert table.header_rows == 1  # the roles follow the cells
    axes = ["rows"] * (row_base == 0) + ["columns"] * (col_base == 0)
    assert table.repairs == [f"{axis} are numbered from 0: read as 0-based" for axis in axes]
    assert_grid_sound(table)


def test_real_engine_html():
    html = ('<table border="1" ><tr>\n<td colspan="1" rowspan="2">项目</td>\n'
            '<td colspan="2" rowspan="1">2023</td>\n</tr><tr>\n<td>H1<br>上半年</td>\n'
            '<td><img src="https://x/y.png"/>img</td>\n</tr><tr>\n<td>a &amp; b</td>\n'
            '<td>1</td><td>2</td></tr></table>')
    table = table_from_html(html)
    assert (table.n_rows, table.n_cols) == (3, 3)
    assert table.merged_ranges() == [(0, 0, 2, 1), (0, 1, 1, 2)]
    assert table.text_grid() == [["项目", "2023", ""], ["", "H1\n上半年", "img"],
                                 ["a & b", "1", "2"]]
    assert table.cells[3].images[0].url == "https://x/y.png"
    assert table.header_rows == 2  # default: first row, grown to its tallest span
    assert_grid_sound(table)


def test_html_th_and_thead_mark_headers():
    table = table_from_html("<table><thead><tr><th>a</th></tr><tr><th>b</th></tr></thead>"
                            "<tbody><tr><td>1</td></tr></tbody></table>")
    assert table.header_rows == 2
    table = table_from_html("<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td>"
                            "</tr></table>")
    assert table.header_rows == 1


def test_html_ragged_rows_and_rowspan_past_the_end():
    table = table_from_html('<table><tr><td rowspan="9">a</td><td>b</td></tr>'
                            "<tr><td>c</td><td>d</td><td>e</td></tr></table>")
    assert (table.n_rows, table.n_cols) == (2, 4)
    assert table.cells[0].row_span == 2
    assert_grid_sound(table)


def test_pipe_and_plain_text():
    table = table_from_pipe("| a | b \\| c |\n|---|:--:|\n| 1 | 2 |\n| 3 |")
    assert table.text_grid() == [["a", "b | c"], ["1", "2"], ["3", ""]]
    assert table.header_rows == 1
    assert table_from_pipe("just text") is None
    table = table_from_text("项目 公式项 参考范围\n空腹血糖 x^2+1 3.9-6.1")
    assert table.text_grid() == [["项目 公式项 参考范围"], ["空腹血糖 x^2+1 3.9-6.1"]]
    assert table_from_text("a\tb\nc\td").n_cols == 2


def test_build_table_prefers_structure_then_html_then_pipe():
    html = "<table><tr><td>h</td></tr></table>"
    assert build_table({"table_structure": structure([(1, 1, 1, 1, "s")])}, html).source == \
        "structure"
    assert build_table({"table_structure": {"cells": "broken"}}, html).source == "html"
    assert build_table({}, "| a |\n|---|\n| 1 |").source == "pipe"
    assert build_table({}, "plain").source == "text"


def _fragment(rows: list[list[str]], page: int, id_: str) -> Table:
    table = table_from_structure(structure(
        [(r + 1, c + 1, 1, 1, t) for r, row in enumerate(rows) for c, t in enumerate(row)]))
    table.set_provenance(page, id_)
    return table


def test_stitching_drops_an_exact_repeated_header_only():
    head = _fragment([["h1", "h2"], ["a", "b"]], 1, "t1")
    head.extend(_fragment([["h1", "h2"], ["c", "d"]], 2, "t2"))
    head.extend(_fragment([["h1", "h2 "], ["e", "f"]], 3, "t3"))  # whitespace: same header
    head.extend(_fragment([["H1", "h2"], ["g", "h"]], 4, "t4"))  # differs: kept
    assert head.text_grid() == [["h1", "h2"], ["a", "b"], ["c", "d"], ["e", "f"],
                                ["H1", "h2"], ["g", "h"]]
    assert head.row_pages == [1, 1, 2, 3, 4, 4]
    assert head.row_element_ids == ["t1", "t1", "t2", "t3", "t4", "t4"]
    assert head.element_ids == ["t1", "t2", "t3", "t4"]
    assert head.pages == [1, 2, 3, 4]
    assert_grid_sound(head)


def test_stitching_pads_to_the_widest_fragment():
    head = _fragment([["h1", "h2"], ["a", "b"]], 1, "t1")
    head.extend(_fragment([["c", "d", "extra"]], 2, "t2"))
    head.extend(_fragment([["e"]], 3, "t3"))
    assert head.n_cols == 3
    assert head.text_grid() == [["h1", "h2", ""], ["a", "b", ""], ["c", "d", "extra"],
                                ["e", "", ""]]
    assert_grid_sound(head)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(-1, 4),
                          st.integers(-1, 4)), min_size=1, max_size=25),
       st.one_of(st.none(), st.integers(1, 8)), st.one_of(st.none(), st.integers(1, 8)))
def test_any_structure_gives_a_sound_grid(cells, rows, cols):
    texts = [f"t{i}" for i in range(len(cells))]
    ts = structure([(r, c, rs, cs, t) for (r, c, rs, cs), t in zip(cells, texts)], rows, cols)
    table = table_from_structure(ts)
    assert_grid_sound(table)
    # every source cell's text lands in exactly one output cell
    joined = [c.text.split("\n") for c in table.cells if c.text]
    found = [t for parts in joined for t in parts]
    assert sorted(found) == sorted(texts)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.integers(0, 3),
                                                                 st.just(999_999_999))),
                         min_size=1, max_size=5), min_size=1, max_size=6))
def test_any_html_gives_a_sound_grid(rows):
    html = "<table>" + "".join(
        "<tr>" + "".join(f'<td rowspan="{rs}" colspan="{cs}">x</td>' for rs, cs in row) + "</tr>"
        for row in rows) + "</table>"
    table = table_from_html(html)
    assert_grid_sound(table)
    assert sum(1 for c in table.cells if c.text == "x") == sum(len(r) for r in rows)
    assert table.n_cols <= 6 * 5 + 100 + 4  # rule 8: a billion-column span costs nothing


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4), st.booleans()), min_size=1,
                max_size=8), st.integers(0, 2))
def test_stitching_keeps_every_row_in_order(fragments, header_rows):
    """A chain of fragments of any widths, some repeating the head's header: the stitched grid
    is sound, its cells stay in reading order, and it holds each fragment's rows in turn
    (a repeated header once), padded to the widest."""
    head_rows = [[f"h{r}.{c}" for c in range(3)] for r in range(header_rows)] + [["a", "b", "c"]]
    head = _fragment(head_rows, 1, "t0")
    head.header_rows = header_rows
    expected = [list(row) for row in head_rows]
    for i, (n_rows, n_cols, repeat) in enumerate(fragments, start=1):
        rows = [[f"f{i}.{r}.{c}" for c in range(n_cols)] for r in range(n_rows)]
        repeated = repeat and header_rows and n_cols == head.n_cols
        if repeated:
            rows = [list(row) for row in head_rows[:header_rows]] + rows
        head.extend(_fragment(rows, i + 1, f"t{i}"))
        expected += rows[header_rows:] if repeated else rows
    width = max(len(row) for row in expected)
    assert head.text_grid() == [row + [""] * (width - len(row)) for row in expected]
    assert [(c.row, c.col) for c in head.cells] == sorted((c.row, c.col) for c in head.cells)
    assert head.element_ids == [f"t{i}" for i in range(len(fragments) + 1)]
    assert len(head.row_pages) == head.n_rows
    assert_grid_sound(head)


def _tiny(table: dict) -> bytes:
    """A whole result around one Table element, as small as JSON allows."""
    el = {"element_id": "t", "type": "Table", "page_number": 1, "text": "", **table}
    return json.dumps({"code": 200, "data": {"elements": [el]}}, separators=(",", ":")).encode()


def convert_within(path, seconds: float, formats: str = "docx,xlsx,html,md"
                   ) -> subprocess.CompletedProcess:
    """The command line on ``path``; fails the test when it runs past ``seconds``."""
    try:
        return subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(path), "--to",
                               formats, "-o", str(path.parent / "out")],
                              capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name}: the conversion ran past {seconds} s")


@pytest.mark.parametrize("table, note, width", [
    # 999,999 declared columns for one cell: DOCX was busy past 100 s
    ({"table_structure": {"rows": 1, "cols": 999999, "cells": [{"row": 1, "col": 1,
                                                                "text": "a"}]}},
     "declared 999999 columns ignored (the cells use 1)", 1),
    # one colspan of a billion: DOCX and XLSX hung (XLSX walked the span for every slot)
    ({"text": '<table><tr><td colspan="999999999">a</td></tr><tr><td>b</td></tr></table>'},
     "colspan 999999999 at row 1, column 1 clamped to 101", 101),
    # two cells a million columns apart: a grid of empty slots
    ({"table_structure": {"cells": [{"row": 1, "col": 1, "text": "a"},
                                    {"row": 1, "col": 999999, "text": "b"}]}},
     "cells where only 2 exist; kept as text", 1),
], ids=["declared-columns", "colspan", "sparse"])
def test_a_tiny_table_cannot_claim_a_huge_grid(tmp_path, table, note, width):
    from openpyxl import load_workbook

    path = tmp_path / "x.json"
    path.write_bytes(_tiny(table))
    assert len(path.read_bytes()) < 250
    proc = convert_within(path, 15)
    assert proc.returncode == 0, proc.stderr
    assert note in proc.stderr
    out = tmp_path / "out"
    assert {p.suffix for p in out.iterdir()} >= {".docx", ".xlsx", ".html", ".md"}
    sheet = load_workbook(out / "x.xlsx").worksheets[1]  # the table's own sheet
    assert sheet.max_column == width


def test_rule_8_keeps_real_spans_and_declared_room():
    # a real form (legacy test-2333): rows of few cells whose colspans add up to 11 columns
    form = table_from_html('<table><tr><td colspan="11">Section 1</td></tr><tr>'
                           '<td colspan="2">a</td><td colspan="4">b</td><td>c</td>'
                           '<td colspan="4">d</td></tr></table>')
    assert (form.n_rows, form.n_cols) == (2, 11) and not form.repairs
    # the allowance: 2x or 100 beyond the cells, whichever is more
    wide = table_from_html('<table><tr><td colspan="500">a</td></tr><tr><td>b</td><td>c</td>'
                           "</tr></table>")
    assert wide.n_cols == 102 and wide.cells[0].col_span == 102
    assert table_from_structure(structure([(1, 1, 1, 1, "a")], rows=3, cols=101)).n_cols == 101
    table = table_from_structure(structure([(1, 1, 1, 1, "a")], rows=102, cols=3))
    assert table.n_rows == 1 and "declared 102 rows ignored (the cells use 1)" in table.repairs
    assert_grid_sound(wide)
    # a grid mostly made of slots no cell covers is refused, not filled
    with pytest.raises(TableTooLarge):
        table_from_structure(structure([(1, 1, 1, 1, "a"), (2, MAX_EMPTY_SLOTS, 1, 1, "b")]))


def test_a_long_table_chain_joins_in_linear_time(tmp_path):
    """32,000 one-row fragments (took 39 s): each join costs its own fragment, whether it
    repeats the header (dropped), is narrower (padded) or wider (the table widens: last)."""
    n = 32_000
    head = [["Region", "Product", "Revenue"], ["East", "Sensors", "1"]]

    def cells(rows):
        return [{"row": r + 1, "col": c + 1, "text": t}
                for r, row in enumerate(rows) for c, t in enumerate(row)]

    elements = [{"element_id": "t0", "type": "Table", "page_number": 1, "text": "",
                 "table_structure": {"cells": cells(head)}}]
    for i in range(1, n):
        row = [f"r{i}", "x", str(i)]
        rows = [head[0], row] if i % 2 else [row[:2]] if i % 3 == 0 else [row]
        if i == n - 1:
            rows = [row + ["wide"]]
        elements.append({"element_id": f"t{i}", "type": "Table", "page_number": i + 1,
                         "text": "", "metadata": {"is_continuation": True,
                                                  "continuation_of": f"t{i - 1}"},
                         "table_structure": {"cells": cells(rows)}})
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"code": 200, "data": {"elements": elements}}))
    proc = convert_within(path, 30, "md")
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "out" / "chain.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == 1 + n  # the header once, then one data row per fragment
    assert rows[0].split(" | ")[:3] == ["| Region", "Product", "Revenue"]
    assert rows[-1] == f"| r{n - 1} | x | {n - 1} | wide |"
    assert rows[7] == "| r6 | x |  |  |"  # a narrower fragment, padded


def test_a_dropped_cell_sizes_no_grid():
    from xparse_convert.tables import table_from_structure

    for cells in ([{"row": 4, "col": 0, "text": "a"}], [{"row": -2, "col": 1, "text": "a"}]):
        table = table_from_structure({"cells": cells})
        assert table is not None and table.n_rows >= 1 and table.n_cols >= 1
        assert all(0 <= c.row < table.n_rows and 0 <= c.col < table.n_cols
                   for c in table.cells)
