"""The stdin channel: one `input()` prompt at a time, answered or failed, never hung.

`request` sends an `input_request` to the peer that made the request (ROUTER_MANDATORY:
a peer that is gone raises EHOSTUNREACH, and `input()` fails at once in user code);
`on_reply` resolves the waiting `input()`, whichever connection holding the requester's
routing id sends the answer (a frontend that reconnected took the id over); `fail` ends a
pending prompt (frontend gone, kernel shutting down). Io thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import zmq

from mpkernel.funnel.items import InputRequest
from mpkernel.funnel.stdin import StdinUnavailable
from mpkernel.multipart import send_frames
from mpkernel.wire import Header, Message

log = logging.getLogger(__name__)

Frames = Callable[[Sequence[bytes], str, Mapping[str, Any], Header], list[bytes]]


class StdinChannel:
    def __init__(self, socket: zmq.Socket[bytes], frames: Frames) -> None:
        self._socket = socket
        self._frames = frames
        self._pending: InputRequest | None = None

    def request(self, item: InputRequest) -> None:
        if item.waiter.cancelled:
            return
        self.fail("superseded by a newer input request")
        frames = self._frames(
            item.identities,
            "input_request",
            {"prompt": item.prompt, "password": item.password},
            item.parent,
        )
        try:
            send_frames(self._socket, frames)
        except zmq.ZMQError as e:
            if e.errno != zmq.EHOSTUNREACH:
                raise
            log.warning("input_request for %s: no stdin peer (EHOSTUNREACH)", item.parent.msg_id)
            item.waiter.fail(
                StdinUnavailable(
                    "input() cannot be answered: the frontend that sent this request has no "
                    "stdin channel connected"
                )
            )
            return
        self._pending = item

    def on_reply(self, msg: Message[dict[str, Any]]) -> None:
        pending = self._pending
        if msg.msg_type != "input_reply" or pending is None:
            log.warning("unexpected %s on stdin (no input pending); dropped", msg.msg_type)
            return
        self._pending = None
        if pending.waiter.cancelled:
            log.info("input_reply for an interrupted input(); dropped")
            return
        value = msg.content.get("value", "")
        pending.waiter.resolve(value if isinstance(value, str) else str(value))

    def fail(self, reason: str) -> None:
        """The pending `input()`, if any, raises `StdinUnavailable(reason)` in user code."""
        if self._pending is not None:
            self._pending.waiter.fail(StdinUnavailable(reason))
            self._pending = None
