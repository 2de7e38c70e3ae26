"""Market data end to end: the simulator's book, through FIX, into the gateway's books and
out to socket clients. BTC/USD is seeded with bids 1.5 @ 29990 and 0.3 @ 29980 and an ask
of 1.2 @ 30010."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client, apply_market_data
from fixgw.marketdata.book import OrderBook
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.faultproxy import between, is_snapshot, md_refusal

pytestmark = pytest.mark.integration

SEEDED_BIDS = [["29990", "1.5"], ["29980", "0.3"]]
SEEDED_ASKS = [["30010", "1.2"]]


def rebuild(reply: dict[str, Any], events: list[dict[str, Any]]) -> OrderBook:
    """What a client builds: the book in the md_subscribe reply, then later events."""
    book = OrderBook("BTC/USD")
    apply_market_data(book, reply)
    for event in events:
        if event["seq"] > reply["seq"]:
            apply_market_data(book, event)
    return book


def levels(rows: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(s)) for p, s in rows]


def streams(stack: LocalStack) -> dict[str, Any]:
    return dict(stack.status()["market_data"])


def test_snapshot_then_deltas_build_the_simulators_book(stack: LocalStack) -> None:
    with stack.client("watcher") as watcher, stack.client("trader") as trader:
        reply = watcher.request("md_subscribe", symbol="BTC/USD", depth=0, what=["book"])
        assert (reply["bids"], reply["asks"]) == (SEEDED_BIDS, SEEDED_ASKS)
        orders = [
            ("buy", "0.5", "29995"),
            ("sell", "2", "30030"),
            ("buy", "0.7", "30010"),
            ("sell", "1.6", "29990"),
            ("buy", "1", "29970"),
            ("sell", "0.25", "30031"),
        ]
        ids = [
            trader.new_order(symbol="BTC/USD", side=side, type="limit", qty=qty, price=price)[
                "cl_ord_id"
            ]
            for side, qty, price in orders
        ]
        trader.cancel_order(cl_ord_id=ids[4])
        log = EventLog(watcher)
        # The last change: the cancel of the 29970 bid removes that level.
        log.first(
            lambda e: e["type"] == "md.delta" and ["delete", "bid", "29970", "0"] in e["changes"]
        )
        built = rebuild(reply, log.seen)
        served = watcher.request("book", symbol="BTC/USD", depth=0)
        watcher.request("md_unsubscribe", symbol="BTC/USD")
        fresh = watcher.request("md_subscribe", symbol="BTC/USD", depth=0, what=["book"])
    # 0.5 @ 29995 rests, 2 @ 30030 rests, 0.7 @ 30010 takes 0.7 of the ask, 1.6 @ 29990 takes
    # 0.5 @ 29995 and 1.1 @ 29990, 1 @ 29970 rests and is cancelled, 0.25 @ 30031 rests.
    expected_bids = [(Decimal("29990"), Decimal("0.4")), (Decimal("29980"), Decimal("0.3"))]
    expected_asks = [
        (Decimal("30010"), Decimal("0.5")),
        (Decimal("30030"), Decimal("2")),
        (Decimal("30031"), Decimal("0.25")),
    ]
    assert built.levels() == (expected_bids, expected_asks)
    assert (levels(served["bids"]), levels(served["asks"])) == built.levels()
    assert (levels(fresh["bids"]), levels(fresh["asks"])) == built.levels()


def test_clients_at_different_depths_each_keep_the_top_of_the_book_they_asked_for(
    stack: LocalStack,
) -> None:
    """docs/protocol.md, `md_subscribe`: the reply is the book at `depth`, and the events
    after it take that book to the next top `depth` levels. A bid rests at 29950, the third
    level, before the clients subscribe at depths 1, 2 and 0 (the whole book). Then: 29950
    grows (below depth 1 and 2), the best bid is taken (29980, then 29950, move up into
    the top), a new best bid comes (the last level of each top drops out)."""
    with (
        stack.client("trader") as trader,
        stack.client("top") as top,
        stack.client("two") as two,
        stack.client("all") as everything,
    ):
        trader.subscribe(["orders"])
        resting = trader.new_order(
            symbol="BTC/USD", side="buy", type="limit", qty="5", price="29950"
        )
        EventLog(trader).find(resting["cl_ord_id"], "order.accepted")
        watchers = {1: top, 2: two, 0: everything}
        replies = {
            depth: client.request("md_subscribe", symbol="BTC/USD", depth=depth, what=["book"])
            for depth, client in watchers.items()
        }
        assert [len(replies[d]["bids"]) for d in (1, 2, 0)] == [1, 2, 3]
        trader.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29950")
        trader.new_order(symbol="BTC/USD", side="sell", type="limit", qty="1.5", price="29990")
        trader.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29985")
        books: dict[int, OrderBook] = {}
        most_held: dict[int, int] = {}
        for depth, client in watchers.items():
            log = EventLog(client)
            log.first(
                lambda e: e["type"] == "md.delta" and ["new", "bid", "29985", "1"] in e["changes"]
            )
            book = OrderBook("BTC/USD")
            apply_market_data(book, replies[depth])
            most_held[depth] = len(book.levels()[0])
            for event in log.seen:
                if event["seq"] > replies[depth]["seq"]:
                    apply_market_data(book, event)  # raised BookIntegrityError for depth 2
                    most_held[depth] = max(most_held[depth], len(book.levels()[0]))
            books[depth] = book
        served = {d: trader.request("book", symbol="BTC/USD", depth=d) for d in watchers}
    bids = [("29985", "1"), ("29980", "0.3"), ("29950", "6")]
    for depth, book in books.items():
        expected = bids[: depth or None]
        assert [(str(p), str(z)) for p, z in book.levels()[0]] == expected, depth
        assert (levels(served[depth]["bids"]), levels(served[depth]["asks"])) == book.levels()
    assert most_held == {1: 1, 2: 2, 0: 3}


def test_a_client_subscribing_again_at_another_depth_gets_that_depths_events_once(
    stack: LocalStack,
) -> None:
    """Each `md_subscribe` answers the book at its depth; the events after it are that
    depth's, never those of the depth before as well: at depth 1, the bid at 28000 is no
    event, and the first delta is the new best bid's."""
    with stack.client("trader") as trader, stack.client("watcher") as watcher:
        watcher.request("md_subscribe", symbol="BTC/USD", depth=1, what=["book"])
        whole = watcher.request("md_subscribe", symbol="BTC/USD", depth=0, what=["book"])
        trader.new_order(symbol="BTC/USD", side="buy", type="limit", qty="2", price="29000")
        log = EventLog(watcher)
        deep = log.first(lambda e: e["type"] == "md.delta")
        top = watcher.request("md_subscribe", symbol="BTC/USD", depth=1, what=["book"])
        trader.new_order(symbol="BTC/USD", side="buy", type="limit", qty="3", price="28000")
        trader.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29995")
        best = log.first(lambda e: e["type"] == "md.delta" and e["seq"] > top["seq"])
    assert len(whole["bids"]) == 2 and top["bids"] == [["29990", "1.5"]]
    assert deep["changes"] == [["new", "bid", "29000", "2"]]
    assert [e["seq"] for e in log.seen].count(deep["seq"]) == 1
    assert best["changes"] == [["delete", "bid", "29990", "0"], ["new", "bid", "29995", "1"]]


