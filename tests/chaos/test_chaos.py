"""Chaos: a kernel under load while its workers are killed at random, for a minute.

Three actors, each a thread with a client (its own session) of one kernel:

- the executor runs cells that print and send in-process comm messages in turn; each cell's
  output must come in program order (I1, I2), with its reply and one idle last (I3);
- the requester drives RPCs, as Positron sends them (no JSON-RPC id), on the echo comm, the
  variables comm and data explorer comms (opened with `mpkernel.view`); every RPC must get a
  result or a JSON-RPC error, and a comm whose worker died must get its `comm_close` (then
  it is opened again);
- the killer SIGKILLs a random worker process every 200 ms.

Afterwards the kernel must answer, every comm still believed open must answer an RPC, no
worker process may outlive the kernel, and the main process's RSS may not have grown by more
than `RSS_GROWTH_LIMIT_MIB`. The counts are printed (and returned in the assertion messages).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.manager import KernelManager

from mpkernel.client import Frontend, MessageTimeout
from tests.conftest import KERNEL_NAME
from tests.frontend import PROCESS_EXIT_TIMEOUT, STARTUP_TIMEOUT, role_of, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only, pytest.mark.slow]

# A minute in CI; a developer's run gets a shorter taste unless it asks for more.
DURATION_S = float(
    os.environ.get("MPKERNEL_CHAOS_SECONDS", "60" if os.environ.get("CI") == "true" else "15")
)
KILL_EVERY_S = 0.2
ANSWER_TIMEOUT_S = 30.0
RSS_GROWTH_LIMIT_MIB = 100
# Kills must not exhaust restarts: every worker may restart as often as it is killed.
CONFIG = """
[workers.defaults]
max_restarts = 1000000
restart_window_s = 1
"""
INPROC = "chaos.inproc"
ARTIFACT = Path(__file__).parent / "artifacts" / "chaos.json"

Msg = dict[str, Any]


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)
            self.counts["violations"] += 1


class Client:
    """A frontend of its own for one thread (``mpkernel.client.Frontend`` on shell and
    IOPub, its own zmq context, nothing shared between threads)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.frontend = Frontend.connect(info, channels=("shell", "iopub"))
        # The kernel welcomes each subscription: from then on nothing published is missed.
        self.frontend.wait_welcome(timeout=STARTUP_TIMEOUT)

    def send(self, msg_type: str, content: dict[str, Any]) -> str:
        return self.frontend.send_request(msg_type, content)

    def execute(self, code: str) -> str:
        return self.frontend.execute(code)

    def reply(self, msg_id: str, timeout: float = ANSWER_TIMEOUT_S) -> Msg:
        return self.frontend.get_reply(msg_id, timeout=timeout)

    def close(self) -> None:
        self.frontend.close()


def read_iopub(client: Client, until: Callable[[Msg], bool], timeout: float) -> None:
    """Read IOPub, handing each message to `until`, until it returns True (or time is up)."""
    client.frontend.observe("iopub", until, timeout=timeout, what="something conclusive")


def guarded(body: Callable[[], None], tally: Tally) -> Callable[[], None]:
    """A thread body whose failure is a counted violation (with its traceback), not a
    thread dying quietly."""

    def run() -> None:
        try:
            body()
        except Exception:  # noqa: BLE001 - any failure of an actor is the test's finding
            tally.violation(traceback.format_exc())

    return run


def parent_of(msg: Msg) -> str | None:
    return (msg.get("parent_header") or {}).get("msg_id")


# -- the executor ---------------------------------------------------------------------------
def cell_code(n: int, steps: int) -> str:
    return (
        "import comm as _cc\n"
        f"_c = _cc.create_comm(target_name={INPROC!r}, data={{}})\n"
        f"for _j in range({steps}):\n"
        f"    print('c{n}.' + str(_j))\n"
        f"    _c.send({{'n': {n}, 'j': _j}})\n"
        "_c.close()\n"
    )


def executor(info: dict[str, Any], stop: threading.Event, tally: Tally) -> None:
    kc = Client(info)
    try:
        n = 0
        while not stop.is_set():
            n += 1
            steps = random.randint(1, 6)
            msg_id = kc.execute(cell_code(n, steps))
            got: list[Msg] = []

            def mine(msg: Msg, msg_id: str = msg_id, got: list[Msg] = got) -> bool:
                if parent_of(msg) != msg_id:
                    return False
                got.append(msg)
                return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"

            read_iopub(kc, mine, ANSWER_TIMEOUT_S)
            reply = kc.reply(msg_id)
            tally.count("executes")
            if reply["content"]["status"] != "ok":
                tally.violation(f"cell {n}: {reply['content'].get('ename')}")
            expected = [tok for j in range(steps) for tok in (("out", f"c{n}.{j}"), ("msg", j))]
            seen: list[tuple[str, Any]] = []
            text = ""  # stream text may come in any chunks; only its order counts
            inproc = {
                m["content"]["comm_id"]
                for m in got
                if m["msg_type"] == "comm_open" and m["content"].get("target_name") == INPROC
            }
            for m in got:
                if m["msg_type"] == "stream":
                    text += m["content"]["text"]
                elif m["msg_type"] == "comm_msg" and m["content"].get("comm_id") in inproc:
                    seen += [("out", line) for line in text.splitlines()]
                    text = ""
                    seen.append(("msg", m["content"]["data"]["j"]))
            seen += [("out", line) for line in text.splitlines()]
            if seen != expected:
                tally.violation(f"cell {n}: output {seen} != program order {expected}")
            statuses = [m["content"]["execution_state"] for m in got if m["msg_type"] == "status"]
            if statuses != ["busy", "idle"] or got[-1]["msg_type"] != "status":
                tally.violation(f"cell {n}: bracket {statuses}")
    finally:
        kc.close()


