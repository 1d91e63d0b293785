"""Every shape real results come in converts, from a file and from stdin; what is not a result
is named in one line, with nothing written."""

from __future__ import annotations

import base64
import gzip
import io
import json
import subprocess
import sys

import oracle
import pytest
from conftest import NOT_RESULTS, REAL, element, envelope

from xparse_convert import Reader, iter_elements
from xparse_convert.cli import main

LEGACY_DETAIL = [
    {"page_id": 1, "paragraph_id": 0, "type": "paragraph", "outline_level": 0, "content": 0,
     "text": "Title", "position": [10, 10, 90, 10, 90, 20, 10, 20]},
    {"page_id": 1, "paragraph_id": 1, "type": "paragraph", "outline_level": -1, "content": 0,
     "text": "Body text", "position": [10, 30, 90, 30, 90, 40, 10, 40]},
]
LEGACY_PAGES = [{"page_id": 1, "width": 100, "height": 100, "status": "Success"}]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The command line in this process (its start-up is paid once): exit code and streams."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin or b""))
    sys.stdout, sys.stderr = out, err
    try:
        code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    streams = []
    for stream in (out, err):
        stream.flush()
        streams.append(stream.buffer.getvalue().decode("utf-8", "replace"))
    return subprocess.CompletedProcess(args, code, *streams)


SHAPES = {
    "legacy-web": {"msg": "success", "data": {"result": {
        "markdown": "# Title", "detail": LEGACY_DETAIL, "pages": LEGACY_PAGES}}, "code": 200},
    "legacy-bare": {"pages": LEGACY_PAGES, "valid_page_number": 1, "detail": LEGACY_DETAIL,
                    "markdown": "# Title", "x_request_id": "abc"},
    "envelope": {"x_request_id": "r", "data": {"elements": [
        element("a", "Title", "Title", metadata={"category_depth": 0}),
        element("b", text="Body text")]}, "duration": 12, "msg": "success", "code": 200},
}


def test_stdin_in_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", "-", "--name", "r",
                           "--to", "md", "-o", str(tmp_path)], capture_output=True, timeout=60,
                          input=json.dumps(SHAPES["legacy-bare"]).encode())
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == "# Title\n\nBody text\n"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_shapes_convert(tmp_path, shape, via):
    data = json.dumps(SHAPES[shape]).encode()
    if via == "file":
        path = tmp_path / "r.json"
        path.write_bytes(data)
        proc = run(str(path), "--to", "md", "-o", str(tmp_path / "out"))
    else:
        proc = run("-", "--name", "r", "--to", "md", "-o", str(tmp_path / "out"), stdin=data)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out" / "r.md").read_text(encoding="utf-8")
    assert text == "# Title\n\nBody text\n"
    with Reader(io.BytesIO(data)) as reader:
        list(reader.elements())
        assert reader.info.shape == shape


