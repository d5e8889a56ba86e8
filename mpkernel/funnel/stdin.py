"""The stdin round trip seen from user code: a waiter that `input()` blocks on.

The main thread (user code calling `input()`) creates an `InputWaiter`, queues an
`InputRequest` item and waits. The io thread sends the request on the stdin ROUTER
and later resolves the waiter with the frontend's `input_reply`, or fails it at once
when the peer is unreachable (`ROUTER_MANDATORY` -> EHOSTUNREACH) or gone.
"""

from __future__ import annotations

import threading


class StdinUnavailable(EOFError):
    """The frontend cannot answer an input request (no stdin channel, or disconnected)."""


class InputWaiter:
    """One pending `input()` call; resolved exactly once by the io thread."""

    __slots__ = ("_done", "_error", "_value", "cancelled")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value = ""
        self._error: BaseException | None = None
        self.cancelled = False

    def resolve(self, value: str) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self) -> str:
        """Block until answered. An interrupt (KeyboardInterrupt) cancels the request."""
        try:
            self._done.wait()
        except BaseException:
            self.cancelled = True
            raise
        if self._error is not None:
            raise self._error
        return self._value
