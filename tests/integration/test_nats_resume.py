"""Resuming from a gateway seq over NATS (docs/nats.md, Consumers elsewhere): `fixgw events
--since SEQ` (NatsClient.subscribe) and `examples/nats_print_orders.py --after-seq SEQ` start
at the first event after SEQ, also when it reaches the stream while the consumer is being
made. A real nats-server; events published straight to the stream, as a gateway's are."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from fixgw.nats.client import NatsClient
from fixgw.nats.consumer import gateway_seq, stream_seq_after
from fixgw.testing import NatsServer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.nats]

GATEWAY = "gw1"  # as examples/nats_print_orders.py is run by its test
SUBJECT = f"fixgw.{GATEWAY}.ev.orders.BTC/USD"
EVENTS_MAX = 30_000


class Flow:
    """Order events published to the stream FIXGW in seq order from a thread of its own,
    5 every 5 ms; `acked` is the last seq the stream has acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._publish()), daemon=True)
        self._thread.start()
        wait_until(lambda: self.acked > 0, 20, "the first event in the stream")

    async def _publish(self) -> None:
        nc = await nats.connect(self.url)
        js = nc.jetstream()
        await js.add_stream(name="FIXGW", subjects=["fixgw.*.ev.>"])
        for seq in range(1, EVENTS_MAX + 1):
            if self._stop.is_set():
                break
            event = {"seq": seq, "type": "order.accepted", "cl_ord_id": f"c{seq}"}
            await js.publish(SUBJECT, json.dumps(event, separators=(",", ":")).encode())
            self.acked = seq
            if seq % 5 == 0:
                await asyncio.sleep(0.005)
        await nc.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def flow(broker: NatsServer) -> Iterator[Flow]:
    running = Flow(broker.url)
    yield running
    running.stop()


def test_events_since_a_seq_start_right_after_it_while_events_keep_coming(
    broker: NatsServer, flow: Flow
) -> None:
    """`since` is the newest event in the stream: the next one arrives while the consumer is
    made, and must be the first delivered."""
    firsts = []
    for _ in range(20):
        since = flow.acked
        with NatsClient.connect(broker.url, gateway=GATEWAY) as client:
            client.subscribe(["orders"], since=since)
            firsts.append((since, client.next_event(10)["seq"]))
    assert [first for _, first in firsts] == [since + 1 for since, _ in firsts]


def test_the_examples_consumer_after_the_newest_seq_gets_the_next_event(
    broker: NatsServer,
) -> None:
    """`nats_print_orders.py --after-seq` as the example makes its consumer, when nothing
    after the seq is in the stream yet: the event stored next, between the search and the
    consumer, is the first it gets (the example's own run: test_nats_examples.py)."""

    async def resume() -> int:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        await js.add_stream(name="FIXGW", subjects=["fixgw.*.ev.>"])
        for seq in (1, 2, 3):
            await js.publish(SUBJECT, b'{"seq":%d,"type":"order.accepted"}' % seq)
        start = await stream_seq_after(js, "FIXGW", "fixgw.gw1.ev.orders.>", 3)
        await js.publish(SUBJECT, b'{"seq":4,"type":"order.accepted"}')
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        sub = await js.pull_subscribe("fixgw.gw1.ev.orders.>", stream="FIXGW", config=config)
        msgs = await sub.fetch(1, timeout=5)
        await nc.close()
        return gateway_seq(msgs[0].data)

    assert asyncio.run(resume()) == 4
