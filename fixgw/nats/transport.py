"""The NATS JetStream transport: one task on the gateway's loop, beside the order path.

It keeps one connection to the broker (its own reconnects, with backoff: see below), makes
sure the stream is there, and runs the `publisher.EventPublisher`, which sends what the
journal has written. It takes requests on `<prefix>.<gateway>.cmd` and hands each, as the
socket's line it is, to the API server's `handle_request`: the same validation, risk
checks, throttle, kill switch and replies. Market data for `nats.market_data` goes out on
plain subjects, dropped while the broker is away.

The client's own reconnect is off: after a reconnect, nats-py sends what it buffered while
away, and an event lost in the dropped connection would then come after later ones. Each
connection is new instead, and publishing starts again from the first event the stream has
not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from fixgw.api.protocol import ErrorCode, reply_error
from fixgw.api.server import Caller
from fixgw.config import NatsConfig, Secrets
from fixgw.fix.reconnect import Backoff
from fixgw.fix.tls import client_context
from fixgw.gateway import Gateway
from fixgw.nats.cursor import Cursor
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.publisher import Ack, EventPublisher, PublishFailed
from fixgw.nats.subjects import Subjects, covers
from fixgw.nats.tail import JournalTail
from fixgw.results import NatsState

log = structlog.get_logger("fixgw.nats")

HandleRequest = Callable[[bytes, Caller], bytes | Awaitable[bytes]]

PING_INTERVAL_S = 5
"""A broker that stops answering (no connection reset) is noticed after two pings more."""
COMMANDS_WAITING_MAX = 1024
"""Requests waiting on the exchange at once (order_status, account, ...); one more is
refused."""
MARKET_DATA_QUEUED_MAX = 10_000
"""Market-data updates waiting to go out; past it, the oldest are dropped (counted)."""
QUEUE_GROUP = "fixgw"
"""Commands are taken in a queue group: two processes under one gateway name (a mistake)
never both place the same order."""
_SEQ = re.compile(rb'^\{"seq":(\d+)')
_REFUSED = b'"ok":false,"error":{'


class _PubAckError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: _PubAckError | None = None


_ack_decoder = msgspec.json.Decoder(_PubAck)


class NatsCaller:
    """Requests that came on the cmd subject: who placed their orders, for the journal."""

    def __init__(self, subject: str) -> None:
        self.number = f"nats:{subject}"
        self.who = f"nats request on {subject}"


class _Link:
    def __init__(self, nc: NatsConnection, stream: str) -> None:
        self._nc = nc
        self._stream = stream

    async def publish(self, subject: str, data: bytes, msg_id: str, reply_to: str) -> None:
        await self._nc.publish(
            subject,
            data,
            reply=reply_to,
            headers={"Nats-Msg-Id": msg_id, "Nats-Expected-Stream": self._stream},
        )


class _MarketDataOut:
    """A bus subscriber for one symbol's book or trades: its lines, queued for the broker."""

    def __init__(self, transport: NatsTransport, subject: str) -> None:
        self._transport = transport
        self._subject = subject

    def deliver(self, line: bytes) -> None:
        self._transport.queue_market_data(self._subject, line)


def tls_context(config: NatsConfig) -> ssl.SSLContext | None:
    t = config.tls
    if not t.enabled and not any(url.startswith("tls://") for url in config.servers):
        return None
    return client_context(t.ca_file, t.client_cert, t.client_key, t.verify)


def connect_options(config: NatsConfig, secrets: Secrets) -> dict[str, Any]:
    """nats.connect's keywords for the config's servers, credentials and TLS."""
    auth = config.auth
    options: dict[str, Any] = {
        "servers": list(config.servers),
        "name": f"fixgw {config.gateway}",
        "allow_reconnect": False,
        "connect_timeout": max(1, math.ceil(config.connect_timeout_s)),
        "ping_interval": PING_INTERVAL_S,
        "max_outstanding_pings": 2,
    }
    if auth.creds_file is not None:
        options["user_credentials"] = auth.creds_file
    if "nkey_seed" in secrets.nats:
        options["nkeys_seed_str"] = secrets.nats["nkey_seed"]
    if auth.user is not None:
        options["user"] = auth.user
        options["password"] = secrets.nats["password"]
    if "token" in secrets.nats:
        options["token"] = secrets.nats["token"]
    context = tls_context(config)
    if context is not None:
        options["tls"] = context
    return options


