"""HTML: parsed with lxml like a crawler, rendered in headless Chromium like a reader."""

from __future__ import annotations

import base64
import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lxml.html
import oracle
import pytest
from conftest import LEGACY_RESULTS, REAL, SAMPLE, element, envelope, structure

from xparse_convert import convert, iter_tables

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or \
    shutil.which("google-chrome")
PWNED = "document.documentElement.setAttribute('data-pwned','1')"


def build(src, tmp_path, **options):
    report = convert(src, "html", tmp_path, options)
    path = report.outputs["html"]
    return path, lxml.html.fromstring(open(path, encoding="utf-8").read())


@pytest.fixture(scope="module")
def sample_page(tmp_path_factory):
    return build(SAMPLE, tmp_path_factory.mktemp("html"))


def test_headings_and_blocks(sample_page, sample_data):
    _, page = sample_page
    titles = [e for e in sample_data["data"]["elements"] if e["type"] == "Title"]
    headings = page.xpath("//main//*[self::h1 or self::h2 or self::h3]")
    assert [(h.tag, h.text_content()) for h in headings] == [
        (f"h{t['metadata']['category_depth'] + 1}", " ".join(t["text"].split())) for t in titles]
    ids = {e["element_id"] for e in sample_data["data"]["elements"]}
    for block in page.xpath("//main/*[@data-element-id]"):
        assert block.get("data-element-id") in ids and block.get("data-page")
    assert not page.xpath("//*[contains(@class,'furniture')]")  # left out by default


def test_lists(sample_page):
    _, page = sample_page
    main = page.xpath("//main")[0]
    assert len(main.xpath("./ul/li")) == 3
    ordered = main.xpath("./ol")[0]
    assert len(ordered.xpath("./li")) == 3
    nested = ordered.xpath("./li[2]/ul/li")
    assert len(nested) == 1 and "OPC UA" in nested[0].text_content()


def test_tables_match_the_grid(sample_page):
    _, page = sample_page
    tables = page.xpath("//main//table")
    logical = list(iter_tables(SAMPLE))
    assert len(tables) == len(logical) == 2
    for node, table in zip(tables, logical):
        spans = []
        for r, tr in enumerate(node.iter("tr")):
            for td in tr:
                rs, cs = int(td.get("rowspan", 1)), int(td.get("colspan", 1))
                if rs > 1 or cs > 1:
                    spans.append((r, td.text_content(), rs, cs))
        assert spans == [(c.row, c.text, c.row_span, c.col_span) for c in table.cells
                         if c.is_merged]
        assert len(node.xpath("./thead/tr")) == table.header_rows
        assert node.getparent().tag == "figure"  # captioned tables are figures
        assert node.getparent().xpath("./figcaption")
    check_tables_against_the_source(SAMPLE, page)
    chain = tables[1]
    starts = chain.xpath(".//tr[contains(@class,'page-start')]")
    assert [tr.get("data-page") for tr in starts] == ["3", "4"]


def test_image_embedded_and_other_modes(sample_page, tmp_path):
    _, page = sample_page
    images = page.xpath("//main//figure/img")
    assert len(images) == 1 and images[0].get("src").startswith("data:image/png;base64,")
    assert images[0].getparent().xpath("./figcaption")[0].text_content().startswith("图1")
    path, page = build(SAMPLE, tmp_path / "f", images="files")
    src = page.xpath("//main//figure/img")[0].get("src")
    assert src.startswith("report_files/") and (tmp_path / "f" / src).is_file()
    _, page = build(SAMPLE, tmp_path / "u", images="url")
    assert page.xpath("//main//figure/img")[0].get("src").startswith("https://")
    _, page = build(SAMPLE, tmp_path / "n", images="none")
    assert not page.xpath("//img")


def test_formulas_are_mathml_with_the_latex_kept(sample_page):
    path, _ = sample_page
    text = open(path, encoding="utf-8").read()
    assert text.count('<math display="block"') == 2  # the Formula and the Chemical
    assert text.count('<math display="inline"') == 1  # the inline formula object of el_012
    assert '<annotation encoding="application/x-tex">\\text{ROE} = ' in text
    assert "<mfrac>" in text


def test_toc_links_and_page_anchors_resolve(sample_page):
    _, page = sample_page
    ids = set(page.xpath("//@id"))
    links = page.xpath("//nav[@id='toc']//a/@href")
    assert len(links) == 9 and all(link[1:] in ids for link in links)
    assert {f"page-{n}" for n in (1, 2, 3, 4)} <= ids
    assert len(ids) == len(page.xpath("//@id"))  # unique


