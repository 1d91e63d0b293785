"""Stages: filters, continuation chains, captions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SAMPLE, element, envelope, structure
from openpyxl import load_workbook

from xparse_convert import Diagnostics, Reader, convert, iter_elements
from xparse_convert.reader import make_element
from xparse_convert.stages import Dropped, PageSet, logical, select

CLI = [sys.executable, "-m", "xparse_convert.cli"]


def cli(args, seconds: float = 60) -> subprocess.CompletedProcess:
    """The command line; fails the test when it runs past ``seconds``."""
    try:
        return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                              timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the conversion ran past {seconds} s")


def elements(*raws):
    diag = Diagnostics("t")
    return [make_element(raw, i, diag) for i, raw in enumerate(raws)]


def run(*raws, dropped=None):
    diag = Diagnostics("t")
    out = list(logical(elements(*raws), diag, dropped))
    return out, diag


def table(id_, rows, page=1, **meta):
    cells = [(r + 1, c + 1, 1, 1, t) for r, row in enumerate(rows) for c, t in enumerate(row)]
    return element(id_, "Table", "", page, table_structure=structure(cells),
                   metadata=meta)


def cont(id_, of, rows, page):
    return table(id_, rows, page, is_continuation=True, continuation_of=of)


def test_page_sets():
    pages = PageSet.parse("1-3, 7,10-")
    assert [p for p in range(1, 13) if p in pages] == [1, 2, 3, 7, 10, 11, 12]
    for bad in ("0", "3-1", "x", ""):
        try:
            PageSet.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_select_filters_and_records_what_it_dropped():
    els = elements(element("a", page=1), element("b", "Header", page=2),
                   element("c", "Title", page=3), element("d", page=None))
    dropped: set[str] = set()
    kept = list(select(els, pages=PageSet.parse("2-"), furniture=False, dropped=dropped))
    assert [e.id for e in kept] == ["c", "d"]
    assert dropped == {"a", "b"}
    kept = list(select(els, types=frozenset({"Title", "Header"})))
    assert [e.id for e in kept] == ["b", "c"]
    kept = list(select(els, exclude_types=frozenset({"Title"})))
    assert [e.id for e in kept] == ["a", "b", "d"]


def test_continuation_chain_is_one_table_with_furniture_after_it():
    out, diag = run(
        table("t1", [["h", "v"], ["a", "1"]], 1),
        element("f1", "Footer", page=1), element("h2", "Header", page=2),
        cont("t2", "t1", [["h", "v"], ["b", "2"]], 2),
        element("n2", "PageNumber", page=2),
        cont("t3", "t2", [["c", "3"]], 3),
        element("p", text="after", page=3),
    )
    assert [e.id for e in out] == ["t1", "f1", "h2", "n2", "p"]
    stitched = out[0]
    assert [p.id for p in stitched.parts] == ["t1", "t2", "t3"]
    assert stitched.table.text_grid() == [["h", "v"], ["a", "1"], ["b", "2"], ["c", "3"]]
    assert stitched.table.row_pages == [1, 1, 2, 3]
    assert not diag


def test_text_split_across_pages_is_joined():
    out, _ = run(element("a", text="The quick", page=1), element("f", "Footer", page=1),
                 element("b", text="brown fox", page=2,
                         metadata={"is_continuation": True, "continuation_of": "a"}),
                 element("c", text="中文段落", page=2),
                 element("d", text="继续", page=3,
                         metadata={"is_continuation": True, "continuation_of": "c"}))
    assert [(e.id, e.text) for e in out] == [("a", "The quick brown fox"), ("f", "text"),
                                             ("c", "中文段落继续")]


def test_continuation_of_nothing_open_warns_and_stands_alone():
    out, diag = run(table("t1", [["a"]]), element("x"), cont("t2", "t1", [["b"]], 2))
    assert [e.id for e in out] == ["t1", "x", "t2"]
    assert diag.groups["continuation"].count == 1
    # a chain cut by --pages is not a warning
    out, diag = run(cont("t2", "t1", [["b"]], 2), cont("t3", "t2", [["c"]], 3),
                    dropped={"t1"})
    assert [e.id for e in out] == ["t2"] and out[0].table.n_rows == 2
    assert not diag


def test_held_furniture_is_bounded():
    many = [element(f"f{i}", "Footer") for i in range(100)]
    out, _ = run(table("t1", [["a"]]), *many, cont("t2", "t1", [["b"]], 2))
    assert [e.id for e in out][:2] == ["t1", "f0"]
    assert out[-1].id == "t2"  # the chain was closed by the flood: the fragment stands alone


def test_captions_by_reference_in_either_direction():
    out, _ = run(element("c1", "TableCaption", "Table 1", metadata={"ref_element_id": "t1"}),
                 table("t1", [["a"]]),
                 element("i1", "Image", ""),
                 element("p", text="between"),
                 table("t2", [["b"]], ref_element_id="c2"),
                 element("c2", "TableCaption", "Table 2"))
    by_id = {e.id: e for e in out}
    assert "c1" not in by_id and by_id["t1"].caption.id == "c1"
    assert by_id["t2"].caption.id == "c2"
    assert [e.id for e in out] == ["t1", "i1", "p", "t2"]


def test_table_pointing_at_its_caption_and_at_a_title():
    t = table("t1", [["a"]])
    t["metadata"]["ref_element_id"] = "cap"
    out, _ = run(t, element("cap", "TableCaption", "Table 1"))
    assert [e.id for e in out] == ["t1"] and out[0].caption.id == "cap"
    t = table("t2", [["a"]])
    t["metadata"]["ref_element_id"] = "title"
    out, _ = run(element("title", "Title", "Heading"), t)
    assert [e.id for e in out] == ["title", "t2"] and out[1].caption is None


def test_captions_by_adjacency():
    out, _ = run(element("c1", "TableCaption", "above"), table("t1", [["a"]]),
                 element("i1", "Image", ""), element("c2", "FigureCaption", "below"),
                 element("p", text="x"))
    by_id = {e.id: e for e in out}
    assert by_id["t1"].caption.id == "c1" and by_id["i1"].caption.id == "c2"
    assert [e.id for e in out] == ["t1", "i1", "p"]
    # a table caption between two tables goes with the one below it
    out, _ = run(table("t1", [["a"]]), element("c", "TableCaption", "mid"), table("t2", [["b"]]))
    assert out[0].caption is None and out[1].caption.id == "c"
    # a figure caption between two images goes with the one above it
    out, _ = run(element("i1", "Image", ""), element("c", "FigureCaption", "mid"),
                 element("i2", "Image", ""))
    assert out[0].caption.id == "c" and out[1].caption is None
    # kinds must match for adjacency
    out, _ = run(element("c", "FigureCaption", "fig"), table("t1", [["a"]]))
    assert [e.id for e in out] == ["c", "t1"] and out[1].caption is None


def test_sample_logical_document():
    with Reader(SAMPLE) as reader:
        out = list(logical(select(reader.elements(), furniture=False), reader.diag))
    tables = [e for e in out if e.type == "Table"]
    assert [t.id for t in tables] == ["el_011", "el_025"]
    assert (tables[0].table.n_rows, tables[0].table.n_cols) == (6, 6)
    assert (tables[1].table.n_rows, tables[1].table.n_cols) == (38, 4)
    assert tables[1].table.pages == [2, 3, 4]
    assert [t.caption.id for t in tables] == ["el_010", "el_024"]
    image = next(e for e in out if e.type == "Image")
    assert image.caption.id == "el_021"
    assert not any(e.type in ("TableCaption", "FigureCaption") for e in out)
    assert not any(e.type in ("Header", "Footer", "PageNumber") for e in out)


def test_merged_mode_table_rows_know_their_pages():
    """Schema 1.4.0 merged mode: one Table spanning pages, header rows from the layout."""
    cells = [{"row": r, "col": 1, "text": f"r{r}", "role": "header" if r == 1 else "body"}
             for r in range(1, 6)]
    raw = element("t", "Table", "", 2, table_structure={"cells": cells},
                  metadata={"source_regions": [{"page_number": 2, "rows": [1, 3]},
                                               {"page_number": 3, "row_start": 4,
                                                "row_end": 5}]})
    out, _ = run(raw)
    table = out[0].table
    assert table.header_rows == 1
    assert table.row_pages == [2, 2, 2, 3, 3]
    assert table.pages == [2, 3]


def test_no_caption_is_lost_when_two_compete():
    out, _ = run(table("t", [["a"]]), element("c1", "TableCaption", "first"),
                 element("c2", "TableCaption", "second", metadata={"ref_element_id": "t"}),
                 element("p", text="after"))
    assert [e.id for e in out] == ["t", "c1", "p"]
    assert out[0].caption.id == "c2"


def test_a_continuation_too_large_to_join_stands_alone(monkeypatch):
    from xparse_convert import tables

    monkeypatch.setattr(tables, "MAX_GRID_SLOTS", 6)
    out, diag = run(table("t1", [["a", "b"], ["c", "d"]]),
                    cont("t2", "t1", [["e", "f"], ["g", "h"]], 2))
    assert [e.id for e in out] == ["t1", "t2"] and out[0].table.n_rows == 2
    assert "table-too-large" in diag.groups


def _chain(texts: list[str]) -> list[dict]:
    out = []
    for i, text in enumerate(texts):
        meta = {"is_continuation": i > 0}
        if i:
            meta["continuation_of"] = f"p{i - 1}"
        out.append(element(f"p{i}", text=text, page=i + 1, metadata=meta))
    return out


def test_a_continuation_that_repeats_its_head_drops_the_repeat(write_json, tmp_path):
    repeated = "".join(f"Sentence {i} of the repeated passage. " for i in range(30)).strip()
    assert len(repeated) > 800
    doc = envelope(_chain([f"Opening words. {repeated}", f"{repeated} And then it goes on.",
                           "And then it goes on."]))  # the last one repeats all of itself
    report = convert(write_json(doc), ["md", "html"], tmp_path / "o")
    text = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    assert text.count("Sentence 7 of") == 1 and text.count("And then it goes on.") == 1
    assert text.strip() == f"Opening words. {repeated} And then it goes on."
    assert sum("repeat the end" in w for w in report.warnings) == 2


def test_short_overlaps_are_kept(write_json, tmp_path):
    doc = envelope(_chain(["It ends with the word", "the word starts the next page."]))
    convert(write_json(doc), "md", tmp_path / "o")
    assert (tmp_path / "o" / "input.md").read_text(encoding="utf-8").strip() == \
        "It ends with the word the word starts the next page."


def test_joined_paragraph_keeps_each_fragments_formula(write_json, tmp_path):
    first = element("p0", text="First $a^2$ and", page=1, objects=[
        {"type": "formula", "text": "$a^2$", "text_range": [6, 11]}])
    second = element("p1", text="then $b^2$.", page=2, objects=[
        {"type": "formula", "text": "$b^2$", "text_range": [5, 10]}],
        metadata={"is_continuation": True, "continuation_of": "p0"})
    elements = list(logical(iter_elements(write_json(envelope([first, second]))),
                            Diagnostics()))
    assert len(elements) == 1
    runs = elements[0].runs()
    assert [r.text for r in runs if r.kind == "math"] == ["a^2", "b^2"]
    assert elements[0].text == "First $a^2$ and then $b^2$."


def test_a_long_text_chain_joins_in_linear_time(tmp_path):
    """20,000 fragments, 23 MB (took 203 s, then the runs of the joined text were still
    merged in quadratic time): one paragraph, in a few seconds."""
    n = 20_000
    body = "x" * 1130
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(envelope(_chain([f"w{i} {body}" for i in range(n)]))))
    assert path.stat().st_size > 23_000_000
    proc = cli([path, "--to", "md", "-o", tmp_path / "out"], seconds=30)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out" / "chain.md").read_text()
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    assert len(paragraphs) == 1
    assert paragraphs[0].startswith(f"w0 {body} w1 ") and paragraphs[0].strip().endswith(
        f"w{n - 1} {body}")


def _sample_chain() -> tuple[dict, list[dict]]:
    """The sample's table chain, read from the raw JSON: its caption and its fragments."""
    raw = json.loads(SAMPLE.read_text(encoding="utf-8"))["data"]["elements"]
    fragments = [e for e in raw if e["type"] == "Table" and e["metadata"].get("is_continuation")]
    by_id = {e["element_id"]: e for e in raw}
    head = by_id[fragments[0]["metadata"]["continuation_of"]]
    caption = next(e for e in raw if e["metadata"].get("ref_element_id") == head["element_id"])
    return caption, [head, *fragments]


