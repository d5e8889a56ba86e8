"""The diagnostic echo comm (`mpkernel.echo`): drives every path of the worker machinery."""

from __future__ import annotations

from mpkernel_workers.echo.handler import EchoHandler

__all__ = ["EchoHandler"]
