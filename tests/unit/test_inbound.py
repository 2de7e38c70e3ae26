"""The inbound translators, fed captured dialect messages (tests/fixtures/okcoin)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from fixgw.domain import (
    BookSide,
    CancelRejectReason,
    ExecKind,
    LevelAction,
    LogoutReason,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
)
from fixgw.errors import DialectError
from fixgw.fix.message import (
    SOH,
    FixMessage,
    FixParseError,
    GroupMiscounted,
    encode,
    parse,
    redact,
)
from fixgw.venues import groups_read, venue_dictionary
from fixgw.venues.okcoin import inbound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okcoin"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
GROUPS = groups_read(venue_dictionary("okcoin"))


def captured(name: str) -> FixMessage:
    raw = (FIXTURES / f"{name}.fix").read_text().strip().replace("|", SOH)
    return parse(raw, GROUPS)


def test_new_order_acknowledged() -> None:
    r = inbound.execution_report(captured("execution_report_new"), NOW)
    assert (r.kind, r.status, r.cl_ord_id, r.side, r.order_type) == (
        ExecKind.NEW,
        OrderStatus.NEW,
        "maker-1",
        Side.SELL,
        OrderType.LIMIT,
    )
    assert (r.qty, r.price, r.cum_qty, r.leaves_qty) == (D("2"), D("70"), D(0), D("2"))
    assert r.last_qty is None and r.order_id
    assert r.ts == datetime(2026, 11, 25, 6, 4, 15, 386000, tzinfo=UTC)


def test_partial_fill_then_fill_of_a_market_order() -> None:
    partial = inbound.execution_report(captured("execution_report_partial_fill"), NOW)
    fill = inbound.execution_report(captured("execution_report_fill"), NOW)
    assert (partial.kind, partial.status, partial.last_qty, partial.last_px, partial.cum_qty) == (
        ExecKind.PARTIAL_FILL,
        OrderStatus.PARTIALLY_FILLED,
        D("1.5"),
        D("29990"),
        D("1.5"),
    )
    assert (fill.kind, fill.status, fill.last_qty, fill.last_px, fill.avg_px, fill.leaves_qty) == (
        ExecKind.FILL,
        OrderStatus.FILLED,
        D("0.5"),
        D("29980"),
        D("29987.5"),
        D(0),
    )
    assert fill.order_type is OrderType.MARKET and fill.price is None


def test_cancel_report_names_the_cancel_and_the_order() -> None:
    r = inbound.execution_report(captured("execution_report_canceled"), NOW)
    assert (r.kind, r.status, r.orig_cl_ord_id, r.leaves_qty) == (
        ExecKind.CANCELED,
        OrderStatus.CANCELED,
        "resting-1",
        D(0),
    )
    assert r.cl_ord_id != r.orig_cl_ord_id


def test_reject_with_okcoins_refused_order_id() -> None:
    r = inbound.execution_report(captured("execution_report_rejected_unknown_symbol"), NOW)
    assert (r.kind, r.status, r.reject_reason, r.order_id) == (
        ExecKind.REJECTED,
        OrderStatus.REJECTED,
        RejectReason.UNKNOWN_SYMBOL,
        None,
    )
    assert r.text == "unknown symbol DOGE/USD"


def test_order_status_answer() -> None:
    r = inbound.execution_report(captured("execution_report_order_status"), NOW)
    assert (r.kind, r.status, r.cl_ord_id) == (ExecKind.ORDER_STATUS, OrderStatus.NEW, "resting-1")


def test_cancel_reject_for_an_unknown_order() -> None:
    r = inbound.order_cancel_reject(captured("order_cancel_reject_unknown_order"), NOW)
    assert (r.reason, r.status, r.orig_cl_ord_id, r.text) == (
        CancelRejectReason.UNKNOWN_ORDER,
        OrderStatus.REJECTED,
        "nope",
        "unknown order",
    )
    assert r.ts == NOW  # no TransactTime on this 9: the time it was received


def test_logout_reason_invalid_credentials() -> None:
    msg = captured("logout_invalid_credentials")
    assert inbound.logout_reason(msg) is LogoutReason.INVALID_CREDENTIALS
    assert msg.get(58) == "Rejected Logon Attempt: invalid credentials"


def execution_report(**changes: str) -> FixMessage:
    body = {
        6: "0",
        11: "c1",
        14: "0",
        17: "e1",
        37: "o1",
        38: "1",
        39: "0",
        40: "2",
        44: "10",
        54: "1",
        55: "BTC/USD",
        150: "0",
        151: "1",
    }
    body.update({int(k.strip("t")): v for k, v in changes.items()})
    raw = encode(
        "FIX.4.4", [(35, "8"), (49, "OKSERVER"), (56, "me"), (34, "9")], list(body.items())
    )
    return parse(raw, GROUPS)


FILL_OF_0_2 = {"t150": "F", "t39": "1", "t14": "0.2", "t151": "0.8", "t31": "10", "t32": "0.2"}
"""A fill of 0.2 of an order of 1 (`execution_report`), readable as it is."""


def test_a_report_and_a_cancel_reject_stamped_in_a_leap_second_are_read() -> None:
    """FIX 4.4's UTCTimestamp has second 60 in a UTC leap second; it reads as the last
    instant of second 59, so the report keeps its day and its place among the others."""
    in_the_leap_second = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    fill = inbound.execution_report(
        execution_report(**FILL_OF_0_2, t60="20261231-23:59:60.250"), NOW
    )
    assert (fill.last_qty, fill.ts) == (D("0.2"), in_the_leap_second)
    reject = inbound.order_cancel_reject(
        message(
            "9",
            [(11, "c2"), (41, "c1"), (37, "o1"), (39, "0"), (434, "1"), (60, "20261231-23:59:60")],
        ),
        NOW,
    )
    assert reject.ts == in_the_leap_second


def test_fix44_trade_exec_type_reads_as_a_fill() -> None:
    r = inbound.execution_report(
        execution_report(t150="F", t39="2", t14="1", t151="0", t31="10", t32="1"), NOW
    )
    assert (r.kind, r.last_qty, r.last_px) == (ExecKind.TRADE, D("1"), D("10"))


@pytest.mark.parametrize(
    ("change", "tag"),
    [
        ({"t150": "Z"}, 150),
        ({"t54": "7"}, 54),
        ({"t14": "lots"}, 14),
        ({"t14": "NaN"}, 14),
        ({"t17": ""}, 17),
        ({"t60": "yesterday"}, 60),
        ({**FILL_OF_0_2, "t32": "-0.2"}, 32),
        ({**FILL_OF_0_2, "t32": "0"}, 32),
        ({**FILL_OF_0_2, "t151": "-0.1"}, 151),
        ({**FILL_OF_0_2, "t39": "2", "t151": "0.8"}, 151),
        ({"t14": "-0.1"}, 14),
        ({"t6": "-1"}, 6),
        ({"t38": "-1"}, 38),
    ],
    ids=[
        "exec-type",
        "side",
        "cum-qty-text",
        "cum-qty-nan",
        "no-exec-id",
        "transact-time",
        "last-qty-below-0",
        "last-qty-0",
        "leaves-qty-below-0",
        "filled-with-leaves-left",
        "cum-qty-below-0",
        "avg-px-below-0",
        "order-qty-below-0",
    ],
)
def test_unreadable_report_raises_one_typed_error_naming_the_tag(
    change: dict[str, str], tag: int
) -> None:
    msg = execution_report(**change)
    with pytest.raises(DialectError) as err:
        inbound.execution_report(msg, NOW)
    assert (err.value.msg_type, err.value.tag, err.value.raw) == ("8", tag, msg.raw)


def test_unknown_reject_reason_reads_as_other_rather_than_losing_the_reject() -> None:
    r = inbound.execution_report(execution_report(t150="8", t39="8", t103="7"), NOW)
    assert r.reject_reason is RejectReason.OTHER


def test_groups_are_cut_out_by_their_spec() -> None:
    raw = encode(
        "FIX.4.4",
        [(35, "X"), (34, "2")],
        [
            (262, "md1"),
            (268, "2"),
            (279, "0"),
            (269, "0"),
            (270, "100"),
            (271, "1"),
            (55, "BTC/USD"),
            (279, "2"),
            (269, "1"),
            (270, "101"),
            (55, "BTC/USD"),
        ],
    )
    msg = parse(raw, GROUPS)
    assert msg.get(262) == "md1"
    assert [dict(e) for e in msg.group(268)] == [
        {279: "0", 269: "0", 270: "100", 271: "1", 55: "BTC/USD"},
        {279: "2", 269: "1", 270: "101", 55: "BTC/USD"},
    ]


def test_garbage_is_a_parse_error_and_secrets_are_masked_for_logs() -> None:
    with pytest.raises(FixParseError):
        parse("not fix at all")
    with pytest.raises(FixParseError, match="MsgType"):
        parse(f"8=FIX.4.4{SOH}9=5{SOH}")
    logon = encode("FIX.4.4", [(35, "A")], [(553, "key"), (554, "secret"), (1, "key,secret")])
    assert "secret" not in redact(logon)
    assert "553=key" in redact(logon)


def message(msg_type: str, body: list[tuple[int, str]]) -> FixMessage:
    return parse(encode("FIX.4.4", [(35, msg_type), (34, "5")], body), GROUPS)


def test_account_info_with_okcoins_joined_balance_and_the_china_sites_quote_currency() -> None:
    r = inbound.account_info_response(
        message(
            "Z1001",
            [
                (8000, "a1"),
                (1, "key"),
                (15, "CNY"),
                (8001, "100.5/20"),
                (8101, "1.5"),
                (8104, "0.5"),
                (8103, "100.5"),
                (8106, "3"),
            ],
        ),
        NOW,
    )
    assert (r.acc_req_id, r.currency, r.balance) == ("a1", "CNY", [D("100.5"), D("20")])
    assert {c: (b.free, b.frozen) for c, b in r.balances.items()} == {
        "BTC": (D("1.5"), D("0.5")),
        "CNY": (D("100.5"), D("3")),
    }


@pytest.mark.parametrize("coin", ["BTC", "LTC"])
def test_a_quote_currency_named_like_a_coin_leaves_that_coins_own_figures(coin: str) -> None:
    """The quote pair (8103/8106) was keyed by Currency (15): named BTC, it overwrote what
    FreeBTC/FrozenBTC (8101/8104) said. It is kept apart, as `QUOTE`."""
    r = inbound.account_info_response(
        message(
            "Z1001",
            [
                (8000, "a1"),
                (15, coin),
                (8101, "1"),
                (8102, "5"),
                (8104, "2"),
                (8105, "6"),
                (8103, "3"),
                (8106, "4"),
            ],
        ),
        NOW,
    )
    assert {c: (b.free, b.frozen) for c, b in r.balances.items()} == {
        "BTC": (D("1"), D("2")),
        "LTC": (D("5"), D("6")),
        "QUOTE": (D("3"), D("4")),
    }
    assert r.currency == coin


def test_errors_name_the_request_they_answer() -> None:
    exc = inbound.exception_response(message("E1000", [(8000, "a1"), (58, "busy")]), NOW)
    assert (exc.source, exc.acc_req_id, exc.text) == ("exception", "a1", "busy")
    bmr = inbound.business_message_reject(
        message("j", [(45, "7"), (372, "V"), (379, "md-1"), (380, "3"), (58, "no")]), NOW
    )
    assert (bmr.source, bmr.md_req_id, bmr.ref_seq_num, bmr.reason) == (
        "business_reject",
        "md-1",
        7,
        "3",
    )
    rej = inbound.session_reject(
        message("3", [(45, "9"), (371, "58"), (372, "D"), (373, "1")]), NOW
    )
    assert (rej.source, rej.ref_seq_num, rej.ref_msg_type, rej.reason) == (
        "session_reject",
        9,
        "D",
        "1 (tag 58)",
    )


def test_a_business_reject_naming_neither_type_nor_sequence_number_names_a_clordid() -> None:
    """FIX 4.4 requires RefMsgType; without it (and RefSeqNum) BusinessRejectRefID is all
    there is, read as an ExceptionResponse's ClOrdID."""
    bmr = inbound.business_message_reject(message("j", [(379, "o-1"), (380, "5")]), NOW)
    assert (bmr.cl_ord_id, bmr.ref_msg_type, bmr.md_req_id) == ("o-1", None, None)
    named = inbound.business_message_reject(message("j", [(45, "7"), (379, "x"), (380, "5")]), NOW)
    assert named.cl_ord_id is None  # the message sent as 7 says what was refused


