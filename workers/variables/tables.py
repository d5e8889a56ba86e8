"""What the pane knows about arrays and tables (numpy, pandas, polars, pyarrow), found by
type and module name so that none of those libraries is imported here: a worker without
polars still describes everything else, and describing a polars frame needs only polars.

Every function reads shapes, dtypes and buffer sizes (constant or per-column work) or a
bounded head of the data; none walks all the rows of a frame.
"""

from __future__ import annotations

from typing import Any

from mpkernel_workers.variables.access_keys import Position
from mpkernel_workers.variables.formatting import qualified_name

__all__ = ["family", "is_table", "short_name"]

# (top-level module, class name) -> family, matched along the MRO so subclasses
# (geopandas' GeoDataFrame, numpy's matrix) are known by what they extend
_FAMILIES = {
    ("pandas", "DataFrame"): "pandas.DataFrame",
    ("pandas", "Series"): "pandas.Series",
    ("pandas", "Index"): "pandas.Index",
    ("polars", "DataFrame"): "polars.DataFrame",
    ("polars", "Series"): "polars.Series",
    ("polars", "LazyFrame"): "polars.LazyFrame",
    ("pyarrow", "Table"): "pyarrow.Table",
    ("pyarrow", "RecordBatch"): "pyarrow.Table",
    ("pyarrow", "ChunkedArray"): "pyarrow.Array",
    ("pyarrow", "Array"): "pyarrow.Array",
    ("numpy", "ndarray"): "numpy.ndarray",
    ("numpy", "generic"): "numpy.generic",
}
FRAMES = ("pandas.DataFrame", "polars.DataFrame", "pyarrow.Table")
COLUMNS = ("pandas.Series", "pandas.Index", "polars.Series", "pyarrow.Array")


def family(value: object) -> str | None:
    """Which array or table family `value` belongs to, or None."""
    try:
        mro = type(value).__mro__
    except AttributeError:
        return None
    for cls in mro:
        module = getattr(cls, "__module__", "") or ""
        found = _FAMILIES.get((module.split(".", 1)[0], cls.__name__))
        if found is not None:
            return found
    return None


def is_table(value: object) -> bool:
    """Whether the data explorer can show `value`: a frame, a pandas or polars Series, or
    a two-dimensional numpy array."""
    kind = family(value)
    if kind in (*FRAMES, "pandas.Series", "polars.Series"):
        return True
    return kind == "numpy.ndarray" and getattr(value, "ndim", 0) == 2


def short_name(value: object) -> str:
    """`pandas.DataFrame` rather than `pandas.core.frame.DataFrame` for the libraries'
    public classes; the qualified name for anything else."""
    cls = type(value)
    top = (cls.__module__ or "").split(".", 1)[0]
    if top in ("pandas", "polars", "pyarrow", "numpy", "geopandas"):
        return f"{top}.{cls.__name__}"
    return qualified_name(cls)


def shape(value: Any, kind: str) -> tuple[int, int]:
    """(rows, columns) of a frame."""
    if kind == "pyarrow.Table":
        return int(value.num_rows), int(value.num_columns)
    rows, cols = value.shape
    return int(rows), int(cols)


def size(value: Any, kind: str) -> int:
    """Bytes held, from buffer sizes: shallow for Python objects in a column (a pointer
    each), as `memory_usage(deep=False)` counts them, so the cost is per column."""
    # pandas: the columns' data without the index, as Positron sizes a column (rows x
    # itemsize), so a frame and its columns add up
    if kind == "pandas.DataFrame":
        return int(value.memory_usage(index=False, deep=False).sum())
    if kind == "pandas.Series":
        return int(value.memory_usage(index=False, deep=False))
    if kind == "pandas.Index":
        return int(value.memory_usage(deep=False))
    if kind in ("polars.DataFrame", "polars.Series"):
        return int(value.estimated_size())
    if kind in ("pyarrow.Table", "pyarrow.Array", "numpy.ndarray"):
        return int(value.nbytes)
    raise ValueError(kind)


