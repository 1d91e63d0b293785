"""Heavy fields no writer reads are cut from the bytes unread, and that never changes an
output: every format, byte for byte, with and without the skip, on every test input."""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REAL, SAMPLE, element, envelope
from PIL import Image

from xparse_convert import convert, iter_elements, iter_tables
from xparse_convert.element_batches import without_fields
from xparse_convert.writers import get
from xparse_convert.writers.base import unread_fields


def _png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), "blue").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _chars(text: str) -> list[dict[str, Any]]:
    return [{"char": c, "confidence": 0.5 + i % 5 / 10,
             "position": [i, 0, i + 1, 0, i + 1, 1, i, 1]} for i, c in enumerate(text)]


def _heavy_result() -> dict[str, Any]:
    """Char details in elements and cells (one mentioning the key in its text), pictures
    with base64 data, a base64 key as the last member of its object."""
    cells = [{"row": 1, "col": 1, "text": "a", "char_details": _chars("a")},
             {"row": 1, "col": 2, "text": '"char_details": [', "char_details": _chars("b")}]
    return envelope([
        element("t", "Title", "Heading", char_details=_chars("Heading")),
        element("p", text='says "char_details":[1,2] and \\"base64\\"', char_details=[]),
        element("tb", "Table", "", table_structure={"rows": 1, "cols": 2, "cells": cells}),
        element("im", "Image", "", image_data={"mime_type": "image/png", "base64": _png()}),
        element("im2", "Image", "", image_data={"base64": _png()}),
    ])


def _inputs(tmp_path: Path) -> list[Path]:
    """The constructed result, the sample, and the real results with char details or
    pictures (and one without)."""
    heavy = tmp_path / "heavy.json"
    heavy.write_text(json.dumps(_heavy_result(), indent=1), encoding="utf-8")
    real = [REAL / f"{name}.json" for name in (
        "docexample-xparse-v1.4.0_textin-docs_openapi-parse-sync-success",
        "legacy-pdf2md-v3.6.2_parsex-sdk_example", "legacy-web_demo_fdd03cb2")]
    return [heavy, SAMPLE, *real]


def _outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("formats, options", [
    (["docx", "xlsx", "html", "md"], {}),
    (["docx", "xlsx", "html", "md"], {"images": "none"}),
    (["jsonl"], {"jsonl_drop": ["char_details", "base64"]}),
    (["chunks"], {}),
], ids=["documents", "documents-images-none", "jsonl-drop", "chunks"])
def test_skipping_changes_no_output(tmp_path, monkeypatch, formats, options):
    convert_module = sys.modules["xparse_convert.convert"]
    assert unread_fields([get(f) for f in formats], {"images": None, **options})  # it skips
    for number, path in enumerate(_inputs(tmp_path)):
        skipped = tmp_path / f"skipped{number}"
        convert(path, formats, skipped, options=options)
        with monkeypatch.context() as patch:
            patch.setattr(convert_module, "unread_fields", lambda *args: ())
            whole = tmp_path / f"whole{number}"
            convert(path, formats, whole, options=options)
        assert _outputs(skipped) == _outputs(whole), path.name


def test_what_the_writers_read_decides_the_skip():
    classes = [get(name) for name in ("docx", "xlsx", "html", "md")]
    assert unread_fields(classes, {"images": None}) == ("char_details",)
    # base64 is never worth skipping (model.SKIPPED_UNREAD), whoever reads it
    assert unread_fields(classes, {"images": "none"}) == ("char_details",)
    assert unread_fields([get("xlsx")], {}) == ("char_details",)
    assert unread_fields([*classes, get("jsonl")], {"images": "none"}) == ()
    assert unread_fields([get("jsonl")], {"jsonl_drop": ["base64"]}) == ()
    assert unread_fields([get("jsonl")], {"jsonl_drop": ["char_details"]}) == ("char_details",)

    class PlugIn(get("md")):  # a subclass that declares nothing new reads what md reads
        pass

    assert unread_fields([PlugIn], {"images": "none"}) == ("char_details",)
    from xparse_convert import Writer

    assert unread_fields([get("xlsx"), Writer], {}) == ()  # declares nothing: reads all


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*map(_keys, value.values()))
    if isinstance(value, list):
        return set().union(*map(_keys, value)) if value else set()
    return set()


def test_iter_elements_keeps_everything_unless_asked(tmp_path):
    path = _inputs(tmp_path)[0]
    raw = json.loads(path.read_text(encoding="utf-8"))["data"]["elements"]
    assert [e.raw for e in iter_elements(path)] == raw
    skipped = [e.raw for e in iter_elements(path, skip=("char_details",))]
    assert "char_details" in _keys(raw) and "char_details" not in _keys(skipped)
    assert [e.text for e in iter_elements(path, skip=("char_details",))] == \
        [e["text"] for e in raw]
    assert "base64" in _keys(skipped)
    tables = list(iter_tables(path, skip=("char_details", "base64")))
    assert [[c.text for c in t.cells] for t in tables] == [["a", '"char_details": [']]


@pytest.mark.parametrize("data, expected", [
    (b'{"a":1,"char_details":[{"c":"]"}],"b":2}', {"a": 1, "b": 2}),
    (b'{"a":1 , "char_details" : [ ] }', {"a": 1}),
    (b'{"char_details":null}', {}),
    (b'{"t":"\\"char_details\\":[","char_details":"x\\\\"}', {"t": '"char_details":['}),
    (b'[{"char_details":[[[]]]},{"x":{"char_details":{"y":"}"}}}]', [{}, {"x": {}}]),
    (b'{"a":"char_details","n":[1,{"base64":"QQ=="}]}', {"a": "char_details", "n": [1, {}]}),
])
def test_a_member_is_left_out_at_any_depth(data, expected):
    assert without_fields(data, ["char_details", "base64"]) == expected
