"""Table grids: built once, repaired by stated rules, stitched across pages; every writer
renders the same answer.

A ``Table`` is a rectangular grid of ``n_rows`` x ``n_cols`` slots.  Each slot is covered by
exactly one ``Cell`` (its anchor is the top-left slot of its span).  Sources, in order of
preference: ``table_structure.cells``, an HTML table in the element text, a GFM pipe table,
plain text (one row a line, cells split on tabs).

Repair rules, applied while placing cells in input order:
1. A span that is not a positive integer becomes 1.
2. A cell whose position lies beyond the declared grid grows the grid (its text is kept); a
   position beyond ``MAX_ROWS``/``MAX_COLS`` (absurd for any document) drops the cell.
3. A span that runs past the grid is clamped to it.
4. Overlaps are resolved first-come: a cell whose anchor slot is already covered gives its text
   to the cell covering it; a cell whose span runs into covered slots shrinks (columns first,
   then rows) to the free rectangle at its anchor.
5. Slots no cell covers (sparse input) get an empty 1x1 cell.
6. A grid of more than ``MAX_GRID_SLOTS`` slots is refused (``TableTooLarge``) rather than
   allocated.
7. A sparse ``table_structure`` (slots no cell covers, or cells without text) takes the missing
   texts from the element's own ``text`` when that holds a complete table of the same shape
   without spans: an HTML table, a pipe table, or plain lines whose whitespace-separated
   tokens number exactly the columns on every line (TextIn's 1.4.0 example lists 2 of 6 cells
   and gives all six texts in ``text``).
8. Sizes are bounded by the cells that exist, before any writer sees the table, so that no
   grid costs more than its cells.  A size may exceed the cells' own extent by 2x or by 100,
   whichever is more, and no further: a declared ``rows``/``cols`` beyond that is ignored (the
   extent is the cells' farthest row or column); an HTML ``colspan`` is clamped so that its
   cell ends within it (the extent is the width the cells take with every colspan counted as
   1; row spans end at the last row by rule 3).  A grid in which more than
   ``MAX_EMPTY_SLOTS`` slots, and more than ``EMPTY_PER_CELL`` per cell, would be empty is
   refused like rule 6.
9. A ``table_structure`` whose cells include row 0 (or column 0), which 1-based numbering
   never has, is numbered from 0 on that axis: every cell moves one down (or right) instead of
   the first row's (or column's) cells being dropped.
Each rule that fires adds a line to ``Table.repairs`` (a refused grid is an error instead).

Header rows are decided here and only here: ``table_layout.header_rows`` or cell ``role``
(schema 1.4.0), else ``<thead>``/``<th>`` rows, else the default: the first row (grown to its
tallest row span) when the table has more rows than that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import attrgetter
from typing import Any

import msgspec

from . import inline
from .images import ImageRef, image_ref_from
from .inline import Run
from .text import display_width
from .values import as_int

# Bounds on any grid, whatever the output: positions beyond them are refused, not allocated.
MAX_ROWS = 10_000_000
MAX_COLS = 1_000_000
MAX_GRID_SLOTS = 2_000_000
# Rule 8: a grid mostly made of slots no cell covers costs the writers what its cells do not
MAX_EMPTY_SLOTS = 10_000
EMPTY_PER_CELL = 20
HEADER_ROLES = frozenset({"header", "column_header", "col_header", "columnheader", "th", "head"})
_POSITION = attrgetter("row", "col")  # a cell's anchor, and the order of ``Table.cells``
_ROW = attrgetter("row")
_COL = attrgetter("col")


class TableTooLarge(ValueError):
    """The declared or implied grid is too large to allocate."""


class Cell(msgspec.Struct, eq=False, gc=False):
    """One cell: its anchor (0-based), spans, text, and where it came from.

    ``text`` is what a reader sees (markup removed: HTML tags, emphasis markers; math as
    written); ``runs`` the same content as inline runs (``inline.Run``), with its pictures.
    ``header`` is true exactly for the cells anchored in its table's header rows
    (``row < Table.header_rows``): every change of the header rows or of the grid keeps it so.

    A msgspec struct, not a class with ``__slots__``: a large table is tens of thousands of
    cells, and a struct is made several times faster.  Its fields are its constructor's
    arguments, in this order (runs are given as ``_runs``).  Equality is identity (``eq=False``),
    and the garbage collector does not track cells (``gc=False``): a cell refers to its
    source dict and runs, never back to anything that refers to it.
    """

    row: int
    col: int
    row_span: int = 1
    col_span: int = 1
    text: str = ""
    header: bool = False
    page: int | None = None
    element_id: str | None = None
    _runs: list[Run] | None = None  # None: plain text, made into runs on first use
    raw: dict[str, Any] | None = None

    @property
    def runs(self) -> list[Run]:
        if self._runs is None:
            self._runs = inline.text_runs(self.text)
        return self._runs

    @property
    def images(self) -> list[ImageRef]:
        """The cell's pictures, in order."""
        return inline.pictures(self._runs) if self._runs else []

    @property
    def is_merged(self) -> bool:
        return self.row_span > 1 or self.col_span > 1

    def __repr__(self) -> str:
        return f"Cell({self.row},{self.col},{self.row_span}x{self.col_span},{self.text!r})"


