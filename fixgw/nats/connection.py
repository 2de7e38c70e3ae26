"""One connection to the NATS broker at a time, made again with backoff when it ends: the
gateway's transport and the publisher process both keep theirs this way.

The client's own reconnect is off: after a reconnect, nats-py sends what it buffered while
away, and an event lost in the dropped connection would then come after later ones. Each
connection is new instead, and publishing starts again from the first event the stream has
not acknowledged. Each attempt is one `connect_once`, paced by the configured backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NatsConnection
from nats.aio.client import ErrorCallback

from fixgw.config import NatsConfig
from fixgw.fix.reconnect import Backoff
from fixgw.fix.tls import client_context

log = structlog.get_logger("fixgw.nats")

PING_INTERVAL_S = 5
"""A broker that stops answering (no connection reset) is noticed after two pings more."""

CONNECTION_LOOKED_FOR_EVERY_S = 0.05
"""How often `BrokerConnection.current` looks for a connection while there is none."""

Serve = Callable[[NatsConnection, "asyncio.Task[None]"], Awaitable[None]]
"""What to do with a connection until the task given (its end) is done."""


def tls_context(config: NatsConfig) -> ssl.SSLContext | None:
    t = config.tls
    if not t.enabled and not any(url.startswith("tls://") for url in config.servers):
        return None
    return client_context(t.ca_file, t.client_cert, t.client_key, t.verify)


def connect_options(config: NatsConfig, secrets: Mapping[str, str]) -> dict[str, Any]:
    """nats.connect's keywords for the config's servers, credentials and TLS; `secrets`:
    the resolved `nats` secrets (password, token, nkey_seed)."""
    auth = config.auth
    options: dict[str, Any] = {
        "servers": list(config.servers),
        "name": f"fixgw {config.gateway}",
        "connect_timeout": max(1, math.ceil(config.connect_timeout_s)),
        "ping_interval": PING_INTERVAL_S,
        "max_outstanding_pings": 2,
    }
    if auth.creds_file is not None:
        options["user_credentials"] = auth.creds_file
    if "nkey_seed" in secrets:
        options["nkeys_seed_str"] = secrets["nkey_seed"]
    if auth.user is not None:
        options["user"] = auth.user
        options["password"] = secrets["password"]
    if "token" in secrets:
        options["token"] = secrets["token"]
    context = tls_context(config)
    if context is not None:
        options["tls"] = context
    return options


ONE_ATTEMPT: dict[str, Any] = {
    "allow_reconnect": False,
    "max_reconnect_attempts": 1,
    "reconnect_time_wait": 0,
}
"""nats.connect's keywords for one attempt. nats-py retries a refused first connection
inside the call, every `reconnect_time_wait` (2 s) up to `max_reconnect_attempts` times (60;
0 or less: for ever), even with `allow_reconnect` off (nats-io/nats.py#352); 1 is the fewest
it takes: each server that refuses the connection tried twice, with no wait."""


async def connect_once(
    options: Mapping[str, Any], error_cb: ErrorCallback | None = None
) -> NatsConnection:
    """A connection by one attempt at the servers, with no reconnect once made. It raises why
    the attempt failed (connection refused, `Authorization Violation`, ...), not nats-py's
    "no servers available". `error_cb`: the connection's errors once it is made."""
    connected = False
    why: Exception | None = None

    async def on_error(exc: Exception) -> None:
        nonlocal why
        if not connected:
            why = exc
        elif error_cb is not None:
            await error_cb(exc)

    try:
        nc = await nats.connect(**options, **ONE_ATTEMPT, error_cb=on_error)
    except nats.errors.NoServersError:
        if why is not None:
            raise why from None
        raise
    connected = True
    return nc


class BrokerConnection:
    def __init__(
        self,
        config: NatsConfig,
        secrets: Mapping[str, str],
        serve: Serve,
        failed: Callable[[str, BaseException], None],
        name: str = "",
    ) -> None:
        """`failed(what, exc)`: a connection could not be made, or ended in an error.
        `name`: added to the connection's name (the broker shows it)."""
        self._config = config
        self._secrets = secrets
        self._serve = serve
        self._failed = failed
        self._name = name
        r = config.reconnect
        self.backoff = Backoff(r.floor_s, r.ceiling_s, r.factor, r.jitter)
        self.nc: NatsConnection | None = None
        self._gone = asyncio.Event()
        """Set when the current connection ends."""

    @property
    def connected(self) -> bool:
        nc = self.nc
        return nc is not None and nc.is_connected

    async def current(self, wait_s: float) -> NatsConnection | None:
        """The connection now, or else the next one made within `wait_s` (None if none is):
        each connection is a new client, so whatever is sent later (a reply to a request
        that waited on the exchange) must take the one of the moment it is sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            nc = self.nc
            if nc is not None and nc.is_connected:
                return nc
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(CONNECTION_LOOKED_FOR_EVERY_S)

    async def run(self) -> None:
        """Connect, serve, and again, until cancelled."""
        failures_in_a_row = 0
        while True:
            try:
                nc = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("cannot connect to the NATS broker", exc)
                await asyncio.sleep(self.backoff.delay(failures_in_a_row))
                failures_in_a_row += 1
                continue
            failures_in_a_row = 0
            gone = asyncio.get_running_loop().create_task(self._until_gone(nc))
            try:
                await self._serve(nc, gone)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("nats connection failed", exc)
            finally:
                gone.cancel()
                await self.close()
            await asyncio.sleep(self.backoff.delay(0))

    async def _connect(self) -> NatsConnection:
        gone = asyncio.Event()

        async def on_closed() -> None:
            gone.set()

        async def on_error(exc: Exception) -> None:
            log.warning("nats connection error", error=str(exc) or type(exc).__name__)

        options = connect_options(self._config, self._secrets)
        if self._name:
            options["name"] += f" {self._name}"
        nc = await connect_once(
            {**options, "closed_cb": on_closed, "disconnected_cb": on_closed}, on_error
        )
        self.nc = nc
        self._gone = gone
        url = nc.connected_url
        log.info(
            "nats connected",
            server=f"{url.hostname}:{url.port}" if url else None,
            by=self._name or "gateway",
        )
        return nc

    async def _until_gone(self, nc: NatsConnection) -> None:
        """Until the connection ends. nats-py may not call back when it ends while it is
        flushing (the transport's drain raises first), so its state is looked at too."""
        while not self._gone.is_set() and nc.is_connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), 1.0)

    async def close(self) -> None:
        nc, self.nc = self.nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception as exc:
                log.debug("nats close failed", error=str(exc))
