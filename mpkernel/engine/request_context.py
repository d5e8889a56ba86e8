"""Where a thread's outputs and prompts belong: the request it is serving.

The main shell and every subshell serve one request at a time, each on its own thread, in
the same IPython shell. So "the request being served" is a property of the calling thread:
a subshell thread `attach`es itself and from then on reads and writes its own state; every
other thread (the main thread, and threads user code starts) shares the main shell's. The
stdout/stderr writers are told each thread's parent as it changes, so a print is parented
to the request of the thread that printed it.

Read by any thread; each state is written only by the thread it belongs to, the table of
states by the threads attaching and detaching (under a lock).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from threading import get_ident
from typing import TYPE_CHECKING, Any

from mpkernel.engine.kernel_object import header_of, message_as_dict
from mpkernel.wire import Header, Message

if TYPE_CHECKING:
    from mpkernel.funnel.capture import FunnelWriter


class _State:
    __slots__ = ("adopted", "allow_stdin", "identities", "parent", "request")

    def __init__(self) -> None:
        self.parent: Header | None = None
        self.identities: tuple[bytes, ...] = ()
        self.allow_stdin = False
        self.request: Message[dict[str, Any]] | None = None
        # A parent set by user code (`get_ipython().set_parent`), as it gave it.
        self.adopted: Mapping[str, Any] | None = None


class RequestContext:
    """The request each shell thread is serving: where its outputs and prompts belong."""

    def __init__(self) -> None:
        self._main = _State()
        # Replaced, never mutated, under the lock (subshell threads attach and detach at the
        # same time); read without it.
        self._threads: dict[int, _State] = {}
        self._lock = threading.Lock()
        #: sys.stdout and sys.stderr: their text belongs to the same request
        self.writers: tuple[FunnelWriter, ...] = ()

    def _state(self) -> _State:
        threads = self._threads
        if threads:
            state = threads.get(get_ident())
            if state is not None:
                return state
        return self._main

    # -- subshell threads ----------------------------------------------------------
    def attach(self) -> None:
        """The calling thread serves requests of its own (a subshell) from now on."""
        ident = get_ident()
        with self._lock:
            self._threads = {**self._threads, ident: _State()}

    def detach(self) -> None:
        ident = get_ident()
        with self._lock:
            self._threads = {k: v for k, v in self._threads.items() if k != ident}
        for writer in self.writers:
            writer.forget_thread(ident)

    @property
    def on_subshell(self) -> bool:
        return get_ident() in self._threads

    # -- the calling thread's request ------------------------------------------------
    @property
    def parent(self) -> Header | None:
        return self._state().parent

    @property
    def identities(self) -> tuple[bytes, ...]:
        return self._state().identities

    @property
    def request(self) -> Message[dict[str, Any]] | None:
        return self._state().request

    @property
    def allow_stdin(self) -> bool:
        return self._state().allow_stdin

    @allow_stdin.setter
    def allow_stdin(self, value: bool) -> None:
        self._state().allow_stdin = value

    def serve(self, msg: Message[dict[str, Any]]) -> None:
        """From now on, the calling thread's outputs belong to `msg`."""
        state = self._state()
        state.parent = msg.header
        state.identities = msg.identities
        state.request = msg
        state.adopted = None
        self._tell_writers(state, msg.header)

    def adopt(self, parent: Mapping[str, Any]) -> None:
        """Make the calling thread's outputs belong to `parent`, a message dict
        (ipykernel's `set_parent`)."""
        header = header_of(parent)
        if header is None:
            raise ValueError("set_parent needs a message with a header holding a msg_id")
        state = self._state()
        state.parent = header
        state.adopted = parent
        self._tell_writers(state, header)

    def _tell_writers(self, state: _State, header: Header) -> None:
        if state is self._main:
            for writer in self.writers:
                writer.parent = header
        else:
            ident = get_ident()
            for writer in self.writers:
                writer.set_thread_parent(ident, header)

    def parent_message(self) -> dict[str, Any]:
        """The request outputs belong to, as a message dict ({} before the first)."""
        state = self._state()
        if state.adopted is not None:
            return dict(state.adopted)
        return message_as_dict(state.request) if state.request is not None else {}
