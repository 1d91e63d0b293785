"""HTML for inline runs and table grids, shared by the writers that write HTML (the HTML page,
Markdown for spanned tables).  Built with lxml, so every text is escaped; links pass the one
URL policy."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from .images import ImageRef, safe_url
from .inline import BREAK, EMPHASIS, MATH, NEWLINES, PICTURE, STRONG, SUB, SUP, TEXT, Run
from .tables import Cell, Table

_MARK_TAGS = ((STRONG, "strong"), (EMPHASIS, "em"), (SUB, "sub"), (SUP, "sup"))


def _append_text(parent: etree._Element, text: str) -> None:
    if len(parent):
        parent[-1].tail = (parent[-1].tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def fill_runs(parent: etree._Element, runs: list[Run], *,
              picture: Callable[[ImageRef, str], etree._Element | None] | None = None,
              math: Callable[[Run], etree._Element | None] | None = None) -> None:
    """Append ``runs`` to ``parent``: marks as ``strong``/``em``/``sub``/``sup``, breaks as
    ``<br>``, links as ``<a>`` when the URL policy allows them, pictures as what
    ``picture(ref, alt)`` makes (an ``<img>``, a link; None leaves it out), math as what
    ``math`` makes (else its LaTeX as written)."""
    for run in runs:
        if run.kind == TEXT:
            target = parent
            url = safe_url(run.href) if run.href else None
            if url:
                target = etree.SubElement(target, "a", href=url, rel="noopener noreferrer")
            for mark, tag in _MARK_TAGS:
                if run.marks & mark:
                    target = etree.SubElement(target, tag)
            if target is parent:
                _append_text(parent, run.text)
            else:
                target.text = run.text
        elif run.kind == BREAK:
            etree.SubElement(parent, "br")
        elif run.kind == MATH:
            node = math(run) if math is not None else None
            if node is None:
                _append_text(parent, run.source or run.text)
            else:
                parent.append(node)
        elif run.kind == PICTURE and picture is not None and run.image is not None:
            node = picture(run.image, run.text)
            if node is not None:
                before = parent[-1].tail if len(parent) else parent.text
                if before and not before[-1].isspace():  # apart from the text before it
                    _append_text(parent, " ")
                parent.append(node)


def table_element(table: Table, *, clean: Callable[[str], str] = lambda s: s,
                  row_attrs: Callable[[int], dict[str, str]] | None = None,
                  picture: Callable[[ImageRef, str], etree._Element | None] | None = None,
                  math: Callable[[Run], etree._Element | None] | None = None,
                  cell_attrs: Callable[[Cell], dict[str, str]] | None = None
                  ) -> etree._Element:
    """``<table>`` with ``<thead>`` for the header rows, ``rowspan``/``colspan`` from the
    grid, each cell's runs (``fill_runs``), texts passed through ``clean``.  ``row_attrs``
    gives a row's attributes and ``cell_attrs`` a cell's, ``picture`` renders a cell's
    picture (see ``fill_runs``), ``math`` a formula's markup."""
    root = etree.Element("table")
    head = etree.SubElement(root, "thead") if table.header_rows else None
    body = None
    for r, cells in enumerate(table.rows()):
        in_head = r < table.header_rows
        if in_head:
            parent = head
        else:
            if body is None:
                body = etree.SubElement(root, "tbody")
            parent = body
        tr = etree.SubElement(parent, "tr", row_attrs(r) if row_attrs else {})
        for cell in cells:
            td = etree.SubElement(tr, "th" if in_head else "td",
                                  cell_attrs(cell) if cell_attrs else {})
            if cell.row_span > 1:
                td.set("rowspan", str(cell.row_span))
            if cell.col_span > 1:
                td.set("colspan", str(cell.col_span))
            if cell._runs is None:  # plain text: no runs to make
                fill_text(td, clean(cell.text))
            else:
                fill_runs(td, [r._replace(text=clean(r.text), source=clean(r.source))
                               if r.text or r.source else r for r in cell.runs],
                          picture=picture, math=math)
    return root


def fill_text(parent: etree._Element, text: str) -> None:
    """Put ``text`` into ``parent`` with ``<br>`` for each line break (``\\n``, ``\\r\\n``,
    ``\\r``, as in ``inline.text_runs``)."""
    if "\n" not in text and "\r" not in text:  # most cells: one line, nothing to split
        parent.text = text
        return
    lines = NEWLINES.split(text)
    parent.text = lines[0]
    for line in lines[1:]:
        br = etree.SubElement(parent, "br")
        br.tail = line


def table_html(table: Table, *, clean: Callable[[str], str] = lambda s: s,
               picture: Callable[[ImageRef, str], etree._Element | None] | None = None) -> str:
    """The table as one line of HTML, for Markdown: a blank line (a formula's source may hold
    one) would end the HTML block and let the rest be read as Markdown.  ``&#10;`` is the
    same whitespace to HTML."""
    markup = etree.tostring(table_element(table, clean=clean, picture=picture),
                            method="html", encoding="unicode")
    return markup.replace("\n", "&#10;")


__all__ = ["Cell", "fill_runs", "fill_text", "table_element", "table_html"]
