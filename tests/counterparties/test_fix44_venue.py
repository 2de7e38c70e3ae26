"""Plain FIX 4.4 (`session.venue: fix44`) end to end: the real gateway against the scripted
venue as a broker that speaks standard order entry and nothing else. Credentials in the
Logon only, or none; the standard fill (ExecType F) and FIX 4.2's (1 and 2); TimeInForce
carried; an IOC's rest expired (C); cancels, status requests, market data; what it does not
offer refused before anything is sent; a Logout that says why in Text only; an OMS's
TimeInForce through the FIX bridge. No Account (1) and no OKCoin tag reaches the venue."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.testing import API_KEY, SECRET, LocalStack, free_port, wait_until
from tests.counterparties.conftest import VenueStackFactory
from tests.counterparties.raw_oms import Fix44Validator, RawOms
from tests.counterparties.test_gateway_restarts import restarted
from tests.counterparties.test_venue_answers import (
    a_lagging_answer_to_the_reconciliation_changes_nothing,
    answering_as_e3_left_it,
    e1_unpriced_then_e3_before_the_answer,
    e1_unpriced_then_e3_with_e2_as_a_gap,
    e2_and_e1_told_at_their_prices,
    e2_then_e1_late,
    each_trade_told_once,
)
from tests.counterparties.test_venue_extra_fields import accepted_order, place
from tests.counterparties.venue import (
    Received,
    ScriptedVenue,
    acknowledge,
    execution_report,
)
from tests.integration.conftest import EventLog

BROKER = "BROKER-FIX44"
"""The venue's CompID: plain FIX 4.4 has no default, so the gateway's config names it."""

OKCOIN_TAGS = range(8000, 10000)
"""OKCoin's own tags are 8000 and up (AccReqID, balances, LogoutReason)."""

PlainFix44 = Callable[..., tuple[ScriptedVenue, LocalStack]]


def raw_of(m: Received) -> bytes:
    """`m` as it came off the wire: its fields, in order, BodyLength and CheckSum included."""
    return b"".join(f"{t}={v}".encode() + b"\x01" for t, v in m.pairs)


def okcoin_fields(m: Received) -> list[tuple[int, str]]:
    """What in `m` only OKCoin's dialect sends: Account (1), or a tag of its own."""
    return [(t, v) for t, v in m.pairs if t == 1 or t in OKCOIN_TAGS]


@pytest.fixture
def plain_fix44(make_venue_stack: VenueStackFactory) -> Iterator[PlainFix44]:
    """Makes a gateway with `session.venue: fix44` against a scripted broker. `credentials`:
    the gateway logs on with Username and Password (the broker checks them), or with none
    (the broker checks nothing). Afterwards, checks that nothing the broker received carried
    Account (1) or an OKCoin tag, and that every one of them is valid by the stock FIX44.xml
    (`raw_oms.Fix44Validator`: the strictest checks), as a broker's FIX engine would check."""
    made: list[ScriptedVenue] = []

    def factory(
        configure: Callable[[ScriptedVenue], None] | None = None,
        *,
        credentials: bool = True,
        **overrides: Any,
    ) -> tuple[ScriptedVenue, LocalStack]:
        overrides["session"] = {
            "venue": "fix44",
            "target_comp_id": BROKER,
            **overrides.get("session", {}),
        }
        if not credentials:
            overrides["credentials"] = {"api_key": None, "secret_key": None}
        venue, stack = make_venue_stack(
            configure,
            venue_comp_id=BROKER,
            venue_credentials=(API_KEY, SECRET) if credentials else None,
            **overrides,
        )
        made.append(venue)
        return venue, stack

    yield factory
    validator = Fix44Validator()
    for venue in made:
        received = [*venue.admin, *venue.app]
        dialect = [(m.msg_type, okcoin_fields(m)) for m in received]
        assert not [d for d in dialect if d[1]], f"OKCoin's fields sent to plain FIX 4.4: {dialect}"
        invalid = [(str(m.pairs), validator.problem(raw_of(m))) for m in received]
        assert not [i for i in invalid if i[1]], f"FIX44.xml refuses what the venue got: {invalid}"


@pytest.fixture
def venue_stack(plain_fix44: PlainFix44) -> tuple[ScriptedVenue, LocalStack]:
    """This module's `venue`, `gw` and `events` (tests/counterparties/conftest.py) are the
    plain FIX 4.4 broker's."""
    return plain_fix44()


def logon_of(venue: ScriptedVenue) -> Received:
    return venue.wait_for(lambda m: m.msg_type == "A", what="the gateway's Logon")


def send_report(
    venue: ScriptedVenue,
    order: Received,
    exec_id: str,
    exec_type: str,
    ord_status: str,
    *,
    cum_qty: str = "0",
    leaves_qty: str | None = None,
    avg_px: str = "0",
    last: tuple[str, str] | None = None,
    extra: list[tuple[int, str]] | None = None,
) -> None:
    """An ExecutionReport of `order` under the venue's OrderID for it."""
    venue.send(
        "8",
        execution_report(
            order,
            exec_id=exec_id,
            exec_type=exec_type,
            ord_status=ord_status,
            order_id=f"V-{order.get(11)}",
            cum_qty=cum_qty,
            leaves_qty=leaves_qty,
            avg_px=avg_px,
            last=last,
            extra=extra or [],
        ),
    )


# ------------------------------------------------------------ logon


def test_the_logon_carries_username_and_password(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    venue, stack = venue_stack
    logon = logon_of(venue)
    assert (logon.get(553), logon.get(554), logon.get(56)) == (API_KEY, SECRET, BROKER)
    assert venue.logons == 1
    assert stack.status()["venue"]["name"] == "fix44"


def test_a_logon_with_no_credentials_at_all_carries_no_username_or_password(
    plain_fix44: PlainFix44,
) -> None:
    venue, stack = plain_fix44(credentials=False)
    logon = logon_of(venue)
    assert (logon.get(553), logon.get(554)) == (None, None)
    assert logon.get(56) == BROKER
    assert stack.status()["ready"] is True


# ------------------------------------------------------------ orders


@pytest.mark.parametrize(
    ("partial", "full"), [("F", "F"), ("1", "2")], ids=["standard-F", "fix42-1-2"]
)
def test_a_limit_order_is_acknowledged_and_filled(
    venue: ScriptedVenue, gw: Client, events: EventLog, partial: str, full: str
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    assert [(t, order.get(t)) for t in (11, 38, 40, 44, 54, 55)] == [
        (11, cl_ord_id),
        (38, "0.5"),
        (40, "2"),
        (44, "30000"),
        (54, "1"),
        (55, "BTC/USD"),
    ]
    assert order.get(59) is None  # no time_in_force asked: the venue's default
    send_report(
        venue,
        order,
        "F-1",
        partial,
        "1",
        cum_qty="0.2",
        leaves_qty="0.3",
        avg_px="30000",
        last=("0.2", "30000"),
    )
    partly = events.find(cl_ord_id, "order.partially_filled")
    assert (partly["last_qty"], partly["cum_qty"], partly["leaves_qty"]) == ("0.2", "0.2", "0.3")
    send_report(
        venue,
        order,
        "F-2",
        full,
        "2",
        cum_qty="0.5",
        leaves_qty="0",
        avg_px="29999.4",
        last=("0.3", "29999"),
    )
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["last_qty"], filled["last_px"], filled["cum_qty"], filled["avg_px"]) == (
        "0.3",
        "29999",
        "0.5",
        "29999.4",
    )
    assert filled["status"] == "filled"
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]


