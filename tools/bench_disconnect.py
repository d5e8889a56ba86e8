"""Disconnect scenarios: how long mpkernel takes to clean up after its frontend disappears.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py disconnect`).

Sides: side A's kernelspec over tcp (A) and over ipc (B). In each round a client process
(the bench client, LEAVING_CLIENT) opens an `mpkernel.echo` comm, leaves a frontend-bound
request pending (request `ask_frontend`), then goes away: a clean close of its sockets
(disconnect_close), SIGKILL (disconnect_kill), or SIGSTOP (disconnect_hang: its sockets stay
open and only ZMTP heartbeats reveal it). Once the kernel has logged the departure, the
bench's own client reconnects and reads the echo worker's journal, where the worker wrote
the wall-clock time at which the pending request failed and `on_close` ran. The figures are
those times minus the moment the client went away.

The kernel acts only when no subscriber is left, so the bench's own client of the kernel
is closed for the round (and its departure waited for) before the leaving client starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from _benchdriver import Figure, Live, Round, Samples, Scenario
from _benchkernels import BenchError, Contender

TOOLS = Path(__file__).resolve().parent
DEPARTURE = "frontend disconnected"
TIMEOUT_S = 30.0

# argv: tools directory, connection file. Prints the comm id once the frontend-bound
# request is pending; on "close" from stdin closes its sockets and prints "closed".
LEAVING_CLIENT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import zmq
    from _benchclient import Client
    with open(sys.argv[2]) as f:
        info = json.load(f)
    context = zmq.Context()
    client = Client(info, context=context)
    client.wait_ready(timeout_s=30)
    comm_id = client.comm_open("mpkernel.echo", timeout_s=30)
    client.send_prepared(
        "shell", client.prepare_comm_request(comm_id, "ask_frontend", {"method": "x"})
    )
    def asked(m):
        data = m.content.get("data")
        return m.msg_type == "comm_msg" and isinstance(data, dict) and data.get("method") == "x"
    client.wait_iopub(asked, timeout_s=30, what="the frontend-bound request")
    print(comm_id, flush=True)
    if sys.stdin.readline().strip() == "close":
        client.close()
        context.term()
        print("closed", flush=True)
        sys.stdin.readline()
    """
)


def transports(a: Contender, b: Contender) -> tuple[Contender, ...]:
    """`Scenario.sides`: A's kernelspec over tcp, then over ipc."""
    return tuple(Contender(f"{a.label}/{t}", a.kernel_name, transport=t) for t in ("tcp", "ipc"))


def departures(live: Live) -> int:
    return live.kernel.log_path.read_text(errors="replace").count(DEPARTURE)


def wait_departure(live: Live, seen: int, what: str) -> None:
    """Until the kernel has logged more departures than `seen` (polled: it is a log file)."""
    deadline = time.monotonic() + TIMEOUT_S
    while departures(live) <= seen:
        if time.monotonic() > deadline:
            raise BenchError(f"the kernel never noticed {what} leave")
        if not live.kernel.is_alive():
            raise BenchError("the kernel exited")
        time.sleep(0.01)


def journal(live: Live, comm_id: str) -> dict[str, float]:
    """event -> wall-clock time, from the echo worker's journal, for the leaving comm."""
    deadline = time.monotonic() + TIMEOUT_S
    journal_comm = live.client.comm_open("mpkernel.echo", timeout_s=TIMEOUT_S)
    while True:
        entries = live.client.rpc(journal_comm, "journal", {}, timeout_s=TIMEOUT_S)
        found = {e["event"]: e["t"] for e in entries if e.get("comm_id") == comm_id}
        if {"frontend_request_failed", "close"} <= found.keys():
            live.client.comm_close(journal_comm, timeout_s=TIMEOUT_S)
            return found
        if time.monotonic() > deadline:
            raise BenchError(f"the journal has only {found} for the leaving comm")
        time.sleep(0.01)


def leave_by(mode: str) -> Callable[[Round], Samples]:
    def one_round(r: Round) -> Samples:
        live = r.live()
        # Our own client must not be subscribed while the leaving client goes.
        seen = departures(live)
        live.client.close()
        proc: subprocess.Popen[str] | None = None
        try:
            wait_departure(live, seen, "the bench client")
            info = live.kernel.manager.connection_file
            proc = subprocess.Popen(
                [sys.executable, "-c", LEAVING_CLIENT, str(TOOLS), info],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None
            assert proc.stdout is not None
            comm_id = proc.stdout.readline().strip()
            if not comm_id:
                raise BenchError("the leaving client did not get its request pending")
            seen = departures(live)
            t0 = time.time()
            if mode == "kill":
                os.kill(proc.pid, signal.SIGKILL)
            elif mode == "hang":
                os.kill(proc.pid, signal.SIGSTOP)
            else:
                proc.stdin.write("close\n")
                proc.stdin.flush()
                proc.stdout.readline()
            wait_departure(live, seen, f"the client ({mode})")
        finally:
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                    os.kill(proc.pid, signal.SIGCONT)
                proc.wait()
            live.client = r.run.client(live.kernel)  # the shared kernel's client, again
        live.client.wait_ready(timeout_s=TIMEOUT_S)
        found = journal(live, comm_id)
        failed = (found["frontend_request_failed"] - t0) * 1000
        closed = (found["close"] - t0) * 1000
        r.say(f"request failed after {failed:.1f} ms, comm closed after {closed:.1f} ms")
        return {"failed_ms": [failed], "closed_ms": [closed]}

    return one_round


def scenario(mode: str, how: str, rounds: int) -> Scenario:
    return Scenario(
        f"disconnect_{mode}",
        f"frontend {how} with a request pending -> request failed, comm closed (A tcp, B ipc)",
        leave_by(mode),
        figures=(
            Figure(f"{how} -> request failed, p50 (ms)", "failed_ms", "p50", ratio=False),
            Figure(f"{how} -> request failed, max (ms)", "failed_ms", "max", ratio=False),
            Figure(f"{how} -> comm closed, p50 (ms)", "closed_ms", "p50", ratio=False),
            Figure(f"{how} -> comm closed, max (ms)", "closed_ms", "max", ratio=False),
        ),
        rounds=rounds,
        warmup=0,
        sides=transports,
    )


SCENARIOS = [
    scenario("close", "closes its sockets", 5),
    scenario("kill", "SIGKILLed", 5),
    scenario("hang", "SIGSTOPped (hung)", 5),
]
