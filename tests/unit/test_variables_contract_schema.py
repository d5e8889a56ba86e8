"""Every `Variable` the inspectors build is checked against the variables contract read
from `../shared/protocol/` (with the current-field differences of notes 3.4), through the
integration tier's checker; without that folder the check says so and is skipped."""

from __future__ import annotations

from typing import Any

import pytest
from mpkernel_workers.variables.inspectors import describe
from mpkernel_workers.variables.protocol import Variable

from tests.integration.test_variables_contract import MISSING, checker

_CONTRACT = checker()


def assert_valid(*variables: Variable) -> None:
    """Fails when a variable breaks the contract; skips when the contract is absent."""
    if _CONTRACT is None:
        pytest.skip(MISSING)
    params: dict[str, Any] = {"variables": list(variables), "length": len(variables), "version": 0}
    _CONTRACT.events["refresh"].validate(params)


def test_a_described_value_is_valid_and_a_broken_one_is_not() -> None:
    variable = describe("x", [1, 2, 3], updated_time=1_700_000_000_000)
    assert_valid(variable)
    broken: dict[str, Any] = {**variable, "kind": "list"}
    with pytest.raises(Exception, match="list"):
        assert_valid(broken)  # type: ignore[arg-type]  # deliberately not a Variable
    missing = {k: v for k, v in variable.items() if k != "updated_time"}
    with pytest.raises(Exception, match="updated_time"):
        assert_valid(missing)  # type: ignore[arg-type]
