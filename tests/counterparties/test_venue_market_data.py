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

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack, free_port, wait_until
from tests.counterparties.conftest import VenueStackFactory
from tests.counterparties.venue import Received, ScriptedVenue
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
