"""mpkernel.client: a frontend for driving a kernel from tests, tools and scripts.

Owns nothing in the kernel: it is the other side of the wire, on jupyter_client's
``BlockingKernelClient`` (signing, sockets). Modules, one job each:

- ``messages``: accessors, labels and predicates on received messages (pure);
- ``mailbox``: wait for the first message matching a predicate, keep the others in arrival
  order (sans-I/O);
- ``iopub_log``: IOPub in arrival order across parents, and the busy..idle bracket check;
- ``rpc``: comm RPCs as Positron sends them (no JSON-RPC ``id``) and how replies are found;
- ``frontend``: ``Frontend``: send requests, receive through the mailbox, execute, run
  until idle, stdin, sync, drain;
- ``comms``: ``CommClient``: open (with the kernel's answer or refusal), call, answer a
  handler's request, close, comm_info;
- ``control``: interrupt, the debugger's DAP requests, subshells.

Everything is used from one thread per ``Frontend``; see docs/client.md.
"""

from __future__ import annotations

from mpkernel.client.comms import CommClient, RpcCall
from mpkernel.client.errors import MessageTimeout, UnexpectedMessages
from mpkernel.client.frontend import Executed, Frontend
from mpkernel.client.iopub_log import DEFAULT_TIMEOUT, IOPubLog, bracket
from mpkernel.client.mailbox import Mailbox
from mpkernel.client.messages import CHANNELS, Channel, Msg
from mpkernel.client.rpc import RpcRequest

__all__ = [
    "CHANNELS",
    "DEFAULT_TIMEOUT",
    "Channel",
    "CommClient",
    "Executed",
    "Frontend",
    "IOPubLog",
    "Mailbox",
    "MessageTimeout",
    "Msg",
    "RpcCall",
    "RpcRequest",
    "UnexpectedMessages",
    "bracket",
]
