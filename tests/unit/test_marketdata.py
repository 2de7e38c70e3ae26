"""The market-data manager's reactions that the simulator cannot provoke: a crossed book,
an update for a missing level, and reports for requests that are no longer active."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

import pytest
import structlog.testing

from fixgw.bridge.market_data import _MdSubscription
from fixgw.domain import (
    BookSide,
    BookSnapshotReport,
    BookUpdateReport,
    Event,
    LevelAction,
    LevelUpdate,
    MarketDataRejectReport,
    MdEntryKind,
    MdRejectReason,
    MdSubscription,
    RequestMarketData,
    Side,
    Trade,
    utc_now,
)
from fixgw.errors import RequestError
from fixgw.marketdata.streams import MarketData
from fixgw.ops.prometheus import Metrics
from fixgw.results import StreamState


class Recorder:
    def __init__(self) -> None:
        self.requests: list[RequestMarketData] = []
        self.events: list[Event] = []


def manager(rec: Recorder, stale_after_s: float = 5, metrics: Metrics | None = None) -> MarketData:
    metrics = metrics or Metrics()
    md = MarketData(
        frozenset({"BTC/USD"}),
        lambda r: rec.requests.append(r) is None,
        rec.events.append,
        metrics.book_stale.labels,
        metrics.md_entry_passed_over,
        upstream_depth=0,
        stale_after_s=stale_after_s,
        max_depth=100,
    )
    md.on_session_up()
    return md


def live_book(rec: Recorder) -> tuple[MarketData, str]:
    md = manager(rec)

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


def test_a_book_broken_in_the_batch_of_its_first_snapshot_is_waited_for_again() -> None:
    """The subscriber resumes after the whole batch: it must not find a broken book."""
    rec = Recorder()
    md = manager(rec)

    def snapshot(md_req_id: str, bid: int, ask: int) -> BookSnapshotReport:
        return BookSnapshotReport(
            md_req_id=md_req_id,
            symbol="BTC/USD",
            bids=[(D(bid), D(1))],
            asks=[(D(ask), D(1))],
            trades=[],
            ts=utc_now(),
        )

    async def scenario() -> list[tuple[list[Any], list[Any]]]:
        seen: list[tuple[list[Any], list[Any]]] = []

        async def subscriber() -> None:
            await md.subscribe("client", "BTC/USD", {"book"}, within_s=5)
            book = md.book_levels("BTC/USD", 0)
            seen.append((book.bids, book.asks))

        task = asyncio.ensure_future(subscriber())
        await asyncio.sleep(0)
        first = rec.requests[-1].md_req_id
        md.on_snapshot(snapshot(first, 99, 101))  # one batch: the snapshot, then a crossing bid
        md.on_update(update(first, (LevelAction.NEW, BookSide.BID, D(102), D(1))))
        await asyncio.wait({task}, timeout=0.05)
        assert not task.done()  # still waiting, for the book asked for again
        md.on_snapshot(snapshot(rec.requests[-1].md_req_id, 98, 103))
        await task
        return seen

    assert asyncio.run(scenario()) == [([(D(98), D(1))], [(D(103), D(1))])]


def test_updates_for_an_old_request_are_ignored_after_a_restart() -> None:
    rec = Recorder()
    md, first_id = live_book(rec)
    assert md.ask_again(first_id, "MDEntryType (269) has no value 'Z'")
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


# ------------------------------------------------------------ reference prices and holds


def snapshot_for(md: MarketData, request: RequestMarketData) -> None:
    """The exchange's answer to `request`: the book 99 / 101, or no trades."""
    book = MdEntryKind.BID in request.kinds
    md.on_snapshot(
        BookSnapshotReport(
            md_req_id=request.md_req_id,
            symbol=request.symbol,
            bids=[(D(99), D(1))] if book else [],
            asks=[(D(101), D(1))] if book else [],
            trades=[],
            ts=utc_now(),
        )
    )


def subscribed(md: MarketData, rec: Recorder, client: str, what: set[str]) -> None:
    """`client` subscribes to `what`; the exchange answers every request it makes."""

    async def run() -> None:
        asked = len(rec.requests)
        task = asyncio.ensure_future(md.subscribe(client, "BTC/USD", what, within_s=5))
        await asyncio.sleep(0)
        for request in rec.requests[asked:]:
            snapshot_for(md, request)
        await task

    asyncio.run(run())


