"""Quantities and prices from clients: what `positive_decimal` lets through can be sent in
FIX and checked against the risk limits without blowing up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fixgw.api.protocol import ErrorCode, positive_decimal
from fixgw.errors import RequestError
from fixgw.okcoin.outbound import fix_decimal


@pytest.mark.parametrize(
    "value",
    [
        "0.5",
        "30000.10",
        "1e14",
        "999999999999999.999999999999999999",
        "1E-18",
        "0.000000000000000001",
    ],
)
def test_quantities_and_prices_within_the_bounds_are_taken_as_given(value: str) -> None:
    assert positive_decimal(value, "qty", ErrorCode.INVALID_QTY) == Decimal(value)


@pytest.mark.parametrize(
    "value",
    [
        "1e15",
        "1000000000000000",
        "1e999999",
        "1e999999999999999999",
        "1e-19",
        "0.0000000000000000001",
        "1.0000000000000000000",  # 19 decimal places, if only zeros
        "1e-999999999",
        "1" * 3000,
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_the_limit(value: str) -> None:
    with pytest.raises(RequestError) as refused:
        positive_decimal(value, "price", ErrorCode.INVALID_PRICE)
    assert refused.value.code == ErrorCode.INVALID_PRICE
    assert "below 1e15 with at most 18 decimal places" in refused.value.message
    assert len(refused.value.message) < 200  # the value is not echoed whole


def test_the_largest_and_finest_values_fit_in_fix_and_in_a_notional() -> None:
    largest = positive_decimal("999999999999999.999999999999999999", "qty", ErrorCode.INVALID_QTY)
    finest = positive_decimal("1e-18", "qty", ErrorCode.INVALID_QTY)
    assert len(fix_decimal(largest)) == 34 and fix_decimal(finest) == "0.000000000000000001"
    # the default context traps Overflow: 1e999999 times a price raised it in the risk check
    assert largest * largest <= Decimal("1e30")
    assert finest * finest > 0
