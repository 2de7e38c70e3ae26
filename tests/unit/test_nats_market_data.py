"""What a NATS market-data consumer is told when lines did not go out (no NATS here: a fake
gateway and connection; the real ones are in integration/test_nats_market_data.py): the
queue's bound, and a line the broker refuses, each followed by what restores the truth
before anything else of that subject, the other subjects going on."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any, cast

import nats.errors
from nats.aio.client import Client as NatsConnection
from prometheus_client import CollectorRegistry, Counter
from structlog.testing import capture_logs

from fixgw.errors import RequestError
from fixgw.nats import market_data
from fixgw.nats.market_data import MarketDataPublisher
from fixgw.results import BookLevels

BOOK, TRADES, OTHER = "md.BTC.book", "md.BTC.trades", "md.LTC.book"
SUBJECTS = {BOOK: ("BTC/USD", "book"), TRADES: ("BTC/USD", "trades"), OTHER: ("LTC/USD", "book")}


class FakeGateway:
    def __init__(self) -> None:
        self.last_seq = 7
        self.live = True
        self.bids = [(Decimal("100"), Decimal("1"))]

    def book(self, symbol: str, depth: int) -> BookLevels:
        if not self.live:
            raise RequestError("not live", code="not_subscribed")
        return self.subscribed_book(symbol, depth)

    def subscribed_book(self, symbol: str, depth: int) -> BookLevels:
        return BookLevels(symbol=symbol, bids=self.bids, asks=[])


class FakeConnection:
    def __init__(self, max_payload: int = 1 << 20) -> None:
        self.is_connected = True
        self.max_payload = max_payload
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        if len(payload) > self.max_payload:
            raise nats.errors.MaxPayloadError
        self.sent.append((subject, json.loads(payload)))


def publisher(gateway: FakeGateway) -> tuple[MarketDataPublisher, Counter]:
    dropped = Counter("dropped", "dropped", registry=CollectorRegistry())
    return MarketDataPublisher(gateway, SUBJECTS, dropped), dropped


def line(seq: int, type_: str = "md.delta", **more: Any) -> bytes:
    return json.dumps({"seq": seq, "type": type_, **more}).encode() + b"\n"


def kinds(sent: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(subject, event["type"]) for subject, event in sent]


async def sent_by(md: MarketDataPublisher, nc: FakeConnection) -> None:
    task = asyncio.get_running_loop().create_task(md.send(cast(NatsConnection, nc)))
    await asyncio.sleep(0.05)
    assert not task.done(), task
    task.cancel()


def test_a_connection_starts_with_every_book_and_tells_the_trades_that_missed_some() -> None:
    gateway = FakeGateway()
    md, dropped = publisher(gateway)
    md.queue(TRADES, line(3, "md.trade"))  # before any connection: dropped
    nc = FakeConnection()
    md.resume(cast(NatsConnection, nc))
    md.queue(BOOK, line(8))
    asyncio.run(sent_by(md, nc))
    assert kinds(nc.sent) == [
        (BOOK, "md.snapshot"),
        (TRADES, "md.stale"),
        (OTHER, "md.snapshot"),
        (BOOK, "md.delta"),
    ]
    assert nc.sent[0][1]["bids"] == [["100", "1"]] and nc.sent[0][1]["seq"] == 7
    assert nc.sent[1][1]["what"] == "trades"
    assert dropped._value.get() == 1


def test_past_the_bound_what_waits_is_replaced_by_each_subjects_fresh_start(
    monkeypatch: Any,
) -> None:
    """The queue full (the broker slow to take lines): what waits is dropped, and each of
    its subjects starts again from the book as it is now (which holds the line that found
    the queue full), never with a delta missing."""
    monkeypatch.setattr(market_data, "MARKET_DATA_QUEUED_MAX", 3)
    gateway = FakeGateway()
    md, dropped = publisher(gateway)
    nc = FakeConnection()
    md.resume(cast(NatsConnection, nc))  # two snapshots wait, nothing sent yet
    md.queue(TRADES, line(8, "md.trade"))
    gateway.last_seq, gateway.bids = 9, [(Decimal("101"), Decimal("2"))]
    md.queue(BOOK, line(9))  # the fourth: past the bound
    asyncio.run(sent_by(md, nc))
    assert kinds(nc.sent) == [
        (BOOK, "md.snapshot"),
        (TRADES, "md.stale"),
        (OTHER, "md.snapshot"),
    ]
    assert nc.sent[0][1]["bids"] == [["101", "2"]] and nc.sent[0][1]["seq"] == 9
    assert "waited for the broker" in nc.sent[1][1]["reason"]
    assert dropped._value.get() == 4  # three waiting, and the book's delta in the snapshot


def test_a_line_the_broker_refuses_is_told_and_the_others_go_on() -> None:
    gateway = FakeGateway()
    md, dropped = publisher(gateway)
    nc = FakeConnection(max_payload=4096)
    md.resume(cast(NatsConnection, nc))
    with capture_logs() as logs:
        md.queue(BOOK, line(8, "md.snapshot", bids=[["1", "1"]] * 400, asks=[]))
        md.queue(OTHER, line(9))
        md.queue(BOOK, line(10))
        md.queue(BOOK, line(11, "md.snapshot", bids=[["1", "1"]] * 400, asks=[]))
        asyncio.run(sent_by(md, nc))
    assert kinds(nc.sent)[2:] == [
        (BOOK, "md.stale"),
        (OTHER, "md.delta"),
        (BOOK, "md.delta"),
        (BOOK, "md.stale"),
    ]
    assert "could not be published" in nc.sent[2][1]["reason"]
    refused = [x for x in logs if x["event"] == "nats market data line refused"]
    assert len(refused) == 1 and refused[0]["subject"] == BOOK  # at most once a minute
    assert dropped._value.get() == 2


def test_a_snapshot_larger_than_the_broker_takes_is_md_stale_and_a_book_not_live_too() -> None:
    gateway = FakeGateway()
    gateway.bids = [(Decimal(1000 + i), Decimal("1")) for i in range(400)]
    md, _ = publisher(gateway)
    md.queue(OTHER, line(3))
    small = FakeConnection(max_payload=4096)
    with capture_logs():
        md.resume(cast(NatsConnection, small))
    asyncio.run(sent_by(md, small))
    assert kinds(small.sent) == [(BOOK, "md.stale"), (OTHER, "md.stale")]
    assert "max_payload (4096 bytes)" in small.sent[0][1]["reason"]


def test_a_book_not_live_when_the_connection_starts_is_md_stale_if_it_missed_lines() -> None:
    gateway = FakeGateway()
    gateway.live = False
    md, _ = publisher(gateway)
    md.queue(BOOK, line(3, "md.stale", reason="session down"))
    nc = FakeConnection()
    md.resume(cast(NatsConnection, nc))
    asyncio.run(sent_by(md, nc))
    assert kinds(nc.sent) == [(BOOK, "md.stale")]  # the other book missed nothing
    assert "snapshot follows" in nc.sent[0][1]["reason"]
