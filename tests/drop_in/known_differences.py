"""The differences between mpkernel and ipykernel that are there by design, in one place.

Each entry maps (notebook name, code cell index) to a one-line reason; the index
``WIDGET_STATE`` stands for the notebook's stored widget state instead of a cell, and the
notebook name ``STDIN`` with a scenario name for a scenario of test_stdin.py. The
comparison expects these places to differ (a strict xfail: when a difference disappears the
test fails, and the entry must go). docs/drop_in.md lists every entry in its "What differs"
section; ``markdown_rows`` is the text it must contain, checked by test_differential.py.

Only differences that follow from mpkernel being another kernel belong here (a string that
names the kernel); a missing ipykernel behaviour is a bug to fix, not an entry.
"""

from __future__ import annotations

from typing import Final

WIDGET_STATE: Final = "widget state"
STDIN: Final = "stdin"

#: a code cell's index, WIDGET_STATE, or a stdin scenario's name
Where = int | str

KNOWN_DIFFERENCES: dict[tuple[str, Where], str] = {
    ("environment", 18): (
        "`get_ipython().kernel.implementation` names the kernel, as kernel_info does: "
        "'ipython' on ipykernel, 'mpkernel' on mpkernel"
    ),
    ("environment", 11): (
        "`sys.stdout` is the kernel's own stream class (`FunnelWriter`, ipykernel's is "
        "`OutStream`); no library found checks the name"
    ),
    ("environment", 17): (
        "`asyncio.run()` works in a cell: mpkernel runs no asyncio loop on the main thread "
        "(ipykernel does, and refuses it); top-level `await` works on both"
    ),
    ("errors", 10): (
        "`input()` without stdin: the same StdinNotImplementedError and message, but the "
        "traceback has no kernel frame (mpkernel shows the user's frames only)"
    ),
    ("magics", 16): ("`%lsmagic`: mpkernel adds `%view` (the data explorer)"),
    (STDIN, "getpass"): (
        "`getpass.getpass()` shows Python's default prompt 'Password: ' (ipykernel: an "
        "empty prompt)"
    ),
    (STDIN, "breakpoint"): (
        "`breakpoint()` opens IPython's debugger over stdin; on ipykernel it does nothing "
        "unless a debugger is attached (debugpy's hook replaces it)"
    ),
}


def markdown_rows() -> list[str]:
    """The rows of the table in docs/drop_in.md's "What differs" section, one per entry."""
    rows = []
    for (notebook, where), reason in sorted(KNOWN_DIFFERENCES.items(), key=str):
        place = "`test_stdin.py`" if notebook == STDIN else f"`{notebook}.ipynb`"
        rows.append(f"| {place} | {where} | {reason} |")
    return rows
