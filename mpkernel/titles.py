"""Process titles: what `ps`, `top` and htop show for each of a kernel's processes.

Every process of a kernel starts as a copy of the kernel's command line (the forkserver and
forked viewers are forks of it, workers forks of the forkserver). Each one is renamed after
its role and the kernel's id, `mpkernel <role> [<worker>] <kernel id>`:

    mpkernel forkserver 3f2a...        mpkernel worker variables 3f2a...
    mpkernel janitor 3f2a...           mpkernel viewer data_explorer 3f2a...

The kernel's own process keeps the command line it was started with.
"""

from __future__ import annotations

from pathlib import Path

import setproctitle

#: the first word of every title
PREFIX = "mpkernel"


def kernel_id_of(connection_file: Path) -> str:
    """The kernel's id as Jupyter names it: the connection file's name
    (``kernel-<id>.json``) without its prefix and suffix."""
    return connection_file.stem.removeprefix("kernel-")


def title(role: str, kernel_id: str, worker: str | None = None) -> str:
    """The title of a process with `role` (``forkserver``, ``worker``, ``viewer``,
    ``janitor``) in the kernel `kernel_id`, serving `worker` (a configured worker's name)."""
    parts = [PREFIX, role] + ([worker] if worker else []) + ([kernel_id] if kernel_id else [])
    return " ".join(parts)


def set_title(text: str) -> None:
    """Rename this process (its command line as `ps` shows it, and its thread name)."""
    setproctitle.setproctitle(text)
    # The thread name (`top`'s default, /proc/PID/comm) holds 15 bytes: the role part.
    setproctitle.setthreadtitle(text.removeprefix(f"{PREFIX} ")[:15])
