"""Comm handlers that run inside mpkernel worker processes."""

from __future__ import annotations
