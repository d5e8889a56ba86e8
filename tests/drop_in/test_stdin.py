"""The drop-in comparison for what nbclient cannot drive (it has no stdin): cells that ask the
frontend for input, answered from a script on ipykernel and on mpkernel.

For each scenario both kernels run the same code with ``allow_stdin=True``; every
input_request is answered with the next scripted line, as it arrives. The two conversations
must be equal: the prompts in order (with their password flag), the answers the kernel never
asked for, the IOPub outputs reduced as in the notebook comparison (reduce.py), and the reply
status. A difference by design is listed in known_differences.py under ("stdin", scenario).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from mpkernel.client import MessageTimeout
from mpkernel.client.mailbox import anything
from tests.conftest import TARGET, SharedKernel, register
from tests.drop_in.conftest import REFERENCE, UNDER_TEST
from tests.drop_in.known_differences import KNOWN_DIFFERENCES, STDIN
from tests.drop_in.reduce import Reduced, format_reduced, reduce_outputs
from tests.frontend import (
    DEFAULT_TIMEOUT,
    Msg,
    describe,
    execute,
    frontend,
    get_reply,
    kind,
    parent_id,
    pending,
    run,
)

pytestmark = pytest.mark.integration

#: prompts beyond the script that are still answered (with the script's last line, which
#: ends each interaction) before the conversation is given up
EXTRA_PROMPTS = 3


@dataclass(frozen=True)
class Scenario:
    name: str
    code: str
    answers: tuple[str, ...]
    #: run first, without stdin (what the scenario needs in the namespace or as last error)
    setup: str | None = None


SCENARIOS = (
    Scenario("input", "name = input('name? ')\nprint('hello', name)", ("Ada",)),
    Scenario("getpass", "import getpass\nsecret = getpass.getpass()\nprint(len(secret))", ("pw",)),
    Scenario("breakpoint", "x = 41\nbreakpoint()\nx += 1\nprint(x)", ("p x", "c")),
    Scenario("pdb.set_trace", "import pdb\nz = 1\npdb.set_trace()\nprint(z + 1)", ("p z", "c")),
    Scenario(
        "%debug",
        "%debug",
        ("p locals()", "q"),
        setup="def f(y):\n    return 1 / y\n\nf(0)",
    ),
    Scenario("help()", "help()", ("quit",)),
)


@dataclass
class Conversation:
    """What a person at the frontend saw of one execution that read stdin."""

    prompts: list[tuple[str, bool]] = field(default_factory=list)
    unused_answers: list[str] = field(default_factory=list)
    outputs: list[Reduced] = field(default_factory=list)
    status: str = ""

    def lines(self) -> list[str]:
        return [
            f"    prompts (text, password): {self.prompts!r}",
            f"    answers never asked for: {self.unused_answers!r}",
            f"    reply status: {self.status}",
            "    outputs:",
            *format_reduced(self.outputs, indent="      "),
        ]


def _outputs(iopub: list[Msg]) -> list[Reduced]:
    shown = [
        nbformat.v4.output_from_msg(m)  # type: ignore[no-untyped-call]
        for m in iopub
        if m["header"]["msg_type"] in ("stream", "display_data", "execute_result", "error")
    ]
    return reduce_outputs(shown, {})


def converse(
    kc: BlockingKernelClient,
    code: str,
    answers: tuple[str, ...],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Conversation:
    """Execute ``code`` with stdin allowed, answering each prompt with the next line of
    ``answers`` when it arrives, until the execution's idle; then read its reply."""
    for channel in ("iopub", "stdin"):
        assert pending(kc, channel) == [], f"unclaimed {channel} messages before {code!r}"
    msg_id = execute(kc, code, allow_stdin=True)
    script = list(answers)
    talk = Conversation()
    iopub: list[Msg] = []
    user = frontend(kc)
    deadline = user.mailbox.clock() + timeout
    while not (iopub and kind(iopub[-1]) == "status:idle"):
        remaining = deadline - user.mailbox.clock()
        assert remaining > 0, (
            f"no idle for {code!r} within {timeout}s; prompts so far {talk.prompts}:\n"
            + describe(iopub)
        )
        try:
            _, msg = user.first_of(
                {"stdin": anything, "iopub": anything}, timeout=remaining, what="a message"
            )
        except MessageTimeout:
            continue  # the deadline check above fails
        assert parent_id(msg) == msg_id, f"a message of another request:\n{describe([msg])}"
        if msg["header"]["msg_type"] != "input_request":
            iopub.append(msg)
            continue
        talk.prompts.append((msg["content"]["prompt"], msg["content"]["password"]))
        assert len(talk.prompts) <= len(answers) + EXTRA_PROMPTS, (
            f"{code!r} keeps prompting: {talk.prompts}\n" + describe(iopub)
        )
        kc.input(script.pop(0) if script else answers[-1])
    talk.unused_answers = script
    talk.outputs = _outputs(iopub)
    talk.status = get_reply(kc, msg_id)["content"]["status"]
    return talk


def _params() -> list[Any]:
    params = []
    for scenario in SCENARIOS:
        marks = []
        reason = KNOWN_DIFFERENCES.get((STDIN, scenario.name))
        if reason is not None and TARGET == "mpkernel":
            marks.append(pytest.mark.xfail(reason=reason, raises=ConversationsDiffer, strict=True))
        params.append(pytest.param(scenario, marks=marks, id=scenario.name))
    return params


class ConversationsDiffer(AssertionError):
    """The one failure a known difference expects."""


@pytest.mark.parametrize("scenario", _params())
def test_stdin_conversation_matches_ipykernel(
    scenario: Scenario, kernels: dict[str, SharedKernel], request: pytest.FixtureRequest
) -> None:
    """The same prompts (and password flags), outputs and status on both kernels."""
    talks: dict[str, Conversation] = {}
    for label, shared in kernels.items():
        handle = shared.get()
        register(request.node, handle)
        if scenario.setup is not None:
            run(handle.kc, scenario.setup)
        talks[label] = converse(handle.kc, scenario.code, scenario.answers)
    if talks[REFERENCE] != talks[UNDER_TEST]:
        raise ConversationsDiffer(
            "\n".join(
                [
                    f"the {scenario.name} conversation differs",
                    "source:",
                    *(f"    {line}" for line in scenario.code.split("\n")),
                    f"answers: {list(scenario.answers)!r}",
                    f"{REFERENCE}:",
                    *talks[REFERENCE].lines(),
                    f"{UNDER_TEST}:",
                    *talks[UNDER_TEST].lines(),
                ]
            )
        )


def test_known_stdin_differences_name_scenarios() -> None:
    """Every stdin entry of known_differences.py names a scenario of this module."""
    names = {s.name for s in SCENARIOS}
    for notebook, where in KNOWN_DIFFERENCES:
        if notebook == STDIN:
            assert where in names, f"no stdin scenario {where!r}"
