"""Page geometry for the office writers (and the HTML page's wide tables): the source's page
size snapped to a standard paper size, and table column widths that never break a number, a
date or a Latin word.

Lengths are twips (twentieths of a point) unless a name says otherwise; text is measured in
half-ems (a Latin letter is about one, a CJK character two), which is what a fixed font size
turns into twips.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model import PageInfo
from ..patterns import LazyPattern
from ..tables import Table

TWIPS_PER_INCH = 1440
TWIPS_PER_MM = TWIPS_PER_INCH / 25.4
SNAP = 0.03  # a measured size within 3% of a standard one is that size

# Standard paper sizes in millimetres, portrait; the first of a shape wins a tie on aspect
# alone (ISO A sizes share one aspect: an unknown scale is A4).
STANDARD_MM: tuple[tuple[str, float, float], ...] = (
    ("A4", 210, 297), ("Letter", 215.9, 279.4), ("A3", 297, 420), ("A5", 148, 210),
    ("B5", 176, 250), ("JIS B5", 182, 257), ("B4", 250, 353), ("Legal", 215.9, 355.6),
    ("Tabloid", 279.4, 431.8), ("A6", 105, 148),
)
MAX_PAGE = 31680  # 22 inches: Word's largest page side
MIN_PAGE = 2880


@dataclass(frozen=True)
class PageSize:
    """A page in twips; ``landscape`` when wider than tall."""

    width: int
    height: int
    name: str = ""

    @property
    def landscape(self) -> bool:
        return self.width > self.height

    def turned(self) -> PageSize:
        return PageSize(self.height, self.width, self.name)


A4 = PageSize(11906, 16838, "A4")


def _standard(name: str, w_mm: float, h_mm: float, landscape: bool) -> PageSize:
    size = PageSize(round(w_mm * TWIPS_PER_MM), round(h_mm * TWIPS_PER_MM), name)
    return size.turned() if landscape else size


def page_size(width: float | None, height: float | None, dpi: float | None) -> PageSize | None:
    """The paper of one source page ``width`` x ``height`` pixels: with ``dpi``, the standard
    size within 3% of it, else its own size; without, the standard size of that aspect
    (within 3%; A4 for the ISO A shape), else A4 turned as the page is.  None when the page
    has no usable size."""
    if not width or not height or width <= 0 or height <= 0 or \
            not math.isfinite(width) or not math.isfinite(height):
        return None
    landscape = width > height
    short, long_ = sorted((width, height))
    if dpi and dpi > 0 and math.isfinite(dpi):
        short_mm, long_mm = short / dpi * 25.4, long_ / dpi * 25.4
        for name, w_mm, h_mm in STANDARD_MM:
            if abs(short_mm - w_mm) <= SNAP * w_mm and abs(long_mm - h_mm) <= SNAP * h_mm:
                return _standard(name, w_mm, h_mm, landscape)
        w = min(max(round(short_mm * TWIPS_PER_MM), MIN_PAGE), MAX_PAGE)
        h = min(max(round(long_mm * TWIPS_PER_MM), MIN_PAGE), MAX_PAGE)
        size = PageSize(w, h)
        return size.turned() if landscape else size
    aspect = long_ / short
    for name, w_mm, h_mm in STANDARD_MM:
        if abs(aspect - h_mm / w_mm) <= SNAP * h_mm / w_mm:
            return _standard(name, w_mm, h_mm, landscape)
    return A4.turned() if landscape else A4


def _dpi(value: object) -> float | None:
    try:
        dpi = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return dpi if 20 <= dpi <= 2400 else None  # a dpi no scanner has is no dpi


def document_page(pages: Iterable[PageInfo], dpi: object = None) -> PageSize:
    """The page size most of the document's pages have (``page_size`` of each; a page's own
    ``dpi`` before the document's), A4 when no page tells."""
    default_dpi = _dpi(dpi)
    counts: Counter[PageSize] = Counter()
    for page in pages:
        own = _dpi(page.raw.get("dpi")) if isinstance(page.raw, dict) else None
        size = page_size(page.width, page.height, own or default_dpi)
        if size is not None:
            counts[size] += 1
    return counts.most_common(1)[0][0] if counts else A4


# -- measuring text --------------------------------------------------------------------
# Characters a line may break around: CJK, fullwidth forms, kana, hangul (each its own unit).
_WIDE = "\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f" \
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
_WIDE_CHAR = LazyPattern(f"[{_WIDE}]")
NARROW = 1.3  # half-ems of a Latin letter or digit, on the generous side: the fallback
CAPITAL = 0.25  # fonts LibreOffice uses without Calibri (DejaVu Sans) are wider, capitals most
WIDE = 2.0


_CAPITALS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ%@#&"  # counted wider


def _narrow(text: str) -> float:
    """Half-ems of text without wide characters (capitals counted wider).  The capitals are
    counted in the UTF-8 bytes, where no byte of another character is ASCII: deleting bytes
    is several times faster than ``str.translate``, and this runs for every cell."""
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate is counted, not refused
    return len(text) * NARROW + (len(data) - len(data.translate(None, _CAPITALS))) * CAPITAL


def measure(text: str) -> float:
    """Width of ``text`` on one line, in half-ems."""
    if text.isascii():
        return _narrow(text)
    return _widths(text)[1]


