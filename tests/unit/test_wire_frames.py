"""Frame layout: splitting at the delimiter, part counts, and joining back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpkernel.wire import (
    DELIMITER,
    MissingDelimiter,
    ProtocolViolation,
    TooFewParts,
    join_frames,
    split_identities,
    split_parts,
)


def byte_strings(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Like st.binary(), but safe under ``python -bb``.

    Hypothesis keys internal caches by the sequence of raw choices it drew. A bytes choice
    hashes like an equal str (and b"" like 0), so a cache lookup can compare bytes with str
    or int, which -bb turns into a BytesWarning error inside hypothesis. Drawing integers
    and packing them avoids bytes choices altogether.
    """
    return st.lists(st.integers(0, 255), min_size=min_size, max_size=max_size).map(bytes)


not_delimiter = byte_strings(max_size=12).filter(lambda b: b != DELIMITER)
identities_st = st.lists(not_delimiter, max_size=4)
json_parts_st = st.tuples(byte_strings(), byte_strings(), byte_strings(), byte_strings())
buffers_st = st.lists(byte_strings(max_size=32), max_size=4)


def test_delimiter_is_the_spec_constant() -> None:
    assert DELIMITER == b"<IDS|MSG>"


@given(identities_st, byte_strings(max_size=64), json_parts_st, buffers_st)
def test_split_identities_then_split_parts_inverts_join_frames(
    identities: list[bytes], signature: bytes, json_parts: tuple[bytes, ...], buffers: list[bytes]
) -> None:
    frames = join_frames(identities, signature, json_parts, buffers)
    got_identities, parts = split_identities(frames)
    assert got_identities == tuple(identities)
    assert split_parts(parts) == (signature, json_parts, tuple(buffers))


@given(st.lists(not_delimiter, max_size=8))
def test_frames_without_delimiter_raise_missing_delimiter(frames: list[bytes]) -> None:
    with pytest.raises(MissingDelimiter):
        split_identities(frames)


@given(st.lists(byte_strings(max_size=8), max_size=4))
def test_fewer_than_five_parts_after_the_delimiter_raise_too_few_parts(parts: list[bytes]) -> None:
    with pytest.raises(TooFewParts):
        split_parts(parts)


def test_first_delimiter_ends_the_identities() -> None:
    # Like jupyter_client's feed_identities: a later delimiter is message data.
    identities, parts = split_identities([b"a", DELIMITER, b"sig", DELIMITER, b"x"])
    assert identities == (b"a",)
    assert list(parts) == [b"sig", DELIMITER, b"x"]


def test_no_identities_is_allowed() -> None:
    identities, parts = split_identities([DELIMITER, b"s", b"h", b"p", b"m", b"c"])
    assert identities == ()
    assert split_parts(parts) == (b"s", (b"h", b"p", b"m", b"c"), ())


@pytest.mark.parametrize("count", [0, 3, 5])
def test_join_frames_refuses_anything_but_four_json_parts(count: int) -> None:
    with pytest.raises(ProtocolViolation):
        join_frames([], b"", [b"{}"] * count, [])
