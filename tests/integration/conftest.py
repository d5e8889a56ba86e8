"""Fixtures shared by the integration tests that talk comms to the module's kernel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import KernelHandle
from tests.integration.comm_client import ECHO, IOPubLog, close_comm, open_comm


@pytest.fixture
def log(kc: BlockingKernelClient) -> IOPubLog:
    """IOPub of the module's kernel, recorded in arrival order."""
    return IOPubLog(kc)


@pytest.fixture
def echo(log: IOPubLog, shared_kernel: KernelHandle) -> Iterator[str]:
    """An open comm on the built-in echo worker, closed after a passing test (after a
    failure the kernel is replaced anyway)."""
    comm_id = open_comm(log, ECHO)
    yield comm_id
    if not shared_kernel.dirty:
        close_comm(log, comm_id)
