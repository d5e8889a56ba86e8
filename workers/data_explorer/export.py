"""`export_data_selection`: a selection of the view as csv, tsv or html text (what the
grid's copy puts on the clipboard). Values are written unformatted (full precision);
missing values are empty cells. A single cell is its value's text alone.
"""

from __future__ import annotations

import csv
import html
import io
import math
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
from mpkernel_workers.data_explorer.protocol import (
    EXPORT_FORMATS,
    bad_params,
    require_dict,
    require_int,
    require_list,
)
from mpkernel_workers.data_explorer.tables import Column
from mpkernel_workers.data_explorer.view import TableView


def export_selection(view: TableView, selection: Any, fmt: Any) -> dict[str, str]:
    if fmt not in EXPORT_FORMATS:
        raise bad_params(f"unknown export format {fmt!r}")
    selection = require_dict(selection, "selection")
    kind = selection.get("kind")
    sel = require_dict(selection.get("selection"), "selection.selection")
    n_cols = view.table.num_columns
    all_rows = {"first_index": 0, "last_index": view.num_rows - 1}
    all_cols = list(range(n_cols))
    if kind == "single_cell":
        row = view.positions({"indices": [require_int(sel.get("row_index"), "row_index")]})
        col = require_int(sel.get("column_index"), "column_index")
        if len(row) == 0 or not 0 <= col < n_cols:
            raise bad_params("single_cell is outside the table")
        value = view.table.columns[col].take(row)[0].as_py()
        return {"data": "" if value is None else str(value), "format": fmt}
    if kind == "cell_range":
        rows = view.positions(
            {"first_index": sel.get("first_row_index"), "last_index": sel.get("last_row_index")}
        )
        first = require_int(sel.get("first_column_index"), "first_column_index")
        last = require_int(sel.get("last_column_index"), "last_column_index")
        cols = list(range(max(first, 0), min(last + 1, n_cols)))
    elif kind == "cell_indices":
        rows = view.positions({"indices": sel.get("row_indices")})
        cols = _column_list(sel.get("column_indices"), n_cols)
    elif kind == "row_range" or kind == "row_indices":
        rows, cols = view.positions(sel), all_cols
    elif kind == "column_range":
        first = require_int(sel.get("first_index"), "first_index")
        last = require_int(sel.get("last_index"), "last_index")
        rows, cols = view.positions(all_rows), list(range(max(first, 0), min(last + 1, n_cols)))
    elif kind == "column_indices":
        rows, cols = view.positions(all_rows), _column_list(sel.get("indices"), n_cols)
    else:
        raise bad_params(f"unknown selection kind {kind!r}")
    return {"data": _render(view, rows, cols, fmt), "format": fmt}


def _column_list(indices: Any, n_cols: int) -> list[int]:
    wanted = [require_int(i, "column index") for i in require_list(indices, "column indices")]
    return [i for i in wanted if 0 <= i < n_cols]


def _render(view: TableView, rows: pa.Array, cols: list[int], fmt: str) -> str:
    names = [view.table.columns[c].name for c in cols]
    data = [_missing_as_none(view.table.columns[c], rows) for c in cols]
    records = list(zip(*data, strict=False)) if data else []
    if fmt == "html":
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in record) + "</tr>"
            for record in records
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
    writer.writerow(names)
    writer.writerows([_text(v) for v in record] for record in records)
    return out.getvalue().rstrip("\n")


def _missing_as_none(column: Column, rows: pa.Array) -> list[Any]:
    """The values at `rows`; where NaN counts as missing (pandas), NaN is missing too, and
    a missing value is an empty cell (as pandas' `to_csv` writes it)."""
    values: list[Any] = column.take(rows).to_pylist()
    if not column.nan_is_null:
        return values
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def _text(value: Any) -> str:
    return "" if value is None else str(value)
