"""Both ends not ours: the raw OMS through the FIX bridge, the gateway, to the scripted venue."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence

import pytest

from fixgw.testing import LocalStack, free_port, wait_until
from tests.counterparties.conftest import Ends, VenueStackFactory, raw_oms_through
from tests.counterparties.raw_oms import RawOms, Value
from tests.counterparties.raw_oms import Received as OmsReceived
from tests.counterparties.test_oms_order_answers import order as oms_order
from tests.counterparties.test_oms_order_answers import placed
from tests.counterparties.venue import (
    Handler,
    Received,
    ScriptedVenue,
    acknowledge,
    execution_report,
)

NOW = "20261125-10:00:00.000"
"""TransactTime on the OMS's orders."""


def book_yes_trades_no(venue: ScriptedVenue, request: Received) -> None:
    """Bids and offers are served; trades are not."""
    if request.get(263) == "2":
        return
    md_req_id = request.get(262) or ""
    if "2" in request.all(269):
        venue.send("Y", [(262, md_req_id), (281, "4"), (58, "no trades feed")])
        return
    venue.send(
        "W",
        [
            *((262, md_req_id), (55, "BTC/USD"), (268, "2")),
            *((269, "0"), (270, "29990"), (271, "1.5"), (269, "1"), (270, "30010"), (271, "1.2")),
        ],
    )


@contextlib.contextmanager
def raw_oms_to(make_venue_stack: VenueStackFactory, answer_v: Handler) -> Iterator[Ends]:
    """The scripted venue answering V with `answer_v`, the gateway, and a raw OMS."""
    with raw_oms_through(make_venue_stack, lambda v: v.on("V", answer_v)) as ends:
        yield ends


SUBSCRIBE_BOOK = [
    *((262, "BOOK-1"), (263, "1"), (264, "0"), (267, "2"), (269, "0"), (269, "1")),
    *((146, "1"), (55, "BTC/USD")),
]


@pytest.fixture
def ends(make_venue_stack: VenueStackFactory) -> Iterator[Ends]:
    with raw_oms_to(make_venue_stack, book_yes_trades_no) as ends:
        yield ends


def test_a_refused_trades_stream_leaves_an_oms_book_subscription_alone(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    venue, stack, oms = ends
    oms.send("V", SUBSCRIBE_BOOK)
    first = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "BOOK-1")
    assert first.all(270) == ["29990", "30010"]
    with stack.client() as gw, pytest.raises(Exception, match="no trades feed"):
        gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
    book = [m for m in venue.app if m.msg_type == "V" and "2" not in m.all(269)][-1]
    venue.send(
        "X",
        [
            *((262, book.get(262) or ""), (268, "1")),
            *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "2.5")),
        ],
    )
    update = oms.wait_for(lambda m: m.msg_type == "W" and "2.5" in m.all(271))
    assert update.get(262) == "BOOK-1"
    assert not [m for m in oms.received if m.msg_type == "Y"]


def book_broken_in_the_batch_of_its_first_snapshot(venue: ScriptedVenue, request: Received) -> None:
    """The first book request is answered by a snapshot and, in the same write, an update
    that crosses it; the book asked for again is sound (and not the first one)."""
    if request.get(263) == "2":
        return
    md_req_id = request.get(262) or ""
    asked = [m for m in venue.app if m.msg_type == "V" and m.get(263) != "2"]
    bid, ask = ("29990", "30010") if len(asked) == 1 else ("29980", "30020")
    snapshot = [
        *((262, md_req_id), (55, "BTC/USD"), (268, "2")),
        *((269, "0"), (270, bid), (271, "1.5"), (269, "1"), (270, ask), (271, "1.2")),
    ]
    if len(asked) > 1:
        venue.send("W", snapshot)
        return
    crossing = [
        *((262, md_req_id), (268, "1")),
        *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "30050"), (271, "1")),
    ]
    venue.send_together([("W", snapshot), ("X", crossing)])