def test_an_order_the_venue_acknowledged_as_pending_new_then_asked_for_again_is_not_lost(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The broker answers the NewOrderSingle with Pending New (ExecType A) under its OrderID,
    then asks for it again (a ResendRequest covering it, as from a store that lost count).
    The gateway gap fills it (an order is never sent twice), but the broker has the order:
    nothing says it never arrived, the order stays pending_new, and the broker's New
    accepts it."""
    venue.on("D", lambda v, order: send_report(v, order, "PN-1", "A", "A"))
    cl_ord_id = place(gw)
    assert events.find(cl_ord_id, "order.accepted")["status"] == "pending_new"
    venue.send("2", [(7, str(venue.wait_app("D").seq)), (16, "0")], store=False)
    venue.wait_for(lambda m: m.msg_type == "4" and m.get(123) == "Y", what="the gap fill")
    assert [(o["cl_ord_id"], o["status"]) for o in gw.orders()] == [(cl_ord_id, "pending_new")]
    send_report(venue, venue.wait_app("D"), "N-1", "0", "0")
    events.first(lambda e: e["type"] == "order.accepted" and e["status"] == "new")
    assert [(e["type"], e["status"]) for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
        ("order.pending_new", "pending_new"),
        ("order.accepted", "pending_new"),
        ("order.accepted", "new"),
    ]
    assert [m.get(11) for m in venue.app if m.msg_type == "D"] == [cl_ord_id]


@pytest.mark.parametrize(
    ("time_in_force", "code"), [("ioc", "3"), ("fok", "4"), ("day", "0"), ("gtc", "1")]
)
def test_time_in_force_is_carried_on_the_order(
    venue: ScriptedVenue, gw: Client, events: EventLog, time_in_force: str, code: str
) -> None:
    venue.on("D", acknowledge)
    reply = gw.new_order(
        symbol="BTC/USD",
        side="sell",
        type="limit",
        qty="0.25",
        price="31000",
        time_in_force=time_in_force,
    )
    order = venue.wait_app("D")
    assert (order.get(11), order.get(59), order.get(54)) == (reply["cl_ord_id"], code, "2")
    assert order.all(59) == [code]
    events.find(reply["cl_ord_id"], "order.accepted")


def test_an_iocs_rest_expired_by_the_venue_ends_the_order_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    venue.on("D", acknowledge)
    reply = gw.new_order(
        symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30000", time_in_force="ioc"
    )
    cl_ord_id = reply["cl_ord_id"]
    order = venue.wait_app("D")
    assert order.get(59) == "3"
    events.find(cl_ord_id, "order.accepted")
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "1",
        cum_qty="0.2",
        leaves_qty="0.3",
        avg_px="30000",
        last=("0.2", "30000"),
    )
    events.find(cl_ord_id, "order.partially_filled")
    send_report(
        venue,
        order,
        "E-1",
        "C",
        "C",
        cum_qty="0.2",
        leaves_qty="0",
        avg_px="30000",
        extra=[(58, "IOC: the rest expired")],
    )
    ended = events.find(cl_ord_id, "order.canceled")
    assert (ended["status"], ended["cum_qty"], ended["leaves_qty"], ended["text"]) == (
        "canceled",
        "0.2",
        "0",
        "IOC: the rest expired",
    )
    assert gw.orders() == []
    assert [(o["cl_ord_id"], o["status"]) for o in gw.orders(all=True)] == [(cl_ord_id, "canceled")]
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]


@pytest.mark.parametrize("leaves_qty", ["0", "0.3"])
def test_a_fill_whose_status_says_rejected_is_kept_and_the_rest_ends_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog, leaves_qty: str
) -> None:
    """One report fills 0.2 of 0.5 with OrdStatus 8 (rejected): the venue traded the order,
    then refused the rest. The fill is kept, partial; the rest ends canceled with the
    venue's Text, never `filled` (0.3 was not) and never `rejected` (0.2 was traded)."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "8",
        cum_qty="0.2",
        leaves_qty=leaves_qty,
        avg_px="30000",
        last=("0.2", "30000"),
        extra=[(58, "rest refused: price band")],
    )
    kept = events.first(lambda e: e.get("exec_id") == "F-1")
    assert (kept["type"], kept["last_qty"]) == ("order.partially_filled", "0.2")
    ended = events.find(cl_ord_id, "order.canceled")
    assert [
        (e["type"], e["status"], e["cum_qty"], e["leaves_qty"])
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id and e["type"] != "order.pending_new"
    ] == [
        ("order.accepted", "new", "0", "0.5"),
        ("order.partially_filled", "partially_filled", "0.2", "0.3"),
        ("order.canceled", "canceled", "0.2", "0"),
    ]
    assert ended["text"] == "rest refused: price band"
    [held] = gw.orders(all=True)
    assert (held["status"], held["cum_qty"], held["leaves_qty"]) == ("canceled", "0.2", "0")
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]


def test_a_cancel_goes_out_as_a_standard_cancel_request_and_its_report_cancels(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)

    def cancel(v: ScriptedVenue, request: Received) -> None:
        """Canceled, reported under the cancel's ClOrdID with the order's as OrigClOrdID."""
        report = execution_report(
            order,
            exec_id="X-1",
            exec_type="4",
            ord_status="4",
            order_id=f"V-{cl_ord_id}",
            leaves_qty="0",
        )
        under_the_cancel = [(t, request.get(11) or "" if t == 11 else value) for t, value in report]
        v.send("8", [*under_the_cancel, (41, request.get(41) or "")])

    venue.on("F", cancel)
    reply = gw.cancel_order(cl_ord_id=cl_ord_id)
    request = venue.wait_app("F")
    assert [(t, request.get(t)) for t in (11, 41, 37, 54, 55)] == [
        (11, reply["cancel_cl_ord_id"]),
        (41, cl_ord_id),
        (37, f"V-{cl_ord_id}"),
        (54, "1"),
        (55, "BTC/USD"),
    ]
    assert request.get(60) is not None  # TransactTime: required by FIX 4.4
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["status"], canceled["leaves_qty"]) == ("canceled", "0")
    assert gw.orders() == []


def test_a_status_request_goes_out_as_a_standard_one_and_its_answer_is_the_reply(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)

    def partly_filled(v: ScriptedVenue, request: Received) -> None:
        send_report(
            v, order, f"S-{request.seq}", "I", "1", cum_qty="0.1", leaves_qty="0.4", avg_px="30000"
        )

    venue.on("H", partly_filled)
    answer = gw.order_status(cl_ord_id=cl_ord_id)
    request = venue.wait_app("H")
    assert [(t, request.get(t)) for t in (11, 37, 54, 55)] == [
        (11, cl_ord_id),
        (37, f"V-{cl_ord_id}"),
        (54, "1"),
        (55, "BTC/USD"),
    ]
    assert (answer["status"], answer["cum_qty"], answer["order_id"]) == (
        "partially_filled",
        "0.1",
        f"V-{cl_ord_id}",
    )


def test_a_status_request_for_an_order_placed_elsewhere_names_it_as_fix44_requires(
    venue: ScriptedVenue, gw: Client
) -> None:
    """FIX 4.4's OrderStatusRequest requires ClOrdID: for an order with none of ours it
    carries the venue's id, as a cancel's OrigClOrdID does."""

    def open_elsewhere(v: ScriptedVenue, request: Received) -> None:
        v.send(
            "8",
            [
                *((37, request.get(37) or ""), (11, request.get(11) or ""), (17, "S-1")),
                *((150, "I"), (39, "0"), (55, "BTC/USD"), (54, "2"), (38, "1"), (40, "2")),
                *((44, "31000"), (14, "0"), (151, "1"), (6, "0")),
            ],
        )

    venue.on("H", open_elsewhere)
    answer = gw.order_status(order_id="V-ELSEWHERE", symbol="BTC/USD", side="sell")
    request = venue.wait_app("H")
    assert [(t, request.get(t)) for t in (11, 37, 54, 55)] == [
        (11, "V-ELSEWHERE"),
        (37, "V-ELSEWHERE"),
        (54, "2"),
        (55, "BTC/USD"),
    ]
    assert (answer["order_id"], answer["status"]) == ("V-ELSEWHERE", "new")
    assert answer["cl_ord_id"] is None  # the question's own id, echoed: not the order's


@pytest.mark.parametrize("answer", ["unknown_order", "business_reject"])
def test_a_status_request_for_an_order_placed_elsewhere_that_the_broker_does_not_know(
    venue: ScriptedVenue, gw: Client, answer: str
) -> None:
    """The broker's answer names no order (OrderID NONE) and echoes the request's ClOrdID,
    the venue's id for such an order; or it refuses the request naming that ClOrdID
    (BusinessRejectRefID, no RefSeqNum). Either is the asker's answer, not a time-out."""

    def not_known(v: ScriptedVenue, request: Received) -> None:
        if answer == "business_reject":
            v.send("j", [(372, "H"), (379, request.get(11) or ""), (380, "0"), (58, "unknown")])
            return
        v.send(
            "8",
            [
                *((37, "NONE"), (11, request.get(11) or ""), (17, "S-1"), (150, "I")),
                *((39, "8"), (55, request.get(55) or ""), (54, request.get(54) or "")),
                *((14, "0"), (151, "0"), (6, "0"), (58, "unknown order")),
            ],
        )

    venue.on("H", not_known)
    elsewhere = {"order_id": "V-ELSEWHERE", "symbol": "BTC/USD", "side": "sell"}
    if answer == "business_reject":
        with pytest.raises(ApiError) as refused:
            gw.order_status(**elsewhere)
        assert refused.value.code == "exchange_error"
        return
    reply = gw.order_status(**elsewhere)
    assert (reply["order_id"], reply["status"], reply["text"]) == (
        "V-ELSEWHERE",
        "rejected",
        "unknown order",
    )
    assert reply["cl_ord_id"] is None  # the question's own id, echoed: no order's


