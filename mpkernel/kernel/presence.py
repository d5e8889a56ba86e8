"""Whether a frontend is connected, and what happens when the last one leaves.

docs/architecture.md section 5 says what a departure does to requests and comms.

Fed by the IOPub socket's monitor (connections accepted and closed, in real time: XPUB
reports departures later than subscriptions, so a quick reconnect could otherwise hide a
departure). When the last frontend leaves it calls `on_gone` at once (what waits on the
frontend fails), then, by the `on_frontend_disconnect` policy, `close_comms` either at once
or when `disconnect_grace_s` has passed without a frontend coming back. A frontend that
reconnects with the same routing id takes it over on shell, control and stdin
(`ROUTER_HANDOVER`, see `sockets`); that is no event here: only IOPub connections count,
so a takeover while the old connection lives is not a departure.

A connection counts as a frontend once its ZMTP handshake has passed: with CurveZMQ a
client without the server's key is accepted by TCP and then fails the handshake, and such a
probe must neither cancel a grace nor count as a departure. libzmq's handshake events do not
name the connection (their value is 0 or an errno), but one engine emits its failure and its
disconnect back to back on the one zmq I/O thread, so the failure marks the next disconnect;
a success is credited to the oldest connection still in its handshake (only the count
matters; a wrong guess is undone when the guessed one's failure shows). Io thread only;
no sockets here: the io loop passes events and the time in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mpkernel.config.model import KernelConfig

log = logging.getLogger(__name__)


class FrontendPresence:
    def __init__(
        self,
        config: KernelConfig,
        on_gone: Callable[[], None],
        close_comms: Callable[[], None],
    ) -> None:
        self._config = config
        self._on_gone = on_gone
        self._close_comms = close_comms
        self._peers: set[int] = set()
        # accepted, handshake not passed yet; oldest first
        self._handshaking: list[int] = []
        self._failing = False
        self._close_at: float | None = None
        self.departures = 0

    @property
    def subscribers(self) -> int:
        return len(self._peers)

    def accepted(self, peer: int) -> None:
        """A connection was accepted; it is a frontend once its handshake passes."""
        self._handshaking.append(peer)

    def handshake_succeeded(self) -> None:
        if self._handshaking:
            self.connected(self._handshaking.pop(0))

    def handshake_failed(self) -> None:
        """The next `disconnected` is that connection's: not a frontend leaving."""
        self._failing = True

    def connected(self, peer: int) -> None:
        self._peers.add(peer)
        if self._close_at is not None:
            log.info("a frontend connected within the disconnect grace: comms kept")
            self._close_at = None

    def disconnected(self, peer: int, now: float) -> None:
        failed, self._failing = self._failing, False
        if peer in self._handshaking:
            self._handshaking.remove(peer)
            if failed:
                log.warning("an IOPub connection failed its handshake (wrong or no curve key?)")
            return
        if peer not in self._peers:
            return
        if failed:
            # The success credited to `peer` was another connection's, still handshaking.
            self._peers.discard(peer)
            if self._handshaking:
                self._peers.add(self._handshaking.pop(0))
            log.warning("an IOPub connection failed its handshake (wrong or no curve key?)")
            return
        self._peers.discard(peer)
        self.departures += 1
        log.info("an IOPub subscriber left (%d remain)", self.subscribers)
        if self._peers:
            return
        config = self._config
        log.warning(
            "frontend disconnected (no IOPub subscriber); policy %s, grace %gs",
            config.on_frontend_disconnect,
            config.disconnect_grace_s,
        )
        self._on_gone()
        if config.on_frontend_disconnect != "close-comms":
            return
        if config.disconnect_grace_s > 0:
            self._close_at = now + config.disconnect_grace_s
        else:
            self._close_comms()

    def timeout_ms(self, now: float) -> int | None:
        """When the grace runs out (runs `close_comms` if it has)."""
        if self._close_at is None:
            return None
        left = self._close_at - now
        if left <= 0:
            self._close_at = None
            self._close_comms()
            return None
        return int(left * 1000) + 1
