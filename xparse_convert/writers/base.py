"""The writer protocol: one class per output format, one method per element type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from ..diagnostics import Diagnostics
from ..model import DocumentInfo, Element, method_name
from ..text import TextStats, clean_text


@dataclass(frozen=True)
class Option:
    """A writer's own option.  On the command line it is ``--<writer>-<name>``; in the library
    ``options={"<writer>_<name>": value}``.  ``choices`` limits a string; ``kind`` is ``str``,
    ``bool`` or ``list`` (comma-separated on the command line)."""

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


class Writer:
    """Base class of every output format.

    Subclasses set ``name`` (the ``--to`` word), ``extension``, ``binary`` (bytes or text
    output) and ``consumes``: ``"raw"`` for every input element in order, ``"logical"`` for the
    logical document (continuations joined, tables built, captions attached; see
    ``stages.logical``).  ``write`` dispatches each element to the method named after its type
    in snake case (``NarrativeText`` -> ``narrative_text``), falling back to ``default``.
    """

    name: ClassVar[str] = ""
    extension: ClassVar[str] = ""
    binary: ClassVar[bool] = False
    # text a pipe can take (``-o -``); None: whatever is not ``binary`` (JSONL writes bytes)
    text: ClassVar[bool | None] = None
    consumes: ClassVar[str] = "logical"
    options: ClassVar[tuple[Option, ...]] = ()
    description: ClassVar[str] = ""

    def __init__(self, out: IO[Any], context: WriterContext) -> None:
        self.out = out
        self.context = context
        self.diag = context.diag
        self._methods: dict[str, Callable[[Element], None]] = {}
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

    def begin(self, info: DocumentInfo) -> None:
        """Called once before the first element, with the fields known so far."""

    def write(self, element: Element) -> None:
        method = self._methods.get(element.type)
        if method is None:
            method = getattr(self, method_name(element.type), None)
            if method is None or not callable(method) or element.type.startswith("_"):
                method = self.default
            self._methods[element.type] = method
        method(element)

    def default(self, element: Element) -> None:
        """Elements of a type this writer has no method for."""

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
