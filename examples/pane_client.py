"""A second frontend beside nbclient acting as Positron's panes (`run_notebook.py --panes`).

It connects to the kernel nbclient started (plain pyzmq, signing with jupyter_client's
Session), opens the variables pane (`positron.variables`) and, after each cell, reports what
the pane was told. When a cell opens a data explorer (`mpkernel.view`), it reads the table's
state and first rows as the explorer would. When a cell opens the diagnostic echo comm
(`mpkernel.comms.open("mpkernel.echo")`), it asks that comm's worker process to crash, and
reports the JSON-RPC error and the `comm_close` the kernel sends for it, while the kernel and
the namespace go on. Requests are sent as Positron sends them: no JSON-RPC `id`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import zmq
from jupyter_client.session import Session

Msg = dict[str, Any]
TIMEOUT_S = 60.0


class PaneClient:
    def __init__(self, info: dict[str, Any]) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        key = info["key"]
        self.session = Session(
            key=key if isinstance(key, bytes) else key.encode(),
            signature_scheme=info["signature_scheme"],
        )
        address = f"{info['transport']}://{info['ip']}:"
        self.shell = self.context.socket(zmq.DEALER)
        self.shell.connect(address + str(info["shell_port"]))
        self.iopub = self.context.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(address + str(info["iopub_port"]))
        for sock in (self.shell, self.iopub):
            sock.setsockopt(zmq.LINGER, 0)
        self.variables = uuid.uuid4().hex
        #: what the panes saw, by the request it is about (the execution a change follows)
        self.seen: dict[str | None, list[str]] = {}
        self._pending_opens: list[Msg] = []
        # The kernel welcomes each subscription; after that nothing published is missed.
        self._read_until(lambda m: m["msg_type"] == "iopub_welcome")
        opened = self._send(
            "comm_open",
            {"comm_id": self.variables, "target_name": "positron.variables", "data": {}},
        )
        self._read_until(lambda m: _is_idle(m, opened))

    def close(self) -> None:
        self.context.destroy(linger=0)

    def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        msg_id: str = self.session.send(self.shell, msg_type, content)["header"]["msg_id"]
        return msg_id

    def _rpc(self, comm_id: str, method: str, params: dict[str, Any]) -> Any:
        data = {"jsonrpc": "2.0", "method": method, "params": params}
        msg_id = self._send("comm_msg", {"comm_id": comm_id, "data": data})
        answer: list[Any] = []

        def answered(msg: Msg) -> bool:
            if msg["msg_type"] == "comm_msg" and _parent(msg) == msg_id:
                body = msg["content"]["data"]
                if "result" in body or "error" in body:
                    answer.append(body)
            return bool(answer) and _is_idle(msg, msg_id)

        self._read_until(answered)
        return answer[0]

    def _read_until(self, done: Any) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            if not self.iopub.poll(int(min(left, 1.0) * 1000)):
                continue
            _, msg = self.session.recv(self.iopub, mode=zmq.NOBLOCK)
            self._observe(msg)
            if done(msg):
                return
        raise TimeoutError("the kernel did not answer in time")

    def _observe(self, msg: Msg) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_msg" and content.get("comm_id") == self.variables:
            data = content["data"]
            if data.get("method") in ("update", "refresh"):
                line = _describe_variables(data["method"], data.get("params", {}))
                self.seen.setdefault(_parent(msg), []).append(line)
        elif msg["msg_type"] == "comm_open":
            self._pending_opens.append(msg)

    def _note(self, parent: str, line: str) -> None:
        self.seen.setdefault(parent, []).append(line)

    def after_cell(self, msg_id: str) -> None:
        """Read up to the idle of the cell whose execute_request was `msg_id`, and act on
        the comms it opened, as Positron would."""
        self._read_until(lambda m: _is_idle(m, msg_id))
        opened, self._pending_opens = self._pending_opens, []
        for msg in opened:
            target = msg["content"].get("target_name")
            comm_id = msg["content"]["comm_id"]
            if target == "positron.dataExplorer":
                self._explore(comm_id, _parent(msg) or msg_id)
            elif target == "mpkernel.echo":
                self._crash(comm_id, _parent(msg) or msg_id)

    def finish(self) -> dict[str | None, list[str]]:
        """Everything seen, once what the kernel and the pane published before now has
        arrived. The pane's news of the last cell may follow that cell's idle (a busy pane
        does not hold the console); its worker answers `list` only after the news of the
        snapshots it was sent before, and the kernel sent the last cell's before its idle."""
        self._rpc(self.variables, "list", {})
        barrier = self._send("kernel_info_request", {})
        self._read_until(lambda m: _is_idle(m, barrier))
        return self.seen

    def _explore(self, comm_id: str, parent: str) -> None:
        state = self._rpc(comm_id, "get_state", {})["result"]
        shape = state["table_shape"]
        columns = shape["num_columns"]
        schema = self._rpc(comm_id, "get_schema", {"column_indices": list(range(columns))})[
            "result"
        ]["columns"]
        rows = min(5, shape["num_rows"])
        selection = {"first_index": 0, "last_index": rows - 1}
        values = self._rpc(
            comm_id,
            "get_data_values",
            {
                "columns": [{"column_index": i, "spec": selection} for i in range(columns)],
                "format_options": {
                    "large_num_digits": 2,
                    "small_num_digits": 4,
                    "max_integral_digits": 7,
                    "max_value_length": 30,
                    "thousands_sep": ",",
                },
            },
        )["result"]["columns"]
        title = f"data explorer {state['display_name']!r}"
        self._note(parent, f"{title}: {shape['num_rows']} rows x {columns} columns")
        names = [c["column_name"] for c in schema]
        width = max(len(n) for n in names) + 2
        self._note(parent, "  " + "".join(n.rjust(width) for n in names))
        for r in range(rows):
            cells = [str(values[c][r]) for c in range(columns)]
            self._note(parent, "  " + "".join(v.rjust(width) for v in cells))

    def _crash(self, comm_id: str, parent: str) -> None:
        self._note(parent, "echo comm opened by the cell; asking its worker process to crash")
        data = {"jsonrpc": "2.0", "method": "crash", "params": {"how": "exit"}}
        msg_id = self._send("comm_msg", {"comm_id": comm_id, "data": data})
        seen: list[str] = []

        def closed(msg: Msg) -> bool:
            content = msg["content"]
            if msg["msg_type"] == "comm_msg" and _parent(msg) == msg_id:
                error = content["data"].get("error", {})
                seen.append(f"the request got a JSON-RPC error: {error.get('message')}")
            if msg["msg_type"] == "comm_close" and content.get("comm_id") == comm_id:
                seen.append(f"then comm_close: {content.get('data', {}).get('reason')}")
            return len(seen) == 2

        self._read_until(closed)
        for line in seen:
            self._note(parent, line)


def _parent(msg: Msg) -> str | None:
    return (msg.get("parent_header") or {}).get("msg_id")


def _is_idle(msg: Msg, msg_id: str) -> bool:
    return (
        msg["msg_type"] == "status"
        and msg["content"]["execution_state"] == "idle"
        and _parent(msg) == msg_id
    )


def _describe_variables(method: str, params: dict[str, Any]) -> str:
    if method == "refresh":
        names = [v["display_name"] for v in params.get("variables", [])]
        return f"variables pane: {', '.join(names) or '(empty)'}"
    changed = [
        f"{v['display_name']} = {v['display_value']} ({v['display_type']})"
        for v in params.get("assigned", [])
    ]
    # Removed variables come as access keys: JSON naming the variable.
    removed = [str(json.loads(key).get("data", key)) for key in params.get("removed", [])]
    text = "variables pane update: " + ("; ".join(changed) or "nothing assigned")
    return text + (f"; removed {', '.join(removed)}" if removed else "")