BOOK_ENTRIES = [
    *((269, "0"), (270, "29990"), (271, "1.5")),
    *((269, "1"), (270, "30010"), (271, "1.2")),
]
EXTRA_ENTRIES = [
    *((269, "4"), (270, "29000"), (271, "10")),  # an opening price
    *((269, "B"), (270, "29000"), (271, "10")),  # a trade volume
    *((269, "1"), (270, "30020"), (271, "0")),  # an ask of size 0
    *((269, "2"), (270, "30000"), (54, "1")),  # a trade without a size
    *((269, "2"), (270, "30001"), (271, "0.1"), (54, "2")),
]
PASSED_OVER = (
    "MDEntryType 4 (opening price)",
    "MDEntryType B (trade volume)",
    "an ask of size 0 (no level)",
    "a trade without MDEntrySize (271)",
)
"""One per entry, in the message's order."""


def snapshot_entries(*entries: tuple[int, str]) -> FixMessage:
    count = sum(1 for tag, _ in entries if tag == 269)
    return message("W", [(262, "md1"), (55, "BTC/USD"), (268, str(count)), *entries])


def test_a_snapshot_keeps_its_book_and_trades_and_names_what_it_passes_over() -> None:
    r = inbound.market_data_snapshot(snapshot_entries(*BOOK_ENTRIES, *EXTRA_ENTRIES), NOW)
    assert (r.bids, r.asks) == ([(D("29990"), D("1.5"))], [(D("30010"), D("1.2"))])
    assert [(t.price, t.size, t.aggressor) for t in r.trades] == [(D("30001"), D("0.1"), Side.SELL)]
    assert r.passed_over == PASSED_OVER


