"""The pane's view of a `Preview`: a big array or table that crossed as its head.

A preview's row says what the whole value is (type, shape, size, number of columns) and
its children come from the head: a frame's columns are previews of columns, a column's
or an array's items are the first `PREVIEW_ROWS` of them, with the whole length beside
them. A path that reaches past the head is an error that says so.
"""

from __future__ import annotations

from typing import Any

from mpkernel_workers.api import Preview
from mpkernel_workers.variables import tables
from mpkernel_workers.variables.formatting import truncate

from mpkernel.snapshots.preview import PREVIEW_ROWS

__all__ = ["Preview", "child", "children", "display", "is_table"]


def is_table(preview: Preview) -> bool:
    if preview.family == "numpy.ndarray":
        return len(preview.shape) == 2
    return preview.family in (*tables.FRAMES, "pandas.Series", "polars.Series")


def display(preview: Preview, level: int, row_text: str) -> tuple[str, bool, str, int, int]:
    """(display value, cut, display type, length, size) of the whole value; `row_text` is
    what the head's row shows, kept for columns and arrays (their first items)."""
    name = tables.short_name(preview.head)
    shape = preview.shape
    if preview.family in tables.FRAMES:
        rows, cols = shape
        text, _ = truncate(f"[{rows} rows x {cols} columns] {name}", level)
        return text, True, f"{type(preview.head).__name__} [{rows}x{cols}]", cols, preview.nbytes
    if preview.family == "numpy.ndarray":
        dtype = preview.head.dtype
        kind = f"numpy.{dtype} ({shape[0]})" if len(shape) == 1 else f"numpy.{dtype} {shape}"
        text = row_text
        if len(shape) == 1 and shape[0] > len(preview.head):
            # The head's own summary ends with its last items, which are not the array's.
            text = text.split("...", 1)[0].rstrip(",") + ",...]"
        return text, True, kind, shape[0] if shape else 0, preview.nbytes
    column = tables.family(preview.head) or preview.family
    text = row_text
    if not text.endswith("…]") and not text.endswith("...]"):
        text = text[:-1] + ", …]" if text.endswith("]") else text
    kind = f"{tables.column_type(preview.head, column)} [{shape[0]}]"
    return text, True, kind, shape[0], preview.nbytes


def children(preview: Preview, limit: int) -> tuple[list[tuple[object, object]], int] | None:
    """A frame preview's columns as column previews; None for the others (their children
    are the head's, under the whole length)."""
    if preview.family not in tables.FRAMES:
        return None
    family = tables.family(preview.head)
    assert family is not None
    keys = tables.column_keys(preview.head, family, limit)
    return [(key, preview.column(i)) for i, key in enumerate(keys)], preview.shape[1]


def child(preview: Preview, key: object, step: Any) -> object:
    """One step down from a preview: a column preview of a frame, else an item of the head
    (`step` is the inspectors' own step, applied to the head)."""
    if preview.family in tables.FRAMES:
        family = tables.family(preview.head)
        assert family is not None
        for i, k in enumerate(tables.column_keys(preview.head, family, preview.shape[1])):
            if k == key:
                return preview.column(i)
        raise LookupError(f"no column {key!r}")
    try:
        return step(preview.head, key)
    except LookupError as e:
        raise LookupError(
            f"{e} (only the first {PREVIEW_ROWS} of {preview.shape[0]} rows reach the pane)"
        ) from e
