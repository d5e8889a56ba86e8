"""Unit tests of the drop-in reduction (reduce.py): what it must keep apart and what it must
treat as equal, on hand-made outputs shaped like nbclient's."""

from __future__ import annotations

import base64
import struct
import tempfile
import zlib
from typing import Any

import pytest

from tests.drop_in.reduce import (
    describe_widget,
    format_reduced,
    normalise,
    png_size,
    reduce_notebook,
    reduce_outputs,
    reduce_traceback,
    reduce_widget_state,
    visible_text,
)

pytestmark = pytest.mark.integration

ESC = "\x1b"


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def display(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def png(width: int, height: int, colour: bytes = b"\xff\x00\x00") -> str:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + colour * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(raw).decode()


def view(model_id: str) -> dict[str, Any]:
    return {"model_id": model_id, "version_major": 2, "version_minor": 0}


def test_addresses_uuids_and_ids_are_normalised() -> None:
    assert normalise("<Foo at 0x7f1bbe808f10>") == normalise("<Foo at 0x7fce1d655850>")
    assert normalise("id a87e8b4a-80cd-4734-977d-0dd1a975ccd9") == normalise(
        "id b2d2090b-e238-4f84-9141-e8f5b8bc8ab2"
    )
    assert normalise("altair-viz-d8bfdb38d7194113b127a2e149b1101e") == normalise(
        "altair-viz-8611c855e2d94a02b5288c51af25fa8a"
    )
    assert normalise('<table id="T_788de">') == normalise('<table id="T_663ab">')


def test_text_that_differs_stays_different() -> None:
    assert normalise("<Foo at 0x7f1bbe808f10>") != normalise("<Bar at 0x7f1bbe808f10>")
    assert normalise("value 41") != normalise("value 42")
    assert normalise("In [3]: x") != normalise("In [3]: y")


def test_durations_rates_clocks_and_execution_counts_are_normalised() -> None:
    assert normalise("313 ns ± 0 ns per loop") == normalise("1.2 µs ± 0 ns per loop")
    assert normalise("Wall time: 5.01 μs") == normalise("Wall time: 12 ms")
    assert normalise("sys: 1e+03 ns, total: 2 µs") == normalise("sys: 0 ns, total: 2 µs")
    assert normalise("3/3 [00:00<00:00, 12345.67it/s]") == normalise("3/3 [00:01<00:00, 2.5it/s]")
    figure_space = "\u2007"
    assert normalise(f"3/3 [00:00<00:00,{figure_space * 2}1.5it/s]") == normalise(
        f"3/3 [00:00<00:00,{figure_space}12345.6it/s]"
    )
    assert normalise("Cell In[1], line 7") == normalise("Cell In[12], line 7")
    assert normalise("Cell In[1], line 7") != normalise("Cell In[1], line 8")


def test_temporary_paths_and_ipykernel_pids_are_normalised() -> None:
    tmp = tempfile.gettempdir()
    assert normalise(f"{tmp}/ipykernel_123/99.py:2: UserWarning") == normalise(
        f"{tmp}/ipykernel_456/99.py:2: UserWarning"
    )
    # the path ends where the line number and the colours around it start
    assert normalise(f"{ESC}[32m{tmp}/x/1.py{ESC}[39m(2)") == f"{ESC}[32m<tmp path>{ESC}[39m(2)"
    assert normalise(f"{tmp}/x/1.py:2") != normalise("<ipython-input-3-abc>:2")


def test_carriage_returns_leave_the_last_redraw() -> None:
    assert visible_text("  0%|\r 50%|\r100%|\n") == "100%|\n"
    assert visible_text("hi\r\n") == "hi\n"
    assert visible_text("\r 67%|#  | 2/3  \r100%|###| 3/3\n") == "100%|###| 3/3\n"
    assert visible_text("a\rb\nc\n") != visible_text("a\rc\nc\n")


def test_streams_merge_per_name_whatever_the_split_and_interleaving() -> None:
    one = [stream("a\nb\n"), stream("warn\n", "stderr")]
    other = [stream("a\n"), stream("warn\n", "stderr"), stream("b\n")]
    assert reduce_outputs(one, {}) == reduce_outputs(other, {})
    assert reduce_outputs([stream("a\n")], {}) != reduce_outputs([stream("a\n", "stderr")], {})
    # a display between two prints keeps them apart: its position is what a person sees
    split = [stream("a\n"), display({"text/plain": "1"}), stream("b\n")]
    assert reduce_outputs(split, {}) != reduce_outputs([*one[:1], display({"text/plain": "1"})], {})


def test_png_size_and_image_summary() -> None:
    assert png_size(png(4, 3)) == (4, 3)
    assert png_size(base64.b64encode(b"GIF89a not a png at all").decode()) is None
    red = display({"image/png": png(4, 3), "text/plain": "<Figure>"})
    blue = display({"image/png": png(4, 3, b"\x00\x00\xff"), "text/plain": "<Figure>"})
    wide = display({"image/png": png(5, 3), "text/plain": "<Figure>"})
    assert reduce_outputs([red], {}) == reduce_outputs([blue], {})
    assert reduce_outputs([red], {}) != reduce_outputs([wide], {})
    assert "png 4x3" in reduce_outputs([red], {})[0][2]


def test_html_scripts_and_inlined_images_are_summarised() -> None:
    red, grey = png(2, 2), png(2, 2, b"\x01\x02\x03")
    one = display(
        {"text/html": f"<p>x</p><script>a = 1;</script><img src='data:image/png;base64,{red}'>"}
    )
    two = display(
        {"text/html": f"<p>x</p><script>b = 2;</script><img src='data:image/png;base64,{grey}'>"}
    )
    other = display({"text/html": "<div>y</div><script>var a = 1;</script>"})
    assert reduce_outputs([one], {}) == reduce_outputs([two], {})
    assert reduce_outputs([one], {}) != reduce_outputs([other], {})
    assert "base64,<2x2>" in reduce_outputs([one], {})[0][2]


def test_plotly_vega_and_bokeh_summaries() -> None:
    scatter = {"data": [{"type": "scatter", "x": [1, 2]}], "layout": {"title": {"text": "t"}}}
    scatter_other_data = {
        "data": [{"type": "scatter", "x": [3]}],
        "layout": {"title": {"text": "t"}},
    }
    bar = {"data": [{"type": "bar"}], "layout": {"title": {"text": "t"}}}
    mime = "application/vnd.plotly.v1+json"
    assert reduce_outputs([display({mime: scatter})], {}) == reduce_outputs(
        [display({mime: scatter_other_data})], {}
    )
    assert reduce_outputs([display({mime: scatter})], {}) != reduce_outputs(
        [display({mime: bar})], {}
    )
    vega = "application/vnd.vegalite.v5+json"
    chart = {"mark": "bar", "encoding": {"x": {}, "y": {}}, "datasets": {"data-1": []}}
    line = {"mark": {"type": "line"}, "encoding": {"x": {}, "y": {}}}
    assert reduce_outputs([display({vega: chart})], {}) != reduce_outputs(
        [display({vega: line})], {}
    )
    bokeh = {"application/javascript": "embed('p1001')", "application/vnd.bokehjs_exec.v0+json": ""}
    bokeh_again = {
        "application/javascript": "embed('p9999')",
        "application/vnd.bokehjs_exec.v0+json": "",
    }
    assert reduce_outputs([display(bokeh)], {}) == reduce_outputs([display(bokeh_again)], {})
    assert reduce_outputs([display(bokeh)], {}) != reduce_outputs(
        [display({"application/javascript": "embed('p1001')"})], {}
    )


def test_metadata_is_compared() -> None:
    collapsed = display({"application/json": {"a": 1}}, {"application/json": {"expanded": False}})
    expanded = display({"application/json": {"a": 1}}, {"application/json": {"expanded": True}})
    assert reduce_outputs([collapsed], {}) != reduce_outputs([expanded], {})


TRACEBACK = [
    f"{ESC}[31m{'-' * 75}{ESC}[39m",
    f"{ESC}[31mValueError{ESC}[39m{' ' * 32}Traceback (most recent call last)",
    f"{ESC}[36mCell{ESC}[39m{ESC}[36m {ESC}[39m{ESC}[32mIn[1]{ESC}[39m{ESC}[32m, line 7{ESC}[39m\n"
    f"{ESC}[32m----> {ESC}[39m{ESC}[32m7{ESC}[39m outer()\n",
    f"{ESC}[36mCell{ESC}[39m{ESC}[36m {ESC}[39m{ESC}[32mIn[1]{ESC}[39m{ESC}[32m, line 2{ESC}[39m, "
    f"in {ESC}[36minner{ESC}[39m{ESC}[34m(){ESC}[39m\n"
    f"{ESC}[32m----> {ESC}[39m{ESC}[32m2{ESC}[39m     raise ValueError('boom')\n",
    f"{ESC}[31mValueError{ESC}[39m: boom",
]
KERNEL_FRAME = (
    f"File {ESC}[32m/srv/venv/lib/python3.11/site-packages/somekernel/run.py:88{ESC}[39m, in "
    f"{ESC}[36mrun_cell{ESC}[39m{ESC}[34m(self, code){ESC}[39m\n"
    f"{ESC}[32m---> 88{ESC}[39m     exec(code)\n"
)


def test_traceback_keeps_cell_frames_and_last_line_drops_the_header() -> None:
    reduced = reduce_traceback(TRACEBACK, "ValueError", "boom")
    assert "Traceback (most recent call last)" not in reduced
    assert reduced.count("Cell") == 2
    assert reduced.endswith(f"{ESC}[31mValueError{ESC}[39m: boom")
    # colour is kept
    assert f"{ESC}[36mCell" in reduced
    renumbered = [entry.replace("In[1]", "In[5]") for entry in TRACEBACK]
    assert reduce_traceback(renumbered, "ValueError", "boom") == reduced


def test_traceback_shows_a_frame_outside_the_cells_as_a_marker() -> None:
    with_kernel_frame = [*TRACEBACK[:2], KERNEL_FRAME, *TRACEBACK[2:]]
    reduced = reduce_traceback(with_kernel_frame, "ValueError", "boom")
    assert reduced != reduce_traceback(TRACEBACK, "ValueError", "boom")
    assert "<frame outside the notebook: <site-packages>/somekernel/run.py in run_cell>" in reduced
    moved = [*TRACEBACK[:2], KERNEL_FRAME.replace("run.py:88", "run.py:90"), *TRACEBACK[2:]]
    assert reduce_traceback(moved, "ValueError", "boom") == reduced
    plain = [*TRACEBACK[:2], "  File /srv/x/somekernel/run.py:88 in run_cell\n    exec(code)\n"]
    assert "<frame outside the notebook: /srv/x/somekernel/run.py in run_cell>" in (
        reduce_traceback([*plain, TRACEBACK[-1]], "ValueError", "boom")
    )


def test_traceback_of_a_syntax_error_and_an_empty_one() -> None:
    syntax = [
        f"  {ESC}[36mCell{ESC}[39m {ESC}[32mIn[2]{ESC}[39m{ESC}[32m, line 1{ESC}[39m\n"
        f"    x = (1,\n           ^\n{ESC}[31mSyntaxError{ESC}[39m: incomplete input\n"
    ]
    reduced = reduce_traceback(syntax, "SyntaxError", "incomplete input (123.py, line 1)")
    assert reduced.split("\n")[-1] == f"{ESC}[31mSyntaxError{ESC}[39m: incomplete input"
    assert "x = (1," in reduced
    assert reduce_traceback([], "KeyError", "'k'") == "KeyError: 'k'"


def test_errors_with_different_messages_differ() -> None:
    def error(evalue: str) -> dict[str, Any]:
        tb = [*TRACEBACK[:-1], f"{ESC}[31mValueError{ESC}[39m: {evalue}"]
        return {"output_type": "error", "ename": "ValueError", "evalue": evalue, "traceback": tb}

    assert reduce_outputs([error("boom")], {}) != reduce_outputs([error("bang")], {})
    assert reduce_outputs([error("boom")], {})[0][:2] == ("error", "ValueError")


def widget_notebook(captured: str, model_id: str = "a" * 32) -> dict[str, Any]:
    """A notebook whose first cell displayed an Output widget that captured ``captured``."""
    state = {
        model_id: {
            "model_name": "OutputModel",
            "state": {"outputs": [stream(captured)], "msg_id": ""},
        },
        "b" * 32: {"model_name": "LayoutModel", "state": {}},
    }
    return {
        "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}},
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    display(
                        {
                            "application/vnd.jupyter.widget-view+json": view(model_id),
                            "text/plain": "Output()",
                        }
                    )
                ],
            },
            {"cell_type": "markdown", "source": "text"},
            {"cell_type": "code", "outputs": [stream("outside\n")]},
        ],
    }


