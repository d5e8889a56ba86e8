"""Logging setup for the kernel process: to the original stderr or a file, never stdout.

Called once on the main thread at start, before fd 1/2 are captured; the handler keeps
a duplicate of the original stderr so kernel logs never become notebook output.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TextIO

LOG_FORMAT = (
    "[mpkernel %(levelname).1s %(asctime)s %(process)d %(threadName)s %(name)s] %(message)s"
)


def setup_logging(level: str = "info", log_file: Path | None = None) -> TextIO:
    """Configure the `mpkernel` logger; returns the stream it writes to."""
    stream: TextIO
    if log_file is not None:
        stream = log_file.open("a", encoding="utf-8", buffering=1)
    else:
        stream = os.fdopen(os.dup(2), "w", encoding="utf-8", buffering=1, errors="replace")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("mpkernel")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return stream
