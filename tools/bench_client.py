"""What the shared frontend client costs: `mpkernel.client` beside the lean benchmark client.

    .venv/bin/python tools/bench_client.py [--rounds 7] [--requests 200] [--kernel mpkernel]

One kernel; per round, each client in turn (the order alternates between rounds) connects,
sends `--requests` `pass` executions, each waited to its reply and its idle, then as many
echo RPCs (`mpkernel.echo`, no JSON-RPC id) each waited to its idle, and disconnects. The
lean client (`_benchclient.Client`: bare pyzmq sockets and `mpkernel.wire`) is what the
benchmarks time with; `mpkernel.client` (jupyter_client's `BlockingKernelClient`, the
mailbox, the I3/I4 checks of `CommClient.call`) is what tests, tools and examples use.
Prints, per figure and client, min/median/max over rounds of the mean time per request, and
the ratio of the medians. The kernel runs all rounds: a cost of the client, not of start-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import zmq
from jupyter_client.manager import KernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchclient import Client

from mpkernel.client import CommClient, Frontend

TIMEOUT_S = 30.0
ECHO = "mpkernel.echo"
#: figure -> client -> mean seconds per request, one per round
Results = dict[str, dict[str, list[float]]]


def per_request(n: int, one: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        one()
    return (time.perf_counter() - start) / n


def lean_round(info: dict[str, object], n: int) -> dict[str, float]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    client = Client(info, context=context)
    try:
        client.wait_ready(timeout_s=TIMEOUT_S)
        comm_id = client.comm_open(ECHO, timeout_s=TIMEOUT_S)
        out = {
            "execute pass": per_request(n, lambda: client.execute("pass", timeout_s=TIMEOUT_S)),
            "echo RPC": per_request(
                n, lambda: client.rpc(comm_id, "echo", {"n": 1}, timeout_s=TIMEOUT_S)
            ),
        }
        client.comm_close(comm_id, timeout_s=TIMEOUT_S)
        return out
    finally:
        client.close()
        context.term()


def shared_round(info: dict[str, object], n: int) -> dict[str, float]:
    with Frontend.connect(info, channels=("shell", "iopub")) as frontend:
        frontend.wait_welcome(timeout=TIMEOUT_S)
        frontend.sync(timeout=TIMEOUT_S)
        comms = CommClient(frontend)
        comm_id = comms.open(ECHO, timeout=TIMEOUT_S)
        out = {
            "execute pass": per_request(n, lambda: frontend.run_ok("pass", timeout=TIMEOUT_S)),
            "echo RPC": per_request(n, lambda: comms.call(comm_id, "echo", {"n": 1})),
        }
        # the log of one round stays small: it is dropped with the client
        comms.close(comm_id, timeout=TIMEOUT_S)
        return out


def report(results: Results) -> str:
    lines = [f"{'figure':<14}{'client':<18}{'min ms':>9}{'median ms':>11}{'max ms':>9}{'ratio':>8}"]
    for figure, by_client in results.items():
        lean = statistics.median(by_client["lean"])
        for name, values in by_client.items():
            med = statistics.median(values)
            lines.append(
                f"{figure:<14}{name:<18}{min(values) * 1e3:>9.3f}{med * 1e3:>11.3f}"
                f"{max(values) * 1e3:>9.3f}{med / lean:>8.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--kernel", default="mpkernel", help="kernelspec name")
    args = parser.parse_args(argv)
    km = KernelManager(kernel_name=args.kernel)
    km.start_kernel()
    try:
        info = dict(km.get_connection_info(session=False))
        rounds: dict[str, Callable[[dict[str, object], int], dict[str, float]]] = {
            "lean": lean_round,
            "mpkernel.client": shared_round,
        }
        results: Results = {}
        shared_round(info, 20)  # warm: the echo worker started, the code paths imported
        for r in range(args.rounds):
            order = list(rounds.items())
            for name, one_round in order if r % 2 == 0 else order[::-1]:
                for figure, value in one_round(info, args.requests).items():
                    results.setdefault(figure, {"lean": [], "mpkernel.client": []})
                    results[figure][name].append(value)
        print(report(results))
    finally:
        km.shutdown_kernel(now=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
