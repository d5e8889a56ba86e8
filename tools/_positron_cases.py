"""The cases `positron_diff.py` sends to both kernels, written for this project from the
behaviours Positron's own Python tests check (test_variables.py, test_data_explorer.py):
what the variables pane lists and updates, how it displays and inspects values, how the
data explorer describes, pages, sorts, filters, searches, profiles, exports and converts
a pandas or polars table.

A case is a fresh namespace and a list of steps. A step is one of:
- `Run(code)`: an execution; its answer is the events it caused on every open comm;
- `Vars(method, params)`: a `Request` on the variables comm (opened at the case's start);
- `View(name)`: the variables pane's `view` of a table (opens its explorer);
- `Explore(name, method, params)`: a `Request` on the explorer of `name`. `Schema(i)` in
  params stands for column i's schema as that kernel's `get_schema` gives it (filters
  carry the backend's own schema back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bench_data_explorer import FORMAT  # the format options the explorer benchmarks use

__all__ = ["CASES", "FORMAT", "PANE", "Case", "Request", "Run", "Schema", "Step", "View", "key"]

PANE = "variables"


def key(name: Any) -> str:
    """A variable's or a string key's access key, as both kernels encode it."""
    return json.dumps({"type": type(name).__name__, "data": name}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Schema:
    index: int


@dataclass(frozen=True, slots=True)
class Run:
    code: str

    @property
    def label(self) -> str:
        return f"run {self.code.splitlines()[0][:40]!r}"


@dataclass(frozen=True, slots=True)
class Request:
    """A request on the variables comm (`target` "variables") or a table's explorer."""

    target: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.target}.{self.method} {self.note}".strip()


@dataclass(frozen=True, slots=True)
class View:
    name: str

    @property
    def label(self) -> str:
        return f"variables.view {self.name}"


def Vars(method: str, params: dict[str, Any] | None = None, note: str = "") -> Request:
    return Request(PANE, method, params or {}, note)


def Explore(
    name: str, method: str, params: dict[str, Any] | None = None, note: str = ""
) -> Request:
    return Request(name, method, params or {}, note)


Step = Run | Request | View


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    steps: tuple[Step, ...]


def _filter(index: int, kind: str, condition: str = "and", **params: Any) -> dict[str, Any]:
    f: dict[str, Any] = {
        "filter_id": f"{kind}-{index}",
        "filter_type": kind,
        "column_schema": Schema(index),
        "condition": condition,
        "is_valid": True,
    }
    if params:
        f["params"] = params
    return f


def _rows(first: int, last: int) -> dict[str, int]:
    return {"first_index": first, "last_index": last}


def _page(name: str, columns: int, rows: int, note: str) -> Explore:
    spec = _rows(0, rows - 1)
    selections = [{"column_index": i, "spec": spec} for i in range(columns)]
    return Explore(name, "get_data_values", {"columns": selections, "format_options": FORMAT}, note)


def _labels(name: str, rows: int, note: str) -> Explore:
    return Explore(
        name, "get_row_labels", {"selection": _rows(0, rows - 1), "format_options": FORMAT}, note
    )


VARIABLES = (
    Case(
        "variables: values, containers and their display",
        (
            Run(
                "an_int = 3\na_float = 1.5\na_str = 'hello'\na_bytes = b'xy'\n"
                "a_list = [1, 2, 3]\na_tuple = (1,)\na_set = {1}\na_none = None\n"
                "a_dict = {'a': {'c': [1, 2]}, 'n': None}\nnested = [[1, [2, [3, [4]]]]]\n"
                "a_range = range(3)\na_fn = len\nlong_text = 'x' * 300"
            ),
            Vars("list"),
            Vars("inspect", {"path": [key("a_dict")]}),
            Vars("inspect", {"path": [key("a_dict"), key("a")]}),
            Vars("inspect", {"path": [key("a_list")]}),
            Vars("inspect", {"path": [key("nested")]}),
            Vars("inspect", {"path": [key("an_int")]}, "of a scalar"),
            Vars("clipboard_format", {"path": [key("a_dict")], "format": "text/plain"}),
            Vars("inspect", {"path": [key("no_such_name")]}, "of an unknown name"),
        ),
    ),
    Case(
        "variables: updates after executions",
        (
            Run("x = 1\ny = [1]"),
            Run("y.append(2)"),
            Run("x = 2"),
            Run("pass"),
            Run("zz = 1\naa = 2\nmm = 3"),
            Run("del zz, mm, aa"),
            Run("del x"),
        ),
    ),
    Case(
        "variables: delete",
        (
            Run("d2 = 1\nd1 = 2"),
            Vars("delete", {"names": ["d2", "d1", "never_was"]}),
        ),
    ),
    Case(
        "variables: tables and arrays",
        (
            Run(
                "import numpy as np, pandas as pd, polars as pl\n"
                "frame = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\n"
                "series = pd.Series([1.0, 2.0], name='s')\n"
                "pframe = pl.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\n"
                "arr = np.arange(5)\nmatrix = np.eye(2)"
            ),
            Vars("list"),
            Vars("inspect", {"path": [key("frame")]}),
            Vars("inspect", {"path": [key("pframe")]}),
            Vars("inspect", {"path": [key("series")]}),
            Vars("clipboard_format", {"path": [key("frame")], "format": "text/plain"}),
        ),
    ),
)

