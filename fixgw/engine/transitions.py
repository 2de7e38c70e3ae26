"""The order state machine as data: for each status an order is in and each thing that can
happen to it, what the order becomes and what clients are sent.

`TABLE[status, input]` is a rule: steps tried in order, read top to bottom in `ROWS`. A
step whose guard (`when`) holds moves the order's status (`to`) and its cancel flag
(`cancel`), and emits one thing (`emit`): an event for clients, an `order.anomaly`, a drop
that is only logged, or nothing. The rule ends at the first step that holds and is `last`;
every rule ends with a step that always holds, so every pair has an outcome. `NO_ORDER` is
the row of a ClOrdID the tracker does not know.

Guards are small named functions of the order and the report: whatever depends on
quantities, on what clients were already told, or on what a status answer says.

What happens before the table is looked up: finding the order a report is about (none: the
`NO_ORDER` row), and dropping a report whose ExecID was applied already. What the table
leaves to `OrderTracker`: reading each event's numbers off the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from fixgw.decimals import EXACT
from fixgw.domain import TERMINAL_STATUSES, ExecKind, ExecutionReport, OrderStatus, TimeInForce
from fixgw.engine import unpriced

if TYPE_CHECKING:
    from fixgw.engine.order_index import Order

_ZERO: Final = Decimal(0)


class Input(StrEnum):
    """What can happen to an order."""

    # The venue's execution reports, one input per ExecKind (`EXEC_INPUT`).
    NEW = "new"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    TRADE = "trade"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    ORDER_STATUS = "order_status"
    """A status answer as an execution report: the venue's view, adopted."""
    RESTATED = "restated"
    """The venue changed the order on its own (quantity, price, status): adopted."""
    # The venue's other answers.
    CANCEL_REJECTED = "cancel_rejected"
    """A cancel the venue rejected, or refused, or never got."""
    UNTRACKED_CANCELED = "untracked_canceled"
    """The venue's cancel report (ExecType 4) under a cancel this gateway sent for an order
    it does not track (known by the exchange's id only, `order_index.UNTRACKED`)."""
    RECONCILED = "reconciled"
    """A status answer after a logon, or about an overdue order: the events of what happened
    while the gateway was not told."""
    RECONCILED_AFTER_UNREADABLE = "reconciled_after_unreadable"
    """The same, of an order asked about because a report of it could not be read: the
    venue's answer, sent after that report, is its word after every report it sent of the
    order, so one showing less filled than known took fills back (a trade bust, ExecType H,
    is unreadable) and is applied."""
    RECONCILED_AFTER_UNREADABLE_MAY_LAG = "reconciled_after_unreadable_may_lag"
    """The same, of a venue whose answers may lag its own reports and whose dialect has no
    trade busts (`Venue.answers_take_back_fills`, OKCoin): one showing less filled than
    known lags, and changes nothing (`stale_status`)."""
    # The gateway's own doing.
    SUBMITTED = "submitted"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_UNSENT = "cancel_unsent"
    """A cancel that never left (the session was down)."""
    CANCEL_UNDELIVERED = "cancel_undelivered"
    """A cancel the gateway takes for never delivered (the session went down before it was
    sent, or the venue asked for it again and a stale cancel is never resent)."""
    ACKED_CANCEL_ASKED_AGAIN = "acked_cancel_asked_again"
    """A cancel the venue acknowledged (its pending cancel, ExecType 6), then asked for
    again: gap filled, as anything stale is, but delivered; never taken for undelivered."""
    REFUSED = "refused"
    """The order's message refused (a session or business reject, an exception response) or
    never delivered."""
    ACKED_ORDER_ASKED_AGAIN = "acked_order_asked_again"
    """An order the venue acknowledged (named it: its OrderID, as on a Pending New, ExecType
    A), then asked for again: gap filled, as anything stale is, but delivered; never taken
    for undelivered."""
    WITHDRAWN = "withdrawn"
    """Canceled by the gateway while it waited in the throttle's queue, never sent."""


EXEC_INPUT: Final[dict[ExecKind, Input]] = {
    ExecKind.NEW: Input.NEW,
    ExecKind.PARTIAL_FILL: Input.PARTIAL_FILL,
    ExecKind.FILL: Input.FILL,
    ExecKind.TRADE: Input.TRADE,
    ExecKind.PENDING_CANCEL: Input.PENDING_CANCEL,
    ExecKind.CANCELED: Input.CANCELED,
    ExecKind.REJECTED: Input.REJECTED,
    ExecKind.ORDER_STATUS: Input.ORDER_STATUS,
    ExecKind.RESTATED: Input.RESTATED,
}


class To(StrEnum):
    """The order's status after a step."""

    SAME = "same"
    REPORTED = "reported"
    """The report's OrdStatus; Pending Cancel read as the open status its numbers show
    (a cancel out is the order's cancel flag, never its status), and so is Pending New of
    an order past it (a status answer written before the venue's ack and sent after it:
    an answer never moves an order back)."""
    OPEN = "open"
    """The open status the report's numbers show: PARTIALLY_FILLED if it shows fills, else
    NEW (an ack whose OrdStatus says the order closed, told before the event that closed
    it)."""
    FILLED_OR_PARTIALLY = "filled_or_partially_filled"
    """FILLED if the report says so or the order's whole quantity is filled; else
    PARTIALLY_FILLED if the report says so (a venue ending an IOC may write LeavesQty 0 on
    its last partial fill, and cancel the rest in a report of its own); else FILLED if
    nothing is left."""
    FILLED_IF_ALL = "filled_if_all_filled"
    """FILLED if the report says so or the order's whole quantity is filled, else
    PARTIALLY_FILLED: the fills a status answer shows, where nothing left may be a cancel's
    (the answer's status then follows, in a step of its own)."""
    STAYS_CLOSED = "stays_closed"
    """An execution on a closed order, reported or shown by a status answer: FILLED if the
    report says so or the order's whole quantity is filled, else the order's own status,
    Rejected read as Canceled (an order that traded was not refused). Never open again: the
    venue ended the order, and the execution only adds to what it filled."""
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


