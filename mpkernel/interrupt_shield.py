"""Holding back KeyboardInterrupt over a few statements that must not be cut in two.

The main thread turns SIGINT into KeyboardInterrupt in user code. A few steps that user
code triggers must either happen whole or not at all: a viewer forked from the kernel must
reach the io thread that adopts it, or the child is left behind with nobody to reap it.
Inside `shielded()` the kernel's SIGINT handler records the interrupt instead of raising
it (`deflect`); it is raised when the block ends. Main thread only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_pending = False


@contextmanager
def shielded() -> Iterator[None]:
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if _depth == 0 and _pending:
        _pending = False
        raise KeyboardInterrupt


def deflect() -> bool:
    """For the SIGINT handler: True if the interrupt was recorded for later."""
    global _pending
    if _depth:
        _pending = True
        return True
    return False
