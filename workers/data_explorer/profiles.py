"""Column profiles: null counts, summary statistics, histograms with quantiles, and
frequency tables, over the rows of the view (filters applied), on full data.

Computed with `pyarrow.compute` (numpy for histogram edges), which is columnar whatever
library the table came from; numbers are formatted with the request's format options.
On big tables, when polars is installed (and the worker was not forked from the kernel,
where polars' thread pool does not exist), two statistics go to it, with the same answers
(tests/unit/test_data_explorer_polars.py): the numbers' summary (one multithreaded query,
NaN skipped without a copy: 30-40 ms a column of 10M against 150-200 ms) and the median of
dates (20 ms against 80 ms).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]
from mpkernel_workers.data_explorer.formatting import python_values, value_formatter
from mpkernel_workers.data_explorer.protocol import (
    NUMERIC_DISPLAY,
    VALUE_INF,
    VALUE_NAN,
    VALUE_NEGINF,
    ColumnFrequencyTable,
    ColumnHistogram,
    ColumnProfileResult,
    FormatOptions,
)
from mpkernel_workers.data_explorer.tables import Column, StringViews, polars_for


class _Unknown(enum.Enum):
    UNKNOWN = 0


UNKNOWN: Final = _Unknown.UNKNOWN


class ProfileError(ValueError):
    """A profile that does not apply to its column."""


def column_profile(
    column: Column,
    rows: pa.Array | None,
    specs: list[dict[str, Any]],
    options: FormatOptions,
    numbers: Known = UNKNOWN,
) -> ColumnProfileResult:
    """`numbers`: this column's `number_summaries` when they were computed with others'."""
    source = column.source
    if rows is None and isinstance(source, StringViews) and _counted(specs):
        arr = source.views  # counted as they are: the column is not converted (`_distinct`)
    else:
        arr = column.array if rows is None else column.array.take(rows)
    out = ColumnProfileResult()
    for spec in specs:
        kind = spec.get("profile_type")
        params = spec.get("params") or {}
        if kind == "null_count":
            out["null_count"] = null_count(column, arr)
        elif kind == "summary_stats":
            out["summary_stats"] = summary_stats(column, arr, options, numbers)
        elif kind in ("small_histogram", "large_histogram"):
            out[kind] = histogram(column, arr, params, options)  # type: ignore[literal-required]
        elif kind in ("small_frequency_table", "large_frequency_table"):
            limit = int(params.get("limit", 10))
            out[kind] = frequency_table(column, arr, limit, options)  # type: ignore[literal-required]
        else:
            raise ProfileError(f"unknown profile type {kind!r}")
    return out


# What a string column's distinct values and their counts answer (`_distinct`).
_COUNTED = frozenset(
    ("null_count", "summary_stats", "small_frequency_table", "large_frequency_table")
)


def _counted(specs: list[dict[str, Any]]) -> bool:
    return all(spec.get("profile_type") in _COUNTED for spec in specs)


def _distinct(arr: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """A string column's distinct non-missing values, in first-seen order, and how often
    each occurs: one pass of pyarrow's hash counting answers the summary (distinct and
    empty) and the frequency table. Unlike most of pyarrow's kernels it takes polars'
    string views, which are then never converted (a 10M-row column would be a copy of
    about 180 MiB, kept by the explorer)."""
    counts = pc.value_counts(arr)
    values, freq = counts.field("values"), counts.field("counts")
    if pa.types.is_string_view(values.type):
        values = pc.cast(values, pa.large_string())
    present = pc.is_valid(values)
    if arr.null_count and not present.false_count:
        # pyarrow 26 counts the missing entries of string views under an entry of their
        # own that reads "" (`unique` too): the "" entry with their count goes (the empty
        # strings, if any, have the other one).
        missing = pc.and_(pc.equal(values, ""), pc.equal(freq, arr.null_count))
        at = pc.index(missing, True).as_py()
        if at >= 0:
            keep = np.ones(len(values), dtype=bool)
            keep[at] = False
            present = pa.array(keep)
    return values.filter(present), freq.filter(present)


def null_count(column: Column, arr: pa.ChunkedArray) -> int:
    if column.nan_is_null and column.display == "floating":
        return int(pc.sum(pc.is_null(arr, nan_is_null=True)).as_py() or 0)
    return int(arr.null_count)


def _valid(column: Column, arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Non-missing values; NaN is dropped from floats for statistics in every library."""
    if column.display == "floating":
        return pc.filter(arr, pc.invert(pc.is_null(arr, nan_is_null=True)))
    return pc.drop_null(arr)