def test_account_and_mass_status_are_refused_as_not_offered_and_nothing_is_sent(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    with pytest.raises(ApiError) as account:
        gw.request("account")
    with pytest.raises(ApiError) as orders:
        gw.request("orders", from_exchange=True)
    assert (account.value.code, orders.value.code) == ("not_offered", "not_offered")
    assert "fix44" in str(account.value) and "fix44" in str(orders.value)
    venue.on("D", acknowledge)
    cl_ord_id = place(gw)  # a marker: whatever went before it is at the venue by now
    venue.wait_app("D")
    assert [m.msg_type for m in venue.app] == ["D"]
    assert events.find(cl_ord_id, "order.accepted")
    status = gw.status()["venue"]
    assert (status["offers"], status["time_in_force"]) == (
        ["market_data"],
        ["day", "fok", "gtc", "ioc"],
    )


# ------------------------------------------------------------ market data


def _serve_market_data(venue: ScriptedVenue, request: Received) -> None:
    """A full refresh (W) for each subscription: the book, or no trades yet."""
    if request.get(263) != "1":
        return
    md_req_id = request.get(262) or ""
    if "2" in request.all(269):
        venue.send("W", [(262, md_req_id), (55, "BTC/USD"), (268, "0")])
        return
    venue.send(
        "W",
        [
            *((262, md_req_id), (55, "BTC/USD"), (268, "2")),
            *((269, "0"), (270, "29990"), (271, "1.5"), (269, "1"), (270, "30010"), (271, "1.2")),
        ],
    )


def test_market_data_a_request_its_full_refresh_and_an_incremental_one(
    venue: ScriptedVenue, gw: Client
) -> None:
    venue.on("V", _serve_market_data)
    book = gw.request("md_subscribe", symbol="BTC/USD", depth=5)
    assert (book["bids"], book["asks"]) == ([["29990", "1.5"]], [["30010", "1.2"]])
    requests = {("2" in m.all(269)): m for m in venue.app if m.msg_type == "V"}
    book_request, trades_request = requests[False], requests[True]
    assert [(t, book_request.get(t)) for t in (263, 265, 146, 55)] == [
        (263, "1"),
        (265, "1"),
        (146, "1"),
        (55, "BTC/USD"),
    ]
    assert sorted(book_request.all(269)) == ["0", "1"]
    assert trades_request.all(269) == ["2"]
    seen = EventLog(gw)
    venue.send(
        "X",
        [
            *((262, book_request.get(262) or ""), (268, "2")),
            *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "2.5")),
            *((279, "0"), (269, "1"), (55, "BTC/USD"), (270, "30005"), (271, "0.4")),
        ],
    )
    venue.send(
        "X",
        [
            *((262, trades_request.get(262) or ""), (268, "1")),
            *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30005"), (271, "0.1")),
        ],
    )
    delta = seen.first(lambda e: e["type"] == "md.delta")
    assert delta["changes"] == [
        ["change", "bid", "29990", "2.5"],
        ["new", "ask", "30005", "0.4"],
    ]
    trade = seen.first(lambda e: e["type"] == "md.trade")
    # FIX 4.4's MDEntries name no aggressor (OKCoin's add Side)
    assert (trade["price"], trade["size"], trade["aggressor"]) == ("30005", "0.1", None)
    now = gw.request("book", symbol="BTC/USD", depth=5)
    assert (now["bids"], now["asks"]) == (
        [["29990", "2.5"]],
        [["30005", "0.4"], ["30010", "1.2"]],
    )


def test_market_data_a_new_or_change_of_size_0_is_a_delete(
    venue: ScriptedVenue, gw: Client
) -> None:
    """How several FIX 4.4 venues say a level is gone; a new of size 0 of a level the book
    does not hold is nothing. The book stays live: nothing is asked for again."""
    venue.on("V", _serve_market_data)
    gw.request("md_subscribe", symbol="BTC/USD", depth=5)
    book_request = next(m for m in venue.app if m.msg_type == "V" and "2" not in m.all(269))
    seen = EventLog(gw)
    venue.send(
        "X",
        [
            *((262, book_request.get(262) or ""), (268, "3")),
            *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "29980"), (271, "0")),  # not held
            *((279, "1"), (269, "1"), (55, "BTC/USD"), (270, "30010"), (271, "0")),
            *((279, "0"), (269, "1"), (55, "BTC/USD"), (270, "30015"), (271, "0.3")),
        ],
    )
    delta = seen.first(lambda e: e["type"] in ("md.delta", "md.stale"))
    assert delta.get("changes") == [["delete", "ask", "30010", "0"], ["new", "ask", "30015", "0.3"]]
    now = gw.request("book", symbol="BTC/USD", depth=5)
    assert (now["bids"], now["asks"]) == ([["29990", "1.5"]], [["30015", "0.3"]])
    assert len([m for m in venue.app if m.msg_type == "V"]) == 2  # the book and the trades


# ------------------------------------------------------------ session


