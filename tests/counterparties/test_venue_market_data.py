"""A venue's market data with more in it than the gateway uses, and market data the gateway
cannot read: what can be read is used, what is of no use is passed over (and said once), and
whatever the venue sends, the gateway never asks for a stream again and again in a loop."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.config import standard_fix44_dictionary
from fixgw.testing import LocalStack, free_port, wait_until
from tests.counterparties.conftest import VenueStackFactory, raw_oms_through
from tests.counterparties.venue import Received, ScriptedVenue
from tests.dictionaries import (
    VENUE_ENTRY_TAG,
    broker_dictionary,
    respelt_dictionary,
    with_own_fields,
)
from tests.integration.conftest import EventLog

BOOK = [
    *((269, "0"), (270, "29990"), (271, "1.5")),
    *((269, "1"), (270, "30010"), (271, "1.2")),
]
NO_USE = [
    *((269, "4"), (270, "29000"), (271, "10")),  # an opening price
    *((269, "B"), (270, "29000"), (271, "10")),  # a trade volume
    *((269, "1"), (270, "30020"), (271, "0")),  # an ask of size 0: no level
    *((269, "2"), (270, "30000"), (54, "1")),  # a trade without a size
]
"""Entries a venue's snapshot may carry that the gateway has no use for."""


def serving(book: list[tuple[int, str]]) -> Callable[[ScriptedVenue, Received], None]:
    """Answers a book request with a W of `book`, and a trades request with no trades."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        if request.get(263) != "1":
            return
        md_req_id = request.get(262) or ""
        if "2" in request.all(269):
            venue.send("W", [(262, md_req_id), (55, "BTC/USD"), (268, "0")])
            return
        count = sum(1 for tag, _ in book if tag == 269)
        venue.send("W", [(262, md_req_id), (55, "BTC/USD"), (268, str(count)), *book])

    return answer


def book_requests(venue: ScriptedVenue, subscription: str = "1") -> list[Received]:
    return [
        m
        for m in venue.app
        if m.msg_type == "V" and m.get(263) == subscription and "2" not in m.all(269)
    ]


def logged(stack: LocalStack, event: str) -> list[dict[str, object]]:
    assert stack.gateway is not None
    lines = [json.loads(line) for line in stack.gateway.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def passed_over_counts(metrics_port: int) -> dict[str, int]:
    """`fixgw_md_entries_passed_over_total` by `entry`, scraped."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    found = re.findall(r'^fixgw_md_entries_passed_over_total\{entry="([^"]*)"\} (\S+)$', text, re.M)
    return {entry: int(float(count)) for entry, count in found}


def test_a_snapshot_with_entries_the_gateway_has_no_use_for_gives_its_book(
    make_venue_stack: VenueStackFactory,
) -> None:
    port = free_port()
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving([*BOOK, *NO_USE])), ops={"metrics_port": port}
    )
    gw = stack.client()
    watcher = stack.client("watcher")
    watcher.subscribe(["md:BTC/USD", "md:BTC/USD:trades", "errors"])
    seen = EventLog(watcher)
    book = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
    assert (book["bids"], book["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
    snapshot = seen.first(lambda e: e["type"] == "md.snapshot")
    assert (snapshot["bids"], snapshot["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
    trades_request = next(m for m in venue.app if m.msg_type == "V" and "2" in m.all(269))
    for price in ("30001", "30002"):  # an incremental refresh, twice: said once
        venue.send(
            "X",
            [
                *((262, trades_request.get(262) or ""), (268, "3")),
                *((279, "0"), (269, "4"), (55, "BTC/USD"), (270, "29000"), (271, "10")),
                *((279, "0"), (269, "2"), (270, "30000")),  # no size
                *((279, "0"), (269, "2"), (270, price), (271, "0.1"), (54, "2")),
            ],
        )
    trades = [seen.first(lambda e, p=p: e.get("price") == p) for p in ("30001", "30002")]
    assert [(t["type"], t["size"], t["aggressor"]) for t in trades] == [
        ("md.trade", "0.1", "sell"),
        ("md.trade", "0.1", "sell"),
    ]
    assert [e["type"] for e in seen.seen if e["type"] == "md.trade"] == ["md.trade"] * 2
    assert not [e for e in seen.seen if e["type"] in ("exchange.error", "md.stale")]
    assert len(book_requests(venue)) == 1
    said = sorted(
        (str(line["stream"]), str(line["passed_over"]))
        for line in logged(stack, "market data the gateway has no use for, passed over")
    )
    assert said == [
        ("book", "MDEntryType 4 (opening price)"),
        ("book", "MDEntryType B (trade volume)"),
        ("book", "a trade without MDEntrySize (271)"),
        ("book", "an ask of size 0 (no level)"),
        ("trades", "MDEntryType 4 (opening price)"),
        ("trades", "a trade without MDEntrySize (271)"),
    ]
    # counted by entry: the snapshot's four, and two in each incremental refresh
    assert passed_over_counts(port) == {
        "MDEntryType 4 (opening price)": 3,
        "MDEntryType B (trade volume)": 1,
        "a trade without MDEntrySize (271)": 3,
        "an ask of size 0 (no level)": 1,
    }
    watcher.close()
    gw.close()


def test_a_snapshot_that_stays_unreadable_is_asked_for_again_less_and_less_often(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The gateway holds the book itself (a price band needs it), so nobody ever gives up on
    it: a venue answering every request unreadably gets a handful of requests, not a flood."""
    unreadable = [*BOOK, (269, "Z"), (270, "29000"), (271, "10")]  # no FIX version has Z
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(unreadable)),
        risk={"symbols": {"BTC/USD": {"price_band_pct": 5}}},
    )
    venue.wait_for(lambda _: len(book_requests(venue)) >= 3, timeout=20, what="a third V")
    time.sleep(3)  # the window the requests are counted over
    asked, ended = book_requests(venue), book_requests(venue, subscription="2")
    assert 3 <= len(asked) <= 4, f"{len(asked)} book requests"
    # each answered request was ended at the venue, which had started it
    assert {m.get(262) for m in ended} >= {m.get(262) for m in asked[:-1]}
    assert "MDEntryType" in str(logged(stack, "unreadable message from the exchange")[0]["error"])


def test_a_new_or_change_of_size_0_deletes_its_level_and_the_book_stays_live(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client
) -> None:
    """Several FIX 4.4 venues say a level is gone with a size of 0; OKCoin's sizes are
    absolute. A new of size 0 of a level the book does not hold is nothing."""
    venue, _ = venue_stack
    deeper = [*((269, "0"), (270, "29980"), (271, "2")), *((269, "1"), (270, "30020"), (271, "3"))]
    venue.on("V", serving([*BOOK, *deeper]))
    gw.request("md_subscribe", symbol="BTC/USD", depth=5)
    seen = EventLog(gw)
    venue.send(
        "X",
        [
            *((262, book_requests(venue)[0].get(262) or ""), (268, "4")),
            *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "0")),
            *((279, "0"), (269, "1"), (55, "BTC/USD"), (270, "30020"), (271, "0.00")),
            *((279, "0"), (269, "1"), (55, "BTC/USD"), (270, "30030"), (271, "0")),  # not held
            *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "29985"), (271, "1")),
        ],
    )
    delta = seen.first(lambda e: e["type"] in ("md.delta", "md.stale"))
    assert delta["type"] == "md.delta", delta
    assert delta["changes"] == [
        ["delete", "bid", "29990", "0"],
        ["delete", "ask", "30020", "0"],
        ["new", "bid", "29985", "1"],
    ]
    now = gw.request("book", symbol="BTC/USD", depth=5)
    assert (now["bids"], now["asks"]) == ([["29985", "1"], ["29980", "2"]], [["30010", "1.2"]])
    assert len(book_requests(venue)) == 1


def _refusing(venue: ScriptedVenue, request: Received) -> None:
    if request.get(263) == "1":
        venue.send("Y", [(262, request.get(262) or ""), (281, "4"), (58, "not now")])


def sent_at(m: Received) -> datetime:
    return datetime.strptime(m.get(52) or "", "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "answer",
    [serving([*BOOK, (269, "Z"), (270, "29000"), (271, "10")]), _refusing],
    ids=["unreadable", "refused"],
)
def test_a_stream_waiting_out_its_back_off_says_so_in_status_and_when_it_is_asked_again(
    make_venue_stack: VenueStackFactory, answer: Callable[[ScriptedVenue, Received], None]
) -> None:
    """The book a price band holds, answered unreadably or refused every time."""
    venue, stack = make_venue_stack(
        lambda v: v.on("V", answer), risk={"symbols": {"BTC/USD": {"price_band_pct": 5}}}
    )
    waiting: dict[str, object] = {}

    def backing_off() -> bool:
        waiting.update(stack.status()["market_data"].get("BTC/USD:book", {}))
        return waiting.get("state") == "backing_off"

    wait_until(backing_off, 10, "the book to wait out its back-off")
    asked = len(book_requests(venue))
    assert (waiting["clients"], waiting["live"], waiting["md_req_id"]) == (1, False, None)
    due = datetime.fromisoformat(str(waiting["next_request_at"]))
    assert due > datetime.now(UTC)
    again = venue.wait_for(lambda m: m in book_requests(venue)[asked:], what="the next request")
    # on the gateway's periodic tick once the back-off is over (every 0.625 s here);
    # SendingTime has milliseconds only
    assert due - timedelta(milliseconds=1) <= sent_at(again) < due + timedelta(seconds=1.5)


def level_change(md_req_id: str, side: str, price: str, size: str) -> list[tuple[int, str]]:
    """An incremental refresh (X) changing one level of BTC/USD (side: 0 bid, 1 offer)."""
    return [
        *((262, md_req_id), (268, "1")),
        *((279, "1"), (269, side), (55, "BTC/USD"), (270, price), (271, size)),
    ]


def test_a_book_update_gap_filled_instead_of_resent_makes_the_book_stale_until_a_snapshot(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client
) -> None:
    """Many venues answer a ResendRequest for market data with a SequenceReset-GapFill: the
    lost update never comes, so no book built from the stream can be trusted."""
    venue, _ = venue_stack
    book = list(BOOK)
    venue.on("V", serving(book))
    gw.request("md_subscribe", symbol="BTC/USD", depth=5, what=["book"])
    seen = EventLog(gw)
    md_req_id = book_requests(venue)[0].get(262) or ""
    book[2] = (271, "7")  # the venue's bid 29990 is now 7; the X saying so is lost
    venue.send("X", level_change(md_req_id, "0", "29990", "7"), store=False, lose=True)
    book[5] = (271, "0.5")
    venue.send("X", level_change(md_req_id, "1", "30010", "0.5"))
    venue.wait_for(lambda m: m.msg_type == "2", what="a ResendRequest")
    stale = seen.first(lambda e: e["type"] in ("md.stale", "md.delta"))
    assert stale["type"] == "md.stale" and "SequenceReset" in stale["reason"], stale
    snapshot = seen.first(lambda e: e["type"] == "md.snapshot" and e["seq"] > stale["seq"])
    assert (snapshot["bids"], snapshot["asks"]) == ([["29990", "7"]], [["30010", "0.5"]])
    now = gw.request("book", symbol="BTC/USD", depth=5)
    assert (now["bids"], now["asks"]) == ([["29990", "7"]], [["30010", "0.5"]])
    assert len(book_requests(venue)) == 2
    assert not [e for e in seen.seen if e["type"] == "md.delta"]


def trade_entry(md_req_id: str, price: str, size: str, action: str = "0") -> list[tuple[int, str]]:
    """An incremental refresh (X) with one trade of BTC/USD (action: 0 new, 1 change, 2
    delete)."""
    return [
        *((262, md_req_id), (268, "1")),
        *((279, action), (269, "2"), (55, "BTC/USD"), (270, price), (271, size), (54, "1")),
    ]


def trades_requests(venue: ScriptedVenue) -> list[Received]:
    return [m for m in venue.app if m.msg_type == "V" and m.get(263) == "1" and "2" in m.all(269)]


def test_a_trade_the_venue_withdraws_or_corrects_is_passed_over_not_told_as_a_new_trade(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client
) -> None:
    """MDUpdateAction 2 on a trade entry withdraws a trade told before (a bust), 1 corrects
    one (FIX 4.4): neither is a trade, nor the last trade risk checks take a price from."""
    venue, stack = venue_stack
    venue.on("V", serving(BOOK))
    gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
    seen = EventLog(gw)
    md_req_id = trades_requests(venue)[0].get(262) or ""
    venue.send("X", trade_entry(md_req_id, "30000", "0.1"))
    venue.send("X", trade_entry(md_req_id, "30000", "0.1", action="2"))
    venue.send("X", trade_entry(md_req_id, "30000", "0.2", action="1"))
    venue.send("X", trade_entry(md_req_id, "30001", "0.3"))
    seen.first(lambda e: e.get("price") == "30001")
    told = [(e["type"], e["price"], e["size"]) for e in seen.seen]
    assert told == [("md.trade", "30000", "0.1"), ("md.trade", "30001", "0.3")]
    said = sorted(
        str(line["passed_over"])
        for line in logged(stack, "market data the gateway has no use for, passed over")
    )
    assert said == [
        "a trade entry with MDUpdateAction 1 (change): a trade corrected",
        "a trade entry with MDUpdateAction 2 (delete): a trade withdrawn",
    ]


def test_a_trade_at_a_price_of_0_is_no_trade_and_lets_no_market_order_past_max_notional(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The reference price of a market order's notional is the last trade: a venue's trade
    at 0 would make any order's notional 0. Refused as the book refuses a level at 0: its
    stream is asked for afresh, and the price is the book's mid (30000) meanwhile."""
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(BOOK)), risk={"symbols": {"BTC/USD": {"max_notional": 100000}}}
    )
    wait_until(
        lambda: stack.status()["market_data"].get("BTC/USD:trades", {}).get("live"),
        10,
        "the trades the gateway holds for max_notional",
    )
    with stack.client("c") as gw:
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
        seen = EventLog(gw)
        md_req_id = trades_requests(venue)[-1].get(262) or ""
        venue.send("X", trade_entry(md_req_id, "30000", "1"))
        assert seen.first(lambda e: e["type"] == "md.trade")["price"] == "30000"
        venue.send("X", trade_entry(md_req_id, "0", "1"))
        venue.wait_for(lambda _: len(trades_requests(venue)) == 2, what="the trades asked again")
        wait_until(
            lambda: stack.status()["market_data"]["BTC/USD:trades"]["live"],
            10,
            "the trades live again",
        )
        with pytest.raises(ApiError) as refused:
            gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="10")
        assert refused.value.code == "risk_rejected" and "notional 300000" in str(refused.value)
        assert not [e for e in gw.take_events() if e["type"] == "md.trade"]
        assert not [m for m in venue.app if m.msg_type == "D"]
        stale = logged(stack, "market data stale; asking again")
        assert [line["reason"] for line in stale] == ["BTC/USD: trade at 0 with size 1"]


def test_a_client_of_the_trades_alone_is_told_when_the_exchange_ends_them(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client
) -> None:
    venue, stack = venue_stack
    venue.on("V", serving(BOOK))
    gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
    md_req_id = trades_requests(venue)[0].get(262) or ""
    venue.send("Y", [(262, md_req_id), (281, "3"), (58, "entitlement withdrawn")])
    ended = EventLog(gw).first(lambda e: e["type"] == "md.rejected")
    assert (ended["what"], ended["reason"], ended["text"]) == (
        "trades",
        "insufficient_permissions",
        "entitlement withdrawn",
    )
    assert stack.status()["market_data"] == {}


def test_a_client_whose_book_the_exchange_ended_is_not_fed_the_book_another_client_asks_for(
    make_venue_stack: VenueStackFactory,
) -> None:
    """`md.rejected` ends the client's subscription to the book with the stream: were it fed
    the stream another client starts later, it would not be told when that one ends."""
    venue, stack = make_venue_stack(lambda v: v.on("V", serving(BOOK)))
    with stack.client("a") as a, stack.client("b") as b:
        a.request("md_subscribe", symbol="BTC/USD", depth=5, what=["book"])
        a.subscribe(["session"])
        first = book_requests(venue)[0].get(262) or ""
        venue.send("Y", [(262, first), (281, "2"), (58, "insufficient bandwidth")])
        assert EventLog(a).first(lambda e: e["type"] == "md.rejected")["what"] == "book"
        b.request("md_subscribe", symbol="BTC/USD", depth=5, what=["book"])
        second = book_requests(venue)[1].get(262) or ""
        venue.send("X", level_change(second, "0", "29990", "3"))
        EventLog(b).first(lambda e: e["type"] == "md.delta")
        # a request of A's is answered after every event published before it
        assert a.request("subscribe", topics=["session"])["topics"] == ["session"]
        assert not [e for e in a.take_events() if e["type"].startswith("md.")]
        a.request("md_subscribe", symbol="BTC/USD", depth=5, what=["book"])  # subscribes again
        assert stack.status()["market_data"]["BTC/USD:book"]["clients"] == 2


def test_a_snapshot_out_of_order_with_a_price_twice_reaches_a_whole_book_client_as_the_book(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client
) -> None:
    """FIX 4.4 puts no order on a W's entries; `md.snapshot` is best first, a level a price."""
    venue, _ = venue_stack
    worst_first = [
        *((269, "0"), (270, "29980"), (271, "2")),
        *((269, "0"), (270, "29990"), (271, "1.5")),
        *((269, "0"), (270, "29990"), (271, "4")),  # the same price again: the later holds
        *((269, "1"), (270, "30020"), (271, "3")),
        *((269, "1"), (270, "30010"), (271, "1.2")),
    ]
    venue.on("V", serving(worst_first))
    gw.subscribe(["md:BTC/USD"])
    reply = gw.request("md_subscribe", symbol="BTC/USD", depth=0, what=["book"])
    snapshot = EventLog(gw).first(lambda e: e["type"] == "md.snapshot")
    book = ([["29990", "4"], ["29980", "2"]], [["30010", "1.2"], ["30020", "3"]])
    assert (snapshot["bids"], snapshot["asks"]) == book
    assert (reply["bids"], reply["asks"]) == book


def test_a_level_the_venue_writes_in_three_forms_reaches_every_client_in_one(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """FIX 4.4 floats have many forms of one number. A venue naming the level `029990.0` in
    its snapshot, `29990` in its change and `29990.00` in its delete: every client gets
    `29990`, in its reply, snapshot and deltas, at any depth, so a client keeping its book
    by the text of a price finds the level it deletes. Before the fix a whole-book client
    got `29990.0`, `29990` and `29990.00` (a ghost level, or a delete of a level it never
    held), and a client of depth 1 `29990.0` each time."""
    venue, stack = venue_stack
    venue.on(
        "V",
        serving(
            [
                *((269, "0"), (270, "029990.0"), (271, "1.50")),
                *((269, "0"), (270, "29980."), (271, ".5")),
                *((269, "1"), (270, "30010"), (271, "1.20")),
            ]
        ),
    )
    with stack.client() as whole, stack.client() as top:
        whole.subscribe(["md:BTC/USD"])
        top.subscribe(["md:BTC/USD"])
        whole_reply = whole.request("md_subscribe", symbol="BTC/USD", depth=0, what=["book"])
        top_reply = top.request("md_subscribe", symbol="BTC/USD", depth=1, what=["book"])
        assert (whole_reply["bids"], whole_reply["asks"]) == (
            [["29990", "1.5"], ["29980", "0.5"]],
            [["30010", "1.2"]],
        )
        assert (top_reply["bids"], top_reply["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
        whole_events, top_events = EventLog(whole), EventLog(top)
        snapshot = whole_events.first(lambda e: e["type"] == "md.snapshot")
        assert snapshot["bids"] == [["29990", "1.5"], ["29980", "0.5"]]
        md_req_id = book_requests(venue)[0].get(262) or ""
        for action, price, size in (("1", "29990", "2.0"), ("2", "29990.00", "0")):
            venue.send(
                "X",
                [
                    *((262, md_req_id), (268, "1")),
                    *((279, action), (269, "0"), (55, "BTC/USD"), (270, price), (271, size)),
                ],
            )

        def deltas(log: EventLog) -> list[list[list[str]]]:
            log.first(lambda e: e["type"] == "md.delta" and e["changes"][0][0] == "delete")
            return [e["changes"] for e in log.seen if e["type"] == "md.delta"]

        assert deltas(whole_events) == [
            [["change", "bid", "29990", "2"]],
            [["delete", "bid", "29990", "0"]],
        ]
        assert deltas(top_events) == [
            [["change", "bid", "29990", "2"]],
            [["delete", "bid", "29990", "0"], ["new", "bid", "29980", "0.5"]],
        ]
        book = whole.request("book", symbol="BTC/USD", depth=0)
        assert (book["bids"], book["asks"]) == ([["29980", "0.5"]], [["30010", "1.2"]])


def test_a_venue_that_always_sends_a_crossed_book_fails_md_subscribe_saying_so(
    make_venue_stack: VenueStackFactory,
) -> None:
    crossed = [*((269, "0"), (270, "30020"), (271, "1")), *((269, "1"), (270, "30010"), (271, "1"))]
    _, stack = make_venue_stack(lambda v: v.on("V", serving(crossed)), api={"request_timeout_s": 2})
    with stack.client() as gw, pytest.raises(ApiError) as failed:
        gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
    assert failed.value.code == "timeout"
    assert str(failed.value).endswith(
        "could be used (book: BTC/USD: crossed book, bid 30020 >= ask 30010)"
    ), str(failed.value)


BROKER = "BROKER-FIX44"
PROFILES = {
    "okcoin": {},
    "fix44": {"venue_comp_id": BROKER, "session": {"venue": "fix44", "target_comp_id": BROKER}},
}
"""`make_venue_stack`'s arguments for each venue profile: OKCoin's dialect, plain FIX 4.4."""

BOOK_WITH_STANDARD_FIELDS = [
    *((269, "0"), (270, "29990"), (15, "USD"), (271, "1.5"), (346, "4"), (290, "1")),
    *((269, "0"), (270, "29980"), (15, "USD"), (271, "2"), (346, "1"), (290, "2")),
    *((269, "1"), (270, "30010"), (15, "USD"), (271, "1.2"), (346, "2"), (290, "1")),
]
"""FIX 4.4's MDFullGrp in its order: Currency (15) between MDEntryPx and MDEntrySize,
NumberOfOrders (346) and MDEntryPositionNo (290) after."""


@pytest.mark.parametrize("profile", PROFILES)
def test_a_snapshot_whose_entries_carry_standard_fields_gives_the_whole_book(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """Every field FIX 4.4 allows in an entry is read past, to the end of the group: a client
    and an OMS on the bridge get both bids and the ask."""
    with raw_oms_through(
        make_venue_stack,
        lambda v: v.on("V", serving(BOOK_WITH_STANDARD_FIELDS)),
        **PROFILES[profile],
    ) as (venue, stack, oms):
        with stack.client() as gw:
            book = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        assert (book["bids"], book["asks"]) == (
            [["29990", "1.5"], ["29980", "2"]],
            [["30010", "1.2"]],
        )
        oms.send(
            "V",
            [
                *((262, "BOOK-1"), (263, "1"), (264, "0"), (267, "2"), (269, "0"), (269, "1")),
                *((146, "1"), (55, "BTC/USD")),
            ],
        )
        first = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "BOOK-1")
        assert list(zip(first.all(269), first.all(270), first.all(271), strict=True)) == [
            ("0", "29990", "1.5"),
            ("0", "29980", "2"),
            ("1", "30010", "1.2"),
        ]
        assert not logged(stack, "market data the gateway has no use for, passed over")
        assert not [m for m in venue.admin if m.msg_type == "3"]


@pytest.mark.parametrize("profile", PROFILES)
def test_an_update_whose_entries_carry_standard_fields_applies_every_entry(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """FIX 4.4's MDIncGrp in its order: MDEntryID (278) before Symbol, the Instrument's own
    group (NoSecurityAltID, 454) after it, Currency (15) between MDEntryPx and MDEntrySize,
    NumberOfOrders (346) and MDEntryPositionNo (290) after. The delete after such an entry is
    applied: no level the venue deleted stays in the book."""
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(BOOK_WITH_STANDARD_FIELDS)), **PROFILES[profile]
    )
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        seen = EventLog(gw)
        venue.send(
            "X",
            [
                *((262, book_requests(venue)[0].get(262) or ""), (268, "2")),
                *((279, "0"), (269, "0"), (278, "b9"), (55, "BTC/USD")),
                *((454, "1"), (455, "XBTUSD"), (456, "8")),
                *((270, "29995"), (15, "USD"), (271, "1"), (346, "3"), (290, "1")),
                *((279, "2"), (269, "1"), (278, "a1"), (55, "BTC/USD"), (270, "30010")),
                (290, "1"),
            ],
        )
        delta = seen.first(lambda e: e["type"] in ("md.delta", "md.stale"))
        assert delta["type"] == "md.delta", delta
        assert sorted(delta["changes"]) == [
            ["delete", "ask", "30010", "0"],
            ["new", "bid", "29995", "1"],
        ]
        now = gw.request("book", symbol="BTC/USD", depth=5)
        assert (now["bids"], now["asks"]) == (
            [["29995", "1"], ["29990", "1.5"], ["29980", "2"]],
            [],
        )
    assert len(book_requests(venue)) == 1


VENUE_TAG = (9001, "v")
"""A venue's own field, which no dictionary the session reads with lists."""


@pytest.mark.parametrize("profile", PROFILES)
def test_a_field_no_dictionary_lists_in_an_entry_leaves_the_entries_after_it_read(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """NoMDEntries says 2 and the first entry carries a venue's own tag: the tag is passed
    over in its entry, and the entry after it is read, the snapshot's ask and the update's
    delete: no level the venue deleted stays in the book."""
    book = [*BOOK[:6], VENUE_TAG, *BOOK[6:]]
    venue, stack = make_venue_stack(lambda v: v.on("V", serving(book)), **PROFILES[profile])
    with stack.client() as gw:
        first = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        assert (first["bids"], first["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
        seen = EventLog(gw)
        venue.send(
            "X",
            [
                *((262, book_requests(venue)[0].get(262) or ""), (268, "2")),
                *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "29995"), (271, "1")),
                VENUE_TAG,
                *((279, "2"), (269, "1"), (55, "BTC/USD"), (270, "30010")),
            ],
        )
        delta = seen.first(lambda e: e["type"] in ("md.delta", "md.stale"))
        assert delta["type"] == "md.delta", delta
        assert sorted(delta["changes"]) == [
            ["delete", "ask", "30010", "0"],
            ["new", "bid", "29995", "1"],
        ]
        now = gw.request("book", symbol="BTC/USD", depth=5)
        assert (now["bids"], now["asks"]) == ([["29995", "1"], ["29990", "1.5"]], [])
    assert len(book_requests(venue)) == 1
    assert not logged(stack, "unreadable message from the exchange")


@pytest.mark.parametrize("profile", PROFILES)
def test_an_update_whose_group_does_not_add_up_is_not_applied_and_the_book_is_asked_again(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """NoMDEntries says 3 and two entries follow: which of them the venue meant cannot be
    told, so none is applied. The message is reported unreadable and the book asked for
    afresh, as for any update the gateway cannot read."""
    venue, stack = make_venue_stack(lambda v: v.on("V", serving(BOOK)), **PROFILES[profile])
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        gw.subscribe(["errors"])
        seen = EventLog(gw)
        md_req_id = book_requests(venue)[0].get(262) or ""
        venue.send(
            "X",
            [
                *((262, md_req_id), (268, "3")),
                *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "29995"), (271, "1")),
                *((279, "2"), (269, "1"), (55, "BTC/USD"), (270, "30010")),
            ],
        )
        error = seen.first(lambda e: e["type"] == "exchange.error")
        assert (error["source"], error["md_req_id"]) == ("unreadable", md_req_id), error
        assert "NumInGroup (268)" in error["text"]
        venue.wait_for(lambda _: len(book_requests(venue)) == 2, what="the book asked again")
        assert not [e for e in seen.seen if e["type"] == "md.delta"]


def serving_trades(
    book: list[tuple[int, str]], trades: list[tuple[int, str]]
) -> Callable[[ScriptedVenue, Received], None]:
    """Answers the book request with a W of `book`, the trades request with a W of `trades`."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        if request.get(263) != "1":
            return
        entries = trades if "2" in request.all(269) else book
        count = sum(1 for tag, _ in entries if tag == 269)
        venue.send(
            "W", [(262, request.get(262) or ""), (55, "BTC/USD"), (268, str(count)), *entries]
        )

    return answer


@pytest.mark.parametrize("profile", PROFILES)
def test_the_last_trade_of_a_trades_snapshot_is_the_reference_price_and_is_told_to_nobody(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """OKCoin's W answering the trades request holds trades, with their aggressor: trades
    from before the request, which every request after a drop repeats. The last one is the
    reference price (the book has bids only: no mid); none is told as `md.trade`; each is
    counted, and said once."""
    port = free_port()
    trades = [
        *((269, "2"), (270, "30000"), (271, "0.1"), (54, "1")),
        *((269, "2"), (270, "30100"), (271, "0.2"), (54, "2")),
    ]
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving_trades([(269, "0"), (270, "29990"), (271, "1.5")], trades)),
        risk={"symbols": {"BTC/USD": {"max_notional": 100000}}},
        ops={"metrics_port": port},
        **PROFILES[profile],
    )
    with stack.client() as gw:
        seen = EventLog(gw)
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
        with pytest.raises(ApiError) as refused:
            gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="10")
        assert refused.value.code == "risk_rejected" and "notional 301000" in str(refused.value)
        assert not [e for e in seen.seen if e["type"] == "md.trade"]
    said = logged(stack, "market data the gateway has no use for, passed over")
    assert [(line["stream"], line["passed_over"]) for line in said] == [
        (
            "trades",
            "a trade in a full refresh (W): told to nobody, the last one the reference price",
        )
    ]
    assert passed_over_counts(port) == {
        "a trade in a full refresh (W): told to nobody, the last one the reference price": 2
    }
    assert len(trades_requests(venue)) == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_the_last_trade_listed_is_the_reference_price_whatever_field_a_trade_before_carries(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """The first of two trades carries a venue's own tag: the second, 30100, is still the
    last one listed and the reference price, so a market order of 10 (notional 301000) is
    refused, not priced from the first (300000, under max_notional)."""
    trades = [
        *((269, "2"), (270, "30000"), (271, "0.1"), (54, "1"), VENUE_TAG),
        *((269, "2"), (270, "30100"), (271, "0.2"), (54, "2")),
    ]
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving_trades([(269, "0"), (270, "29990"), (271, "1.5")], trades)),
        risk={"symbols": {"BTC/USD": {"max_notional": 300500}}},
        **PROFILES[profile],
    )
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
        with pytest.raises(ApiError) as refused:
            gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="10")
        assert refused.value.code == "risk_rejected" and "notional 301000" in str(refused.value)
    assert not [m for m in venue.app if m.msg_type == "D"]


def all_answered(venue: ScriptedVenue) -> None:
    """Waits for the answer to a TestRequest: whatever the gateway answered the messages
    before it with (a Reject, say) has reached the venue."""
    venue.send("1", [(112, "all-answered")], store=False)
    venue.wait_for(lambda m: m.msg_type == "0" and m.get(112) == "all-answered")


TWO_TRADES = [
    *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30000"), (271, "0.1"), (54, "1")),
    *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30001"), (271, "0.2")),
]
"""Two new trades; the second's Side (54) added by each test."""


@pytest.mark.parametrize("profile", PROFILES)
def test_trades_carrying_side_draw_no_session_reject(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """FIX 4.4's MDIncGrp lists no Side; the gateway reads it there (the aggressor). A
    message the gateway reads and uses is not answered with a session Reject, which says
    it was not processed."""
    venue, stack = make_venue_stack(lambda v: v.on("V", serving(BOOK)), **PROFILES[profile])
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        seen = EventLog(gw)
        venue.send(
            "X",
            [(262, trades_requests(venue)[0].get(262) or ""), (268, "2"), *TWO_TRADES, (54, "2")],
        )
        trade = seen.first(lambda e: e["type"] == "md.trade" and e["price"] == "30001")
        assert trade["aggressor"] == "sell"
    all_answered(venue)
    assert not [m.pairs for m in venue.admin if m.msg_type == "3"]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_trade_whose_side_is_undisclosed_is_a_trade_with_no_aggressor(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """Side 7 (Undisclosed, FIX 4.4) names no aggressor: the trade is told with none, and
    the trade beside it as it came; nothing is unreadable, nothing asked again."""
    venue, stack = make_venue_stack(lambda v: v.on("V", serving(BOOK)), **PROFILES[profile])
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        seen = EventLog(gw)
        venue.send(
            "X",
            [(262, trades_requests(venue)[0].get(262) or ""), (268, "2"), *TWO_TRADES, (54, "7")],
        )
        second = seen.first(lambda e: e["type"] == "md.trade" and e["price"] == "30001")
        trades = [(e["price"], e["aggressor"]) for e in seen.seen if e["type"] == "md.trade"]
        assert trades == [("30000", "buy"), ("30001", None)], second
    assert not logged(stack, "unreadable message from the exchange")
    assert len(trades_requests(venue)) == 1


def test_a_broker_dictionarys_own_entry_field_gives_the_whole_book_and_draws_no_reject(
    make_venue_stack: VenueStackFactory, tmp_path: Path
) -> None:
    """`session.dictionary` names a broker's FIX44.xml listing its own field in the entries
    of MDFullGrp, a component: QuickFIX and the gateway read the snapshot with it, both
    entries, and the broker gets no Reject."""
    tag = (VENUE_ENTRY_TAG, "v")
    book = [*BOOK[:3], tag, *BOOK[3:], tag]
    dictionary = broker_dictionary(tmp_path / "broker-FIX44.xml")
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(book)),
        venue_comp_id=BROKER,
        session={"venue": "fix44", "target_comp_id": BROKER, "dictionary": str(dictionary)},
    )
    with stack.client() as gw:
        first = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        assert (first["bids"], first["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
    all_answered(venue)
    assert not [m.pairs for m in venue.admin if m.msg_type == "3"]
    assert not logged(stack, "unreadable message from the exchange")


def test_a_broker_dictionary_spelling_a_field_as_fix42_did_starts_and_gives_the_book(
    make_venue_stack: VenueStackFactory, tmp_path: Path
) -> None:
    """`session.dictionary` names a broker's FIX44.xml that spells tag 23 `IOIid`, FIX 4.2's
    name (FIX 4.4's is `IOIID`): check-config passed it, and `run` stopped with a traceback
    (`KeyError: 'IOIid'`). It starts, and the snapshot is read."""
    dictionary = respelt_dictionary(tmp_path / "broker-FIX44.xml", 23, "IOIid")
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(BOOK)),
        venue_comp_id=BROKER,
        session={"venue": "fix44", "target_comp_id": BROKER, "dictionary": str(dictionary)},
    )
    with stack.client() as gw:
        first = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        assert (first["bids"], first["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
    all_answered(venue)


def test_a_fix42_broker_dictionary_with_its_own_username_and_password_starts_and_gives_the_book(
    make_venue_stack: VenueStackFactory, tmp_path: Path
) -> None:
    """`session.dictionary` names a FIX 4.2 broker's dictionary with its own Username and
    Password (9000, 9001; FIX 4.4's are 553 and 554): check-config passed it, and `run`
    stopped with "Field named Username defined multiple times". It starts, and the snapshot
    is read."""
    fix42 = standard_fix44_dictionary().with_name("FIX42.xml")
    own = {9000: "Username", 9001: "Password"}
    dictionary = with_own_fields(fix42, tmp_path / "broker-FIX42.xml", own, "A")
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(BOOK)),
        venue_comp_id=BROKER,
        session={"venue": "fix44", "target_comp_id": BROKER, "dictionary": str(dictionary)},
    )
    with stack.client() as gw:
        first = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        assert (first["bids"], first["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
    all_answered(venue)


@pytest.mark.parametrize("profile", PROFILES)
def test_entries_under_the_other_streams_request_are_passed_over_and_said(
    make_venue_stack: VenueStackFactory, profile: str
) -> None:
    """A trade under the book request's MDReqID and a level under the trades request's: FIX
    4.4's venue sends each request the entry types it names, and one that sends every entry
    under both would have each told or applied twice. Passed over, counted and said once;
    the rest of the message is used."""
    port = free_port()
    venue, stack = make_venue_stack(
        lambda v: v.on("V", serving(BOOK)), ops={"metrics_port": port}, **PROFILES[profile]
    )
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=5)
        seen = EventLog(gw)
        book_id, trades_id = (book_requests(venue)[0].get(262), trades_requests(venue)[0].get(262))
        venue.send(
            "X",
            [
                *((262, book_id or ""), (268, "2")),
                *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30010"), (271, "0.2"), (54, "1")),
                *((279, "1"), (269, "1"), (55, "BTC/USD"), (270, "30010"), (271, "1.0")),
            ],
        )
        venue.send(
            "X",
            [
                *((262, trades_id or ""), (268, "2")),
                *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "7")),
                *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30011"), (271, "0.3"), (54, "2")),
            ],
        )
        trade = seen.first(lambda e: e["type"] == "md.trade")
        assert (trade["price"], trade["size"]) == ("30011", "0.3")
        told = [(e["type"], e.get("changes")) for e in seen.seen if e["type"].startswith("md.d")]
        assert told == [("md.delta", [["change", "ask", "30010", "1"]])]
        now = gw.request("book", symbol="BTC/USD", depth=5)
        assert (now["bids"], now["asks"]) == ([["29990", "1.5"]], [["30010", "1"]])
    said = sorted(
        (str(line["stream"]), str(line["passed_over"]))
        for line in logged(stack, "market data the gateway has no use for, passed over")
    )
    assert said == [
        ("book", "a trade under the book request's MDReqID"),
        ("trades", "a bid or offer under the trades request's MDReqID"),
    ]
    assert passed_over_counts(port) == {
        "a trade under the book request's MDReqID": 1,
        "a bid or offer under the trades request's MDReqID": 1,
    }


def test_a_request_given_up_before_the_venue_answered_is_ended_at_its_first_incremental(
    make_venue_stack: VenueStackFactory,
) -> None:
    """A venue slow to answer, and then with incremental refreshes alone (no W first): the
    request the client gave up on is unsubscribed at its first X, not streamed for good."""
    venue, stack = make_venue_stack(api={"request_timeout_s": 1})
    with stack.client() as gw:
        with pytest.raises(ApiError) as gave_up:
            gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
        assert gave_up.value.code == "timeout"
        [asked] = book_requests(venue)
        md_req_id = asked.get(262) or ""
        venue.send(
            "X",
            [
                *((262, md_req_id), (268, "1")),
                *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "1")),
            ],
        )
        wait_until(
            lambda: [m.get(262) for m in book_requests(venue, subscription="2")] == [md_req_id],
            10,
            "the request unsubscribed",
        )


def test_a_reject_naming_no_request_of_the_gateways_changes_nothing_and_is_said(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(lambda v: v.on("V", serving(BOOK)))
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", depth=5, what=["book"])
        gw.subscribe(["md:BTC/USD", "errors"])
        venue.send("Y", [(262, "not-ours"), (281, "0"), (58, "no such request")])
        wait_until(
            lambda: logged(stack, "market data reject for no request of ours passed over"),
            10,
            "the reject said",
        )
        [said] = logged(stack, "market data reject for no request of ours passed over")
        assert (said["md_req_id"], said["text"]) == ("not-ours", "no such request")
        assert gw.request("book", symbol="BTC/USD", depth=5)["asks"] == [["30010", "1.2"]]
        assert not [e for e in gw.take_events() if e["type"] in ("md.rejected", "md.stale")]
        assert len(book_requests(venue)) == 1


def venue_streaming_trades(
    active: set[str], first_unanswered: list[str]
) -> Callable[[ScriptedVenue, Received], None]:
    """A venue that keeps each trades subscription until it is unsubscribed (`active`), slow
    to answer the first trades request (its MDReqID put in `first_unanswered`); each other
    one answered with an empty W."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        if "2" not in request.all(269):
            return
        md_req_id = request.get(262) or ""
        if request.get(263) == "2":
            active.discard(md_req_id)
            return
        active.add(md_req_id)
        if not first_unanswered:
            first_unanswered.append(md_req_id)
            return
        venue.send("W", [(262, md_req_id), (55, "BTC/USD"), (268, "0")])

    return answer


def test_a_late_answer_to_a_trades_request_given_up_ends_it_and_the_trades_flow_on(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The request unanswered for `stale_after_s` is given up and the trades asked for again;
    the venue's answer to the first, at last, has the first unsubscribed (FIX 4.4: an
    unsubscribe names the MDReqID it ends), never the one asked for since: its trades flow on."""
    active: set[str] = set()
    first: list[str] = []
    venue, stack = make_venue_stack(
        lambda v: v.on("V", venue_streaming_trades(active, first)),
        market_data={"stale_after_s": 1},
    )
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
        seen = EventLog(gw)
        asked_again = trades_requests(venue)[-1].get(262) or ""
        assert asked_again != first[0]
        venue.send("W", [(262, first[0]), (55, "BTC/USD"), (268, "0")])
        wait_until(lambda: active == {asked_again}, 10, "the first request unsubscribed")
        for md_req_id in sorted(active):
            venue.send("X", trade_entry(md_req_id, "30005", "0.1"))
        assert seen.first(lambda e: e["type"] == "md.trade")["price"] == "30005"
        trades = stack.status()["market_data"]["BTC/USD:trades"]
        assert (trades["state"], trades["md_req_id"]) == ("live", asked_again)
        unsubscribed = [m.get(262) for m in venue.app if m.msg_type == "V" and m.get(263) == "2"]
        assert unsubscribed == [first[0]]
        assert not logged(stack, "inbound handling failed")


def test_trades_a_venue_answers_with_incremental_refreshes_alone_are_live_at_the_first(
    make_venue_stack: VenueStackFactory,
) -> None:
    """No W of trades, only an X for each trade: the first X is the answer. Before, the
    request was given up as unanswered, asked again and again, and never unsubscribed."""
    answered: list[str] = []

    def x_only(venue: ScriptedVenue, request: Received) -> None:
        if request.get(263) == "1" and "2" in request.all(269):
            answered.append(request.get(262) or "")
            venue.send("X", trade_entry(answered[-1], "30001", "0.1"))

    venue, stack = make_venue_stack(
        lambda v: v.on("V", x_only),
        market_data={"stale_after_s": 1},
        api={"request_timeout_s": 5},
    )
    with stack.client() as gw:
        gw.subscribe(["md:BTC/USD:trades"])
        seen = EventLog(gw)
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
        assert seen.first(lambda e: e["type"] in ("md.trade", "md.stale"))["type"] == "md.trade"
        venue.send("X", trade_entry(answered[0], "30002", "0.1"))
        assert seen.first(lambda e: e.get("price") == "30002")["type"] == "md.trade"
        assert stack.status()["market_data"]["BTC/USD:trades"]["md_req_id"] == answered[0]
        assert len(answered) == 1
        assert not [e for e in seen.seen if e["type"] == "md.stale"]


def test_a_trades_client_is_told_when_the_venue_gap_fills_a_message_and_its_trades_go_on(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client
) -> None:
    """The message skipped may have carried a trade, lost for good: `md.stale` of the trades
    (as of a book); the stream carries on under its request."""
    venue, _ = venue_stack
    venue.on("V", serving(BOOK))
    gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
    seen = EventLog(gw)
    md_req_id = trades_requests(venue)[0].get(262) or ""
    venue.send("X", trade_entry(md_req_id, "30002", "0.1"), store=False, lose=True)
    venue.send("X", trade_entry(md_req_id, "30003", "0.1"))
    stale = seen.first(lambda e: e["type"] == "md.stale")
    assert stale["what"] == "trades" and "SequenceReset" in stale["reason"], stale
    assert seen.first(lambda e: e["type"] == "md.trade")["price"] == "30003"
    venue.send("X", trade_entry(md_req_id, "30004", "0.1"))
    assert seen.first(lambda e: e.get("price") == "30004")["type"] == "md.trade"
    assert len(trades_requests(venue)) == 1
    assert [e["price"] for e in seen.seen if e["type"] == "md.trade"] == ["30003", "30004"]
