"""An existing OMS speaking standard FIX 4.4 through the bridge to the simulator and back:
a real QuickFIX initiator as the OMS, the gateway's acceptor, the exchange session."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
import quickfix as fix

from fixgw.api.client import ApiError
from fixgw.bridge.acceptor import BridgeAcceptor, OmsHappening, OmsInbound
from fixgw.config import BridgeConfig, BridgeSessionConfig, standard_fix44_dictionary
from fixgw.fix.message import FixMessage, parse
from fixgw.fix.qf import Inbox
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import EventLog, StackFactory, in_own_process
from tests.integration.faultproxy import FaultProxy
from tests.integration.oms import Oms

pytestmark = pytest.mark.integration

PASSWORD = "oms-secret"
NOW = "20261125-10:00:00.000"


@pytest.fixture
def bridged(make_stack: StackFactory, tmp_path: Path) -> Iterator[tuple[LocalStack, Oms]]:
    comp_id = f"OMS-{uuid.uuid4().hex[:8]}"
    port = free_port()
    stack = make_stack(start=False, risk={"symbols": {"LTC/USD": {"sides": ["sell"]}}})
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [
            {"comp_id": comp_id, "password": {"env": "FIXGW_TEST_OMS_PASSWORD"}},
        ],
    }
    stack.env = {"FIXGW_TEST_OMS_PASSWORD": PASSWORD}
    stack.start_sim()
    stack.start_gateway()
    oms = Oms(tmp_path / comp_id, port, comp_id, PASSWORD)
    oms.start()
    oms.wait_logged_on()
    yield stack, oms
    oms.stop()


def new_order(oms: Oms, cl_ord_id: str, side: str, qty: str, price: str | None = None) -> None:
    fields = {11: cl_ord_id, 55: "BTC/USD", 54: side, 38: qty, 60: NOW, 40: "2" if price else "1"}
    if price:
        fields[44] = price
    oms.send("D", fields)


def test_an_order_fills_and_the_oms_sees_standard_reports_under_its_own_ids(
    bridged: tuple[LocalStack, Oms],
) -> None:
    _, oms = bridged
    new_order(oms, "OMS-1", "1", "1.5", "30010")  # takes the whole 1.2 ask, rests 0.3
    pending = oms.report("OMS-1", "A")
    assert pending[39] == "A" and pending[37] == "NONE"
    new = oms.report("OMS-1", "0")
    assert new[39] == "0" and new[37] != "NONE"
    fill = oms.report("OMS-1", "F")
    assert (fill[39], fill[32], fill[31]) == ("1", "1.2", "30010")
    assert (Decimal(fill[14]), Decimal(fill[151]), Decimal(fill[6])) == (
        Decimal("1.2"),
        Decimal("0.3"),
        Decimal("30010"),
    )
    assert Decimal(fill[14]) + Decimal(fill[151]) == Decimal(fill[38])


def test_cancel_replace_and_status_requests(bridged: tuple[LocalStack, Oms]) -> None:
    _, oms = bridged
    new_order(oms, "REST-1", "1", "0.5", "29000")
    order_id = oms.report("REST-1", "0")[37]

    oms.send("H", {11: "REST-1", 55: "BTC/USD", 54: "1"})
    status = oms.report("REST-1", "I")
    assert (status[39], status[37], status[151]) == ("0", order_id, "0.5")

    oms.send("G", {41: "REST-1", 11: "REPL-1", 55: "BTC/USD", 54: "1", 60: NOW, 38: "1", 40: "2"})
    reject = oms.wait_for(lambda m: m.msg_type == "9" and m.fields[11] == "REPL-1").fields
    assert (reject[434], reject[41], reject[37], reject[102]) == ("2", "REST-1", order_id, "2")
    assert "cannot replace" in reject[58]

    oms.send("F", {41: "REST-1", 11: "CXL-1", 55: "BTC/USD", 54: "1", 60: NOW, 38: "0.5"})
    canceled = oms.report("CXL-1", "4")
    assert (canceled[41], canceled[39], canceled[151]) == ("REST-1", "4", "0")
    oms.report("CXL-1", "6")  # pending cancel came first, under the cancel's id too

    oms.send("F", {41: "REST-1", 11: "CXL-2", 55: "BTC/USD", 54: "1", 60: NOW, 38: "0.5"})
    too_late = oms.wait_for(lambda m: m.msg_type == "9" and m.fields[11] == "CXL-2").fields
    assert (too_late[434], too_late[39], too_late[102]) == ("1", "4", "0")


def test_a_cancel_reject_says_too_late_or_unknown_order_in_cxl_rej_reason(
    bridged: tuple[LocalStack, Oms],
) -> None:
    """FIX's CxlRejReason: 0 too late to cancel (the order is filled or canceled), 1 unknown
    order; 99 (other) only when neither is the reason."""
    _, oms = bridged
    new_order(oms, "DONE-1", "1", "0.5", "30010")  # fills against the seeded ask
    assert oms.report("DONE-1", "F")[39] == "2"
    oms.send("F", {41: "DONE-1", 11: "DONE-CXL", 55: "BTC/USD", 54: "1", 60: NOW})
    too_late = oms.wait_for(lambda m: m.msg_type == "9" and m.fields[11] == "DONE-CXL").fields
    assert (too_late[102], too_late[39], too_late[434]) == ("0", "2", "1")
    oms.send("F", {41: "NEVER-PLACED", 11: "NEVER-CXL", 55: "BTC/USD", 54: "1", 60: NOW})
    unknown = oms.wait_for(lambda m: m.msg_type == "9" and m.fields[11] == "NEVER-CXL").fields
    assert (unknown[102], unknown[37]) == ("1", "NONE")


def test_an_order_the_gateway_refuses_comes_back_rejected_with_the_standard_reason(
    bridged: tuple[LocalStack, Oms],
) -> None:
    _, oms = bridged
    oms.send("D", {11: "NOPE-1", 55: "LTC/USD", 54: "1", 38: "1", 60: NOW, 40: "2", 44: "70"})
    rejected = oms.report("NOPE-1", "8")
    assert rejected[39] == "8" and "risk_rejected" in rejected[58]
    assert rejected[103] == "3"  # order exceeds limit
    oms.send("D", {11: "NOPE-2", 55: "BTC/USD", 54: "1", 38: "1", 60: NOW, 40: "3"})
    unsupported = oms.report("NOPE-2", "8")
    assert "OrdType" in unsupported[58] and unsupported[103] == "11"
    oms.send("D", {11: "NOPE-3", 55: "XRP/USD", 54: "1", 38: "1", 60: NOW, 40: "1"})
    assert oms.report("NOPE-3", "8")[103] == "1"  # unknown symbol
    oms.send("H", {11: "NEVER-SENT", 55: "BTC/USD", 54: "1"})
    unknown = oms.report("NEVER-SENT", "I")
    assert (unknown[39], unknown[103]) == ("8", "5")  # unknown order


@pytest.mark.parametrize(
    ("attribute", "named"),
    [
        ({59: "3"}, "TimeInForce (59) = 3 (IOC)"),
        ({59: "4"}, "TimeInForce (59) = 4 (FOK)"),
        ({18: "6"}, "ExecInst (18) = 6 (Participate don't initiate)"),
    ],
    ids=["IOC", "FOK", "post-only"],
)
def test_an_order_attribute_the_venue_cannot_carry_is_refused_not_dropped(
    bridged: tuple[LocalStack, Oms], attribute: dict[int, str], named: str
) -> None:
    """Sent on without it, the order would rest on the book: the OMS is told, not surprised."""
    stack, oms = bridged
    order = {11: "ATTR-1", 55: "BTC/USD", 54: "1", 38: "0.5", 60: NOW, 40: "2", 44: "29000"}
    oms.send("D", {**order, **attribute})
    refused = oms.report("ATTR-1", "8")
    assert (refused[39], refused[103]) == ("8", "11")  # unsupported order characteristic
    assert named in refused[58]
    with stack.client() as gw:
        assert gw.request("orders", from_exchange=True)["orders"] == []
        assert gw.orders(all=True) == []
    assert not [m for m in oms.seen if m.fields.get(11) == "ATTR-1" and m.fields[150] != "8"]


def test_fields_that_cannot_change_the_outcome_are_taken_and_gtc_is_the_venues_own(
    bridged: tuple[LocalStack, Oms],
) -> None:
    _, oms = bridged
    order = {11: "GTC-1", 55: "BTC/USD", 54: "1", 38: "0.5", 60: NOW, 40: "2", 44: "29000"}
    ignorable = {59: "1", 1: "DESK-7", 21: "1", 528: "A", 58: "from the blotter", 15: "USD"}
    oms.send("D", {**order, **ignorable})
    order_id = oms.report("GTC-1", "0")[37]
    oms.send("H", {11: "GTC-1", 55: "BTC/USD", 54: "1"})
    status = oms.report("GTC-1", "I")
    assert (status[37], status[39], status[151]) == (order_id, "0", "0.5")  # resting


def test_every_execution_report_in_the_oms_session_has_its_own_exec_id(
    bridged: tuple[LocalStack, Oms],
) -> None:
    """OMS engines drop a report whose ExecID they have seen: refusals and answers about an
    unknown order, however often the same ClOrdID comes back, and after a restart too."""
    stack, oms = bridged
    assert stack.gateway is not None
    for _ in range(2):
        oms.send("D", {11: "NOPE", 55: "XRP/USD", 54: "1", 38: "1", 60: NOW, 40: "1"})
        oms.send("H", {11: "NOPE", 55: "BTC/USD", 54: "1"})
    new_order(oms, "MARK-1", "1", "0.1", "29000")
    oms.report("MARK-1", "0")  # after every answer above
    stack.gateway.stop()
    stack.start_gateway()
    oms.wait_logged_on()
    oms.send("D", {11: "NOPE", 55: "XRP/USD", 54: "1", 38: "1", 60: NOW, 40: "1"})
    oms.send("H", {11: "NOPE", 55: "BTC/USD", 54: "1"})
    new_order(oms, "MARK-2", "1", "0.1", "29000")
    oms.report("MARK-2", "0")
    nope = [m.fields for m in oms.seen if m.msg_type == "8" and m.fields[11] == "NOPE"]
    assert sorted(f[150] for f in nope) == ["8"] * 3 + ["I"] * 3
    exec_ids = [m.fields[17] for m in oms.seen if m.msg_type == "8"]
    assert len(set(exec_ids)) == len(exec_ids), exec_ids


def test_an_order_the_oms_sends_again_is_answered_with_its_status_not_placed_twice(
    bridged: tuple[LocalStack, Oms],
) -> None:
    stack, oms = bridged
    order = {11: "AGAIN-1", 55: "BTC/USD", 54: "1", 38: "0.5", 60: NOW, 40: "2", 44: "29000"}
    oms.send("D", order)
    order_id = oms.report("AGAIN-1", "0")[37]

    oms.send("D", {**order, 97: "Y"})  # PossResend: the OMS is not sure it got through
    status = oms.report("AGAIN-1", "I")
    assert (status[39], status[37], status[151]) == ("0", order_id, "0.5")

    oms.send("D", order)  # the same ClOrdID again, not marked as sent before
    duplicate = oms.report("AGAIN-1", "8")
    assert duplicate[103] == "6" and "duplicate_cl_ord_id" in duplicate[58]

    with stack.client() as gw:
        at_exchange = gw.request("orders", from_exchange=True)["orders"]
        assert [o["order_id"] for o in at_exchange] == [order_id]
        (ours,) = [o for o in gw.orders() if o["cl_ord_id"].endswith("AGAIN-1")]
        assert ours["status"] == "new"


def test_a_cancel_the_oms_sends_again_is_not_acted_on_twice(
    bridged: tuple[LocalStack, Oms],
) -> None:
    _, oms = bridged
    new_order(oms, "TWICE-1", "1", "0.5", "29000")
    oms.report("TWICE-1", "0")
    cancel = {41: "TWICE-1", 11: "TWICE-CXL", 55: "BTC/USD", 54: "1", 60: NOW, 38: "0.5"}
    oms.send("F", cancel)
    oms.report("TWICE-CXL", "4")
    oms.send("F", {**cancel, 97: "Y"})  # PossResend, after the order is canceled
    oms.send("H", {11: "TWICE-1", 55: "BTC/USD", 54: "1"})
    assert oms.report("TWICE-1", "I")[39] == "4"
    new_order(oms, "MARK-1", "1", "0.5", "29000")  # through the exchange after the resent cancel
    oms.report("MARK-1", "0")
    assert [m.fields for m in oms.seen if m.msg_type == "9"] == []
    reports = [
        (m.fields[11], m.fields[150])
        for m in oms.seen
        if m.msg_type == "8" and m.fields[11] in ("TWICE-1", "TWICE-CXL")
    ]
    assert reports == [
        ("TWICE-1", "A"),
        ("TWICE-1", "0"),
        ("TWICE-CXL", "6"),
        ("TWICE-CXL", "4"),
        ("TWICE-1", "I"),
    ]


def test_an_api_client_may_not_choose_an_id_that_names_an_oms_order(
    bridged: tuple[LocalStack, Oms],
) -> None:
    """Its events would go to the OMS as the OMS's own, and the OMS's disconnect would
    cancel it."""
    stack, oms = bridged
    prefix = f"{oms.session_id.getSenderCompID().getValue()}-"
    with stack.client() as gw:
        gw.subscribe(["orders"])
        with pytest.raises(ApiError) as refused:
            gw.new_order(
                cl_ord_id=f"{prefix}API-1", symbol="BTC/USD", side="buy", type="market", qty="0.1"
            )
        assert refused.value.code == "invalid_field" and prefix in refused.value.message
        gw.new_order(
            cl_ord_id="API-2", symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="29000"
        )
        EventLog(gw).find("API-2", "order.accepted")
        with pytest.raises(ApiError) as refused:
            gw.cancel_order(cl_ord_id="API-2", cancel_cl_ord_id=f"{prefix}API-2-CXL")
        assert refused.value.code == "invalid_field"
        assert [o["status"] for o in gw.orders() if o["cl_ord_id"] == "API-2"] == ["new"]
    new_order(oms, "AFTER", "1", "0.1", "29000")
    oms.report("AFTER", "0")
    assert not [m.fields for m in oms.seen if m.fields.get(11, "").startswith("API-")]


@pytest.mark.parametrize(
    "restart",
    [None, signal.SIGTERM, signal.SIGKILL],
    ids=["mid-session", "then-a-restart", "then-a-crash"],
)
def test_a_cancel_lost_on_the_way_to_the_exchange_is_answered_with_a_cancel_reject(
    make_stack: StackFactory, tmp_path: Path, restart: signal.Signals | None
) -> None:
    """Reconciliation finds the order still open (mid-session; as the gateway logs out, which
    shows the exchange the gap; or at the logon after a crash): the OMS, in PendingCancel,
    gets one 9 for its cancel, and the order's later reports are no longer sent under that
    cancel's id."""
    # nothing asks about the cancel before the gateway stops, but the logout's gap
    stack = make_stack(start=False, orders={"ack_timeout_s": 0} if restart else {})
    proxy = FaultProxy(stack.sim_port)
    lost: list[dict[int, bytes]] = []

    def lose_the_first_cancel(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]] | None:
        if dict(fields).get(35) == b"F" and not lost:
            lost.append(dict(fields))
            return None
        return fields

    proxy.rewrite_outbound = lose_the_first_cancel
    port = free_port()
    stack.gateway_overrides["session"] = {"port": proxy.port}
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": "OMS-LOST"}],
    }
    stack.start_sim()
    stack.start_gateway()
    oms = Oms(tmp_path / "lost", port, "OMS-LOST")
    oms.start()
    try:
        oms.wait_logged_on()
        new_order(oms, "KEPT-1", "1", "0.5", "29000")
        order_id = oms.report("KEPT-1", "0")[37]
        oms.send("F", {41: "KEPT-1", 11: "KEPT-CXL", 55: "BTC/USD", 54: "1", 60: NOW, 38: "0.5"})
        cancel_seq = int(fix.Session.lookupSession(oms.session_id).getExpectedSenderNum()) - 1
        oms.report("KEPT-CXL", "6")
        wait_until(lambda: lost, 5, "the cancel to be lost")
        if restart is not None:
            # stopped once the OMS's cancel counts as received, so the OMS does not send it
            # again: the restarted gateway must find it lost by itself
            (seqnums,) = (stack.root / "bridge-store").glob("*.seqnums")
            wait_until(
                lambda: int(seqnums.read_text().split(":")[1]) > cancel_seq, 5, "the F stored"
            )
            assert stack.gateway is not None
            stack.gateway.stop(restart)
            Path(stack.socket_path).unlink(missing_ok=True)
            stack.start_gateway()
        reject = oms.wait_for(
            lambda m: m.msg_type == "9" and m.fields[11] == "KEPT-CXL", timeout=30
        ).fields
        assert (reject[41], reject[37], reject[39], reject[434]) == ("KEPT-1", order_id, "0", "1")
        assert "did not reach the exchange" in reject[58]
        with stack.client() as gw:  # canceled after all, by someone else
            wait_until(lambda: gw.status()["ready"], 15, "the open orders to be checked")
            gw.cancel_order(cl_ord_id="OMS-LOST-KEPT-1")
        canceled = oms.report("KEPT-1", "4")
        assert 41 not in canceled and canceled[39] == "4"
        assert len([m for m in oms.seen if m.msg_type == "9"]) == 1
        assert not [
            m.fields
            for m in oms.seen
            if m.fields.get(11) == "KEPT-CXL" and m.msg_type == "8" and m.fields[150] == "4"
        ]
    finally:
        oms.stop()
        proxy.close()


