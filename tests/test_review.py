"""The review page: boxes where the raw JSON says, what a reviewer clicks and sees, safe, and
streaming.  Box positions are checked against an oracle computed here from the raw input."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
from conftest import REAL, SAMPLE, element, envelope, structure
from test_html import CHROMIUM, PWNED, DevTools, hostile_document

from xparse_convert import convert
from xparse_convert.writers.review import KINDS, MIN_SIDE

LIBREOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_chromium = pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"),
                                    reason="no Chromium")
LEGACY = [REAL / "legacy-pdf2md-v3.6.0_parsex-sdk_15.json",
          REAL / "legacy-web_demo_ce729cfc_excerpt.json",
          REAL / "legacy-bare-v3.20.42_macbon-pdf-demo_lunwen.json"]
DOC_EXAMPLE = REAL / "docexample-xparse-v1.4.0_textin-docs_openapi-parse-sync-success.json"


def cli(*args, check=True):
    return subprocess.run([sys.executable, "-m", "xparse_convert.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=check)


def review(src, out, **options):
    path = Path(convert(src, "review", out, options).outputs["review"])
    return path, lxml.html.fromstring(path.read_text(encoding="utf-8"))


def shown(bounds):
    """Where a box is drawn: on the page, and a line at least ``MIN_SIDE`` thick."""
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in bounds)
    if x1 - x0 < MIN_SIDE:
        x0 = min(max((x0 + x1 - MIN_SIDE) / 2, 0), 1 - MIN_SIDE)
        x1 = x0 + MIN_SIDE
    if y1 - y0 < MIN_SIDE:
        y0 = min(max((y0 + y1 - MIN_SIDE) / 2, 0), 1 - MIN_SIDE)
        y1 = y0 + MIN_SIDE
    return [x0, y0, x1, y1]


# -- the oracle: boxes and page sizes from the raw input -----------------------------------
def _bbox(values):
    xs, ys = values[0:8:2], values[1:8:2]
    return min(xs), min(ys), max(xs), max(ys)


def _is_quad(values):
    return isinstance(values, list) and len(values) >= 8 and all(
        type(v) in (int, float) for v in values[:8])


def oracle(path):
    """{index: (page, x0, y0, x1, y1) in page fractions}, indexes without coordinates, and
    {page: (width, height)}, read from the raw JSON (v1 elements or legacy detail)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    body = data.get("data", data)
    if isinstance(body, dict) and "elements" in body:
        sizes = {p["page_number"]: (p["page_width"], p["page_height"])
                 for p in body.get("pages", [])}
        boxes, without = {}, set()
        for i, el in enumerate(body["elements"]):
            if _is_quad(el.get("coordinates")):
                boxes[i] = (el["page_number"], *_bbox(el["coordinates"]))
            else:
                without.add(i)
        return boxes, without, sizes
    result = body.get("result", body) if isinstance(body, dict) else body
    pages = result["pages"]
    shift = 1 if min(p["page_id"] for p in pages) == 0 else 0
    sizes = {p["page_id"] + shift: (p["width"], p["height"]) for p in pages}
    boxes, without = {}, set()
    for i, item in enumerate(result["detail"]):
        w, h = sizes[item["page_id"]]
        if _is_quad(item.get("position")):
            x0, y0, x1, y1 = _bbox(item["position"])
            boxes[i] = (item["page_id"], x0 / w, y0 / h, x1 / w, y1 / h)
        else:
            without.add(i)
    return boxes, without, sizes


def drawn_boxes(page):
    """{index: (page, x0, y0, x1, y1)} from the boxes' inline styles (percentages)."""
    found = {}
    for box in page.xpath("//a[contains(@class,'box')]"):
        style = dict(re.findall(r"(left|top|width|height):([-\d.]+)%", box.get("style")))
        x0, y0 = float(style["left"]) / 100, float(style["top"]) / 100
        section = box.xpath("ancestor::section[1]")[0]
        number = int(re.search(r"pg-(\d+)", section.get("class")).group(1))
        index = int(box.get("data-index"))
        assert index not in found, index
        found[index] = (number, x0, y0, x0 + float(style["width"]) / 100,
                        y0 + float(style["height"]) / 100)
    return found


