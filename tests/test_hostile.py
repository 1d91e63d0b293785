"""Hostile input through every writer at once (issue 11's property test).

Random element lists, in the 1.x envelope and in the legacy ``pdf_to_markdown`` shape, are
built from the values an attacker would try: documented, GUI and method-like element types,
text full of Markdown and HTML syntax, controls, lone surrogates and bidi overrides, odd
tables, bad pictures and URLs, captions and continuations that point anywhere.  Each input
is converted once to DOCX, XLSX, HTML, Markdown and JSONL, and the outputs are checked as a
user's tools would open them: python-docx, openpyxl, lxml; the HTML page and the Markdown
rendered by two real renderers (markdown-it-py in CommonMark mode with raw HTML on, and
Python-Markdown, which passes raw HTML and does not filter link schemes) must hold no active
content.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import docx
import lxml.html
import markdown as python_markdown
import openpyxl
import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from markdown_it import MarkdownIt
from PIL import Image

from xparse_convert import convert, iter_tables
from xparse_convert.writers.html import STYLE

FORMATS = ["docx", "xlsx", "html", "md", "jsonl"]

# -- values an attacker would try ------------------------------------------------------------

SNIPPETS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>",
    "<style>body{background:url(http://evil/t)}</style>", "<iframe src=http://evil/>",
    "<a href=javascript:alert(1)>x</a>", "<details open ontoggle=alert(1)>",
    "!", "!<a href=\"http://evil/x.png\">x</a>", "<a href='https://e.com/'>link</a>",
    "<meta http-equiv=refresh content='0;url=http://evil/'>", "<base href=http://evil/>",
    "<!-- x -->", "<![CDATA[x]]>", "<?php x ?>", "</p>", "<b>bold</b>", "<br>",
    "<sub>2</sub>", "&lt;script&gt;", "&#60;script&#62;", "&#x3C;img src=x onerror=1&#x3E;",
    "&amp;", "&", "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1) )", "[x](<javascript:alert(1)>)", "[x](&#106;avascript:alert(1))",
    "[x](java\nscript:alert(1))", "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)", "[x](evil.html)", "<javascript:alert(1)>",
    "<http://evil/x>", "![](http://evil/x.png)", "![a](//evil/x.png)", "![x](javascript:1)",
    "[a]: javascript:x", "\n[a]: javascript:x\n", "[a]", "[a][]", "[a][b]", "\n[b]: http://evil/b.png",
    "$<img src=x onerror=1>$", "$$<script>x</script>$$", "$a<b$", "$x$", "$$", "$",
    "$\\href{javascript:alert(1)}{x}$", "\\href{javascript:alert(1)}{x}", "\\url{javascript:x}",
    "**", "*", "_", "__x__", "**x**", "*x*", "~~x~~", "`", "``<b>``", "```", "~~~", "\\",
    "|", "| a | b |\n|---|---|\n| c | d |", "<table><tr><td>x</td></tr></table>",
    "# not a heading", "> quote", "- item", "+ item", "1. item", "1) x", "---", "===",
    "    indented code", "\n\n", "\n", "\r", "\r\n", "\r\r", "\t", "\x00", "\x01", "\x08",
    "\x0b", "\x1b[2J", "\r\x1b[2K", "\x7f", "\x85", "\x9b", "\ud800", "\udfff", "\ud83d",
    "\u202e", "\u2066", "\u200f", "\ufeff", "\ufffe", "\uffff", "\u2028", "\u2029",
    "=HYPERLINK(\"http://evil\")", "=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "0012",
    "1,234.50", "{{7*7}}", "%s%n", "中文", "١٢٣", "🙂", "e\u0301", "x" * 300,
    "supercalifragilistic" * 40,
]
TEXT = st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=12),
                          st.sampled_from([" ", "", "\n"])), max_size=6).map("".join)
SHORT = st.one_of(st.sampled_from(SNIPPETS[:30] + ["", "a", "\ud800", "\x1b", "\u202e"]),
                  st.text(max_size=8))

TYPES = [
    "Title", "NarrativeText", "ListItem", "Table", "TableCaption", "Image", "FigureCaption",
    "Formula", "Chemical", "Header", "Footer", "PageNumber", "PageBreak", "CodeSnippet",
    "UncategorizedText", "button", "input", "checkbox", "link", "text", "label", "title",
    "icon", "image", "menu", "table", "Begin", "End", "Write", "Abort", "Clean", "default",
    "begin", "write", "end", "abort", "option", "clean", "runs", "__init__", "__class__",
    "__dict__", "_emit", "_block", "_place", "mro", "", "narrative_text", "table_caption",
]
ELEMENT_TYPE = st.one_of(st.sampled_from(["Image", "Table", "NarrativeText", "Formula"]),
                         st.sampled_from(TYPES[:15]), st.sampled_from(TYPES),
                         st.text(max_size=10))
IDS = ["e0", "e1", "e2", "e3", "e4", "\x1b[2Je5", "<script>", "\ud800"]
ID = st.one_of(st.sampled_from(IDS), st.integers(-1, 3), st.none())
# Integers of any size in elements: the reader keeps them exactly; document fields (read by
# yajl) stay within 64 bits, a larger one there is refused in one line
PAGE = st.one_of(st.integers(1, 3), st.integers(-2, 4),
                 st.sampled_from(["2", "x", "", True, False, None, 1.5, -0.0, 2 ** 62, 10 ** 30,
                                  -(10 ** 19), 1e300, [1], {"p": 1}]))
INT64 = st.integers(-(2 ** 62), 2 ** 62)
INT = st.one_of(INT64, st.sampled_from([10 ** 30, -(2 ** 70)]))
SMALL = st.one_of(st.integers(1, 3), st.integers(-2, 4),
                  st.sampled_from(["2", "x", True, None, 2.5, 12]))


def _png(width: int = 2, height: int = 2) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, format="PNG")
    return out.getvalue()


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (1, 1)).save(out, format="GIF")
    return out.getvalue()


PNG = _png()
# a PNG header that claims 60000 x 60000 pixels, with no data behind it
BOMB = PNG[:16] + (60000).to_bytes(4, "big") * 2 + PNG[24:33]
IMAGE_BYTES = st.one_of(
    st.just(PNG), st.just(_png(3, 1)),  # pictures that are written, so their paths run
    st.sampled_from([PNG, PNG[:40], PNG[:8], BOMB, _gif(), b"",
                     b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
                     b"<html><script>alert(1)</script></html>", b"GIF89a\x01"]),
    st.binary(max_size=40),
)
BASE64 = st.one_of(
    IMAGE_BYTES.map(lambda b: base64.b64encode(b).decode()),
    IMAGE_BYTES.map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()),
    st.sampled_from(["!!!", "====", "iVBORw0KGgo", "data:text/html,<script>alert(1)</script>",
                     "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
                     base64.b64encode(PNG).decode() + "\x00\ud800", "\u202e" + "A" * 8]),
    st.text(max_size=16),
)
URL = st.one_of(st.sampled_from([
    "https://example.com/a.png", "http://evil/x.png", "//evil/x.png", "javascript:alert(1)",
    " JaVaScRiPt:alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>",
    "data:image/png;base64," + base64.b64encode(PNG).decode(), "file:///etc/passwd",
    "http://e.com/\x01x", "https://e.com/a\u202e.png", "http://", "https://[::1",
    "http://e.com/a b", "http://e.com/a\".png", "http://e.com/a)x", "http://e.com/a|b",
    "https://e.com/\ud800", "x.png", "../../etc/passwd", "",
]), st.text(max_size=12), INT, st.none())
MIME = st.one_of(st.sampled_from(["image/png", "image/svg+xml", "text/html", "", "\ud800"]),
                 st.none())


@st.composite
def image_data(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, "x", 3, [], [{"base64": "!!"}]]))
    data: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        data["base64"] = draw(BASE64)
    if draw(st.booleans()):
        data["image_url"] = draw(st.one_of(st.just("https://example.com/a.png"), URL))
    if draw(st.booleans()):
        data["mime_type"] = draw(MIME)
    return data


@st.composite
def cell(draw: st.DrawFn, base: int = 1, html_text: bool = False) -> Any:
    if draw(st.integers(0, 14)) == 0:
        return draw(st.sampled_from([None, "cell", 1, []]))
    c: dict[str, Any] = {"row": draw(SMALL.map(lambda v: v - 1 + base if type(v) is int else v)),
                         "col": draw(SMALL.map(lambda v: v - 1 + base if type(v) is int else v))}
    if draw(st.booleans()):
        c["row_span"] = draw(SMALL)
    if draw(st.booleans()):
        c["col_span"] = draw(SMALL)
    if html_text:
        c["text"] = draw(st.one_of(TEXT, st.builds(
            lambda t, src: f"{t}<img src=\"{src}\">{t}<br><script>alert(1)</script>",
            SHORT, URL.map(str))))
    else:
        c["text"] = draw(st.one_of(TEXT, INT, st.none()))
    if draw(st.integers(0, 3)) == 0:
        c["content_type"] = draw(st.sampled_from(["formula", "text", "image", 3]))
    if draw(st.integers(0, 3)) == 0:
        key = draw(st.sampled_from(["image_datas", "image_data"]))
        c[key] = draw(st.one_of(image_data(), st.lists(image_data(), max_size=2)))
    return c


@st.composite
def html_table(draw: st.DrawFn) -> str:
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        tds = []
        for _ in range(draw(st.integers(0, 3))):
            span = draw(st.sampled_from(["", ' colspan="2"', ' rowspan="3"', ' colspan="0"',
                                         ' rowspan="-1"', ' colspan="x"', ' colspan="40"']))
            tds.append(f"<td{span}>{draw(TEXT)}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


@st.composite
def table_structure(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, "x", [], {"cells": "x"}, {"cells": [None]}]))
    ts: dict[str, Any] = {"cells": draw(st.lists(cell(), max_size=6))}
    if draw(st.booleans()):
        ts["rows"] = draw(SMALL)
    if draw(st.booleans()):
        ts["cols"] = draw(SMALL)
    return ts


@st.composite
def formula_object(draw: st.DrawFn, text: Any) -> Any:
    """An inline formula object: mostly one that claims a piece of the text (any piece: it
    need not be LaTeX), sometimes one that points anywhere."""
    text = text if isinstance(text, str) else ""
    start = draw(st.integers(-1, len(text) + 1))
    end = draw(st.integers(start, len(text) + 2))
    obj = {"type": draw(st.sampled_from(["formula", "formula", "image", 3])),
           "text": text[max(start, 0):end], "text_range": [start, end]}
    if draw(st.integers(0, 3)) == 0:
        obj["text"] = draw(TEXT)
    if draw(st.integers(0, 3)) == 0:
        obj["text_range"] = draw(st.sampled_from([None, "x", [1], [True, False]]))
    if draw(st.integers(0, 3)) == 0:
        obj["metadata"] = {"display_mode": draw(st.sampled_from(["display", "inline", 1]))}
    return obj


@st.composite
def element(draw: st.DrawFn, junk: bool = True) -> Any:
    if junk and draw(st.integers(0, 24)) == 0:
        return draw(st.sampled_from([None, "text", 3, [], [{"type": "Title"}]]))
    type_ = draw(ELEMENT_TYPE)
    el: dict[str, Any] = {"element_id": draw(ID), "type": type_, "page_number": draw(PAGE)}
    if type_ in ("Table", "table") and draw(st.booleans()):
        el["text"] = draw(st.one_of(html_table(), TEXT.map(lambda t: f"| a | b |\n|---|---|\n"
                                                                     f"| {t} | x |")))
    else:
        el["text"] = draw(st.one_of(TEXT, TEXT, INT, st.none()))
    meta: dict[str, Any] = {}
    for key, value in (("category_depth", SMALL), ("ref_element_id", ID),
                       ("is_continuation", st.sampled_from([True, False, "true", 1])),
                       ("continuation_of", ID), ("width", SMALL), ("height", SMALL),
                       ("parent_id", ID)):
        if draw(st.integers(0, 2)) == 0:
            meta[key] = draw(value)
    el["metadata"] = meta if draw(st.integers(0, 14)) else draw(st.sampled_from([None, "x", []]))
    if type_ in ("Image", "image") or draw(st.integers(0, 5)) == 0:
        el["image_data"] = draw(image_data())
    if type_ in ("Table", "table") or draw(st.integers(0, 7)) == 0:
        el["table_structure"] = draw(table_structure())
    if draw(st.integers(0, 3)) == 0:
        el["objects"] = draw(st.lists(formula_object(el["text"]), max_size=3))
    if draw(st.integers(0, 5)) == 0:
        el["sub_type"] = draw(st.sampled_from(["bordered", "chart", "", None, "<script>"]))
    return el


@st.composite
def envelope(draw: st.DrawFn) -> Any:
    # one element object at least: a list of nothing else is not a result (and says so)
    elements = draw(st.lists(element(), max_size=7))
    elements.insert(draw(st.integers(0, len(elements))), draw(element(junk=False)))
    if draw(st.integers(0, 4)) == 0:
        return elements  # a bare list of elements
    data: dict[str, Any] = {"schema_version": draw(st.one_of(st.sampled_from(
        ["1.3.0", "1.4.0", "9.9", "<script>", "\ud800", "\x1b[2J"]), INT64, st.none())),
        "file_id": draw(SHORT), "metadata": {"filename": draw(SHORT)}, "elements": elements}
    return {"code": 200, "message": draw(SHORT), "data": data}


@st.composite
def legacy_picture(draw: st.DrawFn, image_id: int) -> dict[str, Any]:
    """A ``pages[].content`` picture item."""
    data = draw(st.one_of(st.fixed_dictionaries({"base64": BASE64}),
                          st.sampled_from([None, "x", {"base64": 3}])))
    return {"id": image_id, "type": "image", "pos": [0, 0, 9, 0, 9, 9, 0, 9], "data": data}


@st.composite
def legacy(draw: st.DrawFn) -> Any:
    """The legacy ``pdf_to_markdown`` result: 0-based cells with HTML text, pictures in
    ``pages[].content`` that ``pages[].structured`` image blocks link to ``detail`` image
    blocks (mostly by their paragraph id, as real results do; sometimes not at all)."""
    first = draw(st.sampled_from([1, 1, 0]))
    pages = [{"page_id": page_id, "width": draw(st.sampled_from([100, 100, 0, -1, "x"])),
              "height": 100, "content": [], "structured": []}
             for page_id in range(first, first + draw(st.integers(1, 2)))]
    detail = []
    for paragraph in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["paragraph", "table", "image", "image", "<script>", ""]))
        item = {"type": kind, "page_id": draw(st.one_of(st.just(1), PAGE)),
                "paragraph_id": draw(st.one_of(st.just(paragraph), ID)),
                "text": draw(st.one_of(TEXT, html_table())),
                "position": draw(st.sampled_from([[0, 0, 9, 0, 9, 9, 0, 9], None, "x"])),
                "outline_level": draw(SMALL), "content": draw(st.sampled_from([0, 0, 1, "x"]))}
        if draw(st.booleans()):
            item["sub_type"] = draw(st.sampled_from(["text_title", "table_title", "image_title",
                                                     "header", "footer", "<b>", None]))
        if kind == "table" or draw(st.integers(0, 5)) == 0:
            item["cells"] = draw(st.lists(cell(base=0, html_text=True), max_size=6))
        if kind == "image" and draw(st.booleans()):
            item["image_url"] = draw(URL)
        if draw(st.integers(0, 4)) == 0:
            item["caption_id"] = draw(st.one_of(
                st.fixed_dictionaries({"page_id": PAGE, "paragraph_id": ID}),
                st.sampled_from([None, "x", {}])))
        detail.append(item)
        page = next((p for p in pages if p["page_id"] == item["page_id"]), None)
        if kind == "image" and page is not None and draw(st.integers(0, 3)):
            image_id = 100 + len(page["content"])
            page["content"].append(draw(legacy_picture(image_id)))
            page["structured"].append({
                "type": "image", "id": draw(st.one_of(st.just(item["paragraph_id"]), ID)),
                "content": draw(st.one_of(st.just([image_id]), st.lists(st.integers(-1, 3),
                                                                        max_size=2),
                                          st.sampled_from([None, "x"]))),
                "pos": draw(st.sampled_from([[0, 0, 9, 0, 9, 9, 0, 9], None, [1, "x"]]))})
    for page in pages:  # text lines and pictures no block links to
        for _ in range(draw(st.integers(0, 2))):
            image_id = 100 + len(page["content"])
            page["content"].append(draw(st.one_of(
                legacy_picture(image_id), st.fixed_dictionaries({
                    "id": st.just(image_id), "type": st.just("line"), "text": TEXT}))))
    return {"code": 200, "message": "ok", "result": {"detail": detail, "pages": pages}}


# -- what "no active content" means ------------------------------------------------------------

FORBIDDEN_TAGS = {"script", "style", "iframe", "frame", "frameset", "object", "embed",
                  "applet", "base", "link", "meta", "form", "template"}
URL_ATTRS = {"href", "src", "action", "formaction", "srcset", "poster", "background",
             "data", "cite", "longdesc", "ping", "xlink:href", "lowsrc", "dynsrc"}
PICTURE = re.compile(r"data:image/(png|jpeg|gif|bmp|tiff|webp);base64,[A-Za-z0-9+/=]*")
_STRIP = re.compile(r"[\x00-\x20\x7f-\x9f]+")


def _scheme(url: str) -> str:
    """The scheme a browser sees: it drops controls and spaces anywhere in it."""
    squeezed = _STRIP.sub("", url).lower()
    match = re.match(r"([a-z][a-z0-9+.-]*):", squeezed)
    return match.group(1) if match else ""


def _picture_ok(src: str, images: str, stem: str) -> bool:
    """Whether an ``<img src>`` is what the ``--images`` mode may write (README's table)."""
    if images == "none":
        return False
    if PICTURE.fullmatch(src):  # bytes that were checked, inside the file
        return True
    if images == "url":
        return _scheme(src) in ("http", "https")
    # files: the relative <stem>_files/ link (never http(s), never out of the folder)
    return images == "files" and src.startswith(f"{stem}_files/") and ".." not in src \
        and not _scheme(src) and "//" not in src


def active_content(root: etree._Element, *, images: str, stem: str,
                   own_head: bool = False) -> list[str]:
    """Everything in ``root`` that could run, style or fetch when the page is opened (or
    run when a link is clicked), as readable strings; [] when there is nothing.
    ``own_head``: the page's own ``<head>`` (our style and meta elements) is allowed."""
    found = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        tag = node.tag.rsplit("}", 1)[-1].lower()
        parent = node.getparent()
        in_head = own_head and parent is not None and parent.tag == "head"
        if tag in FORBIDDEN_TAGS and not (in_head and tag in ("style", "meta")):
            found.append(f"<{tag}> element")
        if tag == "style" and in_head and (node.text or "") != STYLE:
            found.append("a <style> in the head that is not ours")
        for name, value in node.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                found.append(f"{local}= attribute on <{tag}>")
            if local == "style" and "url(" in value.replace(" ", "").lower():
                found.append(f"style= attribute that loads: {value!r}")
            if local not in URL_ATTRS or (tag == "meta" and in_head):
                continue
            if local == "src" and tag == "img":
                if not _picture_ok(value, images, stem):
                    found.append(f"<img src={value[:80]!r}> under --images {images}")
            elif local == "href" and tag == "a":
                if _scheme(value) not in ("http", "https") and not value.startswith("#"):
                    found.append(f"<a href={value[:80]!r}>")
            else:
                found.append(f"{local}={value[:80]!r} on <{tag}>")
    return found


_MARKDOWN_IT = MarkdownIt("commonmark", {"html": True})
# MkDocs' default set: the Markdown is GFM (fenced code, pipe tables), and without
# fenced_code Python-Markdown reads a fence as a code span and the code as Markdown
PYTHON_MARKDOWN = ["fenced_code", "tables"]


def rendered(text: str) -> dict[str, str]:
    """The Markdown as two real renderers show it."""
    return {"markdown-it": _MARKDOWN_IT.render(text),
            "Python-Markdown": python_markdown.markdown(text, extensions=PYTHON_MARKDOWN)}


def check_docx(path: Path) -> None:
    """Opens in python-docx; fetches nothing when opened (no external picture or included
    file), its links are http(s), every internal relationship resolves."""
    docx.Document(str(path))
    with zipfile.ZipFile(path) as package:
        names = set(package.namelist())
        ids = set()
        for name in names:
            if not name.endswith(".rels"):
                continue
            for rel in etree.fromstring(package.read(name)):
                target = rel.get("Target", "")
                if rel.get("TargetMode") == "External":
                    assert rel.get("Type", "").endswith("/hyperlink"), \
                        f"DOCX loads an external part: {rel.attrib}"
                    assert _scheme(target) in ("http", "https"), rel.attrib
                elif name == "word/_rels/document.xml.rels":
                    assert f"word/{target}" in names, f"DOCX relationship to nothing: {target}"
                if name == "word/_rels/document.xml.rels":
                    ids.add(rel.get("Id"))
        body = package.read("word/document.xml").decode("utf-8")
        assert not re.search(r"INCLUDEPICTURE|INCLUDETEXT|\bDDE", body), "DOCX fetches"
        used = set(re.findall(r'\br:(?:id|embed|link)="([^"]*)"', body))
        assert used <= ids, f"DOCX points at relationships it lacks: {used - ids}"


def check_xlsx(path: Path) -> None:
    """Opens in openpyxl; sheet names as Excel allows them; no formula; links http(s)."""
    workbook = openpyxl.load_workbook(path)
    names = [sheet.title.lower() for sheet in workbook.worksheets]
    assert len(names) == len(set(names))
    for sheet in workbook.worksheets:
        title = sheet.title
        assert 0 < len(title.encode("utf-16-le")) <= 62 and not re.search(r"[][:*?/\\]", title) \
            and title[0] != "'" and title[-1] != "'", f"sheet name {title!r}"
        for row in sheet.iter_rows():
            for c in row:
                assert c.data_type != "f", f"XLSX formula in {title}!{c.coordinate}"
                if c.hyperlink is not None and c.hyperlink.target:
                    assert _scheme(c.hyperlink.target) in ("http", "https")


def check_markdown_tables(html: str, source: Path) -> None:
    """Every table of the input is one table of the rendered Markdown, with all its rows:
    nothing in a cell (a line break, a ``|``, a blank line in a formula) ends a row, a cell
    or the table early."""
    root = lxml.html.fragment_fromstring(html, create_parent="div") if html.strip() \
        else etree.Element("div")
    shown = [len(table.findall(".//tr")) for table in root.iter("table")]
    expected = [(t.n_rows, t.n_rows + 1) for t in iter_tables(source)
                if t.n_cols > 0 and t.n_rows > 0]  # (tables.py makes some of neither)
    assert len(shown) == len(expected), f"{len(expected)} tables rendered as {len(shown)}"
    for rows, (n_rows, with_blank_header) in zip(shown, expected):
        assert rows in (n_rows, with_blank_header), f"a table of {n_rows} rows shows {rows}"


def check_outputs(out: Path, stem: str, images: str | None, source: Path) -> None:
    check_docx(out / f"{stem}.docx")
    check_xlsx(out / f"{stem}.xlsx")

    page = (out / f"{stem}.html").read_bytes()
    tree = lxml.html.document_fromstring(page)
    problems = active_content(tree, images=images or "embed", stem=stem, own_head=True)
    assert not problems, f"HTML: {problems}"
    assert len(tree.findall(".//style")) == 1
    csp = tree.find(".//meta[@http-equiv='Content-Security-Policy']")
    assert csp is not None and "script-src" not in csp.get("content") and \
        "default-src 'none'" in csp.get("content")

    text = (out / f"{stem}.md").read_text(encoding="utf-8")
    for renderer, markup in rendered(text).items():
        root = lxml.html.fragment_fromstring(markup, create_parent="div") if markup.strip() \
            else etree.Element("div")
        problems = active_content(root, images=images or "files", stem=stem)
        assert not problems, f"Markdown rendered by {renderer}: {problems}"
        if renderer == "Python-Markdown":  # pipe tables are GFM, not CommonMark
            check_markdown_tables(markup, source)
        for img in root.iter("img"):  # a picture beside the Markdown is there
            src = img.get("src", "")
            assert not src.startswith(f"{stem}_files/") or (out / src).is_file(), src

    indexes = []
    for line in (out / f"{stem}.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        assert record["_schema"] == "xparse-convert.jsonl/1"
        indexes.append(record["_index"])
    assert indexes == sorted(set(indexes))


def run(value: Any, options: dict[str, Any] | None = None) -> None:
    """Convert ``value`` to every format in one conversion and check what came out."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.json"
        # ASCII escapes carry lone surrogates as JSON does (\ud800)
        path.write_text(json.dumps(value, ensure_ascii=True), encoding="ascii")
        convert(path, FORMATS, Path(tmp) / "out", options)
        check_outputs(Path(tmp) / "out", "input", (options or {}).get("images"), path)


# What this test found, kept as examples that always run (the input shape, then the bug).
FOUND = [
    # a formula object that claims "[x]" made "[x](javascript:alert(1))" a live link in
    # Markdown, and "![y]" a remote picture
    [{"element_id": "e1", "type": "NarrativeText", "page_number": 1,
      "text": "[x](javascript:alert(1)) ![y](http://evil/x.png) end",
      "objects": [{"type": "formula", "text": "[x]", "text_range": [0, 3]},
                  {"type": "formula", "text": "![y]", "text_range": [25, 29]}]}],
    # Markdown syntax inside a formula rendered as Markdown where math is not supported
    [{"element_id": "e1", "type": "Formula", "page_number": 1,
      "text": "$$![](http://evil/x.png) [x](javascript:alert(1))\n[a]: javascript:x$$"},
     {"element_id": "e2", "type": "NarrativeText", "page_number": 1, "text": "$[a]$"}],
    # a blank line in a formula ended the HTML table of a Markdown file, and the rest of the
    # table was read as Markdown; a | or a line break in a pipe-table formula split the row
    [{"element_id": "t1", "type": "Table", "page_number": 1, "text": "", "table_structure": {
        "cells": [{"row": 1, "col": 1, "col_span": 2, "text": "head"},
                  {"row": 2, "col": 1, "text": "$a\n\n![](http://evil/x.png)$"},
                  {"row": 2, "col": 2, "text": "b"}]}},
     {"element_id": "t2", "type": "Table", "page_number": 1, "text": "", "table_structure": {
         "cells": [{"row": 1, "col": 1, "text": "$a|b\\|c$"}, {"row": 1, "col": 2,
                                                               "text": "$a\r\nb$"},
                   {"row": 2, "col": 1, "text": "x\ry"}, {"row": 2, "col": 2, "text": "z"}]}}],
    # a formula object "<" before text "a href=...>" wrote a live <a href=javascript:...>;
    # one ending in a backslash unescaped the "]" after it
    [{"element_id": "e1", "type": "NarrativeText", "page_number": 1,
      "text": "<a href=javascript:alert(1)>x</a>",
      "objects": [{"type": "formula", "text": "<", "text_range": [0, 1]}]},
     {"element_id": "e2", "type": "NarrativeText", "page_number": 1,
      "text": "[x\\](javascript:alert(1)) b",
      "objects": [{"type": "formula", "text": "[x\\", "text_range": [0, 3]}]}],
    # a control character in a formula's source failed DOCX and HTML (lxml refuses it)
    [{"element_id": "e1", "type": "Title", "page_number": 1, "text": "x $a\u0001b$ y"},
     {"element_id": "t1", "type": "Table", "page_number": 1, "text": "",
      "table_structure": {"cells": [{"row": 1, "col": 1, "row_span": 2, "text": "$\u0001$"}]}}],
    # a table whose only cell is dropped keeps 4 rows and 0 columns: IndexError in DOCX
    [{"element_id": "t1", "type": "Table", "page_number": 1, "text": "",
      "table_structure": {"cells": [{"row": 4, "col": 0, "text": "a"}]}}],
]
FOUND_LEGACY = [
    # "!" before a cell's link made it a picture the Markdown loads from anywhere
    {"code": 200, "message": "ok", "result": {"pages": [], "detail": [
        {"type": "table", "page_id": 1, "paragraph_id": 1, "text": "", "cells": [
            {"row": 0, "col": 0, "text": "Wow!<a href=\"http://evil/x.png\">x</a>"},
            {"row": 0, "col": 1, "text": "$a!$<a href=\"http://evil/x.png\">x</a>"}]}]}},
    # page 1e300 is read as a number: its 301 digits made an XLSX sheet name Excel refuses
    {"code": 200, "message": "ok", "result": {"pages": [], "detail": [
        {"type": "table", "page_id": 1e300, "paragraph_id": 1, "text": "",
         "cells": [{"row": 0, "col": 0, "text": "x"}]}]}},
]


def _examples(found: list[Any]):  # type: ignore[no-untyped-def]
    def add(test):  # type: ignore[no-untyped-def]
        for value in reversed(found):
            test = example(value, {})(test)
        return test
    return add


OPTIONS = st.fixed_dictionaries({}, optional={
    "images": st.sampled_from(["embed", "files", "none"]), "furniture": st.booleans(),
    "page_breaks": st.booleans(), "docx_toc": st.booleans(),
    "xlsx_single_sheet": st.booleans(), "xlsx_text": st.booleans()})
# Deterministic for CI; no shrinking: each example converts to five formats and reads them
# back, so shrinking a failure takes minutes; the failure is shown as it was generated.
HOSTILE = settings(max_examples=40, deadline=4000, derandomize=True, database=None,
                   phases=(Phase.explicit, Phase.generate),
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@HOSTILE
@given(envelope(), OPTIONS)
@_examples(FOUND)
def test_hostile_elements_convert_to_safe_outputs(doc, options):
    run(doc, options)


@HOSTILE
@given(legacy(), OPTIONS)
@_examples(FOUND_LEGACY)
def test_hostile_legacy_results_convert_to_safe_outputs(doc, options):
    run(doc, options)


@settings(HOSTILE, max_examples=15)
@given(st.one_of(envelope(), legacy()))
def test_hostile_pictures_under_images_url(doc):
    run(doc, {"images": "url"})


BLOCKS = {"h1", "h2", "h3", "h4", "h5", "h6", "hr", "blockquote", "ul", "ol", "li", "pre",
          "table", "dl", "div"}


@settings(HOSTILE, max_examples=25)
@given(st.lists(TEXT.filter(lambda t: "%" not in t), min_size=1, max_size=4))
@example(["Revenue\n--", "a\n---\nb"])  # found: a heading and a rule
@example(["x $a\n# b$ y", "x $a\n    b\n- c$ y"])  # found: a formula's lines as blocks
def test_hostile_paragraphs_stay_paragraphs(texts):
    """Body text renders as paragraphs of its own text: whatever a line starts with (``#``,
    ``>``, ``-``, ``1.``, ``---`` under a line, ``    ``), it makes no heading, quote, list,
    rule or code block, and a formula's line breaks neither.  (A ``%`` comment in a formula
    keeps its line break: joining the lines would comment out the next one.)"""
    elements = [{"element_id": f"e{i}", "type": "NarrativeText", "page_number": 1, "text": t}
                for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.json"
        path.write_text(json.dumps(elements, ensure_ascii=True), encoding="ascii")
        convert(path, "md", tmp)
        text = (Path(tmp) / "input.md").read_text(encoding="utf-8")
    for renderer, markup in rendered(text).items():
        root = lxml.html.fragment_fromstring(markup, create_parent="div") if markup.strip() \
            else etree.Element("div")
        blocks = sorted({node.tag for node in root.iterdescendants() if node.tag in BLOCKS})
        assert not blocks, f"{renderer} made {blocks} of body text: {text!r}"


@pytest.mark.parametrize("snippet", ["<script>x</script>", "<img src=x onerror=alert(1)>",
                                     "[x](javascript:alert(1))", "![](http://evil/x.png)"])
def test_the_checks_see_active_content(snippet):
    """The checker itself: Markdown holding the raw snippet is caught in some renderer."""
    found = []
    for markup in rendered(f"a {snippet}\n").values():
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
        found.extend(active_content(root, images="embed", stem="input"))
    assert found
