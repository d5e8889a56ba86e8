"""A frontend: one jupyter_client ``BlockingKernelClient`` and its mailbox.

Single job: send requests and wait for their answers on a real kernel, every wait on a
message with a deadline (a hang guard that asserts nothing about speed). Waits that read
messages meant for someone else keep them in the ``Mailbox``, so pipelined requests are
collected one after the other and nothing is lost between waits.

Signing, framing and the sockets are jupyter_client's. Used from one thread: a test, a tool
or a script that needs several concurrent frontends makes one per thread (``connect``).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any, Literal, cast

import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import KernelConnectionInfo

from mpkernel.client.errors import MessageTimeout, UnexpectedMessages, expect
from mpkernel.client.iopub_log import DEFAULT_TIMEOUT, IOPubLog
from mpkernel.client.mailbox import Mailbox, Source, anything
from mpkernel.client.messages import (
    CHANNELS,
    Channel,
    Header,
    Match,
    Msg,
    describe,
    kind,
    msg_type,
    parented_to,
    stream_text,
)

#: The channels a request can be sent on.
RequestChannel = Literal["shell", "control"]


@dataclass
class Executed:
    """One execute_request, its reply and the IOPub messages from its busy to its idle."""

    msg_id: str
    reply: Msg
    iopub: list[Msg]

    @property
    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = self.reply["content"]
        return content

    @property
    def outputs(self) -> list[Msg]:
        """IOPub messages other than status and execute_input."""
        return [m for m in self.iopub if msg_type(m) not in ("status", "execute_input")]

    def stdout(self) -> str:
        return stream_text(self.iopub, "stdout")

    def stderr(self) -> str:
        return stream_text(self.iopub, "stderr")


def channel_reader(kc: BlockingKernelClient) -> Source:
    """A ``Mailbox`` source reading ``kc``'s channels. It holds ``kc`` weakly, so a mailbox
    kept per client (in a weak map keyed by the client) does not keep the client alive."""
    client = weakref.ref(kc)

    def read(channel: Channel, timeout: float) -> Msg | None:
        kc = client()
        if kc is None:
            raise MessageTimeout(f"the client of this mailbox is gone: nothing on {channel}")
        try:
            msg: Msg = getattr(kc, f"{channel}_channel").get_msg(timeout=timeout)
        except Empty:
            return None
        return msg

    return read


class Frontend:
    """Requests to one kernel and the answers to them, through ``kc``.

    ``on_read`` sees every message once, as it is read (a test passes a schema check).
    ``mailbox``: the unclaimed messages of ``kc`` when another ``Frontend`` on it read some
    (made from ``channel_reader(kc)``); by default a mailbox of its own.
    """

    def __init__(
        self,
        kc: BlockingKernelClient,
        *,
        mailbox: Mailbox | None = None,
        on_read: Callable[[Channel, Msg], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kc = kc
        if mailbox is None:
            mailbox = Mailbox(channel_reader(kc), clock=clock, on_read=on_read)
        self.mailbox = mailbox

    @classmethod
    def connect(
        cls,
        connection: str | Path | Mapping[str, Any],
        *,
        channels: Iterable[Channel] = CHANNELS,
        on_read: Callable[[Channel, Msg], None] | None = None,
    ) -> Frontend:
        """A frontend of its own (its own zmq context) on the kernel of a connection file
        or connection info. No heartbeat: a busy machine that delays one beat would make a
        heartbeat-based readiness check declare the kernel dead; waits have deadlines."""
        kc = BlockingKernelClient()
        if isinstance(connection, Mapping):
            kc.load_connection_info(cast("KernelConnectionInfo", dict(connection)))
        else:
            kc.connection_file = str(connection)
            kc.load_connection_file()
        wanted = set(channels)
        kc.start_channels(
            shell="shell" in wanted,
            iopub="iopub" in wanted,
            stdin="stdin" in wanted,
            hb=False,
            control="control" in wanted,
        )
        return cls(kc, on_read=on_read)

    def close(self) -> None:
        """Close the channels (and the zmq context, when the client made it)."""
        self.kc.stop_channels()

    def __enter__(self) -> Frontend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -------------------------------------------------------------------------
    def send(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        channel: RequestChannel = "shell",
        buffers: Sequence[bytes] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> Header:
        """Send a request signed by the client's session; returns its header as sent.
        ``header`` adds fields to it (e.g. a ``subshell_id``)."""
        msg = self.kc.session.msg(msg_type, dict(content or {}))
        if header:
            msg["header"].update(header)
        if buffers:
            msg["buffers"] = list(buffers)
        getattr(self.kc, f"{channel}_channel").send(msg)
        sent: Header = msg["header"]
        return sent

    def send_request(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        channel: RequestChannel = "shell",
    ) -> str:
        """``send``, returning only the msg_id."""
        msg_id: str = self.send(msg_type, content, channel=channel)["msg_id"]
        return msg_id

    def execute(self, code: str, **kw: Any) -> str:
        """Send an execute_request; returns its msg_id. Keywords as ``KernelClient.execute``."""
        msg_id: str = self.kc.execute(code, **kw)
        return msg_id

    # -- receiving -----------------------------------------------------------------------
    def recv(
        self,
        channel: Channel,
        match: Match = anything,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "a message",
    ) -> Msg:
        """The first message on ``channel`` for which ``match`` is true (see ``Mailbox``)."""
        return self.mailbox.receive(channel, match, timeout=timeout, what=what)

    def recv_for(
        self,
        channel: Channel,
        parent: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        what: str | None = None,
    ) -> Msg:
        """The next message on ``channel`` parented to the request ``parent``."""
        return self.recv(
            channel,
            parented_to(parent),
            timeout=timeout,
            what=what or f"a message parented to {parent}",
        )

    def first_of(
        self,
        wanted: Mapping[Channel, Match],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "a message",
    ) -> tuple[Channel, Msg]:
        """The first message, on any of several channels, that matches its channel's
        predicate (e.g. an input_request on stdin or the execution's reply on shell,
        whichever comes first); the others read meanwhile are kept."""
        for channel, match in wanted.items():
            earlier = self.mailbox.take(channel, match)
            if earlier is not None:
                return channel, earlier
        poller = zmq.Poller()
        sockets: dict[Any, Channel] = {}
        for channel in wanted:
            sock = getattr(self.kc, f"{channel}_channel").socket
            poller.register(sock, zmq.POLLIN)
            sockets[sock] = channel
        deadline = self.mailbox.clock() + timeout
        while (remaining := deadline - self.mailbox.clock()) > 0:
            for sock, _ in poller.poll(int(remaining * 1000) + 1):
                channel = sockets[sock]
                msg = self.mailbox.read(channel, 0.0)
                if msg is None:
                    continue
                if wanted[channel](msg):
                    return channel, msg
                self.mailbox.keep(channel, msg)
        raise MessageTimeout(f"timed out after {timeout}s waiting on {sorted(wanted)} for {what}")

    def observe(
        self, channel: Channel, until: Match, *, timeout: float = DEFAULT_TIMEOUT, what: str
    ) -> Msg:
        """Hand every message of ``channel`` to ``until`` (none is kept) until it says
        True; returns that message."""
        return self.mailbox.consume_until(channel, until, timeout=timeout, what=what)

    def get_reply(
        self, msg_id: str, channel: Channel = "shell", *, timeout: float = DEFAULT_TIMEOUT
    ) -> Msg:
        """The reply to the request ``msg_id``; it must be a ``*_reply``."""
        reply = self.recv_for(channel, msg_id, timeout=timeout, what=f"the reply to {msg_id}")
        expect(
            msg_type(reply).endswith("_reply"),
            lambda: f"expected a reply to {msg_id}, got {msg_type(reply)}",
        )
        return reply

    def expect_busy(self, parent: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
        """The next IOPub message for ``parent``, which must be ``status: busy``."""
        m = self.recv_for("iopub", parent, timeout=timeout, what=f"busy for {parent}")
        expect(
            kind(m) == "status:busy",
            lambda: f"first IOPub message for {parent} is not busy:\n{describe([m])}",
        )
        return m

    def expect_idle(self, parent: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
        """The next IOPub message for ``parent``, which must be ``status: idle``."""
        m = self.recv_for("iopub", parent, timeout=timeout, what=f"idle for {parent}")
        expect(
            kind(m) == "status:idle", lambda: f"expected idle for {parent}, got:\n{describe([m])}"
        )
        return m

    def collect_until_idle(self, msg_id: str, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
        """IOPub messages parented to ``msg_id``, from busy to idle inclusive: exactly one
        busy (the first) and one idle (the last). Others read meanwhile are kept."""
        deadline = self.mailbox.clock() + timeout
        msgs = [self.expect_busy(msg_id, timeout=timeout)]
        try:
            msgs += self._rest(msgs, msg_id, deadline)
        except MessageTimeout as exc:
            raise MessageTimeout(
                f"no idle for {msg_id} within {timeout}s; got so far:\n{describe(msgs)}"
            ) from exc
        return msgs

    def collect_rest(self, msg_id: str, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
        """The remaining IOPub messages of a request up to its idle, when its busy (and
        maybe more) was read already."""
        return self._rest([], msg_id, self.mailbox.clock() + timeout)

    def _rest(self, before: list[Msg], msg_id: str, deadline: float) -> list[Msg]:
        msgs: list[Msg] = []
        while True:
            remaining = max(deadline - self.mailbox.clock(), 0.0)
            m = self.recv_for("iopub", msg_id, timeout=remaining, what=f"idle for {msg_id}")
            msgs.append(m)
            expect(
                kind(m) != "status:busy",
                lambda: f"second busy for {msg_id}:\n{describe(before + msgs)}",
            )
            if kind(m) == "status:idle":
                return msgs

    # -- requests ------------------------------------------------------------------------
    def run(self, code: str, *, timeout: float = DEFAULT_TIMEOUT, **kw: Any) -> Executed:
        """Execute ``code`` and wait for both its idle and its reply."""
        msg_id = self.execute(code, **kw)
        iopub = self.collect_until_idle(msg_id, timeout)
        reply = self.get_reply(msg_id, timeout=timeout)
        expect(
            msg_type(reply) == "execute_reply", lambda: f"not an execute_reply: {describe([reply])}"
        )
        return Executed(msg_id, reply, iopub)

    def run_ok(self, code: str, **kw: Any) -> Executed:
        """``run``, and the reply's status must be ok (the error is shown otherwise)."""
        ex = self.run(code, **kw)
        expect(
            ex.content["status"] == "ok",
            lambda: f"execution of {code!r} failed: {ex.content}\n{describe(ex.iopub)}",
        )
        return ex

    def request(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        channel: RequestChannel = "shell",
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> tuple[Msg, list[Msg]]:
        """Send a non-execute request; its reply and its IOPub busy..idle."""
        msg_id = self.send_request(msg_type, content, channel)
        reply = self.get_reply(msg_id, channel, timeout=timeout)
        return reply, self.collect_until_idle(msg_id, timeout)

    def sync(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Barrier: nothing caused by earlier shell requests is still in flight after this.

        Sends comm_info (served behind every earlier shell request, where a kernel_info may
        be answered at once, ahead of a running cell) and drops whatever arrives on shell
        and IOPub before its reply and its idle. For setup (``wait_for_ready`` leaves stray
        kernel_info replies and startup messages), never to hide what a check should see.
        """
        msg_id = self.send_request("comm_info_request")
        self.recv_for("shell", msg_id, timeout=timeout)
        self.observe(
            "iopub",
            lambda m: kind(m) == "status:idle" and parented_to(msg_id)(m),
            timeout=timeout,
            what=f"idle for the sync request {msg_id}",
        )
        self.mailbox.claim("shell", anything)
        self.mailbox.claim("iopub", anything)

    def wait_welcome(self, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
        """mpkernel's ``iopub_welcome`` for this subscription: from then on nothing
        published is missed. Earlier IOPub messages are dropped."""
        return self.observe(
            "iopub",
            lambda m: msg_type(m) == "iopub_welcome",
            timeout=timeout,
            what="iopub_welcome",
        )

    # -- stdin ---------------------------------------------------------------------------
    def input_request(self, parent: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
        """The kernel's input_request for the execution ``parent``."""
        return self.recv(
            "stdin",
            lambda m: msg_type(m) == "input_request" and parented_to(parent)(m),
            timeout=timeout,
            what=f"the input_request of {parent}",
        )

    def answer_input(self, value: str, prompt: Msg | None = None) -> None:
        """Answer an input_request with ``value``; parented to ``prompt`` when given (as
        JupyterLab sends it, so that each of two waiting prompts gets its own answer)."""
        if prompt is None:
            self.kc.input(value)
            return
        self.kc.stdin_channel.send(
            self.kc.session.msg("input_reply", {"value": value}, parent=prompt)
        )

    def wait_stdin_routable(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Until the kernel can route an input_request to this client. The stdin socket
        connects asynchronously, and a kernel that sends with ROUTER_MANDATORY fails an
        input_request to a peer it does not know yet at once: probe with ``input()`` cells,
        answered with "", until one gets its prompt. Each probe is waited to its idle."""
        deadline = self.mailbox.clock() + timeout
        while (remaining := deadline - self.mailbox.clock()) > 0:
            msg_id = self.execute(
                "input()", allow_stdin=True, store_history=False, stop_on_error=False
            )
            mine = parented_to(msg_id)
            channel, _ = self.first_of(
                {"stdin": mine, "shell": mine}, timeout=remaining, what="a prompt or a reply"
            )
            if channel == "stdin":
                self.answer_input("")
                status = self.get_reply(msg_id, timeout=timeout)["content"]["status"]
                if status != "ok":
                    raise UnexpectedMessages(f"the input() probe ended with status {status}")
                self.collect_until_idle(msg_id, timeout)
                return
            self.collect_until_idle(msg_id, timeout)  # input() failed: not routable yet
        raise MessageTimeout(f"the kernel could not route an input_request within {timeout}s")

    # -- the end -------------------------------------------------------------------------
    def drain(
        self, channels: Iterable[Channel] = CHANNELS, *, window: float = 0.25
    ) -> list[tuple[Channel, Msg]]:
        """Everything unclaimed on ``channels`` plus what arrives within ``window`` seconds
        on all of them together (for a check that nothing was left unanswered)."""
        wanted = list(channels)
        found: list[tuple[Channel, Msg]] = [
            (c, m) for c in wanted for m in self.mailbox.claim(c, anything)
        ]
        poller = zmq.Poller()
        sockets: dict[Any, Channel] = {}
        for c in wanted:
            sock = getattr(self.kc, f"{c}_channel").socket
            if sock is not None:
                poller.register(sock, zmq.POLLIN)
                sockets[sock] = c
        deadline = self.mailbox.clock() + window
        while sockets and (remaining := deadline - self.mailbox.clock()) > 0:
            for sock, _ in poller.poll(int(remaining * 1000) + 1):
                c = sockets[sock]
                msg = self.mailbox.read(c, 0.0)
                if msg is not None:
                    found.append((c, msg))
        return found

    def log(self, msgs: list[Msg] | None = None) -> IOPubLog:
        """An IOPub log reading through this frontend's mailbox."""
        return IOPubLog(self.mailbox, msgs)
