"""The simulator's order desk: NewOrderSingle, OrderCancelRequest, OrderStatusRequest and
OrderMassStatusRequest taken to the matching engine and the ledger, and answered.

Every order-changing request is written to the order log once decided, before anything is
done or sent (see `orderlog`); at start the taken ones are replayed here with reports
switched off.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

import structlog

from fixgw.config import SimAccount, SimBook
from fixgw.domain import CancelRejectReason, ExecKind, OrderStatus, OrderType, RejectReason, Side
from fixgw.errors import UnknownCode
from fixgw.fix.message import FixMessage, parse
from fixgw.fix.tags import MsgType, Tag
from fixgw.sim.accounts import Ledger, account_field
from fixgw.sim.marketdata import MarketDataPublisher
from fixgw.sim.matching import Fill, MatchingEngine, SimOrder
from fixgw.sim.orderlog import REFUSED, TAKEN, LoggedRequest, OrderLog
from fixgw.sim.outbox import Outbox
from fixgw.sim.reports import OrderReports
from fixgw.venues.fix44.inbound import REQUEST_GROUPS
from fixgw.venues.okcoin.enums import ORD_TYPE, SIDE

log = structlog.get_logger("fixgw.sim")


class _Refused(Exception):
    def __init__(self, reason: RejectReason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class OrderDesk:
    def __init__(
        self,
        *,
        accounts: Mapping[str, SimAccount],
        engine: MatchingEngine,
        ledger: Ledger,
        order_log: OrderLog,
        reports: OrderReports,
        market_data: MarketDataPublisher,
        outbox: Outbox,
    ) -> None:
        self._accounts = accounts
        self._engine = engine
        self._ledger = ledger
        self._order_log = order_log
        self._reports = reports
        self._market_data = market_data
        self._outbox = outbox
        self._cl_ord_ids: dict[str, set[str]] = {}
        self._seed_ids = itertools.count(1)
        self._replaying = False

    # ------------------------------------------------------------ requests

    def on_new_order(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        cl_ord_id = f.get(Tag.CL_ORD_ID, "")
        try:
            order = self._order_from(msg, client)
        except _Refused as refused:
            self._record(msg, client, REFUSED)
            self._reports.rejected(msg, client, refused.reason, refused.text)
            return
        self._record(msg, client, TAKEN, order.order_id)
        self._cl_ord_ids.setdefault(client, set()).add(cl_ord_id)
        self._ledger.hold(order)
        self._reports.order(order, ExecKind.NEW)
        fills: list[Fill] = []

        def on_fill(fill: Fill) -> None:
            self._report_fill(fill)
            fills.append(fill)

        self._engine.submit(order, on_fill)
        if order.order_type is OrderType.MARKET and order.leaves_qty > 0:
            self._engine.expire(order)
            self._reports.order(
                order, ExecKind.CANCELED, text="no more liquidity for the market order"
            )
        self._market_data.book_changed(order.symbol, fills)

    def on_cancel(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        orig = f.get(Tag.ORIG_CL_ORD_ID, "")
        order = self._find(client, f.get(Tag.ORDER_ID)) or self._find(client, orig)
        if order is None:
            self._record(msg, client, REFUSED)
            self._reports.cancel_rejected(
                msg, client, None, CancelRejectReason.UNKNOWN_ORDER, "unknown order"
            )
        elif order.status.is_terminal:
            self._record(msg, client, REFUSED)
            self._reports.cancel_rejected(
                msg,
                client,
                order,
                CancelRejectReason.TOO_LATE_TO_CANCEL,
                f"order is {order.status}",
            )
        else:
            self._record(msg, client, TAKEN)
            self._ledger.release(order)
            self._engine.cancel(order)
            self._reports.order(
                order,
                ExecKind.CANCELED,
                cl_ord_id=f.get(Tag.CL_ORD_ID),
                orig_cl_ord_id=order.cl_ord_id,
            )
            self._market_data.book_changed(order.symbol, [])

    def on_status_request(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        order = self._find(client, f.get(Tag.ORDER_ID)) or self._find(client, f.get(Tag.CL_ORD_ID))
        if order is not None:
            self._reports.order(order, ExecKind.ORDER_STATUS)
            return
        self._reports.no_order(client, msg, ExecKind.ORDER_STATUS, {Tag.TEXT: "unknown order"})

    def on_mass_status_request(self, msg: FixMessage, client: str) -> None:
        """One status report per open order, the last with LastRptRequested=Y; with none
        open, a single report that says so (TotNumReports=0)."""
        f = msg.fields
        req_id = f.get(Tag.MASS_STATUS_REQ_ID, "")
        symbol = f.get(Tag.SYMBOL) if f.get(Tag.MASS_STATUS_REQ_TYPE) == "1" else None
        orders = [o for o in self._engine.open_orders(client) if symbol in (None, o.symbol)]
        for i, order in enumerate(orders, 1):
            self._reports.order(
                order,
                ExecKind.ORDER_STATUS,
                extra={
                    Tag.MASS_STATUS_REQ_ID: req_id,
                    Tag.TOT_NUM_REPORTS: str(len(orders)),
                    Tag.LAST_RPT_REQUESTED: "Y" if i == len(orders) else "N",
                },
            )
        if not orders:
            self._reports.no_order(
                client,
                msg,
                ExecKind.ORDER_STATUS,
                {
                    Tag.ORDER_ID: "NONE",
                    Tag.CL_ORD_ID: "NONE",
                    Tag.SYMBOL: symbol or "NONE",
                    Tag.MASS_STATUS_REQ_ID: req_id,
                    Tag.TOT_NUM_REPORTS: "0",
                    Tag.LAST_RPT_REQUESTED: "Y",
                    Tag.TEXT: "no open orders",
                },
            )

    # ------------------------------------------------------------ start

    def seed(self, symbols: Mapping[str, SimBook]) -> None:
        """The books' seeded liquidity, owned by no one."""
        for symbol, book in symbols.items():
            for side, levels in ((Side.BUY, book.bids), (Side.SELL, book.asks)):
                for price, qty in levels:
                    self._engine.submit(
                        SimOrder(
                            order_id=self._engine.new_order_id(),
                            cl_ord_id=f"seed-{next(self._seed_ids)}",
                            owner=None,
                            symbol=symbol,
                            side=side,
                            order_type=OrderType.LIMIT,
                            qty=qty,
                            price=price,
                        ),
                        self._report_fill,
                    )

    def replay(self, requests: list[LoggedRequest]) -> None:
        """The order log's taken requests again, in order, with nothing sent or logged; the
        Account and the funds are not checked again: what was taken once is taken again."""
        handlers: dict[str, Callable[[FixMessage, str], None]] = {
            MsgType.NEW_ORDER_SINGLE: self.on_new_order,
            MsgType.ORDER_CANCEL_REQUEST: self.on_cancel,
        }
        self._replaying = True
        try:
            with self._outbox.muted():
                for request in requests:
                    if request.outcome == REFUSED or request.client not in self._accounts:
                        continue
                    msg = parse(request.raw, REQUEST_GROUPS)
                    handlers[msg.msg_type](msg, request.client)
                    if request.order_id is not None:
                        self._check_replayed(request, msg)
        finally:
            self._replaying = False
        if requests:
            log.info("order log replayed", requests=len(requests))

    def _check_replayed(self, request: LoggedRequest, msg: FixMessage) -> None:
        """A taken order must come back under the id it was given (not so if the symbols,
        seeded books or accounts were changed since): say so if it does not."""
        assert request.order_id is not None
        order = self._engine.orders.get(request.order_id)
        if (
            order is None
            or order.owner != request.client
            or order.cl_ord_id != msg.fields.get(Tag.CL_ORD_ID, "")
        ):
            log.warning(
                "order log replay diverged: an order did not come back under its id",
                order_id=request.order_id,
                client=request.client,
            )

    # ------------------------------------------------------------ helpers

    def _order_from(self, msg: FixMessage, client: str) -> SimOrder:
        f = msg.fields
        account = self._accounts[client]
        if not self._replaying and f.get(Tag.ACCOUNT) != account_field(account):
            raise _Refused(RejectReason.OTHER, "Account (1) must be apiKey,secretKey")
        cl_ord_id = f.get(Tag.CL_ORD_ID, "")
        if cl_ord_id in self._cl_ord_ids.get(client, set()):
            raise _Refused(RejectReason.DUPLICATE_ORDER, f"duplicate ClOrdID {cl_ord_id}")
        symbol = f.get(Tag.SYMBOL, "")
        if symbol not in self._engine.books:
            raise _Refused(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
        qty = _decimal(f.get(Tag.ORDER_QTY))
        if qty is None or qty <= 0:
            raise _Refused(RejectReason.INCORRECT_QUANTITY, "OrderQty must be > 0")
        try:
            side = SIDE.decode(f.get(Tag.SIDE, ""))
            order_type = ORD_TYPE.decode(f.get(Tag.ORD_TYPE, ""))
        except UnknownCode as exc:
            raise _Refused(RejectReason.OTHER, str(exc)) from None
        price = _decimal(f.get(Tag.PRICE))
        if order_type is OrderType.LIMIT and (price is None or price <= 0):
            raise _Refused(RejectReason.OTHER, "a limit order needs a Price > 0")
        if order_type is OrderType.MARKET:
            price = None
        if not self._replaying:  # what was taken once is taken again, as it was
            market_buy = price is None and side is Side.BUY
            cost = self._engine.books[symbol].market_cost(side, qty) if market_buy else Decimal(0)
            short = self._ledger.shortfall(client, symbol, side, qty, price, cost)
            if short is not None:
                raise _Refused(RejectReason.EXCEEDS_LIMIT, short)
        return SimOrder(
            order_id=self._engine.new_order_id(),
            cl_ord_id=cl_ord_id,
            owner=client,
            symbol=symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
        )

    def _find(self, client: str, key: str | None) -> SimOrder | None:
        """OKCoin's clients put the order id in OrigClOrdID, plain FIX the ClOrdID: take both."""
        if not key:
            return None
        order = self._engine.orders.get(key)
        if order is not None and order.owner == client:
            return order
        return next(
            (o for o in self._engine.orders.values() if o.owner == client and o.cl_ord_id == key),
            None,
        )

    def _report_fill(self, fill: Fill) -> None:
        self._ledger.apply(fill)
        for order in (fill.maker, fill.taker):
            kind = ExecKind.FILL if order.status is OrderStatus.FILLED else ExecKind.PARTIAL_FILL
            self._reports.order(order, kind, last=(fill.qty, fill.price))

    def _record(
        self, msg: FixMessage, client: str, outcome: str, order_id: str | None = None
    ) -> None:
        """Logs an order-changing request once decided, before anything is done or sent."""
        if not self._replaying:
            self._order_log.append(client, msg.raw, outcome, order_id)


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(value)
    except InvalidOperation:
        return None
    return result if result.is_finite() else None
