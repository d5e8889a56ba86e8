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
This script drives the kernel with ``mpkernel.client`` and imports nothing of the test
session (its conftest, fixtures or helpers).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from mpkernel.client import CommClient, Frontend
from mpkernel.client.messages import Msg
from mpkernel.client.rpc import is_frontend_request

TIMEOUT = 30.0


class Client:
    def __init__(self, connection_file: str) -> None:
        # Ready means: welcomed on IOPub, answered on shell (no heartbeat: see connect).
        self.frontend = Frontend.connect(connection_file)
        self.comms = CommClient(self.frontend)
        self.frontend.wait_welcome(timeout=TIMEOUT)
        self.frontend.get_reply(self.frontend.send_request("kernel_info_request"), timeout=TIMEOUT)

    def open_comm(self, target: str) -> str:
        return self.comms.open(target, timeout=TIMEOUT)

    def run(self, code: str) -> None:
        self.frontend.run_ok(code, timeout=TIMEOUT)

    def ask(self, comm_id: str, rpc_id: str) -> dict[str, Any]:
        params = {"method": "test.question", "params": {"asked_by": os.getpid()}}
        self.comms.send_rpc(comm_id, "ask_frontend", params, rpc_id)

        def is_request(m: Msg) -> bool:
            return (
                is_frontend_request(m, comm_id)
                and m["content"]["data"]["method"] == "test.question"
            )

        request: dict[str, Any] = self.comms.log.wait_for(
            is_request, timeout=TIMEOUT, what=f"the frontend request of comm {comm_id}"
        )["content"]["data"]
        return request

    def input(self, code: str) -> None:
        self.frontend.wait_stdin_routable(timeout=TIMEOUT)
        self.frontend.input_request(self.frontend.execute(code, allow_stdin=True), timeout=TIMEOUT)


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
        client.frontend.execute(scenario["background"])
    print(json.dumps({"pid": os.getpid(), "comms": comms, "asks": asks}), flush=True)
    for line in sys.stdin:
        if line.strip() == "close":
            client.frontend.close()
            print("closed", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], json.loads(sys.argv[2])))
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the test, then exit 1
        print(f"disconnect_client failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