def test_an_oms_never_gets_a_book_the_gateway_knows_is_broken(
    make_venue_stack: VenueStackFactory,
) -> None:
    with raw_oms_to(make_venue_stack, book_broken_in_the_batch_of_its_first_snapshot) as ends:
        venue, _, oms = ends
        oms.send("V", SUBSCRIBE_BOOK)
        fresh = oms.wait_for(lambda m: m.msg_type == "W" and "29980" in m.all(270), timeout=20)
        books = [m for m in oms.received if m.msg_type == "W" and m.get(262) == "BOOK-1"]
        assert all(m.all(270) in ([], ["29980", "30020"]) for m in books), [
            m.all(270) for m in books
        ]
        assert fresh.all(270) == ["29980", "30020"]
        asked = [m for m in venue.app if m.msg_type == "V" and m.get(263) != "2"]
        assert len(asked) == 2  # the broken book was asked for again, once


def test_an_oms_market_order_whose_last_fill_cancels_the_rest_gets_the_fill_then_the_cancel(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """The venue ends the OMS's market order for 0.5 with one report: 0.2 filled, the rest
    canceled (ExecType F, OrdStatus 4). The OMS gets the fill as FIX has it (F, OrdStatus 1,
    LeavesQty 0.3), then the cancel (4, OrdStatus 4) with the venue's Text."""
    venue, _, oms = ends
    venue.on("D", acknowledge)
    oms.send(
        "D",
        [(11, "MKT-1"), (21, "1"), (55, "BTC/USD"), (54, "1"), (60, NOW), (38, "0.5"), (40, "1")],
    )
    order = venue.wait_app("D")
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "MKT-1" and m.get(150) == "0")
    venue.send(
        "8",
        execution_report(
            order,
            exec_id="F-1",
            exec_type="F",
            ord_status="4",
            order_id=f"V-{order.get(11)}",
            cum_qty="0.2",
            leaves_qty="0",
            avg_px="30000",
            last=("0.2", "30000"),
            extra=[(58, "unfilled rest of market order canceled")],
        ),
    )
    canceled = oms.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "4")
    reports = [m for m in oms.received if m.msg_type == "8" and m.get(11) == "MKT-1"]
    assert [(m.get(150), m.get(39)) for m in reports] == [
        *(("A", "A"), ("0", "0")),
        *(("F", "1"), ("4", "4")),
    ]
    fill = reports[2]
    assert [fill.get(t) for t in (32, 31, 14, 151)] == ["0.2", "30000", "0.2", "0.3"]
    assert [canceled.get(t) for t in (14, 151, 58)] == [
        "0.2",
        "0",
        "unfilled rest of market order canceled",
    ]


def test_an_oms_market_order_whose_rest_cancel_shows_a_missed_fill_at_no_price_gets_no_fill_at_0(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """0.2 of the OMS's market order for 0.5 filled at 30000; the venue cancels the rest
    (ExecType 4) saying 0.4 filled at AvgPx 0: a fill of 0.2 was missed, at no price given.
    The OMS gets a restatement (D, 378=99) of CumQty 0.4, the cancel with CumQty 0.4, and,
    after the venue's answer to the status request, its AvgPx 29950: never a fill at 31=0
    (before the fix, 150=F 32=0.2 31=0). Every message valid by FIX44.xml."""
    venue, _, oms = ends
    venue.on("D", acknowledge)
    oms.send(
        "D",
        [(11, "MKT-2"), (21, "1"), (55, "BTC/USD"), (54, "1"), (60, NOW), (38, "0.5"), (40, "1")],
    )
    order = venue.wait_app("D")

    def report(
        exec_id: str, exec_type: str, ord_status: str, cum_qty: str, leaves_qty: str, avg_px: str
    ) -> list[tuple[int, str | bytes]]:
        last = ("0.2", "30000") if exec_type == "1" else None
        return execution_report(
            order,
            exec_id=exec_id,
            exec_type=exec_type,
            ord_status=ord_status,
            order_id=f"V-{order.get(11)}",
            cum_qty=cum_qty,
            leaves_qty=leaves_qty,
            avg_px=avg_px,
            last=last,
        )

    venue.on("H", lambda v, m: v.send("8", report(f"S-{m.seq}", "I", "4", "0.4", "0", "29950")))
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "MKT-2" and m.get(150) == "0")
    venue.send("8", report("F-1", "1", "1", "0.2", "0.3", "30000"))
    venue.send("8", report("X-1", "4", "4", "0.4", "0", "0"))
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "MKT-2" and m.get(6) == "29950")
    reports = [m for m in oms.received if m.msg_type == "8" and m.get(11) == "MKT-2"]
    assert [[m.get(t) for t in (150, 39, 14, 151, 6, 32, 31)] for m in reports] == [
        ["A", "A", "0", "0.5", "0", None, None],
        ["0", "0", "0", "0.5", "0", None, None],
        ["F", "1", "0.2", "0.3", "30000", "0.2", "30000"],
        ["D", "1", "0.4", "0.1", "30000", None, None],
        ["4", "4", "0.4", "0", "30000", None, None],
        ["D", "4", "0.4", "0", "29950", None, None],
    ]