def aspects(page):
    """{page: width/height} as the page says it: inline ``--ar`` or the trailing style."""
    found = {}
    for section in page.xpath("//section[contains(@class,'pg-')]"):
        number = int(re.search(r"pg-(\d+)", section.get("class")).group(1))
        match = re.search(r"--ar:([\d.]+)/([\d.]+)", section.get("style") or "")
        if match:
            found[number] = float(match.group(1)) / float(match.group(2))
    for style in page.xpath("//body/style/text()"):
        for number, w, h in re.findall(r"\.pg-(\d+)\{--ar:([\d.]+)/([\d.]+)\}", style):
            found[int(number)] = float(w) / float(h)
    return found


@pytest.fixture(scope="module")
def sample_review(tmp_path_factory):
    return review(SAMPLE, tmp_path_factory.mktemp("review"))


@pytest.mark.parametrize("path", [SAMPLE, DOC_EXAMPLE, *LEGACY], ids=lambda p: p.name[:30])
def test_one_box_per_element_with_coordinates_where_the_json_puts_it(tmp_path, path):
    _, page = review(path, tmp_path)
    boxes, without, sizes = oracle(path)
    drawn = drawn_boxes(page)
    assert set(drawn) == set(boxes)
    for index, (number, *bounds) in boxes.items():
        assert drawn[index][0] == number
        assert drawn[index][1:] == pytest.approx(shown(bounds), abs=2e-5), index
    listed = {int(a.get("id")[1:]) for a in page.xpath("//a[contains(@class,'nobox')]")}
    assert listed == without
    ratios = aspects(page)
    for number in {b[0] for b in boxes.values()}:
        w, h = sizes[number]
        assert ratios[number] == pytest.approx(w / h, rel=1e-3), number
    assert len(page.xpath("//polygon[@class='shape']")) == len(boxes)


def test_legend_labels_and_panels(sample_review, sample_data):
    _, page = sample_review
    elements = sample_data["data"]["elements"]
    present = {e["type"] for e in elements}
    legend = page.xpath("//fieldset[@class='legend']//input[@type='checkbox']/@id")
    assert set(legend) == {f"f-{k}" for k in KINDS}
    hidden = " ".join(page.xpath("//body/style/text()"))
    for key in KINDS:  # the legend shows the types there are
        assert (f".legend .k-{key}{{display:none}}" in hidden) == (key not in present)
    for i, el in enumerate(elements):
        box = page.xpath(f"//*[@id='e{i}']")[0]
        initials = KINDS[el["type"]][0]
        tag = box.xpath("./span[@class='tag']")
        if tag:
            assert tag[0].text_content() == f"{i + 1} {initials}"
            tip = box.xpath("./span[@class='tip']")[0].text_content()
            assert el["type"] in tip and el["element_id"] in tip and \
                f"page {el['page_number']}" in tip
        panel = box.getnext()
        assert "detail" in panel.get("class")
        content = panel.xpath(".//div[@class='content']")[0]
        if el["type"] == "Table":
            rows = content.xpath(".//tr")
            assert rows and el["table_structure"]["cells"][0]["text"].split()[0] in \
                content.text_content()
        elif el["type"] == "Image":
            assert content.xpath(".//img[starts-with(@src,'data:image/png;base64,')]")
        elif el["type"] == "Formula":
            assert content.xpath(".//math")
        elif el["type"] not in ("PageBreak",) and el["text"].strip():
            first = el["text"].split()[0].strip("*$#`")
            assert first[:4] in content.text_content(), (i, el["text"][:30])


def test_summaries_count_what_each_page_holds(sample_review, sample_data):
    _, page = sample_review
    elements = sample_data["data"]["elements"]
    for section in page.xpath("//section[contains(@class,'pg-')]"):
        number = int(re.search(r"pg-(\d+)", section.get("class")).group(1))
        mine = [e for e in elements if e["page_number"] == number]
        summary = section.xpath(".//p[@class='summary']")[0].text_content()
        assert summary.startswith(f"{len(mine)} elements, {len(mine)} with a box")
        for kind in {e["type"] for e in mine}:
            assert f"{sum(e['type'] == kind for e in mine)} {kind}" in summary
        merged = sum(1 for e in mine if e["type"] == "Table" and any(
            c.get("row_span", 1) > 1 or c.get("col_span", 1) > 1
            for c in e.get("table_structure", {}).get("cells", [])))
        assert (f"{merged} table(s) with merged cells" in summary) == bool(merged)


