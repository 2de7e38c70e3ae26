"""The NATS JetStream transport: one task on the gateway's loop, beside the order path.

It keeps one connection to the broker (`connection.BrokerConnection`). It takes requests on
`<prefix>.<gateway>.cmd` and hands each, as the socket's line it is, to the API server's
`handle_request`: the same validation, risk checks, throttle, kill switch and replies.
Market data for `nats.market_data` goes out on plain subjects on this connection
(`market_data.MarketDataPublisher`: a consumer is told what it missed). The journal's
events go to the stream from a process of their own (`publisher_process`, the default) or
from this loop (`publisher: inline`, `stream.StreamWriter` on this connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import nats.errors
import structlog
from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg

from fixgw.api.protocol import ErrorCode, reply_error
from fixgw.api.server import Caller
from fixgw.config import LogConfig, NatsConfig, Secrets
from fixgw.gateway import Gateway
from fixgw.nats.connection import BrokerConnection
from fixgw.nats.cursor import cursor_path, record_cursor, say_if_behind_compaction
from fixgw.nats.market_data import MarketDataPublisher
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.publisher import EventPublisher, journal_publisher
from fixgw.nats.publisher_process import PublisherProcess
from fixgw.nats.stream import StreamWriter
from fixgw.nats.subjects import CLIENT_HEADER, Subjects
from fixgw.results import NatsState

log = structlog.get_logger("fixgw.nats")

HandleRequest = Callable[[bytes, Caller], bytes | Awaitable[bytes]]

COMMANDS_WAITING_MAX = 1024
"""Requests waiting on the exchange at once (order_status, account, ...); one more is
refused."""
QUEUE_GROUP = "fixgw"
"""Commands are taken in a queue group: two processes under one gateway name (a mistake)
never both place the same order."""
REPLY_WAIT_S = 5.0
"""A reply ready while the gateway has no connection to the broker waits this long for the
next one: a client waits 5 s past `api.request_timeout_s` for the answer."""
_REFUSED = b'"ok":false,"error":{'
UNANSWERABLE_LOG_INTERVAL_S = 60.0


class CurrentConnection(Protocol):
    """`connection.BrokerConnection`, as a reply needs it."""

    async def current(self, wait_s: float) -> NatsConnection | None: ...


async def send_reply(
    broker: CurrentConnection, to: str, data: bytes, wait_s: float = REPLY_WAIT_S
) -> None:
    """On the connection of the moment the reply is ready, not the request's: one that
    waited on the exchange may outlive the connection it came on (the broker's node gone,
    the gateway on another), and each connection is a new client. Without one, the next
    made within `wait_s`; a reply that still cannot be sent is a warning (its sender hears
    nothing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        nc = await broker.current(max(0.0, deadline - loop.time()))
        if nc is None:
            log.warning("nats reply not sent", error="no connection to the broker", to=to)
            return
        try:
            await nc.publish(to, data)
            return
        except nats.errors.Error as exc:
            if not nc.is_connected and loop.time() < deadline:
                continue  # that connection ended as the reply went out: the next one
            log.warning("nats reply not sent", error=str(exc) or type(exc).__name__, to=to)
            return


class NatsCaller:
    """Requests that came on the cmd subject. `number` owns the orders they place (in memory
    only; no cancel on disconnect), whoever sent them; `who` names the sender of a halt, a
    resume or a `cancel_all` for the journal and the log: the subject, and the name the
    request claims in its `Fixgw-Client` header if it has one."""

    __slots__ = ("cancel_on_disconnect", "number", "who")

    def __init__(self, subject: str, name: str | None = None) -> None:
        self.number = f"nats:{subject}"
        self.who = f"nats request on {subject}" + (f" ({name})" if name else "")
        self.cancel_on_disconnect = False


class _MarketDataOut:
    """A bus subscriber for one symbol's book or trades: its lines, queued for the broker."""

    def __init__(self, market_data: MarketDataPublisher, subject: str) -> None:
        self._market_data = market_data
        self._subject = subject

    def deliver(self, line: bytes) -> None:
        self._market_data.queue(self._subject, line)


class NatsTransport:
    def __init__(
        self,
        config: NatsConfig,
        secrets: Secrets,
        gateway: Gateway,
        handle_request: HandleRequest,
        *,
        fsync: bool = False,
        log_config: LogConfig | None = None,
    ) -> None:
        """`log_config`: how the publisher process logs (as the gateway does)."""
        self.config = config
        self._secrets = secrets
        self._gateway = gateway
        self._handle_request = handle_request
        self.subjects = Subjects(config.subject_prefix, config.gateway)
        self.metrics = NatsMetrics(gateway.metrics.registry)
        journal = gateway.journal
        self._journal = journal
        self.publisher: EventPublisher | None = None
        """Publishing in this loop (`publisher: inline`); else `_apart` does."""
        self._writer: StreamWriter | None = None
        self._apart: PublisherProcess | None = None
        if config.publisher == "inline":
            self.publisher = journal_publisher(config, journal, self.metrics, fsync)
            self._writer = StreamWriter(
                config,
                self.subjects,
                self.publisher,
                journal,
                self._failed,
            )
        else:
            self._apart = PublisherProcess(
                config, secrets.nats, journal, self.metrics, fsync=fsync, log_config=log_config
            )
        self._caller = NatsCaller(self.subjects.commands)
        self._broker = BrokerConnection(config, secrets.nats, self._serve, self._failed)
        self._task: asyncio.Task[None] | None = None
        self._commands_sub: Any = None
        self._taking_commands = config.commands
        self._waiting: set[asyncio.Task[None]] = set()
        self._md_subjects = {
            self.subjects.market_data(symbol, kind): (symbol, kind)
            for symbol in config.market_data
            for kind in ("book", "trades")
        }
        self.market_data = MarketDataPublisher(
            gateway, self._md_subjects, self.metrics.market_data_dropped
        )
        self._md_outs: list[tuple[_MarketDataOut, list[str]]] = []
        self.failures = 0
        self.commands = 0
        self.commands_unanswerable = 0
        """Requests published with no reply subject: not taken (see `_unanswerable`)."""
        self._unanswerable_said_at: float | None = None
        self.last_error: str | None = None
        m = self.metrics
        m.connected.set_function(lambda: 1 if self.connected else 0)
        m.acked_seq.set_function(lambda: self.acked_seq)
        m.backlog.set_function(lambda: self.backlog)

    @property
    def acked_seq(self) -> int:
        if self.publisher is not None:
            return self.publisher.acked_seq
        assert self._apart is not None
        return self._apart.state.acked_seq

    @property
    def backlog(self) -> int:
        """The journal's events after the cursor (not seqs: they skip)."""
        if self.publisher is not None:
            return self.publisher.backlog
        assert self._apart is not None
        return self._apart.backlog

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.publisher is not None:
            self._journal.on_written.append(self._written)
        elif self._apart is not None:
            self._apart.start()
        self._gateway.nats_state = self.state
        for symbol in self.config.market_data:
            self._gateway.md_hold(QUEUE_GROUP, symbol, {"book", "trades"})
            for kind, topic in (("book", f"md:{symbol}"), ("trades", f"md:{symbol}:trades")):
                out = _MarketDataOut(self.market_data, self.subjects.market_data(symbol, kind))
                self._gateway.subscribe(out, [topic])
                self._md_outs.append((out, [topic]))
        self._task = asyncio.get_running_loop().create_task(self._broker.run())
        cursor = cursor_path(self.config, self._journal.path)
        record_cursor(self._journal.path, cursor)
        say_if_behind_compaction(cursor, self.acked_seq, self._journal.compacted_through)
        log.info(
            "nats transport started",
            servers=self.config.servers,
            stream=self.config.stream.name,
            subjects=f"{self.subjects.root}.>",
            publisher=self.config.publisher,
            from_seq=self.acked_seq,
        )

    async def stop_taking_commands(self) -> None:
        """Before the gateway stops: no more requests (those waiting are answered)."""
        self._taking_commands = False
        sub, self._commands_sub = self._commands_sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("nats commands unsubscribe failed", error=str(exc))
        if self._waiting:
            await asyncio.wait(self._waiting, timeout=2.0)

    async def stop(self, drain_s: float = 2.0) -> None:
        """After the gateway has stopped: what the journal holds is published for up to
        `drain_s` (the stream has the rest after the next start), then the connection ends."""
        await self.stop_taking_commands()
        p = self.publisher
        if p is not None and self.connected and p.acked_seq < self._journal.last_seq and drain_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.caught_up(), drain_s)
        if self._apart is not None:
            await self._apart.stop(drain_s)
        for out, topics in self._md_outs:
            self._gateway.unsubscribe(out, topics)
        for symbol in self.config.market_data:
            self._gateway.md_release(QUEUE_GROUP, symbol, {"book", "trades"})
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._broker.close()
        if self._written in self._journal.on_written:
            self._journal.on_written.remove(self._written)
        if p is not None:
            p.close()
        self._gateway.nats_state = None
        log.info("nats transport stopped", acked_seq=self.acked_seq)

    def _written(self) -> None:
        if self.publisher is not None:
            self.publisher.written(self._journal.written_bytes)

    @property
    def connected(self) -> bool:
        """Connected to the broker for everything it does: this loop's connection (commands,
        market data, and the events with `publisher: inline`), and the publisher process's."""
        return self._broker.connected and (self._apart is None or self._apart.connected)

    def state(self) -> NatsState:
        nc = self._broker.nc
        url = nc.connected_url if nc is not None and nc.is_connected else None
        journal_seq = self._journal.last_seq
        acked = self.acked_seq
        if self.publisher is not None:
            p = self.publisher
            lag_s, published, duplicates = p.lag_s, p.published, p.duplicates
            failures = self.failures
            writer_error = self._writer.last_error if self._writer is not None else None
            last_error = writer_error or p.last_error or self.last_error
        else:
            assert self._apart is not None
            a = self._apart.state
            lag_s, published, duplicates = a.lag_s, a.published, a.duplicates
            failures = self.failures + a.failures + self._apart.restarts
            last_error = (
                self._apart.silence or a.last_error or self._apart.last_error or self.last_error
            )
        return NatsState(
            connected=self.connected,
            server=f"{url.scheme}://{url.hostname}:{url.port}" if url is not None else None,
            stream=self.config.stream.name,
            subjects=f"{self.subjects.root}.>",
            acked_seq=acked,
            journal_seq=journal_seq,
            backlog=self.backlog,
            publish_lag_s=None if lag_s is None else round(lag_s, 6),
            published=published,
            duplicates=duplicates,
            failures=failures,
            commands=self.commands,
            commands_without_reply=self.commands_unanswerable,
            last_error=last_error,
            request_timeout_s=self._gateway.config.api.request_timeout_s,
        )

    # ------------------------------------------------------------ the connection

    async def _serve(self, nc: NatsConnection, gone: asyncio.Task[None]) -> None:
        """Until the connection ends: take commands, send market data, and publish events
        (with `publisher: inline`)."""
        md = asyncio.get_running_loop().create_task(self.market_data.send(nc))
        self.market_data.resume(nc)
        try:
            if self._taking_commands:
                self._commands_sub = await nc.subscribe(
                    self.subjects.commands, queue=QUEUE_GROUP, cb=self._on_command
                )
            if self._writer is not None:
                await self._writer.serve(nc, gone)
            else:
                await gone
        finally:
            self._commands_sub = None
            self.market_data.pause("the connection to the broker ended")
            md.cancel()

    def _failed(self, what: str, exc: BaseException, logged: bool = True) -> None:
        """Counted and shown in `last_error`; logged unless the caller logs it its way."""
        self.failures += 1
        self.metrics.failures.inc()
        self.last_error = f"{what}: {exc or type(exc).__name__}"
        if logged:
            log.warning(what, error=str(exc) or type(exc).__name__, acked_seq=self.acked_seq)

    # ------------------------------------------------------------ commands

    async def _on_command(self, msg: Msg) -> None:
        if not msg.reply:
            self._unanswerable(msg)
            return
        if not self._taking_commands or self._broker.nc is None:
            return
        if len(self._waiting) >= COMMANDS_WAITING_MAX:
            await self._reply(
                msg.reply,
                reply_error(
                    None,
                    ErrorCode.THROTTLED,
                    f"{COMMANDS_WAITING_MAX} requests wait on the exchange already; ask again",
                ),
            )
            return
        caller = self._caller
        if msg.headers:  # None without headers: nothing more per order than before
            name = msg.headers.get(CLIENT_HEADER)
            if name:
                caller = NatsCaller(self.subjects.commands, name)
        answer = self._handle_request(msg.data, caller)
        if isinstance(answer, bytes):
            await self._reply(msg.reply, answer)
            return
        task = asyncio.get_running_loop().create_task(self._reply_later(msg.reply, answer))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    def _unanswerable(self, msg: Msg) -> None:
        """A request published without a reply subject (`publish`, not `request`) is not
        taken: whoever sent it could never learn whether an order was placed. Counted, and
        logged at once and then at most once a minute, with the count."""
        self.commands_unanswerable += 1
        self.metrics.commands.labels("no_reply_subject").inc()
        now = time.monotonic()
        said = self._unanswerable_said_at
        if said is not None and now - said < UNANSWERABLE_LOG_INTERVAL_S:
            return
        self._unanswerable_said_at = now
        log.warning(
            "nats request without a reply subject not taken; send it as a request",
            subject=msg.subject,
            bytes=len(msg.data),
            not_taken_so_far=self.commands_unanswerable,
        )

    async def _reply_later(self, to: str, answer: Awaitable[bytes]) -> None:
        await self._reply(to, await answer)

    async def _reply(self, to: str, reply: bytes) -> None:
        self.commands += 1
        self.metrics.commands.labels("error" if _REFUSED in reply else "ok").inc()
        await send_reply(self._broker, to, reply.rstrip(b"\n"))
