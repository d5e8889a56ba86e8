"""Main thread: build a snapshot of the user's namespace after an execution.

What a cell can have changed is bounded by its code (`names`): the names it spells out,
what the user functions it calls reach, and their aliases. Only those are checked; the rest
of the namespace costs nothing, however big (a `pass` looks at no value). A cell Python
cannot parse, or one that can touch names it does not spell out (`exec`, `globals`,
`from m import *`, magics), also gets an identity scan of the whole namespace; `now()`
checks every name.

A checked name whose object has the same identity is fingerprinted (`fingerprint`: its
pickle stream and out-of-band buffers, hashed in place); an unchanged fingerprint means
nothing is encoded or sent again. Changed values are encoded (`codec`): small ones inline
in the manifest, big buffers each in a segment, shared by content with what is already
out. The budget (`[kernel] post_execute_budget_ms`) is spent cheapest first; what does not
fit goes to the background thread (`background`) as a *pending* segment that the workers
wait on: the snapshot names it, marked unevaluated until its writer is done. Nothing is
ever left stale silently.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mpkernel.funnel.items import SnapshotReady
from mpkernel.snapshots import codec, fingerprint, manifest, names, preview, segments
from mpkernel.snapshots.background import Background, Job
from mpkernel.snapshots.manifest import EntryRef

log = logging.getLogger(__name__)

_COPY_BYTES_PER_S: Final = 2e9  # pwrite into fresh tmpfs pages: ~3 GB/s measured
_PICKLE_S_PER_ITEM: Final = 1e-6  # measured: 1M small dicts pickle in about 1 s
# Work predicted below this is done at once even past the budget: a deferred value costs a
# segment and a thread hand-off, more than encoding a small one.
_DEFER_MIN_S: Final = 0.002
# How long a viewer's open waits for its object's pending background write.
_ENTRY_WAIT_S: Final = 30.0


@dataclass(slots=True)
class _Entry:
    obj_id: int
    ref: EntryRef
    # Fingerprint of what the workers were sent; None: compared by identity only.
    digest: bytes | None
    buffer_digests: tuple[bytes, ...]  # one per out-of-band buffer, for sharing by content
    cost_s: float  # what encoding it took last time: predicts the next check
    job: Job | None = None
    # The object itself, for entries compared by identity alone (descriptors): holding it
    # means its id cannot be reused by a new object bound to the same name.
    keep: Any = None
    packed: bytes = b""  # `ref` as it goes into every manifest
    paths: tuple[str, ...] = ()  # the segments `ref` names
    previewed: bool = False  # `ref` holds a `preview.Preview` of the value, not the value

    def __post_init__(self) -> None:
        self.packed = manifest.pack_entry(self.ref)
        self.paths = self.ref.segment_paths()


class SnapshotBuilder:
    """Finds what changed since the last snapshot and encodes it.

    `wanted()` tells whether any worker consumes snapshots now (read on the main thread,
    set by the io thread); while it is False `after_execute` does nothing, and the first
    call after it turns True checks every name.
    """

    def __init__(
        self,
        user_ns: Mapping[str, Any],
        hidden: Container[str],
        budget_ms: float,
        wanted: Callable[[], bool],
        preview_min_bytes: int = preview.PREVIEW_MIN_BYTES,
    ) -> None:
        """Arrays and tables holding at least `preview_min_bytes` cross as a preview."""
        self._user_ns = user_ns
        self._preview_min_bytes = preview_min_bytes
        self._hidden = hidden
        self._budget_s = max(0.0, budget_ms) / 1000
        self._wanted = wanted
        self._entries: dict[str, _Entry] = {}
        self._ids = itertools.count(1)
        self._version = 0
        self._active = False
        self._dirty: set[str] = set()  # to check again: their background work failed
        self._background = Background()
        self._dir: Path | None = None
        self._force_next = False  # build after the next execution even if nothing changed
        self._generations = itertools.count(1)  # of previews: a reached big value is news

    @property
    def version(self) -> int:
        return self._version

    @property
    def following(self) -> bool:
        return self._active and self._wanted()

    def version_after_this_execution(self) -> int:
        """The version of the snapshot that will follow the running execution, made even
        if the execution changes nothing (a viewer opened by it is as of that one)."""
        self._force_next = True
        return self._version + 1

    def after_execute(self, cell: str | None) -> SnapshotReady | None:
        """After an execution: the snapshot to send, or None when nothing changed.

        `cell` is the code that ran; None when names were changed by the kernel itself
        (deleted, cleared): then every name's identity is checked, no value is.
        """
        if not self._wanted():
            self._active = False
            return None
        first = not self._active
        self._active = True
        force, self._force_next = self._force_next, False
        try:
            if first:
                return self._build(None, everything=True, force=True)
            return self._build(cell, everything=False, force=force)
        except Exception:  # a snapshot bug must not fail the user's execution
            log.exception("snapshot after an execution failed; the next one checks every name")
            self._active = False
            return None

    def now(self) -> SnapshotReady:
        """On demand (a kernel request): a snapshot with every name checked."""
        snapshot = self._build(None, everything=True, force=True)
        assert snapshot is not None
        # Every name was just checked: the next execution's snapshot can be incremental,
        # and the entries are current for a viewer (`current_entry`).
        self._active = self._wanted()
        return snapshot

    def current_entry(self, name: str, value: Any) -> EntryRef | None:
        """The written entry of `name` if it holds `value` as of the last snapshot (the
        builder follows the namespace and `value` is the object it encoded); else None."""
        if not self._active:
            return None
        entry = self._entries.get(name)
        if entry is None or entry.obj_id != id(value):
            return None
        if entry.job is not None:
            # Still being written in the background: waiting for it is quicker than
            # writing the same data a second time beside it.
            entry.job.done.wait(_ENTRY_WAIT_S)
            self._collect_background()
        if entry.job is not None or name in self._dirty or entry.previewed:
            return None
        return entry.ref if entry.ref.kind == manifest.OBJECT else None

    # -- one build -------------------------------------------------------------------------
    def _build(self, cell: str | None, *, everything: bool, force: bool) -> SnapshotReady | None:
        deadline = time.perf_counter() + self._budget_s
        ns = self._user_ns
        self._collect_background()
        changed = False
        if everything or cell is None:
            scan, suspects = True, set(ns) if everything else set()
        else:
            read = names.read_cell(cell)
            # Names it spells that are gone were deleted (`del x`): reach skips them.
            gone = read.names & self._entries.keys()
            scan, suspects = read.dynamic, names.reach(read.names, ns) | gone
        suspects |= self._dirty
        self._dirty.clear()
        if scan:
            current = names.visible(ns, self._hidden)
            for name in self._entries.keys() - current.keys():
                changed |= self._remove(name)
            candidates = {
                name
                for name, value in current.items()
                if name in suspects
                or name not in self._entries
                or self._entries[name].obj_id != id(value)
            }
        else:
            candidates = suspects
        todo: list[tuple[float, str, Any]] = []
        for name in candidates:
            value = ns.get(name, _MISSING)
            if value is _MISSING or names.is_hidden(name, value, self._hidden):
                changed |= self._remove(name)
            else:
                todo.append((self._predict(name, value), name, value))
        # Cheapest first: the budget covers as many names as it can.
        todo.sort(key=lambda item: item[0])
        for _, name, value in todo:
            try:
                changed |= self._check(name, value, deadline)
            except OSError as e:  # shared memory full, say: this name goes without data
                log.warning("snapshot of %r failed: %s", name, e)
                reason = f"could not be written to shared memory ({e})"
                entry = self._described(value, codec.describe(value, reason))
                entry.obj_id, entry.keep = 0, None  # not the value: the next check tries again
                self._install(name, entry)
                changed = True
        if not (changed or force):
            return None
        self._version += 1
        entries = self._entries.values()
        paths = (p for e in entries if e.paths for p in e.paths)
        packed = {n: e.packed for n, e in self._entries.items()}
        payload = manifest.pack_manifest(self._version, packed, paths)
        return SnapshotReady(self._version, payload)

    def _segment_dir(self) -> Path:
        if self._dir is None:
            self._dir = segments.kernel_dir()
        return self._dir

    def _remove(self, name: str) -> bool:
        entry = self._entries.pop(name, None)
        if entry is None:
            return False
        if entry.job is not None:
            entry.job.cancel()
        return True

    def _predict(self, name: str, value: Any) -> float:
        entry = self._entries.get(name)
        if entry is not None and entry.obj_id == id(value):
            return entry.cost_s
        if isinstance(value, (list, dict, set, frozenset, tuple)):
            return len(value) * _PICKLE_S_PER_ITEM
        return 0.0

    def _check(self, name: str, value: Any, deadline: float) -> bool:
        """Bring `name`'s entry up to date; whether the workers must hear of it."""
        old = self._entries.get(name)
        same = old is not None and old.obj_id == id(value)
        if old is not None and same and old.digest is None and old.job is None:
            return False  # only described, and `keep` rules out a reused id: same object
        started = time.perf_counter()
        predicted = self._predict(name, value)
        if predicted >= _DEFER_MIN_S and predicted > deadline - started:
            self._install(name, self._encode_later(name, value))
            return True
        shown = preview.build(value, next(self._generations), self._preview_min_bytes)
        if shown is not None:
            # A big array or table: the cell may have changed it (it reached its name),
            # and what the pane shows of it is cheap to send again. Its bytes are neither
            # hashed nor copied.
            return self._check_preview(name, value, shown, started, deadline)
        encoded = codec.encode(value)
        if isinstance(encoded, codec.Unavailable):
            meta = codec.encode_unavailable(encoded)
            if old is not None and old.ref.kind == manifest.UNAVAILABLE and old.ref.meta == meta:
                old.obj_id, old.keep = id(value), value
                return False
            self._install(name, self._described(value, encoded))
            return True
        nbytes = sum(b.nbytes for b in encoded.buffers)
        if fingerprint.hashing_cost_s(nbytes) > deadline - time.perf_counter():
            # No time to tell whether it changed: send it as changed, written (and
            # fingerprinted as written) in the background.
            self._install(name, self._write_later(name, value, encoded, started))
            return True
        buffer_digests = tuple(fingerprint.digest(b) for b in encoded.buffers)
        digest = fingerprint.combine(encoded.meta, buffer_digests)
        if old is not None and old.digest == digest:
            # Unchanged; a background write of this same content, if any, goes on.
            old.obj_id = id(value)
            old.cost_s = time.perf_counter() - started
            return False
        checked = time.perf_counter() - started  # what the next check will cost
        entry = self._place(name, value, encoded, buffer_digests, digest, deadline)
        entry.cost_s = checked
        self._install(name, entry)
        return True

    def _check_preview(
        self, name: str, value: Any, shown: preview.Preview, started: float, deadline: float
    ) -> bool:
        encoded = codec.encode(shown)
        if isinstance(encoded, codec.Unavailable):  # its head cannot be pickled
            self._install(name, self._described(value, codec.describe(value, encoded.reason)))
            return True
        buffer_digests = tuple(fingerprint.digest(b) for b in encoded.buffers)
        digest = fingerprint.combine(encoded.meta, buffer_digests)
        entry = self._place(name, value, encoded, buffer_digests, digest, deadline)
        entry.previewed = True
        entry.cost_s = time.perf_counter() - started
        self._install(name, entry)
        return True

    def _described(self, value: Any, described: codec.Unavailable) -> _Entry:
        meta = codec.encode_unavailable(described)
        ref = EntryRef(next(self._ids), manifest.UNAVAILABLE, described.type_name, 0, meta, ())
        return _Entry(id(value), ref, None, (), 0.0, keep=value)

    def _install(self, name: str, entry: _Entry) -> None:
        """`entry` replaces `name`'s: background work on the replaced value is moot."""
        old = self._entries.get(name)
        if old is not None and old.job is not None:
            old.job.cancel()
        self._entries[name] = entry

    # -- placing encoded values ----------------------------------------------------------
    def _shared_buffers(self) -> dict[bytes, tuple[str, int]]:
        shared: dict[bytes, tuple[str, int]] = {}
        for entry in self._entries.values():
            if entry.job is None and isinstance(entry.ref.buffers, tuple):
                shared.update(zip(entry.buffer_digests, entry.ref.buffers, strict=True))
        return shared

    def _place(
        self,
        name: str,
        value: Any,
        encoded: codec.Encoded,
        buffer_digests: tuple[bytes, ...],
        digest: bytes,
        deadline: float,
    ) -> _Entry:
        """An entry for a changed value: buffers the workers already have are named, new
        ones written now if the budget allows, else by the background thread."""
        shared = self._shared_buffers() if encoded.buffers else {}
        locations: list[tuple[str, int]] = []
        pending: list[tuple[int, segments.SegmentWriter, memoryview]] = []
        parts: list[memoryview | bytes] = []
        meta: bytes | tuple[str, int] = encoded.meta
        if len(encoded.meta) >= codec.OUT_OF_BAND_MIN:
            parts.append(encoded.meta)
        for i, (buf, bd) in enumerate(zip(encoded.buffers, buffer_digests, strict=True)):
            known = shared.get(bd)
            if known is not None:
                locations.append(known)
                continue
            if buf.nbytes / _COPY_BYTES_PER_S <= deadline - time.perf_counter():
                locations.append((segments.write_segment(self._segment_dir(), [buf]), 0))
            else:
                writer = segments.SegmentWriter(self._segment_dir())
                pending.append((i, writer, buf))
                locations.append((writer.path, 0))
        if parts:
            meta = (segments.write_segment(self._segment_dir(), parts), 0)
        ref = self._object_ref(value, encoded, meta, tuple(locations))
        entry = _Entry(id(value), ref, digest, buffer_digests, 0.0)
        if pending:
            entry.job = self._submit(name, _write_buffers(encoded.meta, buffer_digests, pending))
        return entry

    def _object_ref(
        self,
        value: Any,
        encoded: codec.Encoded,
        meta: bytes | tuple[str, int],
        locations: tuple[tuple[str, int], ...],
    ) -> EntryRef:
        return EntryRef(
            next(self._ids),
            manifest.OBJECT,
            codec.type_name(value),
            encoded.nbytes,
            meta,
            locations,
        )

    def _write_later(self, name: str, value: Any, encoded: codec.Encoded, started: float) -> _Entry:
        directory = self._segment_dir()
        writers = [segments.SegmentWriter(directory) for _ in encoded.buffers]
        meta: bytes | tuple[str, int] = encoded.meta
        if len(encoded.meta) >= codec.OUT_OF_BAND_MIN:
            meta = (segments.write_segment(directory, [encoded.meta]), 0)
        ref = self._object_ref(value, encoded, meta, tuple((w.path, 0) for w in writers))
        unknown = tuple(b"" for _ in encoded.buffers)
        hashing = fingerprint.hashing_cost_s(encoded.nbytes)
        entry = _Entry(id(value), ref, None, unknown, time.perf_counter() - started + hashing)
        pending = [(i, w, b) for i, (w, b) in enumerate(zip(writers, encoded.buffers, strict=True))]
        entry.job = self._submit(name, _write_buffers(encoded.meta, unknown, pending))
        return entry

    def _encode_later(self, name: str, value: Any) -> _Entry:
        writer = segments.SegmentWriter(self._segment_dir())
        ref = EntryRef(
            next(self._ids),
            manifest.OBJECT,
            codec.type_name(value),
            0,
            (writer.path, 0),
            writer.path,
        )
        entry = _Entry(id(value), ref, None, (), self._predict(name, value))
        entry.job = self._submit(name, _encode_bundle(value, writer))
        return entry

    def _submit(self, name: str, run: Callable[[Job], Any]) -> Job:
        job = Job(name, run)
        self._background.submit(job)
        return job

    def _collect_background(self) -> None:
        """Record finished background work; failed work is checked again."""
        for job in self._background.finished():
            entry = self._entries.get(job.name)
            if entry is None or entry.job is not job:
                continue  # superseded meanwhile
            entry.job = None
            if job.error is not None or job.cancelled.is_set():
                self._dirty.add(job.name)
                continue
            result: _JobResult = job.result
            entry.digest = result.digest
            entry.buffer_digests = result.buffer_digests
            if result.check_cost_s is not None:
                entry.cost_s = result.check_cost_s


