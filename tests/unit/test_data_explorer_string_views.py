"""polars' strings reach the explorer as Arrow string views, taken without a copy: a page
is gathered from the views, and the column is converted only when a whole-column
computation (sort, filter, profile) needs it."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from mpkernel_workers.data_explorer.tables import StringViews, from_object
from mpkernel_workers.data_explorer.view import TableView

FORMAT = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 100,
    "thousands_sep": None,
}


def frame() -> pl.DataFrame:
    return pl.DataFrame({"s": ["b", None, "a", "c"] * 3, "i": list(range(12))})


def test_a_page_is_read_from_the_views_without_converting_the_column() -> None:
    column = from_object(frame()).columns[0]
    assert isinstance(column.source, StringViews)
    assert column.type == pa.large_string()
    assert column.display == "string"
    assert column.take(pa.array([2, 0, 1])).to_pylist() == ["a", "b", None]
    assert column.source._converted is None


def test_a_sort_converts_it_once_and_pages_then_read_the_conversion() -> None:
    view = TableView(from_object(frame()))
    view.set_sort_keys([{"column_index": 0, "ascending": True}])
    source = view.table.columns[0].source
    assert isinstance(source, StringViews)
    converted = source._converted
    assert converted is not None
    values = view.data_values(
        [{"column_index": 0, "spec": {"first_index": 0, "last_index": 3}}], FORMAT
    )
    assert [v for v in values[0]] == ["a", "a", "a", "b"]
    assert source._converted is converted
