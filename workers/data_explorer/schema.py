"""Column schemas and the column search (`search_schema`)."""

from __future__ import annotations

import re
from typing import Any

from mpkernel_workers.data_explorer.protocol import bad_params, require_dict, require_list
from mpkernel_workers.data_explorer.tables import Table

SORT_ORDERS = ("original", "ascending_name", "descending_name", "ascending_type", "descending_type")


def column_schema(table: Table, index: int) -> dict[str, Any]:
    column = table.columns[index]
    out: dict[str, Any] = {
        "column_name": column.name,
        "column_index": index,
        "type_name": column.type_name,
        "type_display": column.display,
    }
    if column.timezone:
        out["timezone"] = column.timezone
    t = column.type
    if column.display == "decimal":
        out["precision"] = t.precision
        out["scale"] = t.scale
    return out


def search_schema(table: Table, filters: Any, sort_order: Any = "original") -> list[int]:
    if sort_order is None:
        sort_order = "original"
    if sort_order not in SORT_ORDERS:
        raise bad_params(f"unknown sort_order {sort_order!r}")
    matches = list(range(table.num_columns))
    for f in require_list(filters, "filters"):
        f = require_dict(f, "filters[]")
        params = require_dict(f.get("params"), "filters[].params")
        kind = f.get("filter_type")
        if kind == "text_search":
            keep = _text_matcher(params)
            matches = [i for i in matches if keep(table.columns[i].name)]
        elif kind == "match_data_types":
            types = set(require_list(params.get("display_types"), "display_types"))
            matches = [i for i in matches if table.columns[i].display in types]
        else:
            raise bad_params(f"unknown column filter type {kind!r}")
    if sort_order != "original":
        by_type = sort_order.endswith("_type")
        matches.sort(
            key=lambda i: (
                table.columns[i].display if by_type else table.columns[i].name.lower(),
                i,
            ),
            reverse=sort_order.startswith("descending"),
        )
    return matches


def _text_matcher(params: dict[str, Any]) -> Any:
    term = params.get("term")
    if not isinstance(term, str):
        raise bad_params("text_search needs a string term")
    sensitive = bool(params.get("case_sensitive", False))
    how = params.get("search_type")
    norm = (lambda s: s) if sensitive else str.lower
    t = norm(term)
    if how == "contains":
        return lambda name: t in norm(name)
    if how == "not_contains":
        return lambda name: t not in norm(name)
    if how == "starts_with":
        return lambda name: norm(name).startswith(t)
    if how == "ends_with":
        return lambda name: norm(name).endswith(t)
    if how == "regex_match":
        try:
            pattern = re.compile(term, 0 if sensitive else re.IGNORECASE)
        except re.error as e:
            raise bad_params(f"invalid regular expression: {e}") from e
        return lambda name: pattern.search(name) is not None
    raise bad_params(f"unknown search_type {how!r}")
