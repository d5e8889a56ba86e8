"""Kernel requests from workers, served on the main thread between executions.

What only the main process can do for a handler: delete names from the user's namespace,
clear it, open a comm on a worker about an object of the namespace (a viewer), make a
snapshot now. Requests wait in the shell work queue behind what the frontend queued, so
they never run in the middle of user code; one that waited past its deadline is answered
with an error instead of being served late. Outputs (the `execute_input` of a `del`) are
parented to the frontend request that caused the kernel request, and precede the answer in
the funnel, so that request's idle still comes last (I3).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mpkernel.engine.execute import ExecutionEngine
from mpkernel.funnel.items import KernelAnswerItem, OpenBackendComm, Publish, SnapshotReady
from mpkernel.funnel.outbox import Outbox
from mpkernel.interrupt_shield import shielded
from mpkernel.kernel.work import KernelWork
from mpkernel.snapshots import OPENED_AS_OF
from mpkernel.snapshots.on_demand import OnDemandBuilder
from mpkernel.supervision.ipc import FORKED_SUBJECT
from mpkernel.wire import Header, WireError, json_bytes

if TYPE_CHECKING:
    from mpkernel.supervision.fork import ForkSite

log = logging.getLogger(__name__)


class KernelRequestFailed(Exception):
    """The request cannot be served; the message goes back to the handler."""


class KernelRequests:
    """Serves `KernelWork` items; one method per kernel request."""

    def __init__(
        self,
        engine: ExecutionEngine,
        outbox: Outbox,
        snapshots: OnDemandBuilder,
        target_served: Callable[[str], bool],
        viewers: ForkSite | None = None,
    ) -> None:
        """`viewers` forks the workers of viewers configured so, and follows their
        variables (`mpkernel.supervision.fork.ForkSite`); without it objects are copied."""
        self._engine = engine
        self._outbox = outbox
        self._snapshots = snapshots
        self._target_served = target_served
        self._viewers = viewers
        self._methods: dict[str, Callable[[Mapping[str, Any], Header | None], Any]] = {
            "delete": self._delete,
            "clear": self._clear,
            "view": self._view,
            "object": self._object,
            "snapshot": self._snapshot,
        }

    def serve(self, work: KernelWork) -> None:
        parent = _parent(work.parent_json)
        result: Any = None
        error: str | None = None
        method = self._methods.get(work.method)
        if time.monotonic() > work.deadline:
            error = f"kernel request {work.method!r} waited past its deadline behind user code"
        elif method is None:
            error = f"unknown kernel request {work.method!r}"
        else:
            try:
                result = method(work.params, parent)
            except KernelRequestFailed as e:
                error = str(e)
            except Exception as e:  # per request: the asking worker gets the error as its answer
                log.exception("kernel request %s failed", work.method)
                error = f"{type(e).__name__}: {e}"
        try:
            result_json = json_bytes(result)
        except (TypeError, ValueError) as e:
            result_json, error = b"null", f"result is not JSON: {e}"
        self._outbox.put(KernelAnswerItem(work.worker_key, work.call_id, result_json, error))

    # -- methods ---------------------------------------------------------------------------
    def _input_content(self, code: str) -> dict[str, Any]:
        # Shown as if typed at the prompt the console is at (the spec wants a number).
        return {"code": code, "execution_count": self._engine.shell.execution_count}

    def _names(self, params: Mapping[str, Any]) -> list[str]:
        names = params.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise KernelRequestFailed("'names' must be a list of strings")
        return names

    def _delete(self, params: Mapping[str, Any], parent: Header | None) -> list[str]:
        ns = self._engine.shell.user_ns
        deleted = [name for name in self._names(params) if name in ns]
        if deleted:
            # The console shows what happened to the namespace, as if the user typed it.
            self._outbox.put(
                Publish("execute_input", self._input_content("del " + ", ".join(deleted)), parent)
            )
            for name in deleted:
                del ns[name]
        self._send_snapshot(parent)
        return deleted

    def _clear(self, params: Mapping[str, Any], parent: Header | None) -> dict[str, Any]:
        shell = self._engine.shell
        include_hidden = bool(params.get("include_hidden", False))
        self._outbox.put(Publish("execute_input", self._input_content("%reset -sf"), parent))
        hidden = shell.user_ns_hidden
        keep = {} if include_hidden else {k: v for k, v in shell.user_ns.items() if k in hidden}
        shell.reset(new_session=False)
        shell.user_ns.update(keep)
        self._send_snapshot(parent)
        return {}

    def _view(self, params: Mapping[str, Any], parent: Header | None) -> dict[str, str]:
        target = params.get("target")
        path = params.get("path")
        if not isinstance(target, str) or not self._target_served(target):
            raise KernelRequestFailed(f"no worker serves comm target {target!r}")
        if not isinstance(path, list) or not path or not isinstance(path[0], str):
            raise KernelRequestFailed("'path' must be a list starting with a variable name")
        obj = resolve(self._engine.shell.user_ns, path)
        data = dict(params["data"]) if isinstance(params.get("data"), dict) else {}
        if len(path) == 1:
            # A variable itself (not an item of one): the viewer can follow it, from the
            # latest snapshot on (no execution runs while this request is served).
            data.setdefault("variable", path[0])
            data[OPENED_AS_OF] = self._snapshots.viewer_as_of(in_execution=False)
        comm_id = uuid.uuid4().hex
        variable = path[0] if len(path) == 1 else None
        if self._viewers is not None:
            with shielded():  # the fork reaches the io thread whole (`interrupt_shield`)
                # Between executions: the next cell that names the variable is news to it.
                forked = self._viewers.viewer(target, obj, comm_id, variable, fresh=False)
                if forked is not None:
                    item = OpenBackendComm(
                        comm_id, target, json_bytes(data), parent, FORKED_SUBJECT, forked
                    )
                    self._outbox.put(item)
                    return {"comm_id": comm_id}
        payload = self._payload(path, obj)
        self._outbox.put(OpenBackendComm(comm_id, target, json_bytes(data), parent, payload))
        return {"comm_id": comm_id}

    def _payload(self, path: list[Any], obj: Any) -> bytes:
        from mpkernel.snapshots.codec import encode_entry, encode_object

        entry = self._snapshots.current_entry(path[0], obj) if len(path) == 1 else None
        if entry is not None:
            payload = encode_entry(entry)  # already in shared memory: not written again
            if payload is not None:
                return payload
        return encode_object(obj)

    def _object(self, params: Mapping[str, Any], parent: Header | None) -> dict[str, str]:
        """A variable's whole value for a worker whose snapshot holds only its preview
        (a viewer that copies its table): written to shared memory, named in the answer."""
        name = params.get("name")
        if not isinstance(name, str):
            raise KernelRequestFailed("'name' must be a string")
        from mpkernel.snapshots.codec import encode_object

        payload = encode_object(resolve(self._engine.shell.user_ns, [name]))
        return {"payload": base64.b64encode(payload).decode("ascii")}

    def _snapshot(self, params: Mapping[str, Any], parent: Header | None) -> dict[str, int]:
        item = self._snapshots.now()
        self._outbox.put(item)
        return {"version": item.version}

    def _send_snapshot(self, parent: Header | None = None) -> None:
        item: SnapshotReady | None = self._snapshots.after_execute(None)
        if item is not None:
            self._outbox.put(item)
        if self._viewers is not None:
            self._viewers.after_execute(None, parent)


def resolve(namespace: Mapping[str, Any], path: list[Any]) -> Any:
    """The object at `path`: a variable name, then item keys (dict keys, indices)."""
    name = path[0]
    if name not in namespace:
        raise KernelRequestFailed(f"no variable {name!r}")
    obj = namespace[name]
    for key in path[1:]:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError) as e:
            raise KernelRequestFailed(f"{name}: no item {key!r} ({type(e).__name__})") from e
    return obj


def _parent(parent_json: bytes) -> Header | None:
    if not parent_json:
        return None
    try:
        return Header.from_dict(json.loads(parent_json))
    except (ValueError, TypeError, WireError):
        log.warning("kernel request with an unreadable parent header; outputs unparented")
        return None
