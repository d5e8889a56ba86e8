"""Debugger scenarios: what an attached debugger without breakpoints costs a `pass` execute.

Each kernel against itself: A is the kernel with JupyterLab's debugger attached (initialize,
attach, configurationDone, as JupyterLab sends them; no breakpoint), B the same kernel with
the debugger never enabled. `debugger_execute` does it for mpkernel (target: attached <=
1.5x), `debugger_execute_ipykernel` for ipykernel, in the same run. The never-enabled figure
against today's is the `execute` scenario (bench_kernel), which runs with the debugger on
offer but never started.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py debugger`).
"""

from __future__ import annotations

import itertools
from typing import Any

from _benchclient import Client
from _benchdriver import Figure, Round, Samples, Scenario, Target
from _benchkernels import BenchError, Contender
from bench_kernel import execute

ATTACH_TIMEOUT_S = 60.0
ATTACHED = "/attached"
JUPYTERLAB_INITIALIZE = {
    "clientID": "jupyterlab",
    "adapterID": "python",
    "pathFormat": "path",
    "linesStartAt1": True,
    "columnsStartAt1": True,
}


def attach(client: Client) -> None:
    """Switch the debugger on as JupyterLab does; BenchError if a step fails."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("initialize", JUPYTERLAB_INITIALIZE),
        ("attach", {}),
        ("configurationDone", {}),
    ]
    for seq, (command, arguments) in zip(itertools.count(1), steps, strict=False):
        content = {"type": "request", "seq": seq, "command": command, "arguments": arguments}
        exchange = client.exchange(
            "control", client.prepare("debug_request", content), timeout_s=ATTACH_TIMEOUT_S
        )
        answer = exchange.reply.content if exchange.reply is not None else {}
        if not answer.get("success"):
            raise BenchError(f"debugger {command} failed: {answer}")


def attached_execute(r: Round) -> Samples:
    live = r.live()
    if r.contender.label.endswith(ATTACHED) and not live.state.get("attached"):
        attach(live.client)
        live.state["attached"] = True
    return execute(r)


def attached_against_off(pick: int) -> Any:
    """Sides: the run's A (pick 0) or B (pick 1), attached, against itself never enabled."""

    def sides(a: Contender, b: Contender) -> tuple[Contender, ...]:
        kernel = (a, b)[pick]
        attached = Contender(
            kernel.label + ATTACHED, kernel.kernel_name, config="# attached\n", checked=False
        )
        return (attached, kernel)

    return sides


def _scenario(name: str, pick: int, target: Target | None) -> Scenario:
    return Scenario(
        name,
        "`pass` execute_request -> idle, debugger attached (A) against never enabled (B)",
        attached_execute,
        figures=(
            Figure("execute `pass` -> idle, p50 (us)", "exec_us", "p50", target),
            Figure("execute `pass` -> idle, p99 (us)", "exec_us", "p99"),
        ),
        rounds=10,
        size=100,
        quick_rounds=1,
        quick_size=20,
        quick_warmup=1,
        sides=attached_against_off(pick),
    )


SCENARIOS = [
    _scenario("debugger_execute", 0, Target("<=", 1.5)),
    _scenario("debugger_execute_ipykernel", 1, None),
]