def test_links_between_boxes(sample_review, sample_data):
    _, page = sample_review
    elements = sample_data["data"]["elements"]
    ids = {e["element_id"]: i for i, e in enumerate(elements)}
    lines = {sec.get("id"): len(sec.xpath(".//svg[@class='links']/line"))
             for sec in page.xpath("//section")}
    expected: dict[str, int] = {}
    for i, el in enumerate(elements):
        meta = el["metadata"]
        for key in ("continuation_of", "ref_element_id"):
            target = ids.get(meta.get(key))
            if target is None:
                continue
            panel = page.xpath(f"//*[@id='e{i}']/following-sibling::div[1]")[0]
            assert panel.xpath(f".//ul[@class='rel']//a[@href='#e{target}']"), (i, key)
            back = page.xpath(f"//*[@id='e{target}']/following-sibling::div[1]")[0]
            same_page = elements[target]["page_number"] == el["page_number"]
            assert bool(back.xpath(f".//a[@href='#e{i}']")) == same_page
            if same_page:
                section = f"page-{el['page_number']}"
                expected[section] = expected.get(section, 0) + 1
    assert expected and all(lines[s] == n for s, n in expected.items())
    assert sum(lines.values()) == sum(expected.values())


def test_low_confidence_characters(tmp_path, write_json):
    def chars(text, confidences, x):
        return [{"index": i, "text": t, "coordinates": [x + i * .02, .1, x + i * .02 + .02, .1,
                                                         x + i * .02 + .02, .12, x + i * .02,
                                                         .12], "recognition": {"confidence": c}}
                for i, (t, c) in enumerate(zip(text, confidences))]
    box = [0.1, 0.1, 0.5, 0.1, 0.5, 0.12, 0.1, 0.12]
    doc = envelope([
        element("a", text="abc", coordinates=box, char_details=chars("abc", [.5, .9, .79], .1)),
        element("t", "Table", "", coordinates=[.1, .3, .9, .3, .9, .5, .1, .5],
                table_structure={"cells": [{"row": 1, "col": 1, "text": "xy", "char_details":
                                            chars("xy", [.85, .3], .1)}]}),
        element("n", text="no box")])
    src = write_json(doc, "low.json")
    _, page = review(src, tmp_path)
    summary = page.xpath("//p[@class='summary']")[0].text_content()
    assert "3 character(s) below 0.8" in summary and "3 elements, 2 with a box" in summary
    assert len(page.xpath("//polygon[@class='lowc']")) == 3
    marks = page.xpath("//*[@id='e0']/following-sibling::div[1]//mark[@class='low']")
    assert [m.text for m in marks] == ["a", "c"]
    assert "confidence" in page.xpath("//*[@id='e0']/span[@class='tip']")[0].text_content() \
        or "2 character(s)" in page.xpath("//*[@id='e0']/span[@class='tip']")[0].text_content()
    cli(src, "--to", "review", "--review-min-confidence", "0.95", "-o", tmp_path / "strict")
    page = lxml.html.parse(str(tmp_path / "strict" / "low.review.html")).getroot()
    assert "5 character(s) below 0.95" in page.xpath("//p[@class='summary']")[0].text_content()
    proc = cli(src, "--to", "review", "--review-min-confidence", "high", "-o", tmp_path,
               check=False)
    assert proc.returncode != 0 and "takes a number" in proc.stderr


def test_pages_and_types_filters(tmp_path, sample_data):
    _, page = review(SAMPLE, tmp_path, pages="2", types="Table,TableCaption")
    kept = [i for i, e in enumerate(sample_data["data"]["elements"])
            if e["page_number"] == 2 and e["type"] in ("Table", "TableCaption")]
    assert sorted(drawn_boxes(page)) == kept
    assert [s.get("id") for s in page.xpath("//section[contains(@class,'pg-')]")] == ["page-2"]


