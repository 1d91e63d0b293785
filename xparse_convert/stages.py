"""Generator stages between the reader and the writers.

``select`` applies the user's filters (pages, types, furniture); it is the only stage that
drops elements, and only on request.  ``logical`` turns the element stream into the logical
document: continuation chains joined (one table over many pages, one paragraph split by a
page break), table grids built, captions attached to their table or picture.

Rules of joining a text continuation (each repair is a warning):
1. The pieces are joined with ``text.join_glue`` (a space, or nothing in CJK text or after a
   hyphen), in time linear in the chain's length.
2. A fragment that starts with text its chain already ends with (real 1.3.0 output repeats
   ~880 characters) loses the longest such overlap when it is at least ``MIN_OVERLAP``
   characters, or when it is the whole fragment.

A table chain cut by a filter (``select`` records what it left out in ``Dropped``):
3. Kept fragments whose chain lost fragments between them are still one table.
4. A kept fragment whose chain's first fragment was left out heads the table of the kept
   ones, with the chain's caption (unless the caption was left out by its type) and the
   first fragment's header decision: its leading rows are a header only when they repeat the
   first fragment's header exactly.  Neither is a warning.

List runs (``number_lists``; every writer renders these numbers, none counts on its own):
5. A list run is a series of ListItems with nothing between them but page boundaries, page
   furniture (Header, Footer, PageNumber) and PageBreak elements; any other element ends it.
6. In a run, a numbered item's number is one more than that of the numbered item before it
   at its level.  Any item ends the numbering of the levels deeper than its own, and a bullet
   that of its own level: the next numbered item there starts again at 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .diagnostics import Diagnostics
from .model import CAPTION_TYPES, FURNITURE_TYPES, MAX_LIST_LEVEL, Element, ListMark
from .tables import Table, TableTooLarge, build_table, table_from_text
from .text import fold_spaces, join_glue
from .values import is_int

HOLD_LIMIT = 64  # furniture elements held while a chain may still continue
MIN_OVERLAP = 20  # a continuation repeating this much of its head's end drops the repeat
OVERLAP_WINDOW = 8192  # characters of the open chain's end kept to look for repeats


@dataclass(frozen=True)
class PageSet:
    """Pages chosen with ``1-5,9,12-``: closed ranges, single pages, open-ended ranges."""

    ranges: tuple[tuple[int, int | None], ...]

    @classmethod
    def parse(cls, spec: str) -> PageSet:
        ranges: list[tuple[int, int | None]] = []
        for part in spec.replace(" ", "").split(","):
            if not part:
                continue
            match = re.fullmatch(r"(\d+)(?:-(\d*))?", part)
            if not match:
                raise ValueError(f"bad page range {part!r} (use forms like 1-5,9,12-)")
            start = int(match.group(1))
            if match.group(2) is None:
                end: int | None = start
            else:
                end = int(match.group(2)) if match.group(2) else None
            if start < 1 or (end is not None and end < start):
                raise ValueError(f"bad page range {part!r}")
            ranges.append((start, end))
        if not ranges:
            raise ValueError("empty page range")
        return cls(tuple(ranges))

    def __contains__(self, page: object) -> bool:
        if not isinstance(page, int):
            return False
        return any(start <= page and (end is None or page <= end) for start, end in self.ranges)


class Dropped(set[str]):
    """The ids of the elements ``select`` left out, so later stages can tell a cut chain from
    a broken one, and what a kept continuation needs of the table chain the filter cut: the
    chain's first fragment (its header rows) and its caption, when those were left out.

    Holds one chain at most (the last table left out, followed by the ids of its
    continuations left out after it) and one table caption waiting for its table."""

    def __init__(self) -> None:
        super().__init__()
        self.head: Element | None = None  # the cut chain's first fragment, left out
        self.caption: Element | None = None  # its caption, left out by the page range
        self.last_id: str | None = None  # the chain's last fragment left out
        self.origin: str | None = None  # the kept fragment the left-out ones continue
        self._waiting: Element | None = None  # a table caption left out before its table

    def record(self, element: Element, *, by_type: bool) -> None:
        """Note an element left out (``by_type``: by a type or furniture filter, which also
        leaves its caption out; else by the page range only)."""
        self.add(element.id)
        kind = element.type
        if kind == "Table":
            of = element.continuation_of if element.is_continuation else None
            if of is not None and of == self.last_id:
                self.last_id = element.id  # the cut chain goes on
                return
            self.head = None if of is not None else element
            self.origin = of
            self.last_id = element.id
            waiting, self._waiting = self._waiting, None
            self.caption = waiting if self.head is not None and waiting is not None and (
                _linked(waiting, element) or not _has_other_link(waiting)) else None
        elif kind == "TableCaption":
            if by_type:
                return
            if self.head is not None and self.caption is None and _linked(element, self.head):
                self.caption = element  # a caption after its table
            else:
                self._waiting = element
        elif kind not in FURNITURE_TYPES and kind != "PageBreak":
            self._waiting = None  # a caption is adjacent to its table or linked to it

    def forget(self) -> None:
        """The cut chain was taken up by a kept continuation: let its elements go."""
        self.head = self.caption = None
        self.last_id = self.origin = None


def select(elements: Iterable[Element], *, pages: PageSet | None = None,
           types: frozenset[str] | None = None, exclude_types: frozenset[str] | None = None,
           furniture: bool = True, dropped: set[str] | None = None) -> Iterator[Element]:
    """The elements the user asked for.  Elements left out go to ``dropped`` (their ids to a
    set, or ``Dropped.record``) so later stages can tell a cut chain from a broken one.
    Elements without a page number are kept by a page filter (they cannot be placed)."""
    for element in elements:
        by_type = (types is not None and element.type not in types) or (
            exclude_types is not None and element.type in exclude_types) or (
            not furniture and element.type in FURNITURE_TYPES)
        if not by_type and (pages is None or element.page is None or element.page in pages):
            yield element
        elif isinstance(dropped, Dropped):
            dropped.record(element, by_type=by_type)
        elif dropped is not None:
            dropped.add(element.id)


def table_of(element: Element, diag: Diagnostics) -> Table:
    """The grid of a Table element, with provenance; repairs are reported once here."""
    try:
        table = build_table(element.raw, element.text)
    except TableTooLarge as exc:
        diag.warn("table-too-large", f"{exc}; kept as text", element.where)
        table = table_from_text(element.text[:100_000])
    table.set_provenance(element.page, element.id)
    _apply_source_regions(table, element)
    for note in table.repairs:
        diag.warn("table-repair", note, element.where)
    return table


def _follow_cut_head(table: Table, head: Element) -> None:
    """A continuation whose chain's head was left out by a filter keeps the head's header
    decision: its leading rows are header rows only when they repeat the head's header (a
    stitched chain would drop them as a repeat), else it has none (its first row is data)."""
    try:
        head_table = build_table(head.raw, head.text)  # not reported: the user left it out
    except TableTooLarge:
        return
    table.follow_header(head_table)


def _apply_source_regions(table: Table, element: Element) -> None:
    """Per-row source pages of a schema 1.4.0 merged table (``metadata.source_regions``) or of
    cells that name their page."""
    regions = element.metadata.get("source_regions")
    if isinstance(regions, list):
        for region in regions:
            if not isinstance(region, dict):
                continue
            page = region.get("page_number")
            span = region.get("rows") or region.get("row_range")
            start = region.get("row_start", region.get("start_row"))
            end = region.get("row_end", region.get("end_row"))
            if isinstance(span, list) and len(span) == 2:
                start, end = span
            if not all(is_int(v) for v in (page, start, end)):
                continue
            for row in range(max(start, 1) - 1, min(end, table.n_rows)):
                table.row_pages[row] = page
    for cell in table.cells:
        if cell.page is not None and cell.page != element.page and cell.row < table.n_rows:
            table.row_pages[cell.row] = cell.page


def repeated_overlap(before: str, fragment: str) -> int:
    """How many leading characters of ``fragment`` repeat the end of ``before``: the longest
    such overlap when it is at least ``MIN_OVERLAP`` characters or the whole fragment, else 0.
    The search is bounded (``before`` is the last ``OVERLAP_WINDOW`` characters)."""
    if not fragment or not before:
        return 0
    if before.endswith(fragment):
        return len(fragment)
    if len(fragment) < MIN_OVERLAP:
        return 0
    probe = fragment[:MIN_OVERLAP]
    start = max(0, len(before) - len(fragment))
    for _ in range(64):  # candidates are few in real text; hostile repeats stop here
        found = before.find(probe, start)
        if found < 0:
            return 0
        if fragment.startswith(before[found:]):
            return len(before) - found
        start = found + 1
    return 0


def caption_text(caption: Element | None) -> str | None:
    """A caption's text as every output shows it in one line (``Table.caption``, the XLSX
    index, a picture's alternative text): whitespace folded (``text.fold_spaces``)."""
    return fold_spaces(caption.text) if caption is not None else None


