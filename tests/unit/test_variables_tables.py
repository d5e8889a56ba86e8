"""Tables for the clipboard and for `query_table_summary`: the same data in pandas,
polars, pyarrow and numpy gives the same summary, each schema and profile is a JSON object
shaped as the data explorer's contract, and a column whose statistics fail is left out."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from mpkernel_workers.variables.inspectors import clipboard, is_table, table_summary

from tests import contracts

PROTOCOL = contracts.PROTOCOL_DIR
BACKEND = PROTOCOL / "data_explorer-backend-openrpc.json"

DATA: dict[str, list[Any]] = {
    "n": [1, 2, 3, 4],
    "f": [0.5, None, 1.5, 4.0],
    "s": ["a", "", "a", "b"],
    "b": [True, False, True, True],
}


def as_pandas() -> Any:
    frame = pd.DataFrame(DATA)
    frame["f"] = frame["f"].astype("float64")
    return frame


FRAMES = {
    "pandas": as_pandas,
    "polars": lambda: pl.DataFrame(DATA),
    "pyarrow": lambda: pa.table(DATA),
}


def schema_validator(name: str) -> Any:
    if not BACKEND.is_file():
        pytest.skip(contracts.MISSING)
    from jsonschema import Draft202012Validator

    document = json.loads(BACKEND.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    return Draft202012Validator({**schemas[name], "components": {"schemas": schemas}})


@pytest.mark.parametrize("library", sorted(FRAMES))
def test_summary_of_the_same_data_in_each_library(library: str) -> None:
    result = table_summary(FRAMES[library](), ["summary_stats", "null_count"])
    assert (result["num_rows"], result["num_columns"]) == (4, 4)
    schemas = [json.loads(s) for s in result["column_schemas"]]
    validate_schema = schema_validator("column_schema")
    for schema in schemas:
        validate_schema.validate(schema)
    assert [(s["column_name"], s["column_index"], s["type_display"]) for s in schemas] == [
        ("n", 0, "integer"),
        ("f", 1, "floating"),
        ("s", 2, "string"),
        ("b", 3, "boolean"),
    ]
    profiles = [json.loads(p) for p in result["column_profiles"]]
    validate_stats = schema_validator("column_summary_stats")
    for profile in profiles:
        validate_stats.validate(profile["summary_stats"])
    by_name = {p["column_name"]: p for p in profiles}
    assert [by_name[c]["null_count"] for c in "nfsb"] == [0, 1, 0, 0]
    assert by_name["n"]["summary_stats"]["number_stats"] == {
        "min_value": "1",
        "max_value": "4",
        "mean": "2.5",
        "median": "2.5",
        "stdev": "1.29099",  # sample standard deviation of 1..4
    }
    floats = by_name["f"]["summary_stats"]["number_stats"]
    assert (floats["min_value"], floats["max_value"], floats["mean"]) == ("0.5", "4", "2")
    assert floats["median"] == "1.5"
    assert by_name["s"]["summary_stats"]["string_stats"] == {"num_empty": 1, "num_unique": 3}
    assert by_name["b"]["summary_stats"]["boolean_stats"] == {"true_count": 3, "false_count": 1}


def test_a_numpy_matrix_is_summarised_by_column() -> None:
    result = table_summary(np.array([[1, 10], [2, 20], [3, 60]]), ["summary_stats"])
    assert (result["num_rows"], result["num_columns"]) == (3, 2)
    stats = [json.loads(p)["summary_stats"]["number_stats"] for p in result["column_profiles"]]
    assert [(s["min_value"], s["max_value"], s["median"]) for s in stats] == [
        ("1", "3", "2"),
        ("10", "60", "20"),
    ]


def test_only_the_requested_profiles_are_computed() -> None:
    result = table_summary(as_pandas(), ["null_count"])
    assert all("summary_stats" not in json.loads(p) for p in result["column_profiles"])
    result = table_summary(as_pandas(), [])
    assert [set(json.loads(p)) for p in result["column_profiles"]] == [
        {"column_name", "column_index"}
    ] * 4


def test_a_column_whose_stats_fail_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame({"ok": [1, 2], "lists": [[1], [2]]})  # lists cannot be counted
    with caplog.at_level(logging.WARNING):
        result = table_summary(frame, ["summary_stats"])
    assert result["num_columns"] == 2
    assert [json.loads(p)["column_name"] for p in result["column_profiles"]] == ["ok"]
    assert "lists" in caplog.text


def test_a_non_table_is_refused() -> None:
    assert not is_table([1, 2])
    assert not is_table(np.arange(3))  # 1-D: a column, not a table
    with pytest.raises(ValueError, match="not a table"):
        table_summary([1, 2], ["summary_stats"])


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"a": [1]}),
        pd.Series([1]),
        pl.DataFrame({"a": [1]}),
        pl.Series([1]),
        pa.table({"a": [1]}),
        np.zeros((2, 2)),
    ],
)
def test_tables_open_in_the_data_explorer(value: object) -> None:
    assert is_table(value)


def test_clipboard_of_a_frame_is_the_whole_frame() -> None:
    frame = pd.DataFrame({"a": range(1000), "b": ["x"] * 1000})
    assert clipboard(frame, "text/plain") == frame.to_csv(sep="\t")
    assert clipboard(frame, "text/html") == frame.to_html()
    series = frame["a"]
    assert clipboard(series, "text/plain") == series.to_csv(sep="\t")
    polars = pl.DataFrame({"a": [1, 2]})
    assert clipboard(polars, "text/plain") == "a\n1\n2\n"
    assert clipboard(pl.Series("s", [3]), "text/plain") == "s\n3\n"
    assert clipboard(pa.table({"a": [1, 2], "b": ["x", "y"]}), "text/plain").splitlines() == [
        '"a"\t"b"',
        '1\t"x"',
        '2\t"y"',
    ]


def test_clipboard_of_other_values_is_their_repr() -> None:
    value = {"a": "<b>&"}
    assert clipboard(value, "text/plain") == repr(value)
    assert clipboard(value, "text/html") == html.escape(repr(value))


def test_an_unknown_clipboard_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text/markdown"):
        clipboard(1, "text/markdown")
