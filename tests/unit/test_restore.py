"""What the order tracker rebuilds from its journaled events, at a restart, is the state it
had before: every life of an order below is played on a live tracker, its events go through
JSON as the journal keeps them, and a fresh tracker restored from them must agree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal as D
from typing import Any

import msgspec
import pytest

from fixgw.domain import (
    AnyEvent,
    CancelOrder,
    CancelRejectReason,
    CancelRejectReport,
    Event,
    ExecKind,
    OrderAnomaly,
    OrderEvent,
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
from tests.unit.orders_made import cancel_of, limit_buy
from tests.unit.test_orders import report, submit

Step = Callable[[OrderTracker], list[Event]]


def placed(t: OrderTracker) -> list[Event]:
    return [submit(t, qty="2")]


def cancel_sent(t: OrderTracker) -> list[Event]:
    event = t.cancel_requested(cancel_of())
    return [event] if event is not None else []


def acked(t: OrderTracker) -> list[Event]:
    return t.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "2"))


def half_filled(t: OrderTracker) -> list[Event]:
    return t.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "1",
            "1",
            avg="100",
            last=("1", "100"),
            exec_id="F1",
        )
    )


def filled(t: OrderTracker) -> list[Event]:
    return t.apply_execution(
        report(
            ExecKind.FILL, OrderStatus.FILLED, "2", "0", avg="100", last=("1", "100"), exec_id="F2"
        )
    )


def canceled(t: OrderTracker) -> list[Event]:
    return t.apply_execution(
        report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", cl_ord_id="k1", orig="c1")
    )


def cancel_refused(status: OrderStatus, poss_dup: bool = False) -> Step:
    def step(t: OrderTracker) -> list[Event]:
        return t.apply_cancel_reject(
            CancelRejectReport(
                cl_ord_id="k1",
                orig_cl_ord_id="c1",
                order_id="X1",
                status=status,
                reason=CancelRejectReason.TOO_LATE_TO_CANCEL,
                text="too late",
                ts=utc_now(),
                poss_dup=poss_dup,
            )
        )

    return step


def reported_open(t: OrderTracker) -> list[Event]:
    """Reconciliation: the exchange has the order open, so the cancel out was lost."""
    return t.reconcile(report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "2"))


def canceled_half_filled_while_away(t: OrderTracker) -> list[Event]:
    """Reconciliation: half filled, then canceled, while the gateway was away."""
    return t.reconcile(report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "1", "0", avg="100"))


def answered_canceled_half_filled(t: OrderTracker) -> list[Event]:
    """The same, as the answer to an `order_status`."""
    return t.apply_execution(
        report(ExecKind.ORDER_STATUS, OrderStatus.CANCELED, "1", "0", avg="100")
    )


def venue_pending_cancel(t: OrderTracker) -> list[Event]:
    """The venue's own pending cancel (ExecType 6, OrdStatus 6), of the cancel sent."""
    return t.apply_execution(
        report(
            ExecKind.PENDING_CANCEL,
            OrderStatus.PENDING_CANCEL,
            "1",
            "1",
            avg="100",
            cl_ord_id="k1",
            orig="c1",
        )
    )


def rejected(t: OrderTracker) -> list[Event]:
    return t.apply_execution(report(ExecKind.REJECTED, OrderStatus.REJECTED, "0", "0"))


def refused(t: OrderTracker) -> list[Event]:
    return t.refused("c1", "refused", utc_now())


def restated_smaller(t: OrderTracker) -> list[Event]:
    """The venue restates the order to 1.5 at 99, half filled."""
    return t.apply_execution(
        report(
            ExecKind.RESTATED,
            OrderStatus.PARTIALLY_FILLED,
            "1",
            "0.5",
            avg="100",
            qty=D("1.5"),
            price=D("99"),
        )
    )


def answered_smaller(t: OrderTracker) -> list[Event]:
    """A status answer shows the order as 1.5, the venue having restated it unannounced."""
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "1.5", qty=D("1.5"))
    return t.apply_execution(answer)


