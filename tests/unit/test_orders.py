"""The order state machine: normal lives of an order; reports late, twice or never."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import msgspec
import pytest

from fixgw.domain import (
    CancelOrder,
    CancelRejectReason,
    CancelRejectReport,
    ExecKind,
    ExecutionReport,
    OrderPartiallyFilled,
    OrderRestated,
    OrderStatus,
    OrderType,
    RejectReason,
    RestatementReason,
    Side,
    utc_now,
)
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import RequestError
from tests.unit.orders_made import cancel_of, limit_buy

_exec_ids = iter(range(1, 10_000))


def submit(
    tracker: OrderTracker, cl_ord_id: str = "c1", qty: str = "1.0", price: str = "100"
) -> Any:
    return tracker.submit(limit_buy(cl_ord_id, qty, price))


def report(
    kind: ExecKind,
    status: OrderStatus,
    cum: str,
    leaves: str,
    *,
    avg: str = "0",
    last: tuple[str, str] | None = None,
    cl_ord_id: str = "c1",
    orig: str | None = None,
    exec_id: str | None = None,
    order_id: str | None = "X1",
    **extra: Any,
) -> ExecutionReport:
    return ExecutionReport(
        exec_id=exec_id or f"E{next(_exec_ids)}",
        kind=kind,
        status=status,
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig,
        order_id=order_id,
        symbol="BTC/USD",
        side=Side.BUY,
        cum_qty=D(cum),
        leaves_qty=D(leaves),
        avg_px=D(avg),
        last_qty=D(last[0]) if last else None,
        last_px=D(last[1]) if last else None,
        ts=utc_now(),
        **extra,
    )


def types(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.fixture
def tracker() -> OrderTracker:
    t = OrderTracker()
    submit(t)
    return t


def test_limit_order_accepted_partially_filled_then_filled(tracker: OrderTracker) -> None:
    assert types(tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))) == [
        "OrderAccepted"
    ]
    [partial] = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.4",
            "0.6",
            avg="100",
            last=("0.4", "100"),
        )
    )
    assert (partial.status, partial.cum_qty, partial.leaves_qty, partial.last_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.4"),
        D("0.6"),
        D("0.4"),
    )
    [filled] = tracker.apply_execution(
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="99.4", last=("0.6", "99"))
    )
    assert type(filled).__name__ == "OrderFilled"
    assert (filled.cum_qty, filled.leaves_qty, filled.avg_px, filled.order_id) == (
        D("1.0"),
        D("0"),
        D("99.4"),
        "X1",
    )
    assert list(tracker.open_orders()) == []


def test_average_price_is_computed_in_decimal_when_the_venue_gives_none(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, "0.1", "0.9", last=("0.1", "100.1")
        )
    )
    [filled] = tracker.apply_execution(
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", last=("0.9", "100.2"))
    )
    assert filled.avg_px == (D("0.1") * D("100.1") + D("0.9") * D("100.2")) / D("1.0")
    assert filled.avg_px == D("100.19")


def test_the_venues_average_price_is_taken_when_it_gives_one(tracker: OrderTracker) -> None:
    """The venue is the source of truth for the order's numbers: its AvgPx, rounded as it
    rounds it, is what an OMS reconciles with the exchange's statement, not the gateway's
    own 28-digit quotient (kept only for a venue that gives none)."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.1",
            "0.9",
            avg="100",
            last=("0.1", "100"),
        )
    )
    [partial] = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.3",
            "0.7",
            avg="100.0067",
            last=("0.2", "100.01"),
        )
    )
    assert (partial.last_px, partial.avg_px) == (D("100.01"), D("100.0067"))
    order = tracker.get("c1")
    assert order is not None and order.avg_px == D("100.0067")


def test_duplicate_execution_report_is_dropped(tracker: OrderTracker) -> None:
    fill = report(
        ExecKind.PARTIAL_FILL,
        OrderStatus.PARTIALLY_FILLED,
        "0.4",
        "0.6",
        last=("0.4", "100"),
        exec_id="dup-1",
    )
    assert types(tracker.apply_execution(fill)) == ["OrderPartiallyFilled"]
    assert tracker.apply_execution(fill) == []
    order = tracker.get("c1")
    assert order is not None and order.cum_qty == D("0.4")


def test_an_ack_or_a_cancel_sent_again_under_a_new_exec_id_is_dropped(
    tracker: OrderTracker,
) -> None:
    assert types(tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))) == [
        "OrderAccepted"
    ]
    assert tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0")) == []
    canceled = report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0")
    assert types(tracker.apply_execution(canceled)) == ["OrderCanceled"]
    again = report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", poss_dup=True)
    assert tracker.apply_execution(again) == []


def test_an_ack_is_published_even_after_a_cancel_reject_said_the_order_was_new(
    tracker: OrderTracker,
) -> None:
    """The cancel reject's OrdStatus moves the order on without an `order.accepted`: the ack
    that follows is the first to say so, not a repeat."""
    tracker.cancel_requested(cancel_of())
    tracker.apply_cancel_reject(
        CancelRejectReport(
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            status=OrderStatus.NEW,
            reason=CancelRejectReason.OTHER,
            text="busy",
            ts=utc_now(),
        )
    )
    ack = report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0")
    assert types(tracker.apply_execution(ack)) == ["OrderAccepted"]


def test_an_ack_that_says_pending_new_is_published(tracker: OrderTracker) -> None:
    ack = report(ExecKind.NEW, OrderStatus.PENDING_NEW, "0", "1.0")
    assert types(tracker.apply_execution(ack)) == ["OrderAccepted"]


def test_fill_before_acknowledgement_then_late_ack_is_surfaced_not_applied(
    tracker: OrderTracker,
) -> None:
    assert types(
        tracker.apply_execution(
            report(
                ExecKind.PARTIAL_FILL,
                OrderStatus.PARTIALLY_FILLED,
                "0.4",
                "0.6",
                last=("0.4", "100"),
            )
        )
    ) == ["OrderPartiallyFilled"]
    [anomaly] = tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    assert anomaly.problem == "stale_report"
    order = tracker.get("c1")
    assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED


def test_final_fill_before_partial_fill_leaves_the_order_filled(tracker: OrderTracker) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    [gap, missed, filled] = tracker.apply_execution(
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("0.6", "100"))
    )
    assert (gap.problem, type(missed).__name__, type(filled).__name__) == (
        "fill_gap",
        "OrderPartiallyFilled",
        "OrderFilled",
    )
    assert (missed.last_qty, missed.last_px, filled.last_qty) == (D("0.4"), D("100"), D("0.6"))
    [late] = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, "0.4", "0.6", last=("0.4", "100")
        )
    )
    assert late.problem == "report_after_close" and "already counted" in late.detail
    order = tracker.get("c1")
    assert order is not None and (order.status, order.cum_qty) == (OrderStatus.FILLED, D("1.0"))