def test_an_oms_gets_the_fill_a_cancel_at_avg_px_0_carried_from_its_late_report(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """The venue cancels the OMS's order saying 0.2 filled at AvgPx 0 (as OKCoin writes on
    cancels), then the trade's own report comes: LastQty 0.2 at LastPx 30000. The OMS,
    told the restatement (D, CumQty 0.2) and the cancel, books the fill from ExecType F at
    30000, once: OrdStatus 4 and CumQty 0.2 as it was told (the F adds to no CumQty: the D
    had counted it), LeavesQty 0. Before the fix the report was dropped as already counted,
    and the OMS never got an F."""
    venue, _, oms = ends
    venue.on("D", acknowledge)
    order = placed(venue, oms, "LIM-3")
    venue.on("H", lambda v, m: None)  # the gateway's question, answered after F-1 below
    for exec_id, exec_type, ord_status, avg_px, last in (
        ("X-1", "4", "4", "0", None),
        ("F-1", "F", "1", "30000", ("0.2", "30000")),
    ):
        venue.send(
            "8",
            execution_report(
                order,
                exec_id=exec_id,
                exec_type=exec_type,
                ord_status=ord_status,
                order_id=f"V-{order.get(11)}",
                cum_qty="0.2",
                leaves_qty="0" if exec_type == "4" else "0.3",
                avg_px=avg_px,
                last=last,
            ),
        )
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "LIM-3" and m.get(150) == "F")
    asked = venue.wait_app("H")
    venue.send("8", venue_report(order, f"S-{asked.seq}", "I", "4", "0.2"))
    venue.on("H", lambda v, m: v.send("8", venue_report(order, f"S-{m.seq}", "I", "4", "0.2")))
    oms.send("H", [(11, "LIM-3"), (55, "BTC/USD"), (54, "1")])
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "LIM-3" and m.get(150) == "I")
    reports = [m for m in oms.received if m.msg_type == "8" and m.get(11) == "LIM-3"]
    assert [[m.get(t) for t in (150, 39, 14, 151, 6, 32, 31)] for m in reports] == [
        ["A", "A", "0", "0.5", "0", None, None],
        ["0", "0", "0", "0.5", "0", None, None],
        ["D", "1", "0.2", "0.3", "0", None, None],
        ["4", "4", "0.2", "0", "0", None, None],
        ["F", "4", "0.2", "0", "30000", "0.2", "30000"],
        ["I", "4", "0.2", "0", "30000", None, None],
    ]


