"""The variables pane over a `Preview`: a big table's row reads as the whole value's, its
columns expand as previews of columns, and a path past the head says why it fails."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from mpkernel_workers.variables import inspectors

from mpkernel.snapshots import preview

N = 300_000


def values() -> dict[str, Any]:
    return {
        "pandas": pd.DataFrame(
            {
                "a": np.arange(N),
                "s": [str(i) for i in range(N)],
                "d": pd.date_range("2020", periods=N, freq="s"),
            }
        ),
        "pandas-series": pd.Series(np.arange(N, dtype=float)),
        "polars": pl.DataFrame({"a": np.arange(N), "s": [str(i) for i in range(N)]}),
        "polars-series": pl.Series("x", np.arange(N)),
        "arrow": pa.table({"a": np.arange(N), "b": np.arange(N) * 0.5}),
        "numpy-2d": np.zeros((N // 100, 100)),
    }


@pytest.mark.parametrize("which", list(values()))
def test_a_preview_is_described_as_the_whole_value(which: str) -> None:
    value = values()[which]
    shown = preview.build(value, 1, min_bytes=0)
    assert shown is not None
    assert inspectors.describe("x", shown) == inspectors.describe("x", value)
    whole, whole_length = inspectors.children(value, 5)
    part, part_length = inspectors.children(shown, 5)
    assert part_length == whole_length
    for (key_w, child_w), (key_p, child_p) in zip(whole, part, strict=True):
        assert key_p == key_w
        described = inspectors.describe(key_p, child_p, nested=True)
        assert described == inspectors.describe(key_w, child_w, nested=True)


def test_a_path_past_the_head_is_refused_with_the_reason() -> None:
    shown = preview.build(pd.Series(np.arange(N)), 1, min_bytes=0)
    assert inspectors.resolve(shown, [5]) == 5
    with pytest.raises(LookupError, match="first 100 of 300000 rows"):
        inspectors.resolve(shown, [N - 1])


def test_a_previews_summary_has_the_whole_shape_and_no_profiles() -> None:
    shown = preview.build(values()["pandas"], 1, min_bytes=0)
    summary = inspectors.table_summary(shown, ["null_count", "summary_stats"])
    assert summary["num_rows"] == N
    assert summary["num_columns"] == 3
    profiles = [json.loads(p) for p in summary["column_profiles"]]
    assert all("null_count" not in p and "summary_stats" not in p for p in profiles)