def trade(md: MarketData, rec: Recorder, price: str, size: str = "1") -> None:
    trades = next(
        r for r in reversed(rec.requests) if r.kinds == (MdEntryKind.TRADE,) and r.subscription
    )
    md.on_update(
        BookUpdateReport(
            md_req_id=trades.md_req_id,
            levels={},
            trades={"BTC/USD": [Trade(price=D(price), size=D(size), aggressor=Side.BUY)]},
            ts=utc_now(),
        )
    )


def reject(md: MarketData, request: RequestMarketData) -> None:
    md.on_reject(
        MarketDataRejectReport(
            md_req_id=request.md_req_id, reason=MdRejectReason.OTHER, text="no", ts=utc_now()
        )
    )


def test_a_stale_book_its_last_client_leaves_is_stale_no_more() -> None:
    """`fixgw_book_stale` says a book the gateway keeps cannot be trusted: left by its last
    client while the session is down, no book is kept, and nothing would ever set it back."""
    rec = Recorder()
    metrics = Metrics()
    md = manager(rec, metrics=metrics)
    subscribed(md, rec, "client", {"book"})

    def stale() -> float | None:
        return metrics.registry.get_sample_value("fixgw_book_stale", {"symbol": "BTC/USD"})

    md.on_session_down()
    assert stale() == 1
    md.client_gone("client")
    assert md.status() == {}
    assert stale() == 0


def test_a_reject_naming_no_request_of_ours_is_said_and_changes_nothing() -> None:
    """An MDReqID the gateway never used, or one of a stream it left: nothing is refused,
    and the venue's words are logged, not dropped without a trace."""
    rec = Recorder()
    md = manager(rec)
    subscribed(md, rec, "client", {"book"})
    with structlog.testing.capture_logs() as logs:
        md.on_reject(
            MarketDataRejectReport(
                md_req_id="not-ours", reason=MdRejectReason.OTHER, text="no such", ts=utc_now()
            )
        )
    [said] = [e for e in logs if e.get("md_req_id") == "not-ours"]
    assert (said["reason"], said["text"], said["log_level"]) == (
        MdRejectReason.OTHER,
        "no such",
        "info",
    )
    assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]


def test_a_last_trade_is_a_reference_only_while_its_stream_is_live_and_it_is_recent() -> None:
    rec = Recorder()
    md = manager(rec, stale_after_s=5)
    subscribed(md, rec, "client", {"book", "trades"})
    assert md.reference_price("BTC/USD") == D(100)  # the mid, with no trade yet
    trade(md, rec, "150")
    assert md.reference_price("BTC/USD") == D(150)
    # older than stale_after_s: the mid of the live book again
    assert md.reference_price("BTC/USD", now=time.monotonic() + 6) == D(100)
    md.on_session_down()
    assert md.reference_price("BTC/USD") is None
    md.on_session_up()  # asked again: nothing is known until the exchange answers
    assert md.reference_price("BTC/USD") is None
    for request in rec.requests[-2:]:
        snapshot_for(md, request)
    assert md.reference_price("BTC/USD") == D(100)  # the trade before the outage is gone
    trade(md, rec, "150")
    md.unsubscribe("client", "BTC/USD", {"book", "trades"})
    assert md.reference_price("BTC/USD") is None
    subscribed(md, rec, "client", {"trades"})
    assert md.reference_price("BTC/USD") is None  # not the trade from the stream that ended


def test_a_request_given_up_before_its_answer_is_unsubscribed_at_its_first_update() -> None:
    """A venue that answers with incremental refreshes only (no W first): the request the
    client gave up on was never unsubscribed, and its X came for ever."""
    rec = Recorder()
    md = manager(rec)

    async def give_up() -> None:
        with pytest.raises(RequestError):
            await md.subscribe("client", "BTC/USD", {"book"}, within_s=0.01)

    asyncio.run(give_up())
    [asked] = subscribes(rec)
    md.on_update(update(asked.md_req_id, (LevelAction.NEW, BookSide.BID, D(99), D(1))))
    assert [(r.subscription, r.md_req_id) for r in rec.requests[1:]] == [
        (MdSubscription.UNSUBSCRIBE, asked.md_req_id)
    ]
    assert md.books["BTC/USD"].levels() == ([], [])