def test_an_oms_is_told_a_trade_on_its_canceled_order_as_a_fill_that_keeps_it_canceled(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """The venue cancels the OMS's order on its own, then reports a trade of 0.2 that
    crossed the cancel: the OMS books it from ExecType F, whose OrdStatus stays 4
    (Canceled): the order it was told is done is never reopened, nor canceled twice."""
    venue, _, oms = ends
    venue.on("D", acknowledge)
    order = placed(venue, oms, "LATE-1")
    for exec_id, exec_type, cum_qty, last in (
        ("X-1", "4", "0", None),
        ("F-1", "F", "0.2", ("0.2", "30000")),
    ):
        venue.send(
            "8",
            execution_report(
                order,
                exec_id=exec_id,
                exec_type=exec_type,
                ord_status="4",
                order_id=f"V-{order.get(11)}",
                cum_qty=cum_qty,
                leaves_qty="0",
                avg_px="30000",
                last=last,
            ),
        )
    fill = oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "LATE-1" and m.get(150) == "F")
    reports = [m for m in oms.received if m.msg_type == "8" and m.get(11) == "LATE-1"]
    assert [(m.get(150), m.get(39)) for m in reports] == [
        *(("A", "A"), ("0", "0")),
        *(("4", "4"), ("F", "4")),
    ]
    assert [fill.get(t) for t in (17, 32, 31, 14, 151)] == ["F-1", "0.2", "30000", "0.2", "0"]


def canceled_by_the_venue(venue: ScriptedVenue, oms: RawOms, cl_ord_id: str) -> Received:
    """The OMS's order of 0.5, acknowledged, then canceled by the venue on its own."""
    venue.on("D", acknowledge)
    order = placed(venue, oms, cl_ord_id)
    venue.send("8", venue_report(order, "X-1", "4", "4", "0"))
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == cl_ord_id and m.get(150) == "4")
    return order


def venue_report(
    order: Received,
    exec_id: str,
    exec_type: str,
    ord_status: str,
    cum_qty: str,
    last: tuple[str, str] | None = None,
) -> list[tuple[int, str | bytes]]:
    """The venue's report of `order`, nothing left."""
    return execution_report(
        order,
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=ord_status,
        order_id=f"V-{order.get(11)}",
        cum_qty=cum_qty,
        leaves_qty="0",
        avg_px="30000",
        last=last,
    )


def told_since_acked(venue: ScriptedVenue, oms: RawOms, cl_ord_id: str) -> list[tuple[str, ...]]:
    """(ExecType, OrdStatus, CumQty, LeavesQty) of every report of the OMS's order, once
    another order's ack has reached it: the bridge tells events in order, so all of the
    first order's before it."""
    oms.send(
        "D",
        [
            *((11, "FENCE-1"), (21, "1"), (55, "BTC/USD"), (54, "1"), (60, NOW)),
            *((38, "0.1"), (40, "2"), (44, "30000")),
        ],
    )
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "FENCE-1" and m.get(150) == "0")
    return [
        (m.get(150) or "", m.get(39) or "", m.get(14) or "", m.get(151) or "")
        for m in oms.received
        if m.msg_type == "8" and m.get(11) == cl_ord_id and m.get(150) in ("4", "F")
    ]


