"""Markdown regenerated from the logical document, or the engine's own markdown as it is."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from ..images import EMBED, FILE, LINK, LOAD, MISSING, ImageRef, Placement, place
from ..markup import table_html
from ..model import DocumentInfo, Element
from ..tables import Cell, Table
from ..text import strip_math_delimiters
from .base import Option, PageBreaks, Writer

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _escape_html(text: str) -> str:
    """Keep raw HTML in OCR text from turning into markup: ``<tag`` -> ``&lt;tag``."""
    return _TAG_START.sub("&lt;", text)


def _pipe_cell(text: str) -> str:
    return _escape_html(text).replace("|", "\\|").replace("\n", "<br>").strip()


class MarkdownWriter(Writer):
    name = "md"
    extension = "md"
    description = "Markdown (GFM tables; HTML tables where cells span)"
    options = (
        Option("source", "regenerate from the elements (model) or copy the engine's own "
               "markdown (engine)", "model", choices=("model", "engine")),
    )

    @classmethod
    def wants_engine_markdown(cls, options: dict[str, Any]) -> bool:
        return options.get("md_source") == "engine"

    def begin(self, info: DocumentInfo) -> None:
        self._engine = self.option("md_source") == "engine"
        self._images = self.option("images") or "files"
        self.breaks = PageBreaks(bool(self.option("page_breaks")))
        self._blocks = 0
        self._in_list = False
        self._counters: dict[int, int] = {}

    # -- output helpers ----------------------------------------------------------------
    def _block(self, text: str) -> None:
        if self.breaks.due() and self._blocks:
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
    def title(self, el: Element) -> None:
        level = min(el.heading_level, 6)
        text = " ".join(self.clean(el.text).split())
        if text:
            self._block(f"{'#' * level} {_escape_html(text)}")

    def narrative_text(self, el: Element) -> None:
        text = self.clean(el.text).strip()
        if text:
            self._block(_escape_html(text))

    uncategorized_text = narrative_text
    chemical = narrative_text
    default = narrative_text

    def header(self, el: Element) -> None:
        self.narrative_text(el)

    footer = header
    page_number = header

    def page_break(self, el: Element) -> None:
        self.breaks.page_break(el)

    def list_item(self, el: Element) -> None:
        info = el.list
        body = _escape_html(" ".join(self.clean(info.body).split()))
        if not self._in_list:
            self._counters = {}
        for level in [lv for lv in self._counters if lv > info.level]:
            del self._counters[level]
        if info.ordered:
            number = self._counters.get(info.level, 0) + 1
            self._counters[info.level] = number
            marker = f"{number}."
        else:
            self._counters.pop(info.level, None)
            marker = "-"
        indent = "   " * info.level
        if self._in_list:
            self.out.write(f"{indent}{marker} {body}\n")
        else:
            self._block(f"{indent}{marker} {body}")
            self._in_list = True

    def code_snippet(self, el: Element) -> None:
        text = self.clean(el.text).strip("\n")
        longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
        fence = "`" * max(3, longest + 1)
        self._block(f"{fence}\n{text}\n{fence}")

    def formula(self, el: Element) -> None:
        latex = strip_math_delimiters(self.clean(el.text))
        if latex:
            self._block(f"$$\n{latex}\n$$")

    def _caption_text(self, el: Element) -> str:
        return " ".join(self.clean(el.caption.text).split()) if el.caption else ""

    def table(self, el: Element) -> None:
        table = el.table
        if table is None:
            return
        caption = self._caption_text(el)
        caption_first = el.caption_first
        if caption and caption_first:
            self._block(_escape_html(caption))
        if table.has_spans or table.header_rows > 1:
            self._block(table_html(table, clean=self.clean,
                                   picture=lambda ref: self._picture_node(ref, el.where)))
        else:
            self._block(self._pipe_table(table, el.where))
        if caption and not caption_first:
            self._block(_escape_html(caption))

    def _pipe_table(self, table: Table, where: str) -> str:
        rows = [[self._pipe_text(s, where) if isinstance(s, Cell) else "" for s in row]
                for row in table.grid()]
        header = rows[0] if table.header_rows else [""] * table.n_cols
        body = rows[1:] if table.header_rows else rows
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] * table.n_cols) + "|"]
        lines.extend("| " + " | ".join(row) + " |" for row in body)
        return "\n".join(lines)

    def _pipe_text(self, cell: Cell, where: str) -> str:
        """A pipe-table cell: its text, then its pictures (``|`` in a URL is percent-encoded:
        it would end the cell)."""
        parts = [_pipe_cell(self.clean(cell.text))]
        parts += [self._picture_text(self._place(ref, where)).replace("|", "%7C")
                  for ref in cell.images]
        return " ".join(p for p in parts if p)

    def _place(self, ref: ImageRef | None, where: str) -> Placement:
        return place(ref, self._images, max_pixels=self.option("max_image_pixels"),
                     warn=lambda kind, message: self.diag.warn(kind, message, where))

    def _target(self, placement: Placement) -> str | None:
        """Where a picture shown in the Markdown is, or None when it is not shown."""
        if placement.action == EMBED:
            return placement.data_uri
        if placement.action == FILE:
            assert placement.data is not None and placement.info is not None
            return self.context.assets.add(placement.data, placement.info.extension)
        return placement.url if placement.action == LOAD else None

    def _picture_text(self, placement: Placement, alt: str = "", label: str = "Image") -> str:
        """A picture as Markdown: an image, or a link the reader can click; "" for none."""
        target = self._target(placement)
        if target:
            return f"![{alt}]({target})"
        if placement.action == LINK:
            return f"[{label}]({placement.url})"
        return ""

    def _picture_node(self, ref: ImageRef, where: str) -> etree._Element | None:
        """A picture in an HTML table cell: ``<img>``, or a link the reader can click."""
        placement = self._place(ref, where)
        target = self._target(placement)
        if target:
            return etree.Element("img", src=target, alt="")
        if placement.action == LINK:
            link = etree.Element("a", href=placement.url or "")
            link.text = "Image"
            return link
        return None

    def image(self, el: Element) -> None:
        caption = self._caption_text(el)
        caption_first = el.caption_first
        if caption and caption_first:
            self._block(_escape_html(caption))
        alt = caption.replace("[", "(").replace("]", ")")
        placement = self._place(el.image, el.where)
        if placement.action == MISSING:
            self._block(f"*[{_escape_html(alt or 'image')}: not available]*")
        else:
            label = f"Image: {_escape_html(alt)}" if alt else "Image"
            picture = self._picture_text(placement, alt or "image", label)
            if picture:
                self._block(picture)
        if caption and not caption_first:
            self._block(_escape_html(caption))

    def table_caption(self, el: Element) -> None:
        self.narrative_text(el)

    figure_caption = table_caption

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
