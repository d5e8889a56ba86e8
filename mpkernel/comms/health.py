"""The kernel's own comm target `mpkernel.health`: one method, `status`, answered on the io
thread from the router's registry and the supervisor's workers (`mpkernel doctor` and the
tests read it)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from mpkernel.comms import jsonrpc
from mpkernel.comms.registry import CommEntry
from mpkernel.supervision.policy import WorkerStats

HEALTH_TARGET = "mpkernel.health"


def health_status(
    comms: Iterable[CommEntry], workers: list[WorkerStats], extra: dict[str, Any]
) -> dict[str, Any]:
    entries = list(comms)
    open_comms = Counter(e.worker_key for e in entries)
    return {
        "pid": os.getpid(),
        "workers": [w.as_json(open_comms=open_comms[w.key]) for w in workers],
        "comms": {
            e.comm_id: {"target_name": e.target, "host": e.host, "worker": e.worker_key}
            for e in entries
        },
        **extra,
    }


def health_reply(data: dict[str, Any], status: Callable[[], dict[str, Any]]) -> bytes:
    """The JSON-RPC reply to a request on a health comm."""
    rpc_id = jsonrpc.request_id_json(data)
    if data.get("method") == "status":
        return jsonrpc.result_reply(rpc_id, status())
    return jsonrpc.error_reply(
        rpc_id, jsonrpc.METHOD_NOT_FOUND, f"unknown method {data.get('method')!r}"
    )