# -- safety --------------------------------------------------------------------------------
def hostile_review_document():
    doc = hostile_document()
    for i, el in enumerate(doc["data"]["elements"]):
        if i % 3 != 2:  # most get a box; some are listed without one
            y = 0.05 + i * 0.07
            el["coordinates"] = [0.1, y, 0.9, y, 0.9, y + 0.05, 0.1, y + 0.05]
    doc["data"]["elements"][0]["char_details"] = [
        {"text": f"<script>{PWNED}</script>", "coordinates": [0, 0, 1, 0, 1, 1, 0, 1],
         "recognition": {"confidence": 0.1}}]
    doc["data"]["elements"][1]["type"] = f"<script>{PWNED}</script>"
    doc["data"]["pages"] = [{"page_number": 1, "page_width": 100, "page_height": "1);x",
                             "page_image_url": f"javascript:{PWNED}"},
                            {"page_number": 2, "page_image_url": "https://a.example/p\").png"}]
    return doc


def test_hostile_input_has_no_active_markup(tmp_path, write_json):
    path, page = review(write_json(hostile_review_document(), "hostile.json"), tmp_path)
    assert not page.xpath("//script | //iframe | //object | //embed | //foreignObject")
    for node in page.iter():
        if not isinstance(node.tag, str):
            continue
        for name, value in node.attrib.items():
            assert not name.lower().startswith("on"), (node.tag, name)
            assert "javascript:" not in value.lower() and "vbscript:" not in value.lower()
            if name in ("src", "href"):
                assert re.match(r"^(https?:|data:image/(png|jpeg|gif|webp|bmp|tiff);|#)",
                                value), value
            if name == "class":  # class names are ours, never the input's
                assert re.fullmatch(r"[a-zA-Z0-9 _-]+", value), value
    text = path.read_text(encoding="utf-8")
    assert "script-src" not in text and "default-src 'none'" in text
    for style in page.xpath("//style/text()"):
        assert "javascript" not in style and "a.example" not in style


# -- in a browser --------------------------------------------------------------------------
GEOMETRY = """(() => {
  const out = {boxes: {}, sheets: {}, visible: 0};
  for (const section of document.querySelectorAll('section.page')) {
    const sheet = section.querySelector('.sheet');
    if (!sheet) continue;
    const r = sheet.getBoundingClientRect();
    out.sheets[section.id] = r.width / r.height;
    for (const box of sheet.querySelectorAll('a.box')) {
      const at = (p) => [(p.left - r.left) / r.width, (p.top - r.top) / r.height,
                         (p.right - r.left) / r.width, (p.bottom - r.top) / r.height];
      const p = box.querySelector('polygon.shape').getBoundingClientRect();
      out.boxes[box.dataset.index] = [at(p), at(box.getBoundingClientRect())];
      if (getComputedStyle(box).display !== 'none' && p.width > 0) out.visible++;
    }
  }
  return out;
})()"""

POINT_AT = """((i) => {
  const box = document.getElementById('e' + i);
  box.scrollIntoView({block: 'center'});
  const r = box.getBoundingClientRect();
  const x = r.left + r.width * 0.5, y = r.top + r.height * 0.5;
  return [x, y, document.elementFromPoint(x, y).closest('a.box').id];
})"""

