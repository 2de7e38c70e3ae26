"""The gateway stopped and started again against a venue: what it asks the venue for again
(the journal's checkpoint, docs/operations.md), and what it takes for a repeat."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from fixgw.testing import LocalStack
from tests.counterparties.test_venue_extra_fields import accepted_order, place
from tests.counterparties.venue import Received, ScriptedVenue, execution_report, refuse_cancel
from tests.integration.conftest import EventLog

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
