"""XLSX: every logical table on its own sheet (merged cells from spans), an index sheet
``Tables`` first, written as a stream: one table in memory at a time."""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any

from ..inline import BREAK, EMPHASIS, MATH, PICTURE, STRONG, SUB, SUP, TEXT, Run
from ..model import DocumentInfo, Element
from ..numbers import parse_number
from ..tables import Cell, Table
from ..text import display_width, find_bad
from .base import Option, Writer
from .ooxml import escape, quoteattr
from .xlsx_package import FONT_BOLD, FONT_LINK, MAIN_NS, R_NS, Workbook, quote_sheet

MAX_SHEET_ROWS = 1_048_576
MAX_SHEET_COLS = 16_384
MAX_CELL_CHARS = 32_767
TRUNCATED = "… [truncated]"
INDEX_SHEET = "Tables"
SINGLE_SHEET = "All tables"
_BAD_NAME_CHARS = re.compile(r"[\[\]:*?/\\]")
RESERVED_NAMES = {"history"}
INDEX_HEADER = ("No.", "Sheet", "Caption", "First page", "Last page", "Rows", "Columns",
                "Merged cells", "Element ids", "Repairs")


def utf16_len(text: str) -> int:
    """A length as Excel counts it, in UTF-16 code units: a character above U+FFFF (an emoji,
    a rare CJK ideograph) counts two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_cut(text: str, units: int) -> str:
    """The longest start of ``text`` that is at most ``units`` UTF-16 code units, never
    ending inside a surrogate pair."""
    if len(text) * 2 <= units:
        return text
    data = text.encode("utf-16-le", "surrogatepass")[: max(units, 0) * 2]
    if data and 0xD8 <= data[-1] <= 0xDB:  # the first half of a pair: drop it
        data = data[:-2]
    return data.decode("utf-16-le", "surrogatepass")


@lru_cache(maxsize=4096)
def col(index: int) -> str:
    """Column letters of a 0-based column index: 0 -> A, 25 -> Z, 26 -> AA.  (openpyxl has
    this too, but importing it costs 50 ms in every batch worker process.)"""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass
class _IndexRow:
    number: int
    sheet: str
    anchor: str  # where the link goes: a cell of the sheet
    caption: str
    pages: list[int]
    rows: int
    cols: int
    merged: int
    element_ids: list[str]
    repairs: list[str] = field(default_factory=list)


# Printing: every sheet fits one page wide (as many pages tall as it takes), landscape when
# its columns are wider than a portrait page's printable width, the sheet name on top and
# "page of pages" below.
PORTRAIT_COLUMNS = 90.0  # column-width units (characters) across A4 portrait, 0.5" margins
PRINT_HEADER_FOOTER = ("<headerFooter><oddHeader>&amp;L&amp;A</oddHeader>"
                       "<oddFooter>&amp;CPage &amp;P of &amp;N</oddFooter></headerFooter>")
LINE_HEIGHT = 15.0  # points: one line of 11 pt Calibri


class _SheetStream:
    """One worksheet part, written top to bottom."""

    def __init__(self, stream: IO[bytes], *, widths: list[float], freeze_rows: int) -> None:
        self.stream = stream
        self.landscape = sum(widths) > PORTRAIT_COLUMNS
        view = ""
        if freeze_rows:
            view = (f'<pane ySplit="{freeze_rows}" topLeftCell="A{freeze_rows + 1}" '
                    'activePane="bottomLeft" state="frozen"/>')
        cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{w:.1f}" customWidth="1"/>'
                       for i, w in enumerate(widths))
        stream.write(
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{R_NS}">'
            '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr><sheetViews>'
            f'<sheetView workbookViewId="0">{view}</sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/>'
            f'{"<cols>" + cols + "</cols>" if cols else ""}<sheetData>'.encode())
        self.widths = widths
        self.merges: list[str] = []
        self.links: list[str] = []
        self._rows: list[str] = []  # written in blocks: each zip write call compresses
        self._size = 0

    def row(self, number: int, cells: list[str], height: float | None = None) -> None:
        """A row; ``height`` in points when the row must be taller than its tools would make
        it (wrapped text in merged cells, which neither Excel nor LibreOffice fits)."""
        ht = f' ht="{height:.1f}" customHeight="1"' if height else ""
        text = f'<row r="{number}"{ht}>{"".join(cells)}</row>'
        self._rows.append(text)
        self._size += len(text)
        if self._size > 1 << 18:
            self._flush()

    def widths_of(self, cols: list[int]) -> dict[int, float]:
        """The widths of table columns ``cols`` as this sheet sets them (by table column)."""
        return {c: self.widths[i] for i, c in enumerate(cols) if i < len(self.widths)}

    def _flush(self) -> None:
        if self._rows:
            self.stream.write("".join(self._rows).encode())
            self._rows.clear()
            self._size = 0

    def close(self) -> None:
        self._flush()
        tail = "</sheetData>"
        if self.merges:
            tail += f'<mergeCells count="{len(self.merges)}">' + "".join(
                f'<mergeCell ref="{ref}"/>' for ref in self.merges) + "</mergeCells>"
        if self.links:
            tail += "<hyperlinks>" + "".join(self.links) + "</hyperlinks>"
        orientation = "landscape" if self.landscape else "portrait"
        tail += ('<pageMargins left="0.5" right="0.5" top="0.75" bottom="0.75" header="0.3" '
                 f'footer="0.3"/><pageSetup paperSize="9" orientation="{orientation}" '
                 f'fitToWidth="1" fitToHeight="0"/>{PRINT_HEADER_FOOTER}</worksheet>')
        self.stream.write(tail.encode())
        self.stream.close()


def _string_cell(ref: str, text: str, style: int) -> str:
    # Always an inline string: text that starts with = + - @ can never become a formula.
    return (f'<c r="{ref}" s="{style}" t="inlineStr"><is><t xml:space="preserve">'
            f"{escape(text)}</t></is></c>")


def _number_cell(ref: str, value: int | float, style: int) -> str:
    return f'<c r="{ref}" s="{style}"><v>{value!r}</v></c>'


class XlsxWriter(Writer):
    name = "xlsx"
    extension = "xlsx"
    binary = True
    description = "Excel workbook: one sheet per table, merged cells, an index sheet"
    options = (
        Option("text", "keep every cell as text (no number conversion)", False, kind=bool),
        Option("single_sheet", "all tables on one sheet, one under another", False, kind=bool),
    )

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return frozenset()  # a picture is text here: "[image]" or its URL

    def begin(self, info: DocumentInfo) -> None:
        self.book = Workbook(self.out)
        self.as_text = bool(self.option("xlsx_text"))
        self.single = bool(self.option("xlsx_single_sheet"))
        self.index: list[_IndexRow] = []
        self._names: set[str] = {INDEX_SHEET.lower()}
        self._single: _SheetStream | None = None
        self._single_row = 0
        self._truncated = 0
        self._styles: dict[tuple[bool, bool, str | None], int] = {}

    def default(self, el: Element) -> None:
        """Only tables go into a workbook."""

    # -- cells -------------------------------------------------------------------------
    def _style(self, header: bool, merged: bool, number_format: str | None = None) -> int:
        key = (header, merged, number_format)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = self.book.styles.get(
                font=FONT_BOLD if header else 0, valign="center" if merged else "top",
                number_format=number_format)
        return style

    def _cell_xml(self, ref: str, cell: Cell, header: bool) -> str:
        if cell._runs is not None:  # marked text, math or pictures: rich text, never a number
            rich = self._rich_text(cell._runs, header)
            if rich is not None:
                return (f'<c r="{ref}" s="{self._style(header, cell.is_merged)}" t="inlineStr">'
                        f"<is>{rich}</is></c>")
        text = cell.text
        if find_bad(text) is not None:
            text = self.clean(text)
        if len(text) > MAX_CELL_CHARS // 2 and utf16_len(text) > MAX_CELL_CHARS:
            text = utf16_cut(text, MAX_CELL_CHARS - utf16_len(TRUNCATED)) + TRUNCATED
            self._truncated += 1
        merged = cell.row_span > 1 or cell.col_span > 1
        if not self.as_text and not header:
            number = parse_number(text)
            if number is not None:
                return _number_cell(ref, number.value, self._style(False, merged, number.format))
        return _string_cell(ref, text, self._style(header, merged))

    def _rich_text(self, runs: list[Run], header: bool) -> str | None:
        """Inline rich-text runs (``<r>``) for a cell: bold, italic, sub/superscript as run
        properties; math as its LaTeX; a picture as ``[image]`` or its safe URL.  None when
        the text is too long for a cell (the plain path truncates it)."""
        parts: list[str] = []
        length = 0
        for run in runs:
            marks = 0
            if run.kind == TEXT:
                text, marks = run.text, run.marks
            elif run.kind == BREAK:
                text = "\n"
            elif run.kind == MATH:
                text = run.source or run.text
            elif run.kind == PICTURE:
                url = run.image.safe_url if run.image is not None else None
                text = url or "[image]"
            else:
                continue
            if not text:
                continue
            if find_bad(text) is not None:
                text = self.clean(text)
            length += utf16_len(text)  # as Excel counts
            if header:  # a run's properties replace the cell's bold font
                marks |= STRONG
            props = "".join(tag for flag, tag in ((STRONG, "<b/>"), (EMPHASIS, "<i/>"))
                            if marks & flag)
            if marks & (SUB | SUP):
                props += f'<vertAlign val="{"subscript" if marks & SUB else "superscript"}"/>'
            rpr = f"<rPr>{props}</rPr>" if props else ""
            parts.append(f'<r>{rpr}<t xml:space="preserve">{escape(text)}</t></r>')
        if length > MAX_CELL_CHARS or not parts:
            return None
        return "".join(parts)

    def _covered_xml(self, ref: str, header: bool) -> str:
        return f'<c r="{ref}" s="{self._style(header, True)}"/>'

    # -- tables ------------------------------------------------------------------------
    def table(self, el: Element) -> None:
        table = el.table
        if table is None:
            return
        number = len(self.index) + 1
        caption = self.caption_text(el)
        pages = table.pages
        page_column = len(pages) > 1 and table.n_cols < MAX_SHEET_COLS
        entry = _IndexRow(number, "", "A1", caption, pages, table.n_rows, table.n_cols,
                          len(table.merged_ranges()), list(table.element_ids),
                          list(table.repairs))
        if self.single:
            self._append_to_single(table, entry, page_column)
        else:
            self._write_sheets(table, entry, page_column)
        self.index.append(entry)

    def _widths(self, table: Table, page_column: bool) -> list[float]:
        widths = [max(w, 6) + 2.0 for w in table.widest_lines(60)]
        if page_column:
            widths.append(12.0)
        return widths

    def _row_parts(self, table: Table) -> list[range]:
        """Body row ranges of each sheet: one, unless the table is longer than a sheet."""
        room = MAX_SHEET_ROWS - table.header_rows
        body = range(table.header_rows, table.n_rows)
        if len(body) <= room or room <= 0:
            return [body]
        return [range(start, min(start + room, table.n_rows))
                for start in range(table.header_rows, table.n_rows, room)]

    def _write_sheets(self, table: Table, entry: _IndexRow, page_column: bool) -> None:
        row_parts = self._row_parts(table)
        col_parts = [list(range(start, min(start + MAX_SHEET_COLS, table.n_cols)))
                     for start in range(0, table.n_cols, MAX_SHEET_COLS)]
        parts = [(body, cols) for body in row_parts for cols in col_parts]
        if len(parts) > 1:
            self.diag.warn("sheet-limit", f"table {entry.number} has {table.n_rows} rows and "
                           f"{table.n_cols} columns, more than a sheet holds; split onto "
                           f"{len(parts)} sheets")
        widths = self._widths(table, page_column)
        for i, (body, cols) in enumerate(parts):
            name = self._sheet_name(entry, part=i + 1 if len(parts) > 1 else 0)
            if i == 0:
                entry.sheet = name
            sheet = _SheetStream(self.book.add_sheet(name, table.header_rows),
                                 widths=[widths[c] for c in cols] + widths[table.n_cols:],
                                 freeze_rows=table.header_rows)
            rows = [*range(table.header_rows), *body]
            self._table_rows(sheet, table, rows, first_row=1, page_column=page_column,
                             cols=cols)
            sheet.close()

    def _table_rows(self, sheet: _SheetStream, table: Table, rows: list[int], *,
                    first_row: int, page_column: bool, cols: list[int] | None = None) -> None:
        """Write the given table rows (header rows first) from sheet row ``first_row``, and
        the given columns (default: all) from column A; merged ranges are clipped to what is
        written, and a cell whose anchor went to another sheet part shows its text again."""
        grid = table.grid()
        cols = list(range(table.n_cols)) if cols is None else cols
        row_at = {r: first_row + i for i, r in enumerate(rows)}
        col_at = {c: i for i, c in enumerate(cols)}
        letters = [col(i) for i in range(len(cols))]
        heights = _merged_row_heights(table, sheet.widths_of(cols)) if table.header_rows and \
            table.has_spans else {}
        for r in rows:
            excel_row = row_at[r]
            header = r < table.header_rows
            cells: list[str] = []
            grid_row = grid[r]
            for i, c in enumerate(cols):
                slot = grid_row[c]
                ref = f"{letters[i]}{excel_row}"
                if type(slot) is Cell:
                    cells.append(self._cell_xml(ref, slot, header))
                elif (slot.anchor.row not in row_at or slot.anchor.col not in col_at) and \
                        slot.row == _first_kept(slot.anchor.row, rows) \
                        and c == _first_kept(slot.anchor.col, cols):
                    cells.append(self._cell_xml(ref, slot.anchor, header))
                else:
                    cells.append(self._covered_xml(ref, header))
            if page_column:
                ref = f"{col(len(cols))}{excel_row}"
                page = table.row_pages[r] if r < len(table.row_pages) else None
                if r == 0 and table.header_rows:
                    style = self.book.styles.get(font=FONT_BOLD)
                    cells.append(_string_cell(ref, "Source page", style))
                elif page is not None and not header:
                    cells.append(_number_cell(ref, page, self.book.styles.get()))
            sheet.row(excel_row, cells, heights.get(r))
        for cell in table.cells:
            if not cell.is_merged:
                continue
            kept_rows = [row_at[r] for r in range(cell.row, cell.row + cell.row_span)
                         if r in row_at]
            kept_cols = [col_at[c] for c in range(cell.col, cell.col + cell.col_span)
                         if c in col_at]
            for top, bottom in _consecutive(kept_rows):
                for left, right in _consecutive(kept_cols):
                    if (top, left) != (bottom, right):
                        sheet.merges.append(f"{col(left)}{top}:{col(right)}{bottom}")

    def _append_to_single(self, table: Table, entry: _IndexRow, page_column: bool) -> None:
        if self._single is None:
            # column widths come before the rows in a sheet: the first table sets them
            self._single = _SheetStream(self.book.add_sheet(SINGLE_SHEET),
                                        widths=self._widths(table, page_column), freeze_rows=0)
        sheet = self._single
        if self._single_row + 2 + table.n_rows > MAX_SHEET_ROWS:
            self.diag.warn("sheet-limit", f"table {entry.number} does not fit on the single "
                           "sheet; left out (use one sheet per table)")
            entry.sheet = ""
            return
        title_row = self._single_row + 1 if not self._single_row else self._single_row + 2
        label = f"Table {entry.number}" + (f": {entry.caption}" if entry.caption else "")
        if entry.pages:
            label += f" (page {_page_range(entry.pages)})"
        sheet.row(title_row, [_string_cell(f"A{title_row}", utf16_cut(label, MAX_CELL_CHARS),
                                           self.book.styles.get(font=FONT_BOLD, border=False))])
        rows = list(range(table.n_rows))
        self._table_rows(sheet, table, rows, first_row=title_row + 1, page_column=page_column)
        self._single_row = title_row + table.n_rows
        entry.sheet = SINGLE_SHEET
        entry.anchor = f"A{title_row}"

    def _sheet_name(self, entry: _IndexRow, part: int = 0) -> str:
        """Excel's rules: at most 31 characters (UTF-16 units, as Excel counts), none of
        []:*?/\\, not blank, no leading or trailing apostrophe, unique ignoring case, not
        "History".  From the caption when there is one (its readable head, cut at a word or
        character boundary: ``表1 主要会计数据``), else "Table N"; the page hint is added
        only when the name is taken, then a number."""
        base = sheet_base_name(entry.caption) or f"Table {entry.number}"
        suffix = f" ({part})" if part else ""
        hint = f" p{_page_range(entry.pages)}" if entry.pages else ""
        if len(hint) > 16:  # pages no document has (1e300 is a number too): no room left
            hint = ""
        candidates = [_fitted(base, suffix)]
        if hint:
            candidates.append(_fitted(base, hint + suffix))
        for candidate in candidates:
            if self._free(candidate):
                break
        else:
            name, n = candidates[-1], 2
            while not self._free(candidate):
                candidate = _fitted(name, f" ~{n}")
                n += 1
        self._names.add(candidate.lower())
        return candidate

    def _free(self, name: str) -> bool:
        return name.lower() not in self._names and name.lower() not in RESERVED_NAMES

    # -- the end -----------------------------------------------------------------------
    def end(self, info: DocumentInfo) -> None:
        if self._single is not None:
            self._single.close()
        if self._truncated:
            self.diag.warn("cell-truncated", f"{self._truncated} cell(s) longer than Excel's "
                           f"{MAX_CELL_CHARS} characters were truncated (marked "
                           f"{TRUNCATED!r})")
        self._write_index()
        self.book.finish(
            first=[INDEX_SHEET],
            core={"dc:title": self.clean(info.title), "dc:creator": "xparse-convert",
                  "dc:description": self.clean(
                      f"Tables of a TextIn xParse result (schema {info.schema_version or '-'}, "
                      f"file id {info.file_id or '-'})")},
            custom={"xparse.schema_version": self.clean(info.schema_version or ""),
                    "xparse.file_id": self.clean(info.file_id or ""),
                    "xparse.filename": self.clean(info.filename or "")})

    def _write_index(self) -> None:
        header_style = self.book.styles.get(font=FONT_BOLD)
        widths = [6.0, 34.0, 40.0, 10.0, 10.0, 8.0, 9.0, 13.0, 24.0, 40.0]
        sheet = _SheetStream(self.book.add_sheet(INDEX_SHEET, 1), widths=widths, freeze_rows=1)
        sheet.row(1, [_string_cell(f"{col(i)}1", text, header_style)
                      for i, text in enumerate(INDEX_HEADER)])
        plain = self.book.styles.get()
        link = self.book.styles.get(font=FONT_LINK)
        for i, entry in enumerate(self.index):
            r = i + 2
            cells = [_number_cell(f"A{r}", entry.number, plain)]
            if entry.sheet:
                cells.append(_string_cell(f"B{r}", entry.sheet, link))
                location = f"{quote_sheet(entry.sheet)}!{entry.anchor}"
                sheet.links.append(f'<hyperlink ref="B{r}" location={quoteattr(location)} '
                                   f"display={quoteattr(entry.sheet)}/>")
            else:
                cells.append(_string_cell(f"B{r}", "(left out)", plain))
            cells.append(_string_cell(f"C{r}", utf16_cut(entry.caption, MAX_CELL_CHARS), plain))
            if entry.pages:
                cells.append(_number_cell(f"D{r}", entry.pages[0], plain))
                cells.append(_number_cell(f"E{r}", entry.pages[-1], plain))
            cells += [_number_cell(f"F{r}", entry.rows, plain),
                      _number_cell(f"G{r}", entry.cols, plain),
                      _number_cell(f"H{r}", entry.merged, plain),
                      _string_cell(f"I{r}", utf16_cut(self.clean(", ".join(entry.element_ids)),
                                                      MAX_CELL_CHARS), plain),
                      _string_cell(f"J{r}", self.clean("; ".join(entry.repairs))[:2000],
                                   plain)]
            sheet.row(r, cells)
        sheet.close()


def _merged_row_heights(table: Table, widths: dict[int, float]) -> dict[int, float]:
    """Heights in points of the header rows holding a merged cell whose text wraps:
    enough lines for every cell of the row (a merge's lines shared by the rows it spans).
    Body rows are left to the reader's tools (a merged body cell rarely wraps, and the
    body is most of the work)."""
    merged_rows: set[int] = set()
    for cell in table.cells:
        if cell.row >= table.header_rows:
            break  # cells come row by row
        if cell.is_merged:
            merged_rows.update(range(cell.row, min(cell.row + cell.row_span,
                                                   table.header_rows)))
    if not merged_rows:
        return {}
    lines: dict[int, float] = {}
    for cell in table.cells:
        text = cell.text
        if cell.row >= table.header_rows:
            break
        if not text or cell.row not in merged_rows:
            continue
        room = sum(widths.get(c, 8.43) for c in range(cell.col, cell.col + cell.col_span)) - 1
        if 2 * len(text) <= room and "\n" not in text:
            continue  # one line, however wide its characters
        needed = sum(max(1, math.ceil(display_width(line) / max(room, 1)))
                     for line in text.split("\n")) / max(cell.row_span, 1)
        for r in range(cell.row, cell.row + cell.row_span):
            if needed > lines.get(r, 1):
                lines[r] = needed
    return {r: math.ceil(n) * LINE_HEIGHT for r, n in lines.items() if n > 1}


_OPENING = re.compile(r"[（(【\[：:；;，,。|]")
_CJK_SPACE_DIGIT = re.compile(r"(?<=[\u4e00-\u9fff]) (?=\d)")


def sheet_base_name(caption: str) -> str:
    """The readable head of a caption as a sheet name's base: characters Excel refuses
    replaced, the text before a parenthesis or colon when there is enough of it
    (``表 1 主要会计数据（单位：万元）Table 1`` gives ``表1 主要会计数据``), at most 31
    UTF-16 units, cut where a word ends (CJK text may be cut between any two characters)."""
    name = " ".join(_BAD_NAME_CHARS.sub(" ", caption).split())
    name = _CJK_SPACE_DIGIT.sub("", name)
    head = _OPENING.split(name, 1)[0].strip()
    if utf16_len(head) >= 4 and head != name:
        name = head
    return _word_cut(name, 31).strip("'").strip()


def _word_cut(text: str, units: int) -> str:
    """The longest start of ``text`` within ``units`` UTF-16 units that does not end inside
    a Latin word or number (unless the word alone is longer)."""
    cut = utf16_cut(text, units)
    if len(cut) < len(text) and cut and text[len(cut)].isalnum() and cut[-1].isalnum() \
            and cut[-1].isascii():
        space = cut.rfind(" ")
        if space > 0:
            cut = cut[:space]
    return cut.rstrip(" -–—_,.;")


def _fitted(base: str, tail: str) -> str:
    """``base`` cut to leave room for ``tail`` (31 UTF-16 units together), no apostrophe
    at either end."""
    name = (_word_cut(base, 31 - utf16_len(tail)).rstrip() + tail).strip("'").strip()
    return name or "Table"


def _page_range(pages: list[int]) -> str:
    return str(pages[0]) if len(pages) == 1 else f"{pages[0]}-{pages[-1]}"


def _first_kept(start: int, kept: list[int]) -> int:
    """The first of the (ascending) ``kept`` rows or columns at or after ``start``: where a
    span from ``start`` is first written on this sheet part (a search, not a walk: spans are
    long)."""
    return kept[bisect_left(kept, start)]


def _consecutive(rows: list[int]) -> Iterator[tuple[int, int]]:
    """Runs of consecutive numbers as (first, last)."""
    start = prev = None
    for row in rows:
        if start is None:
            start = prev = row
        elif row == prev + 1:
            prev = row
        else:
            yield start, prev
            start = prev = row
    if start is not None:
        yield start, prev