def canceled_carrying_half(t: OrderTracker) -> list[Event]:
    """The venue's cancel shows 1 filled: a fill just before it, whose report comes after."""
    return t.apply_execution(
        report(
            ExecKind.CANCELED, OrderStatus.CANCELED, "1", "0", avg="100", cl_ord_id="k1", orig="c1"
        )
    )


def half_filled_leaving_nothing(t: OrderTracker) -> list[Event]:
    """A partial fill saying partially filled with LeavesQty 0, as a venue ends an IOC."""
    return t.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "1",
            "0",
            avg="100",
            last=("1", "100"),
            exec_id="F1",
        )
    )


def half_fill_reported_late(t: OrderTracker) -> list[Event]:
    """The half fill's own report, after a report that counted it: an anomaly only. Its
    ExecID is not journaled (no fill told), so `state` leaves it out: sent again after a
    restart, it is already counted all the same."""
    return t.apply_execution(
        report(
            ExecKind.PARTIAL_FILL,
            OrderStatus.PARTIALLY_FILLED,
            "1",
            "1",
            avg="100",
            last=("1", "100"),
            exec_id="L1",
        )
    )


def rest_canceled(t: OrderTracker) -> list[Event]:
    return t.apply_execution(report(ExecKind.CANCELED, OrderStatus.CANCELED, "1", "0", avg="100"))


def rest_rejected(t: OrderTracker) -> list[Event]:
    return t.apply_execution(report(ExecKind.REJECTED, OrderStatus.REJECTED, "1", "0", avg="100"))


def overfilled(t: OrderTracker) -> list[Event]:
    return t.apply_execution(
        report(
            ExecKind.FILL,
            OrderStatus.FILLED,
            "2.5",
            "0",
            avg="100",
            last=("0.5", "100"),
            exec_id="F3",
        )
    )


def busted(status: OrderStatus, cum: str, leaves: str) -> Step:
    """Asked about after a report it could not read (a trade bust), the venue answers with
    less filled than known: fills taken back, the order live again."""

    def step(t: OrderTracker) -> list[Event]:
        answer = report(
            ExecKind.ORDER_STATUS, status, cum, leaves, avg="100" if cum != "0" else "0"
        )
        return t.reconcile(answer, after_unreadable=True)

    return step


def shown_again_by_the_next_fill(t: OrderTracker) -> list[Event]:
    """A fill whose CumQty shows the fill taken back before it (the answer lagged)."""
    return t.apply_execution(
        report(
            ExecKind.FILL, OrderStatus.FILLED, "2", "0", avg="100", last=("1", "100"), exec_id="F4"
        )
    )


