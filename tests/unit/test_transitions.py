"""The order state machine's table: every status and input has a rule, each rule ends, and
the tracker does what the table says for every pair."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from typing import Any

import msgspec
import pytest

from fixgw.domain import (
    TERMINAL_STATUSES,
    AnyEvent,
    CancelRejectReason,
    CancelRejectReport,
    ExecKind,
    ExecutionReport,
    OrderAnomaly,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRestated,
    OrderStatus,
    Side,
    TimeInForce,
    utc_now,
)
from fixgw.engine.order_index import UNTRACKED
from fixgw.engine.tracker import OrderTracker
from fixgw.engine.transitions import (
    ASKED_AFTER_UNPRICED,
    EXEC_INPUT,
    FILLS,
    NO_ORDER,
    ON_REPORT,
    OPEN,
    RECONCILING,
    STATES,
    TABLE,
    Cancel,
    Emit,
    Input,
    Problem,
    Rule,
    State,
    To,
    anomaly,
    build,
    end,
    row,
)
from fixgw.errors import RequestError
from tests.unit.orders_made import cancel_of, limit_buy

PAIRS = list(itertools.product(STATES, Input))
ANSWERS = (
    Input.ORDER_STATUS,
    Input.RECONCILED,
    Input.RECONCILED_AFTER_UNREADABLE,
    Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG,
)
"""The inputs that are a status answer."""
GATEWAY_INPUTS = {
    Input.SUBMITTED,
    Input.CANCEL_REQUESTED,
    Input.CANCEL_UNSENT,
    Input.CANCEL_REJECTED,
    Input.CANCEL_UNDELIVERED,
    Input.ACKED_CANCEL_ASKED_AGAIN,
    Input.REFUSED,
    Input.ACKED_ORDER_ASKED_AGAIN,
    Input.WITHDRAWN,
}


def pair_id(pair: tuple[State, Input]) -> str:
    return f"{pair[0] or 'no_order'}-{pair[1]}"


def outline(rule: Rule) -> list[tuple[str | None, To, Emit, Problem | None, bool]]:
    """A rule as (guard's name, to, emit, problem, last) per step."""
    return [(s.when.__name__ if s.when else None, s.to, s.emit, s.problem, s.last) for s in rule]


# ------------------------------------------------------------------ the table's shape


def test_every_status_and_input_has_a_rule_and_nothing_else_does() -> None:
    assert set(STATES) == {NO_ORDER, *OrderStatus}
    missing = [pair_id(p) for p in PAIRS if p not in TABLE]
    assert missing == []
    assert set(TABLE) == set(PAIRS)


def test_two_rows_for_one_pair_are_refused() -> None:
    rows = (
        row(OrderStatus.NEW, Input.FILL, anomaly(Problem.STALE_FILL)),
        row((OrderStatus.FILLED, OrderStatus.NEW), Input.FILL, end(To.SAME, Emit.NOTHING)),
    )
    with pytest.raises(ValueError, match="two rows for new and fill"):
        build(rows)


def test_every_rule_ends_in_a_step_that_always_holds_and_has_no_step_past_it() -> None:
    for pair in PAIRS:
        *before, final = TABLE[pair]
        assert final.when is None and final.last, pair_id(pair)
        assert all(s.when is not None or not s.last for s in before), pair_id(pair)


def test_every_exec_kind_is_an_input_looked_up_by_kind() -> None:
    assert set(EXEC_INPUT) == set(ExecKind)
    assert len(set(EXEC_INPUT.values())) == len(ExecKind)
    for state, kind in itertools.product(STATES, ExecKind):
        assert ON_REPORT[state, kind] is TABLE[state, EXEC_INPUT[kind]]


def test_anomalies_drops_and_refusals_leave_the_status_and_only_anomalies_name_a_problem() -> None:
    for pair in PAIRS:
        for step in TABLE[pair]:
            if step.emit in (Emit.ANOMALY, Emit.DROP, Emit.IN_USE):
                assert step.to is To.SAME, pair_id(pair)
            assert (step.problem is not None) == (step.emit is Emit.ANOMALY), pair_id(pair)


def test_only_a_status_answer_or_an_execution_moves_a_closed_order() -> None:
    """An execution moves it only to a closed status (`To.STAYS_CLOSED`): never reopened. So
    do the fills a status answer shows; only fills taken back (`Emit.TAKEN_BACK`, after an
    unreadable report) may reopen it."""
    moving = {
        (state, what)
        for state, what in PAIRS
        if state in TERMINAL_STATUSES and any(s.to is not To.SAME for s in TABLE[state, what])
    }
    assert moving == {(state, what) for state in TERMINAL_STATUSES for what in (*ANSWERS, *FILLS)}
    for state, what in itertools.product(TERMINAL_STATUSES, (*ANSWERS, *FILLS)):
        tos = {s.to for s in TABLE[state, what] if s.emit is not Emit.TAKEN_BACK}
        assert tos == {To.SAME, To.STAYS_CLOSED}, pair_id((state, what))


MAY_CLOSE = {To.REPORTED, To.FILLED_OR_PARTIALLY, To.FILLED_IF_ALL, To.CANCELED, To.REJECTED}


def test_a_rule_that_may_close_the_order_ends_the_cancel_out_for_it() -> None:
    """Each step that ends a rule in which the order may have closed clears the cancel flag
    (or clears it if closed): a closed order has no cancel pending."""
    keeping = [
        f"{pair_id(pair)} step {n}"
        for pair in PAIRS
        for n, step in enumerate(TABLE[pair])
        if step.last
        and any(s.to in MAY_CLOSE for s in TABLE[pair][: n + 1])
        and step.cancel not in (Cancel.CLEAR, Cancel.CLEAR_IF_CLOSED)
    ]
    assert keeping == []


def test_the_gateways_own_inputs_are_one_step_each() -> None:
    """The tracker applies these as the one step of their rule."""
    for state, what in itertools.product(STATES, GATEWAY_INPUTS):
        (step,) = TABLE[state, what]
        assert step.when is None and step.last


# ------------------------------------------------------------------ representative rules


@pytest.mark.parametrize(
    ("state", "what", "expected"),
    [
        (NO_ORDER, Input.SUBMITTED, [(None, To.PENDING_NEW, Emit.PENDING_NEW, None, True)]),
        (OrderStatus.FILLED, Input.SUBMITTED, [(None, To.SAME, Emit.IN_USE, None, True)]),
        (
            NO_ORDER,
            Input.FILL,
            [(None, To.SAME, Emit.ANOMALY, Problem.UNKNOWN_ORDER, True)],
        ),
        (
            OrderStatus.NEW,
            Input.PARTIAL_FILL,
            [
                ("fills_in_unpriced", To.SAME, Emit.FILLED_IN, None, True),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("adds_nothing", To.SAME, Emit.ANOMALY, Problem.STALE_FILL, True),
                ("skips_quantity", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("gap_unpriced", To.PARTIALLY_FILLED, Emit.UNPRICED_GAP, None, False),
                ("rises_past_fill", To.PARTIALLY_FILLED, Emit.GAP_FILL, None, False),
                ("cancels_rest", To.PARTIALLY_FILLED, Emit.FILL, None, False),
                ("cancels_rest", To.CANCELED, Emit.CANCELED, None, True),
                (None, To.FILLED_OR_PARTIALLY, Emit.FILL, None, True),
            ],
        ),
        (
            OrderStatus.PENDING_NEW,
            Input.NEW,
            [
                ("repeats", To.SAME, Emit.DROP, None, True),
                ("goes_back", To.SAME, Emit.ANOMALY, Problem.STALE_REPORT, True),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("filled_by_it", To.SAME, Emit.ACCEPTED, None, True),
                ("ends_order", To.OPEN, Emit.ACCEPTED, None, False),
                ("refused_untraded", To.REJECTED, Emit.REJECTED, None, True),
                ("ends_order", To.CANCELED, Emit.CANCELED, None, True),
                (None, To.REPORTED, Emit.ACCEPTED, None, True),
            ],
        ),
        (
            OrderStatus.CANCELED,
            Input.CANCELED,
            [
                ("repeats", To.SAME, Emit.DROP, None, True),
                (None, To.SAME, Emit.ANOMALY, Problem.REPORT_AFTER_CLOSE, True),
            ],
        ),
        (
            OrderStatus.FILLED,
            Input.TRADE,
            [
                ("fills_in_unpriced", To.SAME, Emit.FILLED_IN, None, True),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("adds_nothing", To.SAME, Emit.ANOMALY, Problem.REPORT_AFTER_CLOSE, True),
                (None, To.SAME, Emit.ANOMALY, Problem.REPORT_AFTER_CLOSE, False),
                ("skips_quantity", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("gap_unpriced", To.SAME, Emit.UNPRICED_GAP, None, False),
                ("rises_past_fill", To.SAME, Emit.GAP_FILL, None, False),
                (None, To.STAYS_CLOSED, Emit.FILL, None, True),
            ],
        ),
        (
            OrderStatus.NEW,
            Input.CANCELED,
            [
                ("repeats", To.SAME, Emit.DROP, None, True),
                ("goes_back", To.SAME, Emit.ANOMALY, Problem.STALE_REPORT, True),
                ("lives_past_the_day", To.SAME, Emit.ANOMALY, Problem.DONE_FOR_DAY, False),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("filled_by_it", To.SAME, Emit.NOTHING, None, True),
                ("lives_past_the_day", To.SAME, Emit.NOTHING, None, True),
                (None, To.CANCELED, Emit.CANCELED, None, True),
            ],
        ),
        (
            OrderStatus.PARTIALLY_FILLED,
            Input.REJECTED,
            [
                ("repeats", To.SAME, Emit.DROP, None, True),
                ("goes_back", To.SAME, Emit.ANOMALY, Problem.STALE_REPORT, True),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("filled_by_it", To.SAME, Emit.NOTHING, None, True),
                ("has_traded", To.CANCELED, Emit.CANCELED, None, True),
                (None, To.REJECTED, Emit.REJECTED, None, True),
            ],
        ),
        (
            OrderStatus.FILLED,
            Input.ORDER_STATUS,
            [
                ("shows_less", To.SAME, Emit.ANOMALY, Problem.STALE_STATUS, False),
                ("shows_less", To.SAME, Emit.STATUS, None, True),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more_unpriced", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.STAYS_CLOSED, Emit.MISSED_FILL, None, False),
                (None, To.SAME, Emit.STATUS, None, True),
            ],
        ),
        (
            OrderStatus.PENDING_NEW,
            Input.RECONCILED,
            [
                ("says_unknown", To.REJECTED, Emit.REJECTED_AS_UNKNOWN, None, True),
                ("says_acknowledged", To.NEW, Emit.ACCEPTED, None, False),
                ("changes_terms", To.SAME, Emit.RESTATED_AS_ANSWERED, None, False),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more_unpriced", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("cancels_open", To.CANCELED, Emit.CANCELED_AS_ANSWERED, None, False),
                ("cancel_still_out", To.SAME, Emit.ANOMALY, Problem.CANCEL_LOST, True),
                (None, To.SAME, Emit.NOTHING, None, True),
            ],
        ),
        (
            OrderStatus.PARTIALLY_FILLED,
            Input.RECONCILED,
            [
                ("says_unknown", To.SAME, Emit.ANOMALY, Problem.UNKNOWN_AT_EXCHANGE, True),
                ("shows_less", To.SAME, Emit.ANOMALY, Problem.STALE_STATUS, False),
                ("shows_less", To.SAME, Emit.NOTHING, None, True),
                ("changes_terms", To.SAME, Emit.RESTATED_AS_ANSWERED, None, False),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more_unpriced", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("cancels_open", To.CANCELED, Emit.CANCELED_AS_ANSWERED, None, False),
                ("cancel_still_out", To.SAME, Emit.ANOMALY, Problem.CANCEL_LOST, True),
                (None, To.SAME, Emit.NOTHING, None, True),
            ],
        ),
        (
            OrderStatus.FILLED,
            Input.RECONCILED_AFTER_UNREADABLE,
            [
                ("says_unknown", To.SAME, Emit.ANOMALY, Problem.UNKNOWN_AT_EXCHANGE, True),
                ("shows_less", To.SAME, Emit.ANOMALY, Problem.FILLS_TAKEN_BACK, False),
                ("shows_less", To.REPORTED, Emit.TAKEN_BACK, None, True),
                ("reprices", To.SAME, Emit.REPRICED, None, False),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more_unpriced", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.STAYS_CLOSED, Emit.MISSED_FILL, None, False),
                (None, To.SAME, Emit.NOTHING, None, True),
            ],
        ),
        (
            OrderStatus.NEW,
            Input.ORDER_STATUS,
            [
                ("says_unknown", To.SAME, Emit.ANOMALY, Problem.UNKNOWN_AT_EXCHANGE, True),
                ("shows_less", To.SAME, Emit.ANOMALY, Problem.STALE_STATUS, False),
                ("shows_less", To.SAME, Emit.STATUS, None, True),
                ("changes_terms", To.SAME, Emit.RESTATED_AS_ANSWERED, None, False),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more_unpriced", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("filled_by_it", To.SAME, Emit.STATUS, None, True),
                ("cancels_open", To.CANCELED, Emit.CANCELED_AS_ANSWERED, None, True),
                (None, To.REPORTED, Emit.STATUS, None, True),
            ],
        ),
        (
            OrderStatus.PARTIALLY_FILLED,
            Input.RESTATED,
            [
                ("pending_cancel_goes_back", To.SAME, Emit.ANOMALY, Problem.STALE_REPORT, True),
                ("shows_taken_back", To.SAME, Emit.RESTORED, None, False),
                ("shows_more", To.SAME, Emit.ANOMALY, Problem.FILL_GAP, False),
                ("shows_more", To.FILLED_IF_ALL, Emit.MISSED_FILL, None, False),
                ("filled_by_it", To.SAME, Emit.RESTATED, None, True),
                (None, To.REPORTED, Emit.RESTATED, None, True),
            ],
        ),
        (
            OrderStatus.CANCELED,
            Input.RESTATED,
            [(None, To.SAME, Emit.ANOMALY, Problem.REPORT_AFTER_CLOSE, True)],
        ),
        (
            OrderStatus.PARTIALLY_FILLED,
            Input.PENDING_CANCEL,
            [
                ("pending_cancel_goes_back", To.SAME, Emit.ANOMALY, Problem.STALE_REPORT, True),
                (None, To.SAME, Emit.PENDING_CANCEL, None, True),
            ],
        ),
        (OrderStatus.PENDING_NEW, Input.REFUSED, [(None, To.REJECTED, Emit.REJECTED, None, True)]),
        (OrderStatus.NEW, Input.REFUSED, [(None, To.SAME, Emit.NOTHING, None, True)]),
        (
            OrderStatus.PENDING_NEW,
            Input.ACKED_ORDER_ASKED_AGAIN,
            [(None, To.SAME, Emit.NOTHING, None, True)],
        ),
        (OrderStatus.NEW, Input.WITHDRAWN, [(None, To.CANCELED, Emit.CANCELED, None, True)]),
        (OrderStatus.CANCELED, Input.WITHDRAWN, [(None, To.SAME, Emit.NOTHING, None, True)]),
        (
            OrderStatus.FILLED,
            Input.CANCEL_REQUESTED,
            [(None, To.SAME, Emit.PENDING_CANCEL, None, True)],
        ),
        (NO_ORDER, Input.CANCEL_REJECTED, [(None, To.SAME, Emit.CANCEL_REJECTED, None, True)]),
        (
            OrderStatus.PENDING_CANCEL,
            Input.CANCEL_UNDELIVERED,
            [(None, To.SAME, Emit.CANCEL_REJECTED, None, True)],
        ),
        (
            OrderStatus.CANCELED,
            Input.CANCEL_UNDELIVERED,
            [(None, To.SAME, Emit.NOTHING, None, True)],
        ),
        (
            OrderStatus.PENDING_CANCEL,
            Input.ACKED_CANCEL_ASKED_AGAIN,
            [(None, To.SAME, Emit.NOTHING, None, True)],
        ),
    ],
    ids=lambda v: str(v) if not isinstance(v, list) else "",
)
def test_representative_rules(state: State, what: Input, expected: list[Any]) -> None:
    assert outline(TABLE[state, what]) == expected


# ------------------------------------------------------------------ the tracker follows it

_exec_ids = itertools.count(1)

KNOWN_CUM = {OrderStatus.PARTIALLY_FILLED: D("0.5"), OrderStatus.FILLED: D("1")}
"""What an order in each status has filled of its 1 (nothing unless named)."""

PLAIN_ANSWER = {
    Input.NEW: (ExecKind.NEW, OrderStatus.NEW),
    Input.PARTIAL_FILL: (ExecKind.PARTIAL_FILL, OrderStatus.PARTIALLY_FILLED),
    Input.FILL: (ExecKind.FILL, OrderStatus.FILLED),
    Input.TRADE: (ExecKind.TRADE, OrderStatus.PARTIALLY_FILLED),
    Input.PENDING_CANCEL: (ExecKind.PENDING_CANCEL, OrderStatus.PENDING_CANCEL),
    Input.CANCELED: (ExecKind.CANCELED, OrderStatus.CANCELED),
    Input.REJECTED: (ExecKind.REJECTED, OrderStatus.REJECTED),
}
"""The report of each input, with the status it says; a status answer and a restatement
agree with the order."""


def placed_in(state: State) -> OrderTracker:
    """A tracker holding order c1 (qty 1) in `state`, with no cancel out."""
    tracker = OrderTracker()
    if state is None:
        return tracker
    tracker.submit(limit_buy("c1"))
    order = tracker.get("c1")
    assert order is not None
    order.status = state
    order.cum_qty = KNOWN_CUM.get(state, D(0))
    order.avg_px = D(100) if order.cum_qty > 0 else D(0)
    order.leaves_qty = D(0) if state in TERMINAL_STATUSES else D(1) - order.cum_qty
    if state is not OrderStatus.PENDING_NEW:
        tracker.index.name(order, "X1")
    return tracker


def plain_report(state: State, what: Input) -> ExecutionReport:
    """A report that follows on from the order: fills add what they say, nothing is
    repeated, and a status answer agrees with the order."""
    known = KNOWN_CUM.get(state, D(0)) if state is not None else D(0)
    if what in ANSWERS:
        kind, status = ExecKind.ORDER_STATUS, state or OrderStatus.NEW
    elif what is Input.RESTATED:
        kind, status = ExecKind.RESTATED, state or OrderStatus.NEW
    else:  # the gateway's own inputs have no report: any will do
        kind, status = PLAIN_ANSWER.get(what, (ExecKind.NEW, OrderStatus.NEW))
    cum, last = known, None
    if kind in (ExecKind.PARTIAL_FILL, ExecKind.TRADE):
        cum, last = known + D("0.25"), D("0.25")
    elif kind is ExecKind.FILL:
        cum, last = D(1), D(1) - known
    closed = status in TERMINAL_STATUSES
    return ExecutionReport(
        exec_id=f"T{next(_exec_ids)}",
        kind=kind,
        status=status,
        cl_ord_id="c1",
        order_id="X1",
        symbol="BTC/USD",
        side=Side.BUY,
        cum_qty=cum,
        leaves_qty=D(0) if closed else D(1) - cum,
        avg_px=D(100),
        last_qty=last,
        last_px=D(100) if last is not None else None,
        ts=utc_now(),
    )


def applied(tracker: OrderTracker, what: Input, report: ExecutionReport) -> list[Any]:
    """What the tracker returns for `what` on order c1."""
    ts = utc_now()
    if what is Input.SUBMITTED:
        return [tracker.submit(limit_buy("c1"))]
    if what is Input.CANCEL_REQUESTED:
        event = tracker.cancel_requested(cancel_of("c1"))
        return [event] if event is not None else []
    if what is Input.CANCEL_UNSENT:
        tracker.cancel_unsent(cancel_of("c1"))
        return []
    if what is Input.CANCEL_REJECTED:
        return tracker.apply_cancel_reject(
            CancelRejectReport(
                cl_ord_id="k1",
                orig_cl_ord_id="c1",
                order_id=None,
                status=None,
                reason=CancelRejectReason.TOO_LATE_TO_CANCEL,
                ts=ts,
            )
        )
    if what is Input.CANCEL_UNDELIVERED:
        tracker.index.cancel_sent("k1", "c1")
        return tracker.refused("k1", "not resent", ts, not_delivered=True)
    if what is Input.ACKED_CANCEL_ASKED_AGAIN:
        tracker.index.cancel_sent("k1", "c1")
        tracker.index.cancel_acknowledged("k1")
        return tracker.refused("k1", "not resent", ts, not_delivered=True)
    if what is Input.REFUSED:
        return tracker.refused("c1", "refused", ts)
    if what is Input.ACKED_ORDER_ASKED_AGAIN:
        order = tracker.get("c1")
        if order is not None:
            tracker.index.name(order, "X1")  # acknowledged: a pending order, as Pending New
        return tracker.refused("c1", "not resent", ts, not_delivered=True)
    if what is Input.WITHDRAWN:
        return tracker.withdrawn("c1", "withdrawn", ts)
    if what is Input.UNTRACKED_CANCELED:
        tracker.index.cancel_sent("k1", UNTRACKED)
        elsewhere = msgspec.structs.replace(
            report,
            kind=ExecKind.CANCELED,
            status=OrderStatus.CANCELED,
            cl_ord_id="k1",
            orig_cl_ord_id="V-9",
            order_id="V-9",
        )
        return tracker.apply_execution(elsewhere)
    if what is Input.RECONCILED:
        return tracker.reconcile(report)
    if what is Input.RECONCILED_AFTER_UNREADABLE:
        return tracker.reconcile(report, after_unreadable=True)
    if what is Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG:
        return tracker.reconcile(report, after_unreadable=True, takes_back=False)
    return tracker.apply_execution(report)


EVENT_OF = {
    Emit.PENDING_NEW: "OrderPendingNew",
    Emit.ACCEPTED: "OrderAccepted",
    Emit.PENDING_CANCEL: "OrderPendingCancel",
    Emit.CANCELED: "OrderCanceled",
    Emit.CANCELED_AS_ANSWERED: "OrderCanceled",
    Emit.REJECTED: "OrderRejected",
    Emit.REJECTED_AS_UNKNOWN: "OrderRejected",
    Emit.STATUS: "OrderStatusReported",
    Emit.RESTATED: "OrderRestated",
    Emit.RESTATED_AS_ANSWERED: "OrderRestated",
    Emit.TAKEN_BACK: "OrderRestated",
    Emit.RESTORED: "OrderRestated",
    Emit.REPRICED: "OrderRestated",
    Emit.CANCEL_REJECTED: "OrderCancelRejected",
    Emit.ANOMALY: "OrderAnomaly",
}


def status_after(to: To, status: OrderStatus, report: ExecutionReport) -> OrderStatus:
    """`To` read independently of the tracker."""
    if to is To.SAME:
        return status
    if to is To.REPORTED:
        if report.status is OrderStatus.PENDING_CANCEL:  # a flag, never a status
            return OrderStatus.PARTIALLY_FILLED if report.cum_qty > 0 else OrderStatus.NEW
        if report.status is OrderStatus.PENDING_NEW and status is not OrderStatus.PENDING_NEW:
            return OrderStatus.PARTIALLY_FILLED if report.cum_qty > 0 else OrderStatus.NEW
        return report.status
    if to is To.OPEN:
        return OrderStatus.PARTIALLY_FILLED if report.cum_qty > 0 else OrderStatus.NEW
    all_filled = report.status is OrderStatus.FILLED or report.cum_qty >= D(1)
    if to is To.FILLED_OR_PARTIALLY:
        if all_filled:
            return OrderStatus.FILLED
        if report.status is OrderStatus.PARTIALLY_FILLED:
            return OrderStatus.PARTIALLY_FILLED
        return OrderStatus.FILLED if report.leaves_qty == 0 else OrderStatus.PARTIALLY_FILLED
    if to is To.STAYS_CLOSED:
        if all_filled:
            return OrderStatus.FILLED
        return OrderStatus.CANCELED if status is OrderStatus.REJECTED else status
    if to is To.FILLED_IF_ALL:
        done = report.status is OrderStatus.FILLED or report.cum_qty == D(1)
        return OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
    return OrderStatus(to.value)


def rest_canceling_report(
    state: State, what: Input, status: OrderStatus = OrderStatus.CANCELED
) -> ExecutionReport:
    """A fill of 0.25 more than known whose OrdStatus (`status`) ends the order, nothing
    left: the venue ended the rest in the same report."""
    known = KNOWN_CUM.get(state, D(0)) if state is not None else D(0)
    return msgspec.structs.replace(
        plain_report(state, what),
        status=status,
        cum_qty=known + D("0.25"),
        leaves_qty=D(0),
        last_qty=D("0.25"),
        last_px=D(100),
    )


def disagreement(state: State, what: Input, report: ExecutionReport | None = None) -> str | None:
    """How the tracker, given `report` (default: a plain input), departs from the table's
    rule; None if not."""
    tracker = placed_in(state)
    report = report or plain_report(state, what)
    order = tracker.get("c1")
    expected: list[str] = []
    problems: list[str] = []
    status = state
    refused = False
    for step in TABLE[state, what]:
        if step.when is not None and (order is None or not step.when(order, report)):
            continue
        if status is not None:
            status = status_after(step.to, status, report)
        if step.emit in (Emit.FILL, Emit.MISSED_FILL, Emit.GAP_FILL):
            filled = status is OrderStatus.FILLED
            expected.append("OrderFilled" if filled else "OrderPartiallyFilled")
        elif step.emit in EVENT_OF:
            expected.append(EVENT_OF[step.emit])
        if step.problem is not None:
            problems.append(step.problem.value)
        refused = step.emit is Emit.IN_USE
        if step.last:
            break
    if what is Input.SUBMITTED and state is NO_ORDER:
        status = OrderStatus.PENDING_NEW
    try:
        events = applied(tracker, what, report)
    except RequestError as e:
        return None if refused and e.code == "duplicate_cl_ord_id" else f"raised {e!r}"
    if refused:
        return "not refused"
    got = [type(e).__name__ for e in events]
    got_problems = [e.problem for e in events if isinstance(e, OrderAnomaly)]
    after = tracker.get("c1")
    got_status = after.status if after is not None else None
    if (got, got_problems, got_status) != (expected, problems, status):
        return f"{got} {got_problems} {got_status}, not {expected} {problems} {status}"
    return None


def test_the_tracker_does_what_the_table_says_for_every_pair() -> None:
    """Every (status, input) pair, each with an input that follows on from the order: the
    events, anomalies and status the tracker gives are those the rule's steps name."""
    wrong = {pair_id(p): why for p in PAIRS if (why := disagreement(*p)) is not None}
    assert wrong == {}


@pytest.mark.parametrize("what", FILLS)
@pytest.mark.parametrize("says", [OrderStatus.CANCELED, OrderStatus.REJECTED])
def test_the_tracker_does_what_the_table_says_for_a_fill_that_cancels_the_rest(
    what: Input, says: OrderStatus
) -> None:
    """The other way of the `cancels_rest` steps: every status, given a fill whose OrdStatus
    is Canceled, or Rejected, with quantity left unfilled."""
    wrong = {
        pair_id((state, what)): why
        for state in STATES
        if (why := disagreement(state, what, rest_canceling_report(state, what, says))) is not None
    }
    assert wrong == {}


@pytest.mark.parametrize("what", FILLS)
@pytest.mark.parametrize("says", [OrderStatus.CANCELED, OrderStatus.REJECTED])
@pytest.mark.parametrize(
    ("cum", "expected"),
    [
        ("0.25", ["OrderPartiallyFilled", "OrderCanceled"]),
        ("1", ["OrderFilled"]),
    ],
    ids=["rest_left", "all_filled"],
)
def test_a_fill_saying_canceled_is_a_partial_fill_then_a_cancel_unless_all_is_filled(
    what: Input, says: OrderStatus, cum: str, expected: list[str]
) -> None:
    """Also a fill saying rejected: the order traded, so only its rest was refused."""
    tracker = placed_in(OrderStatus.NEW)
    report = msgspec.structs.replace(
        rest_canceling_report(OrderStatus.NEW, what, says), cum_qty=D(cum), last_qty=D(cum)
    )
    events = tracker.apply_execution(report)
    assert [type(e).__name__ for e in events] == expected
    order = tracker.get("c1")
    assert order is not None
    last_status = OrderStatus.CANCELED if len(expected) == 2 else OrderStatus.FILLED
    assert (order.status, order.cum_qty, order.leaves_qty) == (last_status, D(cum), D(0))


# ------------------------------------------------------------------ a closed order's cancel flag


def inputs_to_close() -> list[tuple[Input, OrderStatus | None]]:
    """Every input; a status answer once of every status (None: the plain input)."""
    return [(what, None) for what in Input if what not in ANSWERS] + [
        (what, says) for what in ANSWERS for says in OrderStatus
    ]


def answering(report: ExecutionReport, says: OrderStatus) -> ExecutionReport:
    """`report`, a status answer, saying `says` (all filled if FILLED, nothing left if
    closed)."""
    closed = says in TERMINAL_STATUSES
    return msgspec.structs.replace(
        report,
        status=says,
        cum_qty=D(1) if says is OrderStatus.FILLED else report.cum_qty,
        leaves_qty=D(0) if closed else report.leaves_qty,
    )


@pytest.mark.parametrize("state", [s for s in OPEN if s is not None])
def test_whatever_closes_an_order_ends_the_cancel_out_for_it(state: OrderStatus) -> None:
    """An open order with a cancel out, given every input: if it closes, no cancel is pending
    on it any more (else the ack watchdog would ask about a closed order)."""
    kept: list[str] = []
    for what, says in inputs_to_close():
        tracker = placed_in(state)
        tracker.cancel_requested(cancel_of("c1"))
        report = plain_report(state, what)
        if says is not None:
            report = answering(report, says)
        try:
            applied(tracker, what, report)
        except RequestError:
            continue  # SUBMITTED: refused, nothing changed
        order = tracker.get("c1")
        assert order is not None
        if order.status in TERMINAL_STATUSES and order.cancel_pending is not None:
            kept.append(f"{what} {says or ''}".strip())
    assert kept == []


def changed_report(state: State, what: Input, qty: str, more: str = "0") -> ExecutionReport:
    """A status answer or a restatement that follows on from the order but gives it the
    quantity `qty`, and shows `more` filled than known."""
    report = plain_report(state, what)
    cum = report.cum_qty + D(more)
    closed = report.status in TERMINAL_STATUSES
    return msgspec.structs.replace(
        report,
        qty=D(qty),
        cum_qty=cum,
        leaves_qty=D(0) if closed else max(D(0), D(qty) - cum),
    )


@pytest.mark.parametrize("what", (Input.RESTATED, Input.ORDER_STATUS, Input.RECONCILED))
@pytest.mark.parametrize(("qty", "more"), [("0.75", "0"), ("1", "0.25"), ("0.9", "0.25")])
def test_the_tracker_does_what_the_table_says_for_a_changed_quantity_or_unseen_fills(
    what: Input, qty: str, more: str
) -> None:
    """The other way of the `changes_terms` and `shows_more` steps: every status, given a
    report with another quantity, or more filled than known, or both."""
    wrong = {
        pair_id((state, what)): why
        for state in STATES
        if (why := disagreement(state, what, changed_report(state, what, qty, more))) is not None
    }
    assert wrong == {}


@pytest.mark.parametrize("what", ANSWERS)
@pytest.mark.parametrize("says", [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED])
def test_the_tracker_does_what_the_table_says_for_an_answer_showing_less_filled(
    what: Input, says: OrderStatus
) -> None:
    """The other way of the `shows_less` steps: every status, given a status answer that
    shows less filled than known, live. Only the answer asked for after an unreadable report
    takes fills back; the others leave the order as it was."""
    wrong = {}
    for state in STATES:
        known = KNOWN_CUM.get(state, D(0)) if state is not None else D(0)
        less = msgspec.structs.replace(
            plain_report(state, what),
            status=says,
            cum_qty=known / 2,
            leaves_qty=D(1) - known / 2,
        )
        if (why := disagreement(state, what, less)) is not None:
            wrong[pair_id((state, what))] = why
    assert wrong == {}


@pytest.mark.parametrize("cancel_out", [False, True], ids=["no_cancel", "cancel_out"])
@pytest.mark.parametrize(
    "what",
    [Input.ORDER_STATUS, Input.RECONCILED, Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG],
)
def test_an_answer_saying_canceled_with_less_filled_than_told_changes_nothing(
    what: Input, cancel_out: bool
) -> None:
    """0.5 of 1 filled at 100 and told, a cancel out or not; the answer, lagging the venue's
    reports, says Canceled with CumQty 0. Whoever asked (a client, reconciliation after a
    logon, the ack watchdog after a cancel went unanswered), it is a `stale_status` and
    changes nothing: the order keeps its fills, its status and its cancel out. Before the
    fix the gateway's own question took the answer: canceled with cum_qty 0, the fill told
    still in `trades`."""
    tracker = placed_in(OrderStatus.PARTIALLY_FILLED)
    if cancel_out:
        tracker.cancel_requested(cancel_of("c1"))
    lagging = msgspec.structs.replace(
        plain_report(OrderStatus.PARTIALLY_FILLED, what),
        status=OrderStatus.CANCELED,
        cum_qty=D(0),
        leaves_qty=D(0),
        avg_px=D(0),
    )
    if what is Input.ORDER_STATUS:
        events = tracker.apply_execution(lagging)
    else:
        unread = what is Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG
        events = tracker.reconcile(lagging, after_unreadable=unread, takes_back=False)
    assert [e.problem for e in events if isinstance(e, OrderAnomaly)] == ["stale_status"]
    assert not [e for e in events if isinstance(e, OrderCanceled | OrderRestated)]
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty, order.avg_px) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.5"),
        D("0.5"),
        D(100),
    )
    assert order.cancel_pending == ("k1" if cancel_out else None)


def test_fills_taken_back_reopen_a_filled_order_with_the_venues_numbers() -> None:
    tracker = placed_in(OrderStatus.FILLED)
    answer = msgspec.structs.replace(
        plain_report(OrderStatus.FILLED, Input.RECONCILED_AFTER_UNREADABLE),
        status=OrderStatus.NEW,
        cum_qty=D(0),
        leaves_qty=D(1),
        avg_px=D(0),
    )
    taken_back, restated = tracker.reconcile(answer, after_unreadable=True)
    assert isinstance(taken_back, OrderAnomaly) and taken_back.problem == "fills_taken_back"
    assert taken_back.detail.startswith("1 of the fills taken back")
    assert (restated.status, restated.cum_qty, restated.leaves_qty, restated.avg_px) == (
        OrderStatus.NEW,
        D(0),
        D(1),
        D(0),
    )
    assert [o.cl_ord_id for o in tracker.open_orders()] == ["c1"]


@pytest.mark.parametrize("what", ANSWERS)
def test_fills_taken_back_that_an_answer_shows_again_make_the_order_partially_filled_again(
    what: Input,
) -> None:
    """0.5 filled, taken back by an answer after an unreadable report (the order new again,
    nothing filled); a later answer shows the 0.5 filled after all (the first lagged): it is
    restored, not told again, and the order, in the event telling it too, is partially
    filled, never new with 0.5 filled; so is it after a replay of the journal."""
    tracker = placed_in(OrderStatus.PARTIALLY_FILLED)
    bust = msgspec.structs.replace(
        plain_report(OrderStatus.PARTIALLY_FILLED, Input.RECONCILED_AFTER_UNREADABLE),
        status=OrderStatus.NEW,
        cum_qty=D(0),
        leaves_qty=D(1),
        avg_px=D(0),
    )
    events = tracker.reconcile(bust, after_unreadable=True)
    shown_again = plain_report(OrderStatus.PARTIALLY_FILLED, what)
    events += answered(tracker, what, shown_again)
    [restored] = [e for e in events if isinstance(e, OrderRestated)][1:]
    assert "restored as told before" in (restored.text or "")
    assert (restored.status, restored.cum_qty, restored.leaves_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.5"),
        D("0.5"),
    )
    assert not [e for e in events if isinstance(e, OrderPartiallyFilled | OrderFilled)]
    order = tracker.get("c1")
    assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED
    again = restored_from(events).get("c1")
    assert again is not None and again.status is OrderStatus.PARTIALLY_FILLED


def answered(tracker: OrderTracker, what: Input, answer: ExecutionReport) -> list[Any]:
    if what is Input.ORDER_STATUS:
        return tracker.apply_execution(answer)
    return tracker.reconcile(answer, after_unreadable=what is Input.RECONCILED_AFTER_UNREADABLE)


@pytest.mark.parametrize("what", ANSWERS)
@pytest.mark.parametrize(
    ("cum", "told", "status"),
    [("0.25", "OrderPartiallyFilled", OrderStatus.CANCELED), ("1", "OrderFilled", None)],
    ids=["some", "all"],
)
def test_a_status_answer_showing_more_filled_on_a_canceled_order_keeps_it_closed(
    what: Input, cum: str, told: str, status: OrderStatus | None
) -> None:
    """A trade that crossed the cancel, learned from the venue's answer (canceled, more
    filled, nothing left), whoever asked: told once, as an execution on a closed order is,
    and the order stays canceled (filled, if all is), nothing left open, no second cancel."""
    tracker = placed_in(OrderStatus.CANCELED)
    answer = msgspec.structs.replace(
        plain_report(OrderStatus.CANCELED, what), cum_qty=D(cum), leaves_qty=D(0)
    )
    events = answered(tracker, what, answer)
    fills = [e for e in events if type(e).__name__ in ("OrderPartiallyFilled", "OrderFilled")]
    assert [type(e).__name__ for e in fills] == [told]
    closed = status or OrderStatus.FILLED
    assert (fills[0].status, fills[0].cum_qty, fills[0].leaves_qty) == (closed, D(cum), D(0))
    assert fills[0].last_qty == D(cum)
    assert not any(type(e).__name__ == "OrderCanceled" for e in events)
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty) == (closed, D(cum), D(0))


