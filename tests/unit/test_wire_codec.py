"""encode/decode round trips, encode's own checks, json_bytes, and malformed JSON parts."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpkernel.wire import (
    DELIMITER,
    BadHeader,
    BadJson,
    Header,
    HeaderFactory,
    Message,
    ProtocolViolation,
    Signer,
    decode,
    encode,
    encode_raw,
    join_frames,
    json_bytes,
)


def byte_strings(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Like st.binary(), but safe under ``python -bb``.

    Hypothesis keys internal caches by the sequence of raw choices it drew. A bytes choice
    hashes like an equal str (and b"" like 0), so a cache lookup can compare bytes with str
    or int, which -bb turns into a BytesWarning error inside hypothesis. Drawing integers
    and packing them avoids bytes choices altogether.
    """
    return st.lists(st.integers(0, 255), min_size=min_size, max_size=max_size).map(bytes)


SCHEMES = sorted(f"hmac-{a}" for a in hashlib.algorithms_guaranteed if not a.startswith("shake"))
STANDARD = ("msg_id", "msg_type", "session", "username", "date", "version")

# Text includes non-ASCII and astral characters; hypothesis leaves out lone surrogates,
# which are not representable in UTF-8 JSON.
text = st.text(max_size=16)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(text, json_values, max_size=5)
headers = st.builds(
    Header,
    msg_id=text,
    msg_type=text,
    session=text,
    username=text,
    date=text,
    version=text,
    extra=st.dictionaries(text.filter(lambda k: k not in STANDARD), json_values, max_size=3),
)
identities = st.lists(byte_strings(max_size=16).filter(lambda b: b != DELIMITER), max_size=3)
buffers = st.lists(byte_strings(max_size=64), max_size=3)
messages = st.builds(
    Message,
    header=headers,
    parent_header=st.none() | headers,
    metadata=json_objects,
    content=json_objects,
    buffers=buffers.map(tuple),
    identities=identities.map(tuple),
)


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=25, deadline=None)
@given(msg=messages)
def test_decode_inverts_encode_for_every_scheme(scheme: str, msg: Message[Any]) -> None:
    frames = encode(msg, Signer(b"a-key", scheme))
    assert decode(frames, Signer(b"a-key", scheme)) == msg


@settings(deadline=None)
@given(msg=messages)
def test_decode_inverts_encode_with_signing_disabled(msg: Message[Any]) -> None:
    frames = encode(msg, Signer(b""))
    assert frames[len(msg.identities) + 1] == b""
    assert decode(frames, Signer(b"")) == msg


@settings(max_examples=50, deadline=None)
@given(msg=messages)
def test_encode_lays_out_identities_delimiter_signature_four_parts_buffers(
    msg: Message[Any],
) -> None:
    signer = Signer(b"k")
    frames = encode(msg, signer)
    n = len(msg.identities)
    assert frames[:n] == list(msg.identities)
    assert frames[n] == DELIMITER
    assert frames[n + 1] == Signer(b"k").sign(frames[n + 2 : n + 6])
    assert json.loads(frames[n + 2]) == msg.header.as_dict()
    assert json.loads(frames[n + 3]) == (
        {} if msg.parent_header is None else msg.parent_header.as_dict()
    )
    assert frames[n + 6 :] == list(msg.buffers)


@given(header=headers)
def test_header_json_fast_path_matches_json_bytes_of_as_dict(header: Header) -> None:
    frames = encode_raw([], header, header, b"{}", b"{}", [], Signer(b""))
    assert frames[2] == json_bytes(header.as_dict())
    assert frames[3] == frames[2]


def test_parent_memo_does_not_confuse_equal_looking_parents() -> None:
    factory = HeaderFactory("s", "u")
    first, second = factory.make("execute_request"), factory.make("execute_request")
    signer = Signer(b"")
    for parent in (first, first, second, first, None, second):
        frames = encode_raw([], factory.make("stream"), parent, b"{}", b"{}", [], signer)
        expected = {} if parent is None else parent.as_dict()
        assert json.loads(frames[3]) == expected


def test_missing_parent_is_encoded_as_empty_object_and_decoded_as_none() -> None:
    msg = Message(Header("i", "status"), None, {}, {"execution_state": "idle"})
    frames = encode(msg, Signer(b"k"))
    assert frames[3] == b"{}"
    assert decode(frames, Signer(b"k")).parent_header is None


def test_message_properties_read_the_header() -> None:
    msg: Message[dict[str, str]] = Message(Header("id-1", "stream"), None, {}, {})
    assert (msg.msg_id, msg.msg_type) == ("id-1", "stream")


def test_encode_raw_sends_pre_encoded_content_verbatim() -> None:
    content = b'{"name":"stdout","text":"caf\xc3\xa9"}'
    frames = encode_raw([b"topic"], Header("i", "stream"), None, b"{}", content, [], Signer(b"k"))
    assert frames[6] == content
    assert decode(frames, Signer(b"k")).content == {"name": "stdout", "text": "café"}