def test_an_oms_is_told_a_trade_the_answer_to_its_unreadable_report_shows_on_its_canceled_order(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """The trade that crossed the cancel comes without LastPx (unreadable); the venue's
    answer to the status request shows it (canceled, 0.2 filled). The OMS books it from
    ExecType F with OrdStatus 4, LeavesQty 0. Before the fix it got OrdStatus 1 with
    LeavesQty 0.3 (its done order reopened), then a second Canceled."""
    venue, _, oms = ends
    order = canceled_by_the_venue(venue, oms, "LATE-2")

    def answer(v: ScriptedVenue, m: Received) -> None:
        v.send("8", venue_report(order, f"S-{m.seq}", "I", "4", "0.2"))

    venue.on("H", answer)
    priceless = venue_report(order, "F-1", "F", "4", "0.2", last=("0.2", "30000"))
    venue.send("8", [(tag, value) for tag, value in priceless if tag != 31])
    assert told_since_acked(venue, oms, "LATE-2") == [("4", "4", "0", "0"), ("F", "4", "0.2", "0")]


def test_an_oms_is_told_a_trade_a_clients_status_request_finds_on_its_canceled_order(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """Never reported on its own, the trade is found by an operator's `order_status`: the
    OMS books it and its order stays done. Before the fix it got OrdStatus 1, LeavesQty 0.3,
    and nothing after: an open order in its books for good."""
    venue, stack, oms = ends
    order = canceled_by_the_venue(venue, oms, "LATE-3")

    def answer(v: ScriptedVenue, m: Received) -> None:
        v.send("8", venue_report(order, f"S-{m.seq}", "I", "4", "0.2"))

    venue.on("H", answer)
    with stack.client() as gw:
        assert gw.order_status(cl_ord_id=order.get(11))["cum_qty"] == "0.2"
    assert told_since_acked(venue, oms, "LATE-3") == [("4", "4", "0", "0"), ("F", "4", "0.2", "0")]


def silent(venue: ScriptedVenue, request: Received) -> None:
    """Market data requests go unanswered."""


def refuses_with(reason: str, text: str) -> Handler:
    def refuse(venue: ScriptedVenue, request: Received) -> None:
        if request.get(263) != "2":
            venue.send("Y", [(262, request.get(262) or ""), (281, reason), (58, text)])

    return refuse


def refused(oms: RawOms, md_req_id: str) -> OmsReceived:
    return oms.wait_for(lambda m: m.msg_type == "Y" and m.get(262) == md_req_id, timeout=15)


def test_a_book_the_exchange_does_not_send_in_time_is_refused_with_no_reason_code(
    make_venue_stack: VenueStackFactory,
) -> None:
    """281=0 would tell the OMS that BTC/USD does not exist; FIX 4.4 has no reason for "the
    exchange did not answer", so Text alone says it."""
    with raw_oms_through(
        make_venue_stack, lambda v: v.on("V", silent), api={"request_timeout_s": 1}
    ) as ends:
        _, _, oms = ends
        oms.send("V", SUBSCRIBE_BOOK)
        answer = refused(oms, "BOOK-1")
    assert answer.get(281) is None
    assert "no market data for BTC/USD from the exchange" in answer[58]


@pytest.mark.parametrize(
    ("exchanges", "omss"),
    [
        ("3", "3"),  # insufficient permissions: the OMS's request is refused for it too
        ("5", None),  # unsupported MarketDepth: the gateway's depth upstream, not the OMS's
    ],
)
def test_the_exchanges_refusal_reaches_the_oms_with_its_reason_where_it_holds_for_the_oms(
    make_venue_stack: VenueStackFactory, exchanges: str, omss: str | None
) -> None:
    with raw_oms_to(make_venue_stack, refuses_with(exchanges, "not entitled")) as ends:
        _, _, oms = ends
        oms.send("V", SUBSCRIBE_BOOK)
        answer = refused(oms, "BOOK-1")
    assert answer.get(281) == omss
    assert "not entitled" in answer[58]


def test_a_live_subscription_the_exchange_ends_gets_its_reason_as_a_new_one_would(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    venue, _, oms = ends
    oms.send("V", SUBSCRIBE_BOOK)
    oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "BOOK-1")
    book = [m for m in venue.app if m.msg_type == "V" and "2" not in m.all(269)][-1]
    venue.send("Y", [(262, book.get(262) or ""), (281, "3"), (58, "entitlement withdrawn")])
    answer = refused(oms, "BOOK-1")
    assert (answer.get(281), answer[58]) == (
        "3",
        "the exchange refused market data: entitlement withdrawn",
    )


def test_an_oms_is_told_a_book_whose_update_the_venue_gap_filled_is_not_to_be_trusted(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The venue answers the ResendRequest for a lost update with a SequenceReset-GapFill:
    the OMS gets the book empty (not to be trusted), then the venue's book afresh."""
    bid = {"29990": "1.5"}

    def answer(venue: ScriptedVenue, request: Received) -> None:
        if request.get(263) != "2":
            venue.send(
                "W",
                [
                    *((262, request.get(262) or ""), (55, "BTC/USD"), (268, "2")),
                    *((269, "0"), (270, "29990"), (271, bid["29990"])),
                    *((269, "1"), (270, "30010"), (271, "1.2")),
                ],
            )

    with raw_oms_to(make_venue_stack, answer) as (venue, _, oms):
        oms.send("V", SUBSCRIBE_BOOK)
        first = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "BOOK-1")
        md_req_id = next(m for m in venue.app if m.msg_type == "V").get(262) or ""
        bid["29990"] = "7"
        change = [
            *((262, md_req_id), (268, "1")),
            *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "7")),
        ]
        venue.send("X", change, store=False, lose=True)
        venue.send_together([("0", [])])  # the next message shows the gap
        fresh = oms.wait_for(lambda m: m.msg_type == "W" and "7" in m.all(271))
        books = [m for m in oms.received if m.msg_type == "W" and m.get(262) == "BOOK-1"]
        assert [m.all(271) for m in books] == [["1.5", "1.2"], [], ["7", "1.2"]]
        assert (first.all(271), fresh.all(270)) == (["1.5", "1.2"], ["29990", "30010"])


