"""`describe`: the pane's row for each family of values.

Expectations come from Positron's inspector tests (notes 5.2; posit-dev/positron
`test_inspectors.py`, read as facts): display values, display types, kinds, lengths,
children. Where mpkernel departs on purpose (bytes for sizes, sets expandable, polars
Series a table with a viewer) the test says so. Every row is also checked against the
contract.
"""

from __future__ import annotations

import datetime
import inspect
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from mpkernel_workers.variables.inspectors import describe
from mpkernel_workers.variables.protocol import Variable

from tests.unit.test_variables_contract_schema import assert_valid


def row(value: object, name: object = "x", *, nested: bool = False) -> Variable:
    variable = describe(name, value, nested=nested, updated_time=5)
    assert_valid(variable)
    assert variable["updated_time"] == 5
    return variable


def check(value: object, **expected: object) -> Variable:
    variable = row(value)
    got = {k: variable[k] for k in expected}  # type: ignore[literal-required]
    assert got == expected
    return variable


class Helper:
    def __init__(self) -> None:
        self._x = 1

    def fn_no_args(self) -> str:
        return "No args"

    def fn_one_arg(self, x: str) -> str:
        return x

    def fn_two_args(self, x: int, y: int) -> tuple[int, int]:
        return (x, y)

    @property
    def prop(self) -> int:
        return self._x


# -- scalars ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_booleans(value: bool) -> None:
    check(
        value,
        display_value=str(value),
        kind="boolean",
        display_type="bool",
        type_info="bool",
        length=0,
        has_children=False,
        is_truncated=False,
    )


@pytest.mark.parametrize("value", ["", "a", "東京", "quote's", "line\nbreak"])
def test_strings_show_their_repr_and_length(value: str) -> None:
    check(
        value,
        display_value=repr(value),
        kind="string",
        display_type="str",
        type_info="str",
        length=len(value),
        has_children=False,
        is_truncated=False,
    )


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(0, "int"), (-(2**70), "int"), (1.5, "float"), (float("nan"), "float"), (1 + 2j, "complex")],
)
def test_numbers(value: object, type_name: str) -> None:
    check(
        value,
        display_value=str(value),
        kind="number",
        display_type=type_name,
        type_info=type_name,
        length=0,
        has_children=False,
        is_truncated=False,
    )


@pytest.mark.parametrize("value", [np.int64(3), np.float32(1.5), np.uint8(255)])
def test_numpy_scalars_are_named_with_their_module(value: Any) -> None:
    dtype = str(value.dtype)
    check(
        value,
        display_value=str(value.item()),
        kind="number",
        display_type=f"numpy.{dtype}",
        type_info=f"numpy.{dtype}",
        length=0,
    )


def test_an_int_too_long_to_print_says_how_big_it_is() -> None:
    value = (
        10 ** (sys.get_int_max_str_digits() + 10)
        if hasattr(sys, "get_int_max_str_digits")
        else None
    )
    if value is None:
        pytest.skip("this Python prints ints of any length")
    variable = check(value, kind="number", display_type="int")
    assert variable["display_value"] == f"<int of {value.bit_length()} bits>"


def test_none_is_empty() -> None:
    check(
        None,
        display_value="None",
        kind="empty",
        display_type="NoneType",
        type_info="NoneType",
        length=0,
        has_children=False,
    )


@pytest.mark.parametrize("value", [b"", b"ABC", bytearray(), bytearray(b"\x41\x42\x43")])
def test_bytes(value: bytes | bytearray) -> None:
    name = type(value).__name__
    check(
        value,
        display_value=repr(value),
        kind="bytes",
        display_type=f"{name} [{len(value)}]",
        type_info=name,
        length=len(value),
        has_children=False,
        is_truncated=False,
    )


def test_memoryview() -> None:
    value = memoryview(bytearray("東京", "utf-8"))
    check(
        value,
        display_value=repr(value),
        kind="bytes",
        display_type="memoryview [6]",
        type_info="memoryview",
        length=6,
    )


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2021, 1, 1, 1, 23, 45, tzinfo=datetime.timezone.utc),
        datetime.date(2021, 1, 1),
        pd.Timestamp("2021-01-01 01:23:45"),
    ],
)
def test_timestamps_are_other_values_without_children(value: Any) -> None:
    cls = type(value)
    check(
        value,
        display_value=repr(value),
        kind="other",
        display_type=cls.__name__,
        type_info=f"{cls.__module__}.{cls.__qualname__}",
        length=0,
        has_children=False,
    )


