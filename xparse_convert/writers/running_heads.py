"""Running heads: what the source printed at the top and bottom of its pages, turned into a
document's header and footer.

A page's furniture is its Header and Footer lines and its printed page number (a PageNumber
element, or a header or footer line that is just the page's own number in a pattern like
``第 3 页``, ``- 3 -``, ``3 / 12``).  Lines that come back on at least half of the pages make
the running head; the first page gets its own when it differs, and odd and even pages theirs
when the source alternates.  The printed number becomes a ``PAGE`` field in the most common
pattern, numbered from the first page's printed number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..patterns import LazyPattern

PAGE, NUMPAGES = "\0PAGE", "\0NUMPAGES"  # field markers among a line's pieces
Line = tuple[str, ...]  # text pieces and field markers
Part = tuple[Line, ...]  # the paragraphs of one header or footer

_NUMBERED = re.compile(r"(?P<pre>[^\d]{0,12}?)(?P<n>\d{1,6})"
                       r"(?:(?P<mid>[^\d]{1,12}?)(?P<total>\d{1,6}))?(?P<post>[^\d]{0,12})")
_WORDY = LazyPattern(r"[A-Za-z\u4e00-\u9fff]{2,}")
_PAGE_WORDS = ("page", "第", "页", "頁", "of", "共", "p.")


@dataclass(frozen=True)
class Numbered:
    """A printed page number: its number and its pattern as a line with a PAGE field."""

    number: int
    pattern: Line


def page_number(text: str, *, page: int | None, declared: bool) -> Numbered | None:
    """``text`` as a printed page number, or None.  A PageNumber element (``declared``) may
    print any number; another header or footer line only its own page's number, in a
    pattern with nothing but page words around it."""
    text = " ".join(text.split())
    match = _NUMBERED.fullmatch(text)
    if match is None:
        return None
    pre, post, mid = match["pre"], match["post"], match["mid"]
    number = int(match["n"])
    if not declared:
        words = "".join(_WORDY.findall(pre + (mid or "") + post)).lower()
        for word in _PAGE_WORDS:
            words = words.replace(word, "")
        if number != page or words:
            return None
    pieces: list[str] = [pre, PAGE]
    if match["total"] is not None:
        if int(match["total"]) < number:
            return None
        pieces += [mid, NUMPAGES]
    pieces.append(post)
    return Numbered(number, tuple(p for p in pieces if p))


@dataclass
class PageFurniture:
    """The furniture of one source page, in reading order."""

    headers: list[str] = field(default_factory=list)
    footers: list[str] = field(default_factory=list)
    number: Numbered | None = None
    number_on_top: bool = False  # printed before the page's body


@dataclass(frozen=True)
class Heads:
    """The header and footer parts of a section: default ones, and the first page's and
    even pages' when they differ (None: the same as the default)."""

    header: Part = ()
    footer: Part = ()
    first_header: Part | None = None
    first_footer: Part | None = None
    even_header: Part | None = None
    even_footer: Part | None = None
    start: int | None = None  # the first page's number

    @property
    def title_page(self) -> bool:
        return self.first_header is not None or self.first_footer is not None

    @property
    def even_and_odd(self) -> bool:
        return self.even_header is not None or self.even_footer is not None


def page_parts(page: PageFurniture) -> tuple[Part, Part]:
    """One page's own header and footer, its number as a field where it was printed."""
    header: list[Line] = [(t,) for t in page.headers]
    footer: list[Line] = [(t,) for t in page.footers]
    if page.number is not None:
        (header if page.number_on_top else footer).append(page.number.pattern)
    return tuple(header), tuple(footer)


def _common(pages: list[PageFurniture]) -> tuple[Part, Part]:
    """The lines at least half of ``pages`` print, in their order, and the most common
    number pattern where most pages print it."""
    if not pages:
        return (), ()
    header = _majority([p.headers for p in pages])
    footer = _majority([p.footers for p in pages])
    numbered = [p.number for p in pages if p.number is not None]
    if 2 * len(numbered) >= len(pages):
        pattern = Counter(n.pattern for n in numbered).most_common(1)[0][0]
        on_top = 2 * sum(p.number_on_top for p in pages if p.number) > len(numbered)
        if on_top:
            header = (*header, pattern)
        else:
            footer = (*footer, pattern)
    return header, footer


def _majority(texts: list[list[str]]) -> Part:
    counts: Counter[str] = Counter()
    order: dict[str, int] = {}
    for lines in texts:
        for line in dict.fromkeys(lines):
            counts[line] += 1
            order.setdefault(line, len(order))
    kept = [t for t, n in counts.items() if 2 * n >= len(texts) and (n > 1 or len(texts) == 1)]
    return tuple((t,) for t in sorted(kept, key=order.__getitem__))


def _numbered(part: Part | None) -> bool:
    return any(PAGE in line for line in part or ())


def _differs(own: Part, common: Part | None) -> bool:
    """True when a page's own part is not the running one: it shares none of its lines
    (a cover without the running head, a chapter's own head), or it prints a number where
    the running one has none, or the reverse.  OCR noise on one line is no difference."""
    if own == common:
        return False
    if _numbered(own) != _numbered(common):
        return True
    own_text = {line for line in own if PAGE not in line}
    common_text = {line for line in common or () if PAGE not in line}
    if not common_text:
        return bool(own_text)
    return not own_text & common_text


def decide(pages: dict[int, PageFurniture], seen: Iterable[int]) -> Heads:
    """The running heads of a document whose body has pages ``seen`` and whose furniture is
    ``pages`` (by source page)."""
    numbers = sorted(set(seen) | set(pages))
    if not numbers:
        return Heads()
    every = [pages.get(n) or PageFurniture() for n in numbers]
    header, footer = _common(every)
    heads: dict[str, Part | None] = {"header": header, "footer": footer}
    odd = [f for n, f in zip(numbers, every) if n % 2]
    even = [f for n, f in zip(numbers, every) if not n % 2]
    if len(odd) >= 2 and len(even) >= 2:
        odd_parts, even_parts = _common(odd), _common(even)
        if odd_parts != even_parts:
            heads.update(header=odd_parts[0], footer=odd_parts[1], even_header=even_parts[0],
                         even_footer=even_parts[1])
    first = page_parts(every[0])
    default_first = (heads["header"], heads["footer"]) if numbers[0] % 2 or \
        heads.get("even_header") is None else (heads["even_header"], heads["even_footer"])
    if len(numbers) > 1 and any(_differs(own, common) for own, common in
                                zip(first, default_first)):
        heads.update(first_header=first[0], first_footer=first[1])
    start = None
    for n, furniture in zip(numbers, every):
        if furniture.number is not None:
            start = max(furniture.number.number - (n - numbers[0]), 0)
            break
    return Heads(start=start, **heads)  # type: ignore[arg-type]