def _first_row_texts(markup: str) -> list[str]:
    from lxml import html

    row = html.fromstring(markup).xpath("//tr")[0]
    return [" ".join(td.text_content().split()) for td in row.xpath("td|th")]


def test_a_chain_cut_by_pages_keeps_its_header_decision_and_caption(tmp_path):
    caption, (head, middle, last) = _sample_chain()
    assert (head["page_number"], middle["page_number"], last["page_number"]) == (2, 3, 4)
    # page 4 holds the chain's last fragment: its first row is data, not a header
    proc = cli([SAMPLE, "--pages", "4", "--strict", "--to", "xlsx", "-o", tmp_path / "p4"])
    assert proc.returncode == 0, proc.stderr
    book = load_workbook(tmp_path / "p4" / "report.xlsx")
    index, sheet = book.worksheets[0], book.worksheets[1]
    first = [c.value for c in sheet[1]][:2]
    assert first == _first_row_texts(last["text"])[:2]
    assert not any(c.font.b for c in sheet[1]) and sheet.freeze_panes is None
    assert [c.value for c in index[2]][2] == caption["text"]
    # page 3 holds a fragment that repeats the header: that row is the header
    proc = cli([SAMPLE, "--pages", "3", "--strict", "--to", "xlsx", "-o", tmp_path / "p3"])
    assert proc.returncode == 0, proc.stderr
    book = load_workbook(tmp_path / "p3" / "report.xlsx")
    index, sheet = book.worksheets[0], book.worksheets[1]
    assert _first_row_texts(middle["text"]) == _first_row_texts(head["text"])
    assert [c.value for c in sheet[1]][:4] == _first_row_texts(head["text"])
    assert all(c.font.b for c in sheet[1]) and sheet.freeze_panes == "A2"
    assert [c.value for c in index[2]][2] == caption["text"]


