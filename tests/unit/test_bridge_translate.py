"""What a market-data subscriber of the bridge is sent: the change from the book it was last
sent to the book now, in the levels it sees (X); full refreshes (W) and trades. What an
OMS's request says of its order that is not so."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec

from fixgw.bridge.translate import (
    another_order,
    book_changes,
    book_snapshot,
    business_reject,
    cancel_reject,
    execution_report,
    fix_text,
    market_data_reject,
    refused_order,
    session_reject,
    trade_entry,
)
from fixgw.domain import (
    OrderRestated,
    OrderStatus,
    OrderType,
    RestatementReason,
    Side,
    utc_now,
)
from fixgw.fix.message import FixMessage
from fixgw.results import OrderView

SENT = ({D("100"): D("1"), D("99"): D("2")}, {D("101"): D("3")})


def entries(bids: dict[D, D], asks: dict[D, D]) -> list[dict[int, str]]:
    message = book_changes("md-1", "BTC/USD", SENT, (bids, asks))
    assert message is not None and message.msg_type == "X"
    assert message.fields == {262: "md-1"}
    return [dict(e) for e in message.groups[268]]


def test_an_unchanged_book_sends_nothing() -> None:
    assert book_changes("md-1", "BTC/USD", SENT, (dict(SENT[0]), dict(SENT[1]))) is None


def test_a_new_level_a_changed_size_and_a_gone_level_each_make_one_entry() -> None:
    got = entries({D("100"): D("1.5"), D("98.5"): D("4")}, {D("101"): D("3"), D("102"): D("1")})
    assert got == [
        {279: "2", 269: "0", 55: "BTC/USD", 270: "99"},
        {279: "1", 269: "0", 55: "BTC/USD", 270: "100", 271: "1.5"},
        {279: "0", 269: "0", 55: "BTC/USD", 270: "98.5", 271: "4"},
        {279: "0", 269: "1", 55: "BTC/USD", 270: "102", 271: "1"},
    ]


def test_deletes_come_before_the_levels_that_take_their_place() -> None:
    """At depth 1 a new best ask replaces the old: the OMS never holds two."""
    got = entries(dict(SENT[0]), {D("100.5"): D("1")})
    assert [(e[279], e[270]) for e in got] == [("2", "101"), ("0", "100.5")]


def test_sizes_and_prices_go_as_plain_decimals() -> None:
    got = entries({D("100"): D("1E+1"), D("99"): D("2")}, dict(SENT[1]))
    assert got == [{279: "1", 269: "0", 55: "BTC/USD", 270: "100", 271: "10"}]


def test_a_full_refresh_carries_the_sides_given_and_the_last_trade() -> None:
    trade = (D("30010.5"), D("0.20"))
    message = book_snapshot("md-1", "BTC/USD", [(D(29990), D(1))], [], 0, trade)
    assert message.groups[268] == (
        {269: "0", 270: "29990", 271: "1"},
        {269: "2", 270: "30010.5", 271: "0.2"},
    )


def test_a_trade_is_a_new_entry_of_type_2() -> None:
    message = trade_entry("md-1", "BTC/USD", D("30010"), D("0.25"))
    assert (message.msg_type, message.fields) == ("X", {262: "md-1"})
    assert message.groups[268] == ({279: "0", 269: "2", 55: "BTC/USD", 270: "30010", 271: "0.25"},)


def restatement(reason: RestatementReason | None) -> OrderRestated:
    return OrderRestated(
        ts=utc_now(),
        cl_ord_id="P-c1",
        order_id="X1",
        symbol="BTC/USD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=D("0.3"),
        price=D("30000"),
        status=OrderStatus.NEW,
        cum_qty=D(0),
        leaves_qty=D("0.3"),
        avg_px=D(0),
        reason=reason,
        text=None if reason else "a status answer changed it",
    )


def test_a_restatement_goes_to_the_oms_as_exec_type_d_with_its_reason_or_other() -> None:
    sent = execution_report(restatement(RestatementReason.REPRICING), 7, "c1").fields
    assert [sent[t] for t in (11, 150, 39, 38, 151, 14, 378)] == [
        "c1",
        "D",
        "0",
        "0.3",
        "0.3",
        "0",
        "3",
    ]
    unexplained = execution_report(restatement(None), 8, "c1").fields
    assert (unexplained[378], unexplained[58]) == ("99", "a status answer changed it")


def test_control_characters_in_free_text_are_sent_in_text_as_visible_escapes() -> None:
    """An SOH in Text (58) would end the field: QuickFIX could not send the message."""
    plain = "halted: trading is halted (by api client 3 (desk é €): stop)"
    assert fix_text(plain) is plain
    assert fix_text("a\x01b\nc\td\x7fe\x85f") == "a\\x01b\\x0ac\\x09d\\x7fe\\x85f"
    text, escaped = "desk\x01A", "desk\\x01A"
    exchange = msgspec.structs.replace(restatement(None), text=text)  # the exchange's own Text
    oms_msg = FixMessage("D", {11: "O-1", 34: "5", 55: "BTC/USD", 54: "1"})
    for sent in (
        execution_report(exchange, 9, "c1"),
        refused_order(oms_msg, "e1", text, reason="0"),
        cancel_reject(oms_msg, text),
        market_data_reject("md-1", text, None),
        business_reject(oms_msg, "0", text),
        session_reject(oms_msg, 11, "5", text),
    ):
        assert sent.fields[58] == escaped, sent.msg_type


RESTING_BUY = OrderView(
    cl_ord_id="OMS-A-1",
    order_id="X-9",
    symbol="BTC/USD",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    qty=D("0.5"),
    price=D("30000"),
    status=OrderStatus.NEW,
    cum_qty=D("0"),
    leaves_qty=D("0.5"),
    avg_px=D("0"),
)


def test_a_symbol_or_side_not_the_orders_is_named_with_the_orders_own() -> None:
    cancel = FixMessage("F", {11: "C-1", 41: "A-1", 55: "LTC/USD", 54: "2"})
    assert another_order(cancel, RESTING_BUY) == (
        "Symbol (55) LTC/USD is not that of order A-1 (BTC/USD); "
        "Side (54) 2 is not that of order A-1 (1)"
    )
    status = FixMessage("H", {11: "A-1", 55: "BTC/USD", 54: "5"})
    assert another_order(status, RESTING_BUY) == "Side (54) 5 is not that of order A-1 (1)"


def test_an_order_id_not_the_orders_is_named_and_none_is_the_order_not_yet_named() -> None:
    cancel = FixMessage("F", {11: "C-1", 41: "A-1", 37: "X-7", 55: "BTC/USD", 54: "1"})
    assert another_order(cancel, RESTING_BUY) == "OrderID (37) X-7 is not that of order A-1 (X-9)"
    unacked = msgspec.structs.replace(RESTING_BUY, order_id=None)
    assert another_order(cancel, unacked) == "OrderID (37) X-7 is not that of order A-1 (NONE)"
    crossing_the_ack = FixMessage("F", {11: "C-1", 41: "A-1", 37: "NONE"})
    assert another_order(crossing_the_ack, RESTING_BUY) is None


def test_a_request_that_says_only_what_is_so_names_no_other_order() -> None:
    assert another_order(FixMessage("F", {41: "A-1", 55: "BTC/USD", 54: "1"}), RESTING_BUY) is None
    assert another_order(FixMessage("F", {41: "A-1", 37: "X-9"}), RESTING_BUY) is None
    assert another_order(FixMessage("G", {41: "A-1"}), RESTING_BUY) is None
