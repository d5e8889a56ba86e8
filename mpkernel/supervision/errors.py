"""Errors of worker supervision that other owners (the comm router) handle."""

from __future__ import annotations


class WorkerUnavailable(Exception):
    """No worker can serve this target now (crash loop, restart=never, start failed)."""
