"""kernel.json: metadata declares CurveZMQ exactly when this libzmq can encrypt."""

from __future__ import annotations

import zmq

from mpkernel.kernelspec import build_kernel_json, kernel_metadata


def test_curve_declared_when_supported() -> None:
    assert kernel_metadata(curve=True, debugger=False) == {
        "debugger": False,
        "supported_encryption": ["curve"],
    }


def test_nothing_declared_without_curve() -> None:
    assert kernel_metadata(curve=False, debugger=True) == {"debugger": True}


def test_kernel_json_follows_this_libzmq() -> None:
    metadata = build_kernel_json()["metadata"]
    assert ("supported_encryption" in metadata) == zmq.has("curve")
    assert metadata["debugger"] is True  # debugpy is a dependency