def test_trades_appear_when_orders_cross(stack: LocalStack) -> None:
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
        gw.new_order(symbol="BTC/USD", side="sell", type="market", qty="1.6")
        log = EventLog(gw)
        first = log.first(lambda e: e["type"] == "md.trade")
        second = log.first(lambda e: e["type"] == "md.trade" and e is not first)
    assert [(t["size"], t["price"], t["aggressor"]) for t in (first, second)] == [
        ("1.5", "29990", "sell"),
        ("0.1", "29980", "sell"),
    ]
    assert not [e for e in log.seen if e["type"] == "md.delta"]  # trades only, as asked


def test_two_clients_share_one_upstream_subscription_until_the_last_leaves(
    stack: LocalStack,
) -> None:
    with stack.client("a") as a, stack.client("b") as b:
        a.request("md_subscribe", symbol="BTC/USD", what=["book"])
        b.request("md_subscribe", symbol="BTC/USD", what=["book"])
        shared = streams(stack)["BTC/USD:book"]
        assert shared["clients"] == 2 and shared["live"]
        a.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000")
        for client in (a, b):
            delta = EventLog(client).first(lambda e: e["type"] == "md.delta")
            assert delta["changes"] == [["new", "bid", "29000", "1"]]
        sim = stack.sim
        assert sim is not None and sim.log().count("market data subscribed") == 1
        a.request("md_unsubscribe", symbol="BTC/USD")
        assert streams(stack)["BTC/USD:book"]["clients"] == 1
        b.close()  # a client that disconnects leaves its subscriptions too
        wait_until(lambda: "market data unsubscribed" in sim.log(), 10, "the upstream unsubscribe")
        assert streams(stack) == {}
    # one upstream unsubscribe, when the last client left: none when the first did
    assert sim.log().count("market data unsubscribed") == 1


