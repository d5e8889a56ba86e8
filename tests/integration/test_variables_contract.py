"""The `positron.variables` contract as JSON Schema, read from `../shared/protocol/`.

The vendored OpenRPC files predate the current contract; `notes/positron-comms.md` section
3.4 lists the differences, applied here on top of what the files say: `Variable` gains a
required `updated_time` and the kind `connection`; `update` gains `unevaluated`; `view`
answers a string or null; `clipboard_format` answers `{content}`; `query_table_summary`
is new. Nothing from those files is copied into the repository: they are read at test
time, and the tests that need them skip, saying why, when the folder is absent.

`ContractChecker.check(msg, method)` validates one comm_msg the kernel sent on the comm:
a reply (by the method of the request it answers) or an event.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests import contracts

PROTOCOL_DIR = contracts.PROTOCOL_DIR
BACKEND = PROTOCOL_DIR / "variables-backend-openrpc.json"
FRONTEND = PROTOCOL_DIR / "variables-frontend-openrpc.json"
MISSING = contracts.MISSING

pytestmark = [pytest.mark.mpkernel_only]


def _object(params: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenRPC params by name -> one object schema, every param required."""
    return {
        "type": "object",
        "properties": {p["name"]: p["schema"] for p in params},
        "required": [p["name"] for p in params],
    }


class ContractChecker:
    def __init__(self) -> None:
        from jsonschema import Draft202012Validator

        backend = json.loads(BACKEND.read_text(encoding="utf-8"))
        frontend = json.loads(FRONTEND.read_text(encoding="utf-8"))
        variable = copy.deepcopy(backend["components"]["schemas"]["variable"])
        # notes 3.4: the current Variable
        variable["properties"]["updated_time"] = {"type": "integer"}
        variable["required"].append("updated_time")
        variable["properties"]["kind"]["enum"].append("connection")
        variable["additionalProperties"] = False
        defs = {"variable": variable}

        def validator(schema: dict[str, Any]) -> Any:
            return Draft202012Validator({**schema, "components": {"schemas": defs}})

        results: dict[str, Any] = {}
        for method in backend["methods"]:
            result = method.get("result", {})
            results[method["name"]] = result.get("schema") if isinstance(result, dict) else None
        results["view"] = {"type": ["string", "null"]}
        results["clipboard_format"] = {
            "type": "object",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
            "additionalProperties": False,
        }
        results["query_table_summary"] = {
            "type": "object",
            "properties": {
                "num_rows": {"type": "integer"},
                "num_columns": {"type": "integer"},
                "column_schemas": {"type": "array", "items": {"type": "string"}},
                "column_profiles": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["num_rows", "num_columns", "column_schemas", "column_profiles"],
        }
        self.results = {
            name: validator(schema) if schema else None for name, schema in results.items()
        }
        events = {m["name"]: _object(m["params"]) for m in frontend["methods"]}
        events["update"]["properties"]["unevaluated"] = {
            "type": "array",
            "items": {"$ref": "#/components/schemas/variable"},
        }
        events["update"]["required"].append("unevaluated")
        self.events = {name: validator(schema) for name, schema in events.items()}
        self.checked = 0

    def check(self, data: Any, method: str | None) -> None:
        """One comm_msg's data from the kernel: `method` is the request it answers, None
        for an event."""
        assert isinstance(data, dict), data
        assert data.get("jsonrpc") == "2.0", data
        if method is None:
            assert set(data) == {"jsonrpc", "method", "params"}, data
            assert data["method"] in self.events, f"unknown event {data['method']!r}"
            self.events[data["method"]].validate(data["params"])
        elif "error" in data:
            assert set(data) == {"jsonrpc", "error"}, data
            error = data["error"]
            assert isinstance(error.get("code"), int), error
            assert isinstance(error.get("message"), str), error
        else:
            assert set(data) == {"jsonrpc", "result"}, data
            assert method in self.results, f"a reply to an unknown method {method!r}"
            validator = self.results[method]
            if validator is not None:
                validator.validate(data["result"])
        self.checked += 1


def checker() -> ContractChecker | None:
    """The checker, or None when the contract folder is absent."""
    if not BACKEND.is_file() or not FRONTEND.is_file():
        return None
    return ContractChecker()


def test_contract_accepts_a_current_variable_and_rejects_an_old_one() -> None:
    contract = checker()
    if contract is None:
        pytest.skip(MISSING)
    variable = {
        "access_key": '{"type":"str","data":"x"}',
        "display_name": "x",
        "display_value": "1",
        "display_type": "int",
        "type_info": "int",
        "size": 28,
        "kind": "number",
        "length": 0,
        "has_children": False,
        "has_viewer": False,
        "is_truncated": False,
        "updated_time": 1,
    }
    event = {"jsonrpc": "2.0", "method": "refresh"}
    contract.check({**event, "params": {"variables": [variable], "length": 1, "version": 1}}, None)
    old = {k: v for k, v in variable.items() if k != "updated_time"}
    with pytest.raises(Exception, match="updated_time"):
        contract.check({**event, "params": {"variables": [old], "length": 1, "version": 1}}, None)
    with pytest.raises(Exception, match="unevaluated"):
        contract.check(
            {
                "jsonrpc": "2.0",
                "method": "update",
                "params": {"assigned": [], "removed": [], "version": 2},
            },
            None,
        )
