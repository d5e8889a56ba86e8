"""Exceptions of the wire layer, split by whose fault the failure is.

Single job: name every way a frame list can fail to become a message, and the one way
we can fail to turn a message into frames.

- ``WireError`` and its subclasses: the *peer* sent something we cannot accept. The I/O
  shell logs a warning and drops the frames; nothing is replied, because the sender is
  not authenticated (or not well-formed enough to route an answer to).
- ``ProtocolViolation``: *we* tried to emit something illegal. That is a bug in mpkernel:
  tests fail on it, production logs it and sends an error reply.

No thread owns this module: it holds only exception classes.
"""

from __future__ import annotations

__all__ = [
    "BadHeader",
    "BadJson",
    "BadSignature",
    "MissingDelimiter",
    "ProtocolViolation",
    "ReplayedSignature",
    "TooFewParts",
    "WireError",
]


class WireError(Exception):
    """The peer sent frames that do not form an acceptable message: log and drop."""


class MissingDelimiter(WireError):
    """No ``<IDS|MSG>`` frame separates the routing identities from the message."""


class TooFewParts(WireError):
    """Fewer than five frames (signature + four JSON parts) follow the delimiter."""


class BadSignature(WireError):
    """Signing is enabled and the signature is empty or does not match the four parts."""


class ReplayedSignature(WireError):
    """The signature is valid but was already accepted once: a replayed message."""


class BadJson(WireError):
    """A JSON part is not UTF-8, not valid JSON, or not a JSON object."""


class BadHeader(WireError):
    """The header lacks a string ``msg_id`` or ``msg_type``."""


class ProtocolViolation(Exception):
    """We tried to emit something the protocol forbids: a bug in mpkernel, not the peer."""
