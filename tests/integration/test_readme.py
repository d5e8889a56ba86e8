"""Every command of README.md, run for real: the newcomer's path, in a throwaway HOME.

The README's shell blocks (```bash, also sh/shell/console) are parsed into commands (comments
stripped, continuation lines joined). ``EXERCISED`` maps each command, as its exact string,
to the test that runs it and how: `test_every_readme_command_is_exercised` fails when the
README shows a command the table does not know (a new command needs a test) and when the
table names a command the README no longer shows.

Commands run with ``bash -c`` from the repository root, so ``.venv/bin/...`` is the real
virtual environment, under a private HOME: HOME, XDG_*, JUPYTER_{CONFIG,DATA,RUNTIME}_DIR and
IPYTHONDIR point into tmp_path (at their usual places under that HOME); JUPYTER_PATH and
MPKERNEL_CONFIG are unset. ``~`` in a command is that HOME. The user's own configuration and
kernelspecs are never read or written; what the commands change in ``.venv`` (tools/demo.sh
installs packages and the ``mpkernel`` kernelspec there) is what the README says they do.

Where the README's command is interactive or long (JupyterLab, the console, the test suite,
the benchmarks) the table records the exact command that stands in for it. Every wait is on
output, HTTP or a process, with a deadline; every process started is stopped in ``finally``
and, for the commands that start kernels, no process naming the test's tmp_path may be left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from mpkernel.config.model import BUILTIN_WORKERS
from tests.frontend import (
    CHANNELS,
    PROCESS_EXIT_TIMEOUT,
    STARTUP_TIMEOUT,
    KernelHandle,
    process_tree,
    stop_kernel,
    wait_gone,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV = ROOT / ".venv"
SHELL_FENCES = ("bash", "sh", "shell", "console", "zsh")


@dataclass(frozen=True)
class Exercise:
    """How one README command is exercised."""

    test: str  #: the test function that runs it
    how: str  #: what is run and what is checked
    run: str | None = None  #: the command actually run, when not the README's own


MKDIR_CONFIG = (
    "mkdir -p ~/.config/mpkernel && cp examples/config.toml ~/.config/mpkernel/config.toml"
)
INSTALL_USER = (
    ".venv/bin/mpkernel install --user --name mpkernel-mine "
    '--display-name "Python 3 (mpkernel, mine)" --config ~/.config/mpkernel/config.toml'
)
DOCTOR_CONNECTION_FILE = (
    ".venv/bin/mpkernel doctor --connection-file "
    '"$(.venv/bin/jupyter --runtime-dir)/kernel-<id>.json"'
)

#: Every command of the README's shell blocks -> how this file runs it.
EXERCISED: dict[str, Exercise] = {
    "bash tools/demo.sh": Exercise(
        "test_demo",
        "run as is (setup.sh into .venv, kernelspec --sys-prefix, tour.ipynb on mpkernel); "
        "exit 0 and the notebook's outputs printed",
    ),
    "bash tools/test.sh": Exercise(
        "test_test_sh",
        "run with `--collect-only -q` (the arguments go to pytest; the whole suite from "
        "inside itself would recurse): ruff, ruff format, mypy pass and tests are collected",
        run="bash tools/test.sh --collect-only -q",
    ),
    ".venv/bin/pip install jupyterlab jupyter_console": Exercise(
        "test_install_jupyter_and_list_kernelspecs",
        "run as is (already satisfied: the test extras have both); exit 0",
    ),
    ".venv/bin/jupyter kernelspec list": Exercise(
        "test_install_jupyter_and_list_kernelspecs",
        "run as is: lists mpkernel from .venv (and, in test_configure, the user kernelspec)",
    ),
    ".venv/bin/jupyter lab": Exercise(
        "test_jupyter_lab",
        "the server without a browser on a free port with a token (and --allow-root as "
        "root, as the README says); through its REST API a kernel `mpkernel` is started, "
        "`print(6*7)` and kernel_info run over the kernel's websocket, then the kernel is "
        "deleted and the server shut down",
        run=(
            ".venv/bin/jupyter lab --no-browser --port={port} --ServerApp.port_retries=0 "
            "--IdentityProvider.token={token} --ServerApp.root_dir={root}{as_root}"
        ),
    ),
    ".venv/bin/jupyter console --kernel mpkernel": Exercise(
        "test_jupyter_console",
        "with --simple-prompt and `print(6*7)`, `exit` on stdin: prints 42 and mpkernel's "
        "banner, exits 0 and leaves no kernel behind",
        run=".venv/bin/jupyter console --kernel mpkernel --simple-prompt",
    ),
    MKDIR_CONFIG: Exercise("test_configure", "run as is: the file is in the temporary HOME"),
    ".venv/bin/mpkernel config validate ~/.config/mpkernel/config.toml": Exercise(
        "test_configure", f"run as is: `<path>: ok (workers: {', '.join(BUILTIN_WORKERS)})`"
    ),
    ".venv/bin/mpkernel config show": Exercise(
        "test_configure", "run as is: the effective configuration, read from that file"
    ),
    ".venv/bin/mpkernel doctor": Exercise(
        "test_configure",
        "run as is, before and after the user kernelspec is installed: every check ok, "
        "exit 0, the echo, variables and data explorer workers started",
    ),
    INSTALL_USER: Exercise(
        "test_configure",
        "run as is: kernel.json in the temporary HOME passes --config with that file",
    ),
    ".venv/bin/mpkernel uninstall --name mpkernel-mine": Exercise(
        "test_configure", "run as is: removes exactly the user kernelspec; .venv's stays"
    ),
    'ls -t "$(.venv/bin/jupyter --runtime-dir)"': Exercise(
        "test_doctor_on_a_running_kernel",
        "run as is while a kernel started by jupyter_client runs: lists its connection file",
    ),
    DOCTOR_CONNECTION_FILE: Exercise(
        "test_doctor_on_a_running_kernel",
        "with <id> that kernel's id: the kernel section's checks are all ok, exit 0",
        run=(
            ".venv/bin/mpkernel doctor --connection-file "
            '"$(.venv/bin/jupyter --runtime-dir)/kernel-{kernel_id}.json"'
        ),
    ),
    ".venv/bin/python tools/bench.py": Exercise(
        "test_benchmark",
        "with --quick (every scenario, smallest counts): exit 0 (every correctness check on "
        "mpkernel passed, every scenario finished), the report, no process left behind",
        run=".venv/bin/python tools/bench.py --quick",
    ),
}

#: a line of each benchmark's report on stdout
BENCH_REPORT = {"bench": "total run time"}


# -- the README's commands -------------------------------------------------------------------


def strip_comment(line: str) -> str:
    """The line without its shell comment (a `#` at the start or after blank, unquoted)."""
    quote = ""
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def shell_commands(markdown: str) -> list[str]:
    """Every command of every shell-fenced block, in order."""
    commands: list[str] = []
    fence: str | None = None
    pending: list[str] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence = stripped[3:].strip().lower()
            else:
                assert not pending, f"README: a shell block ends in a continuation: {pending}"
                fence = None
            continue
        if fence not in SHELL_FENCES:
            continue
        code = strip_comment(line).strip()
        if code.endswith("\\"):
            pending.append(code[:-1].strip())
            continue
        command = " ".join([*pending, code]).strip()
        pending = []
        if command:
            commands.append(command)
    return commands


def readme_commands() -> list[str]:
    return shell_commands(README.read_text(encoding="utf-8"))


def command(readme_command: str, **values: str) -> str:
    """What to run for a README command (the README must still show it)."""
    assert readme_command in readme_commands(), f"README no longer shows {readme_command!r}"
    run = EXERCISED[readme_command].run
    return readme_command if run is None else run.format(**values)


def test_shell_commands_parser() -> None:
    text = (
        "intro `not a command`\n"
        "```bash\n"
        "a --x 1    # comment\n"
        "# a whole comment line\n"
        "\n"
        "b \"quoted # not a comment\" 'and # this' c\\#d \\\n"
        "    --more   # after a continuation\n"
        "```\n"
        "```\n"
        "synopsis [--not-run]\n"
        "```\n"
        "```toml\n"
        'key = "v"\n'
        "```\n"
        "```sh\n"
        "c\n"
        "```\n"
    )
    assert shell_commands(text) == [
        "a --x 1",
        "b \"quoted # not a comment\" 'and # this' c\\#d --more",
        "c",
    ]


def test_every_readme_command_is_exercised() -> None:
    commands = readme_commands()
    assert commands[:2] == ["bash tools/demo.sh", "bash tools/test.sh"], commands[:2]
    unknown = [c for c in commands if c not in EXERCISED]
    assert not unknown, (
        "README.md shows commands no test runs; add each to EXERCISED in "
        f"{Path(__file__).name} with a test that runs it: {unknown}"
    )
    stale = [c for c in EXERCISED if c not in commands]
    assert not stale, f"EXERCISED names commands README.md no longer shows: {stale}"
    assert len(set(commands)) == len(commands), "a README command appears twice"
    for readme_command, exercise in EXERCISED.items():
        assert callable(globals().get(exercise.test)), (readme_command, exercise.test)
        if exercise.run is not None:
            # the stand-in runs the README's program, not something else
            program = readme_command.split()[:2]
            assert exercise.run.split()[:2] == program, (readme_command, exercise.run)


# -- running them ----------------------------------------------------------------------------


@dataclass
class Ran:
    command: str
    code: int
    stdout: str
    stderr: str

    @property
    def flat(self) -> str:
        """stdout with line wrapping undone (doctor wraps at 80 columns)."""
        return " ".join(self.stdout.split())

    def __str__(self) -> str:
        return (
            f"`{self.command}` exited {self.code}\n"
            f"--- stdout (end)\n{self.stdout[-4000:]}\n--- stderr (end)\n{self.stderr[-4000:]}"
        )


def kill_tree(procs: list[psutil.Process]) -> list[psutil.Process]:
    """SIGKILL the processes; returns the ones that were still alive."""
    alive = wait_gone(procs, 0)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    wait_gone(alive, PROCESS_EXIT_TIMEOUT)
    return alive


def sh(line: str, env: dict[str, str], *, timeout: float = 120, stdin: str | None = None) -> Ran:
    """Run a command line with `bash -c` from the repository root."""
    proc = subprocess.Popen(
        ["bash", "-c", line],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process_tree(proc.pid))
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"{Ran(line, -9, stdout, stderr)}\n(killed: still running after {timeout} s)"
        ) from None
    except BaseException:
        kill_tree(process_tree(proc.pid))
        proc.communicate()
        raise
    return Ran(line, proc.returncode, stdout, stderr)


def ok(line: str, env: dict[str, str], **kw: Any) -> Ran:
    ran = sh(line, env, **kw)
    assert ran.code == 0, str(ran)
    return ran


def naming(path: Path) -> list[psutil.Process]:
    """Processes whose command line names `path` (kernels whose connection file is in the
    temporary runtime dir, a server rooted there), with their descendants."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and any(str(path) in arg for arg in proc.cmdline()):
                for p in process_tree(proc.pid):
                    found[p.pid] = p
        except psutil.Error:
            continue
    return list(found.values())