PANEL = """(() => {
  const target = document.querySelector(':target');
  if (!target) return null;
  const panel = target.nextElementSibling, r = panel.getBoundingClientRect();
  return [location.hash, getComputedStyle(panel).display, r.width, r.height,
          panel.querySelectorAll('table tr').length, panel.innerText];
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM:
        assert not os.environ.get("CI"), "CI must have Chromium (installed by .ci/run)"
        pytest.skip("no Chromium")
    chromium = DevTools(tmp_path_factory.mktemp("profile"))
    yield chromium
    chromium.close()


def _open(browser, path):
    session = browser.open(Path(path).as_uri())
    browser.call("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1000,
                 "deviceScaleFactor": 1, "mobile": False}, session)
    return session


def _click(browser, session, x, y):
    for kind in ("mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                     "button": "left", "clickCount": 1}, session)


@needs_chromium
def test_in_chromium_boxes_sit_where_the_json_says_and_a_click_shows_the_content(
        browser, sample_review, sample_data, tmp_path):
    path, _ = sample_review
    session = _open(browser, path)
    seen = browser.evaluate(session, GEOMETRY)
    boxes, _, sizes = oracle(SAMPLE)
    assert seen["visible"] == len(seen["boxes"]) == len(boxes)
    for index, (_, *bounds) in boxes.items():
        polygon, frame = seen["boxes"][str(index)]
        assert polygon == pytest.approx([min(max(v, 0), 1) for v in bounds], abs=2e-3), index
        assert frame == pytest.approx(shown(bounds), abs=2e-3), index
    for number, (w, h) in sizes.items():
        assert seen["sheets"][f"page-{number}"] == pytest.approx(w / h, rel=5e-3)
    # a click on the first table's box opens its panel: the table as a table
    elements = sample_data["data"]["elements"]
    table = next(i for i, e in enumerate(elements) if e["type"] == "Table")
    x, y, hit = browser.evaluate(session, f"{POINT_AT}({table})")
    assert hit == f"e{table}"
    _click(browser, session, x, y)
    hash_, display, width, height, rows, text = browser.evaluate(session, PANEL)
    assert hash_ == f"#e{table}" and display == "block" and width > 300 and height > 500
    assert rows >= 2 and elements[table]["element_id"] in text
    shot = base64.b64decode(browser.call("Page.captureScreenshot", {}, session)["data"])
    (tmp_path / "review-click.png").write_bytes(shot)
    # focus shows the tooltip; the Table filter hides the table boxes and only them
    tip = browser.evaluate(session, f"""(() => {{ const b = document.getElementById('e{table}');
        b.focus(); return getComputedStyle(b.querySelector('.tip')).display; }})()""")
    assert tip == "block"
    browser.evaluate(session, "document.getElementById('f-Table').click()")
    hidden = browser.evaluate(session, """[...document.querySelectorAll('a.box')].filter(
        b => getComputedStyle(b).display === 'none').map(b => b.dataset.index)""")
    assert sorted(map(int, hidden)) == [i for i, e in enumerate(elements) if e["type"] == "Table"]
    # "close" leaves no panel open
    browser.evaluate(session, "document.querySelector(':target + .detail a[href=\"#close\"]')"
                              ".click()")
    assert browser.evaluate(session, PANEL) is None


@needs_chromium
def test_in_chromium_the_hostile_input_runs_nothing(browser, tmp_path, write_json):
    canary = tmp_path / "canary.html"
    canary.write_text(f"<html><body><script>{PWNED}</script></body></html>", encoding="utf-8")
    probe = "document.documentElement.getAttribute('data-pwned')"
    assert browser.evaluate(browser.open(canary.as_uri()), probe) == "1"  # the probe works
    path, _ = review(write_json(hostile_review_document(), "hostile.json"), tmp_path)
    session = _open(browser, path)
    for i in range(3):  # hover, focus and open the boxes that carry the payloads
        x, y, hit = browser.evaluate(session, f"{POINT_AT}({i * 3})")
        browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y},
                     session)
        _click(browser, session, x, y)
    assert browser.evaluate(session, probe) is None


# -- a real PDF behind the boxes -------------------------------------------------------------
@pytest.mark.skipif(not LIBREOFFICE and not os.environ.get("CI"), reason="no LibreOffice")
def test_review_pdf_boxes_cover_the_text_they_name(tmp_path):
    import docx
    import pypdfium2
    from PIL import Image

    document = docx.Document()
    document.add_heading("Review page test", 1)
    for n in range(1, 5):
        document.add_paragraph(f"Paragraph {n} says something plain and short.")
    document.save(tmp_path / "made.docx")
    subprocess.run([LIBREOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(tmp_path / "made.docx")],
                   capture_output=True, timeout=180, check=True)
    pdf = pypdfium2.PdfDocument(tmp_path / "made.pdf")
    width, height = pdf[0].get_size()
    text = pdf[0].get_textpage()
    elements = []
    for i in range(text.count_rects()):  # one element per line of text, where the PDF has it
        left, bottom, right, top = text.get_rect(i)
        x0, y0, x1, y1 = left / width, 1 - top / height, right / width, 1 - bottom / height
        elements.append(element(f"l{i}", "Title" if i == 0 else "NarrativeText",
                                text.get_text_bounded(left, bottom, right, top),
                                coordinates=[x0, y0, x1, y0, x1, y1, x0, y1]))
    pdf.close()
    assert len(elements) == 5
    src = tmp_path / "made.json"
    src.write_text(json.dumps(envelope(elements)), encoding="utf-8")  # no pages[]: PDF sizes
    cli(src, "--to", "review", "--review-pdf", tmp_path / "made.pdf", "-o", tmp_path)
    page = lxml.html.parse(str(tmp_path / "made.review.html")).getroot()
    scan = page.xpath("//img[@class='scan']/@src")[0]
    image = Image.open(io.BytesIO(base64.b64decode(scan.split(",", 1)[1]))).convert("L")
    assert aspects(page)[1] == pytest.approx(width / height, rel=1e-3)
    assert image.width / image.height == pytest.approx(width / height, rel=1e-2)

    def ink(x0, y0, x1, y1):  # the share of dark pixels in a region, in page fractions
        crop = image.crop((int(x0 * image.width), int(y0 * image.height),
                           int(x1 * image.width) + 1, int(y1 * image.height) + 1))
        return sum(crop.histogram()[:128]) / (crop.width * crop.height)

    drawn = drawn_boxes(page)
    assert len(drawn) == 5
    for index, (_, x0, y0, x1, y1) in drawn.items():
        assert ink(x0, y0, x1, y1) > 0.05, index  # the box covers its text ...
        assert ink(x1 + 0.02, y0, x1 + 0.1, y1) == 0, index  # ... and beside it is blank
    # a folder of PDFs is matched by the input's stem
    _, page = review(src, tmp_path / "dir", review_pdf=str(tmp_path))
    assert page.xpath("//img[@class='scan']")


def test_review_pdf_that_is_not_a_pdf_is_one_line(tmp_path, write_json):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf")
    proc = cli(write_json(envelope([element("a")])), "--to", "review", "--review-pdf", bad,
               "-o", tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--review-pdf" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.review.html"))


def test_one_review_pdf_for_a_batch_is_refused(tmp_path, write_json):
    """A batch's inputs each have their own PDF: one file behind all of them would draw the
    wrong pages, so the batch is refused before anything is written."""
    pdf = tmp_path / "one.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        (inputs / f"{name}.json").write_text(json.dumps(envelope([element(name)])))
    out = tmp_path / "out"
    proc = cli(inputs, "--to", "review", "--review-pdf", pdf, "-o", out, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "--review-pdf" in proc.stderr and "folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() or not list(out.iterdir())


# -- streaming -----------------------------------------------------------------------------
MEASURE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], "
           "stdout=subprocess.DEVNULL); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "print(u.ru_maxrss, u.ru_utime + u.ru_stime); sys.exit(p.returncode)")


def _pages(path, count):
    """A result of ``count`` pages (five boxed elements and a table each), ``pages[]`` after
    the elements as the API writes it."""
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"code":200,"message":"success","data":{"schema_version":"1.3.0",'
                  '"elements":[')
        for p in range(1, count + 1):
            for k in range(5):
                y = 0.1 + k * 0.15
                out.write(("," if p > 1 or k else "") + json.dumps(element(
                    f"e{p}-{k}", "Title" if k == 0 else "NarrativeText",
                    f"Page {p} block {k} " + "text " * 40, page=p,
                    coordinates=[0.1, y, 0.9, y, 0.9, y + 0.1, 0.1, y + 0.1])))
            out.write("," + json.dumps(element(
                f"t{p}", "Table", "", page=p, coordinates=[.1, .85, .9, .85, .9, .95, .1, .95],
                table_structure=structure([(1, 1, 1, 2, "h"), (2, 1, 1, 1, "a"),
                                           (2, 2, 1, 1, "b")]))))
        pages = [{"page_number": p, "page_width": 1191, "page_height": 1684}
                 for p in range(1, count + 1)]
        out.write(f'],"pages":{json.dumps(pages)}}}}}')


def _measured(src, out, fmt, *extra):
    proc = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m",
                           "xparse_convert.cli", src, "--to", fmt, "-o", out, *extra],
                          capture_output=True, text=True, timeout=300, check=True)
    rss_kb, seconds = proc.stdout.split()
    return int(rss_kb) / 1024, float(seconds)


def test_a_thousand_pages_stream_in_flat_memory_and_in_html_time(tmp_path):
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    _pages(small, 50)
    _pages(large, 1000)
    small_mb, _ = _measured(small, tmp_path, "review")
    large_mb, review_s = _measured(large, tmp_path, "review")
    _, html_s = _measured(large, tmp_path, "html", "--furniture")
    assert large_mb <= 150 and large_mb - small_mb < 20, (small_mb, large_mb)
    # the bound is 1.5x; CPU time on a shared machine wobbles, so allow a little
    assert review_s <= 1.7 * html_s, (review_s, html_s)
    page = (tmp_path / "large.review.html").read_text(encoding="utf-8")
    assert page.count('class="box ') == 6000 and page.count("<section class=\"page") == 1000
    assert ".pg-999{--ar:1191/1684}" in page  # the size that came after the elements


def test_page_images_follow_the_images_mode(tmp_path, sample_data):
    urls = {p["page_number"]: p["page_image_url"] for p in sample_data["data"]["pages"]}
    path, page = review(SAMPLE, tmp_path / "url", images="url")
    style = " ".join(page.xpath("//body/style/text()"))
    for number, url in urls.items():  # pages[] follows the elements: set by the end style,
        # except on the last page, written once pages[] is known
        assert f'.pg-{number} .sheet{{background-image:url("{url}")}}' in style or \
            page.xpath(f"//section[@id='page-{number}']//img[@class='scan']/@src") == [url]
    assert "img-src data: http: https:" in path.read_text(encoding="utf-8")
    _, page = review(SAMPLE, tmp_path / "embed")  # not loaded: a link to each page image
    style = " ".join(page.xpath("//body/style/text()"))
    assert "background-image" not in style
    assert not page.xpath("//img[@class='scan']")
    for number, url in urls.items():
        link = page.xpath(f"//section[@id='page-{number}']//a[@class='pimg']/@href")
        if link == [url]:
            continue  # the last page: its link is written with it
        assert link == [f"#pimg-{number}"]
        assert f".pg-{number} .pimg{{display:inline}}" in style
        assert page.xpath(f"//li[@id='pimg-{number}']/a/@href") == [url]


def test_legacy_pixels_without_a_page_size_fill_the_page_they_span(tmp_path, write_json):
    detail = [{"page_id": 1, "paragraph_id": i, "type": "paragraph", "text": f"line {i}",
               "outline_level": -1, "position": [100, 100 + 50 * i, 900, 100 + 50 * i,
                                                 900, 130 + 50 * i, 100, 130 + 50 * i]}
              for i in range(4)]
    src = write_json({"code": 200, "message": "success", "result": {"detail": detail}},
                     "legacy.json")
    _, page = review(src, tmp_path)
    drawn = drawn_boxes(page)
    extent = 900 * 1.02, 280 * 1.02  # the largest coordinates, with a margin
    for i, item in enumerate(detail):
        x0, y0, x1, y1 = _bbox(item["position"])
        assert drawn[i][1:] == pytest.approx([x0 / extent[0], y0 / extent[1], x1 / extent[0],
                                              y1 / extent[1]], abs=2e-5)
    assert aspects(page)[1] == pytest.approx(extent[0] / extent[1], rel=1e-3)


def test_label_colours_pass_contrast_and_initials_tell_the_types_apart():
    def luminance(hex_colour):
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    for key, (_, colour) in KINDS.items():  # white label text on the type's colour: WCAG AA
        assert (1.05) / (luminance(colour) + 0.05) >= 4.5, key
    assert len({initials for initials, _ in KINDS.values()}) == len(KINDS)