_FIXED: Final[dict[To, OrderStatus]] = {
    To.PENDING_NEW: OrderStatus.PENDING_NEW,
    To.NEW: OrderStatus.NEW,
    To.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    To.CANCELED: OrderStatus.CANCELED,
    To.REJECTED: OrderStatus.REJECTED,
}


class Cancel(StrEnum):
    """What becomes of the order's cancel flag: the ClOrdID of a cancel sent and not yet
    answered, which shows an open order as pending_cancel."""

    KEEP = "keep"
    SET = "set"
    """To the cancel at hand (the venue's pending cancel keeps one already out)."""
    CLEAR = "clear"
    CLEAR_IF_CLOSED = "clear_if_closed"
    CLEAR_IF_THIS = "clear_if_this"
    """Cleared if it is the cancel at hand."""


class Emit(StrEnum):
    """What a step sends. Each event carries the whole order after the step."""

    NOTHING = "nothing"
    DROP = "drop"
    """Nothing: logged as a repeat ("repeated execution report dropped")."""
    ANOMALY = "anomaly"
    """`order.anomaly`, its problem the step's `problem`."""
    IN_USE = "in_use"
    """The command is refused: `RequestError` duplicate_cl_ord_id."""
    PENDING_NEW = "pending_new"
    """`order.pending_new`."""
    ACCEPTED = "accepted"
    """`order.accepted`."""
    FILL = "fill"
    """`order.partially_filled` or `order.filled` (as the status after the step): the
    report's fill."""
    MISSED_FILL = "missed_fill"
    """The same, one for all the fills a status answer (or a restatement, a cancel, a
    reject) shows beyond the known quantity (its last_qty the difference), priced at what
    the report's AvgPx leaves for it (`missed_fill_px`). Where that gives no price, no fill:
    the report's quantities and status are adopted and told as `order.restated` (no
    reason), never a fill at a price the venue did not give."""
    FILLED_IN = "filled_in"
    """The same, the report's fill, of quantity a report before it showed filled at no
    price (`Order.unpriced_qty`): the fill's own report, late, gives the price, so the fill
    is told, at its LastPx; cum_qty, which counts it already, stays."""
    UNPRICED_GAP = "unpriced_gap"
    """No fill for what a fill report's cum_qty rose by beyond its own fill, where its
    price is not determinable (`gap_unpriced`): the order's cum_qty raised by it, told as
    `order.restated` (no reason), that quantity filled at no price, as `MISSED_FILL` does
    where it gives no price."""
    GAP_FILL = "gap_fill"
    """The same, one for what a fill report's cum_qty rose by beyond its own fill (reports
    missed, or to come late): told before the report's fill, so that the fills told add
    up to cum_qty."""
    PENDING_CANCEL = "pending_cancel"
    """`order.pending_cancel`."""
    CANCELED = "canceled"
    """`order.canceled`, with the report's text, or the gateway's why."""
    CANCELED_AS_ANSWERED = "canceled_as_answered"
    """`order.canceled`, with the answer's text or "canceled, as the exchange answered when
    asked"."""
    REJECTED = "rejected"
    """`order.rejected`, with the report's reason and text, or the refusal's."""
    REJECTED_AS_UNKNOWN = "rejected_as_unknown"
    """`order.rejected`, reason `unknown_at_exchange`: the exchange has no such order, so it
    has not arrived. The gateway's inference: the order comes back if the exchange reports
    it after all (`OrderTracker._revive_if_delivered`)."""
    STATUS = "status"
    """`order.status`."""
    RESTATED = "restated"
    """`order.restated`, with the report's reason and text: the venue's quantity, price,
    status and numbers adopted."""
    REPRICED = "repriced"
    """`order.restated`, no reason, its text saying a status answer changed the order's
    average price: the answer's avg_px adopted, its fills the same as known (a trade
    correction, ExecType G, is unreadable, and the order asked about)."""
    TAKEN_BACK = "taken_back"
    """`order.restated`, no reason, its text naming the quantity taken back: the status
    answer's status and numbers adopted, fills fewer than known (`FILLS_TAKEN_BACK`)."""
    RESTORED = "restored"
    """`order.restated`, no reason, its text naming the quantity: fills taken back shown
    again by a later report's cum_qty (`shown_again`), restored as they were told, never
    told again as a fill; what the report shows beyond them is left to the steps after."""
    RESTATED_AS_ANSWERED = "restated_as_answered"
    """`order.restated`, no reason, its text saying a status answer changed the order's
    quantity or price: those adopted, the rest left to the steps after."""
    CANCEL_REJECTED = "cancel_rejected"
    """`order.cancel_rejected`."""


class Problem(StrEnum):
    """The `problem` of an `order.anomaly`."""

    UNKNOWN_ORDER = "unknown_order"
    REPORT_AFTER_CLOSE = "report_after_close"
    STALE_REPORT = "stale_report"
    STALE_FILL = "stale_fill"
    FILL_GAP = "fill_gap"
    STALE_STATUS = "stale_status"
    UNKNOWN_AT_EXCHANGE = "unknown_at_exchange"
    CANCEL_LOST = "cancel_lost"
    FILLS_TAKEN_BACK = "fills_taken_back"
    DONE_FOR_DAY = "done_for_day"


PROGRESS: Final[dict[OrderStatus, int]] = {
    OrderStatus.PENDING_NEW: 0,
    OrderStatus.NEW: 1,
    OrderStatus.PENDING_CANCEL: 1,
    OrderStatus.PARTIALLY_FILLED: 2,
    OrderStatus.FILLED: 3,
    OrderStatus.CANCELED: 3,
    OrderStatus.REJECTED: 3,
}
"""How far along an order is; a report may not move an order back."""


# ------------------------------------------------------------------ guards

Guard = Callable[["Order", ExecutionReport], bool]


def repeats(order: Order, report: ExecutionReport) -> bool:
    """An ack, cancel or reject clients were already sent, of what the order still is,
    under another ExecID: the exchange sent it again (a resend after a restart, whose
    journal keeps only fills' ExecIDs, or a venue's own repeat). It tells clients nothing
    new."""
    return (
        report.kind in order.stated
        and report.status is order.status
        and report.cum_qty == order.cum_qty
    )


