"""The session layer as a venue plays it: gaps and resends, sequence resets, its own crash
and restart from its store, and its Logouts."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.testing import COMP_ID, LocalStack, wait_until
from tests.counterparties.conftest import VenueStackFactory, raw_oms_through
from tests.counterparties.test_oms_order_answers import order as oms_order
from tests.counterparties.test_venue_extra_fields import (
    CUSTOM_GROUP,
    accepted_order,
    journaled,
    place,
)
from tests.counterparties.venue import (
    Handler,
    Pairs,
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


def test_a_report_lost_on_the_way_is_asked_for_again_and_taken_once_in_order(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    half = {"order_id": f"V-{cl_ord_id}", "avg_px": "30000"}
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="F-1",
            exec_type="F",
            ord_status="1",
            cum_qty="0.2",
            leaves_qty="0.3",
            last=("0.2", "30000"),
            **half,
        ),
        lose=True,
    )
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="F-2",
            exec_type="F",
            ord_status="2",
            cum_qty="0.5",
            leaves_qty="0",
            last=("0.3", "30000"),
            **half,
        ),
    )
    venue.wait_for(lambda m: m.msg_type == "2", what="a ResendRequest")
    first = events.first(lambda e: e["type"] in ("order.partially_filled", "order.filled"))
    filled = events.find(cl_ord_id, "order.filled")
    assert (first["exec_id"], filled["exec_id"], filled["cum_qty"]) == ("F-1", "F-2", "0.5")
    fills = [e for e in events.seen if e.get("exec_id") in ("F-1", "F-2")]
    assert [e["exec_id"] for e in fills] == ["F-1", "F-2"]
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]


def test_a_fill_sent_twice_under_two_sequence_numbers_counts_once(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    body = whole_fill(order, "F-1")
    venue.send("8", body)
    venue.send("8", body, header=[(97, "Y")])  # PossResend: the venue's own second copy
    events.find(cl_ord_id, "order.filled")
    events.find(place(gw), "order.accepted")  # acked after the second copy: it has been handled
    assert [e["type"] for e in events.seen if e.get("exec_id") == "F-1"] == ["order.filled"]
    trades = gw.request("trades", symbol="BTC/USD")["trades"]
    assert [(t["exec_id"], t["qty"]) for t in trades] == [("F-1", "0.5")]


def test_the_venue_gap_fills_what_it_will_not_resend_and_resets_its_numbering(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send("0", [], lose=True, store=False)  # a heartbeat lost: gap filled on request
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="F-1",
            exec_type="F",
            ord_status="1",
            order_id=f"V-{cl_ord_id}",
            cum_qty="0.1",
            leaves_qty="0.4",
            avg_px="30000",
            last=("0.1", "30000"),
        ),
    )
    assert events.find(cl_ord_id, "order.partially_filled")["exec_id"] == "F-1"
    assert any(m.msg_type == "2" for m in venue.admin)
    numbered_from = venue.next_out + 100
    venue.send("4", [(36, str(numbered_from))])  # SequenceReset-Reset
    venue.next_out = numbered_from
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="F-2",
            exec_type="F",
            ord_status="2",
            order_id=f"V-{cl_ord_id}",
            cum_qty="0.5",
            leaves_qty="0",
            avg_px="30000",
            last=("0.4", "30000"),
        ),
    )
    assert events.find(cl_ord_id, "order.filled")["exec_id"] == "F-2"
    assert stack.status()["seq_nums"]["next_target"] == venue.next_out


def filled_at_the_venue(order: Received, cum_qty: str = "0.5") -> Pairs:
    """A fill at 30000 that brings the order (0.5) to `cum_qty`, as the venue sends it (or
    numbers it and loses it)."""
    leaves = Decimal(order.get(38) or "0") - Decimal(cum_qty)
    return execution_report(
        order,
        exec_id="F-1",
        exec_type="F",
        ord_status="1" if leaves else "2",
        order_id=f"V-{order.get(11)}",
        cum_qty=cum_qty,
        leaves_qty=str(leaves),
        avg_px="30000",
        last=(cum_qty, "30000"),
    )


def answering_filled(cum_qty: str = "0.5") -> Handler:
    """Status answers: the order the request names is filled to `cum_qty` at 30000."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        taken = next(m for m in venue.app if m.msg_type == "D" and m.get(11) == request.get(11))
        leaves = Decimal(taken.get(38) or "0") - Decimal(cum_qty)
        report = execution_report(
            taken,
            exec_id=f"S-{request.seq}",
            exec_type="I",
            ord_status="1" if leaves else "2",
            order_id=f"V-{request.get(11)}",
            cum_qty=cum_qty,
            leaves_qty=str(leaves),
            avg_px="30000",
        )
        venue.send("8", report)

    return answer


def status_requests(venue: ScriptedVenue) -> list[Received]:
    return [m for m in venue.app if m.msg_type == "H"]


