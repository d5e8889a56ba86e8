"""IOPub as a whole: subscription welcome, nothing lost under volume, pipelined brackets.

Invariants (docs/architecture.md section 2) checked here: I7 (nothing lost; welcome then starting),
I3 (request bracket for pipelined requests), I1 (per-sender FIFO across requests),
docs/architecture.md section 5 (every subscribe gets an iopub_welcome).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

from tests.conftest import KERNEL_NAME, register
from tests.frontend import (
    Gate,
    KernelHandle,
    assert_no_leftovers,
    coalesce_streams,
    collect_until_idle,
    describe,
    execute,
    get_reply,
    kind,
    of_type,
    pending,
    recv,
    run_ok,
    send_request,
    stop_kernel,
    stream_text,
    sync,
)

pytestmark = pytest.mark.integration


def is_welcome(msg: dict[str, Any]) -> bool:
    return kind(msg) == "iopub_welcome"


@pytest.mark.invariant("I7")
@pytest.mark.mpkernel_only
def test_first_subscriber_gets_welcome_then_starting(request: pytest.FixtureRequest) -> None:
    """I7: the first IOPub subscriber receives iopub_welcome {subscription: ""} and then
    status starting, before anything else (startup output is held until a subscriber;
    ipykernel sometimes publishes debugpy's startup warning on stderr first)."""
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    assert km.provisioner is not None
    pid: int = km.provisioner.pid  # type: ignore[attr-defined]
    handle = KernelHandle(KERNEL_NAME, km, kc, pid, ("shell", "iopub", "stdin", "control"))
    try:
        register(request.node, handle)
        first = recv(kc, "iopub", timeout=60, what="the first IOPub message")
        assert first["header"]["msg_type"] == "iopub_welcome", describe([first])
        assert first["content"] == {"subscription": ""}
        assert first["parent_header"] == {}
        second = recv(kc, "iopub", timeout=60, what="status starting")
        assert kind(second) == "status:starting", describe([second])
        sync(kc)
    finally:
        stop_kernel(handle)


@pytest.mark.mpkernel_only
def test_every_new_subscriber_gets_a_welcome(shared_kernel: KernelHandle) -> None:
    """architecture section 5 (XPUB_VERBOSE): a second frontend subscribing to a running kernel gets
    its own iopub_welcome; the welcome is broadcast, so the first frontend sees one too."""
    # A session of its own, as a second frontend has: `km.client()` would share the first
    # client's, and `stop_channels` creates (and connects) the shell, stdin and control
    # sockets it never started, with that session's routing id, which takes the first
    # client's connections over (ROUTER_HANDOVER) and leaves it unserved.
    km = shared_kernel.km
    second = km.client(
        session=Session(key=km.session.key, signature_scheme=km.session.signature_scheme)
    )
    second.start_channels(shell=False, stdin=False, hb=False, control=False)
    try:
        welcome = recv(second, "iopub", is_welcome, timeout=30, what="iopub_welcome")
        assert welcome["content"] == {"subscription": ""}
        recv(shared_kernel.kc, "iopub", is_welcome, timeout=30, what="the broadcast welcome")
        ex = run_ok(shared_kernel.kc, "print('both see this')")
        assert ex.stdout() == "both see this\n"
        seen = collect_until_idle(second, ex.msg_id)
        assert [kind(m) for m in seen] == [kind(m) for m in ex.iopub]
        assert_no_leftovers(second, ["iopub"])
    finally:
        second.stop_channels()


@pytest.mark.invariant("I7")
def test_large_output_is_complete(kc: BlockingKernelClient) -> None:
    """I7 nothing lost: 20000 printed lines all arrive, in order, before idle."""
    ex = run_ok(kc, "for i in range(20000):\n    print(i)", timeout=60)
    assert ex.stdout() == "".join(f"{i}\n" for i in range(20000))


@pytest.mark.invariant("I7", "I1")
def test_many_displays_are_complete(kc: BlockingKernelClient) -> None:
    """I7 nothing lost + I1 FIFO: 500 display_data messages arrive, in order, before idle."""
    code = (
        "from IPython.display import display\n"
        "for i in range(500):\n"
        "    display({'text/plain': str(i)}, raw=True)"
    )
    ex = run_ok(kc, code, timeout=60)
    shown = [m["content"]["data"]["text/plain"] for m in of_type(ex.iopub, "display_data")]
    assert shown == [str(i) for i in range(500)]


@pytest.mark.invariant("I3", "I1")
def test_pipelined_requests_are_bracketed_in_order(kc: BlockingKernelClient) -> None:
    """I3 + I1: 30 execute requests sent without waiting each get busy ... idle with only
    their own messages inside, in request order, and their replies in the same order."""
    ids = [execute(kc, f"print({i})") for i in range(30)]
    order: list[str] = []
    for i, msg_id in enumerate(ids):
        msgs = collect_until_idle(kc, msg_id)
        assert [m["content"]["text"] for m in coalesce_streams(of_type(msgs, "stream"))] == [
            f"{i}\n"
        ]
        order.append(msg_id)
    replies = [get_reply(kc, msg_id) for msg_id in ids]
    assert [r["parent_header"]["msg_id"] for r in replies] == order
    counts = [r["content"]["execution_count"] for r in replies]
    assert counts == list(range(counts[0], counts[0] + 30))


@pytest.mark.invariant("I3")
def test_iopub_arrival_order_across_requests(kc: BlockingKernelClient) -> None:
    """I3: on the wire, request n's idle comes before request n+1's busy (one request runs at
    a time and its bracket closes before the next opens)."""
    ids = [execute(kc, f"x_{i} = {i}") for i in range(10)]
    seen: list[tuple[str | None, str]] = []
    while len([s for s in seen if s[1] == "status:idle"]) < len(ids):
        m = recv(kc, "iopub", timeout=30, what="IOPub messages of the pipelined requests")
        seen.append((m["parent_header"].get("msg_id"), kind(m)))
    for msg_id in ids:
        get_reply(kc, msg_id)
    parents_in_order: list[str | None] = []
    for parent, _ in seen:
        if not parents_in_order or parents_in_order[-1] != parent:
            parents_in_order.append(parent)
    assert parents_in_order == ids, f"interleaved brackets: {seen}"


@pytest.mark.invariant("I3")
def test_control_is_answered_while_code_runs(kernel_factory: Callable[..., KernelHandle]) -> None:
    """architecture section 1 + I3: control requests are answered while user code runs: kernel_info
    on control gets its reply and its own busy/idle while the cell is still blocked."""
    handle = kernel_factory()
    kc = handle.kc
    with Gate() as gate:
        msg_id = execute(kc, gate.code + "print('done')")
        gate.wait_blocked()
        info_id = send_request(kc, "kernel_info_request", channel="control")
        reply = get_reply(kc, info_id, "control")
        assert reply["content"]["status"] == "ok"
        bracket = collect_until_idle(kc, info_id)
        assert [kind(m) for m in bracket] == ["status:busy", "status:idle"]
        early = [m for m in pending(kc, "iopub") if m["parent_header"].get("msg_id") == msg_id]
        assert "status:idle" not in [kind(m) for m in early], "the blocked cell reported idle"
        gate.open()
        rest = collect_until_idle(kc, msg_id)
    assert stream_text(rest) == "done\n"
    get_reply(kc, msg_id)