def test_furniture_on_request(tmp_path, sample_data):
    _, page = build(SAMPLE, tmp_path, furniture=True)
    footers = page.xpath("//p[contains(@class,'footer')]")
    assert len(footers) == sum(1 for e in sample_data["data"]["elements"]
                               if e["type"] == "Footer")


def check_tables_against_the_source(path, page):
    """Tables, merged cells and cell texts as a reader sees them (MathML shown, not its LaTeX
    annotation), against the independent reading (``oracle``) of the raw JSON."""
    nodes = page.xpath("//main//table")
    expected = oracle.expected(path).tables
    assert len(nodes) == len(expected)
    for node, want in zip(map(copy.deepcopy, nodes), expected):  # the page stays as it is
        for annotation in list(node.iter("annotation")):
            annotation.getparent().remove(annotation)
        cells = list(node.iter("td", "th"))
        assert sum(1 for td in cells if int(td.get("rowspan", 1)) > 1 or
                   int(td.get("colspan", 1)) > 1) == want.merged
        shown = {oracle.loose(" ".join(td.text_content().split())) for td in cells}
        assert shown - {""} == want.loose_texts


@pytest.mark.parametrize("path", LEGACY_RESULTS, ids=lambda p: p.name[:40])
def test_real_legacy_results(tmp_path, path):
    _, page = build(path, tmp_path)
    tables = list(iter_tables(path))
    nodes = page.xpath("//main//table")
    assert len(nodes) == len(tables)
    for node, table in zip(nodes, tables):
        assert len(node.xpath(".//tr")) == table.n_rows
    check_tables_against_the_source(path, page)


HOSTILE_TEXT = f"<script>{PWNED}</script><img src=x onerror=\"{PWNED}\">"
HOSTILE_CELL = (f"<table><tr><td onmouseover=\"{PWNED}\"><img src=x onerror=\"{PWNED}\">"
                f"<a href=\"javascript:{PWNED}\">x</a><script>{PWNED}</script>"
                f"<svg onload=\"{PWNED}\"></svg></td>"
                "<td><img src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">"
                f"<iframe srcdoc=\"<script>{PWNED}</script>\"></iframe></td></tr></table>")


def hostile_document():
    html_bytes = base64.b64encode(f"<html><script>{PWNED}</script></html>".encode()).decode()
    return envelope([
        element("t1", "Title", f"\"><img src=x onerror=\"{PWNED}\">"),
        element("p1", text=HOSTILE_TEXT),
        element("x\" onmouseover=\"" + PWNED, text="quoted id"),
        element("tab", "Table", HOSTILE_CELL),
        element("cap", "TableCaption", f"<iframe srcdoc=\"<script>{PWNED}</script>\">",
                metadata={"ref_element_id": "tab2"}),
        element("tab2", "Table", "", table_structure=structure([(1, 1, 1, 1, HOSTILE_TEXT)])),
        element("img1", "Image", "", image_data={"base64": html_bytes, "mime_type": "text/html",
                                                 "image_url": f"javascript:{PWNED}"}),
        element("img2", "Image", "", image_data={"image_url": f"vbscript:{PWNED}"}),
        element("f1", "Formula", f"$$\\text{{<script>{PWNED}</script>}} "
                                 f"\\href{{javascript:{PWNED}}}{{x}}$$"),
        element("code", "CodeSnippet", HOSTILE_TEXT),
        element("li", "ListItem", f"1. {HOSTILE_TEXT}"),
    ])


def test_hostile_input_has_no_active_markup(tmp_path, write_json):
    path, page = build(write_json(hostile_document()), tmp_path)
    assert not page.xpath("//script | //iframe | //svg | //object | //embed")
    for node in page.iter():
        for name, value in node.attrib.items():
            assert not name.lower().startswith("on"), (node.tag, name)
            assert "javascript:" not in value.lower() and "vbscript:" not in value.lower()
            if name in ("src", "href"):
                assert re.match(r"^(https?:|data:image/(png|jpeg|gif|webp|bmp|tiff);|#)",
                                value), value
    text = open(path, encoding="utf-8").read()
    assert "data:text/html" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def dom_after_load(path, tmp_path):
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=3000", "--dump-dom", f"file://{path}"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "</html>" in proc.stdout
    return proc.stdout


