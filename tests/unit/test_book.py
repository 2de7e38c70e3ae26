"""The L2 book builder: random update sequences must give the book a reference rebuilt from
scratch gives, and every integrity breach must be caught."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.api.client import apply_market_data
from fixgw.domain import BookSide, Level, LevelAction, LevelUpdate
from fixgw.marketdata.book import BookIntegrityError, OrderBook, changes_between

BID, ASK = BookSide.BID, BookSide.ASK
NEW, CHANGE, DELETE = LevelAction.NEW, LevelAction.CHANGE, LevelAction.DELETE

# Bids live below 100, asks above, so no valid sequence can cross the book.
bid_prices = st.integers(1, 99).map(lambda n: D(n) / 4)
ask_prices = st.integers(101, 200).map(lambda n: D(n) / 4 + 25)
sizes = st.integers(1, 10_000).map(lambda n: D(n) / 1000)


@st.composite
def valid_updates(draw: st.DrawFn) -> list[list[LevelUpdate]]:
    """Messages of level updates that are each legal against the book so far."""
    held: dict[BookSide, set[D]] = {BID: set(), ASK: set()}
    messages: list[list[LevelUpdate]] = []
    for _ in range(draw(st.integers(1, 40))):
        message = []
        for _ in range(draw(st.integers(1, 5))):
            side = draw(st.sampled_from([BID, ASK]))
            prices = bid_prices if side is BID else ask_prices
            choices = [NEW] + ([CHANGE, DELETE] if held[side] else [])
            action = draw(st.sampled_from(choices))
            if action is NEW:
                price = draw(prices)
                held[side].add(price)
            else:
                price = draw(st.sampled_from(sorted(held[side])))
                if action is DELETE:
                    held[side].discard(price)
            size = D(0) if action is DELETE else draw(sizes)
            message.append(LevelUpdate(action, side, price, size))
        messages.append(message)
    return messages


def reference(messages: list[list[LevelUpdate]]) -> tuple[list[Level], list[Level]]:
    book: dict[BookSide, dict[D, D]] = {BID: {}, ASK: {}}
    for message in messages:
        for u in message:
            if u.action is DELETE:
                del book[u.side][u.price]
            else:
                book[u.side][u.price] = u.size
    return (sorted(book[BID].items(), reverse=True), sorted(book[ASK].items()))


@settings(max_examples=300, deadline=None)
@given(valid_updates())
def test_random_updates_build_the_book_a_rebuild_from_scratch_gives(
    messages: list[list[LevelUpdate]],
) -> None:
    book = OrderBook("BTC/USD")
    for message in messages:
        book.apply(message)
    assert book.levels() == reference(messages)


@settings(max_examples=200, deadline=None)
@given(valid_updates(), st.integers(0, 12))
def test_depth_is_a_prefix_and_a_snapshot_of_the_result_is_the_same_book(
    messages: list[list[LevelUpdate]], depth: int
) -> None:
    book = OrderBook("BTC/USD")
    for message in messages:
        book.apply(message)
    bids, asks = book.levels()
    assert book.levels(depth) == ((bids[:depth], asks[:depth]) if depth else (bids, asks))
    copy = OrderBook("BTC/USD")
    copy.apply_snapshot(bids, asks)
    assert copy.levels() == (bids, asks)


def seeded() -> OrderBook:
    book = OrderBook("BTC/USD")
    book.apply_snapshot([(D("99"), D("1"))], [(D("101"), D("2"))])
    return book


@pytest.mark.parametrize(
    ("update", "match"),
    [
        (LevelUpdate(CHANGE, BID, D("98"), D("1")), "change of a bid level at 98"),
        (LevelUpdate(DELETE, ASK, D("102"), D("0")), "delete of a ask level at 102"),
        (LevelUpdate(NEW, BID, D("101"), D("1")), "crossed book"),
        (LevelUpdate(NEW, ASK, D("99"), D("1")), "crossed book"),
        (LevelUpdate(CHANGE, BID, D("99"), D("0")), "size 0"),
        (LevelUpdate(NEW, BID, D("98"), D("-1")), "size -1"),
    ],
)
def test_integrity_breaches_are_refused(update: LevelUpdate, match: str) -> None:
    with pytest.raises(BookIntegrityError, match=match):
        seeded().apply([update])


def test_a_delete_if_held_deletes_a_level_held_and_is_nothing_for_one_not_held() -> None:
    book = seeded()
    applied = book.apply(
        [
            LevelUpdate(LevelAction.DELETE_IF_HELD, BID, D("98"), D("0")),
            LevelUpdate(LevelAction.DELETE_IF_HELD, ASK, D("101"), D("0")),
            LevelUpdate(NEW, ASK, D("102"), D("1")),
        ]
    )
    assert book.levels() == ([(D("99"), D("1"))], [(D("102"), D("1"))])
    assert applied == [
        LevelUpdate(DELETE, ASK, D("101"), D("0")),
        LevelUpdate(NEW, ASK, D("102"), D("1")),
    ]


def test_crossed_snapshot_is_refused_and_a_good_one_replaces_the_book() -> None:
    book = seeded()
    with pytest.raises(BookIntegrityError, match="crossed"):
        book.apply_snapshot([(D("101"), D("1"))], [(D("100"), D("1"))])
    book.apply_snapshot([(D("50"), D("3"))], [])
    assert book.levels() == ([(D("50"), D("3"))], [])


def test_prices_of_any_number_of_digits_keep_their_levels() -> None:
    """A venue's price of more digits than the default context's 28 (a bid's sort key was
    rounded, and its level lost: KeyError)."""
    bid, ask = D("30000.0000000000000000000000000001"), D("30000.0000000000000000000000000003")
    book = OrderBook("BTC/USD")
    book.apply_snapshot([(bid, D("1")), (D("29999"), D("2"))], [(ask, D("1"))])
    assert book.levels() == ([(bid, D("1")), (D("29999"), D("2"))], [(ask, D("1"))])
    assert (book.bids.best(), book.asks.best()) == (bid, ask)
    book.apply([LevelUpdate(DELETE, BID, bid, D("0")), LevelUpdate(DELETE, ASK, ask, D("0"))])
    assert book.levels() == ([(D("29999"), D("2"))], [])


def test_the_changes_between_two_tops_of_a_book_delete_first_and_rebuild_the_second() -> None:
    """What a client at depth 2 is sent when the best bid goes and a new best ask comes:
    the level that left its top, then the ones that entered it."""
    before = ({D(10): D(1), D(9): D(2)}, {D(11): D(1), D(12): D(3)})
    after = ({D(9): D(2), D(8): D(5)}, {D("10.5"): D(4), D(11): D("0.5")})
    changes = changes_between(before, after)
    assert changes == [
        LevelUpdate(DELETE, BID, D(10), D(0)),
        LevelUpdate(DELETE, ASK, D(12), D(0)),
        LevelUpdate(NEW, BID, D(8), D(5)),
        LevelUpdate(NEW, ASK, D("10.5"), D(4)),
        LevelUpdate(CHANGE, ASK, D(11), D("0.5")),
    ]
    book = OrderBook("X")
    book.apply_snapshot(*(list(side.items()) for side in before))
    book.apply(changes)
    assert book.levels() == tuple(list(side.items()) for side in after)


def test_a_client_book_starts_from_the_md_subscribe_reply_and_follows_its_events() -> None:
    """The documented recipe, with the public helper only: the reply's book, then each
    event with a higher seq on top; anything else is not market data."""
    reply = {
        "symbol": "LTC/USD",
        "what": ["book"],
        "seq": 7,
        "bids": [["0.2", "0.2"], ["0.1", "0.1"]],
        "asks": [["0.3", "0.3"]],
    }
    delta = {
        "seq": 8,
        "type": "md.delta",
        "symbol": "LTC/USD",
        "changes": [["delete", "bid", "0.1", "0"], ["new", "ask", "0.4", "1"]],
    }
    book = OrderBook("LTC/USD")

    assert apply_market_data(book, reply)
    assert apply_market_data(book, delta)
    assert not apply_market_data(book, {"seq": 9, "type": "order.accepted"})

    assert book.levels() == ([(D("0.2"), D("0.2"))], [(D("0.3"), D("0.3")), (D("0.4"), D("1"))])
