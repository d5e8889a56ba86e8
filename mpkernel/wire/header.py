"""The Jupyter message header as a typed value, and the factory that stamps new ones.

Single job: convert headers between the wire's JSON object and ``Header``, and mint
headers for outgoing messages.

Invariants:
- A ``Header`` always has a ``str`` msg_id and msg_type; ``from_dict`` refuses anything
  else with ``BadHeader``.
- Keys beyond the six standard ones (``subshell_id``, future additions) are kept verbatim
  in ``extra`` and written back by ``as_dict``, so a parent header echoed in a reply is
  the request's header, not a lossy copy of it.
- ``HeaderFactory`` msg_ids are ``"<session>_<n>"`` with ``n`` counting up from 1: unique
  per factory, and unique per kernel run because the kernel session id is.

No thread owns this module: ``Header`` is an immutable value; a ``HeaderFactory`` may be
shared between threads (its counter is an ``itertools.count``, whose ``next`` is atomic
under the GIL).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mpkernel.wire.errors import BadHeader, ProtocolViolation

__all__ = ["PROTOCOL_VERSION", "Header", "HeaderFactory", "utc_now_iso"]

PROTOCOL_VERSION = "5.5"

_STANDARD_KEYS = frozenset(("msg_id", "msg_type", "session", "username", "date", "version"))


@dataclass(frozen=True, slots=True)
class Header:
    """One message header. Don't subclass; build with ``HeaderFactory`` or ``from_dict``."""

    msg_id: str
    msg_type: str
    session: str = ""
    username: str = ""
    date: str = ""
    version: str = PROTOCOL_VERSION
    # Any other keys (e.g. subshell_id), kept verbatim. Never mutate it after construction.
    extra: Mapping[str, Any] = field(default_factory=dict)

    # Values, not keys: a header holds a dict, so hashing it would fail half the time.
    __hash__ = None  # type: ignore[assignment]

    # No __post_init__: it would cost a third of the construction time of every header.
    # The one thing it could check, extra repeating a standard key, is checked where extra
    # is used (as_dict), which is off the common path.

    def as_dict(self) -> dict[str, Any]:
        """The header as the wire's JSON object: the six standard keys, then ``extra``.

        ``ProtocolViolation`` if ``extra`` repeats a standard key (only our own code can
        build such a header; ``from_dict`` never does).
        """
        out: dict[str, Any] = {
            "msg_id": self.msg_id,
            "msg_type": self.msg_type,
            "session": self.session,
            "username": self.username,
            "date": self.date,
            "version": self.version,
        }
        extra = self.extra
        if extra:
            if not _STANDARD_KEYS.isdisjoint(extra):
                clash = sorted(_STANDARD_KEYS.intersection(extra))
                raise ProtocolViolation(f"Header.extra repeats standard keys {clash}")
            out.update(extra)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Header:
        """Build a header from a decoded JSON object.

        ``BadHeader`` unless ``msg_id`` and ``msg_type`` are strings. A missing
        ``session``/``username``/``date``/``version`` becomes ``""``; a non-string one
        becomes its ``str()`` (``None`` becomes ``""``). Everything else goes to ``extra``.
        """
        msg_id = raw.get("msg_id")
        msg_type = raw.get("msg_type")
        if type(msg_id) is not str or type(msg_type) is not str:
            raise BadHeader(
                f"header needs str msg_id and msg_type, got {type(msg_id).__name__} "
                f"and {type(msg_type).__name__}"
            )
        extra = (
            {}
            if raw.keys() <= _STANDARD_KEYS
            else {k: v for k, v in raw.items() if k not in _STANDARD_KEYS}
        )
        return cls(
            msg_id,
            msg_type,
            _as_str(raw.get("session")),
            _as_str(raw.get("username")),
            _as_str(raw.get("date")),
            _as_str(raw.get("version")),
            extra,
        )


def _as_str(value: object) -> str:
    if type(value) is str:
        return value
    return "" if value is None else str(value)


# (unix second, its "YYYY-MM-DDTHH:MM:SS" text): formatting the date costs more than the
# rest of a header, and every message in the same second shares it. One tuple, replaced
# atomically, so concurrent callers at worst recompute it.
_second_memo: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds, e.g. ``2026-01-02T03:04:05.000006Z``."""
    global _second_memo  # a one-slot memo; see above
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    memo = _second_memo
    if memo[0] != second:
        memo = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _second_memo = memo
    return f"{memo[1]}.{nanos // 1000:06d}Z"


class HeaderFactory:
    """Mints headers for one kernel session: same session/username/version, fresh msg_id/date."""

    __slots__ = ("_counter", "_prefix", "session", "username", "version")

    session: str
    username: str
    version: str

    def __init__(self, session: str, username: str, version: str = PROTOCOL_VERSION) -> None:
        self.session = session
        self.username = username
        self.version = version
        self._prefix = f"{session}_"
        self._counter = itertools.count(1)

    def __repr__(self) -> str:
        return f"HeaderFactory(session={self.session!r}, username={self.username!r})"

    def make(self, msg_type: str) -> Header:
        """A new header for an outgoing ``msg_type`` message, dated now."""
        return Header(
            f"{self._prefix}{next(self._counter)}",
            msg_type,
            self.session,
            self.username,
            utc_now_iso(),
            self.version,
        )