LIVES: dict[str, list[Step]] = {
    "canceled carrying a fill, the fill's report after": [
        placed,
        acked,
        cancel_sent,
        canceled_carrying_half,
        half_fill_reported_late,
    ],
    "filled, then the half fill before it (out of order)": [
        placed,
        acked,
        filled,
        half_fill_reported_late,
    ],
    "half filled after the cancel was acknowledged": [
        placed,
        acked,
        cancel_sent,
        canceled,
        half_filled,
    ],
    "filled after the cancel was acknowledged": [placed, acked, cancel_sent, canceled, filled],
    "overfilled after it filled": [placed, acked, half_filled, filled, overfilled],
    "half filled saying leaves 0, then the rest canceled": [
        placed,
        acked,
        half_filled_leaving_nothing,
        rest_canceled,
    ],
    "half filled, then the rest rejected": [placed, acked, half_filled, rest_rejected],
    "filled, then a fill busted": [
        placed,
        acked,
        half_filled,
        filled,
        busted(OrderStatus.PARTIALLY_FILLED, "1", "1"),
    ],
    "half filled with a cancel out, then the fill busted": [
        placed,
        acked,
        half_filled,
        cancel_sent,
        busted(OrderStatus.NEW, "0", "2"),
    ],
    "half filled, the fill taken back by an answer that lagged, shown again by the next": [
        placed,
        acked,
        half_filled,
        busted(OrderStatus.NEW, "0", "2"),
        shown_again_by_the_next_fill,
    ],
    "acked, half filled, restated smaller": [placed, acked, half_filled, restated_smaller],
    "acked, answered with a smaller quantity": [placed, acked, answered_smaller],
    "acked, half filled, filled": [placed, acked, half_filled, filled],
    "acked, canceled": [placed, acked, cancel_sent, canceled],
    "canceled before the ack came": [placed, cancel_sent, acked, canceled],
    "acked and half filled while a cancel was out": [placed, cancel_sent, acked, half_filled],
    "cancel refused after an ack and a fill it crossed": [
        placed,
        cancel_sent,
        acked,
        half_filled,
        cancel_refused(OrderStatus.PARTIALLY_FILLED),
    ],
    "cancel refused after a fill it crossed": [
        placed,
        acked,
        cancel_sent,
        half_filled,
        cancel_refused(OrderStatus.PARTIALLY_FILLED),
    ],
    "cancel refused before the ack": [placed, cancel_sent, cancel_refused(OrderStatus.NEW)],
    "filled while a cancel was out": [placed, acked, cancel_sent, half_filled, filled],
    "a cancel lost on the way to the exchange": [placed, acked, cancel_sent, reported_open],
    "half filled and canceled while away": [placed, acked, canceled_half_filled_while_away],
    "half filled and canceled, as an order_status answered": [
        placed,
        acked,
        answered_canceled_half_filled,
    ],
    "half filled, then pending cancel at the venue": [
        placed,
        acked,
        half_filled,
        cancel_sent,
        venue_pending_cancel,
    ],
    "half filled, then pending cancel by the venue's own doing": [
        placed,
        acked,
        half_filled,
        lambda t: t.apply_execution(
            report(ExecKind.PENDING_CANCEL, OrderStatus.PENDING_CANCEL, "1", "1", avg="100")
        ),
    ],
    "rejected while a cancel was out": [placed, cancel_sent, rejected],
    "refused while a cancel was out": [placed, cancel_sent, refused],
}


def state(t: OrderTracker) -> dict[str, Any]:
    (order,) = t.all_orders()
    return {
        **t.snapshot(order),
        "underlying": order.status,
        "cancel_pending": order.cancel_pending,
        "taken_back": (order.taken_back, order.taken_back_px),
        "fills": [e for e in order.exec_ids if e.startswith("F")],
        "open": [o.cl_ord_id for o in t.open_orders()],
    }


@pytest.mark.parametrize("life", list(LIVES.values()), ids=list(LIVES))
def test_a_restart_rebuilds_the_order_as_it_was(life: list[Step]) -> None:
    live = OrderTracker()
    events = [event for step in life for event in step(live)]
    journaled = [
        msgspec.json.decode(msgspec.json.encode(e), type=AnyEvent) for e in events
    ]  # as the journal writes and reads them back
    rebuilt = OrderTracker()
    rebuilt.restore(journaled)
    assert state(rebuilt) == state(live)
    assert state(live)["cum_qty"] in (D("0"), D("1"), D("2"), D("2.5"))
    told = sum(
        (e.last_qty for e in journaled if isinstance(e, OrderPartiallyFilled | OrderFilled)),
        D(0),
    )
    assert told - taken_back(journaled) == state(live)["cum_qty"]


def taken_back(events: list[AnyEvent]) -> D:
    """What restatements after a trade bust took back of the fills told, less what later
    restatements restored."""
    back, cum = D(0), D(0)
    for event in events:
        if isinstance(event, OrderEvent):
            if isinstance(event, OrderRestated) and event.cum_qty < cum:
                back += cum - event.cum_qty
            elif isinstance(event, OrderRestated) and event.cum_qty > cum:
                back -= min(back, event.cum_qty - cum)
            cum = event.cum_qty
    return back


def resent(step: Step) -> Step:
    """The exchange sends a report again under a new ExecID (and PossDupFlag), as after a
    restart."""

    def again(t: OrderTracker) -> list[Event]:
        if step is acked:
            return t.apply_execution(report(ExecKind.NEW, OrderStatus.NEW, "0", "2", poss_dup=True))
        return t.apply_execution(
            report(
                ExecKind.CANCELED,
                OrderStatus.CANCELED,
                "0",
                "0",
                cl_ord_id="k1",
                orig="c1",
                poss_dup=True,
            )
        )

    return again


