"""The writer protocol: one class per output format, one method per element type."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from ..diagnostics import Diagnostics
from ..images import EMBED, FILE, LOAD, ImageRef, Placement, place
from ..inline import TEXT, Run, fold_runs, strip_runs, text_runs, without_prefix
from ..model import SKIPPED_UNREAD, DocumentInfo, Element, ListMark
from ..text import TextStats, clean_text, find_bad, fold_spaces

# The one dispatch table: an element's type selects a method only through it (or through a
# writer's own ``types``).  Types are data from the input: "Begin", "Write" or "__init__" are
# just unknown types and reach ``default`` with their text.
DOCUMENT_TYPES: Mapping[str, str] = {
    "Title": "title", "NarrativeText": "narrative_text", "ListItem": "list_item",
    "Table": "table", "TableCaption": "table_caption", "Image": "image",
    "FigureCaption": "figure_caption", "Formula": "formula", "Chemical": "chemical",
    "Header": "header", "Footer": "footer", "PageNumber": "page_number",
    "PageBreak": "page_break", "CodeSnippet": "code_snippet",
    "UncategorizedText": "uncategorized_text",
}
# The GUI engine's lowercase types go to ``default`` as text, except a picture.
GUI_METHODS: Mapping[str, str] = {"image": "image"}


@dataclass(frozen=True)
class Option:
    """A writer's own option.  On the command line it is ``--<writer>-<name>``; in the library
    ``options={"<writer>_<name>": value}``.  ``choices`` limits a string; ``kind`` is ``str``,
    ``bool``, ``int`` or ``list`` (comma-separated on the command line)."""

    name: str
    help: str
    default: Any = None
    choices: tuple[str, ...] | None = None
    kind: type = str


class PageBreaks:
    """Where ``--page-breaks`` puts breaks, for every writer that has them: at each source page
    boundary and at PageBreak elements, one break however many reasons ask for it, and the
    page furniture of the page that ends still goes before the break."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._pending = False
        self._hold_page: int | None = None  # furniture of this page stays before the break
        self._last_page: int | None = None
        self._current: Element | None = None

    def see(self, element: Element) -> None:
        """Call for every element before writing it."""
        self._current = element
        if self.enabled and element.page is not None:
            if self._last_page is not None and element.page != self._last_page:
                self._pending = True
                self._hold_page = None
            self._last_page = element.page

    def page_break(self, element: Element) -> None:
        """Call for a PageBreak element."""
        if self.enabled:
            self._pending = True
            self._hold_page = element.page

    def due(self) -> bool:
        """True (once) when a break belongs before the block about to be written."""
        current = self._current
        if not self._pending or (current is not None and current.is_furniture
                                 and current.page == self._hold_page):
            return False
        self._pending = False
        return True


class Assets:
    """Where a writer puts the extra files it makes (pictures).  Files land in one folder,
    ``<stem>_files/`` beside the outputs, renamed into place with them."""

    def add(self, data: bytes, extension: str) -> str:  # pragma: no cover - interface
        """Store ``data``; return a relative link to it from the output file (percent-encoded,
        POSIX separators)."""
        raise NotImplementedError


@dataclass
class WriterContext:
    """What a writer gets besides its output stream."""

    options: dict[str, Any]
    diag: Diagnostics
    assets: Assets
    text_stats: TextStats = field(default_factory=TextStats)
    # The engine's whole-document markdown, available at ``end`` to writers that asked for it.
    engine_markdown: Callable[[], str | None] = lambda: None
    # Another output of the same stem, ``<stem>.<extension>`` (binary or text), that appears
    # and is discarded with the writer's own (Parquet writes three files).
    open_output: Callable[[str, bool], IO[Any]] | None = None


