"""The streaming reader: shapes, encodings, head and tail fields, markdown skipping, errors."""

from __future__ import annotations

import codecs
import gzip
import io
import json
from collections import Counter

import oracle
import pytest
from conftest import LEGACY_RESULTS, REAL, SAMPLE, element, envelope
from hypothesis import given, settings
from hypothesis import strategies as st

from xparse_convert import ApiError, InputError, Reader, iter_elements
from xparse_convert.reader import CHUNK, _MarkdownSkipper


def read_all(src, **kw):
    with Reader(src, **kw) as reader:
        elements = list(reader.elements())
        return reader, elements


# -- the bundled sample ---------------------------------------------------------------------
def test_sample_elements_in_order_with_head_and_tail_fields(sample_data):
    reader, elements = read_all(SAMPLE)
    source = sample_data["data"]["elements"]
    assert [e.id for e in elements] == [e["element_id"] for e in source]
    assert [e.index for e in elements] == list(range(len(source)))
    assert Counter(e.type for e in elements) == Counter(e["type"] for e in source)
    info = reader.info
    assert info.shape == "envelope"
    assert info.schema_version == "1.3.0"
    assert info.filename == "galaxy-q3-report.pdf"
    # pages, title_tree and summary come after the element list: known at the end
    assert sorted(info.pages) == [1, 2, 3, 4]
    assert info.pages[1].width == 1191
    assert info.title_tree == sample_data["data"]["title_tree"]
    assert info.summary == sample_data["data"]["summary"]
    assert not reader.diag


def test_raw_dict_is_kept_whole(sample_data):
    _, elements = read_all(SAMPLE)
    assert [e.raw for e in elements] == sample_data["data"]["elements"]


def test_engine_markdown_is_available(sample_data):
    reader, _ = read_all(SAMPLE, want_markdown=True)
    assert reader.markdown() == sample_data["data"]["markdown"]
    reader, _ = read_all(SAMPLE)  # short enough to stay in the stream: known anyway
    assert reader.markdown() == sample_data["data"]["markdown"]


# -- shapes -----------------------------------------------------------------------------------
def test_bare_data_object_and_bare_list(write_json):
    els = [element("a"), element("b", "Title")]
    reader, elements = read_all(write_json(envelope(els)["data"]))
    assert reader.info.shape == "data" and [e.id for e in elements] == ["a", "b"]
    reader, elements = read_all(write_json(els))
    assert reader.info.shape == "elements" and [e.type for e in elements] == ["NarrativeText",
                                                                                "Title"]