def test_a_cancel_of_an_order_still_in_the_throttle_queue_is_answered_under_its_own_id(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """The gateway cancels such an order there and then, never sending it: the OMS's cancel
    gets its ExecType 4 under the cancel's ClOrdID, so it does not stay pending."""
    port = free_port()
    stack = make_stack(
        start=False, throttle={"limits": {"new_order": {"per_s": 0.1}}, "policy": "queue"}
    )
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": "OMS-Q"}],
    }
    stack.start_sim()
    stack.start_gateway()
    oms = Oms(tmp_path / "queued", port, "OMS-Q")
    oms.start()
    try:
        oms.wait_logged_on()
        new_order(oms, "SENT", "1", "0.1", "29000")  # takes the one token
        oms.report("SENT", "0")
        new_order(oms, "HELD", "1", "0.1", "29000")  # waits 10 s in the queue
        oms.report("HELD", "A")
        cancel = {41: "HELD", 11: "HELD-CXL", 55: "BTC/USD", 54: "1", 60: NOW, 38: "0.1"}
        oms.send("F", cancel)
        canceled = oms.report("HELD-CXL", "4")
        assert (canceled[41], canceled[39], canceled[151]) == ("HELD", "4", "0")
        oms.send("F", {**cancel, 97: "Y"})  # PossResend: already answered, nothing more
        oms.send("H", {11: "HELD", 55: "BTC/USD", 54: "1"})
        assert oms.report("HELD", "I")[39] == "4"
        assert [m.fields for m in oms.seen if m.msg_type == "9"] == []
        assert not [m for m in oms.seen if m.fields.get(11) == "HELD" and m.fields[150] == "4"]
    finally:
        oms.stop()
    assert "11=OMS-Q-HELD" not in (stack.root / "sim-store" / "orders.jsonl").read_text()


