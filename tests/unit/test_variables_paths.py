"""Expanding a value (`children`) and walking a path (`child`, `resolve`): every key
`children` gives leads back to the same child, through encoding as an access key."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from mpkernel_workers.variables.access_keys import decode_key, encode_key
from mpkernel_workers.variables.inspectors import child, children, describe, resolve

from tests.unit.test_variables_contract_schema import assert_valid


def same(a: Any, b: Any) -> bool:
    for method in ("equals",):  # pandas and polars compare whole columns this way
        if hasattr(a, method) and not isinstance(a, np.ndarray):
            return bool(getattr(a, method)(b))
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


def round_trip(value: object) -> list[tuple[object, object]]:
    """Each child again by its key after the key went through an access key."""
    items, _ = children(value)
    for key, item in items:
        again = child(value, decode_key(encode_key(key)))
        assert same(again, item), (key, again, item)
        assert_valid(describe(key, item, nested=True))
    return items


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        (
            {"a": 1, 2: "b", None: 3, (1, "x"): 4, 1.5: 5, b"k": 6},
            ["a", 2, None, (1, "x"), 1.5, b"k"],
        ),
        ([10, 20, 30], [0, 1, 2]),
        ((10, 20), [0, 1]),
        ({"only"}, [0]),
        (np.array([0, 1]), [0, 1]),
        (np.array([[0, 1], [2, 3]]), [0, 1]),
        (pd.Series({"a": 0, "b": 1}), [0, 1]),
        (pd.Index([0, 1]), [0, 1]),
        (pd.DataFrame({"a": [1, 2], "b": ["3", "4"]}), [0, 1]),
        (pl.DataFrame({"a": [1, 2], "b": ["3", "4"]}), ["a", "b"]),
        (pl.Series([0, 1]), [0, 1]),
        (pa.table({"a": [1, 2], "b": ["3", "4"]}), [0, 1]),
    ],
)
def test_children_keys_as_positron_gives_them(value: Any, keys: list[object]) -> None:
    items = round_trip(value)
    assert [k for k, _ in items] == keys
    assert children(value)[1] == len(keys)


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        (pd.Series({"a": 0, "b": 1}), 0, 0),
        (pl.Series([0, 1]), 0, 0),
        (pd.DataFrame({"a": [1, 2], "b": ["3", "4"]}), 0, pd.Series([1, 2], name="a")),
        (pl.DataFrame({"a": [1, 2], "b": ["3", "4"]}), "a", pl.Series("a", [1, 2])),
        (pd.Index([0, 1]), 0, 0),
        (
            pd.Index([datetime.datetime(2021, 1, d, tzinfo=datetime.timezone.utc) for d in (1, 2)]),
            0,
            datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc),
        ),
        (np.array([0, 1]), 0, 0),
        (np.array([[0, 1], [2, 3]]), 0, np.array([0, 1])),
        (pa.table({"a": [1, 2]}), 0, pa.chunked_array([[1, 2]])),
    ],
)
def test_child(value: Any, key: object, expected: Any) -> None:
    assert same(child(value, key), expected)


def test_a_frame_column_is_shown_by_name_and_reached_by_position() -> None:
    frame = pd.DataFrame([[1, 2, 3]], columns=["x", "x", "y"])  # names repeat
    items, length = children(frame)
    assert length == 3
    rows = [describe(key, column, nested=True) for key, column in items]
    assert [r["display_name"] for r in rows] == ["x", "x", "y"]
    assert [decode_key(r["access_key"]) for r in rows] == [0, 1, 2]
    assert list(child(frame, 1)) == [2]


def test_a_series_with_repeated_labels_is_shown_by_label_and_reached_by_position() -> None:
    # Positron issue #3388
    series = pd.Series([0, 1, 2, 3], index=[0, 1, 0, 1])
    items, _ = children(series)
    assert [describe(k, v, nested=True)["display_name"] for k, v in items] == ["0", "1", "0", "1"]
    assert [decode_key(encode_key(k)) for k, _ in items] == [0, 1, 2, 3]
    assert [child(series, i) for i in range(4)] == [0, 1, 2, 3]


def test_nested_paths_through_every_family() -> None:
    root = {
        "frame": pd.DataFrame({"a": [1, 2], "b": [{"deep": (5, {6})}, None]}),
        "list": [(0, np.array([[1, 2], [3, 4]]))],
        "polars": pl.DataFrame({"p": [7, 8]}),
        "arrow": pa.table({"q": ["u", "v"]}),
    }
    assert resolve(root, ["frame", 1, 0, "deep", 1, 0]) == 6
    assert resolve(root, ["list", 0, 1, 1, 0]) == 3
    assert resolve(root, ["polars", "p", 1]) == 8
    assert resolve(root, ["arrow", 0, 1]) == "v"
    assert resolve(root, []) is root


@pytest.mark.parametrize(
    ("value", "key", "message"),
    [
        ({"a": 1}, "b", "no key 'b'"),
        ({"a": 1}, [1], "no key"),
        ([1, 2], 2, "out of range"),
        ([1, 2], "0", "by position"),
        ([1, 2], True, "by position"),
        (pd.DataFrame({"a": [1]}), 1, "out of range"),
        (pd.DataFrame({"a": [1]}), "a", "by its position"),
        (pl.DataFrame({"a": [1]}), "b", "no column 'b'"),
        (np.array(5), 0, "out of range"),
        (42, 0, "has no children"),
        ("text", 0, "has no children"),
    ],
)
def test_a_bad_key_is_a_lookup_error_that_says_why(value: Any, key: object, message: str) -> None:
    with pytest.raises(LookupError, match=message):
        child(value, key)


def test_a_bad_step_in_a_path_names_the_step() -> None:
    with pytest.raises(LookupError, match="step 2 of the path"):
        resolve({"a": [1]}, ["a", 5])


class Thing:
    _calls = 0

    def __init__(self) -> None:
        self.plain = 1
        self._hidden = 2

    @property
    def costly(self) -> int:
        Thing._calls += 1
        return 3

    @property
    def broken(self) -> int:
        raise ValueError("cannot compute")

    def method(self) -> int:
        return 4


def test_object_attributes_and_properties_each_evaluated_once() -> None:
    thing = Thing()
    Thing._calls = 0
    row = describe("t", thing)
    assert Thing._calls == 0  # describing does not run properties
    assert row["length"] == 4
    items = dict(children(thing)[0])
    assert Thing._calls == 1
    assert sorted(items) == ["broken", "costly", "method", "plain"]
    assert items["plain"] == 1
    assert items["costly"] == 3
    assert items["method"]() == 4  # type: ignore[operator]
    broken = describe("broken", items["broken"], nested=True)
    assert_valid(broken)
    assert broken["display_value"] == "<broken raised ValueError: cannot compute>"
    assert "raised ValueError" in repr(child(thing, "broken"))
    with pytest.raises(LookupError, match="no attribute 'absent'"):
        child(thing, "absent")


def test_a_class_expands_to_its_public_attributes() -> None:
    items, length = children(Thing)
    assert [k for k, _ in items] == ["broken", "costly", "method"]
    assert length == 3


@pytest.mark.parametrize(
    "value", [len, lambda: 1, datetime.date(2020, 1, 1), range(5), "abc", pd.RangeIndex(3)]
)
def test_values_that_do_not_expand(value: object) -> None:
    assert children(value) == ([], 0)
    assert describe("v", value)["has_children"] is False


def test_children_stop_at_the_limit_and_report_the_true_length() -> None:
    items, length = children(list(range(500)), 100)
    assert (len(items), length) == (100, 500)
    items, length = children({i: i for i in range(300)}, 7)
    assert (len(items), length) == (7, 300)
    items, length = children(pd.DataFrame(np.zeros((2, 150))), 100)
    assert (len(items), length) == (100, 150)


def test_a_mapping_whose_item_raises_shows_the_error_as_the_child() -> None:
    class Flaky(dict[str, int]):
        def __getitem__(self, key: str) -> int:
            raise KeyError(key)

    items, _ = children(Flaky(a=1))
    assert "raised KeyError" in describe("a", items[0][1], nested=True)["display_value"]