def goes_back(order: Order, report: ExecutionReport) -> bool:
    """Less filled than known, or a status behind the order's: older than what is known."""
    return report.cum_qty < order.cum_qty or PROGRESS[report.status] < PROGRESS[order.status]


def pending_cancel_goes_back(order: Order, report: ExecutionReport) -> bool:
    """A pending cancel older than what is known. OrdStatus PendingCancel hides how far the
    open order got (as the order's shown status does), so it is behind no open order: only
    less filled than known is older; any other OrdStatus is ranked as ever."""
    if report.status is OrderStatus.PENDING_CANCEL:
        return report.cum_qty < order.cum_qty
    return goes_back(order, report)


def adds_nothing(order: Order, report: ExecutionReport) -> bool:
    """A fill whose cum_qty is not above the known: already counted."""
    return report.cum_qty <= order.cum_qty


ENDS_REST: Final = frozenset({OrderStatus.CANCELED, OrderStatus.REJECTED})
"""The OrdStatus of a fill that ends the order's unfilled rest."""


def cancels_rest(order: Order, report: ExecutionReport) -> bool:
    """A fill whose OrdStatus ends the order (Canceled, or Rejected) short of its quantity:
    the venue filled this much and ended the rest in the same report (a market order's
    unfilled rest). Rejected reads as Canceled here: the fill shows the order was taken and
    traded, so it was not refused; what the venue refused is the rest, which ends unfilled
    as a cancelled rest does (`order.canceled`, the venue's Text saying why).
    `order.rejected` would tell clients, and an OMS, that nothing was done."""
    return report.status in ENDS_REST and report.cum_qty < order.qty


def ends_order(order: Order, report: ExecutionReport) -> bool:
    """An ack whose OrdStatus closes the order short of a fill (Canceled, Rejected): the
    venue ended it before the ack was written (an IOC's rest)."""
    return report.status in ENDS_REST


def refused_untraded(order: Order, report: ExecutionReport) -> bool:
    """An ack saying Rejected of an order that never traded: the venue refused it."""
    return report.status is OrderStatus.REJECTED and not has_traded(order, report)


def lives_past_the_day(order: Order, report: ExecutionReport) -> bool:
    """Done for Day of a GTC order short of its quantity: no more executions today, the
    order not over (FIX 4.4); the venue restates it the next day (a GT renewal). One
    showing the whole quantity filled leaves nothing to carry over: it filled the order."""
    return (
        report.done_for_day
        and order.time_in_force is TimeInForce.GTC
        and report.cum_qty < order.qty
    )


def fill_qty(order: Order, report: ExecutionReport) -> Decimal:
    """The quantity a fill report says was filled (its LastQty, or what cum_qty moved)."""
    if report.last_qty is not None:
        return report.last_qty
    return EXACT.subtract(report.cum_qty, order.cum_qty)


def told_fill_qty(order: Order, report: ExecutionReport) -> Decimal:
    """The quantity a fill report is told as: its fill, but never more than cum_qty rose by
    (a LastQty above that was counted already), so that the fills told add up to cum_qty."""
    return min(fill_qty(order, report), EXACT.subtract(report.cum_qty, order.cum_qty))


def skips_quantity(order: Order, report: ExecutionReport) -> bool:
    """cum_qty moved by more or less than the fill: a report was missed."""
    return EXACT.add(order.cum_qty, fill_qty(order, report)) != report.cum_qty


def rises_past_fill(order: Order, report: ExecutionReport) -> bool:
    """A fill report's cum_qty rose by more than its fill: executions before it were not
    told (their reports missed, or out of order)."""
    return EXACT.add(order.cum_qty, fill_qty(order, report)) < report.cum_qty


def has_traded(order: Order, report: ExecutionReport) -> bool:
    """The order filled some quantity, as the report shows or as was known."""
    return report.cum_qty > 0 or order.cum_qty > 0


def shows_less(order: Order, report: ExecutionReport) -> bool:
    """A status answer shows less filled than known."""
    return report.cum_qty < order.cum_qty


def shows_more(order: Order, report: ExecutionReport) -> bool:
    """A status answer or a restatement shows fills the gateway was not told of."""
    return report.cum_qty > order.cum_qty


def missed_fill_px(order: Order, report: ExecutionReport) -> Decimal | None:
    """The price of the fills a report shows beyond the known quantity, taken as one fill:
    what the report's AvgPx leaves for them once the known fills are taken out. None where
    that is no price: no AvgPx (0, as a venue may write on a cancel, an expiry or a status
    answer), one that leaves nothing above 0 (an AvgPx at or below the known fills'
    average), or known quantity whose value the order's avg_px leaves out (filled at no
    price, `Order.unvalued_ranges`): what the AvgPx leaves is then theirs and the missed
    fills' together, and no price for these alone can be read off it. Otherwise avg_px is
    the average of the whole cum_qty (the fills told, and quantity at no price a venue's
    AvgPx covered), and the price exact. The quotient is kept to Python's 28 significant
    digits: the gateway knows no tick, and a venue's AvgPx text (trailing zeros dropped)
    does not say how it was rounded."""
    if report.avg_px <= 0 or order.unvalued_ranges:
        return None
    left = EXACT.subtract(
        EXACT.multiply(report.avg_px, report.cum_qty),
        EXACT.multiply(order.avg_px, order.cum_qty),
    )
    if left <= 0:
        return None
    return left / EXACT.subtract(report.cum_qty, order.cum_qty)


def gap_unpriced(order: Order, report: ExecutionReport) -> bool:
    """A fill report's cum_qty rose by more than its fill while known quantity is unvalued
    (`missed_fill_px`): the price of the executions before it is not determinable."""
    return rises_past_fill(order, report) and bool(order.unvalued_ranges)


