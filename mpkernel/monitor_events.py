"""Events of a zmq socket monitor (`Socket.get_monitor_socket`), read without
`zmq.utils.monitor`: that module imports asyncio (15 ms of every start and memory the kernel
otherwise never uses) to offer an async variant mpkernel has no use for.

libzmq sends each event as two frames: 16 bits of event id and 32 bits of value (a file
descriptor, an errno or an interval, by event), native byte order, no padding; then the
endpoint.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import zmq

_HEAD = struct.Struct("=HI")


class MonitorEvent(NamedTuple):
    event: int
    value: int
    endpoint: bytes


def recv_event(monitor: zmq.Socket[bytes]) -> MonitorEvent:
    """The next event, without waiting (`zmq.Again` when there is none)."""
    frames = monitor.recv_multipart(zmq.NOBLOCK)
    if len(frames) != 2 or len(frames[0]) != _HEAD.size:
        raise ValueError(f"not a socket monitor event: {frames!r:.200}")
    event, value = _HEAD.unpack(frames[0])
    return MonitorEvent(event, value, frames[1])
