"""The funnel's ordering rules, driven by a fake sink and a fake clock (no sockets)."""

from __future__ import annotations

import select
import threading
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpkernel.funnel.iopub import STREAM_FLUSH_S, STREAM_MAX_BUFFER, IOPubFunnel
from mpkernel.funnel.items import (
    Barrier,
    CommInfo,
    CommItem,
    DrainShell,
    Flush,
    FunnelItem,
    InputRequest,
    KernelAnswerItem,
    OpenBackendComm,
    Publish,
    PublishRaw,
    RegisterComm,
    ReplaceViewer,
    Reply,
    SnapshotReady,
    Status,
    Stream,
    UnregisterComm,
)
from mpkernel.funnel.outbox import Outbox
from mpkernel.funnel.stdin import InputWaiter
from mpkernel.wire import Header


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingSink:
    """Records what the funnel sends, as (kind, msg_type-or-name, payload, parent id)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, str | None]] = []
        self.drained: list[object] = []
        self.stopped = False
        self.owed: set[str] = set()
        self.held_idles: list[str] = []

    def publish(self, item: Publish) -> None:
        msg_type, content, parent = item.msg_type, item.content, item.parent
        pid = parent.msg_id if parent else None
        if msg_type == "stream":
            self.sent.append(("stream", content["name"], content["text"], pid))
        elif msg_type == "status":
            self.sent.append(("status", content["execution_state"], None, pid))
        else:
            self.sent.append(("publish", msg_type, dict(content), pid))

    def reply(self, item: Reply) -> None:
        self.sent.append(("reply", item.msg_type, item.channel, item.parent.msg_id))

    def publish_raw(self, item: PublishRaw) -> None:
        parent = item.parent
        self.sent.append(
            ("raw", item.msg_type, item.content_json, parent.msg_id if parent else None)
        )

    def request_input(self, item: InputRequest) -> None:
        self.sent.append(("input", item.prompt, None, item.parent.msg_id))

    def comm_item(self, item: CommItem) -> None:
        self.sent.append(("comm_item", type(item).__name__, None, None))

    def idle_may_go(self, parent: Header | None) -> bool:
        if parent is not None and parent.msg_id in self.owed:
            self.held_idles.append(parent.msg_id)
            return False
        return True

    def drain_shell(self, item: DrainShell) -> None:
        self.drained.append(item.marker)

    def stop(self) -> None:
        self.stopped = True


def header(msg_id: str, msg_type: str = "execute_request") -> Header:
    return Header(msg_id=msg_id, msg_type=msg_type)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def funnel(sink: RecordingSink, clock: FakeClock) -> IOPubFunnel:
    return IOPubFunnel(sink, clock=clock)


def test_i2_stream_text_is_merged_until_a_non_stream_item(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    p = header("r1")
    for text in ("a", "b", "c"):
        funnel.handle(Stream("stdout", text, p))
    assert sink.sent == []
    funnel.handle(Publish("display_data", {"data": {}}, p))
    assert sink.sent == [
        ("stream", "stdout", "abc", "r1"),
        ("publish", "display_data", {"data": {}}, "r1"),
    ]


def test_i2_switching_stream_name_flushes_first_keeping_write_order(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    p = header("r1")
    funnel.handle(Stream("stdout", "a\n", p))
    funnel.handle(Stream("stderr", "b\n", p))
    funnel.handle(Stream("stdout", "c\n", p))
    funnel.flush()
    assert [(s[1], s[2]) for s in sink.sent] == [
        ("stdout", "a\n"),
        ("stderr", "b\n"),
        ("stdout", "c\n"),
    ]


def test_i2_a_different_parent_flushes_first(funnel: IOPubFunnel, sink: RecordingSink) -> None:
    funnel.handle(Stream("stdout", "one", header("r1")))
    funnel.handle(Stream("stdout", "two", header("r2")))
    funnel.flush()
    assert [(s[2], s[3]) for s in sink.sent] == [("one", "r1"), ("two", "r2")]


def test_i2_timer_flushes_within_the_limit(
    funnel: IOPubFunnel, sink: RecordingSink, clock: FakeClock
) -> None:
    funnel.handle(Stream("stdout", "x", header("r1")))
    timeout = funnel.timeout_ms()
    assert timeout is not None
    assert timeout <= STREAM_FLUSH_S * 1000 + 1
    clock.now += STREAM_FLUSH_S / 2
    funnel.flush_due()
    assert sink.sent == []
    clock.now += STREAM_FLUSH_S / 2
    funnel.flush_due()
    assert sink.sent == [("stream", "stdout", "x", "r1")]
    assert funnel.timeout_ms() is None


def test_i2_a_huge_buffer_is_flushed_without_waiting(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    funnel.handle(Stream("stdout", "x" * STREAM_MAX_BUFFER, header("r1")))
    assert len(sink.sent) == 1


def test_i2_explicit_flush_item_publishes_the_buffer(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    funnel.handle(Stream("stdout", "x", header("r1")))
    funnel.handle(Flush())
    assert sink.sent == [("stream", "stdout", "x", "r1")]


def test_i3_idle_comes_after_the_reply_and_all_output(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    p = header("r1")
    funnel.handle(Status("busy", p))
    funnel.handle(Stream("stdout", "out", p))
    funnel.handle(Reply("shell", [b"id"], "execute_reply", {"status": "ok"}, p))
    funnel.handle(Status("idle", p))
    assert [s[:2] for s in sink.sent] == [
        ("status", "busy"),
        ("stream", "stdout"),
        ("reply", "execute_reply"),
        ("status", "idle"),
    ]


def test_i8_input_request_waits_for_earlier_output(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    p = header("r1")
    funnel.handle(Stream("stdout", "before", p))
    funnel.handle(InputRequest([b"id"], p, "prompt> ", False, InputWaiter()))
    assert [s[:2] for s in sink.sent] == [("stream", "stdout"), ("input", "prompt> ")]


@pytest.mark.invariant("I8")
def test_barrier_is_released_after_everything_before_it(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    done = threading.Event()
    funnel.handle(Stream("stdout", "x", header("r1")))
    funnel.handle(Barrier(done))
    assert done.is_set()
    assert sink.sent == [("stream", "stdout", "x", "r1")]


def test_drain_shell_is_forwarded(funnel: IOPubFunnel, sink: RecordingSink) -> None:
    marker = object()
    funnel.handle(DrainShell(marker))
    assert sink.drained == [marker]


items_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("stream"), st.sampled_from(["stdout", "stderr"]), st.text(min_size=1)),
        st.tuples(st.just("display"), st.just(""), st.text()),
        st.tuples(st.just("flush"), st.just(""), st.just("")),
    ),
    max_size=40,
)


@given(items_strategy)
def test_i1_i2_any_interleaving_keeps_text_and_item_order(
    items: list[tuple[str, str, str]],
) -> None:
    """Concatenating what is published reproduces exactly what was written, in order."""
    sink = RecordingSink()
    funnel = IOPubFunnel(sink, clock=FakeClock())
    p = header("r1")
    expected: list[tuple[str, str]] = []
    for kind, name, text in items:
        item: FunnelItem
        if kind == "stream":
            item = Stream(name, text, p)  # type: ignore[arg-type]
            if expected and expected[-1][0] == name:
                expected[-1] = (name, expected[-1][1] + text)
            else:
                expected.append((name, text))
        elif kind == "display":
            item = Publish("display_data", {"text": text}, p)
            expected.append(("display", text))
        else:
            item = Flush()
        funnel.handle(item)
    funnel.flush()
    got: list[tuple[str, str]] = []
    for kind, name, payload, _ in sink.sent:
        entry = (name, payload) if kind == "stream" else ("display", payload["text"])
        if got and kind == "stream" and got[-1][0] == name:
            got[-1] = (name, got[-1][1] + payload)
        else:
            got.append(entry)
    assert got == expected


@pytest.mark.parametrize("producer", ["put", "put_text"])
def test_i1_outbox_keeps_per_thread_order_under_contention(producer: str) -> None:
    """Items (`put`) or writers' text joining runs (`put_text`) from several producer
    threads come out in each producer's order, none lost, and no wakeup is lost."""
    outbox = Outbox()
    n_threads, per_thread = 4, 5000
    start = threading.Barrier(n_threads)

    def produce(tid: int) -> None:
        start.wait()
        for i in range(per_thread):
            if producer == "put":
                outbox.put(Stream("stdout", f"{tid}:{i};", None))
            else:
                outbox.put_text("stdout", f"{tid}:{i};", None)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    seen: dict[int, list[int]] = {t: [] for t in range(n_threads)}
    total = 0
    while total < n_threads * per_thread:
        # Items are still owed: a producer has put or will put one, so the wakeup fd
        # must become readable. A timeout here is a lost wakeup.
        ready, _, _ = select.select([outbox.fileno()], [], [], 10)
        assert ready, "lost wakeup: items outstanding but the outbox fd never fired"
        for item in outbox.drain():
            assert isinstance(item, Stream)
            for piece in item.text.split(";")[:-1]:
                tid, i = map(int, piece.split(":"))
                seen[tid].append(i)
                total += 1
    for t in threads:
        t.join()
    outbox.close()
    for tid in range(n_threads):
        assert seen[tid] == list(range(per_thread))


