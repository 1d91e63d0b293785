"""Everything the engine put in, kept: for the bundled sample and every real result, an
independent oracle (``oracle.py``, which imports nothing from the package) reads the raw JSON,
and python-docx, openpyxl, lxml and a Markdown parser read the outputs back."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import docx
import oracle
import pytest
from conftest import CONVERTIBLE_RESULTS, SAMPLE
from lxml import etree, html
from markdown_it import MarkdownIt
from openpyxl import load_workbook

from xparse_convert import convert

INPUTS = [SAMPLE, *CONVERTIBLE_RESULTS]
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
LITERAL_MARKUP = re.compile(r"<br|<img|<sub|<sup|\*\*")


def norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module", params=INPUTS, ids=lambda p: p.name[:40])
def converted(request, tmp_path_factory):
    path: Path = request.param
    out = tmp_path_factory.mktemp("faithful")
    convert(path, ["docx", "xlsx", "html", "md"], out)
    stem = next(out.glob("*.docx")).stem
    return oracle.expected(path), {ext: out / f"{stem}.{ext}" for ext in
                                   ("docx", "xlsx", "html", "md")}


def _html_tables(root: etree._Element) -> list[etree._Element]:
    return [t for t in root.iter("table") if t.getparent() is not None]


def _check_tables(tables: list[etree._Element], expected: oracle.Expected) -> None:
    assert len(tables) == len(expected.tables)
    for node, want in zip(tables, expected.tables):
        cells = node.xpath(".//td|.//th")
        merged = sum(1 for c in cells if int(c.get("rowspan", 1)) > 1 or
                     int(c.get("colspan", 1)) > 1)
        assert merged == want.merged
        for annotation in node.iter("annotation"):  # MathML keeps the LaTeX here
            annotation.getparent().remove(annotation)
        assert {oracle.loose(c.text_content()) for c in cells} - {""} == want.loose_texts


def _check_titles(root: etree._Element, expected: oracle.Expected) -> None:
    headings = [norm(h.text_content()) for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")
                if h.getparent() is not None and h.getparent().get("id") != "toc"]
    assert headings == expected.titles


def test_docx(converted):
    expected, files = converted
    document = docx.Document(files["docx"])
    titles = [norm(p.text) for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert titles == expected.titles
    assert len(document.tables) == len(expected.tables)
    with zipfile.ZipFile(files["docx"]) as package:
        root = etree.fromstring(package.read("word/document.xml"))
    for tbl, want in zip(root.iter(f"{W}tbl"), expected.tables):
        merged = 0
        for tc in tbl.iter(f"{W}tc"):
            span = tc.find(f"{W}tcPr/{W}gridSpan")
            vmerge = tc.find(f"{W}tcPr/{W}vMerge")
            if vmerge is not None and vmerge.get(f"{W}val") != "restart":
                continue  # the continuation of a cell merged from above
            if vmerge is not None or (span is not None and int(span.get(f"{W}val")) > 1):
                merged += 1
        assert merged == want.merged
        # every text of the cell, Word math (m:t) included, paragraphs apart
        texts = {oracle.loose("".join(t.text or "" for t in tc.iter(f"{W}t", f"{M}t")))
                 for tc in tbl.iter(f"{W}tc")} - {""}
        assert texts == want.loose_texts
    for paragraph in root.iter(f"{W}p"):
        style = paragraph.find(f"{W}pPr/{W}pStyle")
        if style is not None and style.get(f"{W}val") == "SourceCode":
            continue
        text = "".join(t.text or "" for t in paragraph.iter(f"{W}t"))
        assert not LITERAL_MARKUP.search(text), text
    pictures = len(list(root.iter("{http://schemas.openxmlformats.org/drawingml/2006/main}blip")))
    assert pictures >= expected.pictures_with_data


def test_html(converted):
    expected, files = converted
    root = html.fromstring(files["html"].read_bytes())
    _check_titles(root, expected)
    _check_tables(_html_tables(root), expected)
    for node in root.iter("p", "td", "th", "li", "h1", "h2", "h3", "figcaption"):
        assert not LITERAL_MARKUP.search(node.text_content()), node.text_content()
    embedded = [img for img in root.iter("img") if img.get("src", "").startswith("data:")]
    assert len(embedded) >= expected.pictures_with_data


def test_markdown(converted):
    expected, files = converted
    rendered = MarkdownIt("commonmark").enable("table").render(
        files["md"].read_text(encoding="utf-8"))
    root = html.fromstring(f"<html><body>{rendered}</body></html>")
    _check_titles(root, expected)
    _check_tables(_html_tables(root), expected)
    for node in root.iter("p", "td", "th", "li"):
        assert "**" not in node.text_content(), node.text_content()


def test_xlsx(converted):
    expected, files = converted
    book = load_workbook(files["xlsx"])
    sheets = [book[name] for name in book.sheetnames[1:]]
    assert len(sheets) == len(expected.tables)
    for sheet, want in zip(sheets, expected.tables):
        assert len(sheet.merged_cells.ranges) == want.merged
        header = [c.value for c in next(sheet.iter_rows(max_row=1))]
        skip = header.index("Source page") if "Source page" in header else None
        strings, numbers = set(), []
        for row in sheet.iter_rows():
            for cell in row:
                if cell.column - 1 == skip or cell.value is None:
                    continue
                if isinstance(cell.value, str):
                    strings.add(norm(cell.value))
                else:
                    numbers.append(cell.value)
        assert strings - {""} <= want.texts
        # a text missing as a string was written as a number
        assert len(want.texts - strings) <= len(numbers)
