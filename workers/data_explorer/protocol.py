"""The `positron.dataExplorer` comm's types, written from the contract
(`shared/protocol/data_explorer-*-openrpc.json`): what requests carry and what replies hold.

Only the shapes this package reads or builds are typed; params arrive as JSON objects and
are checked where they are read (a bad one is a JSON-RPC -32602).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from mpkernel_workers.api import INVALID_PARAMS, RpcError

TARGET = "positron.dataExplorer"

# Special value codes (`column_value` integers).
VALUE_NULL = 0
VALUE_NA = 1
VALUE_NAN = 2
VALUE_NAT = 3
VALUE_NONE = 4
VALUE_INF = 10
VALUE_NEGINF = 11

ColumnValue = int | str

DisplayType = Literal[
    "boolean",
    "string",
    "date",
    "datetime",
    "time",
    "interval",
    "object",
    "array",
    "struct",
    "unknown",
    "floating",
    "integer",
    "decimal",
]
NUMERIC_DISPLAY = frozenset({"floating", "integer", "decimal"})

ROW_FILTER_TYPES = (
    "between",
    "compare",
    "is_empty",
    "is_false",
    "is_null",
    "is_true",
    "not_between",
    "not_empty",
    "not_null",
    "search",
    "set_membership",
)
PROFILE_TYPES = (
    "null_count",
    "summary_stats",
    "small_frequency_table",
    "large_frequency_table",
    "small_histogram",
    "large_histogram",
)
EXPORT_FORMATS = ("csv", "tsv", "html")
CODE_SYNTAXES = ("pandas", "polars")


class FormatOptions(TypedDict, total=False):
    large_num_digits: int
    small_num_digits: int
    max_integral_digits: int
    max_value_length: int
    thousands_sep: str


class TableShape(TypedDict):
    num_rows: int
    num_columns: int


class ColumnSchema(TypedDict, total=False):
    column_name: str
    column_index: int
    type_name: str
    type_display: DisplayType
    timezone: str
    precision: int
    scale: int


class ColumnSortKey(TypedDict):
    column_index: int
    ascending: bool


class RowFilter(TypedDict, total=False):
    filter_id: str
    filter_type: str
    column_schema: ColumnSchema
    condition: Literal["and", "or"]
    is_valid: bool
    error_message: str
    params: dict[str, Any]


class FilterResult(TypedDict, total=False):
    selected_num_rows: int
    had_errors: bool


class ColumnHistogram(TypedDict):
    bin_edges: list[str]
    bin_counts: list[int]
    quantiles: list[dict[str, Any]]


class ColumnFrequencyTable(TypedDict, total=False):
    values: list[ColumnValue]
    counts: list[int]
    other_count: int


class ColumnProfileResult(TypedDict, total=False):
    null_count: int
    summary_stats: dict[str, Any]
    small_histogram: ColumnHistogram
    large_histogram: ColumnHistogram
    small_frequency_table: ColumnFrequencyTable
    large_frequency_table: ColumnFrequencyTable


def bad_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_params(f"{what} must be an object")
    return value


def require_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_params(f"{what} must be an array")
    return value


def require_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_params(f"{what} must be an integer")
    return value


def format_options(value: Any) -> FormatOptions:
    """Checked `format_options`; missing numbers take Positron's defaults."""
    raw = require_dict(value, "format_options")
    out = FormatOptions(
        large_num_digits=2, small_num_digits=4, max_integral_digits=7, max_value_length=1000
    )
    for key in ("large_num_digits", "small_num_digits", "max_integral_digits", "max_value_length"):
        if key in raw:
            out[key] = require_int(raw[key], f"format_options.{key}")
    sep = raw.get("thousands_sep")
    if sep is not None:
        if not isinstance(sep, str):
            raise bad_params("format_options.thousands_sep must be a string")
        out["thousands_sep"] = sep
    return out
