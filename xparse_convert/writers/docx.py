"""DOCX: an editable Word document written as a stream.

Each block (paragraph, picture) is built as a small lxml element, serialised, and appended
to a temporary body file; nothing holds the document tree.  Tables, whose shape is fixed and
whose cells are many, are written as text (the bytes lxml would write for the same tree); only
their cells of inline runs are built as elements.  At the end the body is
copied into ``word/document.xml`` behind the table of contents (known only once every title
has been seen) and the package parts are written around it (see ``docx_package``).

Blocks are serialised one by one rather than through ``lxml.etree.xmlfile`` because xmlfile
re-declares every namespace on each written subtree (about 300 bytes a paragraph); the
declarations on a block's root tag are cut off instead, the document root declares them once.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from lxml import etree

from ..equations import chemical_latex, omml_display, omml_inline
from ..equations.omml import M_NS
from ..images import EMBED, FILE, LINK, LOAD, MISSING, NONE, Placement, safe_url
from ..inline import (
    BREAK,
    EMPHASIS,
    MATH,
    PICTURE,
    STRONG,
    SUB,
    SUP,
    TEXT,
    Run,
    plain_text,
    split_lines,
)
from ..language import LanguageGuess, contents_heading, word_language
from ..model import MAX_LIST_LEVEL, DocumentInfo, Element, ListMark
from ..tables import Cell, Covered, Table
from ..text import strip_math_delimiters
from .base import Option, PageBreaks, Writer
from .docx_package import BULLET_NUM, R_NS, W_NS, DocxPackage
from .ooxml import escape
from .page_layout import (
    A4,
    CELL_MARGIN,
    CELL_PAD,
    PageSize,
    TableLayout,
    document_page,
    estimated_lines,
    layout_table,
)
from .running_heads import (
    NUMPAGES,
    PAGE,
    Heads,
    PageFurniture,
    Part,
    decide,
    page_number,
    page_parts,
)

WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
PIC_NS = "http://schemas.openxmlformats.org/drawingml/2006/picture"
NSMAP = {"w": W_NS, "r": R_NS, "wp": WP_NS, "a": A_NS, "pic": PIC_NS, "m": M_NS}
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

# A4 portrait, 2.54 cm margins, in twentieths of a point (twips): the page when the source
# gives none (``page_layout.document_page`` reads it from ``pages[]``).
PAGE_W, PAGE_H, MARGIN = A4.width, A4.height, 1440
MIN_MARGIN = 720  # a section whose tables were laid out wider gives them room down to this
TEXT_W, TEXT_H = PAGE_W - 2 * MARGIN, PAGE_H - 2 * MARGIN
BODY_SIZE = 22  # half-points: the template's body text
TABLE_FLOOR = 16  # half-points: a wide table's font shrinks no further (8 pt)
CELL_V_MARGIN = 30  # twips above and below a cell's text
EMU_PER_TWIP = 635
EMU_PER_PX = 9525  # at 96 dpi
TOC_LEVELS = 3
MAX_HELD = 3  # headings and captions held for the block after them (``DocxWriter._emit``)
WORD_MAX_COLUMNS = 63

# Pillow format -> media part extension Word knows (content types in docx_package.IMAGE_TYPES)
MEDIA_EXTENSIONS = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}

_DECLARATIONS = re.compile(rb' xmlns:\w+="[^"]*"')


_QUALIFIED: dict[str, str] = {}  # tag -> {w namespace}tag, made once (the hot path)


def w(tag: str) -> str:
    name = _QUALIFIED.get(tag)
    if name is None:
        name = _QUALIFIED[tag] = f"{{{W_NS}}}{tag}"
    return name


def _el(tag: str, parent: etree._Element | None = None, **attrs: str) -> etree._Element:
    """A ``w:`` element (attributes in the ``w:`` namespace too)."""
    attributes = {w(k): v for k, v in attrs.items()} if attrs else None
    if parent is None:
        return etree.Element(w(tag), attributes, nsmap=NSMAP)
    return etree.SubElement(parent, w(tag), attributes)


def _serialise(block: etree._Element) -> bytes:
    data = etree.tostring(block, encoding="UTF-8")
    end = data.index(b">")
    return _DECLARATIONS.sub(b"", data[:end]) + data[end:]


def _keeps_spaces(piece: str) -> bool:
    """True when a ``w:t`` of ``piece`` (not empty) needs ``xml:space="preserve"``: Word
    drops leading, trailing and repeated spaces otherwise."""
    return piece[0] == " " or piece[-1] == " " or "  " in piece


def _add_text(run_parent: etree._Element, text: str, *, bold: bool = False,
              style: str | None = None, marks: int = 0, size: int | None = None) -> None:
    """A run for ``text``: newlines become ``w:br``, tabs ``w:tab``, spaces are kept;
    ``marks`` (``inline.STRONG`` ...) become run properties, ``size`` (half-points) too."""
    run = _el("r", run_parent)
    bold = bold or bool(marks & STRONG)
    if bold or style or marks or size:
        rpr = _el("rPr", run)
        if style:
            _el("rStyle", rpr, val=style)
        if bold:
            _el("b", rpr)
        if marks & EMPHASIS:
            _el("i", rpr)
        if size:
            _el("sz", rpr, val=str(size))
            _el("szCs", rpr, val=str(size))
        if marks & (SUB | SUP):
            _el("vertAlign", rpr, val="subscript" if marks & SUB else "superscript")
    for i, line in enumerate(text.split("\n")):
        if i:
            _el("br", run)
        for j, piece in enumerate(line.split("\t")):
            if j:
                _el("tab", run)
            if piece:
                t = _el("t", run)
                t.text = piece
                if _keeps_spaces(piece):
                    t.set(XML_SPACE, "preserve")


def _paragraph(style: str | None = None, text: str | None = None, *, keep_next: bool = False
               ) -> etree._Element:
    p = _el("p")
    if style or keep_next:
        ppr = _el("pPr", p)
        if style:
            _el("pStyle", ppr, val=style)
        if keep_next:
            _el("keepNext", ppr)
    if text:
        _add_text(p, text)
    return p


@dataclass
class _Section:
    """A section of the body: where it ends in the spooled body, whether its pages are
    landscape, the widest table laid out in it, and (one section per source page) the page
    whose furniture it shows."""

    end: int
    landscape: bool
    table_width: int
    page: int | None
    first_of_page: bool


class _Block(NamedTuple):
    """A serialised block on its way to the body, and what decides where it goes."""

    data: bytes
    turned: bool  # in a landscape section
    width: int  # the width a table was laid out for (0: not a table)
    page_break: bool  # a page break is due before it
    page: int | None  # its source page


class _TocEntry(NamedTuple):
    """A heading the table of contents lists."""

    level: int  # 1 to TOC_LEVELS
    text: str
    bookmark: str  # the heading's bookmark, which the entry links to
    page: int | None  # its source page: the entry's page number until Word updates it


class DocxWriter(Writer):
    name = "docx"
    extension = "docx"
    binary = True
    description = "Word document: headings, lists, tables with merged cells, pictures"
    options = (
        Option("toc", "a table of contents at the top, filled from the titles", False,
               kind=bool),
    )
    page_furniture = True  # running heads go to the header and footer parts

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return cls.picture_fields(options)

    def begin(self, info: DocumentInfo) -> None:
        self.package = DocxPackage(self.out)
        self.body: IO[bytes] = tempfile.TemporaryFile()
        self.info = info
        self.toc = bool(self.option("docx_toc"))
        self.titles: list[_TocEntry] = []
        self.breaks = PageBreaks(bool(self.option("page_breaks")))
        # --furniture --page-breaks: a section per source page, each with its own heads
        self.per_page = bool(self.option("furniture")) and self.breaks.enabled
        self.language = LanguageGuess()
        self.furniture: dict[int, PageFurniture] = {}
        self.pages_seen: set[int] = set()
        # the page tables are laid out for; pages[] after the elements may still change it
        self.page = document_page(info.pages.values(), info.extra.get("dpi"))
        self.text_w = self._text_width(self.page)
        self.sections: list[_Section] = []
        self._landscape = self.page.landscape
        self._section_start = 0
        self._section_width = 0
        self._section_page: int | None = None
        self._section_first_of_page = True
        self._held: list[_Block] = []  # headings and captions waiting for the next block
        self._drawing_id = 0
        self._bookmark_id = 0
        self._ordered_runs = 0  # numbered list instances (w:num) so far
        self._numbered_run = 0  # the list run (``ListMark.run``) the last instance serves
        self._word_counts = [0] * (MAX_LIST_LEVEL + 1)  # what Word counts in that instance

    @staticmethod
    def _text_width(page: PageSize) -> int:
        return page.width - 2 * MARGIN

    # -- plumbing --------------------------------------------------------------------
    def _emit(self, block: etree._Element | bytes, *, landscape: bool | None = None,
              width: int = 0, with_next: bool = False) -> None:
        """Append a block to the body: after the page break or section break due before it,
        in a landscape section when ``landscape`` (a wide table), with ``width`` the width
        it was laid out for.  A block ``with_next`` (a heading, a caption) is held until the
        next block shows which section it goes in: a landscape table takes it along, so a
        section break never strands a heading at the foot of the page before its table."""
        page = self.current.page if self.current is not None else None
        item = _Block(block if isinstance(block, bytes) else _serialise(block),
                      self.page.landscape if landscape is None else landscape, width,
                      self.breaks.due(), page)
        held = self._held
        if held and item.page_break:  # what was held stays before the break
            self._release(None)
        if with_next:
            if len(held) == MAX_HELD:
                self._place(held.pop(0), None)
            held.append(item)
            return
        if held:
            self._release(item.turned)
        self._place(item, None)

    def _release(self, turned: bool | None) -> None:
        """Write the held blocks, into a section turned as ``turned`` (None: their own)."""
        for item in self._held:
            self._place(item, turned)
        self._held.clear()

    def _place(self, item: _Block, turned: bool | None) -> None:
        """Write a block, turned as ``turned`` (None: as it asked)."""
        if turned is None:
            turned = item.turned
        if item.page_break and self.per_page:
            self._close_section(item.page)
        elif item.page_break and turned == self._landscape:
            page_break = _el("p")
            _el("br", _el("r", page_break), type="page")
            self.body.write(_serialise(page_break))
        # else the section break below starts the page: a page break before it too would
        # leave an empty page in Word
        if turned != self._landscape:
            if self.body.tell() > self._section_start or (self.toc and not self.sections):
                self._close_section(item.page)
            self._landscape = turned
        if self._section_page is None:
            self._section_page = item.page
        self._section_width = max(self._section_width, item.width)
        self.body.write(item.data)

    def _close_section(self, page: int | None) -> None:
        """End the section being written here, before a block of source page ``page`` (its
        properties are put in at the end, when the page size and running heads are
        known)."""
        ends_page = self._section_page is not None and page != self._section_page
        self.sections.append(_Section(self.body.tell(), self._landscape, self._section_width,
                                      self._section_page, self._section_first_of_page))
        self._section_start = self.body.tell()
        self._section_width = 0
        self._section_first_of_page = ends_page or self._section_page is None
        self._section_page = None

    def write(self, element: Element) -> None:
        page = element.page
        if page is not None and page not in self.pages_seen:
            self.pages_seen.add(page)
        if element.is_furniture:
            self._furniture(element)
            if not self.per_page:
                return  # in the header and footer parts only
        else:
            self.language.see(element)
        self.breaks.see(element)
        super().write(element)

    def _furniture(self, el: Element) -> None:
        """Note a Header, Footer or PageNumber for its page's heads."""
        if el.page is None:
            return
        text = " ".join(self.clean(el.text).split())
        if not text:
            return
        page = self.furniture.get(el.page)
        if page is None:
            page = self.furniture[el.page] = PageFurniture()
        number = page_number(text, page=el.page, declared=el.type == "PageNumber")
        if number is not None and page.number is None:
            page.number = number
            page.number_on_top = _on_top(el)
        elif el.type == "Header" or (el.type == "PageNumber" and _on_top(el)):
            page.headers.append(text)
        else:
            page.footers.append(text)

    # -- text blocks -----------------------------------------------------------------
    def title(self, el: Element) -> None:
        runs = self.line_runs(el)
        if not runs:
            return
        level = min(el.heading_level, 9)
        p = _paragraph(f"Heading{level}")
        if self.toc and level <= TOC_LEVELS:
            self._bookmark_id += 1
            name = f"_Toc{self._bookmark_id}"
            _el("bookmarkStart", p, id=str(self._bookmark_id), name=name)
            self._add_runs(p, runs)
            _el("bookmarkEnd", p, id=str(self._bookmark_id))
            self.titles.append(_TocEntry(level, plain_text(runs, linear_math=True), name,
                                         el.page))
        else:
            self._add_runs(p, runs)
        self._emit(p, with_next=True)

    def narrative_text(self, el: Element) -> None:
        runs = self.runs(el)
        if runs:
            self._emit(self._runs_paragraph(None, runs))

    def _runs_paragraph(self, style: str | None, runs: list[Run], *, keep_next: bool = False
                        ) -> etree._Element:
        p = _paragraph(style, keep_next=keep_next)
        self._add_runs(p, runs)
        return p

    def _add_runs(self, p: etree._Element, runs: list[Run], *, bold: bool = False,
                  max_width: int = TEXT_W) -> None:
        """Inline runs into the paragraph ``p``: marks as run properties, links as
        hyperlinks (through the URL policy), pictures inline, math as an equation."""
        for run in runs:
            if run.kind == TEXT:
                url = safe_url(run.href) if run.href else None
                if url:
                    link = _el("hyperlink", p)
                    link.set(f"{{{R_NS}}}id", self.package.add_link(url))
                    _add_text(link, run.text, bold=bold, marks=run.marks, style="Hyperlink")
                else:
                    _add_text(p, run.text, bold=bold, marks=run.marks)
            elif run.kind == BREAK:
                _el("br", _el("r", p))
            elif run.kind == MATH:
                self.inline_equation(p, run)
            elif run.kind == PICTURE and run.image is not None:
                placement = self.place_picture(run.image)
                if placement.action != MISSING:  # the text stays; a warning said why
                    self._picture_into(p, placement, max_width, description=run.text)

    def inline_equation(self, p: etree._Element, run: Run) -> None:
        """An inline formula inside ``p`` as Word math (``m:oMath`` among the runs); its
        LaTeX as written, counted in a warning, when it cannot be converted."""
        math = omml_inline(run.text)
        if math is None:
            self.diag.warn("formula-fallback", "DOCX: inline formula kept as LaTeX text",
                           self.where)
            _add_text(p, run.source or run.text)
        else:
            p.append(math)

    default = narrative_text

    def header(self, el: Element) -> None:
        """Furniture is in the header and footer parts (``_furniture``), never the body."""


    def page_break(self, el: Element) -> None:
        self.breaks.page_break(el)

    def list_item(self, el: Element) -> None:
        mark = self.list_mark(el)
        p = _paragraph("ListParagraph")
        numpr = _el("numPr", p.find(w("pPr")))
        _el("ilvl", numpr, val=str(mark.level))
        _el("numId", numpr, val=str(self._num_id(mark)))
        self._add_runs(p, self.list_runs(el))
        self._emit(p)

    def _num_id(self, mark: ListMark) -> int:
        """The list instance (numId) in which Word counts the number the stage gave this item:
        the run's own, or a new one where Word would count on and the stage starts again at 1
        (after a bullet at the same or a shallower level, which Word counts apart).  Word counts
        per instance: one more at a level, and a shallower item restarts the deeper levels."""
        if not mark.ordered:
            return BULLET_NUM
        counts = self._word_counts
        if mark.run != self._numbered_run or counts[mark.level] + 1 != mark.number:
            self._ordered_runs += 1  # every level of a new instance starts at 1
            self._numbered_run = mark.run
            counts = self._word_counts = [0] * (MAX_LIST_LEVEL + 1)
        counts[mark.level] = mark.number
        for deeper in range(mark.level + 1, len(counts)):
            counts[deeper] = 0
        return BULLET_NUM + self._ordered_runs

    def code_snippet(self, el: Element) -> None:
        text = self.clean(el.text).strip("\n")
        for line in text.split("\n") or [""]:
            p = _paragraph("SourceCode")
            if line:
                _add_text(p, line)
            self._emit(p)

    def formula(self, el: Element) -> None:
        latex = strip_math_delimiters(self.clean(el.text))
        if not latex:
            return
        block = self.equation(latex)
        if block is None:  # kept as LaTeX text, as before native math
            self.diag.warn("formula-fallback", "DOCX: formula kept as LaTeX text (cannot "
                           "convert it to Word math)", el.where)
            block = _paragraph("Formula", latex)
        self._emit(block)

    def chemical(self, el: Element) -> None:
        """Chemistry (``H_2SO_4``, ``\\ce{..}``) as an equation; other text as a paragraph."""
        text = self.clean(el.text).strip()
        try:
            block = self.equation(chemical_latex(strip_math_delimiters(text)))
        except ValueError:
            block = None
        if block is None:
            if text:
                self.diag.warn("formula-fallback", "DOCX: chemical formula kept as text",
                               el.where)
            self.narrative_text(el)
        else:
            self._emit(block)

    def equation(self, latex: str) -> etree._Element | None:
        """A display equation: a paragraph holding ``m:oMathPara``, with a ``\\tag`` as a
        right-aligned ``(n)`` on tab stops; None when the LaTeX cannot be converted."""
        converted = omml_display(latex)
        if converted is None:
            return None
        math, tag = converted
        p = _paragraph("Formula")
        if tag:
            ppr = p.find(w("pPr"))
            tabs = _el("tabs", ppr)
            _el("tab", tabs, val="center", pos=str(self.text_w // 2))
            _el("tab", tabs, val="right", pos=str(self.text_w))
            _el("jc", ppr, val="left")
            _el("tab", _el("r", p))
            p.append(math)
            _el("tab", _el("r", p))
            _add_text(p, tag)
        else:
            p.append(math)
        return p

    def table_caption(self, el: Element) -> None:
        runs = self.line_runs(el)
        if runs:
            self._emit(self._runs_paragraph("Caption", runs), with_next=True)


    # -- tables ----------------------------------------------------------------------
    def table(self, el: Element) -> None:
        table = el.table
        if table is None or table.n_rows < 1 or table.n_cols < 1:
            return  # Word needs a cell in every row and a column in every table
        caption = self.line_runs(el.caption) if el.caption else []
        caption_first = el.caption_first
        if table.n_cols <= WORD_MAX_COLUMNS:
            parts = [(None, table)]
        else:  # Word cannot hold more columns in one table: consecutive tables, labelled
            self.diag.warn("table-width", f"a table of {table.n_cols} columns is split into "
                           f"tables of {WORD_MAX_COLUMNS} columns (Word's limit)", el.where)
            parts = [(f"Columns {start + 1}–{stop} of {table.n_cols}", part)
                     for start, stop, part in table.column_slices(WORD_MAX_COLUMNS)]
        layouts = [self._layout(part) for _, part in parts]
        landscape = self.page.landscape or any(layout.landscape for layout in layouts)
        width = max(sum(layout.widths) for layout in layouts)
        if caption and caption_first:
            self._emit(self._runs_paragraph("Caption", caption, keep_next=True),
                       landscape=landscape)
        for (label, part), layout in zip(parts, layouts):
            if label:
                self._emit(_paragraph(None, label, keep_next=True), landscape=landscape)
            self._emit(self._table_xml(part, layout), landscape=landscape, width=width)
        if caption and not caption_first:
            self._emit(self._runs_paragraph("Caption", caption), landscape=landscape)
        self._emit(_spacer(), landscape=landscape)  # and two tables never run together

    def _layout(self, table: Table) -> TableLayout:
        """Widths and font size of a table on this document's pages (``layout_table``)."""
        portrait = self.text_w
        turned = self.page.height - 2 * MARGIN if not self.page.landscape else portrait
        return layout_table(table, portrait, turned, base=BODY_SIZE, floor=TABLE_FLOOR)

    def _table_xml(self, table: Table, layout: TableLayout) -> bytes:
        """The ``w:tbl`` of ``table`` set as ``layout`` says, serialised.  Its fixed shape is
        written as text (what lxml would write, byte for byte: a tree of every cell was most
        of the writer's time); cells of inline runs are built as elements (``_rich_cell``)."""
        widths = layout.widths
        size = layout.font_size
        keep = self._kept_rows(table, widths, size or BODY_SIZE)
        out = [_table_head(widths)]
        # the parts every cell of one shape shares, made once per table
        opening: dict[tuple[int, int, bool, bool], str] = {}
        continued: dict[tuple[int, int], str] = {}
        runs = (_run_start(False, size), _run_start(True, size))
        clean = self.clean
        for r, row in enumerate(table.grid()):
            header = r < table.header_rows
            kept = r in keep
            out.append(_ROW_HEADER if header else _ROW)
            p_start = _P_KEPT if kept else "<w:p>"
            empty_p = _P_KEPT_EMPTY if kept else "<w:p/>"
            run_start = runs[header]
            for slot in row:
                if isinstance(slot, Cell):
                    key = (slot.col, slot.col_span, slot.row_span > 1, header)
                    start = opening.get(key)
                    if start is None:
                        start = opening[key] = _cell_start(widths, *key)
                    out.append(start)
                    if slot._runs is not None:
                        out.append(self._rich_paragraphs(slot, widths, header, size, kept))
                        out.append("</w:tc>")
                        continue
                    text = clean(slot.text)
                    if not text:
                        out.append(empty_p)
                    for line in text.split("\n") if text else ():
                        if line:
                            out.append(p_start)
                            out.append(run_start)
                            out.append(_run_text(line))
                            out.append("</w:r></w:p>")
                        else:
                            out.append(empty_p)
                    out.append("</w:tc>")
                elif isinstance(slot, Covered) and slot.starts_row_span:
                    anchor = slot.anchor
                    key2 = (anchor.col, anchor.col_span)
                    start = continued.get(key2)
                    if start is None:
                        start = continued[key2] = _continued_start(widths, *key2)
                    out.append(start)
                    out.append(empty_p)
                    out.append("</w:tc>")
            out.append("</w:tr>")
        out.append("</w:tbl>")
        return "".join(out).encode()

    def _kept_rows(self, table: Table, widths: list[int], size: int) -> set[int]:
        """Rows kept with the next one: all but the last row of each vertical merge, unless
        the merged rows (by an estimate of their lines) are taller than a page."""
        spans = [c for c in table.cells if c.row_span > 1]
        if not spans:
            return set()
        merged = set()
        for cell in spans:
            merged.update(range(cell.row, cell.row + cell.row_span))
        lines = [1] * table.n_rows
        half_em = size * 5
        for cell in table.cells:
            text = cell.text
            if text and cell.row_span == 1 and cell.row in merged:
                width = sum(widths[cell.col:cell.col + cell.col_span])
                if 2.6 * len(text) * half_em > width - CELL_PAD:  # else surely one line
                    lines[cell.row] = max(lines[cell.row], estimated_lines(text, width, size))
        line_h = size * 12 + 2 * CELL_V_MARGIN  # 1.2 lines a half-point, in twips
        page_h = (self.page.width if self.page.landscape else self.page.height) - 2 * MARGIN
        keep: set[int] = set()
        for cell in spans:
            rows = range(cell.row, min(cell.row + cell.row_span, table.n_rows))
            if sum(lines[r] for r in rows) * line_h + table.header_rows * line_h < page_h:
                keep.update(rows[:-1])
        return keep

    def _rich_paragraphs(self, cell: Cell, widths: list[int], header: bool,
                         size: int | None, kept: bool) -> str:
        """The paragraphs of a cell of inline runs (marks, links, math, pictures),
        serialised: built as elements, their runs at ``size`` (half-points, None: the
        body's), kept with the next row when ``kept``."""
        tc = _el("tc")
        width = sum(widths[cell.col:cell.col + cell.col_span]) - 2 * CELL_MARGIN
        for line in split_lines(self._cleaned(cell.runs)):
            self._add_runs(_el("p", tc), line, bold=header, max_width=width)
        if kept:  # the rows of a vertical merge stay on one page
            for ppr in _paragraph_props(tc):
                etree.SubElement(ppr, _KEEP_NEXT)
        if size is not None:
            _set_font_size(tc, size)
        if not len(tc):
            return ""
        data = _serialise(tc)
        return data[data.index(b">") + 1:-len(b"</w:tc>")].decode()

    # -- pictures --------------------------------------------------------------------
    def image(self, el: Element) -> None:
        caption = self.line_runs(el.caption) if el.caption else []
        caption_first = el.caption_first
        if caption and caption_first:
            self._emit(self._runs_paragraph("Caption", caption, keep_next=True))
        placement = self.place_picture(el.image)
        if placement.action != NONE:
            p = _paragraph(None, keep_next=bool(caption) and not caption_first)
            description = plain_text(caption) or self.clean(el.text).strip()
            self._picture_into(p, placement, self.text_w, description=description)
            self._emit(p)
        if caption and not caption_first:
            self._emit(self._runs_paragraph("Caption", caption))

    def _placeholder(self, p: etree._Element, url: str | None) -> None:
        """A short note instead of a picture: a link the reader can click when there is a
        safe URL (Word never loads it on open)."""
        _add_text(p, "[Image: " if url else "[Image not available]")
        if url:
            link = _el("hyperlink", p)
            link.set(f"{{{R_NS}}}id", self.package.add_link(url))
            _add_text(link, url, style="Hyperlink")
            _add_text(p, "]")

    def _picture_into(self, parent: etree._Element, placement: Placement, max_width: int,
                      description: str = "") -> None:
        """Put a picture in ``parent`` (a paragraph, or a cell: then in a new paragraph).  A
        DOCX carries its pictures, so FILE is embedded too; LOAD and LINK are links."""
        if placement.action == NONE:
            return
        target = parent if parent.tag == w("p") else _el("p", parent)
        if placement.action not in (EMBED, FILE):
            self._placeholder(target, placement.url if placement.action in (LOAD, LINK)
                              else None)
            return
        data, info = placement.data, placement.info
        assert data is not None and info is not None
        if info.format in MEDIA_EXTENSIONS:
            extension = MEDIA_EXTENSIONS[info.format]
        else:  # WebP: Word cannot show it
            data, extension = _to_png(data), "png"
        rid = self.package.add_image(data, extension)
        cx, cy = info.width * EMU_PER_PX, info.height * EMU_PER_PX
        limit_w, limit_h = max(max_width, 600) * EMU_PER_TWIP, TEXT_H * EMU_PER_TWIP
        scale = min(1.0, limit_w / cx, limit_h / cy)
        cx, cy = max(int(cx * scale), 1), max(int(cy * scale), 1)
        self._drawing_id += 1
        run = _el("r", target)
        run.append(_inline_picture(rid, cx, cy, self._drawing_id, description))

    # -- the end -----------------------------------------------------------------------
    def end(self, info: DocumentInfo) -> None:
        page = document_page(info.pages.values(), info.extra.get("dpi"))
        language = self.language.language(info.metadata)
        self._release(None)
        self.sections.append(_Section(-1, self._landscape, self._section_width,
                                      self._section_page, self._section_first_of_page))
        properties = self._section_properties(page)  # writes the header and footer parts

        def write_document(part: IO[bytes]) -> None:
            ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NSMAP.items())
            part.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                       f"<w:document {ns}><w:body>".encode())
            if self.toc:
                for block in self._toc_blocks(language):
                    part.write(_serialise(block))
            self.body.seek(0)
            done = 0
            for section, sect in zip(self.sections, properties):
                if section.end < 0:  # the last: the body's own section properties
                    shutil.copyfileobj(self.body, part, 1 << 20)
                    part.write(sect)
                else:  # a section break: its properties in an empty paragraph
                    _copy(self.body, part, section.end - done)
                    done = section.end
                    part.write(b"<w:p><w:pPr>" + sect + b"</w:pPr></w:p>")
            part.write(b"</w:body></w:document>")

        title = self.clean(info.title)
        described = [f"Converted from a TextIn xParse result ({info.shape or 'unknown'} shape)"]
        if info.schema_version:
            described.append(f"schema {info.schema_version}")
        if info.file_id:
            described.append(f"file id {info.file_id}")
        self.package.finish(
            write_document, ordered_runs=self._ordered_runs,
            core={"dc:title": title, "dc:creator": "xparse-convert",
                  "dc:description": self.clean("; ".join(described)),
                  "dc:language": word_language(language)},
            custom={"xparse.schema_version": self.clean(info.schema_version or ""),
                    "xparse.file_id": self.clean(info.file_id or ""),
                    "xparse.job_id": self.clean(info.job_id or ""),
                    "xparse.filename": self.clean(info.filename or "")},
            language=word_language(language), even_and_odd=self._even_and_odd,
            update_fields=self.toc)
        self.body.close()

    def abort(self) -> None:
        self.body.close()

    def _section_properties(self, page: PageSize) -> list[bytes]:
        """Each section's ``w:sectPr``: the page (turned for wide tables), margins that give
        a table laid out wider than this page its room, and the running heads (in the first
        section, which the others inherit; one set per source page with ``per_page``)."""
        self._even_and_odd = False
        out = []
        if self.per_page:
            heads_of = self._page_heads
        else:
            heads = decide(self.furniture, self.pages_seen)
            self._even_and_odd = heads.even_and_odd
            heads_of = None
        for i, section in enumerate(self.sections):
            if heads_of is not None:
                section_heads: Heads | None = heads_of(section)
            else:
                section_heads = heads if i == 0 else None
            size = page.turned() if section.landscape != page.landscape else page
            out.append(_serialise(self._sect_pr(size, section, section_heads)))
        return out

    def _page_heads(self, section: _Section) -> Heads:
        """A section of one source page: that page's own header and footer (empty ones when
        it printed none, so nothing is inherited from the page before)."""
        furniture = self.furniture.get(section.page) if section.page is not None else None
        header, footer = page_parts(furniture or PageFurniture())
        start = None
        if section.first_of_page and furniture is not None and furniture.number is not None:
            start = furniture.number.number
        return Heads(header=header, footer=footer, start=start)

    def _sect_pr(self, size: PageSize, section: _Section, heads: Heads | None
                 ) -> etree._Element:
        sect = _el("sectPr")
        if heads is not None:
            for kind, parts in (("header", (("default", heads.header),
                                            ("even", heads.even_header),
                                            ("first", heads.first_header))),
                                ("footer", (("default", heads.footer),
                                            ("even", heads.even_footer),
                                            ("first", heads.first_footer)))):
                for which, part in parts:
                    if part is None:
                        continue
                    rid = self.package.add_furniture(kind, _furniture_part(kind, part))
                    ref = _el(f"{kind}Reference", sect, type=which)
                    ref.set(f"{{{R_NS}}}id", rid)
        _el("pgSz", sect, w=str(size.width), h=str(size.height),
            **({"orient": "landscape"} if size.landscape else {}))
        side = MARGIN
        if section.table_width > size.width - 2 * MARGIN:
            side = max(MIN_MARGIN, (size.width - section.table_width) // 2)
        _el("pgMar", sect, top=str(MARGIN), right=str(side), bottom=str(MARGIN),
            left=str(side), header="720", footer="720", gutter="0")
        if heads is not None and heads.start is not None:
            _el("pgNumType", sect, start=str(heads.start))
        _el("cols", sect, space="720")
        if heads is not None and heads.title_page:
            _el("titlePg", sect)
        return sect

    def _toc_blocks(self, language: str) -> list[etree._Element]:
        """The table of contents: a real TOC field Word can update (``updateFields`` makes
        it ask once on opening), its result already filled with links to the headings and
        page references (the source page until the field is updated; LibreOffice lays the
        references out itself)."""
        blocks = [_paragraph("TOCHeading", contents_heading(language))]
        if not self.titles:
            return blocks
        right = self.text_w
        for i, (level, text, bookmark, page) in enumerate(self.titles):
            p = _paragraph(f"TOC{level}")
            tabs = _el("tabs", p.find(w("pPr")))
            _el("tab", tabs, val="right", leader="dot", pos=str(right))
            if i == 0:
                _field_start(p, f' TOC \\o "1-{TOC_LEVELS}" \\h \\z \\u ')
            link = _el("hyperlink", p, anchor=bookmark, history="1")
            _add_text(link, text)
            _el("tab", _el("r", link))
            _field_start(link, f" PAGEREF {bookmark} \\h ")
            _add_text(link, str(page or 1))
            _el("fldChar", _el("r", link), fldCharType="end")
            if i == len(self.titles) - 1:
                _el("fldChar", _el("r", p), fldCharType="end")
            blocks.append(p)
        return blocks


def _copy(source: IO[bytes], target: IO[bytes], length: int) -> None:
    while length > 0:
        chunk = source.read(min(length, 1 << 20))
        if not chunk:
            break
        target.write(chunk)
        length -= len(chunk)


def _field_start(parent: etree._Element, instruction: str) -> None:
    """The begin, instruction and separate runs of a complex field (its result follows)."""
    _el("fldChar", _el("r", parent), fldCharType="begin")
    instr = _el("instrText", _el("r", parent))
    instr.text = instruction
    instr.set(XML_SPACE, "preserve")
    _el("fldChar", _el("r", parent), fldCharType="separate")


def _furniture_part(kind: str, part: Part) -> bytes:
    """A ``w:hdr`` or ``w:ftr`` part: a centred paragraph a line, page numbers as fields
    (a thin rule under a header's text, as running heads are printed)."""
    root = _el("hdr" if kind == "header" else "ftr")
    style = "Header" if kind == "header" else "Footer"
    for i, line in enumerate(part or ((),)):
        p = _el("p", root)
        ppr = _el("pPr", p)
        _el("pStyle", ppr, val=style)
        if kind == "header" and i == len(part) - 1 and part:
            borders = _el("pBdr", ppr)
            _el("bottom", borders, val="single", sz="4", space="1", color="auto")
        _el("jc", ppr, val="center")
        for piece in line:
            if piece in (PAGE, NUMPAGES):
                _field_start(p, " PAGE " if piece == PAGE else " NUMPAGES ")
                _add_text(p, "1")
                _el("fldChar", _el("r", p), fldCharType="end")
            else:
                _add_text(p, piece)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + \
        etree.tostring(root, encoding="UTF-8")


def _on_top(el: Element) -> bool:
    """True when furniture was printed in the top half of its page (by its coordinates when
    they are normalised; else a Header is on top, a Footer or PageNumber at the bottom)."""
    coords = el.coordinates
    if el.coord_unit == "normalized" and coords and len(coords) >= 8:
        y = coords[1]
        if isinstance(y, (int, float)):
            return y < 0.5
    return el.type == "Header"


def _spacer() -> etree._Element:
    """A small empty paragraph after a table: room before what follows."""
    p = _el("p")
    ppr = _el("pPr", p)
    _el("spacing", ppr, before="0", after="0", line="240", lineRule="auto")
    _el("sz", _el("rPr", ppr), val="12")
    return p


_KEEP_NEXT = w("keepNext")

# -- tables as text: exactly what lxml writes for the same elements ----------------------
# Every row is cantSplit (never cut by a page break); header rows repeat on each page.
_ROW = "<w:tr><w:trPr><w:cantSplit/></w:trPr>"
_ROW_HEADER = "<w:tr><w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>"
_P_KEPT = "<w:p><w:pPr><w:keepNext/></w:pPr>"  # a row of a vertical merge: kept with the next
_P_KEPT_EMPTY = _P_KEPT + "</w:p>"


def _escape(text: str) -> str:
    """Text content escaped as libxml2 writes it: the package's ``escape``, and a carriage
    return as a reference, so it survives reading back."""
    return escape(text).replace("\r", "&#13;")


def _run_text(line: str) -> str:
    """The content of ``_add_text``'s run for one line (no newline): tabs as ``w:tab``,
    spaces kept."""
    if "\t" in line:
        return "<w:tab/>".join(_run_text(piece) if piece else "" for piece in line.split("\t"))
    if _keeps_spaces(line):
        return f'<w:t xml:space="preserve">{_escape(line)}</w:t>'
    return f"<w:t>{_escape(line)}</w:t>"


def _run_start(bold: bool, size: int | None) -> str:
    """A run's start with ``_add_text``'s properties for ``bold`` and ``size``."""
    if not (bold or size):
        return "<w:r>"
    props = "<w:b/>" if bold else ""
    if size:
        props += f'<w:sz w:val="{size}"/><w:szCs w:val="{size}"/>'
    return f"<w:r><w:rPr>{props}</w:rPr>"


def _table_head(widths: list[int]) -> str:
    """``w:tbl``'s start: fixed layout at ``widths``, cell padding, the grid."""
    margins = "".join(f'<w:{side} w:w="{size}" w:type="dxa"/>' for side, size in (
        ("top", CELL_V_MARGIN), ("left", CELL_MARGIN), ("bottom", CELL_V_MARGIN),
        ("right", CELL_MARGIN)))
    grid = "".join(f'<w:gridCol w:w="{width}"/>' for width in widths)
    return (f'<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="{sum(widths)}" '
            f'w:type="dxa"/><w:tblLayout w:type="fixed"/><w:tblCellMar>{margins}'
            '</w:tblCellMar><w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" '
            'w:firstColumn="0" w:lastColumn="0" w:noHBand="0" w:noVBand="1"/></w:tblPr>'
            f"<w:tblGrid>{grid}</w:tblGrid>")


def _span_props(widths: list[int], col: int, span: int) -> str:
    props = f'<w:tcW w:w="{sum(widths[col:col + span])}" w:type="dxa"/>'
    return props + f'<w:gridSpan w:val="{span}"/>' if span > 1 else props


def _cell_start(widths: list[int], col: int, span: int, merged: bool, header: bool) -> str:
    """A cell's start up to its paragraphs: width, column span, the start of a vertical
    merge (``merged``), centred vertically when merged or a header."""
    props = _span_props(widths, col, span)
    if merged:
        props += '<w:vMerge w:val="restart"/>'
    if merged or header:
        props += '<w:vAlign w:val="center"/>'
    return f"<w:tc><w:tcPr>{props}</w:tcPr>"


def _continued_start(widths: list[int], col: int, span: int) -> str:
    """The start of a cell a vertical merge continues into (from above)."""
    return f"<w:tc><w:tcPr>{_span_props(widths, col, span)}<w:vMerge/></w:tcPr>"


def _paragraph_props(row: etree._Element) -> list[etree._Element]:
    """The ``w:pPr`` of every paragraph in a table row (made when missing)."""
    props = []
    for p in row.iter(w("p")):
        ppr = p.find(w("pPr"))
        if ppr is None:
            ppr = etree.Element(w("pPr"))
            p.insert(0, ppr)
        props.append(ppr)
    return props


_BEFORE_SIZE = {w("highlight"), w("u"), w("effect"), w("bdr"), w("shd"), w("fitText"),
                w("vertAlign"), w("rtl"), w("cs"), w("em"), w("lang"), w("eastAsianLayout")}


def _set_font_size(tbl: etree._Element, size: int) -> None:
    """Every run of a table at ``size`` half-points (in the schema's place among the run's
    properties), unless it has a size already."""
    for run in tbl.iter(w("r")):
        rpr = run.find(w("rPr"))
        if rpr is not None and rpr.find(w("sz")) is not None:
            continue
        if rpr is None:
            rpr = etree.Element(w("rPr"))
            run.insert(0, rpr)
        at = next((i for i, child in enumerate(rpr) if child.tag in _BEFORE_SIZE), len(rpr))
        for offset, tag in enumerate(("sz", "szCs")):
            rpr.insert(at + offset, etree.Element(w(tag), {w("val"): str(size)}))


def _inline_picture(rid: str, cx: int, cy: int, drawing_id: int, description: str
                    ) -> etree._Element:
    def a(tag: str) -> str:
        return f"{{{A_NS}}}{tag}"

    drawing = etree.Element(w("drawing"), nsmap=NSMAP)
    inline = etree.SubElement(drawing, f"{{{WP_NS}}}inline", distT="0", distB="0", distL="0",
                              distR="0")
    etree.SubElement(inline, f"{{{WP_NS}}}extent", cx=str(cx), cy=str(cy))
    etree.SubElement(inline, f"{{{WP_NS}}}docPr", id=str(drawing_id),
                     name=f"Picture {drawing_id}", descr=description[:1000])
    frame = etree.SubElement(inline, f"{{{WP_NS}}}cNvGraphicFramePr")
    etree.SubElement(frame, a("graphicFrameLocks"), noChangeAspect="1")
    graphic = etree.SubElement(inline, a("graphic"))
    data = etree.SubElement(graphic, a("graphicData"),
                            uri="http://schemas.openxmlformats.org/drawingml/2006/picture")
    pic = etree.SubElement(data, f"{{{PIC_NS}}}pic")
    nv = etree.SubElement(pic, f"{{{PIC_NS}}}nvPicPr")
    etree.SubElement(nv, f"{{{PIC_NS}}}cNvPr", id="0", name=f"image{drawing_id}")
    etree.SubElement(nv, f"{{{PIC_NS}}}cNvPicPr")
    fill = etree.SubElement(pic, f"{{{PIC_NS}}}blipFill")
    blip = etree.SubElement(fill, a("blip"))
    blip.set(f"{{{R_NS}}}embed", rid)
    etree.SubElement(etree.SubElement(fill, a("stretch")), a("fillRect"))
    sppr = etree.SubElement(pic, f"{{{PIC_NS}}}spPr")
    xfrm = etree.SubElement(sppr, a("xfrm"))
    etree.SubElement(xfrm, a("off"), x="0", y="0")
    etree.SubElement(xfrm, a("ext"), cx=str(cx), cy=str(cy))
    geom = etree.SubElement(sppr, a("prstGeom"), prst="rect")
    etree.SubElement(geom, a("avLst"))
    return drawing


def _to_png(data: bytes) -> bytes:
    """A picture that ``images.verify`` passed, as PNG.  It decoded under the pixel cap there,
    and Pillow's warnings about it were reported then: they are not repeated (nor printed)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as img:
            out = io.BytesIO()
            img.save(out, format="PNG")
            return out.getvalue()


