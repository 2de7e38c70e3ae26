"""An OMS's orders, cancels and status requests through the bridge to a venue we did not
write: each gets its own answer, under its own ClOrdID, with the order's real status and the
exchange's own reason."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fixgw.api.client import ApiError
from fixgw.testing import API_KEY, SECRET
from tests.counterparties.conftest import VenueStackFactory, raw_oms_through
from tests.counterparties.raw_oms import RawOms
from tests.counterparties.raw_oms import Received as OmsReceived
from tests.counterparties.venue import (
    Pairs,
    Received,
    ScriptedVenue,
    acknowledge,
    answer_status,
    answer_unknown,
    execution_report,
    fill,
    refuse_cancel,
    utc_timestamp,
    whole_fill,
)


def order(cl_ord_id: str, side: str = "1") -> Pairs:
    return [
        *((11, cl_ord_id), (21, "1"), (55, "BTC/USD"), (54, side), (60, utc_timestamp())),
        *((38, "0.5"), (40, "2"), (44, "30000")),
    ]


def cancel(cl_ord_id: str, orig_cl_ord_id: str, symbol: str = "BTC/USD", side: str = "1") -> Pairs:
    return [
        *((11, cl_ord_id), (41, orig_cl_ord_id), (55, symbol), (54, side)),
        (60, utc_timestamp()),
    ]


def status_request(cl_ord_id: str, req_id: str, side: str = "1") -> Pairs:
    return [(11, cl_ord_id), (790, req_id), (55, "BTC/USD"), (54, side)]


def report(oms: RawOms, cl_ord_id: str, exec_type: str, timeout: float = 10) -> OmsReceived:
    return oms.wait_for(
        lambda m: m.msg_type == "8" and m.get(11) == cl_ord_id and m.get(150) == exec_type,
        timeout,
    )


def cancel_reject(oms: RawOms, cl_ord_id: str) -> OmsReceived:
    return oms.wait_for(lambda m: m.msg_type == "9" and m.get(11) == cl_ord_id)


def placed(venue: ScriptedVenue, oms: RawOms, cl_ord_id: str, side: str = "1") -> Received:
    """The OMS's order, acknowledged: the NewOrderSingle as the venue took it."""
    oms.send("D", order(cl_ord_id, side))
    report(oms, cl_ord_id, "0")
    return next(m for m in venue.app if m.msg_type == "D" and (m.get(11) or "").endswith(cl_ord_id))


def canceled_by(venue: ScriptedVenue, taken: Received, cancel_request: Received) -> None:
    """The venue cancels the order, answering the cancel under its ClOrdID."""
    body = execution_report(
        taken,
        exec_id=f"X-{cancel_request.seq}",
        exec_type="4",
        ord_status="4",
        order_id=f"V-{taken.get(11)}",
        leaves_qty="0",
    )
    venue.send(
        "8",
        [(11, cancel_request.get(11) or "") if t == 11 else (t, v) for t, v in body]
        + [(41, taken.get(11) or "")],
    )


def cancel_to_the_end(
    venue: ScriptedVenue, oms: RawOms, taken: Received, cl_ord_id: str, orig_cl_ord_id: str
) -> OmsReceived:
    """A cancel that names the order as it is: sent on to the venue, which cancels it; the
    OMS's ExecType 4 under the cancel's ClOrdID."""
    oms.send("F", cancel(cl_ord_id, orig_cl_ord_id))
    sent_on = venue.wait_app("F")
    assert sent_on.get(41) == taken.get(11)
    canceled_by(venue, taken, sent_on)
    return report(oms, cl_ord_id, "4")


def refuse_order_as_over_the_limit(venue: ScriptedVenue, new_order: Received) -> None:
    body = execution_report(
        new_order,
        exec_id=f"R-{new_order.seq}",
        exec_type="8",
        ord_status="8",
        order_id="NONE",
        leaves_qty="0",
        extra=[(103, "3")],
    )
    venue.send("8", body)


def refuse_cancels(venue: ScriptedVenue, request: Received) -> None:
    """CxlRejReason 2, broker or exchange option."""
    refuse_cancel(venue, request, "0", "2", "cancels are off")


def forgets_orders(venue: ScriptedVenue, request: Received) -> None:
    """A status request answered as a venue that has purged the order: unknown, no OrderID."""
    venue.send(
        "8",
        [
            *((37, "NONE"), (11, request.get(11) or ""), (17, f"S-{request.seq}")),
            *((150, "I"), (39, "8"), (55, "BTC/USD"), (54, "1")),
            *((14, "0"), (151, "0"), (6, "0"), (58, "unknown order")),
        ],
    )


def venue(**handlers: Callable[[ScriptedVenue, Received], None]) -> Callable[[ScriptedVenue], None]:
    def configure(v: ScriptedVenue) -> None:
        for msg_type, handler in handlers.items():
            v.on(msg_type, handler)

    return configure


def test_the_exchanges_reason_for_refusing_an_order_reaches_the_oms(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=refuse_order_as_over_the_limit)) as ends:
        _, _, oms = ends
        oms.send("D", order("OVER-1"))
        rejected = report(oms, "OVER-1", "8")
    assert (rejected[39], rejected[103]) == ("8", "3")


def test_a_business_reject_quoting_the_secret_key_in_its_reason_reaches_the_oms_masked(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue refuses the order by a BusinessMessageReject whose reason (380), not a Text,
    quotes the order's Account: the OMS gets the reason, the secret key masked."""

    def refuse(v: ScriptedVenue, o: Received) -> None:
        text = f"Invalid Account: {o.get(1)}"
        v.send("j", [(45, str(o.seq)), (372, "D"), (379, o.get(11) or ""), (380, text)])

    with raw_oms_through(make_venue_stack, venue(D=refuse)) as ends:
        _, _, oms = ends
        oms.send("D", order("SEC-1"))
        rejected = report(oms, "SEC-1", "8")
    assert rejected[58].endswith(f"Invalid Account: {API_KEY},***")
    assert not [m for m in oms.received if SECRET in str(m.pairs)]


def test_the_exchanges_reason_for_refusing_a_cancel_reaches_the_oms(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge, F=refuse_cancels)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "KEEP-1")
        oms.send("F", cancel("KEEP-C1", "KEEP-1"))
        refused = cancel_reject(oms, "KEEP-C1")
    assert (refused[102], refused[58], refused[41]) == ("2", "cancels are off", "KEEP-1")
    assert (refused[37], refused[39]) == (f"V-{taken.get(11)}", "0")


