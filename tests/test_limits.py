"""Bounded memory and time for any input: nesting depth, long strings, whitespace after the
list.  Each case runs the command line in a child process whose peak memory is measured."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xparse_convert.reader import _MarkdownSkipper

MB = 1 << 20


# The command line, then this process's own peak (VmHWM: ru_maxrss of a child that subprocess
# starts inherits the parent's high-water mark, so it would report pytest's own).
_MEASURED = ("import sys\nfrom xparse_convert.cli import main\ncode = main(sys.argv[1:])\n"
             "peak = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
             "print('peak-kb', peak, file=sys.stderr)\nsys.exit(code)")


def run_measured(args: list[str], timeout: float = 120) -> tuple[int, str, float, float]:
    """(exit code, stderr, seconds, peak RSS in MB) of the command line in a child."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURED, *args], capture_output=True,
                          text=True, timeout=timeout)
    lines = proc.stderr.splitlines()
    peak = float(lines[-1].split()[1]) / 1024 if lines and lines[-1].startswith("peak-kb") \
        else float("inf")
    err = "".join(f"{line}\n" for line in lines if not line.startswith("peak-kb"))
    return proc.returncode, err, time.perf_counter() - started, peak


def envelope_bytes(elements: bytes) -> bytes:
    return b'{"code":200,"message":"success","data":{"schema_version":"1.3.0","elements":[' + \
        elements + b"]}}"


@pytest.mark.parametrize("nest", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                  b"[" * 5_000 + b"]" * 5_000])
def test_deep_nesting_is_refused_at_once(tmp_path, nest):
    path = tmp_path / "deep.json"
    first = b'{"element_id":"a","type":"Title","text":"fine"},'
    path.write_bytes(envelope_bytes(first + b'{"element_id":"b","type":"Table","v":' + nest +
                                    b"}"))
    code, err, seconds, peak = run_measured([str(path), "--to", "jsonl,docx", "-o",
                                             str(tmp_path / "out")])
    assert code == 1 and "nesting deeper than 512 levels" in err, err
    assert err.count("\n") == 1 and "byte " in err
    assert seconds < 20 and peak < 400
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_depth_limit_is_an_option(tmp_path):
    nested = json.loads("[" * 300 + "]" * 300)
    doc = {"data": {"elements": [{"element_id": "a", "type": "NarrativeText", "text": "x",
                                  "deep": nested}]}}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(path), "--to",
                           "jsonl,md", "-o", str(out)], capture_output=True).returncode == 0
    line = json.loads((out / "d.jsonl").read_text())
    assert line["deep"] == nested  # 300 levels kept whole
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(path), "--to",
                           "jsonl", "-o", str(out), "--max-depth", "100"], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "deeper than 100" in proc.stderr


def test_brackets_inside_strings_are_not_nesting(tmp_path):
    text = "[" * 2000 + '"\\"{' * 500
    doc = {"data": {"elements": [{"element_id": "a", "type": "NarrativeText", "text": text}]}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(path), "--to",
                           "jsonl", "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "b.jsonl").read_text())["text"] == text


def test_a_long_string_reaches_the_parser_in_one_piece():
    # yajl lexes a token spanning many reads from its start on every read: quadratic
    value = "é" * (1 * MB)
    data = json.dumps({"elements": [{"text": value}, {"text": "after"}]},
                      ensure_ascii=False).encode()
    skipper = _MarkdownSkipper(io.BytesIO(data), capture=False)
    chunks = []
    while chunk := skipper.read_chunk(64 << 10):
        chunks.append(chunk)
    assert b"".join(chunks) == data
    # the chunk where it starts, then the rest of it at once (not 32 reads of 64 KiB)
    holding = [len(c) for c in chunks if "é".encode() in c]
    assert len(holding) <= 2, holding


def test_long_string_converts_in_linear_time(tmp_path):
    path = tmp_path / "long.json"
    value = "x" * (32 * MB)
    path.write_text(json.dumps({"data": {"elements": [
        {"element_id": "a", "type": "NarrativeText", "text": value},
        {"element_id": "b", "type": "Title", "text": "end"}]}}))
    code, err, seconds, _ = run_measured([str(path), "--to", "jsonl", "-o",
                                          str(tmp_path / "out")])
    assert code == 0, err
    assert seconds < 15  # about 2 s; the quadratic lexing took about 7 s and grows as L²
    lines = (tmp_path / "out" / "long.jsonl").read_text().splitlines()
    assert len(json.loads(lines[0])["text"]) == len(value)


def test_string_limit(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"elements": [{"type": "Title", "text": "y" * (3 * MB)}]}))
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(path), "--to",
                           "md", "-o", str(tmp_path / "out"), "--max-string-mb", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "longer than 1 MB" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_whitespace_after_the_list_costs_no_memory(tmp_path):
    path = tmp_path / "spaces.json.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b'{"data":{"elements":[{"element_id":"a","type":"Title","text":"t"}]')
        block = b" " * MB
        for _ in range(256):
            f.write(block)
        f.write(b',"pages":[{"page_number":1,"page_width":100,"page_height":200}]}}')
    code, err, _, peak = run_measured([str(path), "--to", "md", "-o", str(tmp_path / "out")])
    assert code == 0, err
    assert peak < 150  # the tail used to be spooled and read back whole: about 800 MB here
    assert (tmp_path / "out" / "spaces.md").read_text() == "# t\n"


def test_a_giant_number_is_refused(tmp_path):
    path = tmp_path / "n.json"
    path.write_bytes(b'{"elements":[{"type":"Title","text":"t","n":' + b"7" * (4 * MB) + b"}]}")
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(path), "--to",
                           "md", "-o", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "number" in proc.stderr


def test_limits_are_options(tmp_path):
    from xparse_convert import convert
    from xparse_convert.errors import InputError

    path = tmp_path / "d.json"
    path.write_text(json.dumps({"elements": [{"type": "Title", "text": "t", "d": [[[[1]]]]}]}))
    with pytest.raises(InputError, match="deeper than 3"):
        convert(path, "md", tmp_path / "o", {"max_depth": 3})
    assert Path(convert(path, "md", tmp_path / "o", {"max_depth": 10}).outputs["md"]).is_file()
