"""A venue's smallest amounts and whole-second times, as clients and the journal get them:
plain decimals with the venue's digits (never `1E-8` or `0E-8`, which the gateway itself
refuses as decimals), and times with microseconds (never `10:00:00Z`)."""

from __future__ import annotations

from pathlib import Path

from fixgw.api.client import Client
from fixgw.testing import LocalStack
from tests.counterparties.test_venue_extra_fields import accepted_order, place
from tests.counterparties.venue import ScriptedVenue, answer_status, execution_report
from tests.integration.conftest import EventLog

SATOSHI = "0.00000001"
NONE_IN_8_PLACES = "0.00000000"


def test_a_satoshi_filled_on_a_whole_second_is_written_as_the_venue_wrote_it(
    venue_stack: tuple[ScriptedVenue, LocalStack], gw: Client, events: EventLog
) -> None:
    venue, stack = venue_stack
    venue.on(
        "D",
        lambda v, order: v.send(
            "8",
            execution_report(
                order,
                exec_id="A-1",
                exec_type="0",
                ord_status="0",
                order_id="V-1",
                cum_qty=NONE_IN_8_PLACES,
                avg_px=NONE_IN_8_PLACES,
            ),
        ),
    )
    venue.on("H", answer_status)
    cl_ord_id = place(gw, qty=SATOSHI)
    accepted = events.find(cl_ord_id, "order.accepted")
    assert (accepted["qty"], accepted["leaves_qty"]) == (SATOSHI, SATOSHI)

    venue.send(
        "8",
        execution_report(
            venue.wait_app("D"),
            exec_id="F-1",
            exec_type="F",
            ord_status="2",
            order_id="V-1",
            cum_qty=SATOSHI,
            leaves_qty=NONE_IN_8_PLACES,
            avg_px="30000",
            last=(SATOSHI, "30000"),
            transact_time="20261206-10:00:00.000",
        ),
    )
    filled = events.find(cl_ord_id, "order.filled")
    assert {k: filled[k] for k in ("ts", "last_qty", "cum_qty", "leaves_qty", "avg_px")} == {
        "ts": "2026-12-06T10:00:00.000000Z",
        "last_qty": SATOSHI,
        "cum_qty": SATOSHI,
        "leaves_qty": NONE_IN_8_PLACES,
        "avg_px": "30000",
    }

    (trade,) = gw.request("trades", symbol="BTC/USD")["trades"]
    assert (trade["ts"], trade["qty"]) == ("2026-12-06T10:00:00.000000Z", SATOSHI)
    (order,) = gw.orders(all=True)
    assert (order["qty"], order["leaves_qty"]) == (SATOSHI, NONE_IN_8_PLACES)

    journal = Path(stack.gateway_config()["journal"]["path"]).read_bytes()
    (line,) = [line for line in journal.splitlines() if b'"exec_id":"F-1"' in line]
    assert b'"ts":"2026-12-06T10:00:00.000000Z"' in line
    assert b'"last_qty":"0.00000001","last_px":"30000"' in line
    assert b'"cum_qty":"0.00000001","leaves_qty":"0.00000000"' in line


def test_a_fill_stamped_in_a_leap_second_is_told_as_sent_at_the_last_instant_of_second_59(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """FIX 4.4's UTCTimestamp has second 60 in a UTC leap second, which a time of the wire
    has not: the fill is told with the venue's ExecID, LastQty and LastPx, on the same day,
    after every time of second 59. Before the fix the report was unreadable ("not a
    UTCTimestamp"), the fill told only as the answer to a status request showed it."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="F-1",
            exec_type="F",
            ord_status="1",
            order_id=f"V-{cl_ord_id}",
            cum_qty="0.2",
            leaves_qty="0.3",
            avg_px="30000",
            last=("0.2", "30000"),
            transact_time="20261231-23:59:60.250",
        ),
    )
    told = events.first(
        lambda e: (
            e.get("cl_ord_id") == cl_ord_id
            and e["type"] in ("order.partially_filled", "order.anomaly")
        )
    )
    assert {k: told.get(k) for k in ("type", "exec_id", "last_qty", "last_px", "ts")} == {
        "type": "order.partially_filled",
        "exec_id": "F-1",
        "last_qty": "0.2",
        "last_px": "30000",
        "ts": "2026-12-31T23:59:59.999999Z",
    }
    (trade,) = gw.request("trades", symbol="BTC/USD")["trades"]
    assert (trade["exec_id"], trade["ts"]) == ("F-1", "2026-12-31T23:59:59.999999Z")


def test_a_satoshi_balance_is_written_as_the_venue_wrote_it(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    venue.on(
        "Z1000",
        lambda v, m: v.send(
            "Z1001",
            [
                (8000, m.get(8000) or ""),
                (1, "it-api-key"),
                (15, "USD"),
                (8001, "0.00000010/5"),
                (8101, SATOSHI),
                (8104, NONE_IN_8_PLACES),
            ],
        ),
    )
    answer = gw.request("account")
    assert answer["balance"] == ["0.00000010", "5"]
    assert answer["balances"]["BTC"] == {"free": SATOSHI, "frozen": NONE_IN_8_PLACES}
    event = events.first(lambda e: e["type"] == "account.balance")
    assert event["balances"]["BTC"] == {"free": SATOSHI, "frozen": NONE_IN_8_PLACES}
