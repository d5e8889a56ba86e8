"""The stdin channel: `input()` prompts, each answered or failed, never hung.

`request` sends an `input_request` to the peer that made the request (ROUTER_MANDATORY:
a peer that is gone raises EHOSTUNREACH, and `input()` fails at once in user code);
`on_reply` resolves the waiting `input()`, whichever connection holding the requester's
routing id sends the answer (a frontend that reconnected took the id over); `fail` ends the
pending prompts (frontend gone, kernel shutting down). Shells that run side by side (the
main shell and subshells) may each wait on a prompt: an `input_reply` answers the prompt its
parent header names (the oldest pending one, if it names none). A new prompt for the
request of a pending one replaces it. Io thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import zmq

from mpkernel.funnel.items import InputRequest
from mpkernel.funnel.stdin import StdinUnavailable
from mpkernel.multipart import send_frames
from mpkernel.wire import Header, Message

log = logging.getLogger(__name__)


class Frames(Protocol):
    def __call__(
        self,
        identities: Sequence[bytes],
        msg_type: str,
        content: Mapping[str, Any],
        parent: Header,
        *,
        header: Header,
    ) -> list[bytes]: ...


class StdinChannel:
    def __init__(
        self, socket: zmq.Socket[bytes], frames: Frames, make_header: Callable[[str], Header]
    ) -> None:
        self._socket = socket
        self._frames = frames
        self._make_header = make_header
        # input_request msg_id -> the prompt it asked
        self._pending: dict[str, InputRequest] = {}

    def request(self, item: InputRequest) -> None:
        if item.waiter.cancelled:
            return
        for prompt_id, earlier in list(self._pending.items()):
            if earlier.waiter.cancelled or earlier.parent.msg_id == item.parent.msg_id:
                del self._pending[prompt_id]
                earlier.waiter.fail(StdinUnavailable("superseded by a newer input request"))
        header = self._make_header("input_request")
        frames = self._frames(
            item.identities,
            "input_request",
            {"prompt": item.prompt, "password": item.password},
            item.parent,
            header=header,
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
        self._pending[header.msg_id] = item

    def on_reply(self, msg: Message[dict[str, Any]]) -> None:
        pending = self._answered_by(msg)
        if pending is None:
            log.warning("unexpected %s on stdin (no input pending); dropped", msg.msg_type)
            return
        if pending.waiter.cancelled:
            log.info("input_reply for an interrupted input(); dropped")
            return
        value = msg.content.get("value", "")
        pending.waiter.resolve(value if isinstance(value, str) else str(value))

    def _answered_by(self, msg: Message[dict[str, Any]]) -> InputRequest | None:
        """Take the prompt an input_reply answers off the pending ones."""
        if msg.msg_type != "input_reply" or not self._pending:
            return None
        parent = msg.parent_header
        if parent is not None and parent.msg_id in self._pending:
            return self._pending.pop(parent.msg_id)
        # A reply that names no pending prompt (jupyter_client's `input()` sets no parent)
        # answers the oldest one.
        return self._pending.pop(next(iter(self._pending)))

    def fail(self, reason: str) -> None:
        """Every pending `input()` raises `StdinUnavailable(reason)` in user code."""
        pending, self._pending = self._pending, {}
        for item in pending.values():
            item.waiter.fail(StdinUnavailable(reason))