@pytest.mark.parametrize("what", ANSWERS)
def test_a_status_answer_saying_open_with_more_filled_on_a_canceled_order_keeps_it_closed(
    what: Input,
) -> None:
    tracker = placed_in(OrderStatus.CANCELED)
    answer = msgspec.structs.replace(
        plain_report(OrderStatus.CANCELED, what),
        status=OrderStatus.PARTIALLY_FILLED,
        cum_qty=D("0.25"),
        leaves_qty=D("0.75"),
    )
    answered(tracker, what, answer)
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty) == (
        OrderStatus.CANCELED,
        D("0.25"),
        D(0),
    )


@pytest.mark.parametrize("what", ANSWERS)
@pytest.mark.parametrize(
    ("state", "says"),
    [
        (OrderStatus.FILLED, OrderStatus.CANCELED),
        (OrderStatus.CANCELED, OrderStatus.FILLED),
        (OrderStatus.CANCELED, OrderStatus.REJECTED),
    ],
)
def test_a_status_answer_never_switches_a_closed_order_to_another_closed_status(
    what: Input, state: OrderStatus, says: OrderStatus
) -> None:
    """The same fills, another closed status: clients (and an OMS) were told the order's
    status, and an answer only its asker sees does not change it."""
    tracker = placed_in(state)
    order = tracker.get("c1")
    assert order is not None
    order.cum_qty = D(1)  # a cancel that carried the whole quantity, for the canceled one
    answer = msgspec.structs.replace(
        plain_report(state, what), status=says, cum_qty=D(1), leaves_qty=D(0)
    )
    answered(tracker, what, answer)
    assert order.status is state


