"""HTML: one safe, self-contained, navigable page, written as elements arrive.

Safe by construction: no markup from the input is ever copied.  Elements become HTML in
``element_html`` (text escaped by lxml, tables rebuilt from the model's grid, formula MathML
rebuilt from an allow-list, every URL through ``images.safe_url``); the few tags written by
hand here are escaped with ``html.escape``.  A Content-Security-Policy that forbids scripts
backs it up; its ``img-src`` allows exactly what the ``--images`` mode writes (``images.IMG_SRC``).
"""

from __future__ import annotations

import html
import io
from typing import IO, Any, NamedTuple

from lxml import etree

from ..element_html import ElementHtml, element_attrs
from ..images import IMG_SRC
from ..inline import plain_text
from ..language import LanguageGuess
from ..model import DocumentInfo, Element
from ..tables import Cell, Table
from .base import Writer
from .page_layout import MOST_ANY, MOST_ASCII, NARROW, READABLE, cell_needs, measure

MAX_EMPTY_MARKERS = 20
# The text column (``main>*`` below) in the table's half-ems (.9rem text: 49.5rem is 110), and
# what a column adds to its text: .5rem padding each side and a border.  A table whose
# columns cannot be narrower than that (``page_layout.cell_needs``) is ``wide``.
TEXT_COLUMN_HALF_EMS = 110
CELL_PAD_HALF_EMS = 2.4
HOLD_CHARS = 4_000_000  # the body held for the head is at most the first page, and this
CSP = ("default-src 'none'; img-src {img_src}; style-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

STYLE = """
:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#fff;--muted:#6e6e73;--line:#d2d2d7;
--accent:#0b63c5;--head:#f2f2f5}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8ed;--bg:#161617;--muted:#a1a1a6;
--line:#3a3a3c;--accent:#6cb4ff;--head:#242426}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.6 system-ui,-apple-system,
"Segoe UI","PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;display:flex;
flex-direction:column}
main{width:100%;margin:0 auto;padding:1rem 1.25rem 4rem}
#toc{order:-1;padding:1rem 1.25rem;border-bottom:1px solid var(--line);font-size:.9rem}
#toc h2{font-size:1rem;margin:0 0 .5rem}#toc ol{list-style:none;margin:0;padding-left:1rem}
#toc>ol{padding-left:0}#toc a{color:var(--fg);text-decoration:none}
#toc a:hover{color:var(--accent);text-decoration:underline}
@media (min-width:70rem){body{display:grid;grid-template-columns:18rem minmax(0,1fr);
align-items:start}#toc{order:0;grid-column:1;grid-row:1;position:sticky;top:0;
max-height:100vh;overflow:auto;border-bottom:0;border-right:1px solid var(--line)}
main{grid-column:2;grid-row:1;margin:0}}
h1,h2,h3,h4,h5,h6{line-height:1.3;margin:1.6em 0 .5em}
h5,h6{font-size:1rem}h6{font-style:italic}
a{color:var(--accent)}
.page-marker{margin:2rem auto 1rem;border-top:1px dashed var(--line);color:var(--muted);
font-size:.75rem;text-align:right}
.page-marker span{position:relative;top:-.8em;background:var(--bg);padding-left:.5em}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid var(--line);padding:.3rem .5rem;vertical-align:top;text-align:left}
.keep{white-space:nowrap}
thead th{background:var(--head)}
tr.page-start>*{border-top:2px dashed var(--muted)}
figure{margin:1.2rem 0}figcaption{color:var(--muted);font-size:.9rem;margin:.3rem 0}
img{max-width:100%;height:auto}
pre{background:var(--head);padding:.8rem 1rem;overflow-x:auto;border-radius:6px}
code{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:.9em}
.formula{overflow-x:auto;margin:1rem auto;text-align:center}
.formula .latex{display:block;color:var(--muted)}
.furniture{color:var(--muted);font-size:.85rem}
main>*{max-width:49.5rem;margin-left:auto;margin-right:auto}
main>.wide{max-width:100%;width:fit-content}main>.wide figcaption{max-width:49.5rem}
.missing{color:var(--muted);font-style:italic}
footer.source{color:var(--muted);font-size:.8rem;padding:1rem 1.25rem}
@media print{#toc{display:none}body{display:block}main>*{max-width:none}
.page-marker{break-before:page;border:0}.page-marker span{top:0}
a{color:inherit}table{display:table}}
"""


class _Heading(NamedTuple):
    """A heading the contents list links to."""

    level: int
    text: str  # plain text, math linear
    anchor: str  # its id (``h-N``)


class HtmlWriter(Writer):
    name = "html"
    extension = "html"
    description = "one self-contained, safe HTML page with a table of contents"

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return cls.picture_fields(options)

    def begin(self, info: DocumentInfo) -> None:
        self.images = self.option("images") or self.images_default
        self.titles: list[_Heading] = []
        self.pages_marked: set[int] = set()
        self.last_page: int | None = None
        self.render = ElementHtml(self)
        self.lists: list[str] = []  # open list tags, innermost last
        self.list_levels: list[int] = []
        self.list_run = 0  # the list run (``ListMark.run``) the open lists show
        self.info = info
        self.language = LanguageGuess()
        # The head names the document's first title and its language: the body is held
        # (in ``out``) until the first page ends, so that every title on it counts for the
        # language (a first title can be a watermark: "Evaluation Only. Created with ...").
        self.page_out: IO[str] = self.out
        self.out = io.StringIO()

    def _write_head(self) -> None:
        """The head, then what was held; from here on the body goes straight out."""
        held, self.out = self.out, self.page_out
        assert isinstance(held, io.StringIO)
        title = html.escape(self.titles[0].text if self.titles else self.clean(self.info.title))
        lang = html.escape(self.language.language(self.info.metadata))
        self.out.write(
            f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" '
            f'content="{CSP.format(img_src=IMG_SRC[self.images])}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="xparse-convert">\n'
            f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n")
        self.out.write(held.getvalue())

    @property
    def _holding(self) -> bool:
        return self.out is not self.page_out

    # -- plumbing --------------------------------------------------------------------
    def _emit(self, node: etree._Element) -> None:
        self.out.write(etree.tostring(node, method="html", encoding="unicode"))
        self.out.write("\n")

    def _mark_page(self, page: int) -> None:
        """A visible page label with an ``#page-N`` anchor, once per page; a few pages
        without content of their own get empty markers so their anchors resolve too (not a
        page-number gap of millions)."""
        start = (self.last_page + 1) if self.last_page is not None and \
            0 < page - self.last_page <= MAX_EMPTY_MARKERS else page
        for number in range(start, page + 1):
            if number in self.pages_marked:
                continue
            self._close_lists(-1)  # a run goes on after the marker, from its number
            self.pages_marked.add(number)
            self.out.write(f'<div class="page-marker" id="page-{number}" '
                           f'data-page="{number}"><span>Page {number}</span></div>\n')

    def write(self, element: Element) -> None:
        self.language.see(element)
        if self._holding and self.language.settled:
            self._write_head()  # the first page has ended: its titles name the document
        if element.page is not None and element.page != self.last_page:
            self._mark_page(element.page)
            self.last_page = max(element.page, self.last_page or 0)
        if element.type != "ListItem" and element.type != "PageBreak":
            self._close_lists(-1)  # PageBreak writes nothing: a list goes on across it
        super().write(element)
        if self._holding and self.out.tell() > HOLD_CHARS:
            self._write_head()  # a first page this long (or a result without pages)

    # -- text blocks -----------------------------------------------------------------
    def title(self, el: Element) -> None:
        runs = self.line_runs(el)
        if not runs:
            return
        level = el.heading_level
        anchor = f"h-{len(self.titles) + 1}"
        self.titles.append(_Heading(level, plain_text(runs, linear_math=True), anchor))
        node = etree.Element(f"h{min(level, 6)}", id=anchor, **element_attrs(el))
        if level > 6:
            node.set("class", f"level-{level}")
        self.render.fill(node, runs)
        self._emit(node)

    def narrative_text(self, el: Element) -> None:
        self._emit_if(self.render.block(el))

    def _emit_if(self, node: etree._Element | None) -> None:
        if node is not None:
            self._emit(node)

    default = narrative_text

    def header(self, el: Element) -> None:
        self._emit_if(self.render.block(el, attrs={"class": f"furniture {el.type.lower()}"}))

    def page_break(self, el: Element) -> None:
        """Pages are marked where they start; a PageBreak adds nothing."""

    def list_item(self, el: Element) -> None:
        """Lists follow ``stages.number_lists``: a list reopened after a page marker or a
        furniture paragraph starts at its item's number (``<ol start=N>``)."""
        mark = self.list_mark(el)
        tag = "ol" if mark.ordered else "ul"
        level = mark.level
        if mark.run != self.list_run:
            self._close_lists(-1)
            self.list_run = mark.run
        # close deeper lists, or a list of the other kind at this level
        while self.list_levels and (self.list_levels[-1] > level or (
                self.list_levels[-1] == level and self.lists[-1] != tag)):
            self._close_one()
        if self.list_levels and self.list_levels[-1] == level:
            self.out.write("</li>\n")
        else:
            start = f' start="{mark.number}"' if mark.number > 1 else ""
            self.out.write(f"<{tag}{start}>\n")
            self.lists.append(tag)
            self.list_levels.append(level)
        item = etree.Element("li", **element_attrs(el))
        self.render.fill(item, self.list_runs(el))
        markup = etree.tostring(item, method="html", encoding="unicode")
        self.out.write(markup[:-len("</li>")])  # closed when the next item or the list ends

    def _close_one(self) -> None:
        self.out.write(f"</li>\n</{self.lists.pop()}>\n")
        self.list_levels.pop()

    def _close_lists(self, level: int) -> None:
        while self.list_levels and self.list_levels[-1] > level:
            self._close_one()

    def code_snippet(self, el: Element) -> None:
        self._emit(self.render.code(el))

    def formula(self, el: Element) -> None:
        self._emit_if(self.render.formula(el))

    def chemical(self, el: Element) -> None:
        self._emit_if(self.render.chemical(el))

    def table_caption(self, el: Element) -> None:
        self._emit_if(self.render.block(el, attrs={"class": "caption"},
                                        runs=self.line_runs(el)))

    # -- tables and pictures -----------------------------------------------------------
    def table(self, el: Element) -> None:
        table = el.table
        if table is None:
            return
        node = self.render.table(el, table, row_attrs=self._row_attrs(table),
                                 cell_attrs=_keep_short_lines)
        if _wide(table):
            node.set("class", "wide")
        self._emit(node)
        self.last_page = max([self.last_page or 0, *table.pages])

    def _row_attrs(self, table: Table):  # type: ignore[no-untyped-def]
        """Rows know their source page and element; a row that starts a new page is marked
        (and carries that page's anchor when the page has no marker yet)."""
        def attrs(r: int) -> dict[str, str]:
            out: dict[str, str] = {}
            page = table.row_pages[r] if r < len(table.row_pages) else None
            element_id = table.row_element_ids[r] if r < len(table.row_element_ids) else None
            if page is not None:
                out["data-page"] = str(page)
                if r and table.row_pages[r - 1] != page:
                    out["class"] = "page-start"
                    if page not in self.pages_marked:
                        self.pages_marked.add(page)
                        out["id"] = f"page-{page}"
            if element_id:
                out["data-element-id"] = self.clean(element_id)
            return out
        return attrs

    def image(self, el: Element) -> None:
        self._emit_if(self.render.image(el))

    # -- the end -----------------------------------------------------------------------
    def end(self, info: DocumentInfo) -> None:
        self._close_lists(-1)
        if self._holding:
            self._write_head()
        self.out.write("</main>\n")
        self._emit(self._toc())
        source = html.escape(self.clean(info.filename or info.name))
        details = []
        if info.schema_version:
            details.append(f"schema {html.escape(info.schema_version)}")
        if info.file_id:
            details.append(f"file id {html.escape(self.clean(info.file_id))}")
        extra = f" ({', '.join(details)})" if details else ""
        self.out.write(f'<footer class="source">Converted from {source}{extra} by '
                       "xparse-convert.</footer>\n</body>\n</html>\n")

    def _toc(self) -> etree._Element:
        """Nested lists of links to the headings, built once every title is known; CSS puts
        it before (narrow screens) or beside (wide screens) the body."""
        nav = etree.Element("nav", id="toc", **{"aria-label": "Contents"})
        heading = etree.SubElement(nav, "h2")
        heading.text = "Contents"
        root = etree.SubElement(nav, "ol")
        # each frame: [level of its items, its <ol>, its last <li>]
        stack: list[list[Any]] = []
        for level, text, anchor in self.titles:
            while stack and stack[-1][0] > level:
                stack.pop()
            if not stack:
                stack.append([level, root, None])
            elif stack[-1][0] < level:
                parent = stack[-1][2]
                nested = etree.SubElement(parent, "ol") if parent is not None else stack[-1][1]
                stack.append([level, nested, None])
            item = etree.SubElement(stack[-1][1], "li")
            link = etree.SubElement(item, "a", href=f"#{anchor}")
            link.text = text
            stack[-1][2] = item
        return nav


_KEEP = {"class": "keep"}


def _keep_short_lines(cell: Cell) -> dict[str, str]:
    """A cell whose lines are all short (at most ``READABLE``, about four CJK characters)
    keeps each on one line, as DOCX does (``page_layout.cell_needs``): a browser may break
    CJK text between any two characters, and squeezes the short labels of a wide table
    (分类, 议案序号) to one character a line.  Text without CJK breaks only at spaces."""
    text = cell.text
    if not text or text.isascii():
        return {}
    lines = text.split("\n")
    if max(map(len, lines)) * NARROW > READABLE:  # no character is narrower than NARROW
        return {}
    return _KEEP if max(map(measure, lines)) <= READABLE else {}


def _wide(table: Table) -> bool:
    """True when the table's columns cannot all fit the text column (their least widths,
    ``page_layout.cell_needs``): it may then take the window's width, and scroll only
    beyond it.  Cheap: a bound from the texts' lengths settles most tables, and a cell is
    measured only when its bound could widen its column."""
    room = TEXT_COLUMN_HALF_EMS - CELL_PAD_HALF_EMS * table.n_cols
    cells = table.cells
    bound = [1.0] * table.n_cols
    for cell in cells:
        text = cell.text
        width = len(text) * (MOST_ASCII if text.isascii() else MOST_ANY)
        if width > bound[cell.col] and cell.col_span == 1:
            bound[cell.col] = width
    if sum(bound) <= room:
        return False
    least = [1.0] * table.n_cols
    for cell in cells:
        text = cell.text
        c = cell.col
        if cell.col_span != 1 or len(text) * MOST_ANY <= least[c]:
            continue  # it cannot widen its column
        need = cell_needs(text)[0]
        if need > least[c]:
            least[c] = need
            if sum(least) > room:
                return True
    return False
