"""What the end-to-end tests share: the tools they need (skip or, with CI=true, fail without
them), the JupyterLab server they drive (start, REST, shutdown proven with psutil), a Jupyter
Kernel Gateway for JupyterLab to run its kernels on, a second client of one of its kernels,
and where screenshots go.

The server runs from this interpreter (``python -m jupyterlab``) with the private
JUPYTER_PATH / IPYTHONDIR of tests/conftest.py, plus its own config, data and runtime dirs,
so that lab settings, workspaces and connection files never touch the user's. Its
``mpkernel-test`` kernelspec is the one tests/conftest.py writes with ``metadata.debugger``
set, as ``mpkernel install`` writes it: JupyterLab 4 offers its debugger only for kernelspecs
that declare it.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager

from mpkernel.client import CommClient
from tests.conftest import KERNEL_NAME
from tests.frontend import (
    PROCESS_EXIT_TIMEOUT,
    STARTUP_TIMEOUT,
    frontend,
    process_tree,
    sync,
    wait_gone,
)
from tests.integration.comm_client import (
    ECHO,
    HEALTH,
    new_rpc_id,
)

#: CI must run these tests: a missing browser or tmux there is a failure, not a skip.
CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
#: Hang guards (seconds); none of them is a speed assertion.
SERVER_START_TIMEOUT = 60.0
#: The server shuts its kernels down on SIGTERM before exiting.
SERVER_STOP_TIMEOUT = 30.0
#: Between two looks at something that offers nothing to block on (HTTP status, tmux screen).
POLL_INTERVAL = 0.1


def missing(*needs: str) -> list[str]:
    """The tools among ``needs`` (chromium, playwright, tmux) that this machine lacks."""
    absent = []
    for need in needs:
        if need == "chromium" and not os.access(CHROMIUM, os.X_OK):
            absent.append(f"{CHROMIUM} (Debian package chromium)")
        elif need == "playwright" and importlib.util.find_spec("playwright") is None:
            absent.append("the Python package playwright (pip install playwright)")
        elif need == "tmux" and shutil.which("tmux") is None:
            absent.append("tmux (Debian package tmux)")
        elif need not in ("chromium", "playwright", "tmux"):
            raise ValueError(f"unknown requirement {need!r}")
    return absent


def require(*needs: str) -> None:
    """Skip the calling test module (or fixture) when a tool it needs is missing; under
    CI=true fail instead, so that a CI machine without them cannot pass by skipping."""
    absent = missing(*needs)
    if not absent:
        return
    reason = "end-to-end tests need " + ", ".join(absent)
    if CI:
        pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def artifact_name(nodeid: str) -> str:
    """A file name for a test's screenshots and logs: its node id without the path."""
    name = nodeid.split("::", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {proc.pid}"


def _kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    wait_gone(procs, PROCESS_EXIT_TIMEOUT)


def write_kernelspec(
    jupyter_path: Path, name: str = KERNEL_NAME, display_name: str | None = None, **env: str
) -> str:
    """The test kernelspec with the debugger flag, under ``jupyter_path`` as ``name``
    (another display name and environment variables for a variant); returns its display
    name (the launcher card's title)."""
    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME).to_dict()
    spec["metadata"] = {**spec.get("metadata", {}), "debugger": True}
    if display_name is not None:
        spec["display_name"] = display_name
    if env:
        spec["env"] = {**spec.get("env", {}), **env}
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    display_name: str = spec["display_name"]
    return display_name


def _write_lab_settings(config_dir: Path) -> None:
    # A fresh config asks about Jupyter news in a toast that can cover what a test clicks.
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )


