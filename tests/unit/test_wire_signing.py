"""Signer: schemes, disabled signing, verification failures and the replay window."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpkernel.wire import BadSignature, ReplayedSignature, Signer


def byte_strings(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Like st.binary(), but safe under ``python -bb``.

    Hypothesis keys internal caches by the sequence of raw choices it drew. A bytes choice
    hashes like an equal str (and b"" like 0), so a cache lookup can compare bytes with str
    or int, which -bb turns into a BytesWarning error inside hypothesis. Drawing integers
    and packing them avoids bytes choices altogether.
    """
    return st.lists(st.integers(0, 255), min_size=min_size, max_size=max_size).map(bytes)


# Every fixed-size digest hashlib guarantees (shake_* have no fixed size).
SCHEMES = sorted(f"hmac-{a}" for a in hashlib.algorithms_guaranteed if not a.startswith("shake"))
PARTS = (b'{"msg_id":"a","msg_type":"t"}', b"{}", b"{}", b'{"x":1}')


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sign_is_the_hex_hmac_of_the_four_parts_concatenated(scheme: str) -> None:
    key = b"secret"
    expected = hmac.new(key, b"".join(PARTS), scheme.removeprefix("hmac-")).hexdigest()
    assert Signer(key, scheme).sign(PARTS) == expected.encode("ascii")


@given(
    key=byte_strings(min_size=1, max_size=300),
    parts=st.lists(byte_strings(), min_size=4, max_size=4),
)
def test_sign_matches_stdlib_hmac_for_any_key_length(key: bytes, parts: list[bytes]) -> None:
    # Keys longer than the hash block size are hashed first (RFC 2104): cover both sides.
    expected = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode("ascii")
    signer = Signer(key)
    assert signer.sign(parts) == expected
    signer.verify(expected, parts)


def test_default_scheme_is_hmac_sha256() -> None:
    assert Signer(b"k").scheme == "hmac-sha256"
    assert len(Signer(b"k").sign(PARTS)) == 64


@pytest.mark.parametrize("scheme", ["sha256", "hmac-", "hmac-nope", "hmac-shake_128", "HMAC"])
def test_unknown_or_malformed_scheme_is_rejected_at_construction(scheme: str) -> None:
    with pytest.raises(ValueError, match="scheme"):
        Signer(b"k", scheme)


def test_unknown_scheme_is_rejected_even_with_signing_disabled() -> None:
    with pytest.raises(ValueError, match="scheme"):
        Signer(b"", "hmac-nope")


def test_negative_replay_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="replay_window"):
        Signer(b"k", replay_window=-1)


def test_empty_key_disables_signing_and_accepts_anything() -> None:
    signer = Signer(b"")
    assert not signer.enabled
    assert signer.sign(PARTS) == b""
    signer.verify(b"", PARTS)
    signer.verify(b"garbage", PARTS)
    signer.verify(b"", PARTS)  # no replay check either: unsigned messages are all b""


def test_nonempty_key_enables_signing() -> None:
    assert Signer(b"k").enabled


def test_repr_does_not_leak_the_key() -> None:
    assert "topsecret" not in repr(Signer(b"topsecret"))


def test_empty_signature_is_bad_when_signing_is_enabled() -> None:
    with pytest.raises(BadSignature, match="unsigned"):
        Signer(b"k").verify(b"", PARTS)


def test_signature_made_with_another_key_is_bad() -> None:
    with pytest.raises(BadSignature):
        Signer(b"k").verify(Signer(b"other").sign(PARTS), PARTS)


def test_signature_of_other_parts_is_bad() -> None:
    signer = Signer(b"k")
    with pytest.raises(BadSignature):
        signer.verify(signer.sign(PARTS), (*PARTS[:3], b'{"x":2}'))


def test_uppercase_hex_signature_is_bad() -> None:
    # jupyter_client compares bytes exactly; so do we.
    signer = Signer(b"k")
    with pytest.raises(BadSignature):
        signer.verify(signer.sign(PARTS).upper(), PARTS)


def test_the_same_valid_signature_twice_is_a_replay() -> None:
    signer = Signer(b"k")
    signature = signer.sign(PARTS)
    signer.verify(signature, PARTS)
    with pytest.raises(ReplayedSignature):
        signer.verify(signature, PARTS)


def test_a_rejected_signature_is_not_remembered() -> None:
    signer = Signer(b"k")
    signature = signer.sign(PARTS)
    with pytest.raises(BadSignature):
        signer.verify(signature, (*PARTS[:3], b"{}"))  # forged parts under a real signature
    signer.verify(signature, PARTS)  # the genuine message is still accepted once


def _numbered(i: int) -> tuple[bytes, bytes, bytes, bytes]:
    return (b'{"msg_id":"%d","msg_type":"t"}' % i, b"{}", b"{}", b"{}")


def test_replay_window_forgets_the_oldest_signatures_first() -> None:
    window = 3
    signer = Signer(b"k", replay_window=window)
    messages = [_numbered(i) for i in range(window + 2)]
    for parts in messages:
        signer.verify(signer.sign(parts), parts)
    # The two oldest fell out of the window: accepted again (and remembered again).
    for parts in messages[:2]:
        signer.verify(signer.sign(parts), parts)
    # Now the window holds messages 4, 0, 1; 2 and 3 were evicted in turn.
    for parts in (messages[4], messages[0], messages[1]):
        with pytest.raises(ReplayedSignature):
            signer.verify(signer.sign(parts), parts)
    signer.verify(signer.sign(messages[2]), messages[2])


def test_replay_window_zero_disables_the_replay_check() -> None:
    signer = Signer(b"k", replay_window=0)
    signature = signer.sign(PARTS)
    signer.verify(signature, PARTS)
    signer.verify(signature, PARTS)


def test_replay_check_still_verifies_the_signature() -> None:
    signer = Signer(b"k", replay_window=0)
    with pytest.raises(BadSignature):
        signer.verify(b"0" * 64, PARTS)