def test_a_cancel_the_exchange_refuses_naming_the_order_is_answered_to_the_oms(
    make_venue_stack: VenueStackFactory,
) -> None:
    """An ExceptionResponse (E1000) naming the acknowledged order (11), not the cancel: it
    refuses the cancel, and the OMS gets its OrderCancelReject (before the fix: ExecType 6
    for its F, then nothing)."""

    def refuse_naming_the_order(v: ScriptedVenue, m: Received) -> None:
        v.send("E1000", [(11, m.get(41) or ""), (58, "cancel failed: system busy")])

    script = venue(D=acknowledge, F=refuse_naming_the_order)
    with raw_oms_through(make_venue_stack, script, orders={"ack_timeout_s": 0}) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "BUSY-1")
        oms.send("F", cancel("BUSY-C1", "BUSY-1"))
        refused = cancel_reject(oms, "BUSY-C1")
    assert (refused[39], refused[41], refused[37]) == ("0", "BUSY-1", f"V-{taken.get(11)}")
    assert refused[58].endswith("cancel failed: system busy")


def fill_then_refuse_naming_the_order(refusal: str) -> Callable[[ScriptedVenue, Received], None]:
    """The venue fills the whole order before the cancel reaches its book, then refuses the
    cancel naming the order (OKCoin keys cancels on the order)."""

    def handler(v: ScriptedVenue, m: Received) -> None:
        taken = next(d for d in v.app if d.msg_type == "D" and d.get(11) == m.get(41))
        v.send("8", whole_fill(taken, "F-1"))
        named = m.get(41) or ""
        if refusal == "exception_response":
            v.send("E1000", [(11, named), (58, "cancel failed: order filled")])
        else:
            v.send("9", [(37, f"V-{named}"), (11, named), (41, named), (39, "2"), (434, "1"),
                         (102, "0"), (58, "too late: filled")])  # fmt: skip

    return handler


@pytest.mark.parametrize("refusal", ["exception_response", "cancel_reject"])
def test_a_cancel_a_fill_overtook_refused_naming_the_order_is_answered_to_the_oms(
    make_venue_stack: VenueStackFactory, refusal: str
) -> None:
    """The order fills before the OMS's cancel reaches the book; the venue refuses the
    cancel naming the order. The fill closed the order, and the OMS still gets its
    OrderCancelReject under its cancel's ClOrdID, OrdStatus Filled, as FIX 4.4's state
    matrices answer a cancel that came too late (before the fix: the E1000 went only to
    `exchange.error`, and the 9 reached the OMS under the order's own ClOrdID)."""
    script = venue(D=acknowledge, F=fill_then_refuse_naming_the_order(refusal))
    with raw_oms_through(make_venue_stack, script) as (v, _, oms):
        placed(v, oms, "RACE-1")
        oms.send("F", cancel("RACE-C1", "RACE-1"))
        refused = cancel_reject(oms, "RACE-C1")
        report(oms, "RACE-1", "F")
    assert (refused[41], refused[39], refused[434]) == ("RACE-1", "2", "1")
    assert not [m for m in oms.received if m.msg_type == "9" and m.get(11) == "RACE-1"]


def cancel_itself_then_refuse(named: str) -> Callable[[ScriptedVenue, Received], None]:
    """The venue had ended the order itself (self-trade prevention, expiry) as the cancel
    came: its cancel report under the order's ClOrdID, then the cancel's refusal, naming
    the order (OKCoin keys cancels on the order) or the cancel (FIX 4.4's own way)."""

    def handler(v: ScriptedVenue, m: Received) -> None:
        order_cl_ord_id = m.get(41) or ""
        taken = next(d for d in v.app if d.msg_type == "D" and d.get(11) == order_cl_ord_id)
        v.send("8", execution_report(taken, exec_id="X-STP", exec_type="4", ord_status="4",
                                     order_id=f"V-{order_cl_ord_id}", leaves_qty="0",
                                     extra=[(58, "self-trade prevention")]))  # fmt: skip
        in_11 = order_cl_ord_id if named == "the_order" else m.get(11) or ""
        v.send("9", [(37, f"V-{order_cl_ord_id}"), (11, in_11), (41, order_cl_ord_id),
                     (39, "4"), (434, "1"), (102, "0"), (58, "too late: canceled")])  # fmt: skip

    return handler


@pytest.mark.parametrize(
    ("profile", "named"),
    [("okcoin", "the_order"), ("fix44", "the_cancel")],
    ids=["okcoin", "fix44"],
)
def test_a_cancel_the_venue_overtook_by_canceling_the_order_itself_is_answered_once(
    make_venue_stack: VenueStackFactory, profile: str, named: str
) -> None:
    """The venue cancels the order itself as the OMS's cancel comes, then refuses the
    cancel. The OMS's cancel has its answer, ExecType 4 under its ClOrdID; the refusal
    after it is the venue's too-late word on a cancel already answered, and nothing more
    reaches the OMS (before the fix: a second, contradictory answer, an OrderCancelReject,
    under the order's own ClOrdID from OKCoin)."""
    broker = "BROKER-FIX44"
    fix44 = {"venue_comp_id": broker, "session": {"venue": "fix44", "target_comp_id": broker}}
    script = venue(D=acknowledge, F=cancel_itself_then_refuse(named))
    with raw_oms_through(make_venue_stack, script, **(fix44 if profile == "fix44" else {})) as (
        v,
        _,
        oms,
    ):
        placed(v, oms, "STP-1")
        oms.send("F", cancel("STP-C1", "STP-1"))
        canceled = report(oms, "STP-C1", "4")
        placed(v, oms, "STP-2")  # after the refusal: what the OMS got of it came before
    assert (canceled[41], canceled[39]) == ("STP-1", "4")
    assert [m for m in oms.received if m.msg_type == "9"] == []
    assert [m.get(11) for m in oms.received if m.msg_type == "8" and m.get(150) == "4"] == [
        "STP-C1"
    ]


