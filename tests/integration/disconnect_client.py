"""A frontend in a process of its own, for the disconnect tests (``test_disconnect.py``).

    python disconnect_client.py CONNECTION_FILE SCENARIO_JSON

The scenario is a JSON object; every key is optional:

- ``comms``: ``{name: target}``: comms to open, in order (each waits for its open's idle);
- ``setup``: code to run (waits for an ok execute_reply), e.g. ``"x = 42"``;
- ``ask``: names of comms on which to call the echo RPC ``ask_frontend``; for each, the
  client waits until the handler's request to the frontend has arrived on IOPub and never
  answers it;
- ``input``: code that calls ``input()``, sent with ``allow_stdin``; the client waits for the
  input_request and never answers it;
- ``background``: code sent last, without waiting for anything (e.g. a cell held by a
  ``tests.frontend.Gate``).

Then the client writes one JSON line to stdout::

    {"pid": ..., "comms": {name: comm_id}, "asks": {name: {"rpc_id": ..., "request": ...}}}

(``request`` is the data of the handler's request to the frontend) and reads commands from
stdin, one a line:

- ``close``: ``stop_channels()``, which also destroys the client's zmq context, so every
  socket is closed and its TCP connection shut when it returns; then it writes ``closed``
  and stays alive (a frontend that went away without exiting) until EOF;
- EOF: exit without closing anything explicitly.

Every wait has a deadline. On any failure the client writes the reason to stderr and exits
with status 1, so the test that started it fails with that reason instead of hanging.
This script imports only jupyter_client and zmq: it must not touch the test session's
environment.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

import zmq
from jupyter_client.blocking.client import BlockingKernelClient

TIMEOUT = 30.0

Msg = dict[str, Any]


class Client:
    def __init__(self, connection_file: str) -> None:
        self.kc = BlockingKernelClient(connection_file=connection_file)
        self.kc.load_connection_file()
        # No heartbeat channel: wait_for_ready() would declare the kernel dead when a busy
        # machine delays one beat. Ready here means: welcomed on IOPub, answered on shell.
        self.kc.start_channels(hb=False)
        self.iopub: list[Msg] = []
        self._wait("iopub", lambda m: m["msg_type"] == "iopub_welcome", "iopub_welcome")
        msg_id = self.kc.kernel_info()
        self._wait(
            "shell", lambda m: m["parent_header"].get("msg_id") == msg_id, "kernel_info_reply"
        )

    def _wait(self, channel: str, match: Callable[[Msg], bool], what: str) -> Msg:
        store: list[Msg] = self.iopub if channel == "iopub" else []
        for m in store:
            if match(m):
                return m
        get = getattr(self.kc, f"get_{channel}_msg")
        deadline = time.monotonic() + TIMEOUT
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got: Msg = get(timeout=remaining)
            except Empty:
                continue
            store.append(got)
            if match(got):
                return got
        raise TimeoutError(f"no {what} on {channel} within {TIMEOUT}s")

    def wait_idle(self, msg_id: str) -> None:
        self._wait(
            "iopub",
            lambda m: (
                m["parent_header"].get("msg_id") == msg_id
                and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
            ),
            f"idle for {msg_id}",
        )

    def send_shell(self, msg_type: str, content: dict[str, Any]) -> str:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.shell_channel.send(msg)
        msg_id: str = msg["header"]["msg_id"]
        return msg_id

    def open_comm(self, target: str) -> str:
        comm_id = os.urandom(16).hex()
        msg_id = self.send_shell(
            "comm_open", {"comm_id": comm_id, "target_name": target, "data": {}}
        )
        self.wait_idle(msg_id)
        refused = [
            m
            for m in self.iopub
            if m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm_id
        ]
        if refused:
            raise RuntimeError(f"comm_open on {target} refused: {refused[0]['content']}")
        return comm_id

    def run(self, code: str) -> None:
        msg_id = self.kc.execute(code)
        reply = self._wait(
            "shell", lambda m: m["parent_header"].get("msg_id") == msg_id, "execute_reply"
        )
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{code!r} failed: {reply['content']}")
        self.wait_idle(msg_id)

    def ask(self, comm_id: str, rpc_id: str) -> dict[str, Any]:
        data = {
            "jsonrpc": "2.0",
            "id": rpc_id,
            "method": "ask_frontend",
            "params": {"method": "test.question", "params": {"asked_by": os.getpid()}},
        }
        self.send_shell("comm_msg", {"comm_id": comm_id, "data": data})

        def is_request(m: Msg) -> bool:
            d = m["content"].get("data")
            return (
                m["msg_type"] == "comm_msg"
                and m["content"]["comm_id"] == comm_id
                and isinstance(d, dict)
                and d.get("method") == "test.question"
                and "id" in d
            )

        request: dict[str, Any] = self._wait(
            "iopub", is_request, f"the frontend request of comm {comm_id}"
        )["content"]["data"]
        return request

    def wait_stdin_routable(self) -> None:
        """Until the kernel can route an input_request to this client. The stdin socket
        connects asynchronously, and an input_request sent before the kernel knows the peer
        fails at once (ROUTER_MANDATORY): probe with ``input()`` cells, answered with "",
        until one gets its prompt."""
        poller = zmq.Poller()
        stdin, shell = self.kc.stdin_channel, self.kc.shell_channel
        poller.register(stdin.socket, zmq.POLLIN)
        poller.register(shell.socket, zmq.POLLIN)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg_id = self.kc.execute(
                "input()", allow_stdin=True, store_history=False, stop_on_error=False
            )
            while (remaining := deadline - time.monotonic()) > 0:
                if not poller.poll(int(remaining * 1000) + 1):
                    continue
                if stdin.msg_ready():
                    if stdin.get_msg(timeout=0)["parent_header"].get("msg_id") == msg_id:
                        self.kc.input("")
                        self.run_reply(msg_id)
                        return
                elif shell.msg_ready():
                    reply = shell.get_msg(timeout=0)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break  # input() failed: not routable yet; probe again
        raise TimeoutError(f"stdin not routable within {TIMEOUT}s")

    def run_reply(self, msg_id: str) -> None:
        self._wait("shell", lambda m: m["parent_header"].get("msg_id") == msg_id, "reply")
        self.wait_idle(msg_id)

    def input(self, code: str) -> None:
        self.wait_stdin_routable()
        msg_id = self.kc.execute(code, allow_stdin=True)
        self._wait(
            "stdin",
            lambda m: (
                m["msg_type"] == "input_request" and m["parent_header"].get("msg_id") == msg_id
            ),
            "input_request",
        )


def main(connection_file: str, scenario: dict[str, Any]) -> int:
    client = Client(connection_file)
    comms = {name: client.open_comm(target) for name, target in scenario.get("comms", {}).items()}
    if scenario.get("setup"):
        client.run(scenario["setup"])
    asks = {}
    for name in scenario.get("ask", []):
        rpc_id = f"ask-{name}"
        asks[name] = {"rpc_id": rpc_id, "request": client.ask(comms[name], rpc_id)}
    if scenario.get("input"):
        client.input(scenario["input"])
    if scenario.get("background"):
        client.kc.execute(scenario["background"])
    print(json.dumps({"pid": os.getpid(), "comms": comms, "asks": asks}), flush=True)
    for line in sys.stdin:
        if line.strip() == "close":
            client.kc.stop_channels()
            print("closed", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], json.loads(sys.argv[2])))
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the test, then exit 1
        print(f"disconnect_client failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
