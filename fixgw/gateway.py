"""The gateway as its callers see it (the API server, the FIX bridge): a small typed façade
over the engine's services. Requests in (`fixgw.api.protocol`), results out
(`fixgw.results`); nothing here knows JSON, FIX or a venue's dialect. `fixgw.app` builds it.

Runs on the asyncio loop's thread only: the loop runs the exchange session's QuickFIX
initiator itself, and the bridge's QuickFIX threads reach it through an Inbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from fixgw import __version__
from fixgw.api.protocol import CancelOrderRequest, NewOrder, OrderStatusRequest
from fixgw.bus import EventBus, EventSubscriber, Subscriber
from fixgw.config import GatewayConfig, Secrets
from fixgw.domain import OrderStatus
from fixgw.engine.account import AccountRefresh
from fixgw.engine.ack_watchdog import AckWatchdog
from fixgw.engine.fills import Fills
from fixgw.engine.inbound import InboundRouter
from fixgw.engine.kill_switch import KillSwitch
from fixgw.engine.order_entry import OrderEntry
from fixgw.engine.order_events import OrderEvents
from fixgw.engine.order_index import Order
from fixgw.engine.pending import PendingRequests
from fixgw.engine.queries import Queries
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.throttle_queue import ThrottleQueue
from fixgw.engine.tracker import OrderTracker
from fixgw.fix.initiator import ExchangeSession
from fixgw.fix.tls import Pipe
from fixgw.journal import Journal
from fixgw.marketdata.streams import MarketData
from fixgw.ops.logging import lines_dropped
from fixgw.ops.prometheus import Metrics
from fixgw.results import (
    Account,
    BookLevels,
    CancelAccepted,
    CancelAllResult,
    Fill,
    Halted,
    HaltResult,
    LoggingOnAgain,
    NatsState,
    OrderAccepted,
    OrderStatusAnswer,
    OrderView,
    ResumeResult,
    SeqNums,
    Status,
    TlsState,
    VenueView,
)
from fixgw.venues.base import Credentials, Venue

if TYPE_CHECKING:
    from fixgw.app import Upkeep


@dataclass(slots=True)
class Parts:
    """Everything `fixgw.app` built, for the façade and for the application's own upkeep."""

    config: GatewayConfig
    venue: Venue
    session: ExchangeSession
    tls_pipe: Pipe | None
    journal: Journal
    bus: EventBus
    metrics: Metrics
    tracker: OrderTracker
    orders: OrderEvents
    reconciler: Reconciler
    lifecycle: SessionLifecycle
    entry: OrderEntry
    queries: Queries
    pending: PendingRequests
    kill_switch: KillSwitch
    throttle: ThrottleQueue
    account_refresh: AccountRefresh
    market_data: MarketData
    router: InboundRouter
    watchdog: AckWatchdog
    fills: Fills


