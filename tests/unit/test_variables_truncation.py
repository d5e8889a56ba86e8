"""Display values are cut where Positron cuts them (notes 5.2): 2**16 characters on
their own, 128 inside a collection, 60 items on their own and 20 one level down, and
nothing but brackets deeper than that."""

from __future__ import annotations

from typing import Any

from mpkernel_workers.variables.inspectors import describe

TOP, NESTED = 2**16, 128
ELLIPSIS = "…"


def shown(value: object, *, nested: bool = False) -> tuple[str, bool]:
    variable = describe("v", value, nested=nested)
    return variable["display_value"], variable["is_truncated"]


def test_a_string_at_the_limit_is_whole_and_one_past_it_is_cut_two_thirds_one_third() -> None:
    assert shown("a" * TOP) == (repr("a" * TOP), False)
    text = "h" * (2 * TOP) + "t" * TOP
    head, tail = 2 * TOP // 3, TOP // 3
    assert shown(text) == ("'" + "h" * head + ELLIPSIS + "t" * tail + "'", True)


def test_a_string_inside_a_list_is_cut_at_128() -> None:
    assert shown(["x" * NESTED]) == ("['" + "x" * NESTED + "']", False)
    value, cut = shown(["a" * 100 + "b" * 100])
    assert (value, cut) == ("['" + "a" * 85 + ELLIPSIS + "b" * 42 + "']", True)


def test_nested_flag_uses_the_nested_limit() -> None:
    value, cut = shown("z" * 200, nested=True)
    assert cut
    assert value == "'" + "z" * 85 + ELLIPSIS + "z" * 42 + "'"


def test_bytes_are_cut_like_strings() -> None:
    value, cut = shown(b"\x00" * (TOP + 1))
    assert cut
    assert value.startswith("b'\\x00")
    assert value.endswith("\\x00'")
    assert ELLIPSIS in value
    array, cut = shown(bytearray(b"q" * (TOP + 1)))
    assert cut
    assert array.startswith("bytearray(b'qq")
    assert array.endswith("qq')")


def test_a_list_shows_60_items_then_an_ellipsis() -> None:
    assert shown(list(range(60))) == (repr(list(range(60))), False)
    assert shown(list(range(61))) == ("[" + ", ".join(map(str, range(60))) + ", …]", True)


def test_a_nested_list_shows_20_items() -> None:
    inner = list(range(21))
    assert shown([inner]) == ("[[" + ", ".join(map(str, range(20))) + ", …]]", True)
    assert shown([list(range(20))]) == (repr([list(range(20))]), False)


def test_deeper_than_two_levels_only_brackets_show() -> None:
    assert shown([[[1]]]) == ("[[[…]]]", True)
    assert shown({"a": {"b": {"c": 1}}}) == ("{'a': {'b': {…}}}", True)
    assert shown(
        (
            [
                (),
            ],
        )
    ) == ("([()],)", False)  # empty ones are whole at any depth


def test_a_dict_shows_60_entries_then_an_ellipsis() -> None:
    big = {i: i for i in range(61)}
    value, cut = shown(big)
    assert cut
    assert value == "{" + ", ".join(f"{i}: {i}" for i in range(60)) + ", …}"


def test_a_container_holding_itself_shows_an_ellipsis_for_itself() -> None:
    loop: list[Any] = [1, 2]
    loop.append(loop)
    assert shown(loop) == ("[1, 2, […]]", True)
    mapping: dict[str, Any] = {}
    mapping["cycle"] = mapping
    assert shown(mapping) == ("{'cycle': {…}}", True)


def test_a_long_repr_is_cut_at_the_character_limit() -> None:
    class Long:
        def __repr__(self) -> str:
            return "r" * (TOP + 10)

    assert shown(Long()) == ("r" * TOP + ELLIPSIS, True)
    assert shown([Long()]) == ("[" + "r" * NESTED + ELLIPSIS + "]", True)


def test_a_one_item_tuple_keeps_its_comma() -> None:
    assert shown((1,)) == ("(1,)", False)
    assert shown([(1,)]) == ("[(1,)]", False)
