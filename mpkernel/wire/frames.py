"""Splitting and joining the frame list of a Jupyter message; no JSON, no signing.

Single job: know where things sit in ``[identities..., b"<IDS|MSG>", signature, header,
parent_header, metadata, content, *buffers]``.

Invariants:
- The first frame equal to ``DELIMITER`` ends the identities (as in jupyter_client's
  ``feed_identities``); an identity equal to the delimiter cannot be represented.
- At least five frames follow the delimiter, checked before anything looks at them.
- ``join_frames`` is the exact inverse of the two split functions.

No thread owns this module: pure functions over sequences of bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpkernel.wire.errors import MissingDelimiter, ProtocolViolation, TooFewParts

__all__ = ["DELIMITER", "join_frames", "split_identities", "split_parts"]

DELIMITER: bytes = b"<IDS|MSG>"

# signature + header + parent_header + metadata + content
_MIN_PARTS = 5


def split_identities(frames: Sequence[bytes]) -> tuple[tuple[bytes, ...], Sequence[bytes]]:
    """Return ``(identities, parts after the delimiter)``; ``MissingDelimiter`` if absent."""
    try:
        idx = frames.index(DELIMITER)
    except ValueError:
        raise MissingDelimiter(f"no {DELIMITER!r} among {len(frames)} frames") from None
    return tuple(frames[:idx]), frames[idx + 1 :]


def split_parts(
    parts: Sequence[bytes],
) -> tuple[bytes, tuple[bytes, bytes, bytes, bytes], tuple[bytes, ...]]:
    """Return ``(signature, (header, parent, metadata, content), buffers)``.

    Raises ``TooFewParts`` when fewer than five frames follow the delimiter.
    """
    if len(parts) < _MIN_PARTS:
        raise TooFewParts(f"{len(parts)} frames after the delimiter, need at least {_MIN_PARTS}")
    return parts[0], (parts[1], parts[2], parts[3], parts[4]), tuple(parts[_MIN_PARTS:])


def join_frames(
    identities: Sequence[bytes],
    signature: bytes,
    json_parts: Sequence[bytes],
    buffers: Sequence[bytes],
) -> list[bytes]:
    """Lay out a message's frames in wire order; ``ProtocolViolation`` unless 4 JSON parts."""
    if len(json_parts) != _MIN_PARTS - 1:
        raise ProtocolViolation(f"a message has exactly 4 JSON parts, got {len(json_parts)}")
    return [*identities, DELIMITER, signature, *json_parts, *buffers]
