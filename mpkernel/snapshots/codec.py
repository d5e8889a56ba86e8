"""User objects to bytes and back: pickle protocol 5 with out-of-band buffers.

`encode` runs in the main process: the pickle stream (`meta`) stays small because every
contiguous buffer of at least `OUT_OF_BAND_MIN` bytes (numpy, pandas blocks, Arrow buffers)
is left out of it and handed back as a view, never copied here. polars frames travel as
Arrow tables (`to_arrow` shares their memory; polars' own pickling writes an IPC copy in
band). Functions, classes and modules stay in the kernel, and what cannot be pickled
becomes an `Unavailable` descriptor (type, size, short repr, reason): both decode to that
descriptor in a worker, so a handler can show what it is and say why there is no value.

`decode` runs in a worker on the mapped buffers (zero copy). `encode_object` and
`decode_object` carry one object for a comm opened about it: small ones inline, big ones
in a segment that the worker unlinks as soon as it has mapped it. An object that a
snapshot already put in shared memory is not written again (`encode_entry`): its segments
get a second name (a hard link, no copy) that the worker unlinks once mapped, so a later
snapshot may drop the originals meanwhile. Viewing a 10M-row frame that the variables
pane already holds thus costs the console nothing instead of writing 800 MB.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pickle
import reprlib
import secrets
import struct
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import cloudpickle

from mpkernel.snapshots import segments
from mpkernel.snapshots.manifest import EntryRef

OUT_OF_BAND_MIN: Final = 1 << 20
_KEPT_IN_KERNEL: Final = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)
_REPR: Final = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 6


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Stands in a worker for an object whose value did not cross."""

    type_name: str
    size: int
    summary: str
    reason: str

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.reason}>"


class Encoded(NamedTuple):
    meta: bytes
    buffers: list[memoryview]

    @property
    def nbytes(self) -> int:
        return len(self.meta) + sum(b.nbytes for b in self.buffers)


class CodecError(Exception):
    """A payload that is not one this module wrote."""


def type_name(obj: Any) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(obj: Any, reason: str) -> Unavailable:
    try:
        summary = _REPR.repr(obj)
    except Exception as e:  # noqa: BLE001 - a user __repr__ may raise anything; say so
        summary = f"<repr failed: {type(e).__name__}>"
    return Unavailable(type_name(obj), sys.getsizeof(obj, 0), summary, reason)


def _polars_frame(table: Any) -> Any:
    import polars

    return polars.from_arrow(table)


def _polars_series(array: Any, name: str) -> Any:
    import polars

    return polars.Series(name, array)


def _polars_to_arrow(obj: Any, polars: Any) -> Any:
    """Arrow data sharing the polars object's memory. polars keeps strings as views;
    its newest Arrow level exports them as `string_view` without a copy (and `from_arrow`
    takes them back without one), where the default level converts every string."""
    newest = getattr(getattr(polars, "CompatLevel", None), "newest", None)
    if newest is not None:
        with contextlib.suppress(TypeError):
            return obj.to_arrow(compat_level=newest())
    return obj.to_arrow()


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle ships no types
    def reducer_override(self, obj: Any) -> Any:
        if type(obj).__module__.startswith("polars") and "pyarrow" in sys.modules:
            polars = sys.modules["polars"]
            if isinstance(obj, polars.DataFrame):
                return _polars_frame, (_polars_to_arrow(obj, polars),)
            if isinstance(obj, polars.Series):
                return _polars_series, (_polars_to_arrow(obj, polars), obj.name)
        return super().reducer_override(obj)


def _ensure_pyarrow_for_polars(obj: Any) -> None:
    # polars does not import pyarrow itself; the Arrow route needs it loaded.
    if type(obj).__module__.startswith("polars") and "pyarrow" not in sys.modules:
        with contextlib.suppress(ImportError):
            importlib.import_module("pyarrow")


