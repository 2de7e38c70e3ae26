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
import socket
from pathlib import Path
from typing import Any

import structlog

from fixgw.api import protocol as p
from fixgw.config import ApiConfig
from fixgw.errors import FixgwError, RequestError
from fixgw.gateway import Gateway

log = structlog.get_logger("fixgw.api")

_READ_CHUNK = 65536
_client_numbers = itertools.count(1)


class ClientConnection:
    def __init__(
        self,
        server: ApiServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        needs_token: bool,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.number = next(_client_numbers)
        self.name = ""
        self.cancel_on_disconnect = False
        self.authorized = not needs_token
        self.topics: set[str] = set()
        self.closed = False
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()

    @property
    def who(self) -> str:
        """For the journal: which connection asked."""
        return f"api client {self.number}" + (f" ({self.name})" if self.name else "")

    def deliver(self, line: bytes) -> None:
        """Queue one line (an event, or a reply) for this client.

        Lines are written together once per turn of the loop: one system call per client
        for a whole burst of events rather than one per event, and replies keep their
        place among the events."""
        if self.closed:
            return
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    send = deliver

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > self.server.config.client_buffer_bytes:
            self.drop(
                "client is not reading: its buffer passed "
                f"{self.server.config.client_buffer_bytes} bytes"
            )

    def drop(self, reason: str) -> None:
        if self.closed:
            return
        log.warning("client disconnected", client=self.number, name=self.name, reason=reason)
        self.close()
        self.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.server.gateway.bus.unsubscribe(self)
        self.server.gateway.market_data.client_gone(self)

    async def serve(self) -> None:
        limit = self.server.config.max_line_bytes
        buffer = bytearray()
        discarding = False
        try:
            while not self.closed:
                chunk = await self.reader.read(_READ_CHUNK)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    end = buffer.find(b"\n")
                    if end < 0:
                        if len(buffer) > limit and not discarding:
                            self.send(
                                p.reply_error(
                                    None,
                                    p.ErrorCode.LINE_TOO_LONG,
                                    f"a line may hold at most {limit} bytes",
                                )
                            )
                            discarding = True
                        if discarding:
                            buffer.clear()
                        break
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if discarding:
                        discarding = False
                        continue
                    if len(line) > limit:
                        self.send(
                            p.reply_error(
                                None,
                                p.ErrorCode.LINE_TOO_LONG,
                                f"a line may hold at most {limit} bytes",
                            )
                        )
                    elif line.strip():
                        await self.handle(line)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.close()
            with contextlib.suppress(Exception):
                self.writer.close()

    async def handle(self, line: bytes) -> None:
        request_id: Any = None
        try:
            request_id, request = p.parse_line(line)
            if not self.authorized and not isinstance(request, p.Hello):
                raise RequestError(
                    "send `hello` with the token first", code=p.ErrorCode.UNAUTHORIZED
                )
            result = await self.server.dispatch(self, request)
            self.send(p.reply_ok(request_id, result))
        except RequestError as exc:
            rid = getattr(exc, "request_id", request_id)
            self.send(p.reply_error(rid, exc.code, exc.message))
        except Exception as exc:
            log.exception("request failed", client=self.number)
            self.send(p.reply_error(request_id, p.ErrorCode.INTERNAL_ERROR, repr(exc)))


class ApiServer:
    def __init__(self, gateway: Gateway, token: str | None) -> None:
        self.gateway = gateway
        self._token = token
        self._servers: list[asyncio.Server] = []
        self.clients: set[ClientConnection] = set()

    @property
    def config(self) -> ApiConfig:
        """The gateway's current API settings (SIGHUP may change some)."""
        return self.gateway.config.api

    async def start(self) -> None:
        path = _claim_socket_path(Path(self.config.socket_path))
        # Created with the final mode: no window in which the socket is open to others.
        old_umask = os.umask(0o777 & ~int(self.config.socket_mode, 8))
        try:
            server = await asyncio.start_unix_server(
                lambda r, w: self._accept(r, w, needs_token=False),
                path=str(path),
                limit=self.config.max_line_bytes,
            )
        finally:
            os.umask(old_umask)
        if self.config.socket_group:
            os.chown(path, -1, grp.getgrnam(self.config.socket_group).gr_gid)
        self._servers.append(server)
        log.info("api listening", socket=str(path), mode=self.config.socket_mode)
        if self.config.tcp is not None:
            tcp = await asyncio.start_server(
                lambda r, w: self._accept(r, w, needs_token=True),
                host=self.config.tcp.host,
                port=self.config.tcp.port,
            )
            self._servers.append(tcp)
            log.info("api listening", tcp=f"{self.config.tcp.host}:{self.config.tcp.port}")

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for client in list(self.clients):
            client.close()
            client.transport.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        _release_socket_path(Path(self.config.socket_path))

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, needs_token: bool
    ) -> None:
        client = ClientConnection(self, reader, writer, needs_token)
        self.clients.add(client)
        log.info("client connected", client=client.number)
        try:
            await client.serve()
        finally:
            self.clients.discard(client)
            log.info("client gone", client=client.number, name=client.name)
            self.gateway.client_gone(client.number, client.cancel_on_disconnect)

    async def dispatch(self, client: ClientConnection, request: p.Request) -> Any:
        g = self.gateway
        match request:
            case p.NewOrder():
                return g.new_order(request, owner=client.number)
            case p.CancelOrderRequest():
                return g.cancel_order(request)
            case p.OrderStatusRequest():
                return await g.order_status(request)
            case p.ListOrders() if request.from_exchange:
                return {"orders": await g.orders_from_exchange(request.symbol)}
            case p.ListOrders():
                return {"orders": g.list_orders(request.all)}
            case p.AccountRequest():
                return await g.account_info()
            case p.TradesRequest():
                return {"trades": g.trades(request.symbol, request.limit)}
            case p.Status():
                return g.status()
            case p.ResetSeqNums():
                return g.reset_sequence_numbers()
            case p.Halt():
                return g.halt(client.who, request.reason)
            case p.Resume():
                return g.resume(client.who)
            case p.CancelAll():
                return g.cancel_all(client.who)
            case p.Subscribe():
                return self._subscribe(client, request)
            case p.Unsubscribe():
                topics = set(request.topics) if request.topics is not None else set(client.topics)
                g.bus.unsubscribe(client, topics)
                client.topics -= topics
                return {"topics": sorted(client.topics)}
            case p.Hello():
                return self._hello(client, request)
            case p.MdSubscribe():
                return await self._md_subscribe(client, request)
            case p.MdUnsubscribe():
                g.market_data.unsubscribe(client, request.symbol, set(request.what))
                topics = p.md_topics(request.symbol, request.what)
                g.bus.unsubscribe(client, topics)
                client.topics -= topics
                return {"symbol": request.symbol, "topics": sorted(client.topics)}
            case p.BookRequest():
                return {
                    **g.market_data.book_levels(request.symbol, request.depth),
                    "seq": g.bus.seq,
                }
        raise RequestError(f"op {type(request).__name__} not served", code=p.ErrorCode.UNKNOWN_OP)

    def _hello(self, client: ClientConnection, request: p.Hello) -> dict[str, Any]:
        if not client.authorized:
            if (
                request.token is None
                or self._token is None
                or not hmac.compare_digest(request.token.encode(), self._token.encode())
            ):
                raise RequestError("bad or missing token", code=p.ErrorCode.UNAUTHORIZED)
            client.authorized = True
        client.name = request.name
        client.cancel_on_disconnect = request.cancel_on_disconnect
        return {
            "server": "fixgw",
            "version": self.gateway.status()["version"],
            "session": self.gateway.session_state,
            "seq": self.gateway.bus.seq,
        }

    async def _md_subscribe(self, client: ClientConnection, request: p.MdSubscribe) -> Any:
        """The reply holds the book as of `seq`: apply events with a higher seq on top of it."""
        md = self.gateway.market_data
        md.validate(request.symbol, request.depth)
        what = set(request.what)
        topics = p.md_topics(request.symbol, what)
        client.topics |= topics
        self.gateway.bus.subscribe(client, topics)
        try:
            await md.subscribe(client, request.symbol, what, self.config.request_timeout_s)
        except RequestError:
            self.gateway.bus.unsubscribe(client, topics)
            client.topics -= topics
            raise
        result: dict[str, Any] = {
            "symbol": request.symbol,
            "what": sorted(what),
            "seq": self.gateway.bus.seq,
        }
        if "book" in what:
            result.update(md.book_levels(request.symbol, request.depth))
        return result

    def _subscribe(self, client: ClientConnection, request: p.Subscribe) -> dict[str, Any]:
        topics = set(request.topics)
        known_md = {t for s in self.gateway.symbols for t in p.md_topics(s, ["book", "trades"])}
        unknown = topics - p.TOPICS_FIXED - known_md
        if unknown:
            raise RequestError(
                f"unknown topics: {', '.join(sorted(unknown))}", code=p.ErrorCode.UNKNOWN_TOPIC
            )
        bus = self.gateway.bus
        seq = bus.seq
        client.topics |= topics
        bus.subscribe(client, topics)
        replayed = 0
        if request.since is not None:
            # Nothing is published between here and the reply: the loop does not yield.
            for line in bus.replay(request.since, frozenset(topics)):
                client.deliver(line)
                replayed += 1
        return {"topics": sorted(client.topics), "seq": seq, "replayed": replayed}


def _claim_socket_path(path: Path) -> Path:
    """Remove a stale socket file; refuse to steal one that another process still serves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()
            else:
                raise FixgwError(f"{path}: another process is serving this socket")
    return path


def _release_socket_path(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
