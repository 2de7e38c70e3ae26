"""Orders as the unit tests place them: limit buys of BTC/USD."""

from __future__ import annotations

from decimal import Decimal

from fixgw.domain import OrderType, Side, SubmitOrder, utc_now


def limit_buy(cl_ord_id: str, qty: str = "1", price: str = "100") -> SubmitOrder:
    return SubmitOrder(
        ts=utc_now(),
        cl_ord_id=cl_ord_id,
        symbol="BTC/USD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=Decimal(qty),
        price=Decimal(price),
    )
