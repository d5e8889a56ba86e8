"""`mpkernel doctor`: check the installation, the configuration and the workers.

Single job: find out what is wrong and say how to fix it, as a list of `CheckResult`s (one per
line of output). Checks of a running kernel live in `doctor_kernel`. Nothing here prints or
chooses an exit code (`cli.py` does); `render_text` and `report_json` only build text and a
JSON document (shape: `JSON_SCHEMA`).

Runs on the calling thread. Whatever a check starts (a private zmq context, worker processes
under a private `WorkerSupervisor`, `python -c` subprocesses) is gone when it returns, and
every wait has a deadline: a broken machine gives failures, never a hang.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib
import importlib.metadata
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import zmq

import mpkernel
from mpkernel.config.model import (
    Config,
    ConfigError,
    find_config_path,
    load_config,
    load_effective_config_lenient,
)

Status = Literal["ok", "warn", "fail"]
JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"

STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")
SECTIONS = ("environment", "kernelspecs", "config", "workers", "runtime", "kernel")
ECHO_TARGET = "mpkernel.echo"
SCHEMA_VERSION = 1
#: How long the socket probes wait for libzmq (a local ipc round trip takes microseconds).
SOCKET_PROBE_S = 2.0
#: How long a kernelspec's interpreter may take to import mpkernel.
INTERPRETER_TIMEOUT_S = 30.0
#: How long all configured workers together may take to start and answer.
WORKER_TIMEOUT_S = 30.0
#: Below this libzmq version XPUB_VERBOSER is missing or untested.
MIN_LIBZMQ = (4, 3)
#: (import name, distribution) of the libraries mpkernel needs at run time, besides pyzmq.
PACKAGES = (
    ("multiprocess", "multiprocess"),
    ("cloudpickle", "cloudpickle"),
    ("psutil", "psutil"),
    ("IPython", "ipython"),
    ("jupyter_client", "jupyter_client"),
    ("comm", "comm"),
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: a line of `mpkernel doctor` output, an entry of its JSON `checks`."""

    section: str  # one of SECTIONS
    name: str  # short label, e.g. "python", "handler echo", "worker echo"
    status: Status
    summary: str  # one line: what was found
    hint: str | None = None  # one line: how to fix it (required unless ok)
    details: dict[str, JsonValue] = field(default_factory=dict)  # for machines

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"unknown doctor section {self.section!r}")
        if self.status != "ok" and not self.hint:
            raise ValueError(f"check {self.name!r} is {self.status} but has no fix hint")


def ok(section: str, name: str, summary: str, /, **details: JsonValue) -> CheckResult:
    return CheckResult(section, name, "ok", summary, None, details)


def warn(section: str, name: str, summary: str, hint: str, /, **details: JsonValue) -> CheckResult:
    return CheckResult(section, name, "warn", summary, hint, details)


def fail(section: str, name: str, summary: str, hint: str, /, **details: JsonValue) -> CheckResult:
    return CheckResult(section, name, "fail", summary, hint, details)


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    config: str | None = None  # --config, as for `mpkernel run`
    connection_file: str | None = None
    kernel_id: str | None = None
    timeout_s: float = 10.0  # per request to a running kernel
    worker_timeout_s: float = WORKER_TIMEOUT_S


def run_doctor(options: DoctorOptions, environ: Mapping[str, str]) -> list[CheckResult]:
    """Every check, in report order: environment, kernelspecs, config (and handlers), workers,
    runtime directories, then the running kernel if one was named."""
    from mpkernel.doctor.kernel import check_running_kernel, check_workers

    config, config_results = check_config(options.config, environ)
    results = [*check_environment(), *check_kernelspecs(environ), *config_results]
    handler_results = check_handlers(config)
    results += handler_results
    broken = {str(r.details["worker"]) for r in handler_results if r.status != "ok"}
    results += check_workers(config, broken, options.worker_timeout_s)
    results += check_runtime_dir()
    if options.connection_file is not None or options.kernel_id is not None:
        results += check_running_kernel(
            options.connection_file, options.kernel_id, options.timeout_s
        )
    return results


# -- aggregation and output ------------------------------------------------------------------
def overall_status(results: Sequence[CheckResult]) -> Status:
    """The worst status: fail over warn over ok (no results: ok)."""
    return max((r.status for r in results), key=STATUSES.index, default="ok")


def count_statuses(results: Sequence[CheckResult]) -> dict[Status, int]:
    return {s: sum(1 for r in results if r.status == s) for s in STATUSES}


