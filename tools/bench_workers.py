"""Worker start cost: `forkserver` against `spawn`, measured through a real kernel.

For each start method, a kernel runs with the echo worker in `processes = "per-comm"`
mode, so every comm_open starts a new worker process. The figure is the time from
sending comm_open to the first RPC reply on that comm (the worker must have started,
connected, opened the comm and answered), median and max over N comms. The first start
of each kernel is reported apart: with the forkserver it may wait for the server to
finish preloading.

    .venv/bin/python tools/bench_workers.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager


def open_and_call(kc: BlockingKernelClient) -> float:
    comm_id = uuid.uuid4().hex
    t0 = time.perf_counter()
    kc.shell_channel.send(
        kc.session.msg(
            "comm_open", {"comm_id": comm_id, "target_name": "mpkernel.echo", "data": {}}
        )
    )
    request = {"jsonrpc": "2.0", "id": "p", "method": "pid"}
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": request}))
    while True:
        msg: dict[str, Any] = kc.get_iopub_msg(timeout=30)
        data = msg["content"].get("data") or {}
        if msg["msg_type"] == "comm_msg" and data.get("id") == "p":
            elapsed = time.perf_counter() - t0
            break
    kc.shell_channel.send(kc.session.msg("comm_close", {"comm_id": comm_id, "data": {}}))
    return elapsed


def measure(method: str, rounds: int, workdir: Path) -> tuple[float, list[float]]:
    config = workdir / f"{method}.toml"
    config.write_text(f'[workers.echo]\nstart_method = "{method}"\nprocesses = "per-comm"\n')
    km = KernelManager(kernel_name="mpkernel")
    km.start_kernel(env={**os.environ, "MPKERNEL_CONFIG": str(config)})
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        first = open_and_call(kc)
        rest = [open_and_call(kc) for _ in range(rounds)]
        kc.stop_channels()
        return first, rest
    finally:
        km.shutdown_kernel(now=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"{'start method':13} {'first ms':>9} {'p50 ms':>8} {'max ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("forkserver", "spawn"):
            first, rest = measure(method, args.rounds, Path(tmp))
            ms = [r * 1000 for r in rest]
            print(f"{method:13} {first * 1000:9.1f} {statistics.median(ms):8.1f} {max(ms):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
