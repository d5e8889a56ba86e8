"""The two sides `positron_diff.py` drives with the same steps.

`MpkernelSide`: a real mpkernel started through jupyter_client, spoken to as Positron does
(comm_open, id-less JSON-RPC comm_msgs on shell, answers and events read on IOPub).

`PositronSide`: Positron's own variables and data explorer services, their code run
unmodified from the fetched files, in this process. What lies outside the two panes is an
inert stand-in: the kernel object (a namespace, a hidden namespace, `del_var`), the comm
(a `comm.base_comm.BaseComm` that records what it would publish, installed as
`comm.create_comm` the way Positron's own tests do), the connections service (supports
nothing). An execution is what Positron's kernel does around one: snapshot the namespace,
run the code, poll the variables.

Both sides answer a step with plain JSON-like data:
- an execution: `{"variables": [events], "<table>": [events]}` (each open comm's events;
  a comm the backend closed shows `{"comm_close": data}`);
- a request: `{"reply": data, "events": [...]}` (events it caused, if any).
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from _positron_cases import Schema, key

from mpkernel.client import MessageTimeout
from mpkernel.client.rpc import is_response, rpc_data

VARIABLES = "positron.variables"
EXPLORER = "positron.dataExplorer"
TIMEOUT = 60.0
# After an execution's idle, how long to keep reading IOPub for events that follow it (an
# update from a worker that was still importing a library, a profile's result).
LATE_EVENTS_S = 0.5


def resolve(params: Any, schemas: dict[int, Any]) -> Any:
    """`params` with each `Schema(i)` replaced by column i's schema from `schemas`."""
    if isinstance(params, Schema):
        return schemas[params.index]
    if isinstance(params, dict):
        return {k: resolve(v, schemas) for k, v in params.items()}
    if isinstance(params, list):
        return [resolve(v, schemas) for v in params]
    return params


