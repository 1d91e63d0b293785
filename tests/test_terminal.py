"""Values from an input or a server reach the terminal as text, never as control sequences."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import element, envelope

from xparse_convert.terminal import printable

CLI = [sys.executable, "-m", "xparse_convert.cli"]
FORGED = "\r\x1b[2Kxparse-convert: all files converted OK"
# what must never reach a terminal raw: C0 (but the line ends), DEL, C1, bidi controls
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run(args, **kw):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_printable_escapes_controls_and_bidi_and_keeps_text():
    assert printable("el\r\x1b[2K\x07\x7f\x9b\u202e\u2066\n\t") == \
        "el\\r\\x1b[2K\\x07\\x7f\\x9b\\u202e\\u2066\\n\\t"
    assert printable("星河科技 — café 1,234.50 C:\\data") == "星河科技 — café 1,234.50 C:\\data"


def test_element_ids_and_types_in_warnings_are_shown_not_obeyed(tmp_path):
    src = tmp_path / "hostile.json"
    src.write_text(json.dumps(envelope(
        [element(FORGED, "\x1b[2JNarrative\u202eText", page="1")],
        metadata={"filename": "invoice\u202efdp.exe"})), encoding="utf-8")
    proc = run([src, "--to", "md,jsonl", "-o", tmp_path / "out"])
    assert proc.returncode == 0
    assert not RAW.search(proc.stderr), repr(proc.stderr)
    assert "\\r\\x1b[2Kxparse-convert: all files converted OK" in proc.stderr
    assert all(line.startswith("xparse-convert: warning: ") for line in
               proc.stderr.splitlines())
    proc = run(["info", src])
    assert proc.returncode == 0
    assert not RAW.search(proc.stdout), repr(proc.stdout)
    assert "invoice\\u202efdp.exe" in proc.stdout and "\\x1b[2JNarrative" in proc.stdout
    # JSON escapes by itself: the values come back exactly
    summary = json.loads(run(["info", src, "--json"]).stdout)
    assert summary["file_name"] == "invoice\u202efdp.exe"


def test_an_envelope_message_in_an_error_is_shown_not_obeyed(tmp_path):
    src = tmp_path / "failed.json"
    src.write_text(json.dumps({"code": 40004, "message": "\x1b[2J\x1b[H\x9b31mfake\nsecond"}),
                   encoding="utf-8")
    proc = run([src, "--to", "md", "-o", tmp_path / "out"])
    assert proc.returncode == 1
    assert not RAW.search(proc.stderr), repr(proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and "\\x1b[2J" in proc.stderr