def test_a_message_the_bridge_does_not_take_is_answered_with_a_business_reject(
    bridged: tuple[LocalStack, Oms],
) -> None:
    _, oms = bridged
    oms.send("q", {11: "MASS-1", 530: "7", 60: NOW})  # OrderMassCancelRequest
    reject = oms.wait_for(lambda m: m.msg_type == "j").fields
    assert (reject[372], reject[380], reject[379]) == ("q", "3", "MASS-1")
    assert int(reject[45]) > 1 and "not supported" in reject[58]


def test_market_data_is_served_from_the_gateways_book(bridged: tuple[LocalStack, Oms]) -> None:
    stack, oms = bridged
    request = {262: "md-1", 263: "1", 264: "0"}
    groups = {267: ({269: "0"}, {269: "1"}), 146: ({55: "BTC/USD"},)}
    oms.send("V", request, groups)
    first = oms.wait_for(lambda m: m.msg_type == "W" and m.fields[262] == "md-1")
    assert _levels(first) == {("0", "29990", "1.5"), ("0", "29980", "0.3"), ("1", "30010", "1.2")}
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="2", price="30500")
    oms.wait_for(lambda m: m.msg_type == "W" and ("1", "30500", "2") in _levels(m))
    oms.send("V", {262: "md-2", 263: "1", 264: "0"}, {267: ({269: "0"},), 146: ({55: "X/Y"},)})
    unknown = oms.wait_for(lambda m: m.msg_type == "Y" and m.fields[262] == "md-2")
    assert unknown.fields[281] == "0"  # unknown symbol: one the gateway does not serve
    oms.send("V", {262: "md-3", 263: "1", 264: "-1", 265: "1"}, BOOK_REQUEST)
    refused = oms.wait_for(lambda m: m.msg_type == "Y" and m.fields[262] == "md-3")
    assert refused.fields[281] == "5"  # unsupported MarketDepth
    assert not [m for m in oms.seen if m.msg_type in ("W", "X") and m.fields[262] == "md-3"]