def test_a_logout_with_text_only_names_no_reason_and_the_gateway_logs_on_again(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    venue.logout("end of trading day")
    down = events.first(lambda e: e["type"] == "session.down")
    assert (down["reason"], down["logout_reason"]) == ("end of trading day", None)
    events.first(lambda e: e["type"] == "session.up", timeout=15)
    wait_until(lambda: venue.logons == 1, 10, "the gateway to log on again")
    assert len([m for m in venue.admin if m.msg_type == "A"]) == 2


def test_no_account_or_okcoin_tag_reaches_a_plain_fix44_venue(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """Every message type the gateway sends, each inspected field by field (the fixture
    checks every other test's messages too)."""
    venue.on("V", _serve_market_data)
    cl_ord_id, _ = accepted_order(venue, gw, events)
    gw.order_status(cl_ord_id=cl_ord_id)
    gw.request("md_subscribe", symbol="BTC/USD")
    with pytest.raises(ApiError):
        gw.request("account")
    with pytest.raises(ApiError):
        gw.request("orders", from_exchange=True)
    gw.cancel_order(cl_ord_id=cl_ord_id)
    venue.wait_app("F")
    sent = [*venue.admin, *venue.app]
    assert {"A", "D", "H", "V", "F"} <= {m.msg_type for m in sent}
    assert [(m.msg_type, okcoin_fields(m)) for m in sent if okcoin_fields(m)] == []


# ------------------------------------------------------------ OKCoin, for contrast


def test_okcoin_refuses_an_order_with_a_time_in_force_before_sending_anything(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(lambda v: v.on("D", acknowledge))
    with stack.client() as gw:
        with pytest.raises(ApiError) as refused:
            gw.new_order(
                symbol="BTC/USD",
                side="buy",
                type="limit",
                qty="0.5",
                price="30000",
                time_in_force="gtc",
            )
        assert refused.value.code == "not_offered"
        assert "okcoin" in str(refused.value)
        cl_ord_id = place(gw)  # a marker, as above
        order = venue.wait_app("D")
        assert [m.get(11) for m in venue.app if m.msg_type == "D"] == [cl_ord_id]
        assert order.get(59) is None and order.get(1) == f"{API_KEY},{SECRET}"
        assert gw.orders()[0]["cl_ord_id"] == cl_ord_id


# ------------------------------------------------------------ through the FIX bridge

NOW = "20261125-10:00:00.000"


@pytest.fixture
def oms_to_broker(plain_fix44: PlainFix44) -> Iterator[tuple[ScriptedVenue, RawOms]]:
    """The raw OMS on the bridge of a gateway whose venue is plain FIX 4.4."""
    comp_id = f"RAW-{uuid.uuid4().hex[:8]}"
    port = free_port()
    venue, _ = plain_fix44(
        lambda v: v.on("D", acknowledge),
        bridge={"port": port, "store_dir": "bridge-store", "sessions": [{"comp_id": comp_id}]},
    )
    oms = RawOms(port, comp_id)
    oms.start()
    yield venue, oms
    oms.logout()
    oms.check_valid()


def oms_order(cl_ord_id: str, *extra: tuple[int, str]) -> list[tuple[int, str]]:
    return [
        *((11, cl_ord_id), (21, "1"), (55, "BTC/USD"), (54, "1"), (60, NOW)),
        *((38, "0.5"), (40, "2"), (44, "30000")),
        *extra,
    ]


def test_an_oms_ioc_reaches_a_plain_fix44_venue_as_59_3_and_its_expiry_comes_back(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    venue, oms = oms_to_broker
    oms.send("D", oms_order("IOC-1", (59, "3")))
    order = venue.wait_app("D")
    assert (order.get(59), order.get(11)) == ("3", f"{oms.sender}-IOC-1")
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "IOC-1" and m.get(150) == "0")
    send_report(
        venue, order, "E-1", "C", "C", leaves_qty="0", extra=[(58, "IOC: nothing to match")]
    )
    ended = oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "IOC-1" and m.get(39) == "4")
    assert (ended.get(150), ended.get(151)) == ("4", "0")


def test_an_oms_time_in_force_the_gateway_cannot_carry_is_refused_and_fok_goes_on(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    venue, oms = oms_to_broker
    oms.send("D", oms_order("GTD-1", (59, "6"), (432, "20261126")))
    refused = oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "GTD-1")
    assert (refused.get(150), refused.get(39), refused.get(103)) == ("8", "8", "11")
    assert "TimeInForce (59) = 6 (GTD)" in (refused.get(58) or "")
    oms.send("D", oms_order("FOK-1", (59, "4")))
    order = venue.wait_app("D")  # the first D the venue got: GTD-1 never reached it
    assert (order.get(11), order.get(59)) == (f"{oms.sender}-FOK-1", "4")
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "FOK-1" and m.get(150) == "0")


def test_a_field_a_venue_puts_in_a_group_entry_stays_in_its_entry(
    venue: ScriptedVenue, gw: Client
) -> None:
    """FIX 4.4's MDEntries list no Side; a venue that names the aggressor there anyway is
    read from what it sent, not from QuickFIX's rewrite, which moved the field out of its
    entry (and, with one entry, drew no Reject: the aggressor was just lost)."""
    venue.on("V", _serve_market_data)
    gw.request("md_subscribe", symbol="BTC/USD", depth=5)
    trades_request = next(m for m in venue.app if m.msg_type == "V" and "2" in m.all(269))
    seen = EventLog(gw)
    venue.send(
        "X",
        [
            *((262, trades_request.get(262) or ""), (268, "1")),
            *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30005"), (271, "0.1"), (54, "2")),
        ],
    )
    trade = seen.first(lambda e: e["type"] == "md.trade")
    assert (trade["price"], trade["aggressor"]) == ("30005", "sell")
    assert [m for m in venue.admin if m.msg_type == "3"] == []


# ------------------------------------------------------------ restatements (ExecType D)
# A plain FIX 4.4 venue restates an order on its own: clients hear of it as
# `order.restated`, the order takes the venue's quantity, and an OMS on the bridge gets it as
# FIX 4.4 has it (150=D with ExecRestatementReason). A status answer that shows another
# quantity restates the order too. OKCoin's dialect has no restatement: from it, D stays
# unreadable.


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


@pytest.mark.parametrize("ord_status", ["4", "C"])
def test_a_cancel_report_after_a_restatement_that_canceled_the_order_is_taken_as_a_repeat(
    venue: ScriptedVenue, gw: Client, events: EventLog, ord_status: str
) -> None:
    """The venue ends the order by a restatement (OrdStatus 4, or C), then confirms the
    cancel with ExecType 4: clients were told it ended, so the confirmation tells them
    nothing new; no anomaly, no second event."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.send(
        "8", restatement(order, "R-1", "0.5", ord_status=ord_status, leaves_qty="0", reason="6")
    )
    assert events.find(cl_ord_id, "order.restated")["status"] == "canceled"
    send_report(venue, order, "X-1", "4", "4", leaves_qty="0", extra=[(58, "halted")])
    events.find(place(gw), "order.accepted")  # acknowledged after the cancel report: read after
    assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
        "order.pending_new",
        "order.accepted",
        "order.restated",
    ]
    assert not [e for e in events.seen if e["type"] == "order.anomaly"]
    assert [o["status"] for o in gw.orders(all=True) if o["cl_ord_id"] == cl_ord_id] == ["canceled"]


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


def test_a_status_answer_with_another_price_restates_the_order(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """As with another quantity: the venue repriced the order (30000 to 29950) without
    saying so, and its status answer shows it."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def repriced_quietly(v: ScriptedVenue, request: Received) -> None:
        report = execution_report(
            order,
            exec_id=f"S-{request.seq}",
            exec_type="I",
            ord_status="0",
            order_id=f"V-{cl_ord_id}",
        )
        v.send("8", [(t, "29950" if t == 44 else value) for t, value in report])

    venue.on("H", repriced_quietly)
    gw.order_status(cl_ord_id=cl_ord_id)
    events.find(cl_ord_id, "order.status")  # the answer's last event
    [restated] = [e for e in events.seen if e["type"] == "order.restated"]
    assert (restated["price"], restated["qty"], restated["reason"]) == ("29950", "0.5", None)
    assert "price 29950 where the gateway held 30000" in restated["text"]
    (held,) = gw.orders()
    assert (held["price"], held["qty"], held["leaves_qty"]) == ("29950", "0.5", "0.5")


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


def test_okcoin_sends_no_restatement_so_one_is_unreadable_and_the_order_asked_about(
    make_venue_stack: VenueStackFactory,
) -> None:
    venue, stack = make_venue_stack(lambda v: v.on("D", acknowledge))
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


# A broker busts a trade (ExecType H, Trade Cancel): the gateway cannot read the bust, so it
# asks about the order, and the broker's answer, sent after the bust, is its word on the
# order: the fills it no longer shows are taken back, and the order is live again.


def answering_live(order: Received) -> Callable[[ScriptedVenue, Received], None]:
    """An OrderStatusRequest about `order` answered: live, nothing filled (after a bust)."""

    def answer(venue: ScriptedVenue, request: Received) -> None:
        send_report(venue, order, f"S-{request.seq}", "I", "0", leaves_qty="0.5")

    return answer


def filled_whole(venue: ScriptedVenue, order: Received) -> None:
    """`order`, 0.5, filled in one report, ExecID F-1."""
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "2",
        cum_qty="0.5",
        leaves_qty="0",
        avg_px="30000",
        last=("0.5", "30000"),
    )


def bust(venue: ScriptedVenue, order: Received, exec_id: str, busted: str) -> None:
    """The broker's Trade Cancel of the fill `busted`: the order live again, nothing filled."""
    send_report(
        venue,
        order,
        exec_id,
        "H",
        "0",
        leaves_qty="0.5",
        last=("0.5", "30000"),
        extra=[(19, busted), (58, "trade busted")],
    )


