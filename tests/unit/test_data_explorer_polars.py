"""The data explorer's polars fast paths (big tables, polars installed) give pyarrow's
answers (the reference, used for small tables and without polars): the row order of a
sort (ties keep table order; nulls, and NaN, last in both directions), the statistics of
numbers and distinct counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from mpkernel_workers.data_explorer import profiles, sorting, tables
from mpkernel_workers.data_explorer.tables import Column
from mpkernel_workers.data_explorer.view import TableView

pytest.importorskip("polars")

ROWS = 3000
RNG = np.random.default_rng(7)


def chunked(values: Sequence[object] | np.ndarray, type_: pa.DataType) -> pa.ChunkedArray:
    # Two chunks: a table made by concatenation, as polars and pandas often give.
    array = pa.array(values, type_, from_pandas=False)
    return pa.chunked_array([array.slice(0, ROWS // 2), array.slice(ROWS // 2)])


def floats() -> pa.ChunkedArray:
    """Few distinct values (ties), NaN, nulls, both zeros and infinities."""
    pool = [0.5, -0.0, 0.0, 2.0, float("nan"), float("inf"), float("-inf"), None]
    return chunked([pool[i] for i in RNG.integers(0, len(pool), ROWS)], pa.float64())


def ints() -> pa.ChunkedArray:
    values = [None if v == 0 else int(v) for v in RNG.integers(0, 5, ROWS)]
    return chunked(values, pa.int64())


def strings() -> pa.ChunkedArray:
    pool = ["b", "a", "", "ab", "B", None]
    return chunked([pool[i] for i in RNG.integers(0, len(pool), ROWS)], pa.large_string())


def stamps() -> pa.ChunkedArray:
    base = dt.datetime(2024, 1, 1)
    values = [
        None if v == 0 else base + dt.timedelta(days=int(v)) for v in RNG.integers(0, 4, ROWS)
    ]
    return chunked(values, pa.timestamp("us"))


KEYS = {"float": floats(), "int": ints(), "string": strings(), "datetime": stamps()}


def both(keys: list[tuple[pa.ChunkedArray, bool]]) -> tuple[list[int], list[int]]:
    arrow = sorting._arrow_sort(keys).to_pylist()
    polars = sorting._polars_sort(keys).to_pylist()
    return arrow, polars


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("kind", list(KEYS))
def test_one_key_gives_pyarrows_order(kind: str, ascending: bool) -> None:
    arrow, polars = both([(KEYS[kind], ascending)])
    assert polars == arrow


@pytest.mark.parametrize(
    ("first", "second"),
    [("int", "float"), ("string", "int"), ("float", "datetime"), ("datetime", "string")],
)
@pytest.mark.parametrize("directions", [(True, False), (False, True), (False, False)])
def test_two_keys_give_pyarrows_order(
    first: str, second: str, directions: tuple[bool, bool]
) -> None:
    arrow, polars = both([(KEYS[first], directions[0]), (KEYS[second], directions[1])])
    assert polars == arrow


def test_descending_floats_put_nan_then_null_last() -> None:
    column = chunked([1.0, None, float("nan"), 3.0, float("nan"), 2.0] * (ROWS // 6), pa.float64())
    order = sorting._polars_sort([(column, False)]).to_pylist()
    values = column.take(pa.array(order)).to_pylist()
    six = ROWS // 6
    assert values[:six] == [3.0] * six
    assert all(v != v for v in values[3 * six : 5 * six])  # NaN
    assert values[5 * six :] == [None] * six
    # ties (each NaN, each null) keep table order
    assert order[3 * six : 5 * six] == sorted(order[3 * six : 5 * six])


def test_big_table_sorts_through_polars_like_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table past the threshold goes through polars (spied), with pyarrow's answer."""
    monkeypatch.setattr(tables, "POLARS_MIN_ROWS", ROWS)
    used: list[int] = []
    real = sorting._polars_sort

    def spy(keys: list[tuple[pa.ChunkedArray, bool]]) -> pa.Array:
        used.append(len(keys))
        return real(keys)

    monkeypatch.setattr(sorting, "_polars_sort", spy)
    table = pa.table({"f": KEYS["float"], "s": KEYS["string"]})
    from mpkernel_workers.data_explorer.tables import from_object

    view = TableView(from_object(table))
    view.set_sort_keys(
        [{"column_index": 1, "ascending": False}, {"column_index": 0, "ascending": True}]
    )
    assert used == [2]
    expected = sorting._arrow_sort([(KEYS["string"], False), (KEYS["float"], True)])
    first = view.positions({"first_index": 0, "last_index": ROWS - 1})
    assert first.to_pylist() == expected.to_pylist()