def reap(path: Path) -> list[str]:
    """Wait a little for what the commands started to exit, kill the rest; describe those."""
    procs = naming(path)
    survivors = wait_gone(procs, PROCESS_EXIT_TIMEOUT)
    described = []
    for proc in survivors:
        try:
            described.append(f"pid {proc.pid}: {' '.join(proc.cmdline())}")
        except psutil.Error:
            described.append(f"pid {proc.pid}")
    kill_tree(survivors)
    return described


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """The environment of a newcomer whose HOME is `home`."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_", "MPKERNEL_", "XDG_", "IPYTHON")) and k != "NO_COLOR"
    }
    data = home / ".local" / "share"
    environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(data),
        XDG_CACHE_HOME=str(home / ".cache"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(data / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(data / "jupyter" / "runtime"),
        IPYTHONDIR=str(home / ".ipython"),
    )
    return environ


@pytest.fixture(autouse=True)
def _venv_exists() -> None:
    assert (VENV / "bin" / "python").exists(), f"no {VENV}: run `bash tools/demo.sh` first"


def venv_kernelspec() -> Path:
    return VENV / "share" / "jupyter" / "kernels" / "mpkernel"


# -- the two commands ------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_demo(env: dict[str, str], tmp_path: Path) -> None:
    try:
        ran = ok(command("bash tools/demo.sh"), env, timeout=540)
    finally:
        left = reap(tmp_path)
    assert left == [], f"processes left behind: {left}"
    assert f"installed kernelspec mpkernel in {venv_kernelspec()}" in ran.stdout, str(ran)
    for text in ("Hello from mpkernel", "Temperature(31)", "[image/png ", "499999500000"):
        assert text in ran.stdout, f"{text!r} missing\n{ran}"
    assert "--- cell" in ran.stdout
    # A heading per notebook, and the kernels' log in a file the output names, not inline.
    assert "=== examples/tour.ipynb ===" in ran.stdout
    assert "=== examples/panes.ipynb ===" in ran.stdout
    assert "the kernels' log: " in ran.stdout
    assert "[mpkernel " not in ran.stdout + ran.stderr, str(ran)


@pytest.mark.timeout(600)
def test_test_sh(env: dict[str, str]) -> None:
    ran = ok(command("bash tools/test.sh"), env, timeout=540)
    # "N tests collected", or "N/M tests collected (K deselected)" when e2e is left out
    collected = re.search(r"^(\d+)(?:/\d+)? tests? collected", ran.stdout, re.MULTILINE)
    assert collected, str(ran)
    assert int(collected[1]) > 100, collected[0]
    assert "tests/integration/test_readme.py::test_demo" in ran.stdout


# -- JupyterLab and the console --------------------------------------------------------------


def test_install_jupyter_and_list_kernelspecs(env: dict[str, str]) -> None:
    ok(command(".venv/bin/pip install jupyterlab jupyter_console"), env, timeout=300)
    ran = ok(command(".venv/bin/jupyter kernelspec list"), env)
    assert re.search(rf"^\s*mpkernel\s+{re.escape(str(venv_kernelspec()))}$", ran.stdout, re.M), (
        str(ran)
    )


def test_jupyter_console(env: dict[str, str], tmp_path: Path) -> None:
    line = command(".venv/bin/jupyter console --kernel mpkernel")
    try:
        ran = ok(line, env, stdin="print(6*7)\nexit\n", timeout=90)
    finally:
        left = reap(tmp_path)
    assert left == [], f"processes left behind: {left}"
    assert re.search(r"(^|\s)42\s*$", ran.stdout, re.MULTILINE), str(ran)
    assert "on mpkernel" in ran.stdout, str(ran)  # the kernel's banner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A `jupyter lab` subprocess; its output is collected by a thread."""

    def __init__(self, line: str, env: dict[str, str], ready: str) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._marker = ready
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if self._marker in line:
                self.ready.set()
        self.ready.set()  # EOF: the server is gone

    def log(self) -> str:
        return "".join(self.lines[-80:])

    def wait_ready(self, base: str, token: str, timeout: float) -> Any:
        """Wait for the startup message, then until /api/status answers; its answer."""
        deadline = time.monotonic() + timeout
        assert self.ready.wait(timeout), f"no {self._marker!r} within {timeout} s:\n{self.log()}"
        # The server binds its port once its event loop runs, just after that message.
        while True:
            try:
                return http(base, token, "GET", "/api/status")
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError):
                    raise
                if time.monotonic() > deadline:
                    raise AssertionError(f"{base} refuses connections:\n{self.log()}") from exc
            try:  # paced by the server's exit, which ends the wait at once
                code = self.proc.wait(0.05)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"the server exited {code}:\n{self.log()}")

    def stop(self, timeout: float, *, terminate: bool) -> int | None:
        """Wait for the exit (after SIGTERM if `terminate`); kill the tree if it does not come."""
        try:
            if terminate and self.proc.poll() is None:
                self.proc.terminate()
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(process_tree(self.proc.pid))
            self.proc.wait()
            return None
        finally:
            self._reader.join(PROCESS_EXIT_TIMEOUT)
            assert self.proc.stdout is not None
            self.proc.stdout.close()


