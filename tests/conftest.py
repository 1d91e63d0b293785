"""Shared fixtures: the bundled sample, the real legacy results, and small input builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "report.json"
DATA = Path(__file__).resolve().parent / "data"
REAL = DATA / "real"  # real TextIn results; tests/data/real/README.md names their sources
REAL_RESULTS = sorted(REAL.glob("*.json"))
LEGACY_RESULTS = [p for p in REAL_RESULTS if p.name.startswith("legacy-")]
# results that convert (the documented 1.4.0 example too) and inputs that must be refused
CONVERTIBLE_RESULTS = [p for p in REAL_RESULTS if p.name.startswith(("legacy-", "docexample-"))]
NOT_RESULTS = [p for p in REAL_RESULTS if p.name.startswith(("other-", "error-"))]


def envelope(elements: list[Any], **data: Any) -> dict[str, Any]:
    """A minimal API envelope around ``elements``."""
    body = {"schema_version": "1.3.0", "file_id": "f1", "metadata": {"filename": "doc.pdf"}}
    body.update(data)
    body["elements"] = elements
    return {"code": 200, "message": "success", "data": body}


def element(id_: str, type_: str = "NarrativeText", text: str = "text", page: int = 1,
            **extra: Any) -> dict[str, Any]:
    el: dict[str, Any] = {"element_id": id_, "type": type_, "text": text, "page_number": page,
                          "metadata": {}}
    meta = extra.pop("metadata", None)
    if meta:
        el["metadata"].update(meta)
    el.update(extra)
    return el


def structure(cells: list[tuple[int, int, int, int, str]], rows: int | None = None,
              cols: int | None = None) -> dict[str, Any]:
    """``table_structure`` from (row, col, row_span, col_span, text), 1-based."""
    ts: dict[str, Any] = {"cells": [
        {"row": r, "col": c, "row_span": rs, "col_span": cs, "text": t}
        for r, c, rs, cs, t in cells]}
    if rows is not None:
        ts["rows"] = rows
    if cols is not None:
        ts["cols"] = cols
    return ts


@pytest.fixture
def write_json(tmp_path: Path):
    """Write a JSON value (or raw bytes) to a file under tmp_path and return its path."""
    def _write(value: Any, name: str = "input.json") -> Path:
        path = tmp_path / name
        data = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()
        path.write_bytes(data)
        return path
    return _write


@pytest.fixture
def sample_data() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))