# -- Positron's services, in process -------------------------------------------------------------
class PositronSide:
    name = "positron"

    def __init__(self, root: Path) -> None:
        sys.path.insert(0, str(root))
        import comm
        from comm.base_comm import BaseComm

        class RecordingComm(BaseComm):  # type: ignore[misc]  # comm ships no type information
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.messages: list[dict[str, Any]] = []
                super().__init__(*args, **kwargs)

            def publish_msg(self, msg_type: str, **msg: Any) -> None:
                self.messages.append({"msg_type": msg_type, **msg})

        comm.create_comm = RecordingComm
        self._comm_class = RecordingComm
        from positron.data_explorer import DataExplorerService  # type: ignore[import-not-found]
        from positron.utils import BackgroundJobQueue  # type: ignore[import-not-found]
        from positron.variables import VariablesService  # type: ignore[import-not-found]

        self._services = (VariablesService, DataExplorerService, BackgroundJobQueue)
        self.explorers: dict[str, Any] = {}

    def start_case(self) -> dict[str, Any]:
        variables_service, explorer_service, job_queue = self._services
        self.jobs = job_queue(max_workers=2)
        self.kernel = _StandInKernel(explorer_service(EXPLORER, self.jobs), self.jobs)
        self.service = variables_service(self.kernel)
        self.pane = self._comm_class(target_name=VARIABLES, comm_id=str(uuid.uuid4()))
        self.pane.messages.clear()
        self.explorers = {}
        self.service.on_comm_open(self.pane, {})
        return {"variables": self._take(self.pane)}

    def run(self, code: str) -> dict[str, Any]:
        self.service.snapshot_user_ns()
        exec(compile(code, "<case>", "exec"), self.kernel.shell.user_ns)
        self.service.poll_variables()
        return self._all_events()

    def variables(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._request(self.pane, method, params)

    def view(self, name: str) -> dict[str, Any]:
        answer = self.variables("view", {"path": [key(name)]})
        comm_id = answer["reply"].get("result")
        if isinstance(comm_id, str):
            explorer = self.kernel.data_explorer_service.comms[comm_id].comm
            explorer.messages.clear()
            self.explorers[name] = explorer
        return answer

    def explore(self, name: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._request(self.explorers[name], method, params)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kernel.data_explorer_service.shutdown()
        self.jobs.executor.shutdown(wait=True)

    def _request(self, target: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
        seen = len(target.messages)
        msg_id = str(uuid.uuid4())
        target.handle_msg(
            {
                "header": {"msg_id": msg_id, "msg_type": "comm_msg"},
                "parent_header": {},
                "metadata": {},
                "content": {"comm_id": target.comm_id, "data": rpc_data(method, params)},
                "buffers": [],
            }
        )
        # A profile request answers at once and computes on the job queue.
        concurrent.futures.wait(list(self.jobs.pending_futures), timeout=TIMEOUT)
        new = [_as_sent(m) for m in target.messages[seen:]]
        del target.messages[seen:]
        replies = [m["data"] for m in new if _is_reply(m)]
        events = [_event(m) for m in new if not _is_reply(m)]
        return {"reply": replies[0] if replies else None, "events": events}

    def _take(self, target: Any) -> list[Any]:
        events = [_event(m) for m in map(_as_sent, target.messages) if not _is_reply(m)]
        target.messages.clear()
        return events

    def _all_events(self) -> dict[str, Any]:
        out = {"variables": self._take(self.pane)}
        for name, explorer in self.explorers.items():
            events = self._take(explorer)
            if events:
                out[name] = events
        return out


def _as_sent(m: dict[str, Any]) -> dict[str, Any]:
    """A published message as the frontend would read it: through JSON, as the kernel's
    session sends it (enums become their values, tuples lists)."""
    out: dict[str, Any] = json.loads(json.dumps(m, default=str))
    return out


def _is_reply(m: dict[str, Any]) -> bool:
    data = m.get("data")
    return m["msg_type"] == "comm_msg" and isinstance(data, dict) and "method" not in data


def _event(m: dict[str, Any]) -> Any:
    if m["msg_type"] == "comm_close":
        return {"comm_close": m.get("data") or {}}
    data = m.get("data") or {}
    return {"method": data.get("method"), "params": data.get("params")}


class _Shell:
    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {"__builtins__": builtins}
        self.user_ns_hidden: dict[str, Any] = {"__builtins__": builtins}

    def del_var(self, name: str, by_name: bool = False) -> None:
        del self.user_ns[name]


class _NoConnections:
    def object_is_supported(self, value: Any) -> bool:
        return False

    def variable_has_active_connection(self, name: str) -> bool:
        return False


class _StandInKernel:
    def __init__(self, data_explorer_service: Any, job_queue: Any) -> None:
        self.shell = _Shell()
        self.data_explorer_service = data_explorer_service
        self.connections_service = _NoConnections()
        self.job_queue = job_queue

    def publish_execute_input(self, code: str, parent: Any) -> None:
        pass


# -- mpkernel, through jupyter_client -----------------------------------------------------------
class MpkernelSide:
    name = "mpkernel"

    def __init__(self, kernel_name: str = "mpkernel") -> None:
        from jupyter_client.manager import KernelManager

        from mpkernel.client import Frontend

        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=TIMEOUT)
        self.frontend = Frontend(self.kc)
        self.iopub = self.frontend.log()
        self.pane: str | None = None
        self.explorers: dict[str, str] = {}
        self.seen: dict[str, int] = {}  # comm id -> events already reported
        # The workers import the table libraries once, before anything is compared.
        self.start_case()
        self.run("import numpy, pandas, polars, pyarrow\n_w = pandas.DataFrame({'a': [1]})")

    def start_case(self) -> dict[str, Any]:
        for comm_id in [self.pane, *self.explorers.values()]:
            if comm_id is not None:
                self._send("comm_close", {"comm_id": comm_id, "data": {}})
        self._execute("%reset -f")
        self.explorers = {}
        self.pane = str(uuid.uuid4())
        msg_id = self._send(
            "comm_open", {"comm_id": self.pane, "target_name": VARIABLES, "data": {}}
        )
        self._until_idle(msg_id)
        self._until(lambda: bool(self._events(self.pane, peek=True)))
        return {"variables": self._events(self.pane)}

    def run(self, code: str) -> dict[str, Any]:
        self._execute(code)
        out: dict[str, Any] = {"variables": self._events(self.pane)}
        for name, comm_id in self.explorers.items():
            events = self._events(comm_id)
            if events:
                out[name] = events
        return out

    def variables(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.pane is not None
        return self._request(self.pane, method, params)

    def view(self, name: str) -> dict[str, Any]:
        answer = self.variables("view", {"path": [key(name)]})
        comm_id = answer["reply"].get("result")
        if isinstance(comm_id, str):
            self.explorers[name] = comm_id
            self.seen[comm_id] = len(self._comm_events(comm_id))
        return answer

    def explore(self, name: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = self._request(self.explorers[name], method, params)
        if method == "get_column_profiles" and not answer["events"]:
            comm_id = self.explorers[name]
            self._until(lambda: bool(self._events(comm_id, peek=True)))
            answer["events"] += self._events(comm_id)
        return answer

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)

    # -- IOPub ------------------------------------------------------------------------------
    def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        return self.frontend.send_request(msg_type, content)

    def _execute(self, code: str) -> None:
        self._until_idle(self.frontend.execute(code, store_history=False))

    def _request(self, comm_id: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        msg_id = self._send("comm_msg", {"comm_id": comm_id, "data": rpc_data(method, params)})
        self._until_idle(msg_id)
        replies = [
            m["content"]["data"] for m in self.iopub.parented(msg_id) if is_response(m, comm_id)
        ]
        return {"reply": replies[0] if replies else None, "events": self._events(comm_id)}

    def _read(self, timeout: float) -> bool:
        try:
            self.iopub.read_one(timeout=timeout, what="IOPub")
        except MessageTimeout:
            return False
        return True

    def _until_idle(self, msg_id: str) -> None:
        self.iopub.wait_idle(msg_id, timeout=TIMEOUT)
        while self._read(LATE_EVENTS_S):
            pass

    def _until(self, done: Any) -> None:
        self.iopub.read_until(done, timeout=TIMEOUT, what="more on IOPub")

    def _comm_events(self, comm_id: str | None) -> list[Any]:
        out = []
        for m in self.iopub.msgs:
            content = m["content"]
            if content.get("comm_id") != comm_id:
                continue
            if m["msg_type"] == "comm_close":
                out.append({"comm_close": content.get("data") or {}})
            elif m["msg_type"] == "comm_msg" and "method" in content["data"]:
                data = content["data"]
                out.append({"method": data["method"], "params": data.get("params")})
        return out

    def _events(self, comm_id: str | None, *, peek: bool = False) -> list[Any]:
        assert comm_id is not None
        events = self._comm_events(comm_id)
        seen = self.seen.get(comm_id, 0)
        if not peek:
            self.seen[comm_id] = len(events)
        return events[seen:]
