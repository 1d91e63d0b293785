"""DOCX: an editable Word document written as a stream.

Each block (paragraph, table, picture) is built as a small lxml element, serialised, and
appended to a temporary body file; nothing holds the document tree.  At the end the body is
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
from typing import IO, Any

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
from ..model import DocumentInfo, Element
from ..tables import Cell, Covered, Table
from ..text import strip_math_delimiters
from .base import Option, PageBreaks, Writer
from .docx_package import BULLET_NUM, R_NS, W_NS, DocxPackage

WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
PIC_NS = "http://schemas.openxmlformats.org/drawingml/2006/picture"
NSMAP = {"w": W_NS, "r": R_NS, "wp": WP_NS, "a": A_NS, "pic": PIC_NS, "m": M_NS}
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

# A4 portrait, 2.54 cm margins, in twentieths of a point (twips).
PAGE_W, PAGE_H, MARGIN = 11906, 16838, 1440
TEXT_W, TEXT_H = PAGE_W - 2 * MARGIN, PAGE_H - 2 * MARGIN
EMU_PER_TWIP = 635
EMU_PER_PX = 9525  # at 96 dpi
TOC_LEVELS = 3
WORD_MAX_COLUMNS = 63

# Pillow format -> media part extension Word knows (content types in docx_package.IMAGE_TYPES)
MEDIA_EXTENSIONS = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}

_DECLARATIONS = re.compile(rb' xmlns:\w+="[^"]*"')


def w(tag: str) -> str:
    return f"{{{W_NS}}}{tag}"


def _el(tag: str, parent: etree._Element | None = None, **attrs: str) -> etree._Element:
    """A ``w:`` element (attributes in the ``w:`` namespace too)."""
    attributes = {w(k): v for k, v in attrs.items()}
    if parent is None:
        return etree.Element(w(tag), attributes, nsmap=NSMAP)
    return etree.SubElement(parent, w(tag), attributes)


def _serialise(block: etree._Element) -> bytes:
    data = etree.tostring(block, encoding="UTF-8")
    end = data.index(b">")
    return _DECLARATIONS.sub(b"", data[:end]) + data[end:]


def _add_text(run_parent: etree._Element, text: str, *, bold: bool = False,
              style: str | None = None, marks: int = 0) -> None:
    """A run for ``text``: newlines become ``w:br``, tabs ``w:tab``, spaces are kept;
    ``marks`` (``inline.STRONG`` ...) become run properties."""
    run = _el("r", run_parent)
    bold = bold or bool(marks & STRONG)
    if bold or style or marks:
        rpr = _el("rPr", run)
        if style:
            _el("rStyle", rpr, val=style)
        if bold:
            _el("b", rpr)
        if marks & EMPHASIS:
            _el("i", rpr)
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
                if piece[0] == " " or piece[-1] == " " or "  " in piece:
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


# About one display column (half an em at 10.5 pt) and a cell's side margins, in twips.
TWIPS_PER_COLUMN = 125
CELL_PADDING = 230
_TOKEN = re.compile(r"[^\s\u2e80-\uffff]+")


def column_widths(table: Table, total: int) -> list[int]:
    """Column widths in twips summing to ``total``.  Each column first gets room for its
    longest unbreakable word (CJK text breaks anywhere), then the rest is shared in proportion
    to its widest line (CJK counts double, capped so one long cell cannot starve the others).
    Spanning cells do not count."""
    n = table.n_cols
    need = [max(w, 3) for w in table.widest_lines(40)]
    word = [1] * n
    for cell in table.cells:
        if cell.col_span != 1 or not cell.text:
            continue
        longest = max((len(t) for t in _TOKEN.findall(cell.text)), default=1)
        word[cell.col] = max(word[cell.col], min(longest, 20))
    floor = [word[c] * TWIPS_PER_COLUMN + CELL_PADDING for c in range(n)]
    if sum(floor) >= total:
        widths = [max(int(total * f / sum(floor)), 1) for f in floor]
    else:
        spare = total - sum(floor)
        extra = [max(need[c] * TWIPS_PER_COLUMN + CELL_PADDING - floor[c], 0) for c in range(n)]
        weight = sum(extra) or n
        widths = [floor[c] + int(spare * (extra[c] if sum(extra) else 1) / weight)
                  for c in range(n)]
    widths[-1] += total - sum(widths)
    return widths


class DocxWriter(Writer):
    name = "docx"
    extension = "docx"
    binary = True
    description = "Word document: headings, lists, tables with merged cells, pictures"
    options = (
        Option("toc", "a table of contents at the top, filled from the titles", False,
               kind=bool),
    )

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return cls.picture_fields(options)

    def begin(self, info: DocumentInfo) -> None:
        self.package = DocxPackage(self.out)
        self.body: IO[bytes] = tempfile.TemporaryFile()
        self.toc = bool(self.option("docx_toc"))
        self.titles: list[tuple[int, str, str]] = []  # level, text, bookmark
        self.breaks = PageBreaks(bool(self.option("page_breaks")))
        self._drawing_id = 0
        self._bookmark_id = 0
        self._ordered_runs = 0
        self._list_num: int | None = None  # numId of the open numbered run
        self._in_list = False

    # -- plumbing --------------------------------------------------------------------
    def _emit(self, block: etree._Element) -> None:
        if self.breaks.due():
            page_break = _el("p")
            _el("br", _el("r", page_break), type="page")
            self.body.write(_serialise(page_break))
        self.body.write(_serialise(block))

    def write(self, element: Element) -> None:
        self.breaks.see(element)
        if element.type != "ListItem":
            self._in_list = False
        super().write(element)

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
            self.titles.append((level, plain_text(runs, linear_math=True), name))
        else:
            self._add_runs(p, runs)
        self._emit(p)

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
        runs = self.runs(el)
        if runs:
            self._emit(self._runs_paragraph("Header" if el.type == "Header" else "Footer", runs))


    def page_break(self, el: Element) -> None:
        self.breaks.page_break(el)

    def list_item(self, el: Element) -> None:
        info = el.list
        if info.ordered:
            if not self._in_list or self._list_num is None:
                self._ordered_runs += 1
                self._list_num = BULLET_NUM + self._ordered_runs
            num = self._list_num
        else:
            if not self._in_list:
                self._list_num = None
            num = BULLET_NUM
        p = _paragraph("ListParagraph")
        numpr = _el("numPr", p.find(w("pPr")))
        _el("ilvl", numpr, val=str(min(info.level, 8)))
        _el("numId", numpr, val=str(num))
        self._add_runs(p, self.list_runs(el))
        self._emit(p)
        self._in_list = True

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
            _el("tab", tabs, val="center", pos=str(TEXT_W // 2))
            _el("tab", tabs, val="right", pos=str(TEXT_W))
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
            self._emit(self._runs_paragraph("Caption", runs))


    # -- tables ----------------------------------------------------------------------
    def table(self, el: Element) -> None:
        table = el.table
        if table is None or table.n_rows < 1 or table.n_cols < 1:
            return  # Word needs a cell in every row and a column in every table
        caption = self.line_runs(el.caption) if el.caption else []
        caption_first = el.caption_first
        if caption and caption_first:
            self._emit(self._runs_paragraph("Caption", caption, keep_next=True))
        if table.n_cols <= WORD_MAX_COLUMNS:
            self._emit(self._table_xml(table))
        else:  # Word cannot hold more columns in one table: consecutive tables, labelled
            self.diag.warn("table-width", f"a table of {table.n_cols} columns is split into "
                           f"tables of {WORD_MAX_COLUMNS} columns (Word's limit)", el.where)
            for start, stop, part in table.column_slices(WORD_MAX_COLUMNS):
                self._emit(_paragraph(None, f"Columns {start + 1}–{stop} of {table.n_cols}",
                                      keep_next=True))
                self._emit(self._table_xml(part))
        if caption and not caption_first:
            self._emit(self._runs_paragraph("Caption", caption))

    def _table_xml(self, table: Table) -> etree._Element:
        widths = column_widths(table, TEXT_W)
        tbl = _el("tbl")
        tblpr = _el("tblPr", tbl)
        _el("tblStyle", tblpr, val="TableGrid")
        _el("tblW", tblpr, w=str(TEXT_W), type="dxa")
        _el("tblLayout", tblpr, type="fixed")
        _el("tblLook", tblpr, val="04A0", firstRow="1", lastRow="0", firstColumn="0",
            lastColumn="0", noHBand="0", noVBand="1")
        grid = _el("tblGrid", tbl)
        for width in widths:
            _el("gridCol", grid, w=str(width))
        for r, row in enumerate(table.grid()):
            tr = _el("tr", tbl)
            header = r < table.header_rows
            if header:
                _el("tblHeader", _el("trPr", tr))
            for slot in row:
                if isinstance(slot, Cell):
                    self._cell(tr, slot, widths, header)
                elif isinstance(slot, Covered) and slot.starts_row_span:
                    self._continued_cell(tr, slot.anchor, widths)
        return tbl

    def _cell_props(self, tc: etree._Element, cell: Cell, widths: list[int]
                    ) -> etree._Element:
        tcpr = _el("tcPr", tc)
        span_width = sum(widths[cell.col:cell.col + cell.col_span])
        _el("tcW", tcpr, w=str(span_width), type="dxa")
        if cell.col_span > 1:
            _el("gridSpan", tcpr, val=str(cell.col_span))
        return tcpr

    def _cell(self, tr: etree._Element, cell: Cell, widths: list[int], header: bool) -> None:
        tc = _el("tc", tr)
        tcpr = self._cell_props(tc, cell, widths)
        if cell.row_span > 1:
            _el("vMerge", tcpr, val="restart")
        if cell.row_span > 1 or header:
            _el("vAlign", tcpr, val="center")
        if cell._runs is None:  # plain text: a paragraph a line
            text = self.clean(cell.text)
            for line in text.split("\n") if text else [""]:
                p = _el("p", tc)
                if line:
                    _add_text(p, line, bold=header)
            return
        width = sum(widths[cell.col:cell.col + cell.col_span]) - 200
        for line in split_lines(self._cleaned(cell.runs)):
            self._add_runs(_el("p", tc), line, bold=header, max_width=width)

    def _continued_cell(self, tr: etree._Element, anchor: Cell, widths: list[int]) -> None:
        tc = _el("tc", tr)
        tcpr = self._cell_props(tc, anchor, widths)
        _el("vMerge", tcpr)
        _el("p", tc)

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
            self._picture_into(p, placement, TEXT_W, description=description)
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
        def write_document(part: IO[bytes]) -> None:
            ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NSMAP.items())
            part.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                       f"<w:document {ns}><w:body>".encode())
            if self.toc:
                for block in self._toc_blocks():
                    part.write(_serialise(block))
            self.body.seek(0)
            shutil.copyfileobj(self.body, part, 1 << 20)
            part.write(_serialise(_section()))
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
                  "dc:description": self.clean("; ".join(described))},
            custom={"xparse.schema_version": self.clean(info.schema_version or ""),
                    "xparse.file_id": self.clean(info.file_id or ""),
                    "xparse.job_id": self.clean(info.job_id or ""),
                    "xparse.filename": self.clean(info.filename or "")})
        self.body.close()

    def abort(self) -> None:
        self.package.abandon()
        self.body.close()

    def _toc_blocks(self) -> list[etree._Element]:
        """The table of contents: a real TOC field Word can update, its result already filled
        with links to the headings (so LibreOffice and a first look in Word show it)."""
        blocks = [_paragraph("TOCHeading", "Contents")]
        if not self.titles:
            return blocks
        for i, (level, text, bookmark) in enumerate(self.titles):
            p = _paragraph(f"TOC{level}")
            if i == 0:
                _el("fldChar", _el("r", p), fldCharType="begin")
                instr = _el("instrText", _el("r", p))
                instr.text = f' TOC \\o "1-{TOC_LEVELS}" \\h \\z \\u '
                instr.set(XML_SPACE, "preserve")
                _el("fldChar", _el("r", p), fldCharType="separate")
            link = _el("hyperlink", p, anchor=bookmark, history="1")
            _add_text(link, text)
            if i == len(self.titles) - 1:
                _el("fldChar", _el("r", p), fldCharType="end")
            blocks.append(p)
        return blocks


def _section() -> etree._Element:
    sect = _el("sectPr")
    _el("pgSz", sect, w=str(PAGE_W), h=str(PAGE_H))
    _el("pgMar", sect, top=str(MARGIN), right=str(MARGIN), bottom=str(MARGIN),
        left=str(MARGIN), header="720", footer="720", gutter="0")
    _el("cols", sect, space="720")
    return sect


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


