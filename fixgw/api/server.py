"""The local socket server: a Unix socket, and optionally loopback TCP with a token.

Knows the wire protocol and the gateway's command methods, not FIX. Each client's events
are written straight to its transport; a client whose unsent bytes pass the configured
bound is disconnected with a logged reason, so it never slows the others or the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hmac
import itertools
import os
import select
import time
from collections import deque
from collections.abc import Awaitable, Hashable, Iterable
from pathlib import Path
from typing import Any, Protocol, cast

import structlog

from fixgw import __version__
from fixgw.api import protocol as p
from fixgw.api.book_views import BookViews
from fixgw.config import ApiConfig
from fixgw.errors import RequestError, StartupError
from fixgw.files import directories_for
from fixgw.gateway import Gateway
from fixgw.ids import GENERATED_PREFIX
from fixgw.ops.log_budget import LogBudget
from fixgw.preflight import (
    can_create_directory,
    group_problem,
    non_loopback,
    resolve,
    socket_path_problem,
)
from fixgw.results import Orders, Trades

log = structlog.get_logger("fixgw.api")

_WAITING_LINES = 1024
"""Lines a client may send ahead of a request that waits on the exchange before the gateway
stops reading from it."""
_REPLAY_CHUNK_BYTES = 65536
"""A `since` replay is written this much at a time (at most a quarter of the client's
bound), each once the client has read what went before."""
_client_numbers = itertools.count(1)

UNAUTHENTICATED_LINE_BYTES = 4096
"""The longest line a TCP client may send before its good `hello` (a hello fits easily):
a connection that has not authenticated costs the gateway no more than this."""
AUTH_DELAY_FIRST_S = 0.1
"""A peer's second wrong token in a row is answered after this long; each one after it
waits twice as long as the one before, up to AUTH_DELAY_MAX_S."""
AUTH_DELAY_MAX_S = 10.0
AUTH_FAILURES_FORGOTTEN_S = 60.0
"""A peer with no wrong token for this long starts again with no delay."""
_AUTH_PEERS_KEPT = 4096
"""Peers whose failures are remembered (loopback has 2**24 addresses to come from)."""
DELAYED_REFUSALS_MAX = 256
"""Connections held open until their wrong token's delay is over, at most; beyond it, the
answer is not delayed (the delay slows a client retrying on one connection at a time; the
token's 128 bits are what makes guessing hopeless)."""
UNAUTHENTICATED_MAX = 64
"""TCP connections that have not sent a good `hello` yet, at most; they do not count
towards `api.max_clients`, so a flood of them cannot keep out the clients it serves."""
LINGER_S = 2.0
"""How long a refused connection's end waits for the client to read its last line."""
ANSWERS_AT_STOP_S = 1.0
"""How long a stop waits for the requests being answered to be answered before it closes
the connections: one the stop itself refused (a status request the throttle held) gets its
answer in a turn of the loop."""
_REFUSAL_CODES = {
    "long_line_before_hello": p.ErrorCode.LINE_TOO_LONG,
    "too_many_clients": p.ErrorCode.TOO_MANY_CLIENTS,
}
"""The error code of the last line a refused connection gets; `unauthorized` otherwise."""
_REFUSALS_LOGGED = ("no_hello", "hello_timeout", "long_line_before_hello", "too_many_clients")
"""The refusals `ApiServer.refused` logs, each kind with a `LogBudget` of its own (a wrong
token is logged with its count in a row, `ApiServer.auth_failed`)."""


NOT_HELD_OVER_NATS = (
    "over NATS, a book is live for the symbols of nats.market_data: add it there and restart "
    "the gateway"
)
"""What `book` over NATS says of a book nobody holds: md_subscribe is not served there."""


class Caller(Protocol):
    """Who sent a request, as the order path knows it: `number` owns the orders it places
    (a socket client's are cancelled when it goes, those it placed while it asked:
    `cancel_on_disconnect`), `who` names it in the journal."""

    @property
    def number(self) -> Hashable: ...

    @property
    def cancel_on_disconnect(self) -> bool: ...

    @property
    def who(self) -> str: ...


CONNECTION_OPS = (p.Hello, p.Subscribe, p.Unsubscribe, p.MdSubscribe, p.MdUnsubscribe)
"""Requests about the connection they come on: served on the socket only."""
_OP_NAMES = {kind: op for op, kind in p.OPS.items()}
_OPS_WITHOUT_A_CONNECTION = frozenset(
    op for op, kind in p.OPS.items() if not issubclass(kind, CONNECTION_OPS)
)
"""What `handle_request` serves (NATS): an unknown op's error names only these."""


def _awaitable(result: object) -> bool:
    """`isinstance(result, Awaitable)` without the ABC's Python-level check, per request."""
    return hasattr(result, "__await__")


def error_reply(request_id: Any, exc: Exception, who: str) -> bytes:
    """The reply to a request that failed: its code, or `internal_error` (logged)."""
    if isinstance(exc, RequestError):
        return p.reply_error(getattr(exc, "request_id", request_id), exc.code, exc.message)
    log.error("request failed", caller=who, exc_info=exc)
    return p.reply_error(request_id, p.ErrorCode.INTERNAL_ERROR, repr(exc))


class ClientConnection(asyncio.Protocol):
    """One client, as a protocol: lines are handled as they arrive, in the loop's own call.

    A request the gateway answers at once (an order, a cancel) is handled inside
    `data_received`; one that waits on the exchange runs as a task, and the lines behind it
    wait their turn, so replies keep the order of the requests. A stream reader and a
    coroutine per line cost about 14 us more server CPU per request (an echo bench)."""

    def __init__(self, server: ApiServer, needs_token: bool) -> None:
        self.server = server
        self.transport: asyncio.Transport
        self.number = next(_client_numbers)
        self.name = ""
        self.cancel_on_disconnect = False
        self.authorized = not needs_token
        self.topics: set[str] = set()
        self.closed = False
        self._pending: list[bytes] = []
        self._replies_at: list[int] = []
        """Where replies are in `_pending`: they go out while the journal holds events back."""
        self._behind_journal: list[bytes] = []
        """Lines held until the journal's lines are on disk (a failing disk), in order."""
        self._behind_journal_bytes = 0
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._discarding = False
        self._waiting: deque[bytes | None] = deque()
        """Lines that arrived while a request waits on the exchange; None for one too long."""
        self._answering: asyncio.Task[None] | None = None
        self._paused = False
        self._sent_all = False
        self._held: list[bytes] | None = None
        """While a `since` replay is written: what else is delivered, sent after its reply."""
        self._held_bytes = 0
        self._drained: asyncio.Future[None] | None = None
        """Set while the transport's buffer is above its high-water mark."""
        self.peer = "local"
        """The TCP client's address; "local" on the Unix socket."""
        self._refused = False
        """Turned away at connect: never one of the server's clients."""
        self._hello_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.peer = str(peer[0])
        server = self.server
        if not self.authorized:
            if len(server.waiting_for_hello) >= UNAUTHENTICATED_MAX:
                self._turn_away(
                    f"{UNAUTHENTICATED_MAX} connections are waiting to send `hello` already"
                )
                return
            server.waiting_for_hello.add(self)
        elif server.served() >= server.config.max_clients:
            self._turn_away(server.too_many())
            return
        server.clients.add(self)
        if self.authorized:
            log.info("client connected", client=self.number, peer=self.peer)
        else:
            server.stranger_logs.connected.line(
                "client connected", client=self.number, peer=self.peer
            )
        tcp = server.config.tcp
        if not self.authorized and tcp is not None:
            self._hello_timer = self._loop.call_later(tcp.hello_timeout_s, self._no_hello_in_time)

    def _turn_away(self, why: str) -> None:
        """At connect: one `too_many_clients` line, and the connection is closed."""
        self._refused = True
        self.closed = True
        self.server.refused("too_many_clients", self)
        message = f"{why}; try again later; the connection is closed"
        self._write_last(p.reply_error(None, p.ErrorCode.TOO_MANY_CLIENTS, message))

    def _no_hello_in_time(self) -> None:
        self._hello_timer = None
        if not self.authorized and not self.closed:
            tcp = self.server.config.tcp
            timeout = tcp.hello_timeout_s if tcp is not None else 0
            self.refuse(
                "hello_timeout",
                None,
                f"no `hello` with the token within {timeout:g} s (api.tcp.hello_timeout_s)",
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        self.close()
        if self._answering is not None:
            self._answering.cancel()
        self.server.clients.discard(self)
        self.server.waiting_for_hello.discard(self)
        if self.authorized:
            log.info("client gone", client=self.number, name=self.name)
        else:
            self.server.stranger_logs.gone.line("client gone", client=self.number, name=self.name)
        self.server.gateway.client_gone(self.number)

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    def eof_received(self) -> bool:
        """The client is done sending: every request is answered, the last one too if its
        line has no newline, then the connection closes."""
        if self.closed:
            return False  # refused: its last line is on its way
        self._sent_all = True
        last = bytes(self._buffer)
        self._buffer.clear()
        if not self._discarding and last.strip():  # a line too long was answered already
            self._take(last)
        if self.closed:
            return True  # refused: its last line is on its way, the connection lingers
        if self._answering is not None:
            if self._hung_up():
                self.close()  # connection_lost follows: the lines waiting are never served
                return False
            return True
        self.flush()
        return False

    def _hung_up(self) -> bool:
        """The client closed its end, not only its sending side: it reads no more replies.
        Told apart on the Unix socket, and on TCP once the client reset the connection; a
        TCP close without a reset looks like a shut sending side until the gateway writes."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), 0)  # POLLHUP and POLLERR are reported regardless
        return bool(poller.poll(0))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return  # refused, its last line on its way
        buffer = self._buffer
        buffer += data
        while not self.closed:
            limit = self.server.config.max_line_bytes
            if not self.authorized:
                limit = min(limit, UNAUTHENTICATED_LINE_BYTES)
                end = buffer.find(b"\n", 0, limit + 1)
                if end < 0 and len(buffer) > limit:
                    self.refuse(
                        "long_line_before_hello",
                        None,
                        f"before a good `hello`, a line may hold at most {limit} bytes",
                    )
                    return
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > limit:
                    if not self._discarding:
                        self._take(None)
                        self._discarding = True
                    buffer.clear()
                return
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if self._discarding:
                self._discarding = False
            elif len(line) > limit:
                self._take(None)
            elif line.strip():
                self._take(line)

    def _take(self, line: bytes | None) -> None:
        """Handle a line now, or after the request being answered; None: one too long."""
        if self._answering is None:
            self._handle_or_refuse(line)
        else:
            self._waiting.append(line)
            if len(self._waiting) == _WAITING_LINES:
                self._paused = True
                self.transport.pause_reading()

    def _handle_or_refuse(self, line: bytes | None) -> None:
        if line is not None:
            self.handle(line)
            return
        limit = self.server.config.max_line_bytes
        self._reply(
            p.reply_error(None, p.ErrorCode.LINE_TOO_LONG, f"a line may hold at most {limit} bytes")
        )

    def handle(self, line: bytes) -> None:
        if not self.authorized:
            self._authenticate(line)
            return
        request_id: Any = None
        try:
            request_id, request = p.parse_line(line)
            result = self.server.dispatch(self, request)
            if _awaitable(result):
                task = self._loop.create_task(self._answer(request_id, result))
                task.add_done_callback(self._answered)
                self._answering = task
                return
            self._reply(p.reply_ok(request_id, result))
        except Exception as exc:
            self._reply(self._error_reply(request_id, exc))

    async def _answer(self, request_id: Any, result: Awaitable[Any]) -> None:
        try:
            reply = p.reply_ok(request_id, await result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reply = self._error_reply(request_id, exc)
        held, self._held = self._held, None
        self._reply(reply)
        for line in held or ():
            self.deliver(line)
        self._answering = None
        if self._waiting and self._hung_up():
            self.drop("closed its connection while a request was answered")
            return
        # `_busy()`, not `self._answering` read here: after the line above, mypy takes the
        # attribute to be None for the rest of the method, and mypyc checks that at run time
        # (a line handled below may have started the next answer: TypeError, 'None object
        # expected; got _asyncio.Task').
        while self._waiting and not self._busy() and not self.closed:
            self._handle_or_refuse(self._waiting.popleft())
        if self._busy() or self.closed:
            return
        if self._sent_all:
            self.flush()
            self.transport.close()
        elif self._paused:
            self._paused = False
            self.transport.resume_reading()

    def _busy(self) -> bool:
        """A request is being answered: lines that arrive wait behind it."""
        return self._answering is not None

    @property
    def answering(self) -> asyncio.Task[None] | None:
        """The request being answered, while one is."""
        return self._answering

    def _answered(self, task: asyncio.Task[None]) -> None:
        """Retrieves what the answering task ended with, so that asyncio never has an
        exception to print outside the log. `_answer` handles a request's own errors; one
        that escapes it is a bug: logged, and the client dropped, since the lines waiting
        behind the answer could no longer be answered in order."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("answering a request failed", client=self.number, name=self.name, exc_info=exc)
        if self._answering is task:
            self._answering = None
        self.drop("the gateway failed while answering a request (see the log)", "internal_error")

    def _authenticate(self, line: bytes) -> None:
        """A TCP client's first line must be `hello` with the token. Anything else closes
        the connection after one error line: a wrong token once the peer's delay is over."""
        try:
            request_id, request = p.parse_line(line)
        except RequestError as exc:
            self.refuse("no_hello", getattr(exc, "request_id", None), exc.message)
            return
        if not isinstance(request, p.Hello):
            self.refuse("no_hello", request_id, "send `hello` with the token first")
            return
        server = self.server
        if not server.token_matches(request.token):
            self.refuse("bad_token", request_id, "bad or missing token", server.auth_failed(self))
            return
        server.waiting_for_hello.discard(self)
        if server.served() > server.config.max_clients:
            self.refuse("too_many_clients", request_id, server.too_many())
            return
        self.authorized = True
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        self._reply(p.reply_ok(request_id, server.greet(self, request)))

    def refuse(self, reason: str, request_id: Any, message: str, delay: float = 0.0) -> None:
        """Close the connection after one error line, sent `delay` seconds from now; it
        counts as a client no more, and nothing it sends meanwhile is read."""
        server = self.server
        server.refused(reason, self)
        self.flush()
        self.close()
        server.clients.discard(self)
        server.waiting_for_hello.discard(self)
        self.transport.pause_reading()
        self._buffer.clear()
        code = _REFUSAL_CODES.get(reason, p.ErrorCode.UNAUTHORIZED)
        line = p.reply_error(request_id, code, f"{message}; the connection is closed")
        if delay > 0 and server.delayed_refusals < DELAYED_REFUSALS_MAX:
            server.delayed_refusals += 1
            self._loop.call_later(delay, self._write_last_delayed, line)
        else:
            self._write_last(line)

    def _write_last_delayed(self, line: bytes) -> None:
        self.server.delayed_refusals -= 1
        self._write_last(line)

    def _write_last(self, line: bytes) -> None:
        """Send `line`, then end the connection so that the client reads it: closing with
        unread bytes from the client would reset the connection, and its kernel would drop
        the line. So the sending side is shut (the client sees the line, then the end), and
        whatever the client still sends is read and dropped until it closes too, or for
        LINGER_S at most."""
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(line)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if not transport.is_reading():
            transport.resume_reading()
        self._loop.call_later(LINGER_S, transport.close)

    def _error_reply(self, request_id: Any, exc: Exception) -> bytes:
        return error_reply(request_id, exc, self.who)

    @property
    def who(self) -> str:
        """For the journal: which connection asked."""
        return f"api client {self.number}" + (f" ({self.name})" if self.name else "")

    def deliver(self, line: bytes) -> None:
        """Queue one line with a seq (an event, market data) for this client.

        Lines are written together once per turn of the loop: one system call per client
        for a whole burst of events rather than one per event, and replies keep their
        place among the events."""
        if self.closed:
            return
        if self._held is not None:
            self._held.append(line)
            self._held_bytes += len(line)
            self._check_bound(self._held_bytes)
            return
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def _reply(self, line: bytes) -> None:
        """Queue a reply, in its place among the events; ahead of those the journal holds
        back (`flush`)."""
        if self.closed:
            return
        if self._held is not None:
            self.deliver(line)
            return
        self._replies_at.append(len(self._pending))
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued, once the journal has its lines on disk: the journal's write
        due in this turn is made first if it has not been. If the journal cannot write them,
        every line with a seq waits (in order, from the first of them on; market data too,
        so that no client sees a seq past an event it was not given), and the replies go out:
        a client never holds an event a restart would not know, and number again."""
        self._flush_scheduled = False
        if self.closed or not self._pending:
            return
        journal = self.server.journal
        journal.write_due()
        if journal.unwritten or self._behind_journal:
            self._hold_for_journal()
            if not self._pending:
                return
        data = b"".join(self._pending)
        self._pending.clear()
        if self._replies_at:
            self._replies_at.clear()
        self.transport.write(data)
        self._check_bound(self._behind_journal_bytes)

    def _hold_for_journal(self) -> None:
        replies_at = set(self._replies_at)
        replies = []
        for at, line in enumerate(self._pending):
            if at in replies_at:
                replies.append(line)
            else:
                self._behind_journal.append(line)
                self._behind_journal_bytes += len(line)
        self._pending = replies
        self._replies_at = list(range(len(replies)))
        self.server.behind_journal.add(self)

    def journal_written(self) -> None:
        """The journal's lines are on disk: what waited for them goes out, before the rest."""
        self._pending[:0] = self._behind_journal
        moved = len(self._behind_journal)
        self._replies_at = [at + moved for at in self._replies_at]
        self._behind_journal = []
        self._behind_journal_bytes = 0
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def _check_bound(self, held: int = 0) -> None:
        bound = self.server.config.client_buffer_bytes
        if self.transport.get_write_buffer_size() + held > bound:
            self.drop(f"client is not reading: its buffer passed {bound} bytes", "not_reading")

    def hold(self) -> None:
        """From now until the reply to the request being answered, lines delivered wait
        behind it: a replay is being written."""
        self._held = []
        self._held_bytes = 0

    def hold_first(self, lines: Iterable[bytes]) -> None:
        """Lines that follow the reply before those delivered meanwhile (after `hold`)."""
        assert self._held is not None
        self._held.extend(lines)
        self._held_bytes = sum(map(len, self._held))
        self._check_bound(self._held_bytes)

    async def write_replay(self, lines: Iterable[bytes]) -> int:
        """Write `lines` in chunks, each once the client has read most of the one before,
        so that a replay larger than the client's bound is no reason to drop it; how many."""
        self.flush()  # what was queued before the request goes first
        chunk_bytes = min(_REPLAY_CHUNK_BYTES, self.server.config.client_buffer_bytes // 4)
        self.transport.set_write_buffer_limits(high=chunk_bytes)
        count = 0
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line)
            count += 1
            if size >= chunk_bytes:
                await self._write_when_drained(b"".join(chunk))
                if self.closed:
                    return count
                chunk.clear()
                size = 0
        if chunk:
            await self._write_when_drained(b"".join(chunk))
        return count

    async def _write_when_drained(self, data: bytes) -> None:
        while self._drained is not None:
            await self._drained
        if not self.closed:  # dropped: the rest goes nowhere, and the task is cancelled
            self.transport.write(data)
            self._check_bound(self._held_bytes)

    def drop(self, reason: str, counted_as: str | None = None) -> None:
        """`counted_as`: the gateway closed it, a `fixgw_api_refused_total` reason."""
        if self.closed:
            return
        if counted_as is not None:
            self.server.gateway.metrics.api_refused.labels(counted_as).inc()
        log.warning("client disconnected", client=self.number, name=self.name, reason=reason)
        self.close()
        self.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.server.behind_journal.discard(self)
        self.server.gateway.unsubscribe(self)
        self.server.book_views.leave(self)
        self.server.gateway.md_client_gone(self)


class _StrangerLogs:
    """The lines a TCP peer can cause at will, before it has sent the token: each kind
    bounded (`LogBudget`). A client with the token, or on the Unix socket, is logged in full."""

    def __init__(self) -> None:
        self.connected = LogBudget(log, "info")
        self.gone = LogBudget(log, "info")
        self.bad_token = LogBudget(log)
        self.refused = {reason: LogBudget(log) for reason in _REFUSALS_LOGGED}


class ApiServer:
    def __init__(self, gateway: Gateway, token: str | None) -> None:
        self.gateway = gateway
        self._token = token
        self.journal = gateway.journal
        self.behind_journal: set[ClientConnection] = set()
        """Clients holding lines until the journal's are on disk."""
        self.journal.on_written.append(self._journal_written)
        self.book_views = BookViews(gateway)
        """The book events of clients that asked for a depth, cut to it."""
        gateway.md_when_refused(self._stream_refused)
        self._servers: list[asyncio.Server] = []
        self.clients: set[ClientConnection] = set()
        self.waiting_for_hello: set[ClientConnection] = set()
        """TCP connections among `clients` that have not sent a good `hello` yet."""
        self.delayed_refusals = 0
        """Connections whose last line waits for their wrong token's delay."""
        self._auth_failures: dict[str, tuple[int, float]] = {}
        """Wrong tokens by peer address: how many in a row, and when the last came."""
        self.stranger_logs = _StrangerLogs()
        self._socket_claimed = False

    def _journal_written(self) -> None:
        if self.behind_journal:
            waiting, self.behind_journal = self.behind_journal, set()
            for client in waiting:
                client.journal_written()

    def served(self) -> int:
        """Clients that count towards `api.max_clients`: all but those yet to say hello."""
        return len(self.clients) - len(self.waiting_for_hello)

    def too_many(self) -> str:
        limit = self.config.max_clients
        return f"the gateway serves at most {limit} clients at once (api.max_clients)"

    @property
    def config(self) -> ApiConfig:
        """The gateway's current API settings (SIGHUP may change some)."""
        return self.gateway.config.api

    async def start(self) -> None:
        """Listen on the Unix socket, and on TCP if configured. StartupError (naming the key)
        if one cannot be had; nothing is left listening then."""
        try:
            await self._listen()
        except BaseException:
            await self.stop()
            raise

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        path = Path(self.config.socket_path)
        group = self.config.socket_group
        gid = None
        if group:
            why = group_problem(group)
            if why is not None:
                raise StartupError(f"api.socket_group: {why}")
            gid = grp.getgrnam(group).gr_gid
        _claim_socket_path(path, int(self.config.socket_mode, 8), gid)
        self._socket_claimed = True
        # Created with the final mode: no window in which the socket is open to others.
        old_umask = os.umask(0o777 & ~int(self.config.socket_mode, 8))
        try:
            server = await loop.create_unix_server(
                lambda: ClientConnection(self, needs_token=False), path=str(path)
            )
        except OSError as exc:
            raise StartupError(f"api.socket_path: cannot listen on {path}: {exc}") from None
        finally:
            os.umask(old_umask)
        self._servers.append(server)
        if gid is not None:
            try:
                os.chown(path, -1, gid)
            except OSError as exc:
                raise StartupError(
                    f"api.socket_group: cannot give {path} to {group!r}: {exc}"
                ) from None
        log.info("api listening", socket=str(path), mode=self.config.socket_mode)
        tcp = self.config.tcp
        if tcp is not None:
            try:
                addresses = resolve(tcp.host)
            except (OSError, UnicodeError) as exc:
                raise StartupError(f"api.tcp.host: cannot resolve {tcp.host!r}: {exc}") from None
            outside = non_loopback(addresses)
            if outside:
                raise StartupError(
                    f"api.tcp.host: {tcp.host!r} names {', '.join(outside)}, not a loopback "
                    "address: the API's TCP listener serves this machine only"
                )
            try:
                listener = await loop.create_server(
                    lambda: ClientConnection(self, needs_token=True),
                    host=[address for _, address in addresses],
                    port=tcp.port,
                )
            except OSError as exc:
                raise StartupError(
                    f"api.tcp.port: cannot listen on {tcp.host}:{tcp.port}: {exc}"
                ) from None
            self._servers.append(listener)
            log.info("api listening", tcp=f"{tcp.host}:{tcp.port}")

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        answering = [c.answering for c in self.clients if c.answering is not None]
        if answering:  # the stop's refusals among them (`Gateway.stop_holding`)
            await asyncio.wait(answering, timeout=ANSWERS_AT_STOP_S)
        for client in list(self.clients):
            client.flush()  # what the stop itself told (orders the throttle held) goes out
            client.close()
            client.transport.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        if self._socket_claimed:
            self._socket_claimed = False
            _release_socket_path(Path(self.config.socket_path))

    def token_matches(self, token: str | None) -> bool:
        """Compared in constant time; no token configured matches nothing."""
        if token is None or self._token is None:
            return False
        return hmac.compare_digest(token.encode(), self._token.encode())

    def auth_failed(self, client: ClientConnection) -> float:
        """Count and log a wrong token (never the token itself); how long to wait before
        answering it: nothing the first time, then a delay that doubles with each wrong
        token in a row from the same peer address."""
        now = time.monotonic()
        count, last = self._auth_failures.pop(client.peer, (0, now))
        if now - last > AUTH_FAILURES_FORGOTTEN_S:
            count = 0
        count += 1
        self._auth_failures[client.peer] = (count, now)
        if len(self._auth_failures) > _AUTH_PEERS_KEPT:
            del self._auth_failures[next(iter(self._auth_failures))]
        delay = 0.0 if count == 1 else min(AUTH_DELAY_MAX_S, AUTH_DELAY_FIRST_S * 2 ** (count - 2))
        self.gateway.metrics.api_auth_failures.inc()
        self.stranger_logs.bad_token.line(
            "api hello with a wrong or missing token; closing the connection",
            client=client.number,
            peer=client.peer,
            failures_in_a_row=count,
            delay_s=delay,
        )
        return delay

    def refused(self, reason: str, client: ClientConnection) -> None:
        self.gateway.metrics.api_refused.labels(reason).inc()
        if reason != "bad_token":  # logged with its count in auth_failed
            self.stranger_logs.refused[reason].line(
                "api connection refused", client=client.number, peer=client.peer, reason=reason
            )

    def _refuse_reserved_id(self, field: str, cl_ord_id: str | None) -> None:
        """A client's id may not start as the gateway's own do (`fx`): it could take the id
        the gateway makes up next. Nor with an OMS session's prefix: it would be taken for
        that OMS's order, its events would go to the OMS, and its disconnect would cancel
        the order."""
        if cl_ord_id is None:
            return
        if cl_ord_id.startswith(GENERATED_PREFIX):
            raise RequestError(
                f"{field} {cl_ord_id!r} starts with {GENERATED_PREFIX!r}, which the ids the "
                f"gateway makes up start with ({GENERATED_PREFIX}<start time>-<n>): choose "
                "another",
                code=p.ErrorCode.INVALID_FIELD,
            )
        bridge = self.gateway.config.bridge
        oms = bridge.oms_of(cl_ord_id) if bridge is not None else None
        if oms is not None:
            raise RequestError(
                f"{field} {cl_ord_id!r} starts with {oms.prefix!r}, which names the orders of "
                f"the FIX bridge's OMS session {oms.comp_id}",
                code=p.ErrorCode.INVALID_FIELD,
            )

    def handle_request(self, line: bytes, caller: Caller) -> bytes | Awaitable[bytes]:
        """One request line from a transport with no connection of its own (NATS
        request/reply): read, checked and served as a socket client's line is, with the same
        replies and error codes; the reply, or an awaitable of it when it waits on the
        exchange. Requests about a connection (`hello`, `subscribe`, `md_subscribe`, ...)
        are refused."""
        request_id: Any = None
        try:
            limit = self.config.max_line_bytes
            if len(line) > limit:
                raise RequestError(
                    f"a line may hold at most {limit} bytes", code=p.ErrorCode.LINE_TOO_LONG
                )
            request_id, request = p.parse_line(line, _OPS_WITHOUT_A_CONNECTION)
            if isinstance(request, CONNECTION_OPS):
                raise RequestError(
                    f"op {_OP_NAMES[type(request)]!r} is about a connection: served on the "
                    "local socket only",
                    code=p.ErrorCode.UNKNOWN_OP,
                )
            result = self.serve(caller, request)
            if _awaitable(result):
                return self._answer_later(request_id, result, caller.who)
            return p.reply_ok(request_id, result)
        except Exception as exc:
            return error_reply(request_id, exc, caller.who)

    async def _answer_later(self, request_id: Any, result: Awaitable[Any], who: str) -> bytes:
        try:
            return p.reply_ok(request_id, await result)
        except Exception as exc:
            return error_reply(request_id, exc, who)

    def dispatch(self, client: ClientConnection, request: p.Request) -> Any:
        """The answer, or an awaitable of it when it waits on the exchange."""
        g = self.gateway
        match request:
            case p.Subscribe():
                return self._subscribe(client, request)
            case p.Unsubscribe():
                topics = set(request.topics) if request.topics is not None else set(client.topics)
                self._refuse_unknown_topics(topics - client.topics)
                for symbol, kind in filter(None, map(p.md_stream_of, topics)):
                    g.md_unsubscribe(client, symbol, {kind})
                self._leave_topics(client, topics)
                return {"topics": sorted(client.topics)}
            case p.Hello():
                return self.greet(client, request)
            case p.MdSubscribe():
                return self._md_subscribe(client, request)
            case p.MdUnsubscribe():
                self._refuse_unknown_md_symbol(client, request.symbol)
                g.md_unsubscribe(client, request.symbol, set(request.what))
                self._leave_topics(client, p.md_topics(request.symbol, request.what))
                return {"symbol": request.symbol, "topics": sorted(client.topics)}
        return self.serve(client, request)

    def _leave_topics(self, client: ClientConnection, topics: set[str]) -> None:
        self.gateway.unsubscribe(client, topics)
        self.book_views.leave_topics(client, topics)
        client.topics -= topics

    def _stream_refused(self, holder: Hashable, symbol: str, what: str) -> None:
        """A client's stream the exchange ended (it has had the `md.rejected`): it leaves the
        stream's topic, so that it is never fed a stream of that symbol another client starts
        later, unawares. It subscribes again to have one."""
        if isinstance(holder, ClientConnection) and holder in self.clients:
            self._leave_topics(holder, p.md_topics(symbol, [what]))

    def serve(self, caller: Caller, request: p.Request) -> Any:
        """A request about no connection, as every transport serves it: the answer, or an
        awaitable of it when it waits on the exchange."""
        g = self.gateway
        match request:
            case p.NewOrder():
                self._refuse_reserved_id("cl_ord_id", request.cl_ord_id)
                return g.new_order(
                    request,
                    owner=caller.number,
                    cancel_on_disconnect=caller.cancel_on_disconnect,
                )
            case p.CancelOrderRequest():
                self._refuse_reserved_id("cancel_cl_ord_id", request.cancel_cl_ord_id)
                return g.cancel_order(request)
            case p.OrderStatusRequest():
                return g.order_status(request)
            case p.ListOrders() if request.from_exchange:
                if request.all:
                    raise RequestError(
                        "`all` with `from_exchange`: the exchange lists its open orders only",
                        code=p.ErrorCode.INVALID_REQUEST,
                    )
                return self._orders_from_exchange(request.symbol)
            case p.ListOrders():
                return Orders(orders=g.orders(request.all, request.symbol))
            case p.AccountRequest():
                return g.account()
            case p.TradesRequest():
                return Trades(trades=g.trades(request.symbol, request.limit))
            case p.Status():
                return g.status()
            case p.ResetSeqNums():
                return g.reset_sequence_numbers()
            case p.LogonAgain():
                return g.logon_again(caller.who)
            case p.Halt():
                return g.halt(caller.who, request.reason)
            case p.Resume():
                return g.resume(caller.who)
            case p.CancelAll():
                return g.cancel_all(caller.who)
            case p.BookRequest():
                over_socket = isinstance(caller, ClientConnection)
                book = g.book(
                    request.symbol,
                    request.depth,
                    "md_subscribe to it first" if over_socket else NOT_HELD_OVER_NATS,
                )
                return {
                    "symbol": book.symbol,
                    "bids": book.bids,
                    "asks": book.asks,
                    "seq": g.last_seq,
                }
        raise RequestError(f"op {type(request).__name__} not served", code=p.ErrorCode.UNKNOWN_OP)

    async def _orders_from_exchange(self, symbol: str | None) -> Orders:
        return Orders(orders=await self.gateway.orders_from_exchange(symbol))

    def greet(self, client: ClientConnection, request: p.Hello) -> dict[str, Any]:
        """A `hello` from a client already authorized (by the Unix socket's mode, or by the
        token: see ClientConnection._authenticate). Its `cancel_on_disconnect` holds for the
        orders placed from now on; each order placed before keeps the one it was placed with."""
        client.name = request.name
        client.cancel_on_disconnect = request.cancel_on_disconnect
        return {
            "server": "fixgw",
            "version": __version__,
            "session": self.gateway.session_state,
            "seq": self.gateway.last_seq,
            "request_timeout_s": self.config.request_timeout_s,
        }

    async def _md_subscribe(self, client: ClientConnection, request: p.MdSubscribe) -> Any:
        """The reply holds the book at `depth` as of `seq`: apply events with a higher seq on
        top of it. From the reply on, the client's book events are those of that depth
        (`BookViews`); until then, and if it fails, those it had."""
        g = self.gateway
        what = set(request.what)
        topics = p.md_topics(request.symbol, what)
        added = topics - client.topics  # on failure the client keeps what it had before
        client.topics |= topics
        g.subscribe(client, topics - self.book_views.topics_of(client))
        try:
            await g.md_subscribe(
                client, request.symbol, what, self.config.request_timeout_s, request.depth
            )
        except RequestError:
            g.unsubscribe(client, added)
            client.topics -= added
            raise
        result: dict[str, Any] = {"symbol": request.symbol, "what": sorted(what), "seq": g.last_seq}
        if "book" in what:
            self._show_book_at(client, request.symbol, request.depth)
            book = g.book(request.symbol, request.depth)
            result.update(bids=book.bids, asks=book.asks)
        return result

    def _subscribe(
        self, client: ClientConnection, request: p.Subscribe
    ) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        topics = set(request.topics)
        self._refuse_unknown_topics(topics)
        g = self.gateway
        seq = g.last_seq
        client.topics |= topics
        g.subscribe(client, topics - self.book_views.topics_of(client))
        if request.since is None:
            return {"topics": sorted(client.topics), "seq": seq, "replayed": 0}
        client.hold()
        self.journal.write_due()
        on_disk = min(seq, self.journal.written_seq)
        if on_disk < seq:  # the journal cannot write: the rest follows the reply, once it can
            later = g.replay(max(request.since, on_disk), frozenset(topics), until=seq)
            client.hold_first(later)
        lines = g.replay(request.since, frozenset(topics), until=on_disk)
        compacted = self.journal.compacted_through
        return self._replay(client, lines, seq, compacted if request.since < compacted else 0)

    def _show_book_at(self, client: ClientConnection, symbol: str, depth: int) -> None:
        """The client's book events of `symbol` from now on: the bus's own line for the whole
        book (depth 0), a view's cut to `depth` otherwise."""
        topic = p.md_topics(symbol, ["book"])
        if depth == 0:
            self.book_views.leave(client, symbol)
            self.gateway.subscribe(client, topic)
        else:
            self.gateway.unsubscribe(client, topic)
            self.book_views.place(client, symbol, depth)

    def _refuse_unknown_md_symbol(self, client: ClientConnection, symbol: str) -> None:
        """`unknown_symbol` for a symbol neither in the config nor among the client's topics
        (one a reload dropped keeps serving those on it, who may leave it): a misspelt one
        is refused, rather than answered ok while the client keeps the stream it meant to
        leave."""
        held = p.md_topics(symbol, ["book", "trades"]) & client.topics
        if symbol not in self.gateway.symbols and not held:
            raise RequestError(f"unknown symbol {symbol!r}", code=p.ErrorCode.UNKNOWN_SYMBOL)

    def _refuse_unknown_topics(self, topics: set[str]) -> None:
        """`unknown_topic` unless each is one of the topics there are (a misspelt `order`
        would leave the client subscribed to `orders`)."""
        known_md = {t for s in self.gateway.symbols for t in p.md_topics(s, ["book", "trades"])}
        unknown = topics - p.TOPICS_FIXED - known_md
        if unknown:
            raise RequestError(
                f"unknown topics: {', '.join(sorted(unknown))}", code=p.ErrorCode.UNKNOWN_TOPIC
            )

    async def _replay(
        self, client: ClientConnection, lines: Iterable[bytes], seq: int, compacted_through: int
    ) -> dict[str, Any]:
        """The journal up to `seq`, written as the client reads it; events published
        meanwhile are held back and follow the reply. `compacted_through`: the journal was
        compacted up to that seq, above the replay's start (0: the replay is whole)."""
        replayed = await client.write_replay(lines)
        reply: dict[str, Any] = {"topics": sorted(client.topics), "seq": seq, "replayed": replayed}
        if compacted_through:
            reply["compacted_through"] = compacted_through
        return reply


def _claim_socket_path(path: Path, socket_mode: int, gid: int | None) -> None:
    """Remove a stale socket (one nobody listens on); refuse anything else at the path.
    Directories made for it let through whom `socket_mode` lets in (search only), and have
    the socket's group `gid` (else the process's): the group the mode lets in."""
    why = can_create_directory(path.parent)
    if why is not None:
        raise StartupError(f"api.socket_path: {why}")
    search = 0o700 | (0o010 if socket_mode & 0o070 else 0) | (0o001 if socket_mode & 0o007 else 0)
    try:
        directories_for(path.parent, search, gid)
    except OSError as exc:
        raise StartupError(f"api.socket_path: cannot create {path.parent}: {exc}") from None
    why, stale = socket_path_problem(path)
    if why is not None:
        raise StartupError(f"api.socket_path: {why}")
    if stale:
        log.info("stale socket removed", socket=str(path))
        path.unlink()


def _release_socket_path(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