BOOK_REQUEST = {267: ({269: "0"}, {269: "1"}), 146: ({55: "BTC/USD"},)}
SEEDED = {("0", "29990", "1.5"), ("0", "29980", "0.3"), ("1", "30010", "1.2")}


@pytest.mark.parametrize("update_type", ["0", "1"], ids=["full", "incremental"])
def test_a_book_that_cannot_be_trusted_goes_to_the_oms_empty_until_it_is_fresh(
    bridged: tuple[LocalStack, Oms], update_type: str
) -> None:
    """Also to an incremental subscriber: the fresh book then comes whole (W), not as X."""
    stack, oms = bridged
    assert stack.sim is not None
    oms.send("V", {262: "md-s", 263: "1", 264: "0", 265: update_type}, BOOK_REQUEST)

    def book(m: FixMessage) -> bool:
        return m.msg_type == "W" and m.fields[262] == "md-s"

    assert _levels(oms.wait_for(book)) == SEEDED
    stack.sim.stop()  # the session drops: the gateway's book is stale
    stale = oms.wait_for(lambda m: book(m) and not _levels(m), timeout=20)
    assert all(_levels(m) in (SEEDED, set()) for m in oms.seen if book(m))
    after = len(oms.seen)
    stack.start_sim()
    fresh = oms.wait_for(
        lambda m: book(m) and any(x is m for x in oms.seen[after:]) and bool(_levels(m)),
        timeout=30,
    )
    assert stale is not fresh and _levels(fresh) == SEEDED


