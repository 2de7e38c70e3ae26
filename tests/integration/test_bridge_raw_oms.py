"""The bridge against an OMS we did not write: `RawOms` (simplefix framing, its own session
handling) through the gateway to the simulator and back. Every message the bridge sends it
is checked against the stock FIX44.xml at QuickFIX's strictest settings."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import simplefix

from fixgw.testing import LocalStack, free_port, wait_until
from tests.counterparties.raw_oms import RawOms, Received
from tests.integration.conftest import StackFactory

pytestmark = pytest.mark.integration

PASSWORD = "raw-oms-secret"
NOW = "20261125-10:00:00.000"


def bridged(
    make_stack: StackFactory,
    comp_ids: Iterable[str],
    without_password: Iterable[str] = (),
    **bridge: object,
) -> tuple[LocalStack, int]:
    """The simulator and a gateway whose bridge has a session with `PASSWORD` for each of
    `comp_ids`, one with none for each of `without_password` (and the `bridge` keys given),
    started; and the bridge's port."""
    port = free_port()
    stack = make_stack(start=False)
    stack.metrics_port = free_port()
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        **bridge,
        "sessions": [
            *(
                {"comp_id": comp_id, "password": {"env": "FIXGW_TEST_OMS_PASSWORD"}}
                for comp_id in comp_ids
            ),
            *({"comp_id": comp_id} for comp_id in without_password),
        ],
    }
    stack.env = {"FIXGW_TEST_OMS_PASSWORD": PASSWORD}
    stack.start_sim()
    stack.start_gateway()
    return stack, port


@pytest.fixture
def raw(make_stack: StackFactory) -> Iterator[tuple[LocalStack, RawOms]]:
    comp_id = f"RAW-{uuid.uuid4().hex[:8]}"
    stack, port = bridged(make_stack, [comp_id])
    oms = RawOms(port, comp_id, password=PASSWORD)
    oms.start()
    yield stack, oms
    oms.logout()
    oms.check_valid()


def order(cl_ord_id: str, side: str, qty: str, price: str | None = None) -> list[tuple[int, str]]:
    body = [(11, cl_ord_id), (21, "1"), (55, "BTC/USD"), (54, side), (60, NOW), (38, qty)]
    body.append((40, "2" if price else "1"))
    if price:
        body.append((44, price))
    return body


def report(oms: RawOms, cl_ord_id: str, exec_type: str, timeout: float = 10) -> Received:
    return oms.wait_for(
        lambda m: m.msg_type == "8" and m.get(11) == cl_ord_id and m.get(150) == exec_type,
        timeout,
    )


def levels(msg: Received) -> set[tuple[str, ...]]:
    """A refresh's entries: (MDEntryType, MDEntryPx, MDEntrySize) in a W, with the
    MDUpdateAction first in an X (and no size for a delete)."""
    delimiter = 279 if msg.msg_type == "X" else 269
    entries: list[list[str]] = []
    for tag, value in msg.pairs:
        if tag == delimiter:
            entries.append([])
        if entries and tag in (279, 269, 270, 271):
            entries[-1].append(value)
    return {tuple(e) for e in entries}


def test_an_order_fills_is_cancelled_and_asked_about_in_plain_fix44(
    raw: tuple[LocalStack, RawOms],
) -> None:
    _, oms = raw
    oms.send("D", order("R-1", "1", "1.5", "30010"))  # takes the 1.2 ask, rests 0.3
    assert report(oms, "R-1", "A")[39] == "A"
    order_id = report(oms, "R-1", "0")[37]
    fill = report(oms, "R-1", "F")
    assert (fill[39], fill[32], fill[31], fill[151]) == ("1", "1.2", "30010", "0.3")
    assert Decimal(fill[14]) + Decimal(fill[151]) == Decimal(fill[38])

    oms.send("H", [(11, "R-1"), (790, "ask-1"), (55, "BTC/USD"), (54, "1")])
    status = report(oms, "R-1", "I")
    assert (status[37], status[39], status[14], status[790]) == (order_id, "1", "1.2", "ask-1")

    oms.send("F", [(41, "R-1"), (11, "R-1-CXL"), (55, "BTC/USD"), (54, "1"), (60, NOW)])
    assert report(oms, "R-1-CXL", "6")[41] == "R-1"
    canceled = report(oms, "R-1-CXL", "4")
    assert (canceled[39], canceled[151], canceled[14]) == ("4", "0", "1.2")


