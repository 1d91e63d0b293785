"""An independent reading of a TextIn result, for tests: it imports nothing from
``xparse_convert`` and follows the documented shapes directly (lxml only), so a bug in the
package's model cannot pass by agreeing with itself.

What it computes from the raw JSON: the element list, titles, logical tables (continuation
chains joined, a repeated first row dropped), their merged cells and visible cell texts, and the
pictures that carry data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.html

_WS = re.compile(r"\s+")
_EMPHASIS = re.compile(r"\*\*|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])")


def load(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8-sig"))


def element_list(doc: Any) -> tuple[list[dict[str, Any]], bool, dict[str, Any]]:
    """(elements, legacy?, the object holding the list) of any documented shape."""
    if isinstance(doc, list):
        return doc, False, {}
    for path, legacy in ((("data", "elements"), False), (("elements",), False),
                         (("result", "detail"), True), (("data", "result", "detail"), True),
                         (("detail",), True)):
        node: Any = doc
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), list):
            return node[path[-1]], legacy, node
    raise ValueError("no element list")


def visible(text: str) -> str:
    """What a reader sees of engine or cell text: tags and entities read as HTML, emphasis
    markers gone, whitespace folded."""
    if re.search(r"<\s*/?\s*[A-Za-z]|&#?\w+;", text):
        try:
            root = lxml.html.fragment_fromstring(text, create_parent="div")
            for br in root.iter("br"):
                br.tail = " " + (br.tail or "")
            text = root.text_content()
        except Exception:  # not HTML after all
            pass
    text = _EMPHASIS.sub("", text)
    return _WS.sub(" ", text).strip()


_MATH_MARKUP = re.compile(r"\\[A-Za-z]+|[$^_{}\s]")


def loose(text: str) -> str:
    """A comparison key that a formula rendered as native math still meets: LaTeX markup,
    dollars and spaces gone, the minus sign MathML writes read as a hyphen."""
    return _MATH_MARKUP.sub("", text.replace("\u2212", "-"))


@dataclass
class Table:
    cells: list[tuple[int, int, int, int, str]]  # row, col, rowspan, colspan, visible text
    fragments: int = 1

    @property
    def merged(self) -> int:
        return sum(1 for c in self.cells if c[2] > 1 or c[3] > 1)

    @property
    def texts(self) -> set[str]:
        return {c[4] for c in self.cells if c[4]}

    @property
    def loose_texts(self) -> set[str]:
        return {loose(t) for t in self.texts} - {""}


@dataclass
class Expected:
    titles: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    pictures_with_data: int = 0


def _html_cells(markup: str) -> list[tuple[int, int, int, int, str]] | None:
    try:
        root = lxml.html.fromstring(markup)
    except Exception:
        return None
    table = root if root.tag == "table" else next(root.iter("table"), None)
    if table is None:
        return None
    cells = []
    taken: set[tuple[int, int]] = set()
    for r, tr in enumerate(table.iter("tr")):
        c = 0
        for td in tr:
            if td.tag not in ("td", "th"):
                continue
            while (r, c) in taken:
                c += 1
            rs, cs = int(td.get("rowspan") or 1), int(td.get("colspan") or 1)
            for dr in range(rs):
                for dc in range(cs):
                    taken.add((r + dr, c + dc))
            for br in td.iter("br"):
                br.tail = " " + (br.tail or "")
            cells.append((r, c, rs, cs, visible(td.text_content())))
            c += cs
    return cells


def _pipe_cells(text: str) -> list[tuple[int, int, int, int, str]] | None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2 or not re.fullmatch(r"\s*\|?[\s:|-]*-[\s:|-]*", lines[1]):
        return None
    rows = [lines[0], *lines[2:]]
    cells = []
    for r, line in enumerate(rows):
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        cells.extend((r, c, 1, 1, visible(p)) for c, p in enumerate(parts))
    return cells


def _structure_cells(element: dict[str, Any], legacy: bool
                     ) -> list[tuple[int, int, int, int, str]]:
    """Cells of ``table_structure`` (1-based) or of a legacy block's ``cells`` (0-based)."""
    raw = element.get("cells") if legacy else element["table_structure"].get("cells")
    base = 0 if legacy else 1
    cells = []
    for cell in raw or []:
        cells.append((cell["row"] - base, cell["col"] - base, cell.get("row_span", 1) or 1,
                       cell.get("col_span", 1) or 1, visible(str(cell.get("text") or ""))))
    structure = element.get("table_structure") or {}
    rows, cols = structure.get("rows"), structure.get("cols")
    text = element.get("text") or ""
    if rows and cols and len(cells) < rows * cols and text and "<" not in text:
        # the documented 1.4.0 example lists some cells; its text holds them all
        lines = [line.split() for line in text.splitlines() if line.strip()]
        if len(lines) == rows and all(len(t) == cols for t in lines):
            return [(r, c, 1, 1, visible(t)) for r, line in enumerate(lines)
                    for c, t in enumerate(line)]
    return cells


