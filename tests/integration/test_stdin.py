"""The stdin channel: input()/getpass round trips, prompt ordering, an unreachable frontend.

Invariants (docs/architecture.md section 2) checked here: I8 (stdin ordering), I3 (request bracket),
and the ROUTER_MANDATORY rule of docs/architecture.md section 5 (an undeliverable input_request
fails at once).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import (
    KernelHandle,
    collect_until_idle,
    describe,
    execute,
    get_reply,
    kind,
    of_type,
    parent_id,
    recv,
    recv_for,
    run,
    run_ok,
    stream_text,
)

pytestmark = pytest.mark.integration

#: the 'before' stream must already be on its way when the prompt arrives (not a speed target)
ALREADY_SENT = 0.5


@pytest.mark.invariant("I8")
def test_prompt_does_not_overtake_earlier_output(kc: BlockingKernelClient) -> None:
    """I8 stdin ordering: output printed before input() is published before the
    input_request goes out, so once the prompt is here the output is receivable at once;
    the reply's value is what input() returns."""
    code = "print('before')\nx = input('prompt> ')\nprint('got:' + x)"
    msg_id = execute(kc, code, allow_stdin=True)
    prompt = recv_for(kc, "stdin", msg_id, what="the input_request")
    assert prompt["header"]["msg_type"] == "input_request"
    assert prompt["content"] == {"prompt": "prompt> ", "password": False}

    # The kernel sent 'before' (IOPub) before the prompt (stdin). Different sockets have no
    # common order, so allow a short deadline for delivery, but no later flush may be needed.
    before = recv(
        kc,
        "iopub",
        lambda m: parent_id(m) == msg_id and m["header"]["msg_type"] == "stream",
        timeout=ALREADY_SENT,
        what="the 'before' stream, which must have been sent before the prompt",
    )
    assert before["content"] == {"name": "stdout", "text": "before\n"}

    kc.input("typed text")
    rest = collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    assert stream_text(rest) == "got:typed text\n", describe(rest)


@pytest.mark.invariant("I3")
def test_input_request_is_inside_busy(kc: BlockingKernelClient) -> None:
    """I3: the input_request is parented to the execute_request; the execution only ends
    (idle) after the input_reply."""
    msg_id = execute(kc, "answer = input()\nanswer * 2", allow_stdin=True)
    recv_for(kc, "stdin", msg_id, what="the input_request")
    kc.input("ab")
    iopub = collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    (result,) = of_type(iopub, "execute_result")
    assert result["content"]["data"]["text/plain"] == "'abab'"


def test_input_reply_unicode(kc: BlockingKernelClient) -> None:
    """Non-ASCII text survives the stdin round trip."""
    msg_id = execute(kc, "u = input('u> ')\nprint(len(u), u)", allow_stdin=True)
    recv_for(kc, "stdin", msg_id)
    kc.input("h\u00e9llo \u2603")
    iopub = collect_until_idle(kc, msg_id)
    get_reply(kc, msg_id)
    assert stream_text(iopub) == "7 h\u00e9llo \u2603\n"


def test_getpass_sets_password_flag(kc: BlockingKernelClient) -> None:
    """getpass.getpass() sends an input_request with password true; the secret is returned
    to user code and not echoed."""
    code = "import getpass\nsecret = getpass.getpass('pw: ')\nprint(len(secret))"
    msg_id = execute(kc, code, allow_stdin=True)
    prompt = recv_for(kc, "stdin", msg_id, what="the password input_request")
    assert prompt["content"] == {"prompt": "pw: ", "password": True}
    kc.input("s3cret")
    iopub = collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    assert stream_text(iopub) == "6\n"
    assert "s3cret" not in str([m["content"] for m in iopub])


def test_two_inputs_in_one_cell(kc: BlockingKernelClient) -> None:
    """Two input() calls in one cell each get their own prompt, in order."""
    msg_id = execute(kc, "a = input('a> ')\nb = input('b> ')\nprint(a + b)", allow_stdin=True)
    first = recv_for(kc, "stdin", msg_id)
    assert first["content"]["prompt"] == "a> "
    kc.input("1")
    second = recv_for(kc, "stdin", msg_id)
    assert second["content"]["prompt"] == "b> "
    kc.input("2")
    iopub = collect_until_idle(kc, msg_id)
    get_reply(kc, msg_id)
    assert stream_text(iopub) == "12\n"


@pytest.mark.mpkernel_only
def test_input_with_unreachable_stdin_fails_fast(
    kernel_factory: Callable[..., KernelHandle],
) -> None:
    """ROUTER_MANDATORY (architecture section 5): a frontend that asks for stdin but has no stdin
    socket connected cannot receive the input_request (EHOSTUNREACH); input() raises at once with an
    error that mentions stdin, and the kernel answers the next execute."""
    handle = kernel_factory(stdin=False)
    kc = handle.kc
    ex = run(kc, "input('nobody is listening> ')", allow_stdin=True, timeout=15)
    assert ex.content["status"] == "error"
    (err,) = of_type(ex.iopub, "error")
    text = " ".join(
        [err["content"]["ename"], err["content"]["evalue"], *err["content"]["traceback"]]
    )
    assert "stdin" in text.lower(), err["content"]
    after = run_ok(kc, "print('still here')")
    assert after.stdout() == "still here\n"
    assert kind(after.iopub[0]) == "status:busy"