def float_column(values: list[float | None]) -> pa.ChunkedArray:
    return chunked(values * (ROWS // len(values)), pa.float64())


NUMBER_CASES = {
    "floats with NaN and nulls": (float_column([0.25, float("nan"), None, -3.5, 8.0, 1.0]), True),
    "pandas floats (NaN is missing)": (float_column([0.25, float("nan"), 2.0]), True),
    "infinities": (float_column([1.0, float("inf"), 2.0, None]), False),
    "ints with nulls": (ints(), False),
    "all null": (chunked([None] * ROWS, pa.float64()), False),
    "one value": (chunked([None] * (ROWS - 1) + [4.5], pa.float64()), False),
}


@pytest.mark.parametrize("case", list(NUMBER_CASES))
def test_number_statistics_match(case: str) -> None:
    arr, nan_is_null = NUMBER_CASES[case]
    display = "floating" if pa.types.is_floating(arr.type) else "integer"
    column = Column("c", arr, str(arr.type), display, 0, nan_is_null)  # type: ignore[arg-type]
    assert_same_numbers(profiles._polars_numbers(arr), profiles._arrow_numbers(column, arr))


def assert_same_numbers(got: profiles.Numbers | None, expected: profiles.Numbers | None) -> None:
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert (got.min, got.max) == (expected.min, expected.max)
    for key in ("mean", "median", "stdev"):
        a, b = getattr(expected, key), getattr(got, key)
        assert (a is None) == (b is None), key
        if a is not None:
            assert b == pytest.approx(a, rel=1e-12), key


@pytest.mark.parametrize("kind", ["int", "datetime"])
def test_distinct_counts_match(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    valid = KEYS[kind].drop_null()
    arrow = profiles.num_unique(valid)  # below the threshold: pyarrow
    monkeypatch.setattr(tables, "POLARS_MIN_ROWS", 1)
    assert profiles.num_unique(valid) == arrow


def test_number_summaries_of_several_columns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-query statistics of several columns (a request's profiles on a big table)
    are each column's own; below the size threshold there are none (computed per column)."""
    columns = []
    for arr, nan_is_null in NUMBER_CASES.values():
        display = "floating" if pa.types.is_floating(arr.type) else "integer"
        columns.append(Column("c", arr, str(arr.type), display, 0, nan_is_null))  # type: ignore[arg-type]
    assert profiles.number_summaries(columns, None) == []
    monkeypatch.setattr(tables, "POLARS_MIN_ROWS", 1)
    rows = pa.array(range(0, ROWS, 2), pa.int64())  # a filtered view: every other row
    together = profiles.number_summaries(columns, rows)
    for column, got in zip(columns, together, strict=True):
        assert_same_numbers(got, profiles._arrow_numbers(column, column.array.take(rows)))


@pytest.mark.parametrize("kind", ["int", "datetime", "nanoseconds"])
def test_lower_median_matches(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dates' medians: polars' selection on a big column, pyarrow's quantile below, and
    for values beyond float64's exact integers (nanoseconds since 1970)."""
    if kind == "nanoseconds":
        values = np.random.default_rng(3).integers(
            1_600_000_000 * 10**9, 1_700_000_000 * 10**9, ROWS
        )
        column = pa.chunked_array([pa.array(values, pa.int64())])
    else:
        column = pa.chunked_array([pc.cast(KEYS[kind].drop_null(), pa.int64())])
    for n in (1, 2, 3, ROWS):
        valid = column.slice(0, n)
        expected = int(np.sort(valid.to_numpy())[(len(valid) - 1) // 2])
        monkeypatch.setattr(tables, "POLARS_MIN_ROWS", 200_000)
        assert profiles._lower_median(valid) == expected
        monkeypatch.setattr(tables, "POLARS_MIN_ROWS", 1)
        assert profiles._lower_median(valid) == expected
