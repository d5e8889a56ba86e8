"""The debugger through `jupyter_client`, with the DAP requests JupyterLab sends, in its order:
debugInfo, initialize, attach, configurationDone, dumpCell, setBreakpoints, then execution,
stopped events, stack, scopes, variables, stepping, continue, disconnect.

Invariants (docs/architecture.md section 2) checked here: I1/I2 (a `stopped` event never overtakes
the output printed before the breakpoint), I3 (a paused cell still ends with its reply then its
idle).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient

import mpkernel
from mpkernel.client.control import Debugger
from tests import frontend
from tests.frontend import (
    KernelHandle,
    claim,
    collect_until_idle,
    execute,
    get_reply,
    kind,
    parent_id,
    recv,
    request,
    run_ok,
    stream_text,
    wait_gone,
)
from tests.integration.comm_client import configured_kernels

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

Dap = dict[str, Any]


class DebugClient:
    """A frontend's debugger (``mpkernel.client.control.Debugger``) on the shared frontend of
    ``kc``, with the checks every request of these tests makes."""

    def __init__(self, kc: BlockingKernelClient) -> None:
        self.kc = kc
        self._debugger = Debugger(frontend.frontend(kc))

    def __call__(self, command: str, arguments: Dap | None = None, *, ok: bool = True) -> Dap:
        response, iopub = self._debugger.request(command, arguments)
        assert [kind(m) for m in iopub if kind(m).startswith("status")] == [
            "status:busy",
            "status:idle",
        ]
        if ok:
            assert response["success"], response
        return response

    def start(self) -> None:
        """What JupyterLab does when the debugger is switched on."""
        self._debugger.start()

    def event(self, name: str, *, timeout: float = 30.0) -> Dap:
        return self._debugger.event(name, timeout=timeout)

    def stop(self) -> None:
        """Disconnect, and drop the events nobody asked for (modules, threads, output)."""
        self("disconnect", {"restart": False, "terminateDebuggee": True})
        self._debugger.drop_events()

    def breakpoints(self, code: str, lines: list[int]) -> str:
        path = str(self("dumpCell", {"code": code})["body"]["sourcePath"])
        answer = self(
            "setBreakpoints",
            {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]},
        )
        assert [b["line"] for b in answer["body"]["breakpoints"]] == lines
        return path

    def variables(self, reference: int) -> dict[str, str]:
        answer = self("variables", {"variablesReference": reference})
        return {v["name"]: v["value"] for v in answer["body"]["variables"]}


@pytest.fixture
def debug(fresh_kernel: KernelHandle) -> DebugClient:
    """A started debugger on a kernel of its own; the test ends with `debug.stop()` (the
    end-of-test check, which runs before fixtures are torn down, sees every message)."""
    client = DebugClient(fresh_kernel.kc)
    client.start()
    return client


DEFINE = "def double(a):\n    b = a * 2\n    print('in double', b)\n    return b\n"


def test_kernel_info_says_debugger(kc: BlockingKernelClient) -> None:
    reply, _ = request(kc, "kernel_info_request")
    assert reply["content"]["debugger"] is True
    info = DebugClient(kc)("debugInfo")["body"]
    assert info["hashMethod"] == "Murmur2"
    assert info["isStarted"] is False
    assert info["tmpFilePrefix"].endswith("/")
    assert info["tmpFileSuffix"] == ".py"
    assert info["richRendering"]
    assert info["copyToGlobals"]


@pytest.mark.invariant("I2")
def test_breakpoint_in_a_function_from_an_earlier_cell(debug: DebugClient) -> None:
    """Break in a function an earlier cell defined; read stack and variables while paused;
    step; continue: the output printed before the stop came before the stopped event, and
    the cell ends with its output, reply and idle."""
    kc = debug.kc
    path = debug.breakpoints(DEFINE, [2])
    run_ok(kc, DEFINE)
    msg_id = execute(kc, "print('before')\nx = double(21)\nprint('after', x)")
    before = recv(kc, "iopub", lambda m: parent_id(m) == msg_id and kind(m) == "stream:stdout")
    assert before["content"]["text"] == "before\n"
    stopped = debug.event("stopped")
    assert stopped["body"]["reason"] == "breakpoint"
    thread = stopped["body"]["threadId"]
    info = debug("debugInfo")["body"]
    assert info["stoppedThreads"] == [thread]
    assert info["breakpoints"] == [{"source": path, "breakpoints": [{"line": 2}]}]

    frames = debug("stackTrace", {"threadId": thread})["body"]["stackFrames"]
    assert [(f["name"], f["line"], f["source"]["path"]) for f in frames[:1]] == [
        ("double", 2, path)
    ]
    kernel_dir = str(Path(mpkernel.__file__).parent)
    assert not [f for f in frames if f["source"].get("path", "").startswith(kernel_dir)]
    scopes = debug("scopes", {"frameId": frames[0]["id"]})["body"]["scopes"]
    assert debug.variables(scopes[0]["variablesReference"]) == {"a": "21"}
    rich = debug("richInspectVariables", {"variableName": "a", "frameId": frames[0]["id"]})
    assert rich["body"]["data"]["text/plain"] == "21"

    debug("next", {"threadId": thread})
    stepped = debug.event("stopped")
    assert stepped["body"]["reason"] == "step"
    frames = debug("stackTrace", {"threadId": thread})["body"]["stackFrames"]
    assert frames[0]["line"] == 3
    scopes = debug("scopes", {"frameId": frames[0]["id"]})["body"]["scopes"]
    assert debug.variables(scopes[0]["variablesReference"]) == {"a": "21", "b": "42"}

    debug("continue", {"threadId": thread})
    rest = collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    assert stream_text(rest) == "in double 42\nafter 42\n"
    assert debug("debugInfo")["body"]["stoppedThreads"] == []
    debug.stop()


def test_exception_breakpoint(debug: DebugClient) -> None:
    kc = debug.kc
    debug("setExceptionBreakpoints", {"filters": ["userUnhandled"]})
    code = "def fail():\n    raise ValueError('boom')\nfail()\n"
    msg_id = execute(kc, code)
    stopped = debug.event("stopped")
    assert stopped["body"]["reason"] == "exception"
    thread = stopped["body"]["threadId"]
    info = debug("exceptionInfo", {"threadId": thread})["body"]
    assert "ValueError" in info["exceptionId"] or "ValueError" in info.get("description", "")
    debug("continue", {"threadId": thread})
    collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["ename"] == "ValueError"
    debug.stop()


def test_namespace_variables_and_rich_repr_when_not_paused(debug: DebugClient) -> None:
    kc = debug.kc
    run_ok(kc, "import pandas as pd\ndf = pd.DataFrame({'n': [1, 2]})\nnested = {'k': [1, 2]}")
    names = {v["name"]: v for v in debug("inspectVariables")["body"]["variables"]}
    assert {"df", "nested"} <= set(names)
    assert not {"In", "Out", "get_ipython", "_", "_i1", "__name__"} & set(names)
    children = debug.variables(names["nested"]["variablesReference"])
    assert "'k'" in children
    rich = debug("richInspectVariables", {"variableName": "df"})["body"]
    assert {"text/html", "text/plain"} <= set(rich["data"])
    assert not debug("richInspectVariables", {"variableName": "missing"}, ok=False)["success"]
    debug.stop()


def test_rich_repr_and_copy_to_globals_while_paused(debug: DebugClient) -> None:
    kc = debug.kc
    code = (
        "import pandas as pd\ndef show():\n    local_df = pd.DataFrame({'z': [3]})\n    return 1\n"
    )
    debug.breakpoints(code, [4])
    run_ok(kc, code)
    msg_id = execute(kc, "show()")
    thread = debug.event("stopped")["body"]["threadId"]
    frame = debug("stackTrace", {"threadId": thread})["body"]["stackFrames"][0]["id"]
    rich = debug("richInspectVariables", {"variableName": "local_df", "frameId": frame})["body"]
    assert "text/html" in rich["data"]
    debug(
        "copyToGlobals",
        {"srcVariableName": "local_df", "dstVariableName": "copied", "srcFrameId": frame},
    )
    debug("continue", {"threadId": thread})
    collect_until_idle(kc, msg_id)
    get_reply(kc, msg_id)
    assert run_ok(kc, "print(copied.z[0])").stdout() == "3\n"
    debug.stop()


def test_source_modules_and_unknown_commands(debug: DebugClient) -> None:
    path = debug("dumpCell", {"code": "y = 2\n"})["body"]["sourcePath"]
    assert debug("source", {"source": {"path": path}})["body"]["content"] == "y = 2\n"
    missing = debug("source", {"source": {"path": "/nonexistent.py"}}, ok=False)
    assert missing["success"] is False
    modules = debug("modules", {"startModule": 0, "moduleCount": 0})["body"]
    assert modules["totalModules"] >= len(modules["modules"]) > 0
    unknown = debug("noSuchCommand", ok=False)
    assert unknown["success"] is False
    debug.stop()


def test_requests_before_initialize_are_refused(kc: BlockingKernelClient) -> None:
    debug = DebugClient(kc)
    for command in ("continue", "stackTrace", "setBreakpoints"):
        answer = debug(command, {"threadId": 1}, ok=False)
        assert answer["success"] is False
        assert "not started" in answer["message"]


def test_interrupt_while_paused(debug: DebugClient, fresh_kernel: KernelHandle) -> None:
    kc = debug.kc
    code = "import time\ndef wait():\n    n = 1\n    time.sleep(0.1)\n"
    debug.breakpoints(code, [3])
    run_ok(kc, code)
    msg_id = execute(kc, "wait()")
    debug.event("stopped")
    fresh_kernel.km.interrupt_kernel()
    rest = collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["ename"] == "KeyboardInterrupt"
    assert [m for m in rest if kind(m) == "error"]
    assert debug("debugInfo")["body"]["stoppedThreads"] == []
    assert run_ok(kc, "print('alive')").stdout() == "alive\n"
    # The interrupt reached the user's code, not debugpy's tracer (which would have switched
    # debugging off for the thread): the breakpoint still stops the next call.
    msg_id = execute(kc, "wait()")
    thread = debug.event("stopped")["body"]["threadId"]
    debug("continue", {"threadId": thread})
    collect_until_idle(kc, msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    debug.stop()


def test_shutdown_while_paused_leaves_no_process(
    kernel_factory: Callable[..., KernelHandle],
) -> None:
    handle = kernel_factory()
    debug = DebugClient(handle.kc)
    debug.start()
    code = "def pause():\n    p = 1\n    return p\n"
    debug.breakpoints(code, [2])
    run_ok(handle.kc, code)
    execute(handle.kc, "pause()")
    debug.event("stopped")
    processes = [psutil.Process(handle.pid), *psutil.Process(handle.pid).children(recursive=True)]
    assert len(processes) >= 2, "debugpy's adapter runs as a child of the kernel"
    reply, _ = request(handle.kc, "shutdown_request", {"restart": False}, channel="control")
    assert reply["content"]["status"] == "ok"
    assert wait_gone(processes, 15) == []
    # The paused cell ended with the shutdown; what it and the debugger sent is not this
    # test's subject, and nothing more can come from a kernel that is gone.
    for channel in ("shell", "iopub"):
        claim(handle.kc, channel, lambda m: True)
        while True:
            try:
                getattr(handle.kc, f"{channel}_channel").get_msg(timeout=0.2)
            except Empty:
                break


def test_debugger_off_in_config(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with configured_kernels(request.node, tmp_path) as start:
        handle = start("[kernel]\ndebugger = false\n")
        reply, _ = frontend.request(handle.kc, "kernel_info_request")
        assert reply["content"]["debugger"] is False
        answer = DebugClient(handle.kc)("debugInfo", ok=False)
        assert answer["success"] is False
        assert "off" in answer["message"]
