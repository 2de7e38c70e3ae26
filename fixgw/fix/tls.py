"""TLS for FIX sessions, as a byte pipe beside QuickFIX.

The QuickFIX wheel on PyPI is built without TLS. Rather than ask every install to compile
it with OpenSSL flags, fixgw carries the session through a pipe: QuickFIX connects to a
loopback port, and the pipe speaks TLS to the exchange with Python's `ssl` (certificate
and host name verified by default, system CA store or a CA file, optional client
certificate). The simulator uses the same pipe the other way round to serve TLS.
Cost: one loopback hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("fixgw.fix.tls")


def client_context(
    ca_file: str | None, client_cert: str | None, client_key: str | None, verify: bool = True
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@dataclass
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None = None
    server_name: str | None = None
    """The name the remote certificate must carry (default: `host`)."""


class Pipe:
    """Accepts on `listen`, connects each connection to `target`, copies bytes both ways.

    Runs its own event loop on a thread, so it serves a thread-based acceptor and an asyncio
    gateway alike. The last failure to reach the target is kept in `last_error`.
    """

    def __init__(
        self,
        listen: Endpoint,
        target: Endpoint,
        name: str,
        accept: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        """`accept(peer, local)`: whether to carry a connection accepted on `local` from
        `peer`; None: every one."""
        self.listen = listen
        self.target = target
        self.name = name
        self.accept = accept
        self.last_error: str | None = None
        self.port = listen.port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, name=f"pipe-{name}", daemon=True)

    def start(self) -> int:
        """Start serving; returns the port it listens on (useful with port 0)."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{self.name}: pipe did not start")
        return self.port

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(
                self._serve, self.listen.host, self.listen.port, ssl=self.listen.tls
            )
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._started.set()
        self._loop.run_forever()
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        if self.accept is not None and not self.accept(peer, local):
            log.warning(
                "connection refused: not this process's own",
                pipe=self.name,
                peer=f"{peer[0]}:{peer[1]}" if peer else None,
            )
            writer.close()
            return
        target = self.target
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=target.tls,
                    server_hostname=(target.server_name or target.host) if target.tls else None,
                ),
                15,
            )
        except (OSError, TimeoutError) as exc:
            self.last_error = _describe(exc, target)
            log.error("cannot reach the other end", pipe=self.name, error=self.last_error)
            writer.close()
            return
        self.last_error = None
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _describe(exc: BaseException, target: Endpoint) -> str:
    where = f"{target.host}:{target.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where}"
    return f"cannot connect to {where}: {exc}"
