"""Markdown: regenerated from the logical document, or the engine's own string."""

from __future__ import annotations

import re

import lxml.html
import oracle
import pytest
from conftest import LEGACY_RESULTS, SAMPLE, element, envelope

from xparse_convert import convert, iter_tables


@pytest.fixture
def sample_md(tmp_path):
    convert(SAMPLE, "md", tmp_path)
    return tmp_path / "report.md"


def test_headings_follow_depth(sample_md, sample_data):
    text = sample_md.read_text(encoding="utf-8")
    headings = re.findall(r"^(#+) (.*)$", text, re.M)
    titles = [e for e in sample_data["data"]["elements"] if e["type"] == "Title"]
    assert [len(h) for h, _ in headings] == [t["metadata"]["category_depth"] + 1 for t in titles]
    assert [h for _, h in headings] == [" ".join(t["text"].split()) for t in titles]


def test_order_and_furniture(sample_md, sample_data):
    text = sample_md.read_text(encoding="utf-8")
    els = sample_data["data"]["elements"]
    for kind in ("Header", "Footer"):
        for e in els:
            if e["type"] == kind:
                assert e["text"] not in text
    paragraphs = [e["text"] for e in els if e["type"] == "NarrativeText"]
    positions = [text.find(p.strip()) for p in paragraphs]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


def test_furniture_kept_on_request(tmp_path, sample_data):
    convert(SAMPLE, "md", tmp_path, {"furniture": True})
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    footer = next(e for e in sample_data["data"]["elements"] if e["type"] == "Footer")
    assert footer["text"] in text


def test_lists(sample_md):
    text = sample_md.read_text(encoding="utf-8")
    assert re.search(r"^- 营业收入", text, re.M)
    numbered = re.findall(r"^( *)(\d+)\. ", text, re.M)
    assert [n for _, n in numbered] == ["1", "2", "3"]
    assert re.search(r"^   - 新增 OPC UA", text, re.M)  # nested under item 2


def test_tables_with_spans_are_html_matching_the_grid(sample_md):
    text = sample_md.read_text(encoding="utf-8")
    html_tables = re.findall(r"<table>.*?</table>", text, re.S)
    logical = list(iter_tables(SAMPLE))
    assert len(html_tables) == len(logical) == 2
    for markup, table in zip(html_tables, logical):
        root = lxml.html.fromstring(markup)
        spans = []
        for r, tr in enumerate(root.iter("tr")):
            for td in tr:
                rs, cs = int(td.get("rowspan", 1)), int(td.get("colspan", 1))
                if rs > 1 or cs > 1:
                    spans.append((r, td.text_content(), rs, cs))
        expected = [(c.row, c.text, c.row_span, c.col_span) for c in table.cells if c.is_merged]
        assert spans == expected
        assert len(root.findall(".//tr")) == table.n_rows
    check_tables_against_the_source(SAMPLE, text)


def test_simple_table_is_a_pipe_table(write_json, tmp_path):
    doc = envelope([element("t", "Table", "<table><tr><td>a|b</td><td>c</td></tr>"
                                          "<tr><td>1</td><td>2<br>3</td></tr></table>")])
    convert(write_json(doc), "md", tmp_path / "o")
    text = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    assert "| a\\|b | c |\n|---|---|\n| 1 | 2<br>3 |" in text


def test_image_written_beside_with_relative_link(sample_md):
    text = sample_md.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 1
    target = sample_md.parent / links[0]
    assert target.is_file() and target.read_bytes().startswith(b"\x89PNG")
    assert links[0].startswith("report_files/")


def test_image_modes(tmp_path):
    convert(SAMPLE, "md", tmp_path / "u", {"images": "url"})
    assert "](https://" in (tmp_path / "u" / "report.md").read_text(encoding="utf-8")
    assert not (tmp_path / "u" / "report_files").exists()
    convert(SAMPLE, "md", tmp_path / "e", {"images": "embed"})
    assert "](data:image/png;base64," in (tmp_path / "e" / "report.md").read_text("utf-8")
    convert(SAMPLE, "md", tmp_path / "n", {"images": "none"})
    assert "![" not in (tmp_path / "n" / "report.md").read_text(encoding="utf-8")


def test_formula_and_code(sample_md):
    text = sample_md.read_text(encoding="utf-8")
    assert "$$\n\\text{ROE} = \\frac{\\text{Net income}}{\\text{Equity}}\n$$" in text
    assert re.search(r"^```\n(?:.*\n)+?```$", text, re.M)


