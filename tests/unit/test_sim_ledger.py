"""The simulator's ledger: what resting orders hold, kept as orders are taken, filled and
cancelled, always equals what their leaves would spend; free funds bound new orders."""

from __future__ import annotations

from decimal import Decimal as D

from fixgw.config import SimAccount
from fixgw.decimals import EXACT
from fixgw.domain import Side
from fixgw.sim.accounts import Ledger
from fixgw.sim.matching import OrderBook, SimOrder
from tests.unit.test_matching import order


def account(comp_id: str) -> SimAccount:
    return SimAccount(
        comp_id=comp_id, api_key="k", secret_key="s", balances={"BTC": D(10), "USD": D(100_000)}
    )


def held_by_leaves(orders: list[SimOrder], owner: str) -> dict[str, D]:
    held = {"BTC": D(0), "USD": D(0)}
    for o in orders:
        if o.owner == owner and o.price is not None:
            if o.side is Side.BUY:
                held["USD"] += o.leaves_qty * o.price
            else:
                held["BTC"] += o.leaves_qty
    return held


def test_what_is_held_follows_takes_fills_at_better_prices_and_cancels() -> None:
    ledger = Ledger([account("a"), account("b")])
    book = OrderBook("BTC/USD")
    placed: list[SimOrder] = []

    def take(o: SimOrder) -> None:
        placed.append(o)
        ledger.hold(o)
        book.submit(o, ledger.apply)

    take(order(Side.SELL, "2", "30000", owner="b"))
    take(order(Side.BUY, "3", "31000", owner="a"))  # fills 2 at 30000, rests 1 at 31000
    take(order(Side.SELL, "0.4", "31000", owner="b"))  # fills 0.4 of the resting buy
    resting = order(Side.BUY, "1", "29000", owner="a")
    take(resting)
    ledger.release(resting)
    book.cancel(resting)
    for owner in ("a", "b"):
        frozen = {c: f for c, (_, f) in ledger.balances(owner).items()}
        assert frozen == held_by_leaves(placed, owner)
    assert ledger.balances("a") == {
        "BTC": (D("12.4"), D(0)),
        "USD": (D(100_000) - 2 * 30000 - D("0.4") * 31000 - D("0.6") * 31000, D("0.6") * 31000),
    }
    assert ledger.balances("b")["BTC"] == (D("7.6"), D(0))


def test_an_order_is_refused_for_what_is_not_free() -> None:
    ledger = Ledger([account("a")])
    ledger.hold(order(Side.BUY, "3", "30000", owner="a"))  # 90,000 held of 100,000
    assert ledger.shortfall("a", "BTC/USD", Side.BUY, D(1), D(10_000), D(0)) is None
    assert ledger.shortfall("a", "BTC/USD", Side.BUY, D(1), D("10000.01"), D(0)) == (
        "insufficient USD: the order needs 10000.01, 10000 is free"
    )
    assert ledger.shortfall("a", "BTC/USD", Side.BUY, D(1), None, D("10000.01")) is not None
    assert ledger.shortfall("a", "BTC/USD", Side.SELL, D(10), None, D(0)) is None
    assert ledger.shortfall("a", "BTC/USD", Side.SELL, D("10.1"), D(1), D(0)) is not None


def test_a_market_buy_costs_what_the_book_would_take() -> None:
    book = OrderBook("BTC/USD")
    book.submit(order(Side.SELL, "1", "30000", owner="b"), lambda f: None)
    book.submit(order(Side.SELL, "2", "30100", owner="b"), lambda f: None)
    assert book.market_cost(Side.BUY, D("2")) == 30000 + 30100
    assert book.market_cost(Side.BUY, D("5")) == 30000 + 2 * 30100  # as far as the book goes
    assert book.market_cost(Side.SELL, D("1")) == 0


def test_free_and_frozen_add_up_to_what_the_account_holds_every_digit_kept() -> None:
    """Free was total less frozen with Python's `-`, rounded to 28 significant digits:
    999999.9999999900000000000000 free beside 0.00000001000000000000000001 frozen."""
    ledger = Ledger([account("a")])
    ledger.hold(order(Side.BUY, "0.00000001", "1.000000000000000001", owner="a"))
    free, frozen = ledger.balances("a")["USD"]
    assert frozen == D("0.00000001000000000000000001")
    assert free == D("99999.99999998999999999999999999")
    assert EXACT.add(free, frozen) == D(100_000)
