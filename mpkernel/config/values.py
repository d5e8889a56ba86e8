"""Value codecs for the configuration file: one raw TOML value in, one typed value out, and back.

Single job: check and convert single values (sizes, durations, counts, enums, handler specs)
and write typed values back as TOML text. It knows nothing about tables, files or lines;
`config.py` adds the key path and line to the reasons raised here.

Invariants: a wrong type raises `TypeError`, a bad value of the right type raises
`ValueError`; both carry a reason fit to show a user after "file:line: key: ". Pure: no I/O.
"""

from __future__ import annotations

import datetime
import keyword
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TypeVar

S = TypeVar("S", bound=str)

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE_HINT = "units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"
# Largest unit first, so that dump writes "8GiB" rather than "8192MiB".
_SIZE_FORMATS: tuple[tuple[str, int], ...] = (
    ("TiB", 2**40),
    ("GiB", 2**30),
    ("MiB", 2**20),
    ("KiB", 2**10),
    ("TB", 10**12),
    ("GB", 10**9),
    ("MB", 10**6),
    ("kB", 10**3),
)
_DURATION_UNITS: dict[str, Fraction] = {
    "": Fraction(1),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_DURATION_HINT = "units ms, s, m, h"
_NUMBER_WITH_UNIT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z]*)\s*", re.ASCII)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|x([0-9A-Fa-f]{2})|(.))", re.DOTALL)
_SIMPLE_UNESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b"}
_SIMPLE_UNESCAPES.update({'"': '"', "\\": "\\"})
_SHORT_ESCAPES: dict[str, str] = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_DESCRIBE_MAX = 40


def describe(value: object) -> str:
    """Name a raw TOML value's type the way TOML does, with the value when it is short."""
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {toml_float(value)}"
    if isinstance(value, str):
        shown = value if len(value) <= _DESCRIBE_MAX else value[:_DESCRIBE_MAX] + "..."
        return f"string {toml_string(shown)}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime.datetime):
        return f"datetime {value.isoformat()}"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"{type(value).__name__} {value.isoformat()}"
    return type(value).__name__