def test_a_status_request_under_the_clordid_of_the_omss_cancel_reports_the_canceled_order(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """FIX 4.4 has the OMS know the order by its cancel's ClOrdID once the cancel is taken
    (OrigClOrdID: "ClOrdID of the previous non rejected order"), and the bridge told it
    Canceled under that id: not "unknown order", which would say rejected, nothing filled."""
    _, oms = raw
    oms.send("D", order("KNOWN-1", "1", "1.5", "30010"))  # takes the 1.2 ask, rests 0.3
    order_id = report(oms, "KNOWN-1", "0")[37]
    report(oms, "KNOWN-1", "F")
    oms.send("F", [(41, "KNOWN-1"), (11, "KNOWN-1-C"), (55, "BTC/USD"), (54, "1"), (60, NOW)])
    report(oms, "KNOWN-1-C", "4")

    oms.send("H", [(11, "KNOWN-1-C"), (790, "ask-c"), (55, "BTC/USD"), (54, "1")])
    status = report(oms, "KNOWN-1-C", "I")
    assert (status[37], status[39], status[790]) == (order_id, "4", "ask-c")
    assert (Decimal(status[14]), Decimal(status[151]), Decimal(status[6])) == (
        Decimal("1.2"),
        Decimal("0"),
        Decimal("30010"),
    )
    assert status.get(103) is None


def test_market_data_full_then_incremental_in_plain_fix44(
    raw: tuple[LocalStack, RawOms],
) -> None:
    stack, oms = raw
    request = [(262, "md-1"), (263, "1"), (264, "0"), (265, "1")]
    groups = [(267, "2"), (269, "0"), (269, "1"), (146, "1"), (55, "BTC/USD")]
    oms.send("V", request + groups)
    first = oms.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "md-1")
    assert levels(first) == {("0", "29990", "1.5"), ("0", "29980", "0.3"), ("1", "30010", "1.2")}
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="2", price="30500")
    change = oms.wait_for(lambda m: m.msg_type == "X" and m.get(262) == "md-1")
    assert levels(change) == {("0", "1", "30500", "2")}
    oms.send("V", [(262, "md-1"), (263, "2"), (264, "0"), *groups])