def test_an_incremental_refresh_keeps_its_changes_and_names_what_it_passes_over() -> None:
    entries = [
        *((279, "0"), (269, "4"), (55, "BTC/USD"), (270, "29000"), (271, "10")),
        *((279, "0"), (269, "0"), (270, "29995"), (271, "0.7")),  # BTC/USD: the entry before
        *((279, "0"), (269, "2"), (270, "30000")),
        *((279, "0"), (269, "2"), (270, "30001"), (271, "0.1")),
    ]
    r = inbound.market_data_incremental(message("X", [(262, "md1"), (268, "4"), *entries]), NOW)
    assert [(u.price, u.size) for u in r.levels["BTC/USD"]] == [(D("29995"), D("0.7"))]
    assert [(t.price, t.size) for t in r.trades["BTC/USD"]] == [(D("30001"), D("0.1"))]
    assert r.passed_over == ("MDEntryType 4 (opening price)", "a trade without MDEntrySize (271)")


@pytest.mark.parametrize("venue", ["okcoin", "fix44"])
def test_entries_are_read_to_the_end_of_their_group_whatever_standard_fields_they_carry(
    venue: str,
) -> None:
    """FIX 4.4's MDFullGrp and MDIncGrp in their order: Currency (15) between MDEntryPx and
    MDEntrySize, MDEntryID (278) before Symbol, the Instrument's NoSecurityAltID group (454)
    inside the entry, NumberOfOrders (346) and MDEntryPositionNo (290) after. The group
    ends where it does, whatever the venue's dictionary lists."""
    groups = groups_read(venue_dictionary(venue))
    full = [
        *((269, "0"), (270, "29990"), (15, "USD"), (271, "1.5"), (346, "4"), (290, "1")),
        *((269, "1"), (270, "30010"), (15, "USD"), (271, "1.2"), (346, "2"), (290, "1")),
    ]
    w = encode("FIX.4.4", [(35, "W")], [(262, "md1"), (55, "BTC/USD"), (268, "2"), *full])
    r = inbound.market_data_snapshot(parse(w, groups), NOW)
    assert (r.bids, r.asks) == ([(D("29990"), D("1.5"))], [(D("30010"), D("1.2"))])
    incremental = [
        *((279, "0"), (269, "0"), (278, "b9"), (55, "BTC/USD")),
        *((454, "2"), (455, "XBTUSD"), (456, "8"), (455, "BTCUSD"), (456, "8")),
        *((270, "29995"), (15, "USD"), (271, "1"), (346, "3"), (290, "1")),
        *((279, "2"), (269, "1"), (278, "a1"), (55, "BTC/USD"), (270, "30010"), (290, "1")),
    ]
    x = encode("FIX.4.4", [(35, "X")], [(262, "md1"), (268, "2"), *incremental])
    u = inbound.market_data_incremental(parse(x, groups), NOW)
    assert [(c.action, c.side, c.price, c.size) for c in u.levels["BTC/USD"]] == [
        (LevelAction.NEW, BookSide.BID, D("29995"), D("1")),
        (LevelAction.DELETE, BookSide.ASK, D("30010"), D(0)),
    ]


