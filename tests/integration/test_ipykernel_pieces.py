"""The pieces of ipykernel that libraries look for exist on mpkernel and mean what they mean
there: the shell's name, `IPKernelApp` in the config, ipykernel's environment, the kernel
object (`get_parent`, `session.send`, the comm manager), `set_parent`, and tracebacks that
show the user's frames only (an interrupt, a magic, `%debug` after an interrupt).

The library-level comparison with ipykernel itself is tests/drop_in; these tests check the
pieces one by one, including what ipykernel does not promise (ordering through the funnel).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.conftest import KERNEL_NAME
from tests.frontend import (
    KernelHandle,
    collect_until_idle,
    describe,
    execute,
    get_reply,
    of_type,
    parent_id,
    recv,
    recv_for,
    run,
    run_ok,
    stream_text,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_traceback(error_msg: dict[str, object]) -> str:
    content = error_msg["content"]
    assert isinstance(content, dict)
    return ANSI.sub("", "\n".join(content["traceback"]))


def test_libraries_detect_a_jupyter_kernel(shared_kernel: KernelHandle) -> None:
    """What rich, plotly, polars and tqdm read to decide they render for a Jupyter frontend,
    and the environment ipykernel gives child processes."""
    code = """
import json, os, subprocess, sys
ip = get_ipython()
import rich.console, polars._utils.various as pv, plotly.io as pio
import tqdm.auto, tqdm.notebook
print(json.dumps({
    "shell": type(ip).__name__,
    "connection_file": ip.config.IPKernelApp.get("connection_file"),
    "rich": rich.console._is_jupyter(),
    "polars": pv._in_notebook(),
    "plotly": pio.renderers.default,
    "tqdm": issubclass(tqdm.auto.tqdm, tqdm.notebook.tqdm),
    "child_env": subprocess.run(
        [sys.executable, "-c", "import os, json; print(json.dumps({k: os.environ.get(k) "
         "for k in ('CLICOLOR', 'CLICOLOR_FORCE', 'FORCE_COLOR', 'PAGER', 'GIT_PAGER', 'TERM')}))"],
        capture_output=True, text=True, check=True).stdout,
}))
"""
    ex = run_ok(shared_kernel.kc, code)
    facts = json.loads(ex.stdout())
    assert facts["shell"] == "ZMQInteractiveShell"
    assert facts["connection_file"] == shared_kernel.km.connection_file
    assert facts["rich"] is True
    assert facts["polars"] is True
    assert facts["plotly"] == "plotly_mimetype"
    assert facts["tqdm"] is True
    assert json.loads(facts["child_env"]) == {
        "CLICOLOR": "1",
        "CLICOLOR_FORCE": "1",
        "FORCE_COLOR": "1",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "TERM": "xterm-color",
    }


def test_a_chosen_plotly_renderer_is_kept(fresh_kernel: KernelHandle) -> None:
    """The plotly default is only set when the user did not choose one."""
    code = (
        "import os\nos.environ['PLOTLY_RENDERER'] = 'json'\n"
        "import plotly.io as pio\nprint(pio.renderers.default)"
    )
    assert run_ok(fresh_kernel.kc, code).stdout() == "json\n"


def test_get_parent_is_the_request_being_served(kc: BlockingKernelClient) -> None:
    code = """
k = get_ipython().kernel
print(k.get_parent()['header']['msg_id'], get_ipython().get_parent()['msg_id'])
print(k.get_parent('control'), k._parent_header['header']['msg_type'])
print(k.comm_manager is __import__('comm').get_comm_manager(), k.implementation)
"""
    ex = run_ok(kc, code)
    lines = ex.stdout().splitlines()
    assert lines == [f"{ex.msg_id} {ex.msg_id}", "{} execute_request", "True mpkernel"]


def test_session_send_publishes_in_program_order(kc: BlockingKernelClient) -> None:
    """A library publishing with `kernel.session.send(kernel.iopub_socket, ...)` gets its
    message between the prints around it, parented to the request (I1, I2)."""
    code = """
import os
k = get_ipython().kernel
print('before')
os.write(1, b'fd text\\n')
k.session.send(k.iopub_socket, 'display_data',
               {'data': {'text/plain': 'sent'}, 'metadata': {}}, parent=k.get_parent())
