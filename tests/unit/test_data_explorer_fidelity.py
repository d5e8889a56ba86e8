"""Where the data explorer answers as Positron's own Python kernel answers, beyond what the
contract says: the object form of a code syntax, "not in" over missing values, and how a
pandas object column is named. Each case is a behaviour a frontend built against that
kernel relies on (docs/positron_differences.md lists the ones kept different)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from mpkernel_workers.data_explorer import code, export
from mpkernel_workers.data_explorer.features import supported_features

from tests.unit.test_data_explorer_engine import column, make, row_filter, view_of


def test_convert_to_code_takes_the_syntax_as_suggest_code_syntax_returns_it() -> None:
    view = view_of(make("pandas"))
    filters = [row_filter(view, 1, "compare", op=">", value="2")]
    names = [c.name for c in view.table.columns]
    as_text = code.convert_to_code("df", filters, [], "pandas", names)
    as_object = code.convert_to_code("df", filters, [], {"code_syntax_name": "pandas"}, names)
    assert as_object == as_text
    polars = code.convert_to_code("df", filters, [], {"code_syntax_name": "polars"}, names)
    assert polars[0].startswith("df = df.filter(")
    with pytest.raises(Exception, match="unknown code syntax"):
        code.convert_to_code("df", filters, [], {"code_syntax_name": "dplyr"}, names)


def not_in(lib: str, values: list[Any], keep: list[str]) -> list[Any]:
    frame = {
        "pandas": pd.DataFrame({"v": values}),
        "polars": pl.DataFrame({"v": values}),
        "arrow": pa.table({"v": values}),
    }[lib]
    view = view_of(frame)
    view.set_row_filters([row_filter(view, 0, "set_membership", values=keep, inclusive=False)])
    return column(view, 0)


def test_not_in_keeps_missing_values_of_a_pandas_frame() -> None:
    """pandas' `~isin`: a missing value is in no set, so it passes "not in"."""
    assert not_in("pandas", [1.0, np.nan, 2.0, 3.0], ["2"]) == ["1.00", 2, "3.00"]  # 2: NaN
    missing, kept = not_in("pandas", ["a", None, "b"], ["a"])
    assert isinstance(missing, int)  # a missing-value code: None or NaN, by pandas version
    assert kept == "b"


@pytest.mark.parametrize("lib", ["polars", "arrow"])
def test_not_in_drops_missing_values_of_polars_and_arrow(lib: str) -> None:
    """polars' `~is_in` leaves null null, and a null mask entry drops the row."""
    assert not_in(lib, [1.0, None, 2.0, 3.0], ["2"]) == ["1.00", "3.00"]


def test_not_in_code_keeps_what_the_filter_keeps() -> None:
    frame = pd.DataFrame({"v": [1.0, np.nan, 2.0]})
    view = view_of(frame)
    filters = [row_filter(view, 0, "set_membership", values=["2"], inclusive=False)]
    view.set_row_filters(filters)
    scope: dict[str, Any] = {"df": frame, "pd": pd}
    exec("\n".join(code.convert_to_code("df", filters, [], "pandas", ["v"])), scope)
    assert len(scope["df"]) == view.num_rows == 2


@pytest.mark.parametrize(
    ("values", "type_name", "display"),
    [
        (["a", None, "b"], "string", "string"),
        ([1, None, 3], "integer", "integer"),
        ([1.5, 2.5, 3.0], "floating", "floating"),
        ([True, None, False], "bool", "boolean"),
        ([1, "a", None], "mixed-integer", "object"),
    ],
)
def test_a_pandas_object_column_is_named_by_its_content(
    values: list[Any], type_name: str, display: str
) -> None:
    frame = pd.DataFrame({"o": pd.Series(values, dtype=object)})
    (schema,) = view_of(frame).schema([0])
    assert (schema["type_name"], schema["type_display"]) == (type_name, display)


def test_typed_columns_keep_their_dtype_name() -> None:
    frame = pd.DataFrame({"f": [1.0], "i": pd.array([1], dtype="Int64")})
    assert [c["type_name"] for c in view_of(frame).schema([0, 1])] == ["float64", "Int64"]


@pytest.mark.parametrize(
    ("library", "offered"), [("pandas", ["pandas"]), ("polars", ["polars", "pandas"])]
)
def test_the_code_syntaxes_offered_are_objects_the_table_s_own_first(
    library: str, offered: list[str]
) -> None:
    """What Positron's frontend reads (`code_syntaxes[i].code_syntax_name`), as its
    kernel offers them: a pandas table pandas code, a polars table both."""
    syntaxes = supported_features(library)["convert_to_code"]["code_syntaxes"]
    assert syntaxes == [{"code_syntax_name": s} for s in offered]


def test_export_writes_a_pandas_nan_as_an_empty_cell() -> None:
    view = view_of(pd.DataFrame({"f": [1.5, np.nan], "s": ["a", None]}))
    selection = {"kind": "column_indices", "selection": {"indices": [0, 1]}}
    assert export.export_selection(view, selection, "tsv")["data"] == "f\ts\n1.5\ta\n\t"
    polars = view_of(pl.DataFrame({"f": [float("nan"), None]}))  # NaN is a value there
    one = {"kind": "column_indices", "selection": {"indices": [0]}}
    assert export.export_selection(polars, one, "csv")["data"] == 'f\nnan\n""'


def test_a_mixed_object_column_formats_each_value_by_its_type() -> None:
    """Floats among other objects follow the float rules; missing values keep their kind."""
    values = [1, "a", None, 2.5, np.nan, pd.NaT, 1e9, "x" * 5]
    frame = pd.DataFrame({"o": pd.Series(values, dtype=object)})
    view = view_of(frame)
    shown = column(view, 0)
    assert shown == ["1", "a", 4, "2.50", 2, 3, "1.00E+09", "xxxxx"]  # None, NaN, NaT codes
    view.set_sort_keys([{"column_index": 0, "ascending": True}])  # sorts by text, pages typed
    assert "2.50" in column(view, 0)