def test_a_market_data_request_while_the_session_is_down_is_refused_at_once_and_holds_nothing(
    bridged: tuple[LocalStack, Oms],
) -> None:
    """bridge.md: a request the gateway cannot serve from the exchange, the session being
    down, is answered with a Y (no 281) at once, as a socket client's `md_subscribe` is
    `not_connected`: nothing is held for it, and nothing of it comes once the session is
    back."""
    stack, oms = bridged
    assert stack.sim is not None and stack.gateway is not None
    stack.sim.stop()
    wait_until(lambda: stack.status()["session"] != "up", 15, "the session to drop")
    oms.send("V", {262: "md-gone", 263: "1", 264: "0"}, BOOK_REQUEST)
    refused = oms.wait_for(lambda m: m.msg_type == "Y" and m.fields[262] == "md-gone")
    assert 281 not in refused.fields
    assert stack.status()["market_data"] == {}
    stack.start_sim()
    wait_until(lambda: stack.status()["ready"], 30, "the session again")
    oms.send("V", {262: "md-later", 263: "0", 264: "0"}, BOOK_REQUEST)  # a snapshot only
    assert _levels(oms.wait_for(lambda m: m.msg_type == "W" and m.fields[262] == "md-later"))
    assert [m.msg_type for m in oms.seen if m.fields.get(262) == "md-gone"] == ["Y"]
    assert stack.status()["market_data"] == {}


def _levels(msg: FixMessage) -> set[tuple[str, str, str]]:
    raw = msg.raw.split("\x01")
    entries, current = set(), []
    for part in raw:
        tag, _, value = part.partition("=")
        if tag in ("269", "270", "271"):
            current.append(value)
            if len(current) == 3:
                entries.add((current[0], current[1], current[2]))
                current = []
    return entries


def _entry_types(msg: FixMessage) -> list[str]:
    return [p[4:] for p in msg.raw.split("\x01") if p.startswith("269=")]


