"""The debugger's sans-I/O pieces: cell file names (MurmurHash2 as JupyterLab computes it)
and DAP framing over a byte stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ipykernel.compiler import murmur2_x86  # the reference JupyterLab's hash agrees with

from mpkernel.debugger.cells import HASH_SEED, CellFiles, murmur2
from mpkernel.debugger.dap import DapError, DapReader, frame


@given(st.text(max_size=200), st.integers(min_value=0, max_value=2**32 - 1))
def test_murmur2_matches_the_reference(text: str, seed: int) -> None:
    data = text.encode("utf-8", "surrogatepass")
    try:
        expected = murmur2_x86(text, seed)
    except UnicodeEncodeError:  # the reference cannot hash lone surrogates; neither can a cell
        return
    assert murmur2(data, seed) == expected


def test_cell_names_follow_the_announced_prefix_and_suffix() -> None:
    cells = CellFiles()
    name = cells.name("x = 1\n")
    digest = murmur2(b"x = 1\n", HASH_SEED)
    assert name == f"{cells.prefix}{digest}.py"
    assert cells.name("x = 2\n") != name


def test_dump_writes_the_source_and_remove_deletes_it(tmp_path: Path) -> None:
    cells = CellFiles(tmp_path / "cells")
    path = Path(cells.dump("print('é')\n"))
    assert path.read_text(encoding="utf-8") == "print('é')\n"
    assert str(path) == cells.name("print('é')\n")
    cells.remove()
    assert not path.parent.exists()


MESSAGES = [
    {"type": "event", "seq": 1, "event": "initialized"},
    {"type": "response", "seq": 2, "request_seq": 7, "success": True, "body": {"x": "é" * 50}},
]


@pytest.mark.parametrize("chunk", [1, 3, 17, 10_000])
def test_reader_reassembles_messages_in_any_chunking(chunk: int) -> None:
    stream = b"".join(frame(m) for m in MESSAGES)
    reader = DapReader()
    got: list[dict[str, object]] = []
    for start in range(0, len(stream), chunk):
        got += reader.feed(stream[start : start + chunk])
    assert got == MESSAGES


def test_frame_counts_bytes_not_characters() -> None:
    data = frame({"text": "é"})
    header, body = data.split(b"\r\n\r\n")
    assert header == b"Content-Length: %d" % len(body)
    assert json.loads(body) == {"text": "é"}


@pytest.mark.parametrize(
    "bad",
    [b"Content-Type: x\r\n\r\n{}", b"Content-Length: x\r\n\r\n{}", b"Content-Length: 2\r\n\r\n[]"],
)
def test_reader_refuses_what_is_not_dap(bad: bytes) -> None:
    with pytest.raises(DapError):
        DapReader().feed(bad)