VENUE_TAG = (9001, "v")
"""A venue's own field, which no dictionary the session reads with lists."""


@pytest.mark.parametrize("venue", ["okcoin", "fix44"])
def test_a_field_no_dictionary_lists_stays_in_its_entry_while_entries_are_due(venue: str) -> None:
    """NoMDEntries says 2: a tag that is neither a member nor a body field of the message,
    after the first entry's fields, is passed over in that entry, and the second entry is
    read, the ask of a snapshot and the delete of an update."""
    groups = groups_read(venue_dictionary(venue))
    book = [*BOOK_ENTRIES[:3], VENUE_TAG, *BOOK_ENTRIES[3:]]
    w = encode("FIX.4.4", [(35, "W")], [(262, "md1"), (55, "BTC/USD"), (268, "2"), *book])
    r = inbound.market_data_snapshot(parse(w, groups), NOW)
    assert (r.bids, r.asks) == ([(D("29990"), D("1.5"))], [(D("30010"), D("1.2"))])
    update = [
        *((279, "0"), (269, "0"), (55, "BTC/USD"), (270, "29995"), (271, "1")),
        VENUE_TAG,
        *((279, "2"), (269, "1"), (55, "BTC/USD"), (270, "30010")),
    ]
    x = encode("FIX.4.4", [(35, "X")], [(262, "md1"), (268, "2"), *update])
    u = inbound.market_data_incremental(parse(x, groups), NOW)
    assert [(c.action, c.side, c.price) for c in u.levels["BTC/USD"]] == [
        (LevelAction.NEW, BookSide.BID, D("29995")),
        (LevelAction.DELETE, BookSide.ASK, D("30010")),
    ]


