"""Orders and cancels in: checked (symbol, quantities, the venue's TimeInForce, the kill
switch, the session, reconciliation, the ClOrdID, the risk limits), journaled before the
exchange can know of them, paced by the throttle, sent, and watched for an answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from functools import partial
from typing import NamedTuple

import structlog

from fixgw.api.protocol import (
    CancelOrderRequest,
    ErrorCode,
    NewOrder,
    OrderRef,
    positive_decimal,
)
from fixgw.config import ThrottleKind
from fixgw.domain import CancelOrder, OrderStatus, OrderType, Side, SubmitOrder, utc_now
from fixgw.engine.ack_watchdog import AckWatchdog
from fixgw.engine.kill_switch import KillSwitch
from fixgw.engine.order_events import OrderEvents
from fixgw.engine.order_index import Order
from fixgw.engine.ports import SessionPort
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.risk import PreTradeCheck
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.throttle_queue import NOT_SENT, ThrottleQueue
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import RequestError
from fixgw.fix.message import FixMessage
from fixgw.ids import ClOrdIdGenerator
from fixgw.journal import Journal
from fixgw.marketdata.streams import MarketData
from fixgw.ops.prometheus import Metrics
from fixgw.results import CancelAccepted, OrderAccepted
from fixgw.venues.base import Venue

log = structlog.get_logger("fixgw.orders")

NOT_JOURNALED = "not sent: the journal could not be written"


class Target(NamedTuple):
    """The order a request is about: tracked here, or known only by the exchange's id."""

    order: Order | None
    cl_ord_id: str | None
    """Our ClOrdID; None for an order this gateway does not track."""
    order_id: str | None
    symbol: str
    side: Side


