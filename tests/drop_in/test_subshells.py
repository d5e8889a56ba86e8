"""The drop-in comparison for kernel subshells (JEP 91), which nbclient does not drive: the
same conversation with ipykernel 7 and with mpkernel, reduced to what a frontend relies on,
must be equal.

The conversation: kernel_info's features; create, list, delete (twice) and list again on
control; a cell on the subshell that reads a name the main shell defined (its outputs, in
order, and its reply); a request and a comm message for a subshell that does not exist (the
error reply and the bracket); `%subshell` on the subshell. (A comm message for a subshell
that does not exist is left out: ipykernel answers it with a `comm_reply`, a message type the
protocol does not have, and logs to stderr outside any request; mpkernel gives it its busy
and idle only: docs/subshells.md.) Ids, counts and thread ids are
reduced away; a reply is compared by its status and, for an error, its `ename` and `evalue`,
except a control error reply's `ename`: ipykernel's has only `evalue`, mpkernel's also the
spec's `ename` and `traceback`.
"""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.conftest import SharedKernel, register
from tests.drop_in.conftest import REFERENCE, UNDER_TEST
from tests.frontend import Msg, collect_until_idle, get_reply, kinds, run_ok
from tests.integration.subshell_client import control, execute_on, run_on

pytestmark = pytest.mark.integration

MISSING = "00000000-0000-0000-0000-000000000000"


def outcome(
    content: dict[str, Any], subshell_id: str | None = None, keys: tuple[str, ...] = ("ename",)
) -> dict[str, Any]:
    """A reply as compared: its status, and an error's `keys` and message (ids replaced)."""
    seen: dict[str, Any] = {"status": content["status"]}
    for key in (*keys, "evalue"):
        if key in content:
            text = str(content[key])
            seen[key] = text.replace(subshell_id, "<id>") if subshell_id else text
    return seen


def outputs(iopub: list[Msg]) -> list[Any]:
    seen: list[Any] = []
    for m in iopub:
        msg_type = m["header"]["msg_type"]
        if msg_type == "stream":
            seen.append((m["content"]["name"], m["content"]["text"]))
        elif msg_type == "execute_result":
            seen.append(("result", m["content"]["data"].get("text/plain")))
        else:
            seen.append(msg_type)
    return seen


def conversation(kc: BlockingKernelClient) -> list[Any]:
    said: list[Any] = []
    msg_id = kc.kernel_info()
    features = get_reply(kc, msg_id)["content"]["supported_features"]
    collect_until_idle(kc, msg_id)
    said.append(("kernel subshells", "kernel subshells" in features))

    created = control(kc, "create_subshell_request")[0]["content"]
    subshell_id = created["subshell_id"]
    said.append(("create", sorted(created), created["status"]))
    listed = control(kc, "list_subshell_request")[0]["content"]
    said.append(("list", listed["status"], listed["subshell_id"] == [subshell_id]))

    run_ok(kc, "x_for_subshell = 41")
    reply, iopub = run_on(kc, subshell_id, "print(x_for_subshell + 1)\nx_for_subshell + 2")
    said.append(("execute", outcome(reply["content"]), outputs(iopub)))

    lines = run_on(kc, subshell_id, "%subshell")[1]
    text = "".join(m["content"]["text"] for m in lines if m["header"]["msg_type"] == "stream")
    said.append(("%subshell labels", [line.split(":")[0] for line in text.splitlines()]))
    said.append(("%subshell names it", f"subshell id: {subshell_id}" in text))

    missing = execute_on(kc, MISSING, "print('never')")
    said.append(("unknown subshell", outcome(get_reply(kc, missing)["content"], MISSING)))
    said.append(("unknown subshell iopub", kinds(collect_until_idle(kc, missing))))

    deleted = control(kc, "delete_subshell_request", {"subshell_id": subshell_id})[0]
    said.append(("delete", outcome(deleted["content"])))
    again = control(kc, "delete_subshell_request", {"subshell_id": subshell_id})[0]
    said.append(("delete again", outcome(again["content"], subshell_id, keys=())))
    listed = control(kc, "list_subshell_request")[0]["content"]
    said.append(("list after delete", listed))
    return said


def test_subshell_conversation_matches_ipykernel(
    kernels: dict[str, SharedKernel], request: pytest.FixtureRequest
) -> None:
    said: dict[str, list[Any]] = {}
    for name, kernel in kernels.items():
        handle = kernel.get()
        register(request.node, handle)
        try:
            said[name] = conversation(handle.kc)
        except BaseException:
            handle.dirty = True
            raise
    assert said[REFERENCE][0] == ("kernel subshells", True), "ipykernel 7 has subshells"
    for ours, theirs in zip(said[UNDER_TEST], said[REFERENCE], strict=True):
        assert ours == theirs
