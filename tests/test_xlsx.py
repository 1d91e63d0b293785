"""XLSX: read back with openpyxl as an analyst's tools would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile

import openpyxl
import oracle
import pytest
from conftest import LEGACY_RESULTS, SAMPLE, element, envelope, structure
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.utils.cell import range_boundaries

from xparse_convert import convert, iter_tables
from xparse_convert.writers import xlsx as xlsx_module


def build(src, tmp_path, **options):
    report = convert(src, "xlsx", tmp_path, options)
    return report, openpyxl.load_workbook(report.outputs["xlsx"])


def merges(ws):
    """(row, col, row_span, col_span), 0-based, of every merged range."""
    out = []
    for rng in ws.merged_cells.ranges:
        min_col, min_row, max_col, max_row = range_boundaries(str(rng))
        out.append((min_row - 1, min_col - 1, max_row - min_row + 1, max_col - min_col + 1))
    return sorted(out)


@pytest.fixture(scope="module")
def sample_book(tmp_path_factory):
    return build(SAMPLE, tmp_path_factory.mktemp("xlsx"))[1]


def test_one_sheet_per_logical_table_plus_the_index(sample_book):
    tables = list(iter_tables(SAMPLE))
    assert sample_book.sheetnames[0] == "Tables"
    assert len(sample_book.sheetnames) == len(tables) + 1
    for ws, table in zip(sample_book.worksheets[1:], tables):
        assert merges(ws) == sorted(table.merged_ranges())
        assert ws.max_row == table.n_rows
        assert ws.freeze_panes == f"A{table.header_rows + 1}"


def test_values_and_number_formats(sample_book):
    ws = sample_book.worksheets[1]
    assert ws["A1"].value == "项目 Item" and ws["A1"].font.b
    assert ws["A1"].alignment.vertical == "center"  # merged: centred vertically
    assert ws["C3"].value == 128600 and ws["C3"].number_format == "#,##0"
    assert ws["D3"].value == pytest.approx(0.184)
    assert ws["D3"].number_format == "+0.0%;-0.0%;0.0%"
    assert ws["B3"].value is None  # covered by the merge A3:B3


def test_stitched_table_says_where_rows_came_from(sample_book):
    ws = sample_book.worksheets[2]
    table = list(iter_tables(SAMPLE))[1]
    assert ws.cell(1, table.n_cols + 1).value == "Source page"
    pages = [ws.cell(r, table.n_cols + 1).value for r in range(2, ws.max_row + 1)]
    assert pages == table.row_pages[1:]
    assert ws.cell(table.n_rows, 1).value == "合计 Total"


def test_index_sheet(sample_book):
    ws = sample_book["Tables"]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [1, 2]
    assert rows[1][3:8] == (2, 4, 38, 4, 1)
    assert rows[1][8] == "el_025, el_029, el_033"
    for r, name in zip(range(2, 4), sample_book.sheetnames[1:]):
        cell = ws.cell(r, 2)
        assert cell.value == name
        target = cell.hyperlink.location
        sheet = target.rsplit("!", 1)[0].strip("'").replace("''", "'")
        assert sheet in sample_book.sheetnames


def test_formula_looking_text_is_text(tmp_path, write_json):
    cells = ["=SUM(A1:A9)", "+1+2", "-cmd", "@foo", "=HYPERLINK(\"http://x\")"]
    doc = envelope([element("t", "Table", "", table_structure=structure(
        [(1, i + 1, 1, 1, f"h{i}") for i in range(5)] +
        [(2, i + 1, 1, 1, text) for i, text in enumerate(cells)]))])
    report, book = build(write_json(doc), tmp_path)
    ws = book.worksheets[1]
    assert [ws.cell(2, i + 1).value for i in range(5)] == cells
    assert all(ws.cell(2, i + 1).data_type == "s" for i in range(5))
    with zipfile.ZipFile(report.outputs["xlsx"]) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/")]
        assert not any(b"<f>" in zf.read(n) for n in sheets)


def test_text_option_and_lossy_numbers(tmp_path, write_json):
    doc = envelope([element("t", "Table", "", table_structure=structure(
        [(1, 1, 1, 1, "h"), (1, 2, 1, 1, "h2"), (2, 1, 1, 1, "007"),
         (2, 2, 1, 1, "12,345.60")]))])
    _, book = build(write_json(doc), tmp_path / "a")
    ws = book.worksheets[1]
    assert ws["A2"].value == "007" and ws["B2"].value == 12345.6
    _, book = build(write_json(doc), tmp_path / "b", xlsx_text=True)
    assert book.worksheets[1]["B2"].value == "12,345.60"


def test_sheet_names_follow_excel_rules(tmp_path, write_json):
    captions = ["Sales [2024]: Q1/Q2*?", "sales [2024]: q1/q2*?", "History", "'quoted'",
                "x" * 50, ""]
    els = []
    for i, caption in enumerate(captions):
        if caption:
            els.append(element(f"c{i}", "TableCaption", caption,
                               metadata={"ref_element_id": f"t{i}"}))
        els.append(element(f"t{i}", "Table", "<table><tr><td>a</td></tr></table>", page=i + 1))
    _, book = build(write_json(envelope(els)), tmp_path)
    names = book.sheetnames[1:]
    assert len(names) == len(captions)
    assert len({n.lower() for n in names}) == len(names)
    for name in names:
        assert len(name) <= 31 and not set(name) & set("[]:*?/\\")
        assert not name.startswith("'") and not name.endswith("'")
        assert name.lower() != "history"
    assert names[:2] == ["Sales 2024 Q1 Q2", "sales 2024 q1 q2 p2"]  # a hint when taken
    assert names[2] == "History p3" and names[4] == "x" * 31
    assert names[-1] == "Table 6"


def test_giant_cells_and_control_characters(tmp_path, write_json):
    doc = envelope([element("t", "Table", "", table_structure=structure(
        [(1, 1, 1, 1, "head"), (2, 1, 1, 1, "x" * 40_000), (3, 1, 1, 1, "a\x01b")]))])
    report, book = build(write_json(json.dumps(doc).encode()), tmp_path)
    ws = book.worksheets[1]
    assert len(ws["A2"].value) == 32_767 and ws["A2"].value.endswith("[truncated]")
    assert ws["A3"].value == "ab"
    assert any("truncated" in w for w in report.warnings)


def test_a_table_longer_than_a_sheet_is_split(tmp_path, write_json, monkeypatch):
    monkeypatch.setattr(xlsx_module, "MAX_SHEET_ROWS", 10)
    rows = [(1, 1, 1, 1, "head")] + [(r, 1, 1, 1, f"r{r}") for r in range(2, 25)]
    rows.append((5, 2, 9, 1, "tall"))  # a merge across the split
    doc = envelope([element("t", "Table", "", table_structure=structure(rows, cols=2))])
    report, book = build(write_json(doc), tmp_path)
    assert len(book.sheetnames) == 4  # index + 3 parts
    parts = book.worksheets[1:]
    assert all(ws["A1"].value == "head" for ws in parts)  # header repeated
    body = [ws.cell(r, 1).value for ws in parts for r in range(2, ws.max_row + 1)]
    assert body == [f"r{r}" for r in range(2, 25)]
    assert parts[0]["B5"].value == "tall" and parts[1]["B2"].value == "tall"
    assert merges(parts[0]) == [(4, 1, 6, 1)] and merges(parts[1]) == [(1, 1, 3, 1)]
    assert any("split onto 3 sheets" in w for w in report.warnings)


def test_a_table_wider_than_a_sheet_is_split(tmp_path, write_json, monkeypatch):
    monkeypatch.setattr(xlsx_module, "MAX_SHEET_COLS", 3)
    cells = [(1, c, 1, 1, f"h{c}") for c in range(1, 8)] + \
        [(2, c, 1, 1, f"v{c}") for c in range(1, 8) if c not in (3, 4)] + [(2, 3, 1, 2, "wide")]
    doc = envelope([element("t", "Table", "", table_structure=structure(cells))])
    report, book = build(write_json(doc), tmp_path)
    parts = book.worksheets[1:]
    assert len(parts) == 3
    assert [[ws.cell(1, c).value for c in range(1, ws.max_column + 1)] for ws in parts] == [
        ["h1", "h2", "h3"], ["h4", "h5", "h6"], ["h7"]]
    assert parts[0]["C2"].value == "wide" and parts[1]["A2"].value == "wide"
    assert merges(parts[0]) == [] and merges(parts[1]) == []  # each side of the cut is 1 cell
    assert any("split onto 3 sheets" in w for w in report.warnings)


def test_single_sheet_mode(tmp_path):
    _, book = build(SAMPLE, tmp_path, xlsx_single_sheet=True)
    assert book.sheetnames == ["Tables", "All tables"]
    ws = book["All tables"]
    tables = list(iter_tables(SAMPLE))
    assert ws["A1"].value.startswith("Table 1: 表1")
    second = 1 + tables[0].n_rows + 2
    assert ws.cell(second, 1).value.startswith("Table 2: 表2")
    expected = [(r + 1, c, rs, cs) for r, c, rs, cs in tables[0].merged_ranges()]
    expected += [(r + second, c, rs, cs) for r, c, rs, cs in tables[1].merged_ranges()]
    assert merges(ws) == sorted(expected)
    link = book["Tables"]["B3"].hyperlink.location
    assert link == f"'All tables'!A{second}"


def test_three_thousand_tables(tmp_path, write_json):
    els = [element(f"t{i}", "Table", f"<table><tr><td>h</td></tr><tr><td>{i}</td></tr></table>",
                   page=i // 3 + 1) for i in range(3000)]
    report, book = build(write_json(envelope(els)), tmp_path)
    assert len(book.sheetnames) == 3001
    assert book.worksheets[3000]["A2"].value == 2999


def test_column_letters_match_excel():
    from openpyxl.utils.cell import get_column_letter

    for index in (0, 1, 25, 26, 27, 51, 52, 701, 702, 703, 16_383):
        assert xlsx_module.col(index) == get_column_letter(index + 1)


def test_byte_identical(tmp_path):
    a = convert(SAMPLE, "xlsx", tmp_path / "a").outputs["xlsx"]
    b = convert(SAMPLE, "xlsx", tmp_path / "b").outputs["xlsx"]
    assert open(a, "rb").read() == open(b, "rb").read()


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_real_legacy_results(tmp_path, path):
    """Checked against the independent reading (``oracle``), not the package's own model:
    every table a sheet, its merged cells, and every cell's text (kept as text here, so a
    lost or changed cell cannot pass as a number)."""
    _, book = build(path, tmp_path, xlsx_text=True)
    expected = oracle.expected(path).tables
    assert len(book.sheetnames) == len(expected) + 1
    for ws, want in zip(book.worksheets[1:], expected):
        assert len(ws.merged_cells.ranges) == want.merged
        shown = {" ".join(str(cell.value).split()) for row in ws.iter_rows() for cell in row
                 if cell.value not in (None, "")}
        assert shown == want.texts


LIBREOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(not LIBREOFFICE and not os.environ.get("CI"), reason="no LibreOffice")
def test_libreoffice_reads_it(tmp_path):
    assert LIBREOFFICE, "CI must have LibreOffice (installed by .ci/run)"
    path = convert(SAMPLE, "xlsx", tmp_path).outputs["xlsx"]
    proc = subprocess.run([LIBREOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                           "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,"
                           "true,true,false,false,-1", "--outdir", str(tmp_path / "csv"), path],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    csvs = sorted((tmp_path / "csv").glob("*.csv"))
    assert len(csvs) == 3  # every sheet read
    chain = next(p for p in csvs if "Rev" in p.name).read_text(encoding="utf-8")
    # numbers display exactly as the source wrote them ("as shown" export)
    assert '合计 Total,,"128,600",+18.4%,4' in chain


def test_excel_limits_count_utf16_units(tmp_path, write_json):
    # Excel counts UTF-16 units: an emoji is two.  Today a name of 31 emoji (62 units) and a
    # cell of 17,000 emoji (34,000 units) are written as they are, past Excel's limits.
    import sys

    emoji = "\U0001F600"
    captions = [emoji * 40, "a" + emoji * 40]  # the second one's cut falls inside a pair
    els = []
    for i, caption in enumerate(captions):
        els.append(element(f"c{i}", "TableCaption", caption, metadata={"ref_element_id": f"t{i}"}))
        els.append(element(f"t{i}", "Table", "", page=i + 1, table_structure=structure(
            [(1, 1, 1, 1, "head"), (2, 1, 1, 1, "x" + emoji * 17_000),
             (3, 1, 1, 1, emoji * 16_383)])))
    src = write_json(envelope(els))
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(src), "--to", "xlsx",
                           "-o", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    book = openpyxl.load_workbook(tmp_path / "o" / "input.xlsx")

    def units(text):
        return len(text.encode("utf-16-le")) // 2

    # as long as fits: 31 units, whole characters only
    assert book.sheetnames[1:] == [emoji * 15, "a" + emoji * 15]
    marker = "… [truncated]"
    for ws in book.worksheets[1:]:
        cut = ws["A2"].value
        # 32,766 units: one more emoji would pass 32,767
        assert cut == "x" + emoji * 16_376 + marker and units(cut) == 32_766
        assert ws["A3"].value == emoji * 16_383  # 32,766 units: fits, kept whole
    index = book["Tables"]
    assert index["C2"].value == captions[0] and index["B2"].value == book.sheetnames[1]
    assert "2 cell(s) longer than Excel's 32767 characters were truncated" in proc.stderr


def test_utf16_cut_never_splits_a_pair():
    cut = xlsx_module.utf16_cut
    assert cut("ab\U0001F600c", 3) == "ab" and cut("ab\U0001F600c", 4) == "ab\U0001F600"
    assert cut("abc", 0) == "" and cut("abc", 10) == "abc"
    assert xlsx_module.utf16_len("a\U0001F600\u4e2d") == 4


def test_column_widths_show_numbers_whole_and_cap_long_text(tmp_path, write_json):
    long_text = "本公司董事会及全体董事保证本公告内容不存在任何虚假记载、误导性陈述或者重大遗漏。"
    cells = [(1, 1, 1, 1, "说明"), (1, 2, 1, 1, "代表股份数"), (1, 3, 1, 1, "比例"),
             (2, 1, 1, 1, long_text), (2, 2, 1, 1, "3,339,803,183"), (2, 3, 1, 1, "5%")]
    _, book = build(write_json(envelope([element("t", "Table", "", 1,
                                                 table_structure=structure(cells))])), tmp_path)
    ws = book.worksheets[1]
    widths = {col: ws.column_dimensions[col].width for col in "ABC"}
    # Excel's width unit is one '0' of the default font; a CJK character takes two
    assert widths["B"] >= len("3,339,803,183") + 1  # no ##### where the number is shown
    assert widths["C"] >= 2 * len("比例")  # the header, not only the short value, fits
    assert 2 * len("说明") < widths["A"] <= 64  # long text wraps in a capped column
    assert ws["A2"].alignment.wrap_text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab&<>\"'\n\r\t é中"), max_size=12))
def test_package_escaping_is_the_standard_librarys(text):
    """The OOXML parts escape text and attribute values exactly as ``xml.sax.saxutils`` does
    (the package writes its own copy so that no command imports urllib through it)."""
    from xml.sax import saxutils

    from xparse_convert.writers.ooxml import escape, quoteattr

    assert escape(text) == saxutils.escape(text)
    assert quoteattr(text) == saxutils.quoteattr(text)
