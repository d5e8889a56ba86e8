"""Comms served by workers: the registry, the router and the JSON-RPC rules.

Owns which comms are open and who serves each (`registry`), the io thread's routing of
comm traffic between the frontend and workers (`router`), the JSON-RPC request/reply shapes
and error codes (`jsonrpc`), and the user-facing `mpkernel.comms.open` (`api`). Runs on the
io thread except `api`, which user code calls on the main thread.
"""

from __future__ import annotations

from mpkernel.comms.api import open

__all__ = ["open"]
