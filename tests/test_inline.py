"""Inline runs: emphasis, math, formula objects and cell markup, decided once and rendered the
same by every writer."""

from __future__ import annotations

import base64
import io
import re
import zipfile

import docx
import pytest
from conftest import element, envelope
from lxml import etree, html
from openpyxl import load_workbook
from openpyxl.cell.rich_text import CellRichText
from PIL import Image

from xparse_convert import convert
from xparse_convert.inline import (
    BREAK,
    EMPHASIS,
    MATH,
    PICTURE,
    STRONG,
    SUB,
    SUP,
    TEXT,
    parse_html,
    parse_text,
    plain_text,
)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def kinds(runs):
    return [(r.kind, r.text, r.marks) for r in runs]


def test_emphasis_and_strong():
    assert kinds(parse_text("**Large** **Language** *model*")) == [
        (TEXT, "Large", STRONG), (TEXT, " ", 0), (TEXT, "Language", STRONG), (TEXT, " ", 0),
        (TEXT, "model", EMPHASIS)]


@pytest.mark.parametrize("text", ["2*3*4", "2**3**4", "foo_bar_baz", r"a \*b* c",
                                  "[link](https://x.org)", "`code*x*`", "&amp; <b>x</b>",
                                  "$5 and $6", "a * b * c"])
def test_everything_else_stays_as_written(text):
    runs = parse_text(text)
    assert all(r.kind == TEXT for r in runs)
    assert plain_text(runs) == text


def test_math_follows_tex_math_dollars():
    runs = parse_text("If $x<y$ then $$E=mc^2$$, not $ x $ or $5.")
    math = [(r.text, r.display, r.source) for r in runs if r.kind == MATH]
    assert math == [("x<y", False, "$x<y$"), ("E=mc^2", True, "$$E=mc^2$$")]
    assert plain_text(runs) == "If $x<y$ then $$E=mc^2$$, not $ x $ or $5."


def test_formula_objects_by_text_range():
    text = "按 $GM=\\frac{R-C}{R}$ 计算"
    exact = {"type": "formula", "text": "$GM=\\frac{R-C}{R}$", "text_range": [2, 20]}
    off_by_one = {**exact, "text_range": [2, 19]}
    nearby = {**exact, "text_range": [0, 18]}
    for obj in (exact, off_by_one, nearby):
        runs = parse_text(text, [obj])
        assert [r.text for r in runs if r.kind == MATH] == ["GM=\\frac{R-C}{R}"]
    heard = []
    runs = parse_text(text, [{**exact, "text": "$y$"}], warn=heard.append)
    assert heard and plain_text(runs) == text


def test_display_mode_of_objects():
    runs = parse_text("see x^2 here", [{"type": "formula", "text": "x^2", "text_range": [4, 7],
                                        "metadata": {"display_mode": "display"}}])
    assert [(r.text, r.display) for r in runs if r.kind == MATH] == [("x^2", True)]


def test_cell_html():
    runs = parse_html('H<sub>2</sub>O<br>E=mc<sup>2</sup> &amp; <b>bold</b>'
                      '<img src="https://e.com/a.png"><script>alert(1)</script>')
    assert kinds(runs)[:5] == [(TEXT, "H", 0), (TEXT, "2", SUB), (TEXT, "O", 0),
                               (BREAK, "", 0), (TEXT, "E=mc", 0)]
    assert (TEXT, "2", SUP) in kinds(runs) and (TEXT, "bold", STRONG) in kinds(runs)
    assert [r.image.url for r in runs if r.kind == PICTURE] == ["https://e.com/a.png"]
    assert "alert" not in plain_text(runs) and "<" not in plain_text(runs)


def test_deep_html_nesting_is_iterative():
    runs = parse_html("<b>" * 5000 + "x" + "</b>" * 5000)
    assert plain_text(runs) == "x"