def test_a_fill_whose_last_qty_is_more_than_cum_qty_rose_by_is_told_as_the_rise(
    tracker: OrderTracker,
) -> None:
    """FIX 4.4: CumQty is the sum of the LastQty values, and an OMS adds up the fills it is
    told. LastQty 0.5 where CumQty rose by 0.3 (the rest of it counted already) is told as
    0.3, so the fills told add up to cum_qty 0.6, never 0.8."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, "0.3", "0.7", last=("0.3", "100")
        )
    )
    gap, fill = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.6",
            "0.4",
            avg="100",
            last=("0.5", "100"),
        )
    )
    assert gap.problem == "fill_gap" and "the fill is told as 0.3" in gap.detail
    assert (type(fill).__name__, fill.last_qty, fill.cum_qty, fill.leaves_qty) == (
        "OrderPartiallyFilled",
        D("0.3"),
        D("0.6"),
        D("0.4"),
    )


def test_a_gap_whose_avg_px_leaves_no_price_for_it_is_told_at_the_reports_last_px(
    tracker: OrderTracker,
) -> None:
    """0.2 known at 100; a report of 0.2 at 50 with CumQty 0.6 at AvgPx 50: once the known
    fill and the report's own are taken out, AvgPx leaves exactly 0 for the 0.2 between, no
    price. The gap is told at the report's LastPx, never as a fill at 0."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.2",
            "0.8",
            avg="100",
            last=("0.2", "100"),
        )
    )
    gap, missed, fill = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.6",
            "0.4",
            avg="50",
            last=("0.2", "50"),
        )
    )
    assert gap.problem == "fill_gap"
    assert [
        (e.exec_id.startswith("reconciled:"), e.last_qty, e.last_px) for e in (missed, fill)
    ] == [
        (True, D("0.2"), D("50")),
        (False, D("0.2"), D("50")),
    ]


def test_fill_that_repeats_known_quantity_under_a_new_exec_id_is_stale(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, "0.4", "0.6", last=("0.4", "100")
        )
    )
    [stale] = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, "0.4", "0.6", last=("0.4", "100")
        )
    )
    assert stale.problem == "stale_fill"


def test_cancel_requested_then_canceled(tracker: OrderTracker) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    pending = tracker.cancel_requested(
        CancelOrder(
            ts=utc_now(),
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            symbol="BTC/USD",
            side=Side.BUY,
        )
    )
    assert pending is not None and pending.status is OrderStatus.PENDING_CANCEL
    [canceled] = tracker.apply_execution(
        report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", cl_ord_id="k1", orig="c1")
    )
    assert (type(canceled).__name__, canceled.cl_ord_id, canceled.status) == (
        "OrderCanceled",
        "c1",
        OrderStatus.CANCELED,
    )


@pytest.mark.parametrize("says", [OrderStatus.CANCELED, OrderStatus.FILLED])
def test_a_cancel_showing_the_whole_quantity_filled_after_a_missed_fill_is_a_fill(
    tracker: OrderTracker, says: OrderStatus
) -> None:
    """0.2 told; the fill of the other 0.8 missed; the venue's answer to a client's cancel
    (ExecType 4) shows CumQty 1.0, nothing left: the order filled before the cancel could
    act. One `order.filled` for the 0.8, never a partial fill with nothing left then
    `order.canceled`; the cancel out is over."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.2",
            "0.8",
            avg="100",
            last=("0.2", "100"),
        )
    )
    tracker.cancel_requested(cancel_of("c1"))
    gap, fill = tracker.apply_execution(
        report(ExecKind.CANCELED, says, "1.0", "0", avg="101.6", cl_ord_id="k1", orig="c1")
    )
    assert gap.problem == "fill_gap"
    assert (type(fill).__name__, fill.status, fill.last_qty, fill.last_px) == (
        "OrderFilled",
        OrderStatus.FILLED,
        D("0.8"),
        D("102"),
    )
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.leaves_qty, order.cancel_pending) == (
        OrderStatus.FILLED,
        D(0),
        None,
    )


def test_cancel_rejected_returns_the_order_to_its_status(tracker: OrderTracker) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(
        CancelOrder(
            ts=utc_now(),
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            symbol="BTC/USD",
            side=Side.BUY,
        )
    )
    [rejected] = tracker.apply_cancel_reject(
        CancelRejectReport(
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            status=OrderStatus.NEW,
            reason=CancelRejectReason.TOO_LATE_TO_CANCEL,
            text="too late",
            ts=utc_now(),
        )
    )
    assert (rejected.cl_ord_id, rejected.cancel_cl_ord_id, rejected.status, rejected.reason) == (
        "c1",
        "k1",
        OrderStatus.NEW,
        CancelRejectReason.TOO_LATE_TO_CANCEL,
    )


def test_a_refused_cancel_of_a_partly_filled_order_carries_the_whole_order(
    tracker: OrderTracker,
) -> None:
    """docs/protocol.md: every order event carries the whole order, `order.cancel_rejected`
    too: refused by the exchange's OrderCancelReject (9), or by a reject of the message."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.4",
            "0.6",
            avg="100",
            last=("0.4", "100"),
        )
    )
    tracker.cancel_requested(cancel_of())
    [by_cancel_reject] = tracker.apply_cancel_reject(
        CancelRejectReport(
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            status=OrderStatus.PARTIALLY_FILLED,
            reason=CancelRejectReason.TOO_LATE_TO_CANCEL,
            ts=utc_now(),
        )
    )
    tracker.cancel_requested(msgspec.structs.replace(cancel_of(), cl_ord_id="k2"))
    [by_reject] = tracker.refused("k2", "message type F is not supported", utc_now())
    order = tracker.get("c1")
    assert order is not None
    whole = tracker.snapshot(order)
    assert whole["status"] is OrderStatus.PARTIALLY_FILLED
    for rejected in (by_cancel_reject, by_reject):
        shown = {k: getattr(rejected, k) for k in whole}
        assert shown == whole
        assert (shown["cum_qty"], shown["leaves_qty"], shown["avg_px"]) == (
            D("0.4"),
            D("0.6"),
            D("100"),
        )


def test_cancel_reject_for_an_order_nobody_tracks_still_reaches_clients() -> None:
    tracker = OrderTracker()
    tracker.cancel_requested(
        CancelOrder(
            ts=utc_now(),
            cl_ord_id="k9",
            orig_cl_ord_id="X404",
            order_id="X404",
            symbol="BTC/USD",
            side=Side.SELL,
        )
    )
    [rejected] = tracker.apply_cancel_reject(
        CancelRejectReport(
            cl_ord_id="k9",
            orig_cl_ord_id="X404",
            order_id=None,
            status=OrderStatus.REJECTED,
            reason=CancelRejectReason.UNKNOWN_ORDER,
            text="unknown order",
            ts=utc_now(),
        )
    )
    assert (rejected.cl_ord_id, rejected.reason, rejected.status) == (
        "X404",
        CancelRejectReason.UNKNOWN_ORDER,
        OrderStatus.REJECTED,
    )
    unknown = ("symbol", "side", "order_type", "qty", "price", "cum_qty", "leaves_qty", "avg_px")
    assert [getattr(rejected, k) for k in unknown] == [None] * len(unknown)


