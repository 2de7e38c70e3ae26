"""The order path: client commands in, FIX out; FIX in, events out.

Owns the tracker, the bus and the exchange session, and wires them with the dialect.
Runs on the asyncio loop's thread only: the loop runs the exchange session's QuickFIX
initiator itself, and the bridge's QuickFIX threads reach it through an Inbox.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import structlog

from fixgw import __version__
from fixgw.api.protocol import (
    CancelOrderRequest,
    ErrorCode,
    NewOrder,
    OrderRef,
    OrderStatusRequest,
    positive_decimal,
)
from fixgw.bus import EventBus
from fixgw.config import (
    GatewayConfig,
    Secrets,
    SessionConfig,
    ThrottleKind,
    standard_fix44_dictionary,
)
from fixgw.domain import (
    AccountBalance,
    AccountInfoReport,
    AnyEvent,
    BookSnapshotReport,
    BookUpdateReport,
    CancelOrder,
    CancelRejectReport,
    ErrorSource,
    Event,
    ExchangeError,
    ExchangeErrorReport,
    ExecKind,
    ExecutionReport,
    LogoutReason,
    MarketDataRejectReport,
    MdRejectReason,
    OrderAnomaly,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    QueryOrder,
    RequestAccountInfo,
    RequestMarketData,
    RequestOrderMassStatus,
    SessionDown,
    SessionUp,
    Side,
    SubmitOrder,
    TradingHalted,
    TradingResumed,
    utc_now,
)
from fixgw.engine.account import AccountRefresh
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.risk import PreTradeCheck, Throttle
from fixgw.engine.tracker import Order, OrderTracker
from fixgw.errors import DialectError, RequestError
from fixgw.fix.dictionary import write_lenient_dictionary
from fixgw.fix.initiator import ExchangeSession, Happening, Inbound, InitiatorSettings
from fixgw.fix.message import FixMessage, FixParseError, parse, redact
from fixgw.fix.qf import header_of
from fixgw.fix.reconnect import Backoff, Phase, Reconnector
from fixgw.fix.tags import MsgType
from fixgw.fix.tls import Endpoint, Pipe, client_context
from fixgw.ids import ClOrdIdGenerator
from fixgw.journal import Journal
from fixgw.marketdata.streams import MarketData
from fixgw.ops import notify
from fixgw.ops.logging import info_lines
from fixgw.ops.prometheus import Metrics
from fixgw.venues import venue_for
from fixgw.venues.base import Capability, Credentials

log = structlog.get_logger("fixgw.gateway")


TRADES_KEPT = 10_000
"""Fills kept for `trades`, overall and per symbol: the most a request may ask for."""

RISK_HOLDER = "risk"
"""Holds market-data streams open for the risk checks' reference price."""

HALT_RETRY_S = 1.0
"""While halted, how soon cancels the rate limit refused are tried again, and how soon the
exchange is first asked about an order whose cancel it refused."""
HALT_RECHECK_MAX_S = 60.0
"""The longest wait between such questions while the exchange goes on refusing."""

_CANCELLED_LATER = {
    ErrorCode.NOT_CONNECTED.value: "cancelled once the session is back and reconciled",
    ErrorCode.THROTTLED.value: f"tried again in {HALT_RETRY_S:g} s",
}
"""What a halt does about an order it could not send a cancel for, by the error's code."""

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
market_data.depth) needs a restart."""


def tls_pipe(session: SessionConfig) -> Pipe:
    """QuickFIX talks to a loopback port; the pipe carries it to the exchange over TLS."""
    t = session.tls
    context = client_context(t.ca_file, t.client_cert, t.client_key, verify=t.verify)
    return Pipe(
        Endpoint("127.0.0.1", 0),
        Endpoint(session.host, session.port, context, t.server_name),
        name="exchange",
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


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


class Target(NamedTuple):
    """The order a request is about: tracked here, or known only by the exchange's id."""

    order: Order | None
    cl_ord_id: str | None
    """Our ClOrdID; None for an order this gateway does not track."""
    order_id: str | None
    symbol: str
    side: Side