@pytest.mark.parametrize("cum", ["0", "0.5"])
def test_a_bust_answer_saying_pending_cancel_reopens_the_order_with_a_status_restore_agrees_on(
    cum: str,
) -> None:
    """OrdStatus Pending Cancel is what a cancel flag shows, never an order's status: the
    order takes the open status its numbers show, as the journal's replay reads it."""
    tracker = placed_in(OrderStatus.FILLED)
    answer = msgspec.structs.replace(
        plain_report(OrderStatus.FILLED, Input.RECONCILED_AFTER_UNREADABLE),
        status=OrderStatus.PENDING_CANCEL,
        cum_qty=D(cum),
        leaves_qty=D(1) - D(cum),
    )
    events = tracker.reconcile(answer, after_unreadable=True)
    order = tracker.get("c1")
    assert order is not None
    status = OrderStatus.PARTIALLY_FILLED if D(cum) else OrderStatus.NEW
    assert order.status is status
    restored = OrderTracker()
    restored.restore(events)
    again = restored.get("c1")
    assert again is not None and again.status is status


def ack_saying(status: OrderStatus, cum: str) -> ExecutionReport:
    """A plain FIX 4.4 ack (ExecType 0) of pending order c1 written after the order traded
    or ended: its OrdStatus and numbers the order's state after that."""
    return msgspec.structs.replace(
        plain_report(OrderStatus.PENDING_NEW, Input.NEW),
        status=status,
        cum_qty=D(cum),
        leaves_qty=D(0) if status in TERMINAL_STATUSES else D(1) - D(cum),
    )


