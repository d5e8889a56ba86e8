"""Shared-memory segments: files in a per-kernel directory of a tmpfs, one per big buffer.

A segment is written once by the main process and mapped read-only-at-source by workers
(`mmap` copy-on-write: a handler may scribble on its arrays without touching the file).
Layout (little endian)::

    0   magic  b"MPKSEG01"
    8   status u8: 0 writing, 1 complete, 2 abandoned
    16  nparts u64
    24  index offset u64
    64  parts, each at a 64-byte aligned offset (numpy wants aligned buffers)
    ... index: nparts x (offset u64, length u64)

The writer holds an exclusive `flock` from creation until the segment is complete or
abandoned; a reader takes a shared lock before mapping. That is how a worker waits for data
the main process is still writing in the background (no polling): the lock is released when
the writer finishes, gives up, or its process dies (then the status says what is missing).

Files are named under `<root>/mpkernel-<uid>-<kernel pid>/` (root: `/dev/shm` when present)
so one kernel's leftovers can be removed as a whole (`remove_kernel_dir`), including those of
a kernel that died (by its janitor, `mpkernel.kernel_dirs`). Writes use `pwrite`, which
releases the GIL and is faster than copying into a fresh `mmap` (notes/feasibility.md
pitfall 7). No thread owns
this module; a `SegmentWriter` is used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import re
import secrets
import shutil
import stat
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

MAGIC: Final = b"MPKSEG01"
WRITING: Final = 0
COMPLETE: Final = 1
ABANDONED: Final = 2
_HEADER: Final = struct.Struct("<8sB7xQQ")
_HEADER_SIZE: Final = 64
_INDEX_ITEM: Final = struct.Struct("<QQ")
_ALIGN: Final = 64
# Write and hash in slices this big: each `pwrite` releases the GIL, and a background
# writer gives the main thread the GIL back between slices.
CHUNK: Final = 8 << 20
_DIR_RE: Final = re.compile(r"mpkernel-(\d+)-(\d+)$")


class SegmentError(Exception):
    """A segment that cannot be read: missing, truncated, abandoned or foreign."""


def segment_root() -> Path:
    """Where segments live: a tmpfs when there is one (memory, not disk)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def kernel_dir_path(pid: int | None = None) -> Path:
    """Where the segments of the kernel `pid` (default: this process) go."""
    return segment_root() / f"mpkernel-{os.getuid()}-{os.getpid() if pid is None else pid}"


def kernel_dir(pid: int | None = None) -> Path:
    """The directory of the kernel `pid` (default: this process), created 0700."""
    path = kernel_dir_path(pid)
    path.mkdir(mode=0o700, exist_ok=True)
    # The name is predictable: a directory made first by someone else must not be used.
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path} is not a private directory of this user")
    return path


def remove_kernel_dir(pid: int | None = None) -> None:
    """Free every segment of the kernel `pid` (default: this process)."""
    shutil.rmtree(kernel_dir_path(pid), ignore_errors=True)


def kernel_dirs() -> list[Path]:
    """This user's kernels' segment directories, running or not."""
    return list(segment_root().glob(f"mpkernel-{os.getuid()}-*"))


def owner_of(path: Path) -> int | None:
    """The pid of the kernel whose segment directory `path` is (None: not one)."""
    m = _DIR_RE.fullmatch(path.name)
    return int(m.group(2)) if m is not None else None


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class SegmentWriter:
    """Creates one segment and holds its lock until `finish` or `abandon`."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / secrets.token_hex(8))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._parts: list[tuple[int, int]] = []
        self._end = _HEADER_SIZE
        self._write_header(WRITING)

    def _write_header(self, status: int) -> None:
        index_off = _aligned(self._end)
        header = _HEADER.pack(MAGIC, status, len(self._parts), index_off)
        os.pwrite(self._fd, header.ljust(_HEADER_SIZE, b"\0"), 0)

    def add(
        self,
        data: memoryview | bytes,
        on_chunk: Callable[[memoryview], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> int:
        """Append one part; `on_chunk` sees each slice as it is written (to hash exactly
        what was written). Returns the part's index."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        start = _aligned(self._end)
        done = 0
        while done < view.nbytes:
            if cancelled is not None and cancelled():
                raise SegmentCancelled
            chunk = view[done : done + CHUNK]
            if on_chunk is not None:
                on_chunk(chunk)
            done += os.pwrite(self._fd, chunk, start + done)
        self._parts.append((start, view.nbytes))
        self._end = start + view.nbytes
        return len(self._parts) - 1

    def finish(self) -> None:
        index = b"".join(_INDEX_ITEM.pack(off, n) for off, n in self._parts)
        os.pwrite(self._fd, index, _aligned(self._end))
        self._write_header(COMPLETE)
        self._close()

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self._write_header(ABANDONED)
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock: waiting readers wake up
            self._fd = -1


class SegmentCancelled(Exception):
    """The data being written was superseded."""


def write_segment(directory: Path, parts: Sequence[memoryview | bytes]) -> str:
    """Write a complete segment at once; returns its path."""
    writer = SegmentWriter(directory)
    try:
        for part in parts:
            writer.add(part)
    except BaseException:
        writer.abandon()
        raise
    writer.finish()
    return writer.path


class Segment:
    """A worker's handle on one segment. Opening it pins the file (the main process may
    unlink it afterwards); the data is mapped on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise SegmentError(f"snapshot segment {path} cannot be opened: {e}") from e
        self._parts: list[memoryview] | None = None

    def ready(self) -> bool:
        """Whether the writer is done (the data may still be abandoned)."""
        if self._parts is not None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return True

    def parts(self) -> list[memoryview]:
        """Every part, mapped; waits while the main process is still writing."""
        if self._parts is None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            try:
                self._parts = self._map()
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return self._parts

    def _map(self) -> list[memoryview]:
        size = os.fstat(self._fd).st_size
        if size < _HEADER_SIZE:
            raise SegmentError(f"snapshot segment {self.path} is truncated ({size} bytes)")
        # Copy-on-write: a handler's writes stay private to it.
        mapped = mmap.mmap(self._fd, size, access=mmap.ACCESS_COPY)
        magic, status, nparts, index_off = _HEADER.unpack_from(mapped, 0)
        if magic != MAGIC:
            raise SegmentError(f"{self.path} is not a snapshot segment")
        if status == ABANDONED:
            raise SegmentError("superseded before its data was written; a newer snapshot has it")
        if status != COMPLETE:
            raise SegmentError("the kernel stopped while writing this data")
        if index_off + nparts * _INDEX_ITEM.size > size:
            raise SegmentError(f"snapshot segment {self.path} has a truncated index")
        view = memoryview(mapped)
        parts = []
        for i in range(nparts):
            off, n = _INDEX_ITEM.unpack_from(mapped, index_off + i * _INDEX_ITEM.size)
            if off + n > size:
                raise SegmentError(f"snapshot segment {self.path}: part {i} out of bounds")
            parts.append(view[off : off + n])
        return parts

    def close(self) -> None:
        """Drop the pin; mapped parts stay valid while anything uses them."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
