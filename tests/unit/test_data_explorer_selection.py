"""The rows a filter keeps, computed block by block as pages ask for them: every page is
the same as taking it from all the positions at once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from mpkernel_workers.data_explorer import selection
from mpkernel_workers.data_explorer.selection import FilteredRows

ROWS = 10_000


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "BLOCK", 64)  # many blocks, pages across their edges


def mask(density: float, seed: int = 3) -> tuple[pa.ChunkedArray, np.ndarray]:
    keep = np.random.default_rng(seed).random(ROWS) < density
    half = ROWS // 2 + 7  # two chunks whose edge is not a block edge
    chunked = pa.chunked_array([pa.array(keep[:half]), pa.array(keep[half:])])
    return chunked, np.flatnonzero(keep)


@pytest.mark.parametrize("density", [0.0, 0.003, 0.5, 1.0])
def test_pages_match_all_positions(density: float) -> None:
    chunked, expected = mask(density)
    rows = FilteredRows(chunked)
    assert rows.count == len(expected)
    for first, count in [(0, 100), (63, 3), (64, 64), (1, 500), (len(expected) - 5, 100)]:
        if first < 0 or first >= len(expected):
            continue
        page = rows.slice(first, count).to_pylist()
        assert page == expected[first : first + count].tolist(), (first, count)
    assert rows.all().to_pylist() == expected.tolist()


def test_after_all_pages_come_from_it() -> None:
    chunked, expected = mask(0.2)
    rows = FilteredRows(chunked)
    rows.all()
    assert rows.slice(10, 20).to_pylist() == expected[10:30].tolist()


def test_an_empty_page() -> None:
    rows = FilteredRows(mask(0.0)[0])
    assert rows.slice(0, 10).to_pylist() == []
