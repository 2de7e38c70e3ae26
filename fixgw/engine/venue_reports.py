"""What the venue's messages mean to the engine, one handler per kind of venue report:
execution reports and cancel rejects to the order tracker (or to the question they
answer), market data to the books, balances to clients, and the venue's refusals to the
request they name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import structlog

from fixgw.api.protocol import ErrorCode
from fixgw.domain import (
    FILL_KINDS,
    AccountBalance,
    AccountInfoReport,
    BookSnapshotReport,
    BookUpdateReport,
    CancelRejectReport,
    ExchangeError,
    ExchangeErrorReport,
    ExecKind,
    ExecutionReport,
    MarketDataRejectReport,
    MdRejectReason,
)
from fixgw.engine.account import AccountRefresh
from fixgw.engine.ack_watchdog import AckWatchdog
from fixgw.engine.kill_switch import KillSwitch
from fixgw.engine.order_events import OrderEvents
from fixgw.engine.pending import PendingRequests
from fixgw.engine.ports import Publisher
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import RequestError
from fixgw.fix.message import parse
from fixgw.fix.tags import MsgType
from fixgw.marketdata.streams import MarketData
from fixgw.ops.prometheus import Metrics
from fixgw.venues.base import MessageIds, Venue, VenueReport

log = structlog.get_logger("fixgw.venue_reports")

QUERY_NOT_DELIVERED = (
    "did not reach the exchange: it asked for this request again after losing it, and a "
    "query is not resent; ask again"
)


class VenueReports:
    def __init__(
        self,
        *,
        venue: Venue,
        sent: Callable[[int], str | None],
        tracker: OrderTracker,
        orders: OrderEvents,
        pending: PendingRequests,
        reconciler: Reconciler,
        kill_switch: KillSwitch,
        watchdog: AckWatchdog,
        account_refresh: AccountRefresh,
        market_data: MarketData,
        bus: Publisher,
        metrics: Metrics,
    ) -> None:
        """`sent(seq)`: the message we sent as `seq`, raw (a Reject names only that)."""
        self._venue = venue
        self._sent = sent
        self._tracker = tracker
        self._orders = orders
        self._pending = pending
        self._reconciler = reconciler
        self._kill_switch = kill_switch
        self._watchdog = watchdog
        self._account_refresh = account_refresh
        self._market_data = market_data
        self._bus = bus
        self._metrics = metrics
        self._handlers: dict[type, Callable[[Any], None]] = {
            ExecutionReport: self.execution_report,
            CancelRejectReport: self.cancel_reject,
            BookSnapshotReport: market_data.on_snapshot,
            BookUpdateReport: self.book_update,
            MarketDataRejectReport: market_data.on_reject,
            AccountInfoReport: self.account_info,
            ExchangeErrorReport: self.exchange_error,
        }

    def handle(self, report: VenueReport) -> None:
        self._handlers[type(report)](report)

    # ------------------------------------------------------------ orders

    def execution_report(self, report: ExecutionReport) -> None:
        self._watchdog.answered(report.cl_ord_id)
        if report.kind is ExecKind.ORDER_STATUS:
            checked = self._reconciler.ready  # an answer to a `check`, not to reconciliation
            if self._pending.take_mass_status(report):
                return
            if self._reconciler.on_status(report):
                self._pending.status_answered(report)  # a client may have asked it too
                order = self._tracker.resolve(report)
                if checked and order is not None and order.is_open:
                    self._kill_switch.found_open(order.cl_ord_id)
                return
            asked = self._pending.untracked_asked(report)
            if len(asked) == 1:
                log.info("status of an untracked order", order_id=asked[0])
                self._pending.status_answered(report, asked[0])
                return
            if asked:
                log.warning(
                    "a status answer that names no order, for one of several orders nobody "
                    "tracks asked about with its symbol and side: left to their own answers",
                    exec_id=report.exec_id,
                    asked=asked,
                )
                return
        self._orders.publish(self._tracker.apply_execution(report))
        if report.kind in FILL_KINDS:
            self._account_refresh.fills_seen()
        if report.kind is ExecKind.ORDER_STATUS:
            self._pending.status_answered(report)
        elif self._tracker.unpriced is not None:
            # its answer, the exchange's word after this report, may give the average price
            self._reconciler.ask_about(
                [self._tracker.unpriced],
                "a report showed fills at a price it does not give",
                unreadable=True,
            )

    def cancel_reject(self, report: CancelRejectReport) -> None:
        self._watchdog.answered(report.cl_ord_id)
        order = self._tracker.cancelled_order(report)
        self._orders.publish(self._tracker.apply_cancel_reject(report))
        if order is not None and self._tracker.disputed_by(order, report):
            self._reconciler.ask_about(
                [order], f"a cancel reject said the order is {report.status}"
            )
        self._kill_switch.recheck_left_open()

    # ------------------------------------------------------------ market data and account

    def book_update(self, report: BookUpdateReport) -> None:
        for symbol in report.levels.keys() | report.trades.keys():
            self._metrics.md_message(symbol)
        self._market_data.on_update(report)

    def account_info(self, report: AccountInfoReport) -> None:
        self._account_refresh.answered(report.acc_req_id)
        self._bus.publish(
            AccountBalance(
                ts=report.ts,
                currency=report.currency,
                balance=report.balance,
                balances=report.balances,
            )
        )
        self._pending.account_answered(report)

    # ------------------------------------------------------------ refusals

    def exchange_error(self, report: ExchangeErrorReport) -> None:
        """Published naming the request; whatever waits on that request fails."""
        sent = self._sent(report.ref_seq_num) if report.ref_seq_num else None
        ids = self._venue.ids_named(parse(sent, self._venue.groups)) if sent else None
        if ids is not None:
            report = msgspec.structs.replace(
                report,
                ref_msg_type=report.ref_msg_type or ids.msg_type,
                cl_ord_id=report.cl_ord_id or ids.cl_ord_id,
                acc_req_id=report.acc_req_id or ids.acc_req_id,
                md_req_id=report.md_req_id or ids.md_req_id,
                mass_status_req_id=report.mass_status_req_id or ids.mass_status_req_id,
            )
        fields = msgspec.structs.asdict(report)
        del fields["ref_seq_num"]
        self._metrics.rejects.labels(reject_label(report)).inc()
        why = refusal_text(report)
        if report.acc_req_id is not None and self._account_refresh.is_own(report.acc_req_id):
            if self._account_refresh.refused(report.acc_req_id, why, report.ts):
                self._bus.publish(ExchangeError(**fields))
            return
        log.warning("exchange error", **{k: v for k, v in fields.items() if k != "ts"})
        self._bus.publish(ExchangeError(**fields))
        error = RequestError(why, code=ErrorCode.EXCHANGE_ERROR)
        self._pending.account_refused(report.acc_req_id, error)
        if report.md_req_id is not None:
            self._market_data.on_reject(
                MarketDataRejectReport(
                    md_req_id=report.md_req_id, reason=MdRejectReason.OTHER, text=why, ts=report.ts
                )
            )
        asked_by_order_id = ids.order_id if ids is not None else None
        if report.cl_ord_id is not None:
            if self._refused_status_request(report, report.cl_ord_id):
                self._status_refused(report.cl_ord_id, asked_by_order_id, error)
            else:
                refused = self._refused_request(report, report.cl_ord_id)
                self._watchdog.answered(refused)
                self._orders.publish(
                    self._tracker.refused(refused, why, report.ts), reject_counted=True
                )
                self._kill_switch.recheck_left_open()
        elif report.ref_msg_type == MsgType.ORDER_STATUS_REQUEST:
            self._status_refused(None, asked_by_order_id, error)
        self._pending.mass_status_refused(report.mass_status_req_id, error)

    def query_not_delivered(self, ids: MessageIds) -> None:
        """A query of ours the exchange asked for again, gap filled rather than resent: it
        never got it. Whoever waits on it fails now, not at the time-out; a status request
        reconciliation or a check is waiting on is asked again, paced by the status rate
        limit, and its answer is the waiting client's too. A resend would bypass that limit:
        a ResendRequest over a reconciliation's questions would put them all on the wire at
        once. (A market-data request is `MarketData.not_delivered`'s.)"""
        error = RequestError(QUERY_NOT_DELIVERED, code=ErrorCode.EXCHANGE_ERROR)
        if ids.acc_req_id is not None:
            self._account_refresh.not_delivered(ids.acc_req_id)
        self._pending.account_refused(ids.acc_req_id, error)
        self._pending.mass_status_refused(ids.mass_status_req_id, error)
        if ids.msg_type != MsgType.ORDER_STATUS_REQUEST:
            return
        order = self._tracker.get(ids.cl_ord_id or "")
        if order is not None and self._reconciler.asking(order.cl_ord_id):
            self._reconciler.ask_again(order)
            if self._reconciler.asking(order.cl_ord_id):
                return
        asked = order.order_id if order is not None else (ids.order_id or ids.cl_ord_id)
        if asked is not None:
            self._pending.status_refused(asked, error)

    def account_unreadable(self, acc_req_id: str, why: str, ts: datetime) -> bool:
        """An account answer that could not be read: it carries no execution, so it fails
        only the request it names (the gateway's own refresh backs off). True: clients are
        to be told (an `exchange.error`), as for a refusal: once for the gateway's own."""
        if self._account_refresh.is_own(acc_req_id):
            return self._account_refresh.refused(acc_req_id, why, ts)
        self._pending.account_refused(acc_req_id, RequestError(why, code=ErrorCode.EXCHANGE_ERROR))
        return True

    def _refused_status_request(self, report: ExchangeErrorReport, cl_ord_id: str) -> bool:
        """An OrderStatusRequest carries the order's own ClOrdID. An exception response may
        not name the message it refuses: while a status request for the order is out, it is
        taken to be about that one, which leaves the order open rather than close a live one."""
        if report.ref_msg_type is not None:
            return report.ref_msg_type == MsgType.ORDER_STATUS_REQUEST
        order = self._tracker.get(cl_ord_id)
        return self._reconciler.asking(cl_ord_id) or (
            order is not None and self._pending.asking_status(order.order_id)
        )

    def _refused_request(self, report: ExchangeErrorReport, cl_ord_id: str) -> str:
        """The ClOrdID of the order or cancel refused. A refusal may name an order whose
        cancel is out rather than the cancel (OKCoin's cancels key on the order), or was
        out when a fill closed the order (`OrderTracker.cancel_out`): it refuses
        that cancel where it says it refuses a cancel (RefMsgType F), or says nothing of what
        it refuses and the order is acknowledged, so that its cancel is the one request on
        it that can still be refused."""
        order = self._tracker.get(cl_ord_id)
        out = self._tracker.cancel_out(order) if order is not None else None
        if order is None or out is None:
            return cl_ord_id
        if report.ref_msg_type == MsgType.ORDER_CANCEL_REQUEST or (
            report.ref_msg_type is None and order.order_id is not None
        ):
            return out
        return cl_ord_id

    def _status_refused(
        self, cl_ord_id: str | None, order_id: str | None, error: RequestError
    ) -> None:
        """The order's state stays as it is; whoever waits on the answer gets the error.
        `order_id`: the refused request's OrderID, where the refusal names the request (by
        RefSeqNum). An order this gateway did not send has no ClOrdID of ours: a request for
        it carries the exchange's id alone (OKCoin), or in ClOrdID too (FIX 4.4), which is
        all a refusal that names no request (BusinessRejectRefID) can give back. A venue may
        name a tracked order there by its OrderID too, which the request also carried."""
        log.warning(
            "order status request refused; the order is left as it is",
            cl_ord_id=cl_ord_id,
            order_id=order_id,
        )
        order = None
        if cl_ord_id is not None:
            order = self._tracker.get(cl_ord_id) or self._tracker.by_order_id(cl_ord_id)
            self._reconciler.refused(order.cl_ord_id if order is not None else cl_ord_id)
        asked = order.order_id if order is not None else (order_id or cl_ord_id)
        if asked is not None:
            self._pending.status_refused(asked, error)


def refusal_text(report: ExchangeErrorReport) -> str:
    """What the refused request's asker is told; a venue may give no reason at all (an
    E1000's body beyond Text is not documented)."""
    reason = report.text or report.reason
    if reason is None:
        return f"the exchange answered with {report.source}, giving no reason"
    return f"the exchange answered with {report.source}: {reason}"


def reject_label(report: ExchangeErrorReport) -> str:
    """`fixgw_rejects_total`'s reason: the source and the reason's FIX code
    (SessionRejectReason, BusinessRejectReason: numbers), or `other` for any text a venue
    put there, so that the series stay a bounded few whatever the venue sends."""
    code = (report.reason or "").split(" ", 1)[0]
    if code and not (code.isdigit() and len(code) <= 4):
        code = "other"
    return f"{report.source}:{code}"
