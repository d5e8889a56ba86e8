"""A frontend's side of kernel subshells (JEP 91): the control requests, and shell messages
addressed to a subshell by the ``subshell_id`` of their header."""

from __future__ import annotations

from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import DEFAULT_TIMEOUT, Msg, collect_until_idle, get_reply


def control(
    kc: BlockingKernelClient, msg_type: str, content: dict[str, Any] | None = None
) -> tuple[Msg, list[Msg]]:
    """A control request; its reply and its busy..idle on IOPub."""
    msg = kc.session.msg(msg_type, content or {})
    kc.control_channel.send(msg)
    msg_id: str = msg["header"]["msg_id"]
    reply = get_reply(kc, msg_id, "control")
    return reply, collect_until_idle(kc, msg_id)


def create_subshell(kc: BlockingKernelClient) -> str:
    reply, _ = control(kc, "create_subshell_request")
    assert reply["content"]["status"] == "ok", reply["content"]
    subshell_id: str = reply["content"]["subshell_id"]
    return subshell_id


def delete_subshell(kc: BlockingKernelClient, subshell_id: str) -> dict[str, Any]:
    reply, _ = control(kc, "delete_subshell_request", {"subshell_id": subshell_id})
    content: dict[str, Any] = reply["content"]
    return content


def list_subshells(kc: BlockingKernelClient) -> list[str]:
    reply, _ = control(kc, "list_subshell_request")
    ids: list[str] = reply["content"]["subshell_id"]
    return ids


def send_on(
    kc: BlockingKernelClient,
    subshell_id: str | None,
    msg_type: str,
    content: dict[str, Any] | None = None,
) -> str:
    """A shell message on ``subshell_id`` (None: the main shell); returns its msg_id."""
    msg = kc.session.msg(msg_type, content or {})
    msg["header"]["subshell_id"] = subshell_id
    kc.shell_channel.send(msg)
    msg_id: str = msg["header"]["msg_id"]
    return msg_id


def execute_on(
    kc: BlockingKernelClient,
    subshell_id: str | None,
    code: str,
    *,
    allow_stdin: bool = False,
    stop_on_error: bool = True,
) -> str:
    return send_on(
        kc,
        subshell_id,
        "execute_request",
        {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        },
    )


def run_on(
    kc: BlockingKernelClient, subshell_id: str | None, code: str, timeout: float = DEFAULT_TIMEOUT
) -> tuple[Msg, list[Msg]]:
    """Execute on a subshell; its reply and its busy..idle."""
    msg_id = execute_on(kc, subshell_id, code)
    iopub = collect_until_idle(kc, msg_id, timeout)
    return get_reply(kc, msg_id, timeout=timeout), iopub
