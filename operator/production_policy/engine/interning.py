"""One copy of the values that many workloads repeat: namespace and key names, sets of keys or policies.

The controller keeps something of every workload, and most of it repeats from one workload to the
next: each decoded body brings its own copy of the namespace's name and of every key name, and each
reduction makes its own set of the keys or policies it found. :func:`shared` hands back the first
equal value it was given instead, so ten thousand workloads hold one of each.

The values must be immutable (strings, and tuples and frozensets of strings): they are handed out to
every caller. The table is bounded (least recently used values go first), which costs sharing
only, never correctness: a value already handed out stays as it is.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import TypeVar, cast

H = TypeVar("H", bound=Hashable)

LIMIT = 4096
"""Distinct values remembered at most (a few hundred kB of table at most)."""


def shared(value: H) -> H:
    """The one copy kept of ``value`` (``value`` itself, the first time it is seen)."""
    return cast(H, _first(value))


@functools.lru_cache(maxsize=LIMIT, typed=True)  # typed: 1 and 1.0 are not the same thing
def _first(value: Hashable) -> Hashable:
    return value