def _changes(msg: FixMessage) -> list[tuple[str, str, str, str | None]]:
    """An incremental refresh's entries: (MDUpdateAction, MDEntryType, price, size)."""
    entries: list[dict[str, str]] = []
    for part in msg.raw.split("\x01"):
        tag, _, value = part.partition("=")
        if tag == "279":
            entries.append({})
        if entries and tag in ("279", "269", "270", "271"):
            entries[-1][tag] = value
    return [(e["279"], e["269"], e["270"], e.get("271")) for e in entries]


class _Refreshes:
    """An OMS's incremental subscription to BTC/USD (MDUpdateType 1), and what it is sent."""

    def __init__(self, oms: Oms, md_req_id: str, depth: str) -> None:
        self.oms, self.md_req_id = oms, md_req_id
        self.taken: list[FixMessage] = []
        oms.send("V", {262: md_req_id, 263: "1", 264: depth, 265: "1"}, BOOK_REQUEST)

    def mine(self, m: FixMessage) -> bool:
        return m.msg_type in ("W", "X") and m.fields.get(262) == self.md_req_id

    def next(self, msg_type: str) -> FixMessage:
        """The next W or X not yet taken."""
        msg = self.oms.wait_for(
            lambda m: (
                self.mine(m) and m.msg_type == msg_type and all(m is not t for t in self.taken)
            )
        )
        self.taken.append(msg)
        return msg


def test_an_incremental_subscriber_gets_the_book_whole_then_each_change(
    bridged: tuple[LocalStack, Oms],
) -> None:
    stack, oms = bridged
    refreshes = _Refreshes(oms, "md-x", "0")
    assert _levels(refreshes.next("W")) == SEEDED
    with stack.client() as gw:
        gw.new_order(
            symbol="BTC/USD", side="sell", type="limit", qty="2", price="30500", cl_ord_id="ask-1"
        )
        assert _changes(refreshes.next("X")) == [("0", "1", "30500", "2")]
        gw.cancel_order(cl_ord_id="ask-1")
        assert _changes(refreshes.next("X")) == [("2", "1", "30500", None)]
    assert [m.msg_type for m in oms.seen if refreshes.mine(m)] == ["W", "X", "X"]


def test_an_incremental_subscriber_of_the_top_level_sees_only_that_level_change(
    bridged: tuple[LocalStack, Oms],
) -> None:
    stack, oms = bridged
    refreshes = _Refreshes(oms, "md-top", "1")
    assert _levels(refreshes.next("W")) == {("0", "29990", "1.5"), ("1", "30010", "1.2")}
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29995")
        better = refreshes.next("X")
        assert _changes(better) == [("2", "0", "29990", None), ("0", "0", "29995", "1")]
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000")
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="0.2", price="30010")
        resized = refreshes.next("X")
        assert _changes(resized) == [("1", "1", "30010", "1.4")]  # the order below depth: none


@pytest.mark.parametrize("update_type", ["0", "1"], ids=["full", "incremental"])
def test_a_subscriber_to_bids_only_gets_bids_only(
    bridged: tuple[LocalStack, Oms], update_type: str
) -> None:
    stack, oms = bridged
    request = {262: "md-bids", 263: "1", 264: "0", 265: update_type}
    oms.send("V", request, {267: ({269: "0"},), 146: ({55: "BTC/USD"},)})
    first = oms.wait_for(lambda m: m.msg_type == "W" and m.fields[262] == "md-bids")
    assert _levels(first) == {("0", "29990", "1.5"), ("0", "29980", "0.3")}
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="2", price="30500")
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000")
    kind = "X" if update_type == "1" else "W"
    changed = oms.wait_for(
        lambda m: m.msg_type == kind and m.fields[262] == "md-bids" and m is not first
    )
    if kind == "X":
        assert _changes(changed) == [("0", "0", "29000", "1")]
    else:
        assert ("0", "29000", "1") in _levels(changed)
    sent = [m for m in oms.seen if m.fields.get(262) == "md-bids"]
    assert {t for m in sent for t in _entry_types(m)} == {"0"}


def test_a_subscriber_to_trades_gets_each_trade(bridged: tuple[LocalStack, Oms]) -> None:
    stack, oms = bridged
    request = {262: "md-trades", 263: "1", 264: "0", 265: "1"}
    oms.send("V", request, {267: ({269: "2"},), 146: ({55: "BTC/USD"},)})
    first = oms.wait_for(lambda m: m.msg_type == "W" and m.fields[262] == "md-trades")
    assert _levels(first) == set()  # no trade seen on this subscription yet
    with stack.client() as gw:
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.2", price="30010")
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="2", price="30500")
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="0.3", price="29990")
    taken = oms.wait_for(lambda m: m.msg_type == "X" and m.fields[262] == "md-trades")
    hit = oms.wait_for(
        lambda m: m.msg_type == "X" and m.fields[262] == "md-trades" and m is not taken
    )
    assert _changes(taken) == [("0", "2", "30010", "0.2")]
    assert _changes(hit) == [("0", "2", "29990", "0.3")]
    assert [m.msg_type for m in oms.seen if m.fields.get(262) == "md-trades"] == ["W", "X", "X"]