def test_a_live_subscription_the_exchange_ends_draws_no_unsubscribe_of_its_request(
    ends: tuple[ScriptedVenue, LocalStack, RawOms],
) -> None:
    """The request is over at the exchange: a venue refuses an unsubscribe of a stream it
    does not run."""
    venue, _, oms = ends
    oms.send("V", SUBSCRIBE_BOOK)
    oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "BOOK-1")
    book = [m for m in venue.app if m.msg_type == "V" and "2" not in m.all(269)][-1]
    venue.send("Y", [(262, book.get(262) or ""), (281, "3"), (58, "entitlement withdrawn")])
    refused(oms, "BOOK-1")
    oms.send("V", [(262, "BOOK-2"), *SUBSCRIBE_BOOK[1:]])
    venue.wait_for(lambda m: m.msg_type == "V" and m.get(262) != book.get(262))  # BOOK-2's
    unsubscribes = [m.get(262) for m in venue.app if m.msg_type == "V" and m.get(263) == "2"]
    assert book.get(262) not in unsubscribes  # it would have come before BOOK-2's request


def test_an_unsubscribe_while_the_first_snapshot_is_awaited_ends_the_hold(
    make_venue_stack: VenueStackFactory,
) -> None:
    """bridge.md: 263=2 ends a subscription also while its first snapshot is awaited: the
    gateway's hold ends at once, and the request the venue never answered draws no
    unsubscribe (it was never granted)."""
    with raw_oms_to(make_venue_stack, lambda venue, request: None) as (venue, stack, oms):
        oms.send("V", SUBSCRIBE_BOOK)
        venue.wait_for(lambda m: m.msg_type == "V")
        wait_until(lambda: "BTC/USD:book" in stack.status()["market_data"], 10, "the hold")
        oms.send("V", [(262, "BOOK-1"), (263, "2"), *SUBSCRIBE_BOOK[2:]])
        wait_until(lambda: stack.status()["market_data"] == {}, 5, "the hold to end")
        assert [m.get(263) for m in venue.app if m.msg_type == "V"] == ["1"]
        assert not [m for m in oms.received if m.get(262) == "BOOK-1"]


TRADES = [(264, "0"), (265, "1"), (267, "1"), (269, "2"), (146, "1"), (55, "BTC/USD")]


def trades_requests(venue: ScriptedVenue) -> list[Received]:
    return [m for m in venue.app if m.msg_type == "V" and m.get(263) == "1" and "2" in m.all(269)]