def fills_in_unpriced(order: Order, report: ExecutionReport) -> bool:
    """A fill report adding nothing to cum_qty whose fill is of the quantity a report showed
    filled at no price (a cancel at AvgPx 0 that carried it): that fill's own report,
    late, with its price. Not already counted: no fill was told for that quantity. Its
    span of cum_qty (`unpriced`) tells it from the late report of quantity a fill was told
    for, such as a gap fill inferred since."""
    last_qty, last_px = report.last_qty, report.last_px
    return (
        last_qty is not None
        and last_px is not None
        and last_px > 0
        and report.cum_qty <= order.cum_qty
        and unpriced.holds(
            order.unpriced_ranges, EXACT.subtract(report.cum_qty, last_qty), report.cum_qty
        )
    )


ASKED_AFTER_UNPRICED: Final = ", and the order asked about"
"""How the `detail` of a `fill_gap` anomaly ends where the report showed fills at no price
and the order is asked about, as after an unreadable report: a restart reads the question
off the journal (`restore`) and asks again until an `order.status` tells the answer."""


LEFT_OUT_OF_AVG_PX: Final = "; left out of avg_px, which the exchange did not give for it"
"""How the `text` of an `order.restated` ends where the quantity it shows filled at no price
is left out of the order's avg_px (`Order.unvalued_ranges`): a restart reads it off the
journal (`restore`)."""


def shows_more_unpriced(order: Order, report: ExecutionReport) -> bool:
    """A report shows fills the gateway was not told of, at a price it does not give."""
    return shows_more(order, report) and missed_fill_px(order, report) is None


def shown_again(order: Order, report: ExecutionReport) -> Decimal:
    """What a report's cum_qty rose by beyond the known quantity and its own fill."""
    own = fill_qty(order, report) if report.kind.is_fill else _ZERO
    return EXACT.subtract(EXACT.subtract(report.cum_qty, order.cum_qty), own)


def shows_taken_back(order: Order, report: ExecutionReport) -> bool:
    """A report shows more filled than known beyond its own fill, and fills were taken
    back: they are the venue's after all (the answer that took them back lagged)."""
    return order.taken_back > 0 and shown_again(order, report) > 0


def reprices(order: Order, report: ExecutionReport) -> bool:
    """A status answer shows the known fills at another average price (a trade corrected)."""
    return (
        report.cum_qty == order.cum_qty
        and report.cum_qty > 0
        and report.avg_px > 0
        and report.avg_px != order.avg_px
    )


def other_qty(order: Order, report: ExecutionReport) -> Decimal | None:
    """The report's OrderQty, if it is not the order's."""
    return report.qty if report.qty is not None and report.qty != order.qty else None


def other_price(order: Order, report: ExecutionReport) -> Decimal | None:
    """The report's Price, if the order has one and it is another. An order without one (a
    market order) has none to change: a venue may write its fill price, or 0, there."""
    if report.price is None or order.price is None or report.price == order.price:
        return None
    return report.price


def changes_terms(order: Order, report: ExecutionReport) -> bool:
    """A status answer, not older than what is known, gives a live order another OrderQty or
    Price: the venue restated it without saying so."""
    return (
        (other_qty(order, report) is not None or other_price(order, report) is not None)
        and order.status not in TERMINAL_STATUSES
        and report.cum_qty >= order.cum_qty
    )


def says_acknowledged(order: Order, report: ExecutionReport) -> bool:
    """A status answer says the order is open and acknowledged: not Pending New, which says
    the exchange has the order but has not acknowledged it yet."""
    return report.status not in TERMINAL_STATUSES and report.status is not OrderStatus.PENDING_NEW


def says_unknown(order: Order, report: ExecutionReport) -> bool:
    """A status answer of Rejected: the exchange does not know the order."""
    return report.status is OrderStatus.REJECTED


def cancels_open(order: Order, report: ExecutionReport) -> bool:
    """A status answer of Canceled for an order that is (still) open."""
    return report.status is OrderStatus.CANCELED and order.status not in TERMINAL_STATUSES


def filled_by_it(order: Order, report: ExecutionReport) -> bool:
    """The fills a report showed (told in an earlier step of its rule) filled the open order:
    its OrdStatus (Canceled, Partially Filled) or ExecType (a cancel, a reject) does not move
    the order on from the filled clients were just told; FIX 4.4 ranks Filled above them."""
    return order.status is OrderStatus.FILLED


def cancel_still_out(order: Order, report: ExecutionReport) -> bool:
    """The order is open with a cancel out, which the answer, asked while that cancel was
    out, does not show: it was lost. An answer asked before the cancel was sent (a check's,
    or another round's) says nothing of it: the cancel stays out."""
    return (
        order.cancel_pending is not None
        and order.cancel_pending == order.asked_with_cancel
        and order.status not in TERMINAL_STATUSES
    )


# ------------------------------------------------------------------ steps and rows


@dataclass(frozen=True, slots=True)
class Step:
    """If `when` holds: the order's status becomes `to`, its cancel flag `cancel`, and
    `emit` is sent; then the rule ends if `last`, else goes on to the next step."""

    to: To
    emit: Emit
    when: Guard | None = None
    """None: always."""
    problem: Problem | None = None
    """Of an ANOMALY."""
    cancel: Cancel = Cancel.KEEP
    last: bool = True
    """The rule ends here (when `when` holds)."""


Rule = tuple[Step, ...]


def end(to: To, emit: Emit, when: Guard | None = None, cancel: Cancel = Cancel.KEEP) -> Step:
    """A step that ends the rule."""
    return Step(to, emit, when, None, cancel, True)


def then(to: To, emit: Emit, when: Guard | None = None) -> Step:
    """A step after which the rule goes on."""
    return Step(to, emit, when, None, Cancel.KEEP, False)


def anomaly(
    problem: Problem,
    when: Guard | None = None,
    *,
    go_on: bool = False,
    cancel: Cancel = Cancel.KEEP,
) -> Step:
    """An `order.anomaly`; the order's status stays, and unless `go_on` the rule ends."""
    return Step(To.SAME, Emit.ANOMALY, when, problem, cancel, not go_on)


def drop(when: Guard) -> Step:
    """A repeat: logged, nothing sent, nothing changed; the rule ends."""
    return Step(To.SAME, Emit.DROP, when)


