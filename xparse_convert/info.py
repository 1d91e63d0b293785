"""``info``: what a result holds, read in one streaming pass."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .diagnostics import Diagnostics
from .model import SHAPES
from .reader import Reader
from .source import SourceLike
from .stages import logical


def inspect(src: SourceLike, *, name: str | None = None) -> dict[str, Any]:
    """A summary of one result: shape, schema version, pages, elements by type, logical tables
    (size, spans, pages, caption), images, formulas, warnings."""
    diag = Diagnostics(name or str(src))
    types: Counter[str] = Counter()
    tables: list[dict[str, Any]] = []
    images = {"count": 0, "with_data": 0, "url_only": 0, "none": 0}
    formulas = 0
    with Reader(src, name=name, diagnostics=diag) as reader:
        def counted() -> Any:
            for element in reader.elements():
                types[element.type] += 1
                yield element

        for element in logical(counted(), diag):
            if element.type == "Table" and element.table is not None:
                table = element.table
                tables.append({
                    "element_ids": table.element_ids,
                    "pages": table.pages,
                    "rows": table.n_rows,
                    "cols": table.n_cols,
                    "header_rows": table.header_rows,
                    "merged_cells": len(table.merged_ranges()),
                    "caption": table.caption,
                    "source": table.source,
                    "repairs": len(table.repairs),
                })
            elif element.type == "Image":
                images["count"] += 1
                ref = element.image
                if ref is not None and ref.info() is not None:
                    images["with_data"] += 1
                elif ref is not None and ref.safe_url:
                    images["url_only"] += 1
                else:
                    images["none"] += 1
                if ref is not None:
                    ref.release()
            elif element.type == "Formula":
                formulas += 1
        info = reader.info
        return {
            "source": reader.source.name,
            "shape": info.shape,
            "schema_version": info.schema_version,
            "file_id": info.file_id,
            "file_name": info.filename,
            "pages": info.page_count,
            "elements": info.element_count,
            "types": dict(types.most_common()),
            "tables": tables,
            "images": images,
            "formulas": formulas,
            "partial": info.partial,
            "warnings": diag.lines(),
        }


def render(summary: dict[str, Any]) -> str:
    """The summary as aligned text for a terminal."""
    lines = [
        f"source          {summary['source']}",
        f"shape           {SHAPES.get(summary['shape'], summary['shape'])}"
        + (f", schema {summary['schema_version']}" if summary["schema_version"] else ""),
        f"file            {summary['file_name'] or '-'}  id {summary['file_id'] or '-'}",
        f"pages           {summary['pages'] if summary['pages'] is not None else '-'}",
        f"elements        {summary['elements']}",
    ]
    for kind, count in summary["types"].items():
        lines.append(f"  {kind:<22}{count}")
    lines.append(f"tables          {len(summary['tables'])}")
    for i, table in enumerate(summary["tables"], 1):
        pages = ",".join(str(p) for p in table["pages"]) or "-"
        caption = f"  {table['caption']!r}" if table["caption"] else ""
        lines.append(f"  #{i:<4} {table['rows']} x {table['cols']}, {table['merged_cells']} merged,"
                     f" page {pages}{caption}")
    img = summary["images"]
    lines.append(f"images          {img['count']} ({img['with_data']} with data, "
                 f"{img['url_only']} by URL only, {img['none']} without either)")
    lines.append(f"formulas        {summary['formulas']}")
    if summary["partial"]:
        lines.append("partial         yes: the API said some pages failed")
    if summary["warnings"]:
        lines.append("warnings")
        lines.extend(f"  {w}" for w in summary["warnings"])
    return "\n".join(lines)
