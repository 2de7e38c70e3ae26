"""A plain FIX 4.4 venue restates an order on its own (ExecType D): clients hear of it as
`order.restated`, the order takes the venue's quantity, and an OMS on the bridge gets the
restatement as FIX 4.4 has it (150=D with ExecRestatementReason). A status answer that shows
another quantity restates the order too. OKCoin's dialect has no restatement: from it, D
stays unreadable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack
from tests.counterparties.conftest import VenueStackFactory
from tests.counterparties.raw_oms import RawOms
from tests.counterparties.test_fix44_venue import (  # noqa: F401 (fixtures)
    oms_order,
    oms_to_broker,
    plain_fix44,
    venue_stack,
)
from tests.counterparties.test_venue_extra_fields import accepted_order
from tests.counterparties.venue import Received, ScriptedVenue, acknowledge, execution_report
from tests.integration.conftest import EventLog


def restatement(
    order: Received,
    exec_id: str,
    qty: str,
    *,
    ord_status: str = "0",
    leaves_qty: str | None = None,
    cum_qty: str = "0",
    reason: str = "3",
) -> list[tuple[int, str | bytes]]:
    """An ExecutionReport restating `order` (ExecType D) to OrderQty `qty`."""
    report = execution_report(
        order,
        exec_id=exec_id,
        exec_type="D",
        ord_status=ord_status,
        order_id=f"V-{order.get(11)}",
        cum_qty=cum_qty,
        leaves_qty=qty if leaves_qty is None else leaves_qty,
        extra=[(378, reason)],
    )
    return [(t, qty if t == 38 else v) for t, v in report]


def test_a_restatement_reaches_clients_and_the_order_takes_the_venues_quantity(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", restatement(order, "R-1", "0.3"))
    restated = events.find(cl_ord_id, "order.restated")
    assert (restated["qty"], restated["leaves_qty"], restated["cum_qty"]) == ("0.3", "0.3", "0")
    assert (restated["status"], restated["reason"]) == ("new", "repricing")
    (held,) = gw.orders()
    assert (held["qty"], held["leaves_qty"], held["status"]) == ("0.3", "0.3", "new")
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]
    assert not [m for m in venue.app if m.msg_type == "H"]  # read, so nothing to ask


def test_a_restatement_that_cancels_on_a_halt_ends_the_order(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("8", restatement(order, "R-1", "0.5", ord_status="4", leaves_qty="0", reason="6"))
    restated = events.find(cl_ord_id, "order.restated")
    assert (restated["status"], restated["reason"], restated["leaves_qty"]) == (
        "canceled",
        "cancel_on_trading_halt",
        "0",
    )
    assert gw.orders() == []
    assert [o["status"] for o in gw.orders(all=True)] == ["canceled"]


def test_a_status_answer_with_another_quantity_restates_the_order(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)

    def restated_quietly(v: ScriptedVenue, request: Received) -> None:
        report = execution_report(
            order,
            exec_id=f"S-{request.seq}",
            exec_type="I",
            ord_status="0",
            order_id=f"V-{cl_ord_id}",
            leaves_qty="0.3",
        )
        v.send("8", [(t, "0.3" if t == 38 else value) for t, value in report])

    venue.on("H", restated_quietly)
    gw.order_status(cl_ord_id=cl_ord_id)
    restated = events.find(cl_ord_id, "order.restated")
    assert (restated["qty"], restated["leaves_qty"], restated["reason"]) == ("0.3", "0.3", None)
    assert "status answer" in restated["text"]
    (held,) = gw.orders()
    assert (held["qty"], held["leaves_qty"]) == ("0.3", "0.3")


def test_an_oms_gets_the_restatement_as_fix44s_exec_type_d(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    venue, oms = oms_to_broker
    oms.send("D", oms_order("RS-1"))
    order = venue.wait_app("D")
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "RS-1" and m.get(150) == "0")
    venue.send("8", restatement(order, "R-1", "0.3"))
    restated = oms.wait_for(
        lambda m: m.msg_type == "8" and m.get(11) == "RS-1" and m.get(150) == "D"
    )
    assert [(t, restated.get(t)) for t in (38, 151, 14, 39, 378)] == [
        (38, "0.3"),
        (151, "0.3"),
        (14, "0"),
        (39, "0"),
        (378, "3"),
    ]


@pytest.fixture
def okcoin(make_venue_stack: VenueStackFactory) -> Iterator[tuple[ScriptedVenue, LocalStack]]:
    yield make_venue_stack(lambda v: v.on("D", acknowledge))


def test_okcoin_sends_no_restatement_so_one_is_unreadable_and_the_order_asked_about(
    okcoin: tuple[ScriptedVenue, LocalStack],
) -> None:
    venue, stack = okcoin
    with stack.client() as gw:
        gw.subscribe(["orders", "errors"])
        events = EventLog(gw)
        cl_ord_id = gw.new_order(
            symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30000"
        )["cl_ord_id"]
        events.find(cl_ord_id, "order.accepted")
        order = venue.wait_app("D")
        venue.send("8", restatement(order, "R-1", "0.3"))
        unreadable = events.first(lambda e: e.get("problem") == "unreadable")
        assert unreadable["cl_ord_id"] == cl_ord_id
        venue.wait_for(lambda m: m.msg_type == "H", what="the order asked about")
        assert not [e for e in events.seen if e["type"] == "order.restated"]


