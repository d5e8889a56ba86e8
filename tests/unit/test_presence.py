"""Frontend presence and the disconnect policy, driven with peer events and a clock."""

from __future__ import annotations

import dataclasses

import pytest

from mpkernel.config.model import default_config
from mpkernel.kernel.presence import FrontendPresence


def presence(policy: str = "close-comms", grace: float = 0.0) -> tuple[FrontendPresence, list[str]]:
    calls: list[str] = []
    config = dataclasses.replace(
        default_config().kernel, on_frontend_disconnect=policy, disconnect_grace_s=grace
    )
    return FrontendPresence(
        config, lambda: calls.append("gone"), lambda: calls.append("close")
    ), calls


def test_only_the_last_departure_is_a_disconnect() -> None:
    p, calls = presence()
    p.connected(1)
    p.connected(2)
    p.disconnected(1, 0.0)
    assert calls == []
    p.disconnected(2, 0.0)
    assert calls == ["gone", "close"]
    assert (p.subscribers, p.departures) == (0, 2)


def test_unknown_peer_leaving_is_ignored() -> None:
    p, calls = presence()
    p.disconnected(7, 0.0)
    assert (calls, p.departures) == ([], 0)


def test_grace_keeps_comms_for_a_frontend_that_comes_back() -> None:
    p, calls = presence(grace=2.0)
    p.connected(1)
    p.disconnected(1, 10.0)
    assert calls == ["gone"]
    assert p.timeout_ms(11.0) == 1001
    p.connected(2)
    assert p.timeout_ms(13.0) is None
    assert calls == ["gone"]


def test_grace_runs_out_and_closes_once() -> None:
    p, calls = presence(grace=2.0)
    p.connected(1)
    p.disconnected(1, 10.0)
    assert p.timeout_ms(12.5) is None
    assert p.timeout_ms(13.0) is None
    assert calls == ["gone", "close"]


@pytest.mark.parametrize("grace", [0.0, 2.0])
def test_keep_policy_never_closes(grace: float) -> None:
    p, calls = presence("keep", grace)
    p.connected(1)
    p.disconnected(1, 0.0)
    assert p.timeout_ms(100.0) is None
    assert calls == ["gone"]


# -- handshakes (CurveZMQ: a client without the key is accepted, then fails) ---------------


def test_a_failed_handshake_is_neither_arrival_nor_departure() -> None:
    p, calls = presence(grace=2.0)
    p.accepted(1)
    p.handshake_succeeded()
    p.disconnected(1, 10.0)
    assert calls == ["gone"]
    p.accepted(2)
    p.handshake_failed()
    p.disconnected(2, 11.0)
    # the grace was neither cancelled nor restarted by the probe
    assert (p.subscribers, p.departures) == (0, 1)
    assert p.timeout_ms(11.5) == 501
    assert p.timeout_ms(12.0) is None
    assert calls == ["gone", "close"]


def test_a_probe_beside_a_frontend_changes_nothing() -> None:
    p, calls = presence()
    p.accepted(1)
    p.handshake_succeeded()
    p.accepted(2)
    p.handshake_failed()
    p.disconnected(2, 0.0)
    assert (p.subscribers, p.departures, calls) == (1, 0, [])


def test_a_success_credited_to_the_wrong_connection_is_undone() -> None:
    """1 and 2 handshake at once; 2 passes first, so 1 is credited; then 1 fails: 2 is
    the frontend, and 2 leaving is the last departure."""
    p, calls = presence()
    p.accepted(1)
    p.accepted(2)
    p.handshake_succeeded()
    p.handshake_failed()
    p.disconnected(1, 0.0)
    assert (p.subscribers, p.departures, calls) == (1, 0, [])
    p.disconnected(2, 0.0)
    assert (p.subscribers, p.departures, calls) == (0, 1, ["gone", "close"])


def test_a_connection_closed_before_its_handshake_was_no_frontend() -> None:
    p, calls = presence()
    p.accepted(1)
    p.disconnected(1, 0.0)
    assert (p.subscribers, p.departures, calls) == (0, 0, [])
