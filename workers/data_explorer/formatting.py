"""Values -> what the grid shows: strings, or special value codes for missing,
NaN and infinities.

Floats follow Positron's rules (its test suite is the reference): zero and magnitudes in
[1, 10^max_integral_digits) are fixed with `large_num_digits` decimals, magnitudes in
[10^-small_num_digits, 1) fixed with `small_num_digits`, anything else scientific with
`large_num_digits`; the thousands separator applies to the integral part of fixed values
and to integers.
"""

from __future__ import annotations

import datetime
import math
import zoneinfo
from collections.abc import Callable
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
from mpkernel_workers.data_explorer.protocol import (
    VALUE_INF,
    VALUE_NA,
    VALUE_NAN,
    VALUE_NAT,
    VALUE_NEGINF,
    VALUE_NONE,
    ColumnValue,
    FormatOptions,
)
from mpkernel_workers.data_explorer.tables import Column

Formatter = Callable[[Any], ColumnValue]


def float_formatter(options: FormatOptions) -> Callable[[float], ColumnValue]:
    large = options.get("large_num_digits", 2)
    small = options.get("small_num_digits", 4)
    upper = 10.0 ** options.get("max_integral_digits", 7)
    lower = 10.0**-small
    sep = options.get("thousands_sep") or ""
    fixed_large = f"{{:{',' if sep else ''}.{large}f}}"
    fixed_small = f"{{:.{small}f}}"
    sci = f"{{:.{large}E}}"

    def fmt(x: float) -> ColumnValue:
        if math.isnan(x):
            return VALUE_NAN
        if math.isinf(x):
            return VALUE_INF if x > 0 else VALUE_NEGINF
        mag = abs(x)
        if mag == 0 or 1 <= mag < upper:
            text = fixed_large.format(x)
            return text.replace(",", sep) if sep and sep != "," else text
        if lower <= mag < 1:
            return fixed_small.format(x)
        return sci.format(x)

    return fmt


def int_formatter(options: FormatOptions) -> Callable[[int], ColumnValue]:
    sep = options.get("thousands_sep") or ""
    if not sep:
        return str
    if sep == ",":
        return "{:,}".format
    return lambda v: f"{v:,}".replace(",", sep)


def value_formatter(column: Column, options: FormatOptions) -> Formatter:
    """A function from one Python value of `column` (as `to_pylist` gives it) to what the
    grid shows; missing values become the column's null code."""
    null_code = column.null_code
    limit = options.get("max_value_length", 1000)
    display = column.display
    inner: Callable[[Any], ColumnValue]
    if display == "floating":
        inner = float_formatter(options)
    elif display == "integer":
        inner = int_formatter(options)
    else:

        def inner(v: Any) -> ColumnValue:
            text = str(v)
            return text[:limit] if len(text) > limit else text

    def fmt(v: Any) -> ColumnValue:
        if v is None:
            return null_code
        return inner(v)

    return fmt


def format_objects(values: Any, options: FormatOptions) -> list[ColumnValue]:
    """Python values of a mixed object column, each as Positron shows it: a float by the
    float rules (so `2.5` is `2.50`), None, NaN, NaT and NA by their codes, anything else
    by its str()."""
    floats = float_formatter(options)
    limit = options.get("max_value_length", 1000)
    out: list[ColumnValue] = []
    for v in values:
        if v is None:
            out.append(VALUE_NONE)
        elif isinstance(v, float) or type(v).__name__ in ("float16", "float32", "float64"):
            out.append(floats(float(v)))
        elif type(v).__name__ in _MISSING_CODES:
            out.append(_MISSING_CODES[type(v).__name__])
        else:
            text = str(v)
            out.append(text[:limit] if len(text) > limit else text)
    return out


# pandas' missing-value singletons, by type name (pandas need not be imported here).
_MISSING_CODES = {"NaTType": VALUE_NAT, "NAType": VALUE_NA}


def format_array(
    column: Column, values: pa.Array | pa.ChunkedArray, options: FormatOptions
) -> list[ColumnValue]:
    """Format every value of `values` (already taken from `column`)."""
    fmt = value_formatter(column, options)
    return [fmt(v) for v in python_values(values)]


def python_values(values: pa.Array | pa.ChunkedArray) -> list[Any]:
    """`values.to_pylist()`, except that nanosecond timestamps come as their text, written
    as pandas writes a Timestamp. pyarrow would import pandas for them (datetime has no
    nanoseconds): 200 ms in an explorer forked from a kernel that never imported pandas, a
    polars user's, before its first page."""
    kind = values.type
    if not (pa.types.is_timestamp(kind) and kind.unit == "ns"):
        return values.to_pylist()  # type: ignore[no-any-return]
    try:
        zone = None if kind.tz is None else zoneinfo.ZoneInfo(kind.tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return values.to_pylist()  # type: ignore[no-any-return]  # a fixed offset: "+01:00"
    nanos = values.cast(pa.int64()).to_pylist()
    return [None if v is None else _nanosecond_text(v, zone) for v in nanos]


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _nanosecond_text(value: int, zone: datetime.tzinfo | None) -> str:
    micros, nanos = divmod(value, 1000)
    moment = _EPOCH + datetime.timedelta(microseconds=micros)
    moment = moment.replace(tzinfo=None) if zone is None else moment.astimezone(zone)
    if not nanos:
        return moment.isoformat(sep=" ")
    text = moment.isoformat(sep=" ", timespec="microseconds")
    # the offset, if any, follows the 26 characters of "YYYY-MM-DD HH:MM:SS.ffffff"
    return f"{text[:26]}{nanos:03d}{text[26:]}"
