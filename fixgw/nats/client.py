"""A blocking client for a gateway over NATS, with the socket client's interface
(`fixgw.api.client.Client`), for the CLI's `--nats URL --gateway NAME`:

    with NatsClient.connect("nats://127.0.0.1:4222", gateway="gw1") as gw:
        gw.subscribe(["orders"])
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30000")
        event = gw.next_event(timeout=5)

Requests go to `<prefix>.<gateway>.cmd` (request/reply); events come from the stream, by an
ordered consumer that starts at the next event (or after `since`). The NATS client runs on
a loop in a thread of its own. One connection, made by one attempt: a broker that cannot be
reached, or that ends the connection, is a ConnectionError, as a gateway's socket is.

A request waits as the socket client's does: the gateway's `api.request_timeout_s` and 5 s
more, 10 s at least, so that the gateway's own `timeout` error comes first. Over NATS there is
no `hello` to say it: the first request other than `status` asks `status` first
(`nats.request_timeout_s`). A subject the broker refuses this user arrives as an error on
the connection, not as an answer: the request that waited for it is NotPermitted, naming
the subject, not a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from fixgw.api.client import (
    REQUEST_TIMEOUT_S,
    WAIT_BEYOND_S,
    ApiError,
    GatewayClient,
    NoAnswer,
    NotPermitted,
)
from fixgw.api.protocol import TOPICS_FIXED
from fixgw.config import without_userinfo
from fixgw.nats.connection import connect_once
from fixgw.nats.consumer import stream_seq_after
from fixgw.nats.subjects import CLIENT_HEADER, EVENT_TOPICS, Subjects
from fixgw.wire import encode

T = TypeVar("T")


class NatsClient(GatewayClient):
    def __init__(self, subjects: Subjects, name: str | None = None) -> None:
        self.subjects = subjects
        self._headers = {CLIENT_HEADER: name} if name else None
        """Each request's: the name it gives the gateway, for the journal of a halt."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._thread.start()
        self._nc: NatsConnection | None = None
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._topics: set[str] = set()
        self._since = 0
        self._ids = itertools.count(1)
        self._decoder = msgspec.json.Decoder()
        self._subscription: Any = None
        self._ended = False
        self.request_timeout_s: float | None = None
        """A request's default timeout, once learned from the gateway's status."""
        self._refused: str | None = None
        """The broker's last permissions violation on this connection."""

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        gateway: str,
        subject_prefix: str = "fixgw",
        timeout: float = 10.0,
        name: str | None = None,
        **auth: Any,
    ) -> NatsClient:
        """`name`: sent with each request in the `Fixgw-Client` header, as `hello`'s name on
        the socket (the gateway journals it for a halt, a resume). `auth`: nats.connect's
        credentials (`user` and `password`, `token`, `user_credentials` for a creds file).
        ConnectionError if the broker cannot be reached, naming why."""
        client = cls(Subjects(subject_prefix, gateway), name)
        options = {
            "servers": url,
            "name": "fixgw-cli",
            "connect_timeout": max(1, round(timeout)),
            "closed_cb": client._on_closed,
            **{k: v for k, v in auth.items() if v is not None},
        }
        shown = without_userinfo(url)
        try:
            client._nc = client._call(connect_once(options, client._on_error), timeout + 1)
        except TimeoutError:
            client.close()
            raise ConnectionError(
                f"cannot reach the NATS broker at {shown}: no answer in {timeout:g} s"
            ) from None
        except (nats.errors.Error, OSError) as exc:
            client.close()
            why = str(exc) or type(exc).__name__
            raise ConnectionError(f"cannot reach the NATS broker at {shown}: {why}") from None
        return client

    def close(self) -> None:
        if self._loop.is_running():
            with contextlib.suppress(Exception):  # closing: nothing left to tell
                self._call(self._shut_down(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shut_down(self) -> None:
        """The connection closed, and what the NATS client left running on the loop ended."""
        nc, self._nc = self._nc, None
        if nc is not None:
            await nc.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _connection(self) -> NatsConnection:
        if self._nc is None or self._ended:
            raise ConnectionError("the connection to the NATS broker ended")
        return self._nc

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.Error) and "permissions violation" in str(exc).lower():
            self._refused = str(exc)

    def _not_permitted(self) -> NotPermitted | None:
        """The refusal that came while the request waited: taken, so that a later request
        that merely times out is not told as refused."""
        refused, self._refused = self._refused, None
        if refused is None:
            return None
        return NotPermitted(f"the NATS broker refused this user: {refused}")

    async def _on_closed(self) -> None:
        self._ended = True
        self._events.put(_ENDED)

    # ------------------------------------------------------------ requests

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        """Send one request and return its `result`; raises ApiError on an error reply."""
        if op == "subscribe":
            return self.subscribe(fields["topics"], fields.get("since"))
        if timeout is None:
            if self.request_timeout_s is None and op != "status":
                self._learn_request_timeout(self._ask("status", REQUEST_TIMEOUT_S, {}))
            timeout = self.request_timeout_s or REQUEST_TIMEOUT_S
        result = self._ask(op, timeout, fields)
        if op == "status":
            self._learn_request_timeout(result)
        return result

    def _learn_request_timeout(self, status: Any) -> None:
        """From a status reply: the gateway's `api.request_timeout_s` and WAIT_BEYOND_S more
        (REQUEST_TIMEOUT_S at least)."""
        nats_state = status.get("nats") if isinstance(status, dict) else None
        waits = nats_state.get("request_timeout_s") if isinstance(nats_state, dict) else None
        if isinstance(waits, int | float):
            self.request_timeout_s = max(REQUEST_TIMEOUT_S, waits + WAIT_BEYOND_S)

    def _ask(self, op: str, timeout: float, fields: dict[str, Any]) -> Any:
        body = {"id": next(self._ids), "op": op}
        body.update((k, v) for k, v in fields.items() if v is not None)
        nc = self._connection()
        self._refused = None
        try:
            msg = self._call(
                nc.request(
                    self.subjects.commands, encode(body), timeout=timeout, headers=self._headers
                ),
                timeout + 1,
            )
        except nats.errors.NoRespondersError:
            raise ConnectionError(
                f"no gateway takes requests on {self.subjects.commands}"
            ) from None
        except nats.errors.TimeoutError:
            refused = self._not_permitted()
            if refused is not None:
                raise refused from None
            raise NoAnswer(
                f"no answer to {op} within {timeout:g} s (the gateway may still be waiting on "
                "the exchange)"
            ) from None
        except nats.errors.ConnectionClosedError:
            raise ConnectionError("the connection to the NATS broker ended") from None
        reply = self._decoder.decode(msg.data)
        if not reply.get("ok"):
            error = reply.get("error", {})
            raise ApiError(error.get("message", "error"), code=error.get("code", "unknown"))
        return reply.get("result")

    def subscribe(self, topics: list[str], since: int | None = None) -> Any:
        """Events on `topics` from the stream: from the next one, or those after `since`."""
        unknown = set(topics) - TOPICS_FIXED
        if unknown:
            raise ApiError(
                f"over NATS, events are on the stream: {', '.join(sorted(unknown))} are not "
                "(market data has subjects of its own, see docs/nats.md)",
                code="unknown_topic",
            )
        self._topics |= set(topics)
        self._since = since or 0
        self._refused = None
        try:
            self._call(self._subscribe(since), 30)
        except (nats.errors.TimeoutError, nats.js.errors.Error) as exc:
            refused = self._not_permitted()
            if refused is not None:
                raise refused from None
            if isinstance(exc, nats.js.errors.ServiceUnavailableError):
                raise ApiError(
                    "JetStream is not enabled on the NATS broker (or for this user's account): "
                    "there are no events to read",
                    code="no_stream",
                ) from None
            if isinstance(exc, nats.js.errors.NotFoundError):
                raise ApiError(
                    f"no stream on the NATS broker takes the gateway's events "
                    f"({self.subjects.events}): the gateway has not created it yet, or it is "
                    "in another account",
                    code="no_stream",
                ) from None
            raise
        return {"topics": sorted(self._topics)}

    async def _subscribe(self, since: int | None) -> None:
        nc = self._connection()
        js = nc.jetstream()
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        subjects = (
            self.subjects.topic("orders") if self._topics == {"orders"} else self.subjects.events
        )
        # The broker finds a stream by a subject it takes, not by a wildcard.
        stream = await js.find_stream_name_by_subject(self.subjects.event("session.up", None))
        if since is None:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        else:
            start = await stream_seq_after(js, stream, self.subjects.events, since)
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
            )
        self._subscription = await js.subscribe(
            subjects, stream=stream, ordered_consumer=True, config=config, cb=self._on_event
        )

    async def _on_event(self, msg: Msg) -> None:
        event = self._decoder.decode(msg.data)
        if event.get("seq", 0) <= self._since:
            return
        topic = EVENT_TOPICS.get(str(event.get("type", "")).partition(".")[0])
        if topic in self._topics:
            self._events.put(event)

    # ------------------------------------------------------------ events

    def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            event = self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError("no event from the stream") from None
        if event is _ENDED:
            self._events.put(_ENDED)
            raise ConnectionError("the connection to the NATS broker ended")
        return event

    def take_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
            if event is _ENDED:
                self._events.put(_ENDED)
                return events
            events.append(event)


_ENDED: dict[str, Any] = {}
"""Put after the last event when the connection ends."""