NO_ORDER: Final = None
"""The status of a ClOrdID the tracker does not know."""

State = OrderStatus | None

ACKED: Final[tuple[State, ...]] = (
    OrderStatus.NEW,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.PENDING_CANCEL,
)
"""Open, and the exchange has spoken of it."""
OPEN: Final[tuple[State, ...]] = (OrderStatus.PENDING_NEW, *ACKED)
CLOSED: Final[tuple[State, ...]] = (
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
    OrderStatus.REJECTED,
)
ANY: Final[tuple[State, ...]] = OPEN + CLOSED
STATES: Final[tuple[State, ...]] = (NO_ORDER, *ANY)

FILLS: Final = (Input.PARTIAL_FILL, Input.FILL, Input.TRADE)
REPORTS: Final = tuple(EXEC_INPUT.values())
RECONCILING: Final = (
    Input.RECONCILED,
    Input.RECONCILED_AFTER_UNREADABLE,
    Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG,
)


@dataclass(frozen=True, slots=True)
class Row:
    states: tuple[State, ...]
    inputs: tuple[Input, ...]
    rule: Rule


def row(states: State | tuple[State, ...], inputs: Input | tuple[Input, ...], *rule: Step) -> Row:
    return Row(
        states if isinstance(states, tuple) else (states,),
        inputs if isinstance(inputs, tuple) else (inputs,),
        rule,
    )


_RESTORED: Final = then(To.SAME, Emit.RESTORED, when=shows_taken_back)
"""Fills taken back that a later report shows again: restored, before anything it shows
beyond them is told (as a gap, a missed fill, or at no price)."""


_GAP_TOLD: Final[Rule] = (
    _RESTORED,
    anomaly(Problem.FILL_GAP, when=shows_more, go_on=True),
    then(To.FILLED_IF_ALL, Emit.MISSED_FILL, when=shows_more),
    end(To.SAME, Emit.NOTHING, when=filled_by_it, cancel=Cancel.CLEAR_IF_CLOSED),
)
"""A cancel or reject report that shows more filled than the gateway was told: the fill it
carries (a trade just before the cancel, whose own report may follow it) is a gap, told as
one partial fill before the cancel; the late fill report is then already counted. One that
shows the whole quantity filled (or says Filled) filled the order: one fill, and no cancel
or reject after it (FIX 4.4 ranks Filled above both)."""


_TAKEN_BACK: Final[Rule] = (
    anomaly(Problem.UNKNOWN_AT_EXCHANGE, when=says_unknown),
    anomaly(Problem.FILLS_TAKEN_BACK, when=shows_less, go_on=True),
    end(To.REPORTED, Emit.TAKEN_BACK, when=shows_less, cancel=Cancel.CLEAR_IF_CLOSED),
)
"""An answer asked for after a report the gateway could not read, showing less filled than
known: fills taken back (a trade bust), told, and the venue's numbers applied."""


_STALE: Final[Rule] = (
    anomaly(Problem.STALE_STATUS, when=shows_less, go_on=True),
    end(To.SAME, Emit.NOTHING, when=shows_less, cancel=Cancel.CLEAR_IF_CLOSED),
)
"""A status answer the gateway asked for itself (reconciliation, the ack watchdog)
showing less filled than known: it lags the venue's own reports, and changes nothing,
whatever status it says, as a client's `order_status` (`_ANSWERED`). A Canceled with less
filled leaves an open order as it is, its cancel still out: the venue's own report of the
cancel, or the next logon's question, settles it; adopting it would put cum_qty below the
fills told. Only the answer to an unreadable report, on a venue that busts trades, takes
fills back (`_TAKEN_BACK`)."""


_LAGS: Final[Rule] = (
    anomaly(Problem.UNKNOWN_AT_EXCHANGE, when=says_unknown),
    *_STALE,
)
"""The answer to an unreadable report, of a venue whose answers may lag its own reports
and that sends no busts: less filled than known is an answer that lags, and changes
nothing."""


_UNPRICED: Final = anomaly(Problem.FILL_GAP, when=shows_more_unpriced, go_on=True)
"""Fills a status answer shows, at a price it does not give: surfaced, as a gap is."""


_SETTLE: Final[Rule] = (
    then(To.SAME, Emit.RESTATED_AS_ANSWERED, when=changes_terms),
    _RESTORED,
    _UNPRICED,
    then(To.FILLED_IF_ALL, Emit.MISSED_FILL, when=shows_more),
    then(To.CANCELED, Emit.CANCELED_AS_ANSWERED, when=cancels_open),
    anomaly(Problem.CANCEL_LOST, when=cancel_still_out, cancel=Cancel.CLEAR),
    end(To.SAME, Emit.NOTHING, cancel=Cancel.CLEAR_IF_CLOSED),
)
"""How a status answer settles a known open order: a quantity or price the venue changed,
the fills it missed as one (partial if the answer has the rest canceled), a cancel, and a
cancel still out (lost while the order is open, moot once it is closed)."""


_SETTLE_CLOSED: Final[Rule] = (
    _RESTORED,
    _UNPRICED,
    then(To.STAYS_CLOSED, Emit.MISSED_FILL, when=shows_more),
    end(To.SAME, Emit.NOTHING, cancel=Cancel.CLEAR_IF_CLOSED),
)
"""How a status answer settles a closed order: the fills it missed as one, told as an
execution on a closed order is; the order stays closed, with the status clients were told."""


_ANSWERED: Final[Rule] = (
    anomaly(Problem.STALE_STATUS, when=shows_less, go_on=True),
    end(To.SAME, Emit.STATUS, when=shows_less, cancel=Cancel.CLEAR_IF_CLOSED),
    then(To.SAME, Emit.RESTATED_AS_ANSWERED, when=changes_terms),
    _RESTORED,
    _UNPRICED,
    then(To.FILLED_IF_ALL, Emit.MISSED_FILL, when=shows_more),
    end(To.SAME, Emit.STATUS, when=filled_by_it, cancel=Cancel.CLEAR_IF_CLOSED),
    end(To.CANCELED, Emit.CANCELED_AS_ANSWERED, when=cancels_open, cancel=Cancel.CLEAR),
    end(To.REPORTED, Emit.STATUS, cancel=Cancel.CLEAR_IF_CLOSED),
)
"""How a status answer a client asked for updates an open order the exchange knows."""