class Gateway:
    def __init__(
        self, config: GatewayConfig, secrets: Secrets, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.config = config
        self.loop = loop
        self.started = time.monotonic()
        self.symbols = frozenset(config.symbols)
        self.metrics = Metrics()
        self.became_ready = asyncio.Event()
        """Set at the first moment the gateway is logged on and reconciled."""
        self._sent_at: dict[str, float] = {}
        """new_order arrival time by ClOrdID, until its first execution report."""
        self._unanswered: dict[str, tuple[float, str]] = {}
        """Orders and cancels sent and not yet answered: the loop's time when sent, and the
        order's ClOrdID, by the request's ClOrdID, oldest first."""
        self._queued: dict[str, tuple[ThrottleKind, asyncio.TimerHandle]] = {}
        """Messages the throttle holds back, by the request's ClOrdID (an order's, or a
        cancel's): never sent once withdrawn."""
        self.journal = Journal(Path(config.journal.path), config.journal.fsync)
        self.bus = EventBus(self.journal)
        self.tracker = OrderTracker(config.orders.keep_closed)
        self._fills: deque[dict[str, Any]] = deque(maxlen=TRADES_KEPT)
        self._fills_of: dict[str, deque[dict[str, Any]]] = {}
        """The last fills, and the last of each symbol, for `trades`."""
        self.tracker.restore(self._noting_fills(self.journal.events(prefix="order.")))
        self.tracker.prune()
        self._status_of = {o.cl_ord_id: o.shown_status for o in self.tracker.all_orders()}
        self._status_counts = Counter(self._status_of.values())
        """Orders by status, kept from the order events: read per new order and per scrape
        without walking every order."""
        self._unlogged: list[Event] = []
        """Order events published this turn, logged together once it is over."""
        self.pre_trade = PreTradeCheck(config.risk)
        self.throttle = Throttle(config.throttle)
        self.halted: TradingHalted | None = None
        """The kill switch, as last journaled: it holds across restarts."""
        self._halt_retry: asyncio.TimerHandle | None = None
        self._halt_recheck: asyncio.TimerHandle | None = None
        self._halt_recheck_s = HALT_RETRY_S
        for event in self.journal.events(prefix="session."):
            if isinstance(event, TradingHalted | TradingResumed):
                self.halted = event if isinstance(event, TradingHalted) else None
        self._owners: dict[str, Hashable] = {}
        """ClOrdID -> the API client that placed it, for cancel on disconnect."""
        self.reconciler = Reconciler(
            self.tracker,
            self._query_order,
            lambda e: self._publish_orders([e]),
            config.session.reconcile_timeout_s,
            on_ready=self._on_reconciled,
        )
        self._check_again_after: str | None = None
        """Why the open orders need asking about again once the reconciliation under way is
        done: a message that may have carried an execution came in during it."""
        self.new_cl_ord_id = ClOrdIdGenerator()
        self.credentials = Credentials(secrets.api_key, secrets.secret_key)
        self.venue = venue_for(config, self.credentials)
        s = config.session
        self.tls_pipe = tls_pipe(s) if s.tls.enabled else None
        self.session = ExchangeSession(
            InitiatorSettings(
                host="127.0.0.1" if self.tls_pipe else s.host,
                port=self.tls_pipe.start() if self.tls_pipe else s.port,
                sender_comp_id=s.sender_comp_id,
                target_comp_id=s.target_comp_id or self.venue.default_target_comp_id or "",
                heartbeat_s=s.heartbeat_s,
                store_dir=Path(s.store_dir),
                dictionary=inbound_dictionary(s, self.venue.dictionary),
                logout_timeout_s=s.logout_timeout_s,
                send_buffer_bytes=s.send_buffer_bytes,
                logon_fields=self.venue.logon_fields(s.reset_seq_num_on_logon),
            ),
            self.metrics,
            loop,
            self.on_inbound,
            self.on_callback_error,
        )
        self.session_state = "connecting"
        self.callback_errors = 0
        self.dialect_errors = 0
        self.inbound_refused = 0
        """Application messages QuickFIX refused and the gateway read from the raw text."""
        self._logout_reason: LogoutReason | None = None
        self._logout_text: str | None = None
        self._status_waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._asked_untracked: OrderedDict[str, None] = OrderedDict()
        """Exchange order ids a client asked the status of that no tracked order has (the
        last 1,024): the answer is that client's reply, not an event."""
        md = config.market_data
        self.market_data = MarketData(
            self.symbols,
            self._request_market_data,
            self.bus.publish,
            self.metrics.book_stale.labels,
            upstream_depth=md.depth,
            stale_after_s=md.stale_after_s,
            max_depth=md.max_depth,
        )
        self._watchdog: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        r = config.session.reconnect
        self.reconnector = Reconnector(
            self.session, Backoff(r.floor_s, r.ceiling_s, r.factor, r.jitter), stable_s=r.stable_s
        )
        self._account_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._mass_status: dict[str, tuple[asyncio.Future[None], list[ExecutionReport]]] = {}
        self.new_req_id = ClOrdIdGenerator(prefix="rq")
        offers_account = Capability.ACCOUNT in self.venue.offers
        self.account_refresh = AccountRefresh(
            loop,
            self._request_account,
            self.new_req_id,
            config.account.refresh_s if offers_account else 0,
            config.account.after_fill and offers_account,
        )
        self._handlers: dict[type, Callable[[Any], None]] = {
            ExecutionReport: self._on_execution_report,
            CancelRejectReport: self._on_cancel_reject,
            BookSnapshotReport: self.market_data.on_snapshot,
            BookUpdateReport: self._on_market_data_update,
            MarketDataRejectReport: self.market_data.on_reject,
            AccountInfoReport: self._on_account_info,
            ExchangeErrorReport: self._on_exchange_error,
        }
        """What to do with each kind of venue report."""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        s = self.config.session
        self.session.start(None if s.reset_seq_num_on_logon else self.journal.inbound_checkpoint())
        self._reconnect_task = self.loop.create_task(self.reconnector.run())
        self._hold_reference_prices()
        self._watchdog = self.loop.create_task(self._periodic_checks())
        self.account_refresh.start()

    async def stop(self) -> None:
        self.account_refresh.stop()
        for task in (self._reconnect_task, self._watchdog):
            if task is not None:
                task.cancel()
        for timer in (self._halt_retry, self._halt_recheck):
            if timer is not None:
                timer.cancel()
        await self.session.stop()
        if self.tls_pipe is not None:
            self.tls_pipe.stop()
        self.journal.close()

    async def _periodic_checks(self) -> None:
        s, md = self.config.session, self.config.market_data
        checks = [1.0, s.heartbeat_s / 8] + ([md.stale_after_s / 4] if md.stale_after_s else [])
        interval = max(0.05, min(checks))
        next_probe = self.loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                self.market_data.check_staleness()
                self.refresh_gauges()
                self._ask_about_unanswered()
                if self.loop.time() >= next_probe and self.session.probe():
                    next_probe = self.loop.time() + self.config.session.heartbeat_s
                self._drop_a_silent_exchange()
            except Exception:
                log.exception("periodic check failed")

    def _drop_a_silent_exchange(self) -> None:
        """QuickFIX gives up on a silent peer after 2.4 heartbeat intervals; two is enough,
        with a TestRequest sent every interval."""
        silent_s = self.metrics.seconds_since_inbound()
        if self.session_state == "up" and silent_s > 2 * self.config.session.heartbeat_s:
            log.error(
                "exchange silent for two heartbeat intervals; disconnecting",
                silent_s=round(silent_s, 3),
            )
            self._logout_text = f"exchange silent for {silent_s:.1f} s"
            self.session.disconnect()

    def _hold_reference_prices(self) -> None:
        """Keep the book and trades of every symbol whose limits need a price subscribed,
        and let go of those that no longer do (after a reload)."""
        md, kinds = self.market_data, {"book", "trades"}
        for symbol in self.symbols:
            if self.pre_trade.needs_reference(symbol):
                md.hold(RISK_HOLDER, symbol, kinds)
        for symbol in list(md.books):
            held = RISK_HOLDER in md.holders(symbol, "book")
            if held and (symbol not in self.symbols or not self.pre_trade.needs_reference(symbol)):
                md.release(RISK_HOLDER, symbol, kinds)

    # ------------------------------------------------------------ reload

    def reload(self, new: GatewayConfig) -> tuple[list[str], list[str]]:
        """Apply what can change without dropping the session; returns (applied, needs a
        restart), as lists of the config keys that changed."""
        old_flat, new_flat = (
            _flatten(msgspec.to_builtins(self.config)),
            _flatten(msgspec.to_builtins(new)),
        )
        changed = sorted(
            k for k in old_flat.keys() | new_flat.keys() if old_flat.get(k) != new_flat.get(k)
        )
        applied = [k for k in changed if k.startswith(RELOADABLE)]
        api = msgspec.structs.replace(
            self.config.api,
            request_timeout_s=new.api.request_timeout_s,
            client_buffer_bytes=new.api.client_buffer_bytes,
        )
        self.config = msgspec.structs.replace(
            self.config,
            symbols=new.symbols,
            market_data=new.market_data,
            account=new.account,
            log=new.log,
            api=api,
            risk=new.risk,
            throttle=new.throttle,
            credentials=msgspec.structs.replace(
                self.config.credentials,
                api_key=new.credentials.api_key,
                secret_key=new.credentials.secret_key,
            ),
        )
        self.pre_trade = PreTradeCheck(new.risk)
        self.throttle.reconfigure(new.throttle, self.loop.time())
        self.symbols = frozenset(new.symbols)
        md = self.market_data
        md.set_symbols(self.symbols)
        md.stale_after_s, md.max_depth = new.market_data.stale_after_s, new.market_data.max_depth
        self._hold_reference_prices()
        if Capability.ACCOUNT in self.venue.offers:
            self.account_refresh.reconfigure(new.account.refresh_s, new.account.after_fill)
        return applied, [k for k in changed if k not in applied]

    # ------------------------------------------------------------ account, mass status, trades

    async def account_info(self) -> dict[str, Any]:
        self._require_session()
        acc_req_id = self.new_req_id()
        waiter: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._account_waiters[acc_req_id] = waiter
        try:
            if not self._request_account(acc_req_id):
                raise self._not_connected()
            return await asyncio.wait_for(waiter, self.config.api.request_timeout_s)
        except TimeoutError:
            raise self._timeout("account info") from None
        finally:
            self._account_waiters.pop(acc_req_id, None)

    def _request_account(self, acc_req_id: str) -> bool:
        cmd = RequestAccountInfo(ts=utc_now(), acc_req_id=acc_req_id)
        return self.session.send(self.venue.account(cmd))

    def _on_account_info(self, report: AccountInfoReport) -> None:
        self.account_refresh.answered()
        self.bus.publish(
            AccountBalance(
                ts=report.ts,
                currency=report.currency,
                balance=report.balance,
                balances=report.balances,
            )
        )
        waiter = self._account_waiters.get(report.acc_req_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(
                {
                    "currency": report.currency,
                    "balance": report.balance,
                    "balances": report.balances,
                }
            )

    async def orders_from_exchange(self, symbol: str | None) -> list[dict[str, Any]]:
        """The exchange's open orders. Answers end with LastRptRequested=Y; a venue that does
        not send it is answered with what arrived within the request timeout."""
        self._require_session()
        req_id = self.new_req_id()
        done: asyncio.Future[None] = self.loop.create_future()
        reports: list[ExecutionReport] = []
        self._mass_status[req_id] = (done, reports)
        try:
            cmd = RequestOrderMassStatus(ts=utc_now(), mass_status_req_id=req_id, symbol=symbol)
            if not self.session.send(self.venue.mass_status(cmd)):
                raise self._not_connected()
            try:
                await asyncio.wait_for(done, self.config.api.request_timeout_s)
            except TimeoutError:
                if not reports:
                    raise self._timeout("order mass status") from None
        finally:
            self._mass_status.pop(req_id, None)
        return [
            {
                "cl_ord_id": r.cl_ord_id,
                "order_id": r.order_id,
                "symbol": r.symbol,
                "side": r.side,
                "order_type": r.order_type,
                "qty": r.qty,
                "price": r.price,
                "status": r.status,
                "cum_qty": r.cum_qty,
                "leaves_qty": r.leaves_qty,
                "avg_px": r.avg_px,
            }
            for r in reports
            if r.order_id is not None
        ]

    def _take_mass_status(self, report: ExecutionReport) -> bool:
        entry = self._mass_status.get(report.mass_status_req_id or "")
        if entry is None:
            return False
        done, reports = entry
        reports.append(report)
        if report.last_report and not done.done():
            done.set_result(None)
        return True

    def trades(self, symbol: str | None, limit: int) -> list[dict[str, Any]]:
        """This gateway's fills, newest last (the dialect has no trade history message):
        kept as they happen, and read from the journal at start, so that asking costs
        nothing however long the journal grows."""
        fills = self._fills if symbol is None else self._fills_of.get(symbol, deque())
        return list(itertools.islice(fills, max(0, len(fills) - limit), None))

    def _noting_fills(self, events: Iterable[AnyEvent]) -> Iterator[AnyEvent]:
        for event in events:
            if isinstance(event, OrderPartiallyFilled | OrderFilled):
                self._note_fill(event)
            yield event

    def _note_fill(self, e: OrderPartiallyFilled | OrderFilled) -> None:
        fill = {
            "ts": e.ts,
            "exec_id": e.exec_id,
            "cl_ord_id": e.cl_ord_id,
            "order_id": e.order_id,
            "symbol": e.symbol,
            "side": e.side,
            "qty": e.last_qty,
            "price": e.last_px,
        }
        self._fills.append(fill)
        of_symbol = self._fills_of.get(e.symbol)
        if of_symbol is None:
            of_symbol = self._fills_of[e.symbol] = deque(maxlen=TRADES_KEPT)
        of_symbol.append(fill)

    def _on_exchange_error(self, report: ExchangeErrorReport) -> None:
        """Publish it naming the request, and fail whatever waits on that request."""
        sent = self.session.sent.get(report.ref_seq_num) if report.ref_seq_num else None
        ids = self.venue.ids_named(parse(sent, self.venue.groups)) if sent is not None else None
        if ids is not None:
            report = msgspec.structs.replace(
                report,
                ref_msg_type=report.ref_msg_type or ids.msg_type,
                cl_ord_id=report.cl_ord_id or ids.cl_ord_id,
                acc_req_id=report.acc_req_id or ids.acc_req_id,
                md_req_id=report.md_req_id or ids.md_req_id,
            )
        fields = msgspec.structs.asdict(report)
        del fields["ref_seq_num"]
        self.metrics.rejects.labels(f"{report.source}:{report.reason or ''}").inc()
        why = f"the exchange answered with {report.source}: {report.text or report.reason}"
        if self.account_refresh.is_own(report.acc_req_id):
            if self.account_refresh.refused(why, report.ts):
                self.bus.publish(ExchangeError(**fields))
            return
        log.warning("exchange error", **{k: v for k, v in fields.items() if k != "ts"})
        self.bus.publish(ExchangeError(**fields))
        waiter = self._account_waiters.get(report.acc_req_id or "")
        if waiter is not None and not waiter.done():
            waiter.set_exception(RequestError(why, code=ErrorCode.EXCHANGE_ERROR))
        if report.md_req_id is not None:
            self.market_data.on_reject(
                MarketDataRejectReport(
                    md_req_id=report.md_req_id, reason=MdRejectReason.OTHER, text=why, ts=report.ts
                )
            )
        if report.cl_ord_id is not None:
            if self._refused_status_request(report, report.cl_ord_id):
                self._status_refused(report.cl_ord_id, why)
            else:
                self._publish_orders(self.tracker.refused(report.cl_ord_id, why, report.ts))
                self._recheck_while_halted()
        if ids is not None and ids.mass_status_req_id is not None:
            entry = self._mass_status.get(ids.mass_status_req_id)
            if entry is not None and not entry[0].done():
                entry[0].set_exception(RequestError(why, code=ErrorCode.EXCHANGE_ERROR))

    def _refused_status_request(self, report: ExchangeErrorReport, cl_ord_id: str) -> bool:
        """An OrderStatusRequest carries the order's own ClOrdID. An ExceptionResponse does
        not name the message it refuses: while a status request for the order is out, it is
        taken to be about that one, which leaves the order open rather than close a live one."""
        if report.ref_msg_type is not None:
            return report.ref_msg_type == MsgType.ORDER_STATUS_REQUEST
        order = self.tracker.get(cl_ord_id)
        return self.reconciler.asking(cl_ord_id) or (
            order is not None and order.order_id in self._status_waiters
        )

    def _status_refused(self, cl_ord_id: str, why: str) -> None:
        """The order's state stays as it is; whoever waits on the answer gets the error."""
        log.warning("order status request refused; the order is left as it is", cl_ord_id=cl_ord_id)
        self.reconciler.refused(cl_ord_id)
        order = self.tracker.get(cl_ord_id)
        if order is not None and order.order_id is not None:
            for waiter in self._status_waiters.get(order.order_id, []):
                if not waiter.done():
                    waiter.set_exception(RequestError(why, code=ErrorCode.EXCHANGE_ERROR))

    def _timeout(self, what: str) -> RequestError:
        return RequestError(
            f"no {what} from the exchange within {self.config.api.request_timeout_s}s",
            code=ErrorCode.TIMEOUT,
        )

    def _query_order(self, order: Order) -> bool:
        """OrderID is required on H; before the exchange has named the order, ask by ClOrdID.
        An order still in the throttle's queue was never sent: nothing to ask."""
        if order.cl_ord_id in self._queued:
            return False
        cmd = QueryOrder(
            ts=utc_now(),
            order_id=order.order_id or "NONE",
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
        )
        return self.session.send(self.venue.order_status(cmd))

    def _on_market_data_update(self, report: BookUpdateReport) -> None:
        for symbol in report.levels.keys() | report.trades.keys():
            self.metrics.md_message(symbol)
        self.market_data.on_update(report)

    def ready(self) -> bool:
        """Logged on and reconciled: what /readyz and systemd's READY=1 mean."""
        return self.session_state == "up" and self.reconciler.ready

    def refresh_gauges(self) -> None:
        m = self.metrics
        for name, value in self.session.sequence_numbers().items():
            (m.next_sender_seq if name == "next_sender" else m.next_target_seq).set(value)
        for status in OrderStatus:
            m.orders.labels(status.value).set(self._status_counts[status])
        m.journal_bytes.set(self.journal.size_bytes)
        m.throttle_queue.set(self.throttle.queued())
        m.halted.set(1 if self.halted else 0)

    def _request_market_data(self, cmd: RequestMarketData) -> bool:
        return self.session.send(self.venue.market_data(cmd))

    # ------------------------------------------------------------ commands

    def new_order(self, req: NewOrder, owner: Hashable | None = None) -> dict[str, Any]:
        """`owner`: the API connection placing it, for cancel on disconnect."""
        arrived = time.perf_counter()
        if req.symbol not in self.symbols:
            raise RequestError(
                f"unknown symbol {req.symbol!r}; known: {', '.join(sorted(self.symbols))}",
                code=ErrorCode.UNKNOWN_SYMBOL,
            )
        qty = positive_decimal(req.qty, "qty", ErrorCode.INVALID_QTY)
        if req.type is OrderType.MARKET and req.price is not None:
            raise RequestError("a market order takes no price", code=ErrorCode.INVALID_PRICE)
        if req.type is OrderType.LIMIT and req.price is None:
            raise RequestError("a limit order needs a price", code=ErrorCode.INVALID_PRICE)
        price = (
            positive_decimal(req.price, "price", ErrorCode.INVALID_PRICE)
            if req.price is not None
            else None
        )
        if self.halted is not None:
            raise RequestError(
                f"trading is halted (by {self.halted.by}"
                + (f": {self.halted.reason}" if self.halted.reason else "")
                + "); `resume` lifts it",
                code=ErrorCode.HALTED,
            )
        if req.time_in_force is not None and req.time_in_force not in self.venue.time_in_force:
            raise RequestError(
                f"the venue ({self.venue.name}) cannot carry time_in_force {req.time_in_force}; "
                f"it takes {sorted(self.venue.time_in_force) or 'none'}",
                code=ErrorCode.NOT_OFFERED,
            )
        self._require_session()
        if not self.reconciler.ready:
            raise RequestError(
                f"reconciling {self.reconciler.pending} open orders with the exchange; "
                "new orders are taken once that is done",
                code=ErrorCode.NOT_READY,
            )
        cmd = SubmitOrder(
            ts=utc_now(),
            cl_ord_id=req.cl_ord_id or self.new_cl_ord_id(),
            symbol=req.symbol,
            side=req.side,
            order_type=req.type,
            qty=qty,
            price=price,
            time_in_force=req.time_in_force,
        )
        self.tracker.refuse_if_in_use(cmd.cl_ord_id)  # before the throttle counts it
        self._check_risk(cmd)
        message = self.venue.new_order(cmd)  # nothing is journaled if it fails
        delay = self._paced("new_order")
        event = self.tracker.submit(cmd)
        self._publish_orders([event])
        self.journal.flush()  # on disk before the exchange can know of it
        self._sent_at[cmd.cl_ord_id] = arrived
        if owner is not None:
            self._owners[cmd.cl_ord_id] = owner

        def unsent() -> None:
            self._sent_at.pop(cmd.cl_ord_id, None)
            self._publish_orders(
                self.tracker.refused(
                    cmd.cl_ord_id, "not sent: the session went down", utc_now(), not_delivered=True
                )
            )

        if delay:
            self._send_later("new_order", delay, message, unsent, (cmd.cl_ord_id, cmd.cl_ord_id))
        elif self.session.send(message):
            self._await_answer(cmd.cl_ord_id, cmd.cl_ord_id)
        else:
            unsent()
            raise self._not_connected()
        return {"cl_ord_id": cmd.cl_ord_id, "status": event.status}

    def _open_count(self) -> int:
        return sum(n for status, n in self._status_counts.items() if not status.is_terminal)

    def _check_risk(self, cmd: SubmitOrder) -> None:
        open_orders = self._open_count()
        reference = self.market_data.reference_price(cmd.symbol)
        breach = self.pre_trade.breach(cmd, reference, open_orders)
        if breach is None:
            return
        self.metrics.risk_rejects.labels(breach.limit).inc()
        log.warning(
            "order refused by a risk limit",
            cl_ord_id=cmd.cl_ord_id,
            symbol=cmd.symbol,
            limit=breach.limit,
            why=breach.message,
        )
        raise RequestError(f"risk limit {breach.limit}: {breach.message}", code=ErrorCode.RISK)

    def _paced(self, kind: ThrottleKind) -> float:
        """Seconds the throttle holds this message back; raises if it refuses it."""
        delay = self.throttle.admit(kind, self.loop.time())
        if delay is None:
            self.metrics.throttled.labels(kind, "rejected").inc()
            raise RequestError(
                f"over the {kind} rate limit; try again shortly", code=ErrorCode.THROTTLED
            )
        if delay:
            self.metrics.throttled.labels(kind, "queued").inc()
        return delay

    def _send_later(
        self,
        kind: ThrottleKind,
        delay: float,
        message: FixMessage,
        unsent: Callable[[], None],
        awaiting: tuple[str, str | None],
    ) -> None:
        """`awaiting`: the request's ClOrdID and the order's, for `_await_answer`."""

        request = awaiting[0]

        def send() -> None:
            del self._queued[request]
            self.throttle.sent_queued(kind)
            if self.session.send(message):
                self._await_answer(*awaiting)
            else:
                unsent()

        self._queued[request] = (kind, self.loop.call_later(delay, send))

    def _withdraw(self, request: str) -> bool:
        """Take a message out of the throttle's queue before it is sent; False if it is not
        (or no longer) there."""
        entry = self._queued.pop(request, None)
        if entry is None:
            return False
        kind, timer = entry
        timer.cancel()
        self.throttle.release(kind)
        return True

    def _await_answer(self, request_cl_ord_id: str, cl_ord_id: str | None) -> None:
        """`cl_ord_id`: the order's; None for one this gateway does not track (nothing to
        ask about)."""
        if cl_ord_id is not None and self.config.orders.ack_timeout_s:
            self._unanswered[request_cl_ord_id] = (self.loop.time(), cl_ord_id)

    def _ask_about_unanswered(self) -> None:
        """Orders and cancels the exchange has not answered within `orders.ack_timeout_s`:
        their status is asked, once (the next logon's reconciliation asks again)."""
        if not self._unanswered or not self.ready():
            return  # empty too when the check is off (`_await_answer`)
        timeout = self.config.orders.ack_timeout_s
        due = self.loop.time() - timeout
        overdue: list[Order] = []
        while self._unanswered:
            request, (sent, cl_ord_id) = next(iter(self._unanswered.items()))
            if sent > due:
                break
            del self._unanswered[request]
            order = self.tracker.get(cl_ord_id)
            if order is None:
                continue
            waiting = (
                order.status is OrderStatus.PENDING_NEW
                if request == cl_ord_id
                else (order.cancel_pending == request)
            )
            if waiting:
                overdue.append(order)
        if overdue and self.reconciler.check(overdue):
            log.warning(
                "no answer from the exchange; asking the status",
                orders=[o.cl_ord_id for o in overdue],
                after_s=timeout,
            )

    def cancel_order(self, req: CancelOrderRequest) -> dict[str, Any]:
        order, cl_ord_id, order_id, symbol, side = self._locate(req)
        if order is not None and not order.is_open:
            raise RequestError(
                f"order {order.cl_ord_id} is already {order.status}", code=ErrorCode.ORDER_CLOSED
            )
        if req.cancel_cl_ord_id is not None:
            self.tracker.refuse_if_in_use(req.cancel_cl_ord_id)
        cmd = CancelOrder(
            ts=utc_now(),
            cl_ord_id=req.cancel_cl_ord_id or self.new_cl_ord_id(),
            orig_cl_ord_id=cl_ord_id,
            order_id=order_id,
            symbol=symbol,
            side=side,
        )
        if order is not None and self._withdraw(order.cl_ord_id):
            # still in the throttle's queue: the exchange never hears of it
            self._sent_at.pop(order.cl_ord_id, None)
            self._publish_orders(
                self.tracker.withdrawn(
                    order.cl_ord_id,
                    "canceled before it was sent (it was waiting in the throttle queue)",
                    cmd.ts,
                    cmd.cl_ord_id,
                )
            )
            return {
                "cl_ord_id": cmd.orig_cl_ord_id,
                "order_id": order_id,
                "cancel_cl_ord_id": cmd.cl_ord_id,
                "status": "canceled",
            }
        self._require_session()
        delay = self._paced("cancel")
        event = self.tracker.cancel_requested(cmd)
        message = self.venue.cancel(cmd)
        if delay:
            self._send_later(
                "cancel",
                delay,
                message,
                lambda: self._publish_orders(
                    self.tracker.refused(
                        cmd.cl_ord_id,
                        "not sent: the session went down",
                        utc_now(),
                        not_delivered=True,
                    )
                ),
                (cmd.cl_ord_id, cmd.orig_cl_ord_id),
            )
        elif self.session.send(message):
            self._await_answer(cmd.cl_ord_id, cmd.orig_cl_ord_id)
        else:
            self.tracker.cancel_unsent(cmd)
            raise self._not_connected()
        if event is not None:
            self._publish_orders([event])
        return {
            "cl_ord_id": cmd.orig_cl_ord_id,
            "order_id": order_id,
            "cancel_cl_ord_id": cmd.cl_ord_id,
            "status": "pending_cancel",
        }

    # ------------------------------------------------------------ kill switch

    def halt(self, by: str, reason: str | None = None) -> dict[str, Any]:
        """Block new orders at once and cancel every open order at the exchange. An order no
        cancel can be sent for now is `waiting`: cancelled as soon as the gateway can
        (`_cancel_while_halted`)."""
        done = self.cancel_all(by)
        cancelling: list[str] = done["cancelling"]
        waiting: list[dict[str, str]] = [
            {**refused, "reason": f"{refused['reason']}; {_CANCELLED_LATER[refused['code']]}"}
            if refused["code"] in _CANCELLED_LATER
            else refused
            for refused in done["not_cancelled"]
        ]
        event = TradingHalted(
            ts=utc_now(),
            by=by,
            reason=reason,
            cancelling=cancelling,
            waiting=[w["cl_ord_id"] for w in waiting],
        )
        self.halted = event
        self._halt_recheck_s = HALT_RETRY_S
        self.bus.publish(event)
        log.warning(
            "trading halted",
            by=by,
            reason=reason,
            cancelling=len(cancelling),
            waiting=len(waiting),
        )
        self._retry_halt_cancels_if_throttled(done["not_cancelled"])
        return {"halted": True, "cancelling": cancelling, "waiting": waiting}

    def _cancel_while_halted(self) -> None:
        """While halted, a cancel for every open order that has none under way: after each
        reconciliation (so after a logon, once the exchange has said what is open), and
        again shortly after the cancel rate limit refused some."""
        if self.halted is None or not self.ready():
            return
        done = self.cancel_all(self.halted.by, only_without_cancel=True)
        if done["cancelling"] or done["not_cancelled"]:
            log.warning(
                "halted: cancelling the open orders left",
                cancelling=done["cancelling"],
                not_cancelled=[r["cl_ord_id"] for r in done["not_cancelled"]],
            )
        self._retry_halt_cancels_if_throttled(done["not_cancelled"])

    def _recheck_while_halted(self) -> None:
        """While halted, a cancel the exchange refused may leave an order open that nothing
        would cancel again: the exchange is asked about it, and an answer that finds it
        still open has it cancelled again (`_on_execution_report`)."""
        if self.halted is not None and self._halt_recheck is None:
            self._halt_recheck = self.loop.call_later(
                self._halt_recheck_s, self._recheck_open_orders
            )

    def _recheck_open_orders(self) -> None:
        """Asks about the open orders no cancel is under way for (one out or queued by the
        throttle counts), without holding anything back. While the exchange goes on
        refusing, each round waits twice as long as the one before, up to a minute."""
        self._halt_recheck = None
        if self.halted is None or not self.ready():
            return  # after a logon, reconciliation asks about every open order anyway
        uncancelled = [o for o in self.tracker.open_orders() if o.cancel_pending is None]
        if uncancelled and self.reconciler.check(uncancelled):
            log.warning(
                "halted: asking the exchange about orders it refused to cancel",
                orders=[o.cl_ord_id for o in uncancelled],
            )
            self._halt_recheck_s = min(2 * self._halt_recheck_s, HALT_RECHECK_MAX_S)

    def _retry_halt_cancels_if_throttled(self, not_cancelled: list[dict[str, str]]) -> None:
        throttled = any(r["code"] == ErrorCode.THROTTLED for r in not_cancelled)
        if throttled and self._halt_retry is None:
            self._halt_retry = self.loop.call_later(HALT_RETRY_S, self._retry_halt_cancels)

    def _retry_halt_cancels(self) -> None:
        self._halt_retry = None
        self._cancel_while_halted()

    def resume(self, by: str) -> dict[str, Any]:
        if self.halted is not None:
            self.halted = None
            if self._halt_recheck is not None:
                self._halt_recheck.cancel()
                self._halt_recheck = None
            self.bus.publish(TradingResumed(ts=utc_now(), by=by))
            log.warning("trading resumed", by=by)
        return {"halted": False}

    def cancel_all(
        self, by: str, owner: Hashable | None = None, only_without_cancel: bool = False
    ) -> dict[str, Any]:
        """A cancel for every open order (of `owner` only, if given): `cancelling`, the
        ClOrdIDs of those with a cancel under way, and `not_cancelled`, those no cancel could
        be sent for, with why (`code`, `reason`). `only_without_cancel`: leave out of
        `cancelling` those that already had one."""
        cancelling: list[str] = []
        not_cancelled: list[dict[str, str]] = []
        for order in list(self.tracker.open_orders()):
            if owner is not None and self._owners.get(order.cl_ord_id) != owner:
                continue
            if order.cancel_pending is not None:
                if not only_without_cancel:
                    cancelling.append(order.cl_ord_id)
                continue
            try:
                self.cancel_order(CancelOrderRequest(cl_ord_id=order.cl_ord_id))
                cancelling.append(order.cl_ord_id)
            except RequestError as exc:
                log.error("cancel not sent", cl_ord_id=order.cl_ord_id, by=by, error=exc.message)
                not_cancelled.append(
                    {"cl_ord_id": order.cl_ord_id, "code": str(exc.code), "reason": exc.message}
                )
        return {"cancelling": cancelling, "not_cancelled": not_cancelled}

    def client_gone(self, owner: Hashable, cancel_open_orders: bool) -> None:
        if cancel_open_orders:
            cancelling = self.cancel_all(f"disconnect of {owner}", owner)["cancelling"]
            if cancelling:
                log.warning("client gone: its open orders cancelled", cancelling=cancelling)
        for cl_ord_id in [k for k, v in self._owners.items() if v == owner]:
            del self._owners[cl_ord_id]

    async def order_status(self, req: OrderStatusRequest) -> dict[str, Any]:
        """The exchange's answer; the local state where the exchange has not acknowledged yet."""
        order, _, order_id, symbol, side = self._locate(req)
        if order_id is None:
            assert order is not None
            return {**self.tracker.snapshot(order), "source": "local"}
        self._require_session()
        if order is None:
            self._asked_untracked[order_id] = None
            if len(self._asked_untracked) > 1024:
                self._asked_untracked.popitem(last=False)
        delay = self._paced("status")
        if delay:
            try:
                await asyncio.sleep(delay)
            except BaseException:  # the client went away: the request is never sent
                self.throttle.release("status")
                raise
            self.throttle.sent_queued("status")
        waiter: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._status_waiters.setdefault(order_id, []).append(waiter)
        try:
            cmd = QueryOrder(
                ts=utc_now(),
                order_id=order_id,
                cl_ord_id=order.cl_ord_id if order else req.cl_ord_id,
                symbol=symbol,
                side=side,
            )
            if not self.session.send(self.venue.order_status(cmd)):
                raise self._not_connected()
            return await asyncio.wait_for(waiter, self.config.api.request_timeout_s)
        except TimeoutError:
            raise RequestError(
                f"no answer from the exchange within {self.config.api.request_timeout_s}s",
                code=ErrorCode.TIMEOUT,
            ) from None
        finally:
            waiters = self._status_waiters.get(order_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._status_waiters.pop(order_id, None)

    def list_orders(self, include_closed: bool) -> list[dict[str, Any]]:
        orders = self.tracker.all_orders() if include_closed else self.tracker.open_orders()
        return [self.tracker.snapshot(o) for o in orders]

    def status(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "venue": {
                "name": self.venue.name,
                "offers": sorted(self.venue.offers),
                "time_in_force": sorted(self.venue.time_in_force),
            },
            "session": self.session_state,
            "session_id": self.session.name,
            "connection": self.reconnector.status(),
            "seq_nums": self.session.sequence_numbers(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "last_event_seq": self.bus.seq,
            "ready": self.reconciler.ready,
            "reconciling": self.reconciler.pending,
            "open_orders": self._open_count(),
            "halted": (
                {"by": self.halted.by, "reason": self.halted.reason, "since": self.halted.ts}
                if self.halted
                else None
            ),
            "throttle_queued": self.throttle.queued(),
            "account": self.account_refresh.status(),
            "inbound_refused": self.inbound_refused,
            "callback_errors": self.callback_errors,
            "dialect_errors": self.dialect_errors,
            "market_data": self.market_data.status(),
            "tls": {
                "enabled": self.tls_pipe is not None,
                "last_error": self.tls_pipe.last_error if self.tls_pipe else None,
            },
        }

    def _credentials_refused(self, text: str | None) -> None:
        """No more logons with these credentials: an exchange knocked on once a minute with
        a wrong key may lock it or ban the address. The operator's `logon_again`, a reload
        with other credentials, or a restart tries again."""
        if self.reconnector.held is not None:
            return
        reason = f"the exchange refused the credentials: {text or 'invalid credentials'}"
        self.reconnector.hold(reason)
        self.metrics.credentials_refused.set(1)
        log.error(
            "logon refused: the exchange says the credentials are wrong; no further logon "
            "until `fixgw session logon`, a reload with new credentials, or a restart",
            text=text,
        )
        notify.status(f"not logged on: {reason}")

    def logon_again(self, by: str) -> dict[str, Any]:
        """The operator's `fixgw session logon`, or a reload with new credentials."""
        if not self.reconnector.release():
            raise RequestError(
                "no logon is being held back: the gateway is logged on or trying",
                code=ErrorCode.INVALID_REQUEST,
            )
        self.metrics.credentials_refused.set(0)
        log.warning("logging on again", by=by)
        return {"connection": self.reconnector.status()}

    def set_credentials(self, secrets: Secrets) -> bool:
        """New API and secret keys (a reload): the next Logon and orders carry them; a logon
        held back since the old ones were refused is tried again. False if unchanged."""
        credentials = Credentials(secrets.api_key, secrets.secret_key)
        if credentials == self.credentials:
            return False
        self.venue.set_credentials(credentials)
        self.credentials = credentials
        self.session.set_logon_fields(
            self.venue.logon_fields(self.config.session.reset_seq_num_on_logon)
        )
        if self.reconnector.held is not None:
            self.logon_again("a reload with new credentials")
        return True

    def not_ready_because(self) -> str | None:
        """Why /readyz says not ready; None when ready."""
        if self.ready():
            return None
        if self.reconnector.held is not None:
            return self.reconnector.held
        if self.session_state != "up":
            return f"the exchange session is {self.session_state}"
        return f"reconciling {self.reconciler.pending} open orders with the exchange"

    def reset_sequence_numbers(self) -> dict[str, Any]:
        """The operator's `fixgw session reset-seq`: refused while the session is up."""
        if self.session_state == "up" or self.reconnector.phase is Phase.LOGGING_ON:
            raise RequestError(
                "refused: the session is up; sequence numbers are reset only while it is down",
                code=ErrorCode.SESSION_UP,
            )
        try:
            seq_nums = self.session.reset_sequence_numbers()
        except RuntimeError as exc:
            raise RequestError(f"refused: {exc}", code=ErrorCode.SESSION_UP) from exc
        self.journal.mark_inbound(0)
        log.warning("sequence numbers reset to 1 by the operator", session=self.session.name)
        return {"seq_nums": seq_nums}

    def _locate(self, ref: OrderRef) -> Target:
        """The tracked order and its ids, or the exchange ids a client gave for an untracked one."""
        if ref.cl_ord_id is not None:
            order = self.tracker.get(ref.cl_ord_id)
            if order is None:
                raise RequestError(
                    f"no order with cl_ord_id {ref.cl_ord_id!r}", code=ErrorCode.UNKNOWN_ORDER
                )
            return Target(order, order.cl_ord_id, order.order_id, order.symbol, order.side)
        if ref.order_id is None:
            raise RequestError(
                "give `cl_ord_id`, or `order_id` with `symbol` and `side`",
                code=ErrorCode.MISSING_FIELD,
            )
        order = self.tracker.by_order_id(ref.order_id)
        if order is not None:
            return Target(order, order.cl_ord_id, order.order_id, order.symbol, order.side)
        if ref.symbol is None or ref.side is None:
            raise RequestError(
                "an order this gateway does not track needs `symbol` and `side`",
                code=ErrorCode.MISSING_FIELD,
            )
        if ref.symbol not in self.symbols:
            raise RequestError(f"unknown symbol {ref.symbol!r}", code=ErrorCode.UNKNOWN_SYMBOL)
        return Target(None, None, ref.order_id, ref.symbol, ref.side)

    def _require_session(self) -> None:
        if not self.session.logged_on:
            raise self._not_connected()

    def _not_connected(self) -> RequestError:
        """Said when QuickFIX is not logged on. `session_state` may still say up: QuickFIX
        leaves a session inside a poll, and the gateway hears of it right after."""
        state = self.session_state
        if state == "up":
            state = "not logged on (it is ending)"
        elif state == "connecting":
            state = "not logged on yet (connecting)"
        else:
            state = f"not logged on ({state})"
        return RequestError(
            f"the exchange session is {state}; nothing was sent", code=ErrorCode.NOT_CONNECTED
        )

    # ------------------------------------------------------------ inbound (loop thread)

    def on_inbound(self, item: Inbound) -> None:
        try:
            if item.what is Happening.APP:
                self._take_app_message(item)
            elif item.what is Happening.LOGON_SENT:
                self.reconnector.logon_sent()
            elif item.what is Happening.LOGON:
                self.reconnector.up()
                self._on_logon()
            elif item.what is Happening.DOWN:
                self.reconnector.down()
                self._on_down()
            elif item.what is Happening.LOGOUT_RECEIVED:
                msg = parse(item.raw)
                self._logout_reason = self.venue.logout_reason(msg)
                self._logout_text = msg.get(58)
                if self._logout_reason is LogoutReason.INVALID_CREDENTIALS:
                    self._credentials_refused(self._logout_text)
            elif item.what is Happening.APP_REFUSED:
                self._on_refused_by_quickfix(item)
            elif item.what is Happening.NOT_RESENT:
                self._not_delivered(item.raw)
            elif item.what is Happening.REJECT_RECEIVED:
                self._on_exchange_error(self.venue.session_reject(parse(item.raw), item.received))
        except Exception:
            self.callback_errors += 1
            log.exception("inbound handling failed", what=item.what, msg=redact(item.raw))

    def _take_app_message(self, item: Inbound) -> None:
        msg_type, msg_seq_num = header_of(item.raw)
        self.metrics.inbound(msg_type)
        self._on_app_message(item)
        self.journal.mark_inbound(msg_seq_num)

    def _on_refused_by_quickfix(self, item: Inbound) -> None:
        """An application message QuickFIX refused at session level: read all the same."""
        if not item.raw:
            self._check_orders_again("QuickFIX refused a message from the exchange", item.raw)
            return
        self.inbound_refused += 1
        self.metrics.inbound_refused.labels(header_of(item.raw)[0]).inc()
        self._take_app_message(item)

    def _on_app_message(self, item: Inbound) -> None:
        msg: FixMessage | None = None
        try:
            msg = parse(item.raw, self.venue.groups)
            report = self.venue.read(msg, item.received)
        except (DialectError, FixParseError) as exc:
            self._unreadable(item, msg, exc)
            return
        self._handlers[type(report)](report)

    def _unreadable(self, item: Inbound, msg: FixMessage | None, exc: Exception) -> None:
        """Nothing the exchange sends is dropped: it is journaled as it came (secrets
        masked), as an `order.anomaly` of the order it names, which is then asked about, or
        else as an `exchange.error`; a market-data stream it names is asked for afresh, and
        a message that names nothing may have carried an execution: every open order is
        asked about."""
        self.dialect_errors += 1
        shown = redact(item.raw)
        log.error("unreadable message from the exchange", error=str(exc), msg=shown)
        ids = self.venue.ids_named(msg) if msg is not None else None
        order = None
        if ids is not None:
            order = next(
                (
                    o
                    for o in (
                        self.tracker.get(ids.cl_ord_id or ""),
                        self.tracker.get(ids.orig_cl_ord_id or ""),
                        self.tracker.by_order_id(ids.order_id or ""),
                    )
                    if o is not None
                ),
                None,
            )
        if order is not None:
            assert ids is not None
            self._publish_orders(
                [
                    OrderAnomaly(
                        ts=item.received,
                        cl_ord_id=order.cl_ord_id,
                        order_id=order.order_id,
                        exec_id=ids.exec_id,
                        problem="unreadable",
                        detail=f"{exc}: {shown}",
                    )
                ]
            )
            self._ask_about([order], "a message about it could not be read")
            return
        self.bus.publish(
            ExchangeError(
                ts=item.received,
                source=ErrorSource.UNREADABLE,
                text=str(exc),
                reason=None,
                ref_msg_type=ids.msg_type if ids else None,
                cl_ord_id=ids.cl_ord_id if ids else None,
                acc_req_id=ids.acc_req_id if ids else None,
                md_req_id=ids.md_req_id if ids else None,
                raw=shown,
            )
        )
        if (
            ids is not None
            and ids.md_req_id
            and self.market_data.ask_again(ids.md_req_id, str(exc))
        ):
            return
        self._check_orders_again("an unreadable message from the exchange", item.raw)

    def _ask_about(self, orders: list[Order], why: str) -> None:
        """A status request for each, now; or, while a reconciliation is under way (whose
        answers may predate what prompts this), every open order once it is over."""
        if self.session_state != "up":
            return  # the next logon asks about every open order
        if not self.reconciler.ready:
            log.warning("open orders to be asked about again after this check", why=why)
            self._check_again_after = why
            return
        if self.reconciler.check(orders):
            log.warning(
                "asking the exchange about orders", why=why, orders=[o.cl_ord_id for o in orders]
            )

    def _not_delivered(self, raw: str) -> None:
        """A message of ours the exchange asked for again, gap filled instead of resent
        (`session`): the exchange never got it. An order ends rejected, a cancel refused,
        both with reason `not_delivered`; a query or subscription needs nothing (their
        waiters failed when the session went down, and every logon asks afresh)."""
        ids = self.venue.ids_named(parse(raw, self.venue.groups))
        log.warning(
            "a message the exchange never got, not resent",
            msg_type=ids.msg_type,
            cl_ord_id=ids.cl_ord_id,
        )
        if ids.msg_type not in (MsgType.NEW_ORDER_SINGLE, MsgType.ORDER_CANCEL_REQUEST):
            return
        if ids.cl_ord_id is None:
            return
        self._sent_at.pop(ids.cl_ord_id, None)
        self._unanswered.pop(ids.cl_ord_id, None)
        self.reconciler.refused(ids.cl_ord_id)
        why = (
            "did not reach the exchange: it asked for this message again after losing it, "
            "and a stale order or cancel is never resent"
        )
        self._publish_orders(
            self.tracker.refused(ids.cl_ord_id, why, utc_now(), not_delivered=True)
        )
        if ids.msg_type == MsgType.ORDER_CANCEL_REQUEST:
            self._recheck_while_halted()

    def _check_orders_again(self, why: str, raw: str) -> None:
        """A message we could not take may have carried an order's execution: ask the
        exchange about every open order, as after a logon, before taking new orders."""
        if self.session_state != "up":
            return  # the next logon asks about every open order
        if not self.reconciler.ready:
            # the answers under way may predate it: ask again once they are in
            log.warning(
                "open orders to be asked about again after this check", why=why, msg=redact(raw)
            )
            self._check_again_after = why
            return
        log.warning("asking the exchange about open orders again", why=why, msg=redact(raw))
        self.reconciler.start()

    def _on_reconciled(self) -> None:
        self.became_ready.set()
        self._cancel_while_halted()
        why, self._check_again_after = self._check_again_after, None
        if why is not None and self.session_state == "up":
            log.warning("asking the exchange about open orders again", why=why)
            self.reconciler.start()

    def _on_execution_report(self, report: ExecutionReport) -> None:
        arrived = self._sent_at.pop(report.cl_ord_id or "", None)
        self._unanswered.pop(report.cl_ord_id or "", None)
        if arrived is not None:
            self.metrics.order_round_trip.observe(time.perf_counter() - arrived)
        if report.kind is ExecKind.ORDER_STATUS:
            checked = self.reconciler.ready  # an answer to a `check`, not to reconciliation
            if self._take_mass_status(report) or self.reconciler.on_status(report):
                if checked and self.halted is not None:
                    self._cancel_while_halted()  # an order the check found still open
                return
            if self._answers_a_question_only(report):
                return
        self._publish_orders(self.tracker.apply_execution(report))
        if report.kind.is_fill:
            self.account_refresh.fills_seen()
        if report.kind is ExecKind.ORDER_STATUS and report.order_id is not None:
            self._answer_status(report)

    def _on_cancel_reject(self, report: CancelRejectReport) -> None:
        self._unanswered.pop(report.cl_ord_id or "", None)
        order = self.tracker.cancelled_order(report)
        self._publish_orders(self.tracker.apply_cancel_reject(report))
        if order is not None and self.tracker.disputed_by(order, report):
            self._ask_about([order], f"a cancel reject said the order is {report.status}")
        self._recheck_while_halted()

    def _publish_orders(self, events: list[Event]) -> None:
        """Publish order events, each also logged with the ids an operator searches by.

        The log lines of a whole turn of the loop are written together after it, after the
        journal, the FIX message and the clients' writes: nobody waits on them."""
        for event in events:
            self.bus.publish(event)
            if isinstance(event, OrderEvent):
                before = self._status_of.get(event.cl_ord_id)
                if before is not None:
                    self._status_counts[before] -= 1
                self._status_of[event.cl_ord_id] = event.status
                self._status_counts[event.status] += 1
            if isinstance(event, OrderRejected):
                self.metrics.rejects.labels(f"order:{event.reason}").inc()
            elif isinstance(event, OrderPartiallyFilled | OrderFilled):
                self._note_fill(event)
        if events and log.is_enabled_for(logging.INFO):
            if not self._unlogged:
                self.loop.call_soon(self._log_order_events)
            self._unlogged += events
        for order in self.tracker.prune():
            status = self._status_of.pop(order.cl_ord_id, None)
            if status is not None:
                self._status_counts[status] -= 1
            self._owners.pop(order.cl_ord_id, None)

    def _answers_a_question_only(self, report: ExecutionReport) -> bool:
        """A status a client asked about an order no tracked order is: answered to that
        client (its reply), neither published to every subscriber nor journaled."""
        order_id = report.order_id
        if order_id is None or order_id not in self._asked_untracked:
            return False
        if self.tracker.by_order_id(order_id) or self.tracker.get(report.cl_ord_id or ""):
            return False
        log.info("status of an untracked order", order_id=order_id, status=report.status)
        self._answer_status(report)
        return True

    def _answer_status(self, report: ExecutionReport) -> None:
        assert report.order_id is not None
        order = self.tracker.by_order_id(report.order_id)
        answer = (
            {**self.tracker.snapshot(order), "text": report.text}
            if order is not None
            else {
                "cl_ord_id": report.cl_ord_id,
                "order_id": report.order_id,
                "symbol": report.symbol,
                "side": report.side,
                "status": report.status,
                "cum_qty": report.cum_qty,
                "leaves_qty": report.leaves_qty,
                "avg_px": report.avg_px,
                "text": report.text,
            }
        )
        for waiter in self._status_waiters.get(report.order_id, []):
            if not waiter.done():
                waiter.set_result({**answer, "source": "exchange"})

    def _on_logon(self) -> None:
        self.session_state = "up"
        self.metrics.session_up.set(1)
        self.metrics.logons.inc()
        self._logout_reason = None
        self._logout_text = None
        log.info("session up", session=self.session.name)
        self.bus.publish(SessionUp(ts=utc_now(), session_id=self.session.name))
        self.reconciler.start()
        self.market_data.on_session_up()

    def _on_down(self) -> None:
        """QuickFIX reports the end of a session more than once (Logout, then disconnect)."""
        if self.session_state == "down":
            return
        reason = self._logout_text or "disconnected"
        self.session_state = "down"
        self._unanswered.clear()  # the next logon's reconciliation asks about every open order
        self.metrics.session_up.set(0)
        self.metrics.disconnects.inc()
        log.warning(
            "session down",
            session=self.session.name,
            reason=reason,
            logout_reason=self._logout_reason,
        )
        self.reconciler.stop()
        self._check_again_after = None  # the next logon asks anyway
        self._fail_waiters(
            RequestError(
                "the exchange session went down before the exchange answered; ask again",
                code=ErrorCode.NOT_CONNECTED,
            )
        )
        self.market_data.on_session_down()
        self.bus.publish(
            SessionDown(
                ts=utc_now(),
                session_id=self.session.name,
                reason=reason,
                logout_reason=self._logout_reason,
            )
        )
        self._logout_reason = None
        self._logout_text = None

    def _fail_waiters(self, error: RequestError) -> None:
        """Requests waiting on the exchange's answer: status, account and mass status."""
        waiters: list[asyncio.Future[Any]] = [w for ws in self._status_waiters.values() for w in ws]
        waiters += [*self._account_waiters.values(), *(d for d, _ in self._mass_status.values())]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def _log_order_events(self) -> None:
        events, self._unlogged = self._unlogged, []
        info_lines(
            log,
            [
                (
                    str(type(event).__struct_config__.tag),
                    {
                        "cl_ord_id": getattr(event, "cl_ord_id", None),
                        "order_id": getattr(event, "order_id", None),
                        "symbol": getattr(event, "symbol", None),
                        "status": getattr(event, "status", None),
                    },
                )
                for event in events
            ],
        )

    def on_callback_error(self, where: str, exc: BaseException) -> None:
        """Called from inside a QuickFIX callback: count and log, never raise."""
        self.callback_errors += 1
        self.metrics.callback_errors.inc()
        log.error("QuickFIX callback failed", callback=where, error=repr(exc))