@dataclass
class LabServer:
    """A running Jupyter server (JupyterLab, or a Kernel Gateway), its REST API, and the
    proof that it is gone."""

    url: str
    process: subprocess.Popen[bytes]
    root_dir: Path
    runtime_dir: Path
    log_path: Path
    display_name: str
    #: The first JUPYTER_PATH entry, holding the test kernelspec; the server lists a
    #: kernelspec added under its kernels/ without a restart.
    jupyter_path: Path
    _opener: urllib.request.OpenerDirector = field(repr=False)
    _cookies: http.cookiejar.CookieJar = field(repr=False)
    _xsrf: str | None = None
    #: what answers once the server is up (a Kernel Gateway has no /api/status)
    status_path: str = "/api/status"
    #: the process whose children are the kernels: this server's own, or its gateway's
    kernel_host: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    # -- REST ---------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        with self._opener.open(self.url + path, timeout=30) as resp:
            return json.load(resp)

    def _xsrf_token(self) -> str:
        # Without a token the server still wants the _xsrf cookie echoed in a header on
        # every state-changing request; GET /lab sets it.
        if self._xsrf is None:
            with self._opener.open(self.url + "/lab", timeout=30) as resp:
                resp.read()
            tokens = [c.value for c in self._cookies if c.name == "_xsrf" and c.value]
            assert tokens, "GET /lab set no _xsrf cookie"
            self._xsrf = tokens[0]
        return self._xsrf

    def delete(self, path: str) -> None:
        req = urllib.request.Request(
            self.url + path, method="DELETE", headers={"X-XSRFToken": self._xsrf_token()}
        )
        with self._opener.open(req, timeout=60) as resp:
            assert resp.status == 204, f"DELETE {path}: HTTP {resp.status}"

    def sessions(self) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = self.get("/api/sessions")
        return sessions

    def only_kernel_id(self) -> str:
        """The kernel of the one session a test opened."""
        sessions = self.sessions()
        assert len(sessions) == 1, f"expected one session, found {sessions}"
        kernel_id: str = sessions[0]["kernel"]["id"]
        return kernel_id

    def connection_file(self, kernel_id: str) -> Path:
        path = self.runtime_dir / f"kernel-{kernel_id}.json"
        assert path.is_file(), f"no connection file {path} for kernel {kernel_id}"
        return path

    def wait_no_connections(self, timeout: float = 30.0) -> None:
        """Until the server has seen every browser websocket close."""
        deadline = time.monotonic() + timeout
        while (status := self.get("/api/status"))["connections"] != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"websockets still open after {timeout}s: {status}")
            self._wait_exit(POLL_INTERVAL)

    def wait_ready(self, timeout: float) -> None:
        """Until ``/api/status`` answers; fails at once if the server exits."""
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.url} did not answer {self.status_path} within {timeout}s; "
                    f"log:\n{self.log_tail()}"
                )
            self._wait_exit(POLL_INTERVAL)

    def _answers(self) -> bool:
        try:
            self.get(self.status_path)
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    # -- processes ----------------------------------------------------------------------

    def _wait_exit(self, timeout: float) -> None:
        """Block up to ``timeout`` on the server's exit; an exit is an error here."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        if self.process.returncode is not None:
            raise AssertionError(
                f"the server {self.url} exited ({self.process.returncode}); "
                f"log: {self.log_path}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def descendants(self) -> list[psutil.Process]:
        """The kernels this server started and their processes."""
        return process_tree(self.kernel_host or self.pid)[1:]

    def shutdown_sessions(self) -> None:
        """Shut every session and kernel down via REST and prove their processes are gone."""
        procs = self.descendants()
        for session in self.sessions():
            self.delete(f"/api/sessions/{session['id']}")
        for kernel in self.get("/api/kernels"):
            self.delete(f"/api/kernels/{kernel['id']}")
        survivors = wait_gone(procs, PROCESS_EXIT_TIMEOUT)
        survivors += [p for p in self.descendants() if p not in survivors]
        if survivors:
            desc = [_describe(p) for p in survivors]
            _kill(survivors)
            raise AssertionError(f"kernel processes left after their sessions' shutdown: {desc}")

    def stop(self) -> None:
        """SIGTERM, SIGKILL after a deadline; then the server, every kernel it started and
        their children must be gone (checked with psutil, survivors killed and reported)."""
        procs = process_tree(self.pid)
        problems = []
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"the server ignored SIGTERM for {SERVER_STOP_TIMEOUT}s")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=PROCESS_EXIT_TIMEOUT)
        survivors = wait_gone(procs, PROCESS_EXIT_TIMEOUT)
        # A kernel that left the tree (reparented) still names its connection file.
        runtime = str(self.runtime_dir)
        for p in psutil.process_iter(["cmdline"]):
            cmdline = p.info["cmdline"] or []
            if p not in survivors and any(runtime in arg for arg in cmdline):
                survivors.append(p)
        if survivors:
            problems.append(f"processes left behind: {[_describe(p) for p in survivors]}")
            _kill(survivors)
        if problems:
            raise AssertionError("; ".join(problems) + f" (server log {self.log_path})")


def _server_dirs(base: Path) -> tuple[dict[str, Path], str, dict[str, str]]:
    """A server's private root, config, data, runtime and JUPYTER_PATH dirs under ``base``,
    the test kernelspec's display name, and the environment that points there."""
    dirs = {name: base / name for name in ("root", "config", "data", "runtime", "jupyter")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    display_name = write_kernelspec(dirs["jupyter"])
    old_path = os.environ.get("JUPYTER_PATH")
    env = {
        **os.environ,
        "JUPYTER_PATH": str(dirs["jupyter"]) + (os.pathsep + old_path if old_path else ""),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
    }
    return dirs, display_name, env


def _start_server(
    argv: list[str],
    env: dict[str, str],
    dirs: dict[str, Path],
    display_name: str,
    log_path: Path,
    *,
    port: int,
    status_path: str = "/api/status",
    kernel_host: int | None = None,
) -> LabServer:
    """Run ``argv`` (a server listening on ``port``) and wait until ``status_path`` answers."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        # A session of its own: a last-resort SIGKILL reaches every process of the server.
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=dirs["root"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    cookies = http.cookiejar.CookieJar()
    server = LabServer(
        url=f"http://127.0.0.1:{port}",
        process=process,
        root_dir=dirs["root"],
        runtime_dir=dirs["runtime"],
        log_path=log_path,
        display_name=display_name,
        jupyter_path=dirs["jupyter"],
        _opener=urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies)),
        _cookies=cookies,
        status_path=status_path,
        kernel_host=kernel_host,
    )
    try:
        server.wait_ready(SERVER_START_TIMEOUT)
    except BaseException:
        server.stop()
        raise
    return server


def start_lab_server(base: Path, log_path: Path, *, gateway: LabServer | None = None) -> LabServer:
    """Start JupyterLab under ``base`` (root, config, data, runtime dirs) on a free port and
    wait until ``/api/status`` answers. With ``gateway`` its kernels run there
    (``--gateway-url``), not under JupyterLab."""
    dirs, display_name, env = _server_dirs(base)
    _write_lab_settings(dirs["config"])
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        # The port was free a moment ago; if it is taken now, fail rather than move on to
        # another port the tests would not know.
        "--ServerApp.port_retries=0",
        "--ServerApp.token=",
        "--ServerApp.password=",
        "--allow-root",
        f"--ServerApp.root_dir={dirs['root']}",
        # window.jupyterapp: how a test reaches the page's kernel connection, as an
        # extension would, to open a comm from the frontend side.
        "--LabApp.expose_app_in_browser=True",
    ]
    if gateway is not None:
        argv.append(f"--gateway-url={gateway.url}")
    return _start_server(
        argv,
        env,
        dirs,
        display_name,
        log_path,
        port=port,
        kernel_host=None if gateway is None else gateway.pid,
    )


def start_kernel_gateway(base: Path, log_path: Path) -> LabServer:
    """Start a Jupyter Kernel Gateway (``jupyter_kernel_gateway``, its default
    jupyter-websocket mode) on a free port, serving the test kernelspec, and wait until it
    lists its kernelspecs."""
    dirs, display_name, env = _server_dirs(base)
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        f"--KernelGatewayApp.default_kernel_name={KERNEL_NAME}",
        # JupyterLab lists the running kernels (GET /api/kernels), which the gateway
        # refuses unless told otherwise.
        "--JupyterWebsocketPersonality.list_kernels=True",
    ]
    return _start_server(
        argv, env, dirs, display_name, log_path, port=port, status_path="/api/kernelspecs"
    )


class KernelPeer:
    """A second client of a kernel the server started, on shell and IOPub, as another
    frontend would connect with the kernel's connection file."""

    def __init__(self, connection_file: Path) -> None:
        self.kc = BlockingKernelClient(connection_file=str(connection_file))
        self.kc.load_connection_file()
        self.kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        try:
            self.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
            sync(self.kc)
        except BaseException:
            self.close()
            raise
        self.comms = CommClient(frontend(self.kc))

    def __enter__(self) -> KernelPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.kc.stop_channels()

    def comm_info(self) -> dict[str, Any]:
        return self.comms.comm_info()

    def close_comm(self, comm_id: str) -> None:
        self.comms.close(comm_id)

    def echo_journal(self) -> list[dict[str, Any]]:
        """What the echo worker's handlers went through (``on_close`` calls with their
        reason...), read over a comm of this client's own, closed afterwards."""
        journal: list[dict[str, Any]] = self.call_once(ECHO, "journal")
        return journal

    def worker_pid(self, name: str) -> int:
        """The pid of the running worker ``name``, from the kernel's health status."""
        status: dict[str, Any] = self.call_once(HEALTH, "status")
        pids = [w["pid"] for w in status["workers"] if w["name"] == name and w.get("pid")]
        assert len(pids) == 1, f"expected one running {name} worker: {status['workers']}"
        pid: int = pids[0]
        return pid

    def call_once(self, target: str, method: str) -> Any:
        """The result of one JSON-RPC ``method`` on a comm of this client's own on
        ``target``, closed afterwards."""
        comm_id = self.comms.open(target)
        try:
            return self.comms.call(comm_id, method, rpc_id=new_rpc_id()).result
        finally:
            self.close_comm(comm_id)
