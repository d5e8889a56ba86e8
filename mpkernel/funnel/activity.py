"""Which requests are running, as the status messages say, and what the kernel as a whole must
say when one of them ends.

Frontends keep one status per kernel and take it from status messages on IOPub, whatever
their parent: JupyterLab shows the last `execution_state` it saw, and so does the server's
kernel model, except for statuses of requests they do not track (jupyter_server's
`untracked_message_types`: kernel_info, comm_info, debug, interrupt, shutdown, ...). With
requests running side by side (the main shell's cell, a subshell's cell, a worker's comm
request, a control request), the idle of one is not the kernel's idle. So after an idle that
leaves another request running, the kernel says `busy` again, without a parent (a status of
the kernel, not of a request: no request gets a second busy, I3); and once the last running
request has ended, the kernel says `idle` without a parent, since that request's own idle
may be one the frontend ignores (a debug_request answered after a cell ended would leave
JupyterLab showing Busy for good). Pure bookkeeping; the io thread feeds it every status it
publishes.
"""

from __future__ import annotations

from typing import Literal

KernelState = Literal["busy", "idle"]


class KernelActivity:
    def __init__(self) -> None:
        self._running: set[str] = set()
        self._said_busy = False  # a parentless busy was published since the kernel was idle

    def kernel_status_after(self, state: str, request_id: str) -> KernelState | None:
        """Record a status published for `request_id`; what the kernel must then say without
        a parent: "busy" after an idle that leaves other requests running, "idle" after the
        last one's idle when "busy" was said, otherwise nothing."""
        if state == "busy":
            self._running.add(request_id)
            return None
        if state != "idle":
            return None
        self._running.discard(request_id)
        if self._running:
            self._said_busy = True
            return "busy"
        if self._said_busy:
            self._said_busy = False
            return "idle"
        return None

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)
