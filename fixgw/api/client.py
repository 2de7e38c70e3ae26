"""A small blocking client for the local socket, used by the CLI and the tests.

    with Client.connect("/run/fixgw/fixgw.sock") as gw:
        gw.subscribe(["orders"])
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30000")
        event = gw.next_event(timeout=5)

Events that arrive while a reply is awaited are kept, in order, for `next_event`.

A request with no reply within its `timeout` closes the connection (connect again): the
gateway serves a connection's lines in order, so a request written behind one still being
answered would otherwise be carried out after the caller gave up on it. Whether the one
that timed out was carried out is unknown; see `Client.request`. The default timeout is 10 s,
or the gateway's `api.request_timeout_s` (which its `hello` reply says) and 5 s more, if
that is longer: a request that waits on the exchange gets the gateway's own `timeout` error
first, however long the gateway is configured to wait.

A `Client` is not thread-safe: one thread at a time uses it, for requests and events both
(a thread waiting in `next_event` would read, and drop, another's reply).
"""

from __future__ import annotations

import itertools
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import msgspec

from fixgw.domain import BookSide, LevelAction, LevelUpdate
from fixgw.errors import FixgwError
from fixgw.marketdata.book import OrderBook
from fixgw.wire import encode


class ApiError(FixgwError):
    """The gateway refused a request; `code` is the protocol's error code."""


class NoAnswer(TimeoutError):
    """A request the gateway was sent and did not answer in time: reached, not answered."""


class NotPermitted(PermissionError):
    """The NATS broker refused the client a subject it needed (the user's permissions)."""


class NotAGateway(ConnectionError):
    """What answered at the address is not a fixgw gateway: its first line is not a JSON
    object (an HTTP server, another program's socket)."""


def apply_market_data(book: OrderBook, event: dict[str, Any]) -> bool:
    """Bring a client-side book up to date with one `md.snapshot` or `md.delta` event, or
    with the `md_subscribe` reply's book (its `result`: `bids` and `asks`, no `type`), to
    start from; False for any other event."""
    kind = event.get("type")
    if kind == "md.snapshot" or (kind is None and "bids" in event and "asks" in event):
        book.apply_snapshot(_levels(event["bids"]), _levels(event["asks"]))
    elif kind == "md.delta":
        book.apply(
            LevelUpdate(LevelAction(a), BookSide(s), Decimal(p), Decimal(z))
            for a, s, p, z in event["changes"]
        )
    else:
        return False
    return True


def _levels(rows: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(s)) for p, s in rows]


class GatewayClient(ABC):
    """What the socket's `Client` and NATS's `fixgw.nats.client.NatsClient` share, and all
    the command line uses of either: requests by name, and events. Each brings its own
    transport."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def request(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        """Send one request and return its `result`; raises ApiError on an error reply.
        `timeout` None: the client's default (`REQUEST_TIMEOUT_S`, or longer)."""

    @abstractmethod
    def subscribe(self, topics: list[str], since: int | None = None) -> Any:
        """Events on `topics` from now on, or those after the event numbered `since`."""

    @abstractmethod
    def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next event subscribed to; TimeoutError if none comes within `timeout`."""

    @abstractmethod
    def take_events(self) -> list[dict[str, Any]]:
        """The events already here, handed over without waiting."""

    def new_order(self, **fields: Any) -> Any:
        return self.request("new_order", **fields)

    def cancel_order(self, **fields: Any) -> Any:
        return self.request("cancel_order", **fields)

    def order_status(self, **fields: Any) -> Any:
        return self.request("order_status", **fields)

    def orders(self, all: bool = False) -> list[dict[str, Any]]:
        return list(self.request("orders", all=all or None)["orders"])

    def status(self) -> dict[str, Any]:
        return dict(self.request("status"))

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first event matching `predicate`; events before it are consumed, and lost to
        the caller: with other orders live, read `next_event` and handle every event."""
        deadline = time.monotonic() + timeout
        no_match = TimeoutError(f"no matching event within {timeout}s")
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:  # at 0, still the events that have come: kept, or waiting to be read
                event = self.next_event(remaining)
            except TimeoutError:  # what was asked for is a match, not an answer
                raise no_match from None
            if predicate(event):
                return event

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        while True:
            yield self.next_event(timeout if timeout is not None else 1e9)


REQUEST_TIMEOUT_S = 10.0
"""A request's default timeout, at least."""
WAIT_BEYOND_S = 5.0
"""How much longer than the gateway's own `api.request_timeout_s` a request waits by
default, for the gateway's `timeout` error to come first."""


