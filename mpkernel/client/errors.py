"""What the frontend client raises when the kernel does not say what was expected.

Both are ``AssertionError`` subclasses on purpose: this client drives kernels for tests,
tools and examples, where "the kernel did not answer as the protocol says" is a failed
expectation, and pytest reports an ``AssertionError`` with its message and no noise. The
message always names what was awaited and what arrived instead.
"""

from __future__ import annotations

from collections.abc import Callable


class MessageTimeout(AssertionError):
    """No message matching what was awaited arrived before the deadline."""


class UnexpectedMessages(AssertionError):
    """Messages arrived, but not in the shape or order the protocol requires."""


def expect(condition: bool, text: Callable[[], str]) -> None:
    """Raise ``UnexpectedMessages(text())`` unless ``condition`` (an ``assert`` that survives
    ``python -O``). The text is built only on failure: it dumps messages."""
    if not condition:
        raise UnexpectedMessages(text())
