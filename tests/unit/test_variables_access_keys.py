"""Access keys: Positron's encoding for names and positions, our reversible encoding for
keys JSON cannot hold, and plain names for anything that is not an encoded key."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st
from mpkernel_workers.variables.access_keys import (
    OpaqueKey,
    Position,
    decode_key,
    encode_key,
    matches,
)


def test_names_and_positions_are_encoded_as_positron_does() -> None:
    # notes 2.3: the variable `df`, a column position
    assert encode_key("df") == '{"type":"str","data":"df"}'
    assert encode_key(3) == '{"type":"int","data":3}'
    assert encode_key(Position(3, "price")) == '{"type":"int","data":3}'
    assert json.loads(encode_key(True)) == {"type": "bool", "data": True}


def test_a_string_that_is_not_an_encoded_key_is_a_plain_name() -> None:
    for text in ("df", "", "[1, 2]", '{"type": "str"}', '{"type":"int","data":"x"}', "null"):
        assert decode_key(text) == text


_atoms = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary()
    | st.complex_numbers(allow_nan=False)
)
_keys = st.recursive(
    _atoms,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(st.integers() | st.text(), max_size=4)
    ),
    max_leaves=10,
)


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@given(_keys)
def test_every_json_unfriendly_key_round_trips(key: object) -> None:
    encoded = encode_key(key)
    json.loads(encoded)  # always valid JSON: the frontend stores it as a string
    assert _same(decode_key(encoded), key), (key, encoded)


@given(st.text())
def test_decoding_never_raises(text: str) -> None:
    decode_key(text)


def test_keys_of_other_types_come_back_as_opaque_keys_that_find_the_original() -> None:
    class Colour:
        def __init__(self, name: str) -> None:
            self.name = name

        def __repr__(self) -> str:
            return f"Colour({self.name})"

    red = Colour("red")
    decoded = decode_key(encode_key(red))
    assert isinstance(decoded, OpaqueKey)
    assert matches(red, decoded)
    assert not matches(Colour("blue"), decoded)
    assert not matches("Colour(red)", decoded)