class NatsTransport:
    def __init__(
        self,
        config: NatsConfig,
        secrets: Secrets,
        gateway: Gateway,
        handle_request: HandleRequest,
        *,
        fsync: bool = False,
    ) -> None:
        self.config = config
        self._secrets = secrets
        self._gateway = gateway
        self._handle_request = handle_request
        self.subjects = Subjects(config.subject_prefix, config.gateway)
        self.metrics = NatsMetrics(gateway.metrics.registry)
        journal = gateway.journal
        self._journal = journal
        cursor_path = config.cursor_path or f"{journal.path}.nats"
        self._tail = JournalTail(journal)
        self.publisher = EventPublisher(
            self._tail,
            Cursor(Path(cursor_path), config.stream.name, config.gateway, fsync),
            self.subjects,
            self.metrics,
            window=config.window,
            ack_timeout_s=config.ack_timeout_s,
            reply_prefix="_INBOX.unset",
        )
        r = config.reconnect
        self._backoff = Backoff(r.floor_s, r.ceiling_s, r.factor, r.jitter)
        self._caller = NatsCaller(self.subjects.commands)
        self._nc: NatsConnection | None = None
        self._gone = asyncio.Event()
        """Set when the current connection ends."""
        self._task: asyncio.Task[None] | None = None
        self._commands_sub: Any = None
        self._taking_commands = config.commands
        self._waiting: set[asyncio.Task[None]] = set()
        self._md_queue: deque[tuple[str, bytes]] = deque()
        self._md_ready = asyncio.Event()
        self._md_outs: list[tuple[_MarketDataOut, list[str]]] = []
        self.failures = 0
        self.commands = 0
        self.last_error: str | None = None
        m = self.metrics
        m.connected.set_function(lambda: 1 if self.connected else 0)
        m.acked_seq.set_function(lambda: self.publisher.acked_seq)
        m.backlog.set_function(lambda: max(0, self._journal.last_seq - self.publisher.acked_seq))

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._journal.on_written.append(self._written)
        self._gateway.nats_state = self.state
        for symbol in self.config.market_data:
            self._gateway.md_hold(QUEUE_GROUP, symbol, {"book", "trades"})
            for kind, topic in (("book", f"md:{symbol}"), ("trades", f"md:{symbol}:trades")):
                out = _MarketDataOut(self, self.subjects.market_data(symbol, kind))
                self._gateway.subscribe(out, [topic])
                self._md_outs.append((out, [topic]))
        self._task = asyncio.get_running_loop().create_task(self._supervise())
        log.info(
            "nats transport started",
            servers=self.config.servers,
            stream=self.config.stream.name,
            subjects=f"{self.subjects.root}.>",
            from_seq=self.publisher.acked_seq,
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
        if self.connected and self.publisher.acked_seq < self._journal.last_seq and drain_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.publisher.caught_up(), drain_s)
        for out, topics in self._md_outs:
            self._gateway.unsubscribe(out, topics)
        for symbol in self.config.market_data:
            self._gateway.md_release(QUEUE_GROUP, symbol, {"book", "trades"})
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()
        if self._written in self._journal.on_written:
            self._journal.on_written.remove(self._written)
        self.publisher.cursor.save()
        self._tail.close()
        self._gateway.nats_state = None
        log.info("nats transport stopped", acked_seq=self.publisher.acked_seq)

    def _written(self) -> None:
        self.publisher.written(self._journal.written_bytes)

    @property
    def connected(self) -> bool:
        nc = self._nc
        return nc is not None and nc.is_connected

    def state(self) -> NatsState:
        nc, p = self._nc, self.publisher
        url = nc.connected_url if nc is not None and nc.is_connected else None
        journal_seq = self._journal.last_seq
        return NatsState(
            connected=self.connected,
            server=f"{url.scheme}://{url.hostname}:{url.port}" if url is not None else None,
            stream=self.config.stream.name,
            subjects=f"{self.subjects.root}.>",
            acked_seq=p.acked_seq,
            journal_seq=journal_seq,
            backlog=max(0, journal_seq - p.acked_seq),
            publish_lag_s=None if p.lag_s is None else round(p.lag_s, 6),
            published=p.published,
            duplicates=p.duplicates,
            failures=self.failures,
            commands=self.commands,
            last_error=self.last_error,
        )

    # ------------------------------------------------------------ the connection

    async def _supervise(self) -> None:
        failures_in_a_row = 0
        while True:
            try:
                nc = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("cannot connect to the NATS broker", exc)
                await asyncio.sleep(self._backoff.delay(failures_in_a_row))
                failures_in_a_row += 1
                continue
            failures_in_a_row = 0
            try:
                await self._serve(nc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("nats connection failed", exc)
            finally:
                await self._close()
            await asyncio.sleep(self._backoff.delay(0))

    async def _connect(self) -> NatsConnection:
        gone = asyncio.Event()

        async def on_closed() -> None:
            gone.set()

        async def on_error(exc: Exception) -> None:
            log.warning("nats connection error", error=str(exc) or type(exc).__name__)

        nc = await nats.connect(
            **connect_options(self.config, self._secrets),
            closed_cb=on_closed,
            disconnected_cb=on_closed,
            error_cb=on_error,
        )
        self._nc = nc
        self._gone = gone
        url = nc.connected_url
        log.info("nats connected", server=f"{url.hostname}:{url.port}" if url else None)
        return nc

    async def _close(self) -> None:
        nc, self._nc = self._nc, None
        self._commands_sub = None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception as exc:
                log.debug("nats close failed", error=str(exc))

    async def _serve(self, nc: NatsConnection) -> None:
        """Until the connection ends: publish events (started again after a failure),
        take commands, send market data."""
        js = nc.jetstream(timeout=self.config.ack_timeout_s)
        self.publisher.reply_prefix = nc.new_inbox()
        await nc.subscribe(f"{self.publisher.reply_prefix}.>", cb=self._on_ack)
        if self._taking_commands:
            self._commands_sub = await nc.subscribe(
                self.subjects.commands, queue=QUEUE_GROUP, cb=self._on_command
            )
        loop = asyncio.get_running_loop()
        md = loop.create_task(self._send_market_data(nc))
        gone = loop.create_task(self._until_gone(nc))
        try:
            while not gone.done():
                publishing = loop.create_task(self._publish(js, nc))
                await asyncio.wait({publishing, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not publishing.done():
                    publishing.cancel()
                    await asyncio.gather(publishing, return_exceptions=True)
                    return
                try:
                    publishing.result()
                except nats.errors.ConnectionClosedError:
                    return
                except (PublishFailed, nats.errors.Error) as exc:
                    self._failed("publishing to the stream stopped; starting again", exc)
                await asyncio.wait({gone}, timeout=self._backoff.delay(0))
        finally:
            md.cancel()
            gone.cancel()

    async def _until_gone(self, nc: NatsConnection) -> None:
        """Until the connection ends. nats-py may not call back when it ends while it is
        flushing (the transport's drain raises first), so its state is looked at too."""
        while not self._gone.is_set() and nc.is_connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), 1.0)

    async def _publish(self, js: JetStreamContext, nc: NatsConnection) -> None:
        await self._ensure_stream(js)
        self.publisher.skip_to(await self._last_in_stream(js))
        await self.publisher.run(_Link(nc, self.config.stream.name))

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        self.metrics.failures.inc()
        self.last_error = f"{what}: {exc or type(exc).__name__}"
        log.warning(what, error=str(exc) or type(exc).__name__, acked_seq=self.publisher.acked_seq)

    # ------------------------------------------------------------ the stream

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        s = self.config.stream
        want = self.subjects.events
        try:
            info = await js.stream_info(s.name)
        except nats.js.errors.NotFoundError:
            if not s.create:
                raise PublishFailed(
                    f"stream {s.name} does not exist, and nats.stream.create is false"
                ) from None
            await js.add_stream(
                StreamConfig(
                    name=s.name,
                    subjects=[self.subjects.stream_subjects],
                    storage=StorageType.FILE,
                    num_replicas=s.replicas,
                    duplicate_window=s.duplicate_window_s,
                    max_age=s.max_age_s or None,
                    max_bytes=s.max_bytes,
                )
            )
            log.info("nats stream created", stream=s.name, subjects=self.subjects.stream_subjects)
            return
        subjects = list(info.config.subjects or [])
        if not any(covers(pattern, want) for pattern in subjects):
            if not s.create:
                raise PublishFailed(
                    f"stream {s.name} does not take {want} (its subjects: {subjects}), and "
                    "nats.stream.create is false"
                )
            await js.update_stream(info.config.evolve(subjects=[*subjects, want]))
            log.info("nats stream takes this gateway's subjects too", stream=s.name, added=want)
        window = info.config.duplicate_window or 0
        if window < s.duplicate_window_s:
            log.warning(
                "the stream's duplicate window is shorter than nats.stream.duplicate_window_s",
                stream=s.name,
                duplicate_window_s=window,
            )

    async def _last_in_stream(self, js: JetStreamContext) -> int:
        """The seq of this gateway's last event in the stream (0: none)."""
        try:
            msg = await js.get_last_msg(self.config.stream.name, self.subjects.events)
        except nats.js.errors.NotFoundError:
            return 0
        found = _SEQ.match(msg.data or b"")
        seq = int(found.group(1)) if found else 0
        journal_end = max(self._journal.last_seq, self._journal.reserved_seq)
        if seq > journal_end:
            self.last_error = (
                f"the stream holds seq {seq} of gateway {self.config.gateway}, beyond this "
                f"journal's {journal_end}: is another journal publishing under this name?"
            )
            log.error(
                "nats stream is ahead of the journal; events up to its seq are not published",
                stream=self.config.stream.name,
                stream_seq=seq,
                journal_seq=journal_end,
            )
        return seq

    async def _on_ack(self, msg: Msg) -> None:
        _, run, seq = msg.subject.rsplit(".", 2)
        try:
            run_number, seq_number = int(run), int(seq)
        except ValueError:
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            ack = Ack(error="no stream takes this subject (no responders)")
        else:
            try:
                answer = _ack_decoder.decode(msg.data)
            except msgspec.DecodeError:
                ack = Ack(error=f"unreadable acknowledgement: {msg.data[:200]!r}")
            else:
                if answer.error is not None:
                    ack = Ack(error=f"{answer.error.description} ({answer.error.err_code})")
                else:
                    ack = Ack(duplicate=answer.duplicate)
        self.publisher.acknowledged(run_number, seq_number, ack)

    # ------------------------------------------------------------ commands

    async def _on_command(self, msg: Msg) -> None:
        if not msg.reply:
            return  # nobody to answer: a request needs a reply subject
        nc = self._nc
        if not self._taking_commands or nc is None:
            return
        if len(self._waiting) >= COMMANDS_WAITING_MAX:
            await self._reply(
                nc,
                msg.reply,
                reply_error(
                    None,
                    ErrorCode.THROTTLED,
                    f"{COMMANDS_WAITING_MAX} requests wait on the exchange already; ask again",
                ),
            )
            return
        answer = self._handle_request(msg.data, self._caller)
        if isinstance(answer, bytes):
            await self._reply(nc, msg.reply, answer)
            return
        task = asyncio.get_running_loop().create_task(self._reply_later(nc, msg.reply, answer))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _reply_later(self, nc: NatsConnection, to: str, answer: Awaitable[bytes]) -> None:
        await self._reply(nc, to, await answer)

    async def _reply(self, nc: NatsConnection, to: str, reply: bytes) -> None:
        self.commands += 1
        self.metrics.commands.labels("error" if _REFUSED in reply else "ok").inc()
        try:
            await nc.publish(to, reply.rstrip(b"\n"))
        except nats.errors.Error as exc:
            log.info("nats reply not sent", error=str(exc) or type(exc).__name__)

    # ------------------------------------------------------------ market data

    def queue_market_data(self, subject: str, line: bytes) -> None:
        if not self.connected:
            self.metrics.market_data_dropped.inc()
            return
        if len(self._md_queue) >= MARKET_DATA_QUEUED_MAX:
            self._md_queue.popleft()
            self.metrics.market_data_dropped.inc()
        self._md_queue.append((subject, line))
        self._md_ready.set()

    async def _send_market_data(self, nc: NatsConnection) -> None:
        queue = self._md_queue
        while True:
            await self._md_ready.wait()
            self._md_ready.clear()
            while queue:
                subject, line = queue.popleft()
                await nc.publish(subject, line.rstrip(b"\n"))
