"""Orders as the unit tests place them: limit buys of BTC/USD, and cancels of them."""

from __future__ import annotations

from decimal import Decimal

from fixgw.domain import CancelOrder, OrderType, Side, SubmitOrder, utc_now


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


def cancel_of(orig_cl_ord_id: str = "c1", order_id: str | None = None) -> CancelOrder:
    """The cancel `k1` of a limit buy."""
    return CancelOrder(
        ts=utc_now(),
        cl_ord_id="k1",
        orig_cl_ord_id=orig_cl_ord_id,
        order_id=order_id,
        symbol="BTC/USD",
        side=Side.BUY,
    )
