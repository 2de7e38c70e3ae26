"""A venue adds standard and custom fields and groups without notice, and sends what the
gateway cannot read: nothing it sends is lost to validation, and what the gateway cannot
read is journaled, reported, and asked about."""

from __future__ import annotations

import json
from pathlib import Path

from fixgw.api.client import Client
from fixgw.testing import LocalStack, wait_until
from tests.counterparties.venue import (
    Received,
    ScriptedVenue,
    acknowledge,
    answer_status,
    execution_report,
    fill,
    whole_fill,
)
from tests.integration.conftest import EventLog

PARTIES = [
    *((453, "2"), (448, "PARTYA"), (447, "D"), (452, "1")),
    *((448, "PARTYB"), (447, "D"), (452, "4")),
]
CUSTOM_GROUP = [(9000, "2"), (9001, "fee-a"), (9002, "0.1"), (9001, "fee-b"), (9002, "0.2")]
"""A repeating group of the venue's own, which no dictionary knows."""


def place(gw: Client, qty: str = "0.5", price: str = "30000") -> str:
    reply = gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty=qty, price=price)
    return str(reply["cl_ord_id"])


def accepted_order(venue: ScriptedVenue, gw: Client, events: EventLog) -> tuple[str, Received]:
    venue.on("D", acknowledge)
    venue.on("H", answer_status)
    cl_ord_id = place(gw)
    events.find(cl_ord_id, "order.accepted")
    return cl_ord_id, venue.wait_app("D")


def rejects_sent(venue: ScriptedVenue) -> list[Received]:
    return [m for m in venue.admin if m.msg_type == "3"]


def journaled(stack: LocalStack) -> list[dict[str, object]]:
    path = Path(stack.gateway_config()["journal"]["path"])
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_fill_carrying_a_standard_group_the_dialect_lacks_reaches_clients_unrejected(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    fill(venue, order, "F-1", extra=PARTIES)
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["last_qty"], filled["last_px"], filled["status"]) == ("0.5", "30000", "filled")
    place(gw)
    venue.wait_app("D", 2)  # sent after any Reject of the fill: that Reject would be in by now
    assert rejects_sent(venue) == []


def test_a_fill_carrying_a_group_nobody_defines_is_read_although_quickfix_refuses_it(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    fill(venue, order, "F-1", extra=CUSTOM_GROUP)
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["exec_id"], filled["cum_qty"]) == ("F-1", "0.5")
    reject = venue.wait_for(lambda m: m.msg_type == "3")
    assert reject.get(373) == "13"  # QuickFIX still tells the venue; the fill is not lost
    assert stack.status()["inbound_refused"] == 1
    assert [e["exec_id"] for e in journaled(stack) if e["type"] == "order.filled"] == ["F-1"]


def test_body_fields_in_any_order_are_read(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    body = whole_fill(order, "F-1")
    venue.send("8", list(reversed(body)))
    assert events.find(cl_ord_id, "order.filled")["avg_px"] == "30000"
    place(gw)
    venue.wait_app("D", 2)  # sent after any Reject of the fill: that Reject would be in by now
    assert rejects_sent(venue) == []


def test_a_report_the_dialect_cannot_read_is_journaled_raised_and_its_order_asked_about(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    garbled = [
        (t, "not-a-number") if t == 14 else (t, v)
        for t, v in execution_report(
            order, exec_id="F-1", exec_type="F", ord_status="2", order_id=f"V-{cl_ord_id}"
        )
    ]
    venue.send("8", garbled)
    anomaly = events.find(cl_ord_id, "order.anomaly")
    assert anomaly["problem"] == "unreadable"
    assert "|14=not-a-number|" in str(anomaly["detail"]) and "|1=" not in str(anomaly["detail"])
    question = venue.wait_app("H")
    assert (question.get(11), question.get(37)) == (cl_ord_id, f"V-{cl_ord_id}")
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="S-1",
            exec_type="I",
            ord_status="2",
            order_id=f"V-{cl_ord_id}",
            cum_qty="0.5",
            leaves_qty="0",
            avg_px="30000",
        ),
    )
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["cum_qty"], filled["last_qty"]) == ("0.5", "0.5")
    assert any(
        e["type"] == "order.anomaly" and e["problem"] == "unreadable" for e in journaled(stack)
    )


def unreadable(report: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The report with a CumQty that is not a number."""
    return [(t, "not-a-number") if t == 14 else (t, v) for t, v in report]


def answer_status_unreadably(venue: ScriptedVenue, request: Received) -> None:
    order = next(m for m in venue.app if m.msg_type == "D" and m.get(11) == request.get(11))
    status = execution_report(
        order, exec_id=f"S-{request.seq}", exec_type="I", ord_status="0", order_id="V-1"
    )
    venue.send("8", unreadable(status))


def waits_before_asking_again(stack: LocalStack, cl_ord_id: str) -> list[float]:
    assert stack.gateway is not None
    lines = [json.loads(line) for line in stack.gateway.log().splitlines() if line.startswith("{")]
    return [
        line["wait_s"]
        for line in lines
        if line.get("event") == "asking the exchange about the order again later"
        and line.get("cl_ord_id") == cl_ord_id
    ]


def test_an_order_whose_status_answers_are_unreadable_too_is_asked_about_less_and_less_often(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """The venue answers each OrderStatusRequest about the order unreadably as well: the
    order is asked about at once, then after 1 s, 2 s, 4 s..., not again as fast as the
    venue answers."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answer_status_unreadably)
    report = execution_report(order, exec_id="F-1", exec_type="F", ord_status="2", order_id="V-1")
    venue.send("8", unreadable(report))
    wait_until(lambda: len(waits_before_asking_again(stack, cl_ord_id)) >= 3, 20, "three waits")
    asked = [m for m in venue.app if m.msg_type == "H" and m.get(11) == cl_ord_id]
    assert len(asked) == 3
    assert waits_before_asking_again(stack, cl_ord_id)[:3] == [1.0, 2.0, 4.0]


def test_a_message_type_the_gateway_does_not_take_is_raised_and_open_orders_asked_about(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    first, _ = accepted_order(venue, gw, events)
    second = place(gw, price="29000")
    events.find(second, "order.accepted")
    venue.send("B", [(148, "exchange maintenance at 02:00"), (61, "1")])  # News
    error = events.first(lambda e: e["type"] == "exchange.error")
    assert (error["source"], error["ref_msg_type"]) == ("unreadable", "B")
    assert "exchange maintenance" in str(error["raw"])
    venue.wait_app("H", 2)
    assert sorted(m.get(11) for m in venue.app if m.msg_type == "H") == sorted([first, second])
