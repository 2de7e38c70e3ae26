"""Market data on NATS, as a consumer on another host keeps a book from it: whatever the
gateway could not publish (before its first connection, while the broker was away, while
its publisher process started again, a line larger than the broker takes), the consumer's
book ends equal to the gateway's `book`, or the consumer is told (`md.stale`) that it is
not. A real nats-server, simulator and gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest

from fixgw.api.client import apply_market_data
from fixgw.marketdata.book import OrderBook
from fixgw.testing import LocalStack, NatsServer, wait_until
from tests.integration.conftest import StackFactory
from tests.integration.faultproxy import FaultProxy
from tests.integration.test_journal_damage import fixgw
from tests.integration.test_nats import gateway_log, gateway_pid, publisher_processes

pytestmark = [pytest.mark.integration, pytest.mark.nats]

GATEWAY = "acct-1"
SYMBOL = "BTC/USD"
BOOK_SUBJECT = f"fixgw.{GATEWAY}.md.{SYMBOL}.book"
BOOKS = {
    "BTC/USD": {
        "bids": [["29990", "1.5"], ["29980", "3"]],
        "asks": [["30010", "1.2"], ["30020", "2.5"]],
    },
    "LTC/USD": {"bids": [["90", "10"]], "asks": [["91", "10"]]},
}
FAST_RECONNECT = {"floor_s": 0.2, "ceiling_s": 0.5, "factor": 2, "jitter": 0}


def nats_section(broker: NatsServer, **more: Any) -> dict[str, Any]:
    return {"servers": [broker.url], "gateway": GATEWAY, "market_data": [SYMBOL], **more}


class BookConsumer:
    """A book kept from the book subject alone, as docs/nats.md says: an `md.snapshot`
    replaces it, an `md.delta` changes it, an `md.stale` says it is not to be trusted
    until the next snapshot."""

    def __init__(self) -> None:
        self.book = OrderBook(SYMBOL)
        self.trusted = False
        self.seq = 0
        self.received: list[dict[str, Any]] = []

    def start_from(self, reply: dict[str, Any]) -> None:
        """`book` over cmd (depth 0): the book as of its `seq`."""
        apply_market_data(self.book, reply)
        self.seq, self.trusted = reply["seq"], True

    async def on_message(self, msg: Any) -> None:
        event = json.loads(msg.data)
        self.received.append(event)
        if event["seq"] < self.seq:
            return
        if event["type"] == "md.stale":
            self.trusted = False
        elif event["type"] == "md.snapshot":
            self.trusted = True
        elif event["type"] == "md.delta" and event["seq"] == self.seq:
            return
        if self.trusted:
            apply_market_data(self.book, event)
            self.seq = event["seq"]

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        bids, asks = self.book.levels()
        return _plain(bids), _plain(asks)


def _plain(levels: Any) -> list[list[str]]:
    return [[f"{Decimal(p).normalize():f}", f"{Decimal(s).normalize():f}"] for p, s in levels]


def gateway_book(stack: LocalStack) -> tuple[list[list[str]], list[list[str]]]:
    with stack.client() as gw:
        book = gw.request("book", symbol=SYMBOL, depth=0)
    return _plain(book["bids"]), _plain(book["asks"])


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def place(stack: LocalStack, price: str, qty: str = "0.1", symbol: str = SYMBOL) -> str:
    with stack.client() as gw:
        reply = gw.request(
            "new_order", symbol=symbol, side="buy", type="limit", qty=qty, price=price
        )
    return str(reply["cl_ord_id"])


async def book_true(stack: LocalStack, consumer: BookConsumer, within_s: float = 10) -> None:
    """Until the consumer's book, trusted, is the gateway's; else what each holds."""
    deadline = time.monotonic() + within_s
    while True:
        theirs = await asyncio.to_thread(gateway_book, stack)
        if consumer.trusted and consumer.levels() == theirs:
            return
        if time.monotonic() > deadline:
            kinds = [(e["seq"], e["type"]) for e in consumer.received]
            raise AssertionError(
                f"consumer (trusted: {consumer.trusted}) {consumer.levels()} != gateway "
                f"{theirs}; it received {kinds}"
            )
        await asyncio.sleep(0.2)


def live_and_connected(stack: LocalStack) -> bool:
    status = stack.status()
    book = status["market_data"].get(f"{SYMBOL}:book", {})
    return bool(status["nats"]["connected"]) and book.get("state") == "live"


def test_a_consumer_listening_before_the_gateway_starts_gets_its_first_book(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """The exchange's first snapshot comes before the gateway's first connection to the
    broker: the connection starts with the book, so a consumer that listened from the start
    keeps a true book from the subject alone."""
    stack = make_stack(
        start=False, books=BOOKS, nats=nats_section(broker, reconnect=FAST_RECONNECT)
    )

    async def scenario() -> None:
        consumer = BookConsumer()
        nc = await nats.connect(broker.url)
        await nc.subscribe(BOOK_SUBJECT, cb=consumer.on_message)
        await nc.flush()
        await asyncio.to_thread(stack.start_sim)
        await asyncio.to_thread(stack.start_gateway)
        await asyncio.to_thread(wait_until, lambda: live_and_connected(stack), 30, "live")
        await asyncio.to_thread(place, stack, "29995")
        await book_true(stack, consumer)
        assert consumer.received[0]["type"] == "md.snapshot", consumer.received
        await nc.close()

    asyncio.run(scenario())


def test_after_the_gateway_lost_the_broker_the_consumer_gets_the_book_it_missed(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """The gateway's connection to the broker is lost (a proxy between them drops it and
    refuses new ones; the consumer, connected to the broker itself, stays), and the book
    changes meanwhile: once the gateway is connected again, a fresh `md.snapshot` comes
    before any further delta, and the consumer's book is the gateway's again, without
    another change to the book."""
    proxy = FaultProxy(broker.port)
    section = nats_section(broker, reconnect=FAST_RECONNECT)
    section["servers"] = [f"nats://127.0.0.1:{proxy.port}"]
    try:
        stack = make_stack(books=BOOKS, nats=section)
        wait_until(lambda: live_and_connected(stack), 30, "the book live and NATS connected")
        asyncio.run(_across_a_lost_connection(stack, broker, proxy))
    finally:
        proxy.close()


async def consuming(broker: NatsServer) -> tuple[BookConsumer, Any]:
    """A consumer as nats.md has one start: subscribed to the book's subject, then the book
    asked for over cmd (depth 0), the events after its seq applied on top."""
    consumer = BookConsumer()
    nc = await nats.connect(broker.url)
    await nc.subscribe(BOOK_SUBJECT, cb=consumer.on_message)
    await nc.flush()
    reply = await nc.request(
        f"fixgw.{GATEWAY}.cmd",
        json.dumps({"id": 1, "op": "book", "symbol": SYMBOL, "depth": 0}).encode(),
        timeout=5,
    )
    consumer.start_from(json.loads(reply.data)["result"])
    return consumer, nc


async def _across_a_lost_connection(
    stack: LocalStack, broker: NatsServer, proxy: FaultProxy
) -> None:
    consumer, nc = await consuming(broker)
    resting = await asyncio.to_thread(place, stack, "29995")
    await book_true(stack, consumer)
    seen = len(consumer.received)

    proxy.refusing = True
    proxy.drop()
    await asyncio.to_thread(
        wait_until, lambda: not stack.status()["nats"]["connected"], 10, "the broker lost"
    )
    await asyncio.to_thread(place, stack, "29996", "0.2")
    with stack.client() as gw:
        await asyncio.to_thread(gw.request, "cancel_order", cl_ord_id=resting)
    await asyncio.sleep(0.5)
    assert consumer.received[seen:] == []
    proxy.refusing = False
    await asyncio.to_thread(
        wait_until, lambda: stack.status()["nats"]["connected"], 20, "the gateway back"
    )
    await book_true(stack, consumer)
    after = [e["type"] for e in consumer.received[seen:]]
    assert after == ["md.snapshot"], after
    await asyncio.to_thread(place, stack, "29997", "0.3")
    await book_true(stack, consumer)
    await nc.close()


def test_market_data_goes_on_while_the_publisher_process_starts_again(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """Market data goes out on the gateway's own connection: the publisher process (events)
    killed and not yet started again takes nothing from it."""
    slow_restart = {"floor_s": 3, "ceiling_s": 3, "factor": 1, "jitter": 0}
    stack = make_stack(books=BOOKS, nats=nats_section(broker, reconnect=slow_restart))
    wait_until(lambda: live_and_connected(stack), 30, "the book live and NATS connected")

    async def scenario() -> None:
        consumer, nc = await consuming(broker)
        (publisher,) = publisher_processes(gateway_pid(stack))
        os.kill(publisher, signal.SIGKILL)
        await asyncio.to_thread(
            wait_until,
            lambda: not stack.status()["nats"]["connected"],
            10,
            "the publisher process's death noticed",
        )
        seen = len(consumer.received)
        await asyncio.to_thread(place, stack, "29996", "0.2")
        await until(lambda: len(consumer.received) > seen, 2, "the delta, publisher down")
        assert [e["type"] for e in consumer.received[seen:]] == ["md.delta"]
        await book_true(stack, consumer, within_s=2)
        await nc.close()

    asyncio.run(scenario())


def test_a_line_larger_than_the_broker_takes_is_told_and_the_others_go_on(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """A broker with max_payload 4096, a book of 150 levels a side: its snapshot (the
    connection's first, and the quiet-book refresh after `stale_after_s`) cannot be
    published. Its consumers get `md.stale` saying why, the gateway logs it, and every
    symbol's market data goes on (the sending task does not die)."""
    broker = NatsServer(tmp_path / "small-nats", config="max_payload: 4096\n")
    broker.start()
    try:
        deep = {
            "BTC/USD": {
                "bids": [[str(20000 + i), "1"] for i in range(150)],
                "asks": [[str(31000 + i), "1"] for i in range(150)],
            },
            "LTC/USD": BOOKS["LTC/USD"],
        }
        nats_config = nats_section(broker, reconnect=FAST_RECONNECT)
        nats_config["market_data"] = ["BTC/USD", "LTC/USD"]

        async def scenario() -> None:
            received: list[tuple[str, dict[str, Any]]] = []

            async def on_md(msg: Any) -> None:
                received.append((msg.subject.split(".")[3], json.loads(msg.data)))

            nc = await nats.connect(broker.url)
            await nc.subscribe(f"fixgw.{GATEWAY}.md.*.book", cb=on_md)
            await nc.flush()
            stack = await asyncio.to_thread(
                make_stack, books=deep, nats=nats_config, market_data={"stale_after_s": 2}
            )
            await asyncio.to_thread(
                wait_until, lambda: live_and_connected(stack), 30, "the book live"
            )
            await asyncio.sleep(5)  # BTC/USD quiet for stale_after_s: its refresh refused
            seen = len(received)
            await asyncio.to_thread(place, stack, "89", "1", "LTC/USD")
            await asyncio.to_thread(place, stack, "29000", "1")
            await until(
                lambda: (
                    {s for s, e in received[seen:] if e["type"] == "md.delta"}
                    == {"BTC/USD", "LTC/USD"}
                ),
                5,
                "a delta of each symbol after the refused line",
            )
            stale = [e["reason"] for s, e in received if s == "BTC/USD" and e["type"] == "md.stale"]
            assert stale and all("max_payload" in r or "payload" in r for r in stale), stale
            assert "nats market data line refused" in gateway_log(stack)
            assert stack.status()["nats"]["connected"]
            await nc.close()

        asyncio.run(scenario())
    finally:
        broker.stop()


def test_over_nats_book_and_md_watch_say_what_to_do_there(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """NATS serves no md_subscribe: `book` of a symbol nobody holds names
    `nats.market_data`, not md_subscribe, and `fixgw --nats ... md watch` is refused before
    it connects, saying where the book is on NATS (exit status 2, a bad command line)."""
    stack = make_stack(books=BOOKS, nats=nats_section(broker))
    wait_until(lambda: live_and_connected(stack), 30, "the book live and NATS connected")

    async def book_of(symbol: str) -> dict[str, Any]:
        nc = await nats.connect(broker.url)
        request = {"id": 1, "op": "book", "symbol": symbol, "depth": 0}
        reply = await nc.request(f"fixgw.{GATEWAY}.cmd", json.dumps(request).encode(), timeout=5)
        await nc.close()
        return dict(json.loads(reply.data))

    refused = asyncio.run(book_of("LTC/USD"))
    assert refused["error"]["code"] == "not_subscribed"
    assert "nats.market_data" in refused["error"]["message"]
    assert "md_subscribe" not in refused["error"]["message"]
    assert asyncio.run(book_of(SYMBOL))["ok"] is True

    watch = fixgw(stack, "--nats", broker.url, "--gateway", GATEWAY, "md", "watch", SYMBOL)
    assert watch.returncode == 2, (watch.returncode, watch.stderr)
    assert "md watch needs the gateway's socket" in watch.stderr
    assert f"md.{SYMBOL}.book" in watch.stderr and "unknown_op" not in watch.stderr
    assert len(watch.stderr.strip().splitlines()) == 1, watch.stderr
