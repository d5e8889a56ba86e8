"""One explorer's view of a table: row filters, sort keys, and the row order they give.

The view never copies the table: filtering yields the rows that pass (`FilteredRows`:
their positions found block by block, as far as the pages asked for need), sorting yields
those positions reordered (a stable sort, nulls and NaN last), and a page is `take` of
only the requested rows through that order, so once the order is computed every page
costs the same whatever the table's size (cached argsort paging).

Thread model: the loop thread changes the view; profile jobs on another thread read
`rows_snapshot()`, an immutable pair (table, rows that pass the filters) taken under the
lock, so a filter that arrives meanwhile never changes the rows a running profile sees.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
from mpkernel_workers.data_explorer import schema as schema_mod
from mpkernel_workers.data_explorer.filters import apply_filters
from mpkernel_workers.data_explorer.formatting import format_array, format_objects
from mpkernel_workers.data_explorer.protocol import (
    ColumnSortKey,
    ColumnValue,
    FilterResult,
    FormatOptions,
    RowFilter,
    bad_params,
    require_dict,
    require_int,
    require_list,
)
from mpkernel_workers.data_explorer.selection import FilteredRows
from mpkernel_workers.data_explorer.sorting import sort_indices
from mpkernel_workers.data_explorer.tables import Table

# Table positions in view order; None: every row, in table order.
Rows: TypeAlias = "pa.Array | None"


def int64_array(values: Sequence[int] | np.ndarray) -> pa.Array:
    """Row positions as an Arrow array, zero copy from numpy. Not `pa.array`: with pandas
    installed, its first call imports pandas (about 150 ms), which a polars or Arrow
    table's worker would otherwise pay on its first page."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