RESENT: dict[str, tuple[list[Step], Step]] = {
    "the ack of an open order": ([placed, acked], resent(acked)),
    "the ack of an order with a cancel out": ([placed, acked, cancel_sent], resent(acked)),
    "the cancel of a canceled order": ([placed, acked, cancel_sent, canceled], resent(canceled)),
}


@pytest.mark.parametrize("life, again", list(RESENT.values()), ids=list(RESENT))
def test_a_report_sent_again_after_a_restart_tells_clients_nothing(
    life: list[Step], again: Step
) -> None:
    live = OrderTracker()
    events = [event for step in life for event in step(live)]
    rebuilt = OrderTracker()
    rebuilt.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent]))
    before = state(rebuilt)
    assert again(rebuilt) == []
    assert state(rebuilt) == before


def sent_again(kind: ExecKind, status: OrderStatus, cum: str, leaves: str, **ids: Any) -> Step:
    """A report under the ExecID `exec_id`: the first time, or again with PossDupFlag."""

    def step(t: OrderTracker) -> list[Event]:
        first = all(e != ids["exec_id"] for o in t.all_orders() for e in o.exec_ids)
        again = report(kind, status, cum, leaves, avg="100", poss_dup=not first, **ids)
        return t.apply_execution(again)

    return step


ack_a1 = sent_again(ExecKind.NEW, OrderStatus.NEW, "0", "2", exec_id="A1")
pending_cancel_p1 = sent_again(
    ExecKind.PENDING_CANCEL,
    OrderStatus.PENDING_CANCEL,
    "0",
    "2",
    exec_id="P1",
    cl_ord_id="k1",
    orig="c1",
)

SAME_EXEC_ID: dict[str, tuple[list[Step], Step]] = {
    "the ack of an order half filled since": ([placed, ack_a1, half_filled], ack_a1),
    "the ack of an order filled since": ([placed, ack_a1, half_filled, filled], ack_a1),
    "the venue's pending cancel of a cancel refused since": (
        [placed, ack_a1, cancel_sent, pending_cancel_p1, cancel_refused(OrderStatus.NEW)],
        pending_cancel_p1,
    ),
}


@pytest.mark.parametrize("life, again", list(SAME_EXEC_ID.values()), ids=list(SAME_EXEC_ID))
def test_a_report_sent_again_under_its_exec_id_is_dropped_after_a_restart_as_before(
    life: list[Step], again: Step
) -> None:
    """docs/protocol.md: duplicates (same ExecID) are dropped, as after a restart."""
    live = OrderTracker()
    events = [event for step in life for event in step(live)]
    rebuilt = OrderTracker()
    rebuilt.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent]))
    before = state(rebuilt)
    assert again(live) == []
    assert again(rebuilt) == []
    assert state(rebuilt) == before


def test_a_cancel_reject_sent_again_is_dropped_once_its_cancel_was_answered() -> None:
    """FIX 4.4 PossDupFlag: the receiver checks whether it took the message before. A
    CancelReject has no ExecID: a repeat is one for a cancel no longer out."""
    live = OrderTracker()
    life = [placed, acked, cancel_sent, cancel_refused(OrderStatus.NEW)]
    events = [event for step in life for event in step(live)]
    rebuilt = OrderTracker()
    rebuilt.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent]))
    again = cancel_refused(OrderStatus.NEW, poss_dup=True)
    assert again(live) == []
    assert again(rebuilt) == []
    out = OrderTracker()
    for step in (placed, acked, cancel_sent):
        step(out)
    [told] = again(out)  # PossDupFlag on the first the gateway sees: the cancel was out
    assert (told.cancel_cl_ord_id, told.status) == ("k1", OrderStatus.NEW)


