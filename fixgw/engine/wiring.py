"""The engine's services, each given its collaborators: the one place they are wired to one
another. `fixgw.app` builds what is outside the engine (the QuickFIX session, the journal,
the bus, the TLS pipe) and hands it in; the service tests hand in fakes of the same, so
that they drive the services wired exactly as the gateway runs them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from fixgw.api.protocol import ErrorCode
from fixgw.config import GatewayConfig, RiskConfig, ThrottleConfig
from fixgw.engine.account import AccountRefresh
from fixgw.engine.ack_watchdog import AckWatchdog
from fixgw.engine.fills import Fills
from fixgw.engine.inbound import InboundRouter
from fixgw.engine.kill_switch import KillSwitch
from fixgw.engine.order_entry import OrderEntry
from fixgw.engine.order_events import OrderEvents
from fixgw.engine.pending import PendingRequests
from fixgw.engine.ports import Publisher, SessionPort
from fixgw.engine.queries import Queries
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.risk import PreTradeCheck
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.throttle_queue import ThrottleQueue
from fixgw.engine.tracker import OrderTracker
from fixgw.engine.venue_reports import VenueReports
from fixgw.errors import RequestError
from fixgw.fix.message import SecretValues
from fixgw.journal import Journal
from fixgw.marketdata.streams import MarketData
from fixgw.ops.prometheus import Metrics
from fixgw.venues.base import Capability, Venue


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """What the services take from the config when they are built (a reload changes some of
    them on the services themselves: `fixgw.app.Upkeep.reload`)."""

    symbols: frozenset[str]
    throttle: ThrottleConfig
    risk: RiskConfig
    ack_timeout_s: float
    request_timeout_s: float
    reconcile_timeout_s: float
    account_refresh_s: float
    account_after_fill: bool
    upstream_depth: int = 0
    stale_after_s: float = 0.0
    max_depth: int = 0

    @classmethod
    def of(cls, config: GatewayConfig) -> EngineSettings:
        md = config.market_data
        return cls(
            symbols=frozenset(config.symbols),
            throttle=config.throttle,
            risk=config.risk,
            ack_timeout_s=config.orders.ack_timeout_s,
            request_timeout_s=config.api.request_timeout_s,
            reconcile_timeout_s=config.session.reconcile_timeout_s,
            account_refresh_s=config.account.refresh_s,
            account_after_fill=config.account.after_fill,
            upstream_depth=md.depth,
            stale_after_s=md.stale_after_s,
            max_depth=md.max_depth,
        )


@dataclass(frozen=True, kw_only=True)
class Services:
    orders: OrderEvents
    market_data: MarketData
    throttle: ThrottleQueue
    watchdog: AckWatchdog
    pending: PendingRequests
    reconciler: Reconciler
    entry: OrderEntry
    queries: Queries
    kill_switch: KillSwitch
    account_refresh: AccountRefresh
    reports: VenueReports
    router: InboundRouter


def wire_services(
    settings: EngineSettings,
    *,
    venue: Venue,
    session: SessionPort,
    sent: Callable[[int], str | None],
    lifecycle: SessionLifecycle,
    tracker: OrderTracker,
    fills: Fills,
    bus: Publisher,
    journal: Journal,
    metrics: Metrics,
    loop: asyncio.AbstractEventLoop,
    ready: Callable[[], bool],
    secrets: SecretValues,
    on_reconciled: Callable[[], None] = lambda: None,
) -> Services:
    """`sent(seq)`: the message the session sent as `seq`, raw; `ready()`: the gateway is
    logged on and reconciled; `on_reconciled`: called when a logon's reconciliation ends,
    before the kill switch cancels what a halt left open; `secrets`: the session's, masked
    in what the gateway says of a message it cannot read."""
    orders = OrderEvents(tracker, bus, fills, metrics, loop)
    market_data = MarketData(
        settings.symbols,
        lambda cmd: session.send(venue.market_data(cmd)),
        bus.publish,
        metrics.book_stale.labels,
        metrics.md_entry_passed_over,
        upstream_depth=settings.upstream_depth,
        stale_after_s=settings.stale_after_s,
        max_depth=settings.max_depth,
    )
    throttle = ThrottleQueue(settings.throttle, metrics, loop)
    watchdog = AckWatchdog(settings.ack_timeout_s, tracker, metrics, loop)
    pending = PendingRequests(loop, tracker, settings.request_timeout_s)

    def reconciled() -> None:
        on_reconciled()
        kill_switch.cancel_left_open()

    reconciler = Reconciler(
        tracker,
        lambda order: queries.ask_about(order),
        lambda e: orders.publish([e]),
        settings.reconcile_timeout_s,
        on_ready=reconciled,
        session_up=lambda: lifecycle.up,
        turn=lambda order: queries.turn_of_question(order),
        answers_take_back_fills=venue.answers_take_back_fills,
    )
    throttle.on_turns_changed.append(reconciler.turns_changed)
    entry = OrderEntry(
        symbols=settings.symbols,
        venue=venue,
        session=session,
        lifecycle=lifecycle,
        reconciler=reconciler,
        tracker=tracker,
        orders=orders,
        throttle=throttle,
        watchdog=watchdog,
        pre_trade=PreTradeCheck(settings.risk),
        market_data=market_data,
        kill_switch=lambda: kill_switch,
        journal=journal,
        metrics=metrics,
    )
    queries = Queries(
        venue=venue,
        session=session,
        lifecycle=lifecycle,
        tracker=tracker,
        pending=pending,
        throttle=throttle,
        entry=entry,
    )
    kill_switch = KillSwitch(
        tracker, orders.owners, entry.cancel_order, reconciler, bus, ready, throttle.holds, loop
    )
    offers_account = Capability.ACCOUNT in venue.offers
    account_refresh = AccountRefresh(
        loop,
        queries.request_account,
        queries.new_req_id,
        settings.account_refresh_s if offers_account else 0,
        settings.account_after_fill and offers_account,
        lambda: pending.timeout_s,
    )
    reports = VenueReports(
        venue=venue,
        sent=sent,
        tracker=tracker,
        orders=orders,
        pending=pending,
        reconciler=reconciler,
        kill_switch=kill_switch,
        watchdog=watchdog,
        account_refresh=account_refresh,
        market_data=market_data,
        bus=bus,
        metrics=metrics,
    )
    router = InboundRouter(
        venue=venue,
        lifecycle=lifecycle,
        reports=reports,
        tracker=tracker,
        orders=orders,
        reconciler=reconciler,
        kill_switch=kill_switch,
        watchdog=watchdog,
        market_data=market_data,
        journal=journal,
        bus=bus,
        metrics=metrics,
        secrets=secrets,
    )
    lifecycle.on_up += [reconciler.start, market_data.on_session_up]
    gone = RequestError(
        "the exchange session went down before the exchange answered; ask again",
        code=ErrorCode.NOT_CONNECTED,
    )
    lifecycle.on_down += [
        watchdog.clear,  # the next logon's reconciliation asks about every open order
        reconciler.stop,
        lambda: pending.fail_all(gone),
        market_data.on_session_down,
        throttle.session_down,
        account_refresh.session_down,
    ]
    return Services(
        orders=orders,
        market_data=market_data,
        throttle=throttle,
        watchdog=watchdog,
        pending=pending,
        reconciler=reconciler,
        entry=entry,
        queries=queries,
        kill_switch=kill_switch,
        account_refresh=account_refresh,
        reports=reports,
        router=router,
    )
