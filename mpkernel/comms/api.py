"""User-facing API for comms served by workers: `mpkernel.comms.open(target, data)` and
`mpkernel.view(obj)`.

Called from user code on the main thread. A comm may be opened about an object (its
`subject`): the object is encoded here (`mpkernel.snapshots.codec`: array data through
shared memory, not the pipe) and the handler finds it as `comm.subject`. The comm_open
is published by the io thread before anything the worker sends on the comm (I5), and the
execute request's idle waits for the worker to have handled the open (I3).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mpkernel.config.model import Config
from mpkernel.funnel.items import OpenBackendComm
from mpkernel.funnel.outbox import Outbox
from mpkernel.interrupt_shield import shielded
from mpkernel.snapshots import OPENED_AS_OF
from mpkernel.supervision.ipc import FORKED_SUBJECT
from mpkernel.wire import json_bytes

if TYPE_CHECKING:
    # The engine imports IPython; the io thread imports this package without it.
    from mpkernel.engine.request_context import RequestContext
    from mpkernel.supervision.fork import ForkSite


DATA_EXPLORER_TARGET = "positron.dataExplorer"
# Distinguishes "no subject" from a subject that is None.
_NO_SUBJECT: Any = object()


class BackendComms:
    def __init__(
        self,
        outbox: Outbox,
        context: RequestContext,
        config: Config,
        user_ns: Mapping[str, Any] | None = None,
        viewer_as_of: Callable[[], int] = lambda: 0,
        viewers: ForkSite | None = None,
    ) -> None:
        self._viewers = viewers
        self._outbox = outbox
        self._context = context
        self._config = config
        self._user_ns = user_ns if user_ns is not None else {}
        self.viewer_as_of = viewer_as_of

    def variable_of(self, obj: Any) -> str | None:
        """The first user variable bound to `obj` itself (not a copy), if any."""
        for name, value in self._user_ns.items():
            if value is obj and not name.startswith("_"):
                return name
        return None

    def open(self, target: str, data: Any = None, *, subject: Any = _NO_SUBJECT) -> str:
        if self._config.worker_for_target(target) is None:
            targets = sorted(w.target for w in self._config.workers if w.enabled)
            raise ValueError(f"no worker serves comm target {target!r}; configured: {targets}")
        comm_id = uuid.uuid4().hex
        data_json = json_bytes(data or {})
        parent = self._context.parent
        if subject is _NO_SUBJECT:
            self._outbox.put(OpenBackendComm(comm_id, target, data_json, parent))
            return comm_id
        if self._viewers is not None:
            variable = data.get("variable") if isinstance(data, dict) else None
            follows = variable if isinstance(variable, str) else None
            # A forked worker reaches the io thread (which adopts and reaps it) whole, or
            # no fork is made: an interrupt waits until the item is queued.
            with shielded():
                forked = self._viewers.viewer(target, subject, comm_id, follows)
                if forked is not None:
                    item = OpenBackendComm(
                        comm_id, target, data_json, parent, FORKED_SUBJECT, forked
                    )
                    self._outbox.put(item)
                    return comm_id
        from mpkernel.snapshots.codec import encode_object

        payload = encode_object(subject)
        self._outbox.put(OpenBackendComm(comm_id, target, data_json, parent, payload))
        return comm_id


_active: BackendComms | None = None


def activate(backend: BackendComms) -> None:
    global _active
    _active = backend


def _backend(what: str) -> BackendComms:
    if _active is None:
        raise RuntimeError(f"{what} works only inside a running mpkernel kernel")
    return _active


def open(target: str, data: Any = None, *, subject: Any = _NO_SUBJECT) -> str:
    """Open a comm on `target`, served by its worker, optionally about `subject` (the
    handler's `comm.subject`); returns the comm id."""
    return _backend("mpkernel.comms.open").open(target, data, subject=subject)


def view(obj: Any, title: str | None = None, *, target: str = DATA_EXPLORER_TARGET) -> str:
    """Open a viewer comm (the data explorer by default) on `obj`; returns the comm id.

    For the data explorer the cell also shows the inline output Positron's notebooks render
    as a table over that comm (`INLINE_MIME`); other frontends show its text/plain line.
    """
    backend = _backend("mpkernel.view")
    name = title if title is not None else type(obj).__name__
    data: dict[str, Any] = {"title": name}
    variable = backend.variable_of(obj)
    if variable is not None:
        # The viewer follows that name across executions (data_update, schema_update),
        # from the snapshot that follows this execution on (OPENED_AS_OF); when no
        # snapshots are made yet, from the first one (which may repeat what it has).
        data["variable"] = variable
        data[OPENED_AS_OF] = backend.viewer_as_of()
    comm_id = backend.open(target, data, subject=obj)
    if target == DATA_EXPLORER_TARGET:
        from IPython.display import display

        rows, columns = table_shape(obj)
        inline = {
            "version": 1,
            "comm_id": comm_id,
            "shape": {"rows": rows, "columns": columns},
            "title": name,
            "source": "mpkernel.view",
        }
        text = f"<data explorer: {name} [{rows} rows x {columns} columns]>"
        display({INLINE_MIME: inline, "text/plain": text}, raw=True)  # type: ignore[no-untyped-call]
    return comm_id


INLINE_MIME = "application/vnd.positron.dataExplorer+json"


def table_shape(obj: Any) -> tuple[int, int]:
    """(rows, columns) of a table-like object without touching its data: pandas and polars
    frames and series, pyarrow tables, numpy arrays; (len, 1) for anything else sized."""
    num_rows = getattr(obj, "num_rows", None)  # pyarrow
    if isinstance(num_rows, int):
        return num_rows, int(getattr(obj, "num_columns", 1))
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple) and shape and all(isinstance(n, int) for n in shape):
        return shape[0], shape[1] if len(shape) > 1 else 1
    try:
        return len(obj), 1
    except TypeError:
        return 1, 1
