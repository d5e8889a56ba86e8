"""Control-channel requests and shell messages addressed to a subshell.

Single job: what a frontend asks on control (interrupt, a debugger's DAP requests, the
subshell requests of JEP 91) and how it addresses a shell message to a subshell (the
``subshell_id`` of its header). Each request is waited to its reply and its busy..idle.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from mpkernel.client.errors import expect
from mpkernel.client.frontend import Frontend
from mpkernel.client.iopub_log import DEFAULT_TIMEOUT
from mpkernel.client.messages import Msg, describe, kind, msg_type

Dap = dict[str, Any]

#: The arguments of JupyterLab's DAP ``initialize``.
JUPYTERLAB_INITIALIZE: Dap = {
    "clientID": "jupyterlab",
    "clientName": "JupyterLab",
    "adapterID": "python",
    "pathFormat": "path",
    "linesStartAt1": True,
    "columnsStartAt1": True,
    "supportsVariableType": True,
    "supportsVariablePaging": True,
    "supportsRunInTerminalRequest": True,
    "locale": "en",
}


def control(
    frontend: Frontend, msg_type: str, content: Mapping[str, Any] | None = None
) -> tuple[Msg, list[Msg]]:
    """A control request; its reply and its busy..idle on IOPub."""
    return frontend.request(msg_type, content, channel="control")


def interrupt(frontend: Frontend) -> Msg:
    """interrupt_request (the kernelspec's ``interrupt_mode`` is ``message``): its reply."""
    reply, _ = control(frontend, "interrupt_request")
    return reply


class Debugger:
    """A frontend's debugger: DAP requests as debug_request on control, each numbered."""

    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self._seq = itertools.count(1)

    def request(self, command: str, arguments: Dap | None = None) -> tuple[Dap, list[Msg]]:
        """One DAP request: the DAP response (checked against the request) and the IOPub
        bracket of its debug_request."""
        content = {
            "type": "request",
            "seq": next(self._seq),
            "command": command,
            "arguments": arguments or {},
        }
        reply, iopub = control(self.frontend, "debug_request", content)
        expect(msg_type(reply) == "debug_reply", lambda: f"not a debug_reply: {describe([reply])}")
        response: Dap = reply["content"]
        expect(
            response.get("type") == "response"
            and response.get("request_seq") == content["seq"]
            and response.get("command") == command,
            lambda: f"DAP response does not answer {command} #{content['seq']}: {response}",
        )
        return response, iopub

    def start(self) -> None:
        """What JupyterLab sends when the debugger is switched on."""
        self.request("debugInfo")
        self.request("initialize", JUPYTERLAB_INITIALIZE)
        self.request("attach")
        self.request("configurationDone")

    def event(self, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> Dap:
        """The next debug_event ``name`` on IOPub."""
        msg = self.frontend.recv(
            "iopub",
            lambda m: kind(m) == "debug_event" and m["content"].get("event") == name,
            timeout=timeout,
            what=f"the debug_event {name!r}",
        )
        event: Dap = msg["content"]
        return event

    def drop_events(self) -> list[Msg]:
        """Take the debug_events nobody asked for (modules, threads, output)."""
        return self.frontend.mailbox.claim("iopub", lambda m: kind(m) == "debug_event")


# -- subshells -----------------------------------------------------------------------------
def create_subshell(frontend: Frontend) -> str:
    """create_subshell_request: the new subshell's id."""
    reply, _ = control(frontend, "create_subshell_request")
    expect(
        reply["content"]["status"] == "ok", lambda: f"create_subshell failed: {reply['content']}"
    )
    subshell_id: str = reply["content"]["subshell_id"]
    return subshell_id


def delete_subshell(frontend: Frontend, subshell_id: str) -> dict[str, Any]:
    """delete_subshell_request: its reply's content."""
    reply, _ = control(frontend, "delete_subshell_request", {"subshell_id": subshell_id})
    content: dict[str, Any] = reply["content"]
    return content


def list_subshells(frontend: Frontend) -> list[str]:
    """list_subshell_request: the subshell ids."""
    reply, _ = control(frontend, "list_subshell_request")
    ids: list[str] = reply["content"]["subshell_id"]
    return ids


def send_on(
    frontend: Frontend,
    subshell_id: str | None,
    msg_type: str,
    content: Mapping[str, Any] | None = None,
) -> str:
    """A shell message on ``subshell_id`` (None: the main shell); returns its msg_id."""
    msg_id: str = frontend.send(msg_type, content, header={"subshell_id": subshell_id})["msg_id"]
    return msg_id


def execute_on(
    frontend: Frontend,
    subshell_id: str | None,
    code: str,
    *,
    allow_stdin: bool = False,
    stop_on_error: bool = True,
) -> str:
    """An execute_request on ``subshell_id``; returns its msg_id."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": allow_stdin,
        "stop_on_error": stop_on_error,
    }
    return send_on(frontend, subshell_id, "execute_request", content)


def run_on(
    frontend: Frontend, subshell_id: str | None, code: str, timeout: float = DEFAULT_TIMEOUT
) -> tuple[Msg, list[Msg]]:
    """Execute on a subshell: its reply and its busy..idle."""
    msg_id = execute_on(frontend, subshell_id, code)
    iopub = frontend.collect_until_idle(msg_id, timeout)
    return frontend.get_reply(msg_id, timeout=timeout), iopub
