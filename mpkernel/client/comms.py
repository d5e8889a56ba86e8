"""Comms from the frontend's side: open, RPC, answer a handler's request, close.

Single job: the comm requests a frontend sends (comm_open, comm_msg, comm_close,
comm_info_request) and the checks on what the kernel answers. Comm requests get no shell
reply (comm_info aside): everything about them is on IOPub, so each operation waits for its
request's idle in an ``IOPubLog`` and looks at the messages of its busy..idle there:

- ``open``: the kernel's answer is silence (accepted) or a ``comm_close`` for that id inside
  the bracket (refused: unknown target, worker cannot start);
- ``call``: an RPC as Positron sends it (no JSON-RPC ``id`` unless given); exactly one reply,
  parented to the request (I4: its parent_header is the request's header), inside the
  bracket (I3), echoing the ``id`` when there was one;
- ``answer``: the frontend's answer to a handler's request to the frontend (a comm_msg with
  the handler's ``id``);
- ``close``: comm_close from the frontend.

One thread, like the ``Frontend`` it sends through.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mpkernel.client.errors import expect
from mpkernel.client.frontend import Frontend
from mpkernel.client.iopub_log import DEFAULT_TIMEOUT, IOPubLog, bracket
from mpkernel.client.messages import Header, Msg, comm_id_of, describe, msg_type
from mpkernel.client.rpc import RpcRequest, id_echoed, is_response, response_data, rpc_data


def new_comm_id() -> str:
    """A fresh comm id, as frontends make them."""
    return uuid.uuid4().hex


def _instant(value: Any) -> Any:
    """A header date as an instant (jupyter_client parses dates on one side, not always on
    the other)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def parent_mismatch(msg: Msg, header: Header) -> str | None:
    """Why ``msg``'s parent_header is not ``header`` key for key (I4), or None if it is."""
    parent = msg["parent_header"]
    if set(parent) != set(header):
        return f"parent_header keys {sorted(parent)} != request header keys {sorted(header)}"
    for key, value in header.items():
        got = parent[key]
        same = _instant(got) == _instant(value) if key == "date" else got == value
        if not same:
            return f"parent_header[{key!r}] = {got!r}, request had {value!r}"
    return None


@dataclass
class RpcCall:
    """An RPC, its reply and the messages parented to it (busy..idle)."""

    request: RpcRequest
    reply: Msg
    bracket: list[Msg]

    @property
    def rpc_id(self) -> Any:
        """The JSON-RPC id sent, or None (no id: Positron's shape)."""
        return self.request.rpc_id

    @property
    def header(self) -> Header:
        return self.request.header

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.reply["content"]["data"]
        return data

    @property
    def result(self) -> Any:
        expect("result" in self.data, lambda: f"{self.request!r} failed: {self.data}")
        return self.data["result"]

    @property
    def error(self) -> dict[str, Any]:
        expect("error" in self.data, lambda: f"{self.request!r} succeeded: {self.data}")
        err: dict[str, Any] = self.data["error"]
        return err