def test_select_remembers_the_cut_chain():
    def els():
        return elements(element("c", "TableCaption", "Table 1", page=1),
                        table("t1", [["h"], ["a"]], 1), element("f", "Footer", page=1),
                        cont("t2", "t1", [["h"], ["b"]], 2), cont("t3", "t2", [["c"]], 3))
    dropped = Dropped()
    kept = list(select(els(), pages=PageSet.parse("3"), dropped=dropped))
    assert [e.id for e in kept] == ["t3"] and dropped == {"c", "t1", "f", "t2"}
    assert (dropped.head.id, dropped.caption.id, dropped.last_id) == ("t1", "c", "t2")
    diag = Diagnostics("t")
    out = list(logical(kept, diag, dropped))
    assert [e.id for e in out] == ["t3"] and not diag
    assert out[0].caption.id == "c" and out[0].table.header_rows == 0
    assert dropped.head is None  # let go once a kept continuation took it up
    # a caption left out by its type stays out
    dropped = Dropped()
    kept = list(select(els(), pages=PageSet.parse("3"),
                       exclude_types=frozenset({"TableCaption"}), dropped=dropped))
    assert dropped.caption is None
    assert list(logical(kept, Diagnostics("t"), dropped))[0].caption is None


def test_kept_fragments_of_a_chain_cut_in_the_middle_join():
    els = elements(table("t1", [["h"], ["a"]], 1), cont("t2", "t1", [["h"], ["b"]], 2),
                   cont("t3", "t2", [["c"]], 3))
    dropped = Dropped()
    diag = Diagnostics("t")
    out = list(logical(select(els, pages=PageSet.parse("1,3"), dropped=dropped), diag, dropped))
    assert [e.id for e in out] == ["t1"] and not diag
    assert out[0].table.text_grid() == [["h"], ["a"], ["c"]]
    assert out[0].table.row_pages == [1, 1, 3]