def cancel_showing_all_filled(ord_status: str) -> Callable[[ScriptedVenue, Received], None]:
    """The venue's answer to the cancel, ExecType 4 under the cancel's ClOrdID, showing the
    whole 0.5 filled (CumQty 0.5, LeavesQty 0): the order filled before the cancel acted,
    the report of its last fill missed."""

    def handler(v: ScriptedVenue, m: Received) -> None:
        order_cl_ord_id = m.get(41) or ""
        taken = next(d for d in v.app if d.msg_type == "D" and d.get(11) == order_cl_ord_id)
        body = execution_report(taken, exec_id="X-ALL", exec_type="4", ord_status=ord_status,
                                order_id=f"V-{order_cl_ord_id}", cum_qty="0.5",
                                leaves_qty="0", avg_px="30000")  # fmt: skip
        v.send("8", [(11, m.get(11) or "") if t == 11 else (t, x) for t, x in body]
                    + [(41, order_cl_ord_id)])  # fmt: skip

    return handler


@pytest.mark.parametrize("ord_status", ["4", "2"], ids=["saying_canceled", "saying_filled"])
def test_a_cancel_showing_the_whole_quantity_filled_is_a_fill_to_the_oms(
    make_venue_stack: VenueStackFactory, ord_status: str
) -> None:
    """F-1 (0.2 of 0.5) reaches the OMS; the report of the other 0.3 is missed; the venue's
    answer to the OMS's cancel shows CumQty 0.5, nothing left. The OMS gets one fill of 0.3
    with OrdStatus Filled and nothing after it, never a Canceled for an order whose whole
    quantity traded, and its status request is answered Filled. Before the fix it got
    OrdStatus 1 with LeavesQty 0, then ExecType 4, and 39=4 to its status request."""
    script = venue(D=acknowledge, F=cancel_showing_all_filled(ord_status), H=answer_status)
    with raw_oms_through(make_venue_stack, script) as (v, _, oms):
        taken = placed(v, oms, "ALL-1")
        v.send("8", execution_report(taken, exec_id="F-1", exec_type="F", ord_status="1",
                                     order_id=f"V-{taken.get(11)}", cum_qty="0.2",
                                     leaves_qty="0.3", avg_px="30000",
                                     last=("0.2", "30000")))  # fmt: skip
        report(oms, "ALL-1", "F")
        oms.send("F", cancel("ALL-C1", "ALL-1"))
        oms.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "F" and m.get(39) == "2")
        oms.send("H", status_request("ALL-1", "ask-1"))
        answer = report(oms, "ALL-1", "I")
    told = [
        (m.msg_type, m.get(150), m.get(39), m.get(14), m.get(151))
        for m in oms.received
        if m.msg_type in ("8", "9") and m.get(790) is None
    ]
    assert told[2:] == [
        ("8", "F", "1", "0.2", "0.3"),
        ("8", "6", "6", "0.2", "0.3"),
        ("8", "F", "2", "0.5", "0"),
    ]
    assert (answer[39], answer[14], answer[151]) == ("2", "0.5", "0")


def test_a_second_cancel_while_one_is_pending_is_refused_and_the_first_gets_its_own_answer(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "TWO-1")
        oms.send("F", cancel("TWO-C1", "TWO-1"))
        report(oms, "TWO-C1", "6")
        oms.send("F", cancel("TWO-C2", "TWO-1"))
        second = cancel_reject(oms, "TWO-C2")
        first = v.wait_app("F")
        canceled_by(v, taken, first)
        canceled = report(oms, "TWO-C1", "4")
    assert (second[102], second[39], second[41]) == ("3", "6", "TWO-1")
    assert "TWO-C1" in second[58]
    assert [m.get(11) for m in v.app if m.msg_type == "F"] == [first.get(11)]
    assert (canceled[41], canceled[39]) == ("TWO-1", "4")
    assert not [m for m in oms.received if m.get(11) == "TWO-C2" and m.msg_type == "8"]


