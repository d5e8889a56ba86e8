"""Encoding user objects: big buffers out of band, descriptors for what cannot cross, and
one-off objects for a comm."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mpkernel.snapshots import codec, segments
from mpkernel.snapshots.codec import CodecError, Encoded, Unavailable


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    segments.remove_kernel_dir()


def roundtrip(value: object) -> Any:
    encoded = codec.encode(value)
    assert isinstance(encoded, Encoded)
    return codec.decode(encoded.meta, encoded.buffers)


def test_small_values_are_all_in_band() -> None:
    encoded = codec.encode({"a": [1, 2.5, "x"], "b": np.arange(10)})
    assert isinstance(encoded, Encoded)
    assert encoded.buffers == []


@pytest.mark.parametrize(
    "value",
    [
        np.arange(1_000_000, dtype=np.float64),
        pd.DataFrame({"a": np.arange(500_000.0), "b": np.arange(500_000)}),
        pa.table({"a": np.arange(500_000.0)}),
        pl.DataFrame({"a": np.arange(500_000.0), "s": [str(i) for i in range(500_000)]}),
        pl.Series("s", np.arange(500_000.0)),
    ],
    ids=["numpy", "pandas", "arrow", "polars", "polars-series"],
)
def test_big_buffers_go_out_of_band_and_come_back(value: object) -> None:
    encoded = codec.encode(value)
    assert isinstance(encoded, Encoded)
    assert encoded.buffers
    assert len(encoded.meta) < 20_000
    back = codec.decode(encoded.meta, encoded.buffers)
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert np.array_equal(back, value)  # type: ignore[arg-type]
    else:
        assert back.equals(value)  # type: ignore[attr-defined]


def test_a_buffer_is_a_view_of_the_object_not_a_copy() -> None:
    arr = np.zeros(1_000_000)
    encoded = codec.encode(arr)
    assert isinstance(encoded, Encoded)
    arr[0] = 7
    assert np.frombuffer(encoded.buffers[0], dtype=np.float64)[0] == 7


def test_unpicklable_values_become_descriptors() -> None:
    lock = threading.Lock()
    described = codec.encode(lock)
    assert isinstance(described, Unavailable)
    assert described.type_name == "_thread.lock"
    assert "cannot be pickled" in described.reason
    assert described.size > 0
    assert "lock" in described.summary


def test_a_failing_repr_still_gives_a_descriptor() -> None:
    class Bad:
        def __reduce__(self) -> str:
            raise TypeError("no")

        def __repr__(self) -> str:
            raise RuntimeError("no repr either")

    described = codec.encode(Bad())
    assert isinstance(described, Unavailable)
    assert "Bad" in described.summary


def test_functions_classes_and_modules_stay_in_the_kernel() -> None:
    for value in (len, lambda: 1, int, np):
        described = codec.encode(value)
        assert isinstance(described, Unavailable)
        assert "stay in the kernel" in described.reason


def test_objects_of_classes_defined_in_main_cross_by_value() -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec("class Point:\n    def __init__(self, x):\n        self.x = x\np = Point(3)", namespace)
    back = roundtrip(namespace["p"])
    assert type(back).__name__ == "Point"
    assert back.x == 3


def test_one_off_objects_inline_and_in_a_segment() -> None:
    assert codec.decode_object(codec.encode_object({"k": 1})) == {"k": 1}
    df = pd.DataFrame({"a": np.arange(1_000_000.0)})
    payload = codec.encode_object(df)
    assert len(payload) < 200, "the data goes through shared memory, not the pipe"
    path = payload[1:].decode()
    assert Path(path).exists()
    back = codec.decode_object(payload)
    assert back.equals(df)
    assert not Path(path).exists(), "the worker unlinks it once mapped"


def test_a_bad_object_payload_is_a_clear_error() -> None:
    with pytest.raises(CodecError):
        codec.decode_object(b"")
    with pytest.raises(CodecError):
        codec.decode_object(b"\x09junk")
    with pytest.raises(segments.SegmentError):
        codec.decode_object(b"\x01/nonexistent/segment")


def test_a_segment_directory_made_by_someone_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory's name is predictable: one that another user (or a loose mode) made
    first is never written into."""
    monkeypatch.setattr(segments, "segment_root", lambda: tmp_path)
    fake_pid = 999_999_999
    squatted = tmp_path / f"mpkernel-{os.getuid()}-{fake_pid}"
    squatted.mkdir(mode=0o777)
    squatted.chmod(0o777)
    with pytest.raises(PermissionError, match="not a private directory"):
        segments.kernel_dir(fake_pid)
    own = segments.kernel_dir(fake_pid + 1)
    assert own.stat().st_mode & 0o777 == 0o700
