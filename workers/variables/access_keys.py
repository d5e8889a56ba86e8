"""Access keys: how one step of a variables path travels as an opaque string.

A key is compact JSON `{"type": <type name>, "data": <JSON value>}`, as Positron's Python
kernel writes it (notes 2.3): the variable `df` is `{"type":"str","data":"df"}`, a column
position `{"type":"int","data":3}`. The frontend only echoes keys back, so the encoding of
keys JSON cannot hold (tuples, None, non-finite floats, bytes, arbitrary hashables) is ours:

    NoneType   null                          bytes      hex digits
    float      a number, or "nan"/"inf"/"-inf"  complex  repr, e.g. "(1+2j)"
    tuple      [<key object>, ...]            frozenset  [<key object>, ...]
    range      [start, stop, step]            other      {"repr": ..., "module": ...}

A key object is the same `{"type", "data"}` shape, nested. Keys of any other type cannot be
rebuilt; they decode to an `OpaqueKey` that `matches` the original by type and repr, which
is enough to find a dict entry again. A string that is not such JSON is a plain name
(Positron accepts those too since issue #8052).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

__all__ = ["OpaqueKey", "Position", "decode_key", "encode_key", "matches"]


class Position(int):
    """A child's position that shows as a label: a DataFrame column is reached by its
    position (labels repeat) but shown by its name. It encodes as a plain int."""

    label: str

    def __new__(cls, position: int, label: str) -> Position:
        obj = super().__new__(cls, position)
        obj.label = label
        return obj

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True, slots=True)
class OpaqueKey:
    """A key of a type JSON cannot rebuild, known by its type and repr."""

    type_name: str
    text: str


def encode_key(key: object) -> str:
    """`key` as an access key (compact JSON)."""
    return json.dumps(_to_json(key), separators=(",", ":"), ensure_ascii=False)


def decode_key(access_key: str) -> object:
    """The key `access_key` names; a string that is not an encoded key is a plain name."""
    try:
        obj = json.loads(access_key)
        return _from_json(obj)
    except (ValueError, TypeError, KeyError, OverflowError):
        return access_key


def matches(candidate: object, key: OpaqueKey) -> bool:
    """Whether `candidate`, a real key, is the one the opaque `key` stands for."""
    return _type_name(candidate) == key.type_name and _safe_repr(candidate) == key.text


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - user __repr__; an object's identity still names it
        return object.__repr__(value)


def _to_json(key: object) -> dict[str, Any]:
    # bool before int: bool is an int subclass, and numpy's bool_ is not Integral
    if isinstance(key, bool) or _type_name(key) == "numpy.bool":
        return {"type": "bool", "data": bool(key)}
    if isinstance(key, str):
        return {"type": "str", "data": str(key)}
    if isinstance(key, numbers.Integral):
        return {"type": "int", "data": int(key)}
    if isinstance(key, numbers.Real):
        x = float(key)
        return {"type": "float", "data": x if math.isfinite(x) else repr(x)}
    if isinstance(key, numbers.Complex):
        return {"type": "complex", "data": repr(complex(key))}
    if key is None:
        return {"type": "NoneType", "data": None}
    if isinstance(key, bytes):
        return {"type": "bytes", "data": key.hex()}
    if isinstance(key, tuple):
        return {"type": "tuple", "data": [_to_json(k) for k in key]}
    if isinstance(key, frozenset):
        return {"type": "frozenset", "data": [_to_json(k) for k in key]}
    if isinstance(key, range):
        return {"type": "range", "data": [key.start, key.stop, key.step]}
    if isinstance(key, OpaqueKey):
        return {"type": key.type_name, "data": {"repr": key.text}}
    return {"type": _type_name(key), "data": {"repr": _safe_repr(key)}}


def _from_json(obj: Any) -> object:
    if not isinstance(obj, dict) or set(obj) != {"type", "data"}:
        raise ValueError("not an encoded key")
    kind, data = obj["type"], obj["data"]
    simple = {"str": str, "int": int, "bool": bool}
    if kind in simple:
        if type(data) is not simple[kind]:
            raise ValueError(f"{kind} key with {type(data).__name__} data")
        return data
    if kind == "float":
        if isinstance(data, str) or (isinstance(data, (int, float)) and type(data) is not bool):
            return float(data)
        raise ValueError("float key with bad data")
    if kind == "complex":
        return complex(str(data))
    if kind == "NoneType":
        return None
    if kind == "bytes":
        return bytes.fromhex(str(data))
    if kind == "tuple":
        return tuple(_from_json(k) for k in _list(data))
    if kind == "frozenset":
        return frozenset(_from_json(k) for k in _list(data))
    if kind == "range":
        start, stop, step = _list(data)
        return range(int(start), int(stop), int(step))
    if isinstance(kind, str) and isinstance(data, dict) and isinstance(data.get("repr"), str):
        return OpaqueKey(kind, data["repr"])
    raise ValueError("not an encoded key")


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError("expected a list")
    return data
