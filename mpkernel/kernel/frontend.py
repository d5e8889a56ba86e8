"""What the io thread sends to the frontend sockets, and how it reads what they send.

`FrontendSender` turns a message into signed frames (one header factory per kernel
session, so message ids never repeat), publishes on IOPub and replies on shell or control.
IOPub output is held until the first subscription arrives, then `iopub_welcome`, then
`starting`, then what was held (I7). `decode_or_log` is the inbound half: a message, or
`None` after logging why the frames were dropped (the peer's fault, never the kernel's).

Io thread only (shared by the loop in `io_loop` and the stdin channel).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import zmq

from mpkernel.multipart import send_frames
from mpkernel.wire import (
    Header,
    HeaderFactory,
    Message,
    Signer,
    WireError,
    decode,
    encode_raw,
    json_bytes,
)

log = logging.getLogger(__name__)

EMPTY = b"{}"


def describe(frames: Sequence[bytes]) -> str:
    head = b" | ".join(f[:32] for f in frames[:6])
    return f"{len(frames)} frames, {sum(map(len, frames))} bytes: {head!r}"


def decode_or_log(
    channel: str, frames: list[bytes], signer: Signer
) -> Message[dict[str, Any]] | None:
    try:
        return decode(frames, signer)
    except WireError as e:
        log.warning(
            "dropped a message on %s: %s: %s (%s)", channel, type(e).__name__, e, describe(frames)
        )
        return None


class FrontendSender:
    """Signed frames out of the kernel's shell, control, stdin and IOPub sockets."""

    def __init__(
        self,
        shell: zmq.Socket[bytes],
        control: zmq.Socket[bytes],
        iopub: zmq.Socket[bytes],
        signer: Signer,
        session: str,
    ) -> None:
        self._shell = shell
        self._control = control
        self._iopub = iopub
        self._signer = signer
        self._session = session
        self._headers = HeaderFactory(session, "mpkernel")
        self._topics: dict[str, bytes] = {}
        self._subscribed_once = False
        self._held: list[list[bytes]] = []

    def make_header(self, msg_type: str) -> Header:
        return self._headers.make(msg_type)

    def topic(self, msg_type: str) -> bytes:
        topic = self._topics.get(msg_type)
        if topic is None:
            topic = self._topics[msg_type] = f"kernel.{self._session}.{msg_type}".encode()
        return topic

    def frames(
        self,
        identities: Sequence[bytes],
        msg_type: str,
        content: Mapping[str, Any],
        parent: Header | None,
        metadata: Mapping[str, Any] | None = None,
        buffers: Sequence[bytes] = (),
        header: Header | None = None,
    ) -> list[bytes]:
        """`header`: one made by `make_header` beforehand (the caller needs its msg_id)."""
        return encode_raw(
            identities,
            header if header is not None else self._headers.make(msg_type),
            parent,
            json_bytes(metadata) if metadata else EMPTY,
            json_bytes(content),
            buffers,
            self._signer,
        )

    def publish(
        self,
        msg_type: str,
        content: Mapping[str, Any],
        parent: Header | None,
        metadata: Mapping[str, Any] | None = None,
        buffers: Sequence[bytes] = (),
    ) -> None:
        try:
            frames = self.frames(
                [self.topic(msg_type)], msg_type, content, parent, metadata, buffers
            )
        except (TypeError, ValueError) as e:
            log.error("cannot serialize %s: %s", msg_type, e)
            text = f"[mpkernel] a {msg_type} output could not be sent: {e}\n"
            frames = self.frames(
                [self.topic("stream")], "stream", {"name": "stderr", "text": text}, parent
            )
        self._send_iopub(frames)

    def publish_json(
        self, msg_type: str, content_json: bytes, parent: Header | None, buffers: Sequence[bytes]
    ) -> None:
        """Publish content that is JSON already (a worker serialized it)."""
        self._send_iopub(
            encode_raw(
                [self.topic(msg_type)],
                self._headers.make(msg_type),
                parent,
                EMPTY,
                content_json,
                buffers,
                self._signer,
            )
        )

    def reply(
        self,
        channel: str,
        identities: Sequence[bytes],
        msg_type: str,
        content: Mapping[str, Any],
        parent: Header,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """A reply on shell or control to the peer with `identities`; a peer that is gone
        (ROUTER_MANDATORY) is logged, not raised."""
        sock = self._shell if channel == "shell" else self._control
        try:
            frames = self.frames(identities, msg_type, content, parent, metadata)
        except (TypeError, ValueError) as e:
            log.error("cannot serialize %s: %s", msg_type, e)
            error = {"status": "error", "ename": type(e).__name__, "evalue": str(e)}
            frames = self.frames(identities, msg_type, {**error, "traceback": []}, parent)
        try:
            send_frames(sock, frames)
        except zmq.ZMQError as e:
            if e.errno != zmq.EHOSTUNREACH:
                raise
            log.warning(
                "%s for %s not delivered: the %s peer is gone", msg_type, parent.msg_id, channel
            )

    def on_subscriptions(self) -> None:
        """Subscription messages (XPUB_VERBOSE): each subscription gets a welcome."""
        while True:
            try:
                frame = self._iopub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frame and frame[0] == 1:
                self._welcome(frame[1:])

    def _welcome(self, topic: bytes) -> None:
        log.info("IOPub subscription %r", topic)
        subscription = topic.decode("utf-8", "replace")
        iopub = self._iopub
        send_frames(
            iopub, self.frames([topic], "iopub_welcome", {"subscription": subscription}, None)
        )
        if self._subscribed_once:
            return
        self._subscribed_once = True
        send_frames(
            iopub,
            self.frames([self.topic("status")], "status", {"execution_state": "starting"}, None),
        )
        held, self._held = self._held, []
        for frames in held:
            send_frames(iopub, frames)

    def _send_iopub(self, frames: list[bytes]) -> None:
        if self._subscribed_once:
            send_frames(self._iopub, frames)
        else:
            self._held.append(frames)