def canceled_by_the_venue_itself(t: OrderTracker) -> list[Event]:
    """The venue ends the order itself (self-trade prevention, expiry), its report under
    the order's ClOrdID, as a cancel is out."""
    return t.apply_execution(report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0"))


def refused_naming_the_order(status: OrderStatus) -> Step:
    """OKCoin keys cancels on the order: its refusal of one carries the order's ClOrdID in
    ClOrdID (11) and OrigClOrdID (41)."""

    def step(t: OrderTracker) -> list[Event]:
        return t.apply_cancel_reject(
            CancelRejectReport(
                cl_ord_id="c1",
                orig_cl_ord_id="c1",
                order_id="X1",
                status=status,
                reason=CancelRejectReason.TOO_LATE_TO_CANCEL,
                text="too late",
                ts=utc_now(),
            )
        )

    return step


def test_a_cancel_the_venue_overtook_by_canceling_the_order_is_refused_to_no_one() -> None:
    """The order's cancellation answered the cancel out (`order.canceled` names it): the
    venue's refusal of it after, naming the order (OKCoin) or the cancel (FIX 4.4), or an
    E1000 naming the cancel, is dropped, live and after a restart (before the fix it was
    told as `order.cancel_rejected`, under the order's own ClOrdID where it named the order)."""
    live = OrderTracker()
    events = [
        e for step in (placed, acked, cancel_sent, canceled_by_the_venue_itself) for e in step(live)
    ]
    assert events[-1].cancel_cl_ord_id == "k1"  # type: ignore[attr-defined]
    rebuilt = OrderTracker()
    rebuilt.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent]))
    for tracker in (live, rebuilt):
        assert refused_naming_the_order(OrderStatus.CANCELED)(tracker) == []
        assert cancel_refused(OrderStatus.CANCELED)(tracker) == []
        assert tracker.refused("k1", "too late", utc_now()) == []
        assert state(tracker)["underlying"] is OrderStatus.CANCELED


def test_a_cancel_refused_before_the_fill_is_not_out_after_a_restart() -> None:
    """A refusal naming the filled order answers the cancel the fill overtook, if one is
    unanswered (`cancel_out`): not one refused before the fill, after a restart as before
    (before the fix the journal's replay left it out)."""
    live = OrderTracker()
    life = [placed, acked, cancel_sent, cancel_refused(OrderStatus.NEW), half_filled, filled]
    events = [event for step in life for event in step(live)]
    rebuilt = OrderTracker()
    rebuilt.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent]))
    for tracker in (live, rebuilt):
        (order,) = tracker.all_orders()
        assert (order.status, tracker.cancel_out(order)) == (OrderStatus.FILLED, None)


def test_an_order_placed_with_cancel_on_disconnect_says_so_after_a_restart() -> None:
    """The journal keeps it on the order's first event (and only there, only when true: no
    other client sees a field it did not ask for)."""
    live = OrderTracker()
    careful = live.submit(limit_buy("c1", "1", "100"), cancel_on_disconnect=True)
    plain = submit(live, cl_ord_id="c2")
    lines = [msgspec.json.encode(e) for e in (careful, plain)]
    assert b'"cancel_on_disconnect":true' in lines[0]
    assert b"cancel_on_disconnect" not in lines[1]
    rebuilt = OrderTracker()
    rebuilt.restore([msgspec.json.decode(line, type=AnyEvent) for line in lines])
    assert [(o.cl_ord_id, o.cancel_on_disconnect) for o in rebuilt.open_orders()] == [
        ("c1", True),
        ("c2", False),
    ]


def test_the_oms_that_placed_an_order_is_known_after_a_restart() -> None:
    """Written on every new order (null: an API client's), so that an order journaled
    before it was (0.1.0, no `oms`) is told apart: UNSET, left to the bridge's prefixes."""
    live = OrderTracker()
    lines = [
        msgspec.json.encode(live.submit(limit_buy("DESK-1", "1", "100"), oms="DESK")),
        msgspec.json.encode(submit(live, cl_ord_id="DESK-2")),
        msgspec.json.encode(  # as 0.1.0 wrote it
            msgspec.structs.replace(submit(live, cl_ord_id="DESK-3"), oms=msgspec.UNSET)
        ),
    ]
    assert b'"oms":"DESK"' in lines[0] and b'"oms":null' in lines[1]
    assert b'"oms"' not in lines[2]
    rebuilt = OrderTracker()
    rebuilt.restore([msgspec.json.decode(line, type=AnyEvent) for line in lines])
    assert [(o.cl_ord_id, o.oms) for o in rebuilt.open_orders()] == [
        ("DESK-1", "DESK"),
        ("DESK-2", None),
        ("DESK-3", msgspec.UNSET),
    ]


