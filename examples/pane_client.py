"""A second frontend beside nbclient acting as Positron's panes (`run_notebook.py --panes`).

It connects to the kernel nbclient started (a frontend of its own, `mpkernel.client`),
opens the variables pane (`positron.variables`) and, after each cell, reports what the pane
was told. When a cell opens a data explorer (`mpkernel.view`), it reads the table's
state and first rows as the explorer would. When a cell opens the diagnostic echo comm
(`mpkernel.comms.open("mpkernel.echo")`), it asks that comm's worker process to crash, and
reports the JSON-RPC error and the `comm_close` the kernel sends for it, while the kernel and
the namespace go on. Requests are sent as Positron sends them: no JSON-RPC `id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mpkernel.client import Frontend
from mpkernel.client.comms import new_comm_id
from mpkernel.client.messages import Msg, msg_type, parent_id, status_of
from mpkernel.client.rpc import RpcRequest, is_response_to, rpc_data

TIMEOUT_S = 60.0


class PaneClient:
    def __init__(self, info: dict[str, Any]) -> None:
        self.frontend = Frontend.connect(info, channels=("shell", "iopub"))
        self.variables = new_comm_id()
        #: what the panes saw, by the request it is about (the execution a change follows)
        self.seen: dict[str | None, list[str]] = {}
        self._pending_opens: list[Msg] = []
        # The kernel welcomes each subscription; after that nothing published is missed.
        self.frontend.wait_welcome(timeout=TIMEOUT_S)
        opened = self._send(
            "comm_open",
            {"comm_id": self.variables, "target_name": "positron.variables", "data": {}},
        )
        self._read_until(status_of(opened, "idle"))

    def close(self) -> None:
        self.frontend.close()

    def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        return self.frontend.send_request(msg_type, content)

    def _rpc(self, comm_id: str, method: str, params: dict[str, Any]) -> Any:
        header = self.frontend.send(
            "comm_msg", {"comm_id": comm_id, "data": rpc_data(method, params)}
        )
        request = RpcRequest(header)
        answer: list[Any] = []

        def answered(msg: Msg) -> bool:
            if is_response_to(msg, request):
                answer.append(msg["content"]["data"])
            return bool(answer) and status_of(request.msg_id, "idle")(msg)

        self._read_until(answered)
        return answer[0]

    def _read_until(self, done: Callable[[Msg], bool]) -> None:
        """Read IOPub, noting what the panes see, until ``done``."""

        def until(msg: Msg) -> bool:
            self._observe(msg)
            return done(msg)

        self.frontend.observe("iopub", until, timeout=TIMEOUT_S, what="the kernel's answer")

    def _observe(self, msg: Msg) -> None:
        content = msg["content"]
        if msg_type(msg) == "comm_msg" and content.get("comm_id") == self.variables:
            data = content["data"]
            if data.get("method") in ("update", "refresh"):
                line = _describe_variables(data["method"], data.get("params", {}))
                self.seen.setdefault(parent_id(msg), []).append(line)
        elif msg_type(msg) == "comm_open":
            self._pending_opens.append(msg)

    def _note(self, parent: str, line: str) -> None:
        self.seen.setdefault(parent, []).append(line)

    def after_cell(self, msg_id: str) -> None:
        """Read up to the idle of the cell whose execute_request was `msg_id`, and act on
        the comms it opened, as Positron would."""
        self._read_until(status_of(msg_id, "idle"))
        opened, self._pending_opens = self._pending_opens, []
        for msg in opened:
            target = msg["content"].get("target_name")
            comm_id = msg["content"]["comm_id"]
            if target == "positron.dataExplorer":
                self._explore(comm_id, parent_id(msg) or msg_id)
            elif target == "mpkernel.echo":
                self._crash(comm_id, parent_id(msg) or msg_id)

    def finish(self) -> dict[str | None, list[str]]:
        """Everything seen, once what the kernel and the pane published before now has
        arrived. The pane's news of the last cell may follow that cell's idle (a busy pane
        does not hold the console); its worker answers `list` only after the news of the
        snapshots it was sent before, and the kernel sent the last cell's before its idle."""
        self._rpc(self.variables, "list", {})
        barrier = self._send("kernel_info_request", {})
        self._read_until(status_of(barrier, "idle"))
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
            if msg_type(msg) == "comm_msg" and parent_id(msg) == msg_id:
                error = content["data"].get("error", {})
                seen.append(f"the request got a JSON-RPC error: {error.get('message')}")
            if msg_type(msg) == "comm_close" and content.get("comm_id") == comm_id:
                seen.append(f"then comm_close: {content.get('data', {}).get('reason')}")
            return len(seen) == 2

        self._read_until(closed)
        for line in seen:
            self._note(parent, line)


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
