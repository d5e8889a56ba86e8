"""The heartbeat: echo every frame back to its sender, on its own thread.

Thread `mpkernel-hb` owns the hb socket and touches nothing else, so a busy main thread
or io thread never makes the kernel look dead. The echo runs inside libzmq
(`zmq.proxy`), without the GIL. It ends when the context is terminated.
"""

from __future__ import annotations

import logging
import signal
import threading

import zmq

from mpkernel.threads import hidden_from_debugger

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    def __init__(self, socket: zmq.Socket[bytes]) -> None:
        super().__init__(name="mpkernel-hb", daemon=True)
        hidden_from_debugger(self)
        self._socket = socket

    def run(self) -> None:
        # Process-directed SIGINT must land on the main thread, where user code runs: a
        # signal taken by this thread would not wake a main thread blocked in a syscall.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            zmq.proxy(self._socket, self._socket)
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                log.error("heartbeat stopped: %s", e)
        finally:
            self._socket.close(linger=0)
