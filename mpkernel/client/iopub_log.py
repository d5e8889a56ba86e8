"""IOPub in arrival order, across parents.

Single job: keep every IOPub message read through the log in the order the kernel published
it, so checks can look at order *across* requests (events are parentless, a comm_close after
a crash is parentless), not only within one request's busy..idle. It reads through a
``Mailbox``, so what another wait put aside comes first, in arrival order.

Pure bookkeeping over a mailbox: no sockets of its own, one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mpkernel.client.errors import MessageTimeout, expect
from mpkernel.client.messages import Msg, comm_id_of, describe, is_status, kind, parent_id

if TYPE_CHECKING:
    from mpkernel.client.mailbox import Mailbox

#: Hang guard for one wait (most finish in milliseconds).
DEFAULT_TIMEOUT = 30.0


class IOPubLog:
    """Every IOPub message read through this log, in arrival order; ``idle`` holds the
    requests whose idle has been seen. ``mailbox`` None: a log over ``msgs`` only."""

    def __init__(self, mailbox: Mailbox | None, msgs: list[Msg] | None = None) -> None:
        self.mailbox = mailbox
        self.msgs: list[Msg] = []
        self.idle: set[str] = set()
        # parent msg_id -> its messages in arrival order: checks on one request stay cheap
        # in a long log
        self._by_parent: dict[str | None, list[Msg]] = {}
        for m in msgs or []:
            self._record(m)

    def _record(self, msg: Msg) -> None:
        self.msgs.append(msg)
        pid = parent_id(msg)
        self._by_parent.setdefault(pid, []).append(msg)
        if pid is not None and is_status(msg, "idle"):
            self.idle.add(pid)

    def read_one(self, *, timeout: float, what: str) -> Msg:
        """The next IOPub message (an unclaimed one first), logged."""
        if self.mailbox is None:
            raise MessageTimeout(f"a log without a mailbox cannot wait for {what}")
        m = self.mailbox.receive("iopub", timeout=timeout, what=what)
        self._record(m)
        return m

    def read_until(
        self, done: Callable[[], bool], *, timeout: float = DEFAULT_TIMEOUT, what: str
    ) -> None:
        """Read until ``done()``; on timeout, fail showing the tail of what arrived."""
        if done():
            return
        if self.mailbox is None:
            raise self._timed_out(timeout, what)
        clock = self.mailbox.clock
        deadline = clock() + timeout
        while not done():
            remaining = deadline - clock()
            if remaining <= 0:
                raise self._timed_out(timeout, what)
            try:
                self.read_one(timeout=remaining, what=what)
            except MessageTimeout as exc:
                raise self._timed_out(timeout, what) from exc

    def _timed_out(self, timeout: float, what: str) -> MessageTimeout:
        return MessageTimeout(
            f"timed out after {timeout}s waiting for {what}; last messages:\n"
            f"{describe(self.msgs[-40:])}"
        )

    def wait_idle(self, *msg_ids: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Read until the idle of every request in ``msg_ids`` has been logged."""
        ids = set(msg_ids)
        self.read_until(
            lambda: ids <= self.idle, timeout=timeout, what=f"idle for {sorted(ids - self.idle)}"
        )

    def wait_for(
        self, match: Callable[[Msg], bool], *, timeout: float = DEFAULT_TIMEOUT, what: str
    ) -> Msg:
        """The first logged message (already read or new) for which ``match`` is true."""
        found: list[Msg] = []
        start = 0

        def done() -> bool:
            nonlocal start
            for m in self.msgs[start:]:
                if match(m):
                    found.append(m)
                    return True
            start = len(self.msgs)
            return False

        self.read_until(done, timeout=timeout, what=what)
        return found[0]

    def parented(self, msg_id: str) -> list[Msg]:
        """The logged messages parented to the request ``msg_id``, in arrival order."""
        return list(self._by_parent.get(msg_id, ()))

    def on_comm(self, comm_id: str) -> list[Msg]:
        """The logged comm_open, comm_msg and comm_close of ``comm_id``."""
        return [m for m in self.msgs if comm_id_of(m) == comm_id]

    def index(self, msg: Msg) -> int:
        """The position of ``msg`` (this very message, not an equal one) in the log."""
        for i, m in enumerate(self.msgs):
            if m is msg:
                return i
        raise ValueError("message not in the log")


def bracket(msgs: Sequence[Msg], msg_id: str) -> list[Msg]:
    """I3 on a log: among messages parented to ``msg_id``, exactly one busy, first, and one
    idle, last. Returns the messages between them; raises ``UnexpectedMessages`` otherwise."""
    mine = [m for m in msgs if parent_id(m) == msg_id]
    labels = [kind(m) for m in mine]
    expect(labels.count("status:busy") == 1, lambda: f"busy count for {msg_id}:\n{describe(mine)}")
    expect(labels.count("status:idle") == 1, lambda: f"idle count for {msg_id}:\n{describe(mine)}")
    expect(labels[0] == "status:busy", lambda: f"busy is not first for {msg_id}:\n{describe(mine)}")
    expect(labels[-1] == "status:idle", lambda: f"idle is not last for {msg_id}:\n{describe(mine)}")
    return mine[1:-1]