def _kind_matches(caption: Element, target: Element) -> bool:
    return (caption.type == "TableCaption" and target.type == "Table") or \
        (caption.type == "FigureCaption" and target.type == "Image")


def _linked(caption: Element, target: Element) -> bool:
    return caption.ref_id == target.id or target.ref_id == caption.id


def _has_other_link(caption: Element) -> bool:
    return caption.ref_id is not None


class _Logical:
    """State of the logical stage: at most one held block (a chain that may continue or take
    a following caption), the furniture met while it is held (at most ``HOLD_LIMIT``), and one
    caption waiting for the object after it."""

    def __init__(self, diag: Diagnostics, dropped: set[str] | None) -> None:
        self.diag = diag
        self.dropped = dropped if dropped is not None else set()  # shared with ``select``
        self.held: Element | None = None
        self.last_id: str | None = None  # id of the held chain's last fragment
        self.pieces: list[str] = []  # the held text chain's text, joined when it is let go
        self.chain_end = ""  # the last OVERLAP_WINDOW characters of that text
        self.furniture: list[Element] = []
        self.caption: Element | None = None  # waiting for the object after it
        self.caption_after: Element | None = None  # the held object it may belong to instead

    def flush(self) -> Iterator[Element]:
        if self.caption is not None and self.caption_after is None:
            yield self.caption
            self.caption = None
        if self.held is not None:
            trailing = None  # a caption after the held object that it cannot take
            if self.held.parts and self.held.type != "Table":
                self._close_text_chain(self.held)
            if self.caption is not None and self.caption_after is self.held:
                if self.held.caption is None:
                    self.held.caption = self.caption
                else:
                    trailing = self.caption
                self.caption = self.caption_after = None
            if self.held.table is not None:  # the one place a table learns its caption
                self.held.table.caption = caption_text(self.held.caption)
            yield self.held
            if trailing is not None:
                yield trailing
            self.held = None
            self.last_id = None
        yield from self.furniture
        self.furniture = []

    def feed(self, element: Element) -> Iterator[Element]:
        held = self.held
        if held is not None and (element.type in FURNITURE_TYPES or element.type == "PageBreak"):
            self.furniture.append(element)
            if len(self.furniture) > HOLD_LIMIT:
                yield from self.flush()
            return
        cut_head: Element | None = None  # the left-out head of the chain this one continues
        if element.is_continuation and element.continuation_of:
            cut = self.dropped if isinstance(self.dropped, Dropped) and \
                element.continuation_of == self.dropped.last_id else None
            if held is not None and held.type == element.type and (
                    element.continuation_of == self.last_id or
                    (cut is not None and cut.origin is not None and cut.origin == self.last_id)):
                try:
                    self._join(held, element)  # across the fragments the filter left out
                    return
                except TableTooLarge as exc:
                    self.diag.warn("table-too-large", f"{exc}; the continuation is kept as a "
                                   "table of its own", element.where)
            if element.continuation_of not in self.dropped:
                self.diag.warn("continuation", f"continues {element.continuation_of}, which is not "
                               "the open table or paragraph; kept on its own", element.where)
            elif cut is not None and element.type == "Table":
                cut_head = cut.head
                if cut.head is not None and element.caption is None:
                    element.caption = cut.caption
                cut.forget()
        if element.type in CAPTION_TYPES:
            yield from self._caption(element)
            return
        if element.type == "Table":
            element.table = table_of(element, self.diag)
            if cut_head is not None:
                _follow_cut_head(element.table, cut_head)
        if element.type in ("Table", "Image"):
            yield from self._object(element)
            return
        yield from self.flush()
        self._hold(element)

    def _hold(self, element: Element) -> None:
        self.held = element
        self.last_id = element.id
        if element.type != "Table":
            self.pieces = [element.text]
            self.chain_end = element.text[-OVERLAP_WINDOW:]

    def _close_text_chain(self, head: Element) -> None:
        """The joined text of a chain, once: runs first (each fragment keeps its own inline
        objects), then the text."""
        head.runs(lambda message: self.diag.warn("inline-formula", message, head.where))
        head.text = "".join(self.pieces)
        self.pieces = []
        self.chain_end = ""

    def _join(self, head: Element, fragment: Element) -> None:
        """Fold a continuation into its chain (raises ``TableTooLarge`` before changing
        anything when the stitched table would be too large)."""
        if head.type == "Table":
            assert head.table is not None
            head.table.extend(table_of(fragment, self.diag))
        else:
            repeat = repeated_overlap(self.chain_end, fragment.text)
            if repeat:
                self.diag.warn("continuation-repeat", f"the first {repeat} characters repeat "
                               "the end of the text it continues; dropped", fragment.where)
                fragment.text = fragment.text[repeat:]
                fragment.text_start = repeat
            fragment.glue = join_glue(self.chain_end, fragment.text)
            self.pieces += (fragment.glue, fragment.text)
            self.chain_end = (self.chain_end + fragment.glue + fragment.text)[-OVERLAP_WINDOW:]
        if not head.parts:
            head.parts = [head]
        head.parts.append(fragment)
        self.last_id = fragment.id
        if head.caption is None and fragment.caption is not None:
            head.caption = fragment.caption

    def _caption(self, caption: Element) -> Iterator[Element]:
        held = self.held
        if held is not None and held.type in ("Table", "Image") and held.caption is None:
            if _linked(caption, held):
                held.caption = caption
                return
            if not _has_other_link(caption) and _kind_matches(caption, held):
                # after the held object and maybe before the next one: decide on the next
                yield from self._release_caption()
                self.caption = caption
                self.caption_after = held
                return
        yield from self.flush()
        self.caption = caption
        self.caption_after = None

    def _release_caption(self) -> Iterator[Element]:
        """Settle the waiting caption: onto the object before it when that one is free,
        else out in reading order (``flush`` knows where it goes)."""
        if self.caption is None:
            return
        if self.caption_after is not None and self.caption_after.caption is None:
            self.caption_after.caption = self.caption
            self.caption = self.caption_after = None
        else:
            yield from self.flush()

    def _object(self, element: Element) -> Iterator[Element]:
        caption = self.caption
        if caption is not None:
            linked = _linked(caption, element)
            adjacent = not _has_other_link(caption) and _kind_matches(caption, element) and \
                (element.ref_id is None or element.ref_id == caption.id)
            prefer_next = caption.type == "TableCaption" or self.caption_after is None
            if linked or (adjacent and prefer_next):
                element.caption = caption
                self.caption = self.caption_after = None
        yield from self._release_caption()
        yield from self.flush()
        self._hold(element)

    def finish(self) -> Iterator[Element]:
        yield from self._release_caption()
        yield from self.flush()