def test_key_order_is_free(write_json):
    doc = {"data": {"elements": [element("a")], "metadata": {"filename": "late.pdf"},
                    "schema_version": "1.3.1", "pages": [{"page_number": 1, "page_width": 10,
                                                          "page_height": 20}]},
           "message": "ok", "code": 200}
    with Reader(write_json(doc)) as reader:
        assert reader.info.filename is None  # not known before the elements
        assert reader.info.title == "input"  # falls back to the input's name
        list(reader.elements())
        assert reader.info.filename == "late.pdf"
        assert reader.info.schema_version == "1.3.1"
        assert reader.info.pages[1].height == 20


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_legacy_results_map_onto_the_model(path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    reader, elements = read_all(path)
    detail = oracle.element_list(raw)[0]
    assert reader.info.shape.startswith("legacy")
    assert len(elements) == len(detail)
    assert len({e.id for e in elements}) == len(elements)  # ids unique across pages
    for el, item in zip(elements, detail):
        assert el.page == item["page_id"]
        if item.get("outline_level", -1) >= 0 and item["type"] == "paragraph" \
                and item.get("content") != 1 and item.get("sub_type") not in (
                    "table_title", "image_title", "header", "footer"):
            assert el.type == "Title" and el.depth == item["outline_level"]
        if item["type"] == "table":
            assert el.type == "Table"
        if el.coordinates is not None:
            assert el.coord_unit == "normalized"
            assert all(-0.01 <= v <= 1.01 for v in el.coordinates)


def test_legacy_cells_become_one_based_and_captions_link():
    getpos = REAL / "legacy-pdf2md_textin-docs_parse-getpos_parse-result.json"
    raw = json.loads(getpos.read_text(encoding="utf-8"))
    _, elements = read_all(getpos)
    first = next(i for i, d in enumerate(raw["result"]["detail"]) if d["type"] == "table")
    src_cells = raw["result"]["detail"][first]["cells"]
    cells = elements[first].raw["table_structure"]["cells"]
    assert min(c["row"] for c in cells) == 1 and min(c["col"] for c in cells) == 1
    assert [(c["row"], c["col"]) for c in cells] == [(s["row"] + 1, s["col"] + 1)
                                                      for s in src_cells]
    table = next(e for e in elements if e.id == "p1-23")
    assert table.ref_id == "p1-20"
    assert next(e for e in elements if e.id == "p1-20").type == "TableCaption"


def test_legacy_images_come_from_page_data():
    _, elements = read_all(REAL / "legacy-pdf2md-v3.6.8_parsex-sdk_example.json")
    images = [e for e in elements if e.type == "Image"]
    assert len(images) == 10
    sniffed = [e.image.info() for e in images]
    assert all(info is not None and info.format == "JPEG" for info in sniffed)


def test_legacy_zero_based_page_ids_are_aligned():
    reader, elements = read_all(REAL / "legacy-pdf2md-v3.6.0_parsex-sdk_15.json")
    assert sorted(reader.info.pages) == [1, 2, 3]
    assert {e.page for e in elements} == {1, 2, 3}


def test_legacy_detail_before_pages_from_stdin_keeps_pixels():
    data = (REAL / "legacy-pdf2md-v3.6.0_parsex-sdk_15.json").read_bytes()
    reader, elements = read_all(io.BytesIO(data), name="piped")
    assert elements[0].coord_unit == "pixel"
    assert "legacy-pages" in reader.diag.groups
    assert sorted(reader.info.pages) == [1, 2, 3]  # known at the end all the same


# -- encodings and containers -------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom",
                                      "gzip"])
def test_encodings_and_gzip(tmp_path, sample_data, encoding):
    text = json.dumps(sample_data, ensure_ascii=False)
    if encoding == "gzip":
        data = gzip.compress(text.encode())
        path = tmp_path / "r.json.gz"
    else:
        if encoding == "utf-16-le-bom":
            data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
        elif encoding == "utf-16-be-bom":
            data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
        else:
            data = text.encode(encoding)
        path = tmp_path / "r.json"
    path.write_bytes(data)
    reader, elements = read_all(path, want_markdown=True)
    assert reader.source.stem == "r"
    assert [e.raw for e in elements] == sample_data["data"]["elements"]
    assert reader.markdown() == sample_data["data"]["markdown"]
    assert sorted(reader.info.pages) == [1, 2, 3, 4]


def test_binary_file_object(sample_data):
    data = json.dumps(sample_data).encode()
    elements = list(iter_elements(io.BytesIO(data), name="mem"))
    assert len(elements) == len(sample_data["data"]["elements"])


# -- the markdown skipper -----------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(markdown=st.text(alphabet=st.sampled_from(list('ab"\\\n中}] {"markdown":')),
                        max_size=300),
       chunk=st.integers(min_value=1, max_value=40))
def test_skipper_cuts_long_markdown_and_keeps_short(markdown, chunk):
    import xparse_convert.reader as reader_module

    doc = {"data": {"markdown": markdown, "elements": [
        {"text": 'x"markdown": "y', "metadata": {"markdown": "tiny"}}]}}
    raw = json.dumps(doc, ensure_ascii=False).encode()
    original, reader_module.SMALL_VALUE = reader_module.SMALL_VALUE, 16
    try:
        skipper = _MarkdownSkipper(io.BytesIO(raw), capture=True)
        out = b""
        while part := skipper.read_chunk(chunk):
            out += part
    finally:
        reader_module.SMALL_VALUE = original
    filtered = json.loads(out)
    escaped = len(json.dumps(markdown, ensure_ascii=False).encode()) - 2
    if escaped > 16:
        assert filtered["data"]["markdown"] == "" and skipper.markdown() == markdown
    else:
        assert filtered == doc and skipper.markdown() is None
    assert filtered["data"]["elements"] == doc["data"]["elements"]  # lossless


