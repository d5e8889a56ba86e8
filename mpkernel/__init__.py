"""mpkernel: a Jupyter kernel for Python with comm handlers in worker processes."""

from __future__ import annotations

__version__ = "0.1.0"
