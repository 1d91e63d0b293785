"""The library API: convert, convert_many, iter_elements, iter_tables, custom writers."""

from __future__ import annotations

import io
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import LEGACY_RESULTS, SAMPLE

from xparse_convert import (
    InputError,
    UsageError,
    Writer,
    convert,
    convert_many,
    iter_elements,
    iter_tables,
)


def test_convert_report(tmp_path):
    report = convert(SAMPLE, ["jsonl", "md"], tmp_path)
    assert report.ok and report.pages == 4 and report.elements == 48
    assert set(report.outputs) == {"jsonl", "md"}
    assert report.seconds > 0 and report.bytes == SAMPLE.stat().st_size
    assert report.as_dict()["ok"] is True


def test_iter_tables_gives_logical_tables():
    tables = list(iter_tables(SAMPLE))
    assert [(t.n_rows, t.n_cols, t.header_rows) for t in tables] == [(6, 6, 2), (38, 4, 1)]
    assert tables[1].caption.startswith("表2")
    assert tables[1].pages == [2, 3, 4]
    assert tables[1].element_ids == ["el_025", "el_029", "el_033"]


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_iter_tables_on_real_results(path):
    for table in iter_tables(path):
        assert table.n_rows >= 1 and table.n_cols >= 1
        assert len(table.row_pages) == table.n_rows


def test_iter_elements_is_lazy(tmp_path):
    """The first element comes before the input is read to its end: a result cut short
    after it still gives it, and the error comes only when the stream gets there."""
    cut = tmp_path / "cut.json"
    data = SAMPLE.read_bytes()
    cut.write_bytes(data[:data.index(b"el_003")])
    stream = iter_elements(cut)
    first = next(stream)
    assert first.id == "el_001"
    with pytest.raises(InputError, match="ends too early"):
        list(stream)


def test_options_are_checked():
    with pytest.raises(UsageError, match="unknown option"):
        convert(SAMPLE, "md", options={"colour": "red"})
    with pytest.raises(UsageError, match="md_source"):
        convert(SAMPLE, "md", options={"md_source": "elsewhere"})


def test_convert_many_serial_and_with_an_executor(tmp_path):
    inputs = []
    for i in range(3):
        shutil.copy(SAMPLE, tmp_path / f"r{i}.json")
        inputs.append(tmp_path / f"r{i}.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    inputs.append(tmp_path / "bad.json")
    reports = convert_many(inputs, "md", tmp_path / "out")
    assert [r.ok for r in reports] == [True, True, True, False]
    assert "ends too early" in reports[3].error
    with ThreadPoolExecutor(2) as pool:
        reports = convert_many(inputs, "jsonl", tmp_path / "out2", executor=pool)
    assert [r.ok for r in reports] == [True, True, True, False]
    assert len(list((tmp_path / "out2").glob("*.jsonl"))) == 3


def test_a_custom_writer_class_from_the_library(tmp_path):
    from xparse_convert import writers

    class Count(Writer):
        name = "count"
        extension = "txt"

        def begin(self, info):
            self.n = 0

        def default(self, el):
            self.n += 1

        def end(self, info):
            self.out.write(f"{self.n} blocks, {info.page_count} pages\n")

    writers.BUILTIN["count"] = Count
    try:
        convert(io.BytesIO(SAMPLE.read_bytes()), "count", tmp_path, name="mem")
    finally:
        del writers.BUILTIN["count"]
    assert (tmp_path / "mem.txt").read_text() == "31 blocks, 4 pages\n"


def test_one_policy_for_a_failed_input(tmp_path):
    """``Report.failed`` is the one exception policy: the input's own failures are its
    reason, anything else an internal error; a batch job says what the single conversion
    says of the same input."""
    from xparse_convert.batch import Job, run_job
    from xparse_convert.convert import Report

    assert Report.failed("a", InputError("bad", source="a.json", where="byte 3")).error_where \
        == "byte 3"
    assert Report.failed("a", MemoryError(), memory_limit_mb=300).error == \
        "out of memory (limit 300 MB)"
    assert Report.failed("a", OSError(28, "No space left on device")).error == \
        "No space left on device"
    assert Report.failed("a", KeyError("x")).error.startswith("internal error (KeyError")
    cut = tmp_path / "cut.json"
    cut.write_bytes(SAMPLE.read_bytes()[:5000])
    with pytest.raises(InputError) as single:
        convert(cut, "md", tmp_path / "o")
    report = run_job(Job(str(cut), str(tmp_path / "o")), ["md"], None)
    assert (report.source, report.error, report.error_where) == (
        str(cut), single.value.message, single.value.where)