_TAGS: dict[Status, str] = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}
_COLOURS: dict[Status, str] = {"ok": "\x1b[32m", "warn": "\x1b[33m", "fail": "\x1b[1;31m"}
_RESET = "\x1b[0m"
_INDENT = " " * 8


def render_text(results: Sequence[CheckResult], *, color: bool = False, width: int = 80) -> str:
    """The human report: a heading per section, one line per check (wrapped at `width`), a
    "fix:" line under anything not ok, and a summary line. Words are never broken, so a path
    longer than a whole line stays copyable (the only way past `width`)."""
    wrapper = textwrap.TextWrapper(
        width=width,
        subsequent_indent=_INDENT,
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines = [f"mpkernel {mpkernel.__version__} doctor"]
    for section in SECTIONS:
        in_section = [r for r in results if r.section == section]
        if not in_section:
            continue
        lines += ["", section]
        for r in in_section:
            prefix = f"  {_TAGS[r.status]:<4}  "
            wrapped = wrapper.wrap(f"{prefix}{r.name}: {_one_line(r.summary)}")
            if color:
                tag = f"{_COLOURS[r.status]}{_TAGS[r.status]}{_RESET}"
                wrapped[0] = f"  {tag}{' ' * (6 - len(_TAGS[r.status]))}{wrapped[0][len(prefix) :]}"
            lines += wrapped
            if r.hint is not None and r.status != "ok":
                lines += wrapper.wrap(f"{_INDENT}fix: {_one_line(r.hint)}")
    counts = count_statuses(results)
    lines += ["", _summary_line(counts)]
    return "\n".join(lines) + "\n"


def _summary_line(counts: Mapping[Status, int]) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}" if n == 1 else f"{n} {word}s"

    if not counts["warn"] and not counts["fail"]:
        return f"all {counts['ok']} checks ok"
    return (
        f"{plural(counts['fail'], 'failure')}, {plural(counts['warn'], 'warning')}, "
        f"{counts['ok']} ok"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def report_json(results: Sequence[CheckResult]) -> dict[str, JsonValue]:
    """The `--json` document; `JSON_SCHEMA` describes it (keys are stable)."""
    counts = count_statuses(results)
    checks: list[JsonValue] = [
        {
            "section": r.section,
            "name": r.name,
            "status": r.status,
            "summary": r.summary,
            "hint": r.hint,
            "details": r.details,
        }
        for r in results
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "mpkernel_version": mpkernel.__version__,
        "python": sys.executable,
        "status": overall_status(results),
        "counts": {s: counts[s] for s in STATUSES},
        "checks": checks,
    }


_STATUS_SCHEMA: dict[str, JsonValue] = {"enum": list(STATUSES)}
JSON_SCHEMA: dict[str, JsonValue] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mpkernel doctor report",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "mpkernel_version", "python", "status", "counts", "checks"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "mpkernel_version": {"type": "string"},
        "python": {"type": "string"},
        "status": _STATUS_SCHEMA,
        "counts": {
            "type": "object",
            "additionalProperties": False,
            "required": list(STATUSES),
            "properties": {s: {"type": "integer", "minimum": 0} for s in STATUSES},
        },
        "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}},
    },
    "$defs": {
        "check": {
            "type": "object",
            "additionalProperties": False,
            "required": ["section", "name", "status", "summary", "hint", "details"],
            "properties": {
                "section": {"enum": list(SECTIONS)},
                "name": {"type": "string", "minLength": 1},
                "status": _STATUS_SCHEMA,
                "summary": {"type": "string"},
                "hint": {"type": ["string", "null"]},
                "details": {"type": "object"},
            },
            # Anything not ok carries a fix hint.
            "if": {"properties": {"status": {"enum": ["warn", "fail"]}}},
            "then": {"properties": {"hint": {"type": "string", "minLength": 1}}},
        }
    },
}


# -- environment -----------------------------------------------------------------------------
def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numbers of a version ("8.10.0rc1" -> (8, 10, 0)); enough to compare with
    the `>=` minimums mpkernel declares."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    return tuple(parts)


def _minimum_versions() -> dict[str, str]:
    """`name>=X` requirements of the installed mpkernel distribution, by normalised name."""
    try:
        requirements = importlib.metadata.requires("mpkernel") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    found: dict[str, str] = {}
    for req in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9.]*)\s*", req)
        if match:  # requirements with markers (extras, old Pythons) are not ours to check
            found[_normalise(match[1])] = match[2]
    return found


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_environment() -> list[CheckResult]:
    minimums = _minimum_versions()
    sec = "environment"
    py = ".".join(str(n) for n in sys.version_info[:3])
    # Nothing to fail: mpkernel (requires-python >= 3.10) would not have installed.
    results = [ok(sec, "python", f"{py} ({sys.executable})", version=py, path=sys.executable)]
    results.append(_check_pyzmq(minimums.get("pyzmq")))
    results.append(check_encryption())
    results += check_sockets()
    for module, dist in PACKAGES:
        results.append(_check_package(module, dist, minimums.get(_normalise(dist))))
    return results


