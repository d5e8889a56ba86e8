"""The comparison half of `positron_diff.py`: two transcripts in, every difference out.

A transcript is a list of `Exchange`s: one per step of a case, what the frontend sent and
what came back (an RPC's reply data, or the events an execution caused). Pure logic: no
kernel, no Positron sources, so the unit tests run it on fixed transcripts.

What legitimately differs between two kernels is normalised here and nowhere else:

- `updated_time` (a clock reading) and `version` (Positron's kernel sends 0, mpkernel a
  counter; the contract asks only that it never goes back) are dropped;
- a comm id (the `view` reply's result, a new explorer's id) is a fresh uuid on each
  side: it becomes `<comm id>`;
- an error keeps its code; its message is each kernel's own wording: `<message>`;
- an optional field sent as null and one left out say the same (Positron's models send
  every field, null included): null-valued keys are dropped;
- the order of the variables in `refresh`, `list`, and an update's `assigned` and
  `unevaluated` is free in the contract (the pane sorts what it shows): by display name;
  so is the order of a feature's `supported_types`: by their JSON. `removed` and
  `inspect`'s children keep their order (children follow the container).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Difference", "Exchange", "compare", "diff_values", "normalise", "report"]

DROPPED_KEYS = frozenset({"updated_time", "version"})
COMM_ID = "<comm id>"
MESSAGE = "<message>"
# Lists of variables whose order the contract leaves to the backend.
UNORDERED_VARIABLE_LISTS = frozenset({"variables", "assigned", "unevaluated"})
UNORDERED_LISTS = frozenset({"supported_types"})


@dataclass(frozen=True, slots=True)
class Exchange:
    """One step: `label` names it within its case; `sent` is what the frontend sent
    (method and params, or the code executed); `answer` is what came back."""

    case: str
    label: str
    sent: Any
    answer: Any

    @property
    def key(self) -> tuple[str, str]:
        return self.case, self.label


@dataclass(frozen=True, slots=True)
class Difference:
    case: str
    label: str
    path: str  # where in the answer, e.g. `result.columns[0].type_name`
    ours: Any
    theirs: Any

    def __str__(self) -> str:
        return (
            f"{self.case} / {self.label}: {self.path or '(answer)'}\n"
            f"    mpkernel: {_short(self.ours)}\n"
            f"    positron: {_short(self.theirs)}"
        )


MISSING = "<no such step>"
ABSENT = "<absent>"


def normalise(answer: Any, method: str | None = None) -> Any:
    """`answer` with what legitimately differs between two kernels made equal."""
    if method == "view" and isinstance(answer, dict):
        reply = answer.get("reply")
        if isinstance(reply, dict) and isinstance(reply.get("result"), str):
            answer = {**answer, "reply": {**reply, "result": COMM_ID}}
    return _normalise(answer, "")


def _normalise(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        out = {
            k: _normalise(v, k) for k, v in value.items() if k not in DROPPED_KEYS and v is not None
        }
        if key == "error" and "message" in out:
            out["message"] = MESSAGE
        if "comm_id" in out:
            out["comm_id"] = COMM_ID
        return out
    if isinstance(value, list):
        items = [_normalise(v, "") for v in value]
        if key in UNORDERED_VARIABLE_LISTS and all(
            isinstance(v, dict) and "display_name" in v for v in items
        ):
            items.sort(key=lambda v: str(v["display_name"]))
        elif key in UNORDERED_LISTS:
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


def diff_values(ours: Any, theirs: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, ours, theirs) for each place where the two values differ, leaves first."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for k in sorted(set(ours) | set(theirs), key=str):
            sub = f"{path}.{k}" if path else str(k)
            yield from diff_values(ours.get(k, ABSENT), theirs.get(k, ABSENT), sub)
        return
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            yield f"{path}.length", len(ours), len(theirs)
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            yield from diff_values(a, b, f"{path}[{i}]")
        return
    # bool is an int in Python; JSON tells them apart, and so does a frontend.
    if ours != theirs or type(ours) is not type(theirs):
        yield path, ours, theirs


def compare(ours: Sequence[Exchange], theirs: Sequence[Exchange]) -> list[Difference]:
    """Every difference between the normalised answers of the same steps; a step that only
    one side has is a difference too."""
    mine = {e.key: e for e in ours}
    their = {e.key: e for e in theirs}
    order = [e.key for e in ours] + [k for k in their if k not in mine]
    out: list[Difference] = []
    for key in order:
        a, b = mine.get(key), their.get(key)
        if a is None or b is None:
            out.append(Difference(*key, "", "<ran>" if a else MISSING, "<ran>" if b else MISSING))
            continue
        method = a.sent.get("method") if isinstance(a.sent, dict) else None
        for path, x, y in diff_values(normalise(a.answer, method), normalise(b.answer, method)):
            out.append(Difference(*key, path, x, y))
    return out


def report(differences: Sequence[Difference], steps: int) -> str:
    if not differences:
        return f"no differences in {steps} steps"
    cases = sorted({d.case for d in differences})
    lines = [str(d) for d in differences]
    lines.append(f"{len(differences)} differences in {len(cases)} cases ({steps} steps compared)")
    return "\n".join(lines)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
