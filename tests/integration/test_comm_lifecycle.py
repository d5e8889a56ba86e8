"""Comm lifecycle and registry: backend-opened comms, frontend closes during bursts,
comm_info, and the mpkernel.health status.

Invariants (docs/architecture.md section 2) checked here: I5 (comm_open/comm_close from the main
process only; nothing on a comm after its comm_close; a backend comm_open precedes its first
comm_msg), I3 (the close request's idle waits for the worker), and docs/architecture.md section 3
(registry, comm_info).
"""

from __future__ import annotations

import os

import pytest

from tests.frontend import describe, kind, parent_id, recv
from tests.integration.comm_client import (
    ECHO,
    HEALTH,
    IOPubLog,
    assert_bracket,
    call,
    close_comm,
    comm_id_of,
    comm_info,
    execute_ok,
    health,
    is_event,
    is_reply,
    msg_type,
    open_comm,
    send_close,
    send_rpc,
    worker_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]


# --------------------------------------------------------------------------------------------
# I5


@pytest.mark.invariant("I5")
def test_backend_comms_open_before_their_first_message(log: IOPubLog) -> None:
    """I5: a cell opening ten backend comms publishes ten comm_opens (parented to the
    execute) before its idle; the frontend pipelines an emit on each as soon as its
    comm_open is seen; on every comm, the comm_open is the first message."""
    exec_id: str = log.kc.execute(
        "import mpkernel.comms\ncids = [mpkernel.comms.open('mpkernel.echo', {'i': i}) "
        "for i in range(10)]"
    )
    opened: list[str] = []
    rpcs = []
    while len(opened) < 10:
        m = log.wait_for(
            lambda m: msg_type(m) == "comm_open" and comm_id_of(m) not in opened,
            what="the next backend comm_open",
        )
        assert parent_id(m) == exec_id
        assert m["content"]["data"] == {"i": len(opened)}
        cid = m["content"]["comm_id"]
        opened.append(cid)
        rpcs.append((cid, *send_rpc(log.kc, cid, "emit", {"count": 20})))
    log.wait_idle(exec_id, *(h["msg_id"] for _, _, h in rpcs))
    for cid, rpc_id, header in rpcs:
        on_comm = log.on_comm(cid)
        assert msg_type(on_comm[0]) == "comm_open", describe(on_comm[:3])
        assert [kind(m) for m in on_comm].count("comm_open") == 1
        assert [is_event(m, cid) for m in on_comm].count(True) == 20
        assert any(is_reply(m, rpc_id, cid) for m in on_comm)
        assert_bracket(log.msgs, header["msg_id"])
    reply = recv(log.kc, "shell", lambda m: parent_id(m) == exec_id, what="execute_reply")
    assert reply["content"]["status"] == "ok"
    for cid in opened:
        close_comm(log, cid)


@pytest.mark.invariant("I5", "I3")
@pytest.mark.parametrize("when", ["pipelined", "after-first-event"])
def test_nothing_after_frontend_close_during_burst(log: IOPubLog, when: str) -> None:
    """I5 + I3: the frontend closes a comm while an emit(5000) burst on it is in flight
    (close sent right behind the emit request, or once the first event arrived). After the
    kernel takes the close (its busy), no message for that comm_id is published; the emit
    and close requests both get busy/idle; the handler saw on_close with reason
    frontend_closed; another comm on the same worker keeps working."""
    a = open_comm(log, ECHO)
    other = open_comm(log, ECHO)
    _, header = send_rpc(log.kc, a, "emit", {"count": 5000})
    if when == "after-first-event":
        log.wait_for(lambda m: is_event(m, a), what="the first event of the burst")
    close = send_close(log.kc, a)
    log.wait_idle(close["msg_id"], header["msg_id"])
    # Everything the worker had queued is ahead of this reply on the same pipe.
    journal = call(log, other, "journal").result
    close_busy = log.parented(close["msg_id"])[0]
    assert kind(close_busy) == "status:busy"
    late = [m for m in log.msgs[log.index(close_busy) :] if comm_id_of(m) == a]
    assert not late, (
        f"I5: {len(late)} messages on comm {a} after the frontend closed it, first:\n"
        f"{describe(late[:5])}"
    )
    assert_bracket(log.msgs, close["msg_id"])
    assert_bracket(log.msgs, header["msg_id"])
    closes = [e for e in journal if e["event"] == "close" and e["comm_id"] == a]
    assert [e["reason"] for e in closes] == ["frontend_closed"], journal
    events = [m["content"]["data"]["params"]["index"] for m in log.on_comm(a) if is_event(m)]
    assert events == list(range(len(events)))
    close_comm(log, other)


