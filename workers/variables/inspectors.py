"""What the variables pane shows of a value: its `Variable` row, its children when it is
expanded, one step down a path, its clipboard text, and a table's summary.

Facts followed (notes 5.2, Positron's inspector tests): kinds, display types such as
`list [3]`, `tuple (2)`, `set {4}`, `numpy.int64 (2, 3)`, `DataFrame [3x2]`, `int64 [2]`;
display values truncated by `formatting`; tables report their number of columns as their
length and a viewer. Where this differs from Positron it is on purpose: sizes are bytes
(`nbytes`, `memory_usage`), sets expand by position, a pandas Series, a polars Series and
a pyarrow Table are all tables with a viewer, and a collection cut at 60 items shows 60.

Cost: `describe` reads lengths, shapes, dtypes and buffer sizes and formats a bounded head,
so a list of a million dicts or a 10M-row frame is described in about the time of a small
one. User code (`__repr__`, `__len__`, properties) runs here, so `describe` never raises:
a failure becomes the display value.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import numbers
import sys
import types
from collections.abc import Mapping, Sequence, Set
from html import escape
from itertools import islice
from typing import Any

from mpkernel_workers.variables import previews, tables
from mpkernel_workers.variables.access_keys import OpaqueKey, Position, encode_key, matches
from mpkernel_workers.variables.formatting import (
    ELLIPSIS,
    MAX_ITEMS_BY_LEVEL,
    Display,
    collection_display,
    map_display,
    qualified_name,
    safe_repr,
    string_display,
    truncate,
)
from mpkernel_workers.variables.protocol import (
    MAX_CHILDREN,
    QueryTableSummaryResult,
    Variable,
    VariableKind,
)
from mpkernel_workers.variables.summary import table_summary as _table_summary

__all__ = [
    "Raised",
    "child",
    "children",
    "clipboard",
    "describe",
    "is_table",
    "resolve",
    "table_summary",
]

log = logging.getLogger(__name__)


def is_table(value: object) -> bool:
    if isinstance(value, previews.Preview):
        return previews.is_table(value)
    return tables.is_table(value)


# past this many dimensions even a summarised array2string prints 18**ndim items
_ARRAY_MAX_NDIM = 4
_CONNECTIONS = {
    "sqlite3.Connection",
    "sqlalchemy.engine.base.Engine",
    "duckdb.DuckDBPyConnection",
    "duckdb.duckdb.DuckDBPyConnection",
}


class Raised:
    """The child shown for an attribute whose evaluation raised (a property, usually)."""

    __slots__ = ("error", "name")

    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name
        self.error = error

    def __repr__(self) -> str:
        try:
            message = str(self.error)
        except Exception:  # noqa: BLE001 - an exception's own __str__ is user code too
            message = "?"
        return f"<{self.name} raised {type(self.error).__name__}: {message}>"


# -- classification ---------------------------------------------------------------------


def _category(value: object) -> str:
    """One word for how the pane treats `value`: a table family or a Python shape."""
    found = tables.family(value)
    if found is not None:
        return found
    if value is None:
        return "none"
    if isinstance(value, Raised):
        return "raised"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, memoryview):
        return "memoryview"
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return "scalar"  # pandas' Timestamp and Timedelta too: values, not containers
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, type):
        return "class"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, Set):
        return "set"
    if isinstance(value, range):
        return "range"
    if isinstance(value, tuple):
        return "tuple"
    if isinstance(value, Sequence):
        return "sequence"
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, property):
        return "property"
    if inspect.isroutine(value):
        return "function"
    if qualified_name(type(value)) in _CONNECTIONS:
        return "connection"
    return "object"


_KINDS: dict[str, VariableKind] = {
    "none": "empty",
    "bool": "boolean",
    "str": "string",
    "bytes": "bytes",
    "memoryview": "bytes",
    "number": "number",
    "class": "class",
    "map": "map",
    "set": "collection",
    "range": "collection",
    "tuple": "collection",
    "sequence": "collection",
    "function": "function",
    "connection": "connection",
    "pandas.DataFrame": "table",
    "pandas.Series": "table",
    "pandas.Index": "map",
    "polars.DataFrame": "table",
    "polars.Series": "table",
    "polars.LazyFrame": "lazy",
    "pyarrow.Table": "table",
    "pyarrow.Array": "collection",
    "numpy.ndarray": "collection",
}


def _kind(value: Any, category: str) -> VariableKind:
    if category == "numpy.ndarray" and value.ndim == 0:
        return "number"
    if category == "numpy.generic":
        return _KINDS[_category(value.item())] if value.ndim == 0 else "other"
    return _KINDS.get(category, "other")


# -- display value ----------------------------------------------------------------------


def _display(value: Any, level: int) -> Display:
    """The display value of `value` at nesting `level` (0: on its own)."""
    try:
        return _display_unsafe(value, _category(value), level)
    except Exception as e:  # noqa: BLE001 - user code (len, iteration, item access) ran
        return truncate(
            f"<{qualified_name(type(value))}: display raised {type(e).__name__}>", level
        )


def _display_unsafe(value: Any, category: str, level: int) -> Display:
    if category in ("str", "bytes"):
        return string_display(value, level)
    if category in ("none", "bool"):
        return str(value), False
    if category == "number":
        return truncate(_number_text(value), level)
    if category == "numpy.generic":
        return truncate(safe_repr(value.item()) if value.ndim == 0 else safe_repr(value), level)
    if category == "class":
        return truncate(str(value), level)
    if category == "function":
        return truncate(
            f"{getattr(value, '__qualname__', safe_repr(value))}{_signature(value)}", level
        )
    if category == "map":
        return map_display(_pairs(value), len(value), level, _display, parent=value)
    if category == "range":
        return truncate(repr(value), level)
    if category in ("set", "tuple", "sequence"):
        prefix, suffix = _brackets(value, category)
        return collection_display(
            iter(value),
            len(value),
            prefix,
            suffix,
            level,
            _display,
            parent=value,
            one_tuple=category == "tuple",
        )
    if category == "numpy.ndarray":
        return _array_display(value, level)
    if category in tables.FRAMES:
        rows, cols = tables.shape(value, category)
        text, _ = truncate(f"[{rows} rows x {cols} columns] {tables.short_name(value)}", level)
        return text, True  # a frame's one line never shows its data
    if category == "pandas.Index" and tables.short_name(value) == "pandas.RangeIndex":
        return truncate(repr(value), level)
    if category in tables.COLUMNS:
        allowance = MAX_ITEMS_BY_LEVEL[level] if level < len(MAX_ITEMS_BY_LEVEL) else 0
        return collection_display(
            iter(tables.head(value, category, allowance)),
            len(value),
            f"{tables.short_name(value)} [",
            "]",
            level,
            _display,
        )
    return truncate(safe_repr(value), level)


def _number_text(value: object) -> str:
    try:
        return str(value)
    except ValueError:
        # an int past sys.get_int_max_str_digits() cannot be printed in decimal
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else safe_repr(value)


def _signature(value: object) -> str:
    try:
        return str(inspect.signature(value))  # type: ignore[arg-type]  # any routine
    except (TypeError, ValueError):
        return "(...)"  # builtins without a text signature


def _brackets(value: object, category: str) -> tuple[str, str]:
    if category == "set":
        if len(value) == 0:  # type: ignore[arg-type]  # a Set
            return f"{type(value).__name__}(", ")"
        return "{", "}"
    if category == "tuple":
        return "(", ")"
    return "[", "]"


def _pairs(mapping: Mapping[object, object]) -> Any:
    for key in mapping:
        try:
            yield key, mapping[key]
        except Exception as e:  # noqa: BLE001 - a user mapping's __getitem__
            yield key, Raised(f"[{safe_repr(key)}]", e)


def _array_display(value: Any, level: int) -> Display:
    if level >= len(MAX_ITEMS_BY_LEVEL):
        return f"numpy.array({ELLIPSIS})", True
    if value.ndim > _ARRAY_MAX_NDIM:
        return f"numpy.array(shape={value.shape}, dtype={value.dtype})", True
    import numpy as np

    text, _ = truncate(
        np.array2string(
            # numpy's print options as Positron sets them for the pane
            value,
            max_line_width=1000,
            threshold=20,
            edgeitems=9,
            separator=",",
        ),
        level,
    )
    return text, True


# -- the Variable row -------------------------------------------------------------------


def describe(
    name: object, value: object, *, nested: bool = False, updated_time: int = 0
) -> Variable:
    """The pane's row for `value` under `name` (a variable name or a child's key)."""
    level = 1 if nested else 0
    try:
        return _describe(name, value, level, updated_time)
    except Exception as e:  # user objects may raise anything: the row says so
        log.debug("describing %s failed", type(value), exc_info=True)
        text, cut = truncate(
            f"<{qualified_name(type(value))}: cannot be described: {type(e).__name__}: {e}>", level
        )
        return _row(
            name, value, text, cut, type(value).__name__, "other", 0, 0, False, False, updated_time
        )


def _describe(name: object, value: Any, level: int, updated_time: int) -> Variable:
    if isinstance(value, previews.Preview):
        row = _describe(name, value.head, level, updated_time)
        text, cut, kind, length, size = previews.display(value, level, row["display_value"])
        row["display_value"], row["is_truncated"], row["display_type"] = text, cut, kind
        row["length"], row["size"], row["has_children"] = length, size, length > 0
        row["has_viewer"] = previews.is_table(value)
        return row
    category = _category(value)
    text, cut = _display(value, level)
    length = _length(value, category)
    return _row(
        name,
        value,
        text,
        cut,
        _display_type(value, category, length),
        _kind(value, category),
        _size(value, category),
        length,
        _has_children(value, category, length),
        tables.is_table(value),
        updated_time,
    )


def _row(
    name: object,
    value: object,
    text: str,
    cut: bool,
    display_type: str,
    kind: VariableKind,
    size: int,
    length: int,
    has_children: bool,
    has_viewer: bool,
    updated_time: int,
) -> Variable:
    return Variable(
        access_key=encode_key(name),
        display_name=_display_name(name),
        display_value=text,
        display_type=display_type,
        type_info=qualified_name(type(value)),
        size=size,
        kind=kind,
        length=length,
        has_children=has_children,
        has_viewer=has_viewer,
        is_truncated=cut,
        updated_time=updated_time,
    )


def _display_name(name: object) -> str:
    # str() of bytes is a BytesWarning (an error under -bb); a key's repr reads the same
    if isinstance(name, (bytes, bytearray)):
        return repr(name)
    try:
        return str(name)
    except Exception:  # noqa: BLE001 - a user key's __str__
        return safe_repr(name)


def _display_type(value: Any, category: str, length: int) -> str:
    name = type(value).__name__
    if category in ("bytes", "memoryview", "map", "sequence", "range"):
        return f"{name} [{length}]"
    if category == "set":
        return f"{name} {{{length}}}"
    if category == "tuple":
        return f"{name} ({length})"
    if category == "number":
        return qualified_name(type(value)).replace("builtins.", "")
    if category == "numpy.generic":
        return f"numpy.{name}"
    if category == "numpy.ndarray":
        if value.ndim == 0:
            return f"numpy.{value.dtype}"
        if value.ndim == 1:
            return f"numpy.{value.dtype} ({value.shape[0]})"
        return f"numpy.{value.dtype} {tuple(value.shape)}"
    if category in tables.FRAMES:
        rows, cols = tables.shape(value, category)
        return f"{name} [{rows}x{cols}]"
    if category in tables.COLUMNS:
        return f"{tables.column_type(value, category)} [{length}]"
    return name


def _length(value: Any, category: str) -> int:
    if category in ("str", "bytes", "memoryview", "map", "set", "tuple", "sequence"):
        return len(value)
    if category == "range":
        try:
            return len(value)
        except OverflowError:  # more items than a C ssize_t holds
            return sys.maxsize
    if category in tables.FRAMES:
        return tables.shape(value, category)[1]
    if category in tables.COLUMNS:
        return len(value)
    if category == "numpy.ndarray":
        return int(value.shape[0]) if value.ndim > 0 else 0
    if category in ("class", "object", "connection"):
        return len(_public_names(value))
    return 0


def _size(value: Any, category: str) -> int:
    if category in tables.FRAMES or category in tables.COLUMNS or category == "numpy.ndarray":
        return tables.size(value, category)
    try:
        return sys.getsizeof(value)
    except TypeError:  # some C objects have no size
        return 0


def _has_children(value: Any, category: str, length: int) -> bool:
    if category == "pandas.Index" and tables.short_name(value) == "pandas.RangeIndex":
        return False  # a range of integers says all there is (Positron)
    if category == "numpy.ndarray":
        return bool(value.ndim > 0 and length > 0)
    expandable = {"map", "set", "tuple", "sequence", "class", "object", "connection"}
    return length > 0 and (category in expandable or category in tables.FRAMES + tables.COLUMNS)


def _public_names(value: object) -> list[str]:
    return [n for n in dir(value) if not n.startswith("_")]


# -- children and paths -----------------------------------------------------------------


def children(value: object, limit: int = MAX_CHILDREN) -> tuple[list[tuple[object, object]], int]:
    """The first `limit` (key, child) pairs shown when `value` is expanded, and how many
    there are in all. Keys go into access keys; `child(value, key)` finds them again."""
    if isinstance(value, previews.Preview):
        found = previews.children(value, limit)
        if found is not None:
            return found
        items, _ = children(value.head, limit)
        return items, value.shape[0]
    category = _category(value)
    v: Any = value
    length = _length(v, category)
    if not _has_children(v, category, length):
        return [], 0
    if category == "map":
        return list(islice(_pairs(v), limit)), length
    if category in ("set", "tuple", "sequence"):
        return list(enumerate(islice(iter(v), limit))), length
    if category == "numpy.ndarray":
        return [(i, v[i]) for i in range(min(limit, length))], length
    if category in tables.FRAMES:
        return [
            (k, tables.column(v, category, k)) for k in tables.column_keys(v, category, limit)
        ], length
    if category in tables.COLUMNS:
        count = min(limit, length)
        labels = tables.column_labels(v, category, count)
        return [(Position(i, labels[i]), tables.item(v, category, i)) for i in range(count)], length
    names = _public_names(v)
    return [(n, _attribute(v, n)) for n in names[:limit]], len(names)


def child(value: object, key: object) -> object:
    """The child of `value` under `key`: one step of a path."""
    if isinstance(value, previews.Preview):
        return previews.child(value, key, child)
    category = _category(value)
    v: Any = value
    if category == "map":
        return _map_child(v, key)
    if category in ("set", "tuple", "sequence", "numpy.ndarray") or category in tables.COLUMNS:
        length = _length(v, category)
        if category == "numpy.ndarray" and v.ndim == 0:
            length = 0
        position = _position(key, length, value)
        if category == "set":
            return next(islice(iter(v), position, None))
        if category in tables.COLUMNS:
            return tables.item(v, category, position)
        return v[position]
    if category in tables.FRAMES:
        return tables.column(v, category, key)
    if category in ("class", "object", "connection"):
        if not isinstance(key, str) or key not in dir(v):
            raise LookupError(f"a {type(value).__name__} has no attribute {key!r}")
        return _attribute(v, key)
    raise LookupError(f"a {type(value).__name__} has no children (asked for {key!r})")


def resolve(root: object, keys: Sequence[object]) -> object:
    """The value at the end of the path `keys` from `root`."""
    value = root
    for depth, key in enumerate(keys):
        try:
            value = child(value, key)
        except LookupError as e:
            raise LookupError(f"step {depth + 1} of the path: {e}") from e
    return value


def _map_child(mapping: Any, key: object) -> object:
    if isinstance(key, OpaqueKey):
        for candidate in mapping:
            if matches(candidate, key):
                return mapping[candidate]
        raise LookupError(f"no key of type {key.type_name} shown as {key.text}")
    try:
        present = key in mapping  # `in` first: a defaultdict would insert on lookup
    except TypeError as e:  # an unhashable key
        raise LookupError(f"no key {key!r}: {e}") from e
    if not present:
        raise LookupError(f"no key {key!r}")
    return mapping[key]


def _position(key: object, length: int, value: object) -> int:
    if not isinstance(key, int) or isinstance(key, bool):
        # LookupError, not TypeError: for the caller any bad path step is a missing child
        raise LookupError(f"a {type(value).__name__} is indexed by position, not {key!r}")  # noqa: TRY004
    if not 0 <= key < length:
        raise LookupError(f"position {key} out of range: {type(value).__name__} of {length}")
    return int(key)


def _attribute(value: Any, name: str) -> object:
    """An attribute as the pane shows it: a plain instance attribute as stored, anything
    else (property, slot, method) evaluated once, a failure kept as `Raised`."""
    try:
        stored = vars(value)
    except TypeError:  # no __dict__ (slots, C types)
        stored = {}
    if name in stored:
        return stored[name]
    try:
        return getattr(value, name)
    except Exception as e:  # noqa: BLE001 - a property's user code; the pane shows the error
        return Raised(name, e)


# -- clipboard --------------------------------------------------------------------------


def clipboard(value: object, fmt: str) -> str:
    """`value` as `text/plain` or `text/html` for the clipboard: a table whole, tab
    separated or as an HTML table; anything else its repr."""
    if fmt not in ("text/plain", "text/html"):
        raise ValueError(f"unknown clipboard format {fmt!r}: text/plain or text/html")
    if isinstance(value, previews.Preview):
        value = value.head  # what reached the pane: the first rows
    category = _category(value)
    if category in tables.FRAMES or (category in tables.COLUMNS and category != "pyarrow.Array"):
        if fmt == "text/html":
            html = tables.to_html(value, category)
            if html is not None:
                return html
            return f"<pre>{escape(tables.to_text(value, category))}</pre>"
        return tables.to_text(value, category)
    text = safe_repr(value)
    return escape(text) if fmt == "text/html" else text


def table_summary(value: object, query_types: Sequence[str]) -> QueryTableSummaryResult:
    """Schema and the requested profiles of every column of the table `value`. Of a
    preview: the schema and the whole shape; profiles need every row, which did not
    cross, so they name their columns only (the data explorer profiles the whole)."""
    if isinstance(value, previews.Preview):
        result = _table_summary(value.head, ())
        result["num_rows"] = value.num_rows
        return result
    return _table_summary(value, query_types)