_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class _JobResult:
    digest: bytes
    buffer_digests: tuple[bytes, ...]
    check_cost_s: float | None  # what checking the value costs (None: unchanged estimate)


def _write_buffers(
    meta: bytes,
    buffer_digests: tuple[bytes, ...],
    pending: list[tuple[int, segments.SegmentWriter, memoryview]],
) -> Callable[[Job], _JobResult]:
    def run(job: Job) -> _JobResult:
        digests = list(buffer_digests)
        try:
            for i, writer, buf in pending:
                hasher, feed = fingerprint.chunk_hasher()
                writer.add(buf, feed, job.cancelled.is_set)
                writer.finish()
                digests[i] = hasher.digest()
        except BaseException:
            for _, writer, _ in pending:
                writer.abandon()  # a no-op for the finished ones
            raise
        return _JobResult(fingerprint.combine(meta, digests), tuple(digests), None)

    return run


def _encode_bundle(value: Any, writer: segments.SegmentWriter) -> Callable[[Job], _JobResult]:
    def run(job: Job) -> _JobResult:
        started = time.perf_counter()
        if job.cancelled.is_set():  # superseded while queued: spare the pickling
            writer.abandon()
            raise segments.SegmentCancelled
        try:
            encoded = codec.encode(value, raise_errors=(RuntimeError,))
            if isinstance(encoded, codec.Unavailable):
                meta, buffers = codec.encode_unavailable(encoded), []
            else:
                meta, buffers = encoded.meta, encoded.buffers
            pickled = time.perf_counter() - started
            writer.add(meta, None, job.cancelled.is_set)
            digests = []
            for buf in buffers:
                hasher, feed = fingerprint.chunk_hasher()
                writer.add(buf, feed, job.cancelled.is_set)
                digests.append(hasher.digest())
            writer.finish()
        except BaseException:
            writer.abandon()
            raise
        nbytes = len(meta) + sum(b.nbytes for b in buffers)
        check = pickled + fingerprint.hashing_cost_s(nbytes)
        return _JobResult(fingerprint.combine(meta, digests), (), check)

    return run
