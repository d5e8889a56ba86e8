"""What this backend supports, as `get_state` advertises it (honestly: every feature here
is implemented and tested)."""

from __future__ import annotations

from typing import Any

from mpkernel_workers.data_explorer.protocol import (
    EXPORT_FORMATS,
    PROFILE_TYPES,
    ROW_FILTER_TYPES,
)


def supported_features(code_syntax: str = "pandas") -> dict[str, Any]:
    """`code_syntax`: the table's library. A polars table is offered pandas code too, as
    Positron's kernel offers it (code for the same view once the frame is in pandas)."""
    syntaxes = [code_syntax] if code_syntax == "pandas" else [code_syntax, "pandas"]
    yes = "supported"
    return {
        "search_schema": {
            "support_status": yes,
            "supported_types": [
                {"column_filter_type": "text_search", "support_status": yes},
                {"column_filter_type": "match_data_types", "support_status": yes},
            ],
        },
        "set_column_filters": {"support_status": "unsupported", "supported_types": []},
        "set_row_filters": {
            "support_status": yes,
            "supports_conditions": yes,
            "supported_types": [
                {"row_filter_type": t, "support_status": yes} for t in ROW_FILTER_TYPES
            ],
        },
        "get_column_profiles": {
            "support_status": yes,
            "supported_types": [{"profile_type": t, "support_status": yes} for t in PROFILE_TYPES],
        },
        "set_sort_columns": {"support_status": yes},
        "export_data_selection": {"support_status": yes, "supported_formats": list(EXPORT_FORMATS)},
        "convert_to_code": {
            "support_status": yes,
            # Objects, not the bare names the schema's `code_syntax_name` suggests: what
            # Positron's generated models and its frontend send and read.
            "code_syntaxes": [{"code_syntax_name": s} for s in syntaxes],
        },
    }