@pytest.mark.parametrize(
    ("content", "metadata"),
    [
        ([1, 2], {}),
        ("text", {}),
        ({}, [("a", 1)]),
        ({"x": float("nan")}, {}),
        ({"x": object()}, {}),
        ({}, {"when": float("inf")}),
    ],
)
def test_encode_refuses_non_json_content_as_our_bug(content: Any, metadata: Any) -> None:
    msg = Message(Header("i", "t"), None, metadata, content)
    with pytest.raises(ProtocolViolation):
        encode(msg, Signer(b"k"))


def test_encode_refuses_a_header_with_non_str_fields() -> None:
    header = Header("i", 42)  # type: ignore[arg-type]
    with pytest.raises(ProtocolViolation):
        encode(Message(header, None, {}, {}), Signer(b"k"))


def test_encode_accepts_any_mapping_as_metadata() -> None:
    msg = Message(Header("i", "t"), None, MappingProxyType({"a": 1}), {"b": 2})
    assert decode(encode(msg, Signer(b"")), Signer(b"")).metadata == {"a": 1}


# -- json_bytes -----------------------------------------------------------------------------


def test_json_bytes_is_compact_utf8_without_ascii_escapes() -> None:
    assert json_bytes({"a": [1, 2], "b": "é☃🐍"}) == '{"a":[1,2],"b":"é☃🐍"}'.encode()


def test_json_bytes_writes_surrogate_escaped_bytes_back_as_bytes() -> None:
    assert json_bytes("\udcff") == b'"\xff"'


def test_json_bytes_handles_dates_bytes_sets_and_tuples() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    obj = {"dt": when, "d": date(2024, 1, 2), "b": b"\x00\xff", "s": {1}, "t": (1, 2)}
    assert json.loads(json_bytes(obj)) == {
        "dt": "2024-01-02T03:04:05.000006+00:00",
        "d": "2024-01-02",
        "b": "AP8=",
        "s": [1],
        "t": [1, 2],
    }


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_json_bytes_refuses_non_finite_floats(value: float) -> None:
    with pytest.raises(ValueError, match="JSON"):
        json_bytes({"x": value})


def test_json_bytes_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="complex"):
        json_bytes({"x": 1j})


# -- malformed JSON parts, correctly signed ---------------------------------------------------

GOOD = (b'{"msg_id":"i","msg_type":"t"}', b"{}", b"{}", b"{}")


def _signed_frames(json_parts: tuple[bytes, bytes, bytes, bytes]) -> list[bytes]:
    return join_frames([b"id"], Signer(b"k").sign(json_parts), json_parts, [])


@pytest.mark.parametrize("index", range(4), ids=["header", "parent", "metadata", "content"])
@pytest.mark.parametrize(
    "bad",
    [
        b'{"a":"\xff"}',  # invalid UTF-8
        b'{"a":"\xed\xa0\x80"}',  # UTF-8-encoded surrogate
        b"\xfe\xff\x00{\x00}",  # UTF-16 with BOM: json.loads(bytes) would accept it
        b'{"a":',  # truncated
        b"",  # empty
        b"[1,2]",  # array
        b'"text"',  # string
        b"42",  # number
        b"null",
        b'{"a":NaN}',  # not JSON, though Python's json would accept it
        b'{"a":Infinity}',
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the parser's recursion limit
    ],
    ids=lambda b: repr(b[:12]),
)
def test_signed_part_that_is_not_a_utf8_json_object_is_bad_json(index: int, bad: bytes) -> None:
    parts = list(GOOD)
    parts[index] = bad
    with pytest.raises(BadJson):
        decode(_signed_frames((parts[0], parts[1], parts[2], parts[3])), Signer(b"k"))


@pytest.mark.parametrize(
    "header",
    [b"{}", b'{"msg_id":"i"}', b'{"msg_type":"t"}', b'{"msg_id":1,"msg_type":"t"}'],
)
def test_header_without_str_msg_id_or_msg_type_is_bad_header(header: bytes) -> None:
    with pytest.raises(BadHeader):
        decode(_signed_frames((header, b"{}", b"{}", b"{}")), Signer(b"k"))


@pytest.mark.parametrize("parent", [b"{}", b'{"date":"x"}', b'{"msg_id":1,"msg_type":"t"}'])
def test_parent_without_str_msg_id_and_msg_type_decodes_as_none(parent: bytes) -> None:
    msg = decode(_signed_frames((GOOD[0], parent, b"{}", b"{}")), Signer(b"k"))
    assert msg.parent_header is None


def test_decoded_header_keeps_unknown_keys_such_as_subshell_id() -> None:
    header = b'{"msg_id":"i","msg_type":"t","subshell_id":"s1","x":{"y":[1]}}'
    msg = decode(_signed_frames((header, b"{}", b"{}", b"{}")), Signer(b"k"))
    assert msg.header.extra == {"subshell_id": "s1", "x": {"y": [1]}}