def longest_token(text: str) -> float:
    """Width in half-ems of the widest piece of ``text`` a line cannot break inside: a
    number, a date, a Latin word, or one CJK character."""
    if text.isascii():
        return _widest(text.split())
    return _widths(text)[0]


def _widest(tokens: list[str]) -> float:
    """The width of the widest of ``tokens`` (0 for none), measuring only those long enough
    to be it: a character takes ``NARROW`` half-ems, a capital at most ``CAPITAL`` more."""
    if not tokens:
        return 0.0
    shortest_rival = max(map(len, tokens)) * NARROW / (NARROW + CAPITAL)
    return max(_narrow(token) for token in tokens if len(token) >= shortest_rival)


def _widths(text: str) -> tuple[float, float]:
    """``longest_token`` and ``measure`` of a text that is not ASCII, from one pass over
    its wide characters (a line may break around each, as at a space)."""
    spaced, wide = _WIDE_CHAR.subn(" ", text)
    widest = _widest(spaced.split())
    return (max(widest, WIDE) if wide else widest), wide * (WIDE - NARROW) + _narrow(text)


# -- tables ----------------------------------------------------------------------------
CELL_MARGIN = 100  # left and right, each
CELL_PAD = 2 * CELL_MARGIN + 30  # both margins and the borders
READABLE = 8.0  # half-ems: a column of long text is at least four CJK characters wide
PREFERRED_CAP = 60.0  # half-ems: one long cell cannot starve the other columns


@dataclass(frozen=True)
class TableLayout:
    """How a table is set: column widths (twips, summing to the width it was laid out in),
    its font size in half-points (None: the body's), and whether it needs a landscape page."""

    widths: list[int]
    font_size: int | None
    landscape: bool


def column_needs(table: Table) -> tuple[list[float], list[float]]:
    """Per column, in half-ems: the narrowest width that breaks no unbreakable piece of its
    single-column cells (and is readable for long text), and the width of its widest line.
    Spanning cells do not count."""
    n = table.n_cols
    least = [1.0] * n
    widest = [1.0] * n
    for cell in table.cells:
        text = cell.text
        if cell.col_span != 1 or not text:
            continue
        c = cell.col
        need, line = cell_needs(text)
        if need > least[c]:
            least[c] = need
        if line > widest[c]:
            widest[c] = line
    return least, widest


def cell_needs(text: str) -> tuple[float, float]:
    """A cell text's least width (its widest unbreakable piece, and readable for long text)
    and the width of its widest line, in half-ems."""
    if "\n" in text:
        line = max(map(measure, text.split("\n")))
        token = longest_token(text)
    elif text.isascii():
        line = _narrow(text)
        # one word (a number, a date): the line is the word
        token = line if " " not in text else _widest(text.split())
    else:
        token, line = _widths(text)
    return (token if token > READABLE else max(token, min(line, READABLE))), line


# the most half-ems one character can take in ``measure``: a bound that needs no measuring
MOST_ASCII = NARROW + CAPITAL
MOST_ANY = max(WIDE, MOST_ASCII)


def _fit(least: Sequence[float], widest: Sequence[float], total: int, half_em: float
         ) -> list[int] | None:
    """Widths summing to ``total`` when every column's least width fits at ``half_em``
    twips per half-em, the spare room shared by what each column would like more; else
    None."""
    floor = [math.ceil(x * half_em) + CELL_PAD for x in least]
    spare = total - sum(floor)
    if spare < 0:
        return None
    extra = [max(min(w, PREFERRED_CAP) * half_em + CELL_PAD - f, 0)
             for w, f in zip(widest, floor)]
    wanted = sum(extra)
    if wanted <= spare:  # every column gets what it wants; the rest goes in proportion
        wants = [f + e for f, e in zip(floor, extra)]
        scale = total / sum(wants)
        widths = [int(x * scale) for x in wants]
    else:
        widths = [int(f + spare * e / wanted) for f, e in zip(floor, extra)]
    widths[-1] += total - sum(widths)
    return widths


def layout_table(table: Table, portrait: int, landscape: int, *, base: int = 22,
                 floor: int = 16) -> TableLayout:
    """Lay ``table`` out in a text column ``portrait`` twips wide, else (when its least
    widths do not fit even at the ``floor`` font size, in half-points) on a landscape page
    ``landscape`` wide.  The font shrinks from ``base`` only as far as needed; a table that
    fits nowhere is set at the floor size on the landscape page, its columns in proportion
    to their least widths."""
    least, widest = column_needs(table)
    for width, turned in ((portrait, False), (landscape, True)):
        for size in range(base, floor - 1, -1):
            widths = _fit(least, widest, width, size * 5)  # half an em of a half-point size
            if widths is not None:
                return TableLayout(widths, None if size == base else size, turned)
    total = sum(least) or 1.0
    widths = [max(int(landscape * x / total), CELL_PAD) for x in least]
    widths[-1] += landscape - sum(widths)
    return TableLayout(widths, floor, True)


def estimated_lines(text: str, width: int, font_size: int) -> int:
    """How many lines ``text`` takes in a cell ``width`` twips wide (a rough count, for
    deciding whether merged rows fit on one page)."""
    room = max(width - CELL_PAD, 1) / (font_size * 5)
    return sum(max(1, math.ceil(measure(line) / room)) for line in text.split("\n"))