def test_a_resend_asked_for_gap_fills_market_data_and_resends_order_reports(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """An OMS that asks for a resend (after a reconnect, say) was sent its old W and X again,
    PossDupFlag=Y under their old MDReqID: quotes no longer true, which an OMS reusing the
    MDReqID applies. Market data is gap-filled; order reports are resent."""
    _, oms = raw
    groups = [(267, "2"), (269, "0"), (269, "1"), (146, "1"), (55, "BTC/USD")]
    oms.send("V", [(262, "md-old"), (263, "1"), (264, "0"), (265, "1"), *groups])
    snapshot = oms.wait_for(lambda m: m.msg_type == "W")
    oms.send("D", order("RS-1", "1", "0.1", "29000"))
    new = report(oms, "RS-1", "0")
    change = oms.wait_for(lambda m: m.msg_type == "X" and m.seq > new.seq)  # RS-1 on the book
    already = len(oms.received)

    oms.send("2", [(7, 1), (16, 0)])
    resent = oms.wait_for(
        lambda m: m.get(43) == "Y" and m.get(11) == "RS-1" and m.get(150) == "0", after=already
    )
    assert resent.seq == new.seq
    for quotes in (snapshot, change):
        oms.wait_for(
            lambda m, seq=quotes.seq: (
                m.msg_type == "4"  # type: ignore[misc]
                and m.get(123) == "Y"
                and m.seq <= seq < int(m[36])
            ),
            after=already,
        )
    resent_quotes = [m for m in oms.received[already:] if m.msg_type in "WXY" and m.get(43)]
    assert resent_quotes == []


def metrics(stack: LocalStack) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def test_an_oms_gone_without_its_logout_is_a_warning_and_the_sessions_logged_on_are_a_gauge(
    make_stack: StackFactory,
) -> None:
    """An OMS killed (its connection dropped, no Logout) was logged exactly as one that
    logged out on purpose, at info, and nothing counted the sessions logged on: "the OMS is
    gone" could not be told or alerted on."""
    crashing, leaving = (f"RAW-{uuid.uuid4().hex[:8]}" for _ in range(2))
    stack, port = bridged(make_stack, [crashing, leaving])

    def logged_on() -> float:
        line = next(x for x in metrics(stack).splitlines() if x.startswith("fixgw_bridge_oms_lo"))
        return float(line.split()[-1])

    def said(oms: str) -> list[tuple[str, str]]:
        assert stack.gateway is not None
        lines = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
        return [(x["level"], x["event"]) for x in lines if x.get("oms") == oms]

    assert logged_on() == 0
    first, second = (
        RawOms(port, crashing, password=PASSWORD),
        RawOms(port, leaving, password=PASSWORD),
    )
    first.start()
    second.start()
    wait_until(lambda: logged_on() == 2, 10, "both sessions counted")
    first.close()  # as a killed OMS: the connection drops, no Logout
    wait_until(lambda: logged_on() == 1, 10, "the lost session uncounted")
    wait_until(lambda: len(said(crashing)) == 2, 10, "the lost session said")
    assert said(crashing)[1][0] == "warning"
    assert said(crashing)[1][1].startswith("OMS session ended without its Logout")
    second.logout()
    wait_until(lambda: logged_on() == 0, 10, "the session that logged out uncounted")
    wait_until(lambda: len(said(leaving)) == 2, 10, "the logout said")
    assert said(leaving) == [("info", "OMS logged on"), ("info", "OMS logged out")]


def test_a_reject_from_the_oms_is_logged_and_counted_never_answered_with_a_reject(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """A counterparty that answers rejects with rejects, as the bridge did, ping-pongs with
    one that does the same for ever."""
    stack, oms = raw
    oms.send("j", [(45, "2"), (372, "8"), (380, "0"), (58, "we cannot take your report")])
    oms.send("3", [(45, "3"), (373, "99"), (58, "nor this one")])
    oms.send("H", [(11, "AFTER-THE-REJECTS"), (55, "BTC/USD"), (54, "1")])
    report(oms, "AFTER-THE-REJECTS", "I")  # answered, after anything said about the rejects
    assert oms.messages("j") == [] and oms.messages("3") == []
    counted = metrics(stack)
    for msg_type in ("j", "3"):
        assert (
            f'fixgw_bridge_rejects_received_total{{msg_type="{msg_type}",oms="{oms.sender}"}} 1.0'
        ) in counted
    assert stack.gateway is not None
    log = stack.gateway.log()
    assert "we cannot take your report" in log and "nor this one" in log


def test_a_group_whose_num_in_group_is_wrong_is_rejected_at_session_level(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """SessionRejectReason 16, RefTagID the group's count tag; the message is not acted on."""
    _, oms = raw
    request = [(262, "md-miscounted"), (263, "1"), (264, "0")]
    seq = oms.send("V", [*request, (267, "3"), (269, "0"), (146, "1"), (55, "BTC/USD")])
    reject = oms.wait_for(lambda m: m.msg_type == "3" and m.get(45) == str(seq))
    assert (reject[373], reject[371], reject[372]) == ("16", "267", "V")
    parties = [(453, "2"), (448, "desk-7"), (447, "D"), (452, "11")]
    seq = oms.send("D", order("MISCOUNTED-1", "1", "0.1", "29000") + parties)
    reject = oms.wait_for(lambda m: m.msg_type == "3" and m.get(45) == str(seq))
    assert (reject[373], reject[371], reject[372]) == ("16", "453", "D")
    oms.send("H", [(11, "MISCOUNTED-1"), (55, "BTC/USD"), (54, "1")])
    assert report(oms, "MISCOUNTED-1", "I")[39] == "8"  # never placed: unknown
    assert not [m for m in oms.received if m.get(262) == "md-miscounted"]


def test_bids_and_trades_only_as_asked_in_plain_fix44(raw: tuple[LocalStack, RawOms]) -> None:
    """Entry types as the OMS asks for them (269), incremental and full, trades included."""
    stack, oms = raw
    wanted = [(267, "2"), (269, "0"), (269, "2"), (146, "1"), (55, "BTC/USD")]
    oms.send("V", [(262, "md-x"), (263, "1"), (264, "1"), (265, "1"), *wanted])
    oms.send("V", [(262, "md-w"), (263, "1"), (264, "1"), (265, "0"), *wanted])
    for md_req_id in ("md-x", "md-w"):
        first = oms.wait_for(lambda m, r=md_req_id: m.msg_type == "W" and m.get(262) == r)
        assert levels(first) == {("0", "29990", "1.5")}
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="0.5", price="29990")
    trade = oms.wait_for(lambda m: m.msg_type == "X" and ("0", "2", "29990", "0.5") in levels(m))
    assert trade.get(262) == "md-x"
    # the trade and the bid it took from come apart (two streams), in either order
    full = oms.wait_for(
        lambda m: m.msg_type == "W" and {("2", "29990", "0.5"), ("0", "29990", "1")} <= levels(m)
    )
    assert full.get(262) == "md-w"
    sent = [m for m in oms.received if m.get(262) in ("md-x", "md-w")]
    assert "1" not in {t for m in sent for t in m.all(269)}  # no offers: not asked for


@pytest.mark.parametrize(
    ("attribute", "named"),
    [
        ([(59, "3")], "TimeInForce (59) = 3 (IOC)"),
        ([(59, "4")], "TimeInForce (59) = 4 (FOK)"),
        ([(18, "1 6")], "ExecInst (18) = 6 (Participate don't initiate)"),
        ([(110, "0.1")], "MinQty (110) = 0.1"),
        ([(453, "1"), (448, "CLR"), (447, "D"), (452, "4")], "PartyRole (452) = 4"),
    ],
    ids=["IOC", "FOK", "post-only", "MinQty", "clearing-firm"],
)
def test_an_attribute_the_venue_cannot_carry_is_refused_in_plain_fix44(
    raw: tuple[LocalStack, RawOms], attribute: list[tuple[int, str]], named: str
) -> None:
    _, oms = raw
    oms.send("D", order("ATTR-1", "1", "0.5", "29000") + attribute)
    refused = report(oms, "ATTR-1", "8")
    assert (refused[39], refused[103], refused[37]) == ("8", "11", "NONE")
    assert named in refused[58]
    oms.send("H", [(11, "ATTR-1"), (55, "BTC/USD"), (54, "1")])
    assert report(oms, "ATTR-1", "I")[103] == "5"  # unknown order: it never went on


def test_what_cannot_change_the_outcome_is_taken_and_a_market_ioc_is_the_venues_own(
    raw: tuple[LocalStack, RawOms],
) -> None:
    _, oms = raw
    notes = [(1, "ACC-7"), (528, "A"), (529, "1"), (1028, "Y"), (58, "from the blotter")]
    parties = [(453, "2"), (448, "C-42"), (447, "D"), (452, "3"), (448, "T-9"), (447, "D")]
    parties.append((452, "11"))
    oms.send("D", [*order("KEPT-1", "1", "0.5", "29000"), (59, "1"), *notes, *parties])
    assert report(oms, "KEPT-1", "0")[39] == "0"
    market = [(t, v) for t, v in order("IOC-1", "1", "0.5") if t != 44]
    oms.send("D", [*market, (59, "3")])  # fills 0.5 of the 1.2 offered at 30010
    fill = report(oms, "IOC-1", "F")
    assert (fill[39], fill[14], fill[31]) == ("2", "0.5", "30010")


@pytest.mark.parametrize(
    ("fault", "body", "ref_tag", "reason"),
    [
        (
            "missing required tag",
            [(t, v) for t, v in order("BAD-1", "1", "1") if t != 54],
            "54",
            "1",
        ),
        ("value not in the enum", [*order("BAD-1", "Z", "1")], "54", "5"),
        ("malformed value", [*order("BAD-1", "1", "one")], "38", "6"),
        ("tag without a value", [*order("BAD-1", "1", "1"), (58, "")], "58", "4"),
    ],
)
def test_a_malformed_order_gets_a_session_reject_and_is_not_placed(
    raw: tuple[LocalStack, RawOms],
    fault: str,
    body: list[tuple[int, str]],
    ref_tag: str,
    reason: str,
) -> None:
    _, oms = raw
    seq = oms.send("D", body)
    reject = oms.wait_for(lambda m: m.msg_type == "3" and m.get(45) == str(seq))
    assert (reject[372], reject[371], reject[373]) == ("D", ref_tag, reason), fault
    oms.send("H", [(11, "BAD-1"), (55, "BTC/USD"), (54, "1")])
    assert report(oms, "BAD-1", "I")[103] == "5"  # never placed: an unknown order
    assert not oms.messages("5"), "the session holds"


def test_a_halt_whose_reason_and_halters_name_hold_control_characters_refuses_as_halted(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """An SOH would end Text (58): the halt's refusal goes out with each control character
    written as a visible escape, not as the gateway failing on the order."""
    stack, oms = raw
    with stack.client("desk\x01A") as client:
        client.request("halt", reason="stop\x01now\nplease")
    oms.send("D", order("HALT-1", "1", "0.1", "29000"))
    refused = report(oms, "HALT-1", "8")
    assert (refused[39], refused[103]) == ("8", "0")  # rejected, OrdRejReason 0: halted
    assert refused[58].startswith("halted: trading is halted (by api client ")
    assert "(desk\\x01A): stop\\x01now\\x0aplease); `resume` lifts it" in refused[58]
    assert not oms.messages("j")  # not "the gateway failed on this message"


LATIN1_E = b"\xe9"
"""`é` in Latin-1: a byte that is not UTF-8 on its own."""
MD_REQUEST = [(263, "0"), (264, "1"), (267, "1"), (269, "0"), (146, "1"), (55, "BTC/USD")]


@pytest.mark.parametrize(
    ("msg_type", "body", "ref_tag"),
    [
        ("D", [(11, b"ORD-" + LATIN1_E), *order("x", "1", "0.1", "29000")[1:]], "11"),
        ("D", [*order("ORD-2", "1", "0.1", "29000"), (5001, b"x" + LATIN1_E)], "5001"),
        ("H", [(11, b"ORD-" + LATIN1_E), (55, "BTC/USD"), (54, "1")], "11"),
        ("V", [(262, b"md-" + LATIN1_E), *MD_REQUEST], "262"),
    ],
    ids=["D-ClOrdID", "D-unlisted-field", "H-ClOrdID", "V-MDReqID"],
)
def test_a_value_that_is_not_utf8_gets_a_session_reject_and_is_not_acted_on(
    raw: tuple[LocalStack, RawOms], msg_type: str, body: list[tuple[int, str | bytes]], ref_tag: str
) -> None:
    """It could be neither echoed nor sent on: it went unanswered, and the gateway's log line
    about it raised in turn, out of the loop's callback."""
    stack, oms = raw
    seq = oms.send(msg_type, body)
    reject = oms.wait_for(lambda m: m.msg_type == "3" and m.get(45) == str(seq))
    assert (reject[372], reject[371], reject[373]) == (msg_type, ref_tag, "6")
    assert "not UTF-8" in reject[58]
    oms.send("H", [(11, "AFTER-LATIN1"), (55, "BTC/USD"), (54, "1")])
    assert report(oms, "AFTER-LATIN1", "I")[39] == "8"  # the session holds
    assert [m.msg_type for m in oms.received if m.msg_type not in ("A", "0")] == ["3", "8"]
    with stack.client() as gw:
        assert gw.request("orders", all=True)["orders"] == []
    assert stack.gateway is not None
    log = stack.gateway.log()
    assert "surrogates not allowed" not in log and "Exception in callback" not in log


def test_free_text_in_latin1_is_taken_as_it_is_neither_read_nor_echoed(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """A European OMS may write its Text in Latin-1."""
    _, oms = raw
    oms.send("D", [*order("TEXT-1", "1", "0.1", "29000"), (58, b"caf" + LATIN1_E)])
    assert report(oms, "TEXT-1", "0")[39] == "0"
    assert not oms.messages("3")


CANCEL = [(41, "OBO-1"), (11, "OBO-1-CXL"), (55, "BTC/USD"), (54, "1"), (60, NOW)]
ROUTED_BACK_TAGS = (128, 129, 145)
"""DeliverToCompID, DeliverToSubID, DeliverToLocationID."""


@pytest.mark.parametrize(
    ("msg_type", "body", "header", "routed_back"),
    [
        ("D", order("OBO-1", "1", "0.1", "29000"), [(115, "CLIENTX")], ["CLIENTX", None, None]),
        (
            "F",
            CANCEL,
            [(115, "CLIENTX"), (116, "TRADER-7"), (144, "LDN")],
            ["CLIENTX", "TRADER-7", "LDN"],
        ),
        ("V", [(262, "md-obo"), *MD_REQUEST], [(116, "TRADER-7")], [None, "TRADER-7", None]),
        (
            "D",
            order("OBO-1", "1", "0.1", "29000"),
            [(128, "BROKER-Y"), (129, "DESK-2"), (145, "NYC")],
            [None, None, None],
        ),
    ],
    ids=["D-on-behalf-of", "F-on-behalf-of-all-three", "V-on-behalf-of-sub", "D-deliver-to"],
)
def test_a_message_on_behalf_of_or_to_a_third_party_is_refused_and_the_refusal_routed_back(
    raw: tuple[LocalStack, RawOms],
    msg_type: str,
    body: list[tuple[int, str]],
    header: list[tuple[int, str]],
    routed_back: list[str | None],
) -> None:
    """FIX 4.4 third-party routing: the answer goes back with DeliverTo* naming the OMS's
    OnBehalfOf*, so a hub can route it. The bridge keeps no routing per order for its
    reports, so it places nothing for a third party: the order went on, and its reports back
    to the hub without DeliverToCompID (and an order sent on with DeliverToCompID, too)."""
    stack, oms = raw
    seq = oms.send(msg_type, body, header=header)
    refused = oms.wait_for(lambda m: m.msg_type == "j" and m.get(45) == str(seq))
    assert (refused[372], refused[380]) == (msg_type, "0")
    assert refused.get(379) == (None if msg_type == "V" else dict(body)[11])
    assert "third-party routing is not supported" in refused[58]
    assert f"({header[0][0]}) = {header[0][1]}" in refused[58]
    assert [refused.get(tag) for tag in ROUTED_BACK_TAGS] == routed_back
    oms.send("H", [(11, "OBO-1"), (55, "BTC/USD"), (54, "1")])
    assert report(oms, "OBO-1", "I")[103] == "5"  # never placed: an unknown order
    assert [m.msg_type for m in oms.received if m.msg_type not in ("A", "0")] == ["j", "8"]
    with stack.client() as gw:
        assert gw.request("orders", all=True)["orders"] == []


def test_a_wrong_password_with_a_byte_that_is_not_utf8_is_refused(
    make_stack: StackFactory,
) -> None:
    """Its check raised, and a logon whose check raised was taken."""
    port = free_port()
    stack = make_stack(start=False)
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": "RAW-PW", "password": {"env": "FIXGW_TEST_OMS_PASSWORD"}}],
    }
    stack.env = {"FIXGW_TEST_OMS_PASSWORD": PASSWORD}
    stack.start_sim()
    stack.start_gateway()
    intruder = RawOms(port, "RAW-PW")
    intruder.connect()
    intruder.send("A", [(98, 0), (108, 30), (554, b"guess" + LATIN1_E)])
    assert intruder.closed.wait(10), "the bridge did not end the connection"
    assert not intruder.messages("A")
    assert stack.gateway is not None
    assert "OMS logon refused" in stack.gateway.log()


def logged(stack: LocalStack, event: str) -> list[dict[str, Any]]:
    assert stack.gateway is not None
    lines = [json.loads(line) for line in stack.gateway.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event", "").startswith(event)]


def test_a_logon_under_compids_the_bridge_has_no_session_for_is_dropped_and_logged(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """QuickFIX drops the connection itself, with no Logout: the OMS is told nothing, the
    operator which CompIDs were tried and from where, never the password the logon held."""
    stack, oms = raw
    for sender, target in (("RAW-TYPO", "FIXGW"), (oms.sender, "FIXGW-TYPO")):
        stranger = RawOms(oms.port, sender, target)
        stranger.connect()
        stranger.send("A", [(98, 0), (108, 30), (554, PASSWORD)])
        assert stranger.closed.wait(10), "the bridge did not end the connection"
        stranger.close()
        assert stranger.received == []

    def refusals() -> list[tuple[str, str, str]]:
        return [
            (line["sender_comp_id"], line["target_comp_id"], line["peer"])
            for line in logged(stack, "OMS logon refused: no session for its CompIDs")
        ]

    wait_until(lambda: len(refusals()) == 2, 10, "both refusals logged")
    assert refusals() == [
        ("RAW-TYPO", "FIXGW", "127.0.0.1"),
        (oms.sender, "FIXGW-TYPO", "127.0.0.1"),
    ]
    assert stack.gateway is not None
    assert PASSWORD not in stack.gateway.log()


def test_a_logon_in_another_fix_version_is_logged_as_such(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """QuickFIX knows a session by its BeginString too: a FIX.4.2 Logon with the right
    CompIDs was said to be a second connection of a session logged on nowhere else."""
    stack, oms = raw
    oms.logout()
    stranger = RawOms(oms.port, oms.sender, password=PASSWORD)
    stranger.connect()
    logon = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.2"), (35, "A"), (49, oms.sender), (56, "FIXGW"), (34, 1)):
        logon.append_pair(tag, value, header=True)
    logon.append_utc_timestamp(52, header=True)
    for tag, value in ((98, 0), (108, 30), (554, PASSWORD)):
        logon.append_pair(tag, value)
    stranger.send_raw(logon.encode())
    assert stranger.closed.wait(10), "the bridge did not end the connection"
    stranger.close()
    event = "OMS logon refused: its BeginString is not FIX.4.4"
    wait_until(lambda: len(logged(stack, event)) == 1, 10, "the refusal logged")
    line = logged(stack, event)[0]
    assert (line["begin_string"], line["sender_comp_id"]) == ("FIX.4.2", oms.sender)
    assert stack.gateway is not None
    assert PASSWORD not in stack.gateway.log()


def test_a_second_connection_of_a_session_logged_on_is_dropped_logged_and_the_first_holds(
    raw: tuple[LocalStack, RawOms],
) -> None:
    stack, oms = raw
    second = RawOms(oms.port, oms.sender, password=PASSWORD)
    second.connect()
    second.send("A", [(98, 0), (108, 30), (554, PASSWORD)])
    assert second.closed.wait(10), "the bridge did not end the second connection"
    second.close()
    event = "OMS connection dropped: its session is held by another connection"
    wait_until(lambda: len(logged(stack, event)) == 1, 10, "the drop logged")
    assert logged(stack, event)[0]["sender_comp_id"] == oms.sender
    oms.send("D", order("STILL-1", "1", "0.1", "29000"))
    assert report(oms, "STILL-1", "0")[39] == "0"


def test_a_message_with_a_garbled_checksum_is_dropped_then_taken_when_resent(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """QuickFIX drops it unread; the OMS's next message shows the gap, the bridge asks for
    it (ResendRequest), and the order resent (PossDupFlag) is placed, once."""
    stack, oms = raw
    garbled = oms.send("D", order("GARBLED-1", "1", "0.1", "29000"), garble_checksum=True)
    oms.send("H", [(11, "GARBLED-1"), (55, "BTC/USD"), (54, "1")])
    resend = oms.wait_for(lambda m: m.msg_type == "2")
    assert resend[7] == str(garbled)
    new = report(oms, "GARBLED-1", "0")
    assert new[39] == "0"
    report(oms, "GARBLED-1", "I")
    placed = [m for m in oms.messages("8") if m.get(11) == "GARBLED-1" and m.get(150) == "0"]
    assert len(placed) == 1
    with stack.client() as gw:
        at_exchange = gw.request("orders", from_exchange=True)["orders"]
    assert [o["order_id"] for o in at_exchange] == [new[37]]


def test_an_unknown_msg_type_and_an_unsupported_one(raw: tuple[LocalStack, RawOms]) -> None:
    _, oms = raw
    seq = oms.send("ZZ", [(58, "what is this")])
    reject = oms.wait_for(lambda m: m.msg_type == "3" and m.get(45) == str(seq))
    assert (reject[373], reject[372]) == ("11", "ZZ")  # invalid MsgType
    oms.send("q", [(11, "MASS-1"), (530, "7"), (60, NOW)])  # OrderMassCancelRequest
    reject = oms.wait_for(lambda m: m.msg_type == "j")
    assert (reject[372], reject[380], reject[379]) == ("q", "3", "MASS-1")


def test_the_session_holds_on_heartbeats_and_test_requests(make_stack: StackFactory) -> None:
    port = free_port()
    stack = make_stack(start=False)
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": "RAW-HB"}],
    }
    stack.start_sim()
    stack.start_gateway()
    oms = RawOms(port, "RAW-HB", heartbeat_s=1)
    oms.start()
    oms.wait_for(lambda m: m.msg_type == "0", timeout=5)  # the bridge's heartbeat
    oms.heartbeats_paused = True  # silent: the bridge asks whether the OMS is there
    test_request = oms.wait_for(lambda m: m.msg_type == "1", timeout=10)
    answered = oms.wait_for(lambda m: m.msg_type == "0" and m.seq > test_request.seq, timeout=5)
    assert answered is not None
    oms.heartbeats_paused = False
    time.sleep(3)
    oms.send("H", [(11, "STILL-THERE"), (55, "BTC/USD"), (54, "1")])
    assert report(oms, "STILL-THERE", "I")[39] == "8"
    assert not oms.messages("5")
    oms.logout()
    oms.check_valid()


@pytest.mark.parametrize(
    ("extra", "entry_types", "reason"),
    [
        ([(266, "N")], ["0", "1"], "7"),  # a book by order: the gateway's is by level
        ([], ["0", "4"], "8"),  # opening price: not offered
        ([(263, "0")], ["2"], "4"),  # a snapshot of trades: no history
        ([(336, "1")], ["0"], "9"),  # a trading session: there are none
        ([(547, "Y")], ["0"], "C"),  # implicit deletes: the bridge sends them
    ],
    ids=["by-order", "opening-price", "trade-snapshot", "session", "implicit-delete"],
)
def test_market_data_the_gateway_cannot_give_is_refused_in_plain_fix44(
    raw: tuple[LocalStack, RawOms],
    extra: list[tuple[int, str]],
    entry_types: list[str],
    reason: str,
) -> None:
    _, oms = raw
    request = {262: "md-no", 263: "1", 264: "0", **dict(extra)}
    types = [(267, str(len(entry_types))), *((269, t) for t in entry_types)]
    oms.send("V", [*request.items(), *types, (146, "1"), (55, "BTC/USD")])
    refused = oms.wait_for(lambda m: m.msg_type == "Y" and m.get(262) == "md-no")
    assert refused[281] == reason and refused[58]
    assert not [m for m in oms.received if m.msg_type in ("W", "X")]


def test_cancel_and_replace_refusals_say_why_in_plain_fix44(raw: tuple[LocalStack, RawOms]) -> None:
    _, oms = raw
    oms.send("D", order("DONE-1", "1", "0.2", "30010"))  # fills against the seeded offer
    assert report(oms, "DONE-1", "F")[39] == "2"
    cancel = [(41, "DONE-1"), (11, "DONE-CXL"), (55, "BTC/USD"), (54, "1"), (60, NOW)]
    oms.send("F", cancel)
    too_late = oms.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "DONE-CXL")
    assert (too_late[102], too_late[434], too_late[39]) == ("0", "1", "2")
    oms.send("F", [(41, "NEVER-1"), (11, "NEVER-CXL"), (55, "BTC/USD"), (54, "1"), (60, NOW)])
    unknown = oms.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "NEVER-CXL")
    assert (unknown[102], unknown[37]) == ("1", "NONE")
    oms.send("D", order("REST-1", "1", "0.2", "29000"))
    report(oms, "REST-1", "0")
    replace = [(41, "REST-1"), (11, "REPL-1"), (55, "BTC/USD"), (54, "1"), (60, NOW)]
    oms.send("G", [*replace, (38, "0.3"), (40, "2"), (44, "29001")])
    refused = oms.wait_for(lambda m: m.msg_type == "9" and m.get(11) == "REPL-1")
    assert (refused[434], refused[102], refused[39]) == ("2", "2", "0")


def test_an_answer_never_tells_an_orders_state_before_the_report_of_it(
    raw: tuple[LocalStack, RawOms],
) -> None:
    """A second cancel right behind the first, a cancel of an order that fills at once, an
    order sent again (PossResend) right behind itself: each is answered from the gateway's
    state, which may already hold an event whose report waits for the journal write. The
    answer goes behind that report, so each OrderCancelReject and status answer says the
    OrdStatus of the last report of its order the OMS had: never Canceled, Filled or New
    before the report of it. The second cancel is refused as pending (3) or, once the
    Canceled went first, too late (0). A close race: rounds at the pauses that showed it."""
    _, oms = raw

    def cancel(cl_ord_id: str, cancel_id: str) -> list[tuple[int, str]]:
        return [(41, cl_ord_id), (11, cancel_id), (55, "BTC/USD"), (54, "1"), (60, NOW)]

    for i in range(30):
        pause = (0, 0.001, 0.002, 0.004, 0.008)[i % 5]
        oms.send("D", order(f"W{i}", "1", "0.01", "29000"))
        oms.send("F", cancel(f"W{i}", f"W{i}-C1"))
        time.sleep(pause)
        oms.send("F", cancel(f"W{i}", f"W{i}-C2"))
        oms.send("D", order(f"X{i}", "1", "0.01", "30010"))  # fills against the seeded offer
        time.sleep(pause)
        oms.send("F", cancel(f"X{i}", f"X{i}-C"))
        oms.send("D", order(f"R{i}", "1", "0.01", "29000"))
        time.sleep(pause)
        oms.send("D", order(f"R{i}", "1", "0.01", "29000"), header=[(97, "Y")])
        for answered in (f"W{i}-C2", f"X{i}-C"):
            oms.wait_for(lambda m, c=answered: m.msg_type == "9" and m.get(11) == c)
        report(oms, f"R{i}", "I")

    told: dict[str, str] = {}  # each order's OrdStatus, as its last report said
    out_of_order: list[str] = []
    second_cancels: set[tuple[str, str]] = set()
    for m in oms.received:
        if m.msg_type == "8" and m[150] != "I":
            told[m.get(41) or m[11]] = m[39]
            continue
        if m.msg_type == "9" or (m.msg_type == "8" and m[150] == "I"):
            named = m.get(41) or m[11]
            if m[39] != told.get(named):
                out_of_order.append(f"{m} (its last report said {told.get(named)})")
        if m.msg_type == "9" and m[11].endswith("-C2"):
            second_cancels.add((m[102], m[39]))
    assert out_of_order == []
    assert second_cancels <= {("3", "6"), ("0", "4")}


def test_one_sessions_unsubscribe_leaves_the_book_of_a_session_whose_ids_join_to_the_same_text(
    make_stack: StackFactory,
) -> None:
    """`DESK` with MDReqID `A:1` and `DESK:A` with `1` (':' is legal in both): DESK ends its
    subscription, and DESK:A's book goes on changing."""
    first, second = "DESK", "DESK:A"
    stack, port = bridged(make_stack, [first, second])
    desk, desk_a = RawOms(port, first, password=PASSWORD), RawOms(port, second, password=PASSWORD)
    desk.start()
    desk_a.start()
    book = [(264, "0"), (265, "0"), (267, "2"), (269, "0"), (269, "1"), (146, "1"), (55, "BTC/USD")]
    desk.send("V", [(262, "A:1"), (263, "1"), *book])
    desk_a.send("V", [(262, "1"), (263, "1"), *book])
    desk.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "A:1")
    desk_a.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "1")
    desk.send("V", [(262, "A:1"), (263, "2"), *book])
    desk.send("V", [(262, "A:2"), (263, "0"), *book])  # answered once the unsubscribe is done
    desk.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "A:2")
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="2", price="30500")
    changed = desk_a.wait_for(
        lambda m: (
            m.msg_type in "WY"
            and m.get(262) == "1"
            and ("30500" in m.all(270) or m.msg_type == "Y")
        )
    )
    assert changed.msg_type == "W"
    assert ("1", "30500", "2") in levels(changed)
    desk.logout()
    desk_a.logout()
    desk.check_valid()
    desk_a.check_valid()
