"""decode against hostile frames: truncation, tampering, replays, and huge forged frames."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mpkernel.wire import (
    DELIMITER,
    BadSignature,
    Header,
    Message,
    MissingDelimiter,
    ReplayedSignature,
    Signer,
    TooFewParts,
    WireError,
    codec,
    decode,
    encode,
)


def byte_strings(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Like st.binary(), but safe under ``python -bb``.

    Hypothesis keys internal caches by the sequence of raw choices it drew. A bytes choice
    hashes like an equal str (and b"" like 0), so a cache lookup can compare bytes with str
    or int, which -bb turns into a BytesWarning error inside hypothesis. Drawing integers
    and packing them avoids bytes choices altogether.
    """
    return st.lists(st.integers(0, 255), min_size=min_size, max_size=max_size).map(bytes)


KEY = b"0123456789abcdef"
text = st.text(max_size=12)
json_objects = st.dictionaries(
    text, st.none() | st.booleans() | st.integers() | text | st.lists(text, max_size=3), max_size=4
)
messages = st.builds(
    Message,
    header=st.builds(Header, msg_id=text, msg_type=text, session=text, date=text),
    parent_header=st.none() | st.builds(Header, msg_id=text, msg_type=text),
    metadata=json_objects,
    content=json_objects,
    buffers=st.lists(byte_strings(max_size=32), max_size=3).map(tuple),
    identities=st.lists(byte_strings(max_size=8).filter(lambda b: b != DELIMITER), max_size=3).map(
        tuple
    ),
)


def _frames(msg: Message[Any]) -> tuple[list[bytes], int]:
    """Signed frames for msg, and the index of the signature frame."""
    return encode(msg, Signer(KEY)), len(msg.identities) + 1


# -- truncation ---------------------------------------------------------------------------------


@given(msg=messages, data=st.data())
def test_any_truncation_before_the_content_part_is_missing_delimiter_or_too_few_parts(
    msg: Message[Any], data: st.DataObject
) -> None:
    frames, sig = _frames(msg)
    keep = data.draw(st.integers(0, sig + 4), label="frames kept")
    expected = MissingDelimiter if keep < sig else TooFewParts
    with pytest.raises(expected):
        decode(frames[:keep], Signer(KEY))


@given(msg=messages)
def test_frames_without_the_delimiter_are_missing_delimiter(msg: Message[Any]) -> None:
    frames, sig = _frames(msg)
    without = frames[: sig - 1] + frames[sig:]
    assume(DELIMITER not in without)  # a buffer may happen to equal it
    with pytest.raises(MissingDelimiter):
        decode(without, Signer(KEY))


# -- tampering ----------------------------------------------------------------------------------


@given(msg=messages, data=st.data())
def test_flipping_any_byte_of_the_signature_or_a_signed_part_is_bad_signature(
    msg: Message[Any], data: st.DataObject
) -> None:
    frames, sig = _frames(msg)
    index = data.draw(st.integers(sig, sig + 4), label="frame")  # signature or a JSON part
    position = data.draw(st.integers(0, len(frames[index]) - 1), label="byte")
    flip = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(frames[index])
    tampered[position] ^= flip
    frames[index] = bytes(tampered)
    with pytest.raises(BadSignature):
        decode(frames, Signer(KEY))


@given(msg=messages, data=st.data())
def test_truncating_any_signed_part_or_the_signature_is_bad_signature(
    msg: Message[Any], data: st.DataObject
) -> None:
    frames, sig = _frames(msg)
    index = data.draw(st.integers(sig, sig + 4), label="frame")
    frames[index] = frames[index][: data.draw(st.integers(0, len(frames[index]) - 1))]
    with pytest.raises(BadSignature):
        decode(frames, Signer(KEY))


@given(msg=messages, data=st.data())
def test_dropping_a_signed_part_is_bad_signature_when_buffers_fill_the_gap(
    msg: Message[Any], data: st.DataObject
) -> None:
    assume(msg.buffers)
    frames, sig = _frames(msg)
    signed = frames[sig + 1 : sig + 5]
    del frames[data.draw(st.integers(sig + 1, sig + 4), label="dropped part")]
    # Dropping one of two equal neighbours (say metadata and content both b"{}") when a
    # buffer repeats the last part rebuilds the same signed bytes: that is not tampering.
    assume(frames[sig + 1 : sig + 5] != signed)
    with pytest.raises(BadSignature):
        decode(frames, Signer(KEY))


