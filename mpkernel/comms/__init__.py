"""Comms served by workers: the registry, the router and the JSON-RPC rules.

Owns which comms are open and who serves each (`registry`), the io thread's routing of
comm traffic between the frontend and workers (`router`), the JSON-RPC request/reply shapes
and error codes (`jsonrpc`), and the user-facing `mpkernel.comms.open` (`api`). Runs on the
io thread except `api`, which user code calls on the main thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mpkernel.comms.api import open

__all__ = ["open"]


def __getattr__(name: str) -> Any:
    # `open` is the kernel's (it needs the funnel); workers import this package for
    # `jsonrpc` only and do not pay for it.
    if name == "open":
        from mpkernel.comms.api import open

        return open
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
