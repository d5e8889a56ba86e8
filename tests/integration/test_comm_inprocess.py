"""In-process comms (the ``comm`` package, ipywidgets) hosted in the main process.

Invariants (docs/architecture.md section 2) checked here: I1 (per-sender FIFO: the main thread's
prints and comm sends in program order), I2 (no comm message overtakes an earlier print), I3
(frontend comm requests to in-process targets are bracketed), I4 (what a comm callback sends is
parented to the request being served), and docs/architecture.md section 3 (comm_info,
ipykernel-compatible hooks).
"""

from __future__ import annotations

import json

import pytest

from tests.frontend import coalesce_streams, describe, kind, parent_id
from tests.integration.comm_client import (
    IOPubLog,
    assert_bracket,
    assert_parent_is,
    comm_id_of,
    comm_info,
    execute_ok,
    msg_type,
    send_close,
    send_data,
    send_open,
    stdout_of,
)

pytestmark = pytest.mark.integration


def labels(msgs: list[dict[str, object]]) -> list[str]:
    return [kind(m) for m in coalesce_streams(msgs)]


@pytest.mark.invariant("I1", "I2")
@pytest.mark.mpkernel_only
def test_print_send_print_order(log: IOPubLog) -> None:
    """I1 + I2: in one cell, print / comm send / print / comm send / print arrive in exactly
    that order (ipykernel lets the comm messages overtake the buffered prints)."""
    msgs = execute_ok(
        log,
        "import comm\n"
        "c = comm.create_comm(target_name='test.order', data={'x': 1})\n"
        "print('a')\n"
        "c.send({'n': 1})\n"
        "print('b')\n"
        "c.send({'n': 2})\n"
        "print('c')\n",
    )
    assert labels(msgs) == [
        "status:busy",
        "execute_input",
        "comm_open",
        "stream:stdout",
        "comm_msg",
        "stream:stdout",
        "comm_msg",
        "stream:stdout",
        "status:idle",
    ], describe(msgs)
    streams = [m["content"]["text"] for m in coalesce_streams(msgs) if msg_type(m) == "stream"]
    assert streams == ["a\n", "b\n", "c\n"]
    sends = [m["content"]["data"] for m in msgs if msg_type(m) == "comm_msg"]
    assert sends == [{"n": 1}, {"n": 2}]
    (opened,) = [m for m in msgs if msg_type(m) == "comm_open"]
    assert opened["content"]["target_name"] == "test.order"
    assert opened["content"]["data"] == {"x": 1}
    assert all(parent_id(m) == parent_id(msgs[0]) for m in msgs)
    execute_ok(log, "c.close()")


@pytest.mark.invariant("I1", "I2")
@pytest.mark.mpkernel_only
def test_interleaved_prints_and_sends_keep_program_order(log: IOPubLog) -> None:
    """I1 + I2 over 300 alternations, with stderr mixed in: the IOPub sequence is exactly the
    program's order of print(i), c.send({'i': i}) and (every 7th) a stderr write."""
    msgs = execute_ok(
        log,
        "import comm, sys\n"
        "c = comm.create_comm(target_name='test.order2')\n"
        "for i in range(300):\n"
        "    print(i)\n"
        "    c.send({'i': i})\n"
        "    if i % 7 == 0:\n"
        "        print('e', i, file=sys.stderr)\n"
        "c.close()\n",
    )
    expected: list[tuple[str, object]] = []
    for i in range(300):
        expected += [("stdout", f"{i}\n"), ("comm", i)]
        if i % 7 == 0:
            expected.append(("stderr", f"e {i}\n"))
    got: list[tuple[str, object]] = []
    for m in coalesce_streams(msgs):
        if msg_type(m) == "stream":
            # Neighbouring prints may share one stream message: split them per line.
            name = m["content"]["name"]
            got += [(name, line + "\n") for line in m["content"]["text"].splitlines()]
        elif msg_type(m) == "comm_msg":
            got.append(("comm", m["content"]["data"]["i"]))
    first = next((i for i, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e), 0)
    assert got == expected, (
        f"order differs at item {first} of {len(expected)} (got {len(got)} items): "
        f"got {got[first : first + 5]}, expected {expected[first : first + 5]}"
    )