def test_a_trade_bust_reopens_the_filled_order_as_the_venues_answer_says_also_after_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """Before the fix the answer was taken for a stale one: the order stayed filled with
    cum_qty 0.5, and its cancel was refused `order_closed` though it rested at the broker."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        venue.on("H", answering_live(order))
        filled_whole(venue, order)
        events.find(cl_ord_id, "order.filled")
        bust(venue, order, "B-1", "F-1")
        restated = events.find(cl_ord_id, "order.restated")
        problems = [e["problem"] for e in events.seen if e["type"] == "order.anomaly"]
        assert problems == ["unreadable", "fills_taken_back"]
        taken_back = events.seen[-2]
        assert "0.5 of the fills taken back" in taken_back["detail"]
        assert [restated[k] for k in ("status", "cum_qty", "leaves_qty", "avg_px")] == [
            "new",
            "0",
            "0.5",
            "0",
        ]
        assert "0.5 taken back" in restated["text"]
    restarted(stack)
    with stack.client() as gw:
        (held,) = gw.orders()
        assert (held["cl_ord_id"], held["status"], held["cum_qty"]) == (cl_ord_id, "new", "0")
        assert gw.cancel_order(cl_ord_id=cl_ord_id)["status"] == "pending_cancel"
    assert venue.wait_app("F").get(41) == cl_ord_id


def test_a_trade_bust_whose_answer_comes_after_a_restart_reopens_the_order(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """The gateway is stopped after the bust, before the broker answers the status request
    it made it send: the bust was taken (QuickFIX's store and the journal's checkpoint are
    past it), so only the question can tell what it did. Before the fix the restarted
    gateway never asked again, and the order stayed filled for good, live at the broker."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        cl_ord_id, order = accepted_order(venue, gw, events)
        venue.on("H", lambda v, m: None)  # no answer before the restart
        filled_whole(venue, order)
        events.find(cl_ord_id, "order.filled")
        bust(venue, order, "B-1", "F-1")
        assert events.find(cl_ord_id, "order.anomaly")["problem"] == "unreadable"
        venue.wait_app("H")
    venue.on("H", answering_live(order))
    restarted(stack)
    with stack.client() as gw:
        wait_until(lambda: len(gw.orders()) == 1, 10, "the bust's answer applied")
        (held,) = gw.orders()
        assert (held["cl_ord_id"], held["status"], held["cum_qty"]) == (cl_ord_id, "new", "0")
        assert gw.cancel_order(cl_ord_id=cl_ord_id)["status"] == "pending_cancel"
    assert venue.wait_app("F").get(41) == cl_ord_id
    assert len([m for m in venue.app if m.msg_type == "H"]) == 2


def test_an_answer_showing_less_filled_not_asked_after_an_unreadable_report_changes_nothing(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """Only the answer to a question asked after an unreadable report takes fills back: a
    client's status answer showing less filled is `stale_status`, the order as it was."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_live(order))
    filled_whole(venue, order)
    events.find(cl_ord_id, "order.filled")
    assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.5"
    assert events.find(cl_ord_id, "order.anomaly")["problem"] == "stale_status"
    (held,) = gw.orders(all=True)
    assert (held["status"], held["cum_qty"]) == ("filled", "0.5")


def test_an_answer_to_the_reconciliation_after_a_logon_showing_less_filled_changes_nothing(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """Nor does the answer to the logon's reconciliation, asked after no unreadable report:
    F-1 (0.2 of 0.5) told, the broker's answer Canceled with CumQty 0 lags its reports
    (`stale_status`); the order stays partially filled with 0.2, nothing taken back. Before
    the fix it became canceled with cum_qty 0, F-1 still in `trades`."""
    a_lagging_answer_to_the_reconciliation_changes_nothing(venue, gw, events)


def test_fills_taken_back_by_an_answer_that_lagged_are_restored_when_the_next_fill_shows_them(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """A broker's answer after an unreadable report is its word, so it takes F-1 back; but
    the answer lagged, and F-2's CumQty 0.4 shows F-1 still there: F-1 is restored
    (`order.restated`), never told again, and the fills told add up to cum_qty. Before the
    fix F-2's CumQty brought F-1 again as a gap fill: 0.6 in `trades` for 0.4."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_live(order))
    fill = {"cum_qty": "0.2", "leaves_qty": "0.3", "avg_px": "30000"}
    send_report(venue, order, "F-1", "F", "1", **fill, last=("0.2", "30000"))
    events.find(cl_ord_id, "order.partially_filled")
    send_report(venue, order, "F-J", "F", "1", **fill, last=("0", "30000"))
    events.find(cl_ord_id, "order.status")
    send_report(
        venue,
        order,
        "F-2",
        "F",
        "1",
        cum_qty="0.4",
        leaves_qty="0.1",
        avg_px="30050",
        last=("0.2", "30100"),
    )
    second = events.first(lambda e: e.get("exec_id") == "F-2")
    assert (second["last_qty"], second["cum_qty"], second["avg_px"]) == ("0.2", "0.4", "30050")
    restated = [e for e in events.seen if e["type"] == "order.restated"]
    assert [e["cum_qty"] for e in restated] == ["0", "0.2"]
    assert "0.2 of the fills taken back are filled after all" in restated[-1]["text"]
    trades = gw.request("trades", symbol="BTC/USD")["trades"]
    assert [(t["exec_id"], t["qty"]) for t in trades if t["cl_ord_id"] == cl_ord_id] == [
        ("F-1", "0.2"),
        ("F-2", "0.2"),
    ]


def test_an_oms_gets_a_trade_bust_as_a_restatement_of_the_venues_numbers(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    """ExecType D, OrdStatus 0, CumQty 0, LeavesQty 0.5, ExecRestatementReason 99 with Text:
    valid FIX 4.4 by the stock FIX44.xml (the raw OMS checks every message)."""
    venue, oms = oms_to_broker
    oms.send("D", oms_order("BU-1"))
    order = venue.wait_app("D")
    venue.on("H", answering_live(order))
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "BU-1" and m.get(150) == "0")
    filled_whole(venue, order)
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "BU-1" and m.get(150) == "F")
    bust(venue, order, "B-1", "F-1")
    restated = oms.wait_for(
        lambda m: m.msg_type == "8" and m.get(11) == "BU-1" and m.get(150) == "D"
    )
    assert [(t, restated.get(t)) for t in (39, 14, 151, 378)] == [
        (39, "0"),
        (14, "0"),
        (151, "0.5"),
        (378, "99"),
    ]
    assert "taken back" in (restated.get(58) or "")


# ------------------------------------------------------------ acks written after the fact


def told_of(events: EventLog, cl_ord_id: str) -> list[tuple[Any, ...]]:
    """The events of `cl_ord_id` after its `order.pending_new`: type, problem or status,
    and a fill's last_qty."""
    return [
        (e["type"], e.get("problem") or e["status"], e.get("last_qty"))
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id and e["type"] != "order.pending_new"
    ]


def test_an_ack_written_after_the_order_filled_tells_the_fill_first(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """FIX 4.4's OrdStatus is the order's state after the event: the broker's ack of an order
    that filled on entry says 39=2 CumQty 0.5. Before the fix the order closed filled with
    cum_qty 0 and no fill told."""
    venue.on("D", lambda v, m: None)
    cl_ord_id = place(gw)
    order = venue.wait_app("D")
    send_report(venue, order, "A-1", "0", "2", cum_qty="0.5", leaves_qty="0", avg_px="30000")
    events.find(cl_ord_id, "order.accepted")
    assert told_of(events, cl_ord_id) == [
        ("order.anomaly", "fill_gap", None),
        ("order.filled", "filled", "0.5"),
        ("order.accepted", "filled", None),
    ]
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["exec_id"], filled["last_px"], filled["cum_qty"]) == (
        "reconciled:A-1",
        "30000",
        "0.5",
    )
    (held,) = gw.orders(all=True)
    assert (held["status"], held["cum_qty"], held["avg_px"]) == ("filled", "0.5", "30000")


def test_an_ack_saying_partially_filled_tells_the_fill_and_leaves_the_order_open(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    venue.on("D", lambda v, m: None)
    cl_ord_id = place(gw)
    order = venue.wait_app("D")
    send_report(venue, order, "A-1", "0", "1", cum_qty="0.2", leaves_qty="0.3", avg_px="30000")
    events.find(cl_ord_id, "order.accepted")
    assert told_of(events, cl_ord_id) == [
        ("order.anomaly", "fill_gap", None),
        ("order.partially_filled", "partially_filled", "0.2"),
        ("order.accepted", "partially_filled", None),
    ]
    (held,) = gw.orders()
    numbers = [held[k] for k in ("status", "cum_qty", "leaves_qty")]
    assert numbers == ["partially_filled", "0.2", "0.3"]


@pytest.mark.parametrize(
    ("ord_status", "ended"),
    [("4", ("order.canceled", "canceled", None)), ("8", ("order.rejected", "rejected", None))],
    ids=["canceled", "rejected"],
)
def test_an_ack_saying_the_order_ended_is_told_with_the_event_that_ended_it(
    venue: ScriptedVenue, gw: Client, events: EventLog, ord_status: str, ended: tuple[Any, ...]
) -> None:
    """An IOC whose rest the broker canceled (or an order it refused) before writing the ack.
    Before the fix the order closed under an `order.accepted` alone."""
    venue.on("D", lambda v, m: None)
    cl_ord_id = place(gw)
    order = venue.wait_app("D")
    send_report(venue, order, "A-1", "0", ord_status, leaves_qty="0")
    events.find(cl_ord_id, ended[0])
    assert told_of(events, cl_ord_id) == [("order.accepted", "new", None), ended]
    assert gw.orders() == []


def test_an_oms_gets_the_fill_of_an_ack_written_after_the_order_filled(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    """Before the fix the OMS got 150=0 39=2 14=0 151=0.5: filled, with nothing executed."""
    venue, oms = oms_to_broker
    venue.on("D", lambda v, m: None)
    oms.send("D", oms_order("LA-1"))
    order = venue.wait_app("D")
    send_report(venue, order, "A-1", "0", "2", cum_qty="0.5", leaves_qty="0", avg_px="30000")
    fill = oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "LA-1" and m.get(150) == "F")
    ack = oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "LA-1" and m.get(150) == "0")
    assert [fill.get(t) for t in (39, 32, 31, 14, 151)] == ["2", "0.5", "30000", "0.5", "0"]
    assert [ack.get(t) for t in (39, 14, 151)] == ["2", "0.5", "0"]


