"""`mpkernel.echo`: echoes data, answers RPCs, and crashes on request.

Used by `mpkernel doctor`, the benchmarks and the tests to exercise RPC parenting,
background requests and their cancellation, event bursts, frontend-bound requests, kernel
requests, the object a comm is opened about, and every crash mode.
"""

from __future__ import annotations

import ctypes
import os
import reprlib
import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mpkernel_workers.api import (
    INVALID_PARAMS,
    CommHandler,
    FrontendError,
    RpcError,
    background,
    current_request,
)

_MiB = 1 << 20
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = 80
_SHORT_REPR.maxother = 80


class Journal(list[dict[str, Any]]):
    """What happened to this worker's comms, for tests that check cleanup from outside (the
    worker is shared, so a later comm can read what an earlier one went through). Appended
    from the loop thread and from background threads: list.append is atomic."""


class EchoHandler(CommHandler):
    restorable = True

    @property
    def _journal(self) -> Journal:
        return self.comm.shared(Journal)

    def on_open(self, data: Any) -> None:
        self.opened_with = data

    def on_message(self, data: Any, buffers: Sequence[bytes]) -> None:
        self.comm.send(data, buffers)

    def on_close(self, reason: str) -> None:
        self._journal.append(
            {"event": "close", "comm_id": self.comm.comm_id, "reason": reason, "t": time.time()}
        )

    def rpc_journal(self) -> list[dict[str, Any]]:
        return list(self._journal)

    def rpc_echo(self, **params: Any) -> Any:
        return params

    def rpc_pid(self) -> int:
        return os.getpid()

    @background
    def rpc_sleep(self, seconds: float) -> dict[str, float]:
        """Wait `seconds` in the background (the comm keeps answering meanwhile); ends
        early when the request is cancelled."""
        request = current_request()
        if request.wait_cancelled(float(seconds)):
            self._journal.append(
                {
                    "event": "cancelled",
                    "comm_id": self.comm.comm_id,
                    "method": "sleep",
                    "reason": request.cancel_reason,
                    "t": time.time(),
                }
            )
        return {"slept": float(seconds)}

    def rpc_block(self, seconds: float) -> dict[str, float]:
        """Sleep on the loop thread: the worker serves nothing else meanwhile (requests
        queue behind it, as crash tests need)."""
        time.sleep(float(seconds))
        return {"blocked": float(seconds)}

    def rpc_burn(self, seconds: float) -> dict[str, int]:
        """Keep a core busy (pure Python) for `seconds`."""
        end = time.perf_counter() + float(seconds)
        n = 0
        while time.perf_counter() < end:
            n += 1
        return {"iterations": n}

    def rpc_emit(self, count: int) -> dict[str, int]:
        for i in range(int(count)):
            self.comm.send_event("emitted", {"index": i})
        return {"count": int(count)}

    def rpc_ask_frontend(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.comm.request_frontend(method, params or {})
        except FrontendError as e:
            self._journal.append(
                {
                    "event": "frontend_request_failed",
                    "comm_id": self.comm.comm_id,
                    "error": e.message,
                    "t": time.time(),
                }
            )
            raise

    @background
    def rpc_kernel(
        self, method: str, params: Mapping[str, Any] | None = None, timeout_s: float = 10.0
    ) -> Any:
        """Forward a kernel request (delete, clear, view, snapshot) and return its answer;
        in the background, since the kernel serves it between executions."""
        return self.comm.request_kernel(method, params or {}, float(timeout_s))

    def rpc_subject(self) -> dict[str, str] | None:
        """The object this comm was opened about: its type name and a short repr."""
        subject = self.comm.subject
        if subject is None:
            return None
        return {"type": type(subject).__name__, "repr": _SHORT_REPR.repr(subject)}

    def rpc_crash(self, how: str, max_mb: int = 65536) -> None:
        if how == "exit":
            os._exit(3)
        elif how == "exit0":  # ends by itself, as if it had finished: no failure
            os._exit(0)
        elif how == "segfault":
            ctypes.string_at(0)
        elif how == "raise":
            raise RuntimeError("crash requested by the client (how='raise')")
        elif how == "oom":
            hoard = []
            for _ in range(int(max_mb) // 64):
                hoard.append(b"\x01" * (64 * _MiB))
            raise MemoryError(f"allocated {max_mb} MiB without being stopped")
        elif how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            raise RpcError(INVALID_PARAMS, f"unknown crash mode {how!r}")