# -- the requester --------------------------------------------------------------------------
@dataclass
class OpenComm:
    kind: str
    comm_id: str


class Requester:
    """Opens comms and sends RPCs; counts answers; reopens comms that were closed."""

    def __init__(self, kc: Client, tally: Tally) -> None:
        self.kc = kc
        self.tally = tally
        self.comms: dict[str, OpenComm] = {}
        self.closed: set[str] = set()
        self.views = 0

    def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        return self.kc.send(msg_type, content)

    def _note_close(self, msg: Msg) -> None:
        comm_id = msg["content"].get("comm_id")
        if msg["msg_type"] == "comm_close" and comm_id in self.comms:
            self.closed.add(comm_id)
            del self.comms[comm_id]
            self.tally.count("comm_closes")

    def open(self, kind: str) -> str | None:
        if kind == "data_explorer":
            return self._view()
        comm_id = os.urandom(8).hex()
        target = {"echo": "mpkernel.echo", "variables": "positron.variables"}[kind]
        msg_id = self._send("comm_open", {"comm_id": comm_id, "target_name": target, "data": {}})
        refused: list[bool] = []

        def opened(msg: Msg) -> bool:
            if msg["msg_type"] == "comm_close" and msg["content"].get("comm_id") == comm_id:
                refused.append(True)
            self._note_close(msg)
            return (
                parent_of(msg) == msg_id
                and msg["msg_type"] == "status"
                and (msg["content"]["execution_state"] == "idle")
            )

        read_iopub(self.kc, opened, ANSWER_TIMEOUT_S)
        if refused:
            self.tally.count("opens_refused")  # a restart budget or a dying worker: try again
            return None
        self.comms[comm_id] = OpenComm(kind, comm_id)
        self.tally.count(f"opens_{kind}")
        return comm_id

    def _view(self) -> str | None:
        self.views += 1
        code = (
            "import mpkernel, pandas as _pd\n"
            f"_t{self.views} = _pd.DataFrame({{'a': range(1000), 'b': ['x'] * 1000}})\n"
            f"mpkernel.view(_t{self.views})"
        )
        msg_id = self.kc.execute(code)
        found: list[str] = []

        def opened(msg: Msg) -> bool:
            if msg["msg_type"] == "comm_open" and parent_of(msg) == msg_id:
                found.append(msg["content"]["comm_id"])
            elif msg["msg_type"] == "comm_close" and msg["content"].get("comm_id") in found:
                # Its worker died before the cell ended: closed before it was ever used.
                found.remove(msg["content"]["comm_id"])
                self.tally.count("comm_closes")
            self._note_close(msg)
            return (
                parent_of(msg) == msg_id
                and msg["msg_type"] == "status"
                and (msg["content"]["execution_state"] == "idle")
            )

        read_iopub(self.kc, opened, ANSWER_TIMEOUT_S)
        self.kc.reply(msg_id)
        if not found:
            self.tally.count("opens_refused")
            return None
        self.comms[found[0]] = OpenComm("data_explorer", found[0])
        self.tally.count("opens_data_explorer")
        return found[0]

    def rpc(self, comm: OpenComm) -> None:
        method, params = {
            "echo": ("echo", {"n": random.randint(0, 10**6)}),
            "variables": ("list", {}),
            "data_explorer": ("get_state", {}),
        }[comm.kind]
        data = {"jsonrpc": "2.0", "method": method, "params": params}
        msg_id = self._send("comm_msg", {"comm_id": comm.comm_id, "data": data})
        self.tally.count(f"rpcs_{comm.kind}")
        answer: list[str] = []
        busy: list[bool] = []

        def answered(msg: Msg) -> bool:
            mine = parent_of(msg) == msg_id
            if mine and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy":
                busy.append(True)
            if (
                mine
                and msg["msg_type"] == "comm_msg"
                and msg["content"].get("comm_id") == comm.comm_id
            ):
                body = msg["content"]["data"]
                if "result" in body or "error" in body:
                    answer.append("result" if "result" in body else "error")
            if msg["msg_type"] == "comm_close" and msg["content"].get("comm_id") == comm.comm_id:
                self._note_close(msg)
                if not busy:
                    # Closed (its worker died) before the kernel took the request: the
                    # request was for a comm that no longer existed; nothing is owed.
                    self.tally.count("rpcs_after_close")
                elif not answer:
                    self.tally.violation(f"{comm.kind} RPC {msg_id}: comm closed, no answer")
                return True
            self._note_close(msg)
            return (
                bool(answer)
                and mine
                and msg["msg_type"] == "status"
                and (msg["content"]["execution_state"] == "idle")
            )

        try:
            read_iopub(self.kc, answered, ANSWER_TIMEOUT_S)
        except MessageTimeout:
            state = f"answer {answer[0]} but no idle" if answer else "no answer"
            seen = "busy seen" if busy else "no busy"
            self.tally.violation(
                f"{comm.kind} RPC {msg_id}: {state} in {ANSWER_TIMEOUT_S} s ({seen})"
            )
            return
        if answer:
            self.tally.count(f"answers_{answer[0]}")