def summary_stats(
    column: Column, arr: pa.ChunkedArray, options: FormatOptions, numbers: Known = UNKNOWN
) -> dict[str, Any]:
    display = column.display
    out: dict[str, Any] = {"type_display": display}
    if display in NUMERIC_DISPLAY:
        out["number_stats"] = _number_stats(column, arr, options, numbers)
    elif display == "string":
        values, freq = _distinct(arr)
        out["string_stats"] = {
            "num_empty": int(pc.sum(freq.filter(pc.equal(values, ""))).as_py() or 0),
            "num_unique": len(values),
        }
    elif display == "boolean":
        valid = pc.drop_null(arr)
        trues = int(pc.sum(valid).as_py() or 0)
        out["boolean_stats"] = {"true_count": trues, "false_count": len(valid) - trues}
    elif display in ("date", "datetime"):
        out[f"{display}_stats"] = _date_stats(column, pc.drop_null(arr))
    else:
        out["other_stats"] = {"num_unique": num_unique(pc.drop_null(arr))}
    return out


def num_unique(valid: pa.ChunkedArray) -> int:
    """Distinct values among `valid` (no nulls in it)."""
    t = valid.type
    if pa.types.is_integer(t) or (pa.types.is_temporal(t) and t.bit_width in (32, 64)):
        # The changes of a sorted copy of their bits: numpy's vectorized sort of 10M 64-bit
        # integers takes 0.1 s, where pyarrow's hash `unique` takes 1.1 s, polars'
        # `n_unique` 0.16 s and numpy's sort of datetime64 itself 0.85 s; the copy and its
        # mask are also smaller than a hash table of as many distinct values (with the rest
        # of a profile, one for a 100M-row datetime column passed a worker's 8 GiB).
        if not pa.types.is_integer(t):
            valid = valid.cast(pa.int32() if t.bit_width == 32 else pa.int64())
        values = np.sort(valid.to_numpy())
        return 0 if len(values) == 0 else 1 + int(np.count_nonzero(values[1:] != values[:-1]))
    # Not floats that way (-0.0 and 0.0 are one to numpy, two to pyarrow); `unique` is a
    # quarter quicker than `count_distinct` on 10M strings, same count.
    return len(pc.unique(valid))


@dataclass(frozen=True, slots=True)
class Numbers:
    """Raw statistics of a column's valid values (without NaN); the moments are None
    when an infinity makes them meaningless."""

    min: Any
    max: Any
    mean: float | None
    median: float | None
    stdev: float | None


# Statistics computed beforehand (None: no valid value), or UNKNOWN: compute them.
Known: TypeAlias = "Numbers | _Unknown | None"


def _number_stats(
    column: Column, arr: pa.ChunkedArray, options: FormatOptions, known: Known
) -> dict[str, str]:
    if not isinstance(known, _Unknown):
        numbers = known
    else:
        try:
            numbers = _polars_numbers(arr) if _polars_sized(arr) else _arrow_numbers(column, arr)
        except _PolarsRefused:
            numbers = _arrow_numbers(column, arr)
    if numbers is None:
        return {}
    fmt = _number_text(column, options)
    stats = {"min_value": fmt(numbers.min), "max_value": fmt(numbers.max)}
    ffmt = _number_text(Column("", arr, "", "floating", 0, False), options)
    for key in ("mean", "median", "stdev"):
        value = getattr(numbers, key)
        if value is not None:
            stats[key] = str(ffmt(value))
    return stats


def _polars_sized(arr: pa.ChunkedArray) -> bool:
    return polars_for(len(arr)) and _plain_number(arr.type)


def _plain_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t))


class _PolarsRefused(Exception):
    """polars would not take this data (a type of its own it lacks): pyarrow does."""


def _arrow_numbers(column: Column, arr: pa.ChunkedArray) -> Numbers | None:
    valid = _valid(column, arr)
    if len(valid) == 0:
        return None
    mm = pc.min_max(valid)
    low, high = mm["min"].as_py(), mm["max"].as_py()
    if column.display == "floating" and (math.isinf(low) or math.isinf(high)):
        return Numbers(low, high, None, None, None)
    as_float = valid if column.display == "floating" else pc.cast(valid, pa.float64())
    return Numbers(
        low,
        high,
        pc.mean(as_float).as_py(),
        pc.quantile(as_float, q=0.5)[0].as_py(),
        pc.stddev(as_float, ddof=1).as_py() if len(valid) > 1 else None,
    )