def test_a_failed_resubscribe_leaves_the_streams_the_client_already_had() -> None:
    rec = Recorder()
    md = manager(rec)
    subscribed(md, rec, "client", {"book"})
    book_id = rec.requests[-1].md_req_id

    async def resubscribe() -> None:
        task = asyncio.ensure_future(md.subscribe("client", "BTC/USD", {"book", "trades"}, 5))
        await asyncio.sleep(0)
        reject(md, rec.requests[-1])  # the trades request
        with pytest.raises(RequestError):
            await task

    asyncio.run(resubscribe())
    assert md.subscriptions_of("client") == [("BTC/USD", "book")]
    assert md.status()["BTC/USD:book"] == StreamState(
        clients=1, live=True, md_req_id=book_id, state="live", next_request_at=None
    )
    assert not [r for r in rec.requests if r.subscription is MdSubscription.UNSUBSCRIBE]


def test_a_refused_hold_is_asked_for_again_with_backoff_and_at_logon() -> None:
    rec = Recorder()
    md = manager(rec)
    md.hold("risk", "BTC/USD", {"book"})

    def refused() -> tuple[float, float]:
        before = time.monotonic()
        reject(md, rec.requests[-1])
        return before, time.monotonic()

    before, after = refused()
    assert type(rec.events[-1]).__name__ == "MarketDataRejected"
    waiting = md.status()["BTC/USD:book"]
    assert (waiting.state, waiting.clients, waiting.live) == ("backing_off", 1, False)
    assert waiting.next_request_at is not None
    assert 0.5 < (waiting.next_request_at - utc_now()).total_seconds() <= 1
    asked = len(rec.requests)
    md.check_staleness(now=before + 0.9)
    assert len(rec.requests) == asked
    md.check_staleness(now=after + 1.01)
    assert rec.requests[-1].subscription is MdSubscription.SUBSCRIBE
    assert len(rec.requests) == asked + 1
    before, after = refused()  # again: the wait doubles
    md.check_staleness(now=after + 1.5)
    assert len(rec.requests) == asked + 1
    md.check_staleness(now=after + 2.01)
    assert len(rec.requests) == asked + 2
    refused()
    md.on_session_down()
    md.on_session_up()  # a logon asks at once
    assert len(rec.requests) == asked + 3
    snapshot_for(md, rec.requests[-1])
    assert md.status()["BTC/USD:book"].live
    assert md.reference_price("BTC/USD") == D(100)
    refused()  # live in between: back to the first wait
    md.check_staleness(now=time.monotonic() + 1.01)
    assert len(rec.requests) == asked + 4
    refused()
    md.release("risk", "BTC/USD", {"book"})
    md.check_staleness(now=time.monotonic() + 100)
    assert len(rec.requests) == asked + 4  # released: no longer asked for


# ------------------------------------------------------------ asking afresh, with back-off


def subscribes(rec: Recorder) -> list[RequestMarketData]:
    return [r for r in rec.requests if r.subscription is MdSubscription.SUBSCRIBE]


def unreadable(md: MarketData, request: RequestMarketData) -> tuple[float, float]:
    """A message of `request` the venue's reader could not read: (before, after)."""
    before = time.monotonic()
    assert md.ask_again(request.md_req_id, "MDEntryType (269) has no value 'Z'")
    return before, time.monotonic()


def test_a_stream_whose_answers_cannot_be_read_is_asked_again_less_and_less_often() -> None:
    rec = Recorder()
    md = manager(rec, stale_after_s=0)
    md.hold("risk", "BTC/USD", {"book"})
    for wait in (1, 2, 4, 8, 16, 32, 60, 60):
        asked = subscribes(rec)[-1]
        before, after = unreadable(md, asked)
        # the venue answered it, so its subscription there is ended
        assert (rec.requests[-1].subscription, rec.requests[-1].md_req_id) == (
            MdSubscription.UNSUBSCRIBE,
            asked.md_req_id,
        )
        md.check_staleness(now=before + wait - 0.1)
        assert subscribes(rec)[-1] is asked, f"asked again before {wait}s"
        md.check_staleness(now=after + wait)
        assert subscribes(rec)[-1] is not asked, f"not asked again after {wait}s"
    assert type(rec.events[-1]).__name__ == "BookStale"
    snapshot_for(md, subscribes(rec)[-1])
    assert md.reference_price("BTC/USD") == D(100)