def test_rejected_order(tracker: OrderTracker) -> None:
    [rejected] = tracker.apply_execution(
        report(
            ExecKind.REJECTED,
            OrderStatus.REJECTED,
            "0",
            "0",
            order_id=None,
            reject_reason=RejectReason.UNKNOWN_SYMBOL,
            text="unknown symbol",
        )
    )
    assert (rejected.status, rejected.reason, rejected.leaves_qty) == (
        OrderStatus.REJECTED,
        RejectReason.UNKNOWN_SYMBOL,
        D("0"),
    )


def test_report_for_an_unknown_order_is_surfaced() -> None:
    [anomaly] = OrderTracker().apply_execution(
        report(ExecKind.NEW, OrderStatus.NEW, "0", "1", cl_ord_id="nobody")
    )
    assert (anomaly.problem, anomaly.cl_ord_id) == ("unknown_order", "nobody")


def test_status_report_adopts_the_venues_view_and_reports_the_fills_it_shows(
    tracker: OrderTracker,
) -> None:
    """A fill first learnt of from a status answer (its report lost, or an answer to a
    client's `order_status`) is still a fill: clients, `trades` and the account see it."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    fill, status = tracker.apply_execution(
        report(ExecKind.ORDER_STATUS, OrderStatus.PARTIALLY_FILLED, "0.3", "0.7", avg="101")
    )
    assert isinstance(fill, OrderPartiallyFilled)
    assert (fill.last_qty, fill.last_px, fill.cum_qty) == (D("0.3"), D("101"), D("0.3"))
    assert (status.status, status.cum_qty, status.avg_px) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.3"),
        D("101"),
    )
    again = report(ExecKind.ORDER_STATUS, OrderStatus.PARTIALLY_FILLED, "0.3", "0.7", avg="101")
    assert types(tracker.apply_execution(again)) == ["OrderStatusReported"]


def test_an_order_asked_about_again_and_again_keeps_only_its_own_reports_exec_ids(
    tracker: OrderTracker,
) -> None:
    """A strategy polling a resting order's status every second for a week: each answer has
    an ExecID of its own, and keeping them all would grow without end (and be searched on
    every report). The order keeps its ack's and fill's, which a repeat could count again."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0", exec_id="ack"))
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.3",
            "0.7",
            avg="101",
            last=("0.3", "101"),
            exec_id="fill",
        )
    )
    for _ in range(50):
        answer = report(
            ExecKind.ORDER_STATUS, OrderStatus.PARTIALLY_FILLED, "0.3", "0.7", avg="101"
        )
        assert types(tracker.apply_execution(answer)) == ["OrderStatusReported"]
        assert types(tracker.reconcile(answer)) == []
    [order] = tracker.all_orders()
    assert order.exec_ids == ("ack", "fill")


def test_duplicate_cl_ord_id_is_refused(tracker: OrderTracker) -> None:
    with pytest.raises(RequestError) as err:
        submit(tracker)
    assert err.value.code == "duplicate_cl_ord_id"


@pytest.mark.parametrize("answer", ["rejected", "not_delivered"])
def test_an_answered_cancels_id_stays_in_use_while_its_order_is_kept(answer: str) -> None:
    """A cancel refused (or taken for never delivered) freed its ClOrdID while its order was
    open: the same id was taken again as a cancel or an order, and sent to the exchange,
    which had had it; after a restart the journal's replay refused it. Then, forgotten with
    its order, it is among the forgotten ids still refused."""
    tracker = OrderTracker(keep_closed=0)
    submit(tracker)
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of())
    if answer == "rejected":
        reject = CancelRejectReport(
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            status=OrderStatus.NEW,
            reason=CancelRejectReason.OTHER,
            text="busy",
            ts=utc_now(),
        )
        assert types(tracker.apply_cancel_reject(reject)) == ["OrderCancelRejected"]
    else:
        refused = tracker.refused("k1", "not resent", utc_now(), not_delivered=True)
        assert types(refused) == ["OrderCancelRejected"]
    with pytest.raises(RequestError) as taken_again:
        tracker.refuse_if_in_use("k1")
    assert taken_again.value.code == "duplicate_cl_ord_id"
    tracker.apply_execution(
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    )
    assert [o.cl_ord_id for o in tracker.prune()] == ["c1"]
    assert tracker.forgotten("k1")


def test_a_cancel_that_never_left_frees_its_id(tracker: OrderTracker) -> None:
    """The session was down: the exchange never had the cancel, nor the journal; the client
    may send it again under the same id."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of())
    tracker.cancel_unsent(cancel_of())
    tracker.refuse_if_in_use("k1")


def canceled_by_cancel(tracker: OrderTracker, n: int) -> None:
    """Order c<n> (the exchange's X<n>) canceled by cancel k<n>."""
    tracker.cancel_requested(
        CancelOrder(
            ts=utc_now(),
            cl_ord_id=f"k{n}",
            orig_cl_ord_id=f"c{n}",
            symbol="BTC/USD",
            side=Side.BUY,
            order_id=f"X{n}",
        )
    )
    tracker.apply_execution(
        report(
            ExecKind.CANCELED,
            OrderStatus.CANCELED,
            "0",
            "0",
            cl_ord_id=f"k{n}",
            orig=f"c{n}",
            order_id=f"X{n}",
        )
    )


def test_only_the_most_recently_closed_orders_are_remembered() -> None:
    tracker = OrderTracker(keep_closed=2)
    for n in range(5):
        submit(tracker, f"c{n}")
        tracker.apply_execution(
            report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0", cl_ord_id=f"c{n}", order_id=f"X{n}")
        )
    for n in (3, 0, 1):
        canceled_by_cancel(tracker, n)
    assert tracker.get("c3") is not None  # forgotten only by prune

    forgotten = tracker.prune()

    assert [o.cl_ord_id for o in forgotten] == ["c3"]
    assert tracker.get("c3") is None and tracker.by_order_id("X3") is None
    assert [o.cl_ord_id for o in tracker.all_orders()] == ["c0", "c1", "c2", "c4"]
    assert tracker.prune() == []
    [late] = tracker.apply_execution(
        report(
            ExecKind.CANCELED,
            OrderStatus.CANCELED,
            "0",
            "0",
            cl_ord_id="k3",
            orig="c3",
            order_id="X3",
        )
    )
    assert (type(late).__name__, late.problem) == ("OrderAnomaly", "unknown_order")


def test_open_orders_are_never_forgotten() -> None:
    tracker = OrderTracker(keep_closed=0)
    for n in range(3):
        submit(tracker, f"c{n}")
    tracker.apply_execution(
        report(ExecKind.REJECTED, OrderStatus.REJECTED, "0", "0", cl_ord_id="c1", order_id=None)
    )
    assert [o.cl_ord_id for o in tracker.prune()] == ["c1"]
    assert [o.cl_ord_id for o in tracker.open_orders()] == ["c0", "c2"]


def test_a_duplicate_report_is_still_dropped_after_many_fills(tracker: OrderTracker) -> None:
    fills = [
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            f"0.{n}",
            f"0.{10 - n}",
            avg="100",
            last=("0.1", "100"),
        )
        for n in range(1, 6)
    ]
    for fill in fills:
        tracker.apply_execution(fill)
    assert tracker.apply_execution(fills[2]) == []


