"""YAML -> typed, validated, frozen config.

msgspec does the validation: unknown keys, wrong types and out-of-range values fail at
load with the key path (`session.port: Expected int <= 65535`). Secrets are never inline:
they are read from the environment or a file named in the config.
Relative paths are taken from the working directory.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import yaml

from fixgw.decimals import PlainDecimal, decode_hook
from fixgw.domain import Side
from fixgw.errors import ConfigError
from fixgw.venues.okcoin.config import OkcoinConfig

T = TypeVar("T")

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
C_INT_MAX = 2**31 - 1
"""The largest number QuickFIX takes for a setting it reads as an int; above it, every
connection attempt fails ("Illegal value")."""
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
FileMode = Annotated[str, msgspec.Meta(pattern=r"^0?[0-7]{3}$")]


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class SecretRef(_Config, frozen=True, kw_only=True):
    """Where a secret is read from: `{env: NAME}` or `{file: PATH}` (first line, stripped)."""

    env: str | None = None
    file: str | None = None


class TlsConfig(_Config, frozen=True, kw_only=True):
    enabled: bool = True
    """OKCoin requires TLS; turn it off only for a loopback simulator."""
    ca_file: str | None = None
    """CA bundle to verify the exchange with; default: the system store."""
    server_name: str | None = None
    """The name the exchange's certificate must carry; default: `session.host`."""
    client_cert: str | None = None
    client_key: str | None = None
    """Both or neither (a file that holds both is named twice)."""
    verify: bool = True
    """Off only for testing: no certificate or host name check at all."""

    def __post_init__(self) -> None:
        _both_or_neither(self.client_cert, self.client_key)
        if self.server_name is not None:
            why = _host_name_problem(self.server_name)
            if why is not None:
                raise ValueError(f"server_name: {self.server_name!r} {why}")


def _host_name_problem(name: str) -> str | None:
    """Why TLS cannot send `name` as the server's name (each connection would fail on it),
    or None."""
    if any(not c.isprintable() or c.isspace() for c in name):
        return "holds a space or a control character"
    try:
        name.encode("idna")
    except UnicodeError:
        return "has an empty label (two dots in a row, or a dot first) or one over 63 characters"
    return None


def _both_or_neither(client_cert: str | None, client_key: str | None) -> None:
    """A client certificate is its certificate and its key: one alone was ignored (a key)
    or failed only at the handshake (a certificate)."""
    if client_key is not None and client_cert is None:
        raise ValueError("client_key: given without client_cert; give both, or neither")
    if client_cert is not None and client_key is None:
        raise ValueError(
            "client_cert: given without client_key; give both (the same file, if it holds "
            "both), or neither"
        )


class ReconnectConfig(_Config, frozen=True, kw_only=True):
    """Exponential backoff between connection attempts: floor_s * factor ** failures in a
    row, at most ceiling_s, less up to `jitter` of it at random. A session that ends within
    `stable_s` of its logon counts as a failure (0: none does)."""

    floor_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 1.0
    ceiling_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60.0
    factor: Annotated[float, msgspec.Meta(ge=1, le=10)] = 2.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    stable_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 30.0

    def __post_init__(self) -> None:
        if self.ceiling_s < self.floor_s:
            raise ValueError("ceiling_s must not be below floor_s")


class SessionConfig(_Config, frozen=True, kw_only=True):
    host: NonEmpty = "127.0.0.1"
    port: Port = 9880
    venue: Literal["okcoin", "fix44"] = "okcoin"
    """The venue's FIX dialect: OKCoin's, or plain FIX 4.4 (any broker or venue that speaks
    standard order entry; see docs/venues.md)."""
    sender_comp_id: NonEmpty
    """Ours; OKCoin asks for a long random string (a UUID) that others cannot guess."""
    target_comp_id: NonEmpty | None = None
    """Theirs; default: the venue's (OKCoin: OKSERVER; plain FIX 4.4 has none: set it)."""
    heartbeat_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 30
    reconnect: ReconnectConfig = msgspec.field(default_factory=ReconnectConfig)
    reset_seq_num_on_logon: bool = False
    """Sends 141=Y on every logon. Off: sequence numbers persist and gaps are resent."""
    store_dir: NonEmpty = "var/store"
    logout_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    """Shutdown waits this long for the exchange's answer to its Logout (QuickFIX's
    LogoutTimeout, whole seconds); at most a minute, within a service manager's stop
    timeout."""
    send_buffer_bytes: Annotated[int, msgspec.Meta(ge=4096, le=C_INT_MAX)] | None = None
    """The connection's socket send buffer; default: the kernel sizes it (which caps it at
    its own limit, net.core.wmem_max). While the exchange does not read, what does not fit
    waits in QuickFIX's queue."""
    reconcile_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    """After a logon, how long to wait for the status of the orders believed open before
    taking new orders anyway (with an error in the log)."""
    dictionary: str | None = None
    """The venue's QuickFIX data dictionary; default: the venue's own (the OKCoin dictionary
    bundled with fixgw, or the stock FIX44.xml). Messages from the venue are read with
    standard FIX 4.4 around it (`fixgw.fix.dictionary`)."""
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)

    def __post_init__(self) -> None:
        if self.tls.enabled and self.tls.server_name is None:
            why = _host_name_problem(self.host)
            if why is not None:
                raise ValueError(
                    f"host: {self.host!r} {why}; with TLS on it is also the name the "
                    "exchange's certificate is checked against (tls.server_name's default)"
                )

    @property
    def tls_server_name(self) -> str:
        """The name TLS sends (SNI) and checks the exchange's certificate against:
        `tls.server_name`, else `host`, without a trailing dot. That dot only makes a DNS
        name absolute (the connection itself still uses `host` as written); SNI never
        carries it (RFC 6066, 3) and certificates do not, so kept, every check failed."""
        return (self.tls.server_name or self.host).removesuffix(".")


class Credentials(_Config, frozen=True, kw_only=True):
    api_key: SecretRef | None = None
    """The Logon's Username (553): OKCoin's API key (required for OKCoin)."""
    secret_key: SecretRef | None = None
    """The Logon's Password (554): OKCoin's secret key (required for OKCoin)."""


