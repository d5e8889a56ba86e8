"""Received Jupyter messages as a frontend sees them: accessors, labels and predicates.

Single job: read the dicts jupyter_client's ``Session`` deserializes (``header``,
``parent_header``, ``msg_type``, ``content``, ``buffers``) without repeating the same
``m["header"]["msg_type"]`` lookups in every test, tool and example. Pure functions, no I/O,
no thread of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

#: A message as jupyter_client's Session deserializes it.
Msg = dict[str, Any]
#: A message's header (or parent header) as sent or received.
Header = dict[str, Any]
#: The channels a frontend reads and writes (the heartbeat is not a message channel).
Channel = Literal["shell", "iopub", "stdin", "control"]
CHANNELS: tuple[Channel, ...] = ("shell", "iopub", "stdin", "control")
#: A test on one message.
Match = Callable[[Msg], bool]


def msg_type(msg: Msg) -> str:
    """The message's type, from its header."""
    value: str = msg["header"]["msg_type"]
    return value


def parent_id(msg: Msg) -> str | None:
    """The msg_id of the request this message answers, or None for parentless messages."""
    parent = msg.get("parent_header") or {}
    value: str | None = parent.get("msg_id")
    return value


def comm_id_of(msg: Msg) -> str | None:
    """The comm a comm_open, comm_msg or comm_close is about; None for other messages."""
    if msg_type(msg) in ("comm_open", "comm_msg", "comm_close"):
        value: str = msg["content"]["comm_id"]
        return value
    return None


def kind(msg: Msg) -> str:
    """A short label: ``status:busy``, ``stream:stdout``, ``execute_result``, ..."""
    label = msg_type(msg)
    content = msg["content"]
    if label == "status":
        return f"status:{content['execution_state']}"
    if label == "stream":
        return f"stream:{content['name']}"
    return label


def describe(msgs: Iterable[Msg], *, width: int = 300) -> str:
    """A readable one-line-per-message dump, for error messages."""
    lines = []
    for m in msgs:
        content = json.dumps(m.get("content"), default=str)
        if len(content) > width:
            content = content[:width] + "..."
        lines.append(f"  {kind(m)} parent={parent_id(m)} content={content}")
    return "\n".join(lines) if lines else "  (nothing)"


def is_status(msg: Msg, state: str) -> bool:
    """A ``status`` message with ``execution_state == state``."""
    return msg_type(msg) == "status" and msg["content"]["execution_state"] == state


def is_kernel_status(msg: Msg) -> bool:
    """A status without a parent: the kernel's own, not a request's."""
    return msg_type(msg) == "status" and not msg["parent_header"]


def parented_to(msg_id: str | None) -> Match:
    """Predicate: the message answers the request ``msg_id``."""
    return lambda m: parent_id(m) == msg_id


def status_of(msg_id: str, state: str) -> Match:
    """Predicate: ``status: <state>`` parented to the request ``msg_id``."""
    return lambda m: parent_id(m) == msg_id and is_status(m, state)


def of_type(msgs: Iterable[Msg], wanted: str) -> list[Msg]:
    """The messages of type ``wanted``, in order."""
    return [m for m in msgs if msg_type(m) == wanted]


def stream_text(msgs: Iterable[Msg], name: str = "stdout") -> str:
    """All text of the stream ``name`` in ``msgs``, concatenated in order."""
    return "".join(
        m["content"]["text"]
        for m in msgs
        if msg_type(m) == "stream" and m["content"]["name"] == name
    )


def coalesce_streams(msgs: Sequence[Msg]) -> list[Msg]:
    """Merge neighbouring stream messages of the same name (how text is split into stream
    messages is not defined by the protocol; their order is)."""
    out: list[Msg] = []
    for m in msgs:
        prev = out[-1] if out else None
        if (
            prev is not None
            and msg_type(prev) == "stream"
            and msg_type(m) == "stream"
            and prev["content"]["name"] == m["content"]["name"]
        ):
            merged = dict(prev)
            merged["content"] = dict(prev["content"])
            merged["content"]["text"] += m["content"]["text"]
            out[-1] = merged
        else:
            out.append(m)
    return out


def kinds(msgs: Sequence[Msg], *, merge_streams: bool = True) -> list[str]:
    """The labels of ``msgs``; neighbouring same-name streams count once when merging."""
    return [kind(m) for m in (coalesce_streams(msgs) if merge_streams else msgs)]
