"""Cancel on disconnect for an OMS (`cancel_on_disconnect: true`) through the bridge to a
venue we did not write: the cancel is owed from the moment the session ends, and paid as a
halt's is, whenever that is: the exchange session down at the logout, the gateway killed
with the OMS logged on, the venue refusing a cancel that was pending when the OMS left."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixgw.testing import wait_until
from tests.counterparties.conftest import Ends, VenueStackFactory, raw_oms_through
from tests.counterparties.raw_oms import RawOms
from tests.counterparties.test_oms_order_answers import (
    cancel,
    cancel_reject,
    canceled_by,
    placed,
    status_request,
)
from tests.counterparties.venue import (
    Received,
    ScriptedVenue,
    acknowledge,
    answer_status,
    refuse_cancel,
)


def cancels_of(venue: ScriptedVenue, taken: Received) -> list[Received]:
    return [m for m in venue.app if m.msg_type == "F" and m.get(41) == taken.get(11)]


def cancel_it(venue: ScriptedVenue, request: Received) -> None:
    taken = next(m for m in venue.app if m.msg_type == "D" and m.get(11) == request.get(41))
    canceled_by(venue, taken, request)


def venue_that_cancels(venue: ScriptedVenue) -> None:
    venue.on("D", acknowledge)
    venue.on("F", cancel_it)
    venue.on("H", answer_status)  # open, if it took the order


@pytest.fixture
def ends(make_venue_stack: VenueStackFactory) -> Iterator[Ends]:
    with raw_oms_through(
        make_venue_stack, venue_that_cancels, oms_session={"cancel_on_disconnect": True}
    ) as ends:
        yield ends


def open_at_the_gateway(ends: Ends) -> dict[str, str]:
    with ends[1].client() as gw:
        return {o["cl_ord_id"]: o["status"] for o in gw.orders()}


def test_an_oms_that_logs_out_while_the_exchange_is_down_has_its_orders_cancelled_once_back(
    ends: Ends,
) -> None:
    venue, stack, oms = ends
    taken = placed(venue, oms, "OUT-1")
    with stack.client() as gw:
        gw.subscribe(["session"])
        venue.crash()
        gw.wait_for(lambda e: e["type"] == "session.down")
    oms.logout()
    assert stack.gateway is not None
    wait_until(lambda: "OMS logged out" in stack.gateway.log(), 10, "the logout taken")
    assert cancels_of(venue, taken) == []

    venue.restart()

    wait_until(lambda: cancels_of(venue, taken), 15, "the cancel owed sent once back")
    wait_until(lambda: open_at_the_gateway(ends) == {}, 10, "the order canceled")
    assert len(cancels_of(venue, taken)) == 1


def test_after_a_crash_the_orders_of_an_oms_not_logged_on_are_cancelled_once_reconciled(
    ends: Ends,
) -> None:
    """A SIGKILL ends the OMS's session with no logout: the restarted gateway owes its open
    orders a cancel, as a SIGTERM's logout would have sent, with no grace for the OMS to
    come back (it would find its orders cancelled after a SIGTERM too)."""
    venue, stack, oms = ends
    taken = placed(venue, oms, "CRASH-1")
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    oms.close()
    Path(stack.socket_path).unlink(missing_ok=True)

    stack.start_gateway()

    venue.wait_for(lambda m: m.msg_type == "H" and m.get(11) == taken.get(11))
    wait_until(lambda: cancels_of(venue, taken), 15, "the cancel after reconciliation")
    wait_until(lambda: open_at_the_gateway(ends) == {}, 10, "the order canceled")
    first_asked = next(i for i, m in enumerate(venue.app) if m.msg_type == "H")
    assert venue.app.index(cancels_of(venue, taken)[0]) > first_asked  # reconciled first


def test_a_cancel_pending_at_the_logout_that_the_venue_refuses_is_sent_again(
    ends: Ends,
) -> None:
    """The OMS's own cancel is out when it logs out; the venue then refuses it with the
    order still open. The gateway asks the venue about the order, finds it open, and
    cancels it."""
    venue, stack, oms = ends
    taken = placed(venue, oms, "HELD-1")
    venue.on("F", lambda v, request: None)  # no answer yet
    oms.send("F", cancel("HELD-CXL", "HELD-1"))
    own = venue.wait_app("F")
    oms.logout()
    assert stack.gateway is not None
    wait_until(lambda: "OMS logged out" in stack.gateway.log(), 10, "the logout taken")
    venue.on("F", cancel_it)

    refuse_cancel(venue, own, "0", "0", "busy, try later")

    wait_until(lambda: len(cancels_of(venue, taken)) == 2, 15, "the cancel sent again")
    wait_until(lambda: open_at_the_gateway(ends) == {}, 10, "the order canceled")
    asked = [m for m in venue.app if m.msg_type == "H" and m.get(11) == taken.get(11)]
    assert asked, "the order was asked about before it was cancelled again"


def test_a_session_added_on_a_restart_does_not_take_an_api_clients_order_under_its_prefix(
    ends: Ends,
) -> None:
    """An API client's `DESK-7`, placed while no session had the prefix `DESK-`; the
    operator then adds the session DESK, with `cancel_on_disconnect`, and the gateway
    restarts. The journal says an API client placed the order: DESK's cancel on disconnect
    leaves it alone (the OMS that placed its own order before the restart still has that
    one cancelled), DESK's cancel and status request find no order of its own, and the
    order's reports never reach DESK."""
    venue, stack, oms = ends
    own = placed(venue, oms, "OWN-1")
    with stack.client() as gw:
        gw.subscribe(["orders"])
        gw.new_order(
            symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="29000", cl_ord_id="DESK-7"
        )
        gw.wait_for(lambda e: e["type"] == "order.accepted" and e["cl_ord_id"] == "DESK-7")
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    oms.close()
    Path(stack.socket_path).unlink(missing_ok=True)
    bridge = stack.gateway_overrides["bridge"]
    bridge["sessions"] = [*bridge["sessions"], {"comp_id": "DESK", "cancel_on_disconnect": True}]

    stack.start_gateway()

    # DESK's cancels are owed first ("DESK" sorts before the other session's CompID)
    wait_until(lambda: cancels_of(venue, own), 15, "the other OMS's order cancelled")
    wait_until(
        lambda: open_at_the_gateway(ends) == {"DESK-7": "new"},
        10,
        "the OMS's order cancelled, DESK-7 left open",
    )
    assert [m for m in venue.app if m.msg_type == "F" and m.get(41) == "DESK-7"] == []

    asked_before = len(venue.app)
    desk = RawOms(bridge["port"], "DESK")
    desk.start()
    try:
        desk.send("F", cancel("DESK-CXL-1", "7"))
        assert cancel_reject(desk, "DESK-CXL-1").get(102) == "1"  # unknown order
        desk.send("H", status_request("7", "ASK-7"))
        answer = desk.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ASK-7")
        assert (answer.get(150), answer.get(39), answer.get(103)) == ("I", "8", "5")
        assert [m for m in venue.app[asked_before:] if "DESK-7" in (m.get(11), m.get(41))] == []

        with stack.client() as gw:
            gw.subscribe(["orders"])
            gw.cancel_order(cl_ord_id="DESK-7", cancel_cl_ord_id="API-CXL-7")
            gw.wait_for(lambda e: e["type"] == "order.canceled" and e["cl_ord_id"] == "DESK-7")
        desk.send("H", status_request("7", "ASK-7-AGAIN"))
        desk.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ASK-7-AGAIN")
        told = [m for m in desk.received if m.msg_type in ("8", "9") and m.get(790) is None]
        assert [(m.msg_type, m.get(11)) for m in told] == [("9", "DESK-CXL-1")]
    finally:
        desk.logout()
    desk.check_valid()
