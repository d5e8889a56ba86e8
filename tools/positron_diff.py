"""Send the same requests to Positron's own Python kernel services and to mpkernel, and
print every difference in what comes back.

    .venv/bin/python tools/positron_diff.py                        # sources from GitHub
    .venv/bin/python tools/positron_diff.py --positron-git CLONE   # from a clone's history
    .venv/bin/python tools/positron_diff.py --positron-dir DIR     # from a folder
    .venv-previous/bin/python tools/positron_diff.py ...           # pandas 2 / polars 1

Positron's files (variables, data explorer and what they import) are fetched at one pinned
revision into tools/.positron/ (git-ignored; `_positron_sources.py`) and run unmodified in
this process, with inert stand-ins for its kernel and comms (`_positron_drivers.py`);
mpkernel runs as a real kernel through jupyter_client. The cases (`_positron_cases.py`)
are this project's own, written from the behaviours Positron's tests check. What may
legitimately differ is normalised in one place (`_positron_compare.py`).
docs/positron_differences.md lists each difference kept on purpose, with its reason.

Needs `pydantic` (Positron's comm models use its v1 API) and `pytz`: the `positron-diff`
extra. Exit status: 0 no difference, 1 differences, 2 no sources or a side failed to start.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _positron_cases import CASES, PANE, Case, Request, Run, View
from _positron_compare import Exchange, compare, report
from _positron_drivers import MpkernelSide, PositronSide, resolve
from _positron_sources import PIN, SourceError, fetch_sources


class Side(Protocol):
    name: str

    def start_case(self) -> dict[str, Any]: ...
    def run(self, code: str) -> dict[str, Any]: ...
    def variables(self, method: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def view(self, name: str) -> dict[str, Any]: ...
    def explore(self, name: str, method: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def close(self) -> None: ...


def run_case(side: Side, case: Case) -> list[Exchange]:
    """The case's steps on one side, each with what came back (a step that raised is
    answered by its exception, and the case goes on)."""
    out = [Exchange(case.name, "00 open the variables pane", {"comm_open": "variables"}, None)]
    try:
        out[0] = Exchange(case.name, out[0].label, out[0].sent, side.start_case())
    except Exception as e:  # noqa: BLE001 - reported as this step's answer
        out[0] = Exchange(case.name, out[0].label, out[0].sent, _failure(e))
        return out
    schemas: dict[str, dict[int, Any]] = {}
    for i, step in enumerate(case.steps, 1):
        sent: Any
        try:
            if isinstance(step, Run):
                sent = {"code": step.code}
                answer = side.run(step.code)
            elif isinstance(step, View):
                sent = {"method": "view", "name": step.name}
                answer = side.view(step.name)
                schemas[step.name] = _schemas(side, step.name)
            elif step.target == PANE:
                sent = {"method": step.method, "params": step.params}
                answer = side.variables(step.method, step.params)
            else:
                assert isinstance(step, Request)
                params = resolve(step.params, schemas.get(step.target, {}))
                sent = {"method": step.method, "params": params}
                answer = side.explore(step.target, step.method, params)
        except Exception as e:  # noqa: BLE001 - reported as this step's answer
            sent = {"step": step.label}
            answer = _failure(e)
        out.append(Exchange(case.name, f"{i:02d} {step.label}", sent, answer))
    return out


def _schemas(side: Side, name: str) -> dict[int, Any]:
    """The table's column schemas as this side gives them (not a compared step)."""
    state = side.explore(name, "get_state", {})["reply"]["result"]
    count = state["table_shape"]["num_columns"]
    reply = side.explore(name, "get_schema", {"column_indices": list(range(count))})["reply"]
    return {c["column_index"]: c for c in reply["result"]["columns"]}


def _failure(e: BaseException) -> dict[str, str]:
    return {"failed": f"{type(e).__name__}: {e}"}


def run_side(side: Side, cases: list[Case]) -> list[Exchange]:
    try:
        return [e for case in cases for e in run_case(side, case)]
    finally:
        side.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--positron-dir", type=Path, help="a folder holding the positron package")
    source.add_argument("--positron-git", type=Path, help="a git directory of posit-dev/positron")
    parser.add_argument("--revision", default=PIN, help=f"Positron revision (default {PIN})")
    parser.add_argument("--kernel", default="mpkernel", help="mpkernel's kernelspec name")
    parser.add_argument("-k", dest="only", default="", help="run the cases whose name has this")
    parser.add_argument("--json", type=Path, help="write both transcripts to this file")
    args = parser.parse_args(argv)

    cases = [c for c in CASES if args.only in c.name]
    missing = [m for m in ("pydantic", "pytz") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"positron_diff: Positron's code needs {missing}: pip install -e '.[positron-diff]'")
        return 2
    try:
        root = fetch_sources(args.revision, args.positron_dir, args.positron_git)
    except SourceError as e:
        print(f"positron_diff: {e}", file=sys.stderr)
        return 2
    import pandas
    import polars

    print(
        f"Positron {args.revision[:12]} vs mpkernel ({args.kernel}); "
        f"pandas {pandas.__version__}, polars {polars.__version__}; {len(cases)} cases"
    )
    try:
        theirs = run_side(PositronSide(root), cases)
        ours = run_side(MpkernelSide(args.kernel), cases)
    except Exception:  # noqa: BLE001 - a side that cannot start: nothing to compare
        traceback.print_exc()
        return 2
    if args.json:
        sides = (("mpkernel", ours), ("positron", theirs))
        transcripts = {s: [dataclasses.asdict(e) for e in t] for s, t in sides}
        args.json.write_text(json.dumps(transcripts, indent=1, default=repr))
    differences = compare(ours, theirs)
    print(report(differences, len(ours)))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
