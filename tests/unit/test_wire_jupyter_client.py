"""Cross-checks against the reference implementation, jupyter_client's Session, both ways.

Session signs what we verify, and verifies what we sign, for every scheme it supports and
with signing disabled; headers, parents, metadata, content and binary buffers survive.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from mpkernel.wire import DELIMITER, Header, HeaderFactory, Message, Signer, decode, encode


def byte_strings(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Like st.binary(), but safe under ``python -bb``.

    Hypothesis keys internal caches by the sequence of raw choices it drew. A bytes choice
    hashes like an equal str (and b"" like 0), so a cache lookup can compare bytes with str
    or int, which -bb turns into a BytesWarning error inside hypothesis. Drawing integers
    and packing them avoids bytes choices altogether.
    """
    return st.lists(st.integers(0, 255), min_size=min_size, max_size=max_size).map(bytes)


SCHEMES = sorted(f"hmac-{a}" for a in hashlib.algorithms_guaranteed if not a.startswith("shake"))
# Every scheme with a typical key and with one longer than any hash block size (hashed
# first, RFC 2104), plus signing disabled.
CASES = [
    *((scheme, key) for scheme in SCHEMES for key in (b"5e3c1d2f-key", b"k" * 200)),
    ("hmac-sha256", b""),
]
CASE_IDS = [f"{scheme}-{len(key)}B-key" for scheme, key in CASES]

text = st.text(max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    # jupyter_client's unpacker turns ISO-date-looking strings in headers into datetimes
    | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(text, json_values, max_size=4)
identities = st.lists(
    byte_strings(min_size=1, max_size=8).filter(lambda b: b != DELIMITER), max_size=2
)
buffers = st.lists(byte_strings(max_size=64), max_size=3)


def _session(key: bytes, scheme: str) -> Session:
    return Session(key=key, signature_scheme=scheme, session="client-session", username="alice")


def _jsonable(obj: Any) -> Any:
    """What Session.pack writes for obj, read back (its datetimes become ISO strings)."""
    return json.loads(json.dumps(obj, default=json_default))


@pytest.mark.parametrize(("scheme", "key"), CASES, ids=CASE_IDS)
@settings(max_examples=15, deadline=None)
@given(
    content=json_objects,
    metadata=json_objects,
    ident=identities,
    bufs=buffers,
    with_parent=st.booleans(),
    subshell=st.none() | text,
)
def test_frames_serialized_by_session_decode_with_our_decode(
    scheme: str,
    key: bytes,
    content: dict[str, Any],
    metadata: dict[str, Any],
    ident: list[bytes],
    bufs: list[bytes],
    with_parent: bool,
    subshell: str | None,
) -> None:
    session = _session(key, scheme)
    parent = session.msg("execute_request", {"code": "1"}) if with_parent else None
    msg = session.msg("comm_msg", content, parent=parent, metadata=metadata)
    if subshell is not None:
        msg["header"]["subshell_id"] = subshell
    frames = session.serialize(msg, ident=ident)
    frames.extend(bufs)  # what Session.send does with buffers

    decoded = decode(frames, Signer(key, scheme))

    assert decoded.identities == tuple(ident)
    assert decoded.header.as_dict() == _jsonable(msg["header"])
    if parent is None:
        assert decoded.parent_header is None
    else:
        assert decoded.parent_header is not None
        assert decoded.parent_header.as_dict() == _jsonable(parent["header"])
    assert decoded.metadata == _jsonable(msg["metadata"])
    assert decoded.content == content
    assert decoded.buffers == tuple(bufs)


@pytest.mark.parametrize(("scheme", "key"), CASES, ids=CASE_IDS)
@settings(max_examples=15, deadline=None)
@given(
    content=json_objects,
    metadata=json_objects,
    ident=identities,
    bufs=buffers,
    with_parent=st.booleans(),
    extra=st.dictionaries(st.sampled_from(["subshell_id", "x-ext"]), text, max_size=2),
)
def test_frames_from_our_encode_are_accepted_by_session_deserialize(
    scheme: str,
    key: bytes,
    content: dict[str, Any],
    metadata: dict[str, Any],
    ident: list[bytes],
    bufs: list[bytes],
    with_parent: bool,
    extra: dict[str, str],
) -> None:
    factory = HeaderFactory("kernel-session", "kernel")
    parent = factory.make("execute_request") if with_parent else None
    base = factory.make("display_data")
    header = Header(base.msg_id, base.msg_type, base.session, base.username, base.date, extra=extra)
    frames = encode(
        Message(header, parent, metadata, content, tuple(bufs), tuple(ident)),
        Signer(key, scheme),
    )

    session = _session(key, scheme)
    idents, msg_list = session.feed_identities(frames)
    msg = session.deserialize(msg_list)

    assert idents == ident
    assert msg["msg_id"] == header.msg_id
    assert msg["msg_type"] == "display_data"
    assert _jsonable(msg["header"]) == _jsonable(header.as_dict())
    if parent is None:
        assert msg["parent_header"] == {}
    else:
        assert msg["parent_header"]["msg_id"] == parent.msg_id
        assert _jsonable(msg["parent_header"]) == _jsonable(parent.as_dict())
    assert msg["metadata"] == metadata
    assert msg["content"] == content
    assert [bytes(b) for b in msg["buffers"]] == bufs


def _z(date: str) -> str:
    return date.replace("+00:00", "Z")


def test_our_header_dates_parse_as_the_same_instant_in_jupyter_client() -> None:
    header = HeaderFactory("s", "u").make("status")
    frames = encode(Message(header, None, {}, {"execution_state": "idle"}), Signer(b"k"))
    session = _session(b"k", "hmac-sha256")
    msg = session.deserialize(session.feed_identities(frames)[1])
    assert _z(msg["header"]["date"].isoformat()) == header.date


def test_session_rejects_our_frames_replayed() -> None:
    frames = encode(Message(Header("i", "t", version="5.5"), None, {}, {}), Signer(b"k"))
    session = _session(b"k", "hmac-sha256")
    session.deserialize(session.feed_identities(frames)[1])
    with pytest.raises(ValueError, match="Duplicate Signature"):
        session.deserialize(session.feed_identities(frames)[1])


def test_session_rejects_our_frames_signed_with_another_key() -> None:
    frames = encode(Message(Header("i", "t", version="5.5"), None, {}, {}), Signer(b"k"))
    session = _session(b"other", "hmac-sha256")
    with pytest.raises(ValueError, match="Invalid Signature"):
        session.deserialize(session.feed_identities(frames)[1])