def test_a_live_book_that_breaks_is_asked_for_at_once_then_with_back_off() -> None:
    rec = Recorder()
    md, first_id = live_book(rec)
    crossing = (LevelAction.NEW, BookSide.BID, D(102), D(1))
    md.on_update(update(first_id, crossing))
    assert len(subscribes(rec)) == 2  # at once: the first trouble
    snapshot_for(md, subscribes(rec)[-1])
    before = time.monotonic()
    md.on_update(update(subscribes(rec)[-1].md_req_id, crossing))
    assert len(subscribes(rec)) == 2  # again within a minute: after a second
    md.check_staleness(now=before + 0.9)
    assert len(subscribes(rec)) == 2
    md.check_staleness(now=time.monotonic() + 1)
    assert len(subscribes(rec)) == 3
    snapshot_for(md, subscribes(rec)[-1])
    # a minute live without trouble: at once again
    md.check_staleness(now=time.monotonic() + 61)  # silent too long, too
    assert len(subscribes(rec)) == 4


def kinds(rec: Recorder) -> list[str]:
    return [type(e).__name__ for e in rec.events]


def test_a_quiet_book_is_asked_for_afresh_while_it_is_served_and_never_backed_off() -> None:
    """A venue sends incrementals only on change: silence is no trouble. A book silent for
    `stale_after_s` (5) is asked for afresh at once, every time, and served meanwhile: no
    md.stale, `book` and the reference price from what it holds, a new client not kept
    waiting; what its old request still sends is dropped, and the answer replaces it."""
    rec = Recorder()
    md, _ = live_book(rec)
    for _ in range(8):  # well past the back-off's second step, were silence trouble
        asked = subscribes(rec)[-1]
        md.check_staleness(now=time.monotonic() + 5.1)
        unsubscribe, refresh = rec.requests[-2:]
        assert (unsubscribe.subscription, unsubscribe.md_req_id) == (
            MdSubscription.UNSUBSCRIBE,
            asked.md_req_id,
        )
        assert refresh.subscription is MdSubscription.SUBSCRIBE
        assert refresh.md_req_id != asked.md_req_id
        assert "BookStale" not in kinds(rec)
        assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]
        assert md.reference_price("BTC/USD") == D(100)
        assert md.status()["BTC/USD:book"].state == "live"
        asyncio.run(md.subscribe("late", "BTC/USD", {"book"}, within_s=0.05))  # not waiting
        md.on_update(update(asked.md_req_id, (LevelAction.NEW, BookSide.BID, D(98), D(1))))
        assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]
        snapshot_for(md, refresh)
        md.check_staleness(now=time.monotonic() + 4.9)  # answered: quiet again from here
        assert subscribes(rec)[-1] is refresh
    assert "BookStale" not in kinds(rec)
    assert kinds(rec).count("BookSnapshot") == 9
    assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]


def test_a_refresh_that_goes_unanswered_makes_the_book_stale_then_backs_off() -> None:
    """The quiet book's fresh request unanswered for `stale_after_s` as well: the feed may
    have died, so the book is stale and asked for again, at once the first time; a venue that
    keeps not answering is asked less and less often, as ever."""
    rec = Recorder()
    md, _ = live_book(rec)
    asked_at = time.monotonic() + 5.1
    md.check_staleness(now=asked_at)
    refresh = subscribes(rec)[-1]
    md.check_staleness(now=asked_at + 5)
    assert "BookStale" not in kinds(rec)
    assert md.book_levels("BTC/USD", 0).asks == [(D(101), D(1))]
    md.check_staleness(now=asked_at + 5.1)
    stale = rec.events[-1]
    assert type(stale).__name__ == "BookStale"
    assert stale.reason == (  # type: ignore[attr-defined]
        "no update for 5s, and no answer to the request for a fresh snapshot for 5s"
    )
    again = subscribes(rec)[-1]
    assert again is not refresh  # at once
    with pytest.raises(RequestError) as refused:
        md.book_levels("BTC/USD", 0)
    assert refused.value.code == "not_subscribed"
    assert md.reference_price("BTC/USD") is None
    before = time.monotonic()
    md.check_staleness(now=before + 5.1)  # unanswered again: after a back-off of 1 s
    assert subscribes(rec)[-1] is again
    md.check_staleness(now=before + 5.1 + 0.9)
    assert subscribes(rec)[-1] is again
    md.check_staleness(now=time.monotonic() + 5.1 + 1)
    assert subscribes(rec)[-1] is not again
    snapshot_for(md, subscribes(rec)[-1])
    assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]