def test_a_caption_reads_the_same_everywhere(write_json, tmp_path):
    """One rule for a caption's text: whitespace folded to single spaces, stripped; the
    logical stage gives it to the table, and ``iter_tables``, ``info`` and the XLSX index
    all show that."""
    from conftest import element, envelope, structure

    from xparse_convert import inspect, iter_tables

    doc = envelope([
        element("c", "TableCaption", text="  Table 1.\n  Revenue\tby   year "),
        element("t", "Table", text="", table_structure=structure(
            [(1, 1, 1, 1, "year"), (1, 2, 1, 1, "revenue"), (2, 1, 1, 1, "2024"),
             (2, 2, 1, 1, "12")])),
    ])
    src = write_json(doc)
    folded = "Table 1. Revenue by year"
    assert [t.caption for t in iter_tables(src)] == [folded]
    assert [t["caption"] for t in inspect(src)["tables"]] == [folded]
    import openpyxl

    book = openpyxl.load_workbook(convert(src, "xlsx", tmp_path / "o").outputs["xlsx"])
    index = [c.value for row in book["Tables"].iter_rows() for c in row]
    assert folded in index


# -- list runs ---------------------------------------------------------------------------

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _item(id_, text, page, depth=0):
    return element(id_, "ListItem", text, page, metadata={"category_depth": depth})