# ------------------------------------------------------------ answers that lag or correct


def test_a_status_answer_saying_pending_new_leaves_an_acked_order_open(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """An answer the broker computed before its own ack and sent after it. Before the fix the
    order went back to pending_new for good (the ack watchdog had nothing left to ask)."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def pending_new(v: ScriptedVenue, request: Received) -> None:
        send_report(v, order, f"S-{request.seq}", "I", "A", leaves_qty="0.5")

    venue.on("H", pending_new)
    assert gw.order_status(cl_ord_id=cl_ord_id)["status"] == "new"
    (held,) = gw.orders()
    assert held["status"] == "new"


def test_a_trade_corrections_answer_brings_the_corrected_average_price(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """A Trade Correct (ExecType G) is unreadable, so the order is asked about; the answer
    shows the same fill at 29900. Before the fix avg_px stayed 30000: only more or less
    filled was applied."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    filled_whole(venue, order)
    events.find(cl_ord_id, "order.filled")

    def corrected(v: ScriptedVenue, request: Received) -> None:
        send_report(
            v, order, f"S-{request.seq}", "I", "2", cum_qty="0.5", leaves_qty="0", avg_px="29900"
        )

    venue.on("H", corrected)
    send_report(
        venue,
        order,
        "G-1",
        "G",
        "2",
        cum_qty="0.5",
        leaves_qty="0",
        avg_px="29900",
        last=("0.5", "29900"),
        extra=[(19, "F-1")],
    )
    restated = events.find(cl_ord_id, "order.restated")
    assert (restated["reason"], restated["status"], restated["cum_qty"], restated["avg_px"]) == (
        None,
        "filled",
        "0.5",
        "29900",
    )
    assert "average price changed" in restated["text"]
    events.find(cl_ord_id, "order.status")
    (held,) = gw.orders(all=True)
    assert (held["status"], held["avg_px"]) == ("filled", "29900")


# ------------------------------------------------------------ fills a report gives no price for


def answering_canceled_at(
    order: Received, cum_qty: str, avg_px: str
) -> Callable[[ScriptedVenue, Received], None]:
    """The broker's answer to a status request: `order` canceled, `cum_qty` filled at
    `avg_px`."""

    def answer(v: ScriptedVenue, request: Received) -> None:
        send_report(
            v, order, f"S-{request.seq}", "I", "4", cum_qty=cum_qty, leaves_qty="0", avg_px=avg_px
        )

    return answer


def fills_told(events: EventLog, cl_ord_id: str) -> list[tuple[str, str, str]]:
    return [
        (e["exec_id"], e["last_qty"], e["last_px"])
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id
        and e["type"] in ("order.partially_filled", "order.filled")
    ]


@pytest.mark.parametrize("expiry_avg_px", ["0", "10000"], ids=["avg_px_0", "avg_px_below_fills"])
def test_an_iocs_expiry_showing_a_missed_fill_it_gives_no_price_for_tells_no_fill_and_asks(
    venue: ScriptedVenue, gw: Client, events: EventLog, expiry_avg_px: str
) -> None:
    """0.2 of an IOC filled at 30000; its expiry (C) says 0.5 filled, at AvgPx 0 (none) or
    at 10000 (below the fill told: it leaves a negative price for the 0.3 missed). No fill
    is told for the 0.3: the order takes the broker's quantities (order.restated), ends
    canceled with cum_qty 0.5, and is asked about; the answer's AvgPx 29800 becomes the
    order's. Before the fix the 0.3 was told as a fill at 0, or at -3333.33..."""
    venue.on("D", acknowledge)
    reply = gw.new_order(
        symbol="BTC/USD", side="buy", type="limit", qty="1", price="30000", time_in_force="ioc"
    )
    cl_ord_id = reply["cl_ord_id"]
    order = venue.wait_app("D")
    venue.on("H", answering_canceled_at(order, "0.5", "29800"))
    events.find(cl_ord_id, "order.accepted")
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "1",
        cum_qty="0.2",
        leaves_qty="0.8",
        avg_px="30000",
        last=("0.2", "30000"),
    )
    events.find(cl_ord_id, "order.partially_filled")
    send_report(venue, order, "E-1", "C", "C", cum_qty="0.5", leaves_qty="0", avg_px=expiry_avg_px)
    events.find(cl_ord_id, "order.status")
    assert told_of(events, cl_ord_id) == [
        ("order.accepted", "new", None),
        ("order.partially_filled", "partially_filled", "0.2"),
        ("order.anomaly", "fill_gap", None),
        ("order.restated", "partially_filled", None),
        ("order.canceled", "canceled", None),
        ("order.restated", "canceled", None),
        ("order.status", "canceled", None),
    ]
    gap = events.find(cl_ord_id, "order.anomaly")
    assert "0.3 filled at a price the exchange does not give" in gap["detail"]
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["cum_qty"], canceled["leaves_qty"]) == ("0.5", "0")
    assert fills_told(events, cl_ord_id) == [("F-1", "0.2", "30000")]
    assert [(t["qty"], t["price"]) for t in gw.request("trades")["trades"]] == [("0.2", "30000")]
    (held,) = gw.orders(all=True)
    assert [held[k] for k in ("status", "cum_qty", "leaves_qty", "avg_px")] == [
        "canceled",
        "0.5",
        "0",
        "29800",
    ]


def test_a_fill_a_restatement_showed_at_no_price_is_told_once_from_its_late_report(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """The broker restates the open order for 0.5 (ExecType D) saying 0.2 filled at AvgPx 0:
    no fill is told for it (order.restated). The trade's own report comes late: LastQty 0.2
    at 30000, CumQty 0.2. It is told once, at 30000, and not counted again into cum_qty;
    the next fill, 0.3 at 30100, fills the order. Before the fix the late report was taken
    as already counted (stale_fill), and the 0.2 never told."""
    cl_ord_id, order = accepted_order(venue, gw, events)

    def answer_open(v: ScriptedVenue, request: Received) -> None:
        """The answer to the question the restatement made the gateway ask."""
        send_report(
            v, order, f"S-{request.seq}", "I", "1", cum_qty="0.2", leaves_qty="0.3", avg_px="30000"
        )

    venue.on("H", answer_open)
    send_report(venue, order, "R-1", "D", "1", cum_qty="0.2", leaves_qty="0.3", extra=[(378, "5")])
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "1",
        cum_qty="0.2",
        leaves_qty="0.3",
        avg_px="30000",
        last=("0.2", "30000"),
    )
    events.find(cl_ord_id, "order.status")
    send_report(
        venue,
        order,
        "F-2",
        "F",
        "2",
        cum_qty="0.5",
        leaves_qty="0",
        avg_px="30060",
        last=("0.3", "30100"),
    )
    events.find(cl_ord_id, "order.filled")
    assert fills_told(events, cl_ord_id) == [("F-1", "0.2", "30000"), ("F-2", "0.3", "30100")]
    assert not [e for e in events.seen if e.get("problem") == "stale_fill"]
    assert [(t["qty"], t["price"]) for t in gw.request("trades")["trades"]] == [
        ("0.2", "30000"),
        ("0.3", "30100"),
    ]
    (held,) = gw.orders(all=True)
    assert [held[k] for k in ("status", "cum_qty", "leaves_qty", "avg_px")] == [
        "filled",
        "0.5",
        "0",
        "30060",
    ]


