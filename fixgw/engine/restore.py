"""The orders as the journal left them: each order event carries the whole order, so the
last one of each order is its state. What the venue did meanwhile, reconciliation finds
out; also for the orders still owed an answer after a report the gateway could not read
(`Order.unread`): an `order.anomaly` `unreadable`, or a `fill_gap` of fills a report showed
at no price that made the gateway ask the same question, not followed by an `order.status`,
which ends every answer to the question it made the gateway ask. An order's quantity filled
at no price (`Order.unpriced_ranges`) is read off its events: an `order.restated` raises
cum_qty only for it, one that lowers cum_qty takes back what lay above, and a fill that
raises cum_qty by less than its last_qty tells that much of it: the span its report's CumQty
(`report_cum_qty`) places it in. Of it, what the order's
avg_px leaves out (`Order.unvalued_ranges`): what an `order.restated` that says so raised
cum_qty by, until an event's avg_px is one the fills told do not give (the venue's AvgPx,
which covers the whole cum_qty); one that happens to be the same is read as theirs, so a
restart may leave out of avg_px what the gateway had priced, never the other way."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec

from fixgw.decimals import EXACT
from fixgw.domain import (
    GATEWAY_REJECT_REASONS,
    TERMINAL_STATUSES,
    Event,
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
)
from fixgw.engine import unpriced
from fixgw.engine.order_index import ZERO, Order, OrderIndex, stating
from fixgw.engine.transitions import ASKED_AFTER_UNPRICED, LEFT_OUT_OF_AVG_PX, PROGRESS


def restore_orders(index: OrderIndex, events: Iterable[Event]) -> int:
    """Rebuild `index` from journaled events; returns how many orders are open.

    An order is noted closed as the event that closes it is read, and the closed ones
    beyond `keep_closed` are forgotten as the replay goes, as the running gateway forgot
    them: memory at start follows the open orders and `keep_closed`, not the journal's
    history, and the orders kept (and the forgotten ids still refused) are those the
    gateway held when it stopped. A forgotten order's later events were never of an order
    it tracked (an `order.anomaly` at most), so forgetting it early changes nothing."""
    for event in events:
        order = _apply(index, event)
        if order is not None:
            index.note_closed(order)
            index.prune()
    return sum(1 for _ in index.open_orders())


def _apply(index: OrderIndex, event: Event) -> Order | None:
    """The order `event` changed, if any."""
    if isinstance(event, OrderCancelRejected):
        index.cancel_done(event.cancel_cl_ord_id)  # answered: no longer out, as when told
        order = index.get(event.cl_ord_id)
        if order is not None and order.cancel_pending == event.cancel_cl_ord_id:
            order.cancel_pending = None
        if order is not None and event.status is not None:
            _advance(order, event.status)
        return order
    if isinstance(event, OrderAnomaly):
        named = index.get(event.cl_ord_id or "")
        if named is not None and event.problem == "cancel_lost":
            named.cancel_pending = None
        elif named is not None and _asks(event):
            named.unread = True  # owed the exchange's answer, until an `order.status` tells it
        return None
    if not isinstance(event, OrderEvent):
        return None
    if isinstance(event, OrderCanceled) and event.of_untracked_order:
        return None  # an order this gateway did not send: nothing to hold
    order = index.get(event.cl_ord_id)
    if order is None:
        order = Order(
            cl_ord_id=event.cl_ord_id,
            symbol=event.symbol,
            side=event.side,
            order_type=event.order_type,
            qty=event.qty,
            price=event.price,
            cancel_on_disconnect=isinstance(event, OrderPendingNew) and event.cancel_on_disconnect,
            time_in_force=event.time_in_force if isinstance(event, OrderPendingNew) else None,
            oms=event.oms if isinstance(event, OrderPendingNew) else msgspec.UNSET,
        )
        index.add(order)
    index.name(order, event.order_id)
    restored = _note_taken_back(order, event) if isinstance(event, OrderRestated) else ZERO
    order.qty, order.price = event.qty, event.price  # a restatement may change them
    _place_unvalued(order, event, restored)
    _place_unpriced(order, event, restored)
    order.unvalued_ranges = unpriced.within(order.unvalued_ranges, order.unpriced_ranges)
    order.cum_qty, order.leaves_qty = event.cum_qty, event.leaves_qty
    order.avg_px = event.avg_px
    if isinstance(event, OrderPendingCancel):
        order.cancel_pending = event.cancel_cl_ord_id
        if event.cancel_cl_ord_id is not None:
            index.cancel_sent(event.cancel_cl_ord_id, order.cl_ord_id)
            order.cancel_ids += (event.cancel_cl_ord_id,)
    elif event.status is not OrderStatus.PENDING_CANCEL:
        order.status = event.status
    elif isinstance(event, OrderRestated):  # may have taken fills back: its numbers rule
        order.status = _implied_status(order)
    else:  # the status shown while a cancel is out hides the venue's: read it off
        _advance(order, _implied_status(order))
    if order.status in TERMINAL_STATUSES:
        order.cancel_pending = None
    exec_id = _exec_id_kept(event)
    if exec_id is not None:
        order.exec_ids += (exec_id,)
    order.rejected_by_inference = (
        isinstance(event, OrderRejected) and event.reason in GATEWAY_REJECT_REASONS
    )
    if isinstance(event, OrderStatusReported):
        order.unread = False
    stating(order, event)
    return order


def _asks(anomaly: OrderAnomaly) -> bool:
    """The anomaly made the gateway ask the exchange about the order, its answer owed."""
    return anomaly.problem == "unreadable" or (
        anomaly.problem == "fill_gap" and anomaly.detail.endswith(ASKED_AFTER_UNPRICED)
    )


def _place_unpriced(order: Order, event: OrderEvent, restored: Decimal) -> None:
    """`Order.unpriced_ranges` after `event`, from the order's cum_qty before it;
    `restored`: of what a restatement adds, the fills taken back it shows again (priced).
    A fill of unpriced quantity takes out its own span (`_filled_in_span`)."""
    if isinstance(event, OrderRestated):
        if event.cum_qty < order.cum_qty:  # taken back, told or not (`_note_taken_back`)
            order.unpriced_ranges = unpriced.below(order.unpriced_ranges, event.cum_qty)
        else:  # fills at no price, no fill told
            low = order.cum_qty + restored
            order.unpriced_ranges = unpriced.added(order.unpriced_ranges, low, event.cum_qty)
    elif isinstance(event, OrderPartiallyFilled | OrderFilled):
        span = _filled_in_span(event)
        filled_in = event.last_qty - max(ZERO, event.cum_qty - order.cum_qty)
        if span is not None:
            order.unpriced_ranges = unpriced.removed(order.unpriced_ranges, *span)
        elif filled_in > 0:
            order.unpriced_ranges = unpriced.removed_lowest(order.unpriced_ranges, filled_in)


def _place_unvalued(order: Order, event: OrderEvent, restored: Decimal) -> None:
    """`Order.unvalued_ranges` after `event`, from the order before it (its unpriced spans
    not yet moved by `event`): what the fills told make of avg_px, and what `event.avg_px`
    says, as the tracker did it. A fill of unpriced quantity takes out its own span, and
    adds its value to avg_px if the span was left out of it (`_filled_in_span`)."""
    held = order.unvalued_ranges
    valued = order.cum_qty - unpriced.total(held)
    expected = order.avg_px
    if isinstance(event, OrderRestated):
        if restored > ZERO:
            expected = unpriced.averaged(order.avg_px, valued, order.taken_back_px, restored)
        if event.cum_qty > order.cum_qty and event.text and event.text.endswith(LEFT_OUT_OF_AVG_PX):
            held = unpriced.added(held, order.cum_qty + restored, event.cum_qty)
        elif event.cum_qty < order.cum_qty:
            held = unpriced.below(held, event.cum_qty)
            if event.cum_qty == ZERO:
                held = unpriced.NONE
    elif isinstance(event, OrderPartiallyFilled | OrderFilled) and held:
        rose = max(ZERO, event.cum_qty - order.cum_qty)
        filled_in = event.last_qty - rose
        span = _filled_in_span(event)
        if span is not None:
            if unpriced.holds(held, *span):
                expected = unpriced.averaged(order.avg_px, valued, event.last_px, event.last_qty)
            held = unpriced.removed(held, *span)
        elif filled_in > ZERO and event.avg_px != order.avg_px:
            filled_in = min(filled_in, unpriced.total(held))
            held = unpriced.removed_lowest(held, filled_in)
            expected = unpriced.averaged(order.avg_px, valued, event.last_px, filled_in)
        elif filled_in <= ZERO:
            expected = unpriced.averaged(order.avg_px, valued, event.last_px, event.last_qty)
    if event.avg_px != expected:
        held = unpriced.NONE  # the venue's AvgPx, of the whole cum_qty
    order.unvalued_ranges = held


def _filled_in_span(event: OrderPartiallyFilled | OrderFilled) -> tuple[Decimal, Decimal] | None:
    """The span of cum_qty of a fill told for quantity a report showed filled at no price:
    (its report's CumQty less `last_qty`, that CumQty]. None for any other fill, and for one
    journaled before `report_cum_qty` was written; such a fill's quantity is taken from the
    lowest unpriced spans up, which may leave unpriced a span its fill was told for."""
    if event.report_cum_qty is None:
        return None
    return EXACT.subtract(event.report_cum_qty, event.last_qty), event.report_cum_qty


def _note_taken_back(order: Order, event: OrderRestated) -> Decimal:
    """The fills taken back (`Order.taken_back`), as the tracker kept them: a restatement
    showing less filled took them back, of them only what was told (quantity filled at no
    price was not), and one showing more while some were taken back restored them first
    (`Emit.RESTORED`). Returns what it restored."""
    if event.cum_qty < order.cum_qty:
        kept = unpriced.below(order.unpriced_ranges, event.cum_qty)
        never_told = order.unpriced_qty - unpriced.total(kept)
        told = order.cum_qty - event.cum_qty - never_told
        if told > ZERO:
            order.taken_back += told
            order.taken_back_px = order.avg_px
    elif event.cum_qty > order.cum_qty and order.taken_back > ZERO:
        restored = min(order.taken_back, event.cum_qty - order.cum_qty)
        order.taken_back -= restored
        return restored
    return ZERO


def _exec_id_kept(event: OrderEvent) -> str | None:
    """The ExecID of the exchange's report an event came from, for the reports whose repeat
    would be taken for news (fills counted again; an ack or pending cancel after the order
    moved on): one per fill, ack and cancel, as many as the order's own history. Status
    answers' are not kept: one per status request, and a repeat only states the order again."""
    if isinstance(event, OrderPartiallyFilled | OrderFilled | OrderAccepted | OrderPendingCancel):
        return event.exec_id
    return None


def _advance(order: Order, status: OrderStatus) -> None:
    """To `status`, if that is further along: a restored order never moves back."""
    if status is not OrderStatus.PENDING_CANCEL and PROGRESS[status] > PROGRESS[order.status]:
        order.status = status


def _implied_status(order: Order) -> OrderStatus:
    """The venue's status of an open order, from what it has reported of it."""
    if order.cum_qty > ZERO:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.NEW if order.order_id is not None else OrderStatus.PENDING_NEW