def test_a_quiet_book_refreshed_for_a_minute_is_asked_for_at_once_at_its_next_trouble() -> None:
    """The minute live that ends a back-off runs through a quiet book's refreshes."""
    rec = Recorder()
    md, first_id = live_book(rec)
    crossing = (LevelAction.NEW, BookSide.BID, D(102), D(1))
    md.on_update(update(first_id, crossing))  # trouble: asked at once
    snapshot_for(md, subscribes(rec)[-1])
    now = time.monotonic()
    while now < time.monotonic() + 61:
        now += 5.1
        md.check_staleness(now=now)
        snapshot_for(md, subscribes(rec)[-1])
    asked = len(subscribes(rec))
    md.check_staleness(now=now + 5.1)  # quiet: refreshed, and not answered
    md.check_staleness(now=now + 10.2)
    assert type(rec.events[-1]).__name__ == "BookStale"
    assert len(subscribes(rec)) == asked + 2  # the refresh, then at once: no back-off


def test_book_while_the_snapshot_is_awaited_names_the_event_that_brings_it() -> None:
    rec = Recorder()
    md = manager(rec)
    md.hold("risk", "BTC/USD", {"book"})
    with pytest.raises(RequestError) as refused:
        md.book_levels("BTC/USD", 0)
    assert (refused.value.code, str(refused.value)) == (
        "not_subscribed",
        "no live book for BTC/USD now: subscribed, and its snapshot is awaited from the "
        "exchange (md.snapshot follows it)",
    )


def test_a_client_does_not_cut_a_back_off_short() -> None:
    rec = Recorder()
    md = manager(rec, stale_after_s=0)
    md.hold("risk", "BTC/USD", {"book"})
    before, after = unreadable(md, subscribes(rec)[-1])

    async def scenario() -> None:
        task = asyncio.ensure_future(md.subscribe("client", "BTC/USD", {"book"}, within_s=5))
        await asyncio.sleep(0)
        md.check_staleness(now=before + 0.9)
        assert len(subscribes(rec)) == 1
        md.check_staleness(now=after + 1)
        assert len(subscribes(rec)) == 2
        snapshot_for(md, subscribes(rec)[-1])
        await task

    asyncio.run(scenario())
    assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]


def test_what_a_venue_passes_over_is_logged_once_per_kind_and_stream() -> None:
    rec = Recorder()
    md = manager(rec)
    md.hold("risk", "BTC/USD", {"book"})
    passed_over = ("MDEntryType 4 (opening price)", "an ask of size 0 (no level)")
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            md.on_snapshot(
                BookSnapshotReport(
                    md_req_id=subscribes(rec)[-1].md_req_id,
                    symbol="BTC/USD",
                    bids=[(D(99), D(1))],
                    asks=[(D(101), D(1))],
                    trades=[],
                    ts=utc_now(),
                    passed_over=passed_over,
                )
            )
            md.on_update(
                BookUpdateReport(
                    md_req_id=subscribes(rec)[-1].md_req_id,
                    levels={},
                    trades={},
                    ts=utc_now(),
                    passed_over=("MDEntryType B (trade volume)",),
                )
            )
            md.check_staleness(now=time.monotonic() + 100)  # asked afresh: the same stream
    assert len(subscribes(rec)) == 4
    logged = [e["passed_over"] for e in logs if "passed_over" in e]
    assert sorted(logged) == sorted([*passed_over, "MDEntryType B (trade volume)"])
    assert {e["log_level"] for e in logs if "passed_over" in e} == {"info"}
    assert md.books["BTC/USD"].levels() == ([(D(99), D(1))], [(D(101), D(1))])


