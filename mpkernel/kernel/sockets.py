"""Creating and binding the five kernel sockets with the options mpkernel relies on.

Called once on the main thread before any other thread starts; afterwards shell,
control, stdin and iopub belong to the io thread and hb to the heartbeat thread.

With CurveZMQ keys in the connection file every one of the five sockets is a curve server
before it binds, so no client without the server's public key completes a handshake on any
of them: it can neither read IOPub nor be read on shell, control or stdin (the HMAC key
alone stops forged requests but not reading). The worker pipes are not here: they are ipc
sockets in a 0700 directory, with per-worker tokens (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import zmq

from mpkernel.kernel.connection import PORT_NAMES, ConnectionFileError, ConnectionInfo

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


#: what the IOPub monitor reports: connections, and whether their handshake passed (with
#: CurveZMQ a client without the right key is accepted, then fails the handshake)
IOPUB_PEER_EVENTS = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


def check_curve_keys(info: ConnectionInfo) -> None:
    """Raise `ConnectionFileError` if the connection file's keys cannot be used here: this
    libzmq cannot encrypt, or the public key is not the secret key's. Never a silent
    fallback to plain text."""
    if info.curve_secretkey is None or info.curve_publickey is None:
        return
    if not zmq.has("curve"):
        raise ConnectionFileError(
            "the connection file has CurveZMQ keys but this libzmq has no CURVE support "
            "(install a pyzmq wheel: they bundle libzmq with libsodium)"
        )
    try:
        derived = zmq.curve_public(info.curve_secretkey)
    except zmq.ZMQError as e:
        raise ConnectionFileError(f"curve_secretkey is not a usable CurveZMQ key: {e}") from e
    if derived != info.curve_publickey:
        raise ConnectionFileError(
            "curve_publickey is not the public key of curve_secretkey: the two keys of the "
            "connection file do not belong together"
        )


def _encrypt(sock: zmq.Socket[bytes], info: ConnectionInfo) -> None:
    """Make `sock` a CurveZMQ server with the connection file's keys (before it binds)."""
    if info.curve_secretkey is None or info.curve_publickey is None:
        return
    sock.setsockopt(zmq.CURVE_SECRETKEY, info.curve_secretkey)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, info.curve_publickey)
    sock.setsockopt(zmq.CURVE_SERVER, 1)


def _bind(sock: zmq.Socket[bytes], info: ConnectionInfo, port: int) -> int:
    if info.transport == "tcp" and port == 0:
        return sock.bind_to_random_port(f"tcp://{info.ip}")
    sock.bind(info.address(port))
    return port


def bind_sockets(
    ctx: zmq.Context[zmq.Socket[bytes]], info: ConnectionInfo
) -> tuple[KernelSockets, ConnectionInfo]:
    """Create, configure and bind every socket; returns them and the info with real ports.

    Raises `ConnectionFileError` for curve keys that cannot be used (`check_curve_keys`)."""
    check_curve_keys(info)

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
    iopub_peers = iopub.get_monitor_socket(IOPUB_PEER_EVENTS)
    hb = ctx.socket(zmq.ROUTER)
    hb.setsockopt(zmq.LINGER, 0)
    sockets = KernelSockets(
        shell=shell, control=control, stdin=stdin, iopub=iopub, hb=hb, iopub_peers=iopub_peers
    )
    by_name = dict(zip(PORT_NAMES, (shell, iopub, stdin, control, hb), strict=True))
    for sock in by_name.values():
        _encrypt(sock, info)
    ports = {name: _bind(sock, info, getattr(info, name)) for name, sock in by_name.items()}
    return sockets, info.with_ports(ports)


def close_sockets(sockets: KernelSockets, linger_ms: int = 1000) -> None:
    for sock in (sockets.shell, sockets.control, sockets.stdin, sockets.iopub):
        sock.close(linger=linger_ms)
    sockets.iopub_peers.close(linger=0)