# -- collections and maps ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "display_type"),
    [
        ([], "list [0]"),
        ([None], "list [1]"),
        ([1, 2.5, "a", b"b", (1,), {2}], "list [6]"),
        ((), "tuple (0)"),
        ((1,), "tuple (1)"),
        ((1, "a"), "tuple (2)"),
        (set(), "set {0}"),
        ({1, 2, 3}, "set {3}"),
        (frozenset(), "frozenset {0}"),
    ],
)
def test_collections_show_their_repr(value: Any, display_type: str) -> None:
    # sets expand by position here (Positron shows none); everything else as Positron
    check(
        value,
        display_value=repr(value),
        kind="collection",
        display_type=display_type,
        type_info=type(value).__name__,
        length=len(value),
        has_children=len(value) > 0,
        has_viewer=False,
        is_truncated=False,
    )


def test_a_frozenset_shows_its_items_in_braces() -> None:
    # as Positron: set-like values print `{...}` whatever their type
    check(frozenset({"a"}), display_value="{'a'}", display_type="frozenset {1}", length=1)


@pytest.mark.parametrize("value", [range(0), range(3), range(12345678901)])
def test_ranges_do_not_expand(value: range) -> None:
    check(
        value,
        display_value=repr(value),
        kind="collection",
        display_type=f"range [{len(value)}]",
        length=len(value),
        has_children=False,
        is_truncated=False,
    )


@pytest.mark.parametrize(
    "value",
    [{}, {"": None}, {10: "Ten"}, {"H": (1, 2, 3)}, {"J": {1, 2}}, {"L": {"L1": 1, "L2": 2}}],
)
def test_maps_show_their_repr(value: dict[Any, Any]) -> None:
    check(
        value,
        display_value=repr(value),
        kind="map",
        display_type=f"dict [{len(value)}]",
        type_info="dict",
        length=len(value),
        has_children=len(value) > 0,
        is_truncated=False,
    )


# -- functions, classes, objects --------------------------------------------------------

helper = Helper()


@pytest.mark.parametrize(
    "value", [lambda: None, lambda x: x, lambda x, y: x + y, helper.fn_no_args, helper.fn_two_args]
)
def test_functions_show_name_and_signature(value: Callable[..., Any]) -> None:
    type_name = "method" if inspect.ismethod(value) else "function"
    check(
        value,
        display_value=f"{value.__qualname__}{inspect.signature(value)}",
        kind="function",
        display_type=type_name,
        type_info=type_name,
        length=0,
        has_children=False,
    )


def test_a_builtin_without_a_signature_is_still_a_function() -> None:
    variable = check(print, kind="function", display_type="builtin_function_or_method")
    assert variable["display_value"].startswith("print(")


def test_classes() -> None:
    public = [n for n in dir(Helper) if not n.startswith("_")]
    check(
        Helper,
        display_value=str(Helper),
        kind="class",
        display_type="type",
        type_info="type",
        length=len(public),
        has_children=True,
        is_truncated=False,
    )


def test_objects_count_their_public_attributes() -> None:
    # Positron: fn_no_args, fn_one_arg, fn_two_args, prop
    check(
        helper,
        display_value=repr(helper),
        kind="other",
        display_type="Helper",
        type_info=f"{__name__}.Helper",
        length=4,
        has_children=True,
        is_truncated=False,
    )


def test_a_property_object() -> None:
    check(
        Helper.prop,
        display_value=str(Helper.prop),
        kind="other",
        display_type="property",
        type_info="property",
        length=0,
        has_children=False,
    )


def test_a_raising_repr_gives_a_display_value_saying_so() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr today")

    variable = row(Broken())
    assert "RuntimeError" in variable["display_value"]
    assert "no repr today" in variable["display_value"]
    assert variable["kind"] == "other"


def test_a_raising_len_does_not_stop_describe() -> None:
    class BadList(list[int]):
        def __len__(self) -> int:
            raise OSError("gone")

    variable = row(BadList([1]))
    assert "OSError" in variable["display_value"]
    assert variable["display_name"] == "x"


def test_a_sqlite_connection_is_a_connection() -> None:
    import sqlite3

    with sqlite3.connect(":memory:") as conn:
        variable = check(conn, kind="connection", type_info="sqlite3.Connection")
    assert variable["has_viewer"] is False  # the data explorer cannot open it


