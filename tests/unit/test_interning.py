"""One copy of the values many workloads repeat."""

from __future__ import annotations

from production_policy.engine import interning
from production_policy.engine.interning import shared


def test_equal_values_give_the_first_one() -> None:
    first, again = "".join(["name", "space"]), "".join(["names", "pace"])
    assert first is not again
    assert shared(first) is first and shared(again) is first
    keys = frozenset({"a", "b"})
    assert shared(frozenset({"b", "a"})) is shared(keys)


def test_values_of_other_types_are_never_mixed_up() -> None:
    assert type(shared(1.0)) is float and type(shared(1)) is int and type(shared(True)) is bool


def test_the_table_is_bounded() -> None:
    oldest = "".join(["oldest", "-value"])
    assert shared(oldest) is oldest
    for index in range(interning.LIMIT):
        shared(f"value-{index}")
    # Forgotten: an equal value is now its own copy (sharing lost, nothing else).
    newer = "".join(["oldest-", "value"])
    assert shared(newer) is newer
