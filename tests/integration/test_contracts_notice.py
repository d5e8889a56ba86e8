"""A run without Positron's contracts says so: where they were looked for, how to give them,
and how many tests skipped for lack of them (a plain clone has no ``shared/protocol``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import contracts

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0


def test_a_run_without_contracts_says_what_skips_and_how_to_run_it(tmp_path: Path) -> None:
    absent = tmp_path / "no-contracts"
    env = {**os.environ, contracts.ENV: str(absent)}
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_variables_contract_schema.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("comm contracts:"))
    collected = next(i for i, line in enumerate(lines) if line.startswith("collected "))
    assert header < collected, "said at the top, before the tests run"
    assert str(absent) in lines[header]
    assert f"set {contracts.ENV} to a folder" in lines[header]
    assert f"1 tests skipped: {lines[header]}" in lines, ran.stdout