@pytest.mark.invariant("I3", "I4")
def test_register_target_round_trip(log: IOPubLog) -> None:
    """architecture section 3 + I3 + I4: a target registered with
    comm.get_comm_manager().register_target receives a frontend comm_open (with its data) and
    comm_msgs; what the callbacks send is parented to the request being served and inside its
    busy/idle; comm_info lists the comm until the frontend closes it, and the close callback
    runs."""
    execute_ok(
        log,
        "import comm\n"
        "received = []\n"
        "def _target(c, open_msg):\n"
        "    received.append(('open', open_msg['content']['data']))\n"
        "    c.send({'opened': open_msg['content']['data']})\n"
        "    @c.on_msg\n"
        "    def _on_msg(msg):\n"
        "        received.append(('msg', msg['content']['data']))\n"
        "        c.send({'echo': msg['content']['data']})\n"
        "    @c.on_close\n"
        "    def _on_close(msg):\n"
        "        received.append(('close', msg['content']['data']))\n"
        "comm.get_comm_manager().register_target('test.inproc', _target)\n",
    )
    comm_id, open_header = send_open(log.kc, "test.inproc", {"v": 1})
    log.wait_idle(open_header["msg_id"])
    inner = assert_bracket(log.msgs, open_header["msg_id"])
    assert [msg_type(m) for m in inner] == ["comm_msg"], describe(inner)
    assert inner[0]["content"] == {"comm_id": comm_id, "data": {"opened": {"v": 1}}}
    assert_parent_is(inner[0], open_header)
    assert comm_info(log, "test.inproc") == {comm_id: {"target_name": "test.inproc"}}

    msg_header = send_data(log.kc, comm_id, {"ping": 2})
    log.wait_idle(msg_header["msg_id"])
    inner = assert_bracket(log.msgs, msg_header["msg_id"])
    assert [msg_type(m) for m in inner] == ["comm_msg"], describe(inner)
    assert inner[0]["content"]["data"] == {"echo": {"ping": 2}}
    assert_parent_is(inner[0], msg_header)

    close_header = send_close(log.kc, comm_id, {"bye": True})
    log.wait_idle(close_header["msg_id"])
    inner = assert_bracket(log.msgs, close_header["msg_id"])
    assert not [m for m in inner if comm_id_of(m) == comm_id], describe(inner)
    assert comm_id not in comm_info(log)
    out = stdout_of(execute_ok(log, "import json; print(json.dumps(received))"))
    assert json.loads(out) == [
        ["open", {"v": 1}],
        ["msg", {"ping": 2}],
        ["close", {"bye": True}],
    ]


def test_ipywidgets_slider_round_trip(log: IOPubLog) -> None:
    """architecture section 3 (ipywidgets work as with ipykernel): displaying an IntSlider opens its
    widget comms (target jupyter.widget) and shows a widget view naming its model; a
    frontend 'update' comm_msg on the model's comm sets the value in the kernel; whatever
    the kernel sends back (echo_update) is parented to that request."""
    msgs = execute_ok(log, "import ipywidgets as w\ns = w.IntSlider()\ns")
    opens = [m for m in msgs if msg_type(m) == "comm_open"]
    assert opens, describe(msgs)
    assert all(m["content"]["target_name"] == "jupyter.widget" for m in opens)
    (result,) = [m for m in msgs if msg_type(m) == "execute_result"]
    model_id = result["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert model_id in {comm_id_of(m) for m in opens}
    header = send_data(
        log.kc, model_id, {"method": "update", "state": {"value": 7}, "buffer_paths": []}
    )
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    for m in inner:
        assert msg_type(m) == "comm_msg", describe(inner)
        assert comm_id_of(m) == model_id
        assert_parent_is(m, header)
    assert stdout_of(execute_ok(log, "print(s.value)")) == "7\n"
    assert model_id in comm_info(log, "jupyter.widget")
    execute_ok(log, "s.close()")


@pytest.mark.invariant("I2")
@pytest.mark.mpkernel_only
def test_fd_level_output_before_comm_send(log: IOPubLog) -> None:
    """I2 for output written straight to fd 1/2 (C code, subprocesses): text written before
    a comm send is published before it, in a loop of 50 alternations."""
    msgs = execute_ok(
        log,
        "import comm, os\n"
        "c = comm.create_comm(target_name='test.fd')\n"
        "for i in range(50):\n"
        "    os.write(1, f'fd{i}\\n'.encode())\n"
        "    c.send({'i': i})\n"
        "c.close()\n",
    )
    got: list[object] = []
    for m in coalesce_streams(msgs):
        if msg_type(m) == "stream":
            got += m["content"]["text"].splitlines()
        elif msg_type(m) == "comm_msg":
            got.append(m["content"]["data"]["i"])
    expected: list[object] = []
    for i in range(50):
        expected += [f"fd{i}", i]
    assert got == expected, describe(msgs[:12])