ROWS: Final[tuple[Row, ...]] = (
    # -- the gateway sends an order; its ClOrdID must be new
    row(NO_ORDER, Input.SUBMITTED, end(To.PENDING_NEW, Emit.PENDING_NEW)),
    row(ANY, Input.SUBMITTED, end(To.SAME, Emit.IN_USE)),
    # -- the venue's execution reports; one for no order the gateway tracks is surfaced
    row(NO_ORDER, REPORTS, anomaly(Problem.UNKNOWN_ORDER)),
    #    acknowledged, canceled, rejected: a repeat is dropped, an older report surfaced;
    #    whatever closes the order ends the cancel out for it
    #    (an ack may be written after the order traded or ended, as its OrdStatus says:
    #    fills it shows that the gateway was not told of are a gap, told as one fill first;
    #    one that says the order ended is the ack, then the event that ended it)
    row(
        OPEN,
        Input.NEW,
        drop(when=repeats),
        anomaly(Problem.STALE_REPORT, when=goes_back),
        _RESTORED,
        anomaly(Problem.FILL_GAP, when=shows_more, go_on=True),
        then(To.FILLED_IF_ALL, Emit.MISSED_FILL, when=shows_more),
        end(To.SAME, Emit.ACCEPTED, when=filled_by_it, cancel=Cancel.CLEAR_IF_CLOSED),
        then(To.OPEN, Emit.ACCEPTED, when=ends_order),
        end(To.REJECTED, Emit.REJECTED, when=refused_untraded, cancel=Cancel.CLEAR),
        end(To.CANCELED, Emit.CANCELED, when=ends_order, cancel=Cancel.CLEAR),
        end(To.REPORTED, Emit.ACCEPTED, cancel=Cancel.CLEAR_IF_CLOSED),
    ),
    #    (a cancel or reject showing fills the gateway was not told of: a gap, told as one
    #    fill first, which fills the order if it shows the whole quantity filled; a reject of
    #    an order that traded ends its rest canceled, as a fill report saying Rejected does)
    #    (Done for Day of a GTC order short of its quantity is surfaced, its fills told, and
    #    the order left open)
    row(
        OPEN,
        Input.CANCELED,
        drop(when=repeats),
        anomaly(Problem.STALE_REPORT, when=goes_back),
        anomaly(Problem.DONE_FOR_DAY, when=lives_past_the_day, go_on=True),
        *_GAP_TOLD,
        end(To.SAME, Emit.NOTHING, when=lives_past_the_day, cancel=Cancel.CLEAR_IF_CLOSED),
        end(To.CANCELED, Emit.CANCELED, cancel=Cancel.CLEAR),
    ),
    row(
        OPEN,
        Input.REJECTED,
        drop(when=repeats),
        anomaly(Problem.STALE_REPORT, when=goes_back),
        *_GAP_TOLD,
        end(To.CANCELED, Emit.CANCELED, when=has_traded, cancel=Cancel.CLEAR),
        end(To.REJECTED, Emit.REJECTED, cancel=Cancel.CLEAR),
    ),
    #    the venue's pending cancel: the order's status stays (a partly filled order stays
    #    partially filled), the flag shows it pending_cancel
    row(
        OPEN,
        Input.PENDING_CANCEL,
        anomaly(Problem.STALE_REPORT, when=pending_cancel_goes_back),
        end(To.SAME, Emit.PENDING_CANCEL, cancel=Cancel.SET),
    ),
    row(
        CLOSED,
        (Input.NEW, Input.CANCELED, Input.REJECTED),
        drop(when=repeats),
        anomaly(Problem.REPORT_AFTER_CLOSE),
    ),
    row(CLOSED, Input.PENDING_CANCEL, anomaly(Problem.REPORT_AFTER_CLOSE)),
    #    fills: one already counted is surfaced; one that skips quantity is surfaced and
    #    applied, the venue's cum_qty adopted, what it rose by beyond the fill told as one
    #    fill first; one that also ends the rest (canceled, or rejected) is a partial fill,
    #    then the cancel
    #    (a fill of quantity a report showed filled at no price is told, at its price, its
    #    quantity counted already: on a closed order too)
    #    (what cum_qty rose by beyond the fill is at no price, no fill told for it, while
    #    known quantity at no price leaves its price unknown)
    row(
        OPEN,
        FILLS,
        end(To.SAME, Emit.FILLED_IN, when=fills_in_unpriced),
        _RESTORED,
        anomaly(Problem.STALE_FILL, when=adds_nothing),
        anomaly(Problem.FILL_GAP, when=skips_quantity, go_on=True),
        then(To.PARTIALLY_FILLED, Emit.UNPRICED_GAP, when=gap_unpriced),
        then(To.PARTIALLY_FILLED, Emit.GAP_FILL, when=rises_past_fill),
        then(To.PARTIALLY_FILLED, Emit.FILL, when=cancels_rest),
        end(To.CANCELED, Emit.CANCELED, when=cancels_rest, cancel=Cancel.CLEAR),
        end(To.FILLED_OR_PARTIALLY, Emit.FILL, cancel=Cancel.CLEAR_IF_CLOSED),
    ),
    #    an execution on a closed order (a trade that crossed the cancel, an overfill) is
    #    surfaced and told as a fill, the venue's cum_qty adopted; the order stays closed.
    #    One already counted (a cancel that carried its quantity) is surfaced only
    row(
        CLOSED,
        FILLS,
        end(To.SAME, Emit.FILLED_IN, when=fills_in_unpriced),
        _RESTORED,
        anomaly(Problem.REPORT_AFTER_CLOSE, when=adds_nothing),
        anomaly(Problem.REPORT_AFTER_CLOSE, go_on=True),
        anomaly(Problem.FILL_GAP, when=skips_quantity, go_on=True),
        then(To.SAME, Emit.UNPRICED_GAP, when=gap_unpriced),
        then(To.SAME, Emit.GAP_FILL, when=rises_past_fill),
        end(To.STAYS_CLOSED, Emit.FILL, cancel=Cancel.CLEAR_IF_CLOSED),
    ),
    #    a status answer: the venue's view is adopted, unless it shows less filled than
    #    known; a closed order is not reopened by an answer that says open; the fills it
    #    shows are partial if it has the rest canceled, and an open order it shows canceled
    #    is told canceled (as reconciliation tells it), not just restated
    #    (an answer that does not know the order is taken as reconciliation takes it: a
    #    pending order is rejected on that inference, revivable; an acknowledged one stays)
    row(
        OrderStatus.PENDING_NEW,
        Input.ORDER_STATUS,
        end(To.REJECTED, Emit.REJECTED_AS_UNKNOWN, when=says_unknown, cancel=Cancel.CLEAR),
        *_ANSWERED,
    ),
    row(
        ACKED,
        Input.ORDER_STATUS,
        anomaly(Problem.UNKNOWN_AT_EXCHANGE, when=says_unknown),
        *_ANSWERED,
    ),
    #    (a closed order's fills it shows are told as an execution on it is, and the order
    #    keeps the closed status clients were told: the answer is its asker's, and an OMS
    #    is never told an order it was told was done is open, or closed otherwise)
    row(
        CLOSED,
        Input.ORDER_STATUS,
        anomaly(Problem.STALE_STATUS, when=shows_less, go_on=True),
        end(To.SAME, Emit.STATUS, when=shows_less),
        _RESTORED,
        _UNPRICED,
        then(To.STAYS_CLOSED, Emit.MISSED_FILL, when=shows_more),
        end(To.SAME, Emit.STATUS, cancel=Cancel.CLEAR_IF_CLOSED),
    ),
    #    a restatement: the venue's quantity, price, status and numbers adopted, the order
    #    ended if its status is terminal; one older than known is surfaced; fills it shows
    #    that the gateway was not told of are a gap, told as one fill first
    row(
        OPEN,
        Input.RESTATED,
        anomaly(Problem.STALE_REPORT, when=pending_cancel_goes_back),
        _RESTORED,
        anomaly(Problem.FILL_GAP, when=shows_more, go_on=True),
        then(To.FILLED_IF_ALL, Emit.MISSED_FILL, when=shows_more),
        end(To.SAME, Emit.RESTATED, when=filled_by_it, cancel=Cancel.CLEAR_IF_CLOSED),
        end(To.REPORTED, Emit.RESTATED, cancel=Cancel.CLEAR_IF_CLOSED),
    ),
    row(CLOSED, Input.RESTATED, anomaly(Problem.REPORT_AFTER_CLOSE)),
    # -- a status answer during reconciliation: what happened while the gateway was away
    row(NO_ORDER, RECONCILING, end(To.SAME, Emit.NOTHING)),
    #    (a pending order the answer says is Pending New stays pending: the exchange has it
    #    and has not acknowledged it, and its ack is still to come)
    row(
        OrderStatus.PENDING_NEW,
        RECONCILING,
        end(To.REJECTED, Emit.REJECTED_AS_UNKNOWN, when=says_unknown, cancel=Cancel.CLEAR),
        then(To.NEW, Emit.ACCEPTED, when=says_acknowledged),
        *_SETTLE,
    ),
    #    (one showing less filled than known lags, and changes nothing: `stale_status`)
    row(
        ACKED,
        Input.RECONCILED,
        anomaly(Problem.UNKNOWN_AT_EXCHANGE, when=says_unknown),
        *_STALE,
        *_SETTLE,
    ),
    row(
        CLOSED,
        Input.RECONCILED,
        anomaly(Problem.UNKNOWN_AT_EXCHANGE, when=says_unknown),
        *_STALE,
        *_SETTLE_CLOSED,
    ),
    #    the same after a report the gateway could not read: the answer is the venue's word
    #    after it, so less filled than known is fills taken back, told, and applied, the
    #    order open again if the answer says so (a pending order has no fills to take back);
    #    the only answer that reopens a closed order; the same fills at another average
    #    price are a trade corrected, told and applied
    row(
        ACKED,
        Input.RECONCILED_AFTER_UNREADABLE,
        *_TAKEN_BACK,
        then(To.SAME, Emit.REPRICED, when=reprices),
        *_SETTLE,
    ),
    row(
        CLOSED,
        Input.RECONCILED_AFTER_UNREADABLE,
        *_TAKEN_BACK,
        then(To.SAME, Emit.REPRICED, when=reprices),
        *_SETTLE_CLOSED,
    ),
    #    (of a venue whose answers may lag and that sends no busts, less filled than known
    #    is an answer that lags: nothing is taken back)
    row(
        ACKED,
        Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG,
        *_LAGS,
        then(To.SAME, Emit.REPRICED, when=reprices),
        *_SETTLE,
    ),
    row(
        CLOSED,
        Input.RECONCILED_AFTER_UNREADABLE_MAY_LAG,
        *_LAGS,
        then(To.SAME, Emit.REPRICED, when=reprices),
        *_SETTLE_CLOSED,
    ),
    # -- cancels: the flag shows an open order pending_cancel until the cancel is answered
    row(NO_ORDER, Input.CANCEL_REQUESTED, end(To.SAME, Emit.NOTHING)),
    row(ANY, Input.CANCEL_REQUESTED, end(To.SAME, Emit.PENDING_CANCEL, cancel=Cancel.SET)),
    row(NO_ORDER, Input.CANCEL_UNSENT, end(To.SAME, Emit.NOTHING)),
    row(ANY, Input.CANCEL_UNSENT, end(To.SAME, Emit.NOTHING, cancel=Cancel.CLEAR_IF_THIS)),
    row(NO_ORDER, Input.CANCEL_REJECTED, end(To.SAME, Emit.CANCEL_REJECTED)),
    row(
        ANY,
        Input.CANCEL_REJECTED,
        end(To.SAME, Emit.CANCEL_REJECTED, cancel=Cancel.CLEAR_IF_THIS),
    ),
    #    a cancel of an order this gateway did not send, carried out: told as its refusal
    #    is, under the cancel's id; whatever orders the gateway holds, none is that order
    row(STATES, Input.UNTRACKED_CANCELED, end(To.SAME, Emit.CANCELED)),
    #    never delivered is the gateway's inference, told only of a cancel still unanswered:
    #    whatever closed the order answered it (canceled by it, or too late)
    row(NO_ORDER, Input.CANCEL_UNDELIVERED, end(To.SAME, Emit.CANCEL_REJECTED)),
    row(
        OPEN,
        Input.CANCEL_UNDELIVERED,
        end(To.SAME, Emit.CANCEL_REJECTED, cancel=Cancel.CLEAR_IF_THIS),
    ),
    row(CLOSED, Input.CANCEL_UNDELIVERED, end(To.SAME, Emit.NOTHING)),
    #    nor of one the venue acknowledged, whatever its store lost since: it has the cancel,
    #    which stays out until the venue answers it
    row(STATES, Input.ACKED_CANCEL_ASKED_AGAIN, end(To.SAME, Emit.NOTHING)),
    # -- orders the exchange never took: refused or never delivered, or withdrawn unsent
    row(NO_ORDER, Input.REFUSED, end(To.SAME, Emit.NOTHING)),
    row(
        OrderStatus.PENDING_NEW,
        Input.REFUSED,
        end(To.REJECTED, Emit.REJECTED, cancel=Cancel.CLEAR),
    ),
    row(ACKED + CLOSED, Input.REFUSED, end(To.SAME, Emit.NOTHING)),
    #    never delivered is not told of an order the venue acknowledged (a Pending New under
    #    its OrderID), whatever its store lost since: it has the order
    row(STATES, Input.ACKED_ORDER_ASKED_AGAIN, end(To.SAME, Emit.NOTHING)),
    row(NO_ORDER, Input.WITHDRAWN, end(To.SAME, Emit.NOTHING)),
    row(OPEN, Input.WITHDRAWN, end(To.CANCELED, Emit.CANCELED, cancel=Cancel.CLEAR)),
    row(CLOSED, Input.WITHDRAWN, end(To.SAME, Emit.NOTHING)),
)


