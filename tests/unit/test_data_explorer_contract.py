"""The data explorer's messages against Positron's contract (`shared/protocol/`).

`Contract` validates replies (by method) and events (by name) with jsonschema; the
integration tests import it to validate every message a real kernel sends on the comm.
Skipped when the contract folder is not present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mpkernel_workers.data_explorer.features import supported_features
from mpkernel_workers.data_explorer.profiles import column_profile
from mpkernel_workers.data_explorer.tables import from_object
from mpkernel_workers.data_explorer.view import TableView

from tests import contracts

PROTOCOL = contracts.PROTOCOL_DIR


class Contract:
    def __init__(self, folder: Path = PROTOCOL) -> None:
        backend = json.loads((folder / "data_explorer-backend-openrpc.json").read_text())
        frontend = json.loads((folder / "data_explorer-frontend-openrpc.json").read_text())
        self.components = {
            "schemas": {
                **backend["components"]["schemas"],
                **frontend.get("components", {}).get("schemas", {}),
            }
        }
        self.methods = {m["name"]: m for m in backend["methods"]}
        # `code_syntax_name` is a string under components, but `suggest_code_syntax`'s
        # result is an object of that same name, and Positron's generated models and
        # frontend type every `$ref` to it as that object (`{"code_syntax_name": ...}`):
        # feature lists and `convert_to_code` carry objects on the wire. Either is valid.
        named = self.methods["suggest_code_syntax"]["result"]["schema"]
        schemas = self.components["schemas"]
        schemas["code_syntax_name"] = {"anyOf": [schemas["code_syntax_name"], named]}
        self.events = {m["name"]: m for m in frontend["methods"]}

    def _check(self, schema: dict[str, Any], value: Any) -> None:
        # Local $refs resolve against the document root, so the components ride along.
        jsonschema.validate(value, {**schema, "components": self.components})

    def check_params(self, method: str, params: dict[str, Any]) -> None:
        for p in self.methods[method].get("params", []):
            if p.get("required"):
                assert p["name"] in params, f"{method}: missing {p['name']}"
            if p["name"] in params:
                self._check(p["schema"], params[p["name"]])

    def check_result(self, method: str, result: Any) -> None:
        schema = self.methods[method].get("result", {}).get("schema")
        if schema is None:
            assert result is None or result == {}, f"{method} returns nothing, got {result!r}"
            return
        self._check(schema, result)

    def check_event(self, name: str, params: Any) -> None:
        spec = self.events[name]
        params = params or {}
        names = {p["name"] for p in spec.get("params", [])}
        assert set(params) <= names, f"{name}: unexpected params {set(params) - names}"
        for p in spec.get("params", []):
            if p.get("required"):
                assert p["name"] in params, f"{name}: missing {p['name']}"
            if p["name"] in params:
                self._check(p["schema"], params[p["name"]])

    def check_message(self, data: dict[str, Any], method: str | None = None) -> None:
        """One comm_msg's data: a reply to `method`, or an event."""
        assert data.get("jsonrpc") == "2.0"
        if "method" in data:
            self.check_event(data["method"], data.get("params"))
        elif "error" in data:
            assert isinstance(data["error"]["code"], int)
            assert isinstance(data["error"]["message"], str)
        else:
            assert "result" in data, data
            assert method is not None
            self.check_result(method, data["result"])


@pytest.fixture(scope="module")
def contract() -> Contract:
    if not PROTOCOL.is_dir():
        pytest.skip(contracts.MISSING)
    return Contract()


FORMAT = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 1000,
}


def test_supported_features_follow_the_contract(contract: Contract) -> None:
    contract._check({"$ref": "#/components/schemas/supported_features"}, supported_features())


def test_values_and_profiles_follow_the_contract(contract: Contract) -> None:
    import datetime as dt

    import pyarrow as pa

    table = pa.table(
        {
            "f": [1.5, None, float("nan"), float("inf")],
            "i": [1, 2, None, 4],
            "s": ["a", "", None, "b"],
            "b": [True, False, None, True],
            "t": [dt.datetime(2024, 1, d) for d in (1, 2, 3, 4)],
            "d": [dt.date(2024, 1, d) for d in (1, 2, 3, 4)],
        }
    )
    view = TableView(from_object(table))
    columns = [{"column_index": i, "spec": {"first_index": 0, "last_index": 3}} for i in range(6)]
    contract.check_params("get_data_values", {"columns": columns, "format_options": FORMAT})
    contract.check_result("get_data_values", {"columns": view.data_values(columns, FORMAT)})
    contract.check_result("get_schema", {"columns": view.schema(list(range(6)))})
    specs = [
        {"profile_type": "null_count"},
        {"profile_type": "summary_stats"},
        {"profile_type": "small_frequency_table", "params": {"limit": 2}},
        {"profile_type": "large_frequency_table", "params": {"limit": 10}},
    ]
    hist = [
        {
            "profile_type": "small_histogram",
            "params": {"method": m, "num_bins": 5, "quantiles": [0.5]},
        }
        for m in ("fixed", "sturges", "freedman_diaconis", "scott")
    ]
    for i, column in enumerate(view.table.columns):
        numeric = column.display in ("floating", "integer", "datetime", "date")
        result = column_profile(column, None, specs + (hist if numeric else []), FORMAT)
        contract.check_event(
            "return_column_profiles", {"callback_id": str(i), "profiles": [result]}
        )
