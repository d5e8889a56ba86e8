"""TOML configuration: find the file, read it into frozen dataclasses, and write it back.

Single job: turn the user's TOML file (docs/architecture.md section 6) into a checked `Config`, or
say exactly what is wrong with it as "file:line: key.path: reason". Pure apart from
`find_config_path` (one stat) and the loaders (one read); no logging, no printing.

Lookup: `--config PATH`, else `$MPKERNEL_CONFIG`, else `$XDG_CONFIG_HOME/mpkernel/config.toml`
(default `$HOME/.config/...`) if it exists, else the built-in defaults.

Layering: the user's file is laid over the built-in one (docs/architecture.md section 6), key
by key. A worker setting comes from the first of: the user's `[workers.<name>]`, the
built-in `[workers.<name>]`, the user's `[workers.defaults]`, the built-in `[workers.defaults]`, the
field default. So `[workers.defaults] memory_limit` does not change the data explorer's own
8 GiB; `[workers.data_explorer] memory_limit` does. `memory_limit = 0` means no limit.

Invariants: every `ConfigError` from a file names the key path and, where the key is written in
the file, its line (else the line of its table, else none). Strict parsing raises the first
error; lenient parsing drops only the broken section back to its built-in form and returns
every error. `dump_config` writes every setting out, and `parse_config` reads that text back
to an equal `Config`. Only one enabled worker may serve a given comm target.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from mpkernel.config.values import (
    KeyLocator,
    choice,
    describe,
    expect_bool,
    expect_count,
    expect_duration,
    expect_handler,
    expect_positive_duration,
    expect_size,
    expect_str,
    format_key_path,
    is_bare_key,
    parse_duration,
    parse_size,
    toml_string,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # absent on 3.11+

__all__ = [
    "BUILTIN_WORKERS",
    "Config",
    "ConfigError",
    "KernelConfig",
    "WorkerConfig",
    "default_config",
    "find_config_path",
    "load_config",
    "load_effective_config",
    "load_effective_config_lenient",
    "parse_config",
    "parse_config_lenient",
    "parse_duration",
    "parse_size",
]

T = TypeVar("T")

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
DisconnectPolicy = Literal["close-comms", "keep"]
InterruptMode = Literal["signal", "message"]
StartMethod = Literal["forkserver", "spawn"]
# "on-failure": after a failure (a signal, a nonzero exit code, a limit); "always": also
# after a worker ended by itself with code 0; never after a stop the kernel asked for.
RestartPolicy = Literal["never", "on-failure", "always"]
ProcessMode = Literal["shared", "per-comm"]
# How a per-comm worker opened about an object of the namespace reads it: "fork" forks
# the kernel's main thread, so the worker shares the object's pages; "copy" encodes it
# into shared memory (docs/data_explorer.md).
SubjectMode = Literal["fork", "copy"]

LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
DISCONNECT_POLICIES: tuple[DisconnectPolicy, ...] = get_args(DisconnectPolicy)
INTERRUPT_MODES: tuple[InterruptMode, ...] = get_args(InterruptMode)
START_METHODS: tuple[StartMethod, ...] = get_args(StartMethod)
RESTART_POLICIES: tuple[RestartPolicy, ...] = get_args(RestartPolicy)
PROCESS_MODES: tuple[ProcessMode, ...] = get_args(ProcessMode)
SUBJECT_MODES: tuple[SubjectMode, ...] = get_args(SubjectMode)

_GIB = 2**30
_TOP_LEVEL_HINT = "allowed: [kernel], [workers.defaults], [workers.<name>]"


class ConfigError(Exception):
    """A configuration file that cannot be used, located as precisely as we know.

    `str()` is "path:line: key: reason", leaving out what is unknown ("path: reason" for an
    unreadable file; "line 3: key: reason" for text with no file).
    """

    def __init__(self, path: Path | None, line: int | None, key: str, reason: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.reason = reason
        if path is not None:
            where = str(path) if line is None else f"{path}:{line}"
        else:
            where = "" if line is None else f"line {line}"
        super().__init__(": ".join(part for part in (where, key, reason) if part))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[Path | None, int | None, str, str]]:
        return (ConfigError, (self.path, self.line, self.key, self.reason))


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """The `[kernel]` table."""

    log_level: LogLevel = "info"
    log_file: Path | None = None
    post_execute_budget_ms: int = 200
    # Arrays and tables holding at least this cross to the variables pane as a preview
    # (shape, size, first rows), never whole (docs/snapshots.md).
    preview_min_bytes: int = 16 << 20
    on_frontend_disconnect: DisconnectPolicy = "close-comms"
    disconnect_grace_s: float = 0.0
    interrupt_mode: InterruptMode = "signal"
    debugger: bool = True


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """One `[workers.<name>]` table with every default filled in (architecture section 4)."""

    name: str
    target: str
    handler: str
    start_method: StartMethod = "forkserver"
    memory_limit: int | None = None  # bytes; None: no limit
    cpu_limit_s: float = 0.0  # 0: no limit
    restart: RestartPolicy = "on-failure"
    max_restarts: int = 5
    restart_window_s: float = 60.0
    processes: ProcessMode = "shared"
    persistent: bool = False
    rpc_timeout_s: float = 0.0  # 0: none; a worker stuck in one RPC longer is killed
    enabled: bool = True
    subject: SubjectMode = "copy"  # "fork" needs processes = "per-comm"

    @property
    def forks_for_subject(self) -> bool:
        return self.subject == "fork" and self.processes == "per-comm"


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration: built-in workers first, then new ones in file order."""

    kernel: KernelConfig
    workers: tuple[WorkerConfig, ...]
    source: Path | None  # the file read, None for the built-in defaults

    def worker_for_target(self, target: str) -> WorkerConfig | None:
        """The enabled worker serving `target`, or None (disabled workers serve nothing)."""
        for worker in self.workers:
            if worker.enabled and worker.target == target:
                return worker
        return None