def test_a_cancel_naming_the_pending_cancels_clordid_is_refused_as_already_pending(
    make_venue_stack: VenueStackFactory,
) -> None:
    """FIX 4.4 chains cancels: OrigClOrdID is "ClOrdID of the previous non rejected order",
    here the pending cancel's, under which the bridge told PendingCancel. The order is
    known and live: not 1 (unknown order), which an OMS may take to mean it is gone."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "CHAIN-1")
        oms.send("F", cancel("CHAIN-C1", "CHAIN-1"))
        report(oms, "CHAIN-C1", "6")
        oms.send("F", cancel("CHAIN-C2", "CHAIN-C1"))
        chained = cancel_reject(oms, "CHAIN-C2")
        first = v.wait_app("F")
        canceled_by(v, taken, first)
        report(oms, "CHAIN-C1", "4")
        oms.send("F", cancel("CHAIN-C3", "CHAIN-C1"))
        after = cancel_reject(oms, "CHAIN-C3")
    assert (chained[102], chained[39], chained[41]) == ("3", "6", "CHAIN-C1")
    assert chained[37] == f"V-{taken.get(11)}" and "CHAIN-C1" in chained[58]
    assert [m.get(11) for m in v.app if m.msg_type == "F"] == [first.get(11)]
    assert (after[102], after[39], after[37]) == ("0", "4", f"V-{taken.get(11)}")


def test_a_replace_naming_a_cancels_clordid_is_refused_as_replaces_are_not_as_unknown(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "RCHAIN-1")
        oms.send("F", cancel("RCHAIN-C1", "RCHAIN-1"))
        report(oms, "RCHAIN-C1", "6")
        replace = [(11, "RCHAIN-R1"), (41, "RCHAIN-C1"), (55, "BTC/USD"), (54, "1")]
        oms.send("G", [*replace, (60, utc_timestamp()), (38, "0.3"), (40, "2"), (44, "29001")])
        refused = cancel_reject(oms, "RCHAIN-R1")
    assert (refused[434], refused[102], refused[39]) == ("2", "2", "6")
    assert refused[37] == f"V-{taken.get(11)}"
    assert [m.msg_type for m in v.app if m.msg_type in ("F", "G")] == ["F"]


def test_an_api_cancel_while_an_oms_cancel_is_pending_is_refused_and_the_oms_gets_its_answer(
    make_venue_stack: VenueStackFactory,
) -> None:
    """A second cancel reached the venue, and the venue's 4 for the OMS's went out under the
    order's ClOrdID: the OMS's cancel was never answered."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "BOTH-1")
        oms.send("F", cancel("BOTH-C1", "BOTH-1"))
        report(oms, "BOTH-C1", "6")
        with stack.client() as gw, pytest.raises(ApiError) as api_cancel:
            gw.cancel_order(cl_ord_id=taken.get(11))
        first = v.wait_app("F")
        canceled_by(v, taken, first)
        canceled = report(oms, "BOTH-C1", "4")
    assert api_cancel.value.code == "cancel_pending"
    assert [m.get(11) for m in v.app if m.msg_type == "F"] == [first.get(11)]
    assert (canceled[41], canceled[39]) == ("BOTH-1", "4")
    assert not [m for m in oms.received if m.get(11) == "BOTH-1" and m.get(150) in ("6", "4")]


def test_an_oms_cancel_while_an_api_cancel_is_pending_is_refused_as_not_this_sessions(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "API-FIRST-1")
        with stack.client() as gw:
            gw.cancel_order(cl_ord_id=taken.get(11))
        v.wait_app("F")
        oms.send("F", cancel("API-FIRST-C1", "API-FIRST-1"))
        refused = cancel_reject(oms, "API-FIRST-C1")
    assert (refused[102], refused[39], refused[41]) == ("3", "6", "API-FIRST-1")
    assert "not this session's" in refused[58]
    assert len([m for m in v.app if m.msg_type == "F"]) == 1


def told_of(oms: RawOms, cl_ord_id: str) -> list[tuple[str, str]]:
    """(ExecType, OrdStatus) of each ExecutionReport the OMS got under an order's ClOrdID."""
    return [(m[150], m[39]) for m in oms.messages("8") if m.get(11) == cl_ord_id]


def assert_restated_open(restated: OmsReceived, taken: Received, why: str) -> None:
    """The order as it stands after a cancel the OMS did not send failed: new, unfilled."""
    assert (restated[39], restated[378], restated[37]) == ("0", "99", f"V-{taken.get(11)}")
    assert (restated[14], restated[151], restated[6], restated[38]) == ("0", "0.5", "0", "0.5")
    assert "this session did not send" in restated[58] and why in restated[58]


def test_an_api_clients_cancel_of_an_oms_order_the_exchange_refuses_is_restated_to_the_oms(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The OMS was told its order's PendingCancel (ExecType 6) for a cancel it did not send:
    once the exchange refused it, the OMS must learn the order is open again, not be left
    holding a live order as about to be cancelled."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge, F=refuse_cancels)) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "OTHERS-1")
        with stack.client() as gw:
            gw.subscribe(["orders"])
            gw.cancel_order(cl_ord_id=taken.get(11))
            assert gw.wait_for(lambda e: e["type"] == "order.cancel_rejected")["status"] == "new"
        restated = report(oms, "OTHERS-1", "D")
    assert told_of(oms, "OTHERS-1") == [("A", "A"), ("0", "0"), ("6", "6"), ("D", "0")]
    assert_restated_open(restated, taken, "cancels are off")
    reports = [m for m in oms.messages("8") if m.get(11) == "OTHERS-1"]
    assert len({m[17] for m in reports}) == len(reports)
    assert not oms.messages("9")


@pytest.mark.parametrize("command", ["cancel_all", "halt"])
def test_a_cancel_all_or_halt_the_exchange_refuses_is_restated_to_the_oms(
    make_venue_stack: VenueStackFactory, command: str
) -> None:
    """A halt goes on cancelling (asking about the order, then a cancel again): each
    PendingCancel it tells is taken back once the exchange refuses."""
    handlers = venue(D=acknowledge, F=refuse_cancels, H=answer_status)
    with raw_oms_through(make_venue_stack, handlers) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "ALL-1")
        with stack.client("desk") as desk:
            desk.request(command, **({"reason": "drill"} if command == "halt" else {}))
            restated = report(oms, "ALL-1", "D")
            if command == "halt":
                desk.request("resume")
    told = told_of(oms, "ALL-1")
    assert told[:4] == [("A", "A"), ("0", "0"), ("6", "6"), ("D", "0")]
    assert_restated_open(restated, taken, "cancels are off")


