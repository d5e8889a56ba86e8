"""Workers still start after IPython's `%reset`, which empties the user's `__main__`
(its `__spec__` included, which starting a spawned or forkserver child reads). Positron's
"clear all" runs `%reset -sf`, and a worker may first start, or restart, after that."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.comm_client import (
    IOPubLog,
    call,
    comm_id_of,
    configured_kernels,
    execute_ok,
    msg_type,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

TIMEOUT = 60.0


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_worker_starts_after_a_reset(
    request: pytest.FixtureRequest, tmp_path: Path, start_method: str
) -> None:
    with configured_kernels(request.node, tmp_path) as start:
        # A table copied into its own worker: each open starts a new process, after the reset.
        kernel = start(
            f'[workers.defaults]\nstart_method = "{start_method}"\n'
            '[workers.data_explorer]\nsubject = "copy"\n'
        )
        log = IOPubLog(kernel.kc)
        execute_ok(log, "%reset -f", timeout=TIMEOUT)
        msgs = execute_ok(
            log,
            "import mpkernel, pandas as pd\nmpkernel.view(pd.DataFrame({'a': [1]}))",
            timeout=TIMEOUT,
        )
        (opened,) = [m for m in msgs if msg_type(m) == "comm_open"]
        comm_id = comm_id_of(opened)
        state = call(log, comm_id, "get_state", None, timeout=TIMEOUT)
        assert state.result["table_shape"] == {"num_rows": 1, "num_columns": 1}, state.data