def http(
    base: str, token: str, method: str, path: str, body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None


def jupyter_message(msg_type: str, content: dict[str, Any], session: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "test_readme",
            "session": session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
        "buffers": [],
    }


async def over_websocket(url: str, requests: list[dict[str, Any]], timeout: float) -> list[Any]:
    """Send each request on the kernel's websocket; every message parented to one of them,
    until each has had its reply and its idle."""
    from tornado.websocket import websocket_connect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    conn = await asyncio.wait_for(websocket_connect(url), timeout)
    try:
        waiting = {r["header"]["msg_id"]: {"reply", "idle"} for r in requests}
        for req in requests:
            await conn.write_message(json.dumps(req))
        received: list[Any] = []
        while any(waiting.values()):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no reply and idle within {timeout} s; got {received}")
            raw = await asyncio.wait_for(conn.read_message(), left)
            assert raw is not None, f"the websocket closed; got {received}"
            assert isinstance(raw, str), "binary websocket message (buffers) not expected"
            msg = json.loads(raw)
            parent = msg.get("parent_header", {}).get("msg_id")
            if parent not in waiting:
                continue
            received.append(msg)
            if msg["channel"] == "shell" and msg["msg_type"].endswith("_reply"):
                waiting[parent].discard("reply")
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                waiting[parent].discard("idle")
        return received
    finally:
        conn.close()


@pytest.mark.timeout(240)
def test_jupyter_lab(env: dict[str, str], tmp_path: Path) -> None:
    """mpkernel under JupyterLab's server: started, executed and stopped through its APIs."""
    port, token = free_port(), uuid.uuid4().hex
    root = tmp_path / "notebooks"
    root.mkdir()
    as_root = " --allow-root" if os.geteuid() == 0 else ""  # as the README says
    line = command(
        ".venv/bin/jupyter lab", port=str(port), token=token, root=str(root), as_root=as_root
    )
    base = f"http://127.0.0.1:{port}"
    server = Server(line, env, ready="is running at")
    code: int | None = None
    shut_down = False
    try:
        status, body = server.wait_ready(base, token, 120)
        assert status == 200, body
        assert body["started"], body
        status, specs = http(base, token, "GET", "/api/kernelspecs")
        assert specs["kernelspecs"]["mpkernel"]["spec"]["display_name"] == "Python 3 (mpkernel)"

        status, kernel = http(base, token, "POST", "/api/kernels", {"name": "mpkernel"})
        assert status == 201, kernel
        kernel_id = kernel["id"]
        session = uuid.uuid4().hex
        execute = jupyter_message(
            "execute_request",
            {
                "code": "print(6*7)",
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            session,
        )
        info = jupyter_message("kernel_info_request", {}, session)
        url = f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?token={token}"
        received = asyncio.run(over_websocket(url, [execute, info], timeout=90))

        def of(request: dict[str, Any], msg_type: str) -> list[Any]:
            parent = request["header"]["msg_id"]
            return [
                m
                for m in received
                if m["parent_header"]["msg_id"] == parent and m["msg_type"] == msg_type
            ]

        assert "".join(m["content"]["text"] for m in of(execute, "stream")) == "42\n", received
        assert of(execute, "execute_reply")[0]["content"]["status"] == "ok"
        assert of(info, "kernel_info_reply")[0]["content"]["implementation"] == "mpkernel"

        status, _ = http(base, token, "DELETE", f"/api/kernels/{kernel_id}")
        assert status == 204
        status, kernels = http(base, token, "GET", "/api/kernels")
        assert kernels == []
        http(base, token, "POST", "/api/shutdown")
        shut_down = True
    finally:
        code = server.stop(60, terminate=not shut_down)
        left = reap(tmp_path)
    assert code == 0, f"the server exited {code}:\n{server.log()}"
    assert left == [], f"processes left behind: {left}"


# -- configuration and the doctor ------------------------------------------------------------


@pytest.mark.timeout(300)
def test_configure(env: dict[str, str], home: Path) -> None:
    config = home / ".config" / "mpkernel" / "config.toml"
    ok(command(MKDIR_CONFIG), env)
    assert config.read_bytes() == (ROOT / "examples" / "config.toml").read_bytes()

    ran = ok(command(".venv/bin/mpkernel config validate ~/.config/mpkernel/config.toml"), env)
    assert ran.stdout == f"{config}: ok (workers: {', '.join(BUILTIN_WORKERS)})\n", str(ran)

    ran = ok(command(".venv/bin/mpkernel config show"), env)
    assert ran.stdout.startswith(f'# mpkernel effective configuration, from "{config}"'), str(ran)
    assert "[workers.echo]" in ran.stdout

    doctor = command(".venv/bin/mpkernel doctor")
    ran = ok(doctor, env, timeout=180)
    assert f"config file: {config} is valid (workers: {', '.join(BUILTIN_WORKERS)})" in ran.flat, (
        str(ran)
    )
    assert "worker echo: ready in" in ran.flat, str(ran)
    assert "worker variables: ready in" in ran.flat, str(ran)
    assert "worker data_explorer: ready in" in ran.flat, str(ran)
    assert re.search(r"all \d+ checks ok$", ran.stdout.rstrip()), str(ran)

    user_spec = home / ".local" / "share" / "jupyter" / "kernels" / "mpkernel-mine"
    ran = ok(command(INSTALL_USER), env)
    assert ran.stdout == f"installed kernelspec mpkernel-mine in {user_spec}\n", str(ran)
    spec = json.loads((user_spec / "kernel.json").read_text(encoding="utf-8"))
    assert spec["display_name"] == "Python 3 (mpkernel, mine)"
    assert spec["argv"][-2:] == ["--config", str(config)]
    assert Path(spec["argv"][0]).parent == VENV / "bin"

    ran = ok(command(".venv/bin/jupyter kernelspec list"), env)
    assert re.search(rf"^\s*mpkernel-mine\s+{re.escape(str(user_spec))}$", ran.stdout, re.M)
    assert re.search(rf"^\s*mpkernel\s+{re.escape(str(venv_kernelspec()))}$", ran.stdout, re.M)
    ran = ok(doctor, env, timeout=180)  # the new kernelspec and its --config file check out
    assert f"mpkernel-mine: {user_spec} runs" in ran.flat, str(ran)

    ran = ok(command(".venv/bin/mpkernel uninstall --name mpkernel-mine"), env)
    assert ran.stdout == f"removed {user_spec}\n", str(ran)
    assert not user_spec.exists()
    assert (venv_kernelspec() / "kernel.json").exists()


@pytest.fixture
def running_kernel(env: dict[str, str]) -> Iterator[tuple[KernelHandle, str]]:
    """A kernel of .venv's `mpkernel` kernelspec started by jupyter_client in the private
    environment, its connection file in the private runtime dir; and its id."""
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    runtime.mkdir(parents=True, mode=0o700)
    kernel_id = str(uuid.uuid4())
    km = KernelManager(
        kernel_name="mpkernel",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(venv_kernelspec().parent)]),
        connection_file=str(runtime / f"kernel-{kernel_id}.json"),
    )
    km.start_kernel(env=env, cwd=str(ROOT))
    kc = km.client()
    kc.start_channels()
    assert km.provisioner is not None
    pid = km.provisioner.pid  # type: ignore[attr-defined]
    handle = KernelHandle("mpkernel", km, kc, pid, CHANNELS)
    try:
        kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        yield handle, kernel_id
    finally:
        stop_kernel(handle)


