"""HTML for a table grid, shared by the writers that embed tables as HTML (Markdown for
spanned tables, the HTML page).  Built with lxml, so every text is escaped."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from .images import ImageRef
from .tables import Cell, Table


def table_element(table: Table, *, clean: Callable[[str], str] = lambda s: s,
                  row_attrs: Callable[[int], dict[str, str]] | None = None,
                  picture: Callable[[ImageRef], etree._Element | None] | None = None
                  ) -> etree._Element:
    """``<table>`` with ``<thead>`` for the header rows, ``rowspan``/``colspan`` from the
    grid, ``<br>`` for line breaks inside cells.  ``row_attrs`` gives a row's attributes,
    ``picture`` renders a cell's picture (an ``<img>``, a link; None leaves it out)."""
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
            td = etree.SubElement(tr, "th" if in_head else "td")
            if cell.row_span > 1:
                td.set("rowspan", str(cell.row_span))
            if cell.col_span > 1:
                td.set("colspan", str(cell.col_span))
            fill_text(td, clean(cell.text))
            if picture is not None:
                for ref in cell.images:
                    node = picture(ref)
                    if node is not None:
                        if len(td):  # apart from what comes before it
                            td[-1].tail = (td[-1].tail or "") + " "
                        elif td.text:
                            td.text += " "
                        td.append(node)
    return root


def fill_text(parent: etree._Element, text: str) -> None:
    """Put ``text`` into ``parent`` with ``<br>`` for each newline."""
    lines = text.split("\n")
    parent.text = lines[0]
    for line in lines[1:]:
        br = etree.SubElement(parent, "br")
        br.tail = line


def table_html(table: Table, *, clean: Callable[[str], str] = lambda s: s,
               picture: Callable[[ImageRef], etree._Element | None] | None = None) -> str:
    return etree.tostring(table_element(table, clean=clean, picture=picture),
                          method="html", encoding="unicode")


__all__ = ["Cell", "table_element", "table_html", "fill_text"]
