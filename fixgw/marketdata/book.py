"""An L2 book built from a snapshot and incremental level updates, with integrity checks.

Sizes are absolute (the dialect's rule): a change carries the level's new size. A change or
delete of a level the book does not hold, a non-positive size, or a crossed book after an
update means the book can no longer be trusted: `BookIntegrityError`, and the caller asks
for a fresh snapshot. Until then the book is left as the failed update made it. A
`DELETE_IF_HELD` of a level the book does not hold is nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from decimal import Decimal

from fixgw.domain import BookSide, Level, LevelAction, LevelUpdate
from fixgw.errors import FixgwError


class BookIntegrityError(FixgwError):
    code = "book_integrity"


class _Ladder:
    """One side: sizes by price, and the prices kept sorted best first via a sort key (a
    bid's price negated: `copy_negate`, which keeps every digit where `-price` rounds a
    venue's long price to 28 and loses its level)."""

    __slots__ = ("_descending", "_keys", "sizes")

    def __init__(self, best_is_highest: bool) -> None:
        self._descending = best_is_highest
        self._keys: list[Decimal] = []
        self.sizes: dict[Decimal, Decimal] = {}

    def _flip(self, value: Decimal) -> Decimal:
        """A price as its sort key, and back."""
        return value.copy_negate() if self._descending else value

    def set(self, price: Decimal, size: Decimal) -> None:
        if price not in self.sizes:
            bisect.insort(self._keys, self._flip(price))
        self.sizes[price] = size

    def delete(self, price: Decimal) -> None:
        del self.sizes[price]
        del self._keys[bisect.bisect_left(self._keys, self._flip(price))]

    def best(self) -> Decimal | None:
        return self._flip(self._keys[0]) if self._keys else None

    def levels(self, depth: int = 0) -> list[Level]:
        keys = self._keys[:depth] if depth > 0 else self._keys
        prices = [k.copy_negate() for k in keys] if self._descending else keys
        sizes = self.sizes
        return [(p, sizes[p]) for p in prices]

    def clear(self) -> None:
        self._keys.clear()
        self.sizes.clear()

    def __len__(self) -> int:
        return len(self._keys)


class OrderBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = _Ladder(best_is_highest=True)
        self.asks = _Ladder(best_is_highest=False)

    def _side(self, side: BookSide) -> _Ladder:
        return self.bids if side is BookSide.BID else self.asks

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids.clear()
        self.asks.clear()
        for ladder, levels, side in (
            (self.bids, bids, BookSide.BID),
            (self.asks, asks, BookSide.ASK),
        ):
            for price, size in levels:
                self._check_size(side, price, size)
                ladder.set(price, size)
        self._check_not_crossed()

    def apply(self, updates: Iterable[LevelUpdate]) -> list[LevelUpdate]:
        """The updates as they changed the book: a `DELETE_IF_HELD` as a `DELETE`, or left
        out for a level the book does not hold."""
        applied: list[LevelUpdate] = []
        for update in updates:
            ladder = self._side(update.side)
            if update.action is LevelAction.DELETE_IF_HELD:
                if update.price not in ladder.sizes:
                    continue
                ladder.delete(update.price)
                applied.append(
                    LevelUpdate(LevelAction.DELETE, update.side, update.price, Decimal(0))
                )
                continue
            if update.action is LevelAction.DELETE:
                if update.price not in ladder.sizes:
                    raise BookIntegrityError(
                        f"{self.symbol}: delete of a {update.side} level at {update.price} "
                        "that the book does not hold"
                    )
                ladder.delete(update.price)
                applied.append(update)
                continue
            if update.action is LevelAction.CHANGE and update.price not in ladder.sizes:
                raise BookIntegrityError(
                    f"{self.symbol}: change of a {update.side} level at {update.price} "
                    "that the book does not hold"
                )
            self._check_size(update.side, update.price, update.size)
            ladder.set(update.price, update.size)
            applied.append(update)
        self._check_not_crossed()
        return applied

    def _check_size(self, side: BookSide, price: Decimal, size: Decimal) -> None:
        if size <= 0 or price <= 0:
            raise BookIntegrityError(f"{self.symbol}: {side} level {price} with size {size}")

    def _check_not_crossed(self) -> None:
        bid, ask = self.bids.best(), self.asks.best()
        if bid is not None and ask is not None and bid >= ask:
            raise BookIntegrityError(f"{self.symbol}: crossed book, bid {bid} >= ask {ask}")

    def levels(self, depth: int = 0) -> tuple[list[Level], list[Level]]:
        return self.bids.levels(depth), self.asks.levels(depth)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()


Sides = tuple[Mapping[Decimal, Decimal], Mapping[Decimal, Decimal]]
"""A book's bids and asks as held somewhere else (price -> size), such as by a client."""


def changes_between(before: Sides, after: Sides) -> list[LevelUpdate]:
    """The level updates that take `before` to `after`: deletes first (a holder of the top
    N levels never holds more), then new and changed levels, bids then asks, best first
    within a side as `after` lists them."""
    deleted: list[LevelUpdate] = []
    changed: list[LevelUpdate] = []
    for side, was, now in zip((BookSide.BID, BookSide.ASK), before, after, strict=True):
        for price in [p for p in was if p not in now]:
            deleted.append(LevelUpdate(LevelAction.DELETE, side, price, Decimal(0)))
        for price, size in now.items():
            old = was.get(price)
            if old is None:
                changed.append(LevelUpdate(LevelAction.NEW, side, price, size))
            elif old != size:
                changed.append(LevelUpdate(LevelAction.CHANGE, side, price, size))
    return deleted + changed