def test_the_mid_keeps_every_digit_of_the_venue_s_prices() -> None:
    """The mid of a bid and an ask of 33 digits each (in 28 digits it moved by 1e-14, and a
    price band around it with it)."""
    rec = Recorder()
    md = manager(rec)
    subscribed(md, rec, "client", {"book"})
    bid, ask = D("123456789012345.123456789012345678"), D("123456789012345.123456789012345681")
    md.on_snapshot(
        BookSnapshotReport(
            md_req_id=rec.requests[-1].md_req_id,
            symbol="BTC/USD",
            bids=[(bid, D(1))],
            asks=[(ask, D(1))],
            trades=[],
            ts=utc_now(),
        )
    )
    assert md.reference_price("BTC/USD") == D("123456789012345.1234567890123456795")


@pytest.mark.parametrize(("price", "size"), [("0", "1"), ("-150", "1"), ("150", "0")])
def test_a_trade_at_a_price_or_size_of_0_or_below_is_no_trade_and_its_stream_is_asked_again(
    price: str, size: str
) -> None:
    rec = Recorder()
    md = manager(rec)
    subscribed(md, rec, "client", {"book", "trades"})
    trade(md, rec, "150")
    asked = len(rec.requests)
    told = len(rec.events)
    trade(md, rec, price, size)
    assert [(type(e).__name__, getattr(e, "what", None)) for e in rec.events[told:]] == [
        ("BookStale", "trades")  # no md.trade; trades after it may be missed
    ]
    assert md.reference_price("BTC/USD") == D(100)  # the mid: the last trade is not known
    assert [(r.subscription, r.kinds) for r in rec.requests[asked:]] == [
        (MdSubscription.UNSUBSCRIBE, (MdEntryKind.TRADE,)),
        (MdSubscription.SUBSCRIBE, (MdEntryKind.TRADE,)),
    ]


def test_the_clients_of_a_stream_the_exchange_ends_are_told_but_not_one_waiting_for_it() -> None:
    """A client waiting for the stream has its `subscribe` fail instead (and keeps what it
    had); a holder asks again."""
    rec = Recorder()
    md = manager(rec)
    told: list[tuple[object, str, str]] = []
    md.refused_clients = lambda *client_symbol_what: told.append(client_symbol_what)
    subscribed(md, rec, "held it", {"book"})
    md.hold("risk", "BTC/USD", {"book"})
    md.on_update(update(rec.requests[-1].md_req_id, (LevelAction.NEW, BookSide.BID, D(102), D(1))))

    async def join_then_refused() -> None:
        task = asyncio.ensure_future(md.subscribe("joining", "BTC/USD", {"book"}, 5))
        await asyncio.sleep(0)
        reject(md, rec.requests[-1])  # the request asking for the crossed book afresh
        with pytest.raises(RequestError):
            await task

    asyncio.run(join_then_refused())
    assert told == [("held it", "BTC/USD", "book")]
    assert [type(e).__name__ for e in rec.events][-1] == "MarketDataRejected"


def stale_trades(rec: Recorder) -> list[Event]:
    return [e for e in rec.events if type(e).__name__ == "BookStale" and e.what == "trades"]  # type: ignore[attr-defined]


def test_a_trades_request_unanswered_after_a_reconnect_is_asked_again_with_back_off() -> None:
    """A live trades stream may be silent (nothing trades); a request with no answer may not."""
    rec = Recorder()
    md = manager(rec, stale_after_s=5)
    md.hold("risk", "BTC/USD", {"trades"})
    snapshot_for(md, subscribes(rec)[-1])
    md.check_staleness(now=time.monotonic() + 100)
    assert len(subscribes(rec)) == 1  # live and quiet: not asked again
    md.on_session_down()
    md.on_session_up()
    unanswered = subscribes(rec)[-1]
    asked_at = time.monotonic()
    md.check_staleness(now=asked_at + 4.9)
    assert subscribes(rec)[-1] is unanswered
    md.check_staleness(now=asked_at + 5.1)
    assert [e.reason for e in stale_trades(rec)] == [  # type: ignore[attr-defined]
        "exchange session down",
        "no answer to the request for 5s",
    ]
    assert md.status()["BTC/USD:trades"].state == "backing_off"
    md.check_staleness(now=asked_at + 6)
    assert len(subscribes(rec)) == 2
    md.check_staleness(now=asked_at + 6.2)
    assert len(subscribes(rec)) == 3
    snapshot_for(md, subscribes(rec)[-1])
    assert md.status()["BTC/USD:trades"].state == "live"
    assert [r.md_req_id for r in rec.requests if r.subscription is MdSubscription.UNSUBSCRIBE] == []


