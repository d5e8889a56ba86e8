"""The sweep of what dead kernels left (`kernel_dirs.remove_dead_kernels_files`), on a
temporary directory and a segment root of the test's own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mpkernel import kernel_dirs
from mpkernel.snapshots import segments

# pid_max itself is never given to a process: a kernel with it is certainly gone.
DEAD = int(Path("/proc/sys/kernel/pid_max").read_text(encoding="ascii"))
ALIVE = os.getpid()


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    tmp, shm = tmp_path / "tmp", tmp_path / "shm"
    tmp.mkdir()
    shm.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(segments, "segment_root", lambda: shm)
    return tmp, shm


def test_what_dead_kernels_left_is_removed_and_nothing_else(places: tuple[Path, Path]) -> None:
    tmp, shm = places
    uid = os.getuid()
    dead = [
        tmp / f"mpk-{DEAD}-abcd1234",  # a root
        tmp / f"mpk-fork-{DEAD}-abcd1234",  # earlier versions' forked viewers' pipes
        tmp / f"mpkernel_{DEAD}",  # earlier versions' debugger cells
        shm / f"mpkernel-{uid}-{DEAD}",  # segments
    ]
    kept = [
        tmp / f"mpk-{ALIVE}-abcd1234",
        shm / f"mpkernel-{uid}-{ALIVE}",
        tmp / "mpk-fs-abcd1234",  # no pid in its name: whose it is cannot be told
        tmp / "mpk-12345678",  # an older version's pipes, its random name all digits
        tmp / f"other-{DEAD}",
        shm / f"mpkernel-{uid + 1}-{DEAD}",  # another user's
    ]
    for path in dead + kept:
        path.mkdir()
        (path / "file").write_text("x", encoding="ascii")
    target = tmp / "target"
    target.mkdir()
    (tmp / f"mpk-{DEAD}-symlink").symlink_to(target)

    removed = kernel_dirs.remove_dead_kernels_files()

    assert sorted(removed) == sorted(dead)
    assert not any(p.exists() for p in dead)
    assert all(p.exists() for p in kept)
    assert target.exists(), "a link is not followed"


def test_the_owner_is_the_process_with_that_pid_started_before_it(tmp_path: Path) -> None:
    path = tmp_path / "d"
    path.mkdir()
    assert kernel_dirs.owner_alive(ALIVE, path)
    assert not kernel_dirs.owner_alive(DEAD, path)


def test_a_long_tmpdir_leaves_the_root_where_socket_paths_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unix socket paths hold 107 bytes: below a $TMPDIR too long for the forkserver's and
    the workers' sockets, the kernel's root goes to /tmp (and the sweep looks there too)."""
    deep = tmp_path / ("d" * 80)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    dirs = kernel_dirs.create()
    try:
        assert dirs.root.parent == Path("/tmp")
        assert len(str(dirs.root / "workers" / "data_explorer-1234.out")) < 108
        assert Path("/tmp") in kernel_dirs.parents()
    finally:
        dirs.remove()
    near = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))  # short: the root stays in it
    monkeypatch.setattr(tempfile, "tempdir", str(near))
    short = kernel_dirs.create()
    try:
        assert short.root.parent == near
    finally:
        short.remove()
        near.rmdir()
