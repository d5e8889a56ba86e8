"""Which requests are running, as the status messages say, and whether the kernel as a whole
is still busy after one of them ends.

Frontends keep one status per kernel and take it from every status message on IOPub,
whatever its parent: JupyterLab shows the last `execution_state` it saw (except for
requests the server lists as untracked, such as kernel_info), and so does the server's
kernel model. With requests running side by side (the main shell's cell, a subshell's
cell, a worker's comm request, a control request), the idle of one is not the kernel's
idle. So after an idle that leaves another request running, the kernel says `busy` again,
without a parent (a status of the kernel, not of a request: no request gets a second busy,
I3). Pure bookkeeping; the io thread feeds it every status it publishes.
"""

from __future__ import annotations


class KernelActivity:
    def __init__(self) -> None:
        self._running: set[str] = set()

    def still_busy_after(self, state: str, request_id: str) -> bool:
        """Record a status published for `request_id`; True when it was an idle and other
        requests are still running (the kernel is busy)."""
        if state == "busy":
            self._running.add(request_id)
            return False
        if state == "idle":
            self._running.discard(request_id)
            return bool(self._running)
        return False

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)
