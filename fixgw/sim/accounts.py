"""The simulator's accounts: what each holds, moved by fills; frozen is what its resting
orders would spend (quote for buys, base for sells)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fixgw.config import SimAccount
from fixgw.decimals import EXACT
from fixgw.domain import Side
from fixgw.sim.matching import Fill, SimOrder

ZERO = Decimal(0)


def account_field(account: SimAccount) -> str:
    """What the account's client must put in Account (1), as OKCoin asks: apiKey,secretKey."""
    return f"{account.api_key},{account.secret_key}"


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote


class Ledger:
    """Totals move with fills. A resting limit order holds what it would still spend (its
    leaves at its price in the quote currency for a buy, its leaves of the base for a sell)
    from when it is taken until it fills or is cancelled; free is total less held."""

    def __init__(self, accounts: Iterable[SimAccount]) -> None:
        self.totals: dict[str, dict[str, Decimal]] = {a.comp_id: dict(a.balances) for a in accounts}
        self.frozen: dict[str, dict[str, Decimal]] = {a.comp_id: {} for a in accounts}

    def shortfall(
        self,
        client: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        market_cost: Decimal,
    ) -> str | None:
        """Why `client` cannot pay for an order, or None if it can: a limit buy needs its
        qty at its price, a market buy `market_cost` (what the book would take now), a
        sell its qty of the base."""
        base, quote = split_symbol(symbol)
        if side is Side.BUY:
            needed = EXACT.multiply(qty, price) if price is not None else market_cost
            currency = quote
        else:
            currency, needed = base, qty
        free = EXACT.subtract(
            self.totals[client].get(currency, ZERO), self.frozen[client].get(currency, ZERO)
        )
        if needed > free:
            return f"insufficient {currency}: the order needs {needed:f}, {free:f} is free"
        return None

    def hold(self, order: SimOrder) -> None:
        """A limit order just taken: what it may spend is held."""
        self._move_held(order, order.leaves_qty, 1)

    def release(self, order: SimOrder) -> None:
        """A limit order about to be cancelled: what it held is free again."""
        self._move_held(order, order.leaves_qty, -1)

    def apply(self, fill: Fill) -> None:
        for order in (fill.maker, fill.taker):
            if order.owner is None:
                continue
            base, quote = split_symbol(order.symbol)
            sign = 1 if order.side is Side.BUY else -1
            totals = self.totals[order.owner]
            cost = EXACT.multiply(fill.qty, fill.price)
            totals[base] = EXACT.add(totals.get(base, ZERO), EXACT.multiply(sign, fill.qty))
            totals[quote] = EXACT.subtract(totals.get(quote, ZERO), EXACT.multiply(sign, cost))
            self._move_held(order, fill.qty, -1)

    def _move_held(self, order: SimOrder, qty: Decimal, sign: int) -> None:
        if order.owner is None or order.price is None:
            return  # seeded liquidity, or a market order: nothing is held
        base, quote = split_symbol(order.symbol)
        buy = order.side is Side.BUY
        currency, amount = (quote, EXACT.multiply(qty, order.price)) if buy else (base, qty)
        frozen = self.frozen[order.owner]
        frozen[currency] = EXACT.add(frozen.get(currency, ZERO), EXACT.multiply(sign, amount))

    def balances(self, client: str) -> dict[str, tuple[Decimal, Decimal]]:
        """(free, frozen) per currency."""
        totals, frozen = self.totals[client], self.frozen[client]
        return {
            c: (EXACT.subtract(totals.get(c, ZERO), frozen.get(c, ZERO)), frozen.get(c, ZERO))
            for c in sorted(set(totals) | set(frozen))
        }
