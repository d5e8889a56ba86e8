"""The typed envelope of one Jupyter message.

Single job: hold a decoded (or to-be-encoded) message as one immutable value,
``Message[C]``, where ``C`` is the content type (a TypedDict from ``content``, or
``dict[str, Any]`` straight off the wire).

Invariants:
- ``parent_header`` is ``None`` exactly when the wire carries ``{}`` (no parent), never an
  empty ``Header``.
- ``identities`` are the ROUTER routing prefix (shell/control/stdin) or the one IOPub
  topic frame; they are not signed and not part of the message proper.
- ``buffers`` are raw, unsigned binary frames after the content.

No thread owns this module: ``Message`` is an immutable value (its dicts are shared,
never mutated after construction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mpkernel.wire.header import Header

__all__ = ["C", "Message"]

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Message(Generic[C]):
    """One Jupyter message. Don't subclass; build it, or get it from ``codec.decode``."""

    header: Header
    parent_header: Header | None
    metadata: Mapping[str, Any]
    content: C
    buffers: tuple[bytes, ...] = ()
    identities: tuple[bytes, ...] = ()

    # A message holds dicts, so it is a value that cannot be hashed.
    __hash__ = None  # type: ignore[assignment]

    @property
    def msg_type(self) -> str:
        """The header's ``msg_type``."""
        return self.header.msg_type

    @property
    def msg_id(self) -> str:
        """The header's ``msg_id``."""
        return self.header.msg_id
