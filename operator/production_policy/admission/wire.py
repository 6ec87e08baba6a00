"""JSON on the admission hot path: pydantic-core's parser and encoder (Rust), cheaper than the stdlib's.

One module, so every review and patch is read and written the same way (and a profile names this
time for what it is).
"""

from __future__ import annotations

from typing import Any

import pydantic_core


def decode(raw: bytes) -> Any:
    """The JSON document in ``raw``; ValueError if it is not JSON (or not UTF-8)."""
    return pydantic_core.from_json(raw)


def encode(value: Any) -> bytes:
    """Compact JSON of plain data (dicts, lists, strings, numbers, booleans, None)."""
    return pydantic_core.to_json(value)