def test_a_cancel_reject_saying_rejected_leaves_the_order_open_and_disputed(
    tracker: OrderTracker,
) -> None:
    """A venue that cannot find the order answers the cancel with OrdStatus 8: that is about
    the cancel; the order stays as it is, and the gateway is told to ask about it."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of(order_id="X1"))
    reject = CancelRejectReport(
        cl_ord_id="k1",
        orig_cl_ord_id="c1",
        order_id="X1",
        status=OrderStatus.REJECTED,
        reason=CancelRejectReason.UNKNOWN_ORDER,
        text="unknown order",
        ts=utc_now(),
    )
    order = tracker.cancelled_order(reject)
    assert order is not None and tracker.disputed_by(order, reject)
    [refused] = tracker.apply_cancel_reject(reject)
    assert (refused.status, order.status, order.is_open) == (OrderStatus.NEW, OrderStatus.NEW, True)
    fill = report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", last=("1.0", "30000"))
    assert types(tracker.apply_execution(fill)) == ["OrderFilled"]


# ------------------------------------------------------------------ fills, then a cancel, missed


def test_a_partial_fill_then_a_cancel_while_away_is_a_partial_fill_then_a_cancel(
    tracker: OrderTracker,
) -> None:
    """Reconciliation finds 0.4 of 1 filled and the rest canceled: the fill missed is partial
    (leaves 0.6, as the order was then), the cancel closes the order; never `order.filled`."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "0.4", "0", avg="100")
    fill, canceled = tracker.reconcile(answer)
    assert (type(fill).__name__, fill.status, fill.last_qty, fill.cum_qty, fill.leaves_qty) == (
        "OrderPartiallyFilled",
        OrderStatus.PARTIALLY_FILLED,
        D("0.4"),
        D("0.4"),
        D("0.6"),
    )
    assert (fill.last_px, fill.exec_id) == (D("100"), f"reconciled:{answer.exec_id}")
    assert (type(canceled).__name__, canceled.status, canceled.cum_qty, canceled.leaves_qty) == (
        "OrderCanceled",
        OrderStatus.CANCELED,
        D("0.4"),
        D("0"),
    )
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty, order.avg_px) == (
        OrderStatus.CANCELED,
        D("0.4"),
        D("0"),
        D("100"),
    )


def test_a_cancel_after_more_fills_than_known_while_away_reports_only_the_difference(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.1",
            "0.9",
            avg="100",
            last=("0.1", "100"),
        )
    )
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "0.4", "0", avg="101.5")
    fill, canceled = tracker.reconcile(answer)
    assert (type(fill).__name__, fill.last_qty, fill.last_px, fill.leaves_qty) == (
        "OrderPartiallyFilled",
        D("0.3"),
        D("102"),
        D("0.6"),
    )
    assert (type(canceled).__name__, canceled.cum_qty) == ("OrderCanceled", D("0.4"))
    order = tracker.get("c1")
    assert order is not None and (order.status, order.cum_qty) == (OrderStatus.CANCELED, D("0.4"))


def test_a_status_answer_of_canceled_after_a_missed_partial_fill(tracker: OrderTracker) -> None:
    """The same answer to an `order_status`: the fill is partial, and the answer's status
    closes the order as `order.canceled`, as reconciliation tells it."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    fill, status = tracker.apply_execution(
        report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "0.4", "0", avg="100")
    )
    assert (type(fill).__name__, fill.status, fill.last_qty, fill.leaves_qty) == (
        "OrderPartiallyFilled",
        OrderStatus.PARTIALLY_FILLED,
        D("0.4"),
        D("0.6"),
    )
    assert (type(status).__name__, status.status, status.cum_qty, status.leaves_qty) == (
        "OrderCanceled",
        OrderStatus.CANCELED,
        D("0.4"),
        D("0"),
    )
    order = tracker.get("c1")
    assert order is not None and (order.status, order.cum_qty) == (OrderStatus.CANCELED, D("0.4"))


def test_fills_found_on_an_order_already_canceled_leave_it_canceled(
    tracker: OrderTracker,
) -> None:
    """The cancel crossed fills the gateway was not told of: an answer, to an `order_status`
    or at a logon, shows them as a partial fill, told as an execution on a closed order is
    (its status canceled, nothing left); the order stays canceled, not filled, and is not
    canceled a second time."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.apply_execution(report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0"))
    asked = tracker.apply_execution(
        report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "0.4", "0", avg="100")
    )
    assert [(type(e).__name__, e.status, e.cum_qty, e.leaves_qty) for e in asked] == [
        ("OrderPartiallyFilled", OrderStatus.CANCELED, D("0.4"), D(0)),
        ("OrderStatusReported", OrderStatus.CANCELED, D("0.4"), D(0)),
    ]
    reconciled = tracker.reconcile(
        report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "0.5", "0", avg="100")
    )
    assert [(type(e).__name__, e.status, e.cum_qty, e.leaves_qty) for e in reconciled] == [
        ("OrderPartiallyFilled", OrderStatus.CANCELED, D("0.5"), D(0)),
    ]
    order = tracker.get("c1")
    assert order is not None and (order.status, order.cum_qty) == (OrderStatus.CANCELED, D("0.5"))


def test_a_late_fill_on_a_canceled_order_whose_cum_qty_skips_a_fill_leaves_nothing_open(
    tracker: OrderTracker,
) -> None:
    """Canceled at cum_qty 0, then a fill report of 0.2 saying CumQty 0.4: the 0.2 between
    is told as one fill first, then the report's. Both are executions on a closed order:
    status canceled, nothing left open, in every event an OMS reads."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of("c1"))
    tracker.apply_execution(
        report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", cl_ord_id="k1", orig="c1")
    )
    events = tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.CANCELED,
            "0.4",
            "0",
            avg="100",
            last=("0.2", "100"),
        )
    )
    fills = [e for e in events if isinstance(e, OrderPartiallyFilled)]
    assert [(e.last_qty, e.status, e.cum_qty, e.leaves_qty) for e in fills] == [
        (D("0.2"), OrderStatus.CANCELED, D("0.2"), D(0)),
        (D("0.2"), OrderStatus.CANCELED, D("0.4"), D(0)),
    ]
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty) == (OrderStatus.CANCELED, D("0.4"), D(0))


def test_a_status_answer_of_filled_after_missed_fills_is_still_a_fill(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    [fill] = tracker.reconcile(
        report(ExecKind.ORDER_STATUS, OrderStatus.FILLED, "1.0", "0", avg="100")
    )
    assert (type(fill).__name__, fill.status, fill.last_qty) == (
        "OrderFilled",
        OrderStatus.FILLED,
        D("1.0"),
    )


@pytest.mark.parametrize("asked", ["by_a_client", "at_logon", "after_an_unreadable_report"])
def test_a_status_answer_saying_canceled_with_all_filled_is_a_fill(
    tracker: OrderTracker, asked: str
) -> None:
    """The order filled completely while the gateway was away, and the venue's answer says
    Canceled with CumQty = OrderQty: it is filled (FIX 4.4 ranks Filled above Canceled), one
    `order.filled`, never a partial fill then a cancel; a client's answer says filled too."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "1.0", "0", avg="100")
    if asked == "by_a_client":
        events = tracker.apply_execution(answer)
    else:
        events = tracker.reconcile(answer, after_unreadable=asked == "after_an_unreadable_report")
    assert [(type(e).__name__, e.status) for e in events][:1] == [
        ("OrderFilled", OrderStatus.FILLED)
    ]
    assert [e.status for e in events] == [OrderStatus.FILLED] * len(events)
    assert events[0].last_qty == D("1.0")
    order = tracker.get("c1")
    assert order is not None and (order.status, order.leaves_qty) == (OrderStatus.FILLED, D(0))


