"""The `positron.variables` comm's messages as types: the current contract.

Written from `notes/positron-comms.md` section 3 (the vendored OpenRPC files predate
`updated_time`, the kind `connection`, `unevaluated`, the `{content}` clipboard reply and
`query_table_summary`; section 3.4 lists the differences). TypedDicts cost nothing at run
time and let mypy check every key the worker builds.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "MAX_CHILDREN",
    "MAX_ITEMS",
    "FormattedVariable",
    "InspectedVariable",
    "QueryTableSummaryResult",
    "RefreshParams",
    "UpdateParams",
    "Variable",
    "VariableKind",
    "VariableList",
]

# Positron's own limits (notes 5.2): an update with more assigned or removed items than
# MAX_ITEMS becomes a refresh; an expansion shows at most MAX_CHILDREN children.
MAX_ITEMS = 10_000
MAX_CHILDREN = 100

VariableKind = Literal[
    "boolean",
    "bytes",
    "class",
    "collection",
    "empty",
    "function",
    "map",
    "number",
    "other",
    "string",
    "table",
    "lazy",
    "connection",
]


class Variable(TypedDict):
    """One row of the pane. Every field is required in the current contract."""

    access_key: str
    display_name: str
    display_value: str
    display_type: str
    type_info: str
    size: int
    kind: VariableKind
    length: int
    has_children: bool
    has_viewer: bool
    is_truncated: bool
    updated_time: int


class VariableList(TypedDict):
    """Reply to `list`: `length` may exceed `len(variables)` when the list was cut."""

    variables: list[Variable]
    length: int
    version: int


class InspectedVariable(TypedDict):
    """Reply to `inspect`."""

    children: list[Variable]
    length: int


class FormattedVariable(TypedDict):
    """Reply to `clipboard_format`."""

    content: str


class QueryTableSummaryResult(TypedDict):
    """Reply to `query_table_summary`: each schema and profile is a JSON-encoded object."""

    num_rows: int
    num_columns: int
    column_schemas: list[str]
    column_profiles: list[str]


class UpdateParams(TypedDict):
    """The `update` event: `removed` holds access keys."""

    assigned: list[Variable]
    unevaluated: list[Variable]
    removed: list[str]
    version: int


class RefreshParams(TypedDict):
    """The `refresh` event."""

    variables: list[Variable]
    length: int
    version: int
