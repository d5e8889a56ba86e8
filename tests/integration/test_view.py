"""`mpkernel.view(obj)` from user code: a data explorer comm about the object, and the inline
output a Positron notebook renders over that comm (`application/vnd.positron.dataExplorer+json`,
notes section 2.2).

The data explorer target is served here by the echo handler (configured in TOML), whose
`subject` RPC tells which object the comm was opened about; what the real data explorer
does with it is tested with its own worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frontend import KernelHandle, describe, kind
from tests.integration.comm_client import (
    IOPubLog,
    call,
    close_comm,
    comm_id_of,
    configured_kernels,
    execute_ok,
    msg_type,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

EXPLORER = "positron.dataExplorer"
INLINE = "application/vnd.positron.dataExplorer+json"
CONFIG = """
[workers.data_explorer]
enabled = true
handler = "mpkernel_workers.echo:EchoHandler"
"""


@pytest.fixture(scope="module")
def kernel(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KernelHandle]:
    with configured_kernels(request.node, tmp_path_factory.mktemp("view")) as start:
        yield start(CONFIG)


@pytest.mark.invariant("I5")
@pytest.mark.parametrize(
    ("make", "shape", "type_name"),
    [
        ("pd.DataFrame({'a': [1, 2, 3], 'b': [4.0, 5.0, 6.0]})", (3, 2), "DataFrame"),
        ("pd.Series([1, 2, 3, 4], name='s')", (4, 1), "Series"),
        ("pl.DataFrame({'x': list(range(5))})", (5, 1), "DataFrame"),
        ("pa.table({'p': [1, 2], 'q': ['u', 'v'], 'r': [True, False]})", (2, 3), "Table"),
    ],
    ids=["pandas", "pandas-series", "polars", "pyarrow"],
)
def test_view_opens_a_comm_about_the_object_and_shows_it_inline(
    kernel: KernelHandle, make: str, shape: tuple[int, int], type_name: str
) -> None:
    log = IOPubLog(kernel.kc)
    msgs = execute_ok(
        log,
        "import mpkernel, pandas as pd, polars as pl, pyarrow as pa\n"
        f"table = {make}\n"
        "comm_id = mpkernel.view(table, 'my table')",
    )
    opens = [m for m in msgs if msg_type(m) == "comm_open"]
    displays = [m for m in msgs if kind(m) == "display_data"]
    assert len(opens) == 1, describe(msgs)
    assert len(displays) == 1, describe(msgs)
    assert msgs.index(opens[0]) < msgs.index(displays[0]), "comm_open first (I5)"
    comm_id = comm_id_of(opens[0])
    assert opens[0]["content"]["target_name"] == EXPLORER
    opened = opens[0]["content"]["data"]
    assert isinstance(opened.pop("snapshot_version"), int)
    assert opened == {"title": "my table", "variable": "table"}
    inline = displays[0]["content"]["data"][INLINE]
    assert inline == {
        "version": 1,
        "comm_id": comm_id,
        "shape": {"rows": shape[0], "columns": shape[1]},
        "title": "my table",
        "source": "mpkernel.view",
    }
    assert "my table" in displays[0]["content"]["data"]["text/plain"]
    assert call(log, comm_id, "subject").result["type"] == type_name
    close_comm(log, comm_id)


def test_view_without_an_explorer_is_a_clear_error(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with configured_kernels(request.node, tmp_path) as start:
        handle = start("[workers.data_explorer]\nenabled = false\n")
        log = IOPubLog(handle.kc)
        msg_id: str = handle.kc.execute("import mpkernel\nmpkernel.view([1, 2])")
        log.wait_idle(msg_id)
        errors = [m for m in log.parented(msg_id) if kind(m) == "error"]
        assert len(errors) == 1, describe(log.parented(msg_id))
        assert "positron.dataExplorer" in errors[0]["content"]["evalue"]
        assert not [m for m in log.parented(msg_id) if msg_type(m) == "comm_open"]


def test_view_magic_titles_the_explorer_with_its_expression(kernel: KernelHandle) -> None:
    """`%view EXPR` opens the explorer on EXPR's value, titled EXPR; an expression that is
    not a variable has no variable to follow; a bad one is an error and opens nothing."""
    log = IOPubLog(kernel.kc)
    execute_ok(log, "import pandas as pd\nframe = pd.DataFrame({'a': range(4)})")
    for expression, variable in (("frame", "frame"), ("frame.head(2)", None)):
        msgs = execute_ok(log, f"%view {expression}")
        (opened,) = [m for m in msgs if msg_type(m) == "comm_open"]
        expected = {"title": expression}
        data = dict(opened["content"]["data"])
        if variable is not None:
            expected["variable"] = variable
            assert isinstance(data.pop("snapshot_version"), int)
        assert data == expected
        rows = 4 if variable else 2
        (shown,) = [m for m in msgs if kind(m) == "display_data"]
        assert shown["content"]["data"][INLINE]["shape"] == {"rows": rows, "columns": 1}
        close_comm(log, comm_id_of(opened))
    msg_id: str = kernel.kc.execute("%view no_such_name")
    log.wait_idle(msg_id)
    bracket = log.parented(msg_id)
    assert [kind(m) for m in bracket if kind(m) == "error"] == ["error"], describe(bracket)
    assert not [m for m in bracket if msg_type(m) == "comm_open"]