def build(rows: Iterable[Row]) -> dict[tuple[State, Input], Rule]:
    """The rule of each (state, input) pair; two rows for a pair are an error."""
    table: dict[tuple[State, Input], Rule] = {}
    for r in rows:
        for state in r.states:
            for what in r.inputs:
                if (state, what) in table:
                    raise ValueError(f"two rows for {state} and {what}")
                table[state, what] = r.rule
    return table


TABLE: Final = build(ROWS)

ON_REPORT: Final[dict[tuple[State, ExecKind], Rule]] = {
    (state, kind): TABLE[state, what] for kind, what in EXEC_INPUT.items() for state in STATES
}
"""`TABLE` by the execution report's kind, as the tracker looks it up."""


def step_of(state: State, what: Input) -> Step:
    """The one step of a rule with one step (the gateway's inputs)."""
    return TABLE[state, what][0]


# ------------------------------------------------------------------ applying a step


# The members read on every report, as module constants: Python 3.11 reads a member off its
# Enum class through EnumType.__getattr__, a quarter of a microsecond even compiled, where a
# Final name compiles to a C static.
_SAME: Final = To.SAME
_REPORTED: Final = To.REPORTED
_FILLED_IF_ALL: Final = To.FILLED_IF_ALL
_KEEP: Final = Cancel.KEEP
_SET: Final = Cancel.SET
_CLEAR: Final = Cancel.CLEAR
_CLEAR_IF_CLOSED: Final = Cancel.CLEAR_IF_CLOSED
_FILLED: Final = OrderStatus.FILLED
_PARTIALLY_FILLED: Final = OrderStatus.PARTIALLY_FILLED
_CANCELED: Final = OrderStatus.CANCELED
_REJECTED: Final = OrderStatus.REJECTED
_PENDING_CANCEL: Final = OrderStatus.PENDING_CANCEL
_PENDING_NEW: Final = OrderStatus.PENDING_NEW