class OrderEntry:
    def __init__(
        self,
        *,
        symbols: frozenset[str],
        venue: Venue,
        session: SessionPort,
        lifecycle: SessionLifecycle,
        reconciler: Reconciler,
        tracker: OrderTracker,
        orders: OrderEvents,
        throttle: ThrottleQueue,
        watchdog: AckWatchdog,
        pre_trade: PreTradeCheck,
        market_data: MarketData,
        kill_switch: Callable[[], KillSwitch],
        journal: Journal,
        metrics: Metrics,
    ) -> None:
        self.symbols = symbols
        self.pre_trade = pre_trade
        self._venue = venue
        self._session = session
        self._lifecycle = lifecycle
        self._reconciler = reconciler
        self._tracker = tracker
        self._orders = orders
        self._throttle = throttle
        self._watchdog = watchdog
        self._market_data = market_data
        self._kill_switch = kill_switch
        """Built after this service (it cancels through it): asked for when needed."""
        self._journal = journal
        self._metrics = metrics
        self.new_cl_ord_id = ClOrdIdGenerator()

    def unknown_symbol(self, symbol: str) -> RequestError:
        """`unknown_symbol`: not one of the config's `symbols`."""
        return RequestError(
            f"unknown symbol {symbol!r}; known: {', '.join(sorted(self.symbols))}",
            code=ErrorCode.UNKNOWN_SYMBOL,
        )

    # ------------------------------------------------------------ new orders

    def new_order(
        self,
        req: NewOrder,
        owner: Hashable | None = None,
        cancel_on_disconnect: bool = False,
        oms: str | None = None,
    ) -> OrderAccepted:
        """`owner`: the API connection placing it, for cancel on disconnect;
        `cancel_on_disconnect`: that connection asked for it (journaled with the order, for
        a restart); `oms`: the bridge session placing it (journaled: whose it is)."""
        arrived = time.perf_counter()
        if req.symbol not in self.symbols:
            raise self.unknown_symbol(req.symbol)
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
        self._kill_switch().refuse_new_orders()
        venue = self._venue
        if req.time_in_force is not None and req.time_in_force not in venue.time_in_force:
            raise RequestError(
                f"the venue ({venue.name}) cannot carry time_in_force {req.time_in_force}; "
                f"it takes {sorted(venue.time_in_force) or 'none'}",
                code=ErrorCode.NOT_OFFERED,
            )
        self._lifecycle.require()
        if not self._reconciler.ready:
            raise RequestError(
                f"reconciling {self._reconciler.pending} open orders with the exchange; "
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
        self._tracker.refuse_if_in_use(cmd.cl_ord_id)  # before the throttle counts it
        self._check_risk(cmd)
        message = venue.new_order(cmd)  # nothing is journaled if it fails
        delay = self._throttle.pace("new_order")
        event = self._tracker.submit(cmd, cancel_on_disconnect, oms)
        self._orders.publish([event])
        try:
            self._journal.flush()  # on disk before the exchange can know of it
        except OSError as exc:
            self._throttle.unpace("new_order", delay)
            self._orders.publish(
                self._tracker.refused(cmd.cl_ord_id, NOT_JOURNALED, utc_now(), not_delivered=True)
            )
            raise RequestError(
                f"{exc}; the order was not sent", code=ErrorCode.INTERNAL_ERROR
            ) from exc
        self._watchdog.arrived(cmd.cl_ord_id, arrived)
        if owner is not None:
            self._orders.owners[cmd.cl_ord_id] = owner

        cl_ord_id = cmd.cl_ord_id
        if delay:
            unsent = partial(self._not_sent, cl_ord_id)
            self._later("new_order", cl_ord_id, cl_ord_id, delay, message, unsent)
        elif self._session.send(message):
            self._watchdog.await_answer(cl_ord_id, cl_ord_id)
        else:
            self._throttle.unpace("new_order", delay)
            self._not_sent(cl_ord_id)
            raise self._lifecycle.not_connected()
        return OrderAccepted(cl_ord_id=cl_ord_id, status=event.status)

    def _not_sent(self, cl_ord_id: str, why: str = NOT_SENT) -> None:
        """A new order the session went down (or the gateway stopped) before sending:
        rejected, never delivered.

        A method, not a closure in `new_order`: compiled, a closure puts every local of the
        function it is in into an object of its own."""
        self._watchdog.forget(cl_ord_id)
        self._orders.publish(self._tracker.refused(cl_ord_id, why, utc_now(), not_delivered=True))

    def _check_risk(self, cmd: SubmitOrder) -> None:
        reference = self._market_data.reference_price(cmd.symbol)
        breach = self.pre_trade.breach(cmd, reference, self._orders.open_count())
        if breach is None:
            return
        self._metrics.risk_rejects.labels(breach.limit).inc()
        log.warning(
            "order refused by a risk limit",
            cl_ord_id=cmd.cl_ord_id,
            symbol=cmd.symbol,
            limit=breach.limit,
            why=breach.message,
        )
        raise RequestError(f"risk limit {breach.limit}: {breach.message}", code=ErrorCode.RISK)

    def _later(
        self,
        kind: ThrottleKind,
        request: str,
        cl_ord_id: str | None,
        delay: float,
        message: FixMessage,
        unsent: Callable[[str], None],
    ) -> None:
        """Sent when the throttle says; `request`: its ClOrdID (the order's or the cancel's),
        `cl_ord_id`: the order's, for the watchdog."""

        def send() -> None:
            if self._session.send(message):
                self._watchdog.await_answer(request, cl_ord_id)
            else:
                unsent(NOT_SENT)

        self._throttle.later(kind, request, delay, send, unsent)

    # ------------------------------------------------------------ cancels

    def cancel_order(self, req: CancelOrderRequest) -> CancelAccepted:
        """One cancel of an order at a time, whoever sends it: the exchange's answers to the
        pending one name it, and each cancel gets its own answer (a bridge OMS's under its
        own ClOrdID). The kill switch and cancel on disconnect leave such orders be."""
        order, cl_ord_id, order_id, symbol, side = self.locate(req)
        if order is not None and not order.is_open:
            raise RequestError(
                f"order {order.cl_ord_id} is already {order.status}", code=ErrorCode.ORDER_CLOSED
            )
        if order is not None and order.cancel_pending is not None:
            raise RequestError(
                f"a cancel of order {order.cl_ord_id} is pending already "
                f"({order.cancel_pending}); wait for its answer",
                code=ErrorCode.CANCEL_PENDING,
            )
        if req.cancel_cl_ord_id is not None:
            self._tracker.refuse_if_in_use(req.cancel_cl_ord_id)
        cmd = CancelOrder(
            ts=utc_now(),
            cl_ord_id=req.cancel_cl_ord_id or self.new_cl_ord_id(),
            orig_cl_ord_id=cl_ord_id,
            order_id=order_id,
            symbol=symbol,
            side=side,
        )
        if order is not None and self._throttle.withdraw(order.cl_ord_id):
            # still in the throttle's queue: the exchange never hears of it
            self._watchdog.forget(order.cl_ord_id)
            self._orders.publish(
                self._tracker.withdrawn(
                    order.cl_ord_id,
                    "canceled before it was sent (it was waiting in the throttle queue)",
                    cmd.ts,
                    cmd.cl_ord_id,
                )
            )
            return CancelAccepted(
                cl_ord_id=cmd.orig_cl_ord_id,
                order_id=order_id,
                cancel_cl_ord_id=cmd.cl_ord_id,
                status=OrderStatus.CANCELED,
            )
        self._lifecycle.require()
        delay = self._throttle.pace("cancel")
        event = self._tracker.cancel_requested(cmd)
        message = self._venue.cancel(cmd)
        if delay:

            def unsent(why: str) -> None:
                self._orders.publish(
                    self._tracker.refused(cmd.cl_ord_id, why, utc_now(), not_delivered=True)
                )

            self._later("cancel", cmd.cl_ord_id, cmd.orig_cl_ord_id, delay, message, unsent)
        elif self._session.send(message):
            self._watchdog.await_answer(cmd.cl_ord_id, cmd.orig_cl_ord_id)
        else:
            self._throttle.unpace("cancel", delay)
            self._tracker.cancel_unsent(cmd)
            raise self._lifecycle.not_connected()
        if event is not None:
            self._orders.publish([event])
        return CancelAccepted(
            cl_ord_id=cmd.orig_cl_ord_id,
            order_id=order_id,
            cancel_cl_ord_id=cmd.cl_ord_id,
            status=OrderStatus.PENDING_CANCEL,
        )

    # ------------------------------------------------------------ which order

    def locate(self, ref: OrderRef) -> Target:
        """The tracked order and its ids, or the exchange ids a client gave for an untracked
        one."""
        if ref.cl_ord_id is not None:
            order = self._tracker.get(ref.cl_ord_id)
            if order is None:
                raise RequestError(
                    f"no order with cl_ord_id {ref.cl_ord_id!r}", code=ErrorCode.UNKNOWN_ORDER
                )
            _refuse_another_order(order, ref)
            return Target(order, order.cl_ord_id, order.order_id, order.symbol, order.side)
        if ref.order_id is None:
            raise RequestError(
                "give `cl_ord_id`, or `order_id` with `symbol` and `side`",
                code=ErrorCode.MISSING_FIELD,
            )
        order = self._tracker.by_order_id(ref.order_id)
        if order is not None:
            _refuse_another_order(order, ref)
            return Target(order, order.cl_ord_id, order.order_id, order.symbol, order.side)
        if ref.symbol is None or ref.side is None:
            raise RequestError(
                "an order this gateway does not track needs `symbol` and `side`",
                code=ErrorCode.MISSING_FIELD,
            )
        if ref.symbol not in self.symbols:
            raise RequestError(f"unknown symbol {ref.symbol!r}", code=ErrorCode.UNKNOWN_SYMBOL)
        return Target(None, None, ref.order_id, ref.symbol, ref.side)


def _refuse_another_order(order: Order, ref: OrderRef) -> None:
    """Every id, symbol and side a request gives must be those of the one order it is about:
    a cancel with one order's cl_ord_id and another's order_id cancelled the first."""
    for field, given, its in (
        ("order_id", ref.order_id, order.order_id),
        ("symbol", ref.symbol, order.symbol),
        ("side", ref.side, order.side),
    ):
        if given is not None and given != its:
            raise RequestError(
                f"`{field}` {str(given)!r} is not that of order {order.cl_ord_id} "
                f"({'none yet' if its is None else repr(str(its))}): the request names two "
                "orders; nothing was done",
                code=ErrorCode.INVALID_REQUEST,
            )