class Writer:
    """Base class of every output format.

    Subclasses set ``name`` (the ``--to`` word), ``extension``, ``binary`` (bytes or text
    output) and ``consumes``: ``"raw"`` for every input element in order, ``"logical"`` for the
    logical document (continuations joined, tables built, captions attached; see
    ``stages.logical``).  ``write`` dispatches each element through ``DOCUMENT_TYPES``
    (``NarrativeText`` -> ``narrative_text``) and the writer's own ``types``; anything else
    reaches ``default``.
    """

    name: ClassVar[str] = ""
    extension: ClassVar[str] = ""
    binary: ClassVar[bool] = False
    # text a pipe can take (``-o -``); None: whatever is not ``binary`` (JSONL writes bytes)
    text: ClassVar[bool | None] = None
    consumes: ClassVar[str] = "logical"
    options: ClassVar[tuple[Option, ...]] = ()
    description: ClassVar[str] = ""
    # element types of this writer's own (a plug-in for another engine's types) -> method
    types: ClassVar[Mapping[str, str]] = {}
    # True: Header, Footer and PageNumber reach this writer whatever ``furniture`` says (a
    # format with places of its own for them, like DOCX's header and footer parts); without
    # ``furniture`` they come as soon as they are read, beside the logical document.
    page_furniture: ClassVar[bool] = False

    def __init__(self, out: IO[Any], context: WriterContext) -> None:
        self.out = out
        self.context = context
        self.diag = context.diag
        self._methods: dict[str, Callable[[Element], None]] = {}
        self.current: Element | None = None  # the element being written
        self.begun = False  # set once ``begin`` has run (``abort`` is called only then)

    # -- the protocol ----------------------------------------------------------------
    @classmethod
    def wants_engine_markdown(cls, options: dict[str, Any]) -> bool:
        """True when this writer, with these options, needs the engine's markdown string."""
        return False

    @classmethod
    def consumption(cls, options: dict[str, Any]) -> str:
        """``"raw"`` or ``"logical"`` for these options (most writers: always ``consumes``)."""
        return cls.consumes

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str] | None:
        """The heavy fields (``model.HEAVY_FIELDS``) this writer reads with these options;
        the reader skips those no writer of the run reads.  None (the default, so a plug-in
        that declares nothing sees every field): all of them."""
        return None

    @classmethod
    def picture_fields(cls, options: dict[str, Any]) -> frozenset[str]:
        """What a writer that places pictures reads: their base64, unless ``--images none``
        (``--images url`` embeds a picture that has no URL)."""
        mode = options.get("images") or cls.images_default
        return frozenset() if mode == "none" else frozenset({"base64"})

    def begin(self, info: DocumentInfo) -> None:
        """Called once before the first element, with the fields known so far."""

    def write_raw(self, element: Element) -> None:
        """An input element, for writers whose ``consumption`` is ``"raw"`` (it is ``write``)
        or ``"both"`` (every input element here, the logical document through ``write``)."""
        self.write(element)

    def write(self, element: Element) -> None:
        """Dispatch ``element`` by its type: the writer's own ``types``, then the documented
        types (``DOCUMENT_TYPES``), then ``GUI_METHODS``; anything else goes to ``default``."""
        self.current = element  # where a warning about it points (``where``)
        method = self._methods.get(element.type)
        if method is None:
            name = self.types.get(element.type) or DOCUMENT_TYPES.get(element.type) or \
                GUI_METHODS.get(element.type)
            if name is None:
                self.default(element)  # not cached: the input chooses these strings
                return
            method = getattr(self, name)
            self._methods[element.type] = method
        method(element)

    @property
    def where(self) -> str | None:
        """The element being written, for warnings."""
        return self.current.where if self.current is not None else None

    @classmethod
    def undeclared_methods(cls) -> list[str]:
        """Public one-argument methods of a writer that no type dispatches to (a plug-in that
        expects its method named after a type to be called must declare it in ``types``)."""
        dispatched = {*DOCUMENT_TYPES.values(), *GUI_METHODS.values(), *cls.types.values()}
        found = []
        for klass in cls.__mro__:
            if klass is Writer or not issubclass(klass, Writer):
                continue
            for name, value in vars(klass).items():
                if name.startswith("_") or name in dispatched or hasattr(Writer, name) or \
                        not inspect.isfunction(value):
                    continue
                params = list(inspect.signature(value).parameters.values())
                if len(params) == 2 and params[1].default is inspect.Parameter.empty:
                    found.append(name)
        return sorted(set(found))

    def default(self, element: Element) -> None:
        """Elements of a type this writer has no method for."""

    # -- the element methods: each writer overrides what it renders; the aliases are here
    def title(self, el: Element) -> None:
        self.default(el)

    def narrative_text(self, el: Element) -> None:
        self.default(el)

    def uncategorized_text(self, el: Element) -> None:
        self.narrative_text(el)

    def chemical(self, el: Element) -> None:
        self.narrative_text(el)

    def list_item(self, el: Element) -> None:
        self.default(el)

    def table(self, el: Element) -> None:
        self.default(el)

    def table_caption(self, el: Element) -> None:
        self.default(el)

    def figure_caption(self, el: Element) -> None:
        self.table_caption(el)

    def image(self, el: Element) -> None:
        self.default(el)

    def formula(self, el: Element) -> None:
        self.default(el)

    def header(self, el: Element) -> None:
        self.default(el)

    def footer(self, el: Element) -> None:
        self.header(el)

    def page_number(self, el: Element) -> None:
        self.header(el)

    def page_break(self, el: Element) -> None:
        self.default(el)

    def code_snippet(self, el: Element) -> None:
        self.default(el)

    def end(self, info: DocumentInfo) -> None:
        """Called once after the last element; ``info`` now holds the fields after the list."""

    def abort(self) -> None:
        """Called instead of ``end`` when the conversion failed; the output is discarded."""

    # -- policies shared by subclasses ----------------------------------------------
    def option(self, key: str, default: Any = None) -> Any:
        return self.context.options.get(key, default)

    def clean(self, text: str) -> str:
        """Text safe for any output: see ``text.clean_text``; counts go to the report."""
        return clean_text(text, self.context.text_stats)

    # -- pictures: ``images.place`` decides, each writer renders the answer ------------------
    images_default: ClassVar[str] = "embed"  # the --images mode when none is given

    def place_picture(self, ref: ImageRef | None) -> Placement:
        """What to do with a picture under this run's ``--images`` mode (``images.place``);
        what is left out is warned about at the element being written."""
        return place(ref, self.option("images") or self.images_default,
                     max_pixels=self.option("max_image_pixels"),
                     warn=lambda kind, message: self.diag.warn(kind, message, self.where))

    def picture_location(self, placement: Placement) -> str | None:
        """Where a shown picture is: its ``data:`` URI, its file in ``<stem>_files/``, or its
        source URL; None when it is not shown (a link, missing, left out)."""
        if placement.action == EMBED:
            return placement.data_uri
        if placement.action == FILE:
            assert placement.data is not None and placement.info is not None
            return self.context.assets.add(placement.data, placement.info.extension)
        return placement.url if placement.action == LOAD else None

    def caption_text(self, el: Element) -> str:
        """The caption attached to ``el`` as plain text on one line, cleaned (the rule of
        ``stages.caption_text``); ``""`` without one.  For where markup cannot go: an index
        cell, a picture's alternative text."""
        return fold_spaces(self.clean(el.caption.text)) if el.caption is not None else ""

    def runs(self, el: Element) -> list[Run]:
        """An element's inline runs as a paragraph shows them (stripped, text cleaned)."""
        if el.is_plain:  # the common case, without the run machinery
            return text_runs(self.clean(el.text).strip())
        return self._cleaned(strip_runs(el.runs(self._formula_warning(el))))

    def line_runs(self, el: Element) -> list[Run]:
        """An element's inline runs on one line (headings, list items, captions)."""
        if el.is_plain:
            text = " ".join(self.clean(el.text).split())
            return [Run(TEXT, text)] if text else []
        return self._cleaned(fold_runs(el.runs(self._formula_warning(el))))

    def list_runs(self, el: Element) -> list[Run]:
        """A list item's runs on one line, without the marker its text starts with."""
        return without_prefix(self.line_runs(el), el.list.marker)

    @staticmethod
    def list_mark(el: Element) -> ListMark:
        """A list item's run, level and number, as ``stages.number_lists`` decided them; an
        item that did not come through the stages is a run of its own."""
        if el.list_mark is not None:
            return el.list_mark
        info = el.list
        return ListMark(0, info.level, info.ordered, 1 if info.ordered else 0)

    def _formula_warning(self, el: Element) -> Callable[[str], None]:
        return lambda message: self.diag.warn("inline-formula", message, el.where)

    def _cleaned(self, runs: list[Run]) -> list[Run]:
        """``runs`` with every text cleaned (``clean``), a formula's source too (writers
        show it when the formula cannot be converted); the same list when nothing
        changes."""
        if all(find_bad(r.text) is None and find_bad(r.source) is None for r in runs):
            return runs
        stats = self.context.text_stats
        return [r._replace(text=clean_text(r.text, stats), source=clean_text(r.source, stats))
                if r.text or r.source else r for r in runs]


def unread_fields(writer_classes: Sequence[type[Writer]], options: dict[str, Any]
                  ) -> tuple[str, ...]:
    """The fields worth skipping (``model.SKIPPED_UNREAD``) that none of ``writer_classes``
    reads with ``options``: the reader skips them at the byte level."""
    read: set[str] = set()
    for cls in writer_classes:
        fields = cls.reads(options)
        if fields is None:
            return ()
        read |= fields
    return tuple(name for name in SKIPPED_UNREAD if name not in read)
