"""The io thread (`mpkernel-io`) from its start: the kernel answers before it is assembled.

The thread starts as soon as the sockets are bound, from a small set of imports (zmq and
the wire package), while the main thread still imports and builds the rest of the kernel,
IPython above all (most of a cold start). Until then it does three things only:
- answers `kernel_info_request` on shell and on control, bracketed by busy/idle on IOPub,
  when nothing received earlier on that channel is still waiting (a channel's requests are
  answered in the order they came);
- welcomes IOPub subscriptions (`FrontendSender`: `iopub_welcome`, then `starting`);
- decodes every other request and keeps it, in arrival order.
The main thread then hands it the assembled loop (`hand_over`); the same thread runs it,
with the kept requests first. So the frontend sockets have one owner from the first
request on, and nothing sent during start-up is lost or overtaken.

If the thread itself fails, ordering can no longer be guaranteed: the process exits.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

import zmq

from mpkernel.kernel.frontend import FrontendSender, decode_or_log
from mpkernel.threads import hidden_from_debugger
from mpkernel.wakeup import WakeupPipe
from mpkernel.wire import Message, Signer

log = logging.getLogger(__name__)

#: a request received before the loop took over: its channel ("shell" or "control") and it
Kept = tuple[str, Message[dict[str, Any]]]
Serve = Callable[[list[Kept]], None]


class IoThread(threading.Thread):
    def __init__(
        self,
        shell: zmq.Socket[bytes],
        control: zmq.Socket[bytes],
        iopub: zmq.Socket[bytes],
        sender: FrontendSender,
        signer: Signer,
        kernel_info: Mapping[str, Any],
    ) -> None:
        super().__init__(name="mpkernel-io", daemon=True)
        hidden_from_debugger(self)
        self._shell = shell
        self._control = control
        self._iopub = iopub
        self._sender = sender
        self._signer = signer
        self._kernel_info = kernel_info
        self._handed_over = WakeupPipe()
        self._serve: Serve | None = None

    def hand_over(self, serve: Serve) -> None:
        """(main thread) The kernel is assembled: the io thread goes on with `serve`, which
        takes the requests kept so far."""
        self._serve = serve
        self._handed_over.wake()

    def run(self) -> None:
        # Process-directed SIGINT must land on the main thread, where user code runs.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            kept = self._while_starting()
            self._handed_over.close()
            assert self._serve is not None, "woken only by hand_over"
            self._serve(kept)
        except BaseException:
            log.critical("the io thread failed; output ordering is lost, exiting", exc_info=True)
            os._exit(1)

    def _while_starting(self) -> list[Kept]:
        kept: list[Kept] = []
        poller = zmq.Poller()
        for sock in (self._control, self._shell, self._iopub):
            poller.register(sock, zmq.POLLIN)
        poller.register(self._handed_over.fileno(), zmq.POLLIN)
        channels = (("control", self._control), ("shell", self._shell))
        while True:
            events = dict(poller.poll())
            if self._handed_over.fileno() in events:
                # What is still in the sockets stays there, behind what was kept.
                return kept
            for channel, sock in channels:
                if sock in events:
                    self._receive(channel, sock, kept)
            if self._iopub in events:
                self._sender.on_subscriptions()

    def _receive(self, channel: str, sock: zmq.Socket[bytes], kept: list[Kept]) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = decode_or_log(channel, frames, self._signer)
            if msg is None:
                continue
            waiting = any(kept_channel == channel for kept_channel, _ in kept)
            if msg.msg_type == "kernel_info_request" and not waiting:
                self._answer_kernel_info(channel, msg)
            else:
                kept.append((channel, msg))

    def _answer_kernel_info(self, channel: str, msg: Message[dict[str, Any]]) -> None:
        sender, parent = self._sender, msg.header
        sender.publish("status", {"execution_state": "busy"}, parent)
        sender.reply(channel, msg.identities, "kernel_info_reply", self._kernel_info, parent)
        sender.publish("status", {"execution_state": "idle"}, parent)
