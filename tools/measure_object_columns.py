"""What naming a pandas object column by its content costs when a table is opened:
pandas' `infer_dtype` over the first million rows, against the conversion to Arrow of
the whole column that opening does anyway. min / median / max over rounds, in ms.

    .venv-previous/bin/python tools/measure_object_columns.py   # pandas 2: strings are objects
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from mpkernel_workers.data_explorer import tables


def timed(f: Callable[[], object], rounds: int) -> str:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        f()
        samples.append((time.perf_counter() - start) * 1000)
    return f"{min(samples):.1f} / {statistics.median(samples):.1f} / {max(samples):.1f}"


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    rng = np.random.default_rng(0)
    column = pd.Series(rng.integers(0, 100_000, rows).astype(str), dtype=object)
    print(f"pandas {pd.__version__}, one object column of {rows:,} strings (ms min / median / max)")
    infer = timed(lambda: tables._inferred_type_name(column), 5)
    whole = timed(lambda: tables._object_column("s", column.to_numpy(), "object"), 3)
    print(f"  infer_dtype, first {tables.INFER_TYPE_ROWS:,} rows: {infer}")
    print(f"  the whole column to Arrow:          {whole}")


if __name__ == "__main__":
    main()
