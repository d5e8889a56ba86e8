"""Describing and expanding big values touches a bounded part of them, checked by counting
the items read (never by timing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from mpkernel_workers.variables.inspectors import children, describe

MILLION = 1_000_000


class CountingList(list[Any]):
    reads = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            CountingList.reads += 1
            yield item

    def __getitem__(self, index: Any) -> Any:
        CountingList.reads += 1
        return super().__getitem__(index)


class CountingDict(dict[Any, Any]):
    reads = 0

    def __iter__(self) -> Iterator[Any]:
        for key in super().__iter__():
            CountingDict.reads += 1
            yield key

    def __getitem__(self, key: Any) -> Any:
        CountingDict.reads += 1
        return super().__getitem__(key)


class CountingSet(set[Any]):
    reads = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            CountingSet.reads += 1
            yield item


class Counted:
    reprs = 0

    def __repr__(self) -> str:
        Counted.reprs += 1
        return "Counted()"


def test_a_list_of_a_million_dicts_reads_60_items_and_20_keys_of_each() -> None:
    # one dict a million times over: building a million distinct ones takes seconds
    rows = CountingList([CountingDict({f"k{j}": j for j in range(30)})] * MILLION)
    CountingList.reads = CountingDict.reads = 0
    variable = describe("rows", rows)
    assert variable["length"] == MILLION
    assert variable["is_truncated"]
    assert CountingList.reads == 60
    assert CountingDict.reads <= 60 * 20 * 2  # keys iterated, then looked up
    CountingList.reads = 0
    items, length = children(rows)
    assert (len(items), length) == (100, MILLION)
    assert CountingList.reads == 100


def test_a_big_dict_and_set_read_only_what_they_show() -> None:
    mapping = CountingDict({i: i for i in range(MILLION)})
    CountingDict.reads = 0
    describe("m", mapping)
    assert CountingDict.reads == 2 * 60
    CountingDict.reads = 0
    children(mapping)
    assert CountingDict.reads == 2 * 100
    values = CountingSet(range(MILLION))
    CountingSet.reads = 0
    describe("s", values)
    assert CountingSet.reads == 60


def test_a_frame_of_a_million_rows_formats_no_cell_and_a_column_only_its_head() -> None:
    obj = Counted()
    frame = pd.DataFrame({"o": pd.Series([obj] * MILLION, dtype=object), "n": np.arange(MILLION)})
    Counted.reprs = 0
    row = describe("frame", frame)
    items, _ = children(frame)
    assert Counted.reprs == 0
    assert (row["length"], row["display_type"]) == (2, f"DataFrame [{MILLION}x2]")
    assert row["size"] == frame.memory_usage(index=False, deep=False).sum()
    describe("o", items[0][1], nested=True)
    assert Counted.reprs == 20  # the nested allowance
    Counted.reprs = 0
    describe("o", frame["o"])
    assert Counted.reprs == 60


def test_a_big_object_array_formats_only_its_edges() -> None:
    array = np.empty(MILLION, dtype=object)
    array[:] = [Counted()] * MILLION
    Counted.reprs = 0
    describe("a", array)
    assert 0 < Counted.reprs <= 2 * 9  # numpy's edge items on each side