class TcpConfig(_Config, frozen=True, kw_only=True):
    host: NonEmpty = "127.0.0.1"
    """Loopback only: 127.0.0.0/8, ::1, or a name that resolves to nothing else (checked at
    start). The listener has no TLS: the token and the order flow travel in clear."""
    port: Port
    token: SecretRef
    """Clients must send it in `hello` before anything else. At least 128 bits of entropy
    (32 hex or 22 base64url characters): `python -c 'import secrets;
    print(secrets.token_urlsafe(32))'`."""
    hello_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    """A connection that has not sent a good `hello` within this time is closed."""

    def __post_init__(self) -> None:
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return  # a name: it must resolve to loopback addresses only (fixgw.preflight)
        if not address.is_loopback:
            raise ValueError(
                f"host {self.host!r} is not a loopback address (127.0.0.1, ::1): the TCP "
                "listener has no TLS and serves this machine only"
            )


SOCKET_PATH_MAX_BYTES = 107
"""The longest path a Unix socket may have: Linux's `sun_path`, 108 bytes, less the NUL
that ends it. The kernel would take 108 without it, but Python (its `socket` module, which
asyncio and uvloop bind with too) refuses 108 as too long, and so does Go's."""


def socket_path_too_long(path: str) -> str | None:
    """Why no Unix socket can be at `path` (relative to the working directory), or None."""
    size = len(os.fsencode(path))
    if size <= SOCKET_PATH_MAX_BYTES:
        return None
    return (
        f"{path} is {size} bytes long, and a Unix socket's path may have at most "
        f"{SOCKET_PATH_MAX_BYTES}: choose a shorter one"
    )


class ApiConfig(_Config, frozen=True, kw_only=True):
    socket_path: NonEmpty = "/run/fixgw/fixgw.sock"
    """Created at start; a socket left there by a process that is gone is replaced, anything
    else there (a file, a live socket) stops the start."""
    socket_mode: FileMode = "0660"
    socket_group: str | None = None
    tcp: TcpConfig | None = None
    max_clients: Annotated[int, msgspec.Meta(ge=1)] = 1024
    """Connections served at once, Unix socket and TCP together; one more is sent a
    `too_many_clients` error line and closed."""
    max_line_bytes: Annotated[int, msgspec.Meta(ge=256, le=16 * 1024 * 1024)] = 65536
    client_buffer_bytes: Annotated[int, msgspec.Meta(ge=65536)] = 16 * 1024 * 1024
    """Unsent bytes allowed per client; a client that falls this far behind is disconnected."""
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0
    """How long `order_status` waits for the exchange's answer."""

    def __post_init__(self) -> None:
        why = socket_path_too_long(self.socket_path)
        if why is not None:
            raise ValueError(f"socket_path: {why}")
        if not int(self.socket_mode, 8) & 0o200:
            raise ValueError(
                f"socket_mode: {self.socket_mode} does not let the gateway's own user write to "
                "the socket (connecting needs it), so `fixgw` commands run as that user could "
                "not reach it: give the owner 6 (0600, 0660)"
            )


class MarketDataConfig(_Config, frozen=True, kw_only=True):
    depth: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    """Levels asked of the exchange per symbol; 0 = the whole book."""
    max_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1000
    """The largest depth a client may ask for in `md_subscribe` and `book`."""
    stale_after_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 30.0
    """A book with no update for this long is asked for afresh, served meanwhile; stale only
    if that goes unanswered as long too (0: never). On a quiet symbol that means a fresh
    snapshot every interval."""


class AccountConfig(_Config, frozen=True, kw_only=True):
    refresh_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 60.0
    """Ask the exchange for balances this often while logged on (0: only on request)."""
    after_fill: bool = True
    """Also ask shortly after fills (once per burst of fills)."""


class OrdersConfig(_Config, frozen=True, kw_only=True):
    keep_closed: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    """Closed orders (filled, canceled, rejected) remembered, the most recently closed; an
    older one is forgotten: its events stay in the journal, and `order_status` with its
    order_id asks the exchange. Memory then follows the open orders, not the day's count."""
    ack_timeout_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 5.0
    """An order or cancel the exchange has not answered within this time is asked about
    (OrderStatusRequest), and the answer settles it: an exchange that drops a message without
    a word leaves no order pending. 0: only the check after each logon."""


class JournalConfig(_Config, frozen=True, kw_only=True):
    path: NonEmpty = "var/journal/events.jsonl"
    fsync: bool = False
    """Sync to disk once per turn of the loop. Off: the OS writes it out (a process crash
    loses nothing; a power loss may lose the last moments)."""


class SymbolLimits(_Config, frozen=True, kw_only=True):
    """Decimals are given as plain decimal text (`fixgw.decimals`), quoted or not."""

    max_qty: PlainDecimal | None = None
    max_notional: PlainDecimal | None = None
    """qty * price (the limit price, or the reference price for a market order)."""
    price_band_pct: PlainDecimal | None = None
    """Limit prices must lie within this percentage of the last trade (else the mid)."""
    sides: list[Side] = msgspec.field(default_factory=lambda: [Side.BUY, Side.SELL])

    def __post_init__(self) -> None:
        for name in ("max_qty", "max_notional", "price_band_pct"):
            value = getattr(self, name)
            if value is not None and not (value.is_finite() and value > 0):
                raise ValueError(f"{name} must be a number > 0")
        if self.price_band_pct is not None and self.price_band_pct >= 100:
            raise ValueError("price_band_pct must be below 100")


class RiskConfig(_Config, frozen=True, kw_only=True):
    max_open_orders: Annotated[int, msgspec.Meta(ge=1)] | None = None
    default: SymbolLimits = msgspec.field(default_factory=SymbolLimits)
    """For every symbol not named under `symbols`."""
    symbols: dict[str, SymbolLimits] = msgspec.field(default_factory=dict)


class ThrottleLimit(_Config, frozen=True, kw_only=True):
    per_s: Annotated[float, msgspec.Meta(gt=0, le=100_000)]
    burst: Annotated[int, msgspec.Meta(ge=1)] = 1


