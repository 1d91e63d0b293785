"""The element list cut into batches at the byte level: every element comes back exactly as a
JSON parser reads it, the list's end is found where it is, whatever the strings hold, the
layout or where the chunks fall."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from conftest import CONVERTIBLE_RESULTS, DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xparse_convert import Reader, reader
from xparse_convert.element_batches import BatchError, ListCutter
from xparse_convert.errors import InputError
from xparse_convert.structure import StructureGuard, cut_point

# strings that look like structure: brackets, quotes, escapes, the boundary between elements
TRICKY = st.sampled_from(['},{"element_id":', "]", "[", "{", "}", '"', "\\", '\\"', "},", "\n",
                          "é", "\u2028", '"elements":[', "x" * 40])
TEXT = st.lists(st.one_of(TRICKY, st.text(max_size=5)), max_size=6).map("".join)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
                   st.floats(allow_nan=False, allow_infinity=False), TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
ELEMENT = st.fixed_dictionaries({"element_id": TEXT, "type": st.sampled_from(["Table", "Title"])},
                                optional={"text": TEXT, "cells": st.lists(
                                    st.dictionaries(st.sampled_from(["element_id", "text"]),
                                                    VALUE, max_size=2), max_size=3),
                                    "extra": VALUE})
ITEMS = st.lists(st.one_of(ELEMENT, ELEMENT, VALUE), max_size=8)
# what may follow the list: values that nest like elements, another "elements" key in a string
TAIL = ',"pages":[{"page_number":1,"a":[{"b":1},{"c":2}]}],"note":"]},{\\"element_id\\""'


def _document(items: list, indent: int | None) -> tuple[bytes, int, int]:
    """A result holding ``items``; the position after the list's ``[`` and of its ``]``."""
    head = b'{"code":200,"data":{"schema_version":"1.3.0","elements":'
    body = json.dumps(items, indent=indent, ensure_ascii=False).encode()
    return head + body + TAIL.encode() + b"}}", len(head) + 1, len(head) + len(body) - 1


def _cut(data: bytes, start: int, sizes: list[int]) -> tuple[list, ListCutter]:
    """Feeds ``data[start:]`` to a cutter in chunks of the given sizes (in turn)."""
    guard = StructureGuard()
    guard.feed(data[:start])
    cutter = ListCutter(guard.depth, start)
    out: list = []
    at, turn = start, 0
    while at < len(data):
        end = cut_point(data, at, sizes[turn % len(sizes)])
        guard.feed(data[at:end])
        if cutter.end is None:
            out.extend(cutter.feed(data[at:end], guard.depth, guard.in_string))
        at, turn = end, turn + 1
    return out, cutter


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, indent=st.sampled_from([None, 1, 4]),
       sizes=st.lists(st.integers(1, 200), min_size=1, max_size=4))
def test_every_element_comes_back_and_the_list_ends_where_it_does(items, indent, sizes):
    data, start, end = _document(items, indent)
    out, cutter = _cut(data, start, sizes)
    assert out == json.loads(data)["data"]["elements"]
    assert cutter.end == end and data[end:end + 1] == b"]"
    assert data.endswith(cutter.after) or cutter.after.startswith(b"]")


@settings(max_examples=60, deadline=2000)
@given(items=st.lists(ELEMENT, min_size=1, max_size=6), cut=st.floats(0.0, 0.99))
def test_an_input_that_ends_inside_the_list_is_an_error(items, cut):
    data, start, end = _document(items, None)
    data = data[:start + int((end - start) * cut)]
    with pytest.raises(BatchError):
        out, cutter = _cut(data, start, [64])
        cutter.finish()


def test_an_element_longer_than_many_chunks_and_a_deep_one():
    rng = random.Random(4)
    big = {"element_id": "big", "cells": [{"text": "]},{" * rng.randint(1, 3), "n": i}
                                          for i in range(3000)]}
    deep: object = "core"
    for _ in range(60):
        deep = {"element_id": "x", "children": [deep]}
    items = [{"element_id": "a"}, big, deep, {"element_id": "z"}]
    data, start, _ = _document(items, None)
    out, _ = _cut(data, start, [1000])
    assert out == items


def _elements(path, *, batched: bool) -> list:
    with Reader(path) as read:
        if not batched:
            read._list_start = lambda: None  # the parser's own walk, as before the batches
        return [element.raw for element in read.elements()]


@pytest.mark.parametrize("path", [DATA.parent.parent / "samples" / "report.json",
                                  *CONVERTIBLE_RESULTS], ids=lambda p: p.name)
def test_real_results_read_the_same_in_batches_of_any_size(path, monkeypatch):
    expected = _elements(path, batched=False)
    raw = orjson.loads(path.read_bytes())
    if "data" in raw and isinstance(raw["data"], dict) and "elements" in raw["data"]:
        assert expected == raw["data"]["elements"]  # the oracle: the raw input itself
    for size in (4 << 10, 64 << 10):
        monkeypatch.setattr(reader, "CHUNK", size)
        assert _elements(path, batched=True) == expected


def test_malformed_element_is_reported_at_its_byte(tmp_path):
    good = b'{"element_id":"a","type":"Title","text":"x"}'
    data = b'{"code":200,"data":{"elements":[' + good + b"," + good.replace(b'"x"', b"x") + \
        b"]}}"
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with Reader(path) as read, pytest.raises(InputError) as info:
        list(read.elements())
    assert "malformed JSON" in info.value.message
    assert info.value.where == f"byte {data.index(b'x}]')}"
