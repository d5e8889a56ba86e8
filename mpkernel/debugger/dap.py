"""DAP over a byte stream, sans-I/O: `Content-Length` framed JSON messages.

debugpy's adapter speaks the Debug Adapter Protocol over TCP. `DapReader` turns the bytes
that arrive (in any chunking) into messages; `frame` turns a message into bytes;
`response` builds the answer to a request.
"""

from __future__ import annotations

import json
from typing import Any

from mpkernel.wire import json_bytes

Dap = dict[str, Any]

_HEADER_END = b"\r\n\r\n"
_LENGTH = b"content-length:"


def response(request: Dap, success: bool = True, **fields: Any) -> Dap:
    out: Dap = {
        "type": "response",
        "request_seq": request.get("seq"),
        "success": success,
        "command": request.get("command"),
    }
    out.update(fields)
    return out


class DapError(ValueError):
    """The stream is not DAP (a header without a length, a body that is not a JSON object)."""


def frame(message: dict[str, Any]) -> bytes:
    body = json_bytes(message)
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class DapReader:
    """Accumulates stream bytes; `feed` returns the complete messages they finish."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages: list[dict[str, Any]] = []
        while True:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                return messages
            length = self._content_length(bytes(self._buffer[:end]))
            start = end + len(_HEADER_END)
            if len(self._buffer) - start < length:
                return messages
            body = bytes(self._buffer[start : start + length])
            del self._buffer[: start + length]
            try:
                message = json.loads(body)
            except ValueError as exc:
                raise DapError(f"a DAP body is not JSON: {exc}") from None
            if not isinstance(message, dict):
                raise DapError(f"a DAP body is a JSON {type(message).__name__}, not an object")
            messages.append(message)

    @staticmethod
    def _content_length(header: bytes) -> int:
        for line in header.split(b"\r\n"):
            if line.lower().startswith(_LENGTH):
                try:
                    return int(line[len(_LENGTH) :].strip())
                except ValueError:
                    break
        raise DapError(f"a DAP header without a valid Content-Length: {header[:80]!r}")
