"""`positron.variables`: Positron's variables pane, served from a worker.

The pane's view of the user's namespace is built from snapshots (docs/snapshots.md): the
kernel's main process never formats, sizes, inspects or diffs anything for it. Each comm
keeps what it last told its frontend (name -> snapshot entry id, with the `Variable` sent),
so a diff is a comparison of entry ids, and two frontends with the pane open each get
their own comm, updates and versions.

    snapshot (loop thread) ──> on_snapshot ──> `refresh` (first snapshot, after `clear`,
                                           │    or a diff over MAX_ITEMS) or `update`
                                           └─> names still being copied: `unevaluated`
                                               now; a helper thread waits for their data
                                               and sends them as `assigned` later
    list ─────────────────────> the described view (loop thread; never waits on user code)
    inspect, clipboard_format,
    view, query_table_summary,
    delete, clear ────────────> the runtime's pool (@background): a slow `__repr__` does not
                                hold the loop; one hung past `rpc_timeout_s` gets the worker
                                replaced, and this comm (persistent, restorable) reopens on
                                the new worker with a `refresh` from its first snapshot.

Threads: `on_open`, `on_snapshot` and `rpc_list` run on the worker's loop thread; the
other RPCs and the late describer on their own threads. `_lock` guards the view and the
version, so each event leaves with a version higher than the one before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mpkernel_workers.api import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CommHandler,
    KernelRequestError,
    RpcError,
    Unavailable,
    WorkerSnapshot,
    background,
)
from mpkernel_workers.variables import inspectors
from mpkernel_workers.variables.access_keys import decode_key, encode_key
from mpkernel_workers.variables.protocol import (
    MAX_CHILDREN,
    MAX_ITEMS,
    FormattedVariable,
    InspectedVariable,
    QueryTableSummaryResult,
    Variable,
    VariableList,
)

log = logging.getLogger(__name__)

DATA_EXPLORER = "positron.dataExplorer"
KERNEL_REQUEST_TIMEOUT_S = 10.0
# A request sent right after the pane opened (before the kernel's first snapshot reached
# this worker) waits this long for it rather than failing.
FIRST_SNAPSHOT_WAIT_S = 10.0
CLIPBOARD_FORMATS = ("text/plain", "text/html")


@dataclass
class WorkerView:
    """What every variables comm of this worker process shares (`Comm.shared`): the newest
    snapshot a handler saw, and whether one may have arrived since while no comm was open
    (the runtime hands snapshots to open comms only)."""

    latest: WorkerSnapshot | None = None
    open_comms: int = 0
    stale: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _short_type(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def _described_elsewhere(name: str, type_name: str, size: int, value: str) -> Variable:
    """A variable whose value this worker cannot read now: still being copied, or a
    descriptor for an object that did not cross."""
    short = _short_type(type_name)
    kind = "other"
    if short in ("function", "builtin_function_or_method", "method"):
        kind = "function"
    elif short == "type":
        kind = "class"
    return Variable(
        access_key=encode_key(name),
        display_name=name,
        display_value=value,
        display_type=short,
        type_info=type_name,
        size=size,
        kind=kind,  # type: ignore[typeddict-item]
        length=0,
        has_children=False,
        has_viewer=False,
        is_truncated=False,
        updated_time=_now_ms(),
    )


class VariablesHandler(CommHandler):
    persistent: ClassVar[bool] = True
    restorable: ClassVar[bool] = True
    snapshots: ClassVar[bool] = True

    def on_open(self, data: Any) -> None:
        self._lock = threading.Lock()
        self._snapshot: WorkerSnapshot | None = None
        self._known = threading.Event()
        # name -> (entry id, Variable) as last sent to the frontend (entry id -1: pending)
        self._view: dict[str, tuple[int, Variable]] = {}
        self._version = 0
        self._needs_refresh = True
        self._worker = self.comm.shared(WorkerView)
        with self._worker.lock:
            self._worker.open_comms += 1
            latest, stale = self._worker.latest, self._worker.stale
        if latest is not None and not stale:
            self._take(latest)
        elif latest is not None:
            # Cells may have run while no pane was open: ask for a snapshot of now (the
            # kernel serves it between executions); its `on_snapshot` sends the refresh.
            self.comm.start_task(self._ask_for_snapshot, "variables-snapshot")
        # Else this worker has no snapshot yet: the kernel sends a complete one to a new
        # consumer, and its `on_snapshot` sends the refresh.

    def on_close(self, reason: str) -> None:
        with self._worker.lock:
            self._worker.open_comms -= 1
            if self._worker.open_comms == 0:
                self._worker.stale = True

    def on_snapshot(self, snapshot: WorkerSnapshot) -> None:
        with self._worker.lock:
            self._worker.latest = snapshot
            self._worker.stale = False
        self._take(snapshot)

    # -- building the view ------------------------------------------------------------------
    def _ask_for_snapshot(self) -> None:
        try:
            self.comm.request_kernel("snapshot", {}, timeout_s=60.0)
        except KernelRequestError as e:
            log.warning("variables: no snapshot on open (%s); waiting for the next one", e)

    def _take(self, snapshot: WorkerSnapshot) -> None:
        """Loop thread: tell the frontend what changed since what it was last told."""
        self._snapshot = snapshot
        self._known.set()
        with self._lock:
            if self._needs_refresh:
                self._send_refresh(snapshot)
                return
            changed = [
                n
                for n in snapshot
                if n not in self._view or self._view[n][0] != snapshot.info(n).entry_id
            ]
            # Sorted: the order of the view is that of past events, not one a frontend
            # can rely on; by name it is the same for every frontend and every run.
            removed = sorted(n for n in self._view if n not in snapshot)
            if len(changed) + len(removed) > MAX_ITEMS:
                self._send_refresh(snapshot)
                return
            if not changed and not removed:
                return
            assigned, unevaluated, pending = self._describe_names(snapshot, changed)
            for name in removed:
                del self._view[name]
            self._send_update(assigned, unevaluated, [encode_key(n) for n in removed])
        self._describe_later(snapshot, pending)

    def _describe_names(
        self, snapshot: WorkerSnapshot, names: Iterable[str]
    ) -> tuple[list[Variable], list[Variable], list[str]]:
        """Describe `names` and record them in the view (caller holds `_lock`): those that
        can be read now, those still being copied (a placeholder), and the latter's names."""
        assigned: list[Variable] = []
        unevaluated: list[Variable] = []
        pending: list[str] = []
        for name in names:
            entry = snapshot.info(name)
            if name in snapshot.unevaluated and not snapshot.ready(name):
                variable = _described_elsewhere(
                    name, entry.type_name, entry.nbytes, f"({entry.type_name}: being copied)"
                )
                unevaluated.append(variable)
                pending.append(name)
            else:
                variable = self._describe(name, snapshot[name])
                assigned.append(variable)
            self._view[name] = (entry.entry_id, variable)
        return assigned, unevaluated, pending

    def _describe(self, name: str, value: Any) -> Variable:
        if isinstance(value, Unavailable):
            shown = value.summary or f"<{value.type_name}>"
            return _described_elsewhere(name, value.type_name, value.size, shown)
        return inspectors.describe(name, value, updated_time=_now_ms())

    def _describe_later(self, snapshot: WorkerSnapshot, names: Sequence[str]) -> None:
        """Names whose data is still being written: read them on a helper thread (a read
        waits for the data) and send them as assigned, unless a newer entry replaced them."""
        if not names:
            return

        def work() -> None:
            for name in names:
                value = snapshot[name]
                entry_id = snapshot.info(name).entry_id
                variable = self._describe(name, value)
                with self._lock:
                    current = self._view.get(name)
                    if current is None or current[0] != entry_id:
                        continue
                    self._view[name] = (entry_id, variable)
                    self._send_update([variable], [], [])

        self.comm.start_task(work, "variables-late")

    def _send_refresh(self, snapshot: WorkerSnapshot) -> None:
        """Caller holds `_lock`."""
        self._needs_refresh = False
        self._view = {}
        names = list(snapshot)
        assigned, unevaluated, pending = self._describe_names(snapshot, names[:MAX_ITEMS])
        self._version = self._next_version()
        self.comm.send_event(
            "refresh",
            {"variables": assigned + unevaluated, "length": len(names), "version": self._version},
        )
        self._describe_later(snapshot, pending)

    def _send_update(
        self, assigned: list[Variable], unevaluated: list[Variable], removed: list[str]
    ) -> None:
        """Caller holds `_lock`."""
        self._version = self._next_version()
        self.comm.send_event(
            "update",
            {
                "assigned": assigned,
                "unevaluated": unevaluated,
                "removed": removed,
                "version": self._version,
            },
        )

    def _next_version(self) -> int:
        """Higher than any version this comm sent, and at least the snapshot's (versions
        of snapshots increase for the kernel's life: a comm reopened on a restarted worker
        goes on from there rather than from 1)."""
        floor = self._snapshot.version if self._snapshot is not None else 0
        return max(self._version + 1, floor)

    # -- paths ------------------------------------------------------------------------------
    def _current(self) -> WorkerSnapshot:
        """The newest snapshot. Pool threads only: before the first one it waits for the
        loop thread to deliver it."""
        self._known.wait(FIRST_SNAPSHOT_WAIT_S)
        snapshot = self._snapshot
        if snapshot is None:
            raise RpcError(INVALID_PARAMS, "the variables are not known yet (no snapshot)")
        return snapshot

    def _decode_path(self, path: Any) -> tuple[str, list[Any]]:
        if not isinstance(path, list) or not path or not all(isinstance(k, str) for k in path):
            raise RpcError(INVALID_PARAMS, "'path' must be a non-empty list of access keys")
        try:
            name = decode_key(path[0])
            keys = [decode_key(k) for k in path[1:]]
        except ValueError as e:
            raise RpcError(INVALID_PARAMS, f"bad access key in {path!r}: {e}") from e
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, f"{path[0]!r} does not name a variable")
        return name, keys

    def _resolve(self, path: Any) -> tuple[str, list[Any], Any]:
        """The object at `path` in the newest snapshot (name, item keys, object)."""
        name, keys = self._decode_path(path)
        snapshot = self._current()
        if name not in snapshot:
            raise RpcError(INVALID_PARAMS, f"no variable {name!r}")
        root = snapshot[name]
        if isinstance(root, Unavailable):
            if keys:
                raise RpcError(INVALID_PARAMS, f"{name!r} did not reach the worker: {root.reason}")
            return name, keys, root
        try:
            value = inspectors.resolve(root, keys)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise RpcError(INVALID_PARAMS, f"{path!r}: no such item ({e})") from e
        return name, keys, value

    # -- RPCs -------------------------------------------------------------------------------
    def rpc_list(self) -> VariableList:
        with self._lock:
            variables = [variable for _, variable in self._view.values()][:MAX_ITEMS]
            length = len(self._view)
            return VariableList(variables=variables, length=length, version=self._version)

    @background
    def rpc_clear(self, include_hidden_objects: bool = False) -> None:
        with self._lock:
            self._needs_refresh = True
        self.comm.request_kernel(
            "clear", {"include_hidden": bool(include_hidden_objects)}, KERNEL_REQUEST_TIMEOUT_S
        )

    @background
    def rpc_delete(self, names: Any) -> list[str]:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RpcError(INVALID_PARAMS, "'names' must be a list of strings")
        deleted = self.comm.request_kernel("delete", {"names": names}, KERNEL_REQUEST_TIMEOUT_S)
        if not isinstance(deleted, list):
            return []
        # Access keys, sorted by name, as Positron's kernel answers.
        return [encode_key(n) for n in sorted(n for n in deleted if isinstance(n, str))]

    @background
    def rpc_inspect(self, path: list[str]) -> InspectedVariable:
        _, _, value = self._resolve(path)
        if isinstance(value, Unavailable):
            return InspectedVariable(children=[], length=0)
        itself = inspectors.describe("", value, updated_time=0)
        if not itself["has_children"]:
            # A leaf: the value itself, as one nameless row with no key (as Positron
            # answers): there is no child to reach.
            itself["access_key"] = ""
            return InspectedVariable(children=[itself], length=1)
        items, _ = inspectors.children(value, MAX_CHILDREN)
        # A child row shows its value as a variable's row does (the full display budget,
        # `{'c': [1, 2]}` rather than `{'c': […]}`), as Positron's pane does.
        children = [inspectors.describe(key, child, updated_time=0) for key, child in items]
        return InspectedVariable(children=children, length=len(children))

    @background
    def rpc_clipboard_format(self, path: list[str], format: str) -> FormattedVariable:
        if format not in CLIPBOARD_FORMATS:
            raise RpcError(INVALID_PARAMS, f"format must be one of {CLIPBOARD_FORMATS}")
        _, _, value = self._resolve(path)
        if isinstance(value, Unavailable):
            return FormattedVariable(content=value.summary or repr(value))
        return FormattedVariable(content=inspectors.clipboard(value, format))

    @background
    def rpc_view(self, path: list[str]) -> str:
        name, keys, value = self._resolve(path)
        if isinstance(value, Unavailable) or not inspectors.is_table(value):
            raise RpcError(
                INVALID_PARAMS,
                f"{name!r}: no viewer for a {type(value).__name__} (tables only)",
            )
        title = name if not keys else f"{name}{''.join(f'[{k!r}]' for k in keys)}"
        try:
            answer = self.comm.request_kernel(
                "view",
                {"path": [name, *keys], "target": DATA_EXPLORER, "data": {"title": title}},
                KERNEL_REQUEST_TIMEOUT_S,
            )
        except KernelRequestError as e:
            raise RpcError(INTERNAL_ERROR, f"cannot open a data explorer: {e.message}") from e
        if not isinstance(answer, dict) or not isinstance(answer.get("comm_id"), str):
            raise RpcError(INTERNAL_ERROR, f"the kernel's view answer has no comm id: {answer!r}")
        comm_id: str = answer["comm_id"]
        return comm_id

    @background
    def rpc_query_table_summary(
        self, path: list[str], query_types: list[str]
    ) -> QueryTableSummaryResult:
        name, _, value = self._resolve(path)
        if isinstance(value, Unavailable) or not inspectors.is_table(value):
            raise RpcError(INVALID_PARAMS, f"{name!r} is not a table")
        return inspectors.table_summary(value, query_types)
