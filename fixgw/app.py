"""Wiring: builds the engine's services from the config, passes each its collaborators,
and keeps the whole running (start, stop, the periodic checks, reload). The one place that
knows every part; `fixgw.gateway.Gateway` is what callers get."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import structlog

from fixgw import preflight
from fixgw.api.protocol import ErrorCode
from fixgw.bus import EventBus
from fixgw.config import (
    GatewayConfig,
    Secrets,
    SessionConfig,
    TlsConfig,
    changed_secrets,
    standard_fix44_dictionary,
)
from fixgw.domain import OrderStatus, SessionState
from fixgw.engine.fills import Fills
from fixgw.engine.risk import PreTradeCheck
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.tracker import OrderTracker
from fixgw.engine.wiring import EngineSettings, wire_services
from fixgw.errors import ConfigError, RequestError
from fixgw.fix.dictionary import write_lenient_dictionary
from fixgw.fix.initiator import ExchangeSession, InitiatorSettings
from fixgw.fix.own_sockets import from_this_process
from fixgw.fix.reconnect import Backoff, Reconnector
from fixgw.fix.tls import Endpoint, Pipe, client_context
from fixgw.gateway import Gateway, Parts
from fixgw.halt_record import HaltRecord
from fixgw.journal import Journal
from fixgw.ops.prometheus import Metrics
from fixgw.venues import venue_for
from fixgw.venues.base import Capability, Credentials

log = structlog.get_logger("fixgw.app")

RISK_HOLDER = "risk"
"""Holds market-data streams open for the risk checks' reference price."""

RELOADABLE = (
    "symbols",
    "risk.",
    "throttle.",
    "market_data.stale_after_s",
    "market_data.max_depth",
    "account.",
    "log.",
    "api.request_timeout_s",
    "api.client_buffer_bytes",
    "credentials.api_key",
    "credentials.secret_key",
)
"""Config keys SIGHUP applies (the API and secret keys, also when only what their files
hold changed); the rest (session, the API token and OMS passwords, sockets, journal,
market_data.depth) needs a restart, and is named for it also when only a secret's value
changed behind the same reference. Except `session.tls`'s files renewed in place (the same
paths): SIGHUP takes them for the next connection to the exchange."""

TLS_FILES = ("ca_file", "client_cert", "client_key")
"""The keys of `session.tls` that name files."""


def tls_file_digests(t: TlsConfig) -> dict[str, str]:
    """What `session.tls`'s files hold, as a digest by config key ("" unreadable): to tell
    a file renewed in place."""
    digests = {}
    for key in TLS_FILES:
        name = getattr(t, key)
        if name is not None:
            try:
                digests[f"session.tls.{key}"] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
            except OSError:
                digests[f"session.tls.{key}"] = ""
    return digests


def tls_pipe(session: SessionConfig) -> Pipe:
    """QuickFIX talks to a loopback port; the pipe carries it to the exchange over TLS."""
    t = session.tls
    context = client_context(t.ca_file, t.client_cert, t.client_key, verify=t.verify)
    return Pipe(
        Endpoint("127.0.0.1", 0),
        Endpoint(session.host, session.port, context, session.tls_server_name),
        name="exchange",
        accept=from_this_process,  # QuickFIX's connection, no other process's
    )


