"""File names made from remote values: one policy, whatever the value."""

from __future__ import annotations

import os
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from xparse_convert.safe_names import MAX_NAME_BYTES, safe_name

UNSAFE = set("/\\") | {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0),
                                        *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
# what a hostile server would try: separators, dots, controls, bidi, combining marks, wide text
HOSTILE = st.lists(st.sampled_from(["/", "\\", ".", " ", "..", "\x00", "\x1b[2J", "\r", "\x85",
                                    "\u202e", "\u2066", "e\u0301", "é", "😀", "a", "Z", "-",
                                    "é" * 70, "\ud800"]) | st.characters(),
                   max_size=40).map("".join)


@settings(max_examples=150, deadline=500)
@given(values=st.lists(HOSTILE, min_size=1, max_size=4))
def test_every_name_is_plain_unique_and_inside(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("out")
    taken: set = set()
    names = [safe_name(v, folder, taken, suffixes=[".json"], fallback="job1") for v in values]
    assert len(set(names)) == len(names)  # a clash gets -2, -3
    for name in names:
        assert name and not (set(name) & UNSAFE) and not name.startswith(".")
        assert unicodedata.is_normalized("NFC", name)
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        target = folder / f"{name}.json"
        assert os.path.dirname(os.path.abspath(target)) == os.path.abspath(folder)
        target.write_text("x")  # a name the file system takes as it is


def test_examples(tmp_path):
    assert safe_name("../ESCAPED", tmp_path) == "_ESCAPED"
    assert safe_name("..", tmp_path, fallback="job_1") == "job_1"
    assert safe_name("...", tmp_path, fallback="..") == "result"
    assert safe_name("e\u0301t\u00e9", tmp_path) == "\u00e9t\u00e9"  # NFC
    assert safe_name("\u202eevil\x1b[2J", tmp_path) == "_evil_[2J"
    long = safe_name("é" * 150, tmp_path)
    assert long == "é" * 100 and len(long.encode()) == 200
    taken: set = set()
    assert safe_name("r", tmp_path, taken) == "r"
    assert safe_name("r", tmp_path, taken) == "r-2"
    (tmp_path / "s.md").write_text("already here")
    assert safe_name("s", tmp_path, taken, suffixes=[".json", ".md"]) == "s-2"
    # the clash suffix still fits in the byte limit
    cut = safe_name("é" * 150, tmp_path, {tmp_path.resolve() / ("é" * 100)})
    assert cut == "é" * 99 + "-2"
    # a dangling symlink is a name taken too: never written through
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere" / "x.json")
    assert safe_name("link", tmp_path, suffixes=[".json"]) == "link-2"
