"""SubshellRegistry and the control requests for subshells, without threads of user code or
sockets: the registry's queues and the control replies' shapes (ipykernel 7's)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

from mpkernel.funnel.items import Publish, Reply
from mpkernel.kernel.control import ControlHandler
from mpkernel.kernel.subshells import SubshellRegistry, UnknownSubshellError, subshell_id_of
from mpkernel.kernel.work import ShellWork, StopWork, WorkItem
from mpkernel.wire import Header, HeaderFactory, Message

HEADERS = HeaderFactory("session", "user")


def control(handler: ControlHandler, msg_type: str, content: dict[str, Any]) -> list[Any]:
    emitted: list[Publish | Reply] = []
    msg = Message(HEADERS.make(msg_type), None, {}, content, (), (b"peer",))
    handler.handle(msg, emitted.append)
    return emitted


def reply_of(emitted: list[Any]) -> dict[str, Any]:
    (reply,) = [item for item in emitted if isinstance(item, Reply)]
    content: dict[str, Any] = reply.content
    return content


@pytest.fixture
def registry() -> SubshellRegistry:
    return SubshellRegistry()


@pytest.fixture
def handler(registry: SubshellRegistry) -> ControlHandler:
    return ControlHandler(dict, lambda: None, lambda restart: None, registry)


def test_create_list_delete_replies(handler: ControlHandler, registry: SubshellRegistry) -> None:
    emitted = control(handler, "create_subshell_request", {})
    assert [getattr(i, "msg_type", None) for i in emitted] == [
        "status",
        "create_subshell_reply",
        "status",
    ]
    created = reply_of(emitted)
    assert created["status"] == "ok"
    subshell_id = created["subshell_id"]
    assert reply_of(control(handler, "list_subshell_request", {})) == {
        "status": "ok",
        "subshell_id": [subshell_id],
    }
    assert reply_of(control(handler, "delete_subshell_request", {"subshell_id": subshell_id})) == {
        "status": "ok"
    }
    assert registry.ids() == []
    again = reply_of(control(handler, "delete_subshell_request", {"subshell_id": subshell_id}))
    assert again["status"] == "error"
    assert again["ename"] == "UnknownSubshellError"
    assert again["evalue"] == f"Unknown subshell_id {subshell_id!r}"


def test_delete_without_a_string_id_is_refused(handler: ControlHandler) -> None:
    refused = reply_of(control(handler, "delete_subshell_request", {"subshell_id": 3}))
    assert refused["status"] == "error"
    assert refused["ename"] == "ValueError"


def test_requests_queue_until_the_starter_comes_then_stop_after_them(
    registry: SubshellRegistry,
) -> None:
    subshell_id = registry.create()
    work = registry.work_for(subshell_id)
    msg = Message(HEADERS.make("execute_request"), None, {}, {}, ())
    work.put(ShellWork(msg))
    served: list[WorkItem] = []

    def starter(sid: str, jobs: queue.SimpleQueue[WorkItem]) -> threading.Thread:
        assert sid == subshell_id
        assert jobs is work

        def serve() -> None:
            while not isinstance(item := jobs.get(), StopWork):
                served.append(item)

        thread = threading.Thread(target=serve)
        thread.start()
        return thread

    registry.set_starter(starter)
    (ident,) = registry.thread_ids()
    registry.delete(subshell_id)
    thread = next(t for t in threading.enumerate() if t.ident == ident)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert served == [ShellWork(msg)]
    with pytest.raises(UnknownSubshellError):
        registry.work_for(subshell_id)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, None),
        ({"subshell_id": None}, None),
        ({"subshell_id": ""}, None),
        ({"subshell_id": "abc"}, "abc"),
        ({"subshell_id": 7}, "7"),
    ],
)
def test_subshell_id_of_a_header(extra: dict[str, Any], expected: str | None) -> None:
    header = Header.from_dict({**HEADERS.make("execute_request").as_dict(), **extra})
    assert subshell_id_of(header) == expected
