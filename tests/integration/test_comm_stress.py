"""Randomized ordering stress: cells that print and send in-process comm messages, pipelined
with frontend RPCs (emit bursts included) to two echo comms on two different workers.

One kernel serves every example. Each example sends all its requests without waiting, then
reads IOPub until every request is idle, and an oracle checks the whole log:

- I1 per-sender FIFO: the main thread's output (every cell's stdout/stderr lines and
  in-process comm sends) is, across all cells, exactly the programs' order; each worker's
  traffic on its comm (events, RPC replies, echoed data) is exactly the order of the requests
  sent to it, each emit's events in index order before its reply;
- I2: within a cell, no comm message overtakes a print made before it (part of the exact
  program order above);
- I3: one busy first and one idle last among each request's messages, worker output (events
  included) before the idle;
- I4: each reply parented to its request (full header equality);
- I5: the in-process comm's open precedes its messages, and nothing follows its close.

Violations are counted per invariant and must all be zero.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.frontend import KernelHandle, assert_no_leftovers, kind, parent_id, recv, stop_kernel
from tests.integration.comm_client import (
    ECHO,
    ECHO_HANDLER,
    IOPubLog,
    comm_id_of,
    execute_ok,
    is_event,
    msg_type,
    open_comm,
    parent_matches,
    rpc_data,
    send_data,
    start_configured_kernel,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only, pytest.mark.slow]

ECHO2 = "test.echo2"
CONFIG = f'[workers.echo2]\ntarget = "{ECHO2}"\nhandler = "{ECHO_HANDLER}"\n'
INPROC_TARGET = "test.stress"

# -- the operations ------------------------------------------------------------------------

#: a cell: a program of ("out" | "err" | "send") steps
Cell = tuple[str, tuple[str, ...]]
#: a comm request: ("rpc", comm index, method, emit count)
Rpc = tuple[str, int, str, int]

cells = st.tuples(
    st.just("cell"),
    st.lists(st.sampled_from(["out", "err", "send"]), max_size=10).map(tuple),
)
rpcs = st.tuples(
    st.just("rpc"),
    st.integers(0, 1),
    st.sampled_from(["echo", "emit", "data"]),
    st.integers(0, 400),
)
examples = st.lists(st.one_of(cells, rpcs), min_size=8, max_size=40)


@dataclass
class Stats:
    examples: int = 0
    messages: int = 0
    events: int = 0
    requests: int = 0
    violations: Counter[str] = field(default_factory=Counter)


@dataclass
class Session:
    handle: KernelHandle
    comms: tuple[str, str]
    inproc: str
    stats: Stats = field(default_factory=Stats)
    tokens: Iterator[int] = field(default_factory=itertools.count)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    path = Path(tmp_path_factory.mktemp("stress")) / "mpkernel.toml"
    path.write_text(CONFIG, encoding="utf-8")
    handle = start_configured_kernel(path)
    try:
        log = IOPubLog(handle.kc)
        a = open_comm(log, ECHO)
        b = open_comm(log, ECHO2)
        msgs = execute_ok(
            log,
            f"import comm, sys\nc = comm.create_comm(target_name={INPROC_TARGET!r})",
        )
        (opened,) = [m for m in msgs if msg_type(m) == "comm_open"]
        yield Session(handle, (a, b), opened["content"]["comm_id"])
        execute_ok(log, "c.close()")
        assert_no_leftovers(handle.kc)
    finally:
        stop_kernel(handle)


# -- sending -------------------------------------------------------------------------------


@dataclass
class Sent:
    """What one example sent, in order, and what the oracle expects from it."""

    executes: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    # comm index -> expected traffic on it: ("event", index) | ("reply", rpc_id) | ("data", tok)
    per_comm: dict[int, list[tuple[str, Any]]] = field(default_factory=lambda: {0: [], 1: []})
    rpcs: list[tuple[Any, dict[str, Any], int]] = field(default_factory=list)  # id, header, comm
    data: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)  # tok, header, comm
    request_ids: list[str] = field(default_factory=list)


def cell_code(program: list[tuple[str, str]]) -> str:
    lines = []
    for step, tok in program:
        if step == "out":
            lines.append(f"print({tok!r})")
        elif step == "err":
            lines.append(f"print({tok!r}, file=sys.stderr)")
        else:
            lines.append(f"c.send({{'tok': {tok!r}}})")
    return "\n".join(lines) or "pass"


def send_all(s: Session, ops: list[Cell | Rpc]) -> Sent:
    kc = s.handle.kc
    sent = Sent()
    for op in ops:
        tok = f"t{next(s.tokens)}"
        if op[0] == "cell":
            steps = cast(Cell, op)[1]
            program = [(step, f"{tok}.{i}") for i, step in enumerate(steps)]
            msg_id: str = kc.execute(cell_code(program))
            sent.executes.append((msg_id, program))
            sent.request_ids.append(msg_id)
            continue
        _, which, method, count = cast(Rpc, op)
        comm_id = s.comms[which]
        if method == "data":
            header = send_data(kc, comm_id, {"tok": tok})
            sent.data.append((tok, header, which))
            sent.per_comm[which].append(("data", tok))
        else:
            params = {"count": count} if method == "emit" else {"tok": tok}
            data = rpc_data(method, params, rpc_id=tok)
            header = send_data(kc, comm_id, data)
            sent.rpcs.append((tok, header, which))
            if method == "emit":
                sent.per_comm[which] += [("event", i) for i in range(count)]
            sent.per_comm[which].append(("reply", tok))
        sent.request_ids.append(header["msg_id"])
    return sent


# -- the oracle ----------------------------------------------------------------------------


def main_thread_items(msgs: list[dict[str, Any]], inproc: str) -> list[tuple[str, str]]:
    """The main thread's output in log order, as (step, token): stream lines (neighbouring
    messages of one stream name joined first) and in-process comm sends."""
    items: list[tuple[str, str]] = []
    pending: tuple[str, str] | None = None  # (stream name, text) not yet split

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            name, text = pending
            step = "out" if name == "stdout" else "err"
            items.extend((step, line) for line in text.split("\n")[:-1])
            if not text.endswith("\n"):
                items.append((step, "<partial line>" + text.rsplit("\n", 1)[-1]))
            pending = None

    for m in msgs:
        t = msg_type(m)
        if t == "stream":
            name = m["content"]["name"]
            if pending is not None and pending[0] == name:
                pending = (name, pending[1] + m["content"]["text"])
            else:
                flush()
                pending = (name, m["content"]["text"])
        elif t == "comm_msg" and comm_id_of(m) == inproc:
            flush()
            items.append(("send", m["content"]["data"]["tok"]))
    flush()
    return items


def check(s: Session, log: IOPubLog, sent: Sent) -> Counter[str]:
    bad: Counter[str] = Counter()
    msgs = log.msgs
    pos = {id(m): i for i, m in enumerate(msgs)}
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for m in msgs:
        by_parent.setdefault(parent_id(m), []).append(m)

    def idle_of(msg_id: str) -> dict[str, Any] | None:
        idles = [m for m in by_parent.get(msg_id, []) if kind(m) == "status:idle"]
        return idles[0] if idles else None

    # I3: one busy first, one idle last, per request.
    for rid in sent.request_ids:
        mine = [kind(m) for m in by_parent.get(rid, [])]
        if mine.count("status:busy") != 1 or mine.count("status:idle") != 1:
            bad["I3 busy/idle count"] += 1
        elif mine[0] != "status:busy" or mine[-1] != "status:idle":
            bad["I3 busy first, idle last"] += 1

    # I1 + I2 for the main thread: across all cells, exactly the programs' order; each
    # cell's output parented to that cell.
    expected_main = [item for _, program in sent.executes for item in program]
    if main_thread_items(msgs, s.inproc) != expected_main:
        bad["I1/I2 main-thread order"] += 1
    for msg_id, program in sent.executes:
        if main_thread_items(by_parent.get(msg_id, []), s.inproc) != program:
            bad["I1/I2 cell output parented to its cell"] += 1

    # I1 per worker: the traffic on each comm is exactly what its requests call for, in order.
    replies: dict[Any, dict[str, Any]] = {}
    for which, comm_id in enumerate(s.comms):
        got: list[tuple[str, Any]] = []
        for m in msgs:
            if comm_id_of(m) != comm_id:
                continue
            data = m["content"]["data"]
            if is_event(m):
                got.append(("event", data["params"]["index"]))
            elif "result" in data or "error" in data:
                got.append(("reply", data["id"]))
                replies[data["id"]] = m
            else:
                got.append(("data", data.get("tok")))
                replies[("data", data.get("tok"))] = m
        if got != sent.per_comm[which]:
            bad["I1 worker order"] += 1

    # I4: each reply (and each echoed datum) parented to its request; I3: before its idle.
    for key, header, _ in [*sent.rpcs, *((("data", t), h, w) for t, h, w in sent.data)]:
        reply = replies.get(key)
        idle = idle_of(header["msg_id"])
        if reply is None:
            bad["I4 reply missing"] += 1
            continue
        if not parent_matches(reply, header):
            bad["I4 reply parent"] += 1
        if idle is None or pos[id(reply)] > pos[id(idle)]:
            bad["I3 reply after idle"] += 1
    # (An event after its RPC's idle is caught by the two checks above: events come before
    # their reply on the worker's comm, and the reply before the idle.)

    # I5: the in-process comm is never closed mid-run and never re-opened.
    for m in msgs:
        if comm_id_of(m) in (s.inproc, *s.comms) and msg_type(m) in ("comm_open", "comm_close"):
            bad["I5 unexpected open/close"] += 1
    return bad


def _parented_to(msg_id: str, msg: dict[str, Any]) -> bool:
    return parent_id(msg) == msg_id


# -- the test ------------------------------------------------------------------------------


@pytest.mark.invariant("I1", "I2", "I3", "I4", "I5")
@settings(
    max_examples=60,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each run is costly
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=examples)
def test_ordering_stress(session: Session, ops: list[Cell | Rpc]) -> None:
    """I1, I2, I3, I4, I5 under random pipelined interleavings (see the module docstring):
    zero violations over every example; the totals are printed (pytest -s)."""
    s = session
    log = IOPubLog(s.handle.kc)
    sent = send_all(s, ops)
    log.wait_idle(*sent.request_ids, timeout=60)
    for msg_id, _ in sent.executes:
        reply = recv(s.handle.kc, "shell", partial(_parented_to, msg_id), what="execute_reply")
        assert reply["content"]["status"] == "ok", reply["content"]
    bad = check(s, log, sent)
    s.stats.examples += 1
    s.stats.messages += len(log.msgs)
    s.stats.events += sum(is_event(m) for m in log.msgs)
    s.stats.requests += len(sent.request_ids)
    s.stats.violations.update(bad)
    print(
        f"stress: {s.stats.examples} examples, {s.stats.requests} requests, "
        f"{s.stats.messages} IOPub messages ({s.stats.events} events), "
        f"violations {dict(s.stats.violations) or 0}",
        file=sys.stderr,
    )
    assert not bad, f"ordering violations in this example: {dict(bad)}; ops={ops}"


# -- the oracle must not be vacuous ---------------------------------------------------------


def _fake_log() -> tuple[Session, Sent, list[dict[str, Any]]]:
    """A correct log for: one cell (print, send, print) and one emit(2) RPC on comm 0."""

    def header(msg_id: str, msg_type_: str) -> dict[str, Any]:
        return {
            "msg_id": msg_id,
            "msg_type": msg_type_,
            "session": "s",
            "username": "u",
            "date": "2026-01-01T00:00:00.000000Z",
            "version": "5.3",
        }

    def msg(t: str, parent: dict[str, Any] | None, content: dict[str, Any]) -> dict[str, Any]:
        return {"header": {"msg_type": t}, "parent_header": parent or {}, "content": content}

    exe, rpc = header("exe", "execute_request"), header("rpc", "comm_msg")
    program = [("out", "a"), ("send", "b"), ("out", "c")]
    s = Session(handle=None, comms=("A", "B"), inproc="C")  # type: ignore[arg-type]
    sent = Sent(
        executes=[("exe", program)],
        per_comm={0: [("event", 0), ("event", 1), ("reply", "r")], 1: []},
        rpcs=[("r", rpc, 0)],
        request_ids=["exe", "rpc"],
    )
    busy, idle = {"execution_state": "busy"}, {"execution_state": "idle"}
    log = [
        msg("status", exe, busy),
        msg("status", rpc, busy),
        msg("stream", exe, {"name": "stdout", "text": "a\n"}),
        msg("comm_msg", None, {"comm_id": "A", "data": {"method": "e", "params": {"index": 0}}}),
        msg("comm_msg", exe, {"comm_id": "C", "data": {"tok": "b"}}),
        msg("comm_msg", None, {"comm_id": "A", "data": {"method": "e", "params": {"index": 1}}}),
        msg("comm_msg", rpc, {"comm_id": "A", "data": {"id": "r", "result": {}}}),
        msg("status", rpc, idle),
        msg("stream", exe, {"name": "stdout", "text": "c\n"}),
        msg("status", exe, idle),
    ]
    return s, sent, log


def _check_fake(msgs: list[dict[str, Any]]) -> Counter[str]:
    s, sent, _ = _fake_log()
    log = IOPubLog(kc=None, msgs=msgs)
    return check(s, log, sent)


def _swap(msgs: list[dict[str, Any]], i: int, j: int) -> list[dict[str, Any]]:
    out = list(msgs)
    out[i], out[j] = out[j], out[i]
    return out


def test_oracle_accepts_a_correct_log_and_counts_each_violation() -> None:
    """The stress oracle is not vacuous: a correct log passes, and each kind of violation
    (I1/I2 send before print, I1 worker reorder, I3 reply after idle, I3 second busy, I4
    wrong parent, I5 comm_close mid-run) is counted."""
    _, _, good = _fake_log()
    assert _check_fake(good) == Counter()
    assert _check_fake(_swap(good, 2, 4))["I1/I2 main-thread order"] == 1
    assert _check_fake(_swap(good, 3, 5))["I1 worker order"] == 1
    assert _check_fake(_swap(good, 6, 7))["I3 reply after idle"] == 1
    late_event = _swap(good, 5, 7)  # event 1 after the idle: also after the reply
    assert _check_fake(late_event)["I1 worker order"] == 1
    assert _check_fake([*good[:3], good[1], *good[3:]])["I3 busy/idle count"] == 1
    wrong_parent = dict(good[6], parent_header=dict(good[6]["parent_header"], msg_id="x"))
    assert _check_fake([*good[:6], wrong_parent, *good[7:]])["I4 reply parent"] == 1
    close = {"header": {"msg_type": "comm_close"}, "parent_header": {}, "content": {"comm_id": "C"}}
    assert _check_fake([*good, close])["I5 unexpected open/close"] == 1