k.send_response(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'responded\\n'})
print('after')
"""
    ex = run_ok(kc, code)
    shown = [
        m["content"].get("text") or m["content"]["data"]["text/plain"]
        for m in ex.outputs
        if m["header"]["msg_type"] in ("stream", "display_data")
    ]
    assert "".join(shown) == "before\nfd text\nsentresponded\nafter\n", describe(ex.iopub)
    assert shown.index("sent") < shown.index("after\n")
    assert all(parent_id(m) == ex.msg_id for m in ex.outputs)


def test_session_send_refuses_other_sockets(kc: BlockingKernelClient) -> None:
    ex = run(kc, "k = get_ipython().kernel\nk.session.send(object(), 'stream', {})")
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "ValueError"
    assert "iopub_socket" in ex.content["evalue"]


def test_set_parent_moves_outputs(kc: BlockingKernelClient) -> None:
    """`set_parent` (ipywidgets' Output calls it) parents prints and displays to the
    message it is given; the next request is served under its own parent again."""
    code = """
ip = get_ipython()
own = ip.get_parent()
ip.set_parent({'header': {'msg_id': 'elsewhere', 'msg_type': 'execute_request'}})
print('moved')
display('moved too')
ip.set_parent(own)
print('back')
"""
    msg_id = execute(kc, code)
    moved = [
        recv(kc, "iopub", lambda m: parent_id(m) == "elsewhere", what="an output for 'elsewhere'")
        for _ in range(2)
    ]
    assert [m["header"]["msg_type"] for m in moved] == ["stream", "display_data"]
    iopub = collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    assert stream_text(iopub) == "back\n"
    assert run_ok(kc, "print('next')").stdout() == "next\n"


def test_output_widget_captures_by_request(kc: BlockingKernelClient) -> None:
    """ipywidgets' Output sets its msg_id to the request being served before the print and
    clears it after: the frontend routes the print into the widget."""
    run_ok(kc, "import ipywidgets\no = ipywidgets.Output()\ndisplay(o)")
    ex = run_ok(kc, "with o:\n    print('inside')")
    sequence = []
    for m in ex.outputs:
        if m["header"]["msg_type"] == "comm_msg":
            sequence.append(("msg_id", m["content"]["data"]["state"]["msg_id"]))
        elif m["header"]["msg_type"] == "stream":
            sequence.append(("stream", m["content"]["text"]))
    assert sequence == [("msg_id", ex.msg_id), ("stream", "inside\n"), ("msg_id", "")]


def test_interrupt_traceback_shows_user_frames_only(
    kernel_factory: Callable[..., KernelHandle],
) -> None:
    """An interrupted cell's traceback ends in the user's frame, and `%debug` then opens in
    that frame (its locals are the user's)."""
    handle = kernel_factory(KERNEL_NAME)
    code = (
        "import time\ndef wait(seconds):\n    time.sleep(seconds)\n"
        "print('go', flush=True)\nwait(30)"
    )
    msg_id = execute(handle.kc, code)
    recv(
        handle.kc,
        "iopub",
        lambda m: parent_id(m) == msg_id and m["header"]["msg_type"] == "stream",
        what="the cell's first print",
    )
    handle.km.interrupt_kernel()
    iopub = collect_until_idle(handle.kc, msg_id)
    get_reply(handle.kc, msg_id)
    (error,) = of_type(iopub, "error")
    text = plain_traceback(error)
    assert error["content"]["ename"] == "KeyboardInterrupt"
    assert "mpkernel" not in text, text
    frames = [line for line in text.splitlines() if line.startswith(("Cell In", "File "))]
    assert frames[-1].endswith("in wait(seconds)"), text

    debug_id = execute(handle.kc, "%debug", allow_stdin=True)
    recv_for(handle.kc, "stdin", debug_id, what="pdb's prompt")
    handle.kc.input("p seconds")
    recv_for(handle.kc, "stdin", debug_id, what="pdb's second prompt")
    handle.kc.input("q")
    out = collect_until_idle(handle.kc, debug_id)
    assert get_reply(handle.kc, debug_id)["content"]["status"] == "ok"
    assert "30" in stream_text(out).splitlines(), describe(out)


def test_magic_error_shows_no_kernel_frames(kc: BlockingKernelClient) -> None:
    ex = run(kc, "%view no_such_name")
    (error,) = of_type(ex.iopub, "error")
    assert error["content"]["ename"] == "NameError"
    assert "mpkernel" not in plain_traceback(error)


def test_cell_outputs_are_in_ipythons_history(kc: BlockingKernelClient) -> None:
    """Stream text reaches `history_manager.outputs` as IPython's own recording puts it
    there (`%notebook` reads it): one entry per run of one stream, displays not recorded
    (ipykernel's default), nothing while a traceback is shown, and a cell run from a cell
    counted in both."""
    first = run_ok(
        kc,
        "import sys\nprint('a'); print('b', file=sys.stderr); print('c')\n"
        "display('shown'); print('d', end=''); print('e')\n",
    )
    failed = run(kc, "print('before'); 1/0")
    nested = run_ok(kc, "get_ipython().run_cell(\"print('inner')\"); print('outer')")
    counts = [ex.content["execution_count"] for ex in (first, failed, nested)]
    code = f"""
def entries(n):
    return [
        (o.output_type, "".join(o.bundle["stream"]) if "stream" in o.bundle else sorted(o.bundle))
        for o in get_ipython().history_manager.outputs[n]
    ]
print(repr([entries(n) for n in {counts}]))
"""
    got = ast.literal_eval(run_ok(kc, code).stdout())
    assert got[0] == [
        ("out_stream", "a\n"),
        ("err_stream", "b\n"),
        ("out_stream", "c\nde\n"),
    ]
    assert got[1] == [("out_stream", "before\n")]
    assert got[2] == [("out_stream", "inner\nouter\n")]