def status_after(to: To, order: Order, report: ExecutionReport | None) -> OrderStatus:
    fixed = _FIXED.get(to)
    if fixed is not None:
        return fixed
    if to is _SAME:
        return order.status
    if report is None:
        raise ValueError(f"{to} needs a report")
    if to is _REPORTED:
        status = report.status
        if status is _PENDING_CANCEL or (
            status is _PENDING_NEW and order.status is not _PENDING_NEW
        ):
            return _PARTIALLY_FILLED if report.cum_qty > 0 else OrderStatus.NEW
        return status
    if to is To.OPEN:
        return _PARTIALLY_FILLED if report.cum_qty > 0 else OrderStatus.NEW
    if to is _FILLED_IF_ALL:
        if report.status is _FILLED or report.cum_qty >= order.qty:
            return _FILLED
        return _PARTIALLY_FILLED
    if report.status is _FILLED or report.cum_qty >= order.qty:
        return _FILLED
    if to is To.STAYS_CLOSED:
        return _CANCELED if order.status is _REJECTED else order.status
    if report.status is _PARTIALLY_FILLED:  # To.FILLED_OR_PARTIALLY: trusted over LeavesQty 0
        return _PARTIALLY_FILLED
    return _FILLED if order.leaves_qty == 0 else _PARTIALLY_FILLED


def become(
    order: Order, step: Step, report: ExecutionReport | None, cancel_id: str | None = None
) -> None:
    """Move the order's status and cancel flag as `step` says; `cancel_id` is the cancel at
    hand."""
    if step.to is not _SAME:
        order.status = status_after(step.to, order, report)
    cancel = step.cancel
    if cancel is _KEEP:
        return
    if cancel is _CLEAR_IF_CLOSED:
        if order.status in TERMINAL_STATUSES:
            order.cancel_pending = None
    elif cancel is _SET:
        order.cancel_pending = cancel_id
    elif cancel is _CLEAR or (cancel is Cancel.CLEAR_IF_THIS and order.cancel_pending == cancel_id):
        order.cancel_pending = None