def test_i3_idle_is_held_while_workers_owe_done(funnel: IOPubFunnel, sink: RecordingSink) -> None:
    """The funnel asks before publishing an idle; a held idle is not sent (the router
    publishes it once the last Done arrives), but the stream is still flushed first."""
    p = header("r1")
    sink.owed.add("r1")
    funnel.handle(Status("busy", p))
    funnel.handle(Stream("stdout", "x", p))
    funnel.handle(Status("idle", p))
    assert [s[:2] for s in sink.sent] == [("status", "busy"), ("stream", "stdout")]
    assert sink.held_idles == ["r1"]


@pytest.mark.invariant("I2")
def test_raw_comm_traffic_flushes_the_stream_first(
    funnel: IOPubFunnel, sink: RecordingSink
) -> None:
    """I2: a comm message never overtakes text buffered before it."""
    p = header("r1")
    funnel.handle(Stream("stdout", "printed first", p))
    funnel.handle(PublishRaw("comm_msg", b'{"comm_id":"c","data":{}}', None))
    funnel.handle(RegisterComm("c2", "t"))
    assert [s[:2] for s in sink.sent] == [
        ("stream", "stdout"),
        ("raw", "comm_msg"),
        ("comm_item", "RegisterComm"),
    ]


HDR = header("comm-req")
_COMM_ITEM_EXAMPLES: list[CommItem] = [
    CommInfo((b"id",), HDR, None),
    RegisterComm("c", "jupyter.widget"),
    UnregisterComm("c"),
    OpenBackendComm("c", "mpkernel.echo", b"{}", HDR, b"obj"),
    ReplaceViewer("c", None, lambda: None, HDR),
    SnapshotReady(3, b"manifest"),
    KernelAnswerItem("echo", "call-1", b"null", "no such variable"),
]