def test_output_widget_capture_shows_in_the_cell_that_displayed_it() -> None:
    reduced = reduce_notebook(widget_notebook("inside\n"))
    assert list(reduced) == [0, 2]
    assert "inside" in reduced[0][0][2]
    assert "OutputModel" in reduced[0][0][2]
    assert reduce_notebook(widget_notebook("inside\n", "c" * 32)) == reduced
    assert reduce_notebook(widget_notebook("elsewhere\n")) != reduced


def test_widget_state_reduction() -> None:
    one = reduce_widget_state(widget_notebook("inside\n"))
    assert one == {
        "models": ["LayoutModel", "OutputModel"],
        "output_widgets": [[("stream", "stdout", "inside\n")]],
    }
    assert reduce_widget_state(widget_notebook("inside\n", "d" * 32)) == one
    assert reduce_widget_state(widget_notebook("")) != one
    assert reduce_widget_state({"cells": []}) == {"models": [], "output_widgets": []}


def test_widget_description_value_and_children() -> None:
    widgets = {
        "1" * 32: {
            "model_name": "VBoxModel",
            "state": {"children": [f"IPY_MODEL_{'2' * 32}", f"IPY_MODEL_{'3' * 32}"]},
        },
        "2" * 32: {"model_name": "IntSliderModel", "state": {"description": "x", "value": 3}},
        "3" * 32: {"model_name": "OutputModel", "state": {"outputs": [stream("double: 6\n")]}},
    }
    described = describe_widget("1" * 32, widgets)
    assert described.startswith("VBoxModel(children=[IntSliderModel(description='x', value=3)")
    assert "double: 6" in described
    moved = {**widgets, "2" * 32: {"model_name": "IntSliderModel", "state": {"value": 4}}}
    assert describe_widget("1" * 32, moved) != described
    assert describe_widget("9" * 32, widgets) == "<widget not in the stored state>"


def test_format_reduced_shows_escapes_and_empty_output() -> None:
    lines = format_reduced([("stream", "stdout", f"{ESC}[31mred{ESC}[0m\nnext")])
    assert lines == ["    [stream: stdout]", "      \\x1b[31mred\\x1b[0m", "      next"]
    assert format_reduced([]) == ["    (no output)"]
