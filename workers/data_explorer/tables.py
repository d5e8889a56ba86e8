"""Any supported table -> one internal representation: a tuple of Arrow columns.

Why Arrow: polars and pyarrow data are Arrow already (zero copy), pandas' numeric,
datetime and (pandas 3) string columns map onto Arrow buffers without a copy, and
`pyarrow.compute` gives sort, filters and statistics over all of them with one code path.
Measured on a 10M x 10 frame: converting is a few milliseconds for pandas numerics
(column views of the 2-D block) and polars numerics (`to_arrow`); polars strings are
converted from views to large strings (about 60 ms a column), which pyarrow's kernels
need. docs/data_explorer.md says how the table reaches the worker.

Each table library is imported only when an object of its own is converted, so a worker
without polars still serves pandas. pyarrow itself is required.

The original library's missing-value convention is kept per column (`null_code`,
`nan_is_null`): pandas counts NaN as missing, polars and Arrow do not.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]
from mpkernel_workers.api import forked_from_kernel
from mpkernel_workers.data_explorer.protocol import (
    VALUE_NA,
    VALUE_NAN,
    VALUE_NAT,
    VALUE_NONE,
    VALUE_NULL,
    DisplayType,
)

Kind = Literal["pandas", "polars", "arrow", "numpy"]

# Where polars is installed, the heavy work on big tables (sorting, number statistics,
# distinct counts) goes to it: about twice as fast on two cores, with the same answers.
# Below this many rows pyarrow is quick enough and a worker need not import polars.
POLARS_MIN_ROWS = 200_000
HAVE_POLARS = importlib.util.find_spec("polars") is not None


def allocate_for_a_shared_table() -> None:
    """In a worker forked from the kernel: Arrow allocates through malloc, which gives a
    freed column-sized buffer back to the system at once, where Arrow's own allocator
    keeps its threads' freed pages (measured: 340 MiB kept after all-column profiles of a
    10M-row table, 113 MiB with malloc, its sort positions included)."""
    pa.set_memory_pool(pa.system_memory_pool())


def release_unused_memory() -> None:
    """Give back what Arrow's allocator keeps of freed buffers (after a sort, a filter or
    profiles): a worker that shares its table with the kernel should own only what it
    holds, not the high-water mark of its temporaries."""
    pa.default_memory_pool().release_unused()


def polars_for(num_rows: int) -> bool:
    """Whether work over `num_rows` rows goes to polars (never in a worker forked from
    the kernel, where polars' thread pool does not exist)."""
    return HAVE_POLARS and num_rows >= POLARS_MIN_ROWS and not forked_from_kernel()


class UnsupportedTable(TypeError):
    """The object is not a table this explorer can show."""


class _Deferred:
    """A column whose Arrow form for whole-column computations is built on first need and
    then kept (`whole`); pages are taken from the source as it is (`take`)."""

    def __init__(self, length: int) -> None:
        self._length = length
        self._converted: pa.ChunkedArray | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._length

    @property
    def converted(self) -> bool:
        """Whether the whole column was converted (and is held) already."""
        return self._converted is not None

    def whole(self) -> pa.ChunkedArray:
        with self._lock:
            if self._converted is None:
                self._converted = self._convert()
            return self._converted

    def _convert(self) -> pa.ChunkedArray:
        raise NotImplementedError


class StringViews(_Deferred):
    """A column of Arrow string views (polars' strings, taken without a copy), converted
    to large strings only when a whole-column computation needs it (pyarrow's kernels do
    not take views): a page is gathered from the views, row by row, so opening a table,
    paging through it or following an edit converts nothing, and the worker owns a copy
    of a string column only once the user sorts, filters or profiles it."""

    type = pa.large_string()  # what `whole` and `take` give

    def __init__(self, views: pa.ChunkedArray) -> None:
        super().__init__(len(views))
        self._views = views

    @property
    def views(self) -> pa.ChunkedArray:
        """The views themselves, for the few kernels that take them."""
        return self._views

    def _convert(self) -> pa.ChunkedArray:
        return pc.cast(self._views, pa.large_string())

    def take(self, rows: pa.Array) -> pa.Array:
        if self._converted is not None:
            return self._converted.take(rows)
        views = self._views
        parts = [views.slice(r, 1) for r in rows.to_pylist()]
        if not parts:
            return pa.array([], pa.large_string())
        taken = pa.chunked_array([c for p in parts for c in p.chunks], views.type)
        return pc.cast(taken, pa.large_string()).combine_chunks()


class Temporal(_Deferred):
    """A datetime64 or timedelta64 column of a pandas frame (the frame's own numpy values),
    converted to Arrow only when a whole-column computation needs it: finding NaT reads
    every value (about 16 ms for 10M rows), so a page is converted from its own rows and
    opening a table converts nothing."""

    def __init__(self, values: Any) -> None:
        super().__init__(len(values))
        self._values = values
        self.type: pa.DataType = pa.from_numpy_dtype(values.dtype)

    def _convert(self) -> pa.ChunkedArray:
        return pa.chunked_array([_datetime_array(self._values)], self.type)

    def take(self, rows: pa.Array) -> pa.Array | pa.ChunkedArray:
        if self._converted is not None or rows.null_count:
            return self.whole().take(rows)
        return _datetime_array(self._values[rows.to_numpy()])


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    source: pa.ChunkedArray | StringViews | Temporal
    type_name: str  # the source library's own name for the type
    display: DisplayType
    null_code: int  # the special value code a missing entry is shown with
    nan_is_null: bool  # NaN counts as missing (pandas)
    # A mixed pandas object column's own values (a reference, no copy): `source` holds
    # their text for sorting and filtering, pages are formatted from these.
    objects: Any = None

    @property
    def array(self) -> pa.ChunkedArray:
        """The whole column, as pyarrow's kernels take it (string views converted)."""
        source = self.source
        return source if isinstance(source, pa.ChunkedArray) else source.whole()

    @property
    def type(self) -> pa.DataType:
        return self.source.type

    def __len__(self) -> int:
        return len(self.source)

    def take(self, rows: pa.Array) -> pa.Array | pa.ChunkedArray:
        """The values at `rows` (a page), without converting a whole string column."""
        return self.source.take(rows)

    @property
    def timezone(self) -> str | None:
        t = self.type
        return t.tz if pa.types.is_timestamp(t) and t.tz else None


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[Column, ...]
    num_rows: int
    kind: Kind
    row_labels: Any = None  # the pandas index, when there is one worth showing

    @property
    def num_columns(self) -> int:
        return len(self.columns)

    def signature(self) -> tuple[tuple[str, str], ...]:
        """What a schema_update is about: names and types, in order."""
        return tuple((c.name, c.type_name) for c in self.columns)


def library_of(obj: Any) -> Kind | None:
    """Which supported library `obj` belongs to, judged without importing any."""
    module = type(obj).__module__.split(".", 1)[0]
    name = type(obj).__name__
    if module == "pandas" and name in ("DataFrame", "Series"):
        return "pandas"
    if module == "polars" and name in ("DataFrame", "Series"):
        return "polars"
    if module == "pyarrow" and name in ("Table", "RecordBatch"):
        return "arrow"
    if module == "numpy" and name == "ndarray" and getattr(obj, "ndim", 0) in (1, 2):
        return "numpy"
    return None


def from_object(obj: Any) -> Table:
    kind = library_of(obj)
    if kind == "pandas":
        return _from_pandas(obj)
    if kind == "polars":
        return _from_polars(obj)
    if kind == "arrow":
        table = pa.Table.from_batches([obj]) if isinstance(obj, pa.RecordBatch) else obj
        cols = tuple(
            _column(str(n), c, str(c.type), VALUE_NULL, False)
            for n, c in zip(table.column_names, table.columns, strict=False)
        )
        return Table(cols, table.num_rows, "arrow")
    if kind == "numpy":
        return _from_numpy(obj)
    raise UnsupportedTable(f"cannot explore a {type(obj).__module__}.{type(obj).__name__}")


def display_type(t: pa.DataType) -> DisplayType:
    if pa.types.is_dictionary(t):
        return display_type(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "floating"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "interval"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "array"
    if pa.types.is_struct(t):
        return "struct"
    if pa.types.is_null(t):
        return "unknown"
    return "object"


def _column(
    name: str, data: pa.Array | pa.ChunkedArray, type_name: str, null_code: int, nan: bool
) -> Column:
    array = data if isinstance(data, pa.ChunkedArray) else pa.chunked_array([data], data.type)
    if pa.types.is_dictionary(array.type):
        # Categoricals: compute kernels (compare, is_in, sort) want plain values.
        array = pc.cast(array, array.type.value_type)
    if pa.types.is_string_view(array.type):
        return Column(name, StringViews(array), type_name, "string", null_code, nan)
    # An object column shows as what its values are (Positron infers the same way).
    display = display_type(array.type)
    return Column(name, array, type_name, display, null_code, nan)


# -- pandas --------------------------------------------------------------------------------
def _from_pandas(obj: Any) -> Table:
    import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs not installed

    frame = (
        obj.to_frame(name="unnamed" if obj.name is None else obj.name)
        if isinstance(obj, pd.Series)
        else obj
    )
    cols = tuple(
        _pandas_column(_label(name), frame.iloc[:, i]) for i, name in enumerate(frame.columns)
    )
    index = frame.index
    default_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    return Table(cols, len(frame), "pandas", None if default_index else index)


def _label(name: Any) -> str:
    if isinstance(name, tuple):
        return " ".join(str(part) for part in name)
    return str(name)


def _pandas_column(name: str, series: Any) -> Column:
    import numpy as np

    dtype = series.dtype
    type_name = str(dtype)
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biuf":
            # NaN stays NaN (not null) so that it is shown as NaN; a view, no copy.
            return _column(name, pa.array(series.to_numpy()), type_name, VALUE_NAN, True)
        if dtype.kind in "mM":
            values = Temporal(series.to_numpy())
            return Column(name, values, type_name, display_type(values.type), VALUE_NAT, False)
        return _object_column(name, series.to_numpy(), _inferred_type_name(series))
    na_value = getattr(dtype, "na_value", None)
    code = VALUE_NAN if isinstance(na_value, float) and math.isnan(na_value) else VALUE_NA
    if type_name.startswith("datetime64"):
        code = VALUE_NAT
    try:
        data = pa.array(series, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return _object_column(name, series.to_numpy(dtype=object), type_name)
    return _column(name, data, type_name, code, False)


def _datetime_array(values: Any) -> pa.Array:
    """A datetime64 or timedelta64 column as Arrow, NaT as null, sharing the data: pyarrow's
    own conversion finds NaT value by value, about three times slower (40 ms for 10M rows),
    and opening a view converts every such column before its first page."""
    import numpy as np

    ints = values.view(np.int64)
    nat = ints == np.iinfo(np.int64).min
    return pa.array(ints, type=pa.from_numpy_dtype(values.dtype), mask=nat)


# An object column is named by what it holds (pandas' `infer_dtype`: "string", "integer",
# "mixed", ...), judged on at most this many rows: about 10 ms a column, where the
# conversion to Arrow that follows reads every row anyway.
INFER_TYPE_ROWS = 1_000_000


def _inferred_type_name(series: Any) -> str:
    from pandas.api.types import infer_dtype  # type: ignore[import-untyped]

    inferred = str(infer_dtype(series.iloc[:INFER_TYPE_ROWS], skipna=True))
    return "bool" if inferred == "boolean" else inferred


def _object_column(name: str, values: Any, type_name: str) -> Column:
    try:
        data = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Mixed Python objects: shown by their str(), missing ones kept missing.
        data = pa.array([None if _missing(v) else str(v) for v in values], pa.large_string())
        return Column(
            name, pa.chunked_array([data]), type_name, "object", VALUE_NONE, False, values
        )
    return _column(name, data, type_name, VALUE_NONE, False)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# -- polars ---------------------------------------------------------------------------------
def _from_polars(obj: Any) -> Table:
    import polars as pl

    frame = obj.to_frame() if isinstance(obj, pl.Series) else obj
    # Arrow's newest level exports polars' buffers as they are (strings as views, no
    # copy); the default level converts strings on polars' thread pool, which does not
    # exist in a worker forked from a kernel that used polars: that call would never
    # return. pyarrow then converts the views (`_column`).
    newest = getattr(getattr(pl, "CompatLevel", None), "newest", None)
    arrow = frame.to_arrow(compat_level=newest()) if newest is not None else frame.to_arrow()
    cols = tuple(
        _column(name, arrow.column(i), str(dtype), VALUE_NULL, False)
        for i, (name, dtype) in enumerate(frame.schema.items())
    )
    return Table(cols, frame.height, "polars")


# -- numpy ----------------------------------------------------------------------------------
def _from_numpy(obj: Any) -> Table:
    matrix = obj.reshape(-1, 1) if obj.ndim == 1 else obj
    type_name = str(obj.dtype)
    cols = []
    for j in range(matrix.shape[1]):
        values = matrix[:, j]
        if obj.dtype.kind in "biufmM":
            code = VALUE_NAT if obj.dtype.kind in "mM" else VALUE_NAN
            cols.append(_column(str(j), pa.array(values), type_name, code, obj.dtype.kind == "f"))
        else:
            cols.append(_object_column(str(j), values, type_name))
    return Table(tuple(cols), matrix.shape[0], "numpy")