class CommClient:
    """Comm requests through ``frontend``, their answers read into ``log``."""

    def __init__(self, frontend: Frontend, log: IOPubLog | None = None) -> None:
        self.frontend = frontend
        self.log = log if log is not None else frontend.log()

    # -- sending only --------------------------------------------------------------------
    def send_open(
        self,
        target: str,
        data: Mapping[str, Any] | None = None,
        comm_id: str | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> tuple[str, Header]:
        """comm_open from the frontend; returns (comm_id, request header)."""
        comm_id = comm_id or new_comm_id()
        content = {"comm_id": comm_id, "target_name": target, "data": dict(data or {})}
        return comm_id, self.frontend.send("comm_open", content, buffers=buffers)

    def send_data(self, comm_id: str, data: Any, buffers: Sequence[bytes] | None = None) -> Header:
        """A comm_msg from the frontend (an RPC or not, depending on ``data``)."""
        return self.frontend.send("comm_msg", {"comm_id": comm_id, "data": data}, buffers=buffers)

    def send_rpc(
        self, comm_id: str, method: str, params: Any = None, rpc_id: Any = None
    ) -> RpcRequest:
        """A JSON-RPC request on a comm, without ``id`` unless ``rpc_id`` is given."""
        header = self.send_data(comm_id, rpc_data(method, params, rpc_id))
        return RpcRequest(header, rpc_id)

    def send_close(self, comm_id: str, data: Mapping[str, Any] | None = None) -> Header:
        """comm_close from the frontend."""
        return self.frontend.send("comm_close", {"comm_id": comm_id, "data": dict(data or {})})

    def answer(
        self,
        comm_id: str,
        request_id: Any,
        result: Any = None,
        *,
        error: dict[str, Any] | None = None,
    ) -> Header:
        """Answer the handler's request ``request_id`` to the frontend on ``comm_id``: the
        result, or ``error`` (``{"code": ..., "message": ...}``)."""
        return self.send_data(comm_id, response_data(request_id, result, error))

    # -- request and answer --------------------------------------------------------------
    def _bracket_of(self, header: Header, timeout: float) -> list[Msg]:
        self.log.wait_idle(header["msg_id"], timeout=timeout)
        return bracket(self.log.parented(header["msg_id"]), header["msg_id"])

    def open(
        self,
        target: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> str:
        """comm_open, waited to its idle; it must not have been refused. Returns the id."""
        comm_id, header = self.send_open(target, data)
        closes = self._closes(self._bracket_of(header, timeout))
        expect(not closes, lambda: f"comm_open on {target} was refused:\n{describe(closes)}")
        return comm_id

    def refused_open(self, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
        """comm_open that the kernel must refuse: the comm_close inside its bracket."""
        comm_id, header = self.send_open(target)
        inner = self._bracket_of(header, timeout)
        closes = self._closes(inner)
        expect(
            len(closes) == 1, lambda: f"comm_open on {target} was not refused:\n{describe(inner)}"
        )
        expect(comm_id_of(closes[0]) == comm_id, lambda: f"closed another comm: {describe(closes)}")
        return closes[0]

    @staticmethod
    def _closes(msgs: list[Msg]) -> list[Msg]:
        return [m for m in msgs if msg_type(m) == "comm_close"]

    def call(
        self,
        comm_id: str,
        method: str,
        params: Any = None,
        *,
        rpc_id: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RpcCall:
        """An RPC waited to its idle: I3, I4, exactly one reply (found by its parent
        header) and the id echoed (none if none was sent)."""
        request = self.send_rpc(comm_id, method, params, rpc_id)
        inner = self._bracket_of(request.header, timeout)
        replies = [m for m in self.log.parented(request.msg_id) if is_response(m, comm_id)]
        expect(
            len(replies) == 1,
            lambda: f"{len(replies)} replies to {method} {request!r}:\n{describe(inner)}",
        )
        (reply,) = replies
        expect(
            any(m is reply for m in inner),
            lambda: f"reply to {method} is not inside its busy/idle:\n{describe(inner)}",
        )
        mismatch = parent_mismatch(reply, request.header)
        expect(mismatch is None, lambda: f"reply to {method}: {mismatch}")
        data = reply["content"]["data"]
        expect(
            id_echoed(data, request), lambda: f"reply to {request!r} does not echo its id: {data}"
        )
        return RpcCall(request, reply, self.log.parented(request.msg_id))

    def close(self, comm_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
        """comm_close, waited to its idle; the messages inside its bracket."""
        return self._bracket_of(self.send_close(comm_id), timeout)

    def comm_info(
        self, target_name: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """comm_info_request: the ``comms`` of its reply (reply and busy..idle consumed)."""
        content = {} if target_name is None else {"target_name": target_name}
        header = self.frontend.send("comm_info_request", content)
        reply = self.frontend.get_reply(header["msg_id"], timeout=timeout)
        self._bracket_of(header, timeout)
        expect(reply["content"]["status"] == "ok", lambda: f"comm_info failed: {reply['content']}")
        comms: dict[str, Any] = reply["content"]["comms"]
        return comms