def test_missed_fills_whose_avg_px_leaves_exactly_nothing_for_them_are_not_told_at_0(
    tracker: OrderTracker,
) -> None:
    """0.5 known at 100; the answer at logon shows 1.0 filled at AvgPx 50, which leaves
    exactly 0 for the 0.5 missed: no price. No fill is told (never one at 0): the gap is
    surfaced, the order restated with the venue's numbers and asked about."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.5",
            "0.5",
            avg="100",
            last=("0.5", "100"),
        )
    )
    gap, restated = tracker.reconcile(
        report(ExecKind.ORDER_STATUS, OrderStatus.FILLED, "1.0", "0", avg="50")
    )
    assert gap.problem == "fill_gap"
    assert "0.5 filled at a price the exchange does not give" in gap.detail
    assert (type(restated).__name__, restated.cum_qty) == ("OrderRestated", D("1.0"))
    order = tracker.get("c1")
    assert order is not None and tracker.unpriced is order


@pytest.mark.parametrize("kind", [ExecKind.TRADE, ExecKind.PARTIAL_FILL])
def test_a_fill_that_cancels_the_rest_is_a_partial_fill_then_a_cancel(
    tracker: OrderTracker, kind: ExecKind
) -> None:
    """One report fills 0.4 of 1 and cancels the rest (OrdStatus Canceled, LeavesQty 0), as
    a venue ends a market order: the fill, partial (leaves 0.6, as the order was then), then
    the cancel with the venue's text; once each, never `order.filled`."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    last = report(
        kind,
        OrderStatus.CANCELED,
        "0.4",
        "0",
        avg="100",
        last=("0.4", "100"),
        text="unfilled rest of market order canceled",
    )
    fill, canceled = tracker.apply_execution(last)
    assert (type(fill).__name__, fill.status, fill.exec_id, fill.last_qty, fill.leaves_qty) == (
        "OrderPartiallyFilled",
        OrderStatus.PARTIALLY_FILLED,
        last.exec_id,
        D("0.4"),
        D("0.6"),
    )
    assert (type(canceled).__name__, canceled.status, canceled.cum_qty, canceled.leaves_qty) == (
        "OrderCanceled",
        OrderStatus.CANCELED,
        D("0.4"),
        D("0"),
    )
    assert canceled.text == "unfilled rest of market order canceled"
    assert tracker.apply_execution(last) == []
    again = report(ExecKind.CANCELED, OrderStatus.CANCELED, "0.4", "0", avg="100")
    assert tracker.apply_execution(again) == []
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty, order.avg_px) == (
        OrderStatus.CANCELED,
        D("0.4"),
        D("0"),
        D("100"),
    )


# ------------------------------------------------------------------ closing, and the cancel flag


def test_a_cancel_taken_for_never_delivered_is_refused_while_its_order_is_open(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of())
    [refused] = tracker.refused("k1", "not resent", utc_now(), not_delivered=True)
    assert (type(refused).__name__, refused.cancel_cl_ord_id, refused.reason, refused.status) == (
        "OrderCancelRejected",
        "k1",
        CancelRejectReason.NOT_DELIVERED,
        OrderStatus.NEW,
    )
    order = tracker.get("c1")
    assert order is not None and order.cancel_pending is None


@pytest.mark.parametrize(
    "closing",
    [
        report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", cl_ord_id="k1", orig="c1"),
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100")),
    ],
    ids=["canceled_by_it", "filled"],
)
def test_a_cancel_of_an_order_closed_since_is_not_told_as_never_delivered(
    tracker: OrderTracker, closing: ExecutionReport
) -> None:
    """A venue that asks again for a cancel it acted on (its store lagged its book): what
    closed the order answered the cancel; nothing more is told, and the cancel's ClOrdID
    still names it."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of())
    tracker.apply_execution(closing)
    assert tracker.refused("k1", "not resent", utc_now(), not_delivered=True) == []
    assert tracker.in_use("k1")
    order = tracker.get("c1")
    assert order is not None and order.status is closing.status


@pytest.mark.parametrize("named_by", ["k1", "c1"], ids=["the_cancel", "the_order"])
def test_a_cancel_the_venue_acknowledged_is_not_told_as_never_delivered(
    tracker: OrderTracker, named_by: str
) -> None:
    """Its pending cancel (ExecType 6, under the cancel's ClOrdID or the order's) says the
    venue has the cancel: asked for again, it is gap filled, and nothing is told; the cancel
    stays out until the venue answers it."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of())
    pending = report(
        ExecKind.PENDING_CANCEL,
        OrderStatus.PENDING_CANCEL,
        "0",
        "1.0",
        cl_ord_id=named_by,
        orig="c1" if named_by == "k1" else None,
    )
    tracker.apply_execution(pending)
    assert tracker.refused("k1", "not resent", utc_now(), not_delivered=True) == []
    order = tracker.get("c1")
    assert order is not None and (order.cancel_pending, order.shown_status) == (
        "k1",
        OrderStatus.PENDING_CANCEL,
    )
    canceled = report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", cl_ord_id="k1")
    assert types(tracker.apply_execution(canceled)) == ["OrderCanceled"]


