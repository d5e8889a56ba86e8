"""`mpkernel doctor` end to end: the CLI in a subprocess, on a private Jupyter/XDG setup.

Each test builds its own environment (HOME, XDG_CONFIG_HOME, JUPYTER_PATH, JUPYTER_DATA_DIR,
JUPYTER_CONFIG_DIR, JUPYTER_RUNTIME_DIR under tmp_path; no MPKERNEL_CONFIG unless the test
sets one), so neither the user's setup nor the suite's `mpkernel-test` kernelspecs leak in.
The configurations enable only the `echo` worker, so that the checks do not depend on which
other handler packages are installed. `--json` output is always validated against
`mpkernel.doctor.JSON_SCHEMA`, and the exit code against the document's status.

Kernels are started with jupyter_client and always stopped (and their process tree checked)
in `finally`. Waits are on messages or processes with deadlines; pytest-timeout guards the
dead-kernel case, nothing asserts speed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import uuid
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jupyter_client.manager import KernelManager

from mpkernel.doctor.checks import JSON_SCHEMA
from tests.conftest import KERNEL_NAME
from tests.frontend import (
    CHANNELS,
    STARTUP_TIMEOUT,
    KernelHandle,
    kind,
    recv,
    send_request,
    stop_kernel,
)

pytestmark = [pytest.mark.integration]

#: Hang guard for one doctor run (it starts workers and waits on a kernel, all bounded).
DOCTOR_TIMEOUT = 120.0
EXIT_CODES = {"ok": 0, "warn": 1, "fail": 2}
MAX_RESTARTS = 2
ECHO_ONLY = """\
[workers.variables]
enabled = false

[workers.data_explorer]
enabled = false
"""
CRASH_LOOP = f"""\
[workers.defaults]
max_restarts = {MAX_RESTARTS}
restart_window_s = "10m"

