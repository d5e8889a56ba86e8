"""Row filters -> one boolean mask over the unfiltered table.

Each filter is checked and turned into a mask on its own; a filter that cannot apply
(unknown column, wrong type, operand that does not coerce) comes back with `is_valid`
false and an `error_message`, and the others still apply. Masks combine left to right
with each filter's `condition` (`and`/`or`; the first filter's is ignored). Operands
travel as strings and are coerced to the column's type here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]
from mpkernel_workers.data_explorer.protocol import NUMERIC_DISPLAY, RowFilter
from mpkernel_workers.data_explorer.tables import Column, Table

COMPARE_OPS = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


class FilterError(ValueError):
    """This filter cannot apply; its message goes back in `error_message`."""


def apply_filters(
    table: Table, filters: list[RowFilter]
) -> tuple[pa.ChunkedArray | None, list[RowFilter]]:
    """(mask or None when no valid filter, the filters as the backend now holds them)."""
    mask: pa.ChunkedArray | None = None
    out: list[RowFilter] = []
    for f in filters:
        f = RowFilter(**f)  # a copy: the caller's filter is left as sent
        try:
            this = filter_mask(table, f)
        except FilterError as e:
            f["is_valid"] = False
            f["error_message"] = str(e)
            out.append(f)
            continue
        f["is_valid"] = True
        f.pop("error_message", None)
        out.append(f)
        if mask is None:
            mask = this
        elif f.get("condition") == "or":
            mask = pc.or_(mask, this)
        else:
            mask = pc.and_(mask, this)
    return mask, out


def find_column(table: Table, f: RowFilter) -> Column:
    schema = f.get("column_schema") or {}
    index = schema.get("column_index")
    if not isinstance(index, int) or not 0 <= index < table.num_columns:
        raise FilterError(f"no column at index {index!r}")
    column = table.columns[index]
    name = schema.get("column_name")
    if name is not None and name != column.name:
        raise FilterError(f"column {name!r} is no longer at index {index}")
    return column


def filter_mask(table: Table, f: RowFilter) -> pa.ChunkedArray:
    """A mask with no nulls: True where the row passes."""
    column = find_column(table, f)
    kind = f.get("filter_type")
    params = f.get("params") or {}
    arr = column.array
    if kind in ("is_null", "not_null"):
        missing = pc.is_null(arr, nan_is_null=column.nan_is_null)
        return missing if kind == "is_null" else pc.invert(missing)
    if kind in ("is_empty", "not_empty"):
        _require(column, {"string"}, kind)
        # Missing is neither empty nor not empty (as in SQL and polars).
        return pc.fill_null(
            pc.equal(pc.utf8_length(arr), 0)
            if kind == "is_empty"
            else pc.not_equal(pc.utf8_length(arr), 0),
            False,
        )
    if kind in ("is_true", "is_false"):
        _require(column, {"boolean"}, kind)
        return pc.fill_null(pc.equal(arr, kind == "is_true"), False)
    if kind == "compare":
        op = params.get("op")
        if op not in COMPARE_OPS:
            raise FilterError(f"unknown comparison {op!r}")
        _require(column, NUMERIC_DISPLAY | {"string", "date", "datetime", "boolean"}, kind)
        value = coerce(column, params.get("value"))
        return pc.fill_null(COMPARE_OPS[op](arr, value), False)
    if kind in ("between", "not_between"):
        _require(column, NUMERIC_DISPLAY | {"date", "datetime", "string"}, kind)
        left = coerce(column, params.get("left_value"))
        right = coerce(column, params.get("right_value"))
        if kind == "between":
            inside = pc.and_(pc.greater_equal(arr, left), pc.less_equal(arr, right))
            return pc.fill_null(inside, False)
        outside = pc.or_(pc.less(arr, left), pc.greater(arr, right))
        return pc.fill_null(outside, False)
    if kind == "search":
        _require(column, {"string"}, kind)
        return _search(arr, params)
    if kind == "set_membership":
        values = params.get("values")
        if not isinstance(values, list):
            raise FilterError("set_membership needs a list of values")
        _require(column, NUMERIC_DISPLAY | {"string", "boolean", "date", "datetime"}, kind)
        coerced = [coerce(column, v) for v in values]
        value_set = pa.array([v.as_py() for v in coerced], type=arr.type)
        member = pc.is_in(arr, value_set=value_set)
        if params.get("inclusive", True):
            return pc.fill_null(member, False)
        if table.kind == "pandas":
            # pandas' `~isin`: a missing value is in no set, so "not in" keeps it.
            return pc.invert(pc.fill_null(member, False))
        # polars' `~is_in` leaves a missing value missing, and a missing mask entry drops it.
        return pc.and_(pc.invert(member), pc.is_valid(arr))
    raise FilterError(f"unsupported filter type {kind!r}")


def _require(column: Column, displays: set[str] | frozenset[str], kind: Any) -> None:
    if column.display not in displays:
        raise FilterError(f"{kind} filter does not apply to {column.display} column")


def _search(arr: pa.ChunkedArray, params: dict[str, Any]) -> pa.ChunkedArray:
    term = params.get("term")
    if not isinstance(term, str):
        raise FilterError("search needs a string term")
    how = params.get("search_type")
    ignore = not params.get("case_sensitive", False)
    if how in ("contains", "not_contains"):
        found = pc.match_substring(arr, term, ignore_case=ignore)
    elif how == "starts_with":
        found = pc.starts_with(arr, term, ignore_case=ignore)
    elif how == "ends_with":
        found = pc.ends_with(arr, term, ignore_case=ignore)
    elif how == "regex_match":
        try:
            re.compile(term)
        except re.error as e:
            raise FilterError(f"invalid regular expression: {e}") from e
        try:
            found = pc.match_substring_regex(arr, term, ignore_case=ignore)
        except pa.ArrowInvalid as e:
            raise FilterError(f"invalid regular expression: {e}") from e
    else:
        raise FilterError(f"unknown search type {how!r}")
    # Missing values match no search, `not_contains` included.
    return pc.fill_null(pc.invert(found) if how == "not_contains" else found, False)


def coerce(column: Column, text: Any) -> pa.Scalar:
    """The operand `text` (a string, as Positron sends it) as a scalar of the column's type."""
    if not isinstance(text, str):
        text = str(text) if isinstance(text, (int, float, bool)) else None
    if text is None:
        raise FilterError("missing filter value")
    t = column.type
    try:
        if column.display == "integer":
            try:
                return pa.scalar(int(text), t)
            except (ValueError, pa.ArrowInvalid):
                return pa.scalar(float(text))
        if column.display in ("floating", "decimal"):
            return (
                pa.scalar(float(text)).cast(t)
                if column.display == "floating"
                else pa.scalar(float(text))
            )
        if column.display == "boolean":
            low = text.strip().lower()
            if low not in ("true", "false"):
                raise FilterError(f"{text!r} is not true or false")
            return pa.scalar(low == "true")
        if column.display == "datetime":
            value = dt.datetime.fromisoformat(text.strip())
            if t.tz and value.tzinfo is None:
                import zoneinfo

                value = value.replace(tzinfo=zoneinfo.ZoneInfo(t.tz))
            elif not t.tz and value.tzinfo is not None:
                value = value.replace(tzinfo=None)
            return pa.scalar(value, pa.timestamp("us", t.tz)).cast(t)
        if column.display == "date":
            return pa.scalar(dt.date.fromisoformat(text.strip()[:10])).cast(t)
        if column.display == "string":
            return pa.scalar(text, t)
    except (ValueError, OverflowError, pa.ArrowInvalid) as e:
        raise FilterError(f"{text!r} is not a valid {column.display} value") from e
    raise FilterError(f"cannot compare a {column.display} column")
