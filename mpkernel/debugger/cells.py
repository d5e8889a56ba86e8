"""Cell file names: the path JupyterLab expects a cell's code to run under.

JupyterLab hashes a cell's source with MurmurHash2 (32 bits, the seed and the path prefix
and suffix that `debugInfo` announces) and looks for breakpoints, stack frames and sources
under that path. The kernel compiles every cell under the same name, and `dumpCell` writes
the source there so debugpy can show it.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

#: the seed announced in debugInfo (any 32-bit value works; JupyterLab uses what it is told)
HASH_SEED = 0xC70F6907
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes, seed: int) -> int:
    """MurmurHash2, 32-bit, little-endian blocks (Austin Appleby's reference algorithm)."""
    length = len(data)
    h = (seed ^ length) & _MASK
    body = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:body]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[body:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


class CellFiles:
    """Where cells' sources live for the debugger: one private directory per kernel."""

    suffix = ".py"

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.gettempdir()) / f"mpkernel_{os.getpid()}"
        self.prefix = str(self.directory) + os.sep

    def name(self, code: str) -> str:
        """The file name a cell with this source runs under."""
        digest = murmur2(code.encode("utf-8", "surrogatepass"), HASH_SEED)
        return f"{self.prefix}{digest}{self.suffix}"

    def dump(self, code: str) -> str:
        """Write the cell's source to its file (for debugpy to show); its path."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.name(code)
        Path(path).write_text(code, encoding="utf-8")
        return path

    def remove(self) -> None:
        """Delete the directory and the sources dumped into it (the kernel is exiting)."""
        shutil.rmtree(self.directory, ignore_errors=True)
