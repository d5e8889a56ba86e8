"""Kernel subshells (JEP 91) for the tests: ``mpkernel.client.control``'s subshell requests
on the shared frontend of a jupyter_client client (``kc``)."""

from __future__ import annotations

from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

from mpkernel.client import control as _control
from tests.frontend import DEFAULT_TIMEOUT, Msg, frontend


def control(
    kc: BlockingKernelClient, msg_type: str, content: dict[str, Any] | None = None
) -> tuple[Msg, list[Msg]]:
    """A control request; its reply and its busy..idle on IOPub."""
    return _control.control(frontend(kc), msg_type, content)


def create_subshell(kc: BlockingKernelClient) -> str:
    return _control.create_subshell(frontend(kc))


def delete_subshell(kc: BlockingKernelClient, subshell_id: str) -> dict[str, Any]:
    return _control.delete_subshell(frontend(kc), subshell_id)


def list_subshells(kc: BlockingKernelClient) -> list[str]:
    return _control.list_subshells(frontend(kc))


def send_on(
    kc: BlockingKernelClient,
    subshell_id: str | None,
    msg_type: str,
    content: dict[str, Any] | None = None,
) -> str:
    """A shell message on ``subshell_id`` (None: the main shell); returns its msg_id."""
    return _control.send_on(frontend(kc), subshell_id, msg_type, content)


def execute_on(
    kc: BlockingKernelClient,
    subshell_id: str | None,
    code: str,
    *,
    allow_stdin: bool = False,
    stop_on_error: bool = True,
) -> str:
    return _control.execute_on(
        frontend(kc), subshell_id, code, allow_stdin=allow_stdin, stop_on_error=stop_on_error
    )


def run_on(
    kc: BlockingKernelClient, subshell_id: str | None, code: str, timeout: float = DEFAULT_TIMEOUT
) -> tuple[Msg, list[Msg]]:
    """Execute on a subshell; its reply and its busy..idle."""
    return _control.run_on(frontend(kc), subshell_id, code, timeout)