def script_ran(dom: str) -> bool:
    """The payloads mark the root element; escaped payload text does not count."""
    return lxml.html.fromstring(dom).get("data-pwned") is not None


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="no Chromium")
def test_no_script_runs_in_a_browser_with_or_without_the_csp(tmp_path, write_json):
    assert CHROMIUM, "CI must have Chromium (installed by .ci/run)"
    path, _ = build(write_json(hostile_document()), tmp_path)
    # the probe works: a page that does run a script is caught
    canary = tmp_path / "canary.html"
    canary.write_text(f"<html><body><script>{PWNED}</script></body></html>", encoding="utf-8")
    assert script_ran(dom_after_load(canary, tmp_path))
    assert not script_ran(dom_after_load(path, tmp_path))
    bare = tmp_path / "no-csp.html"
    text = open(path, encoding="utf-8").read()
    bare.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text),
                    encoding="utf-8")
    assert "Content-Security-Policy" not in bare.read_text(encoding="utf-8")
    assert not script_ran(dom_after_load(bare, tmp_path))


def test_odd_ids_and_page_numbers(tmp_path, write_json):
    import json as _json

    doc = envelope([element("a\x01b", text="one", page=1),
                    element("c", text="two", page=2_000_000)])
    path, page = build(write_json(_json.dumps(doc).encode()), tmp_path)
    assert page.xpath("//p/@data-element-id")[0] == "ab"
    assert os.path.getsize(path) < 100_000  # no marker for every missing page


