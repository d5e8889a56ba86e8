"""Reading a zmq socket monitor's events.

libzmq sends each event as two frames: a 6-byte header (event id as 16 bits, then the
event's value as 32 bits, native order, no padding) and the endpoint. pyzmq's reader
(`zmq.utils.monitor`) imports asyncio for its async variant, 30 ms of the kernel's start;
the io thread and the supervisor read the frames here instead.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import zmq

_HEADER = struct.Struct("=HI")


class MonitorEvent(NamedTuple):
    event: int
    value: int
    endpoint: bytes


def recv_monitor_event(monitor: zmq.Socket[bytes], flags: int = 0) -> MonitorEvent:
    """The next event on `monitor` (raises `zmq.Again` with NOBLOCK when there is none)."""
    frames = monitor.recv_multipart(flags)
    event, value = _HEADER.unpack_from(frames[0])
    return MonitorEvent(event, value, frames[1] if len(frames) > 1 else b"")
