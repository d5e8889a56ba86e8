"""`query_table_summary`: a table's schema and per-column summary statistics, for
Positron Assistant (notes 3.2, 5.2). Each column's schema and profile is a JSON-encoded
object, shaped as the data explorer's `column_schema` and `column_profile_result` with the
column's name and index added to the profile.

Statistics come from the table's own library (pandas, polars, pyarrow, numpy), imported
only when a table of that library is asked about. A column whose statistics fail is left
out of the profiles and logged; the others are still answered.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mpkernel_workers.variables import tables
from mpkernel_workers.variables.protocol import QueryTableSummaryResult

__all__ = ["QUERY_TYPES", "table_summary"]

log = logging.getLogger(__name__)

QUERY_TYPES = ("summary_stats", "null_count")


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    index: int
    type_name: str
    type_display: str
    null_count: Callable[[], int]
    stats: Callable[[], dict[str, Any]]


def table_summary(value: object, query_types: Sequence[str]) -> QueryTableSummaryResult:
    """Schema and the requested profiles of every column of the table `value`."""
    kind = tables.family(value)
    if not tables.is_table(value) or kind is None:
        raise ValueError(f"not a table: {type(value).__name__}")
    unknown = [q for q in query_types if q not in QUERY_TYPES]
    if unknown:
        log.warning("query_table_summary: ignoring unknown query types %s", unknown)
    columns = _columns(value, kind)
    rows = tables.shape(value, kind)[0] if kind in tables.FRAMES else len(value)  # type: ignore[arg-type]
    schemas = [
        json.dumps(
            {
                "column_name": c.name,
                "column_index": c.index,
                "type_name": c.type_name,
                "type_display": c.type_display,
            }
        )
        for c in columns
    ]
    profiles: list[str] = []
    for c in columns:
        profile: dict[str, Any] = {"column_name": c.name, "column_index": c.index}
        try:
            if "null_count" in query_types:
                profile["null_count"] = c.null_count()
            if "summary_stats" in query_types:
                profile["summary_stats"] = {"type_display": c.type_display, **c.stats()}
        except Exception:  # a column's user-defined dtype: the other columns still answer
            log.warning("query_table_summary: no profile for column %r", c.name, exc_info=True)
            continue
        profiles.append(json.dumps(profile))
    return QueryTableSummaryResult(
        num_rows=rows,
        num_columns=len(columns),
        column_schemas=schemas,
        column_profiles=profiles,
    )


def _columns(value: Any, kind: str) -> list[_Column]:
    if kind == "pandas.DataFrame":
        return [_pandas(str(n), i, value.iloc[:, i]) for i, n in enumerate(value.columns)]
    if kind == "pandas.Series":
        return [_pandas(str(value.name), 0, value)]
    if kind == "polars.DataFrame":
        return [_polars(s.name, i, s) for i, s in enumerate(value.get_columns())]
    if kind == "polars.Series":
        return [_polars(value.name, 0, value)]
    if kind == "pyarrow.Table":
        return [_arrow(n, i, value.column(i)) for i, n in enumerate(value.schema.names)]
    if kind == "numpy.ndarray":
        return [_numpy(str(i), i, value[:, i]) for i in range(value.shape[1])]
    raise ValueError(kind)


def _number(x: Any) -> str:
    """A statistic as text: integers exactly, others to 6 significant digits."""
    if x is None:
        return "NULL"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int) or (hasattr(x, "is_integer") and float(x).is_integer() and abs(x) < 1e15):
        return str(int(x))
    f = float(x)
    return "NaN" if math.isnan(f) else format(f, ".6g")


def _number_stats(lo: Any, hi: Any, mean: Any, median: Any, stdev: Any) -> dict[str, Any]:
    return {
        "number_stats": {
            "min_value": _number(lo),
            "max_value": _number(hi),
            "mean": _number(mean),
            "median": _number(median),
            "stdev": _number(stdev),
        }
    }


def _numeric_display(integer: bool) -> str:
    return "integer" if integer else "floating"


# -- pandas -----------------------------------------------------------------------------


def _pandas(name: str, index: int, s: Any) -> _Column:
    from pandas.api import types as pt  # type: ignore[import-untyped]  # no stubs installed

    dtype = s.dtype
    # an object column says nothing by its dtype: look at what it holds (O(rows), as the
    # statistics themselves are)
    inferred = pt.infer_dtype(s, skipna=True) if pt.is_object_dtype(dtype) else ""
    if pt.is_bool_dtype(dtype) or inferred == "boolean":
        display = "boolean"
    elif pt.is_numeric_dtype(dtype):
        display = _numeric_display(pt.is_integer_dtype(dtype))
    elif pt.is_datetime64_any_dtype(dtype):
        display = "datetime"
    elif inferred in ("integer", "floating"):
        display = _numeric_display(inferred == "integer")
    elif pt.is_string_dtype(dtype) and inferred in ("", "string", "empty"):
        display = "string"
    else:
        display = "object"

    def stats() -> dict[str, Any]:
        if display == "boolean":
            return {
                "boolean_stats": {
                    "true_count": int(s.eq(True).sum()),
                    "false_count": int(s.eq(False).sum()),
                }
            }
        if display in ("integer", "floating"):
            return _number_stats(s.min(), s.max(), s.mean(), s.median(), s.std())
        if display == "string":
            return {
                "string_stats": {"num_empty": int((s == "").sum()), "num_unique": int(s.nunique())}
            }
        if display == "datetime":
            return {
                "datetime_stats": {
                    "num_unique": int(s.nunique()),
                    "min_date": str(s.min()),
                    "max_date": str(s.max()),
                }
            }
        return {"other_stats": {"num_unique": int(s.nunique())}}

    return _Column(name, index, str(dtype), display, lambda: int(s.isna().sum()), stats)


# -- polars -----------------------------------------------------------------------------


def _polars(name: str, index: int, s: Any) -> _Column:
    dtype = s.dtype
    if str(dtype) == "Boolean":
        display = "boolean"
    elif dtype.is_numeric():
        display = _numeric_display(dtype.is_integer())
    elif dtype.is_temporal():
        display = "datetime"
    elif str(dtype) in ("String", "Utf8"):
        display = "string"
    else:
        display = "object"

    def stats() -> dict[str, Any]:
        if display == "boolean":
            return {"boolean_stats": {"true_count": int(s.sum()), "false_count": int((~s).sum())}}
        if display in ("integer", "floating"):
            return _number_stats(s.min(), s.max(), s.mean(), s.median(), s.std())
        if display == "string":
            return {
                "string_stats": {
                    "num_empty": int((s == "").sum()),
                    "num_unique": int(s.drop_nulls().n_unique()),
                }
            }
        if display == "datetime":
            return {
                "datetime_stats": {
                    "num_unique": int(s.drop_nulls().n_unique()),
                    "min_date": str(s.min()),
                    "max_date": str(s.max()),
                }
            }
        return {"other_stats": {"num_unique": int(s.n_unique())}}

    return _Column(name, index, str(dtype), display, lambda: int(s.null_count()), stats)


# -- pyarrow ----------------------------------------------------------------------------


def _arrow(name: str, index: int, a: Any) -> _Column:
    import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no types
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    t = a.type
    if pa.types.is_boolean(t):
        display = "boolean"
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        display = "decimal" if pa.types.is_decimal(t) else _numeric_display(pa.types.is_integer(t))
    elif pa.types.is_temporal(t):
        display = "datetime"
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        display = "string"
    else:
        display = "object"

    def stats() -> dict[str, Any]:
        if display == "boolean":
            trues = pc.sum(a).as_py() or 0
            return {
                "boolean_stats": {
                    "true_count": int(trues),
                    "false_count": int(len(a) - a.null_count - trues),
                }
            }
        if display in ("integer", "floating", "decimal"):
            bounds = pc.min_max(a).as_py()
            median = pc.quantile(a, q=0.5).to_pylist()
            return _number_stats(
                bounds["min"],
                bounds["max"],
                pc.mean(a).as_py(),
                median[0] if median else None,
                pc.stddev(a, ddof=1).as_py(),
            )
        if display == "string":
            empty = pc.sum(pc.equal(a, "")).as_py() or 0
            unique = pc.count_distinct(a, mode="only_valid").as_py()
            return {"string_stats": {"num_empty": int(empty), "num_unique": int(unique)}}
        return {"other_stats": {"num_unique": int(pc.count_distinct(a, mode="only_valid").as_py())}}

    return _Column(name, index, str(t), display, lambda: int(a.null_count), stats)


# -- numpy ------------------------------------------------------------------------------


def _numpy(name: str, index: int, column: Any) -> _Column:
    import numpy as np

    kind = column.dtype.kind
    display = {
        "b": "boolean",
        "i": "integer",
        "u": "integer",
        "f": "floating",
        "U": "string",
        "M": "datetime",
    }.get(kind, "object")

    def nulls() -> int:
        return int(np.isnan(column).sum()) if kind == "f" else 0

    def stats() -> dict[str, Any]:
        if display == "boolean":
            trues = int(column.sum())
            return {"boolean_stats": {"true_count": trues, "false_count": int(column.size - trues)}}
        if display in ("integer", "floating"):
            return _number_stats(
                np.nanmin(column),
                np.nanmax(column),
                np.nanmean(column),
                np.nanmedian(column),
                np.nanstd(column, ddof=1) if column.size > 1 else None,
            )
        if display == "string":
            return {
                "string_stats": {
                    "num_empty": int((column == "").sum()),
                    "num_unique": int(np.unique(column).size),
                }
            }
        return {"other_stats": {"num_unique": len(set(column.tolist()))}}

    return _Column(name, index, str(column.dtype), display, nulls, stats)