# Five rows; each column with a missing value somewhere except the integers.
PANDAS_TABLE = (
    "import numpy as np, pandas as pd\n"
    "tbl = pd.DataFrame({'i': [5, 3, 1, 4, 2], 'f': [1.5, np.nan, -2.0, 0.25, 1e9],\n"
    "    's': ['pear', None, 'apple', '', 'Apple pie'], 'b': [True, False, None, True, False],\n"
    "    't': pd.to_datetime(['2024-01-05', None, '2023-12-31', '2024-01-01', '2024-03-01']),\n"
    "    'o': [1, 'a', None, 2.5, 'b']})"
)
POLARS_TABLE = (
    "import polars as pl, datetime as dt\n"
    "tbl = pl.DataFrame({'i': [5, 3, 1, 4, 2], 'f': [1.5, None, -2.0, 0.25, 1e9],\n"
    "    's': ['pear', None, 'apple', '', 'Apple pie'], 'b': [True, False, None, True, False],\n"
    "    't': [dt.datetime(2024, 1, 5), None, dt.datetime(2023, 12, 31),\n"
    "          dt.datetime(2024, 1, 1), dt.datetime(2024, 3, 1)]})"
)


def _explorer_case(lib: str, make: str, columns: int) -> Case:
    n = "tbl"
    filters = [
        ("compare >", _filter(0, "compare", op=">", value="2")),
        ("compare = on strings", _filter(2, "compare", op="=", value="apple")),
        ("between", _filter(1, "between", left_value="0", right_value="2")),
        ("not_between", _filter(1, "not_between", left_value="0", right_value="2")),
        ("is_null", _filter(1, "is_null")),
        ("not_null", _filter(2, "not_null")),
        ("is_empty", _filter(2, "is_empty")),
        ("is_true", _filter(3, "is_true")),
        ("in", _filter(2, "set_membership", values=["pear", "apple"], inclusive=True)),
        ("not in", _filter(2, "set_membership", values=["pear", "apple"], inclusive=False)),
        ("not in over numbers", _filter(1, "set_membership", values=["1.5"], inclusive=False)),
        (
            "search contains",
            _filter(2, "search", search_type="contains", term="APP", case_sensitive=False),
        ),
        (
            "search not_contains",
            _filter(2, "search", search_type="not_contains", term="app", case_sensitive=False),
        ),
        ("datetime compare", _filter(4, "compare", op=">=", value="2024-01-01")),
        (
            "and/or",
            [
                _filter(0, "compare", op=">=", value="4"),
                _filter(3, "is_false", "or"),
            ],
        ),
    ]
    steps: list[Step] = [
        Run(make),
        View(n),
        Explore(n, "get_state"),
        Explore(n, "get_schema", {"column_indices": list(range(columns))}),
        _page(n, columns, 5, "all rows"),
        _labels(n, 5, "unsorted"),
        Explore(n, "set_sort_columns", {"sort_keys": [{"column_index": 2, "ascending": True}]}),
        _page(n, columns, 5, "sorted by s"),
        _labels(n, 5, "sorted by s"),
        Explore(n, "set_sort_columns", {"sort_keys": [{"column_index": 1, "ascending": False}]}),
        _page(n, 2, 5, "sorted by f descending"),
        Explore(n, "set_sort_columns", {"sort_keys": []}),
    ]
    for note, f in filters:
        params = {"filters": f if isinstance(f, list) else [f]}
        steps += [Explore(n, "set_row_filters", params, note), _page(n, 1, 5, f"after {note}")]
    steps += [
        Explore(n, "get_state", {}, "with a filter"),
        Explore(n, "set_row_filters", {"filters": []}, "cleared"),
        Explore(
            n,
            "search_schema",
            {
                "filters": [
                    {
                        "filter_type": "text_search",
                        "params": {"search_type": "contains", "term": "s", "case_sensitive": False},
                    }
                ],
                "sort_order": "original",
            },
        ),
        Explore(n, "suggest_code_syntax"),
        Explore(
            n,
            "convert_to_code",
            {
                "column_filters": [],
                "row_filters": [_filter(0, "compare", op=">", value="2")],
                "sort_keys": [{"column_index": 0, "ascending": True}],
                "code_syntax_name": {"code_syntax_name": "polars" if lib == "polars" else "pandas"},
            },
            "with the suggested syntax object",
        ),
        Explore(
            n,
            "export_data_selection",
            {
                "selection": {
                    "kind": "cell_range",
                    "selection": {
                        "first_row_index": 0,
                        "last_row_index": 2,
                        "first_column_index": 0,
                        "last_column_index": 2,
                    },
                },
                "format": "tsv",
            },
        ),
        Explore(
            n,
            "get_column_profiles",
            {
                "callback_id": "profiles-1",
                "profiles": [
                    {
                        "column_index": i,
                        "profiles": [
                            {"profile_type": "null_count"},
                            {"profile_type": "summary_stats"},
                        ],
                    }
                    for i in range(columns)
                ],
                "format_options": FORMAT,
            },
        ),
        Run("tbl = tbl.head(3)"),
        Explore(n, "get_state", {}, "after the variable changed"),
        Run("del tbl"),
    ]
    return Case(f"data explorer: {lib}", tuple(steps))


CASES: tuple[Case, ...] = (
    *VARIABLES,
    _explorer_case("pandas", PANDAS_TABLE, 6),
    _explorer_case("polars", POLARS_TABLE, 5),
)
