"""DOCX: read back with python-docx and lxml as a user (and Word) would."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import zipfile

import docx
import oracle
import pytest
from conftest import LEGACY_RESULTS, SAMPLE, element, envelope, structure
from docx.enum.section import WD_ORIENT
from lxml import etree
from PIL import Image

from xparse_convert import convert, iter_tables
from xparse_convert.writers.docx_package import W_NS

W = f"{{{W_NS}}}"
M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"


def build(src, tmp_path, **options):
    report = convert(src, "docx", tmp_path, options)
    return tmp_path / os.path.basename(report.outputs["docx"])


def document_xml(path):
    with zipfile.ZipFile(path) as zf:
        return etree.fromstring(zf.read("word/document.xml")), zf


def merged_ranges(tbl):
    """(row, col, row_span, col_span) of every merged cell, read from gridSpan/vMerge."""
    anchors = {}
    open_by_col = {}
    for r, tr in enumerate(tbl.iter(f"{W}tr")):
        col = 0
        for tc in tr.iter(f"{W}tc"):
            pr = tc.find(f"{W}tcPr")
            span = pr.find(f"{W}gridSpan") if pr is not None else None
            width = int(span.get(f"{W}val")) if span is not None else 1
            vmerge = pr.find(f"{W}vMerge") if pr is not None else None
            if vmerge is not None and vmerge.get(f"{W}val") != "restart":
                anchor = open_by_col[col]
                anchors[anchor][2] += 1
            else:
                anchors[(r, col)] = [r, col, 1, width]
                open_by_col[col] = (r, col)
            col += width
    return sorted(tuple(v) for v in anchors.values() if v[2] > 1 or v[3] > 1)


def cell_texts(tbl):
    """Each cell's text as Word shows it (runs and equations, paragraphs joined by a space),
    a merged cell once."""
    texts = []
    for tc in tbl.iter(f"{W}tc"):
        vmerge = tc.find(f"{W}tcPr/{W}vMerge")
        if vmerge is not None and vmerge.get(f"{W}val") != "restart":
            continue
        lines = ("".join(t.text or "" for t in p.iter(f"{W}t", f"{M}t")) for p in tc.iter(f"{W}p"))
        texts.append(" ".join(" ".join(lines).split()))
    return texts


def check_tables_against_the_source(path, out):
    """Tables, merged cells and cell texts as the independent reading (``oracle``) of the
    raw JSON has them, not as the package's own model does."""
    root, _ = document_xml(out)
    expected = oracle.expected(path).tables
    tables = list(root.iter(f"{W}tbl"))
    assert len(tables) == len(expected)
    for tbl, want in zip(tables, expected):
        assert len(merged_ranges(tbl)) == want.merged
        assert {oracle.loose(t) for t in cell_texts(tbl)} - {""} == want.loose_texts