def encode(obj: Any, raise_errors: tuple[type[Exception], ...] = ()) -> Encoded | Unavailable:
    """Pickle `obj` with its big buffers out of band (views into the object's memory).
    `raise_errors` propagate instead of becoming a descriptor (a background encoder
    retries a value that changed size while it was pickled)."""
    if isinstance(obj, _KEPT_IN_KERNEL):
        return describe(obj, "functions, classes and modules stay in the kernel")
    _ensure_pyarrow_for_polars(obj)
    buffers: list[memoryview] = []

    def out_of_band(buf: pickle.PickleBuffer) -> bool:
        try:
            raw = buf.raw()
        except BufferError:  # not contiguous: let pickle copy it in band
            return True
        if raw.nbytes < OUT_OF_BAND_MIN:
            return True
        buffers.append(raw)
        return False

    stream = io.BytesIO()
    try:
        _Pickler(stream, protocol=5, buffer_callback=out_of_band).dump(obj)
    except raise_errors:
        raise
    except Exception as e:  # noqa: BLE001 - user objects' pickling may raise anything
        return describe(obj, f"cannot be pickled ({type(e).__name__}: {e})"[:300])
    return Encoded(stream.getvalue(), buffers)


def encode_unavailable(item: Unavailable) -> bytes:
    return pickle.dumps(item, protocol=5)


def decode(meta: bytes | memoryview, buffers: Sequence[memoryview]) -> Any:
    """The object back from its pickle stream and its (mapped) buffers."""
    try:
        return pickle.loads(meta, buffers=buffers)
    except Exception as e:  # noqa: BLE001 - unpickling user classes may raise anything
        return Unavailable("?", len(meta), "", f"cannot be loaded in the worker ({e!r})"[:300])


# -- one object for a comm: [kind u8][data] --------------------------------------------
_INLINE: Final = 0
_SEGMENT: Final = 1
_ENTRY: Final = 2
_KIND: Final = struct.Struct("<B")


def encode_object(obj: Any) -> bytes:
    """One object for a worker (main thread): inline if small, else a segment."""
    encoded = encode(obj)
    if isinstance(encoded, Unavailable):
        return _KIND.pack(_INLINE) + encode_unavailable(encoded)
    if not encoded.buffers and len(encoded.meta) < OUT_OF_BAND_MIN:
        return _KIND.pack(_INLINE) + encoded.meta
    path = segments.write_segment(segments.kernel_dir(), [encoded.meta, *encoded.buffers])
    return _KIND.pack(_SEGMENT) + path.encode()


def encode_entry(entry: EntryRef) -> bytes | None:
    """A snapshot entry's value for a worker, by new names of its segments; None when a
    segment is gone already (a newer snapshot dropped it: encode the object instead)."""
    directory = segments.kernel_dir()
    links: dict[str, str] = {}
    try:
        for path in entry.segment_paths():
            if path not in links:
                links[path] = str(directory / f"{Path(path).name}-{secrets.token_hex(4)}")
                os.link(path, links[path])
    except OSError:
        for link in links.values():
            with contextlib.suppress(FileNotFoundError):
                Path(link).unlink()
        return None
    meta = entry.meta
    if isinstance(meta, tuple):
        meta = (links[meta[0]], meta[1])
    buffers = (
        links[entry.buffers]
        if isinstance(entry.buffers, str)
        else tuple((links[path], index) for path, index in entry.buffers)
    )
    linked = entry._replace(meta=meta, buffers=buffers)
    return _KIND.pack(_ENTRY) + pickle.dumps(tuple(linked), protocol=5)


@contextlib.contextmanager
def _opened_once(paths: Iterable[str]) -> Iterator[dict[str, segments.Segment]]:
    """The segments of one object for a worker, opened; then closed and unlinked: once
    mapped, the data lives as long as the mapping, and nobody else needs the names."""
    opened = {path: segments.Segment(path) for path in set(paths)}
    try:
        yield opened
    finally:
        for path, segment in opened.items():
            segment.close()
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()


def _decode_entry(data: bytes) -> Any:
    from mpkernel.snapshots.store import decode_entry

    entry = EntryRef(*pickle.loads(data))
    with _opened_once(entry.segment_paths()) as opened:
        return decode_entry(entry, opened)


def decode_object(payload: bytes) -> Any:
    """The object of `encode_object` (worker); a segment is unlinked once mapped."""
    if len(payload) < _KIND.size:
        raise CodecError("empty object payload")
    (kind,) = _KIND.unpack_from(payload)
    data = payload[_KIND.size :]
    if kind == _INLINE:
        return decode(data, [])
    if kind == _ENTRY:
        return _decode_entry(data)
    if kind != _SEGMENT:
        raise CodecError(f"unknown object payload kind {kind}")
    path = data.decode()
    with _opened_once([path]) as opened:
        parts = opened[path].parts()
    if not parts:
        raise CodecError(f"object segment {path} is empty")
    return decode(parts[0], parts[1:])