def the_second_trades_request_lost(venue: ScriptedVenue, request: Received) -> None:
    """Trades answered with an empty W, but the second request, lost on the way: the venue
    asks for it again, and the gateway gap fills it (a request is never resent)."""
    if request.get(263) == "2":
        return
    if "2" in request.all(269) and len(trades_requests(venue)) == 2:
        venue.next_in = request.seq
        return
    book = [(269, "0"), (270, "29990"), (271, "1.5"), (269, "1"), (270, "30010"), (271, "1.2")]
    entries = [] if "2" in request.all(269) else book
    venue.send(
        "W",
        [(262, request.get(262) or ""), (55, "BTC/USD"), (268, str(len(entries) // 3)), *entries],
    )


def test_a_trades_request_lost_after_a_reconnect_and_gap_filled_is_asked_again_at_once(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The OMS's trades subscription is told (a W with no last trade), and a new one served."""
    with raw_oms_to(make_venue_stack, the_second_trades_request_lost) as (venue, _, oms):
        oms.send("V", [(262, "T"), (263, "1"), *TRADES])
        first = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "T")
        venue.crash()
        venue.restart()
        venue.wait_app("V", 3, timeout=30)
        lost = trades_requests(venue)[1]
        assert lost.seq in [m.seq for m in venue.admin if m.msg_type == "4" and m.get(123) == "Y"]
        after_first = oms.received.index(first) + 1
        told = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "T", after=after_first)
        assert told.get(268) == "0"
        oms.send("V", [(262, "T2"), (263, "1"), *TRADES])
        served = oms.wait_for(lambda m: m.msg_type in "WY" and m.get(262) == "T2")
        assert served.msg_type == "W"
        assert len(trades_requests(venue)) == 3


def test_an_oms_of_trades_is_told_when_the_venue_gap_fills_a_message_and_trades_go_on(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The message skipped may have carried a trade: the OMS gets a W without a last trade
    (some may be missed), then the trades after the gap as before."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        if request.get(263) != "2":
            venue.send("W", [(262, request.get(262) or ""), (55, "BTC/USD"), (268, "0")])

    def trade(md_req_id: str, price: str) -> list[tuple[int, str]]:
        return [
            *((262, md_req_id), (268, "1")),
            *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, price), (271, "0.1"), (54, "1")),
        ]

    with raw_oms_to(make_venue_stack, answer) as (venue, _, oms):
        oms.send("V", [(262, "T"), (263, "1"), *TRADES])
        first = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "T")
        md_req_id = trades_requests(venue)[0].get(262) or ""
        venue.send("X", trade(md_req_id, "30002"), store=False, lose=True)
        venue.send("X", trade(md_req_id, "30003"))
        after_first = oms.received.index(first) + 1
        told = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "T", after=after_first)
        assert told.get(268) == "0"
        oms.wait_for(lambda m: m.msg_type == "X" and m.get(270) == "30003")
        assert [m.get(270) for m in oms.messages("X")] == ["30003"]
        assert len(trades_requests(venue)) == 1


class VenueSlowToLogOut(ScriptedVenue):
    """Leaves the gateway's Logout unanswered until `answer_logout`: the gateway stays
    stopping meanwhile, its bridge still listening."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.asked_to_log_out = threading.Event()

    def _admin(self, m: Received) -> None:
        if m.msg_type == "5" and not self._logging_out:
            self.asked_to_log_out.set()
            return
        super()._admin(m)

    def answer_logout(self) -> None:
        with self._lock:
            self.send("5", [], store=False)
            self._close_connection()


OmsMessages = list[tuple[str, Sequence[tuple[int, Value]]]]


class OmsWhoseMessagesCrossTheLogout(RawOms):
    """Sends `late` when the bridge logs it out, before it answers (`logout`): messages
    that were on the wire as the bridge's Logout came."""

    def __init__(self, port: int, sender: str, late: OmsMessages) -> None:
        super().__init__(port, sender)
        self.late = late
        self.logged_out_by_the_bridge = threading.Event()

    def _answer_admin(self, msg: OmsReceived) -> None:
        if msg.msg_type == "5" and not self._logging_out:
            for msg_type, body in self.late:
                self.send(msg_type, body)
            self.logged_out_by_the_bridge.set()
            return
        super()._answer_admin(msg)