def test_only_the_cancel_the_venue_acknowledged_is_spared(tracker: OrderTracker) -> None:
    """Acknowledged, then refused: a second cancel, never acknowledged, is told as never
    delivered."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of())
    tracker.apply_execution(
        report(ExecKind.PENDING_CANCEL, OrderStatus.PENDING_CANCEL, "0", "1.0", cl_ord_id="k1")
    )
    tracker.apply_cancel_reject(
        CancelRejectReport(
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X1",
            status=OrderStatus.NEW,
            reason=CancelRejectReason.TOO_LATE_TO_CANCEL,
            ts=utc_now(),
        )
    )
    assert not tracker.index.acknowledged("k1")
    tracker.cancel_requested(msgspec.structs.replace(cancel_of(), cl_ord_id="k2"))
    [refused] = tracker.refused("k2", "not resent", utc_now(), not_delivered=True)
    assert (refused.cancel_cl_ord_id, refused.reason) == ("k2", CancelRejectReason.NOT_DELIVERED)


def test_a_refused_order_is_among_the_closed_ones_forgotten() -> None:
    tracker = OrderTracker(keep_closed=0)
    submit(tracker, "c1")
    submit(tracker, "c2")
    [rejected] = tracker.refused("c1", "throttled at the exchange", utc_now())
    assert rejected.status is OrderStatus.REJECTED
    assert [o.cl_ord_id for o in tracker.prune()] == ["c1"]
    assert tracker.get("c1") is None
    assert [o.cl_ord_id for o in tracker.all_orders()] == ["c2"]


def test_an_order_reopened_after_it_closed_is_not_forgotten_while_open() -> None:
    """Filled, then a bust: the answer to the question the unreadable bust made the gateway
    ask shows it partly filled at the venue: the order is open again, and prune keeps it
    until it closes."""
    tracker = OrderTracker(keep_closed=0)
    submit(tracker, "c1")
    tracker.apply_execution(
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    )
    tracker.reconcile(
        report(ExecKind.ORDER_STATUS, OrderStatus.PARTIALLY_FILLED, "0.4", "0.6", avg="100"),
        after_unreadable=True,
    )
    order = tracker.get("c1")
    assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED
    assert tracker.prune() == []
    assert tracker.get("c1") is order
    tracker.apply_execution(
        report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("0.6", "100"))
    )
    assert [o.cl_ord_id for o in tracker.prune()] == ["c1"]


def test_a_venues_pending_cancel_on_a_partly_filled_order_is_news(tracker: OrderTracker) -> None:
    """ExecType 6, OrdStatus 6: the order is shown pending_cancel, its fills kept; the
    venue's status under it is still partially filled."""
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.4",
            "0.6",
            avg="100",
            last=("0.4", "100"),
        )
    )
    [pending] = tracker.apply_execution(
        report(ExecKind.PENDING_CANCEL, OrderStatus.PENDING_CANCEL, "0.4", "0.6", avg="100")
    )
    assert (type(pending).__name__, pending.status, pending.cum_qty, pending.leaves_qty) == (
        "OrderPendingCancel",
        OrderStatus.PENDING_CANCEL,
        D("0.4"),
        D("0.6"),
    )
    order = tracker.get("c1")
    assert order is not None
    assert order.cancel_pending is not None and pending.cancel_cl_ord_id == order.cancel_pending
    assert (order.status, order.shown_status, order.cum_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        D("0.4"),
    )


def test_a_pending_cancel_showing_less_filled_than_known_is_still_stale(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.4",
            "0.6",
            last=("0.4", "100"),
        )
    )
    [stale] = tracker.apply_execution(
        report(ExecKind.PENDING_CANCEL, OrderStatus.PENDING_CANCEL, "0", "1.0")
    )
    assert stale.problem == "stale_report"
    order = tracker.get("c1")
    assert order is not None and (order.cancel_pending, order.cum_qty) == (None, D("0.4"))


def rejected_by_report(t: OrderTracker) -> list[Any]:
    return t.apply_execution(report(ExecKind.REJECTED, OrderStatus.REJECTED, "0", "0"))


def rejected_by_refusal(t: OrderTracker) -> list[Any]:
    return t.refused("c1", "refused", utc_now())


def rejected_as_unknown(t: OrderTracker) -> list[Any]:
    return t.reconcile(report(ExecKind.ORDER_STATUS, OrderStatus.REJECTED, "0", "0"))


@pytest.mark.parametrize(
    "reject",
    [rejected_by_report, rejected_by_refusal, rejected_as_unknown],
    ids=["report", "refusal", "unknown_at_exchange"],
)
def test_a_rejected_order_has_no_cancel_pending(tracker: OrderTracker, reject: Any) -> None:
    """Whatever closes an order ends the cancel out for it, as fills and cancels do: else the
    ack watchdog would ask the exchange about a closed order."""
    tracker.cancel_requested(cancel_of())
    [rejected] = reject(tracker)
    assert (type(rejected).__name__, rejected.status) == ("OrderRejected", OrderStatus.REJECTED)
    order = tracker.get("c1")
    assert order is not None and (order.status, order.cancel_pending) == (
        OrderStatus.REJECTED,
        None,
    )


def test_an_order_taken_for_never_delivered_that_the_venue_fills_after_all_is_filled(
    tracker: OrderTracker,
) -> None:
    """A venue killed mid-burst asks again for a NewOrderSingle its order book had kept: the
    gateway rejects it as not delivered, then the venue's status answer and fill say
    otherwise. The fill reaches clients as a fill, not as an anomaly."""
    [rejected] = tracker.refused("c1", "not resent", utc_now(), not_delivered=True)
    assert rejected.status is OrderStatus.REJECTED
    status = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "1.0")
    assert [e.status for e in tracker.apply_execution(status)] == [OrderStatus.NEW]
    fill = report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    assert types(tracker.apply_execution(fill)) == ["OrderFilled"]
    order = tracker.get("c1")
    assert order is not None and order.status is OrderStatus.FILLED


def test_a_fill_alone_revives_an_order_taken_for_never_delivered(tracker: OrderTracker) -> None:
    tracker.refused("c1", "not resent", utc_now(), not_delivered=True)
    fill = report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    assert types(tracker.apply_execution(fill)) == ["OrderFilled"]


def test_an_order_the_venue_refused_is_not_revived_by_a_late_report(tracker: OrderTracker) -> None:
    """Not pending again: the venue's execution on it is told, and the order stays closed."""
    tracker.refused("c1", "refused by the venue", utc_now())
    fill = report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    assert types(tracker.apply_execution(fill)) == ["OrderAnomaly", "OrderFilled"]
    order = tracker.get("c1")
    assert order is not None and not order.is_open


def test_a_status_answer_that_does_not_know_the_order_leaves_it_rejected(
    tracker: OrderTracker,
) -> None:
    tracker.refused("c1", "not resent", utc_now(), not_delivered=True)
    unknown = report(ExecKind.ORDER_STATUS, OrderStatus.REJECTED, "0", "0", order_id=None)
    tracker.apply_execution(unknown)
    order = tracker.get("c1")
    assert order is not None and order.status is OrderStatus.REJECTED


def unknown_at_exchange() -> ExecutionReport:
    """A status answer about an order the venue has not taken (yet): OrdStatus 8, no
    OrderID."""
    return report(
        ExecKind.ORDER_STATUS, OrderStatus.REJECTED, "0", "0", order_id=None, text="unknown order"
    )


