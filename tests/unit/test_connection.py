"""The connection file's CurveZMQ keys: a pair or nothing, Z85, belonging together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zmq

from mpkernel.kernel.connection import (
    ConnectionFileError,
    load_connection_file,
    parse_connection,
    write_connection_file,
)
from mpkernel.kernel.sockets import check_curve_keys

needs_curve = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")


def raw(**extra: Any) -> dict[str, Any]:
    return {"transport": "tcp", "ip": "127.0.0.1", "key": "k", **extra}


def keypair() -> tuple[str, str]:
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def test_no_keys_is_unencrypted() -> None:
    info = parse_connection(raw())
    assert not info.encrypted
    assert "curve_secretkey" not in info.as_dict()


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_keys_count_as_absent(empty: str | None) -> None:
    info = parse_connection(raw(curve_publickey=empty, curve_secretkey=empty))
    assert not info.encrypted


@needs_curve
def test_a_pair_is_kept_and_written_back(tmp_path: Path) -> None:
    public, secret = keypair()
    info = parse_connection(raw(curve_publickey=public, curve_secretkey=secret))
    assert info.encrypted
    assert (info.curve_publickey, info.curve_secretkey) == (public.encode(), secret.encode())
    # The kernel rewrites the file when it chose its ports: the keys must survive that.
    path = tmp_path / "kernel.json"
    write_connection_file(path, info.with_ports({"shell_port": 5555}))
    again = load_connection_file(path)
    assert again.curve_secretkey == secret.encode()
    assert json.loads(path.read_text())["curve_publickey"] == public
    check_curve_keys(again)


@pytest.mark.parametrize("present", ["curve_publickey", "curve_secretkey"])
def test_half_a_pair_is_refused(present: str) -> None:
    public, secret = keypair()
    value = public if present == "curve_publickey" else secret
    with pytest.raises(ConnectionFileError) as err:
        parse_connection(raw(**{present: value}), "kernel-1.json")
    message = str(err.value)
    assert message.startswith("kernel-1.json: ")
    assert "needs both keys" in message
    assert secret not in message


@pytest.mark.parametrize(
    "bad",
    [
        "short",
        "x" * 39 + "~",  # '~' is not in the Z85 alphabet
        "0" * 41,
        42,
    ],
)
def test_malformed_key_is_refused(bad: Any) -> None:
    public, _ = keypair()
    with pytest.raises(ConnectionFileError, match="curve_secretkey"):
        parse_connection(raw(curve_publickey=public, curve_secretkey=bad))


@needs_curve
def test_keys_that_do_not_belong_together_are_refused() -> None:
    public, _ = keypair()
    _, other_secret = keypair()
    info = parse_connection(raw(curve_publickey=public, curve_secretkey=other_secret))
    with pytest.raises(ConnectionFileError, match="do not belong together"):
        check_curve_keys(info)


def test_unencrypted_needs_no_check() -> None:
    check_curve_keys(parse_connection(raw()))