def told(events: list[Any]) -> list[tuple[str, OrderStatus | str | None, D | None]]:
    return [
        (
            type(e).__name__,
            e.problem if isinstance(e, OrderAnomaly) else e.status,
            getattr(e, "last_qty", None),
        )
        for e in events
    ]


@pytest.mark.parametrize(
    ("status", "cum", "expected"),
    [
        (
            OrderStatus.FILLED,
            "1",
            [
                ("OrderAnomaly", "fill_gap", None),
                ("OrderFilled", OrderStatus.FILLED, D(1)),
                ("OrderAccepted", OrderStatus.FILLED, None),
            ],
        ),
        (
            OrderStatus.PARTIALLY_FILLED,
            "0.25",
            [
                ("OrderAnomaly", "fill_gap", None),
                ("OrderPartiallyFilled", OrderStatus.PARTIALLY_FILLED, D("0.25")),
                ("OrderAccepted", OrderStatus.PARTIALLY_FILLED, None),
            ],
        ),
        (
            OrderStatus.CANCELED,
            "0",
            [
                ("OrderAccepted", OrderStatus.NEW, None),
                ("OrderCanceled", OrderStatus.CANCELED, None),
            ],
        ),
        (
            OrderStatus.CANCELED,
            "0.25",
            [
                ("OrderAnomaly", "fill_gap", None),
                ("OrderPartiallyFilled", OrderStatus.PARTIALLY_FILLED, D("0.25")),
                ("OrderAccepted", OrderStatus.PARTIALLY_FILLED, None),
                ("OrderCanceled", OrderStatus.CANCELED, None),
            ],
        ),
        (
            OrderStatus.REJECTED,
            "0",
            [
                ("OrderAccepted", OrderStatus.NEW, None),
                ("OrderRejected", OrderStatus.REJECTED, None),
            ],
        ),
        (
            OrderStatus.CANCELED,
            "1",
            [
                ("OrderAnomaly", "fill_gap", None),
                ("OrderFilled", OrderStatus.FILLED, D(1)),
                ("OrderAccepted", OrderStatus.FILLED, None),
            ],
        ),
    ],
    ids=[
        "filled",
        "partially_filled",
        "canceled",
        "canceled_after_a_fill",
        "rejected",
        "canceled_all_filled",
    ],
)
def test_an_ack_written_after_the_order_traded_or_ended_tells_the_fills_and_the_end(
    status: OrderStatus, cum: str, expected: list[Any]
) -> None:
    """Fills told add up to cum_qty, and an order is never told closed without the event
    that closed it, whatever the ack's OrdStatus says; all filled, it is filled (FIX 4.4
    ranks Filled above Canceled), never reopened and canceled after `order.filled`."""
    tracker = placed_in(OrderStatus.PENDING_NEW)
    events = tracker.apply_execution(ack_saying(status, cum))
    assert told(events) == expected
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty) == (expected[-1][1], D(cum))