def test_the_cancel_of_an_order_this_gateway_did_not_send_restores_no_order() -> None:
    """Its `order.canceled` is journaled under the cancel's id; a restart holds no order for
    it, as the gateway did not before."""
    live = OrderTracker()
    live.cancel_requested(cancel_of(UNTRACKED, order_id="V-9"))
    events = live.apply_execution(
        report(ExecKind.CANCELED, OrderStatus.CANCELED, "0", "0", cl_ord_id="k1", orig="V-9")
    )
    assert [(type(e).__name__, getattr(e, "cancel_cl_ord_id", None)) for e in events] == [
        ("OrderCanceled", "k1")
    ]
    assert list(live.all_orders()) == []
    rebuilt = OrderTracker()
    assert (
        rebuilt.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent])) == 0
    )
    assert list(rebuilt.all_orders()) == []


def _trading_day(live: OrderTracker, orders: int) -> list[Event]:
    """Orders placed in turn that close out of turn: the even ones fill at once, the odd
    ones rest, and each is cancelled (every third) or filled three orders later; the last
    three stay open. Pruned after each report, as the running gateway prunes after each."""
    journal: list[Event] = []

    def step(events: list[Event]) -> None:
        journal.extend(events)
        live.prune()

    def execution(n: int, kind: ExecKind, status: OrderStatus, cum: str, **extra: Any) -> None:
        leaves = "0" if status in (OrderStatus.FILLED, OrderStatus.CANCELED) else "1"
        extra.setdefault("cl_ord_id", f"o{n}")
        step(live.apply_execution(report(kind, status, cum, leaves, order_id=f"X{n}", **extra)))

    def cancelled(n: int) -> None:
        cancel = CancelOrder(
            ts=utc_now(),
            cl_ord_id=f"k{n}",
            orig_cl_ord_id=f"o{n}",
            order_id=None,
            symbol="BTC/USD",
            side=Side.BUY,
        )
        step([e for e in [live.cancel_requested(cancel)] if e is not None])
        execution(n, ExecKind.CANCELED, OrderStatus.CANCELED, "0", cl_ord_id=f"k{n}", orig=f"o{n}")

    resting: list[int] = []
    for n in range(orders):
        step([live.submit(limit_buy(f"o{n}"))])
        execution(n, ExecKind.NEW, OrderStatus.NEW, "0")
        if n % 2 == 0:
            execution(n, ExecKind.FILL, OrderStatus.FILLED, "1", avg="100", last=("1", "100"))
            continue
        resting.append(n)
        if len(resting) > 3:
            oldest = resting.pop(0)
            if oldest % 3 == 0:
                cancelled(oldest)
            else:
                execution(
                    oldest, ExecKind.FILL, OrderStatus.FILLED, "1", avg="100", last=("1", "100")
                )
    return journal


def _held(t: OrderTracker, ids: list[str]) -> dict[str, Any]:
    return {
        "orders": {o.cl_ord_id: (t.snapshot(o), o.status, o.cancel_ids) for o in t.all_orders()},
        "refused ids": [i for i in ids if t.index.in_use(i) or t.index.forgotten(i)],
    }


def test_a_restart_keeps_the_closed_orders_and_refused_ids_the_running_gateway_kept() -> None:
    """docs/operations.md, Memory follows open orders: the last `keep_closed` closed, by when
    they closed, and the ids of the 10 x `keep_closed` forgotten before them."""
    live = OrderTracker(keep_closed=5)
    journal = _trading_day(live, 80)
    ids = [f"{kind}{n}" for n in range(80) for kind in ("o", "k")]
    rebuilt = OrderTracker(keep_closed=5)
    rebuilt.restore(msgspec.json.decode(msgspec.json.encode(journal), type=list[AnyEvent]))
    assert _held(rebuilt, ids) == _held(live, ids)
    assert len(list(rebuilt.open_orders())) == 3
    assert len(_held(live, ids)["refused ids"]) >= 3 + 5 + 50  # the window is full