def test_a_quiet_book_is_snapshotted_again_and_served_all_along(make_stack: StackFactory) -> None:
    """Nothing changes in the simulator's book: each `stale_after_s` the gateway asks for it
    afresh and gets the same book, as `md.snapshot`. A quiet book is no trouble: no
    `md.stale`, `book` never refused, a new client subscribed at once, and an order within the
    price band placed, though the book was asked for afresh six times (the back-off for a
    failing stream would have reached 4 s)."""
    stack = make_stack(
        market_data={"stale_after_s": 0.5},
        risk={"symbols": {"BTC/USD": {"price_band_pct": "1"}}},
    )
    with stack.client() as gw:
        reply = gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
        first = streams(stack)["BTC/USD:book"]["md_req_id"]
        snapshots: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(snapshots) < 6 and time.monotonic() < deadline:
            book = gw.request("book", symbol="BTC/USD", depth=0)  # never not_subscribed
            assert (book["bids"], book["asks"]) == (SEEDED_BIDS, SEEDED_ASKS)
            for event in gw.take_events():
                assert event["type"] == "md.snapshot", event
                snapshots.append(event)
            time.sleep(0.05)
        assert len(snapshots) == 6
        assert all((e["bids"], e["asks"]) == (reply["bids"], reply["asks"]) for e in snapshots)
        assert streams(stack)["BTC/USD:book"]["md_req_id"] != first
        with stack.client("late") as late:
            late_reply = late.request("md_subscribe", symbol="BTC/USD", what=["book"], timeout=3)
            assert (late_reply["bids"], late_reply["asks"]) == (SEEDED_BIDS, SEEDED_ASKS)
            placed = late.new_order(
                symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="29900"
            )
            assert placed["cl_ord_id"]  # risk_rejected (no_reference_price) would raise


def test_subscriptions_are_requested_again_after_the_simulator_restarts(stack: LocalStack) -> None:
    assert stack.sim is not None
    with stack.client() as gw:
        gw.subscribe(["session"])
        gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="2", price="29000")
        log = EventLog(gw)
        log.first(lambda e: e["type"] == "md.delta")
        stack.sim.stop()
        stale = log.first(lambda e: e["type"] == "md.stale", timeout=15)
        assert stale["reason"] == "exchange session down"
        stack.start_sim()
        log.first(lambda e: e["type"] == "session.up" and e["seq"] > stale["seq"], timeout=20)
        snapshot = log.first(lambda e: e["type"] == "md.snapshot" and e["seq"] > stale["seq"])
    # The restarted simulator remembers its orders: the seeded book and the resting bid.
    assert (snapshot["bids"], snapshot["asks"]) == ([*SEEDED_BIDS, ["29000", "2"]], SEEDED_ASKS)


def test_md_subscribe_while_the_session_is_down_is_not_connected_at_once_and_keeps_the_streams(
    stack: LocalStack,
) -> None:
    """Nothing can be asked of the exchange: `not_connected` at once, as every request that
    needs it, not a `timeout` after `api.request_timeout_s`. The client keeps the stream it
    had, asked for again at the next logon, and takes none for the symbol it asked."""
    assert stack.sim is not None
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
        stack.sim.stop()
        wait_until(lambda: gw.status()["session"] != "up", 20, "the session to go down")
        with pytest.raises(ApiError) as refused:
            gw.request("md_subscribe", symbol="LTC/USD", timeout=3)
        assert refused.value.code == "not_connected"
        assert refused.value.message.startswith("the exchange session is not logged on")
        assert refused.value.message.endswith("; nothing was sent")
        assert "LTC/USD:book" not in streams(stack)
        assert streams(stack)["BTC/USD:book"]["state"] == "waiting_for_logon"
        with pytest.raises(ApiError) as no_book:
            gw.request("book", symbol="BTC/USD")
        assert (no_book.value.code, no_book.value.message) == (
            "not_subscribed",
            "no live book for BTC/USD now: subscribed, and it is asked for again at the next "
            "logon (the session is down)",
        )


