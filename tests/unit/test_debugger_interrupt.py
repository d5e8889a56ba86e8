"""Where an interrupt may land while debugpy traces the main thread (`in_debugger`).

debugpy's tracer is compiled (Cython): while it runs, a signal handler can see the user's
own frame, or a standard library function the tracer called, with no frame of debugpy's
above it. An exception raised there switches debugging off for the thread, so the kernel
must recognise that moment from the tracer's per-thread counter (`additional_info`,
pydevd's real class here), not only from the frames.

Run in a child interpreter: importing pydevd patches and warns process-wide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("debugpy")

CHECK = textwrap.dedent(
    """
    import json, sys, threading
    import debugpy
    from debugpy._vendored import vendored
    with vendored("pydevd"):
        from _pydevd_bundle.pydevd_additional_thread_info import PyDBAdditionalThreadInfo
    from mpkernel.debugger.namespace import in_debugger

    def user_code():
        return in_debugger(sys._getframe())

    def library_call_from_the_tracer():
        # a standard library function as the tracer would call it: its caller is the
        # user's frame, since the compiled tracer has no frame of its own
        return threading.current_thread() and in_debugger(sys._getframe())

    info = PyDBAdditionalThreadInfo()
    threading.current_thread().additional_info = info
    seen = {"user code, not tracing": user_code()}
    info.is_tracing += 1
    seen["user code, inside the tracer"] = user_code()
    seen["library call, inside the tracer"] = library_call_from_the_tracer()
    info.is_tracing -= 1
    seen["library call, not tracing"] = library_call_from_the_tracer()
    print(json.dumps(seen))
    """
)


def test_an_interrupt_inside_the_compiled_tracer_is_in_the_debugger() -> None:
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    ran = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == {
        "user code, not tracing": False,
        "user code, inside the tracer": True,
        "library call, inside the tracer": True,
        "library call, not tracing": False,
    }
