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
