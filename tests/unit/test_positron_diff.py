"""The comparison logic of tools/positron_diff.py on small fixed transcripts (pure logic:
the full differential run needs Positron's sources and is a tool, not a test). What it
must never do: report what the normalisation says may differ, or miss a real difference."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

from _positron_cases import Schema, key  # noqa: E402
from _positron_compare import Exchange, compare, normalise, report  # noqa: E402
from _positron_drivers import resolve  # noqa: E402
from _positron_sources import relative_imports  # noqa: E402


def variable(name: str, value: str, **more: Any) -> dict[str, Any]:
    return {
        "access_key": key(name),
        "display_name": name,
        "display_value": value,
        "kind": "number",
        "updated_time": 1,
        **more,
    }


def update(*assigned: dict[str, Any], removed: list[str] | None = None, version: int = 0) -> Any:
    params = {"assigned": list(assigned), "unevaluated": [], "removed": removed or []}
    return {"variables": [{"method": "update", "params": {**params, "version": version}}]}


def step(label: str, answer: Any, sent: Any = None) -> Exchange:
    return Exchange("case", label, sent if sent is not None else {"code": "x"}, answer)


def test_what_legitimately_differs_is_not_a_difference() -> None:
    """Clock readings, versions, comm ids, error wording, optional nulls, and the order
    of variables are normalised away."""
    ours = [
        step("01 run", update(variable("b", "2", updated_time=7), variable("a", "1"), version=5)),
        step(
            "02 view",
            {"reply": {"jsonrpc": "2.0", "result": "0f3c"}, "events": []},
            {"method": "view"},
        ),
        step("03 bad", {"reply": {"jsonrpc": "2.0", "error": {"code": -32602, "message": "no"}}}),
        step("04 schema", {"reply": {"result": {"columns": [{"column_name": "a"}]}}}),
    ]
    theirs = [
        step("01 run", update(variable("a", "1"), variable("b", "2", updated_time=9))),
        step(
            "02 view",
            {"reply": {"jsonrpc": "2.0", "result": "77aa"}, "events": []},
            {"method": "view"},
        ),
        step("03 bad", {"reply": {"jsonrpc": "2.0", "error": {"code": -32602, "message": "No!"}}}),
        step(
            "04 schema", {"reply": {"result": {"columns": [{"column_name": "a", "scale": None}]}}}
        ),
    ]
    assert compare(ours, theirs) == []
    assert report([], 4) == "no differences in 4 steps"


def test_every_real_difference_is_reported_where_it_is() -> None:
    ours = [
        step("01 run", update(variable("a", "{'c': […]}"), removed=[key("z"), key("y")])),
        step("02 state", {"reply": {"result": {"has_row_labels": False, "n": 1}}}),
        step("03 error", {"reply": {"error": {"code": -32602, "message": "m"}}}),
        step("04 only ours", {}),
    ]
    theirs = [
        step("01 run", update(variable("a", "{'c': [1, 2]}"), removed=[key("y"), key("z")])),
        step("02 state", {"reply": {"result": {"has_row_labels": True, "n": True}}}),
        step("03 error", {"reply": {"result": {}}}),
        step("05 only theirs", {}),
    ]
    found = {(d.label, d.path): (d.ours, d.theirs) for d in compare(ours, theirs)}
    prefix = "variables[0].params"
    assert found[("01 run", f"{prefix}.assigned[0].display_value")] == (
        "{'c': […]}",
        "{'c': [1, 2]}",
    )
    # removed keeps its order: sorted on one side only is a difference
    assert found[("01 run", f"{prefix}.removed[0]")] == (key("z"), key("y"))
    assert found[("02 state", "reply.result.has_row_labels")] == (False, True)
    assert found[("02 state", "reply.result.n")] == (1, True)  # JSON tells 1 from true
    assert found[("03 error", "reply.error")] == (
        {"code": -32602, "message": "<message>"},
        "<absent>",
    )
    assert found[("04 only ours", "")] == ("<ran>", "<no such step>")
    assert found[("05 only theirs", "")] == ("<no such step>", "<ran>")
    text = report(compare(ours, theirs), 4)
    assert text.endswith(f"{len(found)} differences in 1 cases (4 steps compared)")


def test_lists_keep_their_length_difference_and_common_items() -> None:
    ours = [step("01 page", {"reply": {"result": {"columns": [["1", "2", "3"]]}}})]
    theirs = [step("01 page", {"reply": {"result": {"columns": [["1", "9"]]}}})]
    paths = {d.path: (d.ours, d.theirs) for d in compare(ours, theirs)}
    assert paths == {
        "reply.result.columns[0].length": (3, 2),
        "reply.result.columns[0][1]": ("2", "9"),
    }


def test_supported_types_compare_as_a_set() -> None:
    a = [{"row_filter_type": "between"}, {"row_filter_type": "compare"}]
    assert normalise({"supported_types": a}) == normalise({"supported_types": a[::-1]})


def test_filters_carry_each_kernel_s_own_schema() -> None:
    schemas = {2: {"column_name": "s", "type_name": "str"}}
    params = {"filters": [{"filter_type": "is_null", "column_schema": Schema(2)}]}
    assert resolve(params, schemas) == {
        "filters": [{"filter_type": "is_null", "column_schema": schemas[2]}]
    }


def test_the_sources_follow_relative_imports_only() -> None:
    text = (
        "import os\nfrom . import (a_comm,\n  b_comm)\nfrom .utils import x\n"
        "from ._vendor.pydantic import BaseModel\ndef f():\n    from .lazy import y\n"
    )
    assert relative_imports(text, "variables") == [
        "a_comm",
        "b_comm",
        "utils",
        "_vendor.pydantic",
        "lazy",
    ]