def head(value: Any, kind: str, n: int) -> list[Any]:
    """The first `n` items of a column as Python objects."""
    if kind == "pandas.Series":
        return list(value.iloc[:n].tolist())
    if kind == "pandas.Index":
        return list(value[:n].tolist())
    if kind == "polars.Series":
        return list(value.head(n).to_list())
    if kind == "pyarrow.Array":
        return list(value.slice(0, n).to_pylist())
    raise ValueError(kind)


def column_type(value: Any, kind: str) -> str:
    """A column's element type as its library spells it (`int64`, `Int64`, `string`)."""
    if kind == "pyarrow.Array":
        return str(value.type)
    return str(value.dtype)


def column_keys(value: Any, kind: str, limit: int) -> list[object]:
    """Keys of a frame's first `limit` columns: positions shown by name (names repeat in
    pandas and Arrow), and names for polars (unique there, and what Positron uses)."""
    if kind == "polars.DataFrame":
        return list(value.columns[:limit])
    names = value.columns[:limit] if kind == "pandas.DataFrame" else value.schema.names[:limit]
    return [Position(i, str(name)) for i, name in enumerate(names)]


def column(value: Any, kind: str, key: object) -> Any:
    """One column of a frame by the key `column_keys` gave."""
    if kind == "polars.DataFrame":
        if not isinstance(key, str):
            raise LookupError(f"a polars column is named by a string, not {key!r}")
        if key not in value.columns:
            raise LookupError(f"no column {key!r}")
        return value.get_column(key)
    if not isinstance(key, int) or isinstance(key, bool):
        # LookupError, not TypeError: for the caller any bad path step is a missing child
        raise LookupError(f"a column is reached by its position, not {key!r}")  # noqa: TRY004
    cols = shape(value, kind)[1]
    if not 0 <= key < cols:
        raise LookupError(f"column {key} out of range: the table has {cols} columns")
    if kind == "pandas.DataFrame":
        return value.iloc[:, key]
    return value.column(key)


def column_labels(value: Any, kind: str, limit: int) -> list[str]:
    """What to call a column's first `limit` items: a pandas Series' index labels (they
    may repeat, so children are still reached by position)."""
    if kind == "pandas.Series":
        return [str(label) for label in value.index[:limit]]
    return [str(i) for i in range(limit)]


def item(value: Any, kind: str, position: int) -> Any:
    """A column's item at `position`, as a Python or numpy scalar."""
    if kind == "pandas.Series":
        return value.iloc[position]
    if kind == "pyarrow.Array":
        return value[position].as_py()
    return value[position]


def to_text(value: Any, kind: str) -> str:
    """The whole frame or column as tab-separated text, for the clipboard."""
    if kind == "pandas.DataFrame":
        return str(value.to_csv(sep="\t"))
    if kind == "pandas.Series":
        return str(value.to_csv(sep="\t"))
    if kind == "pandas.Index":
        return str(value.to_series().to_csv(sep="\t"))
    if kind == "polars.DataFrame":
        return str(value.write_csv(separator="\t"))
    if kind == "polars.Series":
        return str(value.to_frame().write_csv(separator="\t"))
    if kind == "pyarrow.Table":
        return _arrow_tsv(value)
    raise ValueError(kind)


def to_html(value: Any, kind: str) -> str | None:
    """The frame as an HTML table, or None where the library has no such rendering."""
    if kind == "pandas.DataFrame":
        return str(value.to_html())
    if kind == "polars.DataFrame":
        return str(value._repr_html_())
    return None


def _arrow_tsv(table: Any) -> str:
    import io

    import pyarrow.csv as pa_csv  # type: ignore[import-untyped]  # pyarrow ships no types

    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(delimiter="\t"))
    return sink.getvalue().decode("utf-8")