def expect_str(value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {describe(value)}")
    if not value:
        raise ValueError("must not be empty")
    return value


def expect_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean (true or false), got {describe(value)}")
    return value


def expect_count(value: object) -> int:
    """An integer >= 0 (booleans and floats are refused, though Python would take them)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {describe(value)}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def choice(choices: Sequence[S]) -> Callable[[object], S]:
    """A checker for a string that must be one of `choices` (exact, case-sensitive); it
    returns the value as the choices' type (a Literal of them)."""
    listed = ", ".join(toml_string(c) for c in choices)

    def check(value: object) -> S:
        if not isinstance(value, str):
            raise TypeError(f"expected a string (one of {listed}), got {describe(value)}")
        if value not in choices:
            raise ValueError(f"must be one of {listed}; got {toml_string(value)}")
        return choices[choices.index(value)]

    return check


def expect_handler(value: object) -> str:
    """A handler spec "module.path:ClassName" made of Python identifiers."""
    spec = expect_str(value)
    module, sep, cls = spec.partition(":")
    if not (sep and module and all(_is_name(part) for part in module.split(".")) and _is_name(cls)):
        raise ValueError(f'must look like "module.path:ClassName", got {toml_string(spec)}')
    return spec


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def parse_size(value: str | int) -> int:
    """Bytes from an int or a string like "2GiB", "512MiB", "1.5GB", "100kB", "1024".

    KiB/MiB/GiB/TiB are binary, kB/MB/GB/TB decimal, "B" or no unit means bytes; units are
    case-insensitive. Fractions of a unit are rounded down to whole bytes; a bare byte count
    must be whole. 0 is allowed (the config reads it as "no limit").
    """
    if isinstance(value, bool):
        raise TypeError(f"expected a size, got {describe(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value
    if value.strip().startswith("-"):
        raise ValueError(f"must not be negative, got {toml_string(value)}")
    match = _NUMBER_WITH_UNIT.fullmatch(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f'must be a size like "2GiB" ({_SIZE_HINT}), got {toml_string(value)}')
    amount = Fraction(match.group(1)) * _SIZE_UNITS[unit]
    if _SIZE_UNITS[unit] == 1 and amount.denominator != 1:
        raise ValueError(f"must be a whole number of bytes, got {toml_string(value)}")
    return int(amount)


def expect_size(value: object) -> int:
    """`parse_size` for a raw TOML value, refusing the types TOML could give but sizes are not."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(
            f'expected a size (bytes as an integer, or a string like "2GiB"), got {describe(value)}'
        )
    return parse_size(value)


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number or a string like "30s", "500ms", "2m", "1h", "1.5" (seconds).

    Units are case-insensitive. Negative and non-finite values are refused.
    """
    if isinstance(value, bool):
        raise TypeError(f"expected a duration, got {describe(value)}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"must be finite, got {describe(value)}")
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return float(value)
    if value.strip().startswith("-"):
        raise ValueError(f"must not be negative, got {toml_string(value)}")
    match = _NUMBER_WITH_UNIT.fullmatch(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _DURATION_UNITS:
        raise ValueError(
            f'must be a duration like "30s" ({_DURATION_HINT}), got {toml_string(value)}'
        )
    return float(Fraction(match.group(1)) * _DURATION_UNITS[unit])


def expect_duration(value: object) -> float:
    """`parse_duration` for a raw TOML value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(
            "expected a duration (seconds as a number, or a string like "
            f'"30s"), got {describe(value)}'
        )
    return parse_duration(value)


def expect_positive_duration(value: object) -> float:
    seconds = expect_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {describe(value)}")
    return seconds


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def is_bare_key(key: str) -> bool:
    """Whether TOML can write `key` without quotes (the rule for worker names too)."""
    return _BARE_KEY.fullmatch(key) is not None


def toml_key(key: str) -> str:
    """One key as TOML writes it: bare when it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def format_key_path(parts: Sequence[str]) -> str:
    """A dotted key path as a user would write it, e.g. workers.data_explorer.memory_limit."""
    return ".".join(toml_key(part) for part in parts)


def toml_float(value: float) -> str:
    """A finite float in a form TOML (and `tomllib`) reads back to the same float."""
    return repr(value)  # always has "." or an exponent; TOML reads both


def toml_size(value: int) -> str:
    """Bytes as TOML: the largest unit that divides exactly ("8GiB"), else an integer."""
    for unit, factor in _SIZE_FORMATS:
        if value and value % factor == 0:
            return toml_string(f"{value // factor}{unit}")
    return str(value)


def toml_bool(value: bool) -> str:
    return "true" if value else "false"


class KeyLocator:
    """Finds the line where a key path is written, by scanning TOML text that parsed.

    Records `[a.b]` and `[[a.b]]` headers, `x.y = ...` keys (dotted or quoted) under the
    current header, and keys inside inline tables, each with every prefix of its path (the
    first place a table is mentioned). Values are skipped, including multi-line strings and
    arrays, so that nothing inside them is taken for a key.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self._lines: dict[tuple[str, ...], int] = {}
        self._scan()

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The line of `path`, else of its nearest enclosing table written in the text."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None

    def _record(self, path: tuple[str, ...], start: int) -> None:
        line = bisect_left(self._newlines, start) + 1
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], line)

    def _peek(self, n: int = 1) -> str:
        return self._text[self._pos : self._pos + n]

    def _scan(self) -> None:
        table: tuple[str, ...] = ()
        while True:
            self._skip_blank()
            if self._pos >= len(self._text):
                return
            start = self._pos
            if self._peek() == "[":
                self._pos += 2 if self._peek(2) == "[[" else 1
                table = self._read_key()
                self._record(table, start)
            else:
                key = self._read_key_value(table, start)
                if key:
                    self._skip_value(table + key)
            self._skip_line()

    def _read_key_value(self, table: tuple[str, ...], start: int) -> tuple[str, ...]:
        key = self._read_key()
        self._skip_space()
        if not key or self._peek() != "=":
            return ()
        self._pos += 1
        self._skip_space()
        self._record(table + key, start)
        return key

    def _read_key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_space()
            ch = self._peek()
            if ch in ('"', "'"):
                body = self._skip_string()
                parts.append(_decode_basic_key(body) if ch == '"' else body)
            else:
                match = _BARE_KEY.match(self._text, self._pos)
                if match is None:
                    break
                parts.append(match.group())
                self._pos = match.end()
            self._skip_space()
            if self._peek() != ".":
                break
            self._pos += 1
        return tuple(parts)

    def _skip_value(self, path: tuple[str, ...]) -> None:
        ch = self._peek()
        if ch in ('"', "'"):
            self._skip_string()
        elif ch == "[":
            self._skip_array(path)
        elif ch == "{":
            self._scan_inline_table(path)
        else:
            while self._pos < len(self._text) and self._text[self._pos] not in ",]}#\r\n":
                self._pos += 1

    def _skip_array(self, path: tuple[str, ...]) -> None:
        self._scan_items("]", lambda before: self._skip_value(path))

    def _scan_inline_table(self, path: tuple[str, ...]) -> None:
        def entry(before: int) -> None:
            key = self._read_key_value(path, before)
            if key:
                self._skip_value(path + key)

        self._scan_items("}", entry)

    def _scan_items(self, closer: str, entry: Callable[[int], None]) -> None:
        """The items of an array or inline table, separated by commas, up to `closer`."""
        self._pos += 1
        while self._pos < len(self._text):
            self._skip_blank()
            before = self._pos
            if self._peek() == closer:
                self._pos += 1
                return
            if self._peek() == ",":
                self._pos += 1
                continue
            entry(before)
            if self._pos == before:  # not valid TOML after all; do not spin
                self._pos += 1

    def _skip_string(self) -> str:
        """Skips any of TOML's four string forms; returns the text between the quotes."""
        quote = self._peek()
        multi = self._peek(3) == quote * 3
        self._pos += 3 if multi else 1
        start = self._pos
        text = self._text
        while self._pos < len(text):
            ch = text[self._pos]
            if ch == "\\" and quote == '"':
                self._pos += 2
            elif multi and text.startswith(quote * 3, self._pos):
                self._pos += 3
                extra = 0
                while extra < 2 and self._peek() == quote:  # up to two quotes end the body
                    self._pos += 1
                    extra += 1
                return text[start : self._pos - 3]
            elif not multi and ch == quote:
                self._pos += 1
                return text[start : self._pos - 1]
            elif not multi and ch == "\n":
                return text[start : self._pos]
            else:
                self._pos += 1
        return text[start:]

    def _skip_space(self) -> None:
        while self._peek() in (" ", "\t"):
            self._pos += 1

    def _skip_blank(self) -> None:
        while self._pos < len(self._text):
            ch = self._text[self._pos]
            if ch in " \t\r\n":
                self._pos += 1
            elif ch == "#":
                self._skip_line()
            else:
                return

    def _skip_line(self) -> None:
        end = self._text.find("\n", self._pos)
        self._pos = len(self._text) if end < 0 else end + 1


def _decode_basic_key(body: str) -> str:
    """The key a "..." TOML key means, escapes undone, to match tomllib's dict keys."""
    return _ESCAPE.sub(_unescape, body)


def _unescape(match: re.Match[str]) -> str:
    code = match[1] or match[2] or match[3]
    if code:
        return chr(int(code, 16))
    return _SIMPLE_UNESCAPES.get(match[4], match[0])