def inbound_dictionary(session: SessionConfig, venue_dictionary: Path) -> Path:
    """The venue's dictionary with standard FIX 4.4 around it (`fix.dictionary`), in the
    store."""
    store_dir = Path(session.store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    return write_lenient_dictionary(
        Path(session.dictionary) if session.dictionary else venue_dictionary,
        standard_fix44_dictionary(),
        store_dir / "inbound-dictionary.xml",
    )


def warn_if_compacted_for_fewer(journal: Journal, keep_closed: int) -> None:
    """A journal compacted with a lower `orders.keep_closed` has not the lines of every
    forgotten order whose ids this one refuses: a client may take some of them again."""
    compacted_for = journal.compacted_keep_closed
    if compacted_for is not None and keep_closed > compacted_for:
        log.warning(
            "journal compacted with a lower orders.keep_closed: ids of orders forgotten "
            "before its horizon may be taken again sooner than keep_closed says",
            keep_closed=keep_closed,
            compacted_with=compacted_for,
            compacted_through=journal.compacted_through,
        )


def build_gateway(
    config: GatewayConfig, secrets: Secrets, loop: asyncio.AbstractEventLoop
) -> Gateway:
    s = config.session
    metrics = Metrics()
    journal = Journal(Path(config.journal.path), config.journal.fsync)
    bus = EventBus(journal)
    fills = Fills()
    tracker = OrderTracker(config.orders.keep_closed)
    tracker.restore(fills.noting(journal.events(prefix="order.")))
    tracker.prune()
    warn_if_compacted_for_fewer(journal, config.orders.keep_closed)
    credentials = Credentials(secrets.api_key, secrets.secret_key)
    venue = venue_for(config, credentials)
    tls_files = tls_file_digests(s.tls)
    pipe = tls_pipe(s) if s.tls.enabled else None

    def on_inbound(item: Any) -> None:
        router.on_inbound(item)

    def on_callback_error(where: str, exc: BaseException) -> None:
        router.on_callback_error(where, exc)

    session = ExchangeSession(
        InitiatorSettings(
            host="127.0.0.1" if pipe else s.host,
            port=pipe.start() if pipe else s.port,
            sender_comp_id=s.sender_comp_id,
            target_comp_id=s.target_comp_id or venue.default_target_comp_id or "",
            heartbeat_s=s.heartbeat_s,
            store_dir=Path(s.store_dir),
            dictionary=inbound_dictionary(s, venue.dictionary),
            logout_timeout_s=s.logout_timeout_s,
            send_buffer_bytes=s.send_buffer_bytes,
            logon_fields=venue.logon_fields(s.reset_seq_num_on_logon),
        ),
        metrics,
        loop,
        on_inbound,
        on_callback_error,
    )
    r = s.reconnect
    reconnector = Reconnector(
        session, Backoff(r.floor_s, r.ceiling_s, r.factor, r.jitter), stable_s=r.stable_s
    )
    lifecycle = SessionLifecycle(
        session,
        reconnector,
        venue,
        credentials,
        bus,
        metrics,
        heartbeat_s=s.heartbeat_s,
        reset_seq_num_on_logon=s.reset_seq_num_on_logon,
    )
    services = wire_services(
        EngineSettings.of(config),
        venue=venue,
        session=session,
        sent=session.sent.get,
        lifecycle=lifecycle,
        tracker=tracker,
        fills=fills,
        bus=bus,
        journal=journal,
        metrics=metrics,
        loop=loop,
        ready=lambda: gateway.session_ready(),
        secrets=session.secrets,
        on_reconciled=lambda: gateway.became_ready.set(),
    )
    services.kill_switch.restore(journal.numbered_events(prefix="session."), HaltRecord(journal))
    router = services.router
    parts = Parts(
        config=config,
        venue=venue,
        session=session,
        tls_pipe=pipe,
        journal=journal,
        bus=bus,
        metrics=metrics,
        tracker=tracker,
        lifecycle=lifecycle,
        fills=fills,
        orders=services.orders,
        reconciler=services.reconciler,
        entry=services.entry,
        queries=services.queries,
        pending=services.pending,
        kill_switch=services.kill_switch,
        throttle=services.throttle,
        account_refresh=services.account_refresh,
        market_data=services.market_data,
        router=router,
        watchdog=services.watchdog,
    )
    upkeep = Upkeep(parts, loop, secrets, tls_files)
    gateway = Gateway(parts, upkeep)
    upkeep.gateway = gateway
    services.kill_switch.owe_cancels(
        "restart: every API connection ended",
        [o.cl_ord_id for o in tracker.open_orders() if o.cancel_on_disconnect],
    )
    return gateway


class Upkeep:
    """Keeps the built gateway running: starts and stops its parts, runs the periodic
    checks, applies a reload."""

    def __init__(
        self,
        parts: Parts,
        loop: asyncio.AbstractEventLoop,
        secrets: Secrets,
        tls_files: dict[str, str],
    ) -> None:
        self.parts = parts
        self._loop = loop
        self._secrets_at_start = secrets
        """Those that need a restart are in force as read then (the credentials are
        compared by `SessionLifecycle.set_credentials`)."""
        self._tls_files = tls_files
        """`tls_file_digests` of the TLS context in force."""
        self.gateway: Gateway | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        p = self.parts
        s = p.config.session
        p.session.start(None if s.reset_seq_num_on_logon else p.journal.inbound_checkpoint())
        self._tasks.append(self._loop.create_task(p.lifecycle.reconnector.run()))
        self._hold_reference_prices()
        self._tasks.append(self._loop.create_task(self._periodic_checks()))
        p.account_refresh.start()

    async def stop(self) -> None:
        p = self.parts
        p.account_refresh.stop()
        await p.throttle.drain(p.config.session.logout_timeout_s if p.lifecycle.up else 0)
        for task in self._tasks:
            task.cancel()
        p.kill_switch.stop()
        p.lifecycle.stopping()
        handled = await p.session.stop()
        if handled is not None:  # a clean stop: nothing for the next start to ask again
            p.journal.mark_inbound(handled)
        if p.tls_pipe is not None:
            p.tls_pipe.stop()
        p.kill_switch.close()
        p.journal.close()

    async def _periodic_checks(self) -> None:
        p = self.parts
        s, md = p.config.session, p.config.market_data
        checks = [1.0, s.heartbeat_s / 8] + ([md.stale_after_s / 4] if md.stale_after_s else [])
        interval = max(0.05, min(checks))
        next_probe = self._loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                p.market_data.check_staleness()
                self.refresh_gauges()
                self._ask_about_unanswered()
                if self._loop.time() >= next_probe and p.session.probe():
                    next_probe = self._loop.time() + p.config.session.heartbeat_s
                p.lifecycle.drop_if_silent(p.metrics.seconds_since_inbound())
                p.lifecycle.drop_if_test_request_unanswered(p.session.test_request_waiting_s())
            except Exception:
                log.exception("periodic check failed")

    def _ask_about_unanswered(self) -> None:
        """Orders and cancels the exchange has not answered within `orders.ack_timeout_s`:
        their status is asked, and asked again while the answers do not settle them
        (`AckWatchdog.overdue`)."""
        assert self.gateway is not None
        if not self.gateway.session_ready():
            return
        p = self.parts
        overdue = p.watchdog.overdue()
        if overdue and p.reconciler.check(overdue):
            log.warning(
                "no answer from the exchange; asking the status",
                orders=[o.cl_ord_id for o in overdue],
                after_s=p.watchdog.timeout_s,
            )

    def refresh_gauges(self) -> None:
        p = self.parts
        m = p.metrics
        for name, value in p.session.sequence_numbers().items():
            (m.next_sender_seq if name == "next_sender" else m.next_target_seq).set(value)
        for status in OrderStatus:
            m.orders.labels(status.value).set(p.orders.status_counts[status])
        m.journal_bytes.set(p.journal.size_bytes)
        m.throttle_queue.set(p.throttle.queued())
        m.halted.set(1 if p.kill_switch.halted else 0)

    def _hold_reference_prices(self) -> None:
        """Keep the book and trades of every symbol whose limits need a price subscribed,
        and let go of those that no longer do (after a reload)."""
        p = self.parts
        md, kinds = p.market_data, {"book", "trades"}
        symbols, pre_trade = p.entry.symbols, p.entry.pre_trade
        for symbol in symbols:
            if pre_trade.needs_reference(symbol):
                md.hold(RISK_HOLDER, symbol, kinds)
        for symbol in list(md.books):
            held = RISK_HOLDER in md.holders(symbol, "book")
            if held and (symbol not in symbols or not pre_trade.needs_reference(symbol)):
                md.release(RISK_HOLDER, symbol, kinds)

    def reload(self, new: GatewayConfig, secrets: Secrets) -> tuple[list[str], list[str]]:
        """What may fail is done before anything changes: a reload that raises leaves the
        gateway as it was. `secrets`: `new`'s, read."""
        p = self.parts
        old_flat, new_flat = _flatten(_builtins(p.config)), _flatten(_builtins(new))
        changed = sorted(
            k for k in old_flat.keys() | new_flat.keys() if old_flat.get(k) != new_flat.get(k)
        )
        rewritten = [
            k
            for k in changed_secrets(self._secrets_at_start, secrets)
            if not k.startswith(RELOADABLE) and not any(_names(c, k) for c in changed)
        ]
        applied = [k for k in changed if k.startswith(RELOADABLE)]
        tls_files = tls_file_digests(p.config.session.tls)
        renewed = sorted(k for k, v in tls_files.items() if v != self._tls_files.get(k))
        context = None
        if (
            renewed
            and p.tls_pipe is not None
            and not any(_names("session.tls", k) for k in changed)
        ):
            context = self._renewed_tls_context(renewed)
        pre_trade = PreTradeCheck(new.risk)
        api = msgspec.structs.replace(
            p.config.api,
            request_timeout_s=new.api.request_timeout_s,
            client_buffer_bytes=new.api.client_buffer_bytes,
        )
        p.config = msgspec.structs.replace(
            p.config,
            symbols=new.symbols,
            market_data=msgspec.structs.replace(
                p.config.market_data,
                stale_after_s=new.market_data.stale_after_s,
                max_depth=new.market_data.max_depth,
            ),
            account=new.account,
            log=new.log,
            api=api,
            risk=new.risk,
            throttle=new.throttle,
            credentials=msgspec.structs.replace(
                p.config.credentials,
                api_key=new.credentials.api_key,
                secret_key=new.credentials.secret_key,
            ),
        )
        p.entry.pre_trade = pre_trade
        p.throttle.reconfigure(new.throttle)
        p.pending.timeout_s = new.api.request_timeout_s
        symbols = frozenset(new.symbols)
        p.entry.symbols = symbols
        withdrawn = sorted({o.symbol for o in p.tracker.open_orders()} - symbols)
        if withdrawn:
            log.warning(
                "symbols removed while orders of theirs are open: no new ones are taken; "
                "the open ones stay at the exchange, listed and cancellable",
                symbols=withdrawn,
            )
        md = p.market_data
        md.set_symbols(symbols)
        md.stale_after_s, md.max_depth = new.market_data.stale_after_s, new.market_data.max_depth
        self._hold_reference_prices()
        if Capability.ACCOUNT in p.venue.offers:
            p.account_refresh.reconfigure(new.account.refresh_s, new.account.after_fill)
        if context is not None:
            assert p.tls_pipe is not None
            p.tls_pipe.use_tls(context)
            self._tls_files = tls_files
            applied += renewed
        return applied, sorted([k for k in changed if k not in applied] + rewritten)

    def _renewed_tls_context(self, renewed: list[str]) -> ssl.SSLContext:
        """The TLS context of `session.tls`'s files as they are now; ConfigError (the reload
        is refused, the context in force kept) if they do not make one."""
        t = self.parts.config.session.tls
        problems = preflight.session_tls_problems(t)
        if problems:
            raise ConfigError(
                f"{', '.join(renewed)} changed and cannot be used; the TLS files in force are "
                f"kept: {'; '.join(problems)}"
            )
        return client_context(t.ca_file, t.client_cert, t.client_key, verify=t.verify)

    def reset_sequence_numbers(self) -> dict[str, int]:
        """The operator's `fixgw session reset-seq`: refused while the session is up."""
        p = self.parts
        if p.lifecycle.state in (SessionState.UP, SessionState.LOGGING_ON):
            raise RequestError(
                "refused: the session is up; sequence numbers are reset only while it is down",
                code=ErrorCode.SESSION_UP,
            )
        try:
            seq_nums = p.session.reset_sequence_numbers()
        except RuntimeError as exc:
            raise RequestError(f"refused: {exc}", code=ErrorCode.SESSION_UP) from exc
        p.journal.mark_inbound(0)
        log.warning("sequence numbers reset to 1 by the operator", session=p.session.name)
        return seq_nums


def _builtins(config: GatewayConfig) -> Any:
    """The config as plain data to compare, its decimals (`PlainDecimal`) as their text."""
    return msgspec.to_builtins(config, enc_hook=_decimal_text)


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise NotImplementedError(f"no text for {type(value).__name__}")


def _names(changed: str, secret: str) -> bool:
    """A changed config key already names the secret's key: its reference
    (`api.tcp.token.file`) or what holds it (`bridge.sessions`)."""
    return (
        changed == secret
        or changed.startswith(f"{secret}.")
        or secret.startswith((f"{changed}.", f"{changed}["))
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}
