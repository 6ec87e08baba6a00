"""Kubernetes resource quantities ("100m", "1.5Gi", "2e3"), parsed exactly as the API server does.

Why not ``kubernetes.utils.parse_quantity``: the engine and the API models must not import the
Kubernetes client (the engine is pure, and the client pulls in urllib3 and friends), and that
function is also more lenient than the API server — it accepts "1K", "1_000" and "Infinity",
which the API server rejects. No pure, maintained quantity parser exists on PyPI, so this module
ports ``ParseQuantity`` from k8s.io/apimachinery/pkg/api/resource (quantity.go, suffix.go):

    <quantity>      ::= <sign>? <digits>* ("." <digits>*)? <suffix>
    <suffix>        ::= "" | n | u | m | k | M | G | T | P | E      (powers of 1000)
                      | Ki | Mi | Gi | Ti | Pi | Ei                 (powers of 1024)
                      | ("e" | "E") <sign>? <digits>+               (powers of 10)

including its quirks: non-zero values are rounded away from zero to whole nano units, binary-SI
values are capped at 2^63-1, and the exponent of "e" notation wraps to 32 bits. The unit tests
compare it with ``kubernetes.utils.parse_quantity`` on every input both accept.
"""

from __future__ import annotations

import decimal
import functools
import re
from decimal import Decimal

_SYNTAX = re.compile(
    r"(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?(?P<suffix>[eEinumkKMGTP]*[+-]?[0-9]*)"
)
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_EXPONENT = re.compile(r"[eE](?P<exponent>[+-]?[0-9]+)")
_NANO = Decimal("1e-9")
_BINARY_MAX = Decimal(2**63 - 1)
_INT64 = 2**63
_CACHED_LENGTH = 32
"""Texts up to this long are parsed once and remembered (see :func:`parse_quantity`)."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a Kubernetes quantity; ``ValueError`` if the API server would not accept it.

    Numbers are accepted because YAML and JSON manifests may carry ``cpu: 2`` or ``cpu: 0.5``; the
    API server parses those from their text too.
    """
    if type(value) is str and len(value) <= _CACHED_LENGTH:
        # Admission parses the same few quantities ("100m", "128Mi") over and over, many times per pod.
        # Decimals are immutable, errors are not cached, and short texts keep the cache small.
        return _parse_cached(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"quantity must be a string or a number, not {type(value).__name__}")
    return _parse(value if isinstance(value, str) else repr(value))


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> Decimal:
    return _parse(text)


def _parse(text: str) -> Decimal:
    match = _SYNTAX.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"quantity {text!r} is not a valid Kubernetes quantity")
    exponent, binary = _interpret_suffix(match["suffix"], text)
    digits = Decimal(f"{match['sign']}{match['whole'] or '0'}.{match['fraction'] or '0'}")
    # Enough precision for every digit of the input and of 2^60: every step below is exact.
    context = decimal.Context(prec=3 * len(text) + 60, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
    if binary:
        amount = context.multiply(digits, Decimal(2**exponent))
        if abs(amount) > _BINARY_MAX:
            amount = _BINARY_MAX.copy_sign(amount)
    else:
        amount = context.scaleb(digits, exponent)
    # Finer than a nano unit: round away from zero (apimachinery: "if you want some resources,
    # you should get some resources"). Coarser values are left alone; they are multiples already.
    exponent_of_amount = amount.as_tuple().exponent
    if amount and isinstance(exponent_of_amount, int) and exponent_of_amount < -9:
        amount = amount.quantize(_NANO, rounding=decimal.ROUND_UP, context=context)
    return amount


def _interpret_suffix(suffix: str, text: str) -> tuple[int, bool]:
    """(exponent, is binary SI) of a suffix, as apimachinery's suffixHandler.interpret."""
    if suffix in _DECIMAL_SUFFIXES:
        return _DECIMAL_SUFFIXES[suffix], False
    if suffix in _BINARY_SUFFIXES:
        return _BINARY_SUFFIXES[suffix], True
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is None or not -_INT64 <= int(exponent["exponent"]) < _INT64:
        raise ValueError(f"quantity {text!r} has an unknown suffix {suffix!r}")
    # Go converts the parsed int64 with int32(...), which wraps around.
    wrapped = (int(exponent["exponent"]) + 2**31) % 2**32 - 2**31
    return wrapped, False
