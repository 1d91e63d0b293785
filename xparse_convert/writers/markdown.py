"""Markdown regenerated from the logical document, or the engine's own markdown as it is.

Markdown is an output people render, so everything from the input is escaped to render as
the text it is, except what the engine meant: emphasis and math (``inline``).  Inside math, a
``<`` that could start raw HTML is written ``\\lt `` (and ``>`` ``\\gt ``), which MathJax and
KaTeX render.  Block markers at the start of a line (``#``, ``>``, ``-``, ``+``, ``1.``) are
escaped, every link and picture passes the one URL policy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any, NamedTuple

from lxml import etree

from ..images import LINK, LOAD, MISSING, ImageRef, Placement, safe_url
from ..inline import BREAK, EMPHASIS, MATH, NEWLINES, PICTURE, STRONG, SUB, SUP, TEXT, Run
from ..markup import table_html
from ..model import DocumentInfo, Element
from ..tables import Cell, Table
from ..text import strip_math_delimiters
from .base import Option, PageBreaks, Writer

# ASCII punctuation that may start Markdown syntax anywhere in a line
_INLINE_SPECIAL = re.compile(r"([\\`*\[\]$~|])")
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# "-" also before another "-": "--" under a line makes it a heading, "---" a rule
_LINE_START = re.compile(r"^([ \t]*)(#|>|=|-(?=[-\t ]|$)|\+(?=[ \t]|$)|\d{1,9}(?=[.)](?:[ \t]|$)))",
                         re.MULTILINE)
_LINE_MARKERS = frozenset("#>=-+0123456789")
_HTML_START = re.compile(r"<(?=[A-Za-z/!?]|$)")  # at the end: the next text may go on


_ANY_SPECIAL = re.compile(r"[\\`*\[\]$~|_&<]")


def escape_text(text: str) -> str:
    """Text that renders as itself inside a line (not at its start: see ``escape_lines``)."""
    if _ANY_SPECIAL.search(text) is None:
        return text
    text = _INLINE_SPECIAL.sub(r"\\\1", text)
    if "_" in text:
        text = _UNDERSCORE.sub(r"\\_", text)
    if "&" in text:
        text = _ENTITY.sub("&amp;", text)
    return text.replace("<", "&lt;") if "<" in text else text


def escape_lines(text: str) -> str:
    """Escape what would start a block at the start of each line of a paragraph."""
    if "\n" not in text and text[:1] not in _LINE_MARKERS and not text[:1].isspace():
        return text
    def mark(match: re.Match[str]) -> str:
        marker = match.group(2)
        if marker[0].isdigit():  # "1." -> "1\\."
            return f"{match.group(1)}{marker}\\"
        return f"{match.group(1)}\\{marker}"
    return _LINE_START.sub(mark, text)


_MATH_LINK = re.compile(r"\](?=[(:])")
_ODD_BACKSLASHES_AT_END = re.compile(r"(?<!\\)(?:\\\\)*\\$")
_MATH_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_MATH_CELL = re.compile(r"\\.|[|\r\n]", re.S)


def safe_math(latex: str) -> str:
    """LaTeX as written, except that a renderer without math cannot read it as Markdown
    that loads or links: no ``<`` that starts raw HTML (``\\lt ``), no ``](`` or ``]:``
    that makes a link, a picture or a link definition (a space between them, which math
    ignores), no blank line that would end the paragraph it is in, no backslash at the end
    that would escape what follows (a space after it: LaTeX's control space)."""
    if _HTML_START.search(latex) is not None:
        latex = latex.replace("<", "\\lt ").replace(">", "\\gt ")
    if "]" in latex:
        latex = _MATH_LINK.sub("] ", latex)
    if "\r" in latex:
        latex = latex.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in latex:
        latex = _MATH_BLANK_LINES.sub("\n", latex)
    if latex.endswith("\\") and _ODD_BACKSLASHES_AT_END.search(latex):
        latex += " "
    return latex


def _cell_math(match: re.Match[str]) -> str:
    token = match.group()
    if token == "\\|":
        return "\\Vert "  # the same symbol; a pipe escaped twice would end the cell
    if token == "|":
        return "\\|"  # GFM reads it as | inside the cell (math included)
    if token in ("\r", "\n"):
        return " "
    return "\\ " if token[1] in "\r\n" else token  # a control space either way


def cell_math(latex: str) -> str:
    """``safe_math`` on one line of a pipe-table cell: a line break would end the row and a
    bare ``|`` the cell."""
    return _MATH_CELL.sub(_cell_math, safe_math(latex))


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _wrap(text: str, marks: int) -> str:
    """Marks around already escaped text; spaces stay outside (else Markdown ignores them),
    and HTML tags stand in where ``*`` would not be read as emphasis (punctuation at an
    edge)."""
    core = text.strip() if marks else ""
    if not core:
        return text
    lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
    if marks & SUB:
        core = f"<sub>{core}</sub>"
    if marks & SUP:
        core = f"<sup>{core}</sup>"
    edge = _is_punctuation(core[0]) or _is_punctuation(core[-1])
    if marks & EMPHASIS:
        core = f"<em>{core}</em>" if edge else f"*{core}*"
    if marks & STRONG:
        core = f"<strong>{core}</strong>" if edge or core[0] == "*" else f"**{core}**"
    return f"{lead}{core}{trail}"


def inline_markdown(runs: list[Run], picture: Callable[[ImageRef, str], str], *,
                    cell: bool = False) -> str:
    """Markdown for inline runs.  Breaks are newlines (``<br>`` in a table cell); a picture
    is what ``picture(ref, escaped alt)`` makes of it ("" leaves it out)."""
    # Math is written as it is, so what follows it must not complete Markdown it began: a
    # "]" that a "(" or ":" would make a link or a definition, a "!" that would make a link
    # a picture.
    parts: list[str] = []
    last = ""  # the kind of the last part
    for run in runs:
        if run.kind == TEXT:
            text = _wrap(escape_text(run.text), run.marks)
            url = safe_url(run.href) if run.href else None
            if url:
                if parts and parts[-1].endswith("!"):
                    if last == TEXT:
                        parts[-1] = parts[-1][:-1] + "\\!"
                    else:
                        parts.append(" ")
                text = f"[{text}]({url})"
            elif text[:1] in "(:" and parts and parts[-1].endswith("]"):
                text = "\\" + text
            parts.append(text)
            last = "link" if url else TEXT
        elif run.kind == BREAK:
            parts.append("<br>" if cell else "\n")
            last = BREAK
        elif run.kind == MATH:
            math = (cell_math if cell else safe_math)(run.source or f"${run.text}$")
            if "\n" in math and "%" not in math:  # (a % comment ends at the line's end)
                math = math.replace("\n", " ")  # the same space, and no line that starts a block
            if math[:1] in "(:" and parts and parts[-1].endswith("]"):
                math = " " + math
            parts.append(math)
            last = MATH
        elif run.kind == PICTURE and run.image is not None:
            markup = picture(run.image, escape_text(run.text))
            if markup and parts and parts[-1] and not parts[-1][-1].isspace():
                parts.append(" ")  # apart from the text before it
            parts.append(markup)
            last = PICTURE
    return "".join(parts)


def _pipe_safe(url: str | None) -> str:
    """A URL that passed the policy, with ``|`` percent-encoded: in a pipe table it would end
    the cell, and the URL means the same."""
    return (url or "").replace("|", "%7C")


class _OpenItem(NamedTuple):
    """A list item a following item may nest under."""

    level: int
    column: int  # where its content starts: a child's marker goes there


class MarkdownWriter(Writer):
    name = "md"
    extension = "md"
    images_default = "files"
    description = "Markdown (GFM tables; HTML tables where cells span)"
    options = (
        Option("source", "regenerate from the elements (model) or copy the engine's own "
               "markdown (engine)", "model", choices=("model", "engine")),
    )

    @classmethod
    def reads(cls, options: dict[str, Any]) -> frozenset[str]:
        return cls.picture_fields(options)

    @classmethod
    def wants_engine_markdown(cls, options: dict[str, Any]) -> bool:
        return options.get("md_source") == "engine"

    def begin(self, info: DocumentInfo) -> None:
        self._engine = self.option("md_source") == "engine"
        self.breaks = PageBreaks(bool(self.option("page_breaks")))
        self._blocks = 0
        self._in_list = False  # the last block written is a list the next item may go on
        self._list_run = 0  # its run (``ListMark.run``)
        self._columns: list[_OpenItem] = []  # outermost first: where a child goes

    # -- output helpers ----------------------------------------------------------------
    def _block(self, text: str, page_break: bool | None = None) -> None:
        """Write a block after a blank line (and the page break due before it; ``page_break``
        when the caller asked ``breaks.due`` already)."""
        if (self.breaks.due() if page_break is None else page_break) and self._blocks:
            self.out.write("\n---\n")
        if self._blocks:
            self.out.write("\n")
        self.out.write(text.rstrip("\n") + "\n")
        self._blocks += 1
        self._in_list = False

    def write(self, element: Element) -> None:
        if self._engine:
            return
        self.breaks.see(element)
        super().write(element)

    # -- element methods ---------------------------------------------------------------
    def _inline(self, runs: list[Run]) -> str:
        if len(runs) == 1 and runs[0].kind == TEXT and not runs[0].marks and \
                runs[0].href is None:
            return escape_text(runs[0].text)  # plain text: the short way
        return inline_markdown(runs, self._picture)

    def _paragraph(self, runs: list[Run]) -> None:
        text = self._inline(runs)
        if text.strip():
            self._block(escape_lines(text))

    def title(self, el: Element) -> None:
        level = min(el.heading_level, 6)
        text = self._inline(self.line_runs(el))
        if text.strip():
            self._block(f"{'#' * level} {text}")

    def narrative_text(self, el: Element) -> None:
        if el.is_plain:  # the common case: the text, escaped
            text = escape_text(self.clean(el.text).strip())
            if text:
                self._block(escape_lines(text))
            return
        self._paragraph(self.runs(el))

    default = narrative_text

    def header(self, el: Element) -> None:
        self.narrative_text(el)


    def page_break(self, el: Element) -> None:
        self.breaks.page_break(el)

    def list_item(self, el: Element) -> None:
        """Items show the numbers of ``stages.number_lists``.  A run that a block interrupts
        (a furniture paragraph, a page break's rule) goes on in a list that starts at its
        item's number, as CommonMark reads ``3.``; a child sits at its parent's content
        column, so it nests whatever the parent's marker width."""
        mark = self.list_mark(el)
        body = escape_lines(self._inline(self.list_runs(el)))
        marker = f"{mark.number}." if mark.ordered else "-"
        page_break = self.breaks.due()
        columns = self._columns
        goes_on = self._in_list and mark.run == self._list_run and not page_break
        if goes_on:
            bottom = columns[0].level
            while columns and columns[-1].level >= mark.level:
                columns.pop()
            # a shallower item than the list the block starts with would join that list
            goes_on = bool(columns) or bottom == mark.level
        if goes_on:
            column = columns[-1].column if columns else 0
            self.out.write(f"{' ' * column}{marker} {body}\n")
        else:
            if self._in_list and not page_break:
                self._block("<!-- -->", False)  # CommonMark would join the two lists
            self._block(f"{marker} {body}", page_break)
            column = 0
            columns = self._columns = []
        columns.append(_OpenItem(mark.level, column + len(marker) + 1))
        self._in_list = True
        self._list_run = mark.run

    def code_snippet(self, el: Element) -> None:
        text = self.clean(el.text).strip("\n")
        longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
        fence = "`" * max(3, longest + 1)
        self._block(f"{fence}\n{text}\n{fence}")

    def formula(self, el: Element) -> None:
        latex = strip_math_delimiters(self.clean(el.text))
        if latex:
            self._block(f"$$\n{safe_math(latex)}\n$$")

    def _caption_text(self, el: Element) -> str:
        return escape_lines(self._inline(self.line_runs(el.caption))) if el.caption else ""

    def table(self, el: Element) -> None:
        table = el.table
        if table is None or table.n_rows < 1 or table.n_cols < 1:
            return
        caption = self._caption_text(el)
        caption_first = el.caption_first
        if caption and caption_first:
            self._block(caption)
        if table.has_spans or table.header_rows > 1:
            self._block(table_html(table, clean=self.clean, picture=self._picture_node))
        else:
            self._block(self._pipe_table(table))
        if caption and not caption_first:
            self._block(caption)

    def _pipe_table(self, table: Table) -> str:
        rows = [[self._pipe_text(s) if isinstance(s, Cell) else "" for s in row]
                for row in table.grid()]
        # GFM needs a header row: a table of one row is that row; longer ones without a
        # header row get a blank one
        has_header = table.header_rows > 0 or table.n_rows == 1
        header = rows[0] if has_header else [""] * table.n_cols
        body = rows[1:] if has_header else rows
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] * table.n_cols) + "|"]
        lines.extend("| " + " | ".join(row) + " |" for row in body)
        return "\n".join(lines)

    def _pipe_text(self, cell: Cell) -> str:
        """A pipe-table cell: its runs on one line (``|`` is escaped with all the rest)."""
        if cell._runs is None:
            return NEWLINES.sub("<br>", escape_text(self.clean(cell.text))).strip()
        return inline_markdown(self._cleaned(cell.runs), self._picture, cell=True).strip()

    def _target(self, placement: Placement) -> str | None:
        """Where a picture shown in the Markdown is (a ``|`` in a URL cannot end a cell)."""
        target = self.picture_location(placement)
        return _pipe_safe(target) if target and placement.action == LOAD else target

    def _picture_markdown(self, placement: Placement, alt: str = "",
                          label: str = "Image") -> str:
        """A picture as Markdown: an image, or a link the reader can click; "" for none.
        ``alt`` and ``label`` are escaped already."""
        target = self._target(placement)
        if target:
            return f"![{alt}]({target})"
        if placement.action == LINK:
            return f"[{label}]({_pipe_safe(placement.url)})"
        return ""

    def _picture(self, ref: ImageRef, alt: str = "") -> str:
        """A picture in text or a pipe-table cell."""
        return self._picture_markdown(self.place_picture(ref), alt)

    def _picture_node(self, ref: ImageRef, alt: str = "") -> etree._Element | None:
        """A picture in an HTML table cell: ``<img>``, or a link the reader can click."""
        placement = self.place_picture(ref)
        target = self._target(placement)
        if target:
            return etree.Element("img", src=target, alt=alt)
        if placement.action == LINK:
            link = etree.Element("a", href=placement.url or "")
            link.text = "Image"
            return link
        return None

    def image(self, el: Element) -> None:
        caption = self._caption_text(el)
        caption_first = el.caption_first
        if caption and caption_first:
            self._block(caption)
        placement = self.place_picture(el.image)
        alt = escape_text(self.caption_text(el))
        if placement.action == MISSING:
            # the caption, when there is one, is written beside: not repeated here
            self._block("*\\[image not available\\]*")
        else:
            picture = self._picture_markdown(placement, alt or "image",
                                             f"Image: {alt}" if alt else "Image")
            if picture:
                self._block(picture)
        if caption and not caption_first:
            self._block(caption)

    def table_caption(self, el: Element) -> None:
        self._paragraph(self.line_runs(el))


    def end(self, info: DocumentInfo) -> None:
        if self._engine:
            markdown = self.context.engine_markdown()
            if markdown is None:
                self.diag.warn("no-markdown", "the input has no engine markdown; the output is "
                               "empty")
                return
            self.out.write(self.clean(markdown))
            if markdown and not markdown.endswith("\n"):
                self.out.write("\n")
