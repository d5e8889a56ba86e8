"""Frames <-> ``Message``: the one JSON encoder, ``decode`` and ``encode``.

Single job: turn a received frame list into a ``Message`` (or a ``WireError``), and a
``Message`` into the frame list to send.

Invariants:
- ``decode`` checks, in this order: delimiter, part count, signature (and replay), and
  only then parses JSON. Unauthenticated bytes are never fed to the JSON parser, so a
  huge or hostile frame with a bad signature costs one HMAC and nothing more.
- JSON in both directions is strict: UTF-8 only, objects only at the top level, no
  ``NaN``/``Infinity``. What ``encode`` writes, ``decode`` (and jupyter_client) reads back.
- ``encode`` reports content it cannot serialize as ``ProtocolViolation`` (our bug).
- Buffers pass through untouched and unsigned.

No thread owns this module: pure functions. The one piece of state, a memo of the most
recently encoded parent header, is a single tuple replaced atomically, so concurrent
callers can at worst miss the memo, never read a wrong one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import date
from json.encoder import encode_basestring
from typing import Any, Final, NoReturn

from mpkernel.wire.errors import BadHeader, BadJson, ProtocolViolation
from mpkernel.wire.frames import join_frames, split_identities, split_parts
from mpkernel.wire.header import Header
from mpkernel.wire.message import Message
from mpkernel.wire.signing import Signer

__all__ = ["decode", "encode", "encode_raw", "json_bytes"]

_EMPTY_OBJECT: Final = b"{}"


def _json_default(obj: object) -> Any:
    """Serialize the few non-JSON types the kernel legitimately emits; refuse the rest."""
    if isinstance(obj, date):  # datetime is a date subclass
        return obj.isoformat()
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# One prebuilt encoder: json.dumps with non-default options would build a new one per call.
_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    default=_json_default,
)


def json_bytes(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON: the one JSON encoder of mpkernel.

    Non-ASCII text is written as UTF-8 (lone surrogates from ``surrogateescape`` decoding
    are written back as their original bytes). ``datetime``/``date`` become ISO 8601
    strings, ``bytes`` base64 ASCII, sets lists. Raises ``ValueError`` for NaN,
    infinities or unencodable surrogates, and ``TypeError`` for any other type.
    """
    return _ENCODER.encode(obj).encode("utf-8", "surrogateescape")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_PART_NAMES: Final = ("header", "parent_header", "metadata", "content")


def _parse_object(part: bytes, index: int) -> dict[str, Any]:
    if part == _EMPTY_OBJECT:  # metadata and parent usually are: skip the parser
        return {}
    try:
        obj = _DECODER.decode(part.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadJson(f"{_PART_NAMES[index]}: {exc}") from None
    if type(obj) is not dict:
        raise BadJson(f"{_PART_NAMES[index]} is a JSON {type(obj).__name__}, not an object")
    return obj


def decode(frames: Sequence[bytes], signer: Signer) -> Message[dict[str, Any]]:
    """Turn a received frame list into a ``Message``, or raise a ``WireError``.

    Order: split identities (``MissingDelimiter``), split parts (``TooFewParts``), verify
    the signature (``BadSignature``/``ReplayedSignature``) *before any JSON parsing*, parse
    the four parts (``BadJson``), build the header (``BadHeader``). A parent header of
    ``{}``, or one without a string msg_id and msg_type, becomes ``None``.
    """
    identities, parts = split_identities(frames)
    signature, json_parts, buffers = split_parts(parts)
    signer.verify(signature, json_parts)
    header_raw = _parse_object(json_parts[0], 0)
    parent_raw = _parse_object(json_parts[1], 1)
    metadata = _parse_object(json_parts[2], 2)
    content = _parse_object(json_parts[3], 3)
    header = Header.from_dict(header_raw)
    parent: Header | None = None
    if parent_raw:
        try:
            parent = Header.from_dict(parent_raw)
        except BadHeader:
            # The request's own parent is never routed on; an odd one is not worth a drop.
            parent = None
    return Message(header, parent, metadata, content, buffers, identities)


def _header_json(header: Header) -> bytes:
    """``json_bytes(header.as_dict())``, faster for the usual header without extras."""
    if header.extra:
        return json_bytes(header.as_dict())
    esc = encode_basestring
    text = (
        f'{{"msg_id":{esc(header.msg_id)},"msg_type":{esc(header.msg_type)},'
        f'"session":{esc(header.session)},"username":{esc(header.username)},'
        f'"date":{esc(header.date)},"version":{esc(header.version)}}}'
    )
    return text.encode("utf-8", "surrogateescape")


# The last parent header encoded, by identity: one request parents many IOPub messages.
# Holding the Header keeps it alive, so its id cannot be reused by another object.
_parent_memo: tuple[Header | None, bytes] = (None, _EMPTY_OBJECT)


def _parent_json(parent: Header | None) -> bytes:
    global _parent_memo  # a one-slot memo; see the module docstring
    if parent is None:
        return _EMPTY_OBJECT
    memo = _parent_memo
    if memo[0] is parent:
        return memo[1]
    encoded = _header_json(parent)
    _parent_memo = (parent, encoded)
    return encoded


def encode_raw(
    identities: Sequence[bytes],
    header: Header,
    parent: Header | None,
    metadata_json: bytes,
    content_json: bytes,
    buffers: Sequence[bytes],
    signer: Signer,
) -> list[bytes]:
    """Frames for a message whose metadata and content are already JSON bytes.

    The hot path of every IOPub message and of worker replies, whose content arrives
    pre-encoded. The caller vouches that ``metadata_json`` and ``content_json`` are
    JSON objects in UTF-8 (``json_bytes`` of a dict, or ``b"{}"``).
    """
    try:
        header_json = _header_json(header)
        parent_json = _parent_json(parent)
    except (TypeError, ValueError) as exc:
        raise ProtocolViolation(f"cannot encode header of {header.msg_type}: {exc}") from exc
    json_parts = (header_json, parent_json, metadata_json, content_json)
    return join_frames(identities, signer.sign(json_parts), json_parts, buffers)


def _as_json_object(obj: object, what: str, msg_type: str) -> bytes:
    if not obj:
        if isinstance(obj, Mapping):
            return _EMPTY_OBJECT
    elif isinstance(obj, dict):
        return json_bytes(obj)
    elif isinstance(obj, Mapping):
        return json_bytes(dict(obj))
    raise ProtocolViolation(f"{msg_type}: {what} must be a mapping, got {type(obj).__name__}")


def encode(msg: Message[Any], signer: Signer) -> list[bytes]:
    """Frames for ``msg``; ``ProtocolViolation`` if its content or metadata is not JSON."""
    msg_type = msg.header.msg_type
    try:
        metadata_json = _as_json_object(msg.metadata, "metadata", msg_type)
        content_json = _as_json_object(msg.content, "content", msg_type)
    except (TypeError, ValueError) as exc:
        raise ProtocolViolation(f"{msg_type}: metadata or content is not JSON: {exc}") from exc
    return encode_raw(
        msg.identities,
        msg.header,
        msg.parent_header,
        metadata_json,
        content_json,
        msg.buffers,
        signer,
    )