{ECHO_ONLY}"""


@dataclass
class Doctor:
    code: int
    stdout: str
    stderr: str

    @property
    def flat(self) -> str:
        """stdout with line wrapping undone (a wrapped line continues after 8 spaces)."""
        return " ".join(self.stdout.split())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private environment for the doctor subprocess."""
    environ = {k: v for k, v in os.environ.items() if k not in ("MPKERNEL_CONFIG", "NO_COLOR")}
    for var, sub in (
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("JUPYTER_PATH", "jupyter-path"),
        ("JUPYTER_DATA_DIR", "jupyter-data"),
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
        ("IPYTHONDIR", "ipython"),
    ):
        (tmp_path / sub).mkdir()
        environ[var] = str(tmp_path / sub)
    environ["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "jupyter-runtime")  # created 0700 on use
    return environ


def use_config(env: dict[str, str], tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    env["MPKERNEL_CONFIG"] = str(path)
    return path


def doctor(env: dict[str, str], *args: str, python: str = sys.executable) -> Doctor:
    proc = subprocess.run(
        [python, "-m", "mpkernel", "doctor", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DOCTOR_TIMEOUT,
        check=False,
    )
    return Doctor(proc.returncode, proc.stdout, proc.stderr)


def doctor_json(env: dict[str, str], *args: str, python: str = sys.executable) -> dict[str, Any]:
    """Run `doctor --json`; the document must match the schema and the exit code its status."""
    result = doctor(env, "--json", *args, python=python)
    try:
        doc: dict[str, Any] = json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"not one JSON document:\n{result.stdout}\n{result.stderr}") from exc
    jsonschema.validate(doc, JSON_SCHEMA)
    assert result.code == EXIT_CODES[doc["status"]], (result.code, doc["status"])
    return doc


def check(doc: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in doc["checks"] if c["section"] == section and c["name"] == name
    ]
    assert len(found) == 1, f"no single {section}/{name} in {[c['name'] for c in doc['checks']]}"
    return found[0]


def not_ok(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in doc["checks"] if c["status"] != "ok"]


def install_kernelspec(env: dict[str, str], prefix: Path, name: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "mpkernel", "install", "--prefix", str(prefix), "--name", name],
        env=env,
        capture_output=True,
        check=True,
        timeout=DOCTOR_TIMEOUT,
    )
    return prefix / "share" / "jupyter"


# -- without a running kernel ----------------------------------------------------------------


def test_healthy_install(env: dict[str, str], tmp_path: Path) -> None:
    """A kernelspec in a prefix on JUPYTER_PATH, a valid config: every check ok, exit 0."""
    env["JUPYTER_PATH"] = str(install_kernelspec(env, tmp_path / "prefix", "mpkernel-doctor"))
    use_config(env, tmp_path, ECHO_ONLY)
    doc = doctor_json(env)
    assert not_ok(doc) == []
    assert doc["status"] == "ok"
    sections = {c["section"] for c in doc["checks"]}
    assert sections == {"environment", "kernelspecs", "config", "workers", "runtime"}
    spec = check(doc, "kernelspecs", "mpkernel-doctor")
    assert spec["details"]["python"] == sys.executable
    for name in ("XPUB_VERBOSER", "ROUTER_MANDATORY", "ipc transport", "psutil", "IPython"):
        check(doc, "environment", name)
    echo = check(doc, "workers", "worker echo")["details"]
    assert isinstance(echo["pid"], int)
    assert echo["start_ms"] > 0
    assert echo["echo_ms"] > 0
    assert check(doc, "workers", "worker variables")["summary"] == "disabled in the configuration"
    assert check(doc, "runtime", "worker pipes dir")["details"]["mode"] == "0700"

    text = doctor(env)
    assert text.code == 0, text.stdout + text.stderr
    assert text.stdout.rstrip().endswith(f"all {len(doc['checks'])} checks ok")
    assert "\x1b[" not in text.stdout  # not a terminal: no colour
    assert "fix:" not in text.stdout


def test_broken_toml_names_file_line_and_key(env: dict[str, str], tmp_path: Path) -> None:
    path = use_config(env, tmp_path, ECHO_ONLY + '\n[kernel]\nlog_level = "loud"\n')
    text = doctor(env)
    assert text.code == 2
    assert f'{path}:8: kernel.log_level: must be one of "debug", "info"' in text.flat
    assert f"fix: fix it and re-check with: mpkernel config validate {path}" in text.flat

    doc = doctor_json(env)
    bad = check(doc, "config", "config file")
    assert bad["status"] == "fail"
    assert (bad["details"]["line"], bad["details"]["key"]) == (8, "kernel.log_level")
    # the rest of the file still applies, as at kernel start: only echo is started
    assert check(doc, "workers", "worker echo")["status"] == "ok"


def test_toml_syntax_error(env: dict[str, str], tmp_path: Path) -> None:
    path = use_config(env, tmp_path, "[kernel\n")
    doc = doctor_json(env)
    bad = check(doc, "config", "config file")
    assert bad["status"] == "fail"
    assert bad["summary"].startswith(f"{path}:1: invalid TOML")


def test_unimportable_handler(env: dict[str, str], tmp_path: Path) -> None:
    use_config(
        env,
        tmp_path,
        ECHO_ONLY + '\n[workers.broken]\ntarget = "test.broken"\n'
        'handler = "mpkernel_doctor_no_such_module:Handler"\n',
    )
    doc = doctor_json(env)
    assert doc["status"] == "fail"
    bad = check(doc, "config", "handler broken")
    assert bad["status"] == "fail"
    assert "mpkernel_doctor_no_such_module" in bad["summary"]
    assert "[workers.broken]" in bad["hint"]
    # reported once: the worker is not started, and echo still is
    assert not [c for c in doc["checks"] if c["name"] == "worker broken"]
    echo = check(doc, "workers", "worker echo")
    assert echo["status"] == "ok", echo
    assert [c["name"] for c in not_ok(doc)] == ["handler broken"]

    text = doctor(env)
    assert text.code == 2
    assert "FAIL  handler broken:" in text.stdout


def test_kernelspec_with_missing_interpreter(env: dict[str, str], tmp_path: Path) -> None:
    use_config(env, tmp_path, ECHO_ONLY)
    spec_dir = Path(env["JUPYTER_PATH"]) / "kernels" / "mpkernel-gone"
    spec_dir.mkdir(parents=True)
    gone = str(tmp_path / "deleted-env" / "bin" / "python3")
    argv = [gone, "-m", "mpkernel", "run", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "gone", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")

    doc = doctor_json(env)
    bad = check(doc, "kernelspecs", "mpkernel-gone")
    assert bad["status"] == "fail"
    assert bad["summary"] == f"interpreter {gone} does not exist"
    assert "mpkernel install" in bad["hint"]
    assert "--name mpkernel-gone" in bad["hint"]

    text = doctor(env)
    assert text.code == 2
    assert f"FAIL mpkernel-gone: interpreter {gone} does not exist" in text.flat
    assert "fix: reinstall it from the right environment: mpkernel install" in text.flat


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An interpreter with this environment's packages but another sys.prefix: Jupyter always
    searches `sys.prefix/share/jupyter`, where this environment may have its own kernelspec."""
    root = tmp_path_factory.mktemp("bare-env")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    purelib = sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})["purelib"]
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "mpkernel-doctor-test.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n", encoding="utf-8"
    )
    yield str(root / "bin" / "python")
    shutil.rmtree(root, ignore_errors=True)


def test_no_kernelspec_warns_with_the_install_hint(
    env: dict[str, str], tmp_path: Path, bare_python: str
) -> None:
    use_config(env, tmp_path, ECHO_ONLY)
    doc = doctor_json(env, python=bare_python)
    assert [c["name"] for c in not_ok(doc)] == ["kernelspec"]
    missing = check(doc, "kernelspecs", "kernelspec")
    assert missing["status"] == "warn"
    assert missing["hint"] == "install one: mpkernel install --sys-prefix"
    assert doc["status"] == "warn"

    text = doctor(env, python=bare_python)
    assert text.code == 1
    assert "WARN  kernelspec: no kernelspec runs mpkernel" in text.stdout
    assert "fix: install one: mpkernel install --sys-prefix" in text.stdout


# -- against a running kernel ----------------------------------------------------------------


def start_configured_kernel(config: Path) -> KernelHandle:
    """The suite's `mpkernel-test` kernelspec, run with MPKERNEL_CONFIG=config."""
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel(env={**os.environ, "MPKERNEL_CONFIG": str(config)})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
    except BaseException:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    assert km.provisioner is not None
    pid = km.provisioner.pid  # type: ignore[attr-defined]
    return KernelHandle(KERNEL_NAME, km, kc, pid, CHANNELS)


@pytest.fixture
def configured_kernel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KernelHandle]:
    """A kernel whose configuration is the test's `config_text` parameter (default ECHO_ONLY)."""
    config = tmp_path / "kernel-config.toml"
    config.write_text(getattr(request, "param", ECHO_ONLY), encoding="utf-8")
    handle = start_configured_kernel(config)
    try:
        yield handle
    finally:
        stop_kernel(handle)


def comm_closed(comm_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: kind(m) == "comm_close" and m["content"]["comm_id"] == comm_id


def open_echo_comm(handle: KernelHandle) -> tuple[str, int]:
    """Open an `mpkernel.echo` comm and ask its worker for its pid."""
    kc, comm_id = handle.kc, uuid.uuid4().hex
    send_request(kc, "comm_open", {"comm_id": comm_id, "target_name": "mpkernel.echo", "data": {}})
    request = {"jsonrpc": "2.0", "id": "pid", "method": "pid"}
    send_request(kc, "comm_msg", {"comm_id": comm_id, "data": request})
    reply = recv(
        kc,
        "iopub",
        lambda m: kind(m) == "comm_msg" and m["content"]["comm_id"] == comm_id,
        what=f"the pid reply on comm {comm_id}",
    )
    pid = reply["content"]["data"]["result"]
    assert isinstance(pid, int)
    return comm_id, pid


@pytest.mark.mpkernel_only
def test_running_kernel_by_kernel_id(
    env: dict[str, str], tmp_path: Path, configured_kernel: KernelHandle
) -> None:
    """Heartbeat, kernel_info, comm_info and each worker through the health comm; the kernel
    is found by id in the (private) Jupyter runtime directory."""
    _, worker_pid = open_echo_comm(configured_kernel)
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    runtime.mkdir(mode=0o700)
    kernel_id = f"doctor{uuid.uuid4().hex[:12]}"
    shutil.copy(configured_kernel.km.connection_file, runtime / f"kernel-{kernel_id}.json")
    use_config(env, tmp_path, ECHO_ONLY)

    doc = doctor_json(env, "--kernel-id", kernel_id[:10])
    assert not_ok(doc) == []
    names = [c["name"] for c in doc["checks"] if c["section"] == "kernel"]
    assert names == [
        *("connection file", "transport", "heartbeat", "kernel_info", "comm_info"),
        *("health", "worker echo", "iopub"),
    ]
    assert check(doc, "kernel", "kernel_info")["details"]["implementation"] == "mpkernel"
    assert check(doc, "kernel", "transport")["details"] == {"encrypted": False}
    assert check(doc, "kernel", "comm_info")["details"]["comms"] == {"mpkernel.echo": 1}
    assert check(doc, "kernel", "health")["details"] == {
        "pid": configured_kernel.pid,
        "comms": 1,
    }
    echo = check(doc, "kernel", "worker echo")["details"]
    assert (echo["pid"], echo["state"], echo["open_comms"], echo["crashes"]) == (
        worker_pid,
        "ready",
        1,
        0,
    )
    assert echo["rss"] > 0
    assert check(doc, "kernel", "iopub")["details"]["subscribers"] >= 2  # the test + the doctor

    # The doctor closed its health comm again: only the test's echo comm is open.
    comm_info = send_request(configured_kernel.kc, "comm_info_request", {})
    reply = recv(configured_kernel.kc, "shell", lambda m: m["parent_header"]["msg_id"] == comm_info)
    assert [c["target_name"] for c in reply["content"]["comms"].values()] == ["mpkernel.echo"]


@pytest.mark.mpkernel_only
@pytest.mark.crash
@pytest.mark.parametrize("configured_kernel", [CRASH_LOOP], indirect=True)
def test_running_kernel_with_a_worker_in_a_crash_loop(
    env: dict[str, str], tmp_path: Path, configured_kernel: KernelHandle
) -> None:
    """SIGKILL the echo worker more than max_restarts times: the supervisor disables it and
    the doctor flags the crash loop (exit 2)."""
    kc = configured_kernel.kc
    for _ in range(MAX_RESTARTS + 1):
        comm_id, pid = open_echo_comm(configured_kernel)
        os.kill(pid, signal.SIGKILL)
        closed = recv(kc, "iopub", comm_closed(comm_id), what=f"comm_close of {comm_id}")
        assert closed["content"]["data"]["reason"] == "worker_crashed"
    use_config(env, tmp_path, ECHO_ONLY)

    doc = doctor_json(env, "--connection-file", configured_kernel.km.connection_file)
    assert doc["status"] == "fail"
    assert [c["name"] for c in not_ok(doc)] == ["worker echo"]
    echo = check(doc, "kernel", "worker echo")
    assert echo["summary"].startswith("crash loop: ")
    assert f"max_restarts = {MAX_RESTARTS}" in echo["summary"]
    assert "last exit: killed by SIGKILL" in echo["summary"]
    details = echo["details"]
    assert (details["state"], details["crashes"]) == ("disabled", MAX_RESTARTS + 1)

    text = doctor(env, "--connection-file", configured_kernel.km.connection_file)
    assert text.code == 2
    assert "FAIL  worker echo: crash loop:" in text.stdout
    assert "fix: see the kernel log for the worker's tracebacks" in text.flat


def free_ports(n: int) -> list[int]:
    """Ports nobody listens on (bound, read and released at once)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_dead_connection_file_fails_fast_and_clearly(env: dict[str, str], tmp_path: Path) -> None:
    use_config(env, tmp_path, ECHO_ONLY)
    shell, iopub, stdin, control, hb = free_ports(5)
    info = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        **{"shell_port": shell, "iopub_port": iopub, "stdin_port": stdin},
        **{"control_port": control, "hb_port": hb},
        "key": uuid.uuid4().hex,
        "signature_scheme": "hmac-sha256",
    }
    path = tmp_path / "kernel-dead.json"
    path.write_text(json.dumps(info), encoding="utf-8")

    doc = doctor_json(env, "--connection-file", str(path))
    kernel = [c for c in doc["checks"] if c["section"] == "kernel"]
    assert [(c["name"], c["status"]) for c in kernel] == [
        ("connection file", "ok"),
        ("transport", "ok"),
        ("heartbeat", "fail"),
    ]
    assert "the kernel is not running" in kernel[2]["summary"]
    assert doc["status"] == "fail"

    text = doctor(env, "--connection-file", str(path))
    assert text.code == 2
    assert "FAIL  heartbeat: no answer within 3s" in text.stdout


def test_missing_connection_file(env: dict[str, str], tmp_path: Path) -> None:
    use_config(env, tmp_path, ECHO_ONLY)
    doc = doctor_json(env, "--connection-file", str(tmp_path / "nope.json"))
    assert [c["name"] for c in not_ok(doc)] == ["connection file"]
    doc = doctor_json(env, "--kernel-id", "no-such-kernel")
    bad = check(doc, "kernel", "connection file")
    assert "kernel-no-such-kernel" in bad["summary"]
