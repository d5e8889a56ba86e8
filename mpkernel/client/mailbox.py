"""The mailbox: wait for the first message matching a predicate, keep the others.

Single job: per-channel bookkeeping of messages read from the kernel but not yet claimed.
A wait for "the reply to X" reads whatever comes first; what it does not want is kept, in
arrival order, and the next wait (by anyone) looks there before reading more. So pipelined
requests can be collected one after the other, and whatever nobody claimed is still there at
the end for a leftover check.

Sans-I/O: messages come from a ``Source`` (one read with a timeout), time from an injected
clock. Not thread-safe: one mailbox per client, one client per thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from mpkernel.client.errors import MessageTimeout
from mpkernel.client.messages import CHANNELS, Channel, Match, Msg, describe


class Source(Protocol):
    """One read on ``channel``: the next message, or None if none came within ``timeout``
    seconds."""

    def __call__(self, channel: Channel, timeout: float) -> Msg | None: ...


def anything(msg: Msg) -> bool:
    """The predicate that takes the next message, whatever it is."""
    return True


class Mailbox:
    """Messages read from a kernel's channels and not yet claimed, per channel, in arrival
    order. ``on_read`` sees every message read from the source once (e.g. a schema check)."""

    def __init__(
        self,
        source: Source,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_read: Callable[[Channel, Msg], None] | None = None,
    ) -> None:
        self._source = source
        self.clock = clock
        self._on_read = on_read
        self._pending: dict[Channel, list[Msg]] = {c: [] for c in CHANNELS}

    def pending(self, channel: Channel) -> list[Msg]:
        """The unclaimed messages of ``channel`` (a copy), oldest first."""
        return list(self._pending[channel])

    def claim(self, channel: Channel, match: Match) -> list[Msg]:
        """Take every unclaimed message of ``channel`` for which ``match`` is true."""
        box = self._pending[channel]
        taken = [m for m in box if match(m)]
        box[:] = [m for m in box if not match(m)]
        return taken

    def take(self, channel: Channel, match: Match) -> Msg | None:
        """Take the oldest unclaimed message of ``channel`` for which ``match`` is true."""
        box = self._pending[channel]
        for i, earlier in enumerate(box):
            if match(earlier):
                return box.pop(i)
        return None

    def keep(self, channel: Channel, msg: Msg) -> None:
        """Put ``msg`` at the end of ``channel``'s unclaimed messages."""
        self._pending[channel].append(msg)

    def read(self, channel: Channel, timeout: float) -> Msg | None:
        """One message straight from the source (not kept), or None after ``timeout``."""
        msg = self._source(channel, max(timeout, 0.0))
        if msg is not None and self._on_read is not None:
            self._on_read(channel, msg)
        return msg

    def receive(
        self,
        channel: Channel,
        match: Match = anything,
        *,
        timeout: float,
        what: str = "a message",
    ) -> Msg:
        """The first message on ``channel`` for which ``match`` is true: an unclaimed one if
        there is one, else the next one read; the others read meanwhile are kept. Raises
        ``MessageTimeout`` (listing what arrived instead) after ``timeout`` seconds."""
        earlier = self.take(channel, match)
        if earlier is not None:
            return earlier
        deadline = self.clock() + timeout
        seen: list[Msg] = []
        while (remaining := deadline - self.clock()) > 0:
            msg = self.read(channel, remaining)
            if msg is None:
                continue
            if match(msg):
                return msg
            seen.append(msg)
            self.keep(channel, msg)
        raise MessageTimeout(
            f"timed out after {timeout}s waiting on {channel} for {what}; "
            f"meanwhile received:\n{describe(seen)}"
        )

    def consume_until(
        self, channel: Channel, until: Match, *, timeout: float, what: str = "a message"
    ) -> Msg:
        """Hand every message of ``channel`` (unclaimed ones first, then new ones) to
        ``until`` and drop it, until ``until`` returns True; returns that message. For
        observers that look at everything (a pane, a stress test), so nothing piles up."""
        box = self._pending[channel]
        while box:
            earlier = box.pop(0)
            if until(earlier):
                return earlier
        deadline = self.clock() + timeout
        while (remaining := deadline - self.clock()) > 0:
            msg = self.read(channel, remaining)
            if msg is not None and until(msg):
                return msg
        raise MessageTimeout(f"timed out after {timeout}s waiting on {channel} for {what}")