def test_market_data_the_gateway_does_not_offer_is_refused(
    bridged: tuple[LocalStack, Oms],
) -> None:
    _, oms = bridged
    symbol = {146: ({55: "BTC/USD"},)}
    oms.send("V", {262: "md-open", 263: "1", 264: "0"}, {267: ({269: "4"},), **symbol})
    refused = oms.wait_for(lambda m: m.msg_type == "Y" and m.fields[262] == "md-open")
    assert refused.fields[281] == "8" and "MDEntryType" in refused.fields[58]
    oms.send("V", {262: "md-history", 263: "0", 264: "0"}, {267: ({269: "2"},), **symbol})
    refused = oms.wait_for(lambda m: m.msg_type == "Y" and m.fields[262] == "md-history")
    assert refused.fields[281] == "4"  # trades as they happen; there is no history to give
    assert not [m for m in oms.seen if m.msg_type in "WX" and m.fields[262].startswith("md-")]


def test_an_oms_that_was_away_gets_what_it_missed_by_resend(
    bridged: tuple[LocalStack, Oms],
) -> None:
    stack, oms = bridged
    new_order(oms, "AWAY-1", "2", "0.4", "30005")  # the best ask now
    oms.report("AWAY-1", "0")
    oms.stop()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        taker = gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.4", price="30005")
        EventLog(gw).find(taker["cl_ord_id"], "order.filled")
    oms.start()
    oms.wait_logged_on()
    fill = oms.report("AWAY-1", "F", timeout=15)
    assert fill[39] == "2" and fill[14] == "0.4"
    assert fill[43] == "Y"  # PossDupFlag: it came by resend


def test_a_wrong_password_is_refused(make_stack: StackFactory, tmp_path: Path) -> None:
    port = free_port()
    stack = make_stack(start=False)
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": "OMS-PW", "password": {"env": "FIXGW_TEST_OMS_PASSWORD"}}],
    }
    stack.env = {"FIXGW_TEST_OMS_PASSWORD": PASSWORD}
    stack.start_sim()
    stack.start_gateway()
    intruder = Oms(tmp_path / "intruder", port, "OMS-PW", "guess")
    intruder.start()
    assert stack.gateway is not None
    gateway = stack.gateway
    try:
        wait_until(lambda: "OMS logon refused" in gateway.log(), 15, "the logon's refusal")
        assert not intruder.logged_on
    finally:
        intruder.stop()
    assert "guess" not in gateway.log()


def test_cancel_on_disconnect_cancels_the_oms_orders_when_its_session_ends(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    port = free_port()
    stack = make_stack(start=False)
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": "OMS-COD", "cancel_on_disconnect": True}],
    }
    stack.start_sim()
    stack.start_gateway()
    oms = Oms(tmp_path / "cod", port, "OMS-COD")
    oms.start()
    oms.wait_logged_on()
    new_order(oms, "COD-1", "1", "0.5", "29000")
    oms.report("COD-1", "0")
    with stack.client() as gw:
        gw.subscribe(["orders"])
        oms.stop()
        canceled = EventLog(gw).find("OMS-COD-COD-1", "order.canceled")
        assert canceled["leaves_qty"] == "0"


def _hold_an_order(root: str) -> None:
    """In a process of its own (QuickFIX's sessions are global to one): the bridge's real
    acceptor, a real OMS, and a loop whose handling of the order is held back. Prints the
    OMS message's MsgSeqNum and what the acceptor's store expected next while the order
    was held and once it was handled."""
    store = Path(root) / "bridge-store"
    config = BridgeConfig(
        port=free_port(), store_dir=str(store), sessions=[BridgeSessionConfig(comp_id="OMS-H")]
    )
    entered, release = threading.Event(), threading.Event()

    def handle(item: OmsInbound) -> None:
        if item.what is OmsHappening.APP:
            entered.set()
            release.wait(10)  # the gateway still at work on the order

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    acceptor = BridgeAcceptor(config, {}, Inbox(loop, handle), standard_fix44_dictionary())
    acceptor.start()
    oms = Oms(Path(root) / "oms", config.port, "OMS-H")
    oms.start()
    oms.wait_logged_on()
    session = fix.Session.lookupSession(oms.session_id)
    sent = int(session.getExpectedSenderNum())
    new_order(oms, "HELD-1", "1", "0.5", "29000")
    assert entered.wait(10), "the order never reached the loop"
    time.sleep(0.3)  # QuickFIX's thread would have stored it by now, had fromApp returned
    (ours,) = [s for s in store.iterdir() if s.name.endswith(".seqnums")]
    while_held = int(ours.read_text().split(":")[1])
    release.set()
    wait_until(lambda: int(ours.read_text().split(":")[1]) > while_held, 5, "the store")
    print(
        json.dumps(
            {"sent": sent, "while_held": while_held, "handled": int(ours.read_text().split(":")[1])}
        )
    )
    os._exit(0)


def test_an_oms_message_counts_as_received_only_once_the_gateway_has_handled_it(
    tmp_path: Path,
) -> None:
    """Otherwise a crash between QuickFIX storing its MsgSeqNum and the gateway acting on it
    would lose an order the OMS believes delivered: it is never resent."""
    seen = in_own_process(__name__, "_hold_an_order", str(tmp_path))
    assert seen["while_held"] == seen["sent"]  # a restart now would ask the OMS for it again
    assert seen["handled"] == seen["sent"] + 1