def test_a_fill_the_venue_gap_fills_instead_of_resending_is_asked_about_and_not_lost(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """The venue loses a fill on the way, and answers the gateway's ResendRequest with a
    gap fill over it (FIX 4.4 lets a sender gap fill application messages). The session
    goes on; the gateway asks about every open order, and the fill arrives as one."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_filled())
    lost = venue.send("8", filled_at_the_venue(order), lose=True, store=False)
    venue.send("0", [], store=False)  # the next message shows the gap
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["exec_id"].startswith("reconciled:"), filled["cum_qty"]) == (True, "0.5")
    assert [m.get(11) for m in status_requests(venue)] == [cl_ord_id]
    assert stack.gateway is not None
    assert f'"skipped":"{lost}-{lost + 1}"' in stack.gateway.log()
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to be ready again")
    assert not [e for e in events.seen if e["type"] == "session.down"]


class SkipsInsteadOfResending(ScriptedVenue):
    """Answers a ResendRequest by moving its numbering on to its next number, resending
    nothing: with a SequenceReset-GapFill (`skip_with` "gap_fill"), a SequenceReset-Reset
    ("reset"), or not at all ("reset_logon": the test resets the numbering itself)."""

    skip_with = "gap_fill"

    def _resend(self, begin: int, end: int) -> None:
        if self.skip_with == "gap_fill":
            self._gap_fill(begin, self.next_out)
        elif self.skip_with == "reset":
            self.send("4", [(36, str(self.next_out))], seq=self.next_out, store=False)


def a_tenth_filled(order: Received, n: int) -> Pairs:
    """The venue's n-th fill of 0.1 at 30000 (ExecID F-n) of the order (0.5)."""
    return execution_report(
        order,
        exec_id=f"F-{n}",
        exec_type="F",
        ord_status="1",
        order_id=f"V-{order.get(11)}",
        cum_qty=f"0.{n}",
        leaves_qty=f"0.{5 - n}",
        avg_px="30000",
        last=("0.1", "30000"),
    )


@pytest.mark.parametrize("skip_with", ["gap_fill", "reset", "reset_logon"])
def test_fills_held_back_for_a_gap_the_venue_skips_past_reach_clients_and_the_oms_once(
    make_venue_stack: VenueStackFactory, skip_with: str
) -> None:
    """The venue's first fill is lost; the next two reach the gateway, and QuickFIX holds
    them back until the gap before them is closed. The venue answers the ResendRequest by
    moving its numbering past all three: QuickFIX throws the two away. The gateway read
    them all the same: clients and the OMS get F-2 and F-3 once each, with their ExecIDs,
    LastQty and LastPx, in order; only the lost one is made up for."""

    def configure(v: ScriptedVenue) -> None:
        assert isinstance(v, SkipsInsteadOfResending)
        v.skip_with = skip_with
        v.on("D", acknowledge)
        v.on("H", answering_filled("0.3"))

    with raw_oms_through(make_venue_stack, configure, venue_type=SkipsInsteadOfResending) as (
        venue,
        stack,
        oms,
    ):
        with stack.client() as gw:
            gw.subscribe(["orders", "session"])
            events = EventLog(gw)
            oms.send("D", oms_order("ORD-1"))
            oms.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "0")
            order = venue.wait_app("D")
            venue.send("8", a_tenth_filled(order, 1), lose=True)
            venue.send_together([("8", a_tenth_filled(order, 2)), ("8", a_tenth_filled(order, 3))])
            venue.wait_for(lambda m: m.msg_type == "2", what="a ResendRequest")
            if skip_with == "reset_logon":
                venue.reset_sequence_numbers()
            events.first(lambda e: e.get("exec_id") == "F-3")
            oms.wait_for(lambda m: m.msg_type == "8" and m.get(17) == "F-3")
            wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
            assert gw.order_status(cl_ord_id=order.get(11))["cum_qty"] == "0.3"
            venue.send("8", a_tenth_filled(order, 4))  # the session goes on in step
            events.first(lambda e: e.get("exec_id") == "F-4")
            oms.wait_for(lambda m: m.msg_type == "8" and m.get(17) == "F-4")
            told = [
                (e["exec_id"], e["last_qty"], e["last_px"])
                for e in events.seen
                if e["type"] in ("order.partially_filled", "order.filled")
            ]
        oms_fills = [
            (m.get(17), m.get(32), m.get(31)) for m in oms.messages("8") if m.get(150) == "F"
        ]
        # the checkpoint is of the venue's numbering now, not past it: a restart asks for the rest
        checkpoint = Path(stack.gateway_config()["journal"]["path"] + ".fixseq").read_text()
        assert int(checkpoint) < venue.next_out
    for fills in (told, oms_fills):
        venues_own = [fill for fill in fills if fill[0] in ("F-2", "F-3", "F-4")]
        assert venues_own == [(f"F-{n}", "0.1", "30000") for n in (2, 3, 4)], fills
        assert len(fills) == 4, fills  # and one for the lost F-1
        assert sum(Decimal(str(qty)) for _, qty, _ in fills) == Decimal("0.4"), fills
    assert not [e for e in events.seen if e["type"] == "session.down"]


@pytest.mark.parametrize("skip_with", ["gap_fill", "reset", "reset_logon"])
def test_a_fill_refused_while_a_gap_is_open_that_the_venue_skips_past_is_read_once(
    make_venue_stack: VenueStackFactory, skip_with: str
) -> None:
    """As above, but QuickFIX refuses F-2 (a repeating group of the venue's own, read from the
    raw text all the same): it validates a message before its MsgSeqNum, so it never held F-2
    back for the gap. Before the fix nothing read F-2 once the venue skipped past it:
    reconciliation made up one fill for F-1 and F-2 together."""

    def configure(v: ScriptedVenue) -> None:
        assert isinstance(v, SkipsInsteadOfResending)
        v.skip_with = skip_with
        v.on("D", acknowledge)
        v.on("H", answering_filled("0.3"))

    venue, stack = make_venue_stack(configure, venue_type=SkipsInsteadOfResending)
    with stack.client() as gw:
        gw.subscribe(["orders", "session"])
        events = EventLog(gw)
        cl_ord_id = place(gw)
        order = venue.wait_app("D")
        venue.send("8", a_tenth_filled(order, 1), lose=True)
        venue.send_together(
            [("8", a_tenth_filled(order, 2) + CUSTOM_GROUP), ("8", a_tenth_filled(order, 3))]
        )
        refused = venue.wait_for(lambda m: m.msg_type == "3", what="QuickFIX's Reject of F-2")
        assert refused.get(373) == "13"
        venue.wait_for(lambda m: m.msg_type == "2", what="a ResendRequest")
        if skip_with == "reset_logon":
            venue.reset_sequence_numbers()
        events.first(lambda e: e.get("exec_id") == "F-3")
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
        assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.3"
        venue.send("8", a_tenth_filled(order, 4))  # the session goes on in step
        events.first(lambda e: e.get("exec_id") == "F-4")
        told = [
            (e["exec_id"], e["last_qty"], e["last_px"])
            for e in events.seen
            if e["type"] in ("order.partially_filled", "order.filled")
        ]
    venues_own = [fill for fill in told if not fill[0].startswith("reconciled:")]
    assert venues_own == [(f"F-{n}", "0.1", "30000") for n in (2, 3, 4)], told
    assert len(told) == 4, told  # and one for the lost F-1
    assert fills_journaled(stack, cl_ord_id)[-3:] == ["F-2", "F-3", "F-4"]