@given(msg=messages, data=st.data())
def test_dropping_a_signed_part_without_buffers_is_too_few_parts(
    msg: Message[Any], data: st.DataObject
) -> None:
    frames, sig = _frames(Message(msg.header, msg.parent_header, msg.metadata, msg.content))
    del frames[data.draw(st.integers(sig + 1, sig + 4), label="dropped part")]
    with pytest.raises(TooFewParts):
        decode(frames, Signer(KEY))


@given(msg=messages, replacement=st.lists(byte_strings(max_size=32), max_size=3))
def test_tampered_buffers_are_accepted_because_the_spec_does_not_sign_them(
    msg: Message[Any], replacement: list[bytes]
) -> None:
    frames, sig = _frames(msg)
    frames[sig + 5 :] = replacement
    decoded = decode(frames, Signer(KEY))
    assert decoded.buffers == tuple(replacement)
    assert decoded.content == msg.content


@given(msg=messages)
def test_tampered_identities_are_accepted_because_routing_is_not_signed(
    msg: Message[Any],
) -> None:
    frames, sig = _frames(msg)
    decoded = decode([b"someone-else", *frames[sig - 1 :]], Signer(KEY))
    assert decoded.identities == (b"someone-else",)


@given(msg=messages)
def test_message_signed_with_another_key_is_bad_signature(msg: Message[Any]) -> None:
    with pytest.raises(BadSignature):
        decode(encode(msg, Signer(b"another key")), Signer(KEY))


@given(msg=messages)
def test_unsigned_message_is_bad_signature_when_signing_is_enabled(msg: Message[Any]) -> None:
    with pytest.raises(BadSignature):
        decode(encode(msg, Signer(b"")), Signer(KEY))


# -- replay -------------------------------------------------------------------------------------


@given(msg=messages)
def test_the_same_frames_decoded_twice_are_a_replay_the_second_time(msg: Message[Any]) -> None:
    frames, _ = _frames(msg)
    signer = Signer(KEY)
    decode(frames, signer)
    with pytest.raises(ReplayedSignature):
        decode(frames, signer)


def test_replayed_frames_are_accepted_again_once_evicted_from_the_window() -> None:
    signer = Signer(KEY, replay_window=2)
    frames = [
        encode(Message(Header(f"id-{i}", "execute_request"), None, {}, {}), Signer(KEY))
        for i in range(3)
    ]
    for f in frames:
        decode(f, signer)
    decode(frames[0], signer)  # evicted by frames[2]: accepted
    with pytest.raises(ReplayedSignature):
        decode(frames[2], signer)


def test_every_wire_failure_is_a_wire_error() -> None:
    for error in (MissingDelimiter, TooFewParts, BadSignature, ReplayedSignature):
        assert issubclass(error, WireError)


# -- huge forged frames ------------------------------------------------------------------------

FIFTY_MB = 50 * 1024 * 1024


def test_50mb_forged_content_is_bad_signature_without_being_parsed() -> None:
    header = b'{"msg_id":"i","msg_type":"execute_request"}'
    invalid_json = b"[" * FIFTY_MB  # BadJson (or worse) if it ever reached the parser
    frames = [b"peer", DELIMITER, b"0" * 64, header, b"{}", b"{}", invalid_json]
    with pytest.raises(BadSignature):
        decode(frames, Signer(KEY))


def test_frames_with_bad_signature_never_reach_the_json_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parser_must_not_run(*_: object) -> dict[str, Any]:
        raise AssertionError("JSON parsed before the signature was verified")

    monkeypatch.setattr(codec, "_parse_object", parser_must_not_run)
    frames = encode(Message(Header("i", "t"), None, {}, {"code": "x"}), Signer(KEY))
    frames[-1] = b"{" * 1024
    with pytest.raises(BadSignature):
        decode(frames, Signer(KEY))
