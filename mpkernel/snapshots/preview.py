"""What a big array or table crosses to the workers as: its shape, its size and its head.

The variables pane shows a summary of a frame (type, shape, size) and, on `inspect`, its
columns with their first values; it never needs ten million rows. Sending them would
cost the machine a copy of the user's data for every pane (docs/architecture.md section 4, "Data
size"). So a table or array whose buffers hold at least `PREVIEW_MIN_BYTES` crosses as a
`Preview`: the same library's object cut to its first `PREVIEW_ROWS` rows, plus what the
pane shows of the whole (shape, bytes held per column). Building one costs a slice and the
pickling of a hundred rows, whatever the size of the data.

Whether such a value changed is not decided by hashing its bytes: a cell that names it
(or reaches it through the functions it calls, `names.reach`) may have changed it, and the
preview built after that cell carries a new `generation`, so handlers hear of it. A
viewer that needs the whole table reads it from the kernel's own pages (a forked worker,
`mpkernel.supervision.fork`), or asks the kernel for a copy (`codec.encode_object`).

`build` runs in the main process and only reads attributes and slices; the libraries are
recognised by their module names, never imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

PREVIEW_MIN_BYTES: Final = 16 << 20
PREVIEW_ROWS: Final = 100


@dataclass(frozen=True, slots=True)
class Preview:
    """Stands in a worker for a big array or table of the user's namespace."""

    family: str  # "pandas.DataFrame", "polars.Series", "numpy.ndarray", ...
    head: Any  # the same kind of object, first PREVIEW_ROWS rows (along axis 0)
    shape: tuple[int, ...]  # of the whole value
    nbytes: int  # bytes its buffers hold (shallow: a pointer per Python object)
    column_nbytes: tuple[int, ...]  # per column, for frames; () otherwise
    generation: int  # bumped whenever a cell may have changed the value

    @property
    def num_rows(self) -> int:
        return self.shape[0] if self.shape else 0

    def column(self, index: int) -> Preview:
        """Column `index` of a frame preview, as a preview of a column."""
        kind = _COLUMN_OF[self.family]
        if self.family == "polars.DataFrame":
            head = self.head.to_series(index)
        elif self.family == "pyarrow.Table":
            head = self.head.column(index)
        else:
            head = self.head.iloc[:, index]
        return Preview(kind, head, (self.num_rows,), self.column_nbytes[index], (), self.generation)


_COLUMN_OF: Final = {
    "pandas.DataFrame": "pandas.Series",
    "polars.DataFrame": "polars.Series",
    "pyarrow.Table": "pyarrow.ChunkedArray",
}


def family(value: object) -> str | None:
    """The family of a value a preview can stand for (exact library types and their
    subclasses), or None."""
    for cls in type(value).__mro__:
        top = (getattr(cls, "__module__", "") or "").split(".", 1)[0]
        name = f"{top}.{cls.__name__}"
        if name in _FAMILIES:
            return name
    return None


_FAMILIES: Final = frozenset(
    {
        "pandas.DataFrame",
        "pandas.Series",
        "polars.DataFrame",
        "polars.Series",
        "pyarrow.Table",
        "pyarrow.ChunkedArray",
        "numpy.ndarray",
    }
)


def nbytes(value: Any, kind: str) -> int:
    """Bytes held by `value`'s buffers, read from sizes (no data is walked)."""
    if kind == "pandas.DataFrame":
        return int(value.memory_usage(index=False, deep=False).sum())
    if kind == "pandas.Series":
        return int(value.memory_usage(index=False, deep=False))
    if kind in ("polars.DataFrame", "polars.Series"):
        return int(value.estimated_size())
    return int(value.nbytes)


def build(value: Any, generation: int, min_bytes: int = PREVIEW_MIN_BYTES) -> Preview | None:
    """A preview of `value`, or None when it is not an array or table of at least
    `min_bytes` (it crosses whole)."""
    kind = family(value)
    if kind is None:
        return None
    try:
        size = nbytes(value, kind)
        if size < min_bytes:
            return None
        return _build(value, kind, size, generation)
    except Exception:  # noqa: BLE001 - a broken subclass crosses whole, as before
        return None


def _build(value: Any, kind: str, size: int, generation: int) -> Preview:
    columns: tuple[int, ...] = ()
    shape: tuple[int, ...]
    if kind == "pandas.DataFrame":
        shape = (int(value.shape[0]), int(value.shape[1]))
        head = value.iloc[:PREVIEW_ROWS]
        columns = tuple(int(n) for n in value.memory_usage(index=False, deep=False))
    elif kind == "polars.DataFrame":
        shape = (int(value.height), int(value.width))
        head = value.head(PREVIEW_ROWS)
        columns = tuple(int(s.estimated_size()) for s in value.iter_columns())
    elif kind == "pyarrow.Table":
        shape = (int(value.num_rows), int(value.num_columns))
        head = value.slice(0, PREVIEW_ROWS)
        columns = tuple(int(c.nbytes) for c in value.columns)
    elif kind == "numpy.ndarray":
        shape = tuple(int(n) for n in value.shape)
        # What the pane shows of an array is cut along every axis, not only the first.
        head = value[tuple(slice(0, PREVIEW_ROWS) for _ in shape)].copy()
    else:  # a column: pandas.Series, polars.Series, pyarrow.ChunkedArray
        shape = (len(value),)
        if kind == "pyarrow.ChunkedArray":
            head = value.slice(0, PREVIEW_ROWS)
        else:
            head = value[:PREVIEW_ROWS]
    if kind in ("pandas.DataFrame", "pandas.Series"):
        head = head.copy()  # not a view of the whole block
    elif kind in ("pyarrow.Table", "pyarrow.ChunkedArray"):
        # An Arrow slice pickles the whole buffers it is cut from; a gather has its own.
        import pyarrow.compute as pc  # type: ignore[import-untyped]  # the value is Arrow

        head = pc.take(head, list(range(len(head))))
    return Preview(kind, head, shape, size, columns, generation)