def test_a_fill_refused_while_a_gap_is_open_then_resent_is_read_once_though_the_venue_resets(
    make_venue_stack: VenueStackFactory,
) -> None:
    """F-2, refused by QuickFIX with the gap before it open, is kept for the gap; the venue
    resends F-1 and F-2, and F-2 refused again in sequence is read then. It is kept no
    more: a later reset Logon from the venue (which reads what is kept) does not read it a
    second time."""

    def configure(v: ScriptedVenue) -> None:
        v.on("D", acknowledge)
        v.on("H", answering_filled("0.3"))

    venue, stack = make_venue_stack(configure)
    with stack.client() as gw:
        gw.subscribe(["orders", "session"])
        events = EventLog(gw)
        cl_ord_id = place(gw)
        order = venue.wait_app("D")
        venue.send("8", a_tenth_filled(order, 1), lose=True)
        venue.send_together(
            [("8", a_tenth_filled(order, 2) + CUSTOM_GROUP), ("8", a_tenth_filled(order, 3))]
        )
        events.first(lambda e: e.get("exec_id") == "F-3")
        venue.reset_sequence_numbers()
        events.first(lambda e: e["type"] == "session.up")
        venue.send("8", a_tenth_filled(order, 4))
        events.first(lambda e: e.get("exec_id") == "F-4")
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
        told = [
            e["exec_id"]
            for e in events.seen
            if e["type"] in ("order.partially_filled", "order.filled")
        ]
        read_refused = gw.status()["inbound_refused"]
    assert told == ["F-1", "F-2", "F-3", "F-4"], told
    assert fills_journaled(stack, cl_ord_id) == ["F-1", "F-2", "F-3", "F-4"]
    assert read_refused == 1  # F-2 read once, not again at the reset (its ExecID hid that)