def check_word_rules(path):
    """The known causes of Word's repair prompt."""
    root, _ = document_xml(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        rels = etree.fromstring(zf.read("word/_rels/document.xml.rels"))
        types = zf.read("[Content_Types].xml").decode()
    rel_ids = {rel.get("Id"): rel for rel in rels}
    for tc in root.iter(f"{W}tc"):
        assert tc.find(f"{W}p") is not None, "a w:tc without a w:p"
    for tbl in root.iter(f"{W}tbl"):
        grid = len(tbl.find(f"{W}tblGrid"))
        for tr in tbl.iter(f"{W}tr"):
            total = 0
            for tc in tr.iter(f"{W}tc"):
                span = tc.find(f"{W}tcPr/{W}gridSpan")
                total += int(span.get(f"{W}val")) if span is not None else 1
            assert total == grid, "a row whose spans do not add up to the grid"
    ids = [d.get("id") for d in root.iter(f"{WP}docPr")]
    assert len(ids) == len(set(ids)), "duplicate docPr ids"
    for blip in root.iter("{http://schemas.openxmlformats.org/drawingml/2006/main}blip"):
        rel = rel_ids[blip.get(f"{R}embed")]
        assert "word/" + rel.get("Target") in names
        ext = rel.get("Target").rsplit(".", 1)[1]
        assert f'Extension="{ext}"' in types
    for link in root.iter(f"{W}hyperlink"):
        if link.get(f"{R}id"):
            assert rel_ids[link.get(f"{R}id")].get("TargetMode") == "External"
    for name in names:
        if name.endswith(".xml") or name.endswith(".rels"):
            with zipfile.ZipFile(path) as zf:
                etree.fromstring(zf.read(name))  # every part is well-formed


@pytest.fixture(scope="module")
def sample_docx(tmp_path_factory):
    return build(SAMPLE, tmp_path_factory.mktemp("docx"))


def test_headings(sample_docx, sample_data):
    document = docx.Document(sample_docx)
    headings = [(p.style.name, p.text) for p in document.paragraphs
                if p.style.name.startswith("Heading")]
    titles = [e for e in sample_data["data"]["elements"] if e["type"] == "Title"]
    assert headings == [(f"Heading {t['metadata']['category_depth'] + 1}",
                         " ".join(t["text"].split())) for t in titles]


def test_paragraph_texts_in_order(sample_docx, sample_data):
    document = docx.Document(sample_docx)
    texts = [p.text for p in document.paragraphs]
    # an inline formula is Word math (m:oMath), not part of the paragraph's run text
    expected = [re.sub(r"\$[^$]+\$", "", e["text"]).strip()
                for e in sample_data["data"]["elements"]
                if e["type"] in ("NarrativeText", "UncategorizedText")]
    positions = [texts.index(t) for t in expected]
    assert positions == sorted(positions)
    furniture = [e["text"] for e in sample_data["data"]["elements"]
                 if e["type"] in ("Header", "Footer")]
    assert not set(furniture) & set(texts)


def test_lists_are_word_lists(sample_docx):
    root, _ = document_xml(sample_docx)
    items = [p for p in root.iter(f"{W}p") if p.find(f"{W}pPr/{W}numPr") is not None]
    assert len(items) == 7
    levels = [int(p.find(f"{W}pPr/{W}numPr/{W}ilvl").get(f"{W}val")) for p in items]
    assert levels == [0, 0, 0, 0, 0, 1, 0]
    nums = [p.find(f"{W}pPr/{W}numPr/{W}numId").get(f"{W}val") for p in items]
    assert nums[:3] == ["90"] * 3  # bullets
    assert nums[3] == nums[4] == nums[6] != "90"  # one numbered run, restarting at 1
    assert nums[5] == "90"  # the nested bullet


def test_tables_and_merges_match_the_model(sample_docx):
    document = docx.Document(sample_docx)
    logical = list(iter_tables(SAMPLE))
    assert len(document.tables) == len(logical) == 2
    root, _ = document_xml(sample_docx)
    for tbl, table in zip(root.iter(f"{W}tbl"), logical):
        assert merged_ranges(tbl) == sorted(table.merged_ranges())
        assert len(list(tbl.iter(f"{W}tr"))) == table.n_rows
        headers = [tr for tr in tbl.iter(f"{W}tr") if tr.find(f"{W}trPr/{W}tblHeader") is not None]
        assert len(headers) == table.header_rows
    check_tables_against_the_source(SAMPLE, sample_docx)
    chain = document.tables[1]
    assert chain.cell(37, 0).text == "合计 Total"
    assert chain.cell(37, 0)._tc is chain.cell(37, 1)._tc  # python-docx sees the merge


def test_picture_and_captions(sample_docx):
    document = docx.Document(sample_docx)
    assert len(document.inline_shapes) == 1
    shape = document.inline_shapes[0]
    assert shape.width / shape.height == pytest.approx(320 / 240, rel=0.01)
    paragraphs = document.paragraphs
    captions = [p.text for p in paragraphs if p.style.name == "Caption"]
    assert [c[:3] for c in captions] == ["表1 ", "图1 ", "表2 "]
    body = list(document.element.body)
    cap1 = next(i for i, el in enumerate(body) if "表1 主要会计数据" in "".join(el.itertext()))
    assert body[cap1 + 1].tag == f"{W}tbl"  # the caption sits right above its table
    figure = next(i for i, el in enumerate(body) if el.findall(f".//{WP}inline"))
    assert "图1" in "".join(body[figure + 1].itertext())  # and below its picture


def test_formula_and_code_styles(sample_docx):
    document = docx.Document(sample_docx)
    formulas = [p for p in document.paragraphs if p.style.name == "Formula"]
    assert len(formulas) == 2 and all(p.text == "" for p in formulas)  # math, not LaTeX text
    code = [p.text for p in document.paragraphs if p.style.name == "Source Code"]
    assert len(code) == 6 and code[4].startswith("    if") and code[5].startswith(" " * 8)


def test_package_rules_and_properties(sample_docx):
    check_word_rules(sample_docx)
    document = docx.Document(sample_docx)
    assert document.core_properties.title == "galaxy-q3-report"
    assert "1.3.0" in document.core_properties.comments
    section = document.sections[0]
    assert round(section.page_width.cm, 1) == 21.0


def test_byte_identical(tmp_path):
    a = build(SAMPLE, tmp_path / "a")
    b = build(SAMPLE, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_toc_is_filled_from_the_titles(tmp_path, sample_data):
    path = build(SAMPLE, tmp_path, docx_toc=True)
    document = docx.Document(path)
    toc = [p.text.rpartition("\t") for p in document.paragraphs
           if p.style.name.startswith("toc ")]
    titles = [" ".join(e["text"].split()) for e in sample_data["data"]["elements"]
              if e["type"] == "Title"]
    assert [entry for entry, _, _ in toc] == titles  # every title is at depth <= 2 here
    assert all(number.isdigit() for _, _, number in toc)  # a page reference after each
    root, _ = document_xml(path)
    instr = "".join(t.text for t in root.iter(f"{W}instrText"))
    assert "TOC" in instr
    anchors = {h.get(f"{W}anchor") for h in root.iter(f"{W}hyperlink")}
    marks = {b.get(f"{W}name") for b in root.iter(f"{W}bookmarkStart")}
    assert anchors and anchors <= marks
    check_word_rules(path)


def furniture_parts(path):
    """The text of every header and footer part, and whether it holds a PAGE field."""
    with zipfile.ZipFile(path) as zf:
        parts = {}
        for name in zf.namelist():
            if re.fullmatch(r"word/(header|footer)\d+\.xml", name):
                root = etree.fromstring(zf.read(name))
                instr = "".join(t.text for t in root.iter(f"{W}instrText"))
                parts[name] = ("".join(t.text or "" for t in root.iter(f"{W}t")), instr)
        return parts


def test_running_heads_are_in_header_and_footer_parts(sample_docx, sample_data):
    elements = sample_data["data"]["elements"]
    header = next(e["text"] for e in elements if e["type"] == "Header")
    footer = next(e["text"] for e in elements if e["type"] == "Footer")
    document = docx.Document(sample_docx)
    body = [p.text for p in document.paragraphs]
    assert header not in body and footer not in body
    section = document.sections[0]
    assert [p.text for p in section.header.paragraphs] == [header]
    assert section.footer.paragraphs[0].text == footer
    parts = furniture_parts(sample_docx)
    assert any(" PAGE " in instr for _, instr in parts.values())
    root, _ = document_xml(sample_docx)
    start = root.find(f"{W}body/{W}sectPr/{W}pgNumType")
    assert start is not None and start.get(f"{W}start") == "1"


def test_furniture_and_page_breaks_give_a_section_per_page(tmp_path, sample_data):
    path = build(SAMPLE, tmp_path, furniture=True, page_breaks=True)
    document = docx.Document(path)
    footer = next(e["text"] for e in sample_data["data"]["elements"] if e["type"] == "Footer")
    assert footer not in [p.text for p in document.paragraphs]
    starts = []
    for section in document.sections:  # one per source page, PageBreak folded in
        assert not section.footer.is_linked_to_previous
        assert section.footer.paragraphs[0].text == footer
        starts.append(section._sectPr.find(f"{W}pgNumType").get(f"{W}start"))
    assert starts == ["1", "2", "4"]  # printed numbers; the table over pages 2-4 is one
    root, _ = document_xml(path)
    assert not [b for b in root.iter(f"{W}br") if b.get(f"{W}type") == "page"]
    check_word_rules(path)


def test_image_placeholders_never_break(tmp_path, write_json):
    png = io.BytesIO()
    Image.new("RGB", (2000, 500), "red").save(png, format="WEBP")
    doc = envelope([
        element("a", "Image", "", image_data={"image_url": "https://example.com/a.png"}),
        element("b", "Image", "", image_data={"base64": base64.b64encode(
            b"<html>not an image</html>").decode(), "image_url": "javascript:alert(1)"}),
        element("c", "Image", "", image_data={"base64": base64.b64encode(png.getvalue())
                                              .decode(), "mime_type": "image/png"}),
    ])
    path = build(write_json(doc), tmp_path)
    document = docx.Document(path)
    texts = [p.text for p in document.paragraphs]
    assert "[Image: https://example.com/a.png]" in texts
    assert "[Image not available]" in texts
    assert len(document.inline_shapes) == 1  # the WebP, converted
    shape = document.inline_shapes[0]
    assert shape.width <= document.sections[0].page_width - document.sections[0].left_margin \
        - document.sections[0].right_margin
    check_word_rules(path)


def test_hostile_text_is_cleaned_and_counted(tmp_path, write_json):
    doc = envelope([element("a", text="bell\x07 and \x0b tab\x01 ok"),
                    element("t", "Table", "<table><tr><td>x\x02y</td></tr></table>")])
    report = convert(write_json(json.dumps(doc).encode()), "docx", tmp_path)
    document = docx.Document(report.outputs["docx"])
    assert "bell and  tab ok" in [p.text for p in document.paragraphs]
    assert document.tables[0].cell(0, 0).text == "xy"
    assert any("4 control character(s) removed" in w for w in report.warnings)


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_real_legacy_results(tmp_path, path):
    out = build(path, tmp_path)
    document = docx.Document(out)
    tables = list(iter_tables(path))
    assert len(document.tables) == len(tables)
    root, _ = document_xml(out)
    for tbl, table in zip(root.iter(f"{W}tbl"), tables):
        assert merged_ranges(tbl) == sorted(table.merged_ranges())
    headings = [p for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert len(headings) == len(oracle.expected(path).titles)
    check_tables_against_the_source(path, out)
    check_word_rules(out)


LIBREOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(not LIBREOFFICE and not os.environ.get("CI"), reason="no LibreOffice")
def test_libreoffice_reads_it(sample_docx, tmp_path):
    assert LIBREOFFICE, "CI must have LibreOffice (installed by .ci/run)"
    proc = subprocess.run([LIBREOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                           "--convert-to", "pdf", "--outdir", str(tmp_path), str(sample_docx)],
                          capture_output=True, text=True, timeout=180)
    pdf = tmp_path / "report.pdf"
    assert proc.returncode == 0 and pdf.is_file(), proc.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5_000


def test_tables_wider_than_word_allows_are_split(tmp_path, write_json):
    cells = [(1, c, 1, 1, f"h{c}") for c in range(1, 71)] + \
        [(2, 1, 1, 64, "left"), (2, 65, 1, 6, "right")]
    doc = envelope([element("t", "Table", "", table_structure=structure(cells))])
    path = build(write_json(doc), tmp_path)
    document = docx.Document(path)
    assert [len(t.columns) for t in document.tables] == [63, 7]
    assert document.tables[0].cell(1, 0).text == "left"
    assert document.tables[1].cell(1, 0).text == "left"  # the span continues past the cut
    assert document.tables[1].cell(1, 2).text == "right"
    assert "Columns 64–70 of 70" in [p.text for p in document.paragraphs]
    check_word_rules(path)


def test_column_widths_fill_the_page_and_keep_numbers_whole(tmp_path, write_json):
    long_text = "本公司董事会及全体董事保证本公告内容不存在任何虚假记载、误导性陈述。" * 2
    cells = [(1, 1, 1, 1, "说明"), (1, 2, 1, 1, "代表股份数"), (1, 3, 1, 1, "日期")]
    for r, number in enumerate(("3,339,803,183", "631,054,180"), start=2):
        cells += [(r, 1, 1, 1, long_text), (r, 2, 1, 1, number), (r, 3, 1, 1, "2018-02-23")]
    path = build(write_json(envelope([element("t", "Table", "", 1,
                                              table_structure=structure(cells))])), tmp_path)
    document = docx.Document(path)
    section = document.sections[0]
    text_width = section.page_width - section.left_margin - section.right_margin  # EMU
    root, _ = document_xml(path)
    tbl = next(root.iter(f"{W}tbl"))
    grid = [int(c.get(f"{W}w")) for c in tbl.iter(f"{W}gridCol")]
    assert sum(grid) * 635 == pytest.approx(text_width, abs=635 * 3)  # twips -> EMU
    size = tbl.find(f".//{W}rPr/{W}sz")
    half_points = int(size.get(f"{W}val")) if size is not None else 22
    margins = 2 * int(tbl.find(f"{W}tblPr/{W}tblCellMar/{W}left").get(f"{W}w"))
    # a digit is about 0.55 em of the font (Calibri 0.51, DejaVu Sans 0.64 with LibreOffice)
    digit = 0.55 * half_points * 10
    assert grid[1] - margins >= len("3,339,803,183") * digit * 0.9
    assert grid[2] - margins >= len("2018-02-23") * digit * 0.9
    assert grid[0] > grid[1] and grid[0] > grid[2]  # the long text takes the room left


def test_toc_goes_three_levels_deep(tmp_path, write_json):
    titles = [element(f"h{d}", "Title", f"Heading at depth {d}", 1,
                      metadata={"category_depth": d}) for d in range(5)]
    path = build(write_json(envelope(titles)), tmp_path, docx_toc=True)
    document = docx.Document(path)
    toc = [(p.style.name, p.text.rpartition("\t")[0]) for p in document.paragraphs
           if p.style.name.startswith("toc ")]
    assert toc == [(f"toc {d + 1}", f"Heading at depth {d}") for d in range(3)]
    headings = [p.style.name for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings == [f"Heading {d + 1}" for d in range(5)]  # deeper titles are headings
    root, _ = document_xml(path)
    instr = "".join(t.text for t in root.iter(f"{W}instrText"))
    assert '\\o "1-3"' in instr  # Word's own update keeps the same depth


def blocks_by_section(path):
    """The body's paragraph texts and tables ("table"), each with the number of its section
    (a paragraph whose properties hold a ``w:sectPr`` ends one), as Word counts them."""
    document = docx.Document(path)
    blocks, section = [], 0
    for child in document.element.body.iterchildren():
        if child.tag == f"{W}tbl":
            blocks.append(("table", section))
        elif child.tag == f"{W}p":
            text = "".join(t.text or "" for t in child.iter(f"{W}t"))
            if text:
                blocks.append((text, section))
            if child.find(f"{W}pPr/{W}sectPr") is not None:
                section += 1
    return document, blocks


@pytest.mark.parametrize("page_breaks", [False, True])
def test_headings_and_a_caption_go_with_their_table_into_its_landscape_section(
        tmp_path, write_json, page_breaks):
    numbers = [f"{c * 1234567891:,}" for c in range(1, 9)]  # too wide for a portrait page
    cells = [(1, c, 1, 1, f"Column {c}") for c in range(1, 9)] + \
        [(2, c, 1, 1, n) for c, n in enumerate(numbers, start=1)]
    doc = envelope([
        element("a", text="Before, on page one."),
        element("h1", "Title", "三、会议的表决情况", 2),
        element("h2", "Title", "1、表决情况", 2, metadata={"category_depth": 1}),
        element("u", "TableCaption", "单位：股", 2),  # left standing: the next one is the table's
        element("c", "TableCaption", "表1 表决结果", 2),
        element("t", "Table", "", 2, table_structure=structure(cells)),
        element("b", text="After the table.", page=2),
    ])
    path = build(write_json(doc), tmp_path, page_breaks=page_breaks)
    document, blocks = blocks_by_section(path)
    assert [s.orientation for s in document.sections] == \
        [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE, WD_ORIENT.PORTRAIT]
    section = dict(blocks)
    assert [text for text, s in blocks if s == 1] == \
        ["三、会议的表决情况", "1、表决情况", "单位：股", "表1 表决结果", "table"]
    assert section["Before, on page one."] == 0 and section["After the table."] == 2
    assert numbers[-1] in [c.text for c in document.tables[0].rows[1].cells]
    # the section break starts the new page: a page break before it would leave an empty page
    body = document.element.body
    breaks = [p for p in body.iterchildren(f"{W}p") if p.find(f"{W}pPr/{W}sectPr") is not None]
    for sect_p in breaks:
        before = sect_p.getprevious()
        assert before is None or not [b for b in before.iter(f"{W}br")
                                      if b.get(f"{W}type") == "page"]
    check_word_rules(path)