def test_code_after_the_list_in_a_web_envelope_is_checked(tmp_path):
    doc = {"msg": "quota exceeded", "data": {"result": {"detail": LEGACY_DETAIL}},
           "code": 40003}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    proc = run(str(path), "--to", "md", "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "code 40003" in proc.stderr and "quota exceeded" in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_message_wins_over_msg():
    doc = {"code": 200, "message": "Success", "msg": "success",
           "result": {"detail": LEGACY_DETAIL, "pages": LEGACY_PAGES}}
    with Reader(io.BytesIO(json.dumps(doc).encode())) as reader:
        assert reader.info.message == "Success"


@pytest.mark.parametrize("doc", [
    b'{"code": 200, "code": 500, "data": {"elements": []}}',
    b'{"code": 200, "data": {"elements": []}, "code": 500}',
    b'{"code": 200, "data": {"file_id": "a", "file_id": "b", "elements": []}}',
    b'{"code": 200, "data": {"elements": [], "pages": [], "pages": []}}',
    b'{"result": {"pages": [], "detail": []}, "result": {"pages": []}}',
    # a second element list is read by the parser under the same path as the first
    b'{"code": 200, "data": {"elements": []}, "data": {"elements": []}}',
    b'{"code": 200, "data": {"elements": [], "elements": []}}',
    b'{"result": {"detail": [], "pages": []}, "result": {"detail": []}}',
])
def test_repeated_document_keys_are_refused(tmp_path, doc):
    path = tmp_path / "dup.json"
    path.write_bytes(doc)
    proc = run(str(path), "--to", "jsonl", "-o", str(tmp_path / "out"))
    assert proc.returncode == 1 and "appears twice" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("path", NOT_RESULTS, ids=lambda p: p.name[:40])
def test_real_inputs_that_are_not_results(tmp_path, path):
    proc = run(str(path), "--to", "md", "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    if path.name.startswith("other-"):
        assert "not a document-parsing result" in proc.stderr
    else:
        assert "code 40102" in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("data, words", [
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
    (b"PK\x03\x04\x14\x00\x06\x00", "Office document"),
    (b"  <!DOCTYPE html><html><body>", "an HTML or XML page"),
    (b"[1, 2, 3]", "a JSON list of 3 entries (numbers) with no element objects"),
    (b'{"a": {"b": 1}}', "no element list found: a JSON object with the keys a"),
    (b'{"elements": [{"type": "Title", "text": "caf\xe9"}]}', "not valid UTF-8"),
])
def test_not_a_result(tmp_path, data, words):
    for name, payload in (("x.json", data), ("x.json.gz", gzip.compress(data))):
        path = tmp_path / name
        path.write_bytes(payload)
        proc = run(str(path), "--to", "md,docx", "-o", str(tmp_path / "out"))
        assert proc.returncode == 1
        line = proc.stderr.strip()
        assert words in line and "\n" not in line, line
        assert "b'" not in line and "\\x" not in line  # never a raw bytes repr
        if "%PDF" in data.decode("latin-1"):
            assert "xparse-convert parse" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_empty_list_is_a_warning_with_empty_outputs(tmp_path):
    path = tmp_path / "empty.json"
    for doc in ([], envelope([])):
        path.write_text(json.dumps(doc))
        proc = run(str(path), "--to", "md,docx", "-o", str(tmp_path / "out"))
        assert proc.returncode == 0 and "no elements" in proc.stderr
        assert (tmp_path / "out" / "empty.docx").is_file()
        assert (tmp_path / "out" / "empty.md").read_text() == ""


def test_legacy_pictures_in_another_coordinate_space():
    # engine v3.6.2: pages[].structured positions do not match detail[].position, so boxes
    # cannot be compared; the page's pictures go by order
    path = REAL / "legacy-pdf2md-v3.6.2_parsex-sdk_example.json"
    images = [e for e in iter_elements(path) if e.type == "Image"]
    assert len(images) == oracle.expected(path).pictures_with_data == 5
    assert all(e.image is not None and e.image.data() for e in images)


def _png(color: str) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _legacy_with_pictures(detail_ids, block_ids):
    colors = ["red", "blue", "green"]
    detail = [{"page_id": 1, "paragraph_id": pid, "type": "image", "outline_level": -1,
               "content": 0, "text": "", "position": [0, 0, 9, 0, 9, 9, 0, 9]}
              for pid in detail_ids]
    content = [{"id": 100 + i, "type": "image", "pos": [0, 0, 1, 0, 1, 1, 0, 1],
                "data": {"base64": _png(colors[i])}} for i in range(len(block_ids))]
    structured = [{"type": "image", "id": bid, "pos": [50, 50, 60, 50, 60, 60, 50, 60],
                   "content": [100 + i]} for i, bid in enumerate(block_ids)]
    return {"code": 200, "message": "success", "result": {
        "pages": [{"page_id": 1, "width": 100, "height": 100, "content": content,
                   "structured": structured}], "detail": detail}}


@pytest.mark.parametrize("block_ids, expected", [([3, 7], [1, 0]),  # by id: 7 is the second
                                                 ([None, None], [0, 1])])  # by page order
def test_legacy_pictures_by_id_then_order(tmp_path, block_ids, expected):
    doc = _legacy_with_pictures([7, 3], block_ids)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    images = [e for e in iter_elements(path) if e.type == "Image"]
    content = doc["result"]["pages"][0]["content"]
    assert [e.raw["image_data"]["base64"] for e in images] == [
        content[i]["data"]["base64"] for i in expected]


def test_an_elements_key_inside_an_element_is_no_second_list(tmp_path):
    doc = envelope([element("a", metadata={"elements": [1, 2]}, detail=[{"elements": []}])])
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(doc))
    proc = run(str(path), "--to", "jsonl", "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