@pytest.mark.parametrize("venue", ["okcoin", "fix44"])
@pytest.mark.parametrize(
    ("msg_type", "body", "names"),
    [
        ("W", [(262, "md1"), (55, "BTC/USD"), (268, "3"), *BOOK_ENTRIES], (262, "md1")),
        ("W", [(262, "md1"), (55, "BTC/USD"), (268, "1"), *BOOK_ENTRIES], (262, "md1")),
        (
            "X",
            [(262, "md1"), (268, "2"), (279, "2"), (269, "1"), (55, "BTC/USD"), (270, "30010")],
            (262, "md1"),
        ),
        (
            "8",
            [
                *((37, "o1"), (11, "c1"), (17, "e1"), (150, "0"), (39, "0"), (55, "BTC/USD")),
                *((54, "1"), (14, "0"), (151, "1"), (6, "0")),
                *((453, "2"), (448, "desk-7"), (447, "D"), (452, "11")),
            ],
            (11, "c1"),
        ),
    ],
    ids=["W-fewer-entries", "W-more-entries", "X-fewer-entries", "8-parties-short"],
)
def test_a_message_whose_group_does_not_add_up_is_not_read(
    venue: str, msg_type: str, body: list[tuple[int, str]], names: tuple[int, str]
) -> None:
    """Entries that are not as many as the NumInGroup says cannot be told apart: the
    message, of whatever type, is unreadable, never applied as read; what was read of it
    still names the request or order it is about."""
    raw = encode("FIX.4.4", [(35, msg_type)], body)
    with pytest.raises(GroupMiscounted) as err:
        parse(raw, groups_read(venue_dictionary(venue)))
    tag, value = names
    assert err.value.message.get(tag) == value


