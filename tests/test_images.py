"""Pictures: the pixel cap and decode check, the URL policy, and the one picture table every
writer follows (README "Pictures"), through the command line."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import docx
import lxml.html
import pytest
from conftest import element, envelope
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from xparse_convert.images import safe_url

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"

# Runs the command line in this child, under an address-space cap (so a regression fails
# instead of taking the machine's memory), and writes the child's own peak RSS (VmHWM: not
# ru_maxrss, which a child started by vfork inherits from its parent) to a file.
_MEASURED = r"""
import os, resource, runpy, sys
limit = int(os.environ["XC_TEST_AS"])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv = ["xparse-convert", *sys.argv[1:]]
try:
    runpy.run_module("xparse_convert.cli", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    with open(os.environ["XC_TEST_PEAK"], "w") as out:
        out.write(peak)
"""


def run_cli(tmp_path: Path, *args: str, limit_mb: int = 1024, timeout: float = 60):
    """(process, peak RSS in MB, seconds) of one command-line run."""
    peak_file = tmp_path / "peak.txt"
    env = dict(os.environ, XC_TEST_AS=str(limit_mb << 20), XC_TEST_PEAK=str(peak_file))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURED, *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - started
    return proc, int(peak_file.read_text()) / 1024, seconds


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def vp8l_solid(width: int, height: int) -> bytes:
    """A lossless WebP of one colour.  Every prefix code holds a single symbol, so a pixel
    costs no bits: 13000x13000 pixels (676 MB decoded) fit in 30 bytes."""
    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> i) & 1 for i in range(n))

    put(width - 1, 14), put(height - 1, 14), put(0, 1), put(0, 3)  # size, no alpha, v0
    put(0, 1), put(0, 1), put(0, 1)  # no transform, no colour cache, no meta prefix codes
    for symbol in (0, 0, 0, 255, 0):  # green, red, blue, alpha, distance: one symbol each
        put(1, 1), put(0, 1)
        if symbol < 2:
            put(0, 1), put(symbol, 1)
        else:
            put(1, 1), put(symbol, 8)
    bits.extend([0] * (-len(bits) % 8))
    data = b"\x2f" + bytes(sum(b << i for i, b in enumerate(bits[k:k + 8]))
                           for k in range(0, len(bits), 8))
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, idat: bytes = b"not zlib data") -> bytes:
    """A PNG whose header claims ``width`` x ``height`` over data that does not decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def picture(fmt: str = "PNG", size: tuple[int, int] = (40, 30), colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def write_doc(tmp_path: Path, elements: list, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(envelope(elements)), encoding="utf-8")
    return path


def outputs(tmp_path: Path, stem: str = "input"):
    """(HTML page, Markdown text, python-docx Document) of one run."""
    page = lxml.html.fromstring((tmp_path / f"{stem}.html").read_text(encoding="utf-8"))
    return page, (tmp_path / f"{stem}.md").read_text(encoding="utf-8"), \
        docx.Document(str(tmp_path / f"{stem}.docx"))


def docx_media(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return [n for n in z.namelist() if n.startswith("word/media/")]


# -- the pixel cap and the decode check ---------------------------------------------------

def test_a_picture_bomb_is_left_out_in_bounded_memory_and_time(tmp_path):
    # 211 bytes of JSON; today DOCX decodes it and re-encodes it as PNG: 2.7 GB, 16 s
    src = write_doc(tmp_path, [element("bomb", "Image", "", image_data={
        "base64": b64(vp8l_solid(13000, 13000)), "mime_type": "image/webp"})])
    # the address-space cap lets today's 2.7 GB through (the peak is what is measured) but
    # stops a worse regression from taking the machine
    proc, peak_mb, seconds = run_cli(tmp_path, str(src), "--to", "docx,html,md", "-q",
                                     "--images", "embed", limit_mb=3500)
    assert peak_mb < 250 and seconds < 20, (peak_mb, seconds)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # -q: not even Pillow's DecompressionBombWarning
    page, md, _ = outputs(tmp_path)
    assert not page.xpath("//img") and "![" not in md and not docx_media(tmp_path / "input.docx")
    assert page.xpath("//figure/p[@class='missing']")[0].text_content() == "Image not available"
    proc, _, _ = run_cli(tmp_path, str(src), "--to", "docx,html,md")
    lines = [line for line in proc.stderr.splitlines() if "bomb" in line]
    assert len(lines) == 1, proc.stderr  # one warning for the picture, not one per writer
    assert "element bomb (#0): picture left out: its 13000x13000 pixels are above the " \
        "40,000,000-pixel cap (--max-image-pixels)" in lines[0]


def test_a_picture_that_does_not_decode_is_never_embedded(tmp_path):
    src = write_doc(tmp_path, [
        element("huge", "Image", "", image_data={"base64": b64(png_claiming(100_000, 100_000))}),
        element("broken", "Image", "", image_data={"base64": b64(png_claiming(300, 200))}),
        element("svg", "Image", "", image_data={"base64": b64(
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
            "mime_type": "image/svg+xml"}),
        element("junk", "Image", "", image_data={"base64": b64(b"\x00garbage" * 10)}),
        element("good", "Image", "", image_data={"base64": b64(picture())}),
    ])
    proc, _, _ = run_cli(tmp_path, str(src), "--to", "docx,html,md", "--images", "embed")
    assert proc.returncode == 0, proc.stderr
    page, md, document = outputs(tmp_path)
    assert len(page.xpath("//img")) == 1 and md.count("](data:image/") == 1
    assert len(document.inline_shapes) == 1 and len(docx_media(tmp_path / "input.docx")) == 1
    shown = page.xpath("//figure[@data-element-id='good']/img")[0].get("src")
    assert Image.open(io.BytesIO(base64.b64decode(shown.split(",", 1)[1]))).size == (40, 30)
    for name, why in [("huge", "100000x100000 pixels are above"),
                      ("broken", "do not decode"), ("svg", "SVG pictures are not written"),
                      ("junk", "not a picture")]:
        said = [line for line in proc.stderr.splitlines() if f"element {name} " in line]
        assert len(said) == 1 and why in said[0], (name, proc.stderr)


def test_a_jpeg_above_the_cap_is_decoded_at_reduced_size(tmp_path):
    src = write_doc(tmp_path, [
        element("jpeg", "Image", "", image_data={"base64": b64(picture("JPEG", (64, 48)))}),
        element("png", "Image", "", image_data={"base64": b64(picture("PNG", (64, 48)))}),
    ])
    proc, _, _ = run_cli(tmp_path, str(src), "--to", "docx,html,md", "--images", "files",
                         "--max-image-pixels", "1000")
    assert proc.returncode == 0, proc.stderr
    page, md, _ = outputs(tmp_path)
    src_html = page.xpath("//figure[@data-element-id='jpeg']/img/@src")
    assert not page.xpath("//figure[@data-element-id='png']/img")
    with Image.open(tmp_path / src_html[0]) as img:
        assert img.format == "JPEG" and img.size == (32, 24)  # 1/2: the largest under 1000
    assert md.count("](input_files/") == 1
    with zipfile.ZipFile(tmp_path / "input.docx") as z:
        (media,) = [n for n in z.namelist() if n.startswith("word/media/")]
        assert Image.open(io.BytesIO(z.read(media))).size == (32, 24)
    assert "element jpeg (#0): picture decoded at reduced size (32x24)" in proc.stderr
    assert "element png (#1): picture left out: its 64x48 pixels are above the 1,000-pixel " \
        "cap" in proc.stderr


def test_max_image_pixels_is_checked(tmp_path):
    src = write_doc(tmp_path, [element("a")])
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(src), "--to", "md",
                           "--max-image-pixels", "0"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "max_image_pixels takes a positive number" in proc.stderr


def apng_with_bad_frame_count() -> bytes:
    """A PNG with an acTL chunk of 0 frames: Pillow warns "Invalid APNG" on open."""
    data = picture()
    end_of_ihdr = 8 + 25
    return data[:end_of_ihdr] + _chunk(b"acTL", struct.pack(">II", 0, 0)) + data[end_of_ihdr:]


def test_pillow_warnings_go_through_ours(tmp_path):
    src = write_doc(tmp_path, [element("apng", "Image", "", image_data={
        "base64": b64(apng_with_bad_frame_count())})])
    proc, _, _ = run_cli(tmp_path, str(src), "--to", "docx,html", "-q")
    assert proc.returncode == 0 and proc.stderr == ""  # today: a raw UserWarning
    proc, _, _ = run_cli(tmp_path, str(src), "--to", "docx,html")
    (line,) = proc.stderr.splitlines()
    assert line.startswith("xparse-convert: warning: ") and line.endswith(
        "input.json: element apng (#0): picture decoder: Invalid APNG, will use default PNG "
        "image if possible")
    assert len(outputs_html(tmp_path).xpath("//img")) == 1  # the picture itself is fine


def outputs_html(tmp_path: Path):
    return lxml.html.fromstring((tmp_path / "input.html").read_text(encoding="utf-8"))


# -- the URL policy -----------------------------------------------------------------------

REFUSED_CHARS = ([chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
                 + list(" \u00a0\u2028\u3000\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                        "\u2066\u2067\u2068\u2069"))


@settings(max_examples=300, deadline=200)
@given(st.text(max_size=30), st.sampled_from(REFUSED_CHARS), st.text(max_size=30))
def test_the_url_policy_refuses_controls_spaces_and_bidi(before, bad, after):
    url = "https://example.com/" + before + bad + after
    if not (bad + after).strip(" \t\r\n"):
        return  # only white space at the end: stripped, not refused
    assert safe_url(url) is None
    passed = safe_url("https://example.com/" + before)
    assert passed is None or not any(c in passed for c in REFUSED_CHARS)


def test_control_characters_in_urls_keep_the_element(tmp_path):
    # today: HTML and DOCX fail with an internal error; Markdown writes the raw \x01
    src = write_doc(tmp_path, [
        element("pic", "Image", "", image_data={"image_url": "https://e.com/a\x01.png"}),
        element("cap", "FigureCaption", "Figure 1 the caption",
                metadata={"ref_element_id": "pic"}),
        element("rtl", "Image", "", image_data={"image_url": "https://e.com/\u202egnp.exe"}),
        element("tab", "Table", "", table_structure={"cells": [
            {"row": 1, "col": 1, "text": "cell text",
             "image_data": {"image_url": "https://e.com/\x1b[2J.png"}}]}),
    ])
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(src),
                           "--to", "docx,html,md"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    page, md, document = outputs(tmp_path)
    for text in ((tmp_path / "input.html").read_text("utf-8"), md,
                 "\n".join(p.text for p in document.paragraphs)):
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e]", text)
        assert "e.com" not in text
        assert "Figure 1 the caption" in text
    assert page.xpath("//td")[0].text_content() == "cell text"
    assert document.tables[0].cell(0, 0).text == "cell text"
    assert len(page.xpath("//p[@class='missing']")) == 2  # "Image not available", twice
    assert md.count("image not available") == 2
    assert proc.stderr.count("picture URL refused by the URL policy") == 3


# -- the picture table --------------------------------------------------------------------

# What each --images mode makes of: a picture with data and a URL ("both"), with data only
# ("data"), with a URL only ("url"), and the same three in table cells.  The README's table
# says the same in words.
TABLE = {
    "embed": {"both": "embed", "data": "embed", "url": "link"},
    "files": {"both": "file", "data": "file", "url": "link"},
    "url": {"both": "load", "data": "embed", "url": "load"},
    "none": {"both": "none", "data": "none", "url": "none"},
}
IMG_SRC = {"embed": "data:", "files": "data: 'self' file:", "url": "data: http: https:",
           "none": "'none'"}
KINDS = ("both", "data", "url")


def table_document(tmp_path: Path) -> Path:
    data = {"both": picture(colour="red"), "data": picture(colour="green")}
    urls = {"both": "https://e.com/both.png", "url": "https://e.com/url.png"}

    def image_data(kind: str) -> dict:
        out = {}
        if kind in data:
            out["base64"] = b64(data[kind])
        if kind in urls:
            out["image_url"] = urls[kind]
        return out

    elements = []
    for kind in KINDS:
        elements.append(element(kind, "Image", "", image_data=image_data(kind)))
        elements.append(element(f"cap-{kind}", "FigureCaption", f"Figure {kind}",
                                metadata={"ref_element_id": kind}))
    elements.append(element("tab", "Table", "", table_structure={"cells": [
        {"row": 1, "col": c + 1, "text": f"cell {kind}", "image_data": image_data(kind)}
        for c, kind in enumerate(KINDS)]}))
    return write_doc(tmp_path, elements)


def html_became(node) -> str:
    imgs, links = node.xpath(".//img/@src"), node.xpath(".//a/@href")
    if imgs:
        src = imgs[0]
        return "embed" if src.startswith("data:image/") else "file" if src.startswith(
            "input_files/") else "load" if src.startswith("https://e.com/") else src
    return "link" if links and links[0].startswith("https://e.com/") else "none"


def md_became(text: str) -> list[str]:
    out = []
    for bang, target in re.findall(r"(!?)\[[^\]]*\]\(([^)\s]+)\)", text):
        kind = "embed" if target.startswith("data:image/") else "file" if target.startswith(
            "input_files/") else "load" if target.startswith("https://e.com/") else target
        out.append(kind if bang else "link" if kind == "load" else "?" + target)
    return out


def docx_text(node) -> str:
    return "".join(t.text or "" for t in node.iter(f"{W}t"))


def docx_became(container) -> str:
    if container.findall(f".//{WP}inline"):
        return "embed"
    return "link" if container.findall(f".//{W}hyperlink") else "none"


@pytest.mark.parametrize("mode", list(TABLE))
def test_the_picture_table(tmp_path, mode):
    src = table_document(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(src),
                           "--to", "docx,html,md", "--images", mode], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = TABLE[mode]
    page, md, document = outputs(tmp_path)

    # HTML: figures and cells alike, and the page allows exactly what it shows
    csp = page.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")[0]
    assert f"img-src {IMG_SRC[mode]};" in csp
    for kind in KINDS:
        figure = page.xpath(f"//figure[@data-element-id='{kind}']")[0]
        assert html_became(figure) == expected[kind], kind
        assert figure.xpath("./figcaption")[0].text_content() == f"Figure {kind}"
    cells = page.xpath("//table//td")
    assert [html_became(td) for td in cells] == [expected[k] for k in KINDS]
    assert [td.text_content().split(" Image")[0].strip() for td in cells] == [
        f"cell {k}" for k in KINDS]
    for src_ in page.xpath("//img/@src"):
        if src_.startswith("input_files/"):
            assert (tmp_path / src_).is_file()

    # Markdown: the three figures, then the three cells, in order
    shown = [expected[k] for k in KINDS] * 2
    assert md_became(md) == [k for k in shown if k != "none"]
    assert all(f"Figure {kind}" in md for kind in KINDS)

    # DOCX: a document carries its pictures (files: embedded too); URLs are links
    docx_kind = {"file": "embed", "load": "link"}
    body = list(document.element.body)
    for kind in KINDS:
        caption = next(i for i, el in enumerate(body)
                       if docx_text(el) == f"Figure {kind}")
        became = docx_became(body[caption - 1]) if caption else "none"
        assert became == docx_kind.get(expected[kind], expected[kind]), kind
    assert [docx_became(cell._tc) for cell in document.tables[0].rows[0].cells] == [
        docx_kind.get(expected[k], expected[k]) for k in KINDS]

    if mode == "url":  # a picture with data but no URL is embedded, and said so
        assert "element data (#2): picture has no usable source URL for --images url; " \
            "embedded instead" in proc.stderr
        assert "element tab (#6): picture has no usable source URL" in proc.stderr
    else:
        assert proc.stderr == ""
