"""`mpkernel.snapshot_probe`: a diagnostic consumer of namespace snapshots.

Not on by default. Tests and `tools/` benchmarks turn it on with a config such as::

    [workers.probe]
    target = "mpkernel.snapshot_probe"
    handler = "mpkernel_workers.snapshot_probe:SnapshotProbeHandler"

Each snapshot the worker takes is announced on every open probe comm as a `snapshot`
event (version and the names changed, removed, still being written, or unavailable).
RPCs read the worker's copy of the user's data: `state`, `describe(name)` (type, size,
shape, and whether the value crossed) and `evaluate(expression)` (evaluated in the
worker against the snapshot: the kernel's namespace is never touched); `refresh` asks the
kernel for a snapshot of every name now.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mpkernel_workers.api import (
    INVALID_PARAMS,
    CommHandler,
    RpcError,
    Unavailable,
    WorkerSnapshot,
    background,
)

_REPR_MAX = 200


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return repr(value)[:_REPR_MAX]


class SnapshotProbeHandler(CommHandler):
    snapshots: ClassVar[bool] = True

    def on_open(self, data: Any) -> None:
        self.snapshot: WorkerSnapshot | None = None

    def on_snapshot(self, snapshot: WorkerSnapshot) -> None:
        self.snapshot = snapshot
        self.comm.send_event(
            "snapshot",
            {
                "version": snapshot.version,
                "changed": sorted(snapshot.changed),
                "removed": sorted(snapshot.removed),
                "unevaluated": sorted(snapshot.unevaluated),
                "unavailable": sorted(snapshot.unavailable),
            },
        )

    def _current(self) -> WorkerSnapshot:
        if self.snapshot is None:
            raise RpcError(INVALID_PARAMS, "no snapshot received yet")
        return self.snapshot

    @background  # waits for the main thread; the loop must stay free to deliver the answer
    def rpc_refresh(self) -> dict[str, Any]:
        """Ask the kernel for a snapshot of every name now (a consumer that arrives after
        cells ran does not have to wait for the next execution)."""
        answer = self.comm.request_kernel("snapshot", {}, timeout_s=30.0)
        return {"version": answer["version"] if isinstance(answer, dict) else None}

    def rpc_state(self) -> dict[str, Any]:
        snap = self.snapshot
        if snap is None:
            return {"version": None, "names": []}
        return {
            "version": snap.version,
            "names": sorted(snap),
            "unevaluated": sorted(n for n in snap.unevaluated if not snap.ready(n)),
        }

    def rpc_describe(self, name: str) -> dict[str, Any]:
        snap = self._current()
        if name not in snap:
            raise RpcError(INVALID_PARAMS, f"no variable {name!r} in snapshot {snap.version}")
        info = snap.info(name)
        value = snap[name]
        out: dict[str, Any] = {
            "version": snap.version,
            "type": info.type_name,
            "nbytes": info.nbytes,
            "unavailable": None,
        }
        if isinstance(value, Unavailable):
            out["unavailable"] = value.reason
            out["summary"] = value.summary
            return out
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple):
            out["shape"] = [int(n) for n in shape]
        try:
            out["len"] = len(value)
        except TypeError:
            out["len"] = None
        return out

    def rpc_evaluate(self, expression: str) -> dict[str, Any]:
        """Evaluate `expression` with the snapshot's names (read lazily) as globals, and
        `subject`: the object this comm was opened about (`mpkernel.view`), if any."""
        snap = self.snapshot if self.snapshot is not None else WorkerSnapshot(0)
        if not isinstance(expression, str):
            raise RpcError(INVALID_PARAMS, "'expression' must be a string")
        names = {n: snap[n] for n in snap if n in expression}
        if self.comm.subject is not None:  # the object a viewer comm was opened about
            names["subject"] = self.comm.subject
        try:
            # A diagnostic probe: whoever can send this can already run code in the kernel.
            value = eval(expression, {"__builtins__": __builtins__}, names)
        except Exception as e:  # the expression is the caller's: its error is the reply
            raise RpcError(INVALID_PARAMS, f"{type(e).__name__}: {e}") from e
        return {"version": snap.version, "value": _jsonable(value)}
