"""JSONL: one lossless line per element with its document context; cell rows on request."""

from __future__ import annotations

import json

import oracle
import pytest
from conftest import LEGACY_RESULTS, SAMPLE, element, envelope

from xparse_convert import convert, iter_tables
from xparse_convert.writers.jsonl import LINE_SCHEMA

CONTEXT = {"_schema", "_input", "_file_id", "_file_name", "_schema_version", "_index"}


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sample_lines_are_the_elements_plus_context(tmp_path, sample_data):
    report = convert(SAMPLE, "jsonl", tmp_path)
    out = lines(tmp_path / "report.jsonl")
    source = sample_data["data"]["elements"]
    assert report.outputs == {"jsonl": str(tmp_path / "report.jsonl")}
    assert len(out) == len(source) == report.elements
    for i, (line, original) in enumerate(zip(out, source)):
        assert {k: v for k, v in line.items() if k not in CONTEXT} == original
        assert line["_index"] == i
        assert line["_schema"] == LINE_SCHEMA
        assert line["_input"] == "report"
        assert line["_file_id"] == sample_data["data"]["file_id"]
        assert line["_file_name"] == "galaxy-q3-report.pdf"
        assert line["_schema_version"] == "1.3.0"


def test_output_is_byte_identical_across_runs(tmp_path):
    convert(SAMPLE, "jsonl", tmp_path / "a")
    convert(SAMPLE, "jsonl", tmp_path / "b")
    assert (tmp_path / "a" / "report.jsonl").read_bytes() == \
        (tmp_path / "b" / "report.jsonl").read_bytes()


def test_drop_heavy_fields(tmp_path, sample_data):
    convert(SAMPLE, "jsonl", tmp_path, {"jsonl_drop": "base64,char_details"})
    text = (tmp_path / "report.jsonl").read_text(encoding="utf-8")
    assert '"base64"' not in text and '"char_details"' not in text
    image = next(line for line in lines(tmp_path / "report.jsonl") if line["type"] == "Image")
    assert image["image_data"]["image_url"].startswith("https://")


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_legacy_results_give_the_mapped_shape(tmp_path, path):
    convert(path, "jsonl", tmp_path)
    out = lines(next(tmp_path.glob("*.jsonl")))
    detail = oracle.element_list(oracle.load(path))[0]
    assert len(out) == len(detail)
    for line, item in zip(out, detail):
        assert line["element_id"] == f"p{item['page_id']}-{item['paragraph_id']}"
        assert line["page_number"] == item["page_id"]
        assert line["text"] == item.get("text", "")
        assert line["metadata"]["legacy"]["paragraph_id"] == item["paragraph_id"]
        assert line["_schema_version"] is None


def test_cell_rows_cover_every_logical_table(tmp_path):
    convert(SAMPLE, "jsonl", tmp_path, {"jsonl_cells": True})
    rows = lines(tmp_path / "report.jsonl")
    tables = list(iter_tables(SAMPLE))
    assert len(rows) == sum(len(t.cells) for t in tables)
    assert {r["table_id"] for r in rows} == {"el_011", "el_025"}
    chain = [r for r in rows if r["table_id"] == "el_025"]
    assert {r["page"] for r in chain} == {2, 3, 4}
    total = next(r for r in chain if r["text"] == "合计 Total")
    assert (total["row"], total["col"], total["col_span"]) == (37, 0, 2)


def test_lone_surrogates_give_valid_lines(write_json, tmp_path):
    doc = envelope([element("a", text="x\udc00y")])
    report = convert(write_json(json.dumps(doc).encode()), "jsonl", tmp_path / "out")
    line = lines(tmp_path / "out" / "input.jsonl")[0]
    assert line["text"] == "x\ufffdy"
    assert report.warning_count == 1


def test_a_number_beyond_64_bits_is_kept_exactly(write_json, tmp_path):
    doc = envelope([element("a", metadata={"huge": 10**30, "low": -(10**19)})])
    convert(write_json(doc), "jsonl", tmp_path / "out")
    line = (tmp_path / "out" / "input.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert '"huge":1000000000000000000000000000000' in line
    assert json.loads(line)["metadata"]["low"] == -(10**19)


def test_beside_a_number_beyond_64_bits_every_other_value_is_kept(write_json, tmp_path):
    # the standard library writes such a line: control characters in values and keys are
    # escaped as orjson escapes them, never dropped (two keys became one when they were)
    extra = {"n": 2**70, "s": "a\x01b", "k": {"x\x02": 1, "x": 2}}
    doc = envelope([element("a", **extra)])
    convert(write_json(json.dumps(doc).encode()), "jsonl", tmp_path / "out")
    line = lines(tmp_path / "out" / "input.jsonl")[0]
    assert {key: line[key] for key in extra} == extra
