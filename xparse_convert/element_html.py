"""One element as safe HTML (lxml nodes), shared by the writers that show elements as HTML:
the HTML page and the review page.  No markup from the input is ever copied: text is escaped
by lxml, tables are rebuilt from the model's grid (``markup.table_element``), formula MathML
is rebuilt from an allow-list (``equations``), and every URL passes ``images.safe_url``.

The renderer does not write anything: it returns nodes, and the writer places them in its
own page.  What it needs from its writer (text cleaning, runs, the picture policy, warnings)
it asks through ``Host``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lxml import etree

from .diagnostics import Diagnostics
from .equations import chemical_latex, latex_to_mathml, mathml_inline
from .images import LINK, MISSING, ImageRef, Placement
from .inline import Run
from .markup import fill_runs, table_element
from .model import Element
from .tables import Cell, Table
from .text import clean_text, strip_math_delimiters


class Host(Protocol):
    """What the renderer asks of its writer (``writers.base.Writer`` has all of it)."""

    diag: Diagnostics

    @property
    def where(self) -> str | None: ...

    def clean(self, text: str) -> str: ...

    def runs(self, el: Element) -> list[Run]: ...

    def line_runs(self, el: Element) -> list[Run]: ...

    def list_runs(self, el: Element) -> list[Run]: ...

    def place_picture(self, ref: ImageRef | None) -> Placement: ...

    def picture_location(self, placement: Placement) -> str | None: ...

    def caption_text(self, el: Element) -> str: ...


def element_attrs(el: Element) -> dict[str, str]:
    """``data-element-id`` (cleaned: ids come from the input too) and ``data-page``."""
    attrs = {"data-element-id": clean_text(el.id)}
    if el.page is not None:
        attrs["data-page"] = str(el.page)
    return attrs


class ElementHtml:
    """Element -> HTML node, one method per kind of block; None when there is nothing to
    show.  ``label`` starts the warnings (``"HTML: formula kept as LaTeX text"``)."""

    def __init__(self, host: Host, label: str = "HTML") -> None:
        self.host = host
        self.label = label

    # -- inline ------------------------------------------------------------------------
    def fill(self, node: etree._Element, runs: list[Run]) -> None:
        """Append ``runs`` to ``node`` (pictures and math as this renderer makes them)."""
        fill_runs(node, runs, picture=self.picture, math=self.inline_math)

    def inline_math(self, run: Run) -> etree._Element | None:
        """MathML of an inline formula; None (its LaTeX as written, warned) when it cannot
        be converted."""
        math = mathml_inline(run.text)
        if math is None:
            self.host.diag.warn("formula-fallback", f"{self.label}: inline formula kept as "
                                "LaTeX text", self.host.where)
        return math

    def picture(self, ref: ImageRef, alt: str = "") -> etree._Element | None:
        """A picture in text or a table cell: an ``<img>``, or a link the reader can click."""
        placement = self.host.place_picture(ref)
        src = self.host.picture_location(placement)
        if src:
            return etree.Element("img", src=src, alt=alt, loading="lazy")
        if placement.action == LINK:
            return image_link(etree.Element("span", {"class": "missing"}), placement.url)
        return None

    # -- blocks ------------------------------------------------------------------------
    def block(self, el: Element, tag: str = "p", attrs: dict[str, str] | None = None,
              runs: list[Run] | None = None) -> etree._Element | None:
        """``<tag>`` holding the element's runs (``runs``, else its paragraph runs)."""
        runs = self.host.runs(el) if runs is None else runs
        if not runs:
            return None
        node = etree.Element(tag, attrs or {}, **element_attrs(el))
        self.fill(node, runs)
        return node

    def code(self, el: Element) -> etree._Element:
        pre = etree.Element("pre", **element_attrs(el))
        code = etree.SubElement(pre, "code")
        code.text = self.host.clean(el.text).strip("\n")
        return pre

    def formula(self, el: Element) -> etree._Element | None:
        latex = strip_math_delimiters(self.host.clean(el.text))
        return self.display_math(el, latex, latex) if latex else None

    def chemical(self, el: Element) -> etree._Element | None:
        """Chemistry (``H_2SO_4``, ``\\ce{..}``) as a formula; other text as a paragraph."""
        text = self.host.clean(el.text).strip()
        try:
            latex = chemical_latex(strip_math_delimiters(text))
        except ValueError:
            latex = None
        node = self.display_math(el, latex, text, fallback=False) if latex is not None \
            else None
        if node is None:
            self.host.diag.warn("formula-fallback", f"{self.label}: chemical formula kept as "
                                "text", el.where)
            return self.block(el)
        return node

    def display_math(self, el: Element, latex: str, source: str, fallback: bool = True
                     ) -> etree._Element | None:
        """A display formula block (MathML, ``source`` kept as annotation); when it cannot be
        converted, the LaTeX as text with a warning (``fallback``) or None."""
        math = latex_to_mathml(latex, display=True)
        if math is None and not fallback:
            return None
        node = etree.Element("div", {"class": "formula"}, **element_attrs(el))
        if math is not None:
            annotation = math.find("semantics/annotation")
            if annotation is not None:
                annotation.text = source
            node.append(math)
        else:  # shown as text when it cannot be converted
            self.host.diag.warn("formula-fallback", f"{self.label}: formula kept as LaTeX text "
                                "(cannot convert it to MathML)", el.where)
            code = etree.SubElement(node, "code", {"class": "latex"})
            code.text = latex
        return node

    def figcaption(self, caption: Element) -> etree._Element | None:
        runs = self.host.line_runs(caption)
        if not runs:
            return None
        node = etree.Element("figcaption", {"data-element-id": self.host.clean(caption.id)})
        self.fill(node, runs)
        return node

    def table(self, el: Element, table: Table,
              row_attrs: Callable[[int], dict[str, str]] | None = None,
              cell_attrs: Callable[[Cell], dict[str, str]] | None = None) -> etree._Element:
        """The grid as a ``<table>``; with the element's caption, a ``<figure>``."""
        node = table_element(table, clean=self.host.clean, row_attrs=row_attrs,
                             picture=self.picture, math=self.inline_math, cell_attrs=cell_attrs)
        node.set("data-element-id", self.host.clean(el.id))
        if el.page is not None:
            node.set("data-page", str(el.page))
        caption = self.figcaption(el.caption) if el.caption is not None else None
        if caption is None:
            return node
        figure = etree.Element("figure", **element_attrs(el))
        if el.caption_first:
            figure.append(caption)
            figure.append(node)
        else:
            figure.append(node)
            figure.append(caption)
        return figure

    def image(self, el: Element) -> etree._Element | None:
        """A ``<figure>``: the picture (or a link to it, or a note that it is missing) and
        the caption; None when there is neither (``--images none``, no caption)."""
        figure = etree.Element("figure", **element_attrs(el))
        caption = self.figcaption(el.caption) if el.caption is not None else None
        caption_text = self.host.caption_text(el)
        if caption is not None and el.caption_first:
            figure.append(caption)
        placement = self.host.place_picture(el.image)
        src = self.host.picture_location(placement)
        if src:
            etree.SubElement(figure, "img", src=src, alt=caption_text or "image",
                             loading="lazy")
        elif placement.action == LINK:
            image_link(etree.SubElement(figure, "p", {"class": "missing"}), placement.url)
        elif placement.action == MISSING:
            etree.SubElement(figure, "p", {"class": "missing"}).text = "Image not available"
        elif caption is None:  # --images none and nothing to keep
            return None
        if caption is not None and not el.caption_first:
            figure.append(caption)
        return figure


def image_link(note: etree._Element, url: str | None) -> etree._Element:
    """``Image: <url>`` as a link: a picture the page does not load when it is opened."""
    note.text = "Image: "
    link = etree.SubElement(note, "a", href=url or "", rel="noopener noreferrer")
    link.text = url
    return note


__all__ = ["ElementHtml", "Host", "element_attrs", "image_link"]
