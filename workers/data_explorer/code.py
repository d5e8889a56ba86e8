"""`convert_to_code`: the filters and sort keys of a view as pandas or polars code that
reproduces it on the user's variable."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mpkernel_workers.data_explorer.protocol import (
    CODE_SYNTAXES,
    bad_params,
    require_dict,
    require_list,
)


def convert_to_code(
    name: str, row_filters: Any, sort_keys: Any, syntax: Any, columns: list[str]
) -> list[str]:
    if isinstance(syntax, dict):
        # What `suggest_code_syntax` answers (`{"code_syntax_name": ...}`), sent back whole.
        syntax = syntax.get("code_syntax_name")
    if syntax not in CODE_SYNTAXES:
        raise bad_params(f"unknown code syntax {syntax!r}; use one of {list(CODE_SYNTAXES)}")
    filters = [require_dict(f, "row_filters[]") for f in require_list(row_filters, "row_filters")]
    keys = [require_dict(k, "sort_keys[]") for k in require_list(sort_keys, "sort_keys")]
    pandas = syntax == "pandas"
    lines: list[str] = []
    terms: list[tuple[str, str]] = []
    for f in filters:
        if f.get("is_valid") is False:
            continue
        col = (f.get("column_schema") or {}).get("column_name")
        if not isinstance(col, str):
            continue
        term = _pandas_term(name, col, f) if pandas else _polars_term(col, f)
        terms.append((str(f.get("condition", "and")), term))
    if terms:
        expr = f"({terms[0][1]})"
        for cond, term in terms[1:]:
            expr += f" {'|' if cond == 'or' else '&'} ({term})"
        lines.append(f"{name} = {name}[{expr}]" if pandas else f"{name} = {name}.filter({expr})")
    if keys:
        if any(not 0 <= int(k.get("column_index", -1)) < len(columns) for k in keys):
            raise bad_params("a sort key names no column")
        by = [columns[int(k["column_index"])] for k in keys]
        asc = [bool(k.get("ascending", True)) for k in keys]
        if pandas:
            lines.append(
                f"{name} = {name}.sort_values(by={by!r}, ascending={asc!r}, kind='stable', "
                "na_position='last')"
            )
        else:
            desc = [not a for a in asc]
            lines.append(
                f"{name} = {name}.sort({json.dumps(by)}, descending={desc!r}, nulls_last=True, "
                "maintain_order=True)"
            )
    return lines


def _literal(value: Any, f: dict[str, Any], pandas: bool) -> str:
    """The operand (a string on the wire) as a literal of the column's type."""
    display = (f.get("column_schema") or {}).get("type_display")
    text = str(value)
    if display in ("integer", "floating", "decimal"):
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)  # type: ignore[assignment]
            except ValueError:
                return repr(text)
        return repr(number)
    if display == "boolean":
        return "True" if text.strip().lower() == "true" else "False"
    if display in ("datetime", "date"):
        return f"pd.Timestamp({text!r})" if pandas else f"pl.lit({text!r}).str.to_datetime()"
    return repr(text)


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    """How one library spells what the filters need."""

    pandas: bool
    is_null: str
    not_null: str
    length: str
    between: str
    is_in: str


_PANDAS = _Vocabulary(True, "isna()", "notna()", "str.len()", "between", "isin")
_POLARS = _Vocabulary(False, "is_null()", "is_not_null()", "str.len_chars()", "is_between", "is_in")


def _pandas_term(name: str, col: str, f: dict[str, Any]) -> str:
    return _term(f"{name}[{col!r}]", f, _PANDAS)


def _polars_term(col: str, f: dict[str, Any]) -> str:
    return _term(f"pl.col({json.dumps(col)})", f, _POLARS)


def _term(c: str, f: dict[str, Any], say: _Vocabulary) -> str:
    """One filter as a boolean expression over the column expression `c`."""
    p = f.get("params") or {}
    kind = f.get("filter_type")
    if kind in ("is_null", "not_null"):
        return f"{c}.{say.is_null if kind == 'is_null' else say.not_null}"
    if kind in ("is_empty", "not_empty"):
        return f"{c}.{say.length} {'==' if kind == 'is_empty' else '!='} 0"
    if kind in ("is_true", "is_false"):
        return f"{c} == {kind == 'is_true'}"
    if kind == "compare":
        op = "==" if p.get("op") == "=" else p.get("op")
        return f"{c} {op} {_literal(p.get('value'), f, say.pandas)}"
    if kind in ("between", "not_between"):
        lo = _literal(p.get("left_value"), f, say.pandas)
        hi = _literal(p.get("right_value"), f, say.pandas)
        return f"{'~' if kind == 'not_between' else ''}{c}.{say.between}({lo}, {hi})"
    if kind == "set_membership":
        neg = "" if p.get("inclusive", True) else "~"
        values = ", ".join(_literal(v, f, say.pandas) for v in p.get("values") or [])
        return f"{neg}{c}.{say.is_in}([{values}])"
    if kind == "search":
        return _pandas_search(c, p) if say.pandas else _polars_search(c, p)
    raise bad_params(f"unknown filter type {kind!r}")


def _pandas_search(c: str, p: dict[str, Any]) -> str:
    term, case = p.get("term"), bool(p.get("case_sensitive", False))
    how = p.get("search_type")
    if how in ("contains", "not_contains"):
        neg = "~" if how == "not_contains" else ""
        return f"{neg}{c}.str.contains({term!r}, case={case}, regex=False)"
    if how == "regex_match":
        return f"{c}.str.contains({term!r}, case={case}, regex=True)"
    method = "startswith" if how == "starts_with" else "endswith"
    if case:
        return f"{c}.str.{method}({term!r})"
    return f"{c}.str.lower().str.{method}({str(term).lower()!r})"


def _polars_search(c: str, p: dict[str, Any]) -> str:
    term, case = str(p.get("term")), bool(p.get("case_sensitive", False))
    how = p.get("search_type")
    target = c if case else f"{c}.str.to_lowercase()"
    t = term if case else term.lower()
    if how in ("contains", "not_contains"):
        neg = "~" if how == "not_contains" else ""
        return f"{neg}{target}.str.contains({t!r}, literal=True)"
    if how == "regex_match":
        pattern = term if case else f"(?i){term}"
        return f"{c}.str.contains({pattern!r})"
    method = "starts_with" if how == "starts_with" else "ends_with"
    return f"{target}.str.{method}({t!r})"