def _table_cells(element: dict[str, Any], legacy: bool) -> list[tuple[int, int, int, int, str]]:
    if legacy and element.get("cells"):
        return _structure_cells(element, True)
    if not legacy and (element.get("table_structure") or {}).get("cells"):
        return _structure_cells(element, False)
    text = element.get("text") or ""
    if "<table" in text.lower() or "<tr" in text.lower():
        found = _html_cells(text)
        if found:
            return found
    found = _pipe_cells(text)
    if found:
        return found
    return [(r, 0, 1, 1, visible(line)) for r, line in enumerate(text.splitlines())
            if line.strip()]


def _first_row(cells: list[tuple[int, int, int, int, str]]) -> list[tuple[Any, ...]]:
    return sorted((c[1], c[2], c[3], c[4]) for c in cells if c[0] == 0)


def expected(path: Path) -> Expected:
    """What every writer must show of the result at ``path``."""
    doc = load(path)
    elements, legacy, holder = element_list(doc)
    out = Expected()
    open_tables: dict[str, Table] = {}  # id of a chain's last table -> the logical table
    for el in elements:
        if not isinstance(el, dict):
            continue
        meta = el.get("metadata") or {}
        kind = el.get("type")
        if legacy:
            sub = el.get("sub_type")
            outline = el.get("outline_level")
            is_title = kind != "table" and kind != "image" and el.get("content") != 1 and \
                sub not in ("table_title", "image_title", "header", "footer") and (
                    (isinstance(outline, int) and outline >= 0) or sub == "text_title")
            if is_title and visible(el.get("text") or ""):
                out.titles.append(visible(el["text"]))
            if kind == "table":
                out.tables.append(Table(_table_cells(el, True)))
            continue
        if kind == "Title" and visible(el.get("text") or ""):
            out.titles.append(visible(el["text"]))
        if kind == "Image" and (el.get("image_data") or {}).get("base64"):
            out.pictures_with_data += 1
        if kind == "Table":
            cells = _table_cells(el, False)
            head = open_tables.pop(meta.get("continuation_of"), None) \
                if meta.get("is_continuation") else None
            if head is None:
                head = Table(cells)
                out.tables.append(head)
            else:
                if _first_row(cells) == _first_row(head.cells):
                    cells = [c for c in cells if c[0] != 0]
                offset = max(c[0] + c[2] for c in head.cells) if head.cells else 0
                head.cells.extend((r + offset, c, rs, cs, t) for r, c, rs, cs, t in cells)
                head.fragments += 1
            open_tables[el.get("element_id")] = head
    if legacy:
        out.pictures_with_data = _legacy_pictures(holder)
    return out


def _legacy_pictures(result: dict[str, Any]) -> int:
    """Pictures of a legacy result that have data: page images linked from an image block."""
    count = 0
    for page in result.get("pages") or []:
        data_ids = {c.get("id") for c in page.get("content") or []
                    if c.get("type") == "image" and (c.get("data") or {}).get("base64")}
        for block in page.get("structured") or []:
            if block.get("type") == "image" and any(i in data_ids
                                                    for i in block.get("content") or []):
                count += 1
    return count


FURNITURE = frozenset({"Header", "Footer", "PageNumber"})


@dataclass
class Source:
    """One 1.x element as the raw JSON has it: what a chunk must show of it."""

    id: str
    type: str
    text: str
    page: Any
    coordinates: Any
    continuation_of: str | None


def sources(path: Path) -> list[Source]:
    """The elements of a 1.x result, in input order."""
    elements, legacy, _ = element_list(load(path))
    assert not legacy, "the chunk oracle reads 1.x results"
    out = []
    for el in elements:
        meta = el.get("metadata") or {}
        out.append(Source(el["element_id"], el["type"], el.get("text") or "",
                          el.get("page_number"), el.get("coordinates"),
                          meta.get("continuation_of") if meta.get("is_continuation") else None))
    return out