def test_a_fill_gap_filled_at_logon_is_found_by_the_logons_reconciliation_asking_once(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """The venue fills part of the order while the gateway is away, and at the logon gap
    fills the fill rather than resending it. The logon's reconciliation finds it: the gap
    fill answers the logon's ResendRequest, ahead of every status answer, so the order is
    asked about once, not again for the gap fill."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_filled("0.2"))
    venue.crash()
    venue.send("8", filled_at_the_venue(order, "0.2"), store=False)  # nobody there to get it
    venue.restart()
    filled = events.find(cl_ord_id, "order.partially_filled", timeout=20)
    assert (filled["exec_id"].startswith("reconciled:"), filled["cum_qty"]) == (True, "0.2")
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    assert [m.get(11) for m in status_requests(venue)] == [cl_ord_id]
    assert stack.gateway is not None
    assert "the reconciliation under way covers the messages gap filled" in stack.gateway.log()


def test_a_status_request_the_venue_asks_for_again_fails_at_once_as_never_delivered(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue asks again (a ResendRequest, the session going on) for the status request
    a client waits on. The gateway gap fills it, as every message of its own: the client
    hears at once that the request never reached the exchange, not a time-out."""
    cl_ord_id, _ = accepted_order(venue, gw, events)

    def lost(v: ScriptedVenue, request: Received) -> None:
        v.send("2", [(7, str(request.seq)), (16, "0")], store=False)

    venue.on("H", lost)
    with pytest.raises(ApiError) as refused:
        gw.order_status(cl_ord_id=cl_ord_id)
    assert refused.value.code == "exchange_error"
    assert "did not reach the exchange" in str(refused.value)
    assert [m.get(11) for m in status_requests(venue)] == [cl_ord_id]
    assert gw.status()["ready"]


def test_a_status_request_of_reconciliation_the_venue_asks_for_again_is_asked_again(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """After the logon the venue asks again for reconciliation's question about an order
    it filled while the gateway was away (and gap filled). The gateway gap fills the
    question, as every message of its own, and asks it again, paced as its own questions
    are: the answer brings the fill, rather than reconciliation giving up on the order."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def lose_the_first(v: ScriptedVenue, request: Received) -> None:
        if len(status_requests(v)) == 1:
            v.send("2", [(7, str(request.seq)), (16, "0")], store=False)
        else:
            answering_filled()(v, request)

    venue.on("H", lose_the_first)
    venue.crash()
    venue.send("8", filled_at_the_venue(order), store=False)
    venue.restart()
    filled = events.find(cl_ord_id, "order.filled", timeout=20)
    assert (filled["exec_id"].startswith("reconciled:"), filled["cum_qty"]) == (True, "0.5")
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    assert [m.get(11) for m in status_requests(venue)] == [cl_ord_id, cl_ord_id]


def _restart_losing_what_it_had_not_read(venue: ScriptedVenue) -> None:
    venue.crash()
    venue.restart()
    venue.wait_for(lambda m: m.msg_type == "4" and m.get(123) == "Y", what="the gateway's gap fill")


def test_an_order_lost_in_a_venue_crash_ends_rejected_as_never_delivered(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, _ = accepted_order(venue, gw, events)
    venue.freeze()
    lost = place(gw, qty="0.7")
    _restart_losing_what_it_had_not_read(venue)
    rejected = events.find(lost, "order.rejected")
    assert rejected["reason"] == "not_delivered"
    assert "did not reach the exchange" in str(rejected["text"])
    assert gw.order_status(cl_ord_id=lost)["status"] == "rejected"
    assert [m.get(11) for m in venue.app if m.msg_type == "D"] == [cl_ord_id]
    assert gw.order_status(cl_ord_id=cl_ord_id)["status"] != "rejected"


def test_a_cancel_lost_in_a_venue_crash_is_refused_as_never_delivered(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, _ = accepted_order(venue, gw, events)
    venue.freeze()
    cancel = gw.cancel_order(cl_ord_id=cl_ord_id)
    _restart_losing_what_it_had_not_read(venue)
    refused = events.find(cl_ord_id, "order.cancel_rejected")
    assert (refused["cancel_cl_ord_id"], refused["reason"]) == (
        cancel["cancel_cl_ord_id"],
        "not_delivered",
    )
    assert not [m for m in venue.app if m.msg_type == "F"]
    assert [o["cl_ord_id"] for o in gw.request("orders")["orders"]] == [cl_ord_id]


def test_an_order_the_venue_kept_though_it_asked_for_it_again_comes_back_with_its_fill(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """A venue whose session store lagged its order book: it took the order, crashed before
    its store counted the message, and asks for it again on restart. The gateway gap fills
    (an order is never sent twice) and rejects it as not delivered; then the venue reports
    the order it kept. Its fill must reach the client, on the order the client placed."""
    venue.on("H", answer_status)
    kept = place(gw, qty="0.7")
    order = venue.wait_app("D")
    venue.next_in = order.seq  # the store lost count of the NewOrderSingle it had acted on
    _restart_losing_what_it_had_not_read(venue)
    assert events.find(kept, "order.rejected")["reason"] == "not_delivered"
    acknowledge(venue, order)
    fill(venue, order, "F-1")
    filled = events.find(kept, "order.filled")
    assert (filled["cum_qty"], filled["avg_px"], filled["order_id"]) == (
        "0.7",
        "30000",
        f"V-{kept}",
    )
    # reconciliation's answer ("new") may come after the ack, as an order.status stating it
    told = [e["type"] for e in events.seen if e.get("cl_ord_id") == kept]
    assert [t for t in told if t != "order.status"] == [
        "order.pending_new",
        "order.rejected",
        "order.accepted",
        "order.filled",
    ]
    assert gw.order_status(cl_ord_id=kept)["status"] == "filled"
    assert [m.get(11) for m in venue.app if m.msg_type == "D"] == [kept]


def test_a_cancel_the_venue_acted_on_though_it_asked_for_it_again_is_not_told_as_lost(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """The same lagging store, with a cancel: the venue cancelled the order, crashed before
    its store counted the OrderCancelRequest, and asks for it again on restart. The gateway
    gap fills (a cancel is never sent twice); the order, canceled by it, stays canceled, and
    no `order.cancel_rejected` says the cancel never arrived."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)

    def cancel(v: ScriptedVenue, request: Received) -> None:
        report = execution_report(
            order, exec_id="C-1", exec_type="4", ord_status="4", order_id=f"V-{cl_ord_id}"
        )
        v.send("8", [(t, request.get(11) or "") if t == 11 else (t, x) for t, x in report])

    venue.on("F", cancel)
    canceled = gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
    events.find(cl_ord_id, "order.canceled")
    venue.next_in = venue.wait_app("F").seq  # the store lost count of the cancel it acted on
    _restart_losing_what_it_had_not_read(venue)
    wait_until(
        lambda: stack.gateway is not None and "exchange never got" in stack.gateway.log(),
        10,
        "the gateway to take the cancel for never delivered",
    )
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    events.find(place(gw), "order.pending_new")  # whatever was told of the cancel came before
    assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
        "order.pending_new",
        "order.accepted",
        "order.pending_cancel",
        "order.canceled",
    ]
    [held] = [o for o in gw.request("orders", all=True)["orders"] if o["cl_ord_id"] == cl_ord_id]
    assert held["status"] == "canceled"
    assert [m.get(11) for m in venue.app if m.msg_type == "F"] == [canceled]


def test_a_cancel_the_venue_acknowledged_then_asked_for_again_is_not_told_as_lost(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue answers a cancel with a pending cancel (ExecType 6) only, then asks for the
    cancel again (a ResendRequest covering it). The gateway gap fills it (a cancel is never
    sent twice), but the venue had acknowledged it: nothing says it never arrived, and the
    order stays pending_cancel until the venue's ExecType 4."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def pending(v: ScriptedVenue, request: Received) -> None:
        report = execution_report(
            order, exec_id="P-1", exec_type="6", ord_status="6", order_id=f"V-{cl_ord_id}"
        )
        under_the_cancel = [(t, request.get(11) or "") if t == 11 else (t, x) for t, x in report]
        v.send("8", [*under_the_cancel, (41, cl_ord_id)])

    venue.on("F", pending)
    canceled = gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
    venue.send("2", [(7, str(venue.wait_app("F").seq)), (16, "0")], store=False)
    venue.wait_for(lambda m: m.msg_type == "4" and m.get(123) == "Y", what="the gap fill")
    assert [(o["cl_ord_id"], o["status"]) for o in gw.orders()] == [(cl_ord_id, "pending_cancel")]
    venue.send(
        "8",
        execution_report(
            order, exec_id="C-1", exec_type="4", ord_status="4", order_id=f"V-{cl_ord_id}"
        ),
    )
    events.find(cl_ord_id, "order.canceled")
    assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
        "order.pending_new",
        "order.accepted",
        "order.pending_cancel",
        "order.pending_cancel",
        "order.canceled",
    ]
    assert [m.get(11) for m in venue.app if m.msg_type == "F"] == [canceled]


def test_an_order_the_venue_did_not_know_yet_after_a_reconnect_comes_back_with_its_fill(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The venue takes an order and logs out before answering it. Reconciliation after the
    logon asks about the order, and the venue, not having got to it yet, answers it has no
    such order: rejected, reason `unknown_at_exchange`. Then the venue acknowledges and
    fills it: the order comes back with its ack and fill, and is never sent again."""
    taken: list[Received] = []

    def take_and_log_out(v: ScriptedVenue, order: Received) -> None:
        taken.append(order)
        v.logout("maintenance", "3")

    venue.on("D", take_and_log_out)
    venue.on("H", answer_unknown)
    cl_ord_id = place(gw)
    events.first(lambda e: e["type"] == "session.down")
    rejected = events.find(cl_ord_id, "order.rejected", timeout=20)
    assert rejected["reason"] == "unknown_at_exchange"
    acknowledge(venue, taken[0])
    fill(venue, taken[0], "F-1")
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["cum_qty"], filled["order_id"]) == ("0.5", f"V-{cl_ord_id}")
    assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
        "order.pending_new",
        "order.rejected",
        "order.accepted",
        "order.filled",
    ]
    assert [o["status"] for o in gw.orders(all=True)] == ["filled"]
    assert [m.get(11) for m in venue.app if m.msg_type == "D"] == [cl_ord_id]


def test_a_cancel_reject_sent_again_after_a_later_cancel_closed_the_order_is_not_told_again(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """A venue sends its refusal of the first cancel again (PossDupFlag=Y, under a new
    MsgSeqNum) after the second cancel closed the order: that cancel was answered, and its
    `order.cancel_rejected` is not told twice (FIX 4.4, PossDupFlag: the receiver checks
    whether it took the message before)."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("F", lambda v, m: None)
    gw.cancel_order(cl_ord_id=cl_ord_id)
    refuse_cancel(venue, venue.wait_app("F"), "0", "0", "not now")
    refusal = venue.store[venue.next_out - 1]
    events.find(cl_ord_id, "order.cancel_rejected")
    second = gw.cancel_order(cl_ord_id=cl_ord_id)["cancel_cl_ord_id"]
    venue.wait_app("F", 2)
    canceled = execution_report(
        order, exec_id="C-1", exec_type="4", ord_status="4", order_id=f"V-{cl_ord_id}"
    )
    venue.send("8", [(11, second) if t == 11 else (t, x) for t, x in canceled] + [(41, cl_ord_id)])
    events.find(cl_ord_id, "order.canceled")
    venue.send("9", refusal.body, header=[(43, "Y"), (122, "20200101-00:00:00.000")])
    events.find(place(gw), "order.accepted")  # acked after the repeat: it has been handled
    told = [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id]
    assert told.count("order.cancel_rejected") == 1
    assert gw.order_status(cl_ord_id=cl_ord_id)["status"] == "canceled"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("0", "client_logout"), ("2", "timeout"), ("3", "server_error"), ("7", "server_error")],
)
def test_a_logout_from_the_venue_names_its_reason_and_the_gateway_logs_on_again(
    venue: ScriptedVenue, gw: Client, events: EventLog, reason: str, expected: str
) -> None:
    venue.on("D", acknowledge)
    venue.logout("going away", reason)
    down = events.first(lambda e: e["type"] == "session.down")
    assert (down["reason"], down["logout_reason"]) == ("going away", expected)
    events.first(lambda e: e["type"] == "session.up", timeout=15)
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")