def test_huge_markdown_costs_no_memory_blowup(tmp_path):
    markdown = ("| a | b |\n" * 300_000) + 'tail "quoted" \\ end'
    doc = envelope([element("a")], markdown=markdown)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    reader, elements = read_all(path, want_markdown=True)
    assert len(elements) == 1
    assert reader.markdown() == markdown
    assert len(markdown) > 2 * CHUNK


def test_an_element_markdown_field_cut_with_the_document_one_is_said(tmp_path):
    # the skipper cuts every long "markdown" value; an element's own is not lost silently
    for after in (False, True):  # the document's markdown before the elements, and after
        doc = envelope([element("a", markdown="m" * 70_000), element("b", markdown="short")],
                       markdown="# doc\n" + "x" * 70_000)
        if after:
            doc["data"]["markdown"] = doc["data"].pop("markdown")
        path = tmp_path / f"cut{after}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        reader, elements = read_all(path)
        assert [e.raw.get("markdown") for e in elements] == ["", "short"]
        assert "markdown-cut" in reader.diag.groups
        assert any("an element's own markdown field" in w for w in reader.diag.lines())


# -- the tail scan ----------------------------------------------------------------------------
def test_tail_found_past_tricky_strings_and_nested_lists(write_json):
    els = [element("a", text='ends with ]} and "quotes" \\ and ], "pages": [1]}}')]
    doc = envelope(els, pages=[{"page_number": 1, "page_width": 5, "page_height": 7}],
                   title_tree=[{"title": "x ]", "children": [[]]}],
                   summary={"elements": [1, 2], "duration_ms": 3})
    doc["trailer"] = {"data": {"elements": []}}
    reader, elements = read_all(write_json(doc))
    assert elements[0].text == els[0]["text"]
    assert reader.info.pages[1].width == 5
    assert reader.info.summary == {"elements": [1, 2], "duration_ms": 3}
    assert reader.info.title_tree == [{"title": "x ]", "children": [[]]}]
    assert not reader.diag


def test_tail_after_a_long_element_list(tmp_path):
    els = [element(f"e{i}", text="x" * 200 + "]}") for i in range(12_000)]
    doc = envelope(els, summary={"duration_ms": 42})
    path = tmp_path / "long.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert path.stat().st_size > 2 * CHUNK
    reader, elements = read_all(path)
    assert len(elements) == 12_000
    assert reader.info.summary == {"duration_ms": 42}


def test_empty_element_list_with_tail(write_json):
    reader, elements = read_all(write_json(envelope([], summary={"duration_ms": 1})))
    assert elements == []
    assert reader.info.summary == {"duration_ms": 1}


# -- tolerance ----------------------------------------------------------------------------------
def test_bad_entries_are_kept_or_skipped_with_warnings(write_json):
    els = [
        "not an object",
        element("a", page="7"),
        {"element_id": 5, "type": "button", "text": 12, "page_number": None},
        {"type": None, "text": None},
        element("b", text="lone \ud800 surrogate"),
        element("c", metadata={"category_depth": "2"}),
    ]
    data = json.dumps(envelope(els)).encode()
    reader, elements = read_all(io.BytesIO(data), name="bad")
    assert [e.id for e in elements] == ["a", "5", "#3", "b", "c"]
    assert elements[0].page == 7
    assert elements[1].type == "button" and elements[1].text == "12"
    assert elements[2].type == "UncategorizedText" and elements[2].text == ""
    assert elements[3].text == "lone \ufffd surrogate"
    assert elements[4].depth == 2
    kinds = set(reader.diag.groups)
    assert {"bad-element", "field-type", "unknown-type", "missing-id", "text-cleaned"} <= kinds


@settings(max_examples=80, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(["a", "\\", "\ud83d", "\ude00", "\ud800",
                                              "\udc00", "\U0001f600", '"', "中"]), max_size=30),
       chunk=st.integers(min_value=1, max_value=20))
def test_lone_surrogate_escapes_become_replacement_characters(text, chunk):
    raw = json.dumps([{"element_id": "a", "type": "NarrativeText", "text": text}]).encode()
    skipper = _MarkdownSkipper(io.BytesIO(raw), capture=False)
    out = b""
    while part := skipper.read_chunk(chunk):
        out += part
    expected = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    expected = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in expected)
    decoded = json.loads(out)[0]["text"]
    assert decoded == expected