def _polars_numbers(arr: pa.ChunkedArray) -> Numbers | None:
    """The same statistics with polars (multithreaded median, no copy to drop NaN)."""
    return _polars_numbers_many([arr])[0]


def _polars_numbers_many(arrays: Sequence[pa.ChunkedArray]) -> list[Numbers | None]:
    """Several columns' statistics in one polars query, which spreads them over the
    cores (7 numeric columns of 10M: 0.43 s; medians are two thirds of it)."""
    import polars as pl

    exprs = []
    for k in range(len(arrays)):
        v = pl.col(f"c{k}")
        exprs += [
            v.count().alias(f"n{k}"),
            v.min().alias(f"min{k}"),
            v.max().alias(f"max{k}"),
            v.mean().alias(f"mean{k}"),
            # Without drop_nulls polars' median of a column with nulls is 6x slower.
            v.drop_nulls().median().alias(f"median{k}"),
            v.std(ddof=1).alias(f"std{k}"),
        ]
    floats = [f"c{k}" for k, arr in enumerate(arrays) if pa.types.is_floating(arr.type)]
    try:
        frame: Any = pl.from_arrow(pa.table({f"c{k}": arr for k, arr in enumerate(arrays)}))
        if floats:
            # NaN is skipped as missing: turned into nulls once, only where there is some
            # (an expression per statistic would repeat the copy six times).
            has_nan = frame.select(pl.col(c).is_nan().any() for c in floats).row(0)
            with_nan = [c for c, found in zip(floats, has_nan, strict=True) if found]
            if with_nan:
                frame = frame.with_columns(pl.col(c).fill_nan(None) for c in with_nan)
        row = frame.select(exprs).row(0)
    except Exception as e:  # polars refuses in many ways (types, versions): pyarrow does it
        raise _PolarsRefused(str(e)) from e
    out: list[Numbers | None] = []
    for k in range(len(arrays)):
        count, low, high, mean, median, stdev = row[6 * k : 6 * k + 6]
        if count == 0:
            out.append(None)
        elif isinstance(low, float) and (math.isinf(low) or math.isinf(high)):
            out.append(Numbers(low, high, None, None, None))
        else:
            out.append(Numbers(low, high, mean, median, stdev if count > 1 else None))
    return out


def number_summaries(columns: Sequence[Column], rows: pa.Array | None) -> list[Numbers | None]:
    """`summary_stats`' numbers for several numeric columns of a big table at once, for
    `column_profile(numbers=...)`; [] when polars is not there or would not take them."""
    arrays = [c.array if rows is None else c.array.take(rows) for c in columns]
    if not arrays or not all(_polars_sized(a) for a in arrays):
        return []
    try:
        return _polars_numbers_many(arrays)
    except _PolarsRefused:
        return []


def batched(column: Column, rows: pa.Array | None) -> bool:
    """Whether `number_summaries` takes this column's statistics."""
    n = len(column) if rows is None else len(rows)
    return column.display in NUMERIC_DISPLAY and polars_for(n) and _plain_number(column.type)


_SPECIAL_TEXT = {VALUE_INF: "inf", VALUE_NEGINF: "-inf", VALUE_NAN: "NaN"}


def _number_text(column: Column, options: FormatOptions) -> Any:
    """Statistics are strings in the contract: infinities are spelled out, not coded."""
    fmt = value_formatter(column, options)

    def text(v: Any) -> str:
        out = fmt(v)
        return _SPECIAL_TEXT.get(out, str(out)) if isinstance(out, int) else out

    return text


def _date_stats(column: Column, valid: pa.ChunkedArray) -> dict[str, Any]:
    out: dict[str, Any] = {"num_unique": num_unique(valid)}
    if len(valid) == 0:
        return out
    mm = pc.min_max(valid)
    as_int = (
        pc.cast(valid, pa.int64())
        if column.display == "datetime"
        else pc.cast(pc.cast(valid, pa.date32()), pa.int32())
    )
    mean = pc.mean(as_int).as_py()
    median = _lower_median(as_int)
    t = valid.type

    def back(v: float) -> str:
        if column.display == "datetime":
            return str(pa.scalar(round(v), pa.int64()).cast(t).as_py())
        return str(pa.scalar(round(v), pa.int32()).cast(pa.date32()).as_py())

    out.update(
        min_date=str(mm["min"].as_py()),
        max_date=str(mm["max"].as_py()),
        mean_date=back(mean),
        median_date=back(median),
    )
    if column.display == "datetime" and column.timezone:
        out["timezone"] = column.timezone
    return out