def tenth_filled(order: Received, n: int) -> list[tuple[int, str | bytes]]:
    """The `n`th fill of 0.1 of a 0.5 order, ExecID F-`n`."""
    return execution_report(
        order,
        exec_id=f"F-{n}",
        exec_type="F",
        ord_status="1",
        order_id=f"V-{order.get(11)}",
        cum_qty=f"0.{n}",
        leaves_qty=f"0.{5 - n}",
        avg_px="30000",
        last=("0.1", "30000"),
    )


def a_gap_left_open(venue: ScriptedVenue, order: Received) -> int:
    """The venue's fill F-1 of `order` lost on the way, F-2 after it received: the gateway
    asks for F-1 again, and the venue leaves that unanswered until told otherwise. Returns
    F-1's MsgSeqNum (QuickFIX holds F-2 back until the gap is closed)."""
    venue.answers_resend_requests = False
    lost = venue.send("8", tenth_filled(order, 1), lose=True)
    venue.send("8", tenth_filled(order, 2))
    asked = venue.wait_for(lambda m: m.msg_type == "2", what="a ResendRequest")
    assert asked.get(7) == str(lost)
    return lost


def resend_requests(venue: ScriptedVenue, since: int) -> list[Received]:
    """The ResendRequests among the venue's admin messages from the `since`th on."""
    return [m for m in venue.admin[since:] if m.msg_type == "2"]


def fills_journaled(stack: LocalStack, cl_ord_id: str) -> list[str]:
    """The ExecIDs of the order's fills, as the journal has them."""
    fill_types = ("order.partially_filled", "order.filled")
    return [
        str(e["exec_id"])
        for e in journaled(stack)
        if e.get("cl_ord_id") == cl_ord_id and e["type"] in fill_types
    ]


