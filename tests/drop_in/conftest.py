"""Fixtures of the drop-in comparisons that talk to both kernels directly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import KERNEL_NAME, KERNEL_NAME_IPYKERNEL, SharedKernel

REFERENCE = "ipykernel"
UNDER_TEST = "mpkernel"


@pytest.fixture(scope="module")
def kernels() -> Iterator[dict[str, SharedKernel]]:
    """One kernel of each kind for the module (replaced after a test that failed on it)."""
    shared = {REFERENCE: SharedKernel(KERNEL_NAME_IPYKERNEL), UNDER_TEST: SharedKernel(KERNEL_NAME)}
    try:
        yield shared
    finally:
        for kernel in shared.values():
            kernel.close()