class TableView:
    def __init__(self, table: Table) -> None:
        self._lock = threading.Lock()
        self.table = table
        self.row_filters: list[RowFilter] = []
        self.sort_keys: list[ColumnSortKey] = []
        self._filtered: FilteredRows | None = None
        self._order: Rows = None  # sorted positions; None: unsorted

    # -- reading --------------------------------------------------------------------------------
    def rows_snapshot(self) -> tuple[Table, Rows]:
        """The table and the positions of the rows that pass the filters, in table order
        (None: every row). Not sorted: no statistic depends on the order, and reading the
        columns in place spares a copy of each through the sort's positions."""
        with self._lock:
            table, filtered = self.table, self._filtered
        return table, None if filtered is None else filtered.all()

    @property
    def num_rows(self) -> int:
        if self._order is not None:
            return len(self._order)
        return self.table.num_rows if self._filtered is None else self._filtered.count

    def positions(self, spec: Any) -> pa.Array:
        """Table positions of the view rows an `array_selection` names (out-of-range ones
        are skipped, as Positron does)."""
        spec = require_dict(spec, "selection")
        n = self.num_rows
        if "indices" in spec:
            wanted = [require_int(i, "indices[]") for i in require_list(spec["indices"], "indices")]
            view_rows = int64_array([i for i in wanted if 0 <= i < n])
            if self._order is not None:
                return self._order.take(view_rows)
            return view_rows if self._filtered is None else self._filtered.all().take(view_rows)
        first = require_int(spec.get("first_index"), "first_index")
        last = require_int(spec.get("last_index"), "last_index")
        first, stop = max(first, 0), min(last + 1, n)
        if stop <= first:
            return int64_array([])
        if self._order is not None:
            return self._order.slice(first, stop - first)
        if self._filtered is not None:
            return self._filtered.slice(first, stop - first)
        return int64_array(np.arange(first, stop))

    def column_values(
        self, index: int, rows: pa.Array, options: FormatOptions
    ) -> list[ColumnValue]:
        column = self.table.columns[index]
        if column.objects is not None:
            return format_objects(column.objects[rows.to_numpy()], options)
        return format_array(column, column.take(rows), options)

    def data_values(self, columns: Any, options: FormatOptions) -> list[list[ColumnValue]]:
        out: list[list[ColumnValue]] = []
        for selection in require_list(columns, "columns"):
            selection = require_dict(selection, "columns[]")
            index = require_int(selection.get("column_index"), "column_index")
            if not 0 <= index < self.table.num_columns:
                raise bad_params(f"column_index {index} is out of range")
            out.append(self.column_values(index, self.positions(selection.get("spec")), options))
        return out

    def row_labels(self, selection: Any) -> list[list[str]]:
        rows = self.positions(selection)
        if self.table.kind != "pandas":
            return []  # no labels (`has_row_labels` false): Positron answers the same
        index = self.table.row_labels
        if index is None:  # a default RangeIndex: the labels are the positions
            return [[str(r) for r in rows.to_pylist()]]
        return [[str(v) for v in index.take(rows.to_numpy())]]

    # -- changing -------------------------------------------------------------------------------
    def set_row_filters(self, filters: Any) -> FilterResult:
        filters = [require_dict(f, "filters[]") for f in require_list(filters, "filters")]
        for f in filters:
            if not isinstance(f.get("filter_type"), str):
                raise bad_params("every filter needs a filter_type")
        mask, held = apply_filters(self.table, filters)
        filtered = None if mask is None else FilteredRows(mask)
        with self._lock:
            self.row_filters = held
            self._filtered = filtered
            self._order = self._sorted(filtered)
        result = FilterResult(selected_num_rows=self.num_rows)
        result["had_errors"] = any(not f.get("is_valid", True) for f in held)
        return result

    def set_sort_keys(self, keys: Any) -> None:
        checked: list[ColumnSortKey] = []
        for key in require_list(keys, "sort_keys"):
            key = require_dict(key, "sort_keys[]")
            index = require_int(key.get("column_index"), "column_index")
            if not 0 <= index < self.table.num_columns:
                raise bad_params(f"sort column_index {index} is out of range")
            checked.append(
                ColumnSortKey(column_index=index, ascending=bool(key.get("ascending", True)))
            )
        order = self._sorted(self._filtered, checked)
        with self._lock:
            self.sort_keys = checked
            self._order = order

    def replace_table(self, table: Table) -> bool:
        """Show `table` instead, keeping the filters and sort keys whose column (same name
        and type) still exists, moved to its new position. True if the schema changed."""
        return self.restore(self.state(), table)

    def state(self) -> dict[str, Any]:
        """What `restore` needs to show another table as this view shows this one (JSON)."""
        return {
            "signature": [list(pair) for pair in self.table.signature()],
            "row_filters": list(self.row_filters),
            "sort_keys": list(self.sort_keys),
        }

    def restore(self, state: Any, table: Table) -> bool:
        """Show `table` with the filters and sort keys of `state` (`state()` of a view of
        an earlier table) whose column still exists with the same name and type. True if
        the schema differs from that earlier table's."""
        state = state if isinstance(state, dict) else {}
        old = _signature_of(state)
        changed = tuple(old) != table.signature()
        where = {c.name: (i, c.type_name) for i, c in enumerate(table.columns)}

        def moved(index: int) -> int | None:
            if not 0 <= index < len(old):
                return None
            name, type_name = old[index]
            found = where.get(name)
            return found[0] if found is not None and found[1] == type_name else None

        filters: list[RowFilter] = []
        for f in state.get("row_filters") or ():
            f = RowFilter(**f)  # type: ignore[typeddict-item]  # JSON from a saved state
            schema: dict[str, Any] = dict(f.get("column_schema") or {})
            new_index = moved(int(schema.get("column_index", -1)))
            if new_index is None:
                continue
            schema["column_index"] = new_index
            f["column_schema"] = schema  # type: ignore[typeddict-item]
            filters.append(f)
        keys = [
            ColumnSortKey(column_index=i, ascending=bool(k.get("ascending", True)))
            for k in state.get("sort_keys") or ()
            if (i := moved(int(k.get("column_index", -1)))) is not None
        ]
        with self._lock:
            self.table = table
            self._filtered = None
            self._order = None
            self.row_filters = []
            self.sort_keys = []
        if filters:
            self.set_row_filters(filters)
        if keys:
            self.set_sort_keys(keys)
        return changed

    @staticmethod
    def schema_differs(state: Any, table: Table) -> bool:
        """Whether `table`'s columns differ from those of the view `state` was saved from."""
        return tuple(_signature_of(state if isinstance(state, dict) else {})) != table.signature()

    def _sorted(
        self, filtered: FilteredRows | None, keys: list[ColumnSortKey] | None = None
    ) -> Rows:
        """The sorted positions, or None when there are no sort keys."""
        keys = self.sort_keys if keys is None else keys
        if not keys:
            return None
        rows = None if filtered is None else filtered.all()
        columns = []
        for key in keys:
            arr = self.table.columns[key["column_index"]].array
            columns.append((arr if rows is None else arr.take(rows), key["ascending"]))
        order = sort_indices(columns)
        return order if rows is None else rows.take(order)

    # -- state ----------------------------------------------------------------------------------
    def schema(self, indices: Any) -> list[dict[str, Any]]:
        wanted = [
            require_int(i, "column_indices[]") for i in require_list(indices, "column_indices")
        ]
        return [
            schema_mod.column_schema(self.table, i)
            for i in wanted
            if 0 <= i < self.table.num_columns
        ]


def _signature_of(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(p[0]), str(p[1]))
        for p in state.get("signature") or ()
        if isinstance(p, list) and len(p) == 2
    ]