def test_a_status_answer_showing_more_filled_at_avg_px_0_tells_no_fill_at_0(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """A client's status request answered 0.4 filled at AvgPx 0, where 0.2 was told at
    30000: the order takes the answer's quantities, no fill is told for the 0.2 more, and
    the gap is surfaced. Before the fix the 0.2 was told as a fill at 0."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "1",
        cum_qty="0.2",
        leaves_qty="0.3",
        avg_px="30000",
        last=("0.2", "30000"),
    )
    events.find(cl_ord_id, "order.partially_filled")

    def more_filled_at_no_price(v: ScriptedVenue, request: Received) -> None:
        send_report(
            v, order, f"S-{request.seq}", "I", "1", cum_qty="0.4", leaves_qty="0.1", avg_px="0"
        )

    venue.on("H", more_filled_at_no_price)
    answer = gw.order_status(cl_ord_id=cl_ord_id)
    assert (answer["status"], answer["cum_qty"], answer["avg_px"]) == (
        "partially_filled",
        "0.4",
        "30000",
    )
    events.find(cl_ord_id, "order.status")
    assert told_of(events, cl_ord_id)[2:] == [
        ("order.anomaly", "fill_gap", None),
        ("order.restated", "partially_filled", None),
        ("order.status", "partially_filled", None),
    ]
    assert fills_told(events, cl_ord_id) == [("F-1", "0.2", "30000")]


def test_an_oms_gets_no_fill_at_0_for_an_iocs_expiry_showing_a_missed_fill(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    """The OMS's IOC for 0.5: 0.1 filled, then its expiry says 0.3 filled at AvgPx 0. The
    OMS gets a restatement (D, 378=99) of CumQty 0.3, the cancel with CumQty 0.3, and,
    after the broker's answer, the order's AvgPx: never a fill at 31=0 (before the fix,
    150=F 32=0.2 31=0). Every message valid by FIX44.xml (the raw OMS checks them)."""
    venue, oms = oms_to_broker
    oms.send("D", oms_order("IOC-1", (59, "3")))
    order = venue.wait_app("D")
    venue.on("H", answering_canceled_at(order, "0.3", "29800"))

    def of_ioc(exec_type: str) -> Callable[[Received], bool]:
        return lambda m: m.msg_type == "8" and m.get(11) == "IOC-1" and m.get(150) == exec_type

    oms.wait_for(of_ioc("0"))
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "1",
        cum_qty="0.1",
        leaves_qty="0.4",
        avg_px="30000",
        last=("0.1", "30000"),
    )
    send_report(venue, order, "E-1", "C", "C", cum_qty="0.3", leaves_qty="0", avg_px="0")
    oms.wait_for(lambda m: of_ioc("D")(m) and m.get(6) == "29800")
    reports = [m for m in oms.messages("8") if m.get(11) == "IOC-1"]
    assert [[m.get(t) for t in (150, 39, 14, 151, 6, 32, 31)] for m in reports] == [
        ["A", "A", "0", "0.5", "0", None, None],
        ["0", "0", "0", "0.5", "0", None, None],
        ["F", "1", "0.1", "0.4", "30000", "0.1", "30000"],
        ["D", "1", "0.3", "0.2", "30000", None, None],
        ["4", "4", "0.3", "0", "30000", None, None],
        ["D", "4", "0.3", "0", "29800", None, None],
    ]


def test_late_reports_of_an_unpriced_fill_and_of_a_gap_fill_out_of_order_tell_each_trade_once(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """As from OKCoin (test_venue_answers.py): E1 unpriced, E2 told as a gap fill inferred
    from E3's CumQty, then E2's late report, then E1's. Each trade is told once."""
    cl_ord_id, order = e1_unpriced_then_e3_with_e2_as_a_gap(venue, gw, events)
    e2_then_e1_late(venue, order)
    each_trade_told_once(events, gw, cl_ord_id)


def test_a_gap_is_not_priced_off_an_avg_px_that_covers_a_fill_at_no_price(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """As from OKCoin (test_venue_answers.py): E1 unpriced, E3's report before the answer
    to the question; E2's 0.1 is at no price, not a gap fill at 90050, and each trade is told
    once, at its price."""
    cl_ord_id, order = e1_unpriced_then_e3_before_the_answer(venue, gw, events)
    answer = answering_as_e3_left_it(order)
    venue.on("H", answer)
    answer(venue, venue.wait_app("H"))
    events.find(cl_ord_id, "order.status")
    e2_and_e1_told_at_their_prices(venue, gw, events, cl_ord_id, order)


def canceled_at_no_price_then_taken_back(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> tuple[str, Received]:
    """The broker cancels the order for 0.5 saying 0.2 filled at AvgPx 0 (F-1's own report
    to come late): 0.2 unpriced, no fill told. The answer to the gateway's question lags
    (canceled, CumQty 0): the 0.2 is taken back, of it nothing told."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_canceled_at(order, "0", "0"))
    send_report(venue, order, "X-1", "4", "4", cum_qty="0.2", leaves_qty="0", avg_px="0")
    events.find(cl_ord_id, "order.status")
    taken_back = [e for e in events.seen if e["type"] == "order.restated"][-1]
    assert taken_back["cum_qty"] == "0"
    assert "0.2 filled at no price and never told as a fill" in taken_back["text"]
    return cl_ord_id, order


def test_an_unpriced_fill_a_lagging_answer_took_back_is_told_once_a_later_answer_prices_it(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """After the above, a client's status request gets the broker's answer caught up
    (canceled, 0.2 at 30000): the 0.2 is news, told as one fill at 30000; F-1's own report
    then is already counted. Before the fix the answer "restored" the 0.2 as told before
    (it never was), F-1 was dropped, and `trades` stayed empty for a cum_qty of 0.2."""
    cl_ord_id, order = canceled_at_no_price_then_taken_back(venue, gw, events)
    venue.on("H", answering_canceled_at(order, "0.2", "30000"))
    assert gw.order_status(cl_ord_id=cl_ord_id)["cum_qty"] == "0.2"
    send_report(
        venue, order, "F-1", "F", "4", cum_qty="0.2", leaves_qty="0", avg_px="30000",
        last=("0.2", "30000"),
    )  # fmt: skip
    late = events.first(lambda e: e.get("exec_id") == "F-1")
    assert (late["type"], late["problem"]) == ("order.anomaly", "report_after_close")
    assert [(f[1], f[2]) for f in fills_told(events, cl_ord_id)] == [("0.2", "30000")]
    assert [t["qty"] for t in gw.request("trades")["trades"]] == ["0.2"]
    (held,) = gw.orders(all=True)
    assert (held["status"], held["cum_qty"], held["avg_px"]) == ("canceled", "0.2", "30000")


def acked_at_no_price_then_taken_back(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> tuple[str, Received]:
    """A late ack of the open order for 0.5 shows 0.2 filled at AvgPx 0 (F-1's, its own
    report to come late): unpriced, no fill told. The answer lags (New, CumQty 0): the
    0.2 is taken back, of it nothing told."""
    cl_ord_id, order = accepted_order(venue, gw, events)
    venue.on("H", answering_live(order))
    send_report(venue, order, "A-2", "0", "1", cum_qty="0.2", leaves_qty="0.3", avg_px="0")
    events.find(cl_ord_id, "order.status")
    return cl_ord_id, order


def f2_showing_f1_then_f1_late(venue: ScriptedVenue, order: Received) -> None:
    """F-2 (0.1 at 30090, CumQty 0.3, AvgPx 30030: F-1's 0.2 at 30000 before it), then
    F-1's own report (0.2 at 30000, CumQty 0.2)."""
    send_report(
        venue, order, "F-2", "F", "1", cum_qty="0.3", leaves_qty="0.2", avg_px="30030",
        last=("0.1", "30090"),
    )  # fmt: skip
    send_report(
        venue, order, "F-1", "F", "1", cum_qty="0.2", leaves_qty="0.3", avg_px="30000",
        last=("0.2", "30000"),
    )  # fmt: skip


def each_of_f1_and_f2_told_once(events: EventLog, gw: Client, cl_ord_id: str) -> None:
    """F-2's CumQty shows F-1's 0.2, never told: a gap fill at the 30000 its AvgPx leaves;
    F-1's own report is then already counted."""
    late = events.first(lambda e: e.get("exec_id") == "F-1")
    assert (late["type"], late["problem"]) == ("order.anomaly", "stale_fill")
    assert fills_told(events, cl_ord_id)[-2:] == [
        ("reconciled:F-2", "0.2", "30000"),
        ("F-2", "0.1", "30090"),
    ]
    trades = gw.request("trades")["trades"]
    assert [(t["exec_id"], t["qty"]) for t in trades] == [("reconciled:F-2", "0.2"), ("F-2", "0.1")]
    (held,) = gw.orders()
    assert (held["status"], held["cum_qty"], held["avg_px"]) == ("partially_filled", "0.3", "30030")


def test_an_unpriced_fill_a_lagging_answer_took_back_is_told_once_the_next_fill_shows_it(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """Before the fix F-2's CumQty "restored" the 0.2 as told before (it never was), and
    F-1's own report was dropped: `trades` held F-2 alone for a cum_qty of 0.3."""
    cl_ord_id, order = acked_at_no_price_then_taken_back(venue, gw, events)
    f2_showing_f1_then_f1_late(venue, order)
    each_of_f1_and_f2_told_once(events, gw, cl_ord_id)


def test_an_unpriced_fill_taken_back_is_not_restored_as_told_after_a_restart(
    venue_stack: tuple[ScriptedVenue, LocalStack],
) -> None:
    """As above, the gateway restarted between the answer and F-2: the journal keeps that
    nothing told was taken back."""
    venue, stack = venue_stack
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id, order = acked_at_no_price_then_taken_back(venue, gw, EventLog(gw))
    restarted(stack)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        f2_showing_f1_then_f1_late(venue, order)
        each_of_f1_and_f2_told_once(events, gw, cl_ord_id)


def test_an_oms_gets_the_fill_of_an_unpriced_cancel_a_lagging_answer_took_back(
    oms_to_broker: tuple[ScriptedVenue, RawOms],
) -> None:
    """The OMS's order is canceled at AvgPx 0 with 0.2 filled; the gateway's question is
    answered lagging (canceled, CumQty 0). The OMS asks later (H), the broker now answers
    0.2 at 30000: the OMS gets the 0.2 as a fill (F, 39=4, 14=0.2), and F-1's own report
    after adds nothing. Before the fix it got D (CumQty 0.2), 4, D (0), D (0.2) and never
    an F: its fills added up to 0 for a CumQty of 0.2."""
    venue, oms = oms_to_broker
    oms.send("D", oms_order("UNP-1"))
    order = venue.wait_app("D")
    venue.on("H", answering_canceled_at(order, "0", "0"))
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(11) == "UNP-1" and m.get(150) == "0")
    send_report(venue, order, "X-1", "4", "4", cum_qty="0.2", leaves_qty="0", avg_px="0")
    venue.wait_app("H")
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(150) == "D" and m.get(14) == "0")
    venue.on("H", answering_canceled_at(order, "0.2", "30000"))
    oms.send("H", [(11, "UNP-1"), (790, "ask-1"), (55, "BTC/USD"), (54, "1")])
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ask-1")
    send_report(
        venue, order, "F-1", "F", "4", cum_qty="0.2", leaves_qty="0", avg_px="30000",
        last=("0.2", "30000"),
    )  # fmt: skip
    oms.send("H", [(11, "UNP-1"), (790, "ask-2"), (55, "BTC/USD"), (54, "1")])
    oms.wait_for(lambda m: m.msg_type == "8" and m.get(790) == "ask-2")
    reports = [m for m in oms.messages("8") if m.get(11) == "UNP-1" and m.get(150) != "I"]
    assert [[m.get(t) for t in (150, 39, 14)] for m in reports] == [
        ["A", "A", "0"],
        ["0", "0", "0"],
        ["D", "1", "0.2"],
        ["4", "4", "0.2"],
        ["D", "4", "0"],
        ["F", "4", "0.2"],
    ]
    assert [reports[-1].get(t) for t in (151, 32, 31)] == ["0", "0.2", "30000"]


def test_a_gtc_order_done_for_the_day_stays_open_and_can_be_cancelled_after_its_renewal(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    """FIX 4.4's Done for Day (ExecType 3) means no more executions today: a GTC order lives
    on, and the broker restates it the next day (ExecRestatementReason 1, GT renewal). Before
    the fix it was read as canceled: the renewal was a `report_after_close`, and the cancel
    of the order resting at the broker was refused."""
    venue.on("D", acknowledge)
    reply = gw.new_order(
        symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30000", time_in_force="gtc"
    )
    cl_ord_id = str(reply["cl_ord_id"])
    events.find(cl_ord_id, "order.accepted")
    order = venue.wait_app("D")
    send_report(venue, order, "DFD-1", "3", "3", leaves_qty="0")
    assert events.find(cl_ord_id, "order.anomaly")["problem"] == "done_for_day"
    send_report(venue, order, "RS-1", "D", "0", leaves_qty="0.5", extra=[(378, "1")])
    renewed = events.find(cl_ord_id, "order.restated")
    assert (renewed["reason"], renewed["status"], renewed["leaves_qty"]) == (
        "gt_renewal",
        "new",
        "0.5",
    )
    assert gw.cancel_order(cl_ord_id=cl_ord_id)["status"] == "pending_cancel"
    assert venue.wait_app("F").get(41) == cl_ord_id
    assert [e["type"] for e in events.seen if e.get("cl_ord_id") == cl_ord_id] == [
        "order.pending_new",
        "order.accepted",
        "order.anomaly",
        "order.restated",
    ]


@pytest.mark.parametrize(
    ("avg_px", "missed_told_as"),
    [
        (
            "30000",
            [("order.filled", "filled", "0.3"), ("order.anomaly", "report_after_close", None)],
        ),
        ("0", [("order.restated", "filled", None), ("order.filled", "filled", "0.3")]),
    ],
    ids=["priced", "at_no_price"],
)
def test_a_gtc_order_done_for_the_day_showing_the_whole_quantity_filled_ends_filled(
    venue: ScriptedVenue,
    gw: Client,
    events: EventLog,
    avg_px: str,
    missed_told_as: list[tuple[str, str | None, str | None]],
) -> None:
    """A GTC order for 0.5: F-1 (0.2) told, F-2's report (0.3) missed, then the broker's
    Done for Day showing CumQty 0.5, LeavesQty 0. Nothing is left to live past the day: the
    order is filled, not left open with nothing left (no `done_for_day`). At AvgPx 0 the
    missed 0.3 is an `order.restated` until F-2, late, gives its price; priced, F-2 is
    already counted."""
    venue.on("D", acknowledge)
    venue.on("H", lambda v, m: None)  # the question a fill at no price asks, left unanswered
    reply = gw.new_order(
        symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30000", time_in_force="gtc"
    )
    cl_ord_id = str(reply["cl_ord_id"])
    events.find(cl_ord_id, "order.accepted")
    order = venue.wait_app("D")
    send_report(
        venue,
        order,
        "F-1",
        "F",
        "1",
        cum_qty="0.2",
        leaves_qty="0.3",
        avg_px="30000",
        last=("0.2", "30000"),
    )
    send_report(venue, order, "DFD-1", "3", "3", cum_qty="0.5", leaves_qty="0", avg_px=avg_px)
    send_report(
        venue,
        order,
        "F-2",
        "F",
        "2",
        cum_qty="0.5",
        leaves_qty="0",
        avg_px="30000",
        last=("0.3", "30000"),
    )
    events.first(lambda e: e.get("exec_id") == "F-2")
    assert [
        (e["type"], e.get("problem") or e.get("status"), e.get("last_qty"))
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id
    ][3:] == [("order.anomaly", "fill_gap", None), *missed_told_as]
    [held] = [o for o in gw.orders(all=True) if o["cl_ord_id"] == cl_ord_id]
    assert (held["status"], held["cum_qty"], held["leaves_qty"]) == ("filled", "0.5", "0")
    assert gw.orders() == []


def test_a_day_order_done_for_the_day_ends_canceled(
    venue: ScriptedVenue, gw: Client, events: EventLog
) -> None:
    cl_ord_id, order = accepted_order(venue, gw, events)
    send_report(venue, order, "DFD-1", "3", "3", leaves_qty="0")
    assert events.find(cl_ord_id, "order.canceled")["status"] == "canceled"
    assert gw.orders() == []
