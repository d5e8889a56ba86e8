"""Where the tests find Positron's comm contracts, and what a run without them says.

The contract tests validate real messages against Positron's OpenRPC contracts
(``variables-*-openrpc.json``, ``data_explorer-*-openrpc.json``). Their licence is not the
project's, so the repository does not carry them: the tests read them from
``$MPKERNEL_CONTRACTS``, else from ``shared/protocol`` beside the repository's folder. Without
them those tests skip with `MISSING` as their reason; the run says so in its header and counts
them in its summary (``tests/conftest.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that names the contracts' folder
ENV = "MPKERNEL_CONTRACTS"
PROTOCOL_DIR = Path(
    os.environ.get(ENV) or Path(__file__).resolve().parents[2] / "shared" / "protocol"
)
#: the skip reason of every test that needs them
MISSING = f"needs Positron's comm contracts (not in the repository): {ENV}=<folder>"


def present() -> bool:
    return PROTOCOL_DIR.is_dir()


def header() -> str:
    """The run's header line about the contracts."""
    if present():
        return f"comm contracts: {PROTOCOL_DIR}"
    return (
        f"comm contracts: absent ({PROTOCOL_DIR}); the contract tests skip. To run them, "
        f"set {ENV} to a folder holding the *.json files of posit-dev/positron's "
        "positron/comms/ (see README.md, Tests)"
    )
