"""The document model every writer sees: small, slotted objects that tolerate missing fields.

An ``Element`` wraps one element dict of the 1.x schema (legacy results are mapped onto that
shape first) and lifts the fields writers need into attributes; the dict itself stays in
``raw`` so nothing is lost.  ``DocumentInfo`` holds what is known about the whole document and
grows as the reader gets further: fields before ``elements`` are there at ``begin``, fields
after it at ``end``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from . import inline
from .inline import Run
from .values import as_int, is_int, str_or_none

if TYPE_CHECKING:
    from .images import ImageRef
    from .tables import Table

# The element types of the documented schema; anything else (the GUI engine's lowercase types)
# is kept as it came and goes to a writer's fallback.
KNOWN_TYPES = frozenset({
    "Title", "NarrativeText", "ListItem", "Table", "TableCaption", "Image", "FigureCaption",
    "Formula", "Chemical", "Header", "Footer", "PageNumber", "PageBreak", "CodeSnippet",
    "UncategorizedText",
})
# The input shapes the reader knows (``DocumentInfo.shape``, ``info --json``), in words.
SHAPES = {
    "envelope": "API response (code, message, data.elements)",
    "data": "bare data object (data.elements without the envelope)",
    "elements": "bare list of elements",
    "legacy": "legacy pdf_to_markdown response (result.detail)",
    "legacy-web": "legacy result in a web front-end envelope (code, msg, data.result.detail)",
    "legacy-bare": "legacy result object without its envelope (detail, pages, markdown)",
}
# The GUI engine's UI element types (``force_engine: "textin_gui"``), as its documentation lists
# them; writers treat them as unknown types, but ``--types`` accepts them by name.
GUI_TYPES = frozenset({
    "button", "input", "checkbox", "dropdown", "link", "tab", "text", "label", "title", "icon",
    "image", "menu", "navigation", "toolbar", "statusbar",
})
FURNITURE_TYPES = frozenset({"Header", "Footer", "PageNumber"})
# The heavy fields of elements (at any depth) most outputs never read: writers declare which
# they read, ``iter_elements`` can skip them unread, and JSONL can drop them (``--jsonl-drop``)
HEAVY_FIELDS = ("char_details", "base64")
# Those a conversion skips unread when no writer reads them.  Finding a field means searching
# every batch's bytes for its key (10-15 ms per 30 MB, each key): that pays for char_details,
# thousands of small objects per page, not for base64, one string per picture that msgspec
# copies at memory speed (chunks of the 1000-page inputs: 8% faster than with the skip on
# the one with pictures, 3-4% on the one without; peak memory 0.9 MB higher)
SKIPPED_UNREAD = ("char_details",)
CAPTION_TYPES = frozenset({"TableCaption", "FigureCaption"})

@dataclass
class PageInfo:
    number: int
    width: float | None = None
    height: float | None = None
    image_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class DocumentInfo:
    """What is known about the document.  ``name`` is always set (the input's stem); the rest
    is filled in as the reader meets it, so writers must read it at ``end`` for the full view.
    """

    name: str
    source: str = ""
    shape: str = ""  # a key of SHAPES
    code: int | None = None
    message: str | None = None
    schema_version: str | None = None
    file_id: str | None = None
    job_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: dict[int, PageInfo] = field(default_factory=dict)
    title_tree: list[Any] | None = None
    summary: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    # Filled by the reader once the element stream ends.
    element_count: int = 0
    page_count_seen: int = 0

    @property
    def filename(self) -> str | None:
        value = self.metadata.get("filename")
        return value if isinstance(value, str) and value else None

    @property
    def title(self) -> str:
        """A human title: the source file name without extension, else the input's name."""
        if self.filename:
            stem = self.filename.rsplit("/", 1)[-1]
            return stem.rsplit(".", 1)[0] if "." in stem else stem
        return self.name

    @property
    def page_count(self) -> int | None:
        value = self.metadata.get("page_count")
        if is_int(value):
            return value
        if self.pages:
            return max(self.pages)
        return self.page_count_seen or None


_ORDERED_MARKER = re.compile(
    r"^\s*(?:\(?\d{1,3}[.)、．]|\(\d{1,3}\)|（\d{1,3}）|[a-zA-Z][.)]|[ivxIVX]{1,4}[.)]"
    r"|[一二三四五六七八九十]{1,3}[、.．])\s*"
)
_BULLET_MARKER = re.compile(r"^\s*[•·\-*▪◦○●■□–—➢►✓✔]\s*")


@dataclass(frozen=True)
class ListInfo:
    """How a list item renders: its nesting level (0 = top), whether the marker in its text
    numbers it, the marker itself and the text after the marker."""

    level: int
    ordered: bool
    marker: str
    body: str


MAX_LIST_LEVEL = 8  # nine levels, as Word and most renderers allow


class ListMark(NamedTuple):
    """A list item's place in the logical document, decided once by ``stages.number_lists``
    so that every writer shows the same numbers."""

    run: int  # which list run it belongs to, counted from 1 in reading order
    level: int  # nesting level, 0 = top (``ListInfo.level``)
    ordered: bool  # numbered (else a bullet)
    number: int  # its number at its level (1, 2, ...); 0 for a bullet


def list_info(text: str, depth: int | None) -> ListInfo:
    level = min(depth, MAX_LIST_LEVEL) if depth is not None and depth >= 0 else 0
    match = _ORDERED_MARKER.match(text)
    if match:
        return ListInfo(level, True, match.group(0).strip(), text[match.end():])
    match = _BULLET_MARKER.match(text)
    if match:
        return ListInfo(level, False, match.group(0).strip(), text[match.end():])
    return ListInfo(level, False, "", text)


class Element:
    """One element of the stream.

    ``index`` is the 0-based position in the input's element list; ``raw`` the 1.x dict.
    After the logical stages, a Table element carries ``table`` (the stitched grid),
    tables and images carry ``caption`` (the attached caption element), a joined
    continuation keeps its fragments in ``parts``, and a ListItem carries ``list_mark``.
    """

    __slots__ = (
        "type", "sub_type", "text", "page", "id", "index", "depth", "parent_id", "ref_id",
        "is_continuation", "continuation_of", "coordinates", "coord_unit", "raw", "table",
        "caption", "parts", "glue", "text_start", "list_mark", "_image", "_runs",
    )

    def __init__(self, raw: dict[str, Any], index: int, *, type_: str, text: str,
                 page: int | None, id_: str, coord_unit: str = "normalized") -> None:
        meta = raw.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        self.raw = raw
        self.index = index
        self.type = type_
        sub_type = raw.get("sub_type")
        self.sub_type = sub_type if isinstance(sub_type, str) else None
        self.text = text
        self.page = page
        self.id = id_
        depth = meta.get("category_depth")
        self.depth = depth if type(depth) is int or depth is None else as_int(depth)
        parent = meta.get("parent_id")
        self.parent_id = parent if type(parent) is str and parent else str_or_none(parent)
        ref = meta.get("ref_element_id")
        self.ref_id = ref if type(ref) is str and ref else str_or_none(ref)
        self.is_continuation = meta.get("is_continuation") is True
        of = meta.get("continuation_of")
        self.continuation_of = of if type(of) is str and of else str_or_none(of)
        coords = raw.get("coordinates")
        self.coordinates = coords if isinstance(coords, list) else None
        self.coord_unit = coord_unit
        self.table: Table | None = None
        self.caption: Element | None = None
        self.parts: list[Element] = []
        self.glue = ""  # a joined fragment: the text put between it and the text before it
        self.text_start = 0  # a joined fragment: where ``text`` starts in the raw text
        self.list_mark: ListMark | None = None  # a ListItem, after ``stages.number_lists``
        self._image: ImageRef | None | bool = False
        self._runs: list[Run] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.raw.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def children_ids(self) -> list[str]:
        children = self.metadata.get("children_ids")
        return [c for c in children if isinstance(c, str)] if isinstance(children, list) else []

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Inline objects (formulas, handwriting, checkboxes) with their ``text_range``."""
        objects = self.raw.get("objects")
        return [o for o in objects if isinstance(o, dict)] if isinstance(objects, list) else []

    def runs(self, warn: Callable[[str], None] | None = None) -> list[Run]:
        """The text as inline runs (see ``inline``), made once: emphasis and math read from the
        text, inline formula ``objects`` placed by their ``text_range``; a joined chain's
        fragments each with their own objects.  Code is never interpreted.  ``warn`` hears of
        objects that could not be placed."""
        if self._runs is None:
            if self.parts:
                runs: list[Run] = []
                for part in self.parts:
                    if part.glue:
                        runs.append(Run(inline.TEXT, part.glue))
                    runs.extend(part._own_runs(warn))
                self._runs = inline.merge(runs)
            else:
                self._runs = self._own_runs(warn)
        return self._runs

    @property
    def is_plain(self) -> bool:
        """True when the text holds nothing the inline rules read (no markup characters,
        formula objects, or joined fragments): its runs are the text itself."""
        return not self.parts and self._runs is None and not self.raw.get("objects") and \
            not inline.may_have_markup(self.text)

    def _own_runs(self, warn: Callable[[str], None] | None) -> list[Run]:
        if self.type == "CodeSnippet":
            return inline.text_runs(self.text)
        objects: list[Any] = self.objects
        if objects and self.text_start:  # the text lost its first characters to a repeat
            objects = [_shifted(o, -self.text_start) for o in objects]
        return inline.parse_text(self.text, objects, warn=warn)

    @property
    def is_furniture(self) -> bool:
        return self.type in FURNITURE_TYPES

    @property
    def list(self) -> ListInfo:
        return list_info(self.text, self.depth)

    @property
    def heading_level(self) -> int:
        """1-based heading level from ``category_depth`` (0 -> 1); never below 1."""
        return (self.depth if self.depth is not None and self.depth >= 0 else 0) + 1

    @property
    def image(self) -> ImageRef | None:
        """The element's picture (Image elements), or None; decoded only when asked."""
        if self._image is False:
            from .images import image_ref_from

            self._image = image_ref_from(self.raw.get("image_data"), self.metadata)
        return self._image  # type: ignore[return-value]

    @property
    def caption_first(self) -> bool:
        """True when the attached caption came before its object in the input."""
        return self.caption is not None and self.caption.index < self.index

    @property
    def where(self) -> str:
        return f"element {self.id} (#{self.index})"

    def __repr__(self) -> str:
        text = self.text if len(self.text) < 40 else self.text[:37] + "..."
        return f"<Element #{self.index} {self.type} {self.id!r} p{self.page} {text!r}>"


def _shifted(obj: dict[str, Any], offset: int) -> dict[str, Any]:
    span = obj.get("text_range")
    if isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span):
        return {**obj, "text_range": [span[0] + offset, span[1] + offset]}
    return obj