@dataclass(frozen=True, slots=True)
class _WorkerLayer:
    """One table's worker settings; None means "not set in this table"."""

    target: str | None = None
    handler: str | None = None
    start_method: StartMethod | None = None
    memory_limit: int | None = None  # bytes; 0: no limit
    cpu_limit_s: float | None = None
    restart: RestartPolicy | None = None
    max_restarts: int | None = None
    restart_window_s: float | None = None
    processes: ProcessMode | None = None
    persistent: bool | None = None
    rpc_timeout_s: float | None = None
    enabled: bool | None = None
    subject: SubjectMode | None = None

    def over(self, base: _WorkerLayer) -> _WorkerLayer:
        """These settings where set, `base`'s elsewhere."""
        changes: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(base, **changes)


_KERNEL_KEYS = tuple(f.name for f in dataclasses.fields(KernelConfig))
_WORKER_KEYS = tuple(f.name for f in dataclasses.fields(_WorkerLayer))
_DEFAULT_KEYS = tuple(k for k in _WORKER_KEYS if k not in ("target", "handler", "enabled"))
_BUILTIN_DEFAULTS = _WorkerLayer(memory_limit=2 * _GIB)
_BUILTIN_WORKERS: Mapping[str, _WorkerLayer] = {
    "echo": _WorkerLayer(
        target="mpkernel.echo",
        handler="mpkernel_workers.echo:EchoHandler",
        processes="shared",
    ),
    # The pane keeps its comm across a frontend disconnect and a worker restart; an
    # inspect hung in a user's `__repr__` gets the worker replaced, not the pane stuck.
    "variables": _WorkerLayer(
        target="positron.variables",
        handler="mpkernel_workers.variables:VariablesHandler",
        processes="shared",
        persistent=True,
        rpc_timeout_s=10.0,
    ),
    # A process per open table: a crash or a memory blow-up closes one view, and a sort
    # of one table never waits behind another's profiles.
    "data_explorer": _WorkerLayer(
        target="positron.dataExplorer",
        handler="mpkernel_workers.data_explorer:DataExplorerHandler",
        processes="per-comm",
        memory_limit=8 * _GIB,
        subject="fork",
    ),
}
# The workers every configuration has (a file can change or disable them, not remove them).
BUILTIN_WORKERS: tuple[str, ...] = tuple(_BUILTIN_WORKERS)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where values come from, so that errors can say file, line and key."""

    path: Path | None
    locator: KeyLocator

    def error(self, key: tuple[str, ...], reason: str) -> ConfigError:
        return ConfigError(self.path, self.locator.line_of(key), format_key_path(key), reason)

    def table(self, raw: object, key: tuple[str, ...]) -> Mapping[str, object]:
        if not isinstance(raw, dict):
            raise self.error(key, f"expected a table, got {describe(raw)}")
        return raw

    def check_keys(
        self, table: Mapping[str, object], key: tuple[str, ...], allowed: tuple[str, ...]
    ) -> None:
        for name in table:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean {toml_string(close[0])}?)" if close else ""
                raise self.error((*key, name), f"unknown key{hint}")

    def value(
        self,
        table: Mapping[str, object],
        key: tuple[str, ...],
        name: str,
        check: Callable[[object], T],
    ) -> T | None:
        """The checked value of `table[name]`, or None when it is not set."""
        if name not in table:
            return None
        try:
            return check(table[name])
        except (TypeError, ValueError) as exc:
            raise self.error((*key, name), str(exc)) from exc


def _kernel(src: _Source, raw: object) -> KernelConfig:
    base = KernelConfig()
    if raw is None:
        return base
    key = ("kernel",)
    table = src.table(raw, key)
    src.check_keys(table, key, _KERNEL_KEYS)

    def get(name: str, check: Callable[[object], T], default: T) -> T:
        value = src.value(table, key, name, check)
        return default if value is None else value

    def log_file(value: object) -> Path:
        path = Path(expect_str(value)).expanduser()
        if not path.is_absolute() and src.path is not None:
            path = src.path.parent / path  # relative to the file that names it
        return path

    return KernelConfig(
        log_level=get("log_level", choice(LOG_LEVELS), base.log_level),
        log_file=src.value(table, key, "log_file", log_file),
        post_execute_budget_ms=get(
            "post_execute_budget_ms", expect_count, base.post_execute_budget_ms
        ),
        preview_min_bytes=get("preview_min_bytes", expect_size, base.preview_min_bytes),
        on_frontend_disconnect=get(
            "on_frontend_disconnect", choice(DISCONNECT_POLICIES), base.on_frontend_disconnect
        ),
        disconnect_grace_s=get("disconnect_grace_s", expect_duration, base.disconnect_grace_s),
        interrupt_mode=get("interrupt_mode", choice(INTERRUPT_MODES), base.interrupt_mode),
        debugger=get("debugger", expect_bool, base.debugger),
    )


def _worker_layer(
    src: _Source, key: tuple[str, ...], table: Mapping[str, object], *, for_defaults: bool
) -> _WorkerLayer:
    if for_defaults:
        for name in table:
            if name in _WORKER_KEYS and name not in _DEFAULT_KEYS:
                raise src.error((*key, name), "only a worker's own table may set this")
    src.check_keys(table, key, _DEFAULT_KEYS if for_defaults else _WORKER_KEYS)

    def get(name: str, check: Callable[[object], T]) -> T | None:
        return src.value(table, key, name, check)

    return _WorkerLayer(
        target=get("target", expect_str),
        handler=get("handler", expect_handler),
        start_method=get("start_method", choice(START_METHODS)),
        memory_limit=get("memory_limit", expect_size),
        cpu_limit_s=get("cpu_limit_s", expect_duration),
        restart=get("restart", choice(RESTART_POLICIES)),
        max_restarts=get("max_restarts", expect_count),
        restart_window_s=get("restart_window_s", expect_positive_duration),
        processes=get("processes", choice(PROCESS_MODES)),
        persistent=get("persistent", expect_bool),
        rpc_timeout_s=get("rpc_timeout_s", expect_duration),
        enabled=get("enabled", expect_bool),
        subject=get("subject", choice(SUBJECT_MODES)),
    )


def _finish(name: str, target: str, handler: str, layer: _WorkerLayer) -> WorkerConfig:
    changes: dict[str, Any] = {
        f.name: getattr(layer, f.name)
        for f in dataclasses.fields(layer)
        if f.name not in ("target", "handler") and getattr(layer, f.name) is not None
    }
    if "memory_limit" in changes:
        changes["memory_limit"] = changes["memory_limit"] or None  # 0: no limit
    return dataclasses.replace(WorkerConfig(name, target, handler), **changes)


def _builtin_worker(name: str, defaults: _WorkerLayer) -> WorkerConfig:
    layer = _BUILTIN_WORKERS[name].over(defaults)
    assert layer.target is not None  # every built-in sets target and handler
    assert layer.handler is not None
    return _finish(name, layer.target, layer.handler, layer)


def _user_worker(src: _Source, name: str, raw: object, defaults: _WorkerLayer) -> WorkerConfig:
    key = ("workers", name)
    if not is_bare_key(name):
        raise src.error(key, 'a worker name may only use letters, digits, "_" and "-"')
    layer = _worker_layer(src, key, src.table(raw, key), for_defaults=False)
    builtin = _BUILTIN_WORKERS.get(name)
    if builtin is not None:
        layer = layer.over(builtin)
    missing = f'required for a new worker ("{name}" is not built in)'
    if layer.target is None:
        raise src.error((*key, "target"), missing)
    if layer.handler is None:
        raise src.error((*key, "handler"), missing)
    return _finish(name, layer.target, layer.handler, layer.over(defaults))


@dataclass(frozen=True, slots=True)
class _Entry:
    worker: WorkerConfig
    fallback: WorkerConfig | None  # the built-in worker of that name, if any
    target_line: int | None  # where the file sets this worker's target, if it does


def _workers(
    src: _Source, raw: object, fail: Callable[[ConfigError], None]
) -> tuple[WorkerConfig, ...]:
    table: Mapping[str, object] = {}
    if raw is not None:
        try:
            table = src.table(raw, ("workers",))
        except ConfigError as err:
            fail(err)
    defaults = _BUILTIN_DEFAULTS
    if "defaults" in table:
        key = ("workers", "defaults")
        try:
            user = _worker_layer(src, key, src.table(table["defaults"], key), for_defaults=True)
            defaults = user.over(_BUILTIN_DEFAULTS)
        except ConfigError as err:
            fail(err)
    entries: dict[str, _Entry] = {}
    for name in _BUILTIN_WORKERS:
        entries[name] = _Entry(_builtin_worker(name, defaults), None, None)
    for name, worker_raw in table.items():
        if name == "defaults":
            continue
        fallback = entries[name].worker if name in entries else None
        try:
            worker = _user_worker(src, name, worker_raw, defaults)
        except ConfigError as err:
            fail(err)  # the worker stays built in, or is dropped
            continue
        line = None
        if isinstance(worker_raw, dict) and "target" in worker_raw:
            line = src.locator.line_of(("workers", name, "target"))
        entries[name] = _Entry(worker, fallback, line)
    return _one_worker_per_target(src, entries, fail)


def _one_worker_per_target(
    src: _Source, entries: Mapping[str, _Entry], fail: Callable[[ConfigError], None]
) -> tuple[WorkerConfig, ...]:
    """Refuses a second enabled worker for a target, blaming the one whose target the file
    sets (the later one in the file if both do); lenient callers get its built-in back."""
    kept: dict[str, WorkerConfig] = {}
    claimed: dict[str, str] = {}  # target -> worker name
    order = sorted(
        entries, key=lambda n: (entries[n].target_line is not None, entries[n].target_line or 0)
    )
    for name in order:
        entry = entries[name]
        worker: WorkerConfig | None = entry.worker
        if worker is not None and worker.enabled and worker.target in claimed:
            fail(
                src.error(
                    ("workers", name, "target"),
                    f"target {toml_string(worker.target)} is already served by worker "
                    f"{toml_string(claimed[worker.target])}",
                )
            )
            worker = entry.fallback
            if worker is not None and worker.enabled and worker.target in claimed:
                worker = None
        if worker is not None:
            kept[name] = worker
            if worker.enabled:
                claimed[worker.target] = name
    return tuple(kept[name] for name in entries if name in kept)


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, source: Path | None) -> ConfigError:
    """TOMLDecodeError has msg/pos/lineno/colno from Python 3.14 and tomli 2.1; before that the
    place is only in the message: "... (at line 3, column 7)" or "... (at end of document)"."""
    message = str(exc)
    msg, pos, lineno, colno = (getattr(exc, a, None) for a in ("msg", "pos", "lineno", "colno"))
    if isinstance(msg, str) and isinstance(pos, int) and isinstance(lineno, int):
        at_end = pos >= len(text)
        message, line, column = msg, lineno, colno if isinstance(colno, int) else None
    elif match := re.search(r" \(at line (\d+), column (\d+)\)$", message):
        at_end, line, column = False, int(match[1]), int(match[2])
        message = message[: match.start()]
    elif message.endswith(" (at end of document)"):
        at_end, line, column = True, None, None
        message = message.removesuffix(" (at end of document)")
    else:
        at_end, line, column = False, None, None
    if at_end:
        line, column = text.count("\n") + 1, None
    where = " (at end of file)" if at_end else "" if column is None else f" (column {column})"
    return ConfigError(source, line, "", f"invalid TOML: {message}{where}")


def _evaluate(text: str, source: Path | None, *, lenient: bool) -> tuple[Config, list[ConfigError]]:
    errors: list[ConfigError] = []

    def fail(err: ConfigError) -> None:
        if not lenient:
            raise err
        errors.append(err)

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        err = _syntax_error(exc, text, source)
        if not lenient:
            raise err from exc
        return default_config(), [err]
    src = _Source(source, KeyLocator(text))
    for name in doc:
        if name not in ("kernel", "workers"):
            fail(src.error((name,), f"unknown top-level key ({_TOP_LEVEL_HINT})"))
    kernel = KernelConfig()
    try:
        kernel = _kernel(src, doc.get("kernel"))
    except ConfigError as err:
        fail(err)
    workers = _workers(src, doc.get("workers"), fail)
    return Config(kernel, workers, source), errors


def default_config() -> Config:
    """The built-in configuration (architecture section 6): all three workers on."""
    workers = tuple(_builtin_worker(name, _BUILTIN_DEFAULTS) for name in _BUILTIN_WORKERS)
    return Config(KernelConfig(), workers, None)


def parse_config(text: str, source: Path | None) -> Config:
    """`text` laid over the built-in defaults; raises ConfigError for the first problem."""
    return _evaluate(text, source, lenient=False)[0]


def parse_config_lenient(text: str, source: Path | None) -> tuple[Config, list[ConfigError]]:
    """Like parse_config, but a broken section falls back to its built-in form (a broken new
    worker is left out; a syntax error gives the full defaults). Returns every error."""
    return _evaluate(text, source, lenient=True)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, "", "invalid TOML: not UTF-8 text") from exc


def load_config(path: Path) -> Config:
    return parse_config(_read(path), path)


def find_config_path(cli_path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """`--config`, else $MPKERNEL_CONFIG (both used even if missing: load says so), else
    $XDG_CONFIG_HOME/mpkernel/config.toml (XDG default $HOME/.config) if it exists."""
    for given in (cli_path, environ.get("MPKERNEL_CONFIG")):
        if given is not None and str(given):
            return _expand_home(Path(given), environ)
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if not Path(config_home).is_absolute():  # unset, empty or relative: ignored, as XDG says
        home = environ.get("HOME", "")
        if not home:
            return None
        config_home = str(Path(home) / ".config")
    candidate = Path(config_home) / "mpkernel" / "config.toml"
    return candidate if candidate.exists() else None


def _expand_home(path: Path, environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    if home and path.parts and path.parts[0] == "~":
        return Path(home, *path.parts[1:])
    return path


def load_effective_config(cli_path: str | Path | None, environ: Mapping[str, str]) -> Config:
    """The configuration the kernel runs with; raises ConfigError (for doctor and install)."""
    path = find_config_path(cli_path, environ)
    return default_config() if path is None else load_config(path)


def load_effective_config_lenient(
    cli_path: str | Path | None, environ: Mapping[str, str]
) -> tuple[Config, list[ConfigError]]:
    """For kernel start: never raises; broken sections fall back, errors are for the log."""
    path = find_config_path(cli_path, environ)
    if path is None:
        return default_config(), []
    try:
        text = _read(path)
    except ConfigError as err:
        return default_config(), [err]
    return parse_config_lenient(text, path)