def _may_be_rich(cells: list[Any]) -> bool | None:
    """False when no cell text of a structure holds a character the inline rules read (one
    look at all the texts together, instead of one per cell); None when it cannot be told
    so cheaply."""
    try:
        texts = "\x00".join([c["text"] for c in cells])
    except (TypeError, KeyError):
        return None
    return inline.may_have_cell_markup(texts)


def cell_content(text: str, raw: dict[str, Any] | None = None) -> tuple[str, list[Run] | None]:
    """A source cell's visible text and runs (None when the text is plain: runs are then
    made on first use).  HTML markup is read as HTML, a ``formula`` cell is one formula,
    other text follows the inline rules of engine text; pictures from ``image_datas`` (or
    ``image_data``) follow the text."""
    if not inline.may_have_cell_markup(text) and (raw is None or (  # the common case: plain text
            "image_datas" not in raw and "image_data" not in raw and "objects" not in raw
            and raw.get("content_type") != "formula")):
        return text, None
    runs: list[Run] | None = None
    content_type = raw.get("content_type") if raw is not None else None
    if content_type == "formula" and text.strip():
        runs = inline.math_runs(text)
    elif inline.has_html_markup(text):
        runs = inline.parse_html(text)
    else:
        objects = raw.get("objects") if raw is not None else None
        if objects or inline.may_have_markup(text):
            runs = inline.parse_text(text, objects if isinstance(objects, list) else ())
    if raw is not None and ("image_datas" in raw or "image_data" in raw):
        ref = image_ref_from(raw.get("image_datas") or raw.get("image_data"), {})
        if ref is not None:
            runs = [*(runs if runs is not None else inline.text_runs(text)),
                    Run(inline.PICTURE, image=ref)]
    if runs is None:
        return text, None
    if inline.is_plain(runs):
        return inline.plain_text(runs), None
    return inline.plain_text(runs), runs


class Covered:
    """A slot covered by the span of ``anchor`` (not its top-left slot)."""

    __slots__ = ("anchor", "row", "col")

    def __init__(self, anchor: Cell, row: int, col: int) -> None:
        self.anchor = anchor
        self.row = row
        self.col = col

    @property
    def starts_row_span(self) -> bool:
        """True on the leftmost slot of a row the anchor spans into from above (DOCX vMerge)."""
        return self.col == self.anchor.col and self.row > self.anchor.row


Slot = Cell | Covered