# -- arrays and tables ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (np.array([1, 2, 3], dtype=np.int64), "(3)"),
        (np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64), "(2, 3)"),
    ],
)
def test_numpy_arrays(value: Any, shape: str) -> None:
    check(
        value,
        display_value=np.array2string(value, separator=","),
        kind="collection",
        display_type=f"numpy.int64 {shape}",
        type_info="numpy.ndarray",
        has_children=True,
        is_truncated=True,
        length=value.shape[0],
        size=value.nbytes,
        has_viewer=value.ndim == 2,
    )  # a 2-D array opens in the data explorer


def test_a_zero_dimensional_array_is_a_number() -> None:
    value = np.array(1, dtype=np.int64)
    check(
        value,
        display_value="1",
        kind="number",
        display_type="numpy.int64",
        type_info="numpy.ndarray",
        length=0,
        has_children=False,
        is_truncated=True,
    )


def test_a_big_array_is_summarised_as_numpy_prints_it() -> None:
    value = np.arange(1000)
    variable = row(value)
    assert variable["display_value"] == np.array2string(
        value, max_line_width=1000, threshold=20, edgeitems=9, separator=","
    )
    assert "..." in variable["display_value"]


def test_pandas_dataframe() -> None:
    value = pd.DataFrame({"a": [1, 2, 3], "b": ["3", "4", "5"]})
    check(
        value,
        display_value="[3 rows x 2 columns] pandas.DataFrame",
        kind="table",
        display_type="DataFrame [3x2]",
        has_children=True,
        has_viewer=True,
        is_truncated=True,
        length=2,
        size=int(value.memory_usage(index=False).sum()),
    )


def test_pandas_series() -> None:
    value = pd.Series({"a": 0, "b": 1})
    check(
        value,
        display_value="pandas.Series [0, 1]",
        kind="table",
        display_type="int64 [2]",
        has_children=True,
        has_viewer=True,
        is_truncated=False,
        length=2,
        size=16,
    )


@pytest.mark.parametrize(
    "value",
    [
        pd.Index([0, 1]),
        pd.date_range("2021-01-01 00:00:00", "2021-01-01 02:00:00", freq="h"),
        pd.MultiIndex.from_tuples([(0, "a"), (1, "b"), (2, "c")]),
    ],
)
def test_pandas_index(value: Any) -> None:
    check(
        value,
        display_value=f"pandas.{type(value).__name__} {value.to_list()}",
        kind="map",
        display_type=f"{value.dtype} [{len(value)}]",
        has_children=True,
        has_viewer=False,
        is_truncated=False,
        length=len(value),
    )


def test_pandas_range_index_does_not_expand() -> None:
    value = pd.RangeIndex(0, 2)
    check(
        value,
        display_value=repr(value),
        kind="map",
        display_type="int64 [2]",
        has_children=False,
        length=2,
        is_truncated=False,
    )


def test_polars_dataframe() -> None:
    value = pl.DataFrame({"a": [1, 2], "b": [3, 4], "c": [5, 6]})
    check(
        value,
        display_value="[2 rows x 3 columns] polars.DataFrame",
        kind="table",
        display_type="DataFrame [2x3]",
        type_info="polars.dataframe.frame.DataFrame",
        has_children=True,
        has_viewer=True,
        is_truncated=True,
        length=3,
        size=value.estimated_size(),
    )


def test_polars_series() -> None:
    # Positron: kind map, no viewer; here a Series is a table like pandas' and opens in
    # the data explorer
    value = pl.Series([0, 1])
    check(
        value,
        display_value="polars.Series [0, 1]",
        kind="table",
        display_type="Int64 [2]",
        type_info="polars.series.series.Series",
        has_children=True,
        has_viewer=True,
        is_truncated=False,
        length=2,
        size=16,
    )


def test_pyarrow_table() -> None:
    value = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    check(
        value,
        display_value="[3 rows x 2 columns] pyarrow.Table",
        kind="table",
        display_type="Table [3x2]",
        type_info="pyarrow.lib.Table",
        has_children=True,
        has_viewer=True,
        is_truncated=True,
        length=2,
        size=value.nbytes,
    )


def test_polars_lazy_frame_is_lazy_and_not_expanded() -> None:
    variable = check(pl.LazyFrame({"a": [1]}), kind="lazy", has_children=False, length=0)
    assert variable["has_viewer"] is False


# -- names ------------------------------------------------------------------------------


def test_names_and_keys() -> None:
    assert row(1, "df")["access_key"] == '{"type":"str","data":"df"}'
    nested = row(1, 3, nested=True)
    assert (nested["display_name"], nested["access_key"]) == ("3", '{"type":"int","data":3}')
    assert row(1, ("a", 1), nested=True)["display_name"] == "('a', 1)"