def requester(
    info: dict[str, Any], stop: threading.Event, tally: Tally, out: list[Requester]
) -> None:
    req = Requester(Client(info), tally)
    out.append(req)
    # The test reads the last answers through this client, then stops its channels.
    while not stop.is_set():
        kind = random.choice(["echo", "echo", "variables", "data_explorer"])
        live = [c for c in req.comms.values() if c.kind == kind]
        comm_id = live[0].comm_id if live else req.open(kind)
        if comm_id is not None and comm_id in req.comms:
            req.rpc(req.comms[comm_id])


# -- the killer -----------------------------------------------------------------------------
def workers_of(kernel_pid: int) -> list[psutil.Process]:
    """The worker processes, by their titles: the forkserver's children and the kernel's
    forked viewers (not the forkserver, the janitor or debugpy)."""
    out: list[psutil.Process] = []
    try:
        procs = psutil.Process(kernel_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for proc in procs:
        try:
            if role_of(proc)[:1] in (["worker"], ["viewer"]):
                out.append(proc)
        except psutil.Error:
            continue
    return out


def killer(
    kernel_pid: int, stop: threading.Event, tally: Tally, seen: dict[int, psutil.Process]
) -> None:
    while not stop.wait(KILL_EVERY_S):
        workers = workers_of(kernel_pid)
        for proc in workers:
            seen.setdefault(proc.pid, proc)
        if workers:
            victim = random.choice(workers)
            try:
                victim.send_signal(signal.SIGKILL)
                tally.count("kills")
            except psutil.Error:
                pass


# -- the test -------------------------------------------------------------------------------
def test_chaos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(CONFIG, encoding="utf-8")
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel(env={**os.environ, "MPKERNEL_CONFIG": str(config)})
    assert km.provisioner is not None
    pid: int = km.provisioner.pid  # type: ignore[attr-defined]
    main = psutil.Process(pid)
    tally = Tally()
    stop = threading.Event()
    seen: dict[int, psutil.Process] = {}
    requesters: list[Requester] = []
    threads: list[threading.Thread] = []
    try:
        info = km.get_connection_info(session=False)
        control = Client(info)
        # Warm: what the actors import is loaded before the baseline (pandas alone is
        # tens of MiB), so the growth measured is what the minute of chaos kept.
        control.reply(control.execute("import comm, mpkernel, pandas"))
        rss_start = main.memory_info().rss
        bodies: dict[str, Callable[[], None]] = {
            "executor": lambda: executor(info, stop, tally),
            "requester": lambda: requester(info, stop, tally, requesters),
            "killer": lambda: killer(pid, stop, tally, seen),
        }
        threads = [
            threading.Thread(target=guarded(body, tally), name=f"chaos-{name}")
            for name, body in bodies.items()
        ]
        for thread in threads:
            thread.start()
        stop.wait(DURATION_S)
        stop.set()
        for thread in threads:
            thread.join(timeout=ANSWER_TIMEOUT_S + 10)
            assert not thread.is_alive(), f"{thread.name} did not finish"

        # The kernel answers, and every comm the requester believes open answers an RPC.
        answer = control.reply(control.send("kernel_info_request", {}))
        assert answer["content"]["status"] == "ok"
        (req,) = requesters
        for comm in list(req.comms.values()):
            req.rpc(comm)
        req.kc.close()
        rss_growth = (main.memory_info().rss - rss_start) / 2**20
        control.close()
    finally:
        stop.set()
        km.shutdown_kernel(now=False)
    orphans = wait_gone([main, *seen.values()], PROCESS_EXIT_TIMEOUT)
    for proc in orphans:
        proc.kill()

    report = {**tally.counts, "rss_growth_mib": round(rss_growth, 1), "workers_seen": len(seen)}
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
    with capsys.disabled():
        print(f"\nchaos ({DURATION_S:g} s): {json.dumps(report, sort_keys=True)}")
    assert tally.violations == [], "\n".join(tally.violations[:10])
    assert orphans == [], f"processes outlived the kernel: {orphans}"
    assert tally.counts["kills"] > 0
    assert tally.counts["executes"] > 0
    assert tally.counts["answers_result"] > 0
    assert rss_growth <= RSS_GROWTH_LIMIT_MIB, report
