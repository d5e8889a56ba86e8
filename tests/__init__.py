"""mpkernel test suite (a package so that tests can import tests.frontend)."""

from __future__ import annotations
