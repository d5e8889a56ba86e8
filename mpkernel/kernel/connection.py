"""The connection file: where to bind and how to sign.

Pure: parsing and validation of the JSON file that the frontend writes (`jupyter_client`
writes it before launching us). No sockets here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


class ConnectionFileError(Exception):
    """The connection file is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    transport: str
    ip: str
    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int
    key: bytes
    signature_scheme: str
    kernel_name: str = ""

    def address(self, port: int) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"{self.transport}://{self.ip}:{port}"

    def with_ports(self, ports: dict[str, int]) -> ConnectionInfo:
        return replace(self, **ports)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "ip": self.ip,
            "shell_port": self.shell_port,
            "iopub_port": self.iopub_port,
            "stdin_port": self.stdin_port,
            "control_port": self.control_port,
            "hb_port": self.hb_port,
            "key": self.key.decode("utf-8", "surrogateescape"),
            "signature_scheme": self.signature_scheme,
            "kernel_name": self.kernel_name,
        }


def parse_connection(raw: Any, source: str = "<connection>") -> ConnectionInfo:
    if not isinstance(raw, dict):
        raise ConnectionFileError(f"{source}: expected a JSON object")
    transport = raw.get("transport", "tcp")
    if transport not in ("tcp", "ipc"):
        raise ConnectionFileError(f"{source}: transport must be 'tcp' or 'ipc', not {transport!r}")
    ip = raw.get("ip", "127.0.0.1" if transport == "tcp" else "kernel-ipc")
    if not isinstance(ip, str) or not ip:
        raise ConnectionFileError(f"{source}: ip must be a non-empty string")
    ports: dict[str, int] = {}
    for name in PORT_NAMES:
        value = raw.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise ConnectionFileError(f"{source}: {name} must be an integer port, not {value!r}")
        ports[name] = value
    key = raw.get("key", "")
    if not isinstance(key, str):
        raise ConnectionFileError(f"{source}: key must be a string")
    scheme = raw.get("signature_scheme", "hmac-sha256")
    if not isinstance(scheme, str) or not scheme.startswith("hmac-"):
        raise ConnectionFileError(f"{source}: unsupported signature_scheme {scheme!r}")
    kernel_name = raw.get("kernel_name", "")
    return ConnectionInfo(
        transport=transport,
        ip=ip,
        key=key.encode("utf-8", "surrogateescape"),
        signature_scheme=scheme,
        kernel_name=kernel_name if isinstance(kernel_name, str) else "",
        **ports,
    )


def load_connection_file(path: Path) -> ConnectionInfo:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConnectionFileError(f"{path}: cannot read connection file: {e.strerror}") from e
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConnectionFileError(f"{path}: not valid JSON: {e}") from e
    return parse_connection(raw, str(path))


def write_connection_file(path: Path, info: ConnectionInfo) -> None:
    path.write_text(json.dumps(info.as_dict(), indent=2), encoding="utf-8")
