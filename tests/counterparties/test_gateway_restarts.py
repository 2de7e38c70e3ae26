"""The gateway stopped and started again against a venue: what it asks the venue for again
(the journal's checkpoint, docs/operations.md), and what it takes for a repeat."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from fixgw.testing import LocalStack, free_port, wait_until
from tests.counterparties.conftest import VenueStackFactory
from tests.counterparties.raw_oms import RawOms
from tests.counterparties.test_oms_crash import FillingVenue
from tests.counterparties.test_oms_order_answers import cancel as oms_cancel
from tests.counterparties.test_oms_order_answers import order as oms_order
from tests.counterparties.test_oms_order_answers import report
from tests.counterparties.test_venue_extra_fields import accepted_order, place
from tests.counterparties.test_venue_session import (
    a_gap_left_open,
    answering_filled,
    fills_journaled,
    resend_requests,
    tenth_filled,
)
from tests.counterparties.venue import (
    Received,
    ScriptedVenue,
    acknowledge,
    answer_status,
    execution_report,
    refuse_cancel,
)
from tests.integration.conftest import EventLog
from tests.integration.test_journal_damage import fixgw

POSS_DUP = [(43, "Y"), (122, "20200101-00:00:00.000")]


def journal_path(stack: LocalStack) -> Path:
    return Path(stack.gateway_config()["journal"]["path"])


def checkpoint(stack: LocalStack) -> int:
    return int(journal_path(stack).with_suffix(".jsonl.fixseq").read_text())


def killed_before_the_journal_took(stack: LocalStack, exec_id: str, at: int) -> None:
    """The state a SIGKILL leaves between QuickFIX storing a report and the journal taking
    its events: the journal without the report's line, the checkpoint `at` as it was."""
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    Path(stack.socket_path).unlink(missing_ok=True)
    path = journal_path(stack)
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("exec_id") != exec_id]
    assert len(kept) == len(lines) - 1
    path.write_bytes(b"".join(kept))
    path.with_suffix(".jsonl.fixseq").write_text(f"{at:020d}\n")


def restarted(stack: LocalStack) -> None:
    assert stack.gateway is not None
    assert stack.gateway.stop(signal.SIGTERM) == 0
    Path(stack.socket_path).unlink(missing_ok=True)
    stack.start_gateway()


