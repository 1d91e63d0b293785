"""The review page: what the engine found, box by box, drawn over each page.

One section per page: the page at its aspect ratio (its image behind it when there is one),
every element with coordinates as a box (its four-point polygon, coloured and labelled by type,
numbered in reading order; a table's cell grid inside it), connectors for continuation chains
and caption links, and a summary.  Selecting a box (click, or Enter on a focused box) shows the
element's converted content in a side panel; elements without coordinates are listed.

No script at all: the panel is the box's ``:target``, the tooltips ``:hover``/``:focus``, the
type filters checkboxes read by ``:has()`` in the static style sheet.  The CSP forbids scripts.
Input text reaches the page only escaped (``html.escape`` or lxml), element HTML comes from
``element_html`` like the HTML page's, and every URL passes ``images.place``/``safe_url``.

Streaming: the raw elements arrive in input order and are written one page at a time (a page's
boxes are held until the page ends, nothing more).  Page sizes and page images that the input
gives only after its elements (``pages[]``) are applied by a trailing ``<style>`` block of
per-page CSS variables.  With ``--review-pdf`` each page is rendered from the PDF (pypdfium2,
the ``[review]`` extra) as its section is written.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

from lxml import etree

from ..element_html import ElementHtml
from ..errors import UsageError
from ..images import EMBED, FILE, IMG_SRC, LINK, LOAD, ImageRef, image_ref_from
from ..model import KNOWN_TYPES, DocumentInfo, Element, PageInfo
from ..tables import TableTooLarge, build_table
from .base import Option, Writer

CSP = ("default-src 'none'; img-src {img_src}; style-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

# Type -> (initials shown on its boxes, colour).  White text on every colour passes WCAG AA
# (4.5:1; tests/test_review.py checks), and the initials mean colour is never the only cue.
KINDS: dict[str, tuple[str, str]] = {
    "Title": ("Ti", "#b3261e"),
    "NarrativeText": ("Tx", "#1c5fa8"),
    "ListItem": ("Li", "#0a6f6a"),
    "Table": ("Tb", "#6f3c99"),
    "TableCaption": ("TC", "#9b3f86"),
    "Image": ("Im", "#a04a00"),
    "FigureCaption": ("FC", "#7f5700"),
    "Formula": ("Fx", "#2b6f2e"),
    "Chemical": ("Ch", "#4d6319"),
    "CodeSnippet": ("Cd", "#37474f"),
    "Header": ("Hd", "#5b5f66"),
    "Footer": ("Ft", "#68594b"),
    "PageNumber": ("PN", "#4a5866"),
    "PageBreak": ("PB", "#444444"),
    "UncategorizedText": ("Un", "#6d4c41"),
    "Other": ("?", "#1d1d1f"),
}
assert set(KINDS) - {"Other"} == KNOWN_TYPES
MARKED = frozenset({"Image", "Formula", "Chemical"})  # drawn dashed: pictures and formulas

DEFAULT_MIN_CONFIDENCE = 0.8
MAX_CELLS = 2000  # cells drawn per table (a grid of millions stays a box)
MAX_LOW_MARKS = 2000  # low-confidence characters drawn per page (all are counted)
MAX_LOW_LISTED = 60  # ... and listed per element
RECENT_IDS = 4096  # element ids remembered for links (bounded: links are local)
PDF_WIDTH_PX = 1400  # pages rendered from a PDF at about this width
MIN_SIDE = 0.004  # boxes thinner than this (page fractions) are drawn this thick

STYLE = """
:root{color-scheme:light;--fg:#1d1d1f;--bg:#eceef1;--line:#c9ccd1;--panel:26rem}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,
"Segoe UI","PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif}
a{color:#0b57b0}
header.bar{position:sticky;top:0;z-index:3;background:#fff;border-bottom:1px solid var(--line);
padding:.4rem 1rem;margin-right:var(--panel)}
header.bar h1{font-size:1rem;margin:0 0 .3rem}
.legend,.toggles{display:flex;flex-wrap:wrap;gap:.2rem .8rem;border:0;margin:0;padding:0}
.legend legend,.toggles legend{font-weight:600;float:left;margin-right:.5rem}
.legend label,.toggles label{display:inline-flex;align-items:center;gap:.3rem;cursor:pointer}
.sw{display:inline-block;min-width:2em;padding:0 .25em;border-radius:3px;color:#fff;
background:var(--c);font-size:.75rem;font-weight:700;text-align:center}
main{margin-right:var(--panel);padding:1rem}
.page{max-width:62rem;margin:0 auto 2.5rem}
.page h2{font-size:1rem;margin:0 0 .4rem}
.pimg{display:none;font-weight:400;font-size:.85rem;margin-left:.6rem}
.sheet{position:relative;width:100%;aspect-ratio:var(--ar,210/297);background:#fff center/100% 100%
no-repeat;box-shadow:0 1px 4px #0004}
.sheet>img.scan{position:absolute;left:0;top:0;width:100%;height:100%}
svg.links{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;overflow:visible}
.link{stroke:#d1006b;stroke-width:2;vector-effect:non-scaling-stroke;fill:none}
.link.continues{stroke-dasharray:6 4}.link.refers{stroke-dasharray:2 3}
.lowc{fill:#e0002a;fill-opacity:.35;stroke:#e0002a;stroke-width:1;vector-effect:non-scaling-stroke}
.box{position:absolute;display:block;color:var(--c);text-decoration:none;scroll-margin:30vh 0}
.box svg{position:absolute;left:0;top:0;width:100%;height:100%;overflow:visible}
.shape{fill:var(--c);fill-opacity:.07;stroke:var(--c);stroke-width:1.5;
vector-effect:non-scaling-stroke}
.marked .shape{stroke-dasharray:5 3;fill-opacity:.12}
.box:hover .shape,.box:focus .shape,.box:target .shape{fill-opacity:.25;stroke-width:3}
.cell{fill:none;stroke:var(--c);stroke-width:.8;stroke-opacity:.75;
vector-effect:non-scaling-stroke}
.cell.approx{stroke-dasharray:2 2}
.tag{position:absolute;left:0;bottom:100%;font-size:10px;line-height:1.25;padding:0 .25em;
background:var(--c);color:#fff;border-radius:2px 2px 0 0;white-space:nowrap;font-weight:700}
.tip{display:none;position:absolute;left:0;top:100%;z-index:2;background:#1d1d1f;color:#fff;
padding:.15em .5em;border-radius:3px;white-space:nowrap;font-size:12px;font-weight:400}
.box:hover,.box:focus{z-index:2}
.box:hover .tip,.box:focus .tip{display:block}
.box:focus{outline:2px solid #1d1d1f;outline-offset:1px}
.box:target{outline:3px solid var(--c);outline-offset:2px}
.detail{display:none}
:target+.detail{display:block;position:fixed;top:0;right:0;bottom:0;width:var(--panel);
overflow:auto;background:#fff;border-left:1px solid var(--line);padding:.8rem 1rem;z-index:5}
#panel-empty{position:fixed;top:0;right:0;bottom:0;width:var(--panel);padding:1rem;
background:#f8f8fa;border-left:1px solid var(--line);color:#555;z-index:4}
.detail h3{margin:0 0 .3rem;font-size:1rem}
.detail dl{display:grid;grid-template-columns:auto 1fr;gap:0 .6rem;margin:0 0 .6rem;
font-size:.85rem}.detail dt{color:#555}.detail dd{margin:0;overflow-wrap:anywhere}
.content{border-top:1px solid var(--line);padding-top:.5rem;overflow-x:auto}
.content table{border-collapse:collapse;font-size:.85rem}
.content th,.content td{border:1px solid var(--line);padding:.2rem .4rem;vertical-align:top}
.content img{max-width:100%;height:auto}
.content pre{background:#f2f2f5;padding:.5rem;overflow-x:auto}
.missing{color:#555;font-style:italic}
mark.low{background:#ffd6dc;color:inherit}
.summary{font-size:.85rem;margin:.4rem 0}.summary span{white-space:nowrap;margin-right:.6rem}
.elements{font-size:.85rem}.elements ol,.placeless ul{margin:.3rem 0;padding-left:0;
list-style:none;columns:18rem}
.elements li,.placeless li{break-inside:avoid}
.placeless{font-size:.85rem;background:#fff;padding:.4rem .8rem;margin-top:.5rem;
border:1px dashed var(--line)}
footer.source{color:#555;font-size:.8rem;padding:1rem;margin-right:var(--panel)}
@media (max-width:60rem){:root{--panel:0px}
:target+.detail{width:100%;top:auto;height:55vh;border-left:0;border-top:1px solid var(--line)}
#panel-empty{display:none}}
@media print{.detail,#panel-empty,header.bar{display:none}:root{--panel:0px}
.page{break-after:page}}
"""


def _filter_style() -> str:
    """The type filters, colours and toggles: static rules over fixed class names."""
    rules = [f".k-{key}{{--c:{colour}}}" for key, (_, colour) in KINDS.items()]
    rules += [f"body:has(#f-{key}:not(:checked)) .k-{key}{{display:none}}" for key in KINDS]
    rules += ["body:has(#f-cells:not(:checked)) .cell{display:none}",
              "body:has(#f-links:not(:checked)) .link{display:none}",
              "body:has(#f-low:not(:checked)) .lowc{display:none}",
              "body:has(#f-tags:not(:checked)) .tag{display:none}"]
    return "\n".join(rules)


def kind_of(type_: str) -> str:
    """The class key of an element type: a documented type, else ``Other`` (a string from the
    input never becomes a class name)."""
    return type_ if type_ in KINDS else "Other"


def quad(value: Any) -> list[float] | None:
    """Eight finite numbers (four corners, x then y) from ``coordinates``: the first eight of
    a polygon, or a 4-number box; None for anything else."""
    if type(value) is not list:
        return None
    if len(value) >= 8:
        vals = value[:8]
    elif len(value) == 4:
        vals = value
    else:
        return None
    for v in vals:
        if type(v) is not float and type(v) is not int:  # bool, str, None: not a coordinate
            return None
    out = [float(v) for v in vals]
    if not math.isfinite(sum(out)):
        return None
    if len(out) == 4:
        x0, y0, x1, y1 = out
        out = [x0, y0, x1, y0, x1, y1, x0, y1]
    return out


def _num(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) and math.isfinite(value) else None


def _confidence(item: dict[str, Any]) -> float | None:
    """A character's (or element's) recognition confidence, where the input gives one."""
    rec = item.get("recognition")
    if isinstance(rec, dict) and _num(rec.get("confidence")) is not None:
        return _num(rec.get("confidence"))
    return _num(item.get("confidence"))


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") or "0"


_SPECIAL = re.compile("[&<>\"']")


def _esc(text: str) -> str:
    """Text for HTML text and quoted attributes."""
    return html.escape(text, quote=True) if _SPECIAL.search(text) else text


class _Entry:
    """One element of the open page: what its box, list line and panel need."""

    __slots__ = ("index", "anchor", "key", "type", "id", "quad", "unit", "cells", "detail",
                 "notes", "low", "label", "tip")

    def __init__(self, el: Element, key: str) -> None:
        self.index = el.index
        self.anchor = f"e{el.index}"
        self.key = key
        self.type = el.type
        self.id = el.id
        self.quad = quad(el.coordinates)
        self.unit = el.coord_unit
        self.cells: list[list[float]] = []  # see ``_cells``
        self.detail = ("", "")  # the panel's HTML, before and after the links
        self.notes: list[str] = []  # links to and from other elements (HTML)
        self.low: list[tuple[list[float] | None, str, float]] = []  # low-confidence chars
        self.label = ""
        self.tip = ""


class _Page:
    """The open page: its entries, counts and connectors, written when the page ends."""

    def __init__(self, number: int | None, section_id: str) -> None:
        self.number = number
        self.section_id = section_id
        self.entries: list[_Entry] = []
        self.by_anchor: dict[str, _Entry] = {}
        self.counts: dict[str, int] = {}
        self.merged_tables = 0
        self.low_chars = 0
        self.links: list[tuple[str, str, str]] = []  # (from anchor, to anchor, kind)
        self.extent = [0.0, 0.0]  # the largest pixel coordinates met (pages without a size)


class ReviewWriter(Writer):
    name = "review"
    extension = "review.html"
    description = "a review page: every element's box drawn over its page, with its content"
    consumes = "raw"
    options = (
        Option("pdf", "the source PDF (or a folder of <stem>.pdf files, for a batch): each "
               "page is rendered behind its boxes (needs the [review] extra: pypdfium2)"),
        Option("min_confidence", "characters whose char_details confidence is below this are "
               "highlighted", DEFAULT_MIN_CONFIDENCE, kind=float),
    )

    # -- the document ------------------------------------------------------------------
    def begin(self, info: DocumentInfo) -> None:
        self.info = info
        self.images = self.option("images") or self.images_default
        self.render = ElementHtml(self, label="review")
        threshold = self.option("review_min_confidence")
        self.threshold = DEFAULT_MIN_CONFIDENCE if threshold is None else float(threshold)
        self.page: _Page | None = None
        self.sections: Counter[int | None] = Counter()  # sections written per page number
        self.later: dict[int, set[str]] = {}  # page -> what the trailing style must set
        self.recent: dict[str, tuple[str, int | None]] = {}  # id -> (anchor, page)
        self.pending: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()  # forward refs
        self.types_seen: set[str] = set()
        self.pdf = self._open_pdf(info)
        title = _esc(self.clean(info.title))
        toggles = "".join(
            f'<label><input type="checkbox" id="f-{key}" checked> {text}</label>'
            for key, text in (("cells", "cell grid"), ("links", "links"),
                              ("low", f"characters below {_fmt(self.threshold)}"),
                              ("tags", "labels")))
        legend = "".join(
            f'<label class="k-{key}"><input type="checkbox" id="f-{key}" checked>'
            f'<span class="sw" aria-hidden="true">{_esc(initials)}</span>'
            f'{"other types" if key == "Other" else key}</label>'
            for key, (initials, _) in KINDS.items())
        self.out.write(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" '
            f'content="{CSP.format(img_src=IMG_SRC[self.images])}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="xparse-convert">\n'
            f"<title>Review: {title}</title>\n<style>{STYLE}\n{_filter_style()}</style>\n"
            "</head>\n<body>\n"
            f'<header class="bar"><h1>Review: {title}</h1>\n'
            f'<fieldset class="legend"><legend>Types</legend>{legend}</fieldset>\n'
            f'<fieldset class="toggles"><legend>Show</legend>{toggles}</fieldset></header>\n'
            '<div id="panel-empty" aria-hidden="true"><p>Select a box (click it, or Tab to it '
            "and press Enter) to see what the engine found there and what it becomes.</p>"
            "<p>Boxes are numbered in reading order (the element's place in the input) and "
            "labelled with their type's initials.</p></div>\n<main>\n")

    def _open_pdf(self, info: DocumentInfo) -> Any:
        given = self.option("review_pdf")
        if not given:
            return None
        path = Path(given)
        if path.is_dir():
            stems = [info.name] + ([info.title] if info.filename else [])
            path = next((path / f"{s}.pdf" for s in stems if (path / f"{s}.pdf").is_file()),
                        path / f"{info.name}.pdf")
            if not path.is_file():
                self.diag.warn("review-pdf", f"no {path.name} in {given}; pages drawn without "
                               "their image")
                return None
        try:
            import pypdfium2
        except ImportError:
            raise UsageError("--review-pdf needs pypdfium2: pip install "
                             "'xparse-convert[review]'") from None
        try:
            return pypdfium2.PdfDocument(str(path))
        except (OSError, pypdfium2.PdfiumError) as exc:
            raise UsageError(f"--review-pdf {given}: cannot open it as a PDF ({exc})") from None

    def end(self, info: DocumentInfo) -> None:
        self._flush()
        self.out.write("</main>\n")
        self._write_later(info)
        source = _esc(self.clean(info.filename or info.name))
        self.out.write(f'<footer class="source">Review of {source}, made by xparse-convert '
                       "from the saved result; nothing is loaded from the network unless "
                       "--images url was given.</footer>\n</body>\n</html>\n")
        self._close_pdf()

    def abort(self) -> None:
        self._close_pdf()

    def _close_pdf(self) -> None:
        if getattr(self, "pdf", None) is not None:
            self.pdf.close()
            self.pdf = None

    # -- elements ----------------------------------------------------------------------
    def write(self, element: Element) -> None:
        if self.page is None or element.page != self.page.number:
            self._flush()
            count = self.sections[element.page]
            self.sections[element.page] += 1
            base = f"page-{element.page}" if element.page is not None else "no-page"
            self.page = _Page(element.page, base if not count else f"{base}-{count + 1}")
        entry = _Entry(element, kind_of(element.type))
        self.entry = entry
        self.node: etree._Element | None = None
        super().write(element)  # the type's method below renders ``self.node``
        self._describe(element, entry, self.node)
        self._remember(element, entry)
        page = self.page
        page.entries.append(entry)
        page.by_anchor[entry.anchor] = entry
        page.counts[entry.key] = page.counts.get(entry.key, 0) + 1
        self.types_seen.add(entry.key)

    # The content each type shows in the panel, as the HTML page shows it (the shared
    # renderer); furniture, page breaks and unknown types go to ``default``.
    def default(self, el: Element) -> None:
        self.node = self.render.block(el)

    narrative_text = default

    def title(self, el: Element) -> None:
        self.node = self.render.block(el, "h4", runs=self.line_runs(el))

    def list_item(self, el: Element) -> None:
        self.node = self.render.block(el, runs=self.line_runs(el))

    table_caption = list_item

    def image(self, el: Element) -> None:
        self.node = self.render.image(el)

    def formula(self, el: Element) -> None:
        self.node = self.render.formula(el)

    def chemical(self, el: Element) -> None:
        self.node = self.render.chemical(el)

    def code_snippet(self, el: Element) -> None:
        self.node = self.render.code(el)

    def table(self, el: Element) -> None:
        try:
            table = build_table(el.raw, el.text)
        except TableTooLarge as exc:
            self.diag.warn("table-too-large", f"{exc}; shown as text", el.where)
            self.node = self.render.block(el)
            return
        if table.has_spans:
            self.page.merged_tables += 1  # type: ignore[union-attr]
        self.entry.cells = _cells(el, table)
        self.node = self.render.table(el, table)

    def _describe(self, el: Element, entry: _Entry, content: etree._Element | None) -> None:
        number = el.index + 1
        initials = KINDS[entry.key][0]
        raw = el.raw
        confidence = _confidence(raw) if "confidence" in raw or "recognition" in raw else None
        if confidence is None and "confidence" in el.metadata:
            confidence = _num(el.metadata["confidence"])
        self._low_chars(el, entry)
        element_id = self.clean(el.id)
        type_text = self.clean(el.type)
        facts = [type_text, f"id {element_id}"]
        if el.page is not None:
            facts.append(f"page {el.page}")
        if confidence is not None:
            facts.append(f"confidence {_fmt(confidence)}")
        if entry.low:
            facts.append(f"{len(entry.low)} character(s) below {_fmt(self.threshold)}")
        entry.label = f"{number} {initials}"
        entry.tip = _esc(" · ".join(facts))  # kept as HTML: written twice
        sub = f" ({_esc(self.clean(el.sub_type))})" if el.sub_type else ""
        where = f"<dt>page</dt><dd>{el.page}</dd>" if el.page is not None else ""
        if confidence is not None:
            where += f"<dt>confidence</dt><dd>{_fmt(confidence)}</dd>"
        coords = ", ".join(map("{:.4g}".format, entry.quad)) + (
            " (pixels)" if entry.unit == "pixel" else "") if entry.quad is not None \
            else "none: no box on the page"
        head = (f'<h3><span class="sw k-{entry.key}">{_esc(initials)}</span> {number}. '
                f"{_esc(type_text)}</h3><dl><dt>type</dt><dd>{_esc(type_text)}{sub}</dd>"
                f"<dt>id</dt><dd>{_esc(element_id)}</dd><dt>reading order</dt><dd>{number} "
                f"(index {el.index})</dd>{where}<dt>coordinates</dt><dd>{coords}</dd></dl>")
        parts = []
        if entry.low:
            marks = "".join(f'<mark class="low" title="confidence {_fmt(c)}">{_esc(t)}</mark> '
                            for _, t, c in entry.low[:MAX_LOW_LISTED])
            parts.append(f"<p>Characters below {_fmt(self.threshold)}: {marks}"
                         + ("…" if len(entry.low) > MAX_LOW_LISTED else "") + "</p>")
        body = etree.tostring(content, method="html", encoding="unicode") \
            if content is not None else '<p class="missing">(nothing to show)</p>'
        parts.append(f'<div class="content">{body}</div>')
        entry.detail = (head, "".join(parts))

    def _low_chars(self, el: Element, entry: _Entry) -> None:
        """Characters of ``char_details`` (the element's and its cells') below the
        threshold."""
        sources = [el.raw.get("char_details")]
        structure = el.raw.get("table_structure")
        if isinstance(structure, dict) and isinstance(structure.get("cells"), list):
            sources += [c["char_details"] for c in structure["cells"]
                        if isinstance(c, dict) and "char_details" in c]
        for chars in sources:
            if not isinstance(chars, list):
                continue
            for char in chars:
                if not isinstance(char, dict):
                    continue
                c = _confidence(char)
                if c is not None and c < self.threshold:
                    text = char.get("text")
                    entry.low.append((quad(char.get("coordinates")),
                                      self.clean(text) if isinstance(text, str) else "", c))
        if entry.low:
            self.page.low_chars += len(entry.low)  # type: ignore[union-attr]

    def _remember(self, el: Element, entry: _Entry) -> None:
        """Links: continuation chains (``continuation_of``) and caption or reference links
        (``ref_element_id``, both ways), to elements met recently or met later."""
        page = self.page
        assert page is not None
        for target, kind in ((el.continuation_of, "continues"), (el.ref_id, "refers")):
            if not target or target == el.id:
                continue
            known = self.recent.get(target)
            if known is not None:
                self._link(entry, known, kind)
            else:
                waiting = self.pending.setdefault(target, [])
                if len(waiting) < 8:
                    waiting.append((entry.anchor, kind))
                if len(self.pending) > RECENT_IDS:
                    self.pending.popitem(last=False)
        if self.pending:
            for source_anchor, kind in self.pending.pop(el.id, ()):
                self._link_back(entry, source_anchor, kind)
        recent = self.recent
        recent[el.id] = (entry.anchor, el.page)
        if len(recent) > 2 * RECENT_IDS:  # keep the newest half (a dict keeps its order)
            self.recent = dict(list(recent.items())[-RECENT_IDS:])

    def _link(self, entry: _Entry, target: tuple[str, int | None], kind: str) -> None:
        anchor, page_number = target
        verb = "continues" if kind == "continues" else "refers to"
        where = f" on page {page_number}" if page_number is not None else ""
        entry.notes.append(f'<li>{verb} <a href="#{anchor}">element {int(anchor[1:]) + 1}</a>'
                           f"{where}</li>")
        page = self.page
        assert page is not None
        other = page.by_anchor.get(anchor)
        if other is not None:
            page.links.append((anchor, entry.anchor, kind))
            other.notes.append(f'<li>{"continued by" if kind == "continues" else "referred to by"}'
                               f' <a href="#{entry.anchor}">element {entry.index + 1}</a></li>')

    def _link_back(self, entry: _Entry, source: str, kind: str) -> None:
        """``entry`` is the target of an earlier element's link."""
        page = self.page
        assert page is not None
        other = page.by_anchor.get(source)
        verb = "continued by" if kind == "continues" else "referred to by"
        entry.notes.append(f'<li>{verb} <a href="#{source}">element {int(source[1:]) + 1}</a>'
                           "</li>")
        if other is not None:
            page.links.append((source, entry.anchor, kind))
            other.notes.append(f'<li>{"continues" if kind == "continues" else "refers to"} '
                               f'<a href="#{entry.anchor}">element {entry.index + 1}</a></li>')

    # -- one page ----------------------------------------------------------------------
    def _page_size(self, page: _Page) -> tuple[float, float] | None:
        info = self.info.pages.get(page.number) if page.number is not None else None
        if info is not None and info.width and info.height and info.width > 0 and \
                info.height > 0:
            return info.width, info.height
        return None

    def _flush(self) -> None:
        page = self.page
        if page is None:
            return
        self.page = None
        out = self.out
        number = page.number
        size = self._page_size(page)
        picture, pdf_size = self._page_picture(page)
        if size is None and pdf_size is not None:
            size = pdf_size
        pixel = any(e.quad is not None and e.unit == "pixel" for e in page.entries)
        space = size  # what pixel coordinates are divided by
        if pixel and space is None:
            xs = [v for e in page.entries if e.quad and e.unit == "pixel" for v in e.quad[0::2]]
            ys = [v for e in page.entries if e.quad and e.unit == "pixel" for v in e.quad[1::2]]
            space = size = (max(xs) * 1.02 or 1.0, max(ys) * 1.02 or 1.0)
        style = f' style="--ar:{_fmt(size[0])}/{_fmt(size[1])}"' if size else ""
        if size is None and number is not None:
            self.later.setdefault(number, set()).add("size")
        pg_class = f" pg-{number}" if number is not None else ""
        title = f"Page {number}" if number is not None else "Elements without a page number"
        if self.sections[number] > 1:
            title += f" (part {self.sections[number]})"
        out.write(f'<section class="page{pg_class}" id="{page.section_id}" '
                  f'aria-labelledby="{page.section_id}-h"{style}>\n'
                  f'<h2 id="{page.section_id}-h">{title}')
        if number is not None:
            link = self._page_link(number)
            out.write(link if link else f'<a class="pimg" href="#pimg-{number}">page image</a>')
        out.write("</h2>\n")
        boxed = [e for e in page.entries if e.quad is not None and number is not None]
        if number is not None:
            out.write('<div class="sheet">')
            if picture:
                out.write(f'<img class="scan" src="{_esc(picture)}" alt="page {number} '
                          'as rendered" loading="lazy">')
            centres: dict[str, tuple[float, float]] = {}
            boxes: list[str] = []
            overlay: list[str] = []
            framed = [(_frame(e, space), e) for e in boxed]
            # larger boxes first, so that the smaller ones inside them stay on top
            framed.sort(key=lambda fe: (fe[0][0] - fe[0][2]) * (fe[0][3] - fe[0][1]))
            for frame, entry in framed:
                x0, y0, x1, y1 = frame
                centres[entry.anchor] = ((x0 + x1) / 2, (y0 + y1) / 2)
                boxes.append(self._box(entry, frame, space))
                for q, _, _ in entry.low:
                    if q is not None and len(overlay) < MAX_LOW_MARKS:
                        pts = _points(q, entry.unit, space)
                        overlay.append(f'<polygon class="lowc" points="{pts}"></polygon>')
            for a, b, kind in page.links:
                if a in centres and b in centres:
                    (ax, ay), (bx, by) = centres[a], centres[b]
                    overlay.append(f'<line class="link {kind}" x1="{_fmt(ax * 1000)}" '
                                   f'y1="{_fmt(ay * 1000)}" x2="{_fmt(bx * 1000)}" '
                                   f'y2="{_fmt(by * 1000)}"></line>')
            out.write('<svg class="links" viewBox="0 0 1000 1000" preserveAspectRatio="none" '
                      'aria-hidden="true">' + "".join(overlay) + "</svg>\n")
            out.write("".join(boxes))
            out.write("</div>\n")
            out.write(self._summary(page, len(boxed)))
            if boxed:
                items = "".join(
                    f'<li class="k-{e.key}"><a href="#{e.anchor}"><span class="sw" '
                    f'aria-hidden="true">{_esc(KINDS[e.key][0])}</span> {e.index + 1}. '
                    f"{e.tip}</a></li>" for e in boxed)
                out.write(f'<details class="elements"><summary>{len(boxed)} boxes in reading '
                          f"order</summary><ol>{items}</ol></details>\n")
        unplaced = [e for e in page.entries if e.quad is None] if boxed else page.entries
        if unplaced:
            items = "".join(
                f'<li class="k-{e.key}"><a class="nobox" id="{e.anchor}" href="#{e.anchor}">'
                f'<span class="sw" aria-hidden="true">{_esc(KINDS[e.key][0])}</span> '
                f"{e.index + 1}. {e.tip}</a>{_detail(e)}</li>" for e in unplaced)
            out.write(f'<div class="placeless"><strong>Without coordinates ({len(unplaced)}, '
                      f"no box)</strong><ul>{items}</ul></div>\n")
        out.write("</section>\n")

    def _box(self, entry: _Entry, frame: tuple[float, float, float, float],
             space: tuple[float, float] | None) -> str:
        x0, y0, x1, y1 = frame
        w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
        assert entry.quad is not None
        local = _local(entry.quad, entry.unit, space, frame)
        cells = _cell_path(entry, space, frame) if entry.cells else ""
        marked = " marked" if entry.type in MARKED else ""
        label = f"{entry.index + 1}. {entry.tip}"
        return (f'<a class="box k-{entry.key}{marked}" id="{entry.anchor}" href="#{entry.anchor}"'
                f' data-index="{entry.index}" aria-label="{label}" style="left:'
                f'{x0 * 100:.3f}%;top:{y0 * 100:.3f}%;width:{w * 100:.3f}%;height:'
                f'{h * 100:.3f}%"><svg viewBox="0 0 1000 1000" preserveAspectRatio="none" '
                f'aria-hidden="true"><polygon class="shape" points="{local}"></polygon>'
                f'{cells}</svg><span class="tag" aria-hidden="true">'
                f'{_esc(entry.label)}</span><span class="tip" aria-hidden="true">'
                f"{entry.tip}</span></a>{_detail(entry)}\n")

    def _summary(self, page: _Page, boxed: int) -> str:
        total = sum(page.counts.values())
        counts = "".join(f'<span><span class="sw k-{k}" aria-hidden="true">'
                         f"{_esc(KINDS[k][0])}</span> {n} {k}</span>"
                         for k, n in sorted(page.counts.items(), key=lambda kv: -kv[1]))
        facts = [f"{total} element{'s' if total != 1 else ''}, {boxed} with a box"]
        if page.merged_tables:
            facts.append(f"{page.merged_tables} table(s) with merged cells")
        if page.low_chars:
            facts.append(f"{page.low_chars} character(s) below {_fmt(self.threshold)}")
        return (f'<p class="summary"><strong>{"; ".join(facts)}.</strong> {counts}</p>\n')

    # -- page pictures -------------------------------------------------------------------
    def _page_picture(self, page: _Page) -> tuple[str | None, tuple[float, float] | None]:
        """The picture behind a page written now (its source, and the PDF page's size): the
        PDF page, else base64 page data of the input; None when there is none yet."""
        number = page.number
        if number is None or self.images == "none":
            size = self._pdf_size(number)
            return None, size
        if self.pdf is not None and 1 <= number <= len(self.pdf):
            pdf_page = self.pdf[number - 1]
            try:
                width, height = pdf_page.get_size()
                scale = min(3.0, PDF_WIDTH_PX / width) if width > 0 else 1.0
                image = pdf_page.render(scale=scale).to_pil()
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="JPEG", quality=85)
            finally:
                pdf_page.close()
            data = buffer.getvalue()
            if self.images == "files":
                return self.context.assets.add(data, "jpg"), (width, height)
            import base64

            return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"), \
                (width, height)
        info = self.info.pages.get(number)
        ref = _page_data(info)
        if ref is not None:
            placement = self.place_picture(ref)
            if placement.action in (EMBED, FILE):
                return self.picture_location(placement), None
        if info is not None and info.image_url:
            placement = self.place_picture(ImageRef(info.image_url, None, None))
            if placement.action == LOAD:
                return placement.url, None
        return None, None

    def _pdf_size(self, number: int | None) -> tuple[float, float] | None:
        if self.pdf is None or number is None or not 1 <= number <= len(self.pdf):
            return None
        pdf_page = self.pdf[number - 1]
        try:
            return tuple(pdf_page.get_size())  # type: ignore[return-value]
        finally:
            pdf_page.close()

    def _page_link(self, number: int) -> str:
        """A link to a page image the page does not load (``--images`` other than url)."""
        info = self.info.pages.get(number)
        if info is None:
            self.later.setdefault(number, set()).add("image")
            return ""
        if info.image_url and self.images != "url":
            placement = self.place_picture(ImageRef(info.image_url, None, None))
            if placement.action == LINK and placement.url:
                return (f' <a class="pimg" style="display:inline" href="{_esc(placement.url)}" '
                        'rel="noopener noreferrer">page image (not loaded)</a>')
        return ""

    def _write_later(self, info: DocumentInfo) -> None:
        """What only the end of the input told: page sizes and page images (``pages[]``
        after the elements), as per-page CSS variables and rules, and links."""
        rules = [f".legend .k-{key}{{display:none}}" for key in KINDS
                 if key not in self.types_seen]
        links: list[str] = []
        for number, wanted in sorted(self.later.items()):
            page = info.pages.get(number)
            if page is None:
                continue
            if "size" in wanted and page.width and page.height and page.width > 0 and \
                    page.height > 0:
                rules.append(f".pg-{number}{{--ar:{_fmt(page.width)}/{_fmt(page.height)}}}")
            if "image" not in wanted or self.images == "none":
                continue
            ref = _page_data(page)
            if ref is None and page.image_url:
                ref = ImageRef(page.image_url, None, None)
            placement = self.place_picture(ref) if ref is not None else None
            if placement is None:
                continue
            if placement.action in (EMBED, FILE, LOAD):
                src = self.picture_location(placement)
                if src and not any(c in src for c in "\"'()\\<>\n"):
                    rules.append(f'.pg-{number} .sheet{{background-image:url("{src}")}}')
            elif placement.action == LINK and placement.url:
                rules.append(f".pg-{number} .pimg{{display:inline}}")
                links.append(f'<li id="pimg-{number}">Page {number}: <a href="'
                             f'{_esc(placement.url)}" rel="noopener noreferrer">'
                             f"{_esc(placement.url)}</a></li>")
        if links:
            self.out.write('<section class="page-images"><h2>Page images (not loaded; '
                           f"--images url loads them)</h2><ul>{''.join(links)}</ul></section>\n")
        if rules:
            self.out.write("<style>\n" + "\n".join(rules) + "\n</style>\n")


def _cells(el: Element, table: Any) -> list[list[float]]:
    """The cell grid: each cell's own polygon where the input gives one (in the element's
    unit), else the grid the table model makes, spread evenly over the box (as fractions of
    it, with a ninth value: approximate, drawn dashed)."""
    found: list[list[float]] = []
    structure = el.raw.get("table_structure")
    cells = structure.get("cells") if isinstance(structure, dict) else None
    if isinstance(cells, list):
        for cell in cells[:MAX_CELLS]:
            q = quad(cell.get("coordinates")) if isinstance(cell, dict) else None
            if q is not None:
                found.append(q)
    if not found and table.n_rows and table.n_cols:
        rows, cols = table.n_rows, table.n_cols
        for cell in table.cells[:MAX_CELLS]:
            x0, y0 = cell.col / cols, cell.row / rows
            x1, y1 = (cell.col + cell.col_span) / cols, (cell.row + cell.row_span) / rows
            found.append([x0, y0, x1, y0, x1, y1, x0, y1, 1.0])
    return found


_CELL = "M{:.0f} {:.0f}L{:.0f} {:.0f}L{:.0f} {:.0f}L{:.0f} {:.0f}Z"


def _cell_path(entry: _Entry, space: tuple[float, float] | None,
               frame: tuple[float, float, float, float]) -> str:
    """A table's cells as one SVG path in its box's 1000 x 1000 view."""
    if len(entry.cells[0]) == 9:  # the model's grid, in fractions of the box
        d = "".join(_CELL.format(*[v * 1000 for v in c[:8]]) for c in entry.cells)
        return f'<path class="cell approx" d="{d}"></path>'
    x0, y0, x1, y1 = frame
    sx, sy = 1000 / max(x1 - x0, 1e-6), 1000 / max(y1 - y0, 1e-6)
    parts = []
    for q in entry.cells:
        a, b, c, d_, e, f, g, k = _norm(q, entry.unit, space)
        parts.append(_CELL.format((a - x0) * sx, (b - y0) * sy, (c - x0) * sx, (d_ - y0) * sy,
                                  (e - x0) * sx, (f - y0) * sy, (g - x0) * sx, (k - y0) * sy))
    return f'<path class="cell" d="{"".join(parts)}"></path>'


def _norm(q: list[float], unit: str, space: tuple[float, float] | None) -> list[float]:
    """A polygon in page fractions (0..1): pixel coordinates divided by the page size."""
    if unit == "pixel" and space is not None:
        w, h = space
        return [v / (w if i % 2 == 0 else h) for i, v in enumerate(q)]
    return q


_LOCAL = "{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}"
_PAGE = "{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}"


def _frame(entry: _Entry, space: tuple[float, float] | None
           ) -> tuple[float, float, float, float]:
    """The box's bounds in page fractions, kept on the page."""
    assert entry.quad is not None
    x0, y0, x1, y1, x2, y2, x3, y3 = _norm(entry.quad, entry.unit, space)
    left, top = max(min(x0, x1, x2, x3), 0.0), max(min(y0, y1, y2, y3), 0.0)
    right, bottom = min(max(x0, x1, x2, x3), 1.0), min(max(y0, y1, y2, y3), 1.0)
    if right - left < MIN_SIDE:  # a line (a page break's rule) is drawn a little thick
        left = min(max((left + right - MIN_SIDE) / 2, 0.0), 1.0 - MIN_SIDE)
        right = left + MIN_SIDE
    if bottom - top < MIN_SIDE:
        top = min(max((top + bottom - MIN_SIDE) / 2, 0.0), 1.0 - MIN_SIDE)
        bottom = top + MIN_SIDE
    return left, top, right, bottom


def _local(q: list[float], unit: str, space: tuple[float, float] | None,
           frame: tuple[float, float, float, float]) -> str:
    """SVG points of a polygon inside its box's own 1000 x 1000 view."""
    x0, y0, x1, y1 = frame
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    sx, sy = 1000 / w, 1000 / h
    a, b, c, d, e, f, g, k = _norm(q, unit, space)
    # whole units of a 1000 x 1000 view: a thousandth of the box is finer than a pixel
    return _LOCAL.format(
        (a - x0) * sx, (b - y0) * sy, (c - x0) * sx, (d - y0) * sy, (e - x0) * sx,
        (f - y0) * sy, (g - x0) * sx, (k - y0) * sy)


def _points(q: list[float], unit: str, space: tuple[float, float] | None) -> str:
    """SVG points of a polygon in the page's 1000 x 1000 view."""
    return _PAGE.format(*[v * 1000 for v in _norm(q, unit, space)])


def _detail(entry: _Entry) -> str:
    """The side panel of an element (shown when its anchor is the page's target)."""
    notes = f'<ul class="rel">{"".join(entry.notes)}</ul>' if entry.notes else ""
    head, tail = entry.detail
    # "#close" names no element: the panel closes and the page does not scroll
    return (f'<div class="detail" role="region" aria-label="element {entry.index + 1}">{head}'
            f'{notes}{tail}<p><a href="#close">close</a></p></div>')


def _page_data(info: PageInfo | None) -> ImageRef | None:
    """A page picture given as data in the page's own fields (``image.base64``, legacy)."""
    if info is None or not info.raw:
        return None
    image = info.raw.get("image")
    if isinstance(image, dict) and isinstance(image.get("base64"), str):
        return image_ref_from(image, {})
    return None