def _check_pyzmq(minimum: str | None) -> CheckResult:
    sec, name = "environment", "pyzmq"
    pyzmq, libzmq = zmq.pyzmq_version(), zmq.zmq_version()
    summary = f"pyzmq {pyzmq}, libzmq {libzmq}"
    details: dict[str, JsonValue] = {"pyzmq": pyzmq, "libzmq": libzmq}
    if minimum is not None and version_tuple(pyzmq) < version_tuple(minimum):
        fix = f"pip install -U 'pyzmq>={minimum}'"
        return warn(sec, name, f"{summary}: mpkernel needs pyzmq >= {minimum}", fix, **details)
    if version_tuple(libzmq) < MIN_LIBZMQ:
        floor = ".".join(map(str, MIN_LIBZMQ))
        return warn(sec, name, f"{summary}: libzmq older than {floor}", _PYZMQ_FIX, **details)
    return ok(sec, name, summary, **details)


def check_encryption() -> CheckResult:
    """Whether this libzmq can encrypt the frontend sockets (CurveZMQ needs libsodium or
    libzmq's own tweetnacl). Without it a kernel still runs, but not one whose connection
    file carries keys, and the kernelspec does not offer encryption."""
    sec, name = "environment", "transport encryption"
    if zmq.has("curve"):
        return ok(sec, name, "CurveZMQ available (libzmq built with curve)", curve=True)
    why = "this libzmq cannot encrypt (no CURVE): kernels run with HMAC signing only"
    return warn(sec, name, why, _PYZMQ_FIX, curve=False)


def _check_package(module: str, dist: str, minimum: str | None) -> CheckResult:
    sec = "environment"
    need = f"{dist}>={minimum}" if minimum else dist
    try:
        imported = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import-time error means "not usable"
        why = f"cannot import {module}: {type(e).__name__}: {e}"
        return fail(sec, module, why, f"pip install '{need}'", minimum=minimum)
    version = _dist_version(dist) or str(getattr(imported, "__version__", "unknown"))
    details: dict[str, JsonValue] = {"version": version, "minimum": minimum}
    if minimum is not None and version_tuple(version) < version_tuple(minimum):
        why = f"{version}, older than the {minimum} mpkernel needs"
        return warn(sec, module, why, f"pip install -U '{need}'", **details)
    return ok(sec, module, version, **details)


_PYZMQ_FIX = "pip install -U --force-reinstall pyzmq (its wheels bundle a suitable libzmq)"


def check_sockets(timeout_s: float = SOCKET_PROBE_S) -> list[CheckResult]:
    """Create the socket kinds the kernel uses on a private context and prove that what it
    relies on works: ipc:// in a temp dir (worker pipes), XPUB_VERBOSER (a departing
    subscriber is reported), ROUTER_MANDATORY (a send to a vanished peer raises)."""
    sec = "environment"
    if not zmq.has("ipc"):
        return [fail(sec, "ipc transport", "this libzmq has no ipc:// transport", _PYZMQ_FIX)]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rundir = Path(tempfile.mkdtemp(prefix="mpk-doctor-"))
    try:
        try:  # what the supervisor does with its worker pipe
            ctx.socket(zmq.PULL).bind(f"ipc://{rundir}/pipe")
        except zmq.ZMQError as e:
            fix = "set TMPDIR to a short local directory you own (ipc paths: ~100 bytes max)"
            return [fail(sec, "ipc transport", f"cannot bind ipc:// in {rundir}: {e}", fix)]
        return [
            ok(sec, "ipc transport", f"binds in {rundir.parent}", tmpdir=str(rundir.parent)),
            _probe_xpub_verboser(ctx, f"ipc://{rundir}/xpub", timeout_s),
            _probe_router_mandatory(ctx, f"ipc://{rundir}/router"),
        ]
    finally:
        ctx.destroy(linger=0)
        shutil.rmtree(rundir, ignore_errors=True)


def _recv_within(sock: zmq.Socket[bytes], timeout_s: float) -> bytes | None:
    return sock.recv() if sock.poll(int(timeout_s * 1000), zmq.POLLIN) else None


