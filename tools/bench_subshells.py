"""Subshell scenarios (JEP 91), on mpkernel and on ipykernel 7 alike.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py subshells`).

- `subshell_busy`: the main shell runs a cell that blocks (on a socket this tool holds) while
  `x = 1` executes on a subshell, each from its send to its idle: what a subshell console on
  a busy notebook feels like.
- `subshell_idle`: `pass` on the main shell, with no subshell and then with N idle ones: idle
  subshells must cost the main shell nothing.
- `subshell_comm`: an in-process comm (registered through the `comm` package, on both
  kernels the same handler) answers an echo request sent on a subshell, request -> answer
  and idle.
"""

from __future__ import annotations

import gc
import socket
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from _benchclient import Client, execute_content
from _benchdriver import Figure, Live, Round, Samples, Scenario, Target, median
from _benchkernels import BenchError

TIMEOUT_S = 30.0
IDLE_SUBSHELLS = 8
ECHO_TARGET = "bench.subshell_echo"
SETUP_CODE = textwrap.dedent(
    f"""
    import comm as _bench_comm
    def _bench_open(c, msg):
        c.on_msg(lambda m: c.send({{"jsonrpc": "2.0", "result": m["content"]["data"]["params"]}}))
    _bench_comm.get_comm_manager().register_target({ECHO_TARGET!r}, _bench_open)
    """
)


def create_subshell(client: Client) -> str:
    ex = client.exchange(
        "control", client.prepare("create_subshell_request", {}), timeout_s=TIMEOUT_S
    )
    content = {} if ex.reply is None else ex.reply.content
    if content.get("status") != "ok":
        raise BenchError(f"create_subshell_request failed: {content}")
    return str(content["subshell_id"])


def delete_subshell(client: Client, subshell_id: str) -> None:
    client.exchange(
        "control",
        client.prepare("delete_subshell_request", {"subshell_id": subshell_id}),
        timeout_s=TIMEOUT_S,
    )


def subshell_of(live: Live) -> str:
    """The side's one subshell for these scenarios, created once per kernel (the kernel is
    shared with other groups: this module's keys in its state are prefixed)."""
    subshell_id = live.state.get("subshells.subshell")
    if subshell_id is None:
        subshell_id = live.state["subshells.subshell"] = create_subshell(live.client)
    return str(subshell_id)


@contextmanager
def main_shell_busy(client: Client) -> Iterator[None]:
    """The main shell runs a cell that blocks until the block ends (on a socket of ours)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(TIMEOUT_S)
    port = server.getsockname()[1]
    code = (
        "import socket as _bench_socket\n"
        f"with _bench_socket.create_connection(('127.0.0.1', {port})) as _bench_gate:\n"
        "    _bench_gate.recv(1)\n"
    )
    prepared = client.prepare("execute_request", execute_content(code))
    client.send_prepared("shell", prepared)
    try:
        conn, _ = server.accept()
    except TimeoutError:
        server.close()
        raise BenchError("the main shell's blocking cell did not start") from None
    try:
        yield
    finally:
        conn.sendall(b"x")
        conn.close()
        server.close()
        client.wait_iopub(
            lambda got: got.parent_id == prepared.msg_id and got.is_status("idle"),
            timeout_s=TIMEOUT_S,
            what="the idle of the blocking cell",
        )


def busy(r: Round) -> Samples:
    live = r.live()
    client = live.client
    subshell_id = subshell_of(live)
    samples: list[float] = []
    with main_shell_busy(client):
        gc.disable()
        try:
            with client.on_subshell(subshell_id):
                for _ in range(r.size):
                    samples.append(client.execute("x = 1", timeout_s=TIMEOUT_S).to_idle_ns / 1e3)
        finally:
            gc.enable()
    if r.index == 0:
        r.say(f"{r.size} executes on a subshell while the main shell is busy")
    return {"busy_us": samples}


def idle(r: Round) -> Samples:
    client = r.live().client

    def block() -> list[float]:
        gc.collect()
        gc.disable()
        try:
            return [
                client.execute("pass", timeout_s=TIMEOUT_S).to_idle_ns / 1e3 for _ in range(r.size)
            ]
        finally:
            gc.enable()

    without = block()
    subshells = [create_subshell(client) for _ in range(IDLE_SUBSHELLS)]
    try:
        with_them = block()
    finally:
        for subshell_id in subshells:
            delete_subshell(client, subshell_id)
    ratio = median(with_them) / median(without)
    r.say(f"`pass` with {IDLE_SUBSHELLS} idle subshells / without: {ratio:.2f}")
    return {"none_us": without, "idle_us": with_them, "idle_over_none": [ratio]}


def comm(r: Round) -> Samples:
    live = r.live()
    client = live.client
    subshell_id = subshell_of(live)
    comm_id = live.state.get("subshells.echo_comm")
    if comm_id is None:
        client.execute(SETUP_CODE, timeout_s=TIMEOUT_S)
        with client.on_subshell(subshell_id):
            comm_id = live.state["subshells.echo_comm"] = client.comm_open(
                ECHO_TARGET, timeout_s=TIMEOUT_S
            )
    samples: list[float] = []
    gc.disable()
    try:
        with client.on_subshell(subshell_id):
            for n in range(r.size):
                answer = client.comm_request(str(comm_id), "echo", {"n": n}, timeout_s=TIMEOUT_S)
                if answer.data != {"jsonrpc": "2.0", "result": {"n": n}}:
                    r.problem(f"echo answered {answer.data!r}")
                samples.append((answer.done_ns - answer.exchange.sent_ns) / 1e3)
    finally:
        gc.enable()
    return {"comm_us": samples}


SCENARIOS = [
    Scenario(
        "subshell_busy",
        "execute on a subshell while the main shell runs a cell, send -> idle",
        busy,
        figures=(
            Figure("subshell execute, main busy, p50 (us)", "busy_us", "p50"),
            Figure("  p99 (us)", "busy_us", "p99"),
        ),
        rounds=5,
        size=100,
        quick_rounds=1,
        quick_size=20,
    ),
    Scenario(
        "subshell_idle",
        f"`pass` on the main shell without subshells, then with {IDLE_SUBSHELLS} idle ones",
        idle,
        figures=(
            Figure("`pass` p50, no subshell (us)", "none_us", "p50"),
            Figure(
                f"`pass` p50, {IDLE_SUBSHELLS} idle subshells (us)",
                "idle_us",
                "p50",
            ),
            Figure(
                "  with / without, median of rounds",
                "idle_over_none",
                "median",
                Target("<=", 1.1, on_ratio=False),
                ratio=False,
                spec=".2f",
            ),
        ),
        rounds=5,
        size=100,
        quick_rounds=1,
        quick_size=20,
    ),
    Scenario(
        "subshell_comm",
        "in-process comm echo on a subshell, request -> answer and idle",
        comm,
        figures=(Figure("comm echo on a subshell, p50 (us)", "comm_us", "p50"),),
        rounds=5,
        size=100,
        quick_rounds=1,
        quick_size=20,
    ),
]