@pytest.mark.parametrize("what", [Input.ORDER_STATUS, *RECONCILING, Input.RESTATED])
@pytest.mark.parametrize("says", [OrderStatus.CANCELED, OrderStatus.PARTIALLY_FILLED])
@pytest.mark.parametrize("state", [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED])
def test_an_answer_or_restatement_showing_all_filled_leaves_the_order_filled(
    state: OrderStatus, says: OrderStatus, what: Input
) -> None:
    """A status answer, whoever asked, or a restatement showing the order's whole quantity
    filled while its OrdStatus says Canceled or Partially Filled: the fills missed are one
    `order.filled`, and nothing after it in the same answer moves the order on from filled
    (FIX 4.4 ranks Filled above both). Before the fix a client's answer, and a restatement,
    told `order.filled` and then the order canceled, or partially filled again."""
    tracker = placed_in(state)
    answer = msgspec.structs.replace(
        plain_report(state, what), status=says, cum_qty=D(1), leaves_qty=D(0)
    )
    events = answered(tracker, what, answer) if what in ANSWERS else applied(tracker, what, answer)
    told = [e for e in events if not isinstance(e, OrderAnomaly)]
    assert isinstance(told[0], OrderFilled) and told[0].last_qty == D(1) - KNOWN_CUM.get(
        state, D(0)
    )
    assert [e.status for e in told] == [OrderStatus.FILLED] * len(told)
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty) == (OrderStatus.FILLED, D(1), D(0))