def _probe_xpub_verboser(
    ctx: zmq.Context[zmq.Socket[bytes]], addr: str, timeout_s: float
) -> CheckResult:
    sec, name = "environment", "XPUB_VERBOSER"
    try:
        xpub = ctx.socket(zmq.XPUB)
        xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        xpub.setsockopt(zmq.XPUB_VERBOSER, 1)
        xpub.bind(addr)
        sub = ctx.socket(zmq.SUB)
        sub.connect(addr)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        if _recv_within(xpub, timeout_s) != b"\x01":
            return fail(sec, name, f"no subscribe event within {timeout_s:g}s", _PYZMQ_FIX)
        sub.close(linger=0)
        if _recv_within(xpub, timeout_s) != b"\x00":
            why = f"a departing subscriber was not reported within {timeout_s:g}s"
            return fail(sec, name, why, _PYZMQ_FIX)
    except (zmq.ZMQError, AttributeError) as e:  # AttributeError: pyzmq without the constant
        return fail(sec, name, f"not supported: {e}", _PYZMQ_FIX)
    return ok(sec, name, "subscribe and departure events are reported")


def _probe_router_mandatory(ctx: zmq.Context[zmq.Socket[bytes]], addr: str) -> CheckResult:
    sec, name = "environment", "ROUTER_MANDATORY"
    try:
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.bind(addr)
        router.send_multipart([b"nobody", b"probe"], zmq.NOBLOCK)
    except zmq.ZMQError as e:
        if e.errno == errno.EHOSTUNREACH:
            return ok(sec, name, "a send to an unknown peer raises EHOSTUNREACH")
        return fail(sec, name, f"unexpected error: {e}", _PYZMQ_FIX)
    return fail(sec, name, "a send to an unknown peer was silently dropped", _PYZMQ_FIX)


# -- kernelspecs -----------------------------------------------------------------------------
def runs_mpkernel(argv: Sequence[object]) -> bool:
    """Whether a kernelspec argv runs `<python> -m mpkernel ...`."""
    args = [str(a) for a in argv]
    return "-mmpkernel" in args or ("-m", "mpkernel") in itertools.pairwise(args)


def _install_hint(name: str = "mpkernel") -> str:
    suffix = "" if name == "mpkernel" else f" --name {name}"
    where = "--sys-prefix" if sys.prefix != sys.base_prefix else "--user"
    return f"mpkernel install {where}{suffix}"


def check_kernelspecs(environ: Mapping[str, str]) -> list[CheckResult]:
    """Every kernelspec whose argv runs `-m mpkernel`: its interpreter must exist and import
    this version of mpkernel."""
    from jupyter_client.kernelspec import KernelSpecManager

    sec = "kernelspecs"
    specs = KernelSpecManager().find_kernel_specs()
    results: list[CheckResult] = []
    for name, resource_dir in sorted(specs.items()):
        try:
            argv, env = _read_kernel_json(resource_dir)
        except ValueError as e:
            if "mpkernel" in name:
                hint = f"reinstall it: {_install_hint(name)}"
                results.append(warn(sec, name, f"bad kernel.json in {resource_dir}: {e}", hint))
            continue
        if runs_mpkernel(argv):
            results.append(_check_kernelspec(name, resource_dir, argv, env, environ))
    if not results:
        why = "no kernelspec runs mpkernel: Jupyter cannot start it"
        results.append(warn(sec, "kernelspec", why, f"install one: {_install_hint()}"))
    return results