def test_a_trades_request_the_exchange_never_got_is_asked_again_at_once_then_with_back_off() -> (
    None
):
    """Gap filled when the exchange asked for it again: it never had it, so no unsubscribe."""
    rec = Recorder()
    md = manager(rec, stale_after_s=0)
    md.hold("risk", "BTC/USD", {"trades"})
    snapshot_for(md, subscribes(rec)[-1])
    md.on_session_down()
    md.on_session_up()
    md.not_delivered(subscribes(rec)[-1].md_req_id)
    assert len(subscribes(rec)) == 3  # at once
    assert len(stale_trades(rec)) == 2  # the session down, the request gap filled
    lost_again = time.monotonic()
    md.not_delivered(subscribes(rec)[-1].md_req_id)
    assert len(subscribes(rec)) == 3  # again: after the back-off
    md.check_staleness(now=lost_again + 0.9)
    assert len(subscribes(rec)) == 3
    md.check_staleness(now=time.monotonic() + 1)
    assert len(subscribes(rec)) == 4
    assert [r for r in rec.requests if r.subscription is MdSubscription.UNSUBSCRIBE] == []


def unsubscribed(rec: Recorder) -> list[str]:
    return [r.md_req_id for r in rec.requests if r.subscription is MdSubscription.UNSUBSCRIBE]


def trade_under(md_req_id: str, price: str) -> BookUpdateReport:
    """An X of one trade under `md_req_id`."""
    return BookUpdateReport(
        md_req_id=md_req_id,
        levels={},
        trades={"BTC/USD": [Trade(price=D(price), size=D(1), aggressor=None)]},
        ts=utc_now(),
    )


def trades_given_up_unanswered(rec: Recorder) -> tuple[MarketData, RequestMarketData, float]:
    """A held trades stream whose request went unanswered for `stale_after_s` (5): given up,
    to be asked again after a back-off of 1 s. (The manager, the request given up, when.)"""
    md = manager(rec, stale_after_s=5)
    md.hold("risk", "BTC/USD", {"trades"})
    [given_up] = subscribes(rec)
    now = time.monotonic() + 5.1
    md.check_staleness(now=now)
    assert md.status()["BTC/USD:trades"].state == "backing_off"
    return md, given_up, now


def test_a_late_answer_to_a_trades_request_given_up_ends_it_and_not_the_one_asked_since() -> None:
    """An unsubscribe names the MDReqID it ends (FIX 4.4): the stream asked again under
    another, and the late answer had that one unsubscribed, its trades never told again."""
    rec = Recorder()
    md, given_up, now = trades_given_up_unanswered(rec)
    md.check_staleness(now=now + 1.1)
    asked_again = subscribes(rec)[-1]
    snapshot_for(md, asked_again)
    snapshot_for(md, given_up)  # the venue's answer to the first request, at last
    assert unsubscribed(rec) == [given_up.md_req_id]
    status = md.status()["BTC/USD:trades"]
    assert (status.state, status.md_req_id) == ("live", asked_again.md_req_id)
    md.on_update(trade_under(given_up.md_req_id, "140"))
    md.on_update(trade_under(asked_again.md_req_id, "150"))
    assert [e.price for e in rec.events if type(e).__name__ == "TradeReported"] == [D(150)]  # type: ignore[attr-defined]


def test_a_late_answer_to_a_trades_request_given_up_during_its_back_off_ends_it() -> None:
    """The stream has no request while it waits: the answer's MDReqID is the one ended."""
    rec = Recorder()
    md, given_up, now = trades_given_up_unanswered(rec)
    with structlog.testing.capture_logs() as logs:
        snapshot_for(md, given_up)
        md.on_update(trade_under(given_up.md_req_id, "150"))  # unsubscribed once already
    assert unsubscribed(rec) == [given_up.md_req_id]
    assert not [e for e in logs if e["log_level"] == "error"]
    md.check_staleness(now=now + 1.1)
    snapshot_for(md, subscribes(rec)[-1])
    assert md.status()["BTC/USD:trades"].state == "live"
    assert unsubscribed(rec) == [given_up.md_req_id]