ThrottleKind = Literal["new_order", "cancel", "status"]


class ThrottleConfig(_Config, frozen=True, kw_only=True):
    limits: dict[ThrottleKind, ThrottleLimit] = msgspec.field(default_factory=dict)
    """OKCoin published no FIX rate limits: set these to what your account is allowed."""
    policy: Literal["queue", "reject"] = "queue"
    queue_max: Annotated[int, msgspec.Meta(ge=1)] = 1000


class BridgeSessionConfig(_Config, frozen=True, kw_only=True):
    comp_id: NonEmpty
    """The OMS's SenderCompID (our TargetCompID on this session)."""
    password: SecretRef | None = None
    """If set, the OMS's Logon must carry it in Password (554)."""
    cl_ord_id_prefix: str | None = None
    """Put before the OMS's ClOrdIDs on the way to the exchange; default `<comp_id>-`. No
    session's may start with another's: the prefix is what names an order's OMS."""
    cancel_on_disconnect: bool = False
    """Cancel this OMS's open orders when its session ends."""

    @property
    def prefix(self) -> str:
        return self.cl_ord_id_prefix or f"{self.comp_id}-"


BRIDGE_STORE_DIR = "var/bridge-store"
"""`bridge.store_dir` by default; where `journal compact` looks for the bridge's marks while
`bridge` is off and no bridge recorded its store beside the journal."""


