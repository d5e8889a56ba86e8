"""Creating and binding the five kernel sockets with the options mpkernel relies on.

Called once on the main thread before any other thread starts; afterwards shell,
control, stdin and iopub belong to the io thread and hb to the heartbeat thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import zmq

from mpkernel.kernel.connection import PORT_NAMES, ConnectionInfo

HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000


@dataclass(frozen=True, slots=True)
class KernelSockets:
    shell: zmq.Socket[bytes]
    control: zmq.Socket[bytes]
    stdin: zmq.Socket[bytes]
    iopub: zmq.Socket[bytes]
    hb: zmq.Socket[bytes]
    # Connection events of iopub (ACCEPTED / DISCONNECTED): the frontends present.
    iopub_peers: zmq.Socket[bytes]


def _bind(sock: zmq.Socket[bytes], info: ConnectionInfo, port: int) -> int:
    if info.transport == "tcp" and port == 0:
        return sock.bind_to_random_port(f"tcp://{info.ip}")
    sock.bind(info.address(port))
    return port


def bind_sockets(
    ctx: zmq.Context[zmq.Socket[bytes]], info: ConnectionInfo
) -> tuple[KernelSockets, ConnectionInfo]:
    """Create, configure and bind every socket; returns them and the info with real ports."""

    def router() -> zmq.Socket[bytes]:
        sock = ctx.socket(zmq.ROUTER)
        # A reply or prompt to a peer that is gone must fail loudly, not vanish.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # jupyter_client connects shell, control and stdin with the session id as routing
        # id, and every client of one KernelManager shares it: a frontend that comes back
        # (a restarted client, a connection whose old TCP link is not torn down yet) must
        # take that id over, or libzmq keeps the old link and ignores the new one. Replies
        # are routed by id, so those still owed go to the newer connection. Frontend
        # presence is counted on IOPub, so a takeover is not a departure.
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.LINGER, 1000)
        return sock

    shell, control, stdin = router(), router(), router()
    iopub = ctx.socket(zmq.XPUB)
    # Every subscription and every departure is reported, so each client is welcomed
    # and disconnects can be counted.
    iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
    iopub.setsockopt(zmq.XPUB_VERBOSER, 1)
    # I7: a message accepted into the funnel is published; no silent drop at a HWM.
    iopub.setsockopt(zmq.SNDHWM, 0)
    iopub.setsockopt(zmq.LINGER, 1000)
    # ZMTP heartbeats: a subscriber whose host vanished or whose process hangs is noticed
    # as a departure after the timeout (a killed process is noticed at once anyway).
    iopub.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    iopub.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    # Monitored before it binds, so that no frontend can connect unseen.
    iopub_peers = iopub.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
    hb = ctx.socket(zmq.ROUTER)
    hb.setsockopt(zmq.LINGER, 0)
    sockets = KernelSockets(
        shell=shell, control=control, stdin=stdin, iopub=iopub, hb=hb, iopub_peers=iopub_peers
    )
    by_name = dict(zip(PORT_NAMES, (shell, iopub, stdin, control, hb), strict=True))
    ports = {name: _bind(sock, info, getattr(info, name)) for name, sock in by_name.items()}
    return sockets, info.with_ports(ports)


def close_sockets(sockets: KernelSockets, linger_ms: int = 1000) -> None:
    for sock in (sockets.shell, sockets.control, sockets.stdin, sockets.iopub):
        sock.close(linger=linger_ms)
    sockets.iopub_peers.close(linger=0)