def test_the_tracker_holds_no_more_than_keep_closed_closed_orders_while_it_restores() -> None:
    """Memory at start follows the open orders and `keep_closed`, not the journal's history
    (a start after months of trading was killed for memory)."""
    live = OrderTracker(keep_closed=5)
    journal = msgspec.json.decode(msgspec.json.encode(_trading_day(live, 400)), type=list[AnyEvent])
    rebuilt = OrderTracker(keep_closed=5)
    most = 0

    def read() -> Iterator[AnyEvent]:
        nonlocal most
        for event in journal:
            yield event
            most = max(most, sum(1 for _ in rebuilt.all_orders()))

    rebuilt.restore(read())
    assert most <= 5 + 4 + 1  # kept closed, the most open at once, the one just closing


def unreadable(t: OrderTracker) -> list[Event]:
    """A report of the order the gateway could not read (a trade bust): journaled as an
    anomaly, and the order owed the exchange's answer (`Reconciler.ask_about`)."""
    order = t.get("c1")
    assert order is not None
    order.unread = True
    return [
        OrderAnomaly(
            ts=utc_now(),
            cl_ord_id="c1",
            order_id=order.order_id,
            exec_id="B1",
            problem="unreadable",
            detail="ExecType H is not read",
        )
    ]


def answered_after_unreadable(t: OrderTracker) -> list[Event]:
    """The exchange's answer to the question the unreadable report made the gateway ask,
    as `Reconciler` settles it: its events, then an `order.status`."""
    order = t.get("c1")
    assert order is not None
    order.unread = False
    answer = report(ExecKind.ORDER_STATUS, OrderStatus.NEW, "0", "2", avg="0")
    return [*t.reconcile(answer, after_unreadable=True), t.stated(order, answer)]


@pytest.mark.parametrize(
    ("life", "owed"),
    [
        ([placed, acked, filled, unreadable], True),
        ([placed, acked, half_filled, unreadable, cancel_sent], True),
        ([placed, acked, filled, unreadable, answered_after_unreadable], False),
        ([placed, acked, filled, unreadable, answered_after_unreadable, half_filled], False),
        ([placed, acked, filled, unreadable, answered_after_unreadable, unreadable], True),
    ],
    ids=["asked", "asked_then_a_cancel", "answered", "answered_then_filled", "asked_again"],
)
def test_an_order_owed_an_answer_after_an_unreadable_report_is_owed_it_after_a_restart(
    life: list[Step], owed: bool
) -> None:
    """Until an `order.status` tells the answer, whatever else the order's events say."""
    live, events = OrderTracker(), []
    for step in life:
        events.extend(step(live))
    restored = OrderTracker()
    restored.restore(msgspec.json.decode(msgspec.json.encode(events), type=list[AnyEvent]))
    [order], [again] = live.all_orders(), restored.all_orders()
    assert (order.unread, again.unread) == (owed, owed)


def test_a_gtc_order_is_still_gtc_after_a_restart() -> None:
    """Kept on the order's first event, only where the order has one: a GTC order outlives
    the venue's Done for Day after a restart too."""
    live = OrderTracker()
    gtc = live.submit(msgspec.structs.replace(limit_buy("c1"), time_in_force=TimeInForce.GTC))
    plain = submit(live, cl_ord_id="c2")
    lines = [msgspec.json.encode(e) for e in (gtc, plain)]
    assert b'"time_in_force":"gtc"' in lines[0]
    assert b"time_in_force" not in lines[1]
    rebuilt = OrderTracker()
    rebuilt.restore([msgspec.json.decode(line, type=AnyEvent) for line in lines])
    assert [(o.cl_ord_id, o.time_in_force) for o in rebuilt.open_orders()] == [
        ("c1", TimeInForce.GTC),
        ("c2", None),
    ]
