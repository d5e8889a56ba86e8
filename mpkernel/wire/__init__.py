"""mpkernel.wire: the Jupyter wire protocol, sans-I/O.

Single job: turn received frame lists into typed ``Message`` values and back, with
HMAC signing, replay protection and strict JSON. It never touches a socket and never
imports zmq (a test enforces it): the io thread hands it ``list[bytes]`` and gets
``Message`` or a ``WireError`` (log and drop) back.

Modules, one job each: ``errors`` (whose fault), ``signing`` (``Signer``), ``frames``
(delimiter and part layout), ``header`` (``Header``, ``HeaderFactory``), ``message``
(``Message[C]``), ``codec`` (``decode``/``encode``/``encode_raw``/``json_bytes``),
``content`` (TypedDicts per message type; import them from ``mpkernel.wire.content``).

No thread owns this package: pure functions and values (see each module for details).
"""

from __future__ import annotations

from mpkernel.wire.codec import decode, encode, encode_raw, json_bytes
from mpkernel.wire.errors import (
    BadHeader,
    BadJson,
    BadSignature,
    MissingDelimiter,
    ProtocolViolation,
    ReplayedSignature,
    TooFewParts,
    WireError,
)
from mpkernel.wire.frames import DELIMITER, join_frames, split_identities, split_parts
from mpkernel.wire.header import PROTOCOL_VERSION, Header, HeaderFactory, utc_now_iso
from mpkernel.wire.message import C, Message
from mpkernel.wire.signing import Signer

__all__ = [
    "DELIMITER",
    "PROTOCOL_VERSION",
    "BadHeader",
    "BadJson",
    "BadSignature",
    "C",
    "Header",
    "HeaderFactory",
    "Message",
    "MissingDelimiter",
    "ProtocolViolation",
    "ReplayedSignature",
    "Signer",
    "TooFewParts",
    "WireError",
    "decode",
    "encode",
    "encode_raw",
    "join_frames",
    "json_bytes",
    "split_identities",
    "split_parts",
    "utc_now_iso",
]