@pytest.mark.timeout(300)
def test_doctor_on_a_running_kernel(
    env: dict[str, str], running_kernel: tuple[KernelHandle, str]
) -> None:
    _, kernel_id = running_kernel

    ran = ok(command('ls -t "$(.venv/bin/jupyter --runtime-dir)"'), env)
    assert f"kernel-{kernel_id}.json" in ran.stdout.split(), str(ran)

    ran = ok(command(DOCTOR_CONNECTION_FILE, kernel_id=kernel_id), env, timeout=180)
    kernel_section = ran.stdout.split("\nkernel\n", 1)[-1]
    for check in ("connection file", "heartbeat", "kernel_info", "health", "iopub"):
        assert re.search(rf"^  ok +{check}", kernel_section, re.MULTILINE), f"{check}\n{ran}"
    assert re.search(r"all \d+ checks ok$", ran.stdout.rstrip()), str(ran)


# -- the benchmarks --------------------------------------------------------------------------

BENCHMARKS = [c for c in EXERCISED if c.startswith(".venv/bin/python tools/bench")]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("readme_command", BENCHMARKS, ids=lambda c: Path(c.split()[1]).stem)
def test_benchmark(env: dict[str, str], tmp_path: Path, readme_command: str) -> None:
    env = {**env, "TMPDIR": str(tmp_path)}  # the benchmark's kernels live under tmp_path
    try:
        ran = ok(command(readme_command), env, timeout=240)
    finally:
        left = reap(tmp_path)
    assert left == [], f"processes left behind: {left}"
    marker = BENCH_REPORT[Path(readme_command.split()[1]).stem]
    assert marker in ran.stdout, str(ran)