@pytest.mark.parametrize(
    ("what", "says"),
    [
        (Input.CANCELED, OrderStatus.CANCELED),
        (Input.CANCELED, OrderStatus.FILLED),
        (Input.REJECTED, OrderStatus.REJECTED),
        (Input.REJECTED, OrderStatus.FILLED),
    ],
)
@pytest.mark.parametrize("state", [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED])
def test_a_cancel_or_reject_showing_all_filled_leaves_the_order_filled(
    state: OrderStatus, what: Input, says: OrderStatus
) -> None:
    """A cancel or reject report (ExecType 4, C, 8) showing the order's whole quantity
    filled, a fill report missed before it: the fills missed are one `order.filled`, and no
    `order.canceled` or `order.rejected` follows (FIX 4.4 ranks Filled above both), as for
    an ack, an answer or a restatement. Before the fix the fill was told partial, with
    nothing left, and the order ended canceled."""
    tracker = placed_in(state)
    report = msgspec.structs.replace(
        plain_report(state, what), status=says, cum_qty=D(1), leaves_qty=D(0), avg_px=D(100)
    )
    events = tracker.apply_execution(report)
    told = [e for e in events if not isinstance(e, OrderAnomaly)]
    assert [(type(e).__name__, e.status, e.last_qty) for e in told] == [
        ("OrderFilled", OrderStatus.FILLED, D(1) - KNOWN_CUM.get(state, D(0)))
    ]
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty) == (OrderStatus.FILLED, D(1), D(0))


@pytest.mark.parametrize("state", [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED])
def test_a_status_answer_saying_pending_new_never_moves_an_acked_order_back(
    state: OrderStatus,
) -> None:
    tracker = placed_in(state)
    answer = msgspec.structs.replace(
        plain_report(state, Input.ORDER_STATUS), status=OrderStatus.PENDING_NEW
    )
    (status,) = tracker.apply_execution(answer)
    assert status.status is state
    order = tracker.get("c1")
    assert order is not None and order.status is state


@pytest.mark.parametrize("state", [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED])
def test_an_answer_after_an_unreadable_report_repricing_the_fills_is_applied(
    state: OrderStatus,
) -> None:
    """A trade correction (ExecType G) is unreadable; the answer to the question it made the
    gateway ask shows the same fills at the corrected average price."""
    tracker = placed_in(state)
    answer = msgspec.structs.replace(
        plain_report(state, Input.RECONCILED_AFTER_UNREADABLE), avg_px=D(99)
    )
    (restated,) = tracker.reconcile(answer, after_unreadable=True)
    assert isinstance(restated, OrderRestated) and restated.reason is None
    assert (restated.status, restated.cum_qty, restated.avg_px) == (state, KNOWN_CUM[state], D(99))
    assert "average price changed" in (restated.text or "")
    plain = plain_report(state, Input.RECONCILED)
    assert tracker.reconcile(msgspec.structs.replace(plain, avg_px=D(98))) == []


@pytest.mark.parametrize("avg_px", ["0", "50"], ids=["avg_px_0", "avg_px_below_the_fills"])
@pytest.mark.parametrize(
    ("state", "what"),
    [
        *(
            (OrderStatus.PARTIALLY_FILLED, what)
            for what in (Input.NEW, Input.CANCELED, Input.REJECTED, Input.RESTATED, *ANSWERS)
        ),
        *((OrderStatus.FILLED, what) for what in ANSWERS),
    ],
    ids=str,
)
def test_fills_a_report_shows_at_no_price_it_gives_are_never_told_as_a_fill(
    state: OrderStatus, what: Input, avg_px: str
) -> None:
    """An ack, a cancel, a reject, a restatement or a status answer showing 0.25 more filled
    than the 0.5 known at 100 (or the 1), at AvgPx 0 or at one that leaves no price above 0
    for the 0.25 (50): no fill, the gap surfaced, the order's cum_qty the report's, told as
    `order.restated`. Before the fix the 0.25 was a fill at 0, or at a negative price."""
    tracker = placed_in(state)
    report = plain_report(state, what)
    if report.kind is ExecKind.NEW:
        report = msgspec.structs.replace(report, status=OrderStatus.PARTIALLY_FILLED)
    report = msgspec.structs.replace(report, cum_qty=report.cum_qty + D("0.25"), avg_px=D(avg_px))
    events = applied(tracker, what, report)
    assert [e for e in events if isinstance(e, OrderPartiallyFilled | OrderFilled)] == []
    [gap] = [e for e in events if isinstance(e, OrderAnomaly) and e.problem == "fill_gap"]
    assert "0.25 filled at a price the exchange does not give" in gap.detail
    [restated] = [e for e in events if isinstance(e, OrderRestated)][:1]
    assert restated.cum_qty == report.cum_qty
    order = tracker.get("c1")
    assert order is not None and order.cum_qty == report.cum_qty
    assert tracker.unpriced is order


@pytest.mark.parametrize(
    ("state", "what"),
    [
        *(
            (OrderStatus.PARTIALLY_FILLED, what)
            for what in (Input.NEW, Input.CANCELED, Input.REJECTED, Input.RESTATED, *ANSWERS)
        ),
        *((OrderStatus.FILLED, what) for what in ANSWERS),
    ],
    ids=str,
)
def test_a_fill_shown_at_no_price_is_told_once_when_its_own_report_gives_the_price(
    state: OrderStatus, what: Input
) -> None:
    """After a report showing 0.25 more filled at AvgPx 0, the fill's own report comes late
    (LastQty 0.25 at 90, CumQty adding nothing): told once at 90, cum_qty as it was, the
    average that of the fills told. Another report of 0.25 adds nothing: already counted.
    Before the fix the late report was already counted too, and the 0.25 never told."""
    tracker = placed_in(state)
    report = plain_report(state, what)
    if report.kind is ExecKind.NEW:
        report = msgspec.structs.replace(report, status=OrderStatus.PARTIALLY_FILLED)
    report = msgspec.structs.replace(report, cum_qty=report.cum_qty + D("0.25"), avg_px=D(0))
    applied(tracker, what, report)
    order = tracker.get("c1")
    assert order is not None and order.unpriced_qty == D("0.25")
    status_before = order.status

    def late_fill() -> ExecutionReport:
        return msgspec.structs.replace(
            plain_report(OrderStatus.PARTIALLY_FILLED, Input.PARTIAL_FILL),
            cum_qty=report.cum_qty,
            last_qty=D("0.25"),
            last_px=D(90),
            avg_px=D(0),
        )

    events = tracker.apply_execution(late_fill())
    [fill] = [e for e in events if isinstance(e, OrderPartiallyFilled | OrderFilled)]
    assert (fill.last_qty, fill.last_px, fill.cum_qty) == (D("0.25"), D(90), report.cum_qty)
    assert (fill.status, order.unpriced_qty) == (status_before, D(0))
    known = KNOWN_CUM[state]
    assert order.avg_px == (known * 100 + D("0.25") * 90) / (known + D("0.25"))
    again = tracker.apply_execution(late_fill())
    assert [e for e in again if isinstance(e, OrderPartiallyFilled | OrderFilled)] == []
    assert order.cum_qty == report.cum_qty


