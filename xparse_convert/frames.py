"""Tables as pandas DataFrames (``Table.to_pandas``; needs ``xparse-convert[pandas]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .errors import UsageError


class _Cell(Protocol):
    row: int
    col: int
    row_span: int
    col_span: int
    text: str


class TableGrid(Protocol):
    """What a DataFrame is made from (``tables.Table`` has it)."""

    n_rows: int
    n_cols: int
    header_rows: int
    cells: Sequence[_Cell]

SPAN_MODES = ("fill", "top-left", "blank")


def to_pandas(table: TableGrid, spans: str = "fill", header: bool = True) -> Any:
    """A DataFrame of ``table``: one row per body row, one column per grid column.

    A merged cell's value goes in every slot it covers (``fill``), only in its top-left slot
    with NaN elsewhere (``top-left``), or in its top-left slot with "" elsewhere (``blank``).
    With ``header`` the header rows name the columns (several rows: a MultiIndex; a label
    spanning columns names each of them, whatever ``spans`` says); without, every row is
    data and the columns are numbered."""
    if spans not in SPAN_MODES:
        raise UsageError(f"spans must be one of {', '.join(SPAN_MODES)}, not {spans!r}")
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("Table.to_pandas needs pandas: pip install "
                         "'xparse-convert[pandas]'") from None
    covered: Any = {"fill": None, "top-left": float("nan"), "blank": ""}[spans]
    filled = [[""] * table.n_cols for _ in range(table.n_rows)]
    values: list[list[Any]] = [[""] * table.n_cols for _ in range(table.n_rows)]
    for cell in table.cells:
        for r in range(cell.row, cell.row + cell.row_span):
            for c in range(cell.col, cell.col + cell.col_span):
                filled[r][c] = cell.text
                anchor = r == cell.row and c == cell.col
                values[r][c] = cell.text if anchor or covered is None else covered
    h = min(table.header_rows, table.n_rows) if header else 0
    if h == 0:
        return pd.DataFrame(values, columns=pd.RangeIndex(table.n_cols))
    if h == 1:
        columns: Any = pd.Index(filled[0])
    else:
        columns = pd.MultiIndex.from_arrays([filled[r] for r in range(h)])
    return pd.DataFrame(values[h:], columns=columns)
