"""A venue writes Text (58) in Latin-1, not UTF-8: FIX 4.4 leaves a String field's character
set to the counterparties. Every message is taken all the same, and its text reaches
clients, the journal and the log as the venue meant it. A data field (EncodedText, 355) holds
any bytes, SOH among them: it is read by its length, as FIX 4.4 has it."""

from __future__ import annotations

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack
from tests.counterparties.conftest import VenueStackFactory
from tests.counterparties.test_venue_extra_fields import (
    accepted_order,
    journaled,
    place,
    rejects_sent,
)
from tests.counterparties.venue import ScriptedVenue, execution_report, fill, refuse_cancel
from tests.integration.conftest import EventLog

TEXT = "refusé: marché fermé"
LATIN1 = TEXT.encode("latin-1")
"""é as the one byte 0xE9, which is not UTF-8."""
UTF16_WITH_SOH = "Łódź".encode("utf-16-be")
"""'Ł' is U+0141, the bytes 01 41: an SOH; 'ó' the bytes 00 F3, not UTF-8."""


def test_an_order_rejected_in_latin1_ends_rejected_with_the_venue_s_text(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(log={"level": "info"})  # the default: no debug line
    venue.on(
        "D",
        lambda v, m: v.send(
            "8",
            execution_report(
                m,
                exec_id="R-1",
                exec_type="8",
                ord_status="8",
                order_id="NONE",
                leaves_qty="0",
                extra=[(103, "3"), (58, LATIN1)],
            ),
        ),
    )
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id = place(gw)
        assert EventLog(gw).find(cl_ord_id, "order.rejected")["text"] == TEXT
    assert [e["text"] for e in journaled(stack) if e["type"] == "order.rejected"] == [TEXT]
    assert stack.status()["callback_errors"] == 0


def test_a_cancel_refused_in_latin1_ends_the_pending_cancel_with_the_venue_s_text(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, _ = accepted_order(venue, gw, events)
    venue.on(
        "F",
        lambda v, m: refuse_cancel(v, m, "0", "0", LATIN1),
    )
    gw.cancel_order(cl_ord_id=cl_ord_id)
    refused = events.find(cl_ord_id, "order.cancel_rejected")
    assert (refused["text"], refused["status"]) == (TEXT, "new")


@pytest.mark.parametrize("level", ["info", "debug"])
def test_a_fill_with_latin1_text_is_applied_at_every_log_level(
    make_venue_stack: VenueStackFactory, level: str
) -> None:
    """At debug, the message is logged before it is handed over: that line cannot hold it up."""
    venue, stack = make_venue_stack(log={"level": level})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        fill(venue, order, "F-1", extra=[(58, LATIN1)])
        filled = events.find(cl_ord_id, "order.filled")
        assert (filled["exec_id"], filled["cum_qty"]) == ("F-1", "0.5")
    assert stack.status()["callback_errors"] == 0
    assert stack.gateway is not None
    assert (f"|Text(58)={TEXT}|" in stack.gateway.log()) is (level == "debug")


def test_a_logout_with_latin1_text_is_told_to_clients_with_it(
    venue: ScriptedVenue, events: EventLog
) -> None:
    venue.logout(LATIN1, "3")
    down = events.first(lambda e: e["type"] == "session.down")
    assert (down["reason"], down["logout_reason"]) == (TEXT, "server_error")


def test_a_fill_whose_encoded_text_holds_an_soh_byte_is_applied(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    """Split at the SOH in its EncodedText, the report would be unreadable: the fill known
    only once a status request found it, and not as the venue's execution."""
    venue, stack = venue_stack
    cl_ord_id, order = accepted_order(venue, gw, events)
    encoded_text = [(354, str(len(UTF16_WITH_SOH))), (355, UTF16_WITH_SOH)]
    fill(venue, order, "F-1", extra=[(58, "filled"), *encoded_text])
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["exec_id"], filled["cum_qty"]) == ("F-1", "0.5")
    status = stack.status()
    assert (status["dialect_errors"], status["callback_errors"]) == (0, 0)
    assert rejects_sent(venue) == []