def test_the_quantity_at_no_price_and_the_question_it_made_are_restored() -> None:
    """The journal's replay gives the order its quantity filled at no price, and the
    question the cancel showing it made the gateway ask (as after an unreadable report),
    until the fill's own report tells it and an `order.status` the answer."""
    tracker = OrderTracker()
    events: list[Any] = [tracker.submit(limit_buy("c1"))]
    events += tracker.apply_execution(plain_report(OrderStatus.PENDING_NEW, Input.NEW))
    canceled = msgspec.structs.replace(
        plain_report(OrderStatus.NEW, Input.CANCELED), cum_qty=D("0.25"), avg_px=D(0)
    )
    events += tracker.apply_execution(canceled)
    restored = OrderTracker()
    restored.restore(events)
    order = restored.get("c1")
    assert order is not None and (order.unpriced_qty, order.unread) == (D("0.25"), True)
    events += tracker.apply_execution(
        msgspec.structs.replace(
            plain_report(OrderStatus.NEW, Input.PARTIAL_FILL),
            last_px=D(90),
            cum_qty=D("0.25"),
            avg_px=D(0),
        )
    )
    answer = msgspec.structs.replace(
        plain_report(OrderStatus.CANCELED, Input.RECONCILED_AFTER_UNREADABLE),
        cum_qty=D("0.25"),
        avg_px=D(90),
    )
    held = tracker.get("c1")
    assert held is not None
    events += [*tracker.reconcile(answer, after_unreadable=True), tracker.stated(held, answer)]
    restored = OrderTracker()
    restored.restore(events)
    order = restored.get("c1")
    assert order is not None and (order.unpriced_qty, order.unread) == (D(0), False)
    assert order.avg_px == held.avg_px == D(90)


def restored_from(events: list[Any]) -> OrderTracker:
    restored = OrderTracker()
    restored.restore(events)
    return restored


def held_unpriced(tracker: OrderTracker) -> tuple[Any, ...]:
    """Order c1's cum_qty, its unpriced spans and its fills taken back."""
    order = tracker.get("c1")
    assert order is not None
    return order.cum_qty, order.unpriced_ranges, order.taken_back


def _fill_of(exec_id: str, cum: str, last: str, px: str, avg: str) -> ExecutionReport:
    return msgspec.structs.replace(
        plain_report(OrderStatus.NEW, Input.PARTIAL_FILL),
        exec_id=exec_id,
        cum_qty=D(cum),
        leaves_qty=D(1) - D(cum),
        last_qty=D(last),
        last_px=D(px),
        avg_px=D(avg),
    )


def e1_at_no_price(avg_px_answered: str | None) -> tuple[OrderTracker, list[Any]]:
    """An order for 1, its executions E1 0.25 at 100, E2 0.25 at 110, E3 0.25 at 120. A late
    ack shows E1's 0.25 at AvgPx 0; the answer to the question it makes the gateway ask
    gives the order's AvgPx (`avg_px_answered`), or has not come."""
    tracker = OrderTracker()
    events: list[Any] = [tracker.submit(limit_buy("c1"))]
    events += tracker.apply_execution(plain_report(OrderStatus.PENDING_NEW, Input.NEW))
    late_ack = msgspec.structs.replace(
        plain_report(OrderStatus.NEW, Input.NEW),
        status=OrderStatus.PARTIALLY_FILLED,
        cum_qty=D("0.25"),
        avg_px=D(0),
    )
    events += tracker.apply_execution(late_ack)
    if avg_px_answered is not None:
        answer = msgspec.structs.replace(
            plain_report(OrderStatus.PARTIALLY_FILLED, Input.RECONCILED_AFTER_UNREADABLE),
            cum_qty=D("0.25"),
            leaves_qty=D("0.75"),
            avg_px=D(avg_px_answered),
        )
        events += tracker.reconcile(answer, after_unreadable=True)
    return tracker, events


def test_where_in_cum_qty_the_unpriced_quantity_lies_is_kept_and_restored() -> None:
    """0.25 shown at no price (E1's) and then priced by the answer's AvgPx, then E3 (0.25 at
    120, CumQty 0.75) with E2's 0.25 as a gap fill, at 110: E2's late report lies in the gap
    fill's span, counted already; E1's in the unpriced span, told. Before the fix E2's was
    told as the unpriced quantity's and E1's dropped. A replay of the journal holds the
    spans as the tracker did."""
    tracker, events = e1_at_no_price(avg_px_answered="100")
    e3 = tracker.apply_execution(_fill_of("E3", "0.75", "0.25", "120", "110"))
    events += e3
    assert [(e.exec_id, e.last_px) for e in e3 if isinstance(e, OrderPartiallyFilled)] == [
        ("reconciled:E3", D(110)),
        ("E3", D(120)),
    ]
    order = tracker.get("c1")
    assert order is not None and order.unpriced_ranges == ((D(0), D("0.25")),)
    assert held_unpriced(restored_from(events)) == held_unpriced(tracker)
    e2 = tracker.apply_execution(_fill_of("E2", "0.5", "0.25", "110", "105"))
    assert [(e.problem, e.exec_id) for e in e2 if isinstance(e, OrderAnomaly)] == [
        ("stale_fill", "E2")
    ]
    e1 = tracker.apply_execution(_fill_of("E1", "0.25", "0.25", "100", "100"))
    assert [(e.exec_id, e.last_qty) for e in e1 if isinstance(e, OrderPartiallyFilled)] == [
        ("E1", D("0.25"))
    ]
    assert (order.cum_qty, order.unpriced_ranges) == (D("0.75"), ())
    assert held_unpriced(restored_from([*events, *e2, *e1])) == held_unpriced(tracker)


def held_unvalued(tracker: OrderTracker) -> tuple[Any, ...]:
    """Order c1's cum_qty, avg_px, unpriced spans and the spans avg_px leaves out."""
    order = tracker.get("c1")
    assert order is not None
    return order.cum_qty, order.avg_px, order.unpriced_ranges, order.unvalued_ranges


def test_no_gap_fill_is_priced_off_an_avg_px_that_covers_quantity_at_no_price() -> None:
    """E1's 0.25 at no price, not yet answered: E3's report (0.25 at 120, CumQty 0.75, AvgPx
    110, the true average) leaves 27.5 of value for E1's and E2's 0.5 together, E1's price
    unknown: E2's cannot be read off it. No fill is told for it: the gap is at no price
    (`order.restated`, a `fill_gap` saying the order is asked about), E3's fill told at 120
    and the order's avg_px E3's AvgPx. E2's and E1's late reports then tell each at its
    price, avg_px staying 110; a replay of the journal holds the same.
    Before the fix E2 was told as a gap fill at 210."""
    tracker, events = e1_at_no_price(avg_px_answered=None)
    e3 = tracker.apply_execution(_fill_of("E3", "0.75", "0.25", "120", "110"))
    events += e3
    fills = [(e.exec_id, e.last_qty, e.last_px) for e in e3 if isinstance(e, OrderPartiallyFilled)]
    assert fills == [("E3", D("0.25"), D(120))]
    [gap] = [e for e in e3 if isinstance(e, OrderAnomaly)]
    assert gap.problem == "fill_gap" and gap.detail.endswith(ASKED_AFTER_UNPRICED)
    [restated] = [e for e in e3 if isinstance(e, OrderRestated)]
    assert (restated.cum_qty, restated.avg_px) == (D("0.5"), D(0))
    order = tracker.get("c1")
    assert tracker.unpriced is order
    assert held_unvalued(tracker) == (D("0.75"), D(110), ((D(0), D("0.5")),), ())
    assert held_unvalued(restored_from(events)) == held_unvalued(tracker)
    for exec_id, cum, px, avg in (("E2", "0.5", "110", "105"), ("E1", "0.25", "100", "100")):
        late = tracker.apply_execution(_fill_of(exec_id, cum, "0.25", px, avg))
        events += late
        told = [(e.exec_id, e.last_px) for e in late if isinstance(e, OrderPartiallyFilled)]
        assert told == [(exec_id, D(px))]
        restored = restored_from(events).get("c1")
        assert restored is not None and order is not None
        assert (restored.avg_px, restored.unpriced_qty) == (order.avg_px, order.unpriced_qty)
    assert held_unvalued(tracker) == (D("0.75"), D(110), (), ())
    assert held_unvalued(restored_from(events)) == held_unvalued(tracker)