class BridgeConfig(_Config, frozen=True, kw_only=True):
    """A standard FIX 4.4 acceptor for existing OMS software."""

    host: NonEmpty = "127.0.0.1"
    port: Port
    comp_id: NonEmpty = "FIXGW"
    """Our SenderCompID on every bridge session."""
    store_dir: NonEmpty = BRIDGE_STORE_DIR
    dictionary: str | None = None
    """Default: the standard FIX44.xml installed with the QuickFIX binding."""
    heartbeat_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 30
    logon_timeout_s: Annotated[float, msgspec.Meta(ge=0.1, le=300)] = 5.0
    """A connection whose first message (its Logon) has not arrived whole within this time
    is closed before it reaches QuickFIX."""
    sessions: Annotated[list[BridgeSessionConfig], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        """An order belongs to the OMS whose prefix its ClOrdID starts with, across restarts
        too (the journal keeps only the ClOrdID): so no prefix may start with another, nor
        be one the gateway's own ClOrdIDs (`fixgw.ids`) can start with."""
        comp_ids = [s.comp_id for s in self.sessions]
        twice = sorted({c for c in comp_ids if comp_ids.count(c) > 1})
        if twice:
            raise ValueError(f"sessions: comp_id {twice[0]!r} is named twice")
        for a in self.sessions:
            if _GATEWAY_CL_ORD_ID_START.fullmatch(a.prefix):
                raise ValueError(
                    f"sessions: {a.comp_id}'s cl_ord_id_prefix {a.prefix!r} can start the "
                    "ClOrdIDs the gateway makes up (fx<start time>-<n>): choose another"
                )
            for b in self.sessions:
                if a is not b and b.prefix.startswith(a.prefix):
                    raise ValueError(
                        f"sessions: {b.comp_id}'s cl_ord_id_prefix {b.prefix!r} starts with "
                        f"{a.comp_id}'s {a.prefix!r}, so {b.comp_id}'s orders would be taken "
                        f"for {a.comp_id}'s: set cl_ord_id_prefix so that neither starts "
                        "with the other"
                    )

    def oms_of(self, cl_ord_id: str) -> BridgeSessionConfig | None:
        """The OMS session an order's (or a cancel's) ClOrdID belongs to."""
        for oms in self.sessions:
            if cl_ord_id.startswith(oms.prefix):
                return oms
        return None


_GATEWAY_CL_ORD_ID_START = re.compile(r"f|fx[0-9a-z]*(-[0-9a-z]*)?")
"""The prefixes of some ClOrdID `fixgw.ids.ClOrdIdGenerator` makes (fx<base36>-<base36>)."""


class OpsConfig(_Config, frozen=True, kw_only=True):
    metrics_host: NonEmpty = "127.0.0.1"
    metrics_port: Port | None = 9464
    """Prometheus /metrics, /healthz and /readyz; null turns the endpoint off."""


class LogConfig(_Config, frozen=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """`auto`: readable in a terminal, JSON lines otherwise."""


NatsToken = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""One token of a NATS subject: no `.`, no wildcard, no space."""


class NatsAuth(_Config, frozen=True, kw_only=True):
    """How the gateway authenticates to the broker: at most one way. Secrets by reference."""

    creds_file: NonEmpty | None = None
    """A `.creds` file (the user's JWT and nkey seed), as `nsc` writes it."""
    nkey_seed: SecretRef | None = None
    """An nkey user's seed (`SU...`)."""
    user: NonEmpty | None = None
    password: SecretRef | None = None
    """With `user`."""
    token: SecretRef | None = None

    def __post_init__(self) -> None:
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password go together")
        ways = [self.creds_file, self.nkey_seed, self.user, self.token]
        if sum(way is not None for way in ways) > 1:
            raise ValueError(
                "give one way to authenticate: creds_file, nkey_seed, user and password, or token"
            )


class NatsTls(_Config, frozen=True, kw_only=True):
    enabled: bool = False
    """TLS to the broker; on by itself for a `tls://` server URL."""
    ca_file: str | None = None
    """CA bundle to verify the broker with; default: the system store."""
    client_cert: str | None = None
    client_key: str | None = None
    """Both or neither, as `session.tls`'s."""
    verify: bool = True
    """Off only for testing."""

    def __post_init__(self) -> None:
        _both_or_neither(self.client_cert, self.client_key)


NATS_MAX_AGE_S = (2**63 - 1) // 1_000_000_000
"""The longest max_age NATS takes: Go's time.Duration, int64 nanoseconds (292 years)."""


class NatsStream(_Config, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,255}$")] = "FIXGW"
    """The JetStream stream events go to; gateways of a fleet may share one."""
    create: bool = True
    """Create the stream if it is absent, and add the gateway's subjects to it if it does
    not cover them. False: it must exist and cover them (firms that manage streams
    themselves); the gateway never changes its limits either way."""
    replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """When created: copies kept by a cluster."""
    duplicate_window_s: Annotated[float, msgspec.Meta(ge=1, le=7 * 86400)] = 600.0
    """When created: how long the broker remembers a message id. A restart publishes again
    what was not acknowledged before; the broker drops it as a duplicate within this
    window."""
    max_age_s: Annotated[float, msgspec.Meta(ge=0, le=NATS_MAX_AGE_S)] = 0.0
    """When created: how long events are kept (0: no limit); not below
    `duplicate_window_s`, which NATS refuses."""
    max_bytes: Annotated[int, msgspec.Meta(ge=-1)] = -1
    """When created: the stream's size limit; the oldest events go first (-1: no limit)."""

    def __post_init__(self) -> None:
        if 0 < self.max_age_s < self.duplicate_window_s:
            raise ValueError(
                f"max_age_s: {self.max_age_s:g} is below duplicate_window_s "
                f"({self.duplicate_window_s:g}), and NATS refuses a stream that remembers "
                "message ids longer than it keeps messages: raise max_age_s, or lower "
                "duplicate_window_s"
            )


class NatsReconnect(_Config, frozen=True, kw_only=True):
    """Backoff between connection attempts to the broker, as `session.reconnect`."""

    floor_s: Annotated[float, msgspec.Meta(ge=0.05, le=3600)] = 0.5
    ceiling_s: Annotated[float, msgspec.Meta(ge=0.05, le=3600)] = 5.0
    factor: Annotated[float, msgspec.Meta(ge=1, le=10)] = 2.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2

    def __post_init__(self) -> None:
        if self.ceiling_s < self.floor_s:
            raise ValueError("ceiling_s must not be below floor_s")


class NatsConfig(_Config, frozen=True, kw_only=True):
    """NATS JetStream: events to a stream, commands by request/reply (docs/nats.md)."""

    servers: Annotated[list[NonEmpty], msgspec.Meta(min_length=1)]
    """`nats://host:port` or `tls://host:port` URLs, with no credentials in them."""
    gateway: NatsToken
    """This gateway's name in subjects (`<subject_prefix>.<gateway>.>`) and message ids:
    one per gateway of a fleet, never reused for another journal."""
    subject_prefix: NatsToken = "fixgw"
    auth: NatsAuth = msgspec.field(default_factory=NatsAuth)
    tls: NatsTls = msgspec.field(default_factory=NatsTls)
    stream: NatsStream = msgspec.field(default_factory=NatsStream)
    commands: bool = True
    """Take requests on `<prefix>.<gateway>.cmd`; the broker's permissions say who may."""
    market_data: list[NonEmpty] = msgspec.field(default_factory=list)
    """Symbols whose book and trades are published on plain subjects (not kept)."""
    window: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 512
    """Events published and not yet acknowledged by the stream, at most."""
    ack_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0
    """An event the stream has not acknowledged by then is published again, with those
    after it."""
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 2.0
    reconnect: NatsReconnect = msgspec.field(default_factory=NatsReconnect)
    cursor_path: NonEmpty | None = None
    """Where the last acknowledged seq is kept; default: beside the journal,
    `<journal.path>.nats`."""
    publisher: Literal["process", "inline"] = "process"
    """Who publishes the journal to the stream: `process`, a process of the gateway's own
    (off the gateway's thread, and so off the order path); `inline`, the gateway's loop."""
    batch_ms: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    """With `publisher: process`: how often it looks for events newly written to the journal
    and sends what it found at once (the lag this adds, at most)."""

    def cursor_at(self, journal_path: str | os.PathLike[str]) -> str:
        """`cursor_path`, else beside the journal."""
        return self.cursor_path or f"{journal_path}.nats"

    def __post_init__(self) -> None:
        for url in self.servers:
            scheme, sep, rest = url.partition("://")
            if "@" in (rest if sep else url).partition("/")[0]:
                raise ValueError("servers: credentials in a URL are inline secrets; use nats.auth")
            if not sep or scheme not in ("nats", "tls"):
                raise ValueError(
                    f"servers: {without_userinfo(url)!r} is not a nats:// or tls:// URL"
                )


def without_userinfo(url: str) -> str:
    """`url` as an error may quote it: whatever precedes its last `@` (a user and a
    password) shown as `***`."""
    head, at, host = url.rpartition("@")
    if not at:
        return url
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}***@{host}" if sep else f"***@{host}"


class GatewayConfig(_Config, frozen=True, kw_only=True):
    session: SessionConfig
    credentials: Credentials = msgspec.field(default_factory=Credentials)
    okcoin: OkcoinConfig = msgspec.field(default_factory=OkcoinConfig)
    symbols: Annotated[list[NonEmpty], msgspec.Meta(min_length=1)]
    """Symbols clients may trade; anything else is refused locally."""
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    market_data: MarketDataConfig = msgspec.field(default_factory=MarketDataConfig)
    journal: JournalConfig = msgspec.field(default_factory=JournalConfig)
    orders: OrdersConfig = msgspec.field(default_factory=OrdersConfig)
    account: AccountConfig = msgspec.field(default_factory=AccountConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    throttle: ThrottleConfig = msgspec.field(default_factory=ThrottleConfig)
    bridge: BridgeConfig | None = None
    ops: OpsConfig = msgspec.field(default_factory=OpsConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    nats: NatsConfig | None = None
    """Off unless present (`pip install fixgw[nats]`)."""

    def __post_init__(self) -> None:
        """Limits for a symbol not traded would bind nothing: a misspelt one (`BTC-USD` for
        `BTC/USD`) would leave the traded symbol unlimited, and say nothing."""
        untraded = [s for s in self.risk.symbols if s not in self.symbols]
        if untraded:
            raise ValueError(
                f"risk.symbols: not among `symbols` ({', '.join(self.symbols)}): "
                f"{', '.join(untraded)}"
            )
        if self.nats is not None:
            unknown = sorted(set(self.nats.market_data) - set(self.symbols))
            if unknown:
                raise ValueError(f"nats.market_data: not among `symbols`: {', '.join(unknown)}")
        s, c = self.session, self.credentials
        if s.venue == "okcoin" and (c.api_key is None or c.secret_key is None):
            raise ValueError(
                "credentials: OKCoin needs `api_key` and `secret_key` (session.venue: okcoin)"
            )
        if s.venue == "fix44" and s.target_comp_id is None:
            raise ValueError("session.target_comp_id: plain FIX 4.4 has no default; name it")
        self._one_listener_a_port()
        self._one_file_a_path()

    def _one_file_a_path(self) -> None:
        """Two of the gateway's files at one path would write over each other (a cursor
        overwriting the journal) or stop the start (the socket where the journal is), also
        where a symbolic link leads one to the other."""
        files = [("journal.path", self.journal.path), ("api.socket_path", self.api.socket_path)]
        if self.nats is not None:
            files.append(("nats.cursor_path", self.nats.cursor_at(self.journal.path)))
        # compared where they lead: through symbolic links, `..` after them
        _each_its_own([(k, p, os.path.realpath(p)) for k, p in files], "each needs a file")

    def _one_listener_a_port(self) -> None:
        """The second listener on a port would stop the start (`Address already in use`),
        whatever their hosts: one port, one listener."""
        listeners = [
            ("api.tcp.port", self.api.tcp.port if self.api.tcp else None),
            ("ops.metrics_port", self.ops.metrics_port),
            ("bridge.port", self.bridge.port if self.bridge else None),
        ]
        _each_its_own(
            [(k, p, p) for k, p in listeners if p is not None], "each listener needs a port"
        )


def _each_its_own(given: list[tuple[str, object, object]], rule: str) -> None:
    """Refuses the second of `given` (key, value as written, value as compared) whose value
    is another's, naming both keys: `<key>: <value> is <other key> too: <rule> of its own`."""
    taken: dict[object, str] = {}
    for key, shown, same in given:
        if same in taken:
            raise ValueError(f"{key}: {shown} is {taken[same]} too: {rule} of its own")
        taken[same] = key


class SimAccount(_Config, frozen=True, kw_only=True):
    comp_id: NonEmpty
    """The client's SenderCompID; QuickFIX acceptors know their sessions in advance."""
    api_key: NonEmpty
    secret_key: NonEmpty
    currency: NonEmpty = "USD"
    """The account's quote currency, as AccountInfoResponse reports it."""
    balances: dict[NonEmpty, PlainDecimal] = msgspec.field(
        default_factory=lambda: {
            "BTC": PlainDecimal(10),
            "LTC": PlainDecimal(1000),
            "USD": PlainDecimal(1_000_000),
        }
    )
    """What the account holds at start; fills move it."""


class SimBook(_Config, frozen=True, kw_only=True):
    bids: list[tuple[PlainDecimal, PlainDecimal]] = msgspec.field(default_factory=list)
    """Seed orders as [price, qty]."""
    asks: list[tuple[PlainDecimal, PlainDecimal]] = msgspec.field(default_factory=list)


class LoadFeed(_Config, frozen=True, kw_only=True):
    """A synthetic market-data stream for load tests: every subscription to the symbol gets
    `messages` incremental refreshes, sent as fast as the simulator can build them."""

    messages: Annotated[int, msgspec.Meta(ge=1)]
    entries: Annotated[int, msgspec.Meta(ge=1, le=50)] = 2
    """Level changes per message."""


class SimTls(_Config, frozen=True, kw_only=True):
    cert_file: NonEmpty
    key_file: NonEmpty


class SimConfig(_Config, frozen=True, kw_only=True):
    host: NonEmpty = "127.0.0.1"
    port: Port = 9880
    comp_id: NonEmpty = "OKSERVER"
    store_dir: NonEmpty = "var/sim-store"
    accounts: Annotated[list[SimAccount], msgspec.Meta(min_length=1)]
    symbols: dict[NonEmpty, SimBook]
    load_feeds: dict[NonEmpty, LoadFeed] = msgspec.field(default_factory=dict)
    """Symbols whose market data is a synthetic stream instead of the matching book."""
    tls: SimTls | None = None
    """Serve TLS on `port` (the acceptor itself then listens on a free loopback port)."""
    unsupported: list[NonEmpty] = msgspec.field(default_factory=list)
    """Message types answered with BusinessMessageReject (j), as a venue that lacks them."""
    unavailable: list[NonEmpty] = msgspec.field(default_factory=list)
    """Message types answered with ExceptionResponseMessage (E1000): OKCoin could not serve."""
    unanswered: list[NonEmpty] = msgspec.field(default_factory=list)
    """Message types taken and acted on but never answered, as an exchange that loses its
    acknowledgements (a fault for tests)."""
    dictionary: str | None = None

    def __post_init__(self) -> None:
        unserved = sorted(set(self.load_feeds) - set(self.symbols))
        if unserved:
            raise ValueError(
                f"load_feeds: not among `symbols` ({', '.join(self.symbols)}), so never "
                f"subscribed to: {', '.join(unserved)}"
            )
        comp_ids = [a.comp_id for a in self.accounts]
        twice = sorted({c for c in comp_ids if comp_ids.count(c) > 1})
        if twice:
            raise ValueError(
                f"accounts: comp_id {twice[0]!r} is named twice; a session is known by it"
            )


@dataclass(frozen=True, slots=True, repr=False)
class Secrets:
    api_key: str | None
    secret_key: str | None
    api_token: str | None
    bridge_passwords: dict[str, str] = field(default_factory=dict)
    """OMS comp_id -> the password its Logon must carry."""
    nats: dict[str, str] = field(default_factory=dict)
    """`nats.auth`'s secrets read: `nkey_seed`, `password` or `token`."""
    by_key: dict[str, str] = field(default_factory=dict)
    """Every secret read, by the key that names it (`api.tcp.token`,
    `bridge.sessions[0].password`): what a reload compares (`changed_secrets`)."""

    def __repr__(self) -> str:
        return "Secrets(<redacted>)"


def changed_secrets(before: Secrets, after: Secrets) -> list[str]:
    """The keys of the secrets whose values differ, added or gone ones included, never the
    values: a file or variable rewritten behind the same reference is a change."""
    old, new = before.by_key, after.by_key
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


_PATH = re.compile(r" - at (?:`key` in )?`\$\.?(.*)`$")
"""Where msgspec says a value (or a map's key: "`key` in `$.throttle.limits`") failed."""


_STEP = re.compile(r"\.(\w+)|\[([0-9]+)\]|(\[\.\.\.\])")
"""One step of msgspec's path: `.field`, `[index]`, or `[...]` (an entry of a map)."""


def _decode_error(
    source: str, exc: msgspec.ValidationError, data: Any, kind: type[Any]
) -> ConfigError:
    text = str(exc)
    match = _PATH.search(text)
    where = _with_keys(match.group(1), data, kind, text) if match and match.group(1) else ""
    what = _PATH.sub("", text)
    if match and what.startswith("Expected `object") and _is_secret_at(kind, match.group(1)):
        what = (
            "a secret is never given inline: give it by reference, as {env: NAME} (an "
            "environment variable) or {file: PATH} (a file's first line)"
        )
    what = _NUMBER_AS_TEXT.sub(_number_forms, what)
    what = _UNKNOWN_FIELD.sub(_unknown_field, what)
    below = _KEY_FIRST.match(what)  # a struct's own check names the key it is about
    if below:
        where, what = f"{where}.{below.group(1)}".lstrip("."), what[below.end() :]
    return ConfigError(f"{source}: {_without_keys(where) or '(top level)'}: {_without_keys(what)}")


_NUMBER_AS_TEXT = re.compile(r"^Expected `(int|float)((?: \| null)?)`, got `str`$")
"""A number field given text, which is also what YAML numbers read as (`_DecimalSafeLoader`)
in forms msgspec does not take (`.5`, `+5`): "got `str`" would blame quotes not written."""


def _number_forms(match: re.Match[str]) -> str:
    if match.group(1) == "int":
        forms = "digits with an optional leading `-` (5, -1, 1000; not +5, 1_000 or 0x10)"
    else:
        forms = (
            "digits with an optional leading `-`, a `.` between digits and an exponent "
            "(0.5, 5, -1, 1e3; not .5, 5., +5 or 1_000)"
        )
    return f"Expected `{match.group(1)}{match.group(2)}`: write a number as {forms}"


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(.*)`$", re.DOTALL)
_KEY_NAME = re.compile(r"[a-z0-9_]+")
"""What every key of a config is named with: a mistyped key looks like one and is shown."""


def _unknown_field(match: re.Match[str]) -> str:
    """An unknown field named as a key is (`reconcile_timeout`) and not reading as a key
    (`_reads_as_a_name`), or the field not shown: it may be a secret pasted where a value
    goes (`secret_key: {<the key>}`), and a password, a base64 key or a token may be of any
    shape."""
    name = match.group(1)
    if _KEY_NAME.fullmatch(name) and _reads_as_a_name(name):
        return match.group()
    return f"Object contains unknown field {_FIELD_NOT_SHOWN}"


def _is_secret_at(kind: type[Any], path: str) -> bool:
    """Whether msgspec's `path` (`credentials.secret_key`, `bridge.sessions[0].password`)
    in `kind` is where a secret reference (SecretRef) goes."""
    info: Any = msgspec.inspect.type_info(kind)
    for name, index, entry in _STEP.findall(path if path.startswith("[") else f".{path}"):
        candidates = [t for t in _members(info) if not isinstance(t, msgspec.inspect.NoneType)]
        if name:
            fields = [
                f
                for t in candidates
                if isinstance(t, msgspec.inspect.StructType)
                for f in t.fields
                if f.encode_name == name
            ]
            if not fields:
                return False
            info = fields[0].type
        elif index:
            items = [t.item_type for t in candidates if hasattr(t, "item_type")]
            if not items:
                return False
            info = items[0]
        elif entry:
            values = [t.value_type for t in candidates if hasattr(t, "value_type")]
            if not values:
                return False
            info = values[0]
    return any(
        isinstance(t, msgspec.inspect.StructType) and t.cls is SecretRef for t in _members(info)
    )


def _members(info: Any) -> list[Any]:
    """The types a type info stands for: a union's each, without Annotated's metadata."""
    while isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if isinstance(info, msgspec.inspect.UnionType):
        return [m for t in info.types for m in _members(t)]
    return [info]


_KEY_FIRST = re.compile(r"([a-z_]+(?:\.[a-z_]+)*): ")
"""A message from a struct's `__post_init__` that starts with the key it is about."""


def _with_keys(path: str, data: Any, kind: type[Any], text: str) -> str:
    """msgspec's `path` with each `[...]` replaced by the key of the map entry that failed
    (`risk.symbols.BTC/USD.sides[1]`, not `risk.symbols[...].sides[1]`), or as it is if that
    cannot be told. The entry is the first whose map, cut down to that entry alone, fails
    with the same `text`: msgspec reports the first entry that fails, in order."""
    dotted = path if path.startswith("[") else f".{path}"
    steps = _STEP.findall(dotted)
    if "".join(f".{f}" if f else f"[{i}]" if i else e for f, i, e in steps) != dotted:
        return path
    at: list[Any] = []
    named = ""
    for name, index, _ in steps:
        if name or index:
            at.append(name or int(index))
            named += f".{name}" if name else f"[{index}]"
            continue
        try:
            entries = _value_at(data, at)
        except (LookupError, TypeError):
            return path
        key = _failing_key(entries, data, at, kind, text) if isinstance(entries, dict) else None
        if key is None:
            return path
        data = _replaced(data, at, {key: entries[key]})
        at.append(key)
        named += f".{key}"
    return named.lstrip(".")


def _failing_key(
    entries: dict[Any, Any], data: Any, at: list[Any], kind: type[Any], text: str
) -> Any:
    for key, value in entries.items():
        try:
            convert(_replaced(data, at, {key: value}), kind)
        except msgspec.ValidationError as exc:
            if str(exc) == text:
                return key
    return None


def _value_at(data: Any, at: list[Any]) -> Any:
    for step in at:
        data = data[step]
    return data


def _replaced(data: Any, at: list[Any], value: Any) -> Any:
    """`data` with what is at `at` replaced by `value`; `data` itself is left as it was."""
    if not at:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[at[0]] = _replaced(data[at[0]], at[1:], value)
    return copy


class _DecimalSafeLoader(yaml.SafeLoader):
    """Reads YAML numbers as their text: `0.1` in a config is Decimal('0.1'), not a float,
    and the text is checked as written. YAML itself reads `1_000`, `+1`, `0x10` or `0o7` as
    an int, which a decimal field must refuse (`fixgw.decimals`) and an int field does
    (msgspec reads only plain digits from text)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A key given twice in one mapping (a second `risk:`) is refused: YAML would keep
        the last one and drop the first without a word."""
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base`: keys given beside it override the merged ones
            key = self.construct_object(key_node, deep=True)
            try:
                first = first_seen.setdefault(key, key_node)
            except TypeError:
                continue  # a key that is not hashable: SafeLoader refuses it itself
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"`{key}` is given twice (first on line {first.start_mark.line + 1}); a "
                    "key may be given once in a mapping",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep)


def _number_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _number_as_text)
_DecimalSafeLoader.add_constructor("tag:yaml.org,2002:int", _number_as_text)


def not_utf8(exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8 text, without showing what it holds (it may be a
    secret)."""
    line = exc.object.count(b"\n", 0, exc.start) + 1
    return f"not UTF-8 text (line {line}, byte {exc.start}); save it as UTF-8"


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {not_utf8(exc)}") from None
    try:
        return yaml.load(text, Loader=_DecimalSafeLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_without_keys(_yaml_problem(exc))}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message on one line: where, what, and in what."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return " ".join(str(exc).split())
    mark = exc.problem_mark
    said = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        said += f" ({exc.context} from line {exc.context_mark.line + 1})"
    return said


def convert(data: Any, kind: type[T]) -> T:
    """A config struct from plain data (YAML's, or a test's): msgspec raises
    ValidationError with the key path."""
    # strict=False lets the YAML text of a number (see _DecimalSafeLoader) reach int and
    # float fields; decimal fields read it with fixgw.decimals.
    return msgspec.convert(data, kind, strict=False, dec_hook=decode_hook)


def _convert(data: Any, kind: type[T], source: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level): expected a mapping of keys")
    try:
        return convert(data, kind)
    except msgspec.ValidationError as exc:
        raise _decode_error(source, exc, data, kind) from None


def read_gateway_config(path: str | Path) -> GatewayConfig:
    """The file as a config, its secrets not read yet (`secret_problems`, `resolve_secrets`)."""
    path = Path(path)
    config: GatewayConfig = _convert(_load_yaml(path), GatewayConfig, str(path))
    return config


def load_gateway_config(path: str | Path) -> GatewayConfig:
    config = read_gateway_config(path)
    resolve_secrets(config, str(path))
    return config


def load_sim_config(path: str | Path) -> SimConfig:
    path = Path(path)
    config: SimConfig = _convert(_load_yaml(path), SimConfig, str(path))
    for symbol, book in config.symbols.items():
        for side, levels in (("bids", book.bids), ("asks", book.asks)):
            for i, (price, qty) in enumerate(levels):
                if not (price.is_finite() and qty.is_finite() and price > 0 and qty > 0):
                    raise ConfigError(
                        f"{path}: symbols.{symbol}.{side}[{i}]: price and qty must be decimals > 0"
                    )
    return config


def _read_secret(ref: SecretRef, key: str) -> str:
    """The secret's value; ConfigError `key: cause` if it cannot be read, or (the API's
    token) is too weak."""
    if (ref.env is None) == (ref.file is None):
        raise ConfigError(f"{key}: give exactly one of `env` or `file`")
    if ref.file is not None:
        value = _first_line(ref.file, key)
    else:
        assert ref.env is not None
        if not _ENV_NAME.fullmatch(ref.env):
            raise ConfigError(
                f"{key}: `env` is not an environment variable's name (letters, digits and _, "
                "not a digit first); it is not shown, in case it is the secret itself: name "
                "the variable that holds the secret"
            )
        value = os.environ.get(ref.env, "").strip()
        if not value:
            shown = ref.env if _reads_as_a_name(ref.env) else "named in `env`"
            raise ConfigError(f"{key}: environment variable {shown} is not set")
    if key == API_TOKEN_KEY:
        why = token_weakness(value)
        if why is not None:
            raise ConfigError(f"{key}: {why}")
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reads_as_a_name(name: str) -> bool:
    """Whether a word (an environment variable's name, or what an error quotes of the config)
    may be shown in an error: not one that could be a key pasted in its place. A key is 16 or
    more letters, digits, `_` and `-` in which some part between `_` and `-` mixes letters and
    digits other than as letters then digits (`sender_comp_id_2` and `okcoin-fix44` are
    names; a UUID, OKCoin's API keys, is not), or in which a lower-case letter stands alone
    between capitals (a `token_urlsafe` token without a digit; camelCase has none), or hex
    in groups between hyphens (a UUID whose groups happen to be letters then digits). A
    base64 key's `+` and `/` part it as `_` and `-` do, and its `=` padding ends no name."""
    if len(name) < 16 or not _KEY_CHARACTERS.fullmatch(name):
        return True
    if name.endswith("="):
        return False
    if any(not _NAME_PART.fullmatch(part) for part in re.split(r"[_+/-]", name)):
        return False
    return _LONE_LOWER_CASE.search(name) is None and not _HEX_WITH_HYPHENS.fullmatch(name)


_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9_+/-]+={0,2}")
_NAME_PART = re.compile(r"[A-Za-z]*[0-9]*")
_LONE_LOWER_CASE = re.compile(r"(?<=[A-Z])[a-z](?=[A-Z])")
_HEX_WITH_HYPHENS = re.compile(r"(?=.*[0-9])(?=.*[A-Fa-f])[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)+")

_KEY_NOT_SHOWN = "(not shown: it reads as a key)"
_FIELD_NOT_SHOWN = (
    "(not shown: it may be a secret pasted in the wrong place; a key's name is lower-case "
    "letters, digits and `_`)"
)

_QUOTED = re.compile(r"`[^`]*`|'[^'\s]*'|\"[^\"]*\"")
_WORD = re.compile(r"[A-Za-z0-9_+/-]{16,}(?:={1,2}(?![A-Za-z0-9]))?")


def _without_keys(text: str) -> str:
    """An error's `text`, what it quotes of the config (a field's name, an enum's value, a
    map's key) that reads as a key (`_reads_as_a_name`) replaced by _KEY_NOT_SHOWN: a quoted
    item holding one, whole; else the word itself."""

    def quoted(match: re.Match[str]) -> str:
        return _KEY_NOT_SHOWN if _holds_a_key(match.group()) else match.group()

    def word(match: re.Match[str]) -> str:
        return match.group() if _reads_as_a_name(match.group()) else _KEY_NOT_SHOWN

    return _WORD.sub(word, _QUOTED.sub(quoted, text))


def _holds_a_key(text: str) -> bool:
    return any(not _reads_as_a_name(w) for w in _WORD.findall(text))


def _first_line(file: str, key: str) -> str:
    try:
        lines = Path(file).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not os.path.isabs(file):
            raise ConfigError(
                f"{key}: cannot read the file `file` names, relative to {os.getcwd()}: "
                f"{exc.strerror} (a relative path that names no file is not shown, in case it "
                "is the secret itself)"
            ) from None
        raise ConfigError(f"{key}: cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{key}: {file}: {not_utf8(exc)}") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"{key}: {file} is empty")
    return lines[0].strip()


TOKEN_BITS = 128
"""The least entropy an API token may have."""
MAKE_A_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105
_ALPHABETS = (
    (frozenset(string.digits), 10, "decimal digits"),
    (frozenset(string.hexdigits), 16, "hex"),
    (frozenset(string.ascii_letters + string.digits + "-_=+/"), 64, "base64"),
    (frozenset(string.printable.strip()), 94, "printable ASCII"),
)


def token_weakness(token: str) -> str | None:
    """Why `token` is too weak to guard the TCP listener, or None; never repeats it.

    Its length times the bits a character carries in the smallest usual alphabet it fits
    (digits, hex, base64, printable ASCII) must reach TOKEN_BITS, and it must not be a few
    characters over and over."""
    fits = [(size, name) for alphabet, size, name in _ALPHABETS if set(token) <= alphabet]
    if not fits:
        return f"must be printable ASCII without spaces; make one with: {MAKE_A_TOKEN}"
    size, name = fits[0]
    bits = len(token) * math.log2(size)
    if bits < TOKEN_BITS:
        needed = math.ceil(TOKEN_BITS / math.log2(size))
        return (
            f"too weak: {len(token)} {name} characters hold at most {bits:.0f} bits of "
            f"entropy, and {TOKEN_BITS} are required ({needed} random such characters); "
            f"make one with: {MAKE_A_TOKEN}"
        )
    if len(set(token)) < 8:
        return f"too weak: it repeats a few characters; make one with: {MAKE_A_TOKEN}"
    return None


API_TOKEN_KEY = "api.tcp.token"  # noqa: S105 - the key that names it, not a token
API_KEY_KEY = "credentials.api_key"
_NATS_AUTH = "nats.auth."


def _secret_refs(config: GatewayConfig) -> list[tuple[str, SecretRef]]:
    """Every secret the config names, by its key, in the order they are read."""
    named: list[tuple[str, SecretRef | None]] = []
    if config.api.tcp is not None:
        named.append((API_TOKEN_KEY, config.api.tcp.token))
    sessions = config.bridge.sessions if config.bridge else []
    named += [(f"bridge.sessions[{n}].password", oms.password) for n, oms in enumerate(sessions)]
    if config.nats is not None:
        auth = config.nats.auth
        named += [
            (f"{_NATS_AUTH}nkey_seed", auth.nkey_seed),
            (f"{_NATS_AUTH}password", auth.password),
            (f"{_NATS_AUTH}token", auth.token),
        ]
    named += [
        (API_KEY_KEY, config.credentials.api_key),
        ("credentials.secret_key", config.credentials.secret_key),
    ]
    return [(key, ref) for key, ref in named if ref is not None]


def secret_problems(config: GatewayConfig) -> list[str]:
    """Every secret that cannot be read or used, a `key: cause` line each (where
    `resolve_secrets` stops at the first)."""
    problems = []
    for key, ref in _secret_refs(config):
        try:
            _read_secret(ref, key)
        except ConfigError as exc:
            problems.append(exc.message)
    return problems


def resolve_secrets(config: GatewayConfig, source: str = "config") -> Secrets:
    by_key: dict[str, str] = {}
    for key, ref in _secret_refs(config):
        try:
            by_key[key] = _read_secret(ref, key)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc.message}") from None
    sessions = config.bridge.sessions if config.bridge else []
    return Secrets(
        api_key=by_key.get(API_KEY_KEY),
        secret_key=by_key.get("credentials.secret_key"),
        api_token=by_key.get(API_TOKEN_KEY),
        bridge_passwords={
            oms.comp_id: by_key[f"bridge.sessions[{n}].password"]
            for n, oms in enumerate(sessions)
            if oms.password is not None
        },
        nats={
            key.removeprefix(_NATS_AUTH): value
            for key, value in by_key.items()
            if key.startswith(_NATS_AUTH)
        },
        by_key=by_key,
    )


def standard_fix44_dictionary() -> Path:
    """FIX44.xml as the QuickFIX binding installs it (under the environment's prefix)."""
    return Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"


def bundled_dictionary() -> Path:
    return Path(__file__).resolve().parent / "spec" / "okcoin-fix44.xml"