@pytest.mark.parametrize("restarted", [False, True], ids=["in_session", "after_a_restart"])
def test_an_order_rejected_as_unknown_at_the_exchange_comes_back_with_its_ack_and_fill(
    tracker: OrderTracker, restarted: bool
) -> None:
    """Asked about before the venue acknowledged it (the ack watchdog, or reconciliation
    after a reconnect), the venue did not know the order yet: rejected, reason
    `unknown_at_exchange`, the gateway's inference. The venue then takes it and fills it:
    its ack and fill reach clients as any pending order's."""
    [rejected] = tracker.reconcile(unknown_at_exchange())
    assert (rejected.status, rejected.reason) == (
        OrderStatus.REJECTED,
        RejectReason.UNKNOWN_AT_EXCHANGE,
    )
    if restarted:
        journal = [submit(OrderTracker()), rejected]
        tracker = OrderTracker()
        tracker.restore(journal)
    accepted = tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    assert [(type(e).__name__, e.status) for e in accepted] == [("OrderAccepted", OrderStatus.NEW)]
    fill = report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    [filled] = tracker.apply_execution(fill)
    assert (type(filled).__name__, filled.cum_qty, filled.leaves_qty) == (
        "OrderFilled",
        D("1.0"),
        D("0"),
    )
    order = tracker.get("c1")
    assert order is not None and (order.status, order.order_id) == (OrderStatus.FILLED, "X1")


def test_an_order_the_venue_rejected_itself_is_not_revived_after_a_restart() -> None:
    """Only the gateway's own inferences come back: not the venue's reject."""
    tracker = OrderTracker()
    pending = submit(tracker)
    rejected = tracker.apply_execution(report(ExecKind.REJECTED, OrderStatus.REJECTED, "0", "0"))
    restarted = OrderTracker()
    restarted.restore([pending, *rejected])
    fill = report(ExecKind.FILL, OrderStatus.FILLED, "1.0", "0", avg="100", last=("1.0", "100"))
    assert types(restarted.apply_execution(fill)) == ["OrderAnomaly", "OrderFilled"]
    order = restarted.get("c1")
    assert order is not None and not order.is_open


def test_an_order_the_venue_acknowledged_as_pending_new_is_not_told_as_never_delivered(
    tracker: OrderTracker,
) -> None:
    """A plain FIX 4.4 venue's Pending New (ExecType A) under its OrderID says it has the
    order: asked for again, the NewOrderSingle is gap filled, and nothing is told; the
    venue's New then accepts it."""
    pending_new = report(ExecKind.NEW, OrderStatus.PENDING_NEW, "0", "1.0")
    assert [e.status for e in tracker.apply_execution(pending_new)] == [OrderStatus.PENDING_NEW]
    assert tracker.refused("c1", "not resent", utc_now(), not_delivered=True) == []
    order = tracker.get("c1")
    assert order is not None and (order.status, order.leaves_qty) == (
        OrderStatus.PENDING_NEW,
        D("1.0"),
    )
    accepted = tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    assert [(type(e).__name__, e.status) for e in accepted] == [("OrderAccepted", OrderStatus.NEW)]


def test_an_order_the_venue_refuses_after_its_pending_new_is_rejected(
    tracker: OrderTracker,
) -> None:
    """Only not_delivered spares an acknowledged order: the venue's own refusal (a session
    reject of the NewOrderSingle) still ends it."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.PENDING_NEW, "0", "1.0"))
    [rejected] = tracker.refused("c1", "refused", utc_now())
    assert (rejected.status, rejected.reason) == (OrderStatus.REJECTED, RejectReason.OTHER)


# ---------------------------------------------------------------- restatements


def restated(status: OrderStatus, qty: str, cum: str, leaves: str, **extra: Any) -> ExecutionReport:
    return report(ExecKind.RESTATED, status, cum, leaves, qty=D(qty), **extra)


def test_a_restatement_gives_the_order_the_venues_quantity_price_and_numbers(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    events = tracker.apply_execution(
        restated(
            OrderStatus.NEW,
            "0.6",
            "0",
            "0.6",
            price=D("99"),
            restatement_reason=RestatementReason.REPRICING,
            text="repriced",
        )
    )
    (event,) = events
    assert isinstance(event, OrderRestated)
    assert (event.qty, event.price, event.leaves_qty, event.reason, event.text) == (
        D("0.6"),
        D("99"),
        D("0.6"),
        RestatementReason.REPRICING,
        "repriced",
    )
    order = tracker.get("c1")
    assert order is not None
    assert (order.qty, order.price, order.leaves_qty, order.status) == (
        D("0.6"),
        D("99"),
        D("0.6"),
        OrderStatus.NEW,
    )


def test_a_restatement_showing_fills_not_reported_tells_them_as_one_fill_first(
    tracker: OrderTracker,
) -> None:
    """Fills are never invented nor dropped: the gap is surfaced, the fill told of the order
    as restated (its numbers add up), then the restatement."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    events = tracker.apply_execution(
        restated(OrderStatus.PARTIALLY_FILLED, "0.6", "0.2", "0.4", avg="100")
    )
    assert types(events) == ["OrderAnomaly", "OrderPartiallyFilled", "OrderRestated"]
    gap, fill, restatement = events
    assert gap.problem == "fill_gap" and "restatement" in gap.detail
    assert (fill.last_qty, fill.qty, fill.cum_qty, fill.leaves_qty) == (
        D("0.2"),
        D("0.6"),
        D("0.2"),
        D("0.4"),
    )
    assert (restatement.qty, restatement.cum_qty, restatement.status) == (
        D("0.6"),
        D("0.2"),
        OrderStatus.PARTIALLY_FILLED,
    )


