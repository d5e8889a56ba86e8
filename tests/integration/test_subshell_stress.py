"""Randomized stress: the main shell and several subshells run cells that print to stdout and
stderr at the same time, while RPCs to a worker's echo comm arrive on random shells; all sent
without waiting, then IOPub is read until every request is idle and an oracle checks the
whole log (docs/subshells.md):

- S1 / I3: each request has exactly one busy, first, and one idle, last, among its messages;
- S2 / I1 / I2 per sender: each cell's stream text, stdout and stderr together, is exactly its
  program's order, and none of it is parented to another request;
- I4: each RPC gets exactly one answer on the comm, parented to it, inside its bracket;
- S3: an idle that leaves a request running is followed at once by a parentless busy, and a
  parentless busy follows nothing else; the idle of the last running request, after such a
  busy, is followed at once by a parentless idle, which follows nothing else.

Violations are counted per invariant and must all be zero.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import Msg, get_reply, kind, parent_id
from tests.integration.comm_client import (
    ECHO,
    IOPubLog,
    comm_id_of,
    msg_type,
    new_comm_id,
    rpc_data,
)
from tests.integration.subshell_client import create_subshell, delete_subshell, execute_on, send_on

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBSHELLS = 3
ROUNDS = 6
LINES = 40
RPCS = 8


def program(rng: random.Random, tag: str) -> tuple[str, list[tuple[str, str]]]:
    """A cell that prints LINES numbered lines, each to stdout or stderr, and what it prints."""
    steps = [(rng.choice(("stdout", "stderr")), f"{tag}:{i}") for i in range(LINES)]
    body = "".join(
        f"print({line!r}{', file=sys.stderr' if name == 'stderr' else ''})\n"
        for name, line in steps
    )
    return "import sys\n" + body, steps


def runs(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive text of one stream name joined: a print's text and its newline are two
    writes, and another thread's text may go out between them (in another message)."""
    out: list[tuple[str, str]] = []
    for name, text in pieces:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + text)
        else:
            out.append((name, text))
    return out


def streams_of(msgs: list[Msg], request: str) -> list[tuple[str, str]]:
    return runs(
        [
            (m["content"]["name"], m["content"]["text"])
            for m in msgs
            if msg_type(m) == "stream" and parent_id(m) == request
        ]
    )


def check_brackets(msgs: list[Msg], requests: list[str], violations: Counter[str]) -> None:
    for request in requests:
        mine = [kind(m) for m in msgs if parent_id(m) == request]
        if not mine or mine[0] != "status:busy" or mine[-1] != "status:idle":
            violations["S1"] += 1
        if mine.count("status:busy") != 1 or mine.count("status:idle") != 1:
            violations["S1"] += 1


def check_kernel_status(msgs: list[Msg], violations: Counter[str]) -> None:
    running: set[str] = set()
    said_busy = False
    for i, m in enumerate(msgs):
        if msg_type(m) != "status":
            continue
        state = m["content"]["execution_state"]
        pid = parent_id(m)
        if pid is None:
            before = msgs[i - 1] if i else None
            if before is None or kind(before) != "status:idle" or parent_id(before) is None:
                violations["S3"] += 1
            said_busy = state == "busy"
            continue
        if state == "busy":
            running.add(pid)
        elif state == "idle":
            running.discard(pid)
            after = msgs[i + 1] if i + 1 < len(msgs) else None
            kernel = kind(after) if after is not None and not parent_id(after) else None
            expected = "status:busy" if running else "status:idle" if said_busy else None
            if kernel != expected:
                violations["S3"] += 1


@pytest.mark.invariant("S1", "S2", "S3", "I1", "I2", "I3", "I4")
def test_subshells_and_worker_comms_keep_every_ordering_invariant(
    kc: BlockingKernelClient,
) -> None:
    rng = random.Random(2026)
    subshells = [create_subshell(kc) for _ in range(SUBSHELLS)]
    shells: list[str | None] = [None, *subshells]
    log = IOPubLog(kc)
    comm_id = new_comm_id()
    opened = send_on(kc, None, "comm_open", {"comm_id": comm_id, "target_name": ECHO, "data": {}})
    log.wait_idle(opened)
    violations: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        start = len(log.msgs)
        cells: dict[str, list[tuple[str, str]]] = {}
        rpcs: list[str] = []
        sends: list[tuple[str, str | None]] = [("cell", shell) for shell in shells]
        sends += [("rpc", rng.choice(shells)) for _ in range(RPCS)]
        rng.shuffle(sends)
        for n, (what, shell) in enumerate(sends):
            if what == "cell":
                code, steps = program(rng, f"r{round_}s{n}")
                cells[execute_on(kc, shell, code)] = steps
            else:
                data = rpc_data("echo", {"n": n})
                rpcs.append(send_on(kc, shell, "comm_msg", {"comm_id": comm_id, "data": data}))
        requests = [*cells, *rpcs]
        log.wait_idle(*requests)
        probe = kc.comm_info()
        log.wait_idle(probe)
        msgs = log.msgs[start:]
        check_brackets(msgs, requests, violations)
        for request, steps in cells.items():
            if streams_of(msgs, request) != runs([(name, line + "\n") for name, line in steps]):
                violations["S2"] += 1
        for rpc in rpcs:
            answers = [m for m in msgs if msg_type(m) == "comm_msg" and parent_id(m) == rpc]
            if len(answers) != 1 or comm_id_of(answers[0]) != comm_id:
                violations["I4"] += 1
        check_kernel_status(msgs, violations)
        for request in [*cells, probe]:
            get_reply(kc, request)
    closed = send_on(kc, None, "comm_close", {"comm_id": comm_id, "data": {}})
    log.wait_idle(closed)
    for subshell in subshells:
        delete_subshell(kc, subshell)
    assert not violations, dict(violations)