def test_every_comm_item_kind_has_an_example() -> None:
    assert {type(i) for i in _COMM_ITEM_EXAMPLES} == set(get_args(CommItem))


@pytest.mark.parametrize("item", _COMM_ITEM_EXAMPLES, ids=lambda i: type(i).__name__)
def test_comm_items_reach_the_router_after_earlier_text(
    funnel: IOPubFunnel, sink: RecordingSink, item: CommItem
) -> None:
    funnel.handle(Stream("stdout", "before\n", HDR))
    funnel.handle(item)
    assert sink.sent == [
        ("stream", "stdout", "before\n", HDR.msg_id),
        ("comm_item", type(item).__name__, None, None),
    ]


def test_i1_an_item_closes_the_text_run() -> None:
    """Text written after another item comes after it: it starts a new run instead of
    joining the one queued before the item; a new parent starts a new run too."""
    outbox = Outbox()
    p, q = header("r1"), header("r2")
    outbox.put_text("stdout", "a", p)
    outbox.put_text("stdout", "b", p)
    outbox.put(Flush())
    outbox.put_text("stdout", "c", p)
    outbox.put_text("stdout", "d", q)
    outbox.put_text("stderr", "e", q)
    got = outbox.drain()
    outbox.put_text("stderr", "f", q)  # after a drain: a new run, not the drained one
    got += outbox.drain()
    outbox.close()
    assert got == [
        Stream("stdout", "ab", p),
        Flush(),
        Stream("stdout", "c", p),
        Stream("stdout", "d", q),
        Stream("stderr", "e", q),
        Stream("stderr", "f", q),
    ]