@pytest.mark.invariant("I5")
def test_rpc_on_closed_comm_gets_nothing(log: IOPubLog) -> None:
    """I5: a closed comm is gone from the registry: an RPC sent on it afterwards gets no
    reply (nothing on that comm id inside the request's busy/idle; a "No such comm" stderr
    line is allowed, ipykernel prints the same) and comm_info does not list it."""
    a = open_comm(log, ECHO)
    close_comm(log, a)
    _, header = send_rpc(log.kc, a, "echo", {"x": 1})
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert not [m for m in inner if comm_id_of(m) == a], describe(inner)
    assert a not in comm_info(log)


# --------------------------------------------------------------------------------------------
# comm_info (architecture section 3)


def test_comm_info_lists_and_filters(log: IOPubLog) -> None:
    """architecture section 3 registry: comm_info lists worker comms (frontend- and backend-opened),
    health comms and in-process comms with their targets; an empty or missing target_name
    means all; a target_name filters; closed comms are gone."""
    a = open_comm(log, ECHO)
    h = open_comm(log, HEALTH)
    msgs = execute_ok(
        log,
        "import comm, mpkernel.comms\n"
        "inproc = comm.create_comm(target_name='test.info', data={})\n"
        "backend = mpkernel.comms.open('mpkernel.echo')\n",
    )
    (inproc_open,) = [
        m for m in msgs if msg_type(m) == "comm_open" and m["content"]["target_name"] == "test.info"
    ]
    inproc = inproc_open["content"]["comm_id"]
    (backend_open,) = [
        m for m in msgs if msg_type(m) == "comm_open" and m["content"]["target_name"] == ECHO
    ]
    backend = backend_open["content"]["comm_id"]

    everything = comm_info(log)
    assert everything == comm_info(log, "")
    assert everything[a] == {"target_name": ECHO}
    assert everything[h] == {"target_name": HEALTH}
    assert everything[inproc] == {"target_name": "test.info"}
    assert everything[backend] == {"target_name": ECHO}
    echo_only = comm_info(log, ECHO)
    assert a in echo_only
    assert backend in echo_only
    assert all(v == {"target_name": ECHO} for v in echo_only.values())
    assert comm_info(log, "test.info") == {inproc: {"target_name": "test.info"}}
    assert comm_info(log, "no.such.target") == {}

    close_comm(log, a)
    close_comm(log, h)
    close_comm(log, backend)
    closed = execute_ok(log, "inproc.close()")
    assert [comm_id_of(m) for m in closed if msg_type(m) == "comm_close"] == [inproc]
    after = comm_info(log)
    for cid in (a, h, inproc, backend):
        assert cid not in after, (cid, after)


# --------------------------------------------------------------------------------------------
# health (mpkernel.health)


def test_health_status(log: IOPubLog) -> None:
    """architecture section 4 (limits, counters) / architecture section 7 (doctor on a running
    kernel): mpkernel.health status gives the kernel's pid, the echo worker with its pid (the one
    the echo comm reports), state, RSS, starts/crashes, and open_comms counting its comms; the
    comms table; the IOPub subscriber count."""
    a = open_comm(log, ECHO)
    b = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    status = health(log)
    assert status["pid"] != os.getpid()
    echo = worker_status(status, "echo")
    assert echo["pid"] == pid
    assert echo["target"] == ECHO
    assert echo["state"] == "ready"
    assert echo["open_comms"] == 2
    assert echo["crashes"] == 0
    assert echo["starts"] >= 1
    assert isinstance(echo["rss"], int)
    assert echo["rss"] > 0
    assert status["comms"][a]["target_name"] == ECHO
    assert status["comms"][b]["worker"] == echo["key"]
    assert status["iopub_subscribers"] >= 1
    close_comm(log, a)
    assert worker_status(health(log), "echo")["open_comms"] == 1
    close_comm(log, b)