def test_a_trades_request_answered_with_incremental_refreshes_alone_is_live_at_the_first() -> None:
    """A venue that sends no W of trades: its first X is the answer, its trades told, and
    the request is never given up and asked again in a loop."""
    rec = Recorder()
    md = manager(rec, stale_after_s=5)

    async def subscribe() -> None:
        task = asyncio.ensure_future(md.subscribe("client", "BTC/USD", {"trades"}, within_s=5))
        await asyncio.sleep(0)
        trade(md, rec, "150")
        await task

    asyncio.run(subscribe())
    assert md.status()["BTC/USD:trades"].state == "live"
    assert [e.price for e in rec.events if type(e).__name__ == "TradeReported"] == [D(150)]  # type: ignore[attr-defined]
    assert md.reference_price("BTC/USD") == D(150)
    md.check_staleness(now=time.monotonic() + 100)
    assert len(subscribes(rec)) == 1
    assert stale_trades(rec) == []


def test_trades_clients_are_told_when_the_exchange_skips_messages_or_the_session_drops() -> None:
    """A message skipped may have carried trades, lost for good: told as a book's clients
    are, the trades stream carrying on (asking again brings none back)."""
    rec = Recorder()
    md = manager(rec)
    subscribed(md, rec, "client", {"book", "trades"})
    trades_request = subscribes(rec)[-1]
    md.messages_skipped("SequenceReset skipped 7-8")
    assert [(e.what, e.reason) for e in stale_trades(rec)] == [  # type: ignore[attr-defined]
        ("trades", "SequenceReset skipped 7-8")
    ]
    status = md.status()["BTC/USD:trades"]
    assert (status.state, status.md_req_id) == ("live", trades_request.md_req_id)
    assert trades_request.md_req_id not in unsubscribed(rec)
    md.on_session_down()
    assert [e.reason for e in stale_trades(rec)][-1] == "exchange session down"  # type: ignore[attr-defined]
    assert len(stale_trades(rec)) == 2


def test_a_client_that_leaves_a_stream_when_told_the_exchange_ended_it_sends_no_unsubscribe() -> (
    None
):
    """As the FIX bridge does on `md.rejected`: the request is over at the exchange."""
    rec = Recorder()
    md = manager(rec)

    def told(event: Event) -> None:
        rec.events.append(event)
        if type(event).__name__ == "MarketDataRejected":
            md.unsubscribe("oms", "BTC/USD", {"book"})

    md._publish = told
    subscribed(md, rec, "oms", {"book"})
    reject(md, subscribes(rec)[-1])
    assert [r for r in rec.requests if r.subscription is MdSubscription.UNSUBSCRIBE] == []
    assert md.status() == {}


def test_an_oms_subscription_that_reuses_an_ended_ones_md_req_id_holds_the_book_on_its_own() -> (
    None
):
    """The OMS ends its subscription `R` while the first snapshot is awaited and at once asks
    again under `R` (FIX bridge): the new one joins the stream before the ended one's wait has
    unwound, which then takes only its own hold off the stream."""
    rec = Recorder()
    md = manager(rec)
    ended = _MdSubscription("OMS", "R", "BTC/USD", 0)
    again = _MdSubscription("OMS", "R", "BTC/USD", 0)

    async def scenario() -> None:
        first = asyncio.ensure_future(md.subscribe(ended.holder, "BTC/USD", {"book"}, 5))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(md.subscribe(again.holder, "BTC/USD", {"book"}, 5))
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert md.subscriptions_of(again.holder) == [("BTC/USD", "book")]
        assert len(subscribes(rec)) == 1
        snapshot_for(md, subscribes(rec)[-1])
        await second

    asyncio.run(scenario())
    assert md.book_levels("BTC/USD", 0).bids == [(D(99), D(1))]
    assert [r for r in rec.requests if r.subscription is MdSubscription.UNSUBSCRIBE] == []