class Client(GatewayClient):
    """The local socket's client (see the module's docstring: timeouts, threads)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.request_timeout_s = REQUEST_TIMEOUT_S
        """A request's default timeout: `REQUEST_TIMEOUT_S`, or longer if the gateway said in
        its `hello` reply that it waits longer on the exchange."""
        self._closed_why: str | None = None
        """Set once a request timed out: the connection was closed for it."""
        self._buffer = bytearray()
        self._events: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)
        self._decoder = msgspec.json.Decoder()

    @classmethod
    def connect(
        cls,
        path: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        name: str = "fixgw-client",
        timeout: float = 10.0,
        cancel_on_disconnect: bool = False,
    ) -> Client:
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((host or "127.0.0.1", port or 0), timeout=timeout)
        client = cls(sock)
        try:
            greeting = client.request(
                "hello",
                timeout=timeout,
                name=name,
                token=token,
                cancel_on_disconnect=cancel_on_disconnect or None,
            )
            waits = greeting.get("request_timeout_s") if isinstance(greeting, dict) else None
            if isinstance(waits, int | float) and waits + WAIT_BEYOND_S > client.request_timeout_s:
                client.request_timeout_s = waits + WAIT_BEYOND_S
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        self._sock.close()

    # ------------------------------------------------------------ requests

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        """Send one request and return its `result`; raises ApiError on an error reply.

        With no reply within `timeout` (None: `request_timeout_s`): TimeoutError, and the
        connection is closed, so that nothing written after it is carried out behind the
        caller's back. The request itself may have been carried out (a `new_order` sent to
        the exchange cannot be called back): connect again and ask (`order_status` with the
        `cl_ord_id`, or `orders`), which needs a `cl_ord_id` the caller chose. A `new_order`
        or `cancel_order` whose connection ends before its reply raises NoAnswer too: it was
        written, so it is not "cannot reach the gateway".

        A reply with a null `id` is the gateway's answer to a line it could not read (too
        long, not JSON): replies keep the order of requests, so here it is this one's."""
        if timeout is None:
            timeout = self.request_timeout_s
        request_id = next(self._ids)
        body = {"id": request_id, "op": op, **{k: v for k, v in fields.items() if v is not None}}
        self.send_raw(encode(body) + b"\n")
        try:
            if timeout <= 0:  # given up at once: a reply cannot have come, nothing is read
                raise TimeoutError
            reply = self._read_until(
                lambda m: "seq" not in m and m.get("id") in (request_id, None), timeout
            )
        except TimeoutError:
            why = _unanswered(op, f"within {timeout:g} s", fields.get("cl_ord_id"))
            self._closed_why = why
            self._sock.close()
            raise NoAnswer(why) from None
        except ConnectionError as exc:
            if op not in _CARRIED_OUT_AT_THE_EXCHANGE or isinstance(exc, NotAGateway):
                raise
            when = f"before the connection ended ({exc})"
            why = _unanswered(op, when, fields.get("cl_ord_id"), closed_here=False)
            raise NoAnswer(why) from None
        if not reply.get("ok"):
            error = reply.get("error", {})
            raise ApiError(error.get("message", "error"), code=error.get("code", "unknown"))
        return reply.get("result")

    def subscribe(self, topics: list[str], since: int | None = None) -> Any:
        return self.request("subscribe", topics=topics, since=since)

    # ------------------------------------------------------------ events

    def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        if self._events:
            return self._events.popleft()
        return self._read_until(lambda m: "seq" in m, timeout, keep_events=False)

    def take_events(self) -> list[dict[str, Any]]:
        """The events that arrived while waiting for replies, handed over without waiting."""
        events = list(self._events)
        self._events.clear()
        return events

    # ------------------------------------------------------------ transport

    def send_raw(self, data: bytes) -> None:
        self._refuse_if_closed()
        self._sock.sendall(data)

    def _refuse_if_closed(self) -> None:
        if self._closed_why is not None:
            raise ConnectionError(f"this connection is closed ({self._closed_why})")

    def read_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next line from the gateway, whatever it is (for protocol tests)."""
        return self._read_until(lambda m: True, timeout, keep_events=False)

    def _read_until(
        self, accept: Callable[[dict[str, Any]], bool], timeout: float, keep_events: bool = True
    ) -> dict[str, Any]:
        self._refuse_if_closed()
        deadline = time.monotonic() + timeout
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                message = self._message(line)
                if accept(message):
                    return dict(message)
                if keep_events and "seq" in message:
                    self._events.append(message)
                continue
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    self._sock.settimeout(remaining)
                    chunk = self._sock.recv(65536)
                else:  # time is up, but what has come is read: `next_event(0)` polls
                    chunk = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except (TimeoutError, BlockingIOError):
                raise TimeoutError("no answer from the gateway") from None
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            self._buffer += chunk

    def _message(self, line: bytes) -> dict[str, Any]:
        try:
            message = self._decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise NotAGateway(f"it answered with a line that is not JSON ({exc})") from None
        if not isinstance(message, dict):
            raise NotAGateway("it answered with JSON that is not an object")
        return message


_CARRIED_OUT_AT_THE_EXCHANGE = frozenset({"new_order", "cancel_order"})


def _unanswered(op: str, when: str, cl_ord_id: object, closed_here: bool = True) -> str:
    """What a request written and never answered means: the connection is gone, the
    request's fate unknown."""
    why = f"no answer to {op} from the gateway {when}; " + (
        "the connection is closed, so that no request written after it is carried out: "
        "connect again"
        if closed_here
        else "connect again"
    )
    if op not in _CARRIED_OUT_AT_THE_EXCHANGE:
        return why
    ask = f"order_status with cl_ord_id {cl_ord_id!r}" if cl_ord_id else "`orders`"
    return (
        f"{why}. Whether the {op} reached the exchange is unknown: ask ({ask}) before "
        "sending it again"
        + ("" if cl_ord_id else "; choose your own cl_ord_id to be able to ask about it")
    )
