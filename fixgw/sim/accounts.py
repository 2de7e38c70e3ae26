"""The simulator's accounts: what each holds, moved by fills; frozen is what its resting
orders would spend (quote for buys, base for sells)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fixgw.config import SimAccount
from fixgw.domain import Side
from fixgw.sim.matching import Fill, SimOrder

ZERO = Decimal(0)


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote


class Ledger:
    def __init__(self, accounts: Iterable[SimAccount]) -> None:
        self.totals = {a.comp_id: dict(a.balances) for a in accounts}

    def apply(self, fill: Fill) -> None:
        for order in (fill.maker, fill.taker):
            if order.owner is None:
                continue
            base, quote = split_symbol(order.symbol)
            sign = 1 if order.side is Side.BUY else -1
            totals = self.totals[order.owner]
            totals[base] = totals.get(base, ZERO) + sign * fill.qty
            totals[quote] = totals.get(quote, ZERO) - sign * fill.qty * fill.price

    def balances(
        self, client: str, open_orders: Iterable[SimOrder]
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """(free, frozen) per currency."""
        frozen: dict[str, Decimal] = {}
        for order in open_orders:
            base, quote = split_symbol(order.symbol)
            if order.side is Side.BUY and order.price is not None:
                frozen[quote] = frozen.get(quote, ZERO) + order.leaves_qty * order.price
            elif order.side is Side.SELL:
                frozen[base] = frozen.get(base, ZERO) + order.leaves_qty
        totals = self.totals[client]
        return {
            c: (totals.get(c, ZERO) - frozen.get(c, ZERO), frozen.get(c, ZERO))
            for c in sorted(set(totals) | set(frozen))
        }
