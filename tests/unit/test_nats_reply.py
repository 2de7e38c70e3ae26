"""A reply to a request over NATS goes on the broker's connection of the moment it is ready
(each connection is a new client), waits for the next one while there is none, and is a
warning when it cannot be sent (no NATS here: fake connections in the real
`BrokerConnection`; the real cluster is in integration/test_nats.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import nats.errors
from nats.aio.client import Client as NatsConnection
from structlog.testing import capture_logs

from fixgw.config import NatsConfig
from fixgw.nats.connection import BrokerConnection
from fixgw.nats.transport import send_reply


class FakeConnection:
    def __init__(self, fails_with: nats.errors.Error | None = None) -> None:
        self.is_connected = True
        self.sent: list[tuple[str, bytes]] = []
        self._fails_with = fails_with

    async def publish(self, subject: str, payload: bytes) -> None:
        if self._fails_with is not None:
            if isinstance(self._fails_with, nats.errors.ConnectionClosedError):
                self.is_connected = False
            raise self._fails_with
        self.sent.append((subject, payload))


def broker_on(nc: FakeConnection | None) -> BrokerConnection:
    config = NatsConfig(servers=["nats://127.0.0.1:9"], gateway="acct-1")

    async def serve(*_: Any) -> None: ...

    broker = BrokerConnection(config, {}, serve, lambda *_: None)
    broker.nc = cast(NatsConnection, nc)
    return broker


def not_sent(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(x["log_level"], x["error"]) for x in logs if x["event"] == "nats reply not sent"]


def test_a_reply_ready_between_connections_goes_on_the_next_one() -> None:
    """The request came on a connection that ended; the next one is made 0.2 s after the
    reply is ready: it goes there."""
    gone = FakeConnection()
    gone.is_connected = False
    broker = broker_on(gone)
    later = FakeConnection()

    async def scenario() -> None:
        asyncio.get_running_loop().call_later(0.2, setattr, broker, "nc", later)
        await send_reply(broker, "_INBOX.a", b'{"id":1,"ok":true}', wait_s=5)

    with capture_logs() as logs:
        asyncio.run(scenario())
    assert (gone.sent, later.sent) == ([], [("_INBOX.a", b'{"id":1,"ok":true}')])
    assert not_sent(logs) == []


def test_a_reply_whose_connection_ends_as_it_goes_out_takes_the_next_one() -> None:
    closing = FakeConnection(fails_with=nats.errors.ConnectionClosedError())
    broker = broker_on(closing)
    later = FakeConnection()

    async def scenario() -> None:
        asyncio.get_running_loop().call_later(0.1, setattr, broker, "nc", later)
        await send_reply(broker, "_INBOX.b", b"{}", wait_s=5)

    asyncio.run(scenario())
    assert later.sent == [("_INBOX.b", b"{}")]


def test_a_reply_that_cannot_be_sent_is_a_warning() -> None:
    """No connection within the wait, or one that refuses the reply and stays up: one
    warning each (the sender hears nothing), and no second try on a live connection."""
    refusing = FakeConnection(fails_with=nats.errors.MaxPayloadError())

    async def scenario() -> None:
        await send_reply(broker_on(None), "_INBOX.c", b"{}", wait_s=0.1)
        await send_reply(broker_on(refusing), "_INBOX.d", b"{}", wait_s=5)

    with capture_logs() as logs:
        asyncio.run(asyncio.wait_for(scenario(), 2))
    assert not_sent(logs) == [
        ("warning", "no connection to the broker"),
        ("warning", "nats: maximum payload exceeded"),
    ]
