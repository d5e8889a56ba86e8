"""Display values: the pane's one-line text for a value, truncated as Positron truncates.

Limits (notes 5.2): 2**16 characters for a value shown on its own, 128 for a value inside a
collection; a collection shows at most 60 items on its own and 20 one level down, then an
ellipsis; deeper than that it is only its brackets around an ellipsis. Every helper here
works from a bounded slice of its input (never `len(repr(x))` of a huge x), and none raises
on a user object: a `__repr__` that raises gives a text saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

__all__ = [
    "ELLIPSIS",
    "MAX_CHARACTERS",
    "MAX_CHARACTERS_NESTED",
    "MAX_ITEMS_BY_LEVEL",
    "Display",
    "collection_display",
    "qualified_name",
    "safe_repr",
    "string_display",
    "truncate",
]

ELLIPSIS = "…"
MAX_CHARACTERS = 2**16
MAX_CHARACTERS_NESTED = 128
MAX_ITEMS_BY_LEVEL = (60, 20)

Display = tuple[str, bool]
"""A display value and whether it was cut."""


def max_characters(level: int) -> int:
    return MAX_CHARACTERS if level == 0 else MAX_CHARACTERS_NESTED


def qualified_name(cls: type) -> str:
    """`module.Qualname`, bare for builtins (`int`, `dict`), as Positron names types."""
    module = getattr(cls, "__module__", None) or ""
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    return str(name) if module == "builtins" else f"{module}.{name}"


def safe_repr(value: object) -> str:
    """`repr(value)`, or a text saying why there is none."""
    try:
        text = repr(value)
    except Exception as e:  # noqa: BLE001 - user __repr__: the pane shows the failure instead
        return f"<{qualified_name(type(value))}: repr raised {type(e).__name__}: {_message(e)}>"
    return text


def _message(e: BaseException) -> str:
    try:
        return str(e)[:MAX_CHARACTERS_NESTED]
    except Exception:  # noqa: BLE001 - an exception's own __str__ can raise too
        return "?"


def truncate(text: str, level: int) -> Display:
    """`text` cut to the level's character limit."""
    limit = max_characters(level)
    if len(text) <= limit:
        return text, False
    return text[:limit] + ELLIPSIS, True


def string_display(value: str | bytes | bytearray, level: int) -> Display:
    """The repr of a string-like value; a long one keeps its first two thirds of the budget
    and its last third around an ellipsis. Only the kept slices are repr'd, so a 1 GB
    string costs no more than a short one."""
    limit = max_characters(level)
    if len(value) <= limit:
        return repr(value), False
    keep_head, keep_tail = max(1, 2 * limit // 3), max(1, limit // 3)
    if isinstance(value, bytearray):
        joined = _joined(bytes(value[:keep_head]), bytes(value[-keep_tail:]))
        return f"bytearray({joined})", True
    return _joined(value[:keep_head], value[-keep_tail:]), True


def _joined(head: str | bytes | bytearray, tail: str | bytes | bytearray) -> str:
    # the head's repr without its closing quote, the tail's without prefix and opening quote
    head_text, tail_text = repr(head), repr(tail)
    return f"{head_text[:-1]}{ELLIPSIS}{tail_text[tail_text.index(tail_text[-1]) + 1 :]}"


def collection_display(
    items: Iterable[object],
    length: int,
    prefix: str,
    suffix: str,
    level: int,
    item_display: Callable[[object, int], Display],
    *,
    parent: object = None,
    one_tuple: bool = False,
) -> Display:
    """`prefix item, item, … suffix` over at most the level's item allowance, taken lazily
    from `items`; `length` is the collection's true size."""
    if length == 0:
        return f"{prefix}{suffix}", False
    if level >= len(MAX_ITEMS_BY_LEVEL):
        return f"{prefix}{ELLIPSIS}{suffix}", True
    allowance = MAX_ITEMS_BY_LEVEL[level]
    parts: list[str] = []
    truncated = length > allowance
    for item in islice(items, allowance):
        if item is parent and parent is not None:
            # a collection that holds itself: show it as cut rather than recurse
            text, cut = f"{prefix}{ELLIPSIS}{suffix}", True
        else:
            text, cut = item_display(item, level + 1)
        parts.append(text)
        truncated = truncated or cut
    if length > allowance:
        parts.append(ELLIPSIS)
    body = ", ".join(parts) + ("," if one_tuple and length == 1 else "")
    text, cut = truncate(f"{prefix}{body}{suffix}", level)
    return text, truncated or cut


def map_display(
    pairs: Iterable[tuple[object, object]],
    length: int,
    level: int,
    item_display: Callable[[object, int], Display],
    *,
    parent: object = None,
) -> Display:
    """`{key: value, …}` over at most the level's item allowance."""
    if length == 0:
        return "{}", False
    if level >= len(MAX_ITEMS_BY_LEVEL):
        return "{" + ELLIPSIS + "}", True
    allowance = MAX_ITEMS_BY_LEVEL[level]
    parts: list[str] = []
    truncated = length > allowance
    for key, item in islice(pairs, allowance):
        key_text, key_cut = item_display(key, level + 1)
        if item is parent and parent is not None:
            item_text, item_cut = "{" + ELLIPSIS + "}", True
        else:
            item_text, item_cut = item_display(item, level + 1)
        parts.append(f"{key_text}: {item_text}")
        truncated = truncated or key_cut or item_cut
    if length > allowance:
        parts.append(ELLIPSIS)
    text, cut = truncate("{" + ", ".join(parts) + "}", level)
    return text, truncated or cut
