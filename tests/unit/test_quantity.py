"""The quantity parser agrees with the API server's grammar and with kubernetes.utils.parse_quantity."""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity as client_parse_quantity

from production_policy.quantity import parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", "0"),
        ("100m", "0.1"),
        ("1.5Gi", "1610612736"),
        ("2e3", "2000"),
        ("2E3", "2000"),
        ("1e-3", "0.001"),
        ("1E", "1e18"),  # exa, not an exponent
        ("1Ki", "1024"),
        ("500k", "500000"),
        ("+1M", "1000000"),
        ("-1.5Ki", "-1536"),
        (".5", "0.5"),
        ("1.", "1"),
        ("1n", "1e-9"),
        ("0.1n", "1e-9"),  # rounded up to whole nanos, like the API server
        ("-0.1n", "-1e-9"),
        ("1e-12", "1e-9"),
        ("16Ei", str(2**63 - 1)),  # binary SI is capped at 2^63-1
        ("1e4294967296", "1"),  # the exponent wraps to 32 bits, as Go's int32() does
        ("-", "0"),  # the API server's parser accepts a bare sign or dot as zero
        (".", "0"),
        (2, "2"),
        (0.5, "0.5"),
    ],
)
def test_parses_as_the_api_server_does(text: str | int | float, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1K",
        "1ki",
        " 1",
        "1 ",
        "1e",
        "1e+",
        "abc",
        "1.2.3",
        "1Mi5",
        "1_000",
        "Infinity",
        "NaN",
        "1e3.5",
        "--1",
    ],
)
def test_refuses_what_the_api_server_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_refuses_non_quantities(value: object) -> None:
    with pytest.raises(ValueError, match="string or a number"):
        parse_quantity(value)  # type: ignore[arg-type]


_BINARY_MAX = Decimal(2**63 - 1)
_suffixes = st.sampled_from(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
)
_exponents = st.integers(-12, 12).map(lambda e: f"e{e}")
# Few digits: the client computes in Decimal's default 28-digit precision, and 2^60 has 19.
_digits = st.text("0123456789", min_size=1, max_size=4)


@st.composite
def _grammatical(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "+", "-"]))
    number = draw(
        st.one_of(_digits, st.tuples(_digits, _digits).map(".".join), _digits.map(lambda d: "." + d))
    )
    return sign + number + draw(st.one_of(_suffixes, _exponents))


def _client_value(text: str) -> Decimal:
    """kubernetes.utils.parse_quantity, and what it leaves out: the binary-SI cap and nano rounding."""
    value: Decimal = client_parse_quantity(text)
    if text.endswith("i") and abs(value) > _BINARY_MAX:
        value = _BINARY_MAX.copy_sign(value)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        value = value.quantize(Decimal("1e-9"), rounding=ROUND_UP)
    return value


@given(_grammatical())
def test_agrees_with_the_kubernetes_client_on_the_grammar(text: str) -> None:
    assert parse_quantity(text) == _client_value(text)


@given(st.text("0123456789.+-eEinumkKMGTP ", max_size=8))
def test_accepts_nothing_the_kubernetes_client_refuses(text: str) -> None:
    """Any string: what we accept, the client accepts with the same value.

    The client is more lenient ("1K"), so the converse does not hold. A number without a digit
    before its suffix ("-", ".", "E0") is the one thing only the API server's parser (and ours)
    accepts: it is zero.
    """
    try:
        ours = parse_quantity(text)
    except ValueError:
        return
    if not re.match(r"[+-]?\.?[0-9]", text):
        assert ours == 0
    else:
        assert ours == _client_value(text)
