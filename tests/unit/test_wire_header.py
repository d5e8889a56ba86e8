"""Header <-> dict, BadHeader, the header factory and the timestamp format."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpkernel.wire import BadHeader, Header, HeaderFactory, ProtocolViolation, utc_now_iso
from mpkernel.wire import header as header_module

STANDARD = ("msg_id", "msg_type", "session", "username", "date", "version")
json_scalar = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
extra_st = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in STANDARD), json_scalar, max_size=3
)


@given(
    st.fixed_dictionaries({k: st.text(max_size=12) for k in STANDARD}),
    extra_st,
)
def test_as_dict_equals_the_dict_it_was_parsed_from(
    standard: dict[str, str], extra: dict[str, Any]
) -> None:
    raw = {**standard, **extra}
    header = Header.from_dict(raw)
    assert header.as_dict() == raw
    assert dict(header.extra) == extra


def test_extra_keys_keep_their_order() -> None:
    raw = {"z": 1, "msg_id": "i", "a": 2, "msg_type": "t", "subshell_id": None}
    assert list(Header.from_dict(raw).extra) == ["z", "a", "subshell_id"]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"msg_id": "i"},
        {"msg_type": "t"},
        {"msg_id": 1, "msg_type": "t"},
        {"msg_id": "i", "msg_type": None},
        {"msg_id": ["i"], "msg_type": "t"},
    ],
)
def test_header_without_str_msg_id_and_msg_type_is_bad(raw: dict[str, Any]) -> None:
    with pytest.raises(BadHeader):
        Header.from_dict(raw)


def test_missing_optional_keys_become_empty_strings() -> None:
    header = Header.from_dict({"msg_id": "i", "msg_type": "t"})
    assert (header.session, header.username, header.date, header.version) == ("", "", "", "")
    assert header.extra == {}


def test_non_str_optional_values_become_str_and_none_becomes_empty() -> None:
    header = Header.from_dict(
        {"msg_id": "i", "msg_type": "t", "date": 3, "version": 5.3, "session": None}
    )
    assert (header.date, header.version, header.session) == ("3", "5.3", "")


def test_header_defaults_to_protocol_version_5_5() -> None:
    assert Header("i", "t").version == "5.5"


def test_extra_repeating_a_standard_key_is_our_bug() -> None:
    header = Header("i", "t", extra={"msg_id": "other"})
    with pytest.raises(ProtocolViolation):
        header.as_dict()


def test_headers_are_frozen_values_and_not_hashable() -> None:
    header = Header("i", "t")
    with pytest.raises(AttributeError):
        header.msg_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(header)
    assert header == Header("i", "t")


def test_factory_msg_ids_are_session_prefixed_and_unique() -> None:
    factory = HeaderFactory("sess", "me")
    ids = [factory.make("stream").msg_id for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("sess_") for i in ids)


def test_factory_stamps_session_username_version_type_and_date() -> None:
    header = HeaderFactory("sess", "me", version="5.4").make("status")
    assert (header.msg_type, header.session, header.username, header.version) == (
        "status",
        "sess",
        "me",
        "5.4",
    )
    assert header.date
    assert header.extra == {}


def test_factories_with_different_sessions_never_share_msg_ids() -> None:
    a, b = HeaderFactory("a", "u"), HeaderFactory("b", "u")
    assert {a.make("t").msg_id for _ in range(10)}.isdisjoint(b.make("t").msg_id for _ in range(10))


ISO_UTC_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_utc_now_iso_is_iso8601_utc_with_microseconds_and_close_to_now() -> None:
    before = datetime.now(timezone.utc)
    stamp = utc_now_iso()
    after = datetime.now(timezone.utc)
    assert ISO_UTC_MICROS.fullmatch(stamp)
    parsed = datetime.fromisoformat(stamp[:-1] + "+00:00")
    # Truncation to microseconds can put the stamp just under `before`.
    assert before - timedelta(microseconds=1) <= parsed <= after


def test_utc_now_iso_formats_the_clock_exactly_across_second_boundaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(
        [
            1_700_000_000_123_456_789,
            1_700_000_000_999_999_999,  # same second: the memoized prefix
            1_700_000_001_000_000_000,  # next second: a new prefix
            1_700_000_000_000_001_000,  # the clock stepped back: still right
        ]
    )
    fake_time = SimpleNamespace(
        time_ns=lambda: next(clock), strftime=time.strftime, gmtime=time.gmtime
    )
    monkeypatch.setattr(header_module, "time", fake_time)
    assert [utc_now_iso() for _ in range(4)] == [
        "2023-11-14T22:13:20.123456Z",
        "2023-11-14T22:13:20.999999Z",
        "2023-11-14T22:13:21.000000Z",
        "2023-11-14T22:13:20.000001Z",
    ]
