"""User-facing API for comms served by workers: `mpkernel.comms.open(target, data)`.

Called from user code on the main thread. The comm_open is published by the io thread
before anything the worker sends on the comm (I5), and the execute request's idle waits
for the worker to have handled the open (I3).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mpkernel.config.model import Config
from mpkernel.funnel.items import OpenBackendComm
from mpkernel.funnel.outbox import Outbox
from mpkernel.wire import json_bytes

if TYPE_CHECKING:
    # The engine imports IPython; the io thread imports this package without it.
    from mpkernel.engine.execute import RequestContext


class BackendComms:
    def __init__(self, outbox: Outbox, context: RequestContext, config: Config) -> None:
        self._outbox = outbox
        self._context = context
        self._config = config

    def open(self, target: str, data: Any = None) -> str:
        if self._config.worker_for_target(target) is None:
            targets = sorted(w.target for w in self._config.workers if w.enabled)
            raise ValueError(f"no worker serves comm target {target!r}; configured: {targets}")
        comm_id = uuid.uuid4().hex
        self._outbox.put(
            OpenBackendComm(comm_id, target, json_bytes(data or {}), self._context.parent)
        )
        return comm_id


_active: BackendComms | None = None


def activate(backend: BackendComms) -> None:
    global _active
    _active = backend


def open(target: str, data: Any = None) -> str:
    """Open a comm on `target`, served by its worker; returns the comm id."""
    if _active is None:
        raise RuntimeError("mpkernel.comms.open works only inside a running mpkernel kernel")
    return _active.open(target, data)
