"""How a venue answers, or does not: reports for orders it never acknowledged, cancels of its
own, silence, refusals of what it does not serve, and the gateway's own requests refused."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.testing import API_KEY, SECRET, LocalStack, wait_until
from tests.counterparties.conftest import VenueStackFactory
from tests.counterparties.test_gateway_restarts import restarted
from tests.counterparties.test_venue_extra_fields import accepted_order, journaled, place
from tests.counterparties.venue import (
    Received,
    ScriptedVenue,
    acknowledge,
    answer_status,
    answer_unknown,
    execution_report,
    fill,
    refuse_cancel,
    whole_fill,
)
from tests.integration.conftest import EventLog


def test_a_fill_for_an_order_never_acknowledged_fills_it(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    venue.on("D", lambda v, order: fill(v, order, "F-1"))
    cl_ord_id = place(gw)
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["order_id"], filled["cum_qty"]) == (f"V-{cl_ord_id}", "0.5")
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]


def test_a_cancel_the_venue_makes_on_its_own_cancels_the_order(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="X-1",
            exec_type="4",
            ord_status="4",
            order_id=f"V-{cl_ord_id}",
            leaves_qty="0",
            extra=[(58, "self-trade prevention")],
        ),
    )
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["leaves_qty"], canceled["text"]) == ("0", "self-trade prevention")


@pytest.mark.parametrize("exec_type", ["F", "1"], ids=["trade", "fix42_partial_fill"])
def test_a_market_orders_last_fill_that_cancels_the_rest_is_a_fill_then_a_cancel(
    venue: ScriptedVenue, gw: Client, events: EventLog, exec_type: str
) -> None:
    """One report fills 0.2 of a market order for 0.5 and cancels the rest (OrdStatus 4,
    LeavesQty 0), as a venue ends a market order: clients get the fill, partial, then the
    cancel with the venue's text; the order ends canceled."""
    venue.on("D", acknowledge)
    cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.5")["cl_ord_id"]
    events.find(cl_ord_id, "order.accepted")
    venue.send(
        "8",
        execution_report(
            venue.wait_app("D"),
            exec_id="F-1",
            exec_type=exec_type,
            ord_status="4",
            order_id=f"V-{cl_ord_id}",
            cum_qty="0.2",
            leaves_qty="0",
            avg_px="30000",
            last=("0.2", "30000"),
            extra=[(58, "unfilled rest of market order canceled")],
        ),
    )
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["cum_qty"], canceled["leaves_qty"], canceled["text"]) == (
        "0.2",
        "0",
        "unfilled rest of market order canceled",
    )
    seen = [e for e in events.seen if e.get("cl_ord_id") == cl_ord_id]
    assert [e["type"] for e in seen] == [
        "order.pending_new",
        "order.accepted",
        "order.partially_filled",
        "order.canceled",
    ]
    fill = seen[2]
    assert (fill["exec_id"], fill["last_qty"], fill["cum_qty"], fill["leaves_qty"]) == (
        "F-1",
        "0.2",
        "0.2",
        "0.3",
    )
    [order] = [o for o in gw.request("orders", all=True)["orders"] if o["cl_ord_id"] == cl_ord_id]
    assert (order["status"], order["qty"], order["cum_qty"]) == ("canceled", "0.5", "0.2")
    assert gw.request("trades", symbol="BTC/USD")["trades"][-1]["exec_id"] == "F-1"


def test_a_market_orders_rest_canceled_showing_a_missed_fill_at_no_price_tells_no_fill_at_0(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """OKCoin cancels a market order's rest (ExecType 4) saying 0.4 filled at AvgPx 0,
    where 0.2 was told at 30000: a fill report of 0.2 was missed, and the cancel gives no
    price for it. No fill is told for it: the order takes the venue's quantities
    (`order.restated`), ends canceled with cum_qty 0.4, and is asked about; the answer's
    AvgPx 29950 becomes the order's. Before the fix the 0.2 was told as a fill at 0."""
    venue.on("D", acknowledge)
    cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.5")["cl_ord_id"]
    events.find(cl_ord_id, "order.accepted")
    order = venue.wait_app("D")

    def answer_canceled(v: ScriptedVenue, request: Received) -> None:
        v.send(
            "8",
            execution_report(
                order,
                exec_id=f"S-{request.seq}",
                exec_type="I",
                ord_status="4",
                order_id=f"V-{cl_ord_id}",
                cum_qty="0.4",
                leaves_qty="0",
                avg_px="29950",
            ),
        )

    venue.on("H", answer_canceled)
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    events.find(cl_ord_id, "order.partially_filled")
    rest_canceled = execution_report(
        order,
        exec_id="X-1",
        exec_type="4",
        ord_status="4",
        order_id=f"V-{cl_ord_id}",
        cum_qty="0.4",
        leaves_qty="0",
        avg_px="0",
        extra=[(58, "unfilled rest of market order canceled")],
    )
    venue.send("8", rest_canceled)
    events.find(cl_ord_id, "order.status")
    assert told(events, cl_ord_id)[2:] == [
        ("order.partially_filled", "partially_filled", "0.2"),
        ("order.anomaly", "fill_gap", None),
        ("order.restated", "partially_filled", None),
        ("order.canceled", "canceled", None),
        ("order.restated", "canceled", None),
        ("order.status", "canceled", None),
    ]
    gap = events.find(cl_ord_id, "order.anomaly")
    assert "0.2 filled at a price the exchange does not give" in gap["detail"]
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["cum_qty"], canceled["text"]) == (
        "0.4",
        "unfilled rest of market order canceled",
    )
    fills = [e for e in events.seen if e["type"] in ("order.partially_filled", "order.filled")]
    assert [(e["last_qty"], e["last_px"]) for e in fills] == [("0.2", "30000")]
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]
    assert held(gw, cl_ord_id) == ("canceled", "0.4", "0")
    [kept] = [o for o in gw.orders(all=True) if o["cl_ord_id"] == cl_ord_id]
    assert kept["avg_px"] == "29950"


def report_of(
    order: Received,
    exec_id: str,
    exec_type: str,
    ord_status: str,
    cum_qty: str,
    leaves_qty: str,
    last: tuple[str, str] | None = None,
    extra: Iterable[tuple[int, str | bytes]] = (),
) -> list[tuple[int, str | bytes]]:
    """An ExecutionReport for `order` at an average of 30000 (the venue's OrderID V-<ClOrdID>)."""
    return execution_report(
        order,
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=ord_status,
        order_id=f"V-{order.get(11)}",
        cum_qty=cum_qty,
        leaves_qty=leaves_qty,
        avg_px="30000",
        last=last,
        extra=extra,
    )


def told(events: EventLog, cl_ord_id: str) -> list[tuple[str, str | None, str | None]]:
    """The order's events as (type, status or anomaly's problem, fill's last_qty)."""
    return [
        (e["type"], e.get("problem") or e.get("status"), e.get("last_qty"))
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id
    ]


def trades_of(gw: Client, cl_ord_id: str) -> list[tuple[str, str]]:
    """The order's fills in `trades`, as (exec_id, qty)."""
    trades = gw.request("trades", symbol="BTC/USD")["trades"]
    return [(t["exec_id"], t["qty"]) for t in trades if t["cl_ord_id"] == cl_ord_id]


def held(gw: Client, cl_ord_id: str) -> tuple[str, str, str]:
    [order] = [o for o in gw.orders(all=True) if o["cl_ord_id"] == cl_ord_id]
    return order["status"], order["cum_qty"], order["leaves_qty"]


def test_a_cancel_carrying_a_fill_tells_the_fill_once_before_the_cancel(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue's cancel says 0.2 filled (a trade just before it), and the trade's own
    report comes after it: the 0.2 is told once, as a fill before the cancel, and the late
    report is already counted."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "X-1", "4", "4", "0.2", "0"))
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    late = events.first(lambda e: e["type"] == "order.anomaly" and e["exec_id"] == "F-1")
    assert (late["problem"], "already counted" in late["detail"]) == ("report_after_close", True)
    assert told(events, cl_ord_id)[2:] == [
        ("order.anomaly", "fill_gap", None),
        ("order.partially_filled", "partially_filled", "0.2"),
        ("order.canceled", "canceled", None),
        ("order.anomaly", "report_after_close", None),
    ]
    assert trades_of(gw, cl_ord_id) == [("reconciled:X-1", "0.2")]
    assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")


@pytest.mark.parametrize("ord_status", ["4", "2"], ids=["saying_canceled", "saying_filled"])
def test_a_cancel_showing_the_whole_quantity_filled_after_a_missed_fill_leaves_it_filled(
    venue: ScriptedVenue, gw: Client, events: EventLog, ord_status: str
) -> None:
    """F-1 (0.2 of 0.5) told, F-2's report (0.3) missed, then the venue's cancel (ExecType 4)
    showing CumQty 0.5, nothing left, whether its OrdStatus says Canceled or Filled: the
    order filled before the cancel acted. The 0.3 is one `order.filled`, never a partial
    fill with nothing left then `order.canceled` (FIX 4.4 ranks Filled above Canceled); F-2,
    late, is already counted."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    venue.send("8", report_of(order, "X-1", "4", ord_status, "0.5", "0"))
    venue.send("8", report_of(order, "F-2", "2", "2", "0.5", "0", last=("0.3", "30000")))
    events.first(lambda e: e["type"] == "order.anomaly" and e["exec_id"] == "F-2")
    assert told(events, cl_ord_id)[3:] == [
        ("order.anomaly", "fill_gap", None),
        ("order.filled", "filled", "0.3"),
        ("order.anomaly", "report_after_close", None),
    ]
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.2"), ("reconciled:X-1", "0.3")]
    assert held(gw, cl_ord_id) == ("filled", "0.5", "0")


def test_a_cancel_at_avg_px_0_carrying_a_fill_tells_it_at_the_price_its_late_report_gives(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """As above, but the cancel says AvgPx 0, as OKCoin writes on cancels: no price for the
    0.2, so no fill is told for it then (`order.restated`). The trade's own report, late,
    gives its price: the 0.2 is told once, at 30000, the order staying canceled with
    cum_qty 0.2. Before the fix it was dropped as already counted, and never told."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", lambda v, m: None)  # the gateway's question, answered after F-1 below
    cancel = report_of(order, "X-1", "4", "4", "0.2", "0")
    venue.send("8", [(tag, "0" if tag == 6 else value) for tag, value in cancel])
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    events.find(cl_ord_id, "order.partially_filled")
    answering_canceled_with(order, "0.2")(venue, venue.wait_app("H"))
    events.find(cl_ord_id, "order.status")
    assert told(events, cl_ord_id)[2:] == [
        ("order.anomaly", "fill_gap", None),
        ("order.restated", "partially_filled", None),
        ("order.canceled", "canceled", None),
        ("order.partially_filled", "canceled", "0.2"),
        ("order.status", "canceled", None),
    ]
    assert events.find(cl_ord_id, "order.partially_filled")["last_px"] == "30000"
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]
    assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")


