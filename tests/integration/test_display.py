"""Rich output: display ids, clear_output, execute_result mimebundles, inline matplotlib, magics.

Invariants (docs/architecture.md section 2) checked here: I1 (per-sender FIFO), I2 (stream flush
before non-stream items), I3 (everything inside the request's busy/idle).
"""

from __future__ import annotations

import base64
import shutil
from textwrap import dedent

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import assert_sequence, describe, of_type, run, run_ok

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.invariant("I1")
def test_display_id_then_update_in_same_cell(kc: BlockingKernelClient) -> None:
    """I1: display(..., display_id=True) then .update() gives display_data then
    update_display_data carrying the same transient.display_id."""
    ex = run_ok(kc, "h = display('first', display_id=True)\nh.update('second')")
    assert_sequence(
        ex.iopub,
        ["status:busy", "execute_input", "display_data", "update_display_data", "status:idle"],
    )
    (shown,) = of_type(ex.iopub, "display_data")
    (updated,) = of_type(ex.iopub, "update_display_data")
    display_id = shown["content"]["transient"]["display_id"]
    assert isinstance(display_id, str)
    assert display_id
    assert updated["content"]["transient"]["display_id"] == display_id
    assert shown["content"]["data"]["text/plain"] == "'first'"
    assert updated["content"]["data"]["text/plain"] == "'second'"


@pytest.mark.invariant("I3")
def test_display_update_from_a_later_cell(kc: BlockingKernelClient) -> None:
    """I3: an update made by a later cell is parented to (and bracketed by) that later cell."""
    first = run_ok(kc, "handle = display('v1', display_id=True)")
    (shown,) = of_type(first.iopub, "display_data")
    second = run_ok(kc, "handle.update('v2')")
    assert_sequence(
        second.iopub, ["status:busy", "execute_input", "update_display_data", "status:idle"]
    )
    (updated,) = of_type(second.iopub, "update_display_data")
    assert updated["parent_header"]["msg_id"] == second.msg_id
    assert updated["content"]["transient"] == shown["content"]["transient"]


def test_explicit_display_id(kc: BlockingKernelClient) -> None:
    """display_id given as a string is kept as is, and update=True sends update_display_data."""
    code = dedent(
        """
        from IPython.display import display
        display({'text/plain': 'a'}, raw=True, display_id='my-id')
        display({'text/plain': 'b'}, raw=True, display_id='my-id', update=True)
        """
    )
    ex = run_ok(kc, code)
    (shown,) = of_type(ex.iopub, "display_data")
    (updated,) = of_type(ex.iopub, "update_display_data")
    assert shown["content"]["transient"] == {"display_id": "my-id"}
    assert updated["content"]["transient"] == {"display_id": "my-id"}
    assert updated["content"]["data"] == {"text/plain": "b"}


@pytest.mark.invariant("I2")
def test_clear_output_wait(kc: BlockingKernelClient) -> None:
    """I2: clear_output(wait=True) is a clear_output message with wait true, between the
    prints made before and after it."""
    code = (
        "from IPython.display import clear_output\nprint('x')\nclear_output(wait=True)\nprint('y')"
    )
    ex = run_ok(kc, code)
    assert_sequence(
        ex.iopub,
        [
            "status:busy",
            "execute_input",
            "stream:stdout",
            "clear_output",
            "stream:stdout",
            "status:idle",
        ],
    )
    (clear,) = of_type(ex.iopub, "clear_output")
    assert clear["content"] == {"wait": True}


def test_clear_output_default_does_not_wait(kc: BlockingKernelClient) -> None:
    """clear_output() without arguments has wait false."""
    ex = run_ok(kc, "from IPython.display import clear_output\nclear_output()")
    (clear,) = of_type(ex.iopub, "clear_output")
    assert clear["content"] == {"wait": False}


def test_rich_execute_result(kc: BlockingKernelClient) -> None:
    """An object with _repr_html_ as the cell's value gives an execute_result with both
    text/html and text/plain."""
    ex = run_ok(kc, "from IPython.display import HTML\nHTML('<i>rich</i>')")
    (result,) = of_type(ex.iopub, "execute_result")
    assert result["content"]["data"]["text/html"] == "<i>rich</i>"
    assert "text/plain" in result["content"]["data"]
    assert result["content"]["execution_count"] == ex.content["execution_count"]


def test_display_latex_and_markdown(kc: BlockingKernelClient) -> None:
    """display() of Math and Markdown objects gives display_data with their mimetypes."""
    code = dedent(
        """
        from IPython.display import Math, Markdown, display
        display(Math('x^2'))
        display(Markdown('**m**'))
        """
    )
    ex = run_ok(kc, code)
    shown = of_type(ex.iopub, "display_data")
    assert len(shown) == 2, describe(ex.iopub)
    assert "text/latex" in shown[0]["content"]["data"]
    assert shown[1]["content"]["data"]["text/markdown"] == "**m**"


def test_matplotlib_inline_png(kc: BlockingKernelClient) -> None:
    """%matplotlib inline + a plot gives a display_data with a real PNG image."""
    code = dedent(
        """
        %matplotlib inline
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([1, 3, 2])
        plt.show()
        """
    )
    ex = run_ok(kc, code, timeout=90)
    images = [m for m in of_type(ex.iopub, "display_data") if "image/png" in m["content"]["data"]]
    assert len(images) == 1, describe(ex.iopub)
    png = base64.b64decode(images[0]["content"]["data"]["image/png"])
    assert png.startswith(PNG_MAGIC)
    assert of_type(ex.iopub, "error") == []


def test_time_magic(kc: BlockingKernelClient) -> None:
    """%time runs the statement, prints timings to stdout and returns the value."""
    ex = run_ok(kc, "%time 1 + 1")
    assert "Wall time" in ex.stdout(), describe(ex.iopub)
    (result,) = of_type(ex.iopub, "execute_result")
    assert result["content"]["data"]["text/plain"] == "2"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_cell_magic(kc: BlockingKernelClient) -> None:
    """%%bash runs the cell in bash; its output comes back as a stdout stream before idle."""
    ex = run_ok(kc, "%%bash\necho hi")
    assert ex.stdout() == "hi\n", describe(ex.iopub)


def test_shell_escape(kc: BlockingKernelClient) -> None:
    """!cmd runs a shell command; its output is a stdout stream before idle."""
    ex = run_ok(kc, "!echo bang")
    assert "bang" in ex.stdout(), describe(ex.iopub)


def test_line_magic_result(kc: BlockingKernelClient) -> None:
    """A line magic's return value is the execute_result (%who_ls lists user names)."""
    run_ok(kc, "magic_visible_name = 1")
    ex = run_ok(kc, "%who_ls")
    (result,) = of_type(ex.iopub, "execute_result")
    assert "magic_visible_name" in result["content"]["data"]["text/plain"]


def test_unknown_magic_is_an_error(kc: BlockingKernelClient) -> None:
    """An unknown magic is a UsageError: an error reply, with the message shown to the user
    (IPython shows usage errors on stderr, not as a traceback)."""
    ex = run(kc, "%no_such_magic_here")
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "UsageError"
    shown = ex.stderr() + "".join(m["content"]["evalue"] for m in of_type(ex.iopub, "error"))
    assert "no_such_magic_here" in shown, describe(ex.iopub)
