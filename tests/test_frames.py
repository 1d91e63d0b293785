"""Table.to_pandas: the three span modes and header rows as column labels."""

from __future__ import annotations

import math

import oracle
import pytest
from conftest import SAMPLE, element, envelope, structure

from xparse_convert import iter_tables

pd = pytest.importorskip("pandas")

# two header rows ("Item" spans both; "Q3" spans two columns), a body cell spanning two rows
CELLS = [(1, 1, 2, 1, "Item"), (1, 2, 1, 2, "Q3"), (2, 2, 1, 1, "Amount"), (2, 3, 1, 1, "YoY"),
         (3, 1, 2, 1, "Revenue"), (3, 2, 1, 1, "100"), (3, 3, 1, 1, "5%"),
         (4, 2, 1, 1, "90"), (4, 3, 1, 1, "4%")]


@pytest.fixture
def table(write_json):
    ts = structure(CELLS, 4, 3)
    ts["table_layout"] = {"header_rows": 2}
    path = write_json(envelope([element("t", "Table", "", table_structure=ts)]))
    [table] = iter_tables(path)
    return table


def test_fill_puts_the_value_in_every_covered_slot_and_headers_make_a_multiindex(table):
    frame = table.to_pandas()
    assert list(frame.columns) == [("Item", "Item"), ("Q3", "Amount"), ("Q3", "YoY")]
    assert frame.values.tolist() == [["Revenue", "100", "5%"], ["Revenue", "90", "4%"]]


def test_top_left_leaves_nan_and_blank_leaves_empty_text(table):
    top_left = table.to_pandas(spans="top-left")
    assert top_left.iloc[0, 0] == "Revenue" and math.isnan(top_left.iloc[1, 0])
    blank = table.to_pandas(spans="blank")
    assert blank.iloc[1, 0] == "" and blank.iloc[1, 1] == "90"


def test_without_header_every_row_is_data(table):
    frame = table.to_pandas(header=False, spans="blank")
    assert frame.shape == (4, 3) and list(frame.columns) == [0, 1, 2]
    assert frame.iloc[0].tolist() == ["Item", "Q3", ""]
    with pytest.raises(Exception, match="spans"):
        table.to_pandas(spans="merge")


def test_sample_tables_hold_the_oracle_texts():
    expected = oracle.expected(SAMPLE).tables
    tables = list(iter_tables(SAMPLE))
    assert len(tables) == len(expected)
    for table, want in zip(tables, expected):
        frame = table.to_pandas(spans="top-left", header=False)
        assert frame.shape == (table.n_rows, table.n_cols)
        texts = {oracle.visible(v) for v in frame.values.ravel() if isinstance(v, str) and v}
        assert texts == want.texts