def _read_kernel_json(resource_dir: str) -> tuple[list[object], dict[str, object]]:
    """argv and env of a kernelspec; ValueError when its kernel.json is unusable."""
    try:
        spec = json.loads((Path(resource_dir) / "kernel.json").read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from e
    argv = spec.get("argv") if isinstance(spec, dict) else None
    if not isinstance(argv, list) or not argv:
        raise ValueError("argv is not a non-empty list")
    env = spec.get("env")
    return argv, env if isinstance(env, dict) else {}


def _check_kernelspec(
    name: str,
    resource_dir: str,
    argv: list[object],
    spec_env: Mapping[str, object],
    environ: Mapping[str, str],
) -> CheckResult:
    sec = "kernelspecs"
    python = str(argv[0])
    details: dict[str, JsonValue] = {"path": resource_dir, "python": python}
    fix = f"reinstall it from the right environment: {_install_hint(name)}"
    found = python if Path(python).is_absolute() else shutil.which(python, path=environ.get("PATH"))
    if found is None or not os.access(found, os.X_OK):
        return fail(sec, name, f"interpreter {python} does not exist", fix, **details)
    env = {**environ, **{str(k): str(v) for k, v in spec_env.items()}}
    code = "import mpkernel; print(mpkernel.__version__)"
    try:
        proc = subprocess.run(
            [found, "-c", code],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INTERPRETER_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        why = f"{python} did not import mpkernel within {INTERPRETER_TIMEOUT_S:g}s"
        return fail(sec, name, why, fix, **details)
    except OSError as e:
        return fail(sec, name, f"cannot run {python}: {e.strerror or e}", fix, **details)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        why, fix = f"{python} cannot import mpkernel: {last}", f"install mpkernel there, or {fix}"
        return fail(sec, name, why, fix, **details)
    version = details["mpkernel_version"] = proc.stdout.strip()
    if version != mpkernel.__version__:
        why = f"{python} has mpkernel {version}, this is {mpkernel.__version__}"
        return warn(sec, name, why, f"upgrade mpkernel there, or {fix}", **details)
    args = [str(a) for a in argv]
    if "--config" in args[:-1]:
        config = details["config"] = args[args.index("--config") + 1]
        try:
            load_config(Path(config))
        except ConfigError as e:
            fix = f"fix the file (mpkernel config validate {config})"
            return fail(sec, name, f"its --config is invalid: {e}", fix, **details)
    return ok(sec, name, f"{resource_dir} runs {python} (mpkernel {version})", **details)


# -- configuration and handlers --------------------------------------------------------------
def check_config(
    cli_path: str | None, environ: Mapping[str, str]
) -> tuple[Config, list[CheckResult]]:
    """The file the kernel would read and its errors (file:line: key: reason, as the kernel
    logs them); returns the configuration the kernel would run with (broken sections at
    their defaults)."""
    sec = "config"
    path = find_config_path(cli_path, environ)
    config, errors = load_effective_config_lenient(cli_path, environ)
    names = ", ".join(w.name for w in config.workers if w.enabled) or "none"
    if path is None:
        return config, [
            ok(sec, "config file", f"none; built-in defaults (workers: {names})", path=None)
        ]
    if not errors:
        return config, [
            ok(sec, "config file", f"{path} is valid (workers: {names})", path=str(path))
        ]
    hint = (
        f"fix it and re-check with: mpkernel config validate {path} (meanwhile the kernel "
        "uses the defaults for that section)"
    )
    return config, [
        fail(sec, "config file", str(e), hint, path=str(path), line=e.line, key=e.key)
        for e in errors
    ]


def check_handlers(config: Config) -> list[CheckResult]:
    """Import the handler class of every enabled worker, here, as a worker would."""
    from mpkernel.supervision.runtime import load_handler_class

    sec = "config"
    results: list[CheckResult] = []
    for w in config.workers:
        if not w.enabled:
            continue
        name = f"handler {w.name}"
        details: dict[str, JsonValue] = {"worker": w.name, "handler": w.handler}
        try:
            load_handler_class(w.handler)
        except Exception as e:  # noqa: BLE001 - any import-time error is this check's failure
            fix = f"install its package, or set enabled = false in [workers.{w.name}]"
            results.append(fail(sec, name, str(e), fix, **details))
            continue
        results.append(ok(sec, name, w.handler, **details))
    return results


# -- runtime directories ---------------------------------------------------------------------
def check_private_dir(path: Path, name: str, section: str = "runtime") -> CheckResult:
    """A directory only this user may enter: owned by us, mode 0700 or stricter."""
    try:
        st = path.stat()
    except OSError as e:
        fix = f"check that {path} exists and is yours"
        return fail(section, name, f"cannot stat {path}: {e.strerror or e}", fix, path=str(path))
    mode = stat.S_IMODE(st.st_mode)
    details: dict[str, JsonValue] = {"path": str(path), "mode": f"{mode:04o}"}
    if st.st_uid != os.getuid():
        why, fix = f"{path} belongs to uid {st.st_uid}, not to you", "use a directory you own"
        return fail(section, name, why, fix, **details)
    if mode & 0o077:
        why = f"{path} is mode {mode:04o}: other users can reach it"
        return fail(section, name, why, f"chmod 700 {path}", **details)
    return ok(section, name, f"{path} ({mode:04o})", **details)


def check_runtime_dir() -> list[CheckResult]:
    """Jupyter's runtime directory holds connection files (with their HMAC keys). Jupyter
    writes those 0600, so a readable directory is a warning, not a failure."""
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir())
    if not path.exists():
        why = f"{path} (not created yet; Jupyter makes it 0700)"
        return [ok("runtime", "jupyter runtime dir", why, path=str(path))]
    result = check_private_dir(path, "jupyter runtime dir")
    return [dataclasses.replace(result, status="warn") if result.status == "fail" else result]
