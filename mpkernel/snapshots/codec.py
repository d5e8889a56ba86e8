"""Encode one object for a worker (the object a comm is opened about), and decode it.

Interface used by `mpkernel.comms.api` and the worker runtime; the implementation is
being written.
"""

from __future__ import annotations

from typing import Any


def encode_object(obj: Any) -> bytes:
    raise NotImplementedError


def decode_object(payload: bytes) -> Any:
    raise NotImplementedError