class Table:
    """A logical table: the grid, its header rows, and per-row provenance.

    ``cells`` are in reading order (by row, then column); stitching keeps that order as it
    appends and sorts only after padding rows it had already written."""

    __slots__ = ("n_rows", "n_cols", "_cells", "_header_rows", "row_pages", "row_element_ids",
                 "repairs", "source", "element_ids", "caption", "_slots", "_unsorted", "_ids",
                 "_header_key")

    def __init__(self, n_rows: int, n_cols: int, cells: list[Cell], *, header_rows: int = 0,
                 source: str = "", repairs: list[str] | None = None) -> None:
        self.n_rows = n_rows
        self.n_cols = n_cols
        self._cells = cells
        self._unsorted = False  # rows were padded after later rows were appended
        self._ids: set[str] | None = None  # ``element_ids`` as a set, while stitching
        # (count, signature) of the first rows, kept while the table grows by stitching
        self._header_key: tuple[int, HeaderKey | None] | None = None
        self.header_rows = header_rows
        self.row_pages: list[int | None] = [None] * n_rows
        self.row_element_ids: list[str | None] = [None] * n_rows
        self.repairs = repairs or []
        self.source = source
        self.element_ids: list[str] = []
        self.caption: str | None = None  # set for logical tables (``stages.logical``)
        self._slots: list[list[Slot]] | None = None

    @property
    def header_rows(self) -> int:
        """How many leading rows are header rows; setting it sets every ``Cell.header``."""
        return self._header_rows

    @header_rows.setter
    def header_rows(self, count: int) -> None:
        self._header_rows = count
        for cell in self._cells:
            cell.header = cell.row < count

    @property
    def cells(self) -> list[Cell]:
        """Every cell, by row and then column."""
        if self._unsorted:
            self._cells.sort(key=_POSITION)
            self._unsorted = False
        return self._cells

    @cells.setter
    def cells(self, cells: list[Cell]) -> None:
        self._cells = cells
        self.header_rows = self._header_rows  # the new cells' ``header`` too
        self._unsorted = False
        self._slots = None
        self._header_key = None

    # -- views ---------------------------------------------------------------------------
    def grid(self) -> list[list[Slot]]:
        """Rows of slots: each slot is the ``Cell`` anchored there or a ``Covered`` marker."""
        if self._slots is None:
            slots: list[list[Slot | None]] = [[None] * self.n_cols for _ in range(self.n_rows)]
            for cell in self.cells:
                for r in range(cell.row, cell.row + cell.row_span):
                    row = slots[r]
                    for c in range(cell.col, cell.col + cell.col_span):
                        row[c] = cell if (r == cell.row and c == cell.col) else Covered(
                            cell, r, c)
            self._slots = slots  # type: ignore[assignment]
        return self._slots  # type: ignore[return-value]

    def rows(self) -> Iterator[list[Cell]]:
        """The anchored cells of each row, left to right (what HTML ``<tr>`` holds)."""
        by_row: list[list[Cell]] = [[] for _ in range(self.n_rows)]
        for cell in self.cells:
            by_row[cell.row].append(cell)
        for row in by_row:
            row.sort(key=_COL)
            yield row

    def text_grid(self) -> list[list[str]]:
        """Plain texts row by row; a merged cell's text sits in its anchor, covered slots are ''."""
        return [[s.text if isinstance(s, Cell) else "" for s in row] for row in self.grid()]

    def widest_lines(self, cap: int) -> list[int]:
        """Per column, the display width (CJK counts double) of the longest line in its
        single-column cells, at most ``cap``: what a writer sizes columns by."""
        widest = [0] * self.n_cols
        for cell in self.cells:
            text = cell.text
            if cell.col_span != 1 or not text:
                continue
            longest = display_width(text) if "\n" not in text else max(
                display_width(line) for line in text.split("\n"))
            if longest > widest[cell.col]:
                widest[cell.col] = min(longest, cap)
        return widest

    def merged_ranges(self) -> list[tuple[int, int, int, int]]:
        """(row, col, row_span, col_span) of every cell spanning more than one slot, 0-based."""
        return [(c.row, c.col, c.row_span, c.col_span) for c in self.cells if c.is_merged]

    @property
    def has_spans(self) -> bool:
        return any(c.is_merged for c in self.cells)

    @property
    def pages(self) -> list[int]:
        seen: list[int] = []
        for page in self.row_pages:
            if page is not None and page not in seen:
                seen.append(page)
        return seen

    def slice_columns(self, start: int, stop: int) -> Table:
        """The columns ``start:stop`` as a table of their own: spans are clipped at the cut,
        and a cell whose anchor lies left of ``start`` reappears (text and all) at ``start``."""
        return self._columns(start, stop, self.cells)

    def column_slices(self, width: int) -> Iterator[tuple[int, int, Table]]:
        """``(start, stop, slice_columns(start, stop))`` for consecutive slices of ``width``
        columns, in one pass over the cells (slicing each in turn would read every cell once
        per slice)."""
        starts = range(0, self.n_cols, width)
        parts: list[list[Cell]] = [[] for _ in starts]
        for cell in self.cells:
            for part in range(cell.col // width, (cell.col + cell.col_span - 1) // width + 1):
                parts[part].append(cell)
        for start, cells in zip(starts, parts):
            stop = min(start + width, self.n_cols)
            yield start, stop, self._columns(start, stop, cells)

    def _columns(self, start: int, stop: int, cells: list[Cell]) -> Table:
        kept = []
        for cell in cells:
            left, right = max(cell.col, start), min(cell.col + cell.col_span, stop)
            if left >= right:
                continue
            kept.append(Cell(cell.row, left - start, cell.row_span, right - left, cell.text,
                             header=cell.header, page=cell.page,
                             element_id=cell.element_id, _runs=cell._runs, raw=cell.raw))
        part = Table(self.n_rows, stop - start, kept, header_rows=self.header_rows,
                     source=self.source)
        part.row_pages = list(self.row_pages)
        part.row_element_ids = list(self.row_element_ids)
        part.element_ids = list(self.element_ids)
        return part

    def to_pandas(self, spans: str = "fill", header: bool = True) -> Any:
        """A pandas DataFrame of the table (``frames.to_pandas``: ``spans`` is ``fill``,
        ``top-left`` or ``blank``; header rows name the columns)."""
        from .frames import to_pandas

        return to_pandas(self, spans, header)

    # -- stitching -----------------------------------------------------------------------
    def set_provenance(self, page: int | None, element_id: str | None) -> None:
        self.row_pages = [page] * self.n_rows
        self.row_element_ids = [element_id] * self.n_rows
        if element_id:
            self.element_ids = [element_id]
        self._ids = None
        for cell in self.cells:
            if cell.page is None:
                cell.page = page
            if cell.element_id is None:
                cell.element_id = element_id

    def extend(self, fragment: Table) -> list[str]:
        """Append a continuation fragment's rows below this table.

        The narrower of the two is padded with empty cells to the wider column count; the
        fragment's leading header rows are dropped when they equal this table's header exactly.
        Returns the notes of what was done (also added to ``repairs``).  Costs time in
        proportion to the fragment and the cells it adds, not to the table so far (a chain
        of 30,000 fragments joins in linear time).
        """
        notes: list[str] = []
        width = max(self.n_cols, fragment.n_cols)
        if (self.n_rows + fragment.n_rows) * width > MAX_GRID_SLOTS:
            raise TableTooLarge(f"joining a continuation would make a table of "
                                f"{self.n_rows + fragment.n_rows} x {width} cells")
        skip = 0
        if self.header_rows and fragment.n_rows > self.header_rows and \
                fragment.n_cols == self.n_cols and \
                fragment.header_key(self.header_rows) == self.header_key():
            skip = self.header_rows
            notes.append(f"repeated header row{'s' if skip > 1 else ''} of a continuation dropped")
        if fragment.n_cols != self.n_cols:
            notes.append(f"continuation with {fragment.n_cols} columns padded to {width}")
        if self.n_cols < width:
            self._widen(width)
        offset = self.n_rows - skip
        pages = fragment.row_pages
        cells = self._cells
        pad_from = fragment.n_cols  # fragment rows narrower than the table get empty cells
        padded = skip  # the next fragment row whose padding is not written yet
        for cell in fragment.cells:  # by row, then column: padding goes after each row
            if cell.row < skip:
                continue
            while padded < cell.row:
                _pad_row(cells, padded + offset, pad_from, width, pages[padded])
                padded += 1
            cell.row += offset
            cell.header = False  # below the header: a fragment's own header rows are body here
            cells.append(cell)
        while padded < fragment.n_rows:
            _pad_row(cells, padded + offset, pad_from, width, pages[padded])
            padded += 1
        self.n_rows += fragment.n_rows - skip
        self.row_pages.extend(pages[skip:])
        self.row_element_ids.extend(fragment.row_element_ids[skip:])
        if self._ids is None:
            self._ids = set(self.element_ids)
        for id_ in fragment.element_ids:
            if id_ not in self._ids:
                self._ids.add(id_)
                self.element_ids.append(id_)
        self._slots = None
        self.repairs.extend(notes)
        self.repairs.extend(fragment.repairs)
        return notes

    def header_key(self, count: int | None = None) -> HeaderKey | None:
        """What the first ``count`` rows (default: the header rows) hold, position by position,
        to tell a repeated header; None when a cell spans out of them.  The table's own key is
        kept while it grows."""
        count = self.header_rows if count is None else count
        cached = self._header_key
        if cached is not None and cached[0] == count:
            return cached[1]
        key: HeaderKey | None = {}
        for cell in self._cells:
            if cell.row < count:
                if cell.row + cell.row_span > count:
                    key = None
                    break
                key[(cell.row, cell.col)] = (cell.row_span, cell.col_span, cell.text.strip())
        if count == self.header_rows:
            self._header_key = (count, key)
        return key

    def follow_header(self, head: Table) -> None:
        """Header rows as ``head`` (the first fragment of this fragment's chain) decided them:
        the leading rows that repeat its header exactly, else none."""
        count = head.header_rows
        repeats = count > 0 and self.n_rows > count and self.n_cols == head.n_cols and \
            self.header_key(count) == head.header_key()
        _set_header_rows(self, [True] * count + [False] if repeats else [False])
        self._header_key = None

    def _widen(self, width: int) -> None:
        """Give every row ``width`` columns: the new slots are empty cells."""
        key = self._header_key[1] if self._header_key is not None else None
        for r in range(self.n_rows):
            _pad_row(self._cells, r, self.n_cols, width, self.row_pages[r],
                     header=r < self.header_rows)
            if key is not None and r < self._header_key[0]:  # type: ignore[index]
                key.update(((r, c), (1, 1, "")) for c in range(self.n_cols, width))
        self._unsorted = self._unsorted or self.n_rows > 0
        self.n_cols = width
        self._slots = None


HeaderKey = dict[tuple[int, int], tuple[int, int, str]]


def _pad_row(cells: list[Cell], row: int, start: int, stop: int, page: int | None, *,
             header: bool = False) -> None:
    """Empty cells for the slots ``start:stop`` of ``row`` (slots no cell covers)."""
    cells.extend(Cell(row, c, header=header, page=page) for c in range(start, stop))


# -- placement (shared by every source) ----------------------------------------------------
class _Placer:
    """Places cells on a grid by the module's repair rules."""

    def __init__(self, n_rows: int, n_cols: int, fixed_rows: bool) -> None:
        self.n_rows = n_rows
        self.n_cols = n_cols
        self.fixed_rows = fixed_rows
        self.owner: dict[tuple[int, int], Cell] = {}
        self.cells: list[Cell] = []
        self.repairs: list[str] = []

    def place(self, cell: Cell) -> None:
        row, col = cell.row, cell.col
        if cell.row_span == 1 and cell.col_span == 1 and 0 <= row < self.n_rows and \
                0 <= col < self.n_cols and (row, col) not in self.owner:
            self.owner[(row, col)] = cell  # the common case: a plain cell in a free slot
            self.cells.append(cell)
            return
        if cell.row >= MAX_ROWS or cell.col >= MAX_COLS or cell.row < 0 or cell.col < 0:
            self.repairs.append(f"cell at row {cell.row + 1}, column {cell.col + 1} is beyond "
                                "any plausible table and was dropped")
            return
        if cell.row >= self.n_rows or cell.col >= self.n_cols:
            self.repairs.append(f"cell at row {cell.row + 1}, column {cell.col + 1} lies "
                                "outside the declared grid; the grid grew")
            self.n_rows = max(self.n_rows, cell.row + 1)
            self.n_cols = max(self.n_cols, cell.col + 1)
        holder = self.owner.get((cell.row, cell.col))
        if holder is not None:
            if cell.text:
                holder.text = f"{holder.text}\n{cell.text}" if holder.text else cell.text
            self.repairs.append(f"cell at row {cell.row + 1}, column {cell.col + 1} overlaps "
                                f"the cell at row {holder.row + 1}, column {holder.col + 1}; "
                                "its text was merged into that cell")
            return
        if self.n_rows * self.n_cols > MAX_GRID_SLOTS:  # checked before anything is allocated
            raise TableTooLarge(f"a table of {self.n_rows} x {self.n_cols} cells is too large")
        max_rows = self.n_rows - cell.row
        if cell.row_span > max_rows and self.fixed_rows:
            self.repairs.append(f"row span {cell.row_span} at row {cell.row + 1}, column "
                                f"{cell.col + 1} clamped to {max_rows}")
            cell.row_span = max_rows
        max_cols = self.n_cols - cell.col
        if cell.col_span > max_cols:
            self.repairs.append(f"column span {cell.col_span} at row {cell.row + 1}, column "
                                f"{cell.col + 1} clamped to {max_cols}")
            cell.col_span = max_cols
        width = 1
        while width < cell.col_span and (cell.row, cell.col + width) not in self.owner:
            width += 1
        height = 1
        while height < cell.row_span and all(
                (cell.row + height, c) not in self.owner
                for c in range(cell.col, cell.col + width)):
            height += 1
        if (height, width) != (cell.row_span, cell.col_span):
            self.repairs.append(f"span {cell.row_span}x{cell.col_span} at row {cell.row + 1}, "
                                f"column {cell.col + 1} overlapped other cells; shrunk to "
                                f"{height}x{width}")
            cell.row_span, cell.col_span = height, width
        if not self.fixed_rows:
            self.n_rows = max(self.n_rows, cell.row + height)
            if self.n_rows * self.n_cols > MAX_GRID_SLOTS:
                raise TableTooLarge(f"a table of {self.n_rows} x {self.n_cols} cells is too "
                                    "large")
        for r in range(cell.row, cell.row + height):
            for c in range(cell.col, cell.col + width):
                self.owner[(r, c)] = cell
        self.cells.append(cell)

    def place_all(self, cells: list[Cell]) -> None:
        """``place`` each cell in turn, or all at once when no rule fires for any of them."""
        if self.owner or not self._place_disjoint(cells):
            for cell in cells:
                self.place(cell)

    def _place_disjoint(self, cells: list[Cell]) -> bool:
        """Place ``cells`` in one step when they lie inside the grid and no two cover the
        same slot (then the order of placing changes nothing); False, placing nothing,
        otherwise."""
        if not cells or self.n_rows * self.n_cols > MAX_GRID_SLOTS:
            return False
        owner = dict(zip(map(_POSITION, cells), cells))
        rows, cols = list(map(_ROW, cells)), list(map(_COL, cells))
        if len(owner) != len(cells) or min(rows) < 0 or max(rows) >= min(self.n_rows, MAX_ROWS) \
                or min(cols) < 0 or max(cols) >= min(self.n_cols, MAX_COLS):
            return False  # rule 2 (grow the grid, or drop a cell beyond any table) decides
        for cell in [c for c in cells if c.row_span != 1 or c.col_span != 1]:
            if not (1 <= cell.row_span <= self.n_rows - cell.row and
                    1 <= cell.col_span <= self.n_cols - cell.col):
                return False
            for r in range(cell.row, cell.row + cell.row_span):
                for c in range(cell.col, cell.col + cell.col_span):
                    if (r, c) != (cell.row, cell.col):
                        if (r, c) in owner:
                            return False
                        owner[(r, c)] = cell
        self.owner = owner
        self.cells = list(cells)
        return True

    def finish(self, source: str) -> Table:
        if self.n_rows * self.n_cols > MAX_GRID_SLOTS:
            raise TableTooLarge(f"a table of {self.n_rows} x {self.n_cols} cells is too large")
        empty = self.n_rows * self.n_cols - len(self.owner)
        if empty > MAX_EMPTY_SLOTS and empty > EMPTY_PER_CELL * len(self.cells):  # rule 8
            raise TableTooLarge(f"a table of {self.n_rows} x {self.n_cols} cells where only "
                                f"{len(self.cells)} exist")
        holes = 0
        if len(self.owner) < self.n_rows * self.n_cols:  # most grids are complete
            for r in range(self.n_rows):
                for c in range(self.n_cols):
                    if (r, c) not in self.owner:
                        cell = Cell(r, c)
                        self.owner[(r, c)] = cell
                        self.cells.append(cell)
                        holes += 1
        if holes:
            self.repairs.append(_holes_note(holes))
        self.cells.sort(key=_POSITION)
        return Table(self.n_rows, self.n_cols, self.cells, source=source, repairs=self.repairs)


def _holes_note(holes: int) -> str:
    return f"{holes} empty cell{'s' if holes > 1 else ''} filled in where the source had none"


def _span(value: object, repairs: list[str], what: str) -> int:
    if type(value) is int and value >= 1:
        return value
    if value is None:
        return 1
    number = as_int(value)
    if number is None or number < 1:
        repairs.append(f"{what} {str(value)[:40]!r} set to 1")
        return 1
    return number


def _allowed(extent: int) -> int:
    """Rule 8: how far a declared size may exceed the cells' extent."""
    return max(2 * extent, extent + 100)


def _declared(value: object, extent: int, what: str, repairs: list[str]) -> int:
    """The row or column count of a structure: the declared count unless rule 8 ignores
    it (a smaller one grows by rule 2 as cells lie beyond it), else the cells' extent."""
    declared = as_int(value)
    if declared is None or declared <= 0:
        return extent
    if declared > _allowed(extent):
        repairs.append(f"declared {declared} {what} ignored (the cells use {extent})")
        return extent
    return declared


def _set_header_rows(table: Table, flags: list[bool] | None) -> None:
    """Header rows: the leading rows whose flag is set, or the default when there are no
    flags (the first row, grown to its tallest span, when more rows follow)."""
    if flags is None:
        count = _default_header_rows(table)
    else:
        count = 0
        while count < min(len(flags), table.n_rows) and flags[count]:
            count += 1
    table.header_rows = count  # and every cell's ``header``


def _default_header_rows(table: Table) -> int:
    if table.n_rows < 2:
        return 0
    depth = max((c.row_span for c in table.cells if c.row == 0), default=1)
    return depth if depth < table.n_rows else 0


# -- sources -------------------------------------------------------------------------------
def table_from_structure(structure: dict[str, Any]) -> Table | None:
    """Grid from ``table_structure`` (1-based ``row``/``col``: ``legacy`` maps 0-based legacy
    cells onto them).  None when it holds no usable cell."""
    raw_cells = structure.get("cells")
    if not isinstance(raw_cells, list):
        return None
    repairs: list[str] = []
    parsed: list[Cell] = []
    with_role: list[tuple[Cell, bool]] = []  # the cells that give a role: is it a header's
    rich = _may_be_rich(raw_cells)
    for item in raw_cells:
        if not isinstance(item, dict):
            repairs.append("a cell that is not an object was skipped")
            continue
        row, col = item.get("row"), item.get("col")
        if type(row) is not int or type(col) is not int:  # the common case skips as_int
            row, col = as_int(row), as_int(col)
            if row is None or col is None:
                repairs.append("a cell without a row or column was skipped")
                continue
        text = item.get("text")
        text = text if type(text) is str else ("" if text is None else str(text))
        role = item.get("role")
        is_header = role is not None and isinstance(role, str) and role.lower() in HEADER_ROLES
        runs = None
        if rich is not False or "image_datas" in item or "image_data" in item or \
                "objects" in item or item.get("content_type") == "formula":  # else plain
            text, runs = cell_content(text, item)
        page = as_int(item["page_number"]) if "page_number" in item else None
        row_span, col_span = item.get("row_span", 1), item.get("col_span", 1)
        if row_span != 1 or type(row_span) is not int:
            row_span = _span(row_span, repairs, "row span")
        if col_span != 1 or type(col_span) is not int:
            col_span = _span(col_span, repairs, "column span")
        cell = Cell(row - 1, col - 1, row_span, col_span, text, is_header, page, None,
                    runs, item)
        parsed.append(cell)
        if isinstance(role, str):
            with_role.append((cell, is_header))
    if not parsed:
        return None
    _zero_based(parsed, repairs)
    roles: dict[int, list[bool]] = {}
    for cell, is_header in with_role:
        roles.setdefault(cell.row, []).append(is_header)
    table = _structure_grid(parsed, structure, repairs)
    _structure_header(table, structure, roles)
    return table


def _structure_grid(parsed: list[Cell], structure: dict[str, Any], repairs: list[str]
                    ) -> Table:
    """The parsed cells placed on the grid ``rows``/``cols`` declare, cut back to the cells'
    extent when the declaration is out of proportion (rule 8)."""
    # the extent of the cells that can be placed (one the placer drops sizes nothing)
    rows, cols = list(map(_ROW, parsed)), list(map(_COL, parsed))
    if min(rows) < 0 or max(rows) >= MAX_ROWS or min(cols) < 0 or max(cols) >= MAX_COLS:
        placeable = [c for c in parsed if 0 <= c.row < MAX_ROWS and 0 <= c.col < MAX_COLS]
        rows, cols = [c.row for c in placeable] or [0], [c.col for c in placeable] or [0]
    extent_rows, extent_cols = max(rows) + 1, max(cols) + 1
    n_rows = _declared(structure.get("rows"), max(extent_rows, 1), "rows", repairs)
    n_cols = _declared(structure.get("cols"), max(extent_cols, 1), "columns", repairs)
    placer = _Placer(n_rows, n_cols, fixed_rows=True)
    placer.repairs = repairs
    placer.place_all(parsed)
    return placer.finish("structure")


def _zero_based(parsed: list[Cell], repairs: list[str]) -> None:
    """Rule 9: cells numbered from 0 on an axis (parsed as -1 there) move by one."""
    if min(map(_ROW, parsed)) == -1:
        for cell in parsed:
            cell.row += 1
        repairs.append("rows are numbered from 0: read as 0-based")
    if min(map(_COL, parsed)) == -1:
        for cell in parsed:
            cell.col += 1
        repairs.append("columns are numbered from 0: read as 0-based")


def _structure_header(table: Table, structure: dict[str, Any],
                      roles: dict[int, list[bool]]) -> None:
    """Header rows from ``table_layout.header_rows`` (a count or a list), else from the cells'
    roles (leading rows whose every cell with a role is a header), else the default."""
    layout = structure.get("table_layout")
    declared_header = as_int(layout.get("header_rows")) if isinstance(layout, dict) else None
    if isinstance(layout, dict) and isinstance(layout.get("header_rows"), list):
        declared_header = len(layout["header_rows"])
    if declared_header is not None and 0 <= declared_header <= table.n_rows:
        _set_header_rows(table, [True] * declared_header + [False])
    else:
        _set_header_rows(table, [bool(roles.get(r)) and all(roles[r])
                                 for r in range(table.n_rows)] if roles else None)


def _html_rows(table_el: Any) -> Iterator[tuple[Any, bool]]:
    """The table's own ``tr`` elements (not those of nested tables), with an in-thead flag."""
    for child in table_el:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "tr":
            yield child, False
        elif tag in ("thead", "tbody", "tfoot"):
            for row in child:
                if isinstance(row.tag, str) and row.tag == "tr":
                    yield row, tag == "thead"


def table_from_html(markup: str) -> Table | None:
    """Grid from the first ``<table>`` in ``markup``; None when there is none."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fromstring(markup)
    except (lxml.etree.ParserError, ValueError):  # nothing there: the caller falls back
        return None
    except etree.LxmlError as exc:
        # libxml2's HTML parser recovers from any markup; what it cannot get past is a
        # failed allocation (reported as "unknown error"), which must not pass for text
        raise MemoryError(f"the HTML table could not be parsed ({exc})") from None
    table_el = root if root.tag == "table" else next(root.iter("table"), None)
    if table_el is None:
        return None
    repairs: list[str] = []
    rows = list(_html_rows(table_el))
    natural = _width_without_colspans(rows)
    width = _allowed(natural)
    placer = _Placer(len(rows), 0, fixed_rows=True)
    placer.repairs = repairs
    header_flags: list[bool] = []
    for r, (tr, in_thead) in enumerate(rows):
        col = 0
        all_th = True
        any_cell = False
        for td in tr:
            tag = td.tag if isinstance(td.tag, str) else ""
            if tag not in ("td", "th"):
                continue
            any_cell = True
            all_th = all_th and tag == "th"
            while (r, col) in placer.owner:
                col += 1
            runs = inline.html_node_runs(td)
            plain = inline.is_plain(runs)
            row_span = _span(td.get("rowspan"), repairs, "rowspan")
            col_span = _span(td.get("colspan"), repairs, "colspan")
            if col_span > 1 and col + col_span > width:  # rule 8
                limit = max(width - col, 1)
                repairs.append(f"colspan {col_span} at row {r + 1}, column {col + 1} clamped "
                               f"to {limit} (the cells take {natural} columns without "
                               "colspans)")
                col_span = limit
            cell = Cell(r, col, row_span, col_span,
                        inline.plain_text(runs), header=tag == "th" or in_thead,
                        _runs=None if plain else runs)
            if col + cell.col_span > placer.n_cols:
                placer.n_cols = min(col + cell.col_span, MAX_COLS)
            placer.place(cell)
            col += cell.col_span
        header_flags.append(any_cell and (in_thead or all_th))
    if placer.n_rows == 0 or placer.n_cols == 0:
        return None
    table = placer.finish("html")
    _set_header_rows(table, header_flags if any(header_flags) else None)
    return table


def _width_without_colspans(rows: list[tuple[Any, bool]]) -> int:
    """Rule 8's extent of an HTML table: the number of columns the cells take when every
    colspan counts as 1 (row spans as written, up to the last row)."""
    free_from: list[int] = []  # per column, the first row its row spans leave free
    for r, (tr, _) in enumerate(rows):
        col = 0
        for td in tr:
            if not isinstance(td.tag, str) or td.tag not in ("td", "th"):
                continue
            while col < len(free_from) and free_from[col] > r:
                col += 1
            end = r + min(_span(td.get("rowspan"), [], "rowspan"), len(rows) - r)
            if col == len(free_from):
                free_from.append(end)
            else:
                free_from[col] = end
            col += 1
    return len(free_from)


_PIPE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_PIPE_SPLIT = re.compile(r"(?<!\\)\|")


def _pipe_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in _PIPE_SPLIT.split(line)]


def table_from_pipe(text: str) -> Table | None:
    """Grid from a GFM pipe table (header line, separator line, body lines); else None."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2 or "|" not in lines[0] or not _PIPE_SEPARATOR.match(lines[1]):
        return None
    if "-" not in lines[1]:
        return None
    rows = [_pipe_cells(lines[0])] + [_pipe_cells(line) for line in lines[2:]]
    return _table_from_texts(rows, "pipe", header_rows=1)


def table_from_text(text: str) -> Table:
    """Grid from plain text: one row a line, cells split on tabs (one column without tabs)."""
    lines = [line for line in text.splitlines() if line.strip()] or [""]
    rows = [line.split("\t") if "\t" in line else [line.strip()] for line in lines]
    return _table_from_texts(rows, "text", header_rows=0)


def _table_from_texts(rows: list[list[str]], source: str, header_rows: int) -> Table:
    width = max(len(r) for r in rows)
    if len(rows) > MAX_ROWS or width > MAX_COLS or len(rows) * width > MAX_GRID_SLOTS:
        raise TableTooLarge(f"a table of {len(rows)} x {width} cells is too large")
    header_rows = header_rows if len(rows) > header_rows else 0  # a lone row is data
    cells = []
    for r, row in enumerate(rows):
        for c in range(width):
            text, runs = cell_content(row[c]) if c < len(row) else ("", None)
            cells.append(Cell(r, c, text=text, header=r < header_rows, _runs=runs))
    return Table(len(rows), width, cells, source=source, header_rows=header_rows)


def _text_grid(text: str, rows: int, cols: int) -> list[list[str]] | None:
    """The texts of the complete table of ``rows`` x ``cols`` without spans that ``text``
    holds (rule 7), else None."""
    found: Table | None = None
    if looks_like_html_table(text):
        found = table_from_html(text)
    elif "|" in text:
        found = table_from_pipe(text)
    if found is not None:
        if (found.n_rows, found.n_cols) != (rows, cols) or found.has_spans:
            return None
        return found.text_grid()
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) != rows or any(len(tokens) != cols for tokens in lines):
        return None
    return lines


