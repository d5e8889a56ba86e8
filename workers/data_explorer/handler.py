"""`DataExplorerHandler`: the `positron.dataExplorer` comm, one instance per open table.

Open data (what the kernel's `view` puts in `comm_open`): `title` (shown as the display
name) and, when the table is a variable of the user's namespace, `variable` (its name).
With `variable`, the explorer follows that name across executions through snapshots:
a new value with the same columns -> `data_update`, other columns -> `schema_update`
(filters and sort keys on columns that survive are kept), deleted or no longer a table ->
the comm closes. `snapshot_version` (`OPENED_AS_OF`) says which snapshot the table it was
opened with is as of: older snapshots are ignored, and a newer first one (cells ran while
the worker started) is taken as a change. A viewer opened by a cell is as of the snapshot
that follows that cell (made even if the cell changed nothing).
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

from mpkernel_workers.api import (
    INVALID_REQUEST,
    RESTORED_STATE,
    CommHandler,
    KernelRequestError,
    Preview,
    RpcError,
    WorkerSnapshot,
    background,
    forked_from_kernel,
)
from mpkernel_workers.data_explorer import code, export, features, schema
from mpkernel_workers.data_explorer.jobs import ProfileQueue, run_profiles
from mpkernel_workers.data_explorer.protocol import (
    TARGET,
    FilterResult,
    bad_params,
    format_options,
    require_dict,
    require_int,
    require_list,
)
from mpkernel_workers.data_explorer.tables import (
    Table,
    UnsupportedTable,
    allocate_for_a_shared_table,
    from_object,
    library_of,
    release_unused_memory,
)
from mpkernel_workers.data_explorer.view import TableView

from mpkernel.snapshots import OPENED_AS_OF
from mpkernel.snapshots.codec import decode_object

log = logging.getLogger(__name__)


class DataExplorerHandler(CommHandler):
    snapshots = True

    def on_open(self, data: Any) -> None:
        data = data if isinstance(data, dict) else {}
        self.variable: str | None = (
            data.get("variable") if isinstance(data.get("variable"), str) else None
        )
        title = data.get("title")
        self.title = title if isinstance(title, str) else (self.variable or "table")
        self._profiles = ProfileQueue(
            f"data-explorer-profiles-{self.comm.comm_id[:8]}", self.comm.start_task
        )
        self._seen_snapshot = False
        as_of = data.get(OPENED_AS_OF)
        self._as_of: int | None = as_of if isinstance(as_of, int) else None
        self._closed = False
        if forked_from_kernel():
            allocate_for_a_shared_table()
        try:
            table = from_object(self.comm.subject)
        except UnsupportedTable as e:
            self.view = TableView(_empty())
            self._close(f"unsupported: {e}")
            return
        self.view = TableView(table)
        restored = data.get(RESTORED_STATE)
        if restored is not None:
            # A fresh fork took this comm over after a cell that may have changed the
            # table: the frontend hears it now; the requests it sends on that news are
            # served once the filters and sort keys it set are applied to the new table.
            changed = TableView.schema_differs(restored, table)
            self.comm.send_event("schema_update" if changed else "data_update")
            self.view.restore(restored, table)
        self._saved()  # what the next fork compares its table with

    def _saved(self) -> None:
        release_unused_memory()  # a sort's or filter's temporaries
        self.comm.save_state(self.view.state())

    def on_close(self, reason: str) -> None:
        self._closed = True
        self._profiles.close()

    def _close(self, reason: str) -> None:
        self._closed = True
        self._profiles.close()
        self.comm.close({"reason": reason})

    # -- state and schema ---------------------------------------------------------------------
    def rpc_get_state(self) -> dict[str, Any]:
        view = self.view
        table = view.table
        return {
            "display_name": self.title,
            "table_shape": {"num_rows": view.num_rows, "num_columns": table.num_columns},
            "table_unfiltered_shape": {
                "num_rows": table.num_rows,
                "num_columns": table.num_columns,
            },
            # pandas rows always have labels, a default RangeIndex's too: after a sort the
            # user sees where each row came from.
            "has_row_labels": table.kind == "pandas",
            "column_filters": [],
            "row_filters": view.row_filters,
            "sort_keys": view.sort_keys,
            "supported_features": features.supported_features(self._code_syntax()),
        }

    def rpc_get_schema(self, column_indices: Any) -> dict[str, Any]:
        return {"columns": self.view.schema(column_indices)}

    def rpc_search_schema(self, filters: Any, sort_order: Any = "original") -> dict[str, Any]:
        return {"matches": schema.search_schema(self.view.table, filters, sort_order)}

    # -- data -----------------------------------------------------------------------------------
    def rpc_get_data_values(self, columns: Any, format_options: Any) -> dict[str, Any]:
        options = _format(format_options)
        return {"columns": self.view.data_values(columns, options)}

    def rpc_get_row_labels(self, selection: Any, format_options: Any) -> dict[str, Any]:
        _format(format_options)
        return {"row_labels": self.view.row_labels(selection)}

    def rpc_export_data_selection(self, selection: Any, format: Any) -> dict[str, str]:
        return export.export_selection(self.view, selection, format)

    # -- filters and sort -------------------------------------------------------------------------
    def rpc_set_row_filters(self, filters: Any) -> FilterResult:
        result = self.view.set_row_filters(filters)
        self._saved()
        return result

    def rpc_set_column_filters(self, filters: Any) -> None:
        if require_list(filters, "filters"):
            # Advertised unsupported in get_state; an empty list (clear) is harmless.
            raise RpcError(INVALID_REQUEST, "set_column_filters is not supported by this backend")

    def rpc_set_sort_columns(self, sort_keys: Any) -> None:
        self.view.set_sort_keys(sort_keys)
        self._saved()

    # -- profiles -------------------------------------------------------------------------------
    def rpc_get_column_profiles(
        self, callback_id: Any, profiles: Any, format_options: Any
    ) -> dict[str, Any]:
        if not isinstance(callback_id, str):
            raise bad_params("callback_id must be a string")
        options = _format(format_options)
        requests = []
        for p in require_list(profiles, "profiles"):
            p = require_dict(p, "profiles[]")
            index = require_int(p.get("column_index"), "column_index")
            specs = [
                require_dict(s, "profiles[].profiles[]")
                for s in require_list(p.get("profiles"), "profiles[].profiles")
            ]
            requests.append((index, specs))
        # The rows as they are now: a later filter or sort does not change this answer.
        table, rows = self.view.rows_snapshot()

        def job(cancelled: threading.Event) -> None:
            try:
                done = run_profiles(table, rows, requests, options, cancelled, self._profiles.name)
            except Exception as e:  # the frontend waits for an event: it gets one, saying so
                log.exception("column profiles failed")
                done = [({}, f"profiles failed: {type(e).__name__}: {e}")] * len(requests)
            release_unused_memory()
            if cancelled.is_set():
                return
            results = [result for result, _ in done]
            errors = [error for _, error in done if error is not None]
            params: dict[str, Any] = {"callback_id": callback_id, "profiles": results}
            if errors:
                params["error_message"] = errors[-1]
            try:
                self.comm.send_event("return_column_profiles", params)
            except RuntimeError:
                log.debug("comm %s closed before its profiles were sent", self.comm.comm_id)

        self._profiles.submit(job)
        return {}

    # -- code -----------------------------------------------------------------------------------
    def _code_syntax(self) -> str:
        return "polars" if self.view.table.kind == "polars" else "pandas"

    def rpc_suggest_code_syntax(self) -> dict[str, str]:
        return {"code_syntax_name": self._code_syntax()}

    def rpc_convert_to_code(
        self, column_filters: Any, row_filters: Any, sort_keys: Any, code_syntax_name: Any
    ) -> dict[str, list[str]]:
        require_list(column_filters, "column_filters")
        names = [c.name for c in self.view.table.columns]
        lines = code.convert_to_code(
            self.variable or "df", row_filters, sort_keys, code_syntax_name, names
        )
        return {"converted_code": lines}

    # -- other explorers and file-only methods --------------------------------------------------
    @background
    def rpc_open_data_explorer(self) -> None:
        """A new, independent explorer on the same variable (the kernel opens it)."""
        if self.variable is None:
            raise RpcError(
                INVALID_REQUEST, "this table is not a variable; open it again with mpkernel.view"
            )
        try:
            self.comm.request_kernel(
                "view",
                {"path": [self.variable], "target": TARGET, "data": {"title": self.title}},
            )
        except KernelRequestError as e:
            raise RpcError(INVALID_REQUEST, f"cannot open another explorer: {e.message}") from e

    def rpc_open_dataset(self, uri: Any) -> dict[str, str]:
        return {
            "error_message": "open_dataset is for file-backed explorers; this one shows a "
            "table of the kernel's namespace"
        }

    def rpc_set_dataset_import_options(self, options: Any) -> dict[str, str]:
        return {
            "error_message": "import options apply to file-backed explorers only; this one "
            "shows a table of the kernel's namespace"
        }

    # -- live data ------------------------------------------------------------------------------
    def _whole(self, name: str) -> Any:
        """The whole value of a variable the snapshot shows as a preview (this explorer
        copies its table: `subject = "copy"`); None if the kernel cannot give it now."""
        try:
            answer = self.comm.request_kernel("object", {"name": name}, timeout_s=60.0)
            return decode_object(base64.b64decode(answer["payload"]))
        except (KernelRequestError, KeyError, TypeError, ValueError) as e:
            log.warning("data explorer: no new value of %r (%s)", name, e)
            return None

    def on_snapshot(self, snapshot: WorkerSnapshot) -> None:
        if self.variable is None or self._closed:
            return
        as_of = self._as_of
        if as_of is not None and snapshot.version < as_of:
            return  # older than the table this comm was opened with
        self._as_of = None  # only the first snapshot is compared with the open
        first, self._seen_snapshot = not self._seen_snapshot, True
        name = self.variable
        if name not in snapshot:
            self._close("variable_deleted")
            return
        if first:
            # It lists every name as changed. The table came with the open, as of
            # `as_of`: a newer snapshot means cells ran while this worker started.
            if as_of is None or snapshot.version <= as_of:
                return
        elif name not in snapshot.changed:
            return
        value = snapshot[name]
        if isinstance(value, Preview):
            value = self._whole(name)
            if value is None:
                return
        if library_of(value) is None:
            self._close("unsupported_type")
            return
        schema_changed = self.view.replace_table(from_object(value))
        self.comm.send_event("schema_update" if schema_changed else "data_update")


def _format(value: Any) -> Any:
    return format_options(value)


def _empty() -> Table:
    return Table((), 0, "arrow")
