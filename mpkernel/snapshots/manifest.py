"""The snapshot payload: a full manifest of the namespace, name -> entry.

Every manifest is complete (every visible name, unchanged ones included), so a worker can
skip any number of snapshots (latest wins): an entry it already holds keeps its `entry_id`
and is neither sent nor decoded again; new data is either inline (small) or in segments
that the manifest names. The payload starts with the list of segment paths it references,
so the io thread learns which segments are still needed without unpickling the rest::

    b"MPKSNAP1" | u32 n | n bytes: segment paths joined by "\\n" | pickle((version, packed))

where `packed` maps each name to its entry, pickled on its own (`pack_entry`).

Pure values and functions; no thread owns this module.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

_MAGIC: Final = b"MPKSNAP1"
_LEN: Final = struct.Struct("<I")

OBJECT: Final = 0
UNAVAILABLE: Final = 1  # meta is a pickled `codec.Unavailable`


class EntryRef(NamedTuple):
    """One name's value as the workers should see it."""

    entry_id: int  # new id = new value; same id = the value the worker may already hold
    kind: int  # OBJECT or UNAVAILABLE
    type_name: str
    nbytes: int  # size of the encoded value (pickle stream + buffers)
    # The pickle stream inline, or where it is: (segment path, part index).
    meta: bytes | tuple[str, int]
    # Out-of-band buffers as (segment path, part index); or a segment path: the entry was
    # encoded in the background into one segment, stream in part 0 and buffers after it.
    buffers: tuple[tuple[str, int], ...] | str

    def segment_paths(self) -> tuple[str, ...]:
        if isinstance(self.buffers, str):
            return (self.buffers,)
        paths = tuple(path for path, _ in self.buffers)
        return (*paths, self.meta[0]) if isinstance(self.meta, tuple) else paths


class ManifestError(Exception):
    """A payload that is not a snapshot manifest."""


def pack_entry(entry: EntryRef) -> bytes:
    """One entry's bytes in a manifest (the builder keeps them: an unchanged entry is
    never serialized again, and a worker recognizes it without unpickling it)."""
    return pickle.dumps(tuple(entry), protocol=5)


def pack_manifest(version: int, packed: Mapping[str, bytes], paths: Iterable[str]) -> bytes:
    """A manifest from packed entries and the segment paths they name."""
    listing = "\n".join(sorted(set(paths))).encode()
    body = pickle.dumps((version, dict(packed)), protocol=5)
    return b"".join((_MAGIC, _LEN.pack(len(listing)), listing, body))


def pack(version: int, entries: Mapping[str, EntryRef]) -> bytes:
    paths = (p for e in entries.values() for p in e.segment_paths())
    return pack_manifest(version, {n: pack_entry(e) for n, e in entries.items()}, paths)


def segment_paths(payload: bytes) -> frozenset[str]:
    """The segments a payload references (cheap: reads the header only)."""
    start = len(_MAGIC) + _LEN.size
    if payload[: len(_MAGIC)] != _MAGIC or len(payload) < start:
        raise ManifestError("not a snapshot manifest")
    (n,) = _LEN.unpack_from(payload, len(_MAGIC))
    listing = payload[start : start + n].decode()
    return frozenset(listing.split("\n")) if listing else frozenset()


def unpack(
    payload: bytes, known: Mapping[bytes, EntryRef] | None = None
) -> tuple[int, dict[str, bytes], dict[str, EntryRef]]:
    """(version, name -> packed entry, name -> entry); entries found in `known` (by their
    packed bytes) are taken from there instead of being unpickled again."""
    paths = segment_paths(payload)
    (n,) = _LEN.unpack_from(payload, len(_MAGIC))
    try:
        version, packed = pickle.loads(payload[len(_MAGIC) + _LEN.size + n :])
    except Exception as e:  # a corrupt payload may fail in any way
        raise ManifestError(f"bad snapshot manifest: {e!r}") from e
    if not isinstance(version, int) or not isinstance(packed, dict):
        raise ManifestError("bad snapshot manifest: unexpected structure")
    known = known or {}
    entries: dict[str, EntryRef] = {}
    for name, data in packed.items():
        entry = known.get(data) if isinstance(data, bytes) else None
        if entry is None:
            entry = _entry(name, data)
        named = entry.buffers or isinstance(entry.meta, tuple)
        if named and not set(entry.segment_paths()) <= paths:
            raise ManifestError(f"bad snapshot manifest: {name} names an unlisted segment")
        entries[name] = entry
    return version, packed, entries


def _entry(name: Any, data: Any) -> EntryRef:
    try:
        fields = pickle.loads(data)
        entry = EntryRef(*fields)
    except Exception as e:  # a corrupt entry may fail in any way
        raise ManifestError(f"bad snapshot manifest entry {name!r}: {e!r}") from e
    if not isinstance(name, str) or not isinstance(entry.entry_id, int):
        raise ManifestError(f"bad snapshot manifest entry {name!r}")
    return entry
