"""How long mpkernel takes to clean up after a frontend disappears.

For each transport (tcp, ipc) and each way of leaving (a clean close of the client's
channels, SIGKILL of the client process, and SIGSTOP: a hung client whose sockets stay
open, noticed only through ZMTP heartbeats), a client process opens an `mpkernel.echo` comm,
leaves a frontend-bound request pending (RPC `ask_frontend`), then goes away. A second
client connects afterwards and reads the echo worker's journal, where the worker wrote
the wall-clock time at which its pending request failed and its `on_close` ran. The
figures are those times minus the moment the first client went away.

    .venv/bin/python tools/bench_disconnect.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

CLIENT = textwrap.dedent(
    """
    import json, sys, uuid
    from jupyter_client import BlockingKernelClient
    kc = BlockingKernelClient(connection_file=sys.argv[1])
    kc.load_connection_file()
    kc.start_channels()
    kc.wait_for_ready(timeout=30)
    cid = uuid.uuid4().hex
    kc.shell_channel.send(kc.session.msg("comm_open",
        {"comm_id": cid, "target_name": "mpkernel.echo", "data": {}}))
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": cid, "data":
        {"jsonrpc": "2.0", "id": "ask", "method": "ask_frontend", "params": {"method": "x"}}}))
    while True:
        msg = kc.get_iopub_msg(timeout=30)
        data = msg["content"].get("data") or {}
        if msg["msg_type"] == "comm_msg" and data.get("method") == "x":
            break
    print(cid, flush=True)
    if sys.stdin.readline().strip() == "close":
        kc.stop_channels()
        print("closed", flush=True)
        sys.stdin.readline()
    """
)


def journal(km: KernelManager) -> list[dict[str, Any]]:
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        cid = uuid.uuid4().hex
        kc.shell_channel.send(
            kc.session.msg(
                "comm_open", {"comm_id": cid, "target_name": "mpkernel.echo", "data": {}}
            )
        )
        msg = kc.session.msg(
            "comm_msg", {"comm_id": cid, "data": {"jsonrpc": "2.0", "id": "j", "method": "journal"}}
        )
        kc.shell_channel.send(msg)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = kc.get_iopub_msg(timeout=30)
            data = reply["content"].get("data") or {}
            if reply["msg_type"] == "comm_msg" and data.get("id") == "j":
                result: list[dict[str, Any]] = data["result"]
                return result
        raise TimeoutError("no journal reply")
    finally:
        kc.stop_channels()


DEPARTURE = "frontend disconnected"


def one_round(km: KernelManager, mode: str, log: Path) -> tuple[float, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT, km.connection_file],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        comm_id = proc.stdout.readline().strip()
        seen = log.read_text().count(DEPARTURE)
        t0 = time.time()
        if mode == "sigkill":
            os.kill(proc.pid, signal.SIGKILL)
        elif mode == "sigstop":
            # A hung client: its sockets stay open; only ZMTP heartbeats reveal it.
            os.kill(proc.pid, signal.SIGSTOP)
        else:
            proc.stdin.write("close\n")
            proc.stdin.flush()
            proc.stdout.readline()
        # The kernel acts only when no subscriber is left: the reading client must not
        # subscribe before the kernel has seen this one go, or it would keep the comms.
        deadline = time.monotonic() + 30
        while log.read_text().count(DEPARTURE) == seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel never noticed the client leave ({mode})")
            time.sleep(0.01)
        entries = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(entries) < 2:
            for e in journal(km):
                if e["comm_id"] == comm_id:
                    entries[e["event"]] = e["t"]
        return entries["frontend_request_failed"] - t0, entries["close"] - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            os.kill(proc.pid, signal.SIGCONT)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kernel", default="mpkernel")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    heads = ("transport", "leaving", "request failed p50/max ms", "comm closed p50/max ms")
    print(f"{heads[0]:9} {heads[1]:9} {heads[2]:>26} {heads[3]:>24}")
    for transport in ("tcp", "ipc"):
        km = KernelManager(kernel_name=args.kernel, transport=transport)
        log = Path(tempfile.mkdtemp()) / "kernel.log"
        log_file = log.open("w")
        km.start_kernel(stderr=log_file)
        try:
            for mode in ("close", "sigkill", "sigstop"):
                failed, closed = [], []
                for _ in range(args.rounds):
                    f, c = one_round(km, mode, log)
                    failed.append(f * 1000)
                    closed.append(c * 1000)
                key = f"{transport}/{mode}"
                results[key] = {
                    "failed_p50_ms": statistics.median(failed),
                    "failed_max_ms": max(failed),
                    "closed_p50_ms": statistics.median(closed),
                    "closed_max_ms": max(closed),
                }
                r = results[key]
                failed_s = f"{r['failed_p50_ms']:.1f} / {r['failed_max_ms']:.1f}"
                closed_s = f"{r['closed_p50_ms']:.1f} / {r['closed_max_ms']:.1f}"
                print(f"{transport:9} {mode:9} {failed_s:>26} {closed_s:>24}")
        finally:
            km.shutdown_kernel(now=True)
            log_file.close()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:  # noqa: PTH123 - plain output file
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