def test_a_restart_knows_which_span_a_late_fill_of_unpriced_quantity_was_of() -> None:
    """E1's 0.25 at no price, then E3's report (CumQty 0.75, AvgPx 0) leaves E2's 0.25 at no
    price too: (0, 0.5] unpriced, left out of avg_px. E2's late report is told, leaving
    E1's (0, 0.25]; the journal, read back, holds the same spans and avg_px, and E1's late
    report after the restart is told at 100, avg_px then 110. Before the fix the replay
    took E2's 0.25 from the lowest span up, leaving (0.25, 0.5], and E1's report was
    dropped as `stale_fill`."""
    tracker, events = e1_at_no_price(avg_px_answered=None)
    events += tracker.apply_execution(_fill_of("E3", "0.75", "0.25", "120", "0"))
    events += tracker.apply_execution(_fill_of("E2", "0.5", "0.25", "110", "0"))
    assert held_unvalued(tracker) == (D("0.75"), D(115), ((D(0), D("0.25")),), ((D(0), D("0.25")),))
    journal = [msgspec.json.decode(msgspec.json.encode(e), type=AnyEvent) for e in events]
    restored = restored_from(journal)
    assert held_unvalued(restored) == held_unvalued(tracker)
    e1 = restored.apply_execution(_fill_of("E1", "0.25", "0.25", "100", "0"))
    assert [(e.exec_id, e.last_px) for e in e1 if isinstance(e, OrderPartiallyFilled)] == [
        ("E1", D(100))
    ]
    assert held_unvalued(restored) == (D("0.75"), D(110), (), ())


@pytest.mark.parametrize("what", [Input.CANCELED, Input.ORDER_STATUS], ids=str)
def test_no_missed_fill_is_priced_off_an_avg_px_that_covers_quantity_at_no_price(
    what: Input,
) -> None:
    """E1's 0.25 at no price; a cancel or a status answer shows E2's 0.25 too, at AvgPx 105
    (E1 at 100, E2 at 110): what it leaves, 52.5, is E1's and E2's together. No fill: E2's
    0.25 is at no price too, and the order's avg_px the venue's 105, which covers both, so
    that E1's and E2's own reports tell each at its price and leave it so. Before the fix
    E2 was told as a fill at 210."""
    tracker, events = e1_at_no_price(avg_px_answered=None)
    shows_e2 = msgspec.structs.replace(
        plain_report(OrderStatus.PARTIALLY_FILLED, what),
        cum_qty=D("0.5"),
        leaves_qty=D(0) if what is Input.CANCELED else D("0.5"),
        avg_px=D(105),
    )
    told = applied(tracker, what, shows_e2)
    events += told
    assert [e for e in told if isinstance(e, OrderPartiallyFilled | OrderFilled)] == []
    assert [e.problem for e in told if isinstance(e, OrderAnomaly)] == ["fill_gap"]
    assert held_unvalued(tracker) == (D("0.5"), D(105), ((D(0), D("0.5")),), ())
    assert held_unvalued(restored_from(events)) == held_unvalued(tracker)
    for exec_id, cum, px in (("E1", "0.25", "100"), ("E2", "0.5", "110")):
        late = tracker.apply_execution(_fill_of(exec_id, cum, "0.25", px, "0"))
        events += late
        fills = [(e.exec_id, e.last_px) for e in late if isinstance(e, OrderPartiallyFilled)]
        assert fills == [(exec_id, D(px))]
    assert held_unvalued(tracker) == (D("0.5"), D(105), (), ())
    assert held_unvalued(restored_from(events)) == held_unvalued(tracker)


def test_a_late_fill_of_quantity_an_adopted_avg_px_covers_leaves_the_average() -> None:
    """0.5 known at 100; a cancel shows 0.25 more at AvgPx 0, and the answer to the
    question it makes the gateway ask gives AvgPx 96 (the 0.25 at 88). The fill's own
    report, late at AvgPx 0, is told at 88, and the order's avg_px stays 96: the venue's
    average covered it already. Before the fix it became 93.33..., the answer's 96 taken
    for the average of the 0.5 alone."""
    tracker = placed_in(OrderStatus.PARTIALLY_FILLED)
    canceled = msgspec.structs.replace(
        plain_report(OrderStatus.PARTIALLY_FILLED, Input.CANCELED),
        cum_qty=D("0.75"),
        avg_px=D(0),
    )
    tracker.apply_execution(canceled)
    answer = msgspec.structs.replace(
        plain_report(OrderStatus.CANCELED, Input.RECONCILED_AFTER_UNREADABLE),
        cum_qty=D("0.75"),
        avg_px=D(96),
    )
    tracker.reconcile(answer, after_unreadable=True)
    late = tracker.apply_execution(_fill_of("E", "0.75", "0.25", "88", "0"))
    assert [(e.last_px, e.avg_px) for e in late if isinstance(e, OrderPartiallyFilled)] == [
        (D(88), D(96))
    ]


def test_unpriced_quantity_a_status_answer_takes_back_is_not_a_fill_taken_back() -> None:
    """A cancel shows 0.25 at no price, and the answer after it shows 0 (a broker's answer,
    which may take fills back): nothing told is taken back, so nothing is restored when a
    later answer shows the 0.25 again with its price; it is told as a fill. The replay of
    the journal holds the same. Before the fix the 0.25 was "restored as told", never told."""
    tracker = OrderTracker()
    events: list[Any] = [tracker.submit(limit_buy("c1"))]
    events += tracker.apply_execution(plain_report(OrderStatus.PENDING_NEW, Input.NEW))
    canceled = msgspec.structs.replace(
        plain_report(OrderStatus.NEW, Input.CANCELED), cum_qty=D("0.25"), avg_px=D(0)
    )
    events += tracker.apply_execution(canceled)
    lagging = msgspec.structs.replace(
        plain_report(OrderStatus.CANCELED, Input.RECONCILED_AFTER_UNREADABLE),
        cum_qty=D(0),
        avg_px=D(0),
    )
    events += tracker.reconcile(lagging, after_unreadable=True)
    order = tracker.get("c1")
    assert order is not None
    assert (order.cum_qty, order.unpriced_ranges, order.taken_back) == (D(0), (), D(0))
    assert held_unpriced(restored_from(events)) == held_unpriced(tracker)
    caught_up = msgspec.structs.replace(
        plain_report(OrderStatus.CANCELED, Input.ORDER_STATUS), cum_qty=D("0.25"), avg_px=D(90)
    )
    told = tracker.apply_execution(caught_up)
    assert [(e.last_qty, e.last_px) for e in told if isinstance(e, OrderPartiallyFilled)] == [
        (D("0.25"), D(90))
    ]


@pytest.mark.parametrize(
    ("time_in_force", "expected"),
    [
        (TimeInForce.GTC, (["done_for_day"], OrderStatus.NEW)),
        (TimeInForce.DAY, ([], OrderStatus.CANCELED)),
        (None, ([], OrderStatus.CANCELED)),
    ],
)
def test_done_for_day_ends_a_day_order_but_not_a_gtc_one(
    time_in_force: TimeInForce | None, expected: tuple[list[str], OrderStatus]
) -> None:
    """FIX 4.4's Done for Day: no more executions today. A GTC order lives on (the venue
    restates it the next day); an order without TimeInForce takes the venue's default, Day."""
    tracker = OrderTracker()
    tracker.submit(msgspec.structs.replace(limit_buy("c1"), time_in_force=time_in_force))
    tracker.apply_execution(plain_report(OrderStatus.PENDING_NEW, Input.NEW))
    done = msgspec.structs.replace(
        plain_report(OrderStatus.NEW, Input.CANCELED),
        status=OrderStatus.CANCELED,
        done_for_day=True,
    )
    events = tracker.apply_execution(done)
    order = tracker.get("c1")
    assert order is not None
    problems = [e.problem for e in events if isinstance(e, OrderAnomaly)]
    assert (problems, order.status) == expected
    assert order.leaves_qty == (D(1) if order.is_open else D(0))


@pytest.mark.parametrize("avg_px", [D(100), D(0)], ids=["priced", "at_no_price"])
@pytest.mark.parametrize("time_in_force", [TimeInForce.GTC, TimeInForce.DAY])
def test_done_for_day_showing_the_whole_quantity_filled_leaves_the_order_filled(
    time_in_force: TimeInForce, avg_px: D
) -> None:
    """Done for Day with CumQty = OrderQty, a fill report missed before it: nothing is left
    to carry over, GTC or not, so the order is filled, not left open (or canceled) with
    nothing left; no `done_for_day` anomaly says it stays open. At AvgPx 0 the missed fill
    is an `order.restated`, the order filled all the same."""
    tracker = OrderTracker()
    tracker.submit(msgspec.structs.replace(limit_buy("c1"), time_in_force=time_in_force))
    tracker.apply_execution(plain_report(OrderStatus.PENDING_NEW, Input.NEW))
    done = msgspec.structs.replace(
        plain_report(OrderStatus.NEW, Input.CANCELED),
        status=OrderStatus.CANCELED,
        done_for_day=True,
        cum_qty=D(1),
        leaves_qty=D(0),
        avg_px=avg_px,
    )
    events = tracker.apply_execution(done)
    assert [e.problem for e in events if isinstance(e, OrderAnomaly)] == ["fill_gap"]
    assert not any(isinstance(e, OrderCanceled) for e in events)
    order = tracker.get("c1")
    assert order is not None
    assert (order.status, order.cum_qty, order.leaves_qty) == (OrderStatus.FILLED, D(1), D(0))
