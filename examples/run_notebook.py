"""Execute a notebook with nbclient and print every cell's outputs as text.

Usage::

    python examples/run_notebook.py PATH [--kernel NAME] [--timeout SECONDS] [--panes]
                                         [--kernel-log FILE]

The kernel defaults to ``mpkernel`` (the kernelspec ``mpkernel install`` creates). Text
outputs are printed as they are; images are summarised as ``[image/png N bytes]``; errors as
``ename: evalue``. With ``--panes`` a second frontend acts as Positron's panes beside nbclient
(``pane_client.py``) and what it saw is printed under each cell. The kernel's own log (its
stderr) goes to ``--kernel-log`` when given, appended, so that only what the notebook shows is
printed. The notebook file is not modified. Exit status: 0 when every cell ran, 1
when a cell raised, 2 when the notebook could not be read or the kernel not started.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from pane_client import PaneClient

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
TEXT_PREFERENCE = ("text/plain", "text/markdown", "text/latex", "text/html")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PLACEHOLDER = re.compile(r"^<[\w.]+ object( at 0x[0-9a-f]+)?>$")


def render_data(data: dict[str, Any]) -> list[str]:
    """Lines for a mimebundle: images as a size summary, otherwise the best text form."""
    lines = []
    for mime in IMAGE_TYPES:
        if mime in data:
            payload = data[mime]
            size = (
                len(payload.encode()) if mime == "image/svg+xml" else len(base64.b64decode(payload))
            )
            lines.append(f"[{mime} {size} bytes]")
    if lines:
        return lines
    texts = {mime: data[mime] for mime in TEXT_PREFERENCE if mime in data}
    plain = texts.get("text/plain")
    if plain is not None and PLACEHOLDER.match(plain) and len(texts) > 1:
        del texts["text/plain"]  # "<IPython.core.display.HTML object>" says nothing
    for text in texts.values():
        return (text if isinstance(text, str) else "".join(text)).splitlines()
    return [f"[{', '.join(sorted(data))}]"]


def render_output(output: dict[str, Any]) -> list[str]:
    """Lines for one nbformat output."""
    kind = output["output_type"]
    if kind == "stream":
        prefix = "" if output["name"] == "stdout" else "[stderr] "
        return [prefix + line for line in output["text"].splitlines()]
    if kind in ("display_data", "execute_result"):
        return render_data(output["data"])
    if kind == "error":
        return [ANSI.sub("", f"{output['ename']}: {output['evalue']}")]
    return [f"[{kind}]"]


def print_notebook(path: Path, nb: Any, panes: dict[int, list[str]]) -> None:
    print(f"=== {path} ===")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        first_line = cell.source.splitlines()[0] if cell.source else ""
        print(f"--- cell {index} [{cell.get('execution_count')}]: {first_line}")
        for output in cell.get("outputs", []):
            for line in render_output(output):
                print(f"    {line}")
        for line in panes.get(index, []):
            print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the notebook to run")
    parser.add_argument("--kernel", default="mpkernel", help="kernelspec name (default mpkernel)")
    parser.add_argument("--timeout", type=float, default=120, help="per-cell timeout in seconds")
    parser.add_argument("--panes", action="store_true", help="also act as Positron's panes")
    parser.add_argument("--kernel-log", type=Path, help="append the kernel's log (stderr) here")
    args = parser.parse_args(argv)

    try:
        nb = nbformat.read(args.path, as_version=4)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.path}: {exc}", file=sys.stderr)
        return 2
    client = NotebookClient(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        resources={"metadata": {"path": str(args.path.resolve().parent)}},
    )
    panes: dict[int, list[str]] = {}
    pane_client: list[PaneClient] = []
    cell_requests: dict[str, int] = {}
    if args.panes:

        def start_panes(notebook: Any) -> None:
            assert client.km is not None
            pane_client.append(PaneClient(client.km.get_connection_info(session=False)))

        last = max(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")

        def after_cell(cell: Any, cell_index: int, execute_reply: Any) -> None:
            msg_id = execute_reply["parent_header"]["msg_id"]
            cell_requests[msg_id] = cell_index
            pane_client[0].after_cell(msg_id)
            if cell_index == last:
                finish()

        def finish() -> None:
            # After the last cell, while the kernel still runs: what the panes are owed.
            for msg_id, lines in pane_client[0].finish().items():
                index = cell_requests.get(msg_id or "")
                if index is not None:
                    panes[index] = [f"[panes] {line}" for line in lines]

        client.on_notebook_start = start_panes
        client.on_cell_executed = after_cell
    status = 0
    launch: dict[str, Any] = {}
    if args.kernel_log is not None:
        launch["stderr"] = log_file = args.kernel_log.open("ab")
    try:
        client.execute(**launch)
    except CellExecutionError as exc:
        print(f"a cell raised: {exc.ename}: {exc.evalue}", file=sys.stderr)
        status = 1
    except (DeadKernelError, RuntimeError, TimeoutError) as exc:
        print(f"kernel {args.kernel!r} failed: {exc}", file=sys.stderr)
        return 2
    finally:
        for pane in pane_client:
            pane.close()
        if launch:
            log_file.close()
    print_notebook(args.path, nb, panes)
    return status


if __name__ == "__main__":
    sys.exit(main())
