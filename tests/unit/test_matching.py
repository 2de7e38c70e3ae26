"""The simulator's matching engine: price-time priority, fills reported as they happen."""

from __future__ import annotations

from decimal import Decimal as D

from fixgw.domain import OrderStatus, OrderType, Side
from fixgw.sim.matching import Fill, OrderBook, SimOrder

_ids = iter(range(1, 1000))


def order(side: Side, qty: str, price: str | None, owner: str = "a") -> SimOrder:
    n = next(_ids)
    return SimOrder(
        order_id=f"o{n}",
        cl_ord_id=f"c{n}",
        owner=owner,
        symbol="BTC/USD",
        side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        qty=D(qty),
        price=D(price) if price else None,
    )


def test_each_fill_is_seen_with_the_state_of_that_moment() -> None:
    book = OrderBook("BTC/USD")
    book.submit(order(Side.BUY, "1.5", "29990"), lambda f: None)
    book.submit(order(Side.BUY, "3", "29980"), lambda f: None)
    seen: list[tuple[D, D, OrderStatus]] = []

    def on_fill(fill: Fill) -> None:
        seen.append((fill.price, fill.taker.cum_qty, fill.taker.status))

    taker = order(Side.SELL, "2", None)
    book.submit(taker, on_fill)
    assert seen == [
        (D("29990"), D("1.5"), OrderStatus.PARTIALLY_FILLED),
        (D("29980"), D("2.0"), OrderStatus.FILLED),
    ]
    assert taker.avg_px == (D("1.5") * 29990 + D("0.5") * 29980) / 2
    assert book.depth() == ([(D("29980"), D("2.5"))], [])


def test_price_then_time_priority() -> None:
    book = OrderBook("BTC/USD")
    first = order(Side.SELL, "1", "100")
    second = order(Side.SELL, "1", "100")
    better = order(Side.SELL, "1", "99")
    for o in (first, second, better):
        book.submit(o, lambda f: None)
    makers: list[str] = []
    book.submit(order(Side.BUY, "2", "100"), lambda f: makers.append(f.maker.order_id))
    assert makers == [better.order_id, first.order_id]
    assert second.status is OrderStatus.NEW


def test_limit_order_that_does_not_cross_rests_and_can_be_canceled() -> None:
    book = OrderBook("BTC/USD")
    bid = order(Side.BUY, "1", "50")
    book.submit(bid, lambda f: None)
    book.submit(order(Side.SELL, "1", "51"), lambda f: None)
    assert book.depth() == ([(D("50"), D("1"))], [(D("51"), D("1"))])
    book.cancel(bid)
    assert bid.status is OrderStatus.CANCELED and bid.leaves_qty == 0
    assert book.depth()[0] == []


def test_quantities_of_33_digits_fill_exactly() -> None:
    """After a fill of 1e-18, what is left of the largest quantity the protocol takes is
    all but 1e-18 (rounded to 28 digits it was 1e15, and the taker filled beyond its qty)."""
    big = "999999999999999.999999999999999999"
    book = OrderBook("BTC/USD")
    small_bid, big_bid = order(Side.BUY, "0.000000000000000001", "2"), order(Side.BUY, big, "1")
    book.submit(small_bid, lambda f: None)
    book.submit(big_bid, lambda f: None)
    taker = order(Side.SELL, big, "1")
    book.submit(taker, lambda f: None)
    assert (taker.cum_qty, taker.status) == (D(big), OrderStatus.FILLED)
    assert book.depth() == ([(D("1"), D("0.000000000000000001"))], [])