def test_after_the_venue_reset_its_numbering_a_fill_the_journal_had_not_taken_is_asked_again(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """Before the fix the checkpoint kept the last number of the old numbering, above the
    fill's new one: the restart asked for nothing, and the fill was lost."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        for n in (1, 2, 3):
            venue.send("8", tenth_filled(order, n))
        events.first(lambda e: e.get("exec_id") == "F-3")
        venue.reset_sequence_numbers()
        venue.wait_for(lambda m: m.msg_type == "A" and m.get(141) == "Y", what="the answer")
        before_the_fill = checkpoint(stack)
        venue.send("8", tenth_filled(order, 4))
        since = events.first(lambda e: e.get("exec_id") == "F-4")["seq"] - 1
    killed_before_the_journal_took(stack, "F-4", before_the_fill)
    stack.start_gateway()
    with stack.client() as gw:
        gw.subscribe(["orders"], since=since)
        events = EventLog(gw)
        fill = events.first(lambda e: e.get("exec_id") == "F-4")
        assert (fill["type"], fill["cum_qty"]) == ("order.partially_filled", "0.4")
        assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.4"


def test_a_clean_stop_leaves_the_venue_nothing_to_send_again(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """The venue's messages after the last report (its Logout, here) are taken too: before
    the fix, every restart after a SIGTERM warned and sent a ResendRequest."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        accepted_order(venue, gw, EventLog(gw))
    restarted(stack)
    assert [m.msg_type for m in venue.admin].count("A") == 2
    assert not [m for m in venue.admin if m.msg_type == "2"]
    assert stack.gateway is not None
    assert "not journaled before the last stop" not in stack.gateway.log()


def test_a_clean_stop_while_a_resend_is_outstanding_asks_again_from_the_first_missing_report(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """Before the fix, QuickFIX counted the venue's Logout answering ours as received, past
    the gap: the checkpoint said F-1's number was handled, and the restart asked from F-2's.
    F-1 was never asked for again; its fill came only from reconciliation, made up."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id, order = accepted_order(venue, gw, EventLog(gw))
        venue.on("H", answering_filled("0.2"))
        lost = a_gap_left_open(venue, order)
    logons_before = len(venue.admin)
    venue.answers_resend_requests = True
    assert stack.gateway is not None
    assert stack.gateway.stop(signal.SIGTERM) == 0
    assert checkpoint(stack) == lost - 1
    Path(stack.socket_path).unlink(missing_ok=True)
    stack.start_gateway()
    with stack.client() as gw:
        gw.subscribe(["orders"], since=0)
        EventLog(gw).first(lambda e: e.get("exec_id") == "F-2")
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
        assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.2"
    assert resend_requests(venue, logons_before)[0].get(7) == str(lost)
    assert fills_journaled(stack, cl_ord_id) == ["F-1", "F-2"]


@pytest.mark.parametrize("named_by", ["cl_ord_id", "order_id"])
def test_a_status_request_refused_after_a_restart_naming_the_order_does_not_hold_orders_back(
    make_venue_stack: VenueStackFactory, named_by: str
) -> None:
    """Reconciliation asks about the open order; the venue refuses by a BusinessMessageReject
    naming it in BusinessRejectRefID by its ClOrdID, or by the OrderID the request carried
    too: the gateway takes orders at once, not at `reconcile_timeout_s` (60 here, longer
    than `start_gateway` waits; before the fix the OrderID held it back to that)."""
    venue, stack = make_venue_stack(session={"reconcile_timeout_s": 60})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        accepted_order(venue, gw, EventLog(gw))
    tag = 11 if named_by == "cl_ord_id" else 37

    def refuse(v: ScriptedVenue, m: Received) -> None:
        v.send("j", [(372, "H"), (379, m.get(tag) or ""), (380, "3"), (58, "refused")])

    venue.on("H", refuse)
    restarted(stack)
    assert venue.wait_app("H").get(37) is not None
    assert stack.status()["ready"]


def test_reports_the_venue_sends_again_after_a_restart_tell_clients_nothing(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """PossDupFlag=Y, as a venue whose store lagged what it had sent: the ack of an order
    filled in part since (same ExecID; before the fix only fills' ExecIDs were known after a
    restart, and it was an `order.anomaly`), and the refusal of a cancel already told."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        acked, order = accepted_order(venue, gw, events)
        ack = venue.store[venue.next_out - 1]
        venue.send("8", tenth_filled(order, 1))
        events.first(lambda e: e.get("exec_id") == "F-1")
        refused, _ = accepted_order(venue, gw, events)
        filled_to = answering_filled("0.1")  # the restart's status answers not behind F-1
        venue.on("H", lambda v, m: (filled_to if m.get(11) == acked else answer_status)(v, m))
        venue.on("F", lambda v, m: refuse_cancel(v, m, "0", "0", "not now"))
        gw.cancel_order(cl_ord_id=refused)
        events.find(refused, "order.cancel_rejected")
        refusal = venue.store[venue.next_out - 1]
        since = events.seen[-1]["seq"]
    restarted(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"], since=since)
        events = EventLog(gw)
        venue.send("8", ack.body, header=POSS_DUP)
        venue.send("9", refusal.body, header=POSS_DUP)
        behind = place(gw)  # its ack comes after the repeats: they have been handled
        events.find(behind, "order.accepted")
        told = [e for e in events.seen if e["cl_ord_id"] in (acked, refused)]
        assert told == []
        assert gw.order_status(cl_ord_id=acked)["cum_qty"] == "0.1"


def two_oms_through(
    make_venue_stack: VenueStackFactory, venue_side: list[FillingVenue], **overrides: Any
) -> tuple[LocalStack, RawOms]:
    """The gateway with a bridge of two OMS sessions, OMS1 (logged on, returned) and OMS2,
    to a venue that acknowledges each order and fills it when told (`venue_side`); an API
    client's order (`api-...`) it fills at once."""

    def configure(v: ScriptedVenue) -> None:
        filling = FillingVenue(v)
        venue_side.append(filling)

        def take(venue: ScriptedVenue, new_order: Received) -> None:
            acknowledge(venue, new_order)
            if (new_order.get(11) or "").startswith("api-"):
                filling.fill(new_order, new_order.get(38) or "0", f"F-{new_order.get(11)}")

        v.on("D", take)

    port = free_port()
    bridge = {"port": port, "store_dir": "bridge-store"}
    sessions = [{"comp_id": "OMS1"}, {"comp_id": "OMS2"}]
    _, stack = make_venue_stack(configure, bridge={**bridge, "sessions": sessions}, **overrides)
    oms = RawOms(port, "OMS1")
    oms.start()
    return stack, oms


def filled_while_oms1_was_out(stack: LocalStack, venue: FillingVenue, oms: RawOms) -> None:
    """OMS1's R1 rests; the gateway restarted with `bridge` as the stack says now, and R1
    filled at the venue (FILL-R1), journaled."""
    oms.send("D", oms_order("R1"))
    report(oms, "R1", "0")
    oms.logout()
    restarted(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        venue.fill(venue.order("R1"), "0.5", "FILL-R1")
        events.first(lambda e: e.get("exec_id") == "FILL-R1")


def test_an_oms_session_taken_out_of_the_config_and_back_is_told_the_fill_it_missed(
    make_venue_stack: VenueStackFactory,
) -> None:
    """A restart without OMS1 while OMS2 stayed: the bridge's one mark moved past the fill
    of OMS1's order, and OMS1, configured again, was never told of it (it was, had the
    whole bridge been off). Each session now has a mark of its own."""
    venues: list[FillingVenue] = []
    stack, oms = two_oms_through(make_venue_stack, venues)
    try:
        bridge = stack.gateway_overrides["bridge"]
        bridge["sessions"] = [{"comp_id": "OMS2"}]
        filled_while_oms1_was_out(stack, venues[0], oms)
        bridge["sessions"] = [{"comp_id": "OMS1"}, {"comp_id": "OMS2"}]
        restarted(stack)
        oms.reconnect()
        told = report(oms, "R1", "F")
    finally:
        oms.logout()
    assert (told[17], told[39], told[14], told.get(97)) == ("FILL-R1", "2", "0.5", "Y")
    assert stack.gateway is not None
    said = [
        line
        for line in map(json.loads, stack.gateway.log().splitlines())
        if line["event"].startswith("open orders of OMS sessions not configured")
    ]
    # once, at the start without OMS1: R1 was open; at the next start it was filled
    assert [(s["level"], s["orders"]) for s in said] == [("warning", {"OMS1": ["OMS1-R1"]})]


def test_open_orders_a_session_placed_under_a_prefix_it_no_longer_has_are_named_at_start(
    make_venue_stack: VenueStackFactory,
) -> None:
    """A session whose `cl_ord_id_prefix` changed no longer reaches the orders it placed under
    the old one (documented); unlike a session taken out, nothing said so at start."""
    venues: list[FillingVenue] = []
    stack, oms = two_oms_through(make_venue_stack, venues)
    try:
        oms.send("D", oms_order("R1"))
        report(oms, "R1", "0")
    finally:
        oms.logout()
    bridge = stack.gateway_overrides["bridge"]
    bridge["sessions"] = [{"comp_id": "OMS1", "cl_ord_id_prefix": "N1-"}, {"comp_id": "OMS2"}]
    restarted(stack)
    assert stack.gateway is not None
    said = [
        line
        for line in map(json.loads, stack.gateway.log().splitlines())
        if line["event"].startswith("open orders of OMS sessions placed under another")
    ]
    assert [(s["level"], s["orders"], s["prefixes"]) for s in said] == [
        ("warning", {"OMS1": ["OMS1-R1"]}, {"OMS1": "N1-"})
    ]


def test_a_journal_compacted_while_the_bridge_was_off_keeps_what_the_oms_was_not_told(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The bridge's mark was read only with `bridge` configured: compacted while it was off,
    the journal lost R1's fill (R1 forgotten by then), and OMS1, once the bridge was back,
    was never told of it, as it is on the whole journal. The mark is found in the store the
    last bridge recorded beside the journal, though `journal compact` runs from another
    working directory than the gateway's (`store_dir` is relative)."""
    venues: list[FillingVenue] = []
    stack, oms = two_oms_through(make_venue_stack, venues, orders={"keep_closed": 1})
    try:
        bridge = stack.gateway_overrides.pop("bridge")
        filled_while_oms1_was_out(stack, venues[0], oms)
        with stack.client() as gw:  # R1 forgotten, and its ids no longer refused
            gw.subscribe(["orders"])
            events = EventLog(gw)
            for n in range(15):
                gw.new_order(cl_ord_id=f"api-{n}", symbol="BTC/USD", side="buy", type="limit",
                             qty="0.01", price="30010")  # fmt: skip
                events.find(f"api-{n}", "order.filled")
        assert stack.gateway is not None and stack.gateway.stop() == 0
        Path(stack.socket_path).unlink(missing_ok=True)
        config = str(stack.root / "gateway.yaml")
        done = fixgw(stack, "journal", "compact", "-c", config, "--keep-days", "0",
                     "--keep-trades", "0")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "FILL-R1" in journal_path(stack).read_text()
        stack.gateway_overrides["bridge"] = bridge
        stack.start_gateway()
        oms.reconnect()
        told = report(oms, "R1", "F")
    finally:
        oms.logout()
    mark = stack.root / "bridge-store" / "reported.OMS1.seq"
    assert f"by OMS OMS1's reports' mark ({mark})" in done.stdout
    assert (told[17], told[39]) == ("FILL-R1", "2")


def cancels_pending_until_asked(filling: FillingVenue, cancelled: set[str]) -> None:
    """The venue takes a cancel as pending (ExecType 6 under the cancel's ClOrdID) and
    carries it out later: a status request is answered Canceled once the order's id is in
    `cancelled`, Pending Cancel before."""

    def take_cancel(v: ScriptedVenue, request: Received) -> None:
        taken = next(m for m in v.app if m.msg_type == "D" and m.get(11) == request.get(41))
        body = execution_report(taken, exec_id=f"PC-{request.seq}", exec_type="6",
                                ord_status="6", order_id=f"V-{taken.get(11)}")  # fmt: skip
        body = [(11, request.get(11) or "") if t == 11 else (t, x) for t, x in body]
        v.send("8", [*body, (41, request.get(41) or "")])

    def answer_status(v: ScriptedVenue, request: Received) -> None:
        taken = next(m for m in v.app if m.msg_type == "D" and m.get(11) == request.get(11))
        gone = request.get(11) in cancelled
        v.send("8", execution_report(
            taken, exec_id=f"S-{request.seq}", exec_type="I", ord_status="4" if gone else "6",
            order_id=f"V-{taken.get(11)}", leaves_qty="0" if gone else None,
        ))  # fmt: skip

    filling.venue.on("F", take_cancel)
    filling.venue.on("H", answer_status)


@pytest.mark.parametrize("forgotten", [False, True])
def test_a_cancel_carried_out_while_the_oms_session_was_out_is_answered_under_the_cancels_id(
    make_venue_stack: VenueStackFactory, forgotten: bool
) -> None:
    """OMS1's cancel C1 was pending when OMS1 was taken out of `bridge.sessions`; the venue
    carried it out meanwhile (told at the restart's reconciliation), and R1 was forgotten
    (`keep_closed`) before OMS1 was configured again. Its Canceled came under R1 with no
    OrigClOrdID: the cancel was found only through the order, and the PendingCancel that
    named it was before OMS1's mark. `order.canceled` names the cancel it answers."""
    venues: list[FillingVenue] = []
    stack, oms = two_oms_through(make_venue_stack, venues, orders={"keep_closed": 1})
    cancelled: set[str] = set()
    cancels_pending_until_asked(venues[0], cancelled)
    bridge = stack.gateway_overrides["bridge"]
    try:
        oms.send("D", oms_order("R1"))
        report(oms, "R1", "0")
        oms.send("F", oms_cancel("C1", "R1"))
        report(oms, "C1", "6")
        oms.logout()
        bridge["sessions"] = [{"comp_id": "OMS2"}]
        cancelled.add("OMS1-R1")
        restarted(stack)  # reconciliation: R1 is cancelled
        with stack.client() as gw:
            gw.subscribe(["orders"], since=0)
            events = EventLog(gw)
            canceled = events.find("OMS1-R1", "order.canceled")
            for n in range(3 if forgotten else 0):  # closed after R1: R1 forgotten
                gw.new_order(cl_ord_id=f"api-{n}", symbol="BTC/USD", side="buy", type="limit",
                             qty="0.01", price="30010")  # fmt: skip
                events.find(f"api-{n}", "order.filled")
            kept = [o["cl_ord_id"] for o in gw.orders(all=True)]
            assert ("OMS1-R1" not in kept) == forgotten
        bridge["sessions"] = [{"comp_id": "OMS1"}, {"comp_id": "OMS2"}]
        restarted(stack)
        oms.reconnect()
        told = oms.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "4")
    finally:
        oms.logout()
    assert (told[11], told.get(41), told[39], told.get(97)) == ("C1", "R1", "4", "Y")
    assert canceled["cancel_cl_ord_id"] == "OMS1-C1"