def test_an_api_clients_cancel_of_an_oms_order_lost_in_a_venue_crash_is_restated_to_the_oms(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue crashed before reading the cancel and asked for it again: never resent,
    the cancel ends `not_delivered` and the order stays open."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge, H=answer_status)) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "CRASH-1")
        v.freeze()
        with stack.client() as gw:
            gw.subscribe(["orders"])
            gw.cancel_order(cl_ord_id=taken.get(11))
            report(oms, "CRASH-1", "6")
            v.crash()
            v.restart()
            refused = gw.wait_for(lambda e: e["type"] == "order.cancel_rejected", timeout=30)
        assert (refused["reason"], refused["status"]) == ("not_delivered", "new")
        restated = report(oms, "CRASH-1", "D")
    assert told_of(oms, "CRASH-1") == [("A", "A"), ("0", "0"), ("6", "6"), ("D", "0")]
    assert_restated_open(restated, taken, "did not reach the exchange")
    assert not [m for m in v.app if m.msg_type == "F"]


def test_an_api_clients_cancel_of_an_oms_order_the_exchange_never_answers_is_restated(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Asked about after `ack_timeout_s`, the exchange shows the order open: the cancel was
    lost on the way (`cancel_lost`)."""
    handlers = venue(D=acknowledge, H=answer_status)
    with raw_oms_through(make_venue_stack, handlers, orders={"ack_timeout_s": 1}) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "SILENT-1")
        with stack.client() as gw:
            gw.subscribe(["orders"])
            gw.cancel_order(cl_ord_id=taken.get(11))
            v.wait_app("F")
            lost = gw.wait_for(lambda e: e["type"] == "order.anomaly")
        assert lost["problem"] == "cancel_lost"
        restated = report(oms, "SILENT-1", "D")
    assert told_of(oms, "SILENT-1") == [("A", "A"), ("0", "0"), ("6", "6"), ("D", "0")]
    assert_restated_open(restated, taken, "did not reach the exchange")


def test_a_status_request_the_exchange_does_not_answer_reports_the_order_as_it_stands(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(
        make_venue_stack, venue(D=acknowledge), api={"request_timeout_s": 1}
    ) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "QUIET-1")
        oms.send("H", status_request("QUIET-1", "ask-1"))
        answer = report(oms, "QUIET-1", "I")
    assert (answer[39], answer[37], answer[790]) == ("0", f"V-{taken.get(11)}", "ask-1")
    assert (answer[14], answer[151]) == ("0", "0.5")
    assert "the exchange did not answer" in answer[58] and "timeout" in answer[58]
    assert answer.get(103) is None


def answering_status_once(back: threading.Event) -> Callable[[ScriptedVenue, Received], None]:
    """A venue that answers status requests only once `back` is set (a gateway restarted)."""

    def answer(v: ScriptedVenue, request: Received) -> None:
        if back.is_set():
            answer_status(v, request)

    return answer


def test_a_status_request_in_flight_when_the_gateway_is_killed_is_answered_after_the_restart(
    make_venue_stack: VenueStackFactory,
) -> None:
    """QuickFIX counted the H received once it went on to the exchange, so the OMS does not
    send it again; the answer was to come from memory."""
    back = threading.Event()
    handlers = venue(D=acknowledge, H=answering_status_once(back))
    with raw_oms_through(make_venue_stack, handlers) as ends:
        v, stack, oms = ends
        taken = placed(v, oms, "ASKED-1")
        oms.send("H", status_request("ASKED-1", "ask-3"))
        v.wait_app("H")
        assert stack.gateway is not None
        stack.gateway.stop(signal.SIGKILL)
        back.set()
        Path(stack.socket_path).unlink(missing_ok=True)
        stack.start_gateway()
        oms.reconnect()
        answer = oms.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ask-3")
    assert (answer[150], answer[11], answer[39]) == ("I", "ASKED-1", "0")
    assert answer[37] == f"V-{taken.get(11)}"


def test_a_kept_status_request_damaged_on_disk_is_set_aside_and_the_others_are_answered(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Before, the unreadable file stopped every start with a traceback, after the logon:
    the gateway came up and went down again for good. One whose OMS line is damaged (or
    names an OMS no longer configured) is set aside too, not deleted."""
    back = threading.Event()
    handlers = venue(D=acknowledge, H=answering_status_once(back))
    with raw_oms_through(make_venue_stack, handlers) as ends:
        v, stack, oms = ends
        placed(v, oms, "ASKED-1")
        oms.send("H", status_request("ASKED-1", "ask-4"))
        v.wait_app("H")
        assert stack.gateway is not None
        stack.gateway.stop(signal.SIGKILL)
        back.set()
        damaged = stack.root / "bridge-store" / "unanswered" / "0000000000000-000000000001.fix"
        cut_off = b"%s\n8=FIX.4.4\x019=60\x0135=H\x0134=7\x0111" % oms.sender.encode()
        damaged.write_bytes(cut_off)
        unnamed = damaged.with_name("0000000000000-000000000002.fix")
        no_oms = b"\xff\xfeOMS\n8=FIX.4.4\x019=5\x0135=H\x0110=000\x01"  # its first line damaged
        unnamed.write_bytes(no_oms)
        Path(stack.socket_path).unlink(missing_ok=True)
        stack.start_gateway()
        oms.reconnect()
        answer = oms.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ask-4")
        log = stack.gateway.log()
    assert (answer[150], answer[11], answer[39]) == ("I", "ASKED-1", "0")
    assert not damaged.exists()
    assert damaged.with_name(damaged.name + ".damaged").read_bytes() == cut_off
    assert unnamed.with_name(unnamed.name + ".damaged").read_bytes() == no_oms
    assert log.count("unreadable status request set aside") == 2
    assert "Traceback" not in log


def test_a_status_request_for_a_filled_order_the_exchange_forgot_reports_it_filled(
    make_venue_stack: VenueStackFactory,
) -> None:
    def fill_at_once(v: ScriptedVenue, new_order: Received) -> None:
        acknowledge(v, new_order)
        fill(v, new_order, "FILL-1")

    with raw_oms_through(make_venue_stack, venue(D=fill_at_once, H=forgets_orders)) as ends:
        _, _, oms = ends
        oms.send("D", order("GONE-1"))
        report(oms, "GONE-1", "F")
        oms.send("H", status_request("GONE-1", "ask-2"))
        answer = report(oms, "GONE-1", "I")
    assert (answer[39], answer[14], answer[151], answer[6]) == ("2", "0.5", "0", "30000")
    assert answer[58] == "unknown order"


def answer_by_order_id(venue: ScriptedVenue, request: Received) -> None:
    """A venue that keeps every order it filled, asked by OrderID: filled, else unknown."""
    taken = [m for m in venue.app if m.msg_type == "D" and f"V-{m.get(11)}" == request.get(37)]
    if not taken:
        answer_unknown(venue, request)
        return
    qty, price = taken[0].get(38) or "0", taken[0].get(44) or "0"
    venue.send(
        "8",
        execution_report(
            taken[0],
            exec_id=f"S-{request.seq}",
            exec_type="I",
            ord_status="2",
            order_id=f"V-{taken[0].get(11)}",
            cum_qty=qty,
            leaves_qty="0",
            avg_px=price,
        ),
    )


def test_a_status_request_for_an_order_the_gateway_forgot_asks_the_exchange_by_its_order_id(
    make_venue_stack: VenueStackFactory,
) -> None:
    """FORGOT-0 filled, then forgotten (`keep_closed` 1, two more closed since). Its status
    request, with the OrderID the OMS was told, was answered OrdStatus 8, OrdRejReason 5
    (unknown order) and the exchange never asked: the OMS told its filled order was
    rejected. Only an order the exchange does not know either is unknown."""

    def fill_at_once(v: ScriptedVenue, new_order: Received) -> None:
        acknowledge(v, new_order)
        fill(v, new_order, f"FILL-{new_order.seq}")

    configure = venue(D=fill_at_once, H=answer_by_order_id)
    with raw_oms_through(make_venue_stack, configure, orders={"keep_closed": 1}) as ends:
        v, _, oms = ends
        filled = []
        for n in range(3):
            oms.send("D", order(f"FORGOT-{n}"))
            filled.append(report(oms, f"FORGOT-{n}", "F"))
        order_id = filled[0][37]
        oms.send("H", [*status_request("FORGOT-0", "ask-1"), (37, order_id)])
        answer = oms.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ask-1")
        oms.send("H", [*status_request("NEVER-1", "ask-2"), (37, "V-NEVER")])
        unknown = oms.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ask-2")
        asked = [m.get(37) for m in v.app if m.msg_type == "H"]
    assert (answer[150], answer[39], answer[11], answer[37]) == ("I", "2", "FORGOT-0", order_id)
    assert (answer[14], answer[151], answer[6]) == ("0.5", "0", "30000")
    assert (unknown[150], unknown[39], unknown[103]) == ("I", "8", "5")
    assert asked == [order_id, "V-NEVER"]


def test_a_cancel_under_a_clordid_the_gateway_cannot_take_is_refused_for_that(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "LIVE-1")
        oms.send("F", cancel("CXL#1", "LIVE-1"))
        refused = cancel_reject(oms, "CXL#1")
    assert (refused[102], refused[39], refused[37]) == ("99", "0", f"V-{taken.get(11)}")
    assert refused[58].startswith("ClOrdID (11)")
    assert not [m for m in v.app if m.msg_type == "F"]


def id_limit_text(name: str, tag: int, what: str, limit: int) -> str:
    return (
        f"{name} ({tag}) {what}: this session's may be 1 to {limit} characters, "
        "of letters A-Z and a-z, digits and . _ : / + -"
    )


def test_a_clordid_too_long_with_the_sessions_prefix_is_refused_with_the_omss_own_limit(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The prefix the ClOrdID reaches the exchange with counts against its 64 characters; the
    OMS never sees it, so the Text states the limit on the OMS's own ClOrdID."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        limit = 64 - len(f"{oms.sender}-")
        longest, too_long = "L" * limit, "L" * (limit + 1)
        oms.send("D", order(too_long))
        refused = report(oms, too_long, "8")
        oms.send("D", order(longest))
        report(oms, longest, "0")
    assert (refused[39], refused[103]) == ("8", "99")
    assert refused[58] == id_limit_text("ClOrdID", 11, f"is {limit + 1} characters long", limit)
    assert [m.get(11) for m in v.app if m.msg_type == "D"] == [f"{oms.sender}-{longest}"]


@pytest.mark.parametrize("character", [" ", "É"])
def test_a_clordid_with_a_character_the_gateway_cannot_take_is_refused_naming_it(
    make_venue_stack: VenueStackFactory, character: str
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        _, _, oms = ends
        limit = 64 - len(f"{oms.sender}-")
        cl_ord_id = f"ORD{character}1"
        oms.send("D", order(cl_ord_id))
        refused = report(oms, cl_ord_id, "8")
    named = f"holds {character!r} (U+{ord(character):04X})"
    assert refused[58] == id_limit_text("ClOrdID", 11, named, limit)


def test_a_cancel_whose_ids_are_too_long_with_the_prefix_is_refused_with_the_omss_own_limit(
    make_venue_stack: VenueStackFactory,
) -> None:
    """An OrigClOrdID no order can have is an unknown order (CxlRejReason 1); a ClOrdID the
    cancel cannot have, 99. Either Text states the limit on the OMS's own id."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        placed(v, oms, "LIVE-1")
        limit = 64 - len(f"{oms.sender}-")
        too_long = "C" * (limit + 1)
        oms.send("F", cancel("CXL-1", too_long))
        unknown = cancel_reject(oms, "CXL-1")
        oms.send("F", cancel(too_long, "LIVE-1"))
        refused = cancel_reject(oms, too_long)
    long_text = f"is {limit + 1} characters long"
    assert unknown[102] == "1"
    assert unknown[58] == id_limit_text("OrigClOrdID", 41, long_text, limit)
    assert (refused[102], refused[39]) == ("99", "0")
    assert refused[58] == id_limit_text("ClOrdID", 11, long_text, limit)
    assert not [m for m in v.app if m.msg_type == "F"]


UTF16_WITH_SOH = "Łódź".encode("utf-16-be")
"""EncodedText as an OMS may write it: 'Ł' is U+0141, the bytes 01 41, an SOH among them."""
BINARY_WITH_SOH = bytes([0x10, 0x01, 0x7F, 0xFF, 0x01, 0x02])
"""SecureData: any bytes, SOH and bytes that are not UTF-8 among them."""


def encoded_text(value: bytes) -> Pairs:
    return [(354, str(len(value))), (355, value)]


def test_an_order_whose_encoded_text_holds_an_soh_byte_is_placed(
    make_venue_stack: VenueStackFactory,
) -> None:
    """FIX 4.4's data fields carry their length so that they may hold any byte: the order is
    read by EncodedTextLen (354), as QuickFIX reads it, not split at the SOH in its text."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, stack, oms = ends
        oms.send("D", order("ENC-1") + encoded_text(UTF16_WITH_SOH))
        accepted = report(oms, "ENC-1", "0")
    assert accepted[39] == "0"
    assert [m.get(11) for m in v.app if m.msg_type == "D"] == [f"{oms.sender}-ENC-1"]
    assert stack.gateway is not None
    assert "bridge fromApp failed" not in stack.gateway.log()


def test_an_order_whose_secure_data_holds_any_byte_is_placed(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        secure_data = [(90, str(len(BINARY_WITH_SOH))), (91, BINARY_WITH_SOH)]
        oms.send("D", order("SEC-1"), header=secure_data)
        report(oms, "SEC-1", "0")
    assert [m.get(11) for m in v.app if m.msg_type == "D"] == [f"{oms.sender}-SEC-1"]


def test_a_cancel_whose_encoded_text_holds_an_soh_byte_cancels_the_order(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Left unanswered, the order would go on trading while the OMS waits on its cancel."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "LIVE-1")
        oms.send("F", cancel("LIVE-1-C", "LIVE-1") + encoded_text(UTF16_WITH_SOH))
        sent_on = v.wait_app("F")
        canceled_by(v, taken, sent_on)
        canceled = report(oms, "LIVE-1-C", "4")
    assert (canceled[41], canceled[39]) == ("LIVE-1", "4")


def test_a_resent_cancel_under_another_orders_clordid_is_answered(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        placed(v, oms, "ONE-1")
        placed(v, oms, "ONE-2")
        oms.send("F", cancel("ONE-1", "ONE-2"), header=[(97, "Y")])
        refused = cancel_reject(oms, "ONE-1")
    assert (refused[102], refused[41], refused[39]) == ("6", "ONE-2", "0")
    assert not [m for m in v.app if m.msg_type == "F"]


def test_a_cancel_with_another_orders_side_is_refused_and_the_order_it_names_stays_open(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The OMS meant its sell, SELL-1, but sent BUY-1's OrigClOrdID with SELL-1's Side."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        buy = placed(v, oms, "BUY-1")
        placed(v, oms, "SELL-1", side="2")
        oms.send("F", cancel("MEANT-SELL", "BUY-1", side="2"))
        refused = cancel_reject(oms, "MEANT-SELL")
        assert not [m for m in v.app if m.msg_type == "F"]
        canceled = cancel_to_the_end(v, oms, buy, "BUY-C1", "BUY-1")
    assert (refused[434], refused[102], refused[41]) == ("1", "99", "BUY-1")
    assert (refused[37], refused[39]) == (f"V-{buy.get(11)}", "0")
    assert refused[58].startswith("Side (54) 2 is not that of order BUY-1 (1)")
    assert (canceled[41], canceled[39]) == ("BUY-1", "4")
    assert [m.get(41) for m in v.app if m.msg_type == "F"] == [buy.get(11)]


def test_a_cancel_with_another_symbol_is_refused_and_the_order_it_names_stays_open(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "BTC-1")
        oms.send("F", cancel("MEANT-LTC", "BTC-1", symbol="LTC/USD"))
        refused = cancel_reject(oms, "MEANT-LTC")
        assert not [m for m in v.app if m.msg_type == "F"]
        canceled = cancel_to_the_end(v, oms, taken, "BTC-C1", "BTC-1")
    assert (refused[434], refused[102], refused[41]) == ("1", "99", "BTC-1")
    assert (refused[37], refused[39]) == (f"V-{taken.get(11)}", "0")
    assert "Symbol (55) LTC/USD is not that of order BTC-1 (BTC/USD)" in refused[58]
    assert (canceled[41], canceled[39]) == ("BTC-1", "4")


def test_a_cancel_with_another_orders_order_id_is_refused_and_the_order_it_names_stays_open(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Both orders on one symbol and side: only the OrderID (37) the OMS took from the order
    it meant tells the OrigClOrdID is wrong. A cancel crossing the ack (OrderID NONE) is the
    order's."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        first = placed(v, oms, "SAME-1")
        second = placed(v, oms, "SAME-2")
        oms.send("F", [(37, f"V-{second.get(11)}"), *cancel("MEANT-2", "SAME-1")])
        refused = cancel_reject(oms, "MEANT-2")
        assert not [m for m in v.app if m.msg_type == "F"]
        oms.send("F", [(37, "NONE"), *cancel("SAME-1-C", "SAME-1")])
        v.wait_app("F")
    assert (refused[434], refused[102], refused[41]) == ("1", "99", "SAME-1")
    assert (refused[37], refused[39]) == (f"V-{first.get(11)}", "0")
    assert refused[58].startswith(
        f"OrderID (37) V-{second.get(11)} is not that of order SAME-1 (V-{first.get(11)})"
    )
    assert [m.get(41) for m in v.app if m.msg_type == "F"] == [first.get(11)]


def test_a_status_request_with_another_side_gets_the_orders_own_status_and_says_so(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Not "unknown order": OrdStatus 8 under that ClOrdID would tell the OMS that its live
    order was rejected."""
    with raw_oms_through(make_venue_stack, venue(D=acknowledge, H=answer_status)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "ASKED-1")
        oms.send("H", status_request("ASKED-1", "ask-3", side="2"))
        answer = report(oms, "ASKED-1", "I")
    assert (answer[39], answer[37], answer[790]) == ("0", f"V-{taken.get(11)}", "ask-3")
    assert (answer[55], answer[54]) == ("BTC/USD", "1")
    assert "Side (54) 2 is not that of order ASKED-1 (1)" in answer[58]


def test_a_replace_with_another_symbol_is_refused_and_says_so(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(make_venue_stack, venue(D=acknowledge)) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "REPL-1")
        replace = [(11, "REPL-R1"), (41, "REPL-1"), (55, "LTC/USD"), (54, "1")]
        oms.send("G", [*replace, (60, utc_timestamp()), (38, "0.3"), (40, "2"), (44, "29001")])
        refused = cancel_reject(oms, "REPL-R1")
    assert (refused[434], refused[102], refused[39]) == ("2", "2", "0")
    assert refused[37] == f"V-{taken.get(11)}"
    assert "Symbol (55) LTC/USD is not that of order REPL-1 (BTC/USD)" in refused[58]
    assert not [m for m in v.app if m.msg_type in ("F", "G")]


def sent_again(oms: RawOms, cl_ord_id: str, mark: Pairs) -> OmsReceived:
    """The OMS's order sent again, `mark`ed so in the header; the report that answers it."""
    seen = len(oms.received)
    oms.send("D", order(cl_ord_id), header=mark)
    return oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == cl_ord_id, after=seen)


def sent_on(v: ScriptedVenue, oms_cl_ord_id: str) -> list[Received]:
    """The NewOrderSingles the venue got for the OMS's ClOrdID (under the bridge's prefix)."""
    return [m for m in v.app if m.msg_type == "D" and (m.get(11) or "").endswith(oms_cl_ord_id)]


def test_an_order_refused_while_halted_and_sent_again_is_answered_with_its_refusal(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The OMS lost its connection before the reject came, and sends its order again once
    trading resumed, marked PossResend or PossDupFlag; also after a crash of the gateway.
    The gateway had kept no order for it (refused before it became one): it was placed, an
    order at the exchange under a ClOrdID the OMS holds as rejected."""
    handlers = venue(D=acknowledge, H=answer_status)
    with raw_oms_through(make_venue_stack, handlers) as ends:
        v, stack, oms = ends
        with stack.client("desk") as desk:
            desk.request("halt", reason="drill")
            oms.send("D", order("HALT-1"))
            refused = report(oms, "HALT-1", "8")
            desk.request("resume")
        assert (refused[39], refused[103]) == ("8", "0")
        again = sent_again(oms, "HALT-1", [(97, "Y")])
        once_more = sent_again(oms, "HALT-1", [(43, "Y"), (122, utc_timestamp())])
        assert stack.gateway is not None
        stack.gateway.stop(signal.SIGKILL)
        Path(stack.socket_path).unlink(missing_ok=True)
        stack.start_gateway()
        oms.reconnect()
        after_the_crash = sent_again(oms, "HALT-1", [(97, "Y")])
        placed(v, oms, "AFTER-1")  # taken after the three: had they been placed, first
    for answer in (again, once_more, after_the_crash):
        assert (answer[150], answer[39], answer[103]) == ("I", "8", "0")
        assert answer[58] == refused[58]
        assert (answer[37], answer[14], answer[151]) == ("NONE", "0", "0")
    assert len({m[17] for m in (refused, again, once_more, after_the_crash)}) == 4
    assert not sent_on(v, "HALT-1")


def test_an_order_refused_by_a_risk_limit_and_sent_again_once_within_it_is_not_placed(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_through(
        make_venue_stack, venue(D=acknowledge), risk={"max_open_orders": 1}
    ) as ends:
        v, _, oms = ends
        taken = placed(v, oms, "LIMIT-1")
        oms.send("D", order("LIMIT-2"))
        refused = report(oms, "LIMIT-2", "8")
        cancel_to_the_end(v, oms, taken, "LIMIT-1-C", "LIMIT-1")
        again = sent_again(oms, "LIMIT-2", [(97, "Y")])
        placed(v, oms, "LIMIT-3")
    assert (refused[103], again[150], again[39], again[103]) == ("3", "I", "8", "3")
    assert again[58] == refused[58] and "max_open_orders" in again[58]
    assert not sent_on(v, "LIMIT-2")


@pytest.mark.parametrize("keep_closed", [1, 0])
def test_a_filled_order_sent_again_after_the_gateway_forgot_it_is_neither_placed_nor_rejected(
    make_venue_stack: VenueStackFactory, keep_closed: int
) -> None:
    """`orders.keep_closed` 1: FILL-0 forgotten once two more closed; 0: at once. Its state
    is gone with it; its ClOrdID is still known as taken. It was answered Rejected (a
    duplicate ClOrdID) with 1, and placed again with 0 (the gateway kept no ids then)."""

    def fill_at_once(v: ScriptedVenue, new_order: Received) -> None:
        acknowledge(v, new_order)
        fill(v, new_order, f"FILL-{new_order.seq}")

    with raw_oms_through(
        make_venue_stack, venue(D=fill_at_once), orders={"keep_closed": keep_closed}
    ) as ends:
        v, _, oms = ends
        for n in range(3):
            oms.send("D", order(f"FILL-{n}"))
            report(oms, f"FILL-{n}", "F")
        told = [m for m in oms.messages("8") if m.get(11) == "FILL-0"]
        oms.send("D", order("FILL-0"), header=[(97, "Y")])
        oms.send("D", order("MARK-1"))
        report(oms, "MARK-1", "F")  # the resend, taken before it, was handled by then
        told_after = [m for m in oms.messages("8") if m.get(11) == "FILL-0"]
    assert len(sent_on(v, "FILL-0")) == 1
    assert told_after == told
