"""The simulator's matching engine: price-time priority books, one per symbol. No FIX here."""

from __future__ import annotations

import bisect
import functools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from fixgw.decimals import EXACT
from fixgw.domain import OrderStatus, OrderType, Side

ZERO = Decimal(0)


@dataclass(slots=True, eq=False)
class SimOrder:
    order_id: str
    cl_ord_id: str
    owner: str | None
    """The session that placed it (None for seeded liquidity)."""
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    cum_qty: Decimal = ZERO
    notional: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status.is_terminal else EXACT.subtract(self.qty, self.cum_qty)

    @property
    def avg_px(self) -> Decimal:
        return self.notional / self.cum_qty if self.cum_qty else ZERO

    def fill(self, qty: Decimal, price: Decimal) -> None:
        self.cum_qty = EXACT.add(self.cum_qty, qty)
        self.notional = EXACT.add(self.notional, EXACT.multiply(qty, price))
        self.status = (
            OrderStatus.FILLED if self.cum_qty == self.qty else OrderStatus.PARTIALLY_FILLED
        )


@dataclass(frozen=True, slots=True)
class Fill:
    maker: SimOrder
    taker: SimOrder
    qty: Decimal
    price: Decimal


FillListener = Callable[[Fill], None]


@dataclass(slots=True)
class _Side:
    """Price levels of one side; `prices` sorted best first."""

    descending: bool
    prices: list[Decimal] = field(default_factory=list)
    levels: dict[Decimal, deque[SimOrder]] = field(default_factory=dict)

    def _key(self, price: Decimal) -> Decimal:
        return price.copy_negate() if self.descending else price

    def best(self) -> Decimal | None:
        return self.prices[0] if self.prices else None

    def add(self, order: SimOrder) -> None:
        assert order.price is not None
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = deque()
            keys = [self._key(p) for p in self.prices]
            self.prices.insert(bisect.bisect(keys, self._key(order.price)), order.price)
        level.append(order)

    def remove(self, order: SimOrder) -> None:
        assert order.price is not None
        level = self.levels[order.price]
        level.remove(order)
        if not level:
            self._drop_level(order.price)

    def _drop_level(self, price: Decimal) -> None:
        del self.levels[price]
        self.prices.remove(price)

    def depth(self, levels: int) -> list[tuple[Decimal, Decimal]]:
        return [
            (p, functools.reduce(EXACT.add, (o.leaves_qty for o in self.levels[p]), ZERO))
            for p in self.prices[: levels or None]
        ]


class OrderBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = _Side(descending=True)
        self.asks = _Side(descending=False)

    def _crosses(self, taker: SimOrder, price: Decimal) -> bool:
        if taker.order_type is OrderType.MARKET:
            return True
        assert taker.price is not None
        return price <= taker.price if taker.side is Side.BUY else price >= taker.price

    def submit(self, taker: SimOrder, on_fill: FillListener) -> None:
        """Match `taker`, calling `on_fill` after each fill while both orders show that moment's
        state; a limit remainder rests, a market remainder is left for the caller."""
        opposite = self.asks if taker.side is Side.BUY else self.bids
        while taker.leaves_qty > 0:
            best = opposite.best()
            if best is None or not self._crosses(taker, best):
                break
            level = opposite.levels[best]
            maker = level[0]
            qty = min(taker.leaves_qty, maker.leaves_qty)
            maker.fill(qty, best)
            taker.fill(qty, best)
            if maker.leaves_qty == 0:
                opposite.remove(maker)
            on_fill(Fill(maker=maker, taker=taker, qty=qty, price=best))
        if taker.order_type is OrderType.LIMIT and taker.leaves_qty > 0:
            (self.bids if taker.side is Side.BUY else self.asks).add(taker)

    def cancel(self, order: SimOrder) -> None:
        (self.bids if order.side is Side.BUY else self.asks).remove(order)
        order.status = OrderStatus.CANCELED

    def market_cost(self, side: Side, qty: Decimal) -> Decimal:
        """What a market order of `qty` would trade for now, as far as the book goes."""
        opposite = self.asks if side is Side.BUY else self.bids
        left, cost = qty, ZERO
        for price in opposite.prices:
            for maker in opposite.levels[price]:
                take = min(left, maker.leaves_qty)
                cost = EXACT.add(cost, EXACT.multiply(take, price))
                left = EXACT.subtract(left, take)
                if not left:
                    return cost
        return cost

    def depth(
        self, levels: int = 0
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return self.bids.depth(levels), self.asks.depth(levels)


class MatchingEngine:
    def __init__(self, symbols: list[str], id_stem: str) -> None:
        self.books = {s: OrderBook(s) for s in symbols}
        self.orders: dict[str, SimOrder] = {}
        self._stem = id_stem
        self._next_id = 0

    def new_order_id(self) -> str:
        self._next_id += 1
        return f"{self._stem}{self._next_id}"

    def submit(self, order: SimOrder, on_fill: FillListener) -> None:
        self.orders[order.order_id] = order
        self.books[order.symbol].submit(order, on_fill)

    def cancel(self, order: SimOrder) -> None:
        self.books[order.symbol].cancel(order)

    def expire(self, order: SimOrder) -> None:
        """A market order's unfilled remainder: it never rests."""
        order.status = OrderStatus.CANCELED

    def open_orders(self, owner: str) -> Iterator[SimOrder]:
        return (o for o in self.orders.values() if o.owner == owner and not o.status.is_terminal)
