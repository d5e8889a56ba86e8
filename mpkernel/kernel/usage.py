"""`usage_request` on control: what the kernel's process tree costs (jupyter-resource-usage's
kernel panel asks for it).

The reply has ipykernel 7.4's fields: `kernel_cpu` (percent, summed over the kernel and all
its descendants since the previous request), `kernel_memory` (bytes of PSS, summed the same
way: a worker forked from the kernel is counted for the pages it owns, not again for those
it shares), `host_cpu_percent` (when psutil has a measure), `cpu_count`, `host_virtual_memory`,
`pid` and `hostname`; and `workers`, mpkernel's own: each worker's name, pid, CPU percent
and PSS. Io thread only; psutil is imported on the first request.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil


class UsageMeter:
    """Keeps each process's psutil object between requests: CPU percent is measured from
    one call to the next."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> psutil.Process:
        import psutil

        process = self._processes.get(pid)
        if process is None:
            process = psutil.Process(pid)
        return process

    def reply(self, workers: Iterable[tuple[str, int]]) -> dict[str, Any]:
        """`workers`: (name, pid) of each running worker."""
        import psutil

        kernel = psutil.Process()
        tree = [kernel]
        with contextlib.suppress(psutil.Error):
            tree += kernel.children(recursive=True)
        processes = {p.pid: self._processes.get(p.pid, p) for p in tree}
        self._processes = processes
        measured = {pid: _measure(p) for pid, p in processes.items()}
        content: dict[str, Any] = {
            "status": "ok",
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "kernel_cpu": sum(cpu for cpu, _ in measured.values()),
            "kernel_memory": sum(pss for _, pss in measured.values()),
        }
        host_cpu = psutil.cpu_percent()
        if host_cpu:  # psutil's first call measures nothing and says 0.0
            content["host_cpu_percent"] = host_cpu
        content["cpu_count"] = psutil.cpu_count(logical=True)
        content["host_virtual_memory"] = dict(psutil.virtual_memory()._asdict())
        content["workers"] = [
            {"name": name, "pid": pid, "cpu": cpu, "pss": pss}
            for name, pid in workers
            for cpu, pss in [measured.get(pid) or _measure(self._process(pid))]
        ]
        return content


def _measure(process: psutil.Process) -> tuple[float, int]:
    """CPU percent since the last call on this object, and PSS bytes (RSS where the system
    has no PSS); zeros for a process that is gone."""
    import psutil

    try:
        cpu = process.cpu_percent(None)
        info = process.memory_full_info()
    except psutil.Error:
        return 0.0, 0
    return float(cpu), int(getattr(info, "pss", info.rss))
