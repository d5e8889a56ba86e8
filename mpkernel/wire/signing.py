"""HMAC signing and verification of the four JSON parts of a Jupyter message.

Single job: turn ``(key, signature_scheme)`` from the connection file into a ``Signer``
that signs outgoing parts and verifies incoming ones.

Invariants:
- The signature is the lowercase hex HMAC digest, as ASCII bytes, of header, parent
  header, metadata and content, fed in that order. Buffers are never signed (the spec
  says so, and jupyter_client agrees since its PR #384).
- An empty key disables signing: ``sign`` returns ``b""`` and ``verify`` accepts anything.
- Verification uses ``hmac.compare_digest``. A signature is remembered for replay
  detection only after it verified; the cache holds at most ``replay_window`` signatures
  and forgets the oldest first, so its memory is bounded and its behaviour deterministic.

No thread owns this module. A ``Signer`` is a small value plus a replay cache; the cache
is only mutated by ``verify``, which the one thread that receives frames calls.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Sequence

from mpkernel.wire.errors import BadSignature, ReplayedSignature

__all__ = ["Signer"]

_SCHEME_PREFIX = "hmac-"


class Signer:
    """Signs and verifies messages for one connection (one key, one scheme)."""

    __slots__ = ("_auth", "_scheme", "_seen", "_seen_order", "_window")

    def __init__(self, key: bytes, scheme: str = "hmac-sha256", replay_window: int = 65536) -> None:
        """Prepare the keyed HMAC once; each message then costs one ``copy()``.

        ``scheme`` is ``"hmac-<algo>"`` for any fixed-size digest hashlib supports.
        ``replay_window`` is how many accepted signatures are remembered (0: no replay
        check). Raises ``ValueError`` for an unknown scheme or a negative window, here
        at construction rather than on the first message.
        """
        algo = scheme[len(_SCHEME_PREFIX) :] if scheme.startswith(_SCHEME_PREFIX) else ""
        if not algo:
            raise ValueError(f"signature scheme must look like 'hmac-sha256', got {scheme!r}")
        if replay_window < 0:
            raise ValueError(f"replay_window must be >= 0, got {replay_window}")
        try:
            hmac.new(b"", digestmod=algo).hexdigest()  # variable-length digests (shake_*) fail here
        except (ValueError, TypeError) as exc:
            raise ValueError(f"unsupported signature scheme {scheme!r}: {exc}") from exc
        self._scheme = scheme
        self._auth: hmac.HMAC | None = hmac.new(key, digestmod=algo) if key else None
        self._window = replay_window
        self._seen: set[bytes] = set()
        self._seen_order: deque[bytes] = deque()

    @property
    def enabled(self) -> bool:
        """Whether messages are signed and verified (the key is not empty)."""
        return self._auth is not None

    @property
    def scheme(self) -> str:
        """The signature scheme, as in the connection file (``"hmac-sha256"``)."""
        return self._scheme

    def __repr__(self) -> str:
        # Never show the key.
        return f"Signer(scheme={self.scheme!r}, enabled={self.enabled})"

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """Return the hex HMAC of ``parts`` as ASCII bytes, or ``b""`` if signing is off."""
        auth = self._auth
        if auth is None:
            return b""
        h = auth.copy()
        for part in parts:
            h.update(part)
        return h.hexdigest().encode("ascii")

    def verify(self, signature: bytes, parts: Sequence[bytes]) -> None:
        """Accept ``signature`` for ``parts`` or raise.

        Raises ``BadSignature`` if it is empty or wrong, ``ReplayedSignature`` if it is
        right but was accepted before. With signing disabled, accepts anything.
        """
        if self._auth is None:
            return
        if not signature:
            raise BadSignature("unsigned message")
        if not hmac.compare_digest(signature, self.sign(parts)):
            raise BadSignature("signature does not match the message")
        window = self._window
        if not window:
            return
        seen = self._seen
        if signature in seen:
            raise ReplayedSignature("signature was already accepted once")
        seen.add(signature)
        order = self._seen_order
        order.append(signature)
        if len(order) > window:
            seen.discard(order.popleft())