def test_a_trade_whose_side_is_neither_buy_nor_sell_is_a_trade_with_no_aggressor() -> None:
    """Side is read for the aggressor only; FIX 4.4's others (7, Undisclosed, say) name
    none. The trade, and the one beside it, are still trades."""
    entries = [
        *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30000"), (271, "0.1"), (54, "1")),
        *((279, "0"), (269, "2"), (270, "30001"), (271, "0.2"), (54, "7")),
    ]
    r = inbound.market_data_incremental(message("X", [(262, "md1"), (268, "2"), *entries]), NOW)
    assert [(t.price, t.aggressor) for t in r.trades["BTC/USD"]] == [
        (D("30000"), Side.BUY),
        (D("30001"), None),
    ]
    assert r.passed_over == ("a trade's Side other than buy or sell (no aggressor)",)


def test_an_incremental_new_or_change_of_size_0_is_a_delete() -> None:
    """Several FIX 4.4 venues say a level is gone so; OKCoin's sizes are absolute. A new
    of size 0 may be of a level the book never held: the book decides."""
    entries = [
        *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "0")),
        *((279, "0"), (269, "1"), (270, "30010"), (271, "0.000")),
        *((279, "2"), (269, "1"), (270, "30020")),
        *((279, "0"), (269, "1"), (270, "30030"), (271, "0.5")),
    ]
    r = inbound.market_data_incremental(message("X", [(262, "md1"), (268, "4"), *entries]), NOW)
    assert [(u.action, u.side, u.price, u.size) for u in r.levels["BTC/USD"]] == [
        (LevelAction.DELETE, BookSide.BID, D("29990"), D(0)),
        (LevelAction.DELETE_IF_HELD, BookSide.ASK, D("30010"), D(0)),
        (LevelAction.DELETE, BookSide.ASK, D("30020"), D(0)),
        (LevelAction.NEW, BookSide.ASK, D("30030"), D("0.5")),
    ]
    assert r.passed_over == ()


def test_a_price_or_size_is_read_in_one_form_however_the_venue_writes_it() -> None:
    """A client keying its book by the text of a price finds a level named `029990.0` in
    the snapshot and `29990.00` in its delete under one key: `29990`."""
    snapshot = inbound.market_data_snapshot(
        snapshot_entries(
            *((269, "0"), (270, "029990.0"), (271, "1.50")),
            *((269, "0"), (270, "29980."), (271, ".5")),
            *((269, "1"), (270, "30010"), (271, "1.20")),
            *((269, "2"), (270, "30000.000"), (271, "0.10")),
        ),
        NOW,
    )
    assert [(str(p), str(s)) for p, s in snapshot.bids + snapshot.asks] == [
        ("29990", "1.5"),
        ("29980", "0.5"),
        ("30010", "1.2"),
    ]
    assert [(str(t.price), str(t.size)) for t in snapshot.trades] == [("30000", "0.1")]
    entries = [
        *((279, "1"), (269, "0"), (55, "BTC/USD"), (270, "29990"), (271, "2.0")),
        *((279, "2"), (269, "0"), (270, "29990.00"), (271, "0")),
        *((279, "0"), (269, "1"), (270, "30100.0"), (271, "-0")),
        *((279, "0"), (269, "2"), (270, "30000.50"), (271, "1.000")),
    ]
    update = inbound.market_data_incremental(
        message("X", [(262, "md1"), (268, "4"), *entries]), NOW
    )
    assert [(u.action, str(u.price), str(u.size)) for u in update.levels["BTC/USD"]] == [
        (LevelAction.CHANGE, "29990", "2"),
        (LevelAction.DELETE, "29990", "0"),
        (LevelAction.DELETE_IF_HELD, "30100", "0"),
    ]
    assert [(str(t.price), str(t.size)) for t in update.trades["BTC/USD"]] == [("30000.5", "1")]


@pytest.mark.parametrize(
    "entry",
    [
        [(269, "Z"), (270, "29000"), (271, "10")],  # no FIX version defines Z
        [(269, "0"), (270, "29000")],  # a bid without a size
        [(269, "2"), (271, "1")],  # a trade without a price
    ],
    ids=["unknown-entry-type", "bid-without-size", "trade-without-price"],
)
def test_what_cannot_be_read_still_makes_the_snapshot_unreadable(
    entry: list[tuple[int, str]],
) -> None:
    msg = snapshot_entries(*BOOK_ENTRIES, *entry)
    with pytest.raises(DialectError) as err:
        inbound.market_data_snapshot(msg, NOW)
    assert err.value.msg_type == "W"
