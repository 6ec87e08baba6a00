"""Memoisation on the identity of policy objects, for what the engine derives from policies alone.

Every admission request runs the same few policies, which change rarely, so what depends on the
policies only — their order of precedence, their merged defaults, their quantities as numbers —
is computed once per policy (or per set of policies) instead of once per request.

Keyed on identity, not on value: a ``ProductionPolicy`` is a frozen model, but it holds dicts and
lists and so cannot be hashed. Identity is exact here: a changed policy is a new object (the cluster
view parses it again), so it is never answered from the entry of the old one. An entry for one
policy lives as long as the policy does (a weak reference removes it when the policy is collected,
before its id can be reused); an entry for a set holds its policies, so their ids stay theirs, and
the table is emptied when it reaches :data:`MAX_SETS` entries.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

from production_policy.api import ProductionPolicy

K = TypeVar("K")
T = TypeVar("T")

MAX_SETS = 256
"""Entries kept per memoised function of a set of policies; a full table starts again empty."""


def per_policy(function: Callable[[K], T]) -> Callable[[K], T]:
    """Memoise a pure function of one policy (or of an immutable part of one, such as a probe
    template), for as long as that object lives. The value is shared: it must not be changed."""
    table: dict[int, T] = {}

    @functools.wraps(function)
    def memoised(policy: K) -> T:
        key = id(policy)
        try:
            return table[key]
        except KeyError:
            pass
        value = function(policy)
        table[key] = value
        weakref.finalize(policy, table.pop, key, None)
        return value

    return memoised


def per_policy_set(
    function: Callable[[Sequence[ProductionPolicy]], T],
) -> Callable[[Sequence[ProductionPolicy]], T]:
    """Memoise a pure function of a sequence of policies, keyed on the policy objects in that order.

    The value is shared between callers: it must not be changed.
    """
    table: dict[tuple[int, ...], tuple[tuple[ProductionPolicy, ...], T]] = {}

    @functools.wraps(function)
    def memoised(policies: Sequence[ProductionPolicy]) -> T:
        held = tuple(policies)
        key = tuple(map(id, held))
        entry = table.get(key)
        if entry is not None:
            return entry[1]
        value = function(held)
        if len(table) >= MAX_SETS:
            table.clear()
        table[key] = (held, value)  # holding the policies keeps their ids from being reused
        return value

    return memoised