def test_captions_sit_with_their_objects(sample_md):
    text = sample_md.read_text(encoding="utf-8")
    caption = text.index("表1 主要会计数据")
    assert caption < text.index("<table>") < caption + 200


def test_engine_source(tmp_path, sample_data):
    convert(SAMPLE, "md", tmp_path, {"md_source": "engine"})
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == \
        sample_data["data"]["markdown"].rstrip("\n") + "\n"


def test_html_in_text_is_not_markup(write_json, tmp_path):
    doc = envelope([element("a", text="<script>alert(1)</script> & <b>x</b>")])
    convert(write_json(doc), "md", tmp_path / "o")
    text = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    assert "<script" not in text and "&lt;script>" in text


def check_tables_against_the_source(path, text):
    """Tables, merged cells and cell texts as a GFM renderer (markdown-it with tables) shows
    them, against the independent reading (``oracle``) of the raw JSON."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").enable("table").render(text)
    page = lxml.html.fromstring(f"<div>{rendered}</div>")
    nodes = list(page.iter("table"))
    expected = oracle.expected(path).tables
    assert len(nodes) == len(expected)
    for node, want in zip(nodes, expected):
        cells = list(node.iter("td", "th"))
        assert sum(1 for td in cells if int(td.get("rowspan", 1)) > 1 or
                   int(td.get("colspan", 1)) > 1) == want.merged
        shown = {oracle.loose(" ".join(td.text_content().split())) for td in cells}
        assert shown - {""} == want.loose_texts


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_legacy_results(tmp_path, path):
    convert(path, "md", tmp_path)
    text = next(tmp_path.glob("*.md")).read_text(encoding="utf-8")
    tables = list(iter_tables(path))
    assert text.count("<table>") + text.count("\n|---") == len(tables)
    assert len(re.findall(r"^#{1,6} ", text, re.M)) == len(oracle.expected(path).titles)
    check_tables_against_the_source(path, text)


def test_page_breaks_once_per_page(tmp_path):
    convert(SAMPLE, "md", tmp_path, {"page_breaks": True, "furniture": True})
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert text.count("\n---\n") == 3  # four source pages; the PageBreak element folds in
    convert(SAMPLE, "md", tmp_path, {"page_breaks": True})
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert text.count("\n---\n") == 2  # page 3 holds only the middle of the stitched table


def test_pictures_in_table_cells(write_json, tmp_path):
    import base64
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (4, 3), "blue").save(png, format="PNG")
    data = base64.b64encode(png.getvalue()).decode()
    plain = element("t1", "Table", "", table_structure={"cells": [
        {"row": 1, "col": 1, "text": "logo"},
        {"row": 2, "col": 1, "text": "", "image_datas": [{"base64": data}]}]})
    spanned = element("t2", "Table", "", table_structure={"cells": [
        {"row": 1, "col": 1, "col_span": 2, "text": "head"},
        {"row": 2, "col": 1, "text": "x", "image_data": {"image_url": "https://e.com/a.png"}},
        {"row": 2, "col": 2, "text": "y"}]})
    convert(write_json(envelope([plain, spanned])), "md", tmp_path / "o")
    text = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[\]\((input_files/[^)]+)\)", text)
    assert len(links) == 1 and (tmp_path / "o" / links[0]).is_file()
    # a picture known only by its URL is a link under --images files, never loaded on open
    assert '<td>x <a href="https://e.com/a.png">Image</a></td>' in text
    assert "<img src=\"https:" not in text


def test_one_row_table_is_a_header_row(write_json, tmp_path):
    doc = envelope([element("t", "Table", "", table_structure={"cells": [
        {"row": 1, "col": 1, "text": "only"}, {"row": 1, "col": 2, "text": "row"}]})])
    convert(write_json(doc), "md", tmp_path / "o")
    text = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    assert text == "| only | row |\n|---|---|\n"


def test_missing_picture_caption_is_not_repeated(write_json, tmp_path):
    doc = envelope([element("i", "Image", "", metadata={"ref_element_id": "c"}),
                    element("c", "FigureCaption", "Figure 1. Revenue")])
    convert(write_json(doc), "md", tmp_path / "o")
    text = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    assert text.count("Figure 1. Revenue") == 1 and "not available" in text
