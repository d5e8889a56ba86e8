"""Worker start scenario: mpkernel's echo worker started by `forkserver` (A) against `spawn` (B).

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py worker_start`).

Both sides are side A's kernelspec with the echo worker in `processes = "per-comm"` mode, so
every comm_open starts a new worker process. A round sends comm_open and, right behind it,
a `pid` request, and is timed until that request's answer (the worker has started,
connected, opened the comm and answered); then the comm is closed. The first start of
each kernel is reported apart: with the forkserver it may wait for the server to finish
preloading.
"""

from __future__ import annotations

import time
import uuid

from _benchclient import Received
from _benchdriver import Figure, Round, Samples, Scenario
from _benchkernels import Contender

TIMEOUT_S = 30.0


def config(method: str) -> str:
    return f'[workers.echo]\nstart_method = "{method}"\nprocesses = "per-comm"\n'


def start_methods(a: Contender, b: Contender) -> tuple[Contender, ...]:
    """`Scenario.sides`: A's kernelspec with forkserver workers, then with spawn workers."""
    return tuple(
        Contender(f"{a.label}/{method}", a.kernel_name, config=config(method))
        for method in ("forkserver", "spawn")
    )


def worker_start(r: Round) -> Samples:
    client = r.live().client
    comm_id = uuid.uuid4().hex
    content = {"comm_id": comm_id, "target_name": "mpkernel.echo", "data": {}}
    open_msg = client.prepare("comm_open", content)
    request = client.prepare_comm_request(comm_id, "pid", {})
    answered: list[int] = []

    def answer(m: Received) -> bool:
        if m.parent_id == request.msg_id and m.msg_type == "comm_msg":
            answered.append(m.at_ns)
        return bool(answered)

    t0 = time.perf_counter_ns()
    client.send_prepared("shell", open_msg)
    client.send_prepared("shell", request)
    client.wait_iopub(answer, timeout_s=TIMEOUT_S, what="the first answer of a new worker")
    ms = (answered[0] - t0) / 1e6
    client.comm_close(comm_id, timeout_s=TIMEOUT_S)
    if r.index == 0:
        r.say(f"first worker {ms:.1f} ms")
        return {"first_ms": [ms]}
    return {"start_ms": [ms]}


SCENARIOS = [
    Scenario(
        "worker_start",
        "comm_open -> first answer from a new worker process (A forkserver, B spawn)",
        worker_start,
        figures=(
            Figure("new worker: first of the kernel (ms)", "first_ms", "p50"),
            Figure("new worker: after the first, p50 (ms)", "start_ms", "p50"),
            Figure("new worker: after the first, slowest (ms)", "start_ms", "max"),
        ),
        rounds=11,
        warmup=0,
        quick_rounds=2,
        sides=start_methods,
    ),
]