def _word_numbers(path):
    """(text, number) of each list paragraph as Word counts them (ECMA-376 17.9: a counter per
    numbering instance and level, starting at its start or startOverride, deeper levels
    restarting after a shallower item of the same instance); None for a bullet."""
    import docx

    document = docx.Document(path)
    numbering = document.part.numbering_part.element
    abstracts = {a.get(f"{W}abstractNumId"): a for a in numbering.findall(f"{W}abstractNum")}
    levels = {}  # numId -> {ilvl: [format, start]}
    for num in numbering.findall(f"{W}num"):
        abstract = abstracts[num.find(f"{W}abstractNumId").get(f"{W}val")]
        levels[num.get(f"{W}numId")] = own = {
            int(lvl.get(f"{W}ilvl")): [lvl.find(f"{W}numFmt").get(f"{W}val"),
                                        int(lvl.find(f"{W}start").get(f"{W}val"))]
            for lvl in abstract.findall(f"{W}lvl")}
        for override in num.findall(f"{W}lvlOverride"):
            start = override.find(f"{W}startOverride")
            if start is not None:
                own[int(override.get(f"{W}ilvl"))][1] = int(start.get(f"{W}val"))
    counters: dict = {}
    seen = []
    for paragraph in document.paragraphs:
        num_pr = paragraph._p.find(f"{W}pPr/{W}numPr")
        if num_pr is None:
            continue
        num_id = num_pr.find(f"{W}numId").get(f"{W}val")
        ilvl = int(num_pr.find(f"{W}ilvl").get(f"{W}val"))
        count = counters.setdefault(num_id, {})
        for deeper in [k for k in count if k > ilvl]:
            del count[deeper]
        fmt, start = levels[num_id][ilvl]
        count[ilvl] = count.get(ilvl, start - 1) + 1
        seen.append((paragraph.text, None if fmt == "bullet" else count[ilvl], num_id))
    return seen


def _html_numbers(markup):
    """(text, number) of each list item as a browser numbers it: its ``<ol>``'s start plus
    its place; None in a ``<ul>``."""
    import lxml.html

    page = lxml.html.fromstring(markup)
    seen = []
    for li in page.iter("li"):
        text = "".join(li.xpath("text()")).strip()
        parent = li.getparent()
        ordered = parent.tag == "ol"
        seen.append((text, int(parent.get("start", "1")) + parent.index(li) if ordered else None))
    return seen


@pytest.mark.parametrize("flags", [[], ["--furniture", "--page-breaks"]])
def test_list_numbers_run_across_a_page_in_every_format(tmp_path, write_json, flags):
    from markdown_it import MarkdownIt

    src = write_json(envelope([
        _item("a", "1. alpha", 1), _item("b", "2. beta", 1), _item("c", "a. beta-one", 1, 1),
        element("f", "Footer", "Report page 1", 1), element("h", "Header", "Annual report", 2),
        element("pb", "PageBreak", "", 2),
        _item("d", "b. beta-two", 2, 1), _item("e", "3. gamma", 2), _item("g", "• note", 2, 1),
        _item("i", "4. epsilon", 2),
        element("t", "NarrativeText", "A paragraph ends the list.", 2),
        _item("j", "1. delta", 2), _item("k", "2. zeta", 2),
    ]))
    done = cli([src, "--to", "docx,html,md", "-o", tmp_path, *flags])
    assert done.returncode == 0, done.stderr
    expected = [("alpha", 1), ("beta", 2), ("beta-one", 1), ("beta-two", 2), ("gamma", 3),
                ("note", None), ("epsilon", 4), ("delta", 1), ("zeta", 2)]
    word = _word_numbers(tmp_path / "input.docx")
    assert [(text, number) for text, number, _ in word] == expected
    first_run = {num_id for text, number, num_id in word[:7] if number is not None}
    assert len(first_run) == 1  # one numbering instance for the run across the page
    assert word[7][2] not in first_run  # the next run counts on its own
    html = (tmp_path / "input.html").read_text(encoding="utf-8")
    assert _html_numbers(html) == expected
    assert html.count('class="page-marker"') == 2
    md = (tmp_path / "input.md").read_text(encoding="utf-8")
    assert _html_numbers(f"<div>{MarkdownIt('commonmark').render(md)}</div>") == expected
    if flags:  # the furniture is body text between the items, and the list goes on after it
        assert "Annual report" in md and "Annual report" in html
