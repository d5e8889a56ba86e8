"""What the explorer does differently on big tables, to stay within a worker's memory:
distinct counts by sorting rather than hashing, and fewer columns' statistics at once."""

from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from mpkernel_workers.data_explorer import jobs, profiles


@pytest.mark.parametrize(
    "array",
    [
        pa.array(np.random.default_rng(0).integers(0, 50, 1000)),
        pa.array([datetime.date(2020, 1, 1 + i % 9) for i in range(100)]),
        pa.array(np.arange(100) % 7, pa.timestamp("ns", tz="UTC")),
        pa.array(np.arange(100) % 5, pa.duration("s")),
        pa.array([datetime.time(1, i % 4) for i in range(50)], pa.time32("s")),
        pa.array(np.arange(60, dtype=np.uint64) % 6 + 2**63, pa.uint64()),
        pa.array(np.arange(60, dtype=np.int8) % 3, pa.int8()),
    ],
    ids=["int64", "date32", "timestamp-tz", "duration", "time32", "uint64-high", "int8"],
)
def test_a_distinct_count_by_sorting_equals_the_hashed_one(array: pa.Array) -> None:
    column = pa.chunked_array([array, array.slice(0, 10)])
    assert profiles.num_unique(column) == len(pc.unique(column))
    assert profiles.num_unique(column.slice(0, 0)) == 0


def test_columns_run_in_parallel_only_while_their_temporaries_fit() -> None:
    assert jobs.profile_threads(1_000) == jobs.PROFILE_THREADS
    assert jobs.profile_threads(100_000_000) == 1
