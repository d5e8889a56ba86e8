"""Which names a snapshot shows, and which a cell can have changed."""

from __future__ import annotations

import types
from typing import Any

from mpkernel.snapshots import names


def test_history_and_modules_are_hidden() -> None:
    ns: dict[str, Any] = {
        n: 1
        for n in ("In", "Out", "_", "__", "___", "_3", "_i", "_ii", "_iii", "_i12", "_ih", "_oh")
    }
    ns.update(__name__="__main__", __builtins__={}, mod=types, kept=1, _private=2, hid=3)
    assert names.visible(ns, {"hid"}) == {"kept": 1, "_private": 2}


def test_read_cell_names_and_dynamic_constructs() -> None:
    cell = (
        "import os.path as p, sys\nfrom m import k\ndef f(a):\n    global g\n    g = a\nx.y = z[w]"
    )
    read = names.read_cell(cell)
    assert {"p", "sys", "k", "f", "g", "x", "z", "w"} <= read.names
    assert not read.dynamic
    for dynamic in ("exec('a = 1')", "globals()['a'] = 1", "from m import *", "get_ipython()"):
        assert names.read_cell(dynamic).dynamic, dynamic
    assert "hidden_in_a_string" in names.read_cell("exec('hidden_in_a_string = 1')").names
    magic = names.read_cell("%timeit df.sum()")
    assert magic.dynamic
    assert "df" in magic.names


def test_reach_follows_user_functions_and_methods() -> None:
    ns: dict[str, Any] = {"__name__": "__main__"}
    exec(
        "data = []\nother = {}\nuntouched = [0]\n"
        "def helper():\n    other['k'] = 1\n"
        "def f():\n    data.append(1)\n    helper()\n"
        "class C:\n    def m(self):\n        untouched.append(2)\n"
        "obj = C()\n",
        ns,
    )
    assert names.reach({"f"}, ns) >= {"f", "data", "helper", "other"}
    assert "untouched" not in names.reach({"f"}, ns)
    assert "untouched" in names.reach({"obj"}, ns)


def test_reach_adds_aliases_and_bound_items() -> None:
    inner = [1]
    ns: dict[str, Any] = {"a": inner, "b": inner, "holder": {"k": inner}, "c": [2]}
    assert names.reach({"holder"}, ns) == {"holder", "a", "b"}
    assert names.reach(set(), ns) == set()
