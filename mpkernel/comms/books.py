"""What the comm router keeps per worker process: pending RPCs, owed Done markers, and
the requests its handlers sent to the frontend. Io thread only; plain values.

Keyed by the request's msg_id, never by a JSON-RPC id: Positron sends none, and two
requests that reuse one are both answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mpkernel.wire import Header


@dataclass(frozen=True, slots=True)
class PendingRpc:
    comm_id: str
    rpc_id_json: str | None  # None: the request had no `id` (Positron's shape)
    parent: Header
    deadline: float | None


@dataclass(slots=True)
class WorkerBook:
    """The router's accounts with one worker process."""

    # request msg_id -> the RPC; keyed by the request, so two requests reusing one
    # JSON-RPC id (or carrying none) are both answered
    pending: dict[str, PendingRpc] = field(default_factory=dict)
    # request msg_id -> how many Done markers this worker still owes for it
    owed: dict[str, int] = field(default_factory=dict)
    # (comm_id, id JSON) of requests a handler sent to the frontend, awaiting an answer
    frontend_requests: set[tuple[str, str]] = field(default_factory=set)

    def forget_comm(self, comm_id: str) -> None:
        """The comm closed: its requests end in the worker, nothing to fail or route."""
        self.frontend_requests = {r for r in self.frontend_requests if r[0] != comm_id}
        for request_id in [r for r, rpc in self.pending.items() if rpc.comm_id == comm_id]:
            del self.pending[request_id]

    def owe(self, request_id: str) -> None:
        self.owed[request_id] = self.owed.get(request_id, 0) + 1

    def done(self, request_id: str) -> bool:
        """The worker's Done for `request_id`: everything the request caused is ahead of
        it, so an RPC of it not answered by now was cancelled (its comm closed) and has
        nothing left to fail. True when a Done was owed for it."""
        self.pending.pop(request_id, None)
        count = self.owed.pop(request_id, 0)
        if count > 1:
            self.owed[request_id] = count - 1
        return count > 0