def _fill_from_text(table: Table, text: str) -> None:
    """Rule 7: slots a sparse structure left empty take their text from the element text."""
    missing = [c for c in table.cells if c.raw is None or not c.text and not c.raw.get("text")
               and not c.images]
    if not missing or table.has_spans or table.n_rows * table.n_cols > 10_000:
        return
    grid = _text_grid(text, table.n_rows, table.n_cols)
    if grid is None:
        return
    listed = sum(1 for c in table.cells if c.raw is not None)
    filled = 0
    holes = 0
    for cell in missing:
        value = grid[cell.row][cell.col]
        if value:
            cell.text, cell._runs = cell_content(value)
            filled += 1
        elif cell.raw is None:
            holes += 1
    if not filled:
        return
    table.repairs = [r for r in table.repairs if not r.endswith("filled in where the source "
                                                                "had none")]
    table.repairs.append(f"the structure lists {listed} of {table.n_rows * table.n_cols} cells; "
                         f"{filled} text{'s' if filled > 1 else ''} taken from the element's "
                         "text")
    if holes:
        table.repairs.append(_holes_note(holes))


def looks_like_html_table(text: str) -> bool:
    return "<table" in text[:2000].lower() or "<tr" in text[:2000].lower()


def build_table(raw: dict[str, Any], text: str) -> Table:
    """The grid of a Table element dict, from the best source it has (see module docs)."""
    structure = raw.get("table_structure")
    table: Table | None = None
    if isinstance(structure, dict):
        table = table_from_structure(structure)
        if table is not None and text:
            _fill_from_text(table, text)
    if table is None and text and looks_like_html_table(text):
        table = table_from_html(text)
    if table is None and text:
        table = table_from_pipe(text)
    if table is None:
        table = table_from_text(text)
    return table