@pytest.mark.parametrize(
    ("reports", "last_told", "fills"),
    [
        (
            [("F-2", "0.3", "0.2"), ("F-1", "0.1", "0.1")],
            ("order.anomaly", "F-1"),
            [("reconciled:F-2", "0.1"), ("F-2", "0.2")],
        ),
        (
            [("F-1", "0.3", "0.1")],
            ("order.partially_filled", "F-1"),
            [("reconciled:F-1", "0.2"), ("F-1", "0.1")],
        ),
    ],
    ids=["out_of_order", "last_qty_short_of_cum_qty"],
)
def test_fills_whose_cum_qty_rises_past_last_qty_are_told_in_full(
    venue: ScriptedVenue,
    gw: Client,
    events: EventLog,
    reports: list[tuple[str, str, str]],
    last_told: tuple[str, str],
    fills: list[tuple[str, str]],
) -> None:
    """Two executions reported in the wrong order (F-2: LastQty 0.2, CumQty 0.3, before
    F-1: LastQty 0.1, CumQty 0.1), or one report whose CumQty counts an execution whose
    report was lost: what CumQty rose by beyond LastQty is told as one fill first, so the
    fills told add up to CumQty 0.3; the late F-1 is then truly already counted."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send_together(
        ("8", report_of(order, exec_id, "1", "1", cum, "0.2", last=(last, "30000")))
        for exec_id, cum, last in reports
    )
    last = events.first(lambda e: (e["type"], e.get("exec_id")) == last_told)
    if last["type"] == "order.anomaly":
        assert (last["problem"], "already counted" in last["detail"]) == ("stale_fill", True)
    assert trades_of(gw, cl_ord_id) == fills
    assert [q for t, _, q in told(events, cl_ord_id) if t == "order.partially_filled"] == [
        qty for _, qty in fills
    ]
    assert held(gw, cl_ord_id) == ("partially_filled", "0.3", "0.2")


def test_a_fill_whose_last_qty_is_more_than_cum_qty_rose_by_is_told_as_the_rise(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """F-1 (LastQty 0.1, CumQty 0.1), then F-2 saying LastQty 0.3 while CumQty rose to 0.3:
    0.1 of F-2's LastQty was counted already. F-2 is told as 0.2, what CumQty rose by, so
    the fills a client or an OMS adds up come to CumQty 0.3, never 0.4."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "F-1", "1", "1", "0.1", "0.4", last=("0.1", "30000")))
    venue.send("8", report_of(order, "F-2", "1", "1", "0.3", "0.2", last=("0.3", "30000")))
    f2 = events.first(lambda e: e["type"] == "order.partially_filled" and e["exec_id"] == "F-2")
    assert (f2["last_qty"], f2["cum_qty"], f2["leaves_qty"]) == ("0.2", "0.3", "0.2")
    gap = events.find(cl_ord_id, "order.anomaly")
    assert (gap["problem"], "the fill is told as 0.2" in gap["detail"]) == ("fill_gap", True)
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.1"), ("F-2", "0.2")]
    assert held(gw, cl_ord_id) == ("partially_filled", "0.3", "0.2")


def at_avg_px(report: list[tuple[int, str | bytes]], avg_px: str) -> list[tuple[int, str | bytes]]:
    """`report` with AvgPx (6) `avg_px`."""
    return [(tag, avg_px if tag == 6 else value) for tag, value in report]


