"""Which names a snapshot shows, and which ones a cell can have changed.

`visible` leaves out IPython's bookkeeping (`user_ns_hidden`, `In`, `Out`, `_`, `__`,
`___`, `_<n>`, `_i`, `_ii`, `_iii`, `_i<n>`, `_ih`, `_oh`, `_dh`) and modules.

`CellNames` reads a cell's AST: the names it loads, stores or deletes, and whether it can
touch names it does not spell out (`exec`, `eval`, `globals`, `vars`, `get_ipython`,
`from m import *`, `global` rebinding is spelled out). `reach` widens a set of names to what
the cell's code can reach through them: the global names used by the user functions it
calls (`co_names`, recursively), the methods of user classes, every name bound to the same
object (aliases), and names bound to an item or attribute of a reached container. A name
outside that set cannot have been rebound or mutated by the cell, except by code that holds
references of its own (a library, a thread): `SnapshotBuilder.now` checks everything.

Pure functions; called on the main thread.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

_HISTORY: Final = re.compile(r"_+|_\d+|_i+|_i\d+|_[iod]h|In|Out|__\w+__")
_DYNAMIC_CALLS: Final = frozenset(
    {"exec", "eval", "globals", "vars", "locals", "get_ipython", "__import__", "execfile"}
)
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Containers whose items are followed one level to find names bound to them; bigger ones
# are not walked (their own change is found by their fingerprint).
_WALK_MAX: Final = 10_000


def is_hidden(name: str, value: Any, hidden: Container[str]) -> bool:
    return (
        name in hidden
        or _HISTORY.fullmatch(name) is not None
        or isinstance(value, types.ModuleType)
    )


def visible(ns: Mapping[str, Any], hidden: Container[str]) -> dict[str, Any]:
    return {k: v for k, v in ns.items() if not is_hidden(k, v, hidden)}


@dataclass(frozen=True, slots=True)
class CellNames:
    names: frozenset[str]
    dynamic: bool  # the cell may bind or mutate names it does not spell out


def read_cell(cell: str) -> CellNames:
    """The names `cell` spells out; a cell Python cannot parse (IPython magics, shell
    escapes) counts as dynamic, with every identifier in its text as a name."""
    try:
        tree = ast.parse(cell)
    except (SyntaxError, ValueError):
        return CellNames(frozenset(_IDENTIFIER.findall(cell)), True)
    names: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
            if node.id in _DYNAMIC_CALLS:
                dynamic = True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    dynamic = True
                names.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.Attribute) and node.attr in _DYNAMIC_CALLS:
            dynamic = True
    if dynamic:  # `exec("x = 1")`, `globals()["x"]`: the names are in strings
        names.update(_IDENTIFIER.findall(cell))
    return CellNames(frozenset(names), dynamic)


def _code_names(code: types.CodeType, out: set[str]) -> None:
    out.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_names(const, out)


def _functions_of(obj: Any) -> Iterable[types.FunctionType]:
    if isinstance(obj, types.FunctionType):
        yield obj
    elif isinstance(obj, types.MethodType) and isinstance(obj.__func__, types.FunctionType):
        yield obj.__func__
    cls = obj if isinstance(obj, type) else type(obj)
    if cls.__module__ == "__main__":
        for klass in cls.__mro__:
            if klass.__module__ != "__main__":
                continue
            for member in vars(klass).values():
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if isinstance(member, types.FunctionType):
                    yield member


def _children(obj: Any) -> Iterable[Any]:
    """Items one level down, for containers small enough to walk."""
    try:
        if isinstance(obj, (types.ModuleType, type)):
            return
        if isinstance(obj, dict):
            if len(obj) <= _WALK_MAX:
                yield from obj.values()
        elif isinstance(obj, (list, tuple, set, frozenset)):
            if len(obj) <= _WALK_MAX:
                yield from obj
        else:
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict) and len(attrs) <= _WALK_MAX:
                yield from attrs.values()
    except Exception:  # noqa: BLE001 - user __getattr__/__len__ may raise anything
        return


def reach(seed: Iterable[str], ns: Mapping[str, Any]) -> set[str]:
    """The names whose value the code behind `seed` can have rebound or mutated."""
    found: set[str] = set()
    todo = [n for n in seed if n in ns]
    seen_code: set[int] = set()
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for func in _functions_of(ns[name]):
            if func.__globals__ is not ns or id(func.__code__) in seen_code:
                continue
            seen_code.add(id(func.__code__))
            more: set[str] = set()
            _code_names(func.__code__, more)
            todo.extend(n for n in more if n in ns and n not in found)
    if not found:
        return found
    # Aliases, and names bound to what a reached object holds one level down.
    ids = {id(ns[n]) for n in found}
    for n in found:
        ids.update(map(id, _children(ns[n])))
    found.update(n for n, v in ns.items() if id(v) in ids)
    return found
