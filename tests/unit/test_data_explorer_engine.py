"""The data explorer's table engine without a kernel: conversion, formatting, sort,
filters, search, profiles, export and code, for pandas, polars and pyarrow tables.
Expected behaviours follow Positron's own test suite (read as facts, not copied)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from mpkernel_workers.api import RpcError
from mpkernel_workers.data_explorer import code, export, formatting, schema
from mpkernel_workers.data_explorer.formatting import float_formatter
from mpkernel_workers.data_explorer.profiles import column_profile
from mpkernel_workers.data_explorer.protocol import (
    VALUE_INF,
    VALUE_NA,
    VALUE_NAN,
    VALUE_NAT,
    VALUE_NEGINF,
    VALUE_NONE,
    VALUE_NULL,
)
from mpkernel_workers.data_explorer.tables import StringViews, UnsupportedTable, from_object
from mpkernel_workers.data_explorer.view import TableView

FORMAT: dict[str, Any] = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 1000,
    "thousands_sep": ",",
}
LIBS = ("pandas", "polars", "arrow")

DATA: dict[str, list[Any]] = {
    "num": [3.5, None, 1.25, 3.5, -2.0, 10.0],
    "int": [5, 3, 5, 1, 2, 4],
    "txt": ["apple", "Banana", None, "cherry", "", "apple pie"],
    "flag": [True, False, True, None, False, True],
    "when": [
        dt.datetime(2024, 1, 5),
        dt.datetime(2024, 1, 1),
        None,
        dt.datetime(2024, 3, 1, 12, 30),
        dt.datetime(2023, 12, 31),
        dt.datetime(2024, 1, 2),
    ],
}


def make(lib: str, data: dict[str, list[Any]] = DATA) -> Any:
    arrow = pa.table(data)
    if lib == "arrow":
        return arrow
    if lib == "polars":
        return pl.from_arrow(arrow)
    return arrow.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)


def view_of(obj: Any) -> TableView:
    return TableView(from_object(obj))


def rng(first: int, last: int) -> dict[str, int]:
    return {"first_index": first, "last_index": last}


def column(view: TableView, index: int, spec: dict[str, Any] | None = None) -> list[Any]:
    spec = spec or rng(0, view.num_rows - 1)
    return view.data_values([{"column_index": index, "spec": spec}], FORMAT)[0]


def col_schema(view: TableView, index: int) -> dict[str, Any]:
    return view.schema([index])[0]


def row_filter(view: TableView, index: int, kind: str, cond: str = "and", **params: Any) -> Any:
    f: dict[str, Any] = {
        "filter_id": f"{kind}-{index}",
        "filter_type": kind,
        "column_schema": col_schema(view, index),
        "condition": cond,
    }
    if params:
        f["params"] = params
    return f


# -- tables -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lib", LIBS)
def test_schema_names_types_and_display(lib: str) -> None:
    view = view_of(make(lib))
    got = [
        (c["column_name"], c["column_index"], c["type_display"])
        for c in view.schema(list(range(9)))
    ]
    assert got == [
        ("num", 0, "floating"),
        ("int", 1, "integer"),
        ("txt", 2, "string"),
        ("flag", 3, "boolean"),
        ("when", 4, "datetime"),
    ]
    type_names = [c["type_name"] for c in view.schema([0, 1])]
    assert (
        type_names
        == {
            "pandas": ["float64", "int64"],
            "polars": ["Float64", "Int64"],
            "arrow": ["double", "int64"],
        }[lib]
    )


def test_series_and_numpy_are_tables() -> None:
    assert [c.name for c in from_object(pd.Series([1, 2])).columns] == ["unnamed"]
    assert [c.name for c in from_object(pd.Series([1, 2], name="x")).columns] == ["x"]
    assert [c.name for c in from_object(pl.Series("y", [1, 2])).columns] == ["y"]
    table = from_object(np.arange(6.0).reshape(3, 2))
    assert (table.num_rows, table.num_columns) == (3, 2)
    assert column(TableView(table), 1) == ["1.00", "3.00", "5.00"]


def test_unsupported_objects_are_refused() -> None:
    with pytest.raises(UnsupportedTable):
        from_object({"a": [1]})
    with pytest.raises(UnsupportedTable):
        from_object(pl.DataFrame({"a": [1]}).lazy())


@pytest.mark.parametrize("made_from", ["columns", "2-D array"])
def test_pandas_numeric_columns_are_not_copied(made_from: str) -> None:
    """A column of a pandas block becomes an Arrow column over the same memory. pandas 2
    keeps a C-ordered 2-D array as given, whose columns are strided: those are copied."""
    rng = np.random.default_rng(0)
    if made_from == "2-D array":
        if int(pd.__version__.split(".")[0]) < 3:
            pytest.skip("pandas 2 keeps the array's rows contiguous, not its columns")
        frame = pd.DataFrame(rng.random((1000, 3)))
    else:
        frame = pd.DataFrame({i: rng.random(1000) for i in range(3)})
    table = from_object(frame)
    arrow_buffer = table.columns[1].array.chunk(0).buffers()[1]
    assert arrow_buffer.address == frame[1].to_numpy().ctypes.data


# -- values and formatting ----------------------------------------------------------------------
def test_float_formatting_follows_the_options() -> None:
    fmt = float_formatter({**FORMAT, "thousands_sep": ""})
    values = [
        0,
        1.0,
        1.01,
        1.012,
        0.0123,
        0.01234,
        0.0001,
        0.00001,
        9999.123,
        9999.999,
        9999999,
        10000000,
    ]
    assert [fmt(v) for v in values] == [
        "0.00",
        "1.00",
        "1.01",
        "1.01",
        "0.0123",
        "0.0123",
        "0.0001",
        "1.00E-05",
        "9999.12",
        "10000.00",
        "9999999.00",
        "1.00E+07",
    ]
    fmt = float_formatter(
        {**FORMAT, "large_num_digits": 3, "small_num_digits": 2, "max_integral_digits": 3}
    )
    assert [fmt(v) for v in (1234.5, 12.5, 0.05, 0.005, -0.5)] == [
        "1.234E+03",
        "12.500",
        "0.05",
        "5.000E-03",
        "-0.50",
    ]
    sep = float_formatter({**FORMAT, "thousands_sep": "_"})
    assert sep(1234567.891) == "1_234_567.89"


@pytest.mark.parametrize("lib", LIBS)
def test_values_by_range_and_indices(lib: str) -> None:
    view = view_of(make(lib))
    assert column(view, 1) == ["5", "3", "5", "1", "2", "4"]
    assert column(view, 2, {"indices": [5, 0, 99]}) == ["apple pie", "apple"]
    assert column(view, 3, rng(4, 10)) == ["False", "True"]
    assert column(view, 0, rng(6, 10)) == []
    assert column(view, 4, rng(3, 3)) == ["2024-03-01 12:30:00"]


def test_special_value_codes_per_library() -> None:
    data = {"f": [1.0, float("nan"), float("inf"), -float("inf"), None]}
    frame = pd.DataFrame({"f": [1.0, np.nan, np.inf, -np.inf, np.nan]})
    assert column(view_of(frame), 0) == ["1.00", VALUE_NAN, VALUE_INF, VALUE_NEGINF, VALUE_NAN]
    expected = ["1.00", VALUE_NAN, VALUE_INF, VALUE_NEGINF, VALUE_NULL]
    assert column(view_of(pl.DataFrame(data)), 0) == expected
    assert column(view_of(pa.table(data)), 0) == expected
    objects = pd.DataFrame({"o": [None, object(), "x"], "t": pd.to_datetime([None, "2024", None])})
    assert column(view_of(objects), 0)[0] == VALUE_NONE
    assert column(view_of(objects), 1) == [VALUE_NAT, "2024-01-01 00:00:00", VALUE_NAT]
    nullable = pd.DataFrame({"i": pd.array([1, None], dtype="Int64")})
    assert column(view_of(nullable), 0) == ["1", VALUE_NA]


def test_integers_thousands_and_long_strings_truncated() -> None:
    view = view_of(pa.table({"i": [1234567], "s": ["x" * 50]}))
    assert column(view, 0) == ["1,234,567"]
    options = {**FORMAT, "max_value_length": 10, "thousands_sep": ""}
    got = view.data_values([{"column_index": i, "spec": rng(0, 0)} for i in (0, 1)], options)
    assert got == [["1234567"], ["x" * 10]]


def test_bad_value_requests_are_invalid_params() -> None:
    view = view_of(make("arrow"))
    with pytest.raises(RpcError) as e:
        view.data_values([{"column_index": 99, "spec": rng(0, 1)}], FORMAT)
    assert e.value.code == -32602
    with pytest.raises(RpcError):
        view.data_values(
            [{"column_index": 0, "spec": {"first_index": "a", "last_index": 1}}], FORMAT
        )


def test_row_labels() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]}, index=["x", "y", "z"])
    assert view_of(frame).row_labels({"indices": [2, 0]}) == [["z", "x"]]
    assert view_of(frame).table.row_labels is not None
    unlabelled = view_of(make("pandas"))  # a default RangeIndex: positions are the labels
    assert unlabelled.table.row_labels is None
    unlabelled.set_sort_keys([{"column_index": 1, "ascending": True}])
    assert unlabelled.row_labels(rng(0, 2)) == [["3", "4", "1"]]
    assert view_of(make("polars")).row_labels(rng(0, 2)) == []  # polars rows have none


# -- sort -------------------------------------------------------------------------------------
@pytest.mark.parametrize("lib", LIBS)
def test_sort_is_stable_with_nulls_last(lib: str) -> None:
    view = view_of(make(lib))
    view.set_sort_keys([{"column_index": 0, "ascending": True}])
    assert column(view, 0) == [
        "-2.00",
        "1.25",
        "3.50",
        "3.50",
        "10.00",
        VALUE_NAN if lib == "pandas" else VALUE_NULL,
    ]
    assert column(view, 1)[2:4] == ["5", "1"]  # ties keep table order
    view.set_sort_keys([{"column_index": 0, "ascending": False}])
    assert column(view, 1) == ["4", "5", "1", "5", "2", "3"]
    view.set_sort_keys([{"column_index": 2, "ascending": False}])
    # a missing string: null (Arrow, polars, pandas 3's strings) or None (pandas 2 objects)
    assert column(view, 2)[-1] in (VALUE_NULL, VALUE_NAN, VALUE_NONE)


@pytest.mark.parametrize("lib", LIBS)
def test_multi_key_sort_and_reset(lib: str) -> None:
    view = view_of(make(lib, {"a": [2, 1, 2, 1], "b": ["x", "y", "z", "w"]}))
    view.set_sort_keys(
        [{"column_index": 0, "ascending": False}, {"column_index": 1, "ascending": True}]
    )
    assert column(view, 1) == ["x", "z", "w", "y"]
    view.set_sort_keys([])
    assert column(view, 1) == ["x", "y", "z", "w"]


def test_pandas_nan_sorts_last_both_ways() -> None:
    view = view_of(pd.DataFrame({"f": [np.nan, 2.0, 1.0]}))
    for ascending in (True, False):
        view.set_sort_keys([{"column_index": 0, "ascending": ascending}])
        assert column(view, 0)[-1] == VALUE_NAN


# -- filters ----------------------------------------------------------------------------------
FILTER_CASES: list[tuple[int, str, dict[str, Any], list[int]]] = [
    (0, "is_null", {}, [1]),
    (0, "not_null", {}, [0, 2, 3, 4, 5]),
    (2, "is_empty", {}, [4]),
    (2, "not_empty", {}, [0, 1, 3, 5]),  # missing is neither empty nor not
    (3, "is_true", {}, [0, 2, 5]),
    (3, "is_false", {}, [1, 4]),
    (1, "compare", {"op": "=", "value": "5"}, [0, 2]),
    (1, "compare", {"op": "!=", "value": "5"}, [1, 3, 4, 5]),
    (0, "compare", {"op": "<", "value": "3.5"}, [2, 4]),
    (0, "compare", {"op": "<=", "value": "3.5"}, [0, 2, 3, 4]),
    (1, "compare", {"op": ">", "value": "3.5"}, [0, 2, 5]),
    (1, "compare", {"op": ">=", "value": "4"}, [0, 2, 5]),
    (4, "compare", {"op": ">", "value": "2024-01-02"}, [0, 3]),
    (2, "compare", {"op": "=", "value": "apple"}, [0]),
    (1, "between", {"left_value": "2", "right_value": "4"}, [1, 4, 5]),
    (1, "not_between", {"left_value": "2", "right_value": "4"}, [0, 2, 3]),
    (4, "between", {"left_value": "2024-01-01", "right_value": "2024-01-05"}, [0, 1, 5]),
    (2, "search", {"search_type": "contains", "term": "APP", "case_sensitive": False}, [0, 5]),
    (2, "search", {"search_type": "contains", "term": "APP", "case_sensitive": True}, []),
    (
        2,
        "search",
        {"search_type": "not_contains", "term": "app", "case_sensitive": False},
        [1, 3, 4],
    ),
    (2, "search", {"search_type": "starts_with", "term": "b", "case_sensitive": False}, [1]),
    (2, "search", {"search_type": "ends_with", "term": "pie", "case_sensitive": True}, [5]),
    (
        2,
        "search",
        {"search_type": "regex_match", "term": "^a.*e$", "case_sensitive": True},
        [0, 5],
    ),
    (1, "set_membership", {"values": ["1", "5"], "inclusive": True}, [0, 2, 3]),
    (1, "set_membership", {"values": ["1", "5"], "inclusive": False}, [1, 4, 5]),
    (2, "set_membership", {"values": ["Banana", "x"], "inclusive": True}, [1]),
]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize(("index", "kind", "params", "rows"), FILTER_CASES)
def test_every_filter_type(
    lib: str, index: int, kind: str, params: dict[str, Any], rows: list[int]
) -> None:
    view = view_of(make(lib))
    result = view.set_row_filters([row_filter(view, index, kind, **params)])
    assert result == {"selected_num_rows": len(rows), "had_errors": False}
    assert column(view, 1) == [str(DATA["int"][r]) for r in rows]


def test_pandas_nan_counts_as_null_in_filters() -> None:
    view = view_of(pd.DataFrame({"f": [1.0, np.nan, 3.0]}))
    assert view.set_row_filters([row_filter(view, 0, "is_null")])["selected_num_rows"] == 1


@pytest.mark.parametrize("lib", LIBS)
def test_and_or_conditions_fold_left(lib: str) -> None:
    view = view_of(make(lib))
    int_is_5 = row_filter(view, 1, "compare", op="=", value="5")
    int_is_1 = row_filter(view, 1, "compare", "or", op="=", value="1")
    flag = row_filter(view, 3, "is_true", "and")
    assert view.set_row_filters([int_is_5, int_is_1])["selected_num_rows"] == 3
    # (int == 5 or int == 1) and flag
    assert view.set_row_filters([int_is_5, int_is_1, flag])["selected_num_rows"] == 2
    state_shape = view.num_rows, view.table.num_rows
    assert state_shape == (2, 6)
    assert view.set_row_filters([])["selected_num_rows"] == 6


@pytest.mark.parametrize("lib", LIBS)
def test_invalid_filters_are_reported_and_others_apply(lib: str) -> None:
    view = view_of(make(lib))
    bad_value = row_filter(view, 1, "compare", op=">", value="many")
    wrong_type = row_filter(
        view, 1, "search", search_type="contains", term="x", case_sensitive=False
    )
    bad_regex = row_filter(
        view, 2, "search", search_type="regex_match", term="(", case_sensitive=False
    )
    good = row_filter(view, 3, "is_true")
    result = view.set_row_filters([bad_value, wrong_type, bad_regex, good])
    assert result == {"selected_num_rows": 3, "had_errors": True}
    held = view.row_filters
    assert [f["is_valid"] for f in held] == [False, False, False, True]
    assert all(f["error_message"] for f in held[:3])


@pytest.mark.parametrize("lib", LIBS)
def test_sort_applies_within_the_filter(lib: str) -> None:
    view = view_of(make(lib))
    view.set_sort_keys([{"column_index": 1, "ascending": False}])
    view.set_row_filters([row_filter(view, 3, "is_true")])
    assert column(view, 1) == ["5", "5", "4"]
    assert column(view, 2) == [
        "apple",
        VALUE_NULL if lib != "pandas" else column(view, 2)[1],
        "apple pie",
    ]


# -- search_schema ------------------------------------------------------------------------------
def test_search_schema_text_type_and_order() -> None:
    table = from_object(make("polars"))
    text = {
        "filter_type": "text_search",
        "params": {"search_type": "contains", "term": "N", "case_sensitive": False},
    }
    assert schema.search_schema(table, [text]) == [0, 1, 4]
    types = {"filter_type": "match_data_types", "params": {"display_types": ["integer", "string"]}}
    assert schema.search_schema(table, [types]) == [1, 2]
    assert schema.search_schema(table, [], "ascending_name") == [3, 1, 0, 2, 4]
    assert schema.search_schema(table, [], "descending_type") == [2, 1, 0, 4, 3]
    with pytest.raises(RpcError):
        schema.search_schema(table, [], "sideways")


# -- profiles ----------------------------------------------------------------------------------
def profile(view: TableView, index: int, kind: str, **params: Any) -> Any:
    table, rows = view.rows_snapshot()
    spec = {"profile_type": kind, **({"params": params} if params else {})}
    return column_profile(table.columns[index], rows, [spec], FORMAT)[kind]  # type: ignore[literal-required]


@pytest.mark.parametrize("lib", LIBS)
def test_null_counts(lib: str) -> None:
    view = view_of(make(lib))
    assert [profile(view, i, "null_count") for i in range(5)] == [1, 0, 1, 1, 1]


@pytest.mark.parametrize("lib", LIBS)
def test_summary_stats_for_each_type(lib: str) -> None:
    view = view_of(make(lib))
    assert profile(view, 0, "summary_stats") == {
        "type_display": "floating",
        "number_stats": {
            "min_value": "-2.00",
            "max_value": "10.00",
            "mean": "3.25",
            "median": "3.50",
            "stdev": "4.39",
        },
    }
    assert profile(view, 1, "summary_stats")["number_stats"]["min_value"] == "1"
    assert profile(view, 2, "summary_stats") == {
        "type_display": "string",
        "string_stats": {"num_empty": 1, "num_unique": 5},
    }
    assert profile(view, 3, "summary_stats") == {
        "type_display": "boolean",
        "boolean_stats": {"true_count": 3, "false_count": 2},
    }
    stats = profile(view, 4, "summary_stats")["datetime_stats"]
    assert stats["num_unique"] == 5
    assert stats["min_date"] == "2023-12-31 00:00:00"
    assert stats["max_date"] == "2024-03-01 12:30:00"
    assert stats["median_date"] == "2024-01-02 00:00:00"


def test_summary_stats_over_the_filtered_rows_and_with_infinities() -> None:
    view = view_of(pa.table({"f": [1.0, 2.0, math.inf, 100.0]}))
    assert profile(view, 0, "summary_stats")["number_stats"] == {
        "min_value": "1.00",
        "max_value": "inf",
    }
    view.set_row_filters([row_filter(view, 0, "compare", op="<", value="50")])
    assert profile(view, 0, "summary_stats")["number_stats"]["max_value"] == "2.00"
    dates = view_of(pl.DataFrame({"d": [dt.date(2024, 1, 1), dt.date(2024, 1, 3)]}))
    assert profile(dates, 0, "summary_stats")["date_stats"]["mean_date"] == "2024-01-02"


@pytest.mark.parametrize("method", ["fixed", "sturges", "freedman_diaconis", "scott"])
@pytest.mark.parametrize("lib", LIBS)
def test_histograms_and_quantiles(lib: str, method: str) -> None:
    data = {"x": [float(v) for v in range(100)], "i": list(range(100))}
    view = view_of(make(lib, data))
    hist = profile(view, 0, "small_histogram", method=method, num_bins=10, quantiles=[0.5, 0.9])
    assert sum(hist["bin_counts"]) == 100
    assert len(hist["bin_edges"]) == len(hist["bin_counts"]) + 1 <= 11
    assert hist["bin_edges"][0] == "0.00"
    assert hist["bin_edges"][-1] == "99.00"
    assert [q["value"] for q in hist["quantiles"]] == ["49.50", "89.10"]
    small_ints = view_of(make(lib, {"i": [1, 2, 2, 3]}))
    bins = profile(small_ints, 0, "large_histogram", method=method, num_bins=50)["bin_counts"]
    # Integers never get more bins than distinct values could fill.
    assert len(bins) == 3 if method == "fixed" else 1 <= len(bins) <= 3


@pytest.mark.parametrize("lib", LIBS)
def test_frequency_tables(lib: str) -> None:
    view = view_of(make(lib, {"s": ["a", "b", "a", None, "c", "a", "b"]}))
    small = profile(view, 0, "small_frequency_table", limit=2)
    assert small == {"values": ["a", "b"], "counts": [3, 2], "other_count": 1}
    large = profile(view, 0, "large_frequency_table", limit=10)
    assert large["counts"] == [3, 2, 1]
    assert large["other_count"] == 0


STRINGS_WITH_GAPS = [
    [None, "", "a", "", None, "b", "a", None],
    ["", None, "x", "x", None],
    ["a", None, "a", None, "b", None, "b"],  # the missing ones tie with "a" and "b"
    ["", "", None],
    ["c", "d"],
]


@pytest.mark.parametrize("values", STRINGS_WITH_GAPS)
def test_polars_string_profiles_count_the_views_as_pyarrow_counts_strings(
    values: list[str | None],
) -> None:
    """A polars string column (Arrow string views, which most of pyarrow's kernels do not
    take) is profiled without converting it, and answers as the same strings do."""
    views = view_of(make("polars", {"s": values}))
    strings = view_of(make("arrow", {"s": values}))
    for kind, params in [
        ("null_count", {}),
        ("summary_stats", {}),
        ("small_frequency_table", {"limit": 2}),
        ("large_frequency_table", {"limit": 10}),
    ]:
        assert profile(views, 0, kind, **params) == profile(strings, 0, kind, **params), kind
    (column,) = views.rows_snapshot()[0].columns
    assert isinstance(column.source, StringViews)
    assert not column.source.converted


# -- export and code ----------------------------------------------------------------------------
SELECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("single_cell", {"row_index": 1, "column_index": 1}, "3"),
    (
        "cell_range",
        {
            "first_row_index": 0,
            "last_row_index": 1,
            "first_column_index": 1,
            "last_column_index": 2,
        },
        "int,txt\n5,apple\n3,Banana",
    ),
    (
        "cell_indices",
        {"row_indices": [3, 0], "column_indices": [2, 1]},
        "txt,int\ncherry,1\napple,5",
    ),
    (
        "row_range",
        {"first_index": 0, "last_index": 0},
        "num,int,txt,flag,when\n3.5,5,apple,True,2024-01-05 00:00:00",
    ),
    ("row_indices", {"indices": [4]}, "num,int,txt,flag,when\n-2.0,2,,False,2023-12-31 00:00:00"),
    ("column_range", {"first_index": 1, "last_index": 1}, "int\n5\n3\n5\n1\n2\n4"),
    ("column_indices", {"indices": [3]}, 'flag\nTrue\nFalse\nTrue\n""\nFalse\nTrue'),
]


@pytest.mark.parametrize("lib", ["polars", "arrow"])
@pytest.mark.parametrize(("kind", "selection", "expected"), SELECTIONS)
def test_export_every_selection_kind(
    lib: str, kind: str, selection: dict[str, Any], expected: str
) -> None:
    view = view_of(make(lib))
    got = export.export_selection(view, {"kind": kind, "selection": selection}, "csv")
    assert got == {"data": expected, "format": "csv"}


def test_export_tsv_html_pandas_and_view_order() -> None:
    view = view_of(make("pandas"))
    view.set_sort_keys([{"column_index": 1, "ascending": True}])
    sel = {
        "kind": "cell_range",
        "selection": {
            "first_row_index": 0,
            "last_row_index": 1,
            "first_column_index": 1,
            "last_column_index": 2,
        },
    }
    assert export.export_selection(view, sel, "tsv")["data"] == "int\ttxt\n1\tcherry\n2\t"
    html = export.export_selection(view, sel, "html")["data"]
    assert html.startswith("<table>")
    assert "<th>txt</th>" in html
    assert "<td>cherry</td>" in html
    with pytest.raises(RpcError):
        export.export_selection(view, sel, "xlsx")


def test_convert_to_code_pandas_and_polars_run() -> None:
    frame = make("pandas")
    view = view_of(frame)
    filters = [
        row_filter(view, 1, "compare", op=">=", value="3"),
        row_filter(
            view, 2, "search", "and", search_type="contains", term="APP", case_sensitive=False
        ),
        row_filter(view, 1, "set_membership", "or", values=["2"], inclusive=True),
    ]
    keys = [{"column_index": 1, "ascending": False}]
    view.set_row_filters(filters)
    view.set_sort_keys(keys)
    expected = column(view, 1)
    names = [c.name for c in view.table.columns]
    for syntax, obj in (("pandas", frame), ("polars", make("polars"))):
        lines = code.convert_to_code("df", filters, keys, syntax, names)
        scope: dict[str, Any] = {"df": obj, "pd": pd, "pl": pl}
        exec("\n".join(lines), scope)  # running the generated code is the test
        assert [str(v) for v in scope["df"]["int"].to_list()] == expected
    with pytest.raises(RpcError):
        code.convert_to_code("df", [], [], "dplyr", names)


def test_the_package_the_forkserver_preloads_does_not_import_pyarrow() -> None:
    """Idle kernels do not pay for pyarrow: the forkserver preloads the handler's package,
    and the handler (with pyarrow) loads in a table's worker, on first use."""
    import subprocess
    import sys

    probe = (
        "import sys, mpkernel_workers.data_explorer as de\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow imported with the package'\n"
        "assert de.DataExplorerHandler.__name__ == 'DataExplorerHandler'\n"
        "assert 'pyarrow' in sys.modules\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize("dtype", ["datetime64[us]", "datetime64[ns]", "timedelta64[ms]"])
@pytest.mark.parametrize("with_nat", [True, False])
def test_datetime_columns_become_arrow_as_pyarrow_converts_them(dtype: str, with_nat: bool) -> None:
    """The shared-data conversion of datetime64/timedelta64 columns gives what pyarrow's own
    gives (NaT as null, same type, same values), and shares the frame's buffer."""
    values = (np.arange(1_000, dtype=np.int64) * 7_919).astype(dtype)
    if with_nat:
        values[::3] = (
            np.datetime64("NaT") if dtype.startswith("datetime") else np.timedelta64("NaT")
        )
    frame = pd.DataFrame({"when": values})
    (column,) = from_object(frame).columns
    rows = pa.array([0, 1, 3, 999])
    assert column.take(rows).equals(pa.array(values).take(rows))  # a page, converted alone
    (converted,) = column.array.chunks
    assert converted.equals(pa.array(values))
    assert converted.null_count == (334 if with_nat else 0)
    assert converted.buffers()[1].address == frame["when"].to_numpy().ctypes.data


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_nanosecond_timestamps_are_written_as_pandas_writes_them(tz: str | None) -> None:
    """A page of nanosecond timestamps reads the same text as pandas' Timestamps give,
    without pyarrow importing pandas for them."""
    nanos = [0, 1, 999, 1_000, 1_700_000_000_123_456_789, -1, -86_400 * 10**9 - 5, None]
    values = pa.array(nanos, pa.timestamp("ns", tz=tz))
    expected = [None if v is None else str(pd.Timestamp(v, unit="ns", tz=tz)) for v in nanos]
    assert formatting.python_values(values) == expected
    assert formatting.python_values(values.slice(2, 3)) == expected[2:5]
