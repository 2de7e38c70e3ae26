"""The market-data manager's reactions that the simulator cannot provoke: a crossed book,
an update for a missing level, and reports for requests that are no longer active."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest

from fixgw.domain import (
    BookSide,
    BookSnapshotReport,
    BookUpdateReport,
    Event,
    LevelAction,
    LevelUpdate,
    MdSubscription,
    RequestMarketData,
    utc_now,
)
from fixgw.marketdata import MarketData
from fixgw.ops.prometheus import Metrics


class Recorder:
    def __init__(self) -> None:
        self.requests: list[RequestMarketData] = []
        self.events: list[Event] = []


def live_book(rec: Recorder) -> tuple[MarketData, str]:
    md = MarketData(
        frozenset({"BTC/USD"}),
        lambda r: rec.requests.append(r) is None,
        rec.events.append,
        Metrics().book_stale.labels,
        upstream_depth=0,
        stale_after_s=5,
        max_depth=100,
    )
    md.on_session_up()

    async def subscribe() -> None:
        task = asyncio.ensure_future(md.subscribe("client", "BTC/USD", {"book"}, within_s=5))
        await asyncio.sleep(0)
        md.on_snapshot(
            BookSnapshotReport(
                md_req_id=rec.requests[-1].md_req_id,
                symbol="BTC/USD",
                bids=[(D(99), D(1))],
                asks=[(D(101), D(1))],
                trades=[],
                ts=utc_now(),
            )
        )
        await task

    asyncio.run(subscribe())
    return md, rec.requests[-1].md_req_id


def update(md_req_id: str, *changes: Any) -> BookUpdateReport:
    return BookUpdateReport(
        md_req_id=md_req_id,
        levels={"BTC/USD": [LevelUpdate(*c) for c in changes]},
        trades={},
        ts=utc_now(),
    )


@pytest.mark.parametrize(
    "change",
    [
        (LevelAction.NEW, BookSide.BID, D(102), D(1)),  # crosses the ask
        (LevelAction.CHANGE, BookSide.ASK, D(105), D(1)),  # a level the book does not hold
    ],
)
def test_a_broken_book_is_announced_stale_and_requested_again(change: Any) -> None:
    rec = Recorder()
    md, first_id = live_book(rec)
    md.on_update(update(first_id, change))
    assert [type(e).__name__ for e in rec.events] == ["BookSnapshot", "BookStale"]
    unsubscribe, resubscribe = rec.requests[-2:]
    assert (unsubscribe.subscription, unsubscribe.md_req_id) == (
        MdSubscription.UNSUBSCRIBE,
        first_id,
    )
    assert resubscribe.subscription is MdSubscription.SUBSCRIBE
    assert resubscribe.md_req_id != first_id


def test_updates_for_an_old_request_are_ignored_after_a_restart() -> None:
    rec = Recorder()
    md, first_id = live_book(rec)
    md.check_staleness(now=10**9)
    assert type(rec.events[-1]).__name__ == "BookStale"
    md.on_update(update(first_id, (LevelAction.NEW, BookSide.BID, D(98), D(1))))
    assert type(rec.events[-1]).__name__ == "BookStale"
    assert md.books["BTC/USD"].levels() == ([(D(99), D(1))], [(D(101), D(1))])


def test_a_good_update_becomes_one_delta_event() -> None:
    rec = Recorder()
    md, md_req_id = live_book(rec)
    md.on_update(
        update(
            md_req_id,
            (LevelAction.CHANGE, BookSide.BID, D(99), D(3)),
            (LevelAction.NEW, BookSide.ASK, D(100), D(2)),
        )
    )
    delta = rec.events[-1]
    assert type(delta).__name__ == "BookDelta"
    assert md.books["BTC/USD"].levels() == ([(D(99), D(3))], [(D(100), D(2)), (D(101), D(1))])