def logical(elements: Iterable[Element], diag: Diagnostics,
            dropped: set[str] | None = None) -> Iterator[Element]:
    """The logical document: every element once, in reading order, except that continuation
    fragments are folded into their chain's first element (``parts``), a Table element carries
    its stitched ``table``, and a caption attached to a table or picture travels in its
    ``caption`` instead of standing alone.

    Every ListItem carries its ``list_mark`` (``number_lists``).

    Holds at most one open chain, the furniture met while it is open (bounded), and one caption.
    """
    return number_lists(_joined(elements, diag, dropped))


def _joined(elements: Iterable[Element], diag: Diagnostics,
            dropped: set[str] | None) -> Iterator[Element]:
    state = _Logical(diag, dropped)
    for element in elements:
        yield from state.feed(element)
    yield from state.finish()


# what a list run continues across (rule 5); page boundaries are no element at all
_RUN_GOES_ON = FURNITURE_TYPES | {"PageBreak"}


def number_lists(elements: Iterable[Element]) -> Iterator[Element]:
    """The elements as they come, each ListItem with its ``list_mark``: its run, level and
    number by rules 5 and 6.  Holds no element; an open run's numbers (one per level) are all
    it keeps."""
    run = 0
    counts: list[int] = []  # the open run's last number at each level; [] when none is open
    for element in elements:
        kind = element.type
        if kind == "ListItem":
            info = element.list
            level = info.level
            if not counts:
                run += 1
                counts = [0] * (MAX_LIST_LEVEL + 1)
            for deeper in range(level + 1, len(counts)):
                counts[deeper] = 0
            counts[level] = counts[level] + 1 if info.ordered else 0
            element.list_mark = ListMark(run, level, info.ordered, counts[level])
        elif counts and kind not in _RUN_GOES_ON:
            counts = []
        yield element