@contextlib.contextmanager
def gateway_stopping(
    make_venue_stack: VenueStackFactory, late: OmsMessages
) -> Iterator[tuple[ScriptedVenue, OmsWhoseMessagesCrossTheLogout, int]]:
    """`fixgw run` told to stop (SIGTERM) with OMS-A logged on to its bridge, sending `late`
    as the bridge logs it out, and OMS-B configured but not logged on. The venue leaves the
    gateway's Logout unanswered until the test is done, so the gateway is stopping all the
    while; then it must exit 0. Yields the venue, OMS-A and the bridge's port."""
    port = free_port()
    venue, stack = make_venue_stack(
        lambda v: v.on("D", acknowledge),
        venue_type=VenueSlowToLogOut,
        session={"logout_timeout_s": 30},
        bridge={
            "port": port,
            "store_dir": "bridge-store",
            "sessions": [{"comp_id": "OMS-A"}, {"comp_id": "OMS-B"}],
        },
    )
    assert isinstance(venue, VenueSlowToLogOut) and stack.gateway is not None
    gateway = stack.gateway
    oms = OmsWhoseMessagesCrossTheLogout(port, "OMS-A", late)
    oms.start()
    try:
        assert gateway.popen is not None
        gateway.popen.send_signal(signal.SIGTERM)
        assert oms.logged_out_by_the_bridge.wait(10), "the bridge never logged the OMS out"
        yield venue, oms, port
        oms.logout()
        assert venue.asked_to_log_out.wait(15), "the gateway never logged out of the venue"
        venue.answer_logout()
        wait_until(lambda: not gateway.running, 15, "the gateway to exit")
        assert gateway.stop() == 0
    finally:
        oms.close()
    oms.check_valid()


def test_at_shutdown_a_late_oms_message_is_refused_not_acted_on_and_no_oms_logs_on(
    make_venue_stack: VenueStackFactory,
) -> None:
    """An order that came in, or an OMS that logged on, while the gateway stops could have
    an order placed by a gateway on its way out."""
    late: OmsMessages = [("D", oms_order("LATE-1"))]
    with gateway_stopping(make_venue_stack, late) as (venue, oms, port):
        refused = oms.wait_for(lambda m: m.msg_type == "j")
        assert (refused[372], refused[380], refused[379]) == ("D", "4", "LATE-1")
        assert refused[58] == "gateway shutting down"
        b = RawOms(port, "OMS-B")
        try:
            b.connect()
        except ConnectionRefusedError:
            pass  # the logon gate has stopped taking connections
        else:  # taken just before: QuickFIX shuts it out
            b.send("A", [(98, 0), (108, 30)])
            shut_out = b.closed.wait(10)
            assert (shut_out, b.messages("A")) == (True, [])
    assert [m for m in oms.received if m.msg_type == "8"] == []
    assert [m for m in venue.app if m.msg_type == "D"] == []


def test_at_shutdown_a_reject_from_the_oms_is_not_answered_either(
    make_venue_stack: VenueStackFactory,
) -> None:
    """Never a reject of a reject, while the gateway stops as at any other time."""
    late: OmsMessages = [
        ("j", [(45, "2"), (372, "8"), (380, "0"), (58, "we cannot take your report")]),
        ("q", [(11, "MASS-1"), (530, "7"), (60, NOW)]),  # refused: the gateway is stopping
    ]
    with gateway_stopping(make_venue_stack, late) as (_, oms, _):
        refused = oms.wait_for(lambda m: m.msg_type == "j" and m.get(372) == "q")
        assert refused[380] == "4"
        assert [m.get(372) for m in oms.messages("j")] == ["q"]