def test_a_refused_resubscribe_leaves_the_feed_the_client_already_had(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    proxy = between(stack)

    def refuse_trades(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        return md_refusal(fields) if is_snapshot(fields, b"BTC/USD", book=False) else fields

    proxy.rewrite = refuse_trades
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
            with pytest.raises(ApiError) as err:  # asks for the book again, and the trades
                gw.request("md_subscribe", symbol="BTC/USD", what=["book", "trades"])
            assert err.value.code == "md_rejected"
            assert streams(stack)["BTC/USD:book"]["clients"] == 1
            gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000")
            delta = EventLog(gw).first(lambda e: e["type"] == "md.delta")
            assert delta["changes"] == [["new", "bid", "29000", "1"]]
    finally:
        proxy.close()


def test_book_request_at_several_depths(stack: LocalStack) -> None:
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=1, what=["book"])
        books = {d: gw.request("book", symbol="BTC/USD", depth=d) for d in (1, 2, 0)}
    assert (books[1]["bids"], books[1]["asks"]) == (SEEDED_BIDS[:1], SEEDED_ASKS)
    assert (books[2]["bids"], books[2]["asks"]) == (SEEDED_BIDS, SEEDED_ASKS)
    assert books[0]["bids"] == SEEDED_BIDS


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"symbol": "XYZ/USD"}, "unknown_symbol"),
        ({"symbol": "BTC/USD", "depth": -1}, "invalid_depth"),
        ({"symbol": "BTC/USD", "depth": 100_000}, "invalid_depth"),
        ({"symbol": "BTC/USD", "what": ["candles"]}, "invalid_field"),
        ({"symbol": "DOGE/USD"}, "md_rejected"),
    ],
)
def test_bad_subscriptions_get_an_error_and_disturb_nothing(
    make_stack: StackFactory, request_: dict[str, Any], code: str
) -> None:
    stack = make_stack(symbols=["BTC/USD", "LTC/USD", "DOGE/USD"])
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
        with pytest.raises(ApiError) as err:
            gw.request("md_subscribe", **request_)
        assert err.value.code == code
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000")
        delta = EventLog(gw).first(lambda e: e["type"] == "md.delta")
        assert delta["changes"] == [["new", "bid", "29000", "1"]]
    with pytest.raises(ApiError) as err:
        Client.connect(stack.socket_path).request("book", symbol="LTC/USD")
    assert err.value.code == "not_subscribed"


def test_md_unsubscribe_of_a_misspelt_symbol_is_unknown_symbol_and_leaves_the_streams(
    stack: LocalStack,
) -> None:
    """It answered ok, while the client kept the streams it meant to leave; every other
    request naming a symbol answers `unknown_symbol`."""
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD")
        with pytest.raises(ApiError) as refused:
            gw.request("md_unsubscribe", symbol="btc/usd")
        assert refused.value.code == "unknown_symbol"
        assert sorted(streams(stack)) == ["BTC/USD:book", "BTC/USD:trades"]
        assert gw.request("md_unsubscribe", symbol="BTC/USD")["topics"] == []


def test_unsubscribe_of_a_market_data_topic_leaves_its_stream_as_md_unsubscribe_does(
    stack: LocalStack,
) -> None:
    with stack.client("a") as a:
        a.request("md_subscribe", symbol="BTC/USD")  # the book and the trades
        left = a.request("unsubscribe", topics=["md:BTC/USD"])
        assert left["topics"] == ["md:BTC/USD:trades"]
        sim = stack.sim
        assert sim is not None
        wait_until(lambda: "market data unsubscribed" in sim.log(), 10, "the upstream unsubscribe")
        assert list(streams(stack)) == ["BTC/USD:trades"]
        a.request("unsubscribe")  # every topic it has
        assert streams(stack) == {}
    ended = "market data unsubscribed"
    wait_until(lambda: sim.log().count(ended) == 2, 10, "the trades' upstream unsubscribe")