def e1_unpriced_then_e3_with_e2_as_a_gap(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> tuple[str, Received]:
    """An order for 0.5 and its executions E1 0.2 at 30000, E2 0.1 at 30050, E3 0.1 at
    30100. A late ack shows CumQty 0.2 at AvgPx 0: E1's 0.2 is unpriced, and the answer to
    the question it makes the gateway ask gives its AvgPx. E3's report (CumQty 0.4) comes
    next: what CumQty rose by beyond E3's 0.1 (E2's) is told as a gap fill at 30050. E2's
    and E1's own reports are still to come (`e2_then_e1_late`)."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", lambda v, m: v.send("8", report_of(order, f"S-{m.seq}", "I", "1", "0.2", "0.3")))
    venue.send("8", at_avg_px(report_of(order, "A-2", "0", "1", "0.2", "0.3"), "0"))
    events.find(cl_ord_id, "order.status")
    e3 = report_of(order, "E3", "F", "1", "0.4", "0.1", last=("0.1", "30100"))
    venue.send("8", at_avg_px(e3, "30037.5"))
    events.first(lambda e: e.get("exec_id") == "E3")
    return cl_ord_id, order


def e2_then_e1_late(venue: ScriptedVenue, order: Received) -> None:
    e2 = report_of(order, "E2", "F", "1", "0.3", "0.2", last=("0.1", "30050"))
    venue.send("8", at_avg_px(e2, "30016.67"))
    venue.send("8", report_of(order, "E1", "F", "1", "0.2", "0.3", last=("0.2", "30000")))


def each_trade_told_once(events: EventLog, gw: Client, cl_ord_id: str) -> None:
    """E2's late report is the gap fill's quantity, counted already; E1's is the unpriced
    quantity, told at its price: the fills told add up to cum_qty 0.4."""
    events.first(lambda e: e.get("exec_id") == "E1")
    fills = [
        (e["exec_id"], e["last_qty"], Decimal(e["last_px"]))
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id
        and e["type"] in ("order.partially_filled", "order.filled")
    ]
    assert fills[-3:] == [
        ("reconciled:E3", "0.1", 30050),
        ("E3", "0.1", 30100),
        ("E1", "0.2", 30000),
    ]
    stale = events.first(lambda e: e.get("exec_id") == "E2")
    assert (stale["type"], stale["problem"]) == ("order.anomaly", "stale_fill")
    assert trades_of(gw, cl_ord_id) == [("reconciled:E3", "0.1"), ("E3", "0.1"), ("E1", "0.2")]
    assert held(gw, cl_ord_id) == ("partially_filled", "0.4", "0.1")


def test_late_reports_of_an_unpriced_fill_and_of_a_gap_fill_out_of_order_tell_each_trade_once(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """E1 unpriced, E2 told as a gap fill inferred from E3's CumQty; then E2's late report,
    then E1's. Before the fix E2's report was told again as the unpriced quantity's, and
    E1's then dropped as stale: 0.3 in `trades` for a cum_qty of 0.4."""
    cl_ord_id, order = e1_unpriced_then_e3_with_e2_as_a_gap(venue, gw, events)
    e2_then_e1_late(venue, order)
    each_trade_told_once(events, gw, cl_ord_id)


def e1_unpriced_then_e3_before_the_answer(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> tuple[str, Received]:
    """As `e1_unpriced_then_e3_with_e2_as_a_gap`, but E3's report comes before the answer to
    the question the late ack made the gateway ask, which stays unanswered: E3's AvgPx
    30037.5 leaves 9005 for E1's 0.2 and E2's 0.1 together, E1's price unknown, so E2's
    price cannot be known. No fill is told for E2's 0.1: it is at no price too
    (`order.restated`, after a `fill_gap` saying so), E3's fill told at 30100, and avg_px
    E3's AvgPx, which covers all 0.4. Before the fix E2 was told as a gap fill at 90050."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", lambda v, m: None)
    venue.send("8", at_avg_px(report_of(order, "A-2", "0", "1", "0.2", "0.3"), "0"))
    venue.wait_app("H")
    e3 = report_of(order, "E3", "F", "1", "0.4", "0.1", last=("0.1", "30100"))
    venue.send("8", at_avg_px(e3, "30037.5"))
    events.first(lambda e: e.get("exec_id") == "E3" and "last_px" in e)
    fills = [
        (e["exec_id"], e["last_px"])
        for e in events.seen
        if "last_px" in e and e["cl_ord_id"] == cl_ord_id
    ]
    assert fills == [("E3", "30100")]
    gap = events.first(lambda e: e["type"] == "order.anomaly" and e["exec_id"] == "E3")
    assert gap["problem"] == "fill_gap" and "does not give" in gap["detail"]
    restated = events.first(lambda e: e["type"] == "order.restated" and e["cum_qty"] == "0.3")
    assert "0.1 more filled" in restated["text"]
    return cl_ord_id, order


def answering_as_e3_left_it(order: Received) -> Callable[[ScriptedVenue, Received], None]:
    """An OrderStatusRequest answered: CumQty 0.4 at AvgPx 30037.5, as E3's report said."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        status = report_of(order, f"S-{request.seq}", "I", "1", "0.4", "0.1")
        venue.send("8", at_avg_px(status, "30037.5"))

    return answer


def e2_and_e1_told_at_their_prices(
    venue: ScriptedVenue, gw: Client, events: EventLog, cl_ord_id: str, order: Received
) -> None:
    """E2's and E1's late reports each tell their trade at its price and leave avg_px the
    venue's 30037.5: `trades` E3, E2, E1 for cum_qty 0.4."""
    e2_then_e1_late(venue, order)
    events.first(lambda e: e.get("exec_id") == "E1")
    fills = [
        (e["exec_id"], e["last_qty"], Decimal(e["last_px"]))
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id and "last_px" in e
    ]
    assert fills[-2:] == [("E2", "0.1", 30050), ("E1", "0.2", 30000)]
    assert trades_of(gw, cl_ord_id) == [("E3", "0.1"), ("E2", "0.1"), ("E1", "0.2")]
    assert held(gw, cl_ord_id) == ("partially_filled", "0.4", "0.1")
    assert Decimal(held_avg_px(gw, cl_ord_id)) == Decimal("30037.5")


def test_a_gap_is_not_priced_off_an_avg_px_that_covers_a_fill_at_no_price(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """E1 at no price, E3's report before the answer: E2's 0.1 at no price, not a gap fill at
    90050 (`e1_unpriced_then_e3_before_the_answer`); the answer then agrees, and each trade
    is told once, at its price."""
    cl_ord_id, order = e1_unpriced_then_e3_before_the_answer(venue, gw, events)
    answer = answering_as_e3_left_it(order)
    venue.on("H", answer)
    answer(venue, venue.wait_app("H"))
    events.find(cl_ord_id, "order.status")
    e2_and_e1_told_at_their_prices(venue, gw, events, cl_ord_id, order)


def test_a_gap_at_no_price_and_what_avg_px_covers_survive_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """As above, the gateway restarted before the answer to its question: the
    journal tells that E1's and E2's quantity is at no price and that avg_px, E3's AvgPx,
    covers it; E2's and E1's late reports tell each trade once, at its price."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id, order = e1_unpriced_then_e3_before_the_answer(venue, gw, EventLog(gw))
    venue.on("H", answering_as_e3_left_it(order))
    restart(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        e2_and_e1_told_at_their_prices(venue, gw, EventLog(gw), cl_ord_id, order)


def test_a_late_report_of_the_lower_unpriced_span_is_told_after_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """E1's and E2's quantity at no price (`e1_unpriced_then_e3_before_the_answer`); E2's
    late report is told, and the gateway restarted before E1's: the journal tells that E1's
    0.2 is still unpriced, and E1's report is told at 30000. Before the fix the restart took
    E2's 0.1 from the lowest quantity up, E1's no longer unpriced as a whole, and E1's
    report was dropped as `stale_fill`: its trade never told."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = e1_unpriced_then_e3_before_the_answer(venue, gw, events)
        e2 = report_of(order, "E2", "F", "1", "0.3", "0.2", last=("0.1", "30050"))
        venue.send("8", at_avg_px(e2, "30016.67"))
        told = events.first(lambda e: e.get("exec_id") == "E2")
        assert (told["type"], told["last_px"], told["report_cum_qty"]) == (
            "order.partially_filled",
            "30050",
            "0.3",
        )
    venue.on("H", answering_as_e3_left_it(order))
    restart(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        venue.send("8", report_of(order, "E1", "F", "1", "0.2", "0.3", last=("0.2", "30000")))
        e1 = events.first(lambda e: e.get("exec_id") == "E1")
        assert (e1["type"], e1.get("last_qty"), e1.get("last_px")) == (
            "order.partially_filled",
            "0.2",
            "30000",
        )
        assert trades_of(gw, cl_ord_id) == [("E3", "0.1"), ("E2", "0.1"), ("E1", "0.2")]
        assert held(gw, cl_ord_id) == ("partially_filled", "0.4", "0.1")
        assert Decimal(held_avg_px(gw, cl_ord_id)) == Decimal("30037.5")


def test_which_part_of_cum_qty_is_unpriced_survives_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """As above, the gateway restarted before E2's and E1's late reports: the journal tells
    which part of cum_qty is still unpriced."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id, order = e1_unpriced_then_e3_with_e2_as_a_gap(venue, gw, EventLog(gw))
    venue.on("H", lambda v, m: v.send("8", report_of(order, f"S-{m.seq}", "I", "1", "0.4", "0.1")))
    restart(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        e2_then_e1_late(venue, order)
        events.first(lambda e: e.get("exec_id") == "E1")
        assert [(e["exec_id"], e["last_qty"]) for e in events.seen if "last_qty" in e] == [
            ("E1", "0.2")
        ]
        assert events.first(lambda e: e.get("exec_id") == "E2")["problem"] == "stale_fill"
        assert trades_of(gw, cl_ord_id) == [("reconciled:E3", "0.1"), ("E3", "0.1"), ("E1", "0.2")]
        assert held(gw, cl_ord_id) == ("partially_filled", "0.4", "0.1")


def test_a_fill_after_the_cancel_was_acknowledged_is_told_and_survives_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """The venue acknowledges the cancel (CumQty 0), then reports a trade of the whole order
    that crossed the cancel in its engine: the trade is the firm's. It is told as a fill
    (after an anomaly that says so), the order stays closed, and a restart knows it."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        venue.on("F", lambda v, m: v.send("8", report_of(order, "X-1", "4", "4", "0", "0")))
        gw.cancel_order(cl_ord_id=cl_ord_id)
        events.find(cl_ord_id, "order.canceled")
        venue.send("8", report_of(order, "F-1", "2", "2", "0.5", "0", last=("0.5", "30000")))
        filled = events.find(cl_ord_id, "order.filled")
        assert (filled["exec_id"], filled["cum_qty"], filled["leaves_qty"]) == ("F-1", "0.5", "0")
        assert told(events, cl_ord_id)[-2:] == [
            ("order.anomaly", "report_after_close", None),
            ("order.filled", "filled", "0.5"),
        ]
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.5")]
        assert gw.status()["open_orders"] == 0
    assert stack.gateway is not None
    assert stack.gateway.stop(signal.SIGTERM) == 0
    Path(stack.socket_path).unlink(missing_ok=True)
    stack.start_gateway()
    with stack.client() as gw:
        assert held(gw, cl_ord_id) == ("filled", "0.5", "0")
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.5")]


def answering_canceled_with(
    order: Received, cum_qty: str
) -> Callable[[ScriptedVenue, Received], None]:
    """An OrderStatusRequest answered: canceled, `cum_qty` filled, nothing left."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        venue.send("8", report_of(order, f"S-{request.seq}", "I", "4", cum_qty, "0"))

    return answer


def without_last_px(report: list[tuple[int, str | bytes]]) -> list[tuple[int, str | bytes]]:
    """A fill the dialect cannot read: LastPx (31) left out."""
    return [(tag, value) for tag, value in report if tag != 31]


def canceled_by_the_venue(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> tuple[str, Received]:
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "X-1", "4", "4", "0", "0"))
    events.find(cl_ord_id, "order.canceled")
    return cl_ord_id, order


def test_a_trade_on_a_canceled_order_the_answer_to_its_unreadable_report_shows_keeps_it_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue cancels the order, then reports a trade of 0.2 that crossed the cancel
    without LastPx: unreadable, so the order is asked about, and the answer (canceled, 0.2
    filled, nothing left) shows the trade. It is told once, as an execution on a closed
    order is: the order stays canceled, nothing left, and is not canceled again. Before the
    fix it was reopened (`partially_filled`, leaves 0.3), then canceled a second time."""
    cl_ord_id, order = canceled_by_the_venue(venue, gw, events)
    venue.on("H", answering_canceled_with(order, "0.2"))
    venue.send(
        "8", without_last_px(report_of(order, "F-1", "F", "4", "0.2", "0", last=("0.2", "30000")))
    )
    events.find(cl_ord_id, "order.status")  # the answer's, told last
    asked = venue.wait_app("H")
    assert told(events, cl_ord_id)[-4:] == [
        ("order.canceled", "canceled", None),
        ("order.anomaly", "unreadable", None),
        ("order.partially_filled", "canceled", "0.2"),
        ("order.status", "canceled", None),
    ]
    fill = events.find(cl_ord_id, "order.partially_filled")
    assert (fill["exec_id"], fill["cum_qty"], fill["leaves_qty"]) == (
        f"reconciled:S-{asked.seq}",
        "0.2",
        "0",
    )
    assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")
    assert trades_of(gw, cl_ord_id) == [(f"reconciled:S-{asked.seq}", "0.2")]


def test_a_clients_status_request_finding_a_trade_on_a_canceled_order_keeps_it_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """No report of the trade at all; a client's `order_status` gets the venue's answer
    (canceled, 0.2 filled): the trade is told, the order stays canceled."""
    cl_ord_id, order = canceled_by_the_venue(venue, gw, events)
    venue.on("H", answering_canceled_with(order, "0.2"))
    answer = gw.order_status(cl_ord_id=cl_ord_id)
    assert (answer["status"], answer["cum_qty"], answer["leaves_qty"]) == ("canceled", "0.2", "0")
    events.find(cl_ord_id, "order.status")
    assert told(events, cl_ord_id)[-3:] == [
        ("order.canceled", "canceled", None),
        ("order.partially_filled", "canceled", "0.2"),
        ("order.status", "canceled", None),
    ]
    assert events.find(cl_ord_id, "order.partially_filled")["leaves_qty"] == "0"
    assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")


def test_a_trade_on_a_canceled_order_whose_unreadable_report_is_answered_after_a_restart_is_told(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """The gateway is stopped after the unreadable report, before the venue answers the
    status request it made it send: the report was taken (QuickFIX's store and the
    journal's checkpoint are past it), so only the question brings the trade back. The
    restarted gateway asks about the canceled order again, and tells the trade; once
    answered, a further restart does not ask again. Before the fix it never asked, and the
    0.2 was lost."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = canceled_by_the_venue(venue, gw, events)
        venue.on("H", lambda v, m: None)  # no answer before the restart
        venue.send(
            "8",
            without_last_px(report_of(order, "F-1", "F", "4", "0.2", "0", last=("0.2", "30000"))),
        )
        assert events.find(cl_ord_id, "order.anomaly")["problem"] == "unreadable"
        venue.wait_app("H")
    venue.on("H", answering_canceled_with(order, "0.2"))
    restart(stack)
    with stack.client() as gw:
        wait_until(lambda: held(gw, cl_ord_id) == ("canceled", "0.2", "0"), 10, "the trade told")
        assert [qty for _, qty in trades_of(gw, cl_ord_id)] == ["0.2"]
    restart(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        accepted_order(venue, gw, EventLog(gw))  # sent after any question the logon asked
        assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")
    assert len([m for m in venue.app if m.msg_type == "H"]) == 2


def test_a_fill_at_no_price_is_asked_about_and_filled_in_after_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """0.2 of a market order for 0.5 told at 30000; OKCoin cancels the rest saying 0.4
    filled at AvgPx 0, and the gateway asks about it, as after an unreadable report. It is
    stopped before the venue answers. The restarted gateway asks again (the question is
    journaled), and takes the answer's AvgPx 29950; the missed fill's own report then
    comes, 0.2 at 29900, and is told once, the order staying canceled with cum_qty 0.4.
    Before the fix the restart never asked again, and the order kept avg_px 30000."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        venue.on("D", acknowledge)
        venue.on("H", lambda v, m: None)  # no answer before the restart
        cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.5")[
            "cl_ord_id"
        ]
        order = venue.wait_app("D")
        venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
        events.find(cl_ord_id, "order.partially_filled")
        rest_canceled = report_of(order, "X-1", "4", "4", "0.4", "0")
        venue.send("8", [(tag, "0" if tag == 6 else value) for tag, value in rest_canceled])
        events.find(cl_ord_id, "order.canceled")
        venue.wait_app("H")
    asked = [m for m in venue.app if m.msg_type == "H"]

    def answering_29950(v: ScriptedVenue, m: Received) -> None:
        answer = report_of(order, f"S-{m.seq}", "I", "4", "0.4", "0")
        v.send("8", [(tag, "29950" if tag == 6 else value) for tag, value in answer])

    venue.on("H", answering_29950)
    restart(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        wait_until(lambda: held_avg_px(gw, cl_ord_id) == "29950", 10, "the answer's AvgPx")
        assert len([m for m in venue.app if m.msg_type == "H"]) == len(asked) + 1
        missed = report_of(order, "F-2", "1", "1", "0.4", "0.1", last=("0.2", "29900"))
        venue.send("8", [(tag, "29950" if tag == 6 else value) for tag, value in missed])
        fill = events.find(cl_ord_id, "order.partially_filled")
        assert (fill["exec_id"], fill["last_qty"], fill["last_px"]) == ("F-2", "0.2", "29900")
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.2"), ("F-2", "0.2")]
        assert held(gw, cl_ord_id) == ("canceled", "0.4", "0")
        assert held_avg_px(gw, cl_ord_id) == "29950"


def held_avg_px(gw: Client, cl_ord_id: str) -> str:
    [order] = [o for o in gw.orders(all=True) if o["cl_ord_id"] == cl_ord_id]
    return str(order["avg_px"])


def restart(stack: LocalStack) -> None:
    assert stack.gateway is not None
    assert stack.gateway.stop(signal.SIGTERM) == 0
    Path(stack.socket_path).unlink(missing_ok=True)
    stack.start_gateway()


def test_an_overfill_after_the_order_filled_is_told_and_counted(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """One more execution of 0.1 after the order of 0.5 filled (CumQty 0.6): the firm holds
    0.6, so the fill is told, and the order stays filled with the venue's CumQty."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "F-1", "2", "2", "0.5", "0", last=("0.5", "30000")))
    events.find(cl_ord_id, "order.filled")
    venue.send("8", report_of(order, "F-2", "2", "2", "0.6", "0", last=("0.1", "30000")))
    overfill = events.first(lambda e: e.get("exec_id") == "F-2" and e["type"] == "order.filled")
    assert (overfill["cum_qty"], overfill["last_qty"], overfill["status"]) == (
        "0.6",
        "0.1",
        "filled",
    )
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.5"), ("F-2", "0.1")]
    assert held(gw, cl_ord_id) == ("filled", "0.6", "0")


def test_a_fill_saying_partially_filled_with_leaves_0_then_the_cancel_ends_it_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """As some venues end an IOC: a fill of 0.2 of 0.5 with OrdStatus 1 and LeavesQty 0,
    then the venue's cancel of the rest. The venue said partially filled: never `filled`."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0", last=("0.2", "30000")))
    venue.send("8", report_of(order, "X-1", "4", "4", "0.2", "0"))
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["cum_qty"], canceled["leaves_qty"]) == ("0.2", "0")
    assert told(events, cl_ord_id)[2:] == [
        ("order.partially_filled", "partially_filled", "0.2"),
        ("order.canceled", "canceled", None),
    ]
    assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")


def test_a_reject_report_after_a_partial_fill_ends_the_order_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """ExecType 8 after a fill of 0.2 (a risk system pulling the rest): the order traded,
    so it is never told `rejected`; its rest ends canceled, with the venue's Text."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    venue.send("8", report_of(order, "R-1", "8", "8", "0.2", "0", extra=[(58, "risk limit")]))
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["cum_qty"], canceled["text"]) == ("0.2", "risk limit")
    assert "order.rejected" not in [t for t, _, _ in told(events, cl_ord_id)]
    assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")


def test_an_order_the_venue_never_answers_is_asked_about(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(orders={"ack_timeout_s": 1})
    venue.on("H", answer_status)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id = place(gw)
        question = venue.wait_app("H", timeout=15)
        assert question.get(11) == cl_ord_id
        assert events.find(cl_ord_id, "order.accepted")["order_id"] == f"V-{cl_ord_id}"


def test_a_status_request_the_venue_does_not_serve_fails_and_leaves_the_order_as_it_is(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, _ = accepted_order(venue, gw, events)
    venue.on(
        "H",
        lambda v, m: v.send(
            "j", [(45, str(m.seq)), (372, "H"), (380, "3"), (58, "unsupported message type")]
        ),
    )
    with pytest.raises(ApiError) as refused:
        gw.order_status(cl_ord_id=cl_ord_id)
    assert refused.value.code == "exchange_error"
    assert gw.request("orders")["orders"][0]["status"] == "new"


@pytest.mark.parametrize("reason", ["5", "X"], ids=["reason_5", "reason_not_a_number"])
def test_an_order_the_venue_refuses_at_session_level_ends_rejected(
    venue: ScriptedVenue, gw: Client, events: EventLog, reason: str
) -> None:
    """Also when the Reject's SessionRejectReason (373) is not a number, which QuickFIX
    refuses: the gateway reads the Reject itself."""
    venue.on(
        "D",
        lambda v, m: v.send(
            "3", [(45, str(m.seq)), (372, "D"), (373, reason), (371, "40"), (58, "bad OrdType")]
        ),
    )
    cl_ord_id = place(gw)
    rejected = events.find(cl_ord_id, "order.rejected")
    assert "bad OrdType" in str(rejected["text"])
    error = events.first(lambda e: e["type"] == "exchange.error")
    assert (error["source"], error["cl_ord_id"]) == ("session_reject", cl_ord_id)


def test_a_cancel_of_an_order_this_gateway_did_not_send_names_it_as_the_dialect_wants(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    venue.on(
        "F",
        lambda v, m: refuse_cancel(v, m, "8", "1", "unknown order"),
    )
    reply = gw.cancel_order(order_id="V-999", symbol="BTC/USD", side="buy")
    assert (reply["cl_ord_id"], reply["order_id"]) == (None, "V-999")
    cancel = venue.wait_app("F")
    assert (cancel.get(41), cancel.get(37), cancel.get(11)) == (
        "V-999",
        "V-999",
        reply["cancel_cl_ord_id"],
    )
    refused = events.first(lambda e: e["type"] == "order.cancel_rejected")
    assert (refused["cl_ord_id"], refused["order_id"], refused["reason"]) == (
        reply["cancel_cl_ord_id"],
        "V-999",
        "unknown_order",
    )
    # the OrderCancelReject's OrdStatus; the order's numbers, which no one told, are null
    unknown = ("symbol", "side", "order_type", "qty", "price", "cum_qty", "leaves_qty", "avg_px")
    assert refused["status"] == "rejected"
    assert {k: refused[k] for k in unknown} == dict.fromkeys(unknown)


def _sent_at(m: Received) -> datetime:
    return datetime.strptime(m.get(52) or "", "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)


def _refuse_account(venue: ScriptedVenue, request: Received) -> None:
    venue.send("E1000", [(8000, request.get(8000) or ""), (58, "account query not enabled")])


def _answer_account(venue: ScriptedVenue, request: Received | None) -> None:
    """An AccountInfoResponse; unsolicited if `request` is None."""
    acc_req_id = request.get(8000) if request is not None else None
    venue.send(
        "Z1001",
        [(8000, acc_req_id or "unsolicited"), (1, "it-api-key"), (15, "USD"), (8001, "100")],
    )


def test_a_venue_refusing_the_periodic_account_request_is_told_once_and_asked_less_often(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(
        lambda v: v.on("Z1000", _refuse_account), account={"refresh_s": 0.5}
    )
    with stack.client() as gw:
        gw.subscribe(["errors", "account"])
        events = EventLog(gw)
        venue.wait_app("Z1000", nth=3, timeout=20)
        sent = [_sent_at(m) for m in venue.app if m.msg_type == "Z1000"]
        first_gap, second_gap = sent[1] - sent[0], sent[2] - sent[1]
        assert first_gap > timedelta(seconds=1) and second_gap > 1.5 * first_gap, sent
        account = stack.status()["account"]
        assert (account["available"], account["reason"]) == (
            False,
            "the exchange answered with exception: account query not enabled",
        )
        venue.on("Z1000", _answer_account)
        events.first(lambda e: e["type"] == "account.balance", timeout=20)
        assert stack.status()["account"]["available"] is True
        errors = [e for e in events.seen if e["type"] == "exchange.error"]
        assert len(errors) == 1 and errors[0]["acc_req_id"]


def test_a_venue_that_never_answers_the_account_request_leaves_the_balances_unavailable(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue takes every AccountInfoRequest and answers none: status said `available`
    for ever, and the gateway asked every `refresh_s`. Unanswered past
    `api.request_timeout_s`, a request counts as a refusal, until an answer comes."""
    venue, stack = make_venue_stack(account={"refresh_s": 0.5}, api={"request_timeout_s": 1})
    with stack.client() as gw:
        gw.subscribe(["errors", "account"])
        events = EventLog(gw)
        wait_until(lambda: not stack.status()["account"]["available"], 10, "unavailable")
        account = stack.status()["account"]
        assert account["reason"] == "the exchange did not answer an account request within 1 s"
        venue.on("Z1000", _answer_account)
        events.first(lambda e: e["type"] == "account.balance", timeout=30)
        sent = [_sent_at(m) for m in venue.app if m.msg_type == "Z1000"]
        assert sent[-1] - sent[-2] > timedelta(seconds=1), sent  # backed off
        assert stack.status()["account"]["available"] is True
        assert not [e for e in events.seen if e["type"] == "exchange.error"]


def test_a_client_asking_for_the_account_gets_the_refusal_as_its_answer(
    make_venue_stack: VenueStackFactory,
) -> None:
    _, stack = make_venue_stack(lambda v: v.on("Z1000", _refuse_account))
    with stack.client() as gw, pytest.raises(ApiError) as refused:
        gw.request("account")
    assert refused.value.code == "exchange_error"
    assert stack.status()["account"]["available"] is True


def _refuse_market_data(venue: ScriptedVenue, request: Received) -> None:
    if request.get(263) != "2":
        venue.send("Y", [(262, request.get(262) or ""), (281, "4"), (58, "no market data")])


def test_one_subscription_to_a_venue_without_market_data_is_refused_once(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    venue, stack = venue_stack
    venue.on("V", _refuse_market_data)
    with stack.client() as gw:
        gw.subscribe(["account"])
        events = EventLog(gw)
        watcher = stack.client("watcher")
        watcher.subscribe(["md:BTC/USD", "md:BTC/USD:trades"])
        with pytest.raises(ApiError) as refused:
            gw.request("md_subscribe", symbol="BTC/USD")
        assert refused.value.code == "md_rejected"
        venue.wait_app("V", nth=2)
        _answer_account(venue, None)  # a marker: everything before it is handled
        events.first(lambda e: e["type"] == "account.balance")
        requests = [m for m in venue.app if m.msg_type == "V"]
        assert [m.get(263) for m in requests] == ["1", "1"]
        seen = EventLog(watcher)
        with pytest.raises(TimeoutError):
            seen.first(lambda e: False, timeout=0.5)
        rejections = [e for e in seen.seen if e["type"] == "md.rejected"]
        assert len(rejections) == 1
        assert stack.status()["market_data"] == {}
        watcher.close()


def test_a_cancel_reject_that_says_the_order_is_unknown_leaves_it_open_and_asks(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on(
        "F",
        lambda v, m: refuse_cancel(v, m, "8", "1", "unknown order"),
    )
    gw.cancel_order(cl_ord_id=cl_ord_id)
    refused = events.find(cl_ord_id, "order.cancel_rejected")
    assert (refused["reason"], refused["status"]) == ("unknown_order", "new")
    accepted = events.find(cl_ord_id, "order.accepted")  # the whole order, as it carries
    whole = ("order_id", "symbol", "side", "order_type", "qty", "price")
    numbers = ("cum_qty", "leaves_qty", "avg_px")
    assert {k: refused[k] for k in whole + numbers} == {k: accepted[k] for k in whole + numbers}
    assert venue.wait_app("H").get(11) == cl_ord_id  # asked, and answered: still open
    fill(venue, order, "F-1")
    assert events.find(cl_ord_id, "order.filled")["cum_qty"] == "0.5"
    assert not [e for e in events.seen if e["type"] in ("order.rejected", "order.anomaly")]


def test_an_ack_slower_than_the_ack_timeout_is_taken_once(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(orders={"ack_timeout_s": 1})
    late: list[Received] = []
    venue.on("D", lambda v, order: late.append(order))
    venue.on("H", answer_status)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id = place(gw)
        venue.wait_app("H", timeout=15)  # the ack timed out: the gateway asked
        accepted = events.find(cl_ord_id, "order.accepted")
        acknowledge(venue, late[0])  # the venue's own ack, late
        fill(venue, late[0], "F-1")
        events.find(cl_ord_id, "order.filled")
        assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
            "order.pending_new",
            "order.accepted",
            "order.filled",
        ]
        assert accepted["order_id"] == f"V-{cl_ord_id}"


def test_an_order_the_venue_did_not_know_yet_when_asked_comes_back_with_its_fill(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue is slow to take an order: asked about it after the ack timeout, it answers
    it has no such order, and the order ends rejected, reason `unknown_at_exchange` (the
    gateway's inference). Then the venue acknowledges and fills it: the order comes back,
    and the fill reaches the client as a fill, with the venue's numbers."""
    venue, stack = make_venue_stack(orders={"ack_timeout_s": 1})
    late: list[Received] = []
    venue.on("D", lambda v, order: late.append(order))
    venue.on("H", answer_unknown)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id = place(gw)
        rejected = events.find(cl_ord_id, "order.rejected", timeout=15)
        assert (rejected["reason"], rejected["order_id"]) == ("unknown_at_exchange", None)
        acknowledge(venue, late[0])
        fill(venue, late[0], "F-1")
        filled = events.find(cl_ord_id, "order.filled")
        assert (filled["cum_qty"], filled["leaves_qty"], filled["order_id"]) == (
            "0.5",
            "0",
            f"V-{cl_ord_id}",
        )
        assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
            "order.pending_new",
            "order.rejected",
            "order.accepted",
            "order.filled",
        ]
        [held] = [o for o in gw.orders(all=True) if o["cl_ord_id"] == cl_ord_id]
        assert (held["status"], held["cum_qty"]) == ("filled", "0.5")
        assert gw.request("trades", symbol="BTC/USD")["trades"][-1]["exec_id"] == "F-1"


def test_a_status_answer_that_shows_the_order_canceled_is_told_as_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue cancelled the order without a report of it (an expiry, a venue-side
    cancel it did not send): a client asking the order's status learns it, and so does every
    subscriber, as `order.canceled`, the event a client watches for, not as a restatement."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def answer_canceled(v: ScriptedVenue, request: Received) -> None:
        report = execution_report(
            order,
            exec_id=f"S-{request.seq}",
            exec_type="I",
            ord_status="4",
            order_id=f"V-{cl_ord_id}",
        )
        v.send("8", [*report, (58, "expired at the session's end")])

    venue.on("H", answer_canceled)
    answer = gw.order_status(cl_ord_id=cl_ord_id)
    assert (answer["status"], answer["source"]) == ("canceled", "exchange")
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["status"], canceled["leaves_qty"], canceled["text"]) == (
        "canceled",
        "0",
        "expired at the session's end",
    )
    assert gw.request("orders")["orders"] == []


def test_order_status_names_the_cancel_still_out_as_orders_does(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue leaves cancels unanswered. `order_status` said `cancel_cl_ord_id: null`
    for an order `pending_cancel`, where `orders` named the cancel: a client asking which
    cancel is out, to match the answer to come, was told none is. Both answers: the local
    one (the venue has not acknowledged the order) and the venue's. No ack timeout: nothing
    asks the venue about the order it leaves unacknowledged."""
    venue, stack = make_venue_stack(orders={"ack_timeout_s": 0})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        unacked = place(gw)
        venue.wait_app("D")  # taken, unanswered, before the venue acknowledges orders
        acked, _ = accepted_order(venue, gw, events)
        cancels = {
            cl_ord_id: gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
            for cl_ord_id in (unacked, acked)
        }
        listed = {o["cl_ord_id"]: o["cancel_cl_ord_id"] for o in gw.orders()}
        answers = {cl_ord_id: gw.order_status(cl_ord_id=cl_ord_id) for cl_ord_id in cancels}
    assert {c: (a["source"], a["status"]) for c, a in answers.items()} == {
        unacked: ("local", "pending_cancel"),
        acked: ("exchange", "pending_cancel"),
    }
    assert {c: a["cancel_cl_ord_id"] for c, a in answers.items()} == listed == cancels


def test_an_unknown_order_answer_to_a_clients_status_request_leaves_an_acked_order_live(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue's status service answers "unknown order" about an order it acknowledged
    (lagging, or pruned): the order is not taken for rejected on that word; its fill, when
    it comes, reaches the client as a fill."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answer_unknown)
    answer = gw.order_status(cl_ord_id=cl_ord_id)
    assert (answer["status"], answer["text"]) == ("new", "unknown order")
    anomaly = events.find(cl_ord_id, "order.anomaly")
    assert anomaly["problem"] == "unknown_at_exchange"
    fill(venue, order, "F-1")
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["cum_qty"], filled["order_id"]) == ("0.5", f"V-{cl_ord_id}")
    assert not [e for e in events.seen if e["type"] == "order.rejected"]


def refuse_quoting_the_account(how: str) -> Callable[[ScriptedVenue, Received], None]:
    """A venue refusing an order's Account says which: `Invalid Account: <Account (1)>`,
    which OKCoin's orders carry as `apiKey,secretKey`."""

    def refuse(v: ScriptedVenue, order: Received) -> None:
        text = f"Invalid Account: {order.get(1)}"
        if how == "session_reject":
            v.send("3", [(45, str(order.seq)), (372, "D"), (373, "5"), (371, "1"), (58, text)])
        elif how == "session_reject_reason":
            v.send("3", [(45, str(order.seq)), (372, "D"), (373, text), (371, "1")])
        elif how == "business_reject_reason":
            v.send("j", [(45, str(order.seq)), (372, "D"), (379, order.get(11) or ""), (380, text)])
        elif how == "exception_response":
            v.send("E1000", [(11, order.get(11) or ""), (58, text)])
        else:
            v.logout(text, "1" if how == "logout_invalid_credentials" else "3")

    return refuse


def holding(secret: str, stack: LocalStack, events: EventLog) -> list[str]:
    """Where `secret` is: what clients got, the journal, the status, the log."""
    assert stack.gateway is not None
    places = {
        "events": json.dumps(events.seen),
        "journal": Path(stack.gateway_config()["journal"]["path"]).read_text(),
        "status": json.dumps(stack.status()),
        "log": stack.gateway.log(),
    }
    return [name for name, text in places.items() if secret in text]


@pytest.mark.parametrize(
    "how",
    [
        "session_reject",
        "session_reject_reason",
        "business_reject_reason",
        "exception_response",
        "logout_server_error",
        "logout_invalid_credentials",
    ],
)
def test_the_secret_key_a_venue_quotes_in_its_text_is_masked_everywhere(
    make_venue_stack: VenueStackFactory, how: str
) -> None:
    _, stack = make_venue_stack(lambda v: v.on("D", refuse_quoting_the_account(how)))
    with stack.client() as gw:
        gw.subscribe(["orders", "errors", "session"])
        events = EventLog(gw)
        place(gw)
        told = events.first(lambda e: "Invalid Account" in json.dumps(e))
        assert f"Invalid Account: {API_KEY},***" in json.dumps(told)
        assert holding(SECRET, stack, events) == []


def test_a_secret_key_rotated_by_a_reload_is_masked_as_the_old_one_was(
    make_venue_stack: VenueStackFactory, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n")
    venue, stack = make_venue_stack(
        venue_credentials=None, credentials={"secret_key": {"file": str(secret_file)}}
    )
    assert stack.gateway is not None and stack.gateway.popen is not None
    rotated = "it-rotated-secret-key"
    secret_file.write_text(f"{rotated}\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in stack.gateway.log(), 10, "the reload")  # type: ignore[union-attr]
    venue.on("D", refuse_quoting_the_account("session_reject"))
    with stack.client() as gw:
        gw.subscribe(["orders", "errors", "session"])
        events = EventLog(gw)
        rejected = events.find(place(gw), "order.rejected")
        assert venue.wait_app("D").get(1) == f"{API_KEY},{rotated}"
        assert rejected["text"].endswith(f"Invalid Account: {API_KEY},***")
        assert holding(rotated, stack, events) == []


def test_a_fill_at_a_price_that_is_also_a_short_secret_key_is_read_as_the_venue_sent_it(
    make_venue_stack: VenueStackFactory, tmp_path: Path
) -> None:
    """A weak secret key (`30010`, a UAT password, say) that is also the price of a fill:
    masking what is shown never changes what the gateway reads, so the fill is taken."""
    weak = "30010"
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{weak}\n")
    venue, stack = make_venue_stack(
        lambda v: v.on("D", acknowledge),
        venue_credentials=(API_KEY, weak),
        credentials={"secret_key": {"file": str(secret_file)}},
    )
    with stack.client() as gw:
        gw.subscribe(["orders", "errors"])
        events = EventLog(gw)
        cl_ord_id = place(gw, price=weak)
        events.find(cl_ord_id, "order.accepted")
        fill(venue, venue.wait_app("D"), "F-1")
        filled = events.find(cl_ord_id, "order.filled")
        assert (filled["last_px"], filled["avg_px"], filled["status"]) == (weak, weak, "filled")
        assert gw.status()["dialect_errors"] == 0


def test_a_fill_whose_encoded_text_quotes_the_secret_key_is_read_as_the_venue_sent_it(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue's EncodedText (355, read by its length, 354) quotes the order back FIX-style,
    SOH, `58=Invalid Account: key,secret` and more `tag=value` pieces: it is data, so masking
    leaves it whole in what is read, and the fill is 0.5 @ 30000 as sent; what is shown of it
    is masked."""
    venue, stack = make_venue_stack()
    with stack.client() as gw:
        gw.subscribe(["orders", "errors"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        data = f"filled\x0158=Invalid Account: {API_KEY},{SECRET}\x0131=1\x0132=0.1".encode()
        core = whole_fill(order, "F-1", [(58, "fill")])
        venue.send("8", [*core[:3], (354, str(len(data))), (355, data), *core[3:]])
        filled = events.find(cl_ord_id, "order.filled")
        assert (filled["last_qty"], filled["last_px"], filled["cum_qty"]) == ("0.5", "30000", "0.5")
        assert holding(SECRET, stack, events) == []


@pytest.mark.parametrize("tag", [60, 6, 150], ids=["TransactTime", "AvgPx", "ExecType"])
def test_a_secret_key_quoted_in_a_typed_field_is_masked_in_why_the_report_is_unreadable(
    make_venue_stack: VenueStackFactory, tag: int
) -> None:
    """The error saying why a report cannot be read quotes the value it could not read
    (`not a FIX decimal: '...'`): masked as the message is, in the log, the anomaly and the
    journal."""
    venue, stack = make_venue_stack()
    with stack.client() as gw:
        gw.subscribe(["orders", "errors", "session"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        body = execution_report(
            order,
            exec_id="X-1",
            exec_type="8",
            ord_status="8",
            order_id=f"V-{cl_ord_id}",
            leaves_qty="0",
            extra=[(58, "Invalid Account")],
        )
        venue.send("8", [(t, f"{API_KEY},{SECRET}" if t == tag else v) for t, v in body])
        anomaly = events.find(cl_ord_id, "order.anomaly")
        assert anomaly["problem"] == "unreadable"
        assert f"{API_KEY},***" in anomaly["detail"].partition(": 8=")[0]
        assert holding(SECRET, stack, events) == []


def test_a_secret_key_quoted_in_an_unreadable_account_answer_is_masked_in_the_reply(
    make_venue_stack: VenueStackFactory,
) -> None:
    """OKCoin's AccountInfoResponse (Z1001) with the Account in Balance (8001): the client's
    `account` fails with why, the secret key masked there, in `exchange.error` and the log."""

    def answer(v: ScriptedVenue, request: Received) -> None:
        v.send(
            "Z1001", [(8000, request.get(8000) or ""), (15, "USD"), (8001, f"{API_KEY},{SECRET}")]
        )

    _, stack = make_venue_stack(lambda v: v.on("Z1000", answer))
    with stack.client() as gw:
        gw.subscribe(["errors", "account"])
        events = EventLog(gw)
        with pytest.raises(ApiError) as refused:
            gw.request("account")
        assert f"{API_KEY},***" in str(refused.value)
        assert SECRET not in str(refused.value)
        assert holding(SECRET, stack, events) == []


def test_a_secret_key_after_an_soh_in_the_encoded_text_of_an_unreadable_report_is_masked(
    make_venue_stack: VenueStackFactory,
) -> None:
    """EncodedText is data and may hold SOH: the secret key after one, in a piece with no
    `=`, is masked in the unreadable report's `raw` as anywhere else in it."""
    venue, stack = make_venue_stack()
    with stack.client() as gw:
        gw.subscribe(["orders", "errors", "session"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        data = f"refused\x01Invalid Account: {API_KEY},{SECRET}".encode()
        body = execution_report(
            order,
            exec_id="X-1",
            exec_type="Z",
            ord_status="8",
            order_id=f"V-{cl_ord_id}",
            leaves_qty="0",
            extra=[(58, "refused"), (354, str(len(data))), (355, data)],
        )
        venue.send("8", body)
        anomaly = events.find(cl_ord_id, "order.anomaly")
        assert anomaly["problem"] == "unreadable"
        assert f"refused|Invalid Account: {API_KEY},***" in anomaly["detail"]
        assert holding(SECRET, stack, events) == []


# ---------------------------------------------------------------- orders placed elsewhere

ELSEWHERE = {"order_id": "V-55", "symbol": "BTC/USD", "side": "buy"}
"""An order this gateway did not send, named as a client names it."""

NO_GATEWAY_TIME_OUT = {"request_timeout_s": 60}
"""`api` config: the gateway's time-out of a request beyond the client's own wait, so that a
request left to time out fails the test by the client's `TimeoutError`."""


@pytest.mark.parametrize(
    "refusal", ["session_reject", "business_reject", "business_reject_by_order_id"]
)
def test_a_refused_status_request_for_an_order_this_gateway_did_not_send_fails_at_once(
    make_venue_stack: VenueStackFactory, refusal: str
) -> None:
    """OKCoin's request names such an order by OrderID alone. The venue refuses it by a
    Reject naming its MsgSeqNum, by a BusinessMessageReject naming it too, or by one naming
    only its id (BusinessRejectRefID): the asker's answer is `exchange_error`."""

    def refuse(v: ScriptedVenue, m: Received) -> None:
        if refusal == "session_reject":
            v.send("3", [(45, str(m.seq)), (372, "H"), (373, "5"), (371, "37"), (58, "no")])
            return
        named = [(45, str(m.seq))] if refusal == "business_reject" else []
        v.send("j", [*named, (372, "H"), (379, m.get(37) or ""), (380, "0"), (58, "no")])

    venue, stack = make_venue_stack(lambda v: v.on("H", refuse), api=NO_GATEWAY_TIME_OUT)
    with stack.client() as gw, pytest.raises(ApiError) as refused:
        gw.order_status(**ELSEWHERE)
    assert refused.value.code == "exchange_error"
    request = venue.wait_app("H")
    assert (request.get(37), request.get(11)) == ("V-55", None)


@pytest.mark.parametrize("order_id", ["NONE", "refused"])
def test_an_unknown_order_answer_about_an_order_placed_elsewhere_is_the_askers_reply_only(
    make_venue_stack: VenueStackFactory, order_id: str
) -> None:
    """The venue does not know the order: its answer names none (OrderID NONE, or the
    `refused` OKCoin's clients saw) and, to a request without a ClOrdID, no ClOrdID either.
    It answers the one such question waiting with its Symbol and Side: the asker's reply,
    no event for anyone, nothing journaled."""

    def not_found(v: ScriptedVenue, m: Received) -> None:
        v.send(
            "8",
            [
                *((37, order_id), (17, f"S-{m.seq}"), (150, "I"), (39, "8")),
                *((55, m.get(55) or ""), (54, m.get(54) or "")),
                *((14, "0"), (151, "0"), (6, "0"), (58, "order not found")),
            ],
        )

    def script(v: ScriptedVenue) -> None:
        v.on("H", not_found)
        v.on("D", acknowledge)

    _, stack = make_venue_stack(script, api=NO_GATEWAY_TIME_OUT)
    with stack.client("watcher") as watcher, stack.client() as gw:
        watcher.subscribe(["orders", "errors"])
        answer = gw.order_status(**ELSEWHERE)
        assert (answer["order_id"], answer["status"], answer["text"]) == (
            "V-55",
            "rejected",
            "order not found",
        )
        marker = place(gw)
        seen = EventLog(watcher)
        seen.find(marker, "order.accepted")  # every event before it has arrived
        assert [e["type"] for e in seen.seen] == ["order.pending_new", "order.accepted"]
    journal = Path(stack.gateway_config()["journal"]["path"]).read_text()
    assert "order.anomaly" not in journal and "V-55" not in journal


def test_a_business_reject_naming_the_mass_status_request_by_its_id_fails_it_at_once(
    make_venue_stack: VenueStackFactory,
) -> None:
    """FIX 4.4's BusinessMessageReject names the message it refuses by its business id
    (BusinessRejectRefID: the MassStatusReqID); RefSeqNum is optional, and absent here."""

    def refuse(v: ScriptedVenue, m: Received) -> None:
        v.send("j", [(372, "AF"), (379, m.get(584) or ""), (380, "3"), (58, "unsupported")])

    venue, stack = make_venue_stack(lambda v: v.on("AF", refuse), api=NO_GATEWAY_TIME_OUT)
    with stack.client() as gw:
        gw.subscribe(["errors"])
        events = EventLog(gw)
        with pytest.raises(ApiError) as refused:
            gw.request("orders", from_exchange=True)
        assert refused.value.code == "exchange_error"
        error = events.first(lambda e: e["type"] == "exchange.error")
    assert (error["ref_msg_type"], error["mass_status_req_id"]) == (
        "AF",
        venue.wait_app("AF").get(584),
    )


def test_a_cancel_of_an_order_this_gateway_did_not_send_carried_out_is_told_as_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue cancels the order (ExecType 4 under the cancel's ClOrdID, its own id in
    OrigClOrdID and OrderID): `order.canceled` under the cancel's id, as its refusal would
    be `order.cancel_rejected`; no anomaly, and no order of the gateway's."""

    def carry_out(v: ScriptedVenue, m: Received) -> None:
        v.send(
            "8",
            [
                *((37, m.get(37) or ""), (11, m.get(11) or ""), (41, m.get(41) or "")),
                *((17, f"C-{m.seq}"), (150, "4"), (39, "4")),
                *((55, m.get(55) or ""), (54, m.get(54) or ""), (38, "1"), (40, "2")),
                *((44, "31000"), (14, "0.25"), (151, "0"), (6, "30990")),
            ],
        )

    venue.on("F", carry_out)
    venue.on("D", acknowledge)
    reply = gw.cancel_order(order_id="V-888", symbol="BTC/USD", side="buy")
    canceled = events.first(lambda e: e["type"] == "order.canceled")
    cancel_cl_ord_id = reply["cancel_cl_ord_id"]
    assert {k: canceled[k] for k in ("cl_ord_id", "cancel_cl_ord_id", "order_id")} == {
        "cl_ord_id": cancel_cl_ord_id,
        "cancel_cl_ord_id": cancel_cl_ord_id,
        "order_id": "V-888",
    }
    assert [canceled[k] for k in ("status", "qty", "cum_qty", "leaves_qty")] == [
        "canceled",
        "1",
        "0.25",
        "0",
    ]
    marker = place(gw)
    events.find(marker, "order.accepted")  # every event before it has arrived
    assert [e for e in events.seen if e["type"] == "order.anomaly"] == []
    orders = gw.request("orders", all=True)["orders"]
    assert [o["cl_ord_id"] for o in orders] == [marker]


@pytest.mark.parametrize("named", ["the_order", "NONE"])
def test_a_cancel_reject_naming_the_order_not_the_cancel_ends_the_pending_cancel(
    venue: ScriptedVenue, gw: Client, events: EventLog, named: str
) -> None:
    """FIX 4.4 lets an OrderCancelReject carry in ClOrdID (11) the original order's id
    rather than the cancel's, or NONE: it still answers the one cancel of the order out.
    The order is back to new, and the kill switch's cancel of it goes to the venue (before
    the fix it stayed pending_cancel: `cancel_all` said `cancelling` and sent nothing)."""
    cl_ord_id, _ = accepted_order(venue, gw, events)
    in_11 = cl_ord_id if named == "the_order" else "NONE"

    def refuse_naming_the_order(v: ScriptedVenue, m: Received) -> None:
        v.send(
            "9",
            [
                *((37, m.get(37) or ""), (11, in_11), (41, cl_ord_id), (39, "0")),
                *((434, "1"), (102, "0"), (58, "cannot cancel now")),
            ],
        )

    venue.on("F", refuse_naming_the_order)
    cancel_cl_ord_id = gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
    refused = events.find(cl_ord_id, "order.cancel_rejected")
    assert (refused["cancel_cl_ord_id"], refused["status"]) == (cancel_cl_ord_id, "new")
    (held,) = gw.orders()
    assert held["status"] == "new"
    venue.on("F", lambda v, m: None)
    assert gw.request("cancel_all")["cancelling"] == [cl_ord_id]
    again = venue.wait_app("F", nth=2)
    assert (again.get(41), again.get(11) != cancel_cl_ord_id) == (cl_ord_id, True)


@pytest.mark.parametrize("refused", ["at_once", "after_a_restart"])
def test_a_cancel_the_venue_overtook_by_canceling_the_order_itself_is_refused_to_no_one(
    make_venue_stack: VenueStackFactory, refused: str
) -> None:
    """The venue ends the order itself (self-trade prevention, expiry) as the cancel comes:
    its cancel report under the order's ClOrdID answers the cancel (`order.canceled` names
    it). Its refusal of the cancel after, naming the order (OKCoin keys cancels on the
    order), at once or after the gateway restarted, is its too-late word on a cancel
    answered already: no `order.cancel_rejected` (before the fix: one whose
    `cancel_cl_ord_id` was the order's own ClOrdID)."""
    venue, stack = make_venue_stack()
    taken: list[Received] = []

    def cancel_itself(v: ScriptedVenue, m: Received) -> None:
        v.send("8", execution_report(taken[0], exec_id="X-STP", exec_type="4", ord_status="4",
                                     order_id=m.get(37), leaves_qty="0",
                                     extra=[(58, "self-trade prevention")]))  # fmt: skip

    def refuse_naming_the_order() -> None:
        cl_ord_id = taken[0].get(11) or ""
        venue.send("9", [(37, f"V-{cl_ord_id}"), (11, cl_ord_id), (41, cl_ord_id), (39, "4"),
                         (434, "1"), (102, "0"), (58, "too late: canceled")])  # fmt: skip

    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        taken.append(order)
        venue.on("F", cancel_itself)
        cancel_cl_ord_id = gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
        canceled = events.find(cl_ord_id, "order.canceled")
        if refused == "at_once":
            refuse_naming_the_order()
            events.find(place(gw), "order.accepted")  # every event before it has arrived
            told = events.seen
    if refused == "after_a_restart":
        restarted(stack)
        with stack.client() as gw:
            gw.subscribe(["orders"])
            events = EventLog(gw)
            refuse_naming_the_order()
            events.find(place(gw), "order.accepted")
            told = events.seen
    assert canceled["cancel_cl_ord_id"] == cancel_cl_ord_id
    assert [e for e in told if e["type"] == "order.cancel_rejected"] == []


@pytest.mark.parametrize("refusal", ["exception_response", "business_reject"])
def test_a_cancel_refused_naming_its_order_not_the_cancel_ends_the_pending_cancel(
    make_venue_stack: VenueStackFactory, refusal: str
) -> None:
    """OKCoin's cancels key on the order: an ExceptionResponse (E1000) refusing one may carry
    the order's ClOrdID (11), a BusinessMessageReject (RefMsgType F) the order's in
    BusinessRejectRefID. The order was acknowledged long before: its cancel is the one
    request of it these can refuse. `order.cancel_rejected`, the order back to new (before
    the fix it stayed pending_cancel until the next logon, and a new cancel was refused)."""

    def refuse_naming_the_order(v: ScriptedVenue, m: Received) -> None:
        if refusal == "exception_response":
            v.send("E1000", [(11, m.get(41) or ""), (58, "cancel failed: system busy")])
        else:
            v.send("j", [(372, "F"), (379, m.get(41) or ""), (380, "0"), (58, "system busy")])

    venue, stack = make_venue_stack(orders={"ack_timeout_s": 0})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, _ = accepted_order(venue, gw, events)
        venue.on("F", refuse_naming_the_order)
        cancel_cl_ord_id = gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
        refused = events.find(cl_ord_id, "order.cancel_rejected")
        assert (refused["cancel_cl_ord_id"], refused["status"]) == (cancel_cl_ord_id, "new")
        assert "system busy" in refused["text"]
        (held,) = gw.orders()
        assert held["status"] == "new"
        gw.cancel_order(cl_ord_id=cl_ord_id)
        assert venue.wait_app("F", nth=2).get(41) == cl_ord_id


def test_an_exception_response_without_text_rejects_the_order_saying_no_reason_was_given(
    make_venue_stack: VenueStackFactory,
) -> None:
    """okcoin-fix44.md knows no E1000 body beyond Text, and this one has none: the order's
    text says so (before the fix it read "...: None", to clients, the journal and an OMS)."""
    _, stack = make_venue_stack(
        lambda v: v.on("D", lambda v, m: v.send("E1000", [(11, m.get(11) or "")]))
    )
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        rejected = events.find(place(gw), "order.rejected")
    assert rejected["text"] == "the exchange answered with exception, giving no reason"


def test_a_business_reject_naming_an_order_by_its_id_alone_rejects_it(
    make_venue_stack: VenueStackFactory,
) -> None:
    """FIX 4.4 requires RefMsgType (372) in a BusinessMessageReject; this venue's names the
    order not yet acknowledged by BusinessRejectRefID (379) alone, no RefSeqNum either: the
    order ends rejected (before the fix it stayed pending_new until the next logon)."""

    def refuse(v: ScriptedVenue, m: Received) -> None:
        v.send("j", [(379, m.get(11) or ""), (380, "5"), (58, "no such account")])

    _, stack = make_venue_stack(lambda v: v.on("D", refuse), orders={"ack_timeout_s": 0})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        rejected = events.find(place(gw), "order.rejected")
    assert rejected["text"] == "the exchange answered with business_reject: no such account"


@pytest.mark.parametrize("last_px", [None, "0"], ids=["no_last_px", "last_px_0"])
def test_a_fill_without_a_price_is_unreadable_and_the_answer_brings_it_at_the_venues_price(
    venue: ScriptedVenue, gw: Client, events: EventLog, last_px: str | None
) -> None:
    """A fill with no LastPx (31), or LastPx 0, and AvgPx 0: FIX 4.4 and the dialect
    require LastPx on a fill, so the report is unreadable and the order asked about; the
    answer's fill is told at the venue's price, never at 0 (before the fix it was told,
    journaled and listed in `trades` at price 0)."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def answer_filled(v: ScriptedVenue, m: Received) -> None:
        v.send(
            "8",
            execution_report(
                order,
                exec_id=f"S-{m.seq}",
                exec_type="I",
                ord_status="2",
                order_id=f"V-{cl_ord_id}",
                cum_qty="0.5",
                leaves_qty="0",
                avg_px="30000",
            ),
        )

    venue.on("H", answer_filled)
    priceless = execution_report(
        order,
        exec_id="F-1",
        exec_type="2",
        ord_status="2",
        order_id=f"V-{cl_ord_id}",
        cum_qty="0.5",
        leaves_qty="0",
        avg_px="0",
        last=("0.5", last_px or "30000"),
    )
    venue.send("8", [(t, v) for t, v in priceless if t != 31 or last_px is not None])
    unreadable = events.find(cl_ord_id, "order.anomaly")
    assert unreadable["problem"] == "unreadable" and "LastPx" in unreadable["detail"]
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["exec_id"], filled["last_qty"], filled["last_px"]) == (
        f"reconciled:S-{venue.wait_app('H').seq}",
        "0.5",
        "30000",
    )
    trades = gw.request("trades", symbol="BTC/USD")["trades"]
    assert [(t["qty"], t["price"]) for t in trades] == [("0.5", "30000")]


NOT_ADDING_UP: dict[str, tuple[dict[str, Any], int]] = {
    "last_qty_below_0": ({"ord_status": "1", "leaves_qty": "0.3", "last": ("-0.2", "30000")}, 32),
    "last_qty_0": ({"ord_status": "1", "leaves_qty": "0.3", "last": ("0", "30000")}, 32),
    "leaves_qty_below_0": (
        {"ord_status": "1", "leaves_qty": "-0.1", "last": ("0.2", "30000")},
        151,
    ),
    "filled_with_leaves_left": (
        {"ord_status": "2", "leaves_qty": "0.3", "last": ("0.2", "30000")},
        151,
    ),
}
"""A fill of 0.2 of 0.5 (CumQty 0 -> 0.2) whose numbers cannot all be true, and the tag
said to be why."""


@pytest.mark.parametrize("case", list(NOT_ADDING_UP))
def test_a_fill_whose_numbers_do_not_add_up_is_unreadable_and_the_answer_brings_it_once(
    venue: ScriptedVenue, gw: Client, events: EventLog, case: str
) -> None:
    """A LastQty not above 0 is no fill, a quantity below 0 or an order filled with some of
    it left is no order's: the report is unreadable (journaled, the order asked about), as
    one without LastPx is. Before the fix a LastQty of -0.2 was told as a fill of 0.4 (the
    gap to CumQty, more than the venue ever reported), then a fill of -0.2, both in
    `trades`; a LastQty of 0 as a zero-size fill; LeavesQty -0.1 was passed on, and
    OrdStatus 2 with LeavesQty 0.3 left the order filled with 0.3 left."""
    fields, tag = NOT_ADDING_UP[case]
    cl_ord_id, order = accepted_order(venue, gw, events)

    def answer_partly_filled(v: ScriptedVenue, m: Received) -> None:
        v.send(
            "8",
            execution_report(
                order,
                exec_id=f"S-{m.seq}",
                exec_type="I",
                ord_status="1",
                order_id=f"V-{cl_ord_id}",
                cum_qty="0.2",
                leaves_qty="0.3",
                avg_px="30000",
            ),
        )

    venue.on("H", answer_partly_filled)
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="X-1",
            exec_type="F",
            order_id=f"V-{cl_ord_id}",
            cum_qty="0.2",
            avg_px="30000",
            **fields,
        ),
    )
    unreadable = events.find(cl_ord_id, "order.anomaly")
    assert unreadable["problem"] == "unreadable", unreadable
    assert f"tag {tag})" in unreadable["detail"]
    answered = events.find(cl_ord_id, "order.status")
    assert (answered["status"], answered["cum_qty"], answered["leaves_qty"]) == (
        "partially_filled",
        "0.2",
        "0.3",
    )
    fills = [
        (e["exec_id"], e["last_qty"], e["cum_qty"], e["leaves_qty"])
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id
        and e["type"] in ("order.partially_filled", "order.filled")
    ]
    assert fills == [(f"reconciled:S-{venue.wait_app('H').seq}", "0.2", "0.2", "0.3")]
    trades = gw.request("trades", symbol="BTC/USD")["trades"]
    assert [(t["qty"], t["price"]) for t in trades] == [("0.2", "30000")]
    (held,) = gw.orders()
    assert (held["status"], held["cum_qty"], held["leaves_qty"]) == (
        "partially_filled",
        "0.2",
        "0.3",
    )


def answering_unfilled(order: Received) -> Callable[[ScriptedVenue, Received], None]:
    """Status requests about `order` answered from a view that has not taken its fills yet:
    live, nothing filled (an answer that lags the venue's own reports)."""

    def answer(v: ScriptedVenue, m: Received) -> None:
        v.send("8", report_of(order, f"S-{m.seq}", "I", "0", "0", "0.5"))

    return answer


def test_an_answer_lagging_behind_a_fill_after_an_unreadable_report_takes_nothing_back(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """F-1 (0.2) is told; a report the gateway cannot read (LastQty 0) has the order asked
    about, and OKCoin's answer lags its reports (CumQty 0); then F-2 (0.2 more, CumQty 0.4).
    The dialect has no busts, so the answer takes nothing back (`stale_status`), and each
    fill is told once. Before the fix the answer took F-1 back, and F-2's CumQty brought it
    again as a gap fill: 0.6 in `trades` for a cum_qty of 0.4."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_unfilled(order))
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    events.find(cl_ord_id, "order.partially_filled")
    venue.send("8", report_of(order, "F-J", "1", "1", "0.2", "0.3", last=("0", "30000")))
    events.find(cl_ord_id, "order.status")
    venue.send("8", report_of(order, "F-2", "1", "1", "0.4", "0.1", last=("0.2", "30000")))
    events.first(lambda e: e.get("exec_id") == "F-2")
    assert [p for _, p, _ in told(events, cl_ord_id) if p in ("unreadable", "stale_status")] == [
        "unreadable",
        "stale_status",
    ]
    assert not [e for e in events.seen if e["type"] == "order.restated"]
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.2"), ("F-2", "0.2")]
    assert held(gw, cl_ord_id) == ("partially_filled", "0.4", "0.1")


def answering_canceled_unfilled(order: Received) -> Callable[[ScriptedVenue, Received], None]:
    """Status requests about `order` answered from a view that has the order's cancel but
    not yet its fills: Canceled, nothing filled (an answer that lags the venue's reports).
    Other orders' as ever."""

    def answer(v: ScriptedVenue, m: Received) -> None:
        if m.get(11) != order.get(11):
            answer_status(v, m)
            return
        v.send(
            "8",
            execution_report(
                order,
                exec_id=f"S-{m.seq}",
                exec_type="I",
                ord_status="4",
                order_id=f"V-{order.get(11)}",
                leaves_qty="0",
            ),
        )

    return answer


def test_a_lagging_answer_to_the_ack_watchdogs_question_about_a_cancel_changes_nothing(
    make_venue_stack: VenueStackFactory,
) -> None:
    """F-1 (0.2 of 0.5) told; the cancel goes unanswered, so after `ack_timeout_s` the
    gateway asks the order's status, and the answer lags the venue's reports: Canceled,
    CumQty 0. It changes nothing (`stale_status`), as the same answer to a client's
    `order_status` does: the order keeps its 0.2 and its cancel out, and `trades` adds up to
    its cum_qty, after a restart too (whose reconciliation gets the same answer). The
    venue's own cancel report then ends it canceled with cum_qty 0.2. Before the fix the
    answer made the order canceled with cum_qty 0, F-1's 0.2 still in `trades`, also in the
    journal."""
    venue, stack = make_venue_stack(orders={"ack_timeout_s": 1})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
        events.find(cl_ord_id, "order.partially_filled")
        venue.on("F", lambda v, m: None)  # the cancel is never answered
        venue.on("H", answering_canceled_unfilled(order))
        gw.cancel_order(cl_ord_id=cl_ord_id)
        asked = venue.wait_app("H", timeout=15)
        assert asked.get(11) == cl_ord_id  # the watchdog's question, not a client's
        events.find(place(gw), "order.accepted")  # every event of the answer has arrived
        assert held(gw, cl_ord_id) == ("pending_cancel", "0.2", "0.3")
        assert told(events, cl_ord_id)[3:] == [
            ("order.pending_cancel", "pending_cancel", None),
            ("order.anomaly", "stale_status", None),
        ]
        stale = events.find(cl_ord_id, "order.anomaly", timeout=0)
        assert (stale["problem"], stale["exec_id"]) == ("stale_status", f"S-{asked.seq}")
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]
    restarted(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        wait_until(lambda: gw.status()["ready"], 15, "the gateway to reconcile")
        assert venue.wait_app("H", nth=2).get(11) == cl_ord_id  # asked again at the logon
        assert held(gw, cl_ord_id) == ("pending_cancel", "0.2", "0.3")
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]
        venue.send("8", report_of(order, "X-1", "4", "4", "0.2", "0"))
        canceled = events.find(cl_ord_id, "order.canceled")
        assert (canceled["cum_qty"], canceled["leaves_qty"]) == ("0.2", "0")
        assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]


def test_a_cancel_the_answers_leave_unsettled_is_asked_about_again_until_one_settles_it(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The cancel goes unanswered and the first answer to the watchdog's question lags
    (Canceled, CumQty 0: nothing changed). Asked once, the order stayed pending_cancel until
    the next logon, which on a session that stays up may be a day; it is asked about again,
    at twice the wait, and the next answer (Canceled, CumQty 0.2) ends it canceled."""
    venue, stack = make_venue_stack(orders={"ack_timeout_s": 1})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
        events.find(cl_ord_id, "order.partially_filled")
        venue.on("F", lambda v, m: None)  # the cancel is never answered
        lagging = answering_canceled_unfilled(order)
        asked: list[str | None] = []

        def answer(v: ScriptedVenue, m: Received) -> None:
            asked.append(m.get(11))
            if len(asked) == 1:
                lagging(v, m)
            else:
                v.send("8", report_of(order, f"S-{m.seq}", "I", "4", "0.2", "0"))

        venue.on("H", answer)
        gw.cancel_order(cl_ord_id=cl_ord_id)
        stale = events.find(cl_ord_id, "order.anomaly", timeout=15)
        assert stale["problem"] == "stale_status"
        canceled = events.find(cl_ord_id, "order.canceled", timeout=15)
        assert (canceled["cum_qty"], canceled["leaves_qty"]) == ("0.2", "0")
        assert asked == [cl_ord_id, cl_ord_id]
        assert held(gw, cl_ord_id) == ("canceled", "0.2", "0")
        assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]


def test_a_lagging_answer_to_the_reconciliation_after_a_logon_changes_nothing(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """F-1 (0.2 of 0.5) told; the venue goes away and comes back, and its answer to the
    logon's reconciliation lags its reports: Canceled, CumQty 0 (a venue that cancels on
    disconnect, its status view behind the fill). It changes nothing (`stale_status`): the
    order stays partially filled with 0.2, as `trades` says. Before the fix it became
    canceled with cum_qty 0."""
    a_lagging_answer_to_the_reconciliation_changes_nothing(venue, gw, events)


def a_lagging_answer_to_the_reconciliation_changes_nothing(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The story above, on whichever venue `venue` is."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", report_of(order, "F-1", "1", "1", "0.2", "0.3", last=("0.2", "30000")))
    events.find(cl_ord_id, "order.partially_filled")
    venue.on("H", answering_canceled_unfilled(order))
    venue.crash()
    venue.restart()
    asked = venue.wait_app("H", timeout=20)
    assert asked.get(11) == cl_ord_id
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    events.find(place(gw), "order.accepted")  # every event of the answer has arrived
    assert held(gw, cl_ord_id) == ("partially_filled", "0.2", "0.3")
    assert told(events, cl_ord_id)[3:] == [("order.anomaly", "stale_status", None)]
    stale = events.find(cl_ord_id, "order.anomaly", timeout=0)
    assert (stale["problem"], stale["exec_id"]) == ("stale_status", f"S-{asked.seq}")
    assert trades_of(gw, cl_ord_id) == [("F-1", "0.2")]


class LaggingOrderEntry:
    """A venue whose order entry lags its session: it acknowledges an order `ack_after_s`
    after taking it. Until then it refuses a cancel of it, and answers a status request
    about it, saying Pending New (39=A); after, it cancels it, and answers New."""

    def __init__(self, venue: ScriptedVenue, ack_after_s: float) -> None:
        self.ack_after_s = ack_after_s
        self.acked: set[str] = set()
        self.timers: list[threading.Timer] = []
        venue.on("D", self.take)
        venue.on("F", self.cancel)
        venue.on("H", self.status)

    def take(self, venue: ScriptedVenue, order: Received) -> None:
        def later() -> None:
            self.acked.add(str(order.get(11)))
            acknowledge(venue, order)

        timer = threading.Timer(self.ack_after_s, later)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    @staticmethod
    def order_of(venue: ScriptedVenue, cl_ord_id: str | None) -> Received:
        return next(m for m in venue.app if m.msg_type == "D" and m.get(11) == cl_ord_id)

    def cancel(self, venue: ScriptedVenue, request: Received) -> None:
        orig = request.get(41)
        if orig not in self.acked:
            refuse_cancel(venue, request, "A", "99", "order not yet accepted")
            return
        canceled = execution_report(
            self.order_of(venue, orig),
            exec_id=f"C-{request.seq}",
            exec_type="4",
            ord_status="4",
            order_id=f"V-{orig}",
            extra=[(41, orig or "")],
        )
        venue.send("8", canceled)

    def status(self, venue: ScriptedVenue, request: Received) -> None:
        cl_ord_id = request.get(11)
        answer = execution_report(
            self.order_of(venue, cl_ord_id),
            exec_id=f"S-{request.seq}",
            exec_type="I",
            ord_status="0" if cl_ord_id in self.acked else "A",
            order_id=f"V-{cl_ord_id}",
        )
        venue.send("8", answer)


def sent_to(venue: ScriptedVenue, msg_type: str) -> int:
    return sum(1 for m in venue.app if m.msg_type == msg_type)


@pytest.mark.parametrize("by", ["halt", "cancel on disconnect"])
def test_cancels_refused_as_pending_new_are_sent_again_in_doubling_rounds_only(
    venue: ScriptedVenue, venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, by: str
) -> None:
    """docs/risk.md: while the exchange goes on refusing a cancel, each round waits twice as
    long. A venue that refuses each cancel and answers each question saying the order is
    Pending New is not asked and cancelled in a loop (it was: some 1,900 cancels and 1,900
    status requests in 2 s for one order); the order stays pending, is acknowledged, and
    the round after that cancels it."""
    lagging = LaggingOrderEntry(venue, ack_after_s=2.0)
    events = EventLog(gw)
    if by == "halt":
        cl_ord_id = place(gw)
        venue.wait_app("D")
        gw.request("halt", reason="lagging venue")
    else:
        with venue_stack[1].client() as leaving:
            leaving.request("hello", name="leaving", cancel_on_disconnect=True)
            cl_ord_id = place(leaving)
            venue.wait_app("D")
    events.find(cl_ord_id, "order.canceled", timeout=15)  # rounds after 1 s and 3 s
    time.sleep(0.5)
    # the first cancel, then one a round; a question a round, and one a reject disputes
    assert sent_to(venue, "F") <= 4
    assert sent_to(venue, "H") <= 4
    kinds = [e["type"] for e in journaled(venue_stack[1]) if e.get("cl_ord_id") == cl_ord_id]
    assert kinds.count("order.accepted") == 1  # the venue's own ack, not a Pending New answer
    assert "order.anomaly" not in kinds
    for timer in lagging.timers:
        timer.cancel()


def test_a_halts_round_sends_one_cancel_of_an_order_at_a_time_and_no_false_cancel_lost(
    venue: ScriptedVenue,
    venue_stack: tuple[ScriptedVenue, LocalStack],
    gw: Client,
    events: EventLog,
) -> None:
    """docs/protocol.md: one cancel of an order at a time, whoever sent it. The venue refuses
    each cancel 0.3 s after it comes, and answers each question New. A round asks about
    three orders together; an answer must not have another order cancelled while its own
    question is out, nor be read, asked before that cancel, as the cancel lost."""
    overlaps: list[tuple[str, str]] = []
    out: dict[str, set[str]] = {}
    lock = threading.Lock()
    timers: list[threading.Timer] = []

    def refuse_later(v: ScriptedVenue, cancel: Received) -> None:
        orig, cancel_id = str(cancel.get(41)), str(cancel.get(11))
        with lock:
            overlaps.extend((orig, other) for other in out.setdefault(orig, set()))
            out[orig].add(cancel_id)

        def refuse() -> None:
            with lock:
                out[orig].discard(cancel_id)
            refuse_cancel(v, cancel, "0", "0", "too late to cancel")

        timer = threading.Timer(0.3, refuse)
        timer.daemon = True
        timers.append(timer)
        timer.start()

    venue.on("D", acknowledge)
    venue.on("H", answer_status)
    venue.on("F", refuse_later)
    placed = [place(gw) for _ in range(3)]
    for cl_ord_id in placed:
        events.find(cl_ord_id, "order.accepted")
    gw.request("halt", reason="refusing venue")
    time.sleep(4.5)  # the halt's cancels, then rounds after 1 s and 3 s
    for timer in timers:
        timer.cancel()
    assert overlaps == []
    cancels = [m.get(41) for m in venue.app if m.msg_type == "F"]
    assert all(cancels.count(cl_ord_id) <= 3 for cl_ord_id in placed), cancels
    assert not [e for e in journaled(venue_stack[1]) if e["type"] == "order.anomaly"]