def test_a_logout_from_the_venue_while_a_resend_is_outstanding_the_next_logon_asks_for_it_again(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """Before the fix, QuickFIX counted the venue's Logout as received, past the gap: the
    next logon asked from F-2's number, and F-1 came only from reconciliation, made up."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_filled("0.2"))
    lost = a_gap_left_open(venue, order)
    logons_before = len(venue.admin)
    venue.answers_resend_requests = True
    venue.logout("end of session")
    events.first(lambda e: e["type"] == "session.up", timeout=15)
    events.first(lambda e: e.get("exec_id") == "F-2")
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.2"
    assert resend_requests(venue, logons_before)[0].get(7) == str(lost)
    assert fills_journaled(stack, cl_ord_id) == ["F-1", "F-2"]


def test_a_logout_saying_the_credentials_are_wrong_holds_further_logons(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    logons = [m for m in venue.admin if m.msg_type == "A"]
    venue.logout("api key revoked", "1")
    down = events.first(lambda e: e["type"] == "session.down")
    assert down["logout_reason"] == "invalid_credentials"
    wait_until(lambda: gw.status()["connection"]["phase"] == "held", 10, "the logon held back")
    wait_until(lambda: not venue.logged_on, 10, "the venue's end of the session")
    assert [m for m in venue.admin if m.msg_type == "A"] == logons
    assert gw.status()["connection"]["attempts"] == 1
    gw.request("session_logon")
    events.first(lambda e: e["type"] == "session.up", timeout=15)


def next_status(notify: socket.socket, starting: bytes) -> bytes:
    """The first STATUS systemd is sent that starts with `starting`; READY=1 and the other
    STATUS lines before it passed over, none of them saying the gateway is logged on."""
    while not (message := notify.recv(512)).startswith(b"STATUS=" + starting):
        assert b"STATUS=logged on" not in message, message
    return message


def test_systemd_status_follows_the_session_a_refusal_a_logon_again_and_a_venue_gone(
    make_venue_stack: VenueStackFactory, tmp_path: Path
) -> None:
    """`systemctl status` says what the session is now, every time it changes: not only at
    the first READY=1."""
    address = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(address)
    notify.settimeout(20)
    venue, stack = make_venue_stack(gateway_env={"NOTIFY_SOCKET": address})
    assert notify.recv(512).startswith(b"READY=1\nSTATUS=logged on as FIX.4.4:")

    venue.logout("api key revoked", "1")
    assert next_status(notify, b"not logged on: ") == (
        b"STATUS=not logged on: the exchange refused the credentials: api key revoked"
    )
    with stack.client() as gw:
        gw.request("session_logon")
        next_status(notify, b"logged on as FIX.4.4:")
        assert gw.status()["ready"]

        venue.crash()
        assert b"disconnected" in next_status(notify, b"session down: ")
        assert not gw.status()["ready"]
        venue.restart()
        next_status(notify, b"logged on as FIX.4.4:")
    notify.close()


@pytest.mark.parametrize(
    ("venue_does", "why"),
    [
        (lambda v: v.send("0", [], seq=1, store=False), "MsgSeqNum too low, expecting "),
        (
            lambda v: v.send(
                "0", [], store=False, sent_at=datetime.now(UTC) - timedelta(minutes=5)
            ),
            "SendingTime accuracy problem",
        ),
    ],
    ids=["numbered_too_low_without_poss_dup", "sending_time_five_minutes_off"],
)
def test_a_session_the_gateway_logs_out_itself_ends_saying_why(
    venue_stack: tuple[ScriptedVenue, LocalStack],
    gw: Client,
    events: EventLog,
    venue_does: Callable[[ScriptedVenue], object],
    why: str,
) -> None:
    """QuickFIX ends the session as FIX 4.4 asks (a Logout, after a Reject for the
    SendingTime): `session.down`, the log and `status` say why, not just "disconnected"."""
    venue, stack = venue_stack
    accepted_order(venue, gw, events)
    venue_does(venue)
    down = events.first(lambda e: e["type"] == "session.down")
    assert down["reason"].startswith(f"logged out by the gateway: {why}")
    assert stack.gateway is not None
    assert down["reason"] in stack.gateway.log()
    assert gw.status()["connection"]["last_down_reason"] == down["reason"]
    events.first(lambda e: e["type"] == "session.up", timeout=15)


@pytest.mark.parametrize(
    "venue_does",
    [
        lambda v: v.send("0", [], seq=1, store=False),
        lambda v: v.send("0", [], store=False, sent_at=datetime.now(UTC) - timedelta(minutes=5)),
    ],
    ids=["numbered_too_low_without_poss_dup", "sending_time_five_minutes_off"],
)
def test_a_session_the_gateway_logs_out_itself_while_a_resend_is_outstanding_asks_for_it_again(
    venue_stack: tuple[ScriptedVenue, LocalStack],
    gw: Client,
    events: EventLog,
    venue_does: Callable[[ScriptedVenue], object],
) -> None:
    """Before the fix, for a SendingTime off, QuickFIX counted the venue's Logout answering
    its own as received, past the gap: the next logon asked from F-2's number."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_filled("0.2"))
    lost = a_gap_left_open(venue, order)
    logons_before = len(venue.admin)
    venue.answers_resend_requests = True
    venue_does(venue)
    events.first(lambda e: e["type"] == "session.down")
    events.first(lambda e: e["type"] == "session.up", timeout=15)
    events.first(lambda e: e.get("exec_id") == "F-2")
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    assert resend_requests(venue, logons_before)[0].get(7) == str(lost)
    assert fills_journaled(stack, cl_ord_id) == ["F-1", "F-2"]


def test_a_fill_held_for_a_gap_until_its_sending_time_is_too_far_off_is_read_once_in_order(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """F-2 arrives 119 s after its SendingTime (within QuickFIX's 120 s) and is held back
    for the lost F-1; the venue answers the ResendRequest once F-2 is more than 120 s old.
    QuickFIX checks the SendingTime again as it takes F-2 from its queue: it rejects it
    (373=10) and logs out, counting F-2 received. Before the fix the gateway could not find
    F-2's text (the last message received was F-1 again), asked about every order, and read
    F-2 only later, if at all: it may be made up by reconciliation."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_filled("0.2"))
    venue.answers_resend_requests = False
    venue.send("8", tenth_filled(order, 1), lose=True)
    sent_at = datetime.now(UTC) - timedelta(seconds=119)
    venue.send("8", tenth_filled(order, 2), sent_at=sent_at)
    asked = venue.wait_for(lambda m: m.msg_type == "2", what="a ResendRequest")
    wait_until(
        lambda: datetime.now(UTC) - sent_at > timedelta(seconds=121.5), 5, "F-2 to age past 120 s"
    )
    venue.answers_resend_requests = True
    venue.answer_resend_request(asked)
    down = events.first(lambda e: e["type"] == "session.down")
    assert down["reason"] == "logged out by the gateway: SendingTime accuracy problem"
    events.first(lambda e: e["type"] == "session.up", timeout=15)
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.2"
    told = [
        (e["type"], e.get("exec_id"))
        for e in events.seen
        if e["type"] in ("order.partially_filled", "order.filled", "session.up")
    ]
    # read as QuickFIX refused it, not after the next logon, and never made up
    assert told == [
        ("order.partially_filled", "F-1"),
        ("order.partially_filled", "F-2"),
        ("session.up", None),
    ], told
    assert fills_journaled(stack, cl_ord_id) == ["F-1", "F-2"]
    assert stack.status()["inbound_refused"] == 1  # read from the text held for the gap


def test_a_venue_numbering_from_1_again_unannounced_is_refused_at_logon_saying_why(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """The venue restarts its numbering at 1 without ResetSeqNumFlag (a weekly restart):
    its Logon answer is numbered too low, and QuickFIX logs out. That needs the operator
    (FIX 4.4), so the cause must show, though clients were told the session was down:
    `session.down` says it, and the log and `status` keep it."""
    venue, stack = venue_stack
    accepted_order(venue, gw, events)
    venue.logout("weekly restart", "3")
    events.first(lambda e: e["type"] == "session.down")
    wait_until(lambda: not venue.logged_on, 10, "the venue's end of the session")
    venue.next_out = 1
    venue.store.clear()
    refused = events.first(
        lambda e: e["type"] == "session.down" and e["reason"] != "weekly restart", timeout=15
    )
    assert refused["reason"].startswith("logged out by the gateway: MsgSeqNum too low, expecting")
    assert "MsgSeqNum too low" in gw.status()["connection"]["last_down_reason"]
    assert stack.gateway is not None
    logged = [json.loads(line) for line in stack.gateway.log().splitlines() if line[:1] == "{"]
    failed = [e for e in logged if e["event"] == "logon failed"]
    assert (failed[0]["level"], failed[0]["reason"]) == ("warning", refused["reason"])


def logged_lines(stack: LocalStack) -> list[dict[str, object]]:
    assert stack.gateway is not None
    return [json.loads(line) for line in stack.gateway.log().splitlines() if line[:1] == "{"]


def test_a_venue_back_with_its_clock_minutes_off_is_refused_at_logon_saying_why(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """After a restart the venue's clock is 3 minutes fast. QuickFIX refuses its Logon
    answer (SendingTime accuracy), and cannot say so to the venue before logon: only its
    event log says why. `session.down`, the log and `status` say it, not the reason the
    last session ended for."""
    venue, stack = venue_stack
    accepted_order(venue, gw, events)
    venue.logout("daily restart", "3")
    events.first(lambda e: e["type"] == "session.down")
    wait_until(lambda: not venue.logged_on, 10, "the venue's end of the session")
    venue.clock_offset_s = 180
    refused = events.first(
        lambda e: e["type"] == "session.down" and e["reason"] != "daily restart", timeout=15
    )
    assert refused["reason"] == (
        "the gateway refused the exchange's Logon answer: SendingTime accuracy problem"
    )
    assert gw.status()["connection"]["last_down_reason"] == refused["reason"]
    failed = [e for e in logged_lines(stack) if e["event"] == "logon failed"]
    assert (failed[0]["level"], failed[0]["reason"]) == ("warning", refused["reason"])
    venue.clock_offset_s = 0
    events.first(lambda e: e["type"] == "session.up" and e["seq"] > refused["seq"], timeout=15)


def test_a_logon_answer_from_another_comp_id_is_refused_saying_which(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The gateway's `target_comp_id` is not the venue's CompID: every logon fails, and the
    reason names the CompIDs of the answer, not just "disconnected"."""
    venue, stack = make_venue_stack(venue_comp_id="OKCOIN", wait_for_logon=False)
    with stack.client() as gw:
        wait_until(lambda: gw.status()["connection"]["attempts"] >= 2, 15, "a second attempt")
        connection = gw.status()["connection"]
    assert connection["last_down_reason"] == (
        "the gateway refused the exchange's Logon answer: CompID problem "
        f"(the answer's SenderCompID OKCOIN, TargetCompID {COMP_ID})"
    )
    assert not venue.logged_on


@dataclass
class LogonRefusingVenue(ScriptedVenue):
    """Answers every Logon with a session-level Reject saying why, or not at all."""

    reject_text: str | None = None

    def _logon(self, m: Received) -> None:
        self.admin.append(m)
        if self.reject_text is not None:
            reject: Pairs = [(45, str(m.seq)), (372, "A"), (373, "5"), (58, self.reject_text)]
            self.send("3", reject, store=False)


@pytest.mark.parametrize(
    ("reject_text", "why"),
    [
        ("HeartBtInt must be 30", "the exchange rejected the Logon: HeartBtInt must be 30"),
        (None, "no answer to the Logon: Timed out waiting for logon response"),
    ],
    ids=["rejected", "unanswered"],
)
def test_a_logon_the_venue_rejects_or_leaves_unanswered_fails_saying_why(
    make_venue_stack: VenueStackFactory, reject_text: str | None, why: str
) -> None:
    def refusing(venue: ScriptedVenue) -> None:
        assert isinstance(venue, LogonRefusingVenue)
        venue.reject_text = reject_text

    _, stack = make_venue_stack(refusing, venue_type=LogonRefusingVenue, wait_for_logon=False)
    with stack.client() as gw:
        wait_until(
            lambda: gw.status()["connection"]["last_down_reason"] is not None,
            20,
            "a failed logon",
        )
        assert gw.status()["connection"]["last_down_reason"] == why
    down = [e for e in logged_lines(stack) if e["event"] == "session down"]
    assert down[0]["reason"] == why


def test_a_venue_that_heartbeats_but_answers_no_test_request_is_logged_out_saying_why(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue's order entry hangs while its heartbeats go on: it is not silent, but a
    TestRequest goes unanswered, and FIX 4.4 takes the session as lost. Two intervals on,
    the gateway logs out saying why and drops the connection; meanwhile `heartbeat_rtt_ms`
    shows how long the TestRequest has waited, not the last round trip. The order sent
    into the hung session is reconciled after the next logon."""
    venue, stack = make_venue_stack(session={"heartbeat_s": 2})
    with stack.client() as gw:
        gw.subscribe(["orders", "session"])
        events = EventLog(gw)
        accepted_order(venue, gw, events)
        wait_until(lambda: gw.status()["heartbeat_rtt_ms"] is not None, 10, "a round trip")
        venue.answers_test_requests = False
        venue.on("D", lambda v, m: None)
        venue.on("H", lambda v, m: None)
        in_flight = place(gw, qty="0.7")
        wait_until(
            lambda: (gw.status()["heartbeat_rtt_ms"] or 0) > 1000, 10, "the TestRequest's wait"
        )
        down = events.first(lambda e: e["type"] == "session.down", timeout=15)
        venue.answers_test_requests = True
        venue.on("D", acknowledge)
        venue.on("H", answer_status)
        assert down["reason"].startswith("TestRequest not answered in ")
        logout = venue.wait_for(lambda m: m.msg_type == "5", what="the gateway's Logout")
        assert logout.get(58) == down["reason"]
        assert gw.status()["connection"]["last_down_reason"] == down["reason"]
        events.first(lambda e: e["type"] == "session.up" and e["seq"] > down["seq"], timeout=15)
        events.find(in_flight, "order.accepted", timeout=15)
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
    logged = [e for e in logged_lines(stack) if e["event"] == "session down"]
    assert logged[0]["reason"] == down["reason"]


def test_a_venue_answering_test_requests_late_but_within_two_intervals_stays_up(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(session={"heartbeat_s": 2})
    venue.test_request_delay_s = 3

    def test_requests() -> int:
        return len([m for m in venue.admin if m.msg_type == "1"])

    with stack.client() as gw:
        gw.subscribe(["session"])
        events = EventLog(gw)
        asked = test_requests()
        wait_until(lambda: test_requests() >= asked + 5, 20, "five TestRequests, answered late")
        wait_until(
            lambda: (gw.status()["heartbeat_rtt_ms"] or 0) >= 2900, 10, "a late answer timed"
        )
        status = gw.status()
    assert (status["session"], status["ready"]) == ("up", True)
    assert [e for e in events.seen if e["type"] == "session.down"] == []


def test_an_order_held_by_the_throttle_when_the_session_goes_down_is_never_sent(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Its turn might come after the next logon, while reconciliation holds new orders back,
    checked against a price from before the outage: it ends rejected, `not_delivered`,
    when the session goes down, as at a stop."""
    venue, stack = make_venue_stack(
        throttle={"limits": {"new_order": {"per_s": 0.2, "burst": 1}}, "policy": "queue"}
    )
    with stack.client() as gw:
        gw.subscribe(["orders", "session"])
        events = EventLog(gw)
        sent, _ = accepted_order(venue, gw, events)
        held = place(gw, qty="0.7")
        assert gw.status()["throttle_queued"] == 1
        venue.logout("maintenance", "3")
        rejected = events.find(held, "order.rejected")
        assert (rejected["reason"], rejected["text"]) == (
            "not_delivered",
            "not sent: the session went down",
        )
        assert gw.status()["throttle_queued"] == 0
        events.first(lambda e: e["type"] == "session.up", timeout=15)
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
        after = place(gw, qty="0.9")
        events.find(after, "order.accepted", timeout=15)
    assert [m.get(11) for m in venue.app if m.msg_type == "D"] == [sent, after]


def session_events(stack: LocalStack) -> list[str]:
    path = Path(stack.gateway_config()["journal"]["path"])
    types = (json.loads(line)["type"] for line in path.read_text().splitlines())
    return [t for t in types if t.startswith("session.")]


def test_a_reset_logon_from_the_venue_is_answered_once_and_the_session_goes_on(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.reset_sequence_numbers()
    answer = venue.wait_for(lambda m: m.msg_type == "A" and m.get(141) == "Y", what="the answer")
    assert answer.seq == 1
    fill(venue, order, "F-1")
    assert events.find(cl_ord_id, "order.filled")["cum_qty"] == "0.5"
    events.find(place(gw), "order.accepted")
    assert session_events(stack) == ["session.up", "session.up"]


def test_a_venue_answering_the_answer_to_its_reset_logon_is_logged_out_not_answered_forever(
    make_venue_stack: VenueStackFactory,
) -> None:
    def answering_every_logon(venue: ScriptedVenue) -> None:
        venue.answers_its_reset_answer = True

    venue, stack = make_venue_stack(answering_every_logon)
    with stack.client() as gw:
        gw.subscribe(["orders", "session"])
        events = EventLog(gw)
        venue.reset_sequence_numbers()
        down = events.first(lambda e: e["type"] == "session.down")
        assert down["reason"] == (
            "protocol error: a second Logon in a row in a session already logged on"
        )
        up = events.first(lambda e: e["type"] == "session.up" and e["seq"] > down["seq"])
        backed_off = datetime.fromisoformat(up["ts"]) - datetime.fromisoformat(down["ts"])
        assert backed_off.total_seconds() >= 1  # reconnect.floor_s at least
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
        accepted_order(venue, gw, events)
    gateway_logons = [m for m in venue.admin if m.msg_type == "A"]
    assert len(gateway_logons) == 3  # the first, the answer to the reset, the next session's
    assert session_events(stack) == ["session.up", "session.up", "session.down", "session.up"]


def test_a_client_asking_an_order_status_while_reconciliation_asks_it_too_gets_the_answer(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """After a venue restart, reconciliation asks about the open order; a client asks about
    it too. The venue answers one of the two questions (here, reconciliation's): that answer
    is the client's as well, not a time-out."""
    venue, stack = venue_stack
    cl_ord_id, _ = accepted_order(venue, gw, events)
    venue.on("H", lambda v, m: None)
    before = len([m for m in venue.app if m.msg_type == "H"])
    venue.crash()
    venue.restart()
    asked_by_reconciliation = venue.wait_app("H", nth=before + 1, timeout=15)
    with stack.client() as other, ThreadPoolExecutor(1) as pool:
        asked = pool.submit(other.order_status, cl_ord_id=cl_ord_id)
        venue.wait_app("H", nth=before + 2)
        answer_status(venue, asked_by_reconciliation)
        answer = asked.result(timeout=15)
    assert (answer["status"], answer["source"]) == ("new", "exchange")
    wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