class Gateway:
    def __init__(self, parts: Parts, upkeep: Upkeep) -> None:
        self.parts = parts
        self._upkeep = upkeep
        self.config = parts.config
        self.metrics = parts.metrics
        self.started = time.monotonic()
        self.became_ready = asyncio.Event()
        """Set at the first moment the gateway is logged on and reconciled."""
        self.nats_state: Callable[[], NatsState] | None = None
        """The NATS transport's, for `status`, while one runs."""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._upkeep.start()

    def stop_holding(self) -> None:
        """The first step of a stop: new orders held back by the throttle are refused
        (never sent), each with its event, while clients are still connected to see it; and
        no more are held. Cancels still are: `stop` sends them as the rate allows, for at
        most `session.logout_timeout_s`, before logging out."""
        self.parts.throttle.close()

    async def stop(self) -> None:
        await self._upkeep.stop()

    def reload(self, new: GatewayConfig, secrets: Secrets) -> tuple[list[str], list[str]]:
        """Apply what can change without dropping the session; returns (applied, needs a
        restart), as lists of the config keys that changed, or whose secrets (`secrets`,
        `new`'s, read) did."""
        applied, needs_restart = self._upkeep.reload(new, secrets)
        self.config = self.parts.config
        return applied, needs_restart

    def set_credentials(self, secrets: Secrets) -> bool:
        return self.parts.lifecycle.set_credentials(
            Credentials(secrets.api_key, secrets.secret_key)
        )

    # ------------------------------------------------------------ orders

    def new_order(
        self,
        req: NewOrder,
        owner: Hashable | None = None,
        cancel_on_disconnect: bool = False,
        oms: str | None = None,
    ) -> OrderAccepted:
        return self.parts.entry.new_order(req, owner, cancel_on_disconnect, oms)

    def cancel_order(self, req: CancelOrderRequest) -> CancelAccepted:
        return self.parts.entry.cancel_order(req)

    async def order_status(self, req: OrderStatusRequest) -> OrderStatusAnswer:
        return await self.parts.queries.order_status(req)

    def orders(self, include_closed: bool, symbol: str | None = None) -> list[OrderView]:
        """This gateway's open orders (`include_closed`: every order it keeps), of `symbol`
        only if given."""
        self._refuse_unknown_symbol_to_read(symbol)
        t = self.parts.tracker
        kept = t.all_orders() if include_closed else t.open_orders()
        return [view(t, o) for o in kept if symbol is None or o.symbol == symbol]

    def order(self, cl_ord_id: str) -> OrderView | None:
        order = self.parts.tracker.get(cl_ord_id)
        return None if order is None else view(self.parts.tracker, order)

    def placed_by(self, cl_ord_id: str) -> str | msgspec.UnsetType | None:
        """The OMS session that placed an order the gateway keeps, None if an API client
        did; UNSET if the journal did not record it (0.1.0) or the order is not kept."""
        order = self.parts.tracker.get(cl_ord_id)
        return msgspec.UNSET if order is None else order.oms

    def tracks_order_id(self, order_id: str) -> bool:
        """An order this gateway keeps has the exchange's id `order_id`."""
        return self.parts.tracker.by_order_id(order_id) is not None

    def open_orders(self) -> Iterator[OrderView]:
        t = self.parts.tracker
        return (view(t, o) for o in t.open_orders())

    def in_use(self, cl_ord_id: str) -> bool:
        """An order's or a cancel's ClOrdID this gateway knows."""
        return self.parts.tracker.in_use(cl_ord_id)

    def forgotten(self, cl_ord_id: str) -> bool:
        """An order's or a cancel's ClOrdID this gateway forgot (`orders.keep_closed`) and
        still refuses to a new one."""
        return self.parts.tracker.forgotten(cl_ord_id)

    def cancels_of(self, cl_ord_id: str) -> tuple[str, ...]:
        """The ClOrdIDs of the cancels sent for an order this gateway keeps, oldest first."""
        order = self.parts.tracker.get(cl_ord_id)
        return () if order is None else order.cancel_ids

    def order_of_cancel(self, cancel_cl_ord_id: str) -> str | None:
        """The ClOrdID of the order a cancel this gateway sent was for."""
        return self.parts.tracker.order_of_cancel(cancel_cl_ord_id)

    async def orders_from_exchange(self, symbol: str | None) -> list[OrderView]:
        self._refuse_unknown_symbol_to_read(symbol)
        return await self.parts.queries.orders_from_exchange(symbol)

    async def account(self) -> Account:
        return await self.parts.queries.account()

    def trades(self, symbol: str | None, limit: int) -> list[Fill]:
        """This gateway's fills, newest last."""
        self._refuse_unknown_symbol_to_read(symbol)
        return self.parts.fills.last(symbol, limit)

    def _refuse_unknown_symbol_to_read(self, symbol: str | None) -> None:
        """A request that reads (`orders`, `trades`) may name a symbol the config no longer
        has (removed by a reload) while this gateway keeps orders or fills of it; any other
        is refused as misspelt, not answered with nothing."""
        p = self.parts
        if symbol is None or symbol in p.entry.symbols:
            return
        if p.fills.last(symbol, 1) or any(o.symbol == symbol for o in p.tracker.all_orders()):
            return
        raise p.entry.unknown_symbol(symbol)

    # ------------------------------------------------------------ controls

    def halt(self, by: str, reason: str | None = None) -> HaltResult:
        return self.parts.kill_switch.halt(by, reason)

    def resume(self, by: str) -> ResumeResult:
        return self.parts.kill_switch.resume(by)

    def cancel_all(self, by: str) -> CancelAllResult:
        return self.parts.kill_switch.cancel_all(by)

    def client_gone(self, owner: Hashable) -> None:
        self.parts.kill_switch.client_gone(owner)

    def owe_cancels(self, by: str, cl_ord_ids: Iterable[str]) -> None:
        """Cancel on disconnect for orders the caller knows the owner of (the bridge's, by
        prefix): cancelled now, or as soon as the gateway can."""
        self.parts.kill_switch.owe_cancels(by, cl_ord_ids)

    def logon_again(self, by: str) -> LoggingOnAgain:
        return LoggingOnAgain(connection=self.parts.lifecycle.logon_again(by))

    def reset_sequence_numbers(self) -> SeqNums:
        return SeqNums(seq_nums=self._upkeep.reset_sequence_numbers())

    # ------------------------------------------------------------ events

    @property
    def last_seq(self) -> int:
        """The seq of the last event published."""
        return self.parts.bus.seq

    def subscribe(self, subscriber: Subscriber, topics: Iterable[str]) -> None:
        """Each event on `topics`, as the JSON line API clients get (`Subscriber.deliver`)."""
        self.parts.bus.subscribe(subscriber, topics)

    def unsubscribe(self, subscriber: Subscriber, topics: Iterable[str] | None = None) -> None:
        self.parts.bus.unsubscribe(subscriber, topics)

    def subscribe_events(self, subscriber: EventSubscriber, topics: Iterable[str]) -> None:
        """Each event on `topics`, as the event itself with its seq (`EventSubscriber`)."""
        self.parts.bus.subscribe_events(subscriber, topics)

    def unsubscribe_events(
        self, subscriber: EventSubscriber, topics: Iterable[str] | None = None
    ) -> None:
        self.parts.bus.unsubscribe_events(subscriber, topics)

    def replay(
        self, since: int, topics: frozenset[str], until: int | None = None
    ) -> Iterator[bytes]:
        """The journaled lines after `since` (up to `until`) on `topics`, in order."""
        return self.parts.bus.replay(since, topics, until)

    def flush_journal(self) -> None:
        self.parts.journal.flush()

    @property
    def journal(self) -> Journal:
        """Read by the NATS transport, which publishes what is written to it."""
        return self.parts.journal

    # ------------------------------------------------------------ market data

    async def md_subscribe(
        self, holder: Hashable, symbol: str, what: AbstractSet[str], within_s: float, depth: int = 0
    ) -> None:
        """`holder` takes `symbol`'s streams `what` (`book`, `trades`); returns once each is
        live. RequestError for a symbol or depth `book` refuses, the session not logged on
        (nothing asked: `not_connected` at once, as every request that needs the exchange),
        or a stream the exchange refuses or leaves unanswered for `within_s` (left then, if
        this call took it)."""
        self.parts.market_data.validate(symbol, depth)
        self.parts.lifecycle.require()
        await self.parts.market_data.subscribe(holder, symbol, what, within_s)

    def md_unsubscribe(self, holder: Hashable, symbol: str, what: AbstractSet[str]) -> None:
        self.parts.market_data.unsubscribe(holder, symbol, what)

    def md_hold(self, holder: Hashable, symbol: str, what: AbstractSet[str]) -> None:
        """`holder` keeps `symbol`'s streams `what` open without waiting on them; one the
        exchange refuses is asked for again. `md_release` ends it."""
        self.parts.market_data.hold(holder, symbol, what)

    def md_release(self, holder: Hashable, symbol: str, what: AbstractSet[str]) -> None:
        self.parts.market_data.release(holder, symbol, what)

    def md_when_refused(self, told: Callable[[Hashable, str, str], Any]) -> None:
        """`told(holder, symbol, what)` of each holder of a stream the exchange ended
        (`md.rejected`), but for holds and the `md_subscribe` calls it fails."""
        self.parts.market_data.refused_clients = told

    def md_client_gone(self, holder: Hashable) -> None:
        """`holder` leaves every stream it holds."""
        self.parts.market_data.client_gone(holder)

    def book(
        self, symbol: str, depth: int, to_subscribe: str = "md_subscribe to it first"
    ) -> BookLevels:
        """`depth` levels (0: all, at most `market_data.max_depth`) of a live book; else
        RequestError (`unknown_symbol`, `invalid_depth`, `not_subscribed`: a book nobody
        holds says `to_subscribe`, what the caller's transport does to hold it)."""
        return self.parts.market_data.book_levels(symbol, depth, to_subscribe)

    def subscribed_book(self, symbol: str, depth: int) -> BookLevels:
        """The book as a holder of its stream sees it now: at any depth, unchecked."""
        bids, asks = self.parts.market_data.books[symbol].levels(depth)
        return BookLevels(symbol=symbol, bids=bids, asks=asks)

    # ------------------------------------------------------------ state

    @property
    def symbols(self) -> frozenset[str]:
        return self.parts.entry.symbols

    @property
    def venue(self) -> Venue:
        return self.parts.venue

    @property
    def session_id(self) -> str:
        return self.parts.session.name

    @property
    def session_state(self) -> str:
        return self.parts.lifecycle.state.value

    @property
    def logon_held(self) -> asyncio.Event:
        """Set while the logon is held back (the exchange refused the credentials)."""
        return self.parts.lifecycle.reconnector.held_back

    @property
    def held_because(self) -> str | None:
        return self.parts.lifecycle.reconnector.held

    def ready(self) -> bool:
        """The session ready and the journal writable (new orders are refused while it is
        not): what /readyz, `status.ready` and systemd's READY=1 mean."""
        return self.session_ready() and self.parts.journal.write_error is None

    def session_ready(self) -> bool:
        """Logged on, reconciled, and QuickFIX's store writable: the exchange can be sent
        to and its answers trusted, which is what the engine waits for."""
        p = self.parts
        return p.lifecycle.up and p.reconciler.ready and p.session.store_error is None

    def not_ready_because(self) -> str | None:
        """Why /readyz says not ready; None when ready."""
        if self.ready():
            return None
        lifecycle = self.parts.lifecycle
        if lifecycle.reconnector.held is not None:
            return lifecycle.reconnector.held
        store_error = self.parts.session.store_error
        if store_error is not None:
            state = lifecycle.state
            return f"QuickFIX's store cannot be written ({store_error}); the session is {state}"
        journal_error = self.parts.journal.write_error
        if journal_error is not None:
            return f"the journal cannot be written ({journal_error}); new orders are refused"
        if not lifecycle.up:
            return f"the exchange session is {lifecycle.state}"
        return f"reconciling {self.parts.reconciler.pending} open orders with the exchange"

    def state_line(self) -> str:
        """The session's state in one line, systemd's STATUS: logged on, held (and why), or
        down (why, and when the next attempt is). The same words for as long as the state
        lasts, so that it is told once per change (reconciliation's count left out)."""
        if self.ready():
            return f"logged on as {self.session_id}"
        lifecycle = self.parts.lifecycle
        held = lifecycle.reconnector.held
        if held is not None:
            return f"not logged on: {held}"
        if lifecycle.up:
            if self.parts.session.store_error is not None:
                why = "QuickFIX's store cannot be written"
            elif self.parts.journal.write_error is not None:
                why = "the journal cannot be written; new orders are refused"
            else:
                why = "reconciling open orders with the exchange"
            return f"not ready, logged on as {self.session_id}: {why}"
        connection = lifecycle.connection()
        why = connection.last_down_reason or "not logged on yet"
        next_attempt = connection.next_attempt_at
        if next_attempt is None:
            return f"session down: {why}; trying again now"
        return f"session down: {why}; next attempt at {next_attempt.isoformat(timespec='seconds')}"

    def status(self) -> Status:
        p = self.parts
        halted = p.kill_switch.halted
        return Status(
            version=__version__,
            venue=VenueView(
                name=p.venue.name,
                offers=sorted(p.venue.offers),
                time_in_force=sorted(p.venue.time_in_force),
            ),
            session=p.lifecycle.state.value,
            session_id=p.session.name,
            connection=p.lifecycle.connection(),
            seq_nums=p.session.sequence_numbers(),
            heartbeat_rtt_ms=p.session.heartbeat_round_trip_ms(),
            uptime_s=round(time.monotonic() - self.started, 3),
            last_event_seq=p.bus.seq,
            ready=self.ready(),
            reconciling=p.reconciler.pending,
            open_orders=p.orders.open_count(),
            halted=(
                Halted(by=halted.by, reason=halted.reason, since=halted.ts) if halted else None
            ),
            throttle_queued=p.throttle.queued(),
            account=p.account_refresh.status(),
            inbound_refused=p.router.inbound_refused,
            callback_errors=p.router.callback_errors,
            dialect_errors=p.router.dialect_errors,
            log_lines_dropped=lines_dropped(),
            market_data=p.market_data.status(),
            tls=TlsState(
                enabled=p.tls_pipe is not None,
                last_error=p.tls_pipe.last_error if p.tls_pipe else None,
            ),
            nats=self.nats_state() if self.nats_state is not None else None,
        )

    def status_counts(self) -> dict[OrderStatus, int]:
        return dict(self.parts.orders.status_counts)


def view(tracker: OrderTracker, order: Order) -> OrderView:
    return OrderView(**tracker.snapshot(order), cancel_cl_ord_id=order.cancel_pending)