# -- errors ---------------------------------------------------------------------------------
def test_api_error_envelope_names_code_meaning_and_location(write_json):
    doc = {"code": 40004, "message": "参数错误", "location": {"stage": "parse",
                                                           "page_number": 3,
                                                           "element_id": "el_045"}}
    with pytest.raises(ApiError) as info:
        Reader(write_json(doc))
    err = info.value
    assert err.code == 40004
    assert "40004" in err.message and "invalid parameters" in err.message
    assert err.where == "stage parse, page_number 3, element_id el_045"


def test_partial_result_converts_with_a_warning(write_json):
    doc = envelope([element("a")])
    doc["code"] = 50207
    reader, elements = read_all(write_json(doc))
    assert len(elements) == 1 and reader.info.partial
    assert "partial" in reader.diag.groups


def test_error_code_after_the_data_is_still_an_error(write_json):
    doc = {"data": {"elements": [element("a")]}, "code": 500, "message": "boom"}
    with Reader(write_json(doc)) as reader, pytest.raises(ApiError, match="internal server"):
        list(reader.elements())


@pytest.mark.parametrize("payload,where,what", [
    (b'"just a string"', "byte 0", "top level is a string"),
    (b"42", "byte 0", "top level is a number"),
    (b"", "byte 0", "empty"),
    (b'{"code": 200, "data": {"markdown": "x"}}', None, "no element list"),
])
def test_wrong_shapes(write_json, payload, where, what):
    with pytest.raises(InputError) as info:
        Reader(write_json(payload))
    assert what in info.value.message
    assert info.value.where == where


def test_truncated_file_names_the_byte(write_json, sample_data):
    data = json.dumps(sample_data).encode()
    cut = data[: len(data) // 2]
    with Reader(write_json(cut)) as reader, pytest.raises(InputError) as info:
        list(reader.elements())
    assert "ends too early" in info.value.message
    assert info.value.where == f"byte {len(cut)}"


def test_malformed_json_names_the_exact_byte(write_json):
    good = json.dumps(envelope([element("a"), element("b")]))
    bad_at = good.index('"b"')
    data = (good[:bad_at] + "@" + good[bad_at + 1:]).encode()
    with Reader(write_json(data)) as reader, pytest.raises(InputError) as info:
        list(reader.elements())
    assert info.value.where == f"byte {bad_at}"
    assert "malformed JSON" in info.value.message


def test_truncated_gzip_is_a_clear_error(tmp_path, sample_data):
    data = gzip.compress(json.dumps(sample_data).encode())
    for cut in (10, len(data) // 2, len(data) - 8):
        path = tmp_path / f"cut{cut}.json.gz"
        path.write_bytes(data[:cut])
        with pytest.raises(InputError) as info:
            read_all(path)
        assert "truncated" in info.value.message or "ends too early" in info.value.message


def test_utf16_with_a_raw_lone_surrogate(tmp_path):
    text = json.dumps([{"element_id": "a", "type": "NarrativeText", "text": "x\ud800y"}],
                      ensure_ascii=False)
    path = tmp_path / "u16.json"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le", "surrogatepass"))
    _, elements = read_all(path)
    assert elements[0].text == "x\ufffdy"


def test_odd_digit_strings_are_not_numbers(write_json):
    doc = envelope([element("a", page="²"), element("b", page="9" * 5000)])
    reader, elements = read_all(write_json(doc))
    assert [e.page for e in elements] == [None, None]
    assert reader.diag.groups["field-type"].count == 2


def test_integers_beyond_64_bits_are_exact_in_elements_and_refused_in_document_fields(
        write_json):
    huge = 10 ** 30
    with Reader(write_json(envelope([element("a", metadata={"n": huge})]))) as reader:
        assert [e.raw["metadata"]["n"] for e in reader.elements()] == [huge]
    before = envelope([element("a")], summary={"n": huge})
    after = {"code": 200, "data": {"elements": [element("a")], "summary": {"n": huge}}}
    for doc in (before, after):
        data = json.dumps(doc).encode()
        with pytest.raises(InputError) as info, Reader(write_json(data)) as reader:
            list(reader.elements())
        assert "more than 64 bits" in info.value.message
        at = data.index(str(huge).encode())
        # yajl's context line puts its caret at the number or the byte before it
        assert info.value.where in (f"byte {at}", f"byte {at - 1}")
