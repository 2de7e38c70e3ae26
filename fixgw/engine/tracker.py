"""Per-order state keyed by ClOrdID: venue reports in, order events out.

The venue is the source of truth for quantities and status; the tracker checks every
report against what it already knows. A duplicate (same ExecID, or an ack, cancel or reject
of what the order already is) is dropped and logged; anything else that does not fit (a
report for an unknown order, one that arrives after the order closed, one older than what
is known, a fill that skips quantity) is applied where the venue's numbers say so and
always surfaced as an `order.anomaly` event.

Which of these a report is, and what the order becomes, is the table in
`fixgw.engine.transitions`; the tracker finds the order, looks its rule up, runs it, and
reads each event's numbers off the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import structlog

from fixgw.decimals import EXACT
from fixgw.domain import (
    CancelOrder,
    CancelRejectReason,
    CancelRejectReport,
    Event,
    ExecKind,
    ExecutionReport,
    OrderAccepted,
    OrderAnomaly,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPendingCancel,
    OrderPendingNew,
    OrderRejected,
    OrderRestated,
    OrderStatus,
    OrderStatusReported,
    OrderType,
    RejectReason,
    SubmitOrder,
)
from fixgw.engine import unpriced
from fixgw.engine.order_index import UNTRACKED, ZERO, Order, OrderIndex, stating
from fixgw.engine.restore import restore_orders
from fixgw.engine.transitions import (
    ASKED_AFTER_UNPRICED,
    LEFT_OUT_OF_AVG_PX,
    NO_ORDER,
    ON_REPORT,
    TABLE,
    Emit,
    Input,
    Problem,
    Rule,
    Step,
    To,
    become,
    fill_qty,
    gap_unpriced,
    missed_fill_px,
    other_price,
    other_qty,
    shown_again,
    step_of,
    told_fill_qty,
)

log = structlog.get_logger("fixgw.engine.tracker")

E = TypeVar("E", bound=OrderEvent)

# Read on every report, so module constants: an Enum member read off its class is slow in
# Python 3.11 (see fixgw/engine/transitions.py, above `status_after`).
_FILL: Final = Emit.FILL
_ACCEPTED: Final = Emit.ACCEPTED
_FILLED: Final = OrderStatus.FILLED
_CANCELED: Final = OrderStatus.CANCELED
_PARTIALLY_FILLED: Final = OrderStatus.PARTIALLY_FILLED


class OrderTracker:
    """`keep_closed`: see `OrderIndex`."""

    def __init__(self, keep_closed: int = 10_000) -> None:
        self.index = OrderIndex(keep_closed)
        self.unpriced: Order | None = None
        """The order the last report applied showed fills of at a price it did not give
        (`_missed_fill`): the caller may ask the exchange about it."""

    # ------------------------------------------------------------ commands

    def in_use(self, cl_ord_id: str) -> bool:
        return self.index.in_use(cl_ord_id)

    def refuse_if_in_use(self, cl_ord_id: str) -> None:
        self.index.refuse_if_in_use(cl_ord_id)

    def forgotten(self, cl_ord_id: str) -> bool:
        return self.index.forgotten(cl_ord_id)

    def order_of_cancel(self, cancel_cl_ord_id: str) -> str | None:
        """The ClOrdID of the order a cancel this gateway sent was for."""
        return self.index.cancel_of(cancel_cl_ord_id)

    def submit(
        self, cmd: SubmitOrder, cancel_on_disconnect: bool = False, oms: str | None = None
    ) -> OrderPendingNew:
        """The table's SUBMITTED rows: an order under a ClOrdID in use (an order's, or a
        cancel's) is refused; a new one starts as PENDING_NEW, `Order`'s first status."""
        self.index.refuse_if_in_use(cmd.cl_ord_id)
        order = Order(
            cl_ord_id=cmd.cl_ord_id,
            symbol=cmd.symbol,
            side=cmd.side,
            order_type=cmd.order_type,
            qty=cmd.qty,
            price=cmd.price,
            leaves_qty=cmd.qty,
            cancel_on_disconnect=cancel_on_disconnect,
            time_in_force=cmd.time_in_force,
            oms=oms,
        )
        self.index.add(order)
        return self._event(
            OrderPendingNew,
            order,
            cmd,
            cancel_on_disconnect=cancel_on_disconnect,
            time_in_force=cmd.time_in_force,
            oms=oms,
        )

    def cancel_requested(self, cmd: CancelOrder) -> OrderPendingCancel | None:
        """Record a cancel sent; the event only for an order this gateway tracks."""
        self.index.cancel_sent(cmd.cl_ord_id, cmd.orig_cl_ord_id or UNTRACKED)
        order = self.index.get(cmd.orig_cl_ord_id or UNTRACKED)
        if order is None:  # NO_ORDER: nothing to tell
            return None
        become(order, step_of(order.status, Input.CANCEL_REQUESTED), None, cmd.cl_ord_id)
        order.cancel_ids += (cmd.cl_ord_id,)
        return self._event(OrderPendingCancel, order, cmd, cancel_cl_ord_id=cmd.cl_ord_id)

    def cancel_unsent(self, cmd: CancelOrder) -> None:
        """Undo `cancel_requested` for a cancel that never left (session down)."""
        self.index.cancel_unsent(cmd.cl_ord_id)
        order = self.index.get(cmd.orig_cl_ord_id or UNTRACKED)
        if order is not None:
            become(order, step_of(order.status, Input.CANCEL_UNSENT), None, cmd.cl_ord_id)

    def withdrawn(
        self, cl_ord_id: str, text: str, ts: datetime, cancel_cl_ord_id: str | None = None
    ) -> list[Event]:
        """An order canceled by the gateway before it was ever sent (it was waiting in the
        throttle's queue); `cancel_cl_ord_id` stays in use, as a sent cancel's would."""
        order = self.index.get(cl_ord_id)
        if order is None:  # NO_ORDER: nothing
            return []
        step = step_of(order.status, Input.WITHDRAWN)
        if step.emit is Emit.NOTHING:
            return []
        if cancel_cl_ord_id is not None:
            self.index.cancel_sent(cancel_cl_ord_id, cl_ord_id)
            order.cancel_ids += (cancel_cl_ord_id,)
        become(order, step, None)
        order.leaves_qty = ZERO
        self.index.note_closed(order)
        event = OrderCanceled(
            ts=ts, **self.snapshot(order), text=text, cancel_cl_ord_id=cancel_cl_ord_id
        )
        stating(order, event)
        return [event]

    def restore(self, events: Iterable[Event]) -> int:
        """Rebuild from journaled order events; returns how many orders are open."""
        return restore_orders(self.index, events)

    # ------------------------------------------------------------ queries

    def get(self, cl_ord_id: str) -> Order | None:
        return self.index.get(cl_ord_id)

    def by_order_id(self, order_id: str) -> Order | None:
        return self.index.by_order_id(order_id)

    def all_orders(self) -> Iterator[Order]:
        return self.index.all_orders()

    def open_orders(self) -> Iterator[Order]:
        return self.index.open_orders()

    def prune(self) -> list[Order]:
        return self.index.prune()

    def snapshot(self, order: Order) -> dict[str, Any]:
        return {
            "cl_ord_id": order.cl_ord_id,
            "order_id": order.order_id,
            "symbol": order.symbol,
            "side": order.side,
            "order_type": order.order_type,
            "qty": order.qty,
            "price": order.price,
            "status": order.shown_status,
            "cum_qty": order.cum_qty,
            "leaves_qty": order.leaves_qty,
            "avg_px": order.avg_px,
        }

    # ------------------------------------------------------------ venue reports

    def apply_execution(self, report: ExecutionReport) -> list[Event]:
        self.unpriced = None
        order = self.index.find(report.cl_ord_id, report.orig_cl_ord_id, report.order_id)
        if order is None:
            cancel_cl_ord_id = report.cl_ord_id
            if (
                report.kind is ExecKind.CANCELED
                and cancel_cl_ord_id is not None
                and self.index.cancel_of(cancel_cl_ord_id) == UNTRACKED
            ):
                return self._untracked_canceled(cancel_cl_ord_id, report)
            return [
                self._anomaly(
                    report,
                    _problem(ON_REPORT[NO_ORDER, report.kind][0]),
                    "report for an order this gateway "
                    "did not send or no longer tracks; state unchanged",
                )
            ]
        if report.exec_id in order.exec_ids:
            log.info(
                "duplicate execution report dropped",
                exec_id=report.exec_id,
                cl_ord_id=order.cl_ord_id,
                poss_dup=report.poss_dup,
            )
            return []
        _remember_exec_id(order, report)
        self.index.name(order, report.order_id)
        self._revive_if_delivered(order, report)
        return self._run(order, ON_REPORT[order.status, report.kind], report)

    def reconcile(
        self, report: ExecutionReport, after_unreadable: bool = False, takes_back: bool = True
    ) -> list[Event]:
        """A status answer after a logon: the events of whatever happened while the gateway was
        away (fills as one fill per order, a cancel, a reject), and nothing if nothing did.
        `after_unreadable`: asked because a report of the order could not be read, so fewer
        fills than known are fills the venue took back (`Input.RECONCILED_AFTER_UNREADABLE`)
        where its answers do (`takes_back`), else an answer that lags
        (`Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG`)."""
        self.unpriced = None
        order = self.resolve(report)
        if order is None or report.exec_id in order.exec_ids:  # NO_ORDER, or answered
            return []
        _remember_exec_id(order, report)
        self.index.name(order, report.order_id)
        self._revive_if_delivered(order, report)
        what = Input.RECONCILED
        if after_unreadable:
            what = (
                Input.RECONCILED_AFTER_UNREADABLE
                if takes_back
                else Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG
            )
        return self._run(order, TABLE[order.status, what], report)

    def stated(self, order: Order, report: ExecutionReport) -> OrderStatusReported:
        """The order as a status answer left it, with the answer's text: `order.status`."""
        return self._event(OrderStatusReported, order, report, text=report.text)

    @staticmethod
    def _revive_if_delivered(order: Order, report: ExecutionReport) -> None:
        """An order the gateway rejected on its own inference (never delivered: a venue that
        asked for it again after a crash, whose own store had kept it after all; unknown at
        the exchange: a venue whose order entry lagged its answer to a status request) is
        back to pending_new when the venue reports it as its order, so that the table takes
        its ack and fills as any pending order's, and they reach clients."""
        if not order.rejected_by_inference or report.kind is ExecKind.REJECTED:
            return
        if report.kind is ExecKind.ORDER_STATUS and report.status is OrderStatus.REJECTED:
            return  # the venue does not know it either
        log.warning(
            "an order rejected on the gateway's inference is known to the exchange after all",
            cl_ord_id=order.cl_ord_id,
            order_id=report.order_id,
            report=report.kind,
        )
        order.rejected_by_inference = False
        order.status = OrderStatus.PENDING_NEW
        order.leaves_qty = EXACT.subtract(order.qty, order.cum_qty)
        order.stated = tuple(k for k in order.stated if k is not ExecKind.REJECTED)

    def refused(
        self, cl_ord_id: str, text: str, ts: datetime, not_delivered: bool = False
    ) -> list[Event]:
        """The exchange refused a message we sent for this ClOrdID before it became an order
        (a session or business reject, an exception response), or it never got it
        (`not_delivered`): never of an order or cancel the exchange acknowledged, and of a
        cancel only while its order is open (the table's ACKED_ORDER_ASKED_AGAIN,
        ACKED_CANCEL_ASKED_AGAIN and CANCEL_UNDELIVERED rows)."""
        orig = self.index.cancel_of(cl_ord_id)
        if orig is not None:
            order = self.index.get(orig)
            if (
                not not_delivered
                and order is not None
                and self._answered_by_its_cancellation(order, cl_ord_id)
            ):
                return []
            what = Input.CANCEL_REJECTED
            if not_delivered:
                what = (
                    Input.ACKED_CANCEL_ASKED_AGAIN
                    if self.index.acknowledged(cl_ord_id)
                    else Input.CANCEL_UNDELIVERED
                )
            step = step_of(order.status if order is not None else NO_ORDER, what)
            if step.emit is Emit.NOTHING:
                return []
            self.index.cancel_done(cl_ord_id)
            if order is not None:
                become(order, step, None, cl_ord_id)
            return [
                self._cancel_rejected(
                    order,
                    ts=ts,
                    cl_ord_id=orig or cl_ord_id,
                    cancel_cl_ord_id=cl_ord_id,
                    order_id=None,
                    status=None,
                    reason=CancelRejectReason.NOT_DELIVERED
                    if not_delivered
                    else CancelRejectReason.OTHER,
                    text=text,
                )
            ]
        order = self.index.get(cl_ord_id)
        if order is None:  # NO_ORDER: nothing
            return []
        named = order.order_id is not None  # the exchange acknowledged it under its OrderID
        what = Input.ACKED_ORDER_ASKED_AGAIN if not_delivered and named else Input.REFUSED
        step = step_of(order.status, what)
        if step.emit is Emit.NOTHING:
            return []
        become(order, step, None)
        order.leaves_qty = ZERO
        order.rejected_by_inference = not_delivered
        self.index.note_closed(order)
        reason = RejectReason.NOT_DELIVERED if not_delivered else RejectReason.OTHER
        event = OrderRejected(ts=ts, **self.snapshot(order), reason=reason, text=text)
        stating(order, event)
        return [event]

    def _untracked_canceled(self, cancel_cl_ord_id: str, report: ExecutionReport) -> list[Event]:
        """A cancel this gateway sent for an order it does not track, carried out: told as
        `order.canceled` under the cancel's id, as its refusal would be, with the report's
        numbers. The order's id is the report's OrderID, else the OrigClOrdID the cancel
        carried it in. OrdType and OrderQty are optional in a FIX 4.4 report: without them,
        a limit order (what rests to be cancelled), of what the report accounts for."""
        step = step_of(NO_ORDER, Input.UNTRACKED_CANCELED)
        if step.emit is Emit.NOTHING:
            return []
        self.index.cancel_done(cancel_cl_ord_id)
        qty = report.qty
        if qty is None:
            qty = EXACT.add(report.cum_qty, report.leaves_qty)
        return [
            OrderCanceled(
                ts=report.ts,
                cl_ord_id=cancel_cl_ord_id,
                cancel_cl_ord_id=cancel_cl_ord_id,
                order_id=report.order_id or report.orig_cl_ord_id,
                symbol=report.symbol,
                side=report.side,
                order_type=report.order_type or OrderType.LIMIT,
                qty=qty,
                price=report.price,
                status=OrderStatus.CANCELED,
                cum_qty=report.cum_qty,
                leaves_qty=ZERO,
                avg_px=report.avg_px,
                text=report.text,
            )
        ]

    def cancelled_order(self, report: CancelRejectReport) -> Order | None:
        """The order a cancel reject is about, if this gateway tracks it."""
        return self._cancel_target(report)[1]

    def _cancel_target(self, report: CancelRejectReport) -> tuple[str | None, Order | None]:
        """The ClOrdID the cancel was for (None: an order known by the exchange's id only),
        and the order, if tracked. FIX 4.4 lets the reject's ClOrdID be the cancel's or the
        order's (or NONE): the order is then the one OrigClOrdID or OrderID names."""
        orig = self.index.cancel_of(report.cl_ord_id)
        if orig == UNTRACKED:
            return None, None
        if orig is None:
            order = self.index.find(report.cl_ord_id, report.orig_cl_ord_id, report.order_id)
            return (order.cl_ord_id if order else report.orig_cl_ord_id), order
        return orig, self.index.find(orig, None, report.order_id)

    def _rejected_cancel(self, report: CancelRejectReport, order: Order | None) -> str:
        """The ClOrdID of the cancel a reject answers: its ClOrdID where that is a cancel
        this gateway sent, else its OrigClOrdID where that is one, else the order's cancel
        pending (a venue that puts the order's own ClOrdID, or NONE, in the reject's:
        there is one cancel of an order out at a time), or the one a fill overtook
        (`cancel_out`), or the one the order's cancellation answered (`answered_cancel`)."""
        for named in (report.cl_ord_id, report.orig_cl_ord_id):
            if named is not None and self.index.cancel_of(named) is not None:
                return named
        if order is None:
            return report.cl_ord_id
        out = self.cancel_out(order) or self.answered_cancel(order)
        return out if out is not None else report.cl_ord_id

    def cancel_out(self, order: Order) -> str | None:
        """The cancel of `order` a refusal naming the order refuses: its cancel pending, or
        else the last cancel sent for a filled order that nothing answered. The fill that
        closed the order overtook that cancel, and the venue may still refuse it naming the
        order (OKCoin keys cancels on the order). Kept in the index with the closed order,
        until it is answered or the order forgotten."""
        if order.cancel_pending is not None:
            return order.cancel_pending
        return self._last_cancel_unanswered(order) if order.status is _FILLED else None

    def answered_cancel(self, order: Order) -> str | None:
        """Of a canceled order, the last cancel sent for it that no refusal answered: the
        cancellation did (`order.canceled` names the cancel pending then, the OMS got its
        ExecType 4), also where the venue ended the order itself (self-trade prevention,
        expiry) as the cancel came. The venue may still refuse that cancel, too late,
        naming it or the order (OKCoin keys cancels on the order)."""
        return self._last_cancel_unanswered(order) if order.status is _CANCELED else None

    def _last_cancel_unanswered(self, order: Order) -> str | None:
        """The last cancel sent for `order`, while still mapped to it: no refusal answered it."""
        if not order.cancel_ids:
            return None
        last = order.cancel_ids[-1]
        return last if self.index.cancel_of(last) is not None else None

    def _answered_by_its_cancellation(self, order: Order, cancel_cl_ord_id: str) -> bool:
        """A refusal of a cancel the order's cancellation answered: absorbed, logged. Told,
        it would contradict the answer given (a FIX bridge OMS would get an
        OrderCancelReject after the ExecType 4 under its cancel's ClOrdID). The cancel stays
        mapped, so that a repeat of the refusal is absorbed too."""
        if cancel_cl_ord_id != self.answered_cancel(order):
            return False
        log.info(
            "cancel refused after the order's cancellation answered it; dropped",
            cancel_cl_ord_id=cancel_cl_ord_id,
            cl_ord_id=order.cl_ord_id,
        )
        return True

    @staticmethod
    def disputed_by(order: Order, report: CancelRejectReport) -> bool:
        """The cancel reject says the open order is in another state than the gateway
        holds: the exchange is asked, and its answer acted on."""
        return order.is_open and report.status is not None and report.status is not order.status

    def resolve(self, report: ExecutionReport) -> Order | None:
        return self.index.find(report.cl_ord_id, report.orig_cl_ord_id, report.order_id)

    def apply_cancel_reject(self, report: CancelRejectReport) -> list[Event]:
        """A cancel reject tells about the cancel, not the order: the order keeps its state
        (its OrdStatus may be a venue's guess, such as Rejected for an order it cannot find;
        `disputed_by` says when to ask the exchange about the order instead). A repeat
        (PossDupFlag) of the answer to a cancel already answered is dropped."""
        orig, order = self._cancel_target(report)
        cancel_cl_ord_id = self._rejected_cancel(report, order)
        if order is not None and self._answered_by_its_cancellation(order, cancel_cl_ord_id):
            return []
        if order is not None and report.poss_dup and _answered(order, cancel_cl_ord_id):
            log.info(
                "repeated cancel reject dropped",
                cancel_cl_ord_id=cancel_cl_ord_id,
                cl_ord_id=order.cl_ord_id,
                poss_dup=True,
            )
            return []
        self.index.cancel_done(cancel_cl_ord_id)
        if order is not None:
            become(order, step_of(order.status, Input.CANCEL_REJECTED), None, cancel_cl_ord_id)
        return [
            self._cancel_rejected(
                order,
                ts=report.ts,
                cl_ord_id=orig or report.cl_ord_id,
                cancel_cl_ord_id=cancel_cl_ord_id,
                order_id=report.order_id,
                status=report.status,
                reason=report.reason,
                text=report.text,
            )
        ]

    def _cancel_rejected(
        self,
        order: Order | None,
        *,
        ts: datetime,
        cl_ord_id: str,
        cancel_cl_ord_id: str,
        order_id: str | None,
        status: OrderStatus | None,
        reason: CancelRejectReason,
        text: str | None,
    ) -> OrderCancelRejected:
        """The whole order, as every order event carries it, where the gateway tracks it
        (its `order_id` the exchange's answer's until the order has its own); else what the
        answer tells: `cl_ord_id`, `order_id`, `status`, the order's other fields None."""
        if order is None:
            return OrderCancelRejected(
                ts=ts,
                cl_ord_id=cl_ord_id,
                cancel_cl_ord_id=cancel_cl_ord_id,
                order_id=order_id,
                symbol=None,
                status=status,
                reason=reason,
                text=text,
            )
        whole = self.snapshot(order)
        whole["order_id"] = order.order_id or order_id
        return OrderCancelRejected(
            ts=ts, **whole, cancel_cl_ord_id=cancel_cl_ord_id, reason=reason, text=text
        )

    # ------------------------------------------------------------ internals

    def _run(self, order: Order, rule: Rule, report: ExecutionReport) -> list[Event]:
        """The steps of `rule` whose guards hold, up to the first last one."""
        events: list[Event] = []
        for step in rule:
            when = step.when
            if when is not None and not when(order, report):
                continue
            emit = step.emit
            if emit is _FILL:
                events.append(self._fill(order, step, report))
            elif emit is _ACCEPTED:
                become(order, step, report)
                events.append(self._event(OrderAccepted, order, report, exec_id=report.exec_id))
            elif emit is Emit.ANOMALY:
                problem = _problem(step)
                detail = _detail(problem, order, report)
                become(order, step, report)
                events.append(self._anomaly(report, problem, detail, order))
            elif emit is Emit.DROP:
                log.info(
                    "repeated execution report dropped",
                    exec_id=report.exec_id,
                    cl_ord_id=order.cl_ord_id,
                    kind=report.kind,
                    poss_dup=report.poss_dup,
                )
            elif emit is Emit.STATUS:
                if step.to is not To.SAME:
                    self._adopt_quantities(order, report)
                become(order, step, report)
                events.append(self._event(OrderStatusReported, order, report, text=report.text))
            elif emit is Emit.MISSED_FILL:
                events.append(self._missed_fill(order, step, report))
            elif emit is Emit.GAP_FILL:
                events.append(self._gap_fill(order, step, report))
            elif emit is Emit.UNPRICED_GAP:
                events.append(self._unpriced_gap(order, step, report))
            elif emit is Emit.FILLED_IN:
                events.append(self._filled_in(order, step, report))
            elif emit is Emit.RESTATED:
                _adopt_terms(order, report)
                self._adopt_quantities(order, report)
                become(order, step, report)
                events.append(
                    self._event(
                        OrderRestated,
                        order,
                        report,
                        reason=report.restatement_reason,
                        text=report.text,
                    )
                )
            elif emit is Emit.RESTATED_AS_ANSWERED:
                events.append(self._restated_as_answered(order, step, report))
            elif emit is Emit.REPRICED:
                events.append(self._repriced(order, step, report))
            elif emit is Emit.TAKEN_BACK:
                events.append(self._taken_back(order, step, report))
            elif emit is Emit.RESTORED:
                events.append(self._restored(order, step, report))
            elif emit is Emit.PENDING_CANCEL:
                acknowledged = report.cl_ord_id or ""
                if acknowledged not in order.cancel_ids:
                    acknowledged = order.cancel_pending or ""  # named by the order's ClOrdID
                self.index.cancel_acknowledged(acknowledged)
                become(order, step, report, order.cancel_pending or report.cl_ord_id or "venue")
                events.append(
                    self._event(
                        OrderPendingCancel,
                        order,
                        report,
                        cancel_cl_ord_id=order.cancel_pending,
                        exec_id=report.exec_id,
                    )
                )
            elif emit is Emit.CANCELED or emit is Emit.CANCELED_AS_ANSWERED:
                answered = order.cancel_pending
                self._adopt_quantities(order, report)
                become(order, step, report)
                order.leaves_qty = ZERO  # over: nothing is left, whatever LeavesQty says
                text = report.text
                if emit is Emit.CANCELED_AS_ANSWERED:
                    text = text or "canceled, as the exchange answered when asked"
                events.append(
                    self._event(OrderCanceled, order, report, text=text, cancel_cl_ord_id=answered)
                )
            elif emit is Emit.REJECTED:
                become(order, step, report)
                order.leaves_qty = ZERO
                reason = report.reject_reason or RejectReason.OTHER
                events.append(
                    self._event(OrderRejected, order, report, reason=reason, text=report.text)
                )
            elif emit is Emit.REJECTED_AS_UNKNOWN:
                become(order, step, report)
                order.leaves_qty = ZERO
                order.rejected_by_inference = True
                text = f"the exchange has no such order ({report.text or 'no reason given'})"
                events.append(
                    self._event(
                        OrderRejected,
                        order,
                        report,
                        reason=RejectReason.UNKNOWN_AT_EXCHANGE,
                        text=text,
                    )
                )
            elif emit is Emit.NOTHING:
                become(order, step, report)
            else:
                raise ValueError(f"{emit} does not answer a report")
            if step.last:
                break
        return events

    def _fill(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        last_qty = told_fill_qty(order, report)
        last_px = report.last_px if report.last_px is not None else report.avg_px
        was_open = order.is_open
        if report.avg_px > 0:
            self._adopt_quantities(order, report)
        else:  # of the quantity avg_px is of (`Order.valued_qty`) and this fill
            average = unpriced.averaged(order.avg_px, order.valued_qty, last_px, last_qty)
            self._adopt_quantities(order, report)
            order.avg_px = average
        _become_after_execution(order, step, report, was_open)
        cls = OrderFilled if order.status is _FILLED else OrderPartiallyFilled
        return self._event(
            cls, order, report, exec_id=report.exec_id, last_qty=last_qty, last_px=last_px
        )

    def _missed_fill(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """The fills a status answer or a restatement shows beyond what the gateway knew, as
        one fill: of the order as restated, so that the fill's numbers add up. On a closed
        order, as an execution on it is: nothing is open after it. Where the report gives
        no price for them (`missed_fill_px`), no fill: the order takes the report's numbers
        (its avg_px stays that of the fills told unless the report's is above 0), told as
        `order.restated`, and is left in `unpriced` for the exchange to be asked about."""
        if report.kind is ExecKind.RESTATED:
            _adopt_terms(order, report)
        last_qty = EXACT.subtract(report.cum_qty, order.cum_qty)
        last_px = missed_fill_px(order, report)
        was_open = order.is_open
        self._adopt_quantities(order, report)
        _become_after_execution(order, step, report, was_open)
        if last_px is None:
            self.unpriced = order
            low = EXACT.subtract(report.cum_qty, last_qty)
            text = (
                f"the exchange shows {last_qty:f} more filled (cum_qty {report.cum_qty:f}) "
                f"at a price its avg_px {report.avg_px:f} does not give: no fill is told "
                "for it"
            )
            return self._at_no_price(order, report, low, text, valued=report.avg_px > 0)
        return self._event(
            OrderFilled if order.status is OrderStatus.FILLED else OrderPartiallyFilled,
            order,
            report,
            exec_id=f"reconciled:{report.exec_id}",
            last_qty=last_qty,
            last_px=last_px,
        )

    def _at_no_price(
        self, order: Order, report: ExecutionReport, low: Decimal, text: str, *, valued: bool
    ) -> OrderRestated:
        """`order.restated` for cum_qty from `low` up to the order's, filled at no price;
        left out of avg_px unless `valued`: avg_px just taken from the report's AvgPx, which
        is of its whole CumQty."""
        order.unpriced_ranges = unpriced.added(order.unpriced_ranges, low, order.cum_qty)
        if not valued:
            order.unvalued_ranges = unpriced.added(order.unvalued_ranges, low, order.cum_qty)
            text += LEFT_OUT_OF_AVG_PX
        return self._event(OrderRestated, order, report, reason=None, text=text)

    def _unpriced_gap(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """What a fill report's cum_qty rose by beyond its own fill, where its price is not
        determinable (`gap_unpriced`): no fill, cum_qty raised by it, told as
        `order.restated`, that quantity filled at no price; the order is asked about. The
        report's fill follows, from the numbers this one leaves."""
        gap = EXACT.subtract(EXACT.subtract(report.cum_qty, order.cum_qty), fill_qty(order, report))
        low = order.cum_qty
        was_open = order.is_open
        order.cum_qty = EXACT.add(order.cum_qty, gap)
        order.leaves_qty = max(ZERO, EXACT.subtract(order.qty, order.cum_qty)) if was_open else ZERO
        become(order, step, report)
        self.unpriced = order
        text = (
            f"the exchange shows {gap:f} more filled (cum_qty {order.cum_qty:f}) before "
            f"the fill its report tells, at a price its avg_px {report.avg_px:f} does not "
            "give: no fill is told for it"
        )
        return self._at_no_price(order, report, low, text, valued=False)

    def _filled_in(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """A late fill report of quantity a report showed filled at no price
        (`fills_in_unpriced`): its fill told at its LastPx, cum_qty as it was. The average
        is the report's where it is of the same cum_qty; else, where the quantity is left
        out of avg_px (`Order.unvalued_ranges`), that of avg_px's quantity and this fill;
        else avg_px, a venue's AvgPx that covered it, as it was."""
        last_qty, last_px = report.last_qty, report.last_px
        if last_qty is None or last_px is None:
            raise ValueError("a fill filled in needs LastQty and LastPx")
        low = EXACT.subtract(report.cum_qty, last_qty)
        if report.avg_px > 0 and report.cum_qty == order.cum_qty:
            order.avg_px = report.avg_px
            order.unvalued_ranges = unpriced.NONE
        elif unpriced.holds(order.unvalued_ranges, low, report.cum_qty):
            order.avg_px = unpriced.averaged(order.avg_px, order.valued_qty, last_px, last_qty)
        order.unpriced_ranges = unpriced.removed(order.unpriced_ranges, low, report.cum_qty)
        order.unvalued_ranges = unpriced.removed(order.unvalued_ranges, low, report.cum_qty)
        become(order, step, report)
        return self._event(
            OrderFilled if order.status is _FILLED else OrderPartiallyFilled,
            order,
            report,
            exec_id=report.exec_id,
            last_qty=last_qty,
            last_px=last_px,
            report_cum_qty=report.cum_qty,
        )

    def _gap_fill(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """What a fill report's cum_qty rose by beyond its own fill, as one fill before it:
        priced at what the report's AvgPx leaves for it once the known fills and the
        report's own are taken out (avg_px is of the whole cum_qty: where it is not,
        `_unpriced_gap` tells no fill), else (no AvgPx, or none that leaves a price) at the
        report's LastPx. The report's fill follows, from the numbers this one leaves."""
        fill = fill_qty(order, report)
        gap = EXACT.subtract(EXACT.subtract(report.cum_qty, order.cum_qty), fill)
        fill_px = report.last_px if report.last_px is not None else report.avg_px
        known_value = EXACT.multiply(order.avg_px, order.cum_qty)
        last_px = fill_px
        if report.avg_px > 0:
            left = EXACT.subtract(
                EXACT.subtract(EXACT.multiply(report.avg_px, report.cum_qty), known_value),
                EXACT.multiply(fill_px, fill),
            )
            if left > 0:
                last_px = left / gap
        was_open = order.is_open
        order.cum_qty = EXACT.add(order.cum_qty, gap)
        order.avg_px = EXACT.add(known_value, EXACT.multiply(last_px, gap)) / order.cum_qty
        order.leaves_qty = max(ZERO, EXACT.subtract(order.qty, order.cum_qty)) if was_open else ZERO
        become(order, step, report)
        return self._event(
            OrderFilled if order.status is _FILLED else OrderPartiallyFilled,
            order,
            report,
            exec_id=f"reconciled:{report.exec_id}",
            last_qty=gap,
            last_px=last_px,
        )

    def _restated_as_answered(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """A status answer's OrderQty or Price for a live order whose quantity or price the
        gateway holds otherwise: adopted, what is left open following the quantity."""
        qty, price = other_qty(order, report), other_price(order, report)
        shows: list[str] = []
        if qty is not None:
            shows.append(f"quantity {qty:f} where the gateway held {order.qty:f}")
            order.qty = qty
        if price is not None:
            held = "none" if order.price is None else f"{order.price:f}"
            shows.append(f"price {price:f} where the gateway held {held}")
            order.price = price
        text = (
            f"the exchange's status answer shows {' and '.join(shows)}: "
            "the exchange changed the order"
        )
        order.leaves_qty = max(ZERO, EXACT.subtract(order.qty, order.cum_qty))
        become(order, step, report)
        return self._event(OrderRestated, order, report, reason=None, text=text)

    def _repriced(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """A status answer showing the known fills at another average price (asked about
        after a report it could not read, such as a trade correction): its avg_px adopted.
        The fills told stand in `trades`, at the prices they were told."""
        held = order.avg_px
        order.avg_px = report.avg_px
        order.unvalued_ranges = unpriced.NONE
        become(order, step, report)
        text = (
            f"the exchange's status answer shows avg_px {report.avg_px:f} where {held:f} "
            "was told: the average price changed (a trade correction, or fills whose price "
            "a report did not give)"
        )
        return self._event(OrderRestated, order, report, reason=None, text=text)

    def _taken_back(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """A status answer showing fewer fills than the gateway told (asked about after a
        report it could not read, such as a trade bust): the venue's status and numbers
        adopted, the order open again if the venue says so. The fills told stand in
        `trades`; this event and the anomaly before it say what was taken back. Of the
        quantity taken back, what was filled at no price was never told: it is no longer
        unpriced, and is not among the fills taken back (`taken_back`), which a later report
        restores as told; shown again, it is news, told as any fill is."""
        held = order.cum_qty
        kept = unpriced.below(order.unpriced_ranges, report.cum_qty)
        never_told = EXACT.subtract(order.unpriced_qty, unpriced.total(kept))
        told = EXACT.subtract(EXACT.subtract(held, report.cum_qty), never_told)
        if told > 0:
            order.taken_back = EXACT.add(order.taken_back, told)
            order.taken_back_px = order.avg_px
        order.cum_qty = report.cum_qty
        order.unpriced_ranges = kept
        order.unvalued_ranges = unpriced.within(order.unvalued_ranges, kept)
        order.leaves_qty = report.leaves_qty
        if report.avg_px > 0 or report.cum_qty == ZERO:
            order.avg_px = report.avg_px
            order.unvalued_ranges = unpriced.NONE
        become(order, step, report)
        text = (
            f"the exchange's status answer shows cum_qty {report.cum_qty:f} where "
            f"{held:f} was told: {EXACT.subtract(held, report.cum_qty):f} taken back "
            "(a trade bust or correction)"
        )
        if never_told > 0:
            text += f", of it {never_told:f} filled at no price and never told as a fill"
        return self._event(OrderRestated, order, report, reason=None, text=text)

    def _restored(self, order: Order, step: Step, report: ExecutionReport) -> Event:
        """Fills taken back that a report's cum_qty shows again (the answer that took them
        back lagged the venue's reports): restored at the average they were told at, told
        as `order.restated`, never as a fill again, so that the fills told add up to
        cum_qty. What the report shows beyond them is the next steps'."""
        restored = min(order.taken_back, shown_again(order, report))
        order.avg_px = unpriced.averaged(
            order.avg_px, order.valued_qty, order.taken_back_px, restored
        )
        order.cum_qty = EXACT.add(order.cum_qty, restored)
        order.taken_back = EXACT.subtract(order.taken_back, restored)
        if order.is_open:
            order.leaves_qty = max(ZERO, EXACT.subtract(order.qty, order.cum_qty))
            if order.status is OrderStatus.NEW:
                order.status = _PARTIALLY_FILLED
        become(order, step, report)
        text = (
            f"the exchange's report shows cum_qty {report.cum_qty:f}: {restored:f} of the "
            "fills taken back are filled after all (the answer that took them back lagged); "
            "restored as told before, not told again"
        )
        return self._event(OrderRestated, order, report, reason=None, text=text)

    @staticmethod
    def _adopt_quantities(order: Order, report: ExecutionReport) -> None:
        """The report's numbers; its AvgPx, of its whole CumQty, leaves nothing out."""
        order.cum_qty = report.cum_qty
        order.leaves_qty = report.leaves_qty
        if report.avg_px > 0:
            order.avg_px = report.avg_px
            order.unvalued_ranges = unpriced.NONE

    def _event(self, cls: type[E], order: Order, source: Any, **extra: Any) -> E:
        self.index.note_closed(order)
        event = cls(ts=source.ts, **self.snapshot(order), **extra)
        stating(order, event)
        return event

    @staticmethod
    def _anomaly(
        report: ExecutionReport, problem: Problem, detail: str, order: Order | None = None
    ) -> OrderAnomaly:
        log.warning(
            "order anomaly",
            problem=problem.value,
            detail=detail,
            exec_id=report.exec_id,
            cl_ord_id=order.cl_ord_id if order else report.cl_ord_id,
            order_id=report.order_id,
        )
        return OrderAnomaly(
            ts=report.ts,
            cl_ord_id=order.cl_ord_id if order else report.cl_ord_id,
            order_id=report.order_id,
            exec_id=report.exec_id,
            problem=problem.value,
            detail=detail,
        )


def _remember_exec_id(order: Order, report: ExecutionReport) -> None:
    """Keep the ExecID of a report whose repeat would be taken for news (a fill counted
    again). A status answer's is not kept, as the journal keeps none (restore): there is
    one per status request, so an order asked about every second would keep a growing list
    and search it on every report; a repeated answer only states the order again."""
    if report.kind is not ExecKind.ORDER_STATUS:
        order.exec_ids += (report.exec_id,)


def _answered(order: Order, cancel_cl_ord_id: str) -> bool:
    """A cancel of `order` the gateway sent, no longer out: refused, taken for lost, or
    answered by what closed the order."""
    return cancel_cl_ord_id in order.cancel_ids and order.cancel_pending != cancel_cl_ord_id


def _become_after_execution(
    order: Order, step: Step, report: ExecutionReport, was_open: bool
) -> None:
    """The order's status after an execution its numbers were taken from: on an order
    closed already, nothing is open after it (it stays closed); on an open one, the rest a
    report that leaves nothing cancels (`_open_rest`)."""
    become(order, step, report)
    if not was_open:
        order.leaves_qty = ZERO
    _open_rest(order)


def _open_rest(order: Order) -> None:
    """A partial fill from a report that leaves nothing (a status answer, or a fill, whose
    OrdStatus is Canceled): the rest is what the report cancels, a step of its own; what
    the fill left was open."""
    if order.status is _PARTIALLY_FILLED and order.leaves_qty == ZERO:
        order.leaves_qty = EXACT.subtract(order.qty, order.cum_qty)


def _adopt_terms(order: Order, report: ExecutionReport) -> None:
    """The quantity and price a restatement gives the order."""
    if report.qty is not None:
        order.qty = report.qty
    if report.price is not None:
        order.price = report.price


_REPORT_NAMED: Final[dict[ExecKind, str]] = {
    ExecKind.RESTATED: "a restatement",
    ExecKind.CANCELED: "a cancel report",
    ExecKind.REJECTED: "a reject report",
    ExecKind.ORDER_STATUS: "a status answer",
}


def _problem(step: Step) -> Problem:
    if step.problem is None:
        raise ValueError(f"{step} names no problem")
    return step.problem


def _why_no_price(order: Order, report: ExecutionReport) -> str:
    """Why the report's AvgPx gives no price for the quantity it shows beyond the known."""
    unvalued = EXACT.subtract(order.cum_qty, order.valued_qty)
    if unvalued <= 0:
        return f"avg_px {report.avg_px:f} leaves none above 0 for it"
    return (
        f"what avg_px {report.avg_px:f} leaves is its and the {unvalued:f} of the "
        f"{order.cum_qty:f} known filled at no price together"
    )


def _detail(problem: Problem, order: Order, report: ExecutionReport) -> str:
    """What an anomaly's `detail` says, from the order as it was."""
    if problem is Problem.STALE_FILL:
        return (
            f"fill with cum_qty {report.cum_qty:f} arrived after cum_qty "
            f"{order.cum_qty:f}; already counted, state unchanged"
        )
    if problem is Problem.FILL_GAP and not report.kind.is_fill:
        what = _REPORT_NAMED.get(report.kind, f"a {report.kind} report")
        shows = f"{what} shows cum_qty {report.cum_qty:f} where {order.cum_qty:f} was known"
        if missed_fill_px(order, report) is None:
            missed = EXACT.subtract(report.cum_qty, order.cum_qty)
            asked = "" if report.kind is ExecKind.ORDER_STATUS else ASKED_AFTER_UNPRICED
            return (
                f"{shows}: {missed:f} filled at a price the exchange does not give "
                f"({_why_no_price(order, report)}); no fill is told for it, the exchange's "
                f"quantities and status are adopted{asked}"
            )
        return f"{shows}: a fill report was missed; the difference is told as one fill"
    if problem is Problem.FILL_GAP and gap_unpriced(order, report):
        fill = fill_qty(order, report)
        missed = EXACT.subtract(EXACT.subtract(report.cum_qty, order.cum_qty), fill)
        return (
            f"cum_qty moved from {order.cum_qty:f} to {report.cum_qty:f} but last_qty is "
            f"{fill:f}: a report was missed or is out of order; {missed:f} filled at a price "
            f"the exchange does not give ({_why_no_price(order, report)}); no fill is told "
            f"for it, the venue's cum_qty is adopted, and the fill told{ASKED_AFTER_UNPRICED}"
        )
    if problem is Problem.FILL_GAP:
        fill = fill_qty(order, report)
        told = (
            "the difference is told as one fill first"
            if EXACT.add(order.cum_qty, fill) < report.cum_qty
            else f"the fill is told as {told_fill_qty(order, report):f}, what cum_qty rose by"
        )
        return (
            f"cum_qty moved from {order.cum_qty:f} to {report.cum_qty:f} but last_qty is "
            f"{fill:f}: a report was missed or is out of order; the venue's cum_qty is "
            f"adopted, and {told}"
        )
    if problem is Problem.STALE_REPORT:
        return (
            f"{report.kind} ({report.status}, cum_qty {report.cum_qty:f}) "
            f"arrived after {order.status} (cum_qty {order.cum_qty:f}); "
            "state unchanged"
        )
    if problem is Problem.REPORT_AFTER_CLOSE and report.kind.is_fill:
        if report.cum_qty <= order.cum_qty:
            return (
                f"{report.kind} with cum_qty {report.cum_qty:f} after the order was "
                f"{order.status} with cum_qty {order.cum_qty:f}; already counted, state unchanged"
            )
        return (
            f"{report.kind} after the order was {order.status}: an execution the venue made "
            f"(cum_qty {order.cum_qty:f} to {report.cum_qty:f}), told as a fill; the order "
            "stays closed"
        )
    if problem is Problem.REPORT_AFTER_CLOSE:
        return f"{report.kind} after the order was {order.status}; state unchanged"
    if problem is Problem.STALE_STATUS:
        return (
            f"status shows cum_qty {report.cum_qty:f}, below the known "
            f"{order.cum_qty:f}; state unchanged"
        )
    if problem is Problem.UNKNOWN_AT_EXCHANGE:
        return f"the exchange does not know order {order.order_id}; state unchanged"
    if problem is Problem.CANCEL_LOST:
        return "a cancel did not reach the exchange; the order is open"
    if problem is Problem.FILLS_TAKEN_BACK:
        return (
            f"{EXACT.subtract(order.cum_qty, report.cum_qty):f} of the fills taken back: "
            f"asked after a report it could not read, the exchange shows cum_qty "
            f"{report.cum_qty:f} ({report.status}) where {order.cum_qty:f} was told; "
            "the exchange's numbers are adopted"
        )
    if problem is Problem.DONE_FOR_DAY:
        return (
            "done for day (ExecType 3) of a GTC order: no more executions today, the order "
            "not over (FIX 4.4); it stays open, for the venue to restate it (a GT renewal)"
        )
    raise ValueError(f"no detail for {problem}")
