"""The connection file: where to bind, how to sign and, optionally, how to encrypt.

Pure: parsing and validation of the JSON file that the frontend writes (`jupyter_client`
writes it before launching us). No sockets here.

CurveZMQ keys (`curve_publickey`, `curve_secretkey`, Z85 text, as jupyter_client >= 8.10
provisions them for kernelspecs that declare `supported_encryption: ["curve"]`) come as a
pair or not at all: half a pair or a malformed key is a `ConnectionFileError`, never a
silently unencrypted kernel. Whether the two keys belong together is checked where libzmq
is at hand (`sockets.check_curve_keys`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CURVE_KEY_NAMES = ("curve_publickey", "curve_secretkey")
#: the Z85 alphabet (ZeroMQ RFC 32); a 32-byte curve key is 40 of these characters
Z85_CHARS = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
Z85_KEY_LENGTH = 40


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
    # CurveZMQ server keys, Z85-encoded; both or neither (see `parse_connection`)
    curve_publickey: bytes | None = None
    curve_secretkey: bytes | None = None

    @property
    def encrypted(self) -> bool:
        return self.curve_secretkey is not None

    def address(self, port: int) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"{self.transport}://{self.ip}:{port}"

    def with_ports(self, ports: dict[str, int]) -> ConnectionInfo:
        return replace(self, **ports)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
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
        if self.curve_publickey is not None and self.curve_secretkey is not None:
            # Kept when the file is rewritten with real ports: clients read the keys here.
            out["curve_publickey"] = self.curve_publickey.decode("ascii")
            out["curve_secretkey"] = self.curve_secretkey.decode("ascii")
        return out


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
    curve_publickey, curve_secretkey = parse_curve_keys(raw, source)
    return ConnectionInfo(
        transport=transport,
        ip=ip,
        key=key.encode("utf-8", "surrogateescape"),
        signature_scheme=scheme,
        kernel_name=kernel_name if isinstance(kernel_name, str) else "",
        curve_publickey=curve_publickey,
        curve_secretkey=curve_secretkey,
        **ports,
    )


def parse_curve_keys(raw: dict[str, Any], source: str) -> tuple[bytes | None, bytes | None]:
    """The CurveZMQ key pair of a connection file, or (None, None) when it has none.

    An empty or null value counts as absent (jupyter_client writes neither, but a hand-made
    file might). The secret key never appears in an error message."""
    present = {name: raw.get(name) for name in CURVE_KEY_NAMES if raw.get(name) not in (None, "")}
    if not present:
        return None, None
    if len(present) == 1:
        (given,) = present
        (missing,) = (name for name in CURVE_KEY_NAMES if name not in present)
        raise ConnectionFileError(
            f"{source}: {given} is set but {missing} is missing: CurveZMQ needs both keys "
            "(remove both to run unencrypted)"
        )
    keys: list[bytes] = []
    for name, value in present.items():
        if not isinstance(value, str):
            raise ConnectionFileError(f"{source}: {name} must be a string (Z85 text)")
        if len(value) != Z85_KEY_LENGTH or not Z85_CHARS.issuperset(value):
            raise ConnectionFileError(
                f"{source}: {name} is not a Z85-encoded CurveZMQ key "
                f"({Z85_KEY_LENGTH} characters of the Z85 alphabet; got {len(value)} characters)"
            )
        keys.append(value.encode("ascii"))
    return keys[0], keys[1]


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