def _stop_with_an_order_in_flight(root: str) -> None:
    """In a process of its own: the bridge's real acceptor with two OMS sessions, A logged
    on, B not yet. A's first order is held on the loop while A sends a second; the acceptor
    is stopped meanwhile, then B tries to log on. Prints what the loop was handed, what A
    got for its second order, and whether B logged on."""
    config = BridgeConfig(
        port=free_port(),
        store_dir=str(Path(root) / "bridge-store"),
        sessions=[BridgeSessionConfig(comp_id="OMS-A"), BridgeSessionConfig(comp_id="OMS-B")],
    )
    handed: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def handle(item: OmsInbound) -> None:
        if item.what is OmsHappening.APP:
            handed.append(item.raw.split("\x0111=")[1].split("\x01")[0])
            entered.set()
            release.wait(10)

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    acceptor = BridgeAcceptor(config, {}, Inbox(loop, handle), standard_fix44_dictionary())
    acceptor.start()
    a = Oms(Path(root) / "a", config.port, "OMS-A")
    a.start()
    a.wait_logged_on()
    new_order(a, "HELD-1", "1", "0.5", "29000")
    assert entered.wait(10), "the order never reached the loop"
    new_order(a, "AFTER-1", "1", "0.5", "29000")  # QuickFIX's thread waits on HELD-1
    stopping = threading.Thread(target=acceptor.stop)
    stopping.start()
    time.sleep(0.3)
    release.set()
    stopping.join()
    b = Oms(Path(root) / "b", config.port, "OMS-B")
    b.start()
    time.sleep(3)  # it retries every second
    # QuickFIX sent A its Logout before the answer, so A gets it by resend when it is back
    (sent,) = (Path(root) / "bridge-store").glob("*OMS-A.body")
    answers = [m for m in sent.read_text().split("8=FIX.4.4\x01") if "\x01379=AFTER-1\x01" in m]
    print(
        json.dumps(
            {
                "handed": handed,
                "answers": [parse("8=FIX.4.4\x01" + m).fields for m in answers],
                "b_logged_on": b.logged_on,
            }
        )
    )
    os._exit(0)


def test_at_shutdown_no_oms_logs_on_and_a_late_message_is_refused_not_acted_on(
    tmp_path: Path,
) -> None:
    """An OMS that logged on, or a message that came in, while the gateway stops could have
    an order placed by a gateway on its way out."""
    seen = in_own_process(__name__, "_stop_with_an_order_in_flight", str(tmp_path))
    assert seen["handed"] == ["HELD-1"]
    (answer,) = seen["answers"]
    assert (answer["35"], answer["372"], answer["380"]) == ("j", "D", "4")
    assert answer["58"] == "gateway shutting down"
    assert seen["b_logged_on"] is False


class _FailingInbox:
    """A gateway that fails on every OMS message it is handed (a bug). An `Inbox` in all but
    its type: the compiled `Inbox` takes no interpreted subclass, the bridge no more than
    its two methods."""

    def put(self, item: OmsInbound) -> None:
        """Session news (logons): taken, and nothing done with it."""

    def put_and_wait(self, item: OmsInbound, timeout: float) -> bool:
        raise RuntimeError("a bug in the gateway")


def _fail_on_every_message(root: str) -> None:
    """In a process of its own: the bridge's real acceptor, a real OMS, and a gateway that
    fails on whatever it is handed. The OMS sends a reject of its own, then an order. Prints
    what the OMS was answered with."""
    config = BridgeConfig(
        port=free_port(),
        store_dir=str(Path(root) / "bridge-store"),
        sessions=[BridgeSessionConfig(comp_id="OMS-F")],
    )
    failing = cast("Inbox[OmsInbound]", _FailingInbox())
    acceptor = BridgeAcceptor(config, {}, failing, standard_fix44_dictionary())
    acceptor.start()
    oms = Oms(Path(root) / "oms", config.port, "OMS-F")
    oms.start()
    oms.wait_logged_on()
    oms.send("j", {45: "2", 372: "8", 380: "0", 58: "we cannot take your report"})
    new_order(oms, "FAIL-1", "1", "0.5", "29000")
    oms.wait_for(lambda m: m.msg_type == "j" and m.fields[372] == "D")
    answers = [m.fields for m in oms.seen if m.msg_type == "j"]
    print(json.dumps({"answers": answers}))
    os._exit(0)


def test_an_oms_message_the_bridge_fails_on_before_the_gateway_takes_it_is_answered(
    tmp_path: Path,
) -> None:
    """QuickFIX counts it received all the same, so the OMS would never resend it: left
    unanswered, the OMS would wait on the order for ever."""
    seen = in_own_process(__name__, "_fail_on_every_message", str(tmp_path))
    (answer,) = seen["answers"]  # the OMS's own reject is not answered
    assert (answer["372"], answer["380"], answer["379"]) == ("D", "0", "FAIL-1")
    assert answer["58"] == (
        "the gateway failed on this message and may not have acted on it; ask the order's status"
    )
