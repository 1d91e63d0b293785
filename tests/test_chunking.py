"""Chunks for retrieval, checked against an independent reading of the raw JSON (oracle)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import oracle
import pytest
from conftest import ROOT, SAMPLE, element, envelope, structure

from xparse_convert import convert, iter_chunks
from xparse_convert.chunking import CHUNK_SCHEMA

GENERATE = ROOT / "benchmarks" / "generate.py"
SQUEEZE = re.compile(r"\s+")


def run_chunks(src, out, *args: str, cli: bool = False) -> list[dict]:
    """The chunk lines of ``src`` converted with ``--chunk-*`` ``args`` (in this process
    unless ``cli``: the options are the same either way)."""
    if cli:
        result = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(src), "--to",
                                 "chunks", "-o", str(out), "-q", *args],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    else:
        options = {args[i].lstrip("-").replace("-", "_"): args[i + 1]
                   for i in range(0, len(args), 2)}
        convert(src, "chunks", out, options=options)
    path = out / (src.name[:-5] + ".chunks.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "gen.json"
    subprocess.run([sys.executable, str(GENERATE), "--pages", "24", "-o", str(path)],
                   check=True, timeout=60)
    return path


def chained_text(tmp_path):
    """A paragraph continued over a page break, a long CJK paragraph, and headings."""
    long_zh = "".join(f"第{i}句话讲的是文档切分的规则。" for i in range(60))
    elements = [
        element("t1", "Title", "第一章 总则", 1, metadata={"category_depth": 0}),
        element("p1", text="The first half of a paragraph that runs", page=1,
                coordinates=[0.1, 0.8, 0.9, 0.8, 0.9, 0.9, 0.1, 0.9]),
        element("f1", "Footer", "footer text", 1),
        element("p2", text="over the page break and ends here.", page=2,
                coordinates=[0.1, 0.1, 0.9, 0.1, 0.9, 0.2, 0.1, 0.2],
                metadata={"is_continuation": True, "continuation_of": "p1"}),
        element("t2", "Title", "1.1 范围", 2, metadata={"category_depth": 1}),
        element("p3", text=long_zh, page=2),
        element("t3", "Title", "第二章", 3, metadata={"category_depth": 0}),
        element("p4", text="A short closing paragraph.", page=3),
    ]
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(envelope(elements), ensure_ascii=False), encoding="utf-8")
    return path


def check_against_source(path, chunks, size):
    """The invariants of the issue, read against the raw JSON."""
    sources = {s.id: s for s in oracle.sources(path)}
    seen_in: dict[str, list[int]] = {}
    pieces: dict[str, list[str]] = {}
    for chunk in chunks:
        assert chunk["_schema"] == CHUNK_SCHEMA
        text = chunk["text"]
        assert chunk["size"] <= size or chunk["oversize"], chunk
        if chunk["oversize"]:  # only a table part of one row may be larger
            assert [t["row_end"] - t["row_start"] for t in chunk["tables"]] == [1], chunk
        for span in chunk["spans"]:
            source = sources[span["element_id"]]
            shown = text[span["start"]:span["end"]]
            if span["element_start"] is not None:  # text taken as the element has it
                start = span["element_start"]
                assert source.text[start:start + len(shown)] == shown
            if span["overlap"]:
                assert span["end"] <= chunk["overlap"]
                continue
            seen_in.setdefault(source.id, []).append(chunk["chunk_index"])
            if source.type != "Table":
                pieces.setdefault(source.id, []).append(shown)
        for box in chunk["boxes"]:
            source = sources[box["element_id"]]
            assert (box["page"], box["coordinates"]) == (source.page, source.coordinates)
        assert chunk["pages"] == sorted({sources[i].page for i in chunk["element_ids"]})
        assert set(chunk["element_ids"]) >= {s["element_id"] for s in chunk["spans"]
                                             if not s["overlap"]}
    for source in sources.values():
        if source.type in oracle.FURNITURE or source.type == "PageBreak" or \
                not source.text.strip():
            continue
        where = seen_in.get(source.id)
        assert where, f"{source.id} in no chunk"
        assert sorted(set(where)) == list(range(min(where), max(where) + 1)), source.id
        if source.id in pieces:  # every character of its text, once, in order
            assert SQUEEZE.sub("", "".join(pieces[source.id])) == \
                SQUEEZE.sub("", source.text), source.id
    return seen_in


@pytest.mark.parametrize("args", [(), ("--chunk-size", "300"), ("--chunk-by", "page"),
                                  ("--chunk-by", "size", "--chunk-size", "250",
                                   "--chunk-overlap", "60")])
def test_sample_chunks_hold_every_element_once_with_its_provenance(tmp_path, args):
    chunks = run_chunks(SAMPLE, tmp_path, *args)
    size = int(args[args.index("--chunk-size") + 1]) if "--chunk-size" in args else 2000
    check_against_source(SAMPLE, chunks, size)
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert len({c["chunk_id"] for c in chunks}) == len(chunks)


def header_lines(text: str, header_rows: int, fmt: str) -> list[str]:
    """The header rows a table part starts with (after any caption)."""
    if fmt == "markdown":
        return text[text.index("|"):].splitlines()[:header_rows + 1]  # and the rule
    return text[text.index("<table>"):].splitlines()[1:header_rows + 1]


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_generated_chunks_and_table_parts_repeat_the_header(tmp_path, generated, fmt):
    chunks = run_chunks(generated, tmp_path, "--chunk-size", "800", "--chunk-table-format", fmt)
    check_against_source(generated, chunks, 800)
    expected = {t.cells[0][4] for t in oracle.expected(generated).tables}
    parts: dict[str, list[dict]] = {}
    for chunk in chunks:
        for table in chunk["tables"]:
            parts.setdefault(table["table_id"], []).append((chunk, table))
    split = [p for p in parts.values() if len(p) > 1]
    assert split, "no table was long enough to be split"
    for table_parts in split:
        header_rows = table_parts[0][1]["header_rows"]
        assert header_rows >= 1
        header = header_lines(table_parts[0][0]["text"], header_rows, fmt)
        first_cell = re.split(r"\||<t[hd][^>]*>|</t[hd]>", header[0])
        assert expected & {oracle.visible(c) for c in first_cell}
        rows = []
        for chunk, table in table_parts:
            assert header_lines(chunk["text"], header_rows, fmt) == header
            rows.append((table["row_start"], table["row_end"]))
        # whole rows, each once, in order, from the first body row to the last
        assert rows[0][0] == header_rows
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))


def test_title_strategy_never_crosses_a_top_heading_and_carries_the_path(tmp_path):
    path = chained_text(tmp_path)
    chunks = run_chunks(path, tmp_path, "--chunk-size", "200", "--chunk-max-level", "1")
    check_against_source(path, chunks, 200)
    by_id = {i: c for c in chunks for i in c["element_ids"]}
    # the chain p1+p2 is one text, with each fragment's own offsets and box
    chain = by_id["p1"]
    assert chain is by_id["p2"]
    assert "runs over the page break" in chain["text"]
    assert chain["pages"] == [1, 2]
    assert "footer text" not in "".join(c["text"] for c in chunks)
    # the CJK paragraph is split at sentence ends
    parts = [c for c in chunks if "p3" in c["element_ids"]]
    assert len(parts) > 1
    assert all(c["text"].endswith("。") for c in parts[:-1])
    assert all(c["headings"] == ["第一章 总则", "1.1 范围"] for c in parts[1:])
    # level 1 closes; the second chapter starts its own chunk
    assert by_id["t3"]["text"].startswith("第二章")
    assert by_id["t3"]["headings"] == ["第二章"]
    assert by_id["t3"] is by_id["p4"]


def test_chunk_ids_are_stable_across_runs_and_change_with_the_options(tmp_path):
    first = run_chunks(SAMPLE, tmp_path / "a", "--chunk-size", "500", cli=True)
    again = run_chunks(SAMPLE, tmp_path / "b", "--chunk-size", "500")
    other = run_chunks(SAMPLE, tmp_path / "c", "--chunk-size", "501")
    assert (tmp_path / "a" / "report.chunks.jsonl").read_bytes() == \
        (tmp_path / "b" / "report.chunks.jsonl").read_bytes()
    assert [c["chunk_id"] for c in first] == [c["chunk_id"] for c in again]
    assert not {c["chunk_id"] for c in first} & {c["chunk_id"] for c in other}


def test_spans_and_tables_as_html_where_cells_span(tmp_path):
    cells = [(1, 1, 1, 2, "Head"), (2, 1, 2, 1, "tall"), (2, 2, 1, 1, "a"), (3, 2, 1, 1, "b")]
    elements = [element("tb", "Table", "", 1, table_structure=structure(cells, 3, 2)),
                element("cap", "TableCaption", "Table 1 spans", 1,
                        metadata={"ref_element_id": "tb"})]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(envelope(elements)), encoding="utf-8")
    [chunk] = run_chunks(path, tmp_path)
    assert chunk["text"].startswith("Table 1 spans\n\n<table>")
    assert '<th colspan="2">Head</th>' in chunk["text"]
    assert '<td rowspan="2">tall</td>' in chunk["text"]
    assert chunk["element_ids"] == ["cap", "tb"]
    [md] = run_chunks(path, tmp_path / "md", "--chunk-table-format", "markdown")
    assert "| tall | a |" in md["text"]


def test_headings_go_with_what_follows_and_the_size_still_holds(tmp_path):
    # a paragraph that fits a chunk alone but not beside its heading; a table that must be
    # split; a table whose one body row is larger than a chunk
    heading = "Quarterly results and the outlook for the year ahead"
    words = " ".join(f"word{i}" for i in range(40))  # 269 characters
    long_rows = [(r, c, 1, 1, f"r{r}c{c} value") for r in range(1, 16) for c in (1, 2)]
    wide = [(1, 1, 1, 1, "Name"), (1, 2, 1, 1, "Note"), (2, 1, 1, 1, "n"),
            (2, 2, 1, 1, "x " * 200 + "end")]
    elements = [
        element("t1", "Title", heading, 1, metadata={"category_depth": 0}),
        element("p1", text=words),
        element("t2", "Title", "Balance sheet", 1, metadata={"category_depth": 0}),
        element("tb1", "Table", "", 1, table_structure=structure(long_rows, 15, 2)),
        element("t3", "Title", "Notes", 1, metadata={"category_depth": 0}),
        element("tb2", "Table", "", 1, table_structure=structure(wide, 2, 2)),
    ]
    path = tmp_path / "held.json"
    path.write_text(json.dumps(envelope(elements)), encoding="utf-8")
    chunks = run_chunks(path, tmp_path, "--chunk-size", "300")
    check_against_source(path, chunks, 300)
    assert all(set(c["types"]) != {"Title"} for c in chunks), "a heading alone"
    by_id: dict[str, list[dict]] = {}
    for chunk in chunks:
        for element_id in chunk["element_ids"]:
            by_id.setdefault(element_id, []).append(chunk)
    # the paragraph is cut beside its heading rather than the chunk growing past the size
    first, *rest = by_id["p1"]
    assert first["text"].startswith(heading + "\n\nword0 ") and not first["oversize"]
    assert rest and not any(c["oversize"] for c in rest)
    # the split table's first part carries its heading, every part its header row
    parts = by_id["tb1"]
    assert len(parts) > 1 and parts[0]["text"].startswith("Balance sheet\n\n| r1c1 value |")
    assert all("| r1c1 value | r1c2 value |\n| --- | --- |" in c["text"] for c in parts)
    assert [t["row_start"] for c in parts for t in c["tables"]][0] == 1
    # the row larger than a chunk stays whole, flagged, with its heading and header
    [oversize] = by_id["tb2"]
    assert oversize["oversize"] and oversize["size"] > 300
    assert oversize["text"].startswith("Notes\n\n| Name | Note |\n| --- | --- |\n| n | x x")
    assert oversize["text"].endswith("x end |")


@pytest.mark.parametrize("by", ["title", "size"])
def test_no_chunk_ends_with_a_heading_cut_off_from_its_section(tmp_path, by):
    # closing by the size before what a heading heads moves the heading on with it (under
    # --chunk-by size every close is by the size); the sample's "2.1 收入趋势" and "3.3 开放
    # 平台接口示例" ended chunks whose next one began with their sections
    types = {s.id: s.type for s in oracle.sources(SAMPLE)}
    for size in (300, 800, 2000):
        chunks = run_chunks(SAMPLE, tmp_path / f"{by}{size}", "--chunk-by", by,
                            "--chunk-size", str(size))
        check_against_source(SAMPLE, chunks, size)
        for chunk in chunks[:-1]:
            body = [s["element_id"] for s in chunk["spans"] if not s["overlap"]]
            if {types[i] for i in body} != {"Title"}:  # (a chunk of headings alone is not)
                assert types[body[-1]] != "Title", (size, chunk["text"][-60:])


def test_a_caption_too_long_to_lead_a_part_is_cut_as_text_of_its_own(tmp_path):
    cells = [(r, 1, 1, 1, f"row {r}") for r in (1, 2, 3)]
    caption = "Caption sentence. " * 20
    elements = [element("cap", "TableCaption", caption, 1, metadata={"ref_element_id": "tb"}),
                element("tb", "Table", "", 1, table_structure=structure(cells, 3, 1))]
    path = tmp_path / "caption.json"
    path.write_text(json.dumps(envelope(elements)), encoding="utf-8")
    chunks = run_chunks(path, tmp_path, "--chunk-size", "60")
    check_against_source(path, chunks, 60)
    assert not any(c["oversize"] for c in chunks)  # header and one row are 27 characters
    parts = [c for c in chunks if c["tables"]]
    assert parts and all(c["text"].startswith("| row 1 |\n| --- |") for c in parts)
    assert chunks.index(parts[0]) > 0 and "cap" in chunks[0]["element_ids"]


def test_a_header_cell_spanning_into_the_body_keeps_the_grid(tmp_path):
    # "Amount" makes the header two rows; "EU", in its second row, spans on into the first
    # body row: in the chunk's HTML "100" must still be in the second column
    cells = [(1, 1, 1, 1, "Where"), (1, 2, 2, 1, "Amount"), (2, 1, 2, 1, "EU"),
             (3, 2, 1, 1, "100"), (4, 1, 1, 1, "US"), (4, 2, 1, 1, "200")]
    path = tmp_path / "reach.json"
    path.write_text(json.dumps(envelope([element("tb", "Table", "", 1, table_structure=structure(
        cells, 4, 2))])), encoding="utf-8")
    for size in ("2000", "75"):  # whole, and split so that each part starts at a reach
        chunks = run_chunks(path, tmp_path / size, "--chunk-size", size)
        for chunk in chunks:
            grid = oracle._html_cells(chunk["text"])
            assert grid is not None
            placed = {text: (row, col) for row, col, _, _, text in grid}
            assert placed["Where"] == (0, 0) and placed["Amount"] == (0, 1)
            for text, col in (("100", 1), ("200", 1), ("US", 0)):
                if text in placed:
                    assert placed[text][1] == col, (size, chunk["text"])
            assert all(c + cs <= 2 for _, c, _, cs, _ in grid), chunk["text"]


def test_overlap_never_crosses_a_top_heading_and_header_only_tables_are_cut(tmp_path):
    elements = [
        element("h1", "Title", "Chapter A", 1, metadata={"category_depth": 0}),
        element("p", text="Alpha section text that ends chapter A here."),
        element("h3", "Title", "A minor subheading of chapter A", 1,
                metadata={"category_depth": 2}),
        element("hB", "Title", "Chapter B", 1, metadata={"category_depth": 0}),
        element("q", text="Bravo body."),
        element("tb", "Table", "", 1, table_structure={"cells": [
            {"row": r, "col": 1, "text": "h" * 30, "role": "header"} for r in (1, 2, 3)]}),
    ]
    path = tmp_path / "cross.json"
    path.write_text(json.dumps(envelope(elements)), encoding="utf-8")
    chunks = run_chunks(path, tmp_path, "--chunk-size", "80", "--chunk-overlap", "20")
    check_against_source(path, chunks, 80)
    [chapter_b] = [c for c in chunks if "hB" in c["element_ids"]]
    assert chapter_b["text"].startswith("Chapter B") and chapter_b["overlap"] == 0
    assert not any(s["element_id"] in ("p", "h3") for s in chapter_b["spans"])
    # three header rows of 30 characters at size 80: cut on rows, nothing over the size
    table = [c for c in chunks if "tb" in c["element_ids"]]
    assert len(table) > 1 and not any(c["oversize"] for c in table)


BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def test_offsets_stay_true_where_the_text_holds_characters_nothing_may_carry(tmp_path):
    # a control character and a lone surrogate (both from JSON escapes) before the text a
    # span points at: each becomes U+FFFD in place, so every offset still holds
    elements = [element("p1", text="ab\u0001cd \ud800ef gh."),
                element("p2", text="\u0007second paragraph"),
                element("tb", "Table", "", 1, table_structure=structure(
                    [(1, 1, 1, 1, "x\u0002y"), (1, 2, 1, 1, "z")], 1, 2))]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(envelope(elements)), encoding="ascii")
    [chunk] = run_chunks(path, tmp_path)
    text = chunk["text"]
    assert BAD.search(text) is None
    sources = {s.id: s for s in oracle.sources(path)}
    for span in chunk["spans"]:
        shown = text[span["start"]:span["end"]]
        if span["element_start"] is not None:
            own = sources[span["element_id"]].text
            start = span["element_start"]
            assert shown == BAD.sub("\ufffd", own[start:start + len(shown)]), span
    assert "x\ufffdy" in text and "cd \ufffdef gh." in text


def test_tokens_from_a_tokenizer_built_in_the_test(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = SQUEEZE.split(SAMPLE.read_text(encoding="utf-8"))
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(dict.fromkeys(words))}}
    tok = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    file = tmp_path / "tokenizer.json"
    tok.save(str(file))
    chunks = run_chunks(SAMPLE, tmp_path, "--chunk-tokenizer", str(file), "--chunk-size", "60",
                        cli=True)
    for chunk in chunks:
        tokens = len(tok.encode(chunk["text"], add_special_tokens=False).ids)
        assert chunk["size"] == tokens
        assert tokens <= 60 or chunk["oversize"]
    assert max(len(c["text"]) for c in chunks) > 60  # tokens, not characters, were counted


def test_library_iter_chunks_and_bad_options(tmp_path):
    chunks = list(iter_chunks(SAMPLE, options={"chunk_size": 400}))
    assert chunks == run_chunks(SAMPLE, tmp_path, "--chunk-size", "400")
    with pytest.raises(Exception, match="chunk_overlap"):
        convert(SAMPLE, "chunks", tmp_path, options={"chunk_size": 100, "chunk_overlap": 80})
    result = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(SAMPLE), "--to",
                             "chunks", "-o", str(tmp_path), "--chunk-by", "chapter"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "chunk-by" in result.stderr


def test_streaming_memory_is_bounded(tmp_path):
    """Peak RSS of a chunking run barely grows with the input (measured in the child)."""
    peaks = []
    for pages in (20, 300):
        src = tmp_path / f"g{pages}.json"
        subprocess.run([sys.executable, str(GENERATE), "--pages", str(pages), "-o", str(src)],
                       check=True, timeout=120, capture_output=True)
        code = ("import resource,sys; from xparse_convert import convert; "
                f"convert({str(src)!r}, 'chunks', {str(tmp_path)!r}); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=120)
        peaks.append(int(out.stdout.split()[-1]) / 1024)
    size_ratio = (tmp_path / "g300.json").stat().st_size / (tmp_path / "g20.json").stat().st_size
    assert size_ratio > 10
    assert peaks[1] < peaks[0] + 15, peaks  # MB: flat, not 15x the input