def test_a_restatement_showing_less_filled_than_known_changes_nothing(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(
        report(ExecKind.TRADE, OrderStatus.PARTIALLY_FILLED, "0.3", "0.7", last=("0.3", "100"))
    )
    events = tracker.apply_execution(restated(OrderStatus.NEW, "0.6", "0", "0.6"))
    assert [e.problem for e in events] == ["stale_report"]
    order = tracker.get("c1")
    assert order is not None and (order.qty, order.cum_qty) == (D("1.0"), D("0.3"))


def test_a_restatement_canceling_the_order_ends_it_and_the_cancel_out(
    tracker: OrderTracker,
) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    tracker.cancel_requested(cancel_of("c1"))
    (event,) = tracker.apply_execution(
        restated(
            OrderStatus.CANCELED,
            "1.0",
            "0",
            "0",
            restatement_reason=RestatementReason.CANCEL_ON_TRADING_HALT,
        )
    )
    assert (event.status, event.leaves_qty) == (OrderStatus.CANCELED, D(0))
    order = tracker.get("c1")
    assert order is not None and not order.is_open and order.cancel_pending is None


def test_a_cancel_report_after_a_restatement_that_canceled_the_order_is_a_repeat(
    tracker: OrderTracker,
) -> None:
    """Also once the order is restored from the journal after a restart."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    journal = tracker.apply_execution(restated(OrderStatus.CANCELED, "1.0", "0", "0"))
    confirmed = report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", text="halted")
    assert tracker.apply_execution(confirmed) == []
    restarted = OrderTracker()
    restarted.restore([submit(OrderTracker()), *journal])
    assert restarted.apply_execution(confirmed) == []


@pytest.mark.parametrize("asked", ["order_status", "reconciled"])
def test_a_status_answer_with_another_quantity_restates_a_live_order(
    tracker: OrderTracker, asked: str
) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "0.6", qty=D("0.6"))
    events = (
        tracker.apply_execution(answer) if asked == "order_status" else tracker.reconcile(answer)
    )
    restatement = events[0]
    assert isinstance(restatement, OrderRestated)
    assert (restatement.qty, restatement.leaves_qty, restatement.reason) == (
        D("0.6"),
        D("0.6"),
        None,
    )
    assert "status answer" in (restatement.text or "")
    order = tracker.get("c1")
    assert order is not None and (order.qty, order.leaves_qty) == (D("0.6"), D("0.6"))


@pytest.mark.parametrize("asked", ["order_status", "reconciled"])
def test_a_status_answer_with_another_price_restates_a_live_order(
    tracker: OrderTracker, asked: str
) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "1.0", price=D("99.5"))
    events = (
        tracker.apply_execution(answer) if asked == "order_status" else tracker.reconcile(answer)
    )
    restatement = events[0]
    assert isinstance(restatement, OrderRestated)
    assert (restatement.price, restatement.qty, restatement.leaves_qty) == (
        D("99.5"),
        D("1.0"),
        D("1.0"),
    )
    assert "price 99.5 where the gateway held 100" in (restatement.text or "")
    order = tracker.get("c1")
    assert order is not None and order.price == D("99.5")


def test_a_status_answer_with_a_price_for_an_order_without_one_restates_nothing() -> None:
    """A market order has no price to change: a venue may write its fill price there."""
    tracker = OrderTracker()
    tracker.submit(
        msgspec.structs.replace(limit_buy("c1"), order_type=OrderType.MARKET, price=None)
    )
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1"))
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "1", price=D("100"))
    assert types(tracker.apply_execution(answer)) == ["OrderStatusReported"]


def test_a_status_answer_with_the_same_quantity_restates_nothing(tracker: OrderTracker) -> None:
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "1.0", qty=D("1.0"))
    assert types(tracker.apply_execution(answer)) == ["OrderStatusReported"]


def test_the_ids_of_forgotten_orders_are_refused_for_ten_times_keep_closed_more() -> None:
    """A closed order's cl_ord_id (or a cancel's) could be taken again the moment the order
    was forgotten: the exchange would see a ClOrdID twice."""
    tracker = OrderTracker(keep_closed=1)
    for n in range(13):
        submit(tracker, f"c{n}")
        tracker.apply_execution(
            report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0", cl_ord_id=f"c{n}", order_id=f"X{n}")
        )
        canceled_by_cancel(tracker, n)
        tracker.prune()
    assert [o.cl_ord_id for o in tracker.all_orders()] == ["c12"]
    # 12 orders forgotten, 2 ids each: the last 10 ids (c7 to c11 and their cancels) are kept
    for n in range(7, 12):
        for cl_ord_id in (f"c{n}", f"k{n}"):
            with pytest.raises(RequestError) as refused:
                tracker.refuse_if_in_use(cl_ord_id)
            assert refused.value.code == "duplicate_cl_ord_id"
    for n in range(7):
        tracker.refuse_if_in_use(f"c{n}")
        tracker.refuse_if_in_use(f"k{n}")


def test_with_keep_closed_0_the_ids_of_the_last_ten_forgotten_are_still_refused() -> None:
    """No closed order kept, and before, no id either: an order's ClOrdID could be taken
    again the moment it closed, and a FIX bridge OMS's order sent again was placed twice."""
    tracker = OrderTracker(keep_closed=0)
    for n in range(6):
        submit(tracker, f"c{n}")
        tracker.apply_execution(
            report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0", cl_ord_id=f"c{n}", order_id=f"X{n}")
        )
        canceled_by_cancel(tracker, n)
        tracker.prune()
    assert list(tracker.all_orders()) == []
    for n in range(1, 6):
        assert tracker.forgotten(f"c{n}") and tracker.forgotten(f"k{n}")
        with pytest.raises(RequestError):
            tracker.refuse_if_in_use(f"c{n}")
    assert not tracker.forgotten("c0")
    tracker.refuse_if_in_use("c0")


BIG = "999999999999999.999999999999999999"
"""The largest quantity the protocol takes: 33 digits, beyond the default context's 28."""


def test_quantities_of_33_digits_add_up_exactly() -> None:
    """A fill of all but 1e-18, after one of 1e-18, fills the order: no gap reported (cum_qty
    plus the fill was rounded to 28 digits, 1e15, and the venue's cum_qty did not match)."""
    tracker = OrderTracker()
    submit(tracker, qty=BIG, price="1")
    rest = "999999999999999.999999999999999998"
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", BIG))
    partial = report(
        ExecKind.PARTIAL_FILL,
        OrderStatus.PARTIALLY_FILLED,
        "0.000000000000000001",
        rest,
        last=("0.000000000000000001", "1"),
    )
    assert types(tracker.apply_execution(partial)) == ["OrderPartiallyFilled"]
    fill = report(ExecKind.FILL, OrderStatus.FILLED, BIG, "0", last=(rest, "1"))
    [filled] = tracker.apply_execution(fill)
    assert type(filled).__name__ == "OrderFilled"
    assert (filled.cum_qty, filled.last_qty, filled.avg_px) == (D(BIG), D(rest), D(1))


def test_a_fill_found_by_a_status_answer_has_its_exact_quantity() -> None:
    """What cum_qty moved by, every digit kept (in 28 digits it was 1e15)."""
    tracker = OrderTracker()
    submit(tracker, qty=BIG, price="1")
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", BIG))
    tracker.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "0.000000000000000001",
            "999999999999999.999999999999999998",
            avg="1",
            last=("0.000000000000000001", "1"),
        )
    )
    fill, _ = tracker.apply_execution(
        report(ExecKind.ORDER_STATUS, OrderStatus.FILLED, BIG, "0", avg="1")
    )
    assert (fill.last_qty, fill.last_px) == (D("999999999999999.999999999999999998"), D(1))


def test_an_anomaly_tells_its_quantities_as_plain_decimals(tracker: OrderTracker) -> None:
    """As the wire and the log have amounts: `0.00000001`, not `1E-8`."""
    tracker.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "1.0"))
    small = ("0.00000001", "100")
    tracker.apply_execution(
        report(ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, small[0], "1", last=small)
    )
    gap = report(ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED, "0.00000003", "1", last=small)
    anomaly = next(e for e in tracker.apply_execution(gap) if type(e).__name__ == "OrderAnomaly")
    assert anomaly.detail.startswith(
        "cum_qty moved from 0.00000001 to 0.00000003 but last_qty is 0.00000001:"
    ), anomaly.detail