# polars' quantiles go through float64, exact for integers up to 2**53 only (not
# nanosecond timestamps of today).
_EXACT_IN_FLOAT: Final = 2**53


def _lower_median(valid: pa.ChunkedArray) -> int:
    """The lower median of integers without nulls: polars' selection is 4x quicker than
    pyarrow's quantile on 10M values, with the same answer when it is exact."""
    if polars_for(len(valid)):
        bounds = pc.min_max(valid)
        if max(-bounds["min"].as_py(), bounds["max"].as_py()) < _EXACT_IN_FLOAT:
            import polars as pl

            median: Any = pl.from_arrow(valid).quantile(0.5, "lower")
            return int(median)
    return int(pc.quantile(valid, q=0.5, interpolation="lower")[0].as_py())


def histogram(
    column: Column, arr: pa.ChunkedArray, params: dict[str, Any], options: FormatOptions
) -> ColumnHistogram:
    if column.display not in ("floating", "integer", "decimal", "datetime", "date"):
        raise ProfileError(f"no histogram for a {column.display} column")
    valid = _valid(column, arr)
    is_time = column.display in ("datetime", "date")
    if is_time:
        valid = pc.cast(valid, pa.int64() if column.display == "datetime" else pa.int32())
    values = valid.to_numpy().astype(np.float64, copy=False) if len(valid) else np.zeros(0)
    values = values[np.isfinite(values)]
    num_bins = max(int(params.get("num_bins", 20)), 1)
    method = params.get("method", "fixed")
    if len(values) == 0:
        return ColumnHistogram(bin_edges=[], bin_counts=[], quantiles=[])
    lo, hi = float(values.min()), float(values.max())
    if method == "fixed" or lo == hi:
        bins = num_bins
    else:
        numpy_name = {"sturges": "sturges", "freedman_diaconis": "fd", "scott": "scott"}.get(method)
        if numpy_name is None:
            raise ProfileError(f"unknown histogram method {method!r}")
        bins = min(len(np.histogram_bin_edges(values, bins=numpy_name)) - 1, num_bins)
    if column.display == "integer" or (is_time and column.display == "date"):
        bins = min(bins, int(hi - lo) + 1)
    bins = max(bins, 1)
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    edge_text = _edge_formatter(column, options)
    quantiles = []
    for q in params.get("quantiles") or []:
        qv = float(np.quantile(values, float(q)))
        quantiles.append({"q": float(q), "value": edge_text(qv), "exact": True})
    return ColumnHistogram(
        bin_edges=[edge_text(float(e)) for e in edges],
        bin_counts=[int(c) for c in counts],
        quantiles=quantiles,
    )


def _edge_formatter(column: Column, options: FormatOptions) -> Any:
    if column.display == "datetime":
        t = column.type
        return lambda v: str(pa.scalar(round(v), pa.int64()).cast(t).as_py())
    if column.display == "date":
        return lambda v: str(pa.scalar(round(v), pa.int32()).cast(pa.date32()).as_py())
    return _number_text(Column("", column.array, "", "floating", 0, False), options)


def frequency_table(
    column: Column, arr: pa.ChunkedArray, limit: int, options: FormatOptions
) -> ColumnFrequencyTable:
    if column.display == "string":
        values, freq = _distinct(arr)
        total = int(pc.sum(freq).as_py() or 0)
    else:
        valid = _valid(column, arr)
        counts = pc.value_counts(valid)
        values, freq, total = counts.field("values"), counts.field("counts"), len(valid)
    # Stable: equal counts keep first-seen order.
    order = pc.array_sort_indices(freq, order="descending")
    top = order[: max(limit, 0)]
    top_values = values.take(top)
    top_counts = [int(c) for c in freq.take(top).to_pylist()]
    fmt = value_formatter(column, options)
    return ColumnFrequencyTable(
        values=[fmt(v) for v in python_values(top_values)],
        counts=top_counts,
        other_count=total - sum(top_counts),
    )