def _png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """One result with emphasis, math, a formula object and a table with HTML cell markup,
    converted to every format once."""
    cells = f"<img src=\"data:image/png;base64,{_png()}\">"
    table = ("<table><tr><th>Compound</th><th>Note</th></tr>"
             "<tr><td>H<sub>2</sub>O</td><td>line one<br>line two</td></tr>"
             f"<tr><td>m<sup>2</sup> &amp; **area**</td><td>{cells}</td></tr></table>")
    doc = envelope([
        element("t1", "Title", "**Large** Language Models"),
        element("p1", text="The **ratio** is $GM=\\frac{R-C}{R}$ and 2*3*4 stays.",
                objects=[{"type": "formula", "text": "$GM=\\frac{R-C}{R}$",
                          "text_range": [13, 31]}]),
        element("p2", text="# not a heading\n- not a list <img src=x onerror=alert(1)>"),
        element("tb", "Table", table),
    ])
    path = tmp_path_factory.mktemp("rich") / "rich.json"
    import json
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    out = path.parent / "out"
    convert(path, ["docx", "html", "md", "xlsx"], out)
    return out


def test_docx_runs(rich):
    document = docx.Document(rich / "rich.docx")
    title = next(p for p in document.paragraphs if p.style.name == "Heading 1")
    assert title.text == "Large Language Models" and title.runs[0].bold
    paragraph = next(p for p in document.paragraphs if "ratio" in p.text)
    assert "**" not in paragraph.text and "2*3*4" in paragraph.text
    assert any(r.bold and r.text == "ratio" for r in paragraph.runs)
    with zipfile.ZipFile(rich / "rich.docx") as package:
        body = etree.fromstring(package.read("word/document.xml"))
    cells = list(body.iter(f"{W}tc"))
    h2o = cells[2]
    aligns = [(r.findtext(f"{W}t"), r.find(f"{W}rPr/{W}vertAlign"))
              for r in h2o.iter(f"{W}r")]
    assert [(t, a.get(f"{W}val") if a is not None else None) for t, a in aligns] == [
        ("H", None), ("2", "subscript"), ("O", None)]
    assert len(cells[3].findall(f"{W}p")) == 2  # the <br> is a new line
    assert cells[5].find(".//{http://schemas.openxmlformats.org/drawingml/2006/main}blip") \
        is not None
    for paragraph in body.iter(f"{W}p"):
        text = "".join(t.text or "" for t in paragraph.iter(f"{W}t"))
        if not text.startswith("# not a heading"):  # that one is text as written
            assert "<br" not in text and "<img" not in text and "**" not in text


def test_html_runs(rich):
    root = html.fromstring((rich / "rich.html").read_bytes())
    assert root.xpath("//h1/strong/text()") == ["Large"]
    assert root.xpath("//p[strong='ratio']")
    assert root.xpath("//td/sub/text()") == ["2"] and root.xpath("//td/sup/text()") == ["2"]
    assert root.xpath("//td/strong/text()") == ["area"]
    assert root.xpath("//td/img/@src")[0].startswith("data:image/png;base64,")
    assert not root.xpath("//@onerror")
    for node in root.iter("p", "td", "h1"):
        if not node.text_content().startswith("# not a heading"):
            assert not re.search(r"<br|<img|\*\*", node.text_content())
    assert "<img src=x onerror=alert(1)>" in root.text_content()  # shown as the text it is


def test_markdown_runs(rich):
    from markdown_it import MarkdownIt

    text = (rich / "rich.md").read_text(encoding="utf-8")
    assert "2\\*3\\*4" in text  # renderers agree with DOCX and HTML
    assert "$GM=\\frac{R-C}{R}$" in text  # math kept as written
    rendered = MarkdownIt("commonmark").render(text)
    root = html.fromstring(f"<div>{rendered}</div>")
    assert root.xpath("//h1/strong/text()") == ["Large"]
    assert len(root.xpath("//h1")) == 1 and not root.xpath("//ul")  # block markers escaped
    assert not root.xpath("//img[@onerror]") and "2*3*4" in root.text_content()
    assert "<sub>2</sub>" in text and "<sup>2</sup>" in text


def test_xlsx_rich_text(rich):
    book = load_workbook(rich / "rich.xlsx", rich_text=True)
    sheet = book[book.sheetnames[1]]
    h2o = sheet["A2"].value
    assert isinstance(h2o, CellRichText) and str(h2o) == "H2O"
    assert any(getattr(getattr(part, "font", None), "vertAlign", None) == "subscript"
               for part in h2o)
    assert str(sheet["B2"].value) == "line one\nline two"
    assert str(sheet["A3"].value) == "m2 & area"
    assert str(sheet["B3"].value) == "[image]"