def test_a_link_that_could_break_out_is_refused(tmp_path, write_json):
    url = "https://a.example/x.png) [click](javascript:alert(1)"
    doc = envelope([element("i", "Image", "", image_data={"image_url": url})])
    convert(write_json(doc), "md", tmp_path)
    text = (tmp_path / "input.md").read_text(encoding="utf-8")
    assert "javascript" not in text and "a.example" not in text


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4, messages
    ended by NUL): one browser start for several pages, and page scripts run even where the
    page's own Content-Security-Policy forbids them, without relaxing what it allows."""

    def __init__(self, profile):
        import fcntl

        to_chromium, self._out = os.pipe()
        self._in, from_chromium = os.pipe()

        def on_fds_3_and_4():  # in the child, before exec
            a = fcntl.fcntl(to_chromium, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chromium, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=on_fds_3_and_4)
        os.close(to_chromium)
        os.close(from_chromium)
        self._buffer, self._id, self._events = b"", 0, []

    def _message(self):
        import json

        while b"\0" not in self._buffer:
            chunk = os.read(self._in, 1 << 16)
            assert chunk, "Chromium closed the DevTools pipe"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(line)

    def call(self, method, params=None, session=None):
        import json

        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]
            self._events.append(reply)

    def open(self, url):
        """A new tab showing ``url``, once its load event fired; its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        self.call("Page.enable", session=session)
        self.call("Page.navigate", {"url": url}, session)
        while True:
            event = self._events.pop(0) if self._events else self._message()
            if event.get("method") == "Page.loadEventFired" and \
                    event.get("sessionId") == session:
                return session

    def evaluate(self, session, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close")
        finally:
            self.proc.wait(20)
            os.close(self._in)
            os.close(self._out)


# Pictures are lazy-loaded: make every one load now, wait for it, and report what it shows.
LOAD_EVERY_PICTURE = """(async () => {
  const pictures = [...document.images];
  for (const img of pictures) { img.loading = 'eager'; img.scrollIntoView(); }
  await Promise.all(pictures.map(img => img.decode().catch(() => null)));
  return pictures.map(img => [img.getAttribute('src'), img.naturalWidth]);
})()"""


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="no Chromium")
def test_files_pictures_show_when_the_page_is_opened_from_disk(tmp_path):
    # today the page's own img-src (data: http: https:) blocks its report_files/ pictures
    assert CHROMIUM, "CI must have Chromium (installed by .ci/run)"
    subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(SAMPLE), "--to", "html",
                    "--images", "files", "-o", str(tmp_path)], check=True, timeout=60)
    browser = DevTools(tmp_path / "profile")
    try:
        shown = browser.evaluate(browser.open((tmp_path / "report.html").as_uri()),
                                 LOAD_EVERY_PICTURE)
    finally:
        browser.close()
    assert shown and all(src.startswith("report_files/") for src, _ in shown), shown
    assert all(width > 0 for _, width in shown), shown


def test_short_cjk_lines_are_kept_whole_and_long_ones_may_wrap(tmp_path, write_json):
    cells = [(1, 1, 1, 1, "议案序号"), (1, 2, 1, 1, "议案序号\nA股"), (1, 3, 1, 1, "Total"),
             (2, 1, 1, 1, "关于提请股东大会授权发行债务融资工具的议案"), (2, 2, 1, 1, "A股"),
             (2, 3, 1, 1, "7,231,930,633")]
    _, page = build(write_json(envelope([element("t", "Table", "", 1,
                                                 table_structure=structure(cells))])), tmp_path)
    kept = {cell.text_content(): "keep" in (cell.get("class") or "").split()
            for cell in page.iter("td", "th")}
    assert kept == {"议案序号": True, "议案序号A股": True, "Total": False,
                    "关于提请股东大会授权发行债务融资工具的议案": False, "A股": True,
                    "7,231,930,633": False}


def _layout_document():
    numbers = [(1, c, 1, 1, f"列{c}") for c in range(1, 13)] + \
        [(r, c, 1, 1, f"{r * 10_007 * c:,}") for r in range(2, 5) for c in range(1, 13)]
    return envelope([
        element("w", "Title", "Evaluation Only. Created with a PDF tool", 1),
        element("t", "Title", "万科企业股份有限公司二〇二四年第一次临时股东大会决议公告", 1,
                metadata={"category_depth": 1}),
        element("p", "NarrativeText", "本公司董事会全体成员保证公告内容真实、准确和完整。" * 3, 1),
        element("big", "Table", "", 1, table_structure=structure(numbers)),
        element("small", "Table", "", 1, table_structure=structure(
            [(1, 1, 1, 1, "项目"), (1, 2, 1, 1, "金额"), (2, 1, 1, 1, "营业收入"),
             (2, 2, 1, 1, "128,600")])),
        element("h5", "Title", "五级标题", 2, metadata={"category_depth": 4}),
        element("h6", "Title", "六级标题", 2, metadata={"category_depth": 5}),
        element("q", "NarrativeText", "正文", 2),
    ])


# what a reader sees: where the text column and each table are, whether they scroll
MEASURE_LAYOUT = """(() => {
  const box = el => el.getBoundingClientRect();
  const size = el => parseFloat(getComputedStyle(el).fontSize);
  const text = box(document.querySelector('main > p'));
  return {
    text: [text.left, text.right],
    tables: [...document.querySelectorAll('main table')].map(t => ({
      left: box(t).left, right: box(t).right, scrolls: t.scrollWidth > t.clientWidth + 1,
      id: t.dataset.elementId})),
    window: document.documentElement.clientWidth,
    page_scrolls: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    body_size: size(document.querySelector('main > p')),
    heading_sizes: [...document.querySelectorAll('h5, h6')].map(size),
    // short labels (four characters at most, no space) shown on more than one line
    broken_labels: [...document.querySelectorAll('td, th')].filter(cell => {
      const text = cell.innerText.trim();
      if (!text || text.length > 4 || /\\s/.test(text)) return false;
      const range = document.createRange();
      range.selectNodeContents(cell);
      return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
    }).map(cell => cell.innerText.trim()),
  };
})()"""


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="no Chromium")
def test_wide_tables_use_the_window_and_the_head_names_the_document(tmp_path, write_json):
    assert CHROMIUM, "CI must have Chromium (installed by .ci/run)"
    path, page = build(write_json(_layout_document()), tmp_path)
    assert page.get("lang") == "zh"  # the watermark title is English; the document is not
    assert page.findtext("head/title") == "Evaluation Only. Created with a PDF tool"
    real, _ = build(REAL / "legacy-pdf2md-v3.6.0_parsex-sdk_15.json", tmp_path / "real")
    browser = DevTools(tmp_path / "profile")
    seen = {}
    try:
        for name, url in (("made", Path(path).as_uri()), ("real", Path(real).as_uri())):
            session = browser.open(url)
            for width in (1400, 700):
                browser.call("Emulation.setDeviceMetricsOverride", {
                    "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                    session)
                seen[name, width] = browser.evaluate(session, MEASURE_LAYOUT)
    finally:
        browser.close()
    wide = seen["made", 1400]
    big, small = wide["tables"]
    text_left, text_right = wide["text"]
    assert big["right"] - big["left"] > text_right - text_left + 100  # out of the column
    assert not big["scrolls"] and big["right"] <= wide["window"]
    assert small["left"] == text_left and small["right"] <= text_right  # in the column
    assert all(size >= wide["body_size"] for size in wide["heading_sizes"])
    narrow = seen["made", 700]
    assert narrow["tables"][0]["scrolls"] and not narrow["page_scrolls"]  # the table scrolls
    for (name, width), layout in seen.items():
        assert not layout["page_scrolls"], (name, width)
        assert all(t["right"] <= layout["window"] for t in layout["tables"]), (name, width)
    assert not any(t["scrolls"] for t in seen["real", 1400]["tables"])  # wide, and they fit
    # the real result's wide tables have short CJK labels (分类, A股, 议案序号) that a browser
    # would break between characters: each stays on one line, at either width
    assert not seen["real", 1400]["broken_labels"] and not seen["real", 700]["broken_labels"]
