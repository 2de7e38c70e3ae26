"""Faults between the gateway and the exchange, through a fault-injecting proxy: a dropped
connection, a silent exchange, a slow link, and garbled or unexpected FIX. The gateway
notices each, recovers, and keeps trading."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import EventLog, StackFactory, metric
from tests.integration.faultproxy import FaultProxy, Rewrite, between
from tests.integration.test_reconciliation import OTHER_FIRM, another_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def proxied(make_stack: StackFactory) -> Iterator[tuple[LocalStack, FaultProxy]]:
    stack = make_stack(start=False)
    proxy = between(stack)
    stack.metrics_port = free_port()
    yield stack, proxy
    proxy.close()


def start(stack: LocalStack) -> Client:
    stack.start_sim()
    stack.start_gateway()
    gw = stack.client()
    gw.subscribe(["orders", "session", "errors"])
    return gw


def buy(gw: Client, log: EventLog, cl_ord_id: str) -> dict[str, Any]:
    gw.new_order(cl_ord_id=cl_ord_id, symbol="BTC/USD", side="buy", type="market", qty="0.1")
    return log.find(cl_ord_id, "order.filled")


def test_a_dropped_connection_is_noticed_and_the_session_restored(
    proxied: tuple[LocalStack, FaultProxy],
) -> None:
    stack, proxy = proxied
    with start(stack) as gw:
        log = EventLog(gw)
        proxy.drop()
        assert log.first(lambda e: e["type"] == "session.down")["reason"] == "disconnected"
        log.first(lambda e: e["type"] == "session.up", timeout=15)
        assert proxy.connections >= 2
        assert buy(gw, log, "after-drop")["cum_qty"] == "0.1"


def test_a_silent_exchange_is_dropped_within_two_heartbeats_and_reconnected(
    proxied: tuple[LocalStack, FaultProxy],
) -> None:
    stack, proxy = proxied
    heartbeat_s = 3
    stack.gateway_overrides["session"]["heartbeat_s"] = heartbeat_s
    with start(stack) as gw:
        log = EventLog(gw)
        wait_until(lambda: gw.status()["heartbeat_rtt_ms"] is not None, 10, "a round trip")
        proxy.stall()
        down = log.first(lambda e: e["type"] == "session.down", timeout=20)
        silent = re.fullmatch(r"exchange silent for ([0-9.]+) s", down["reason"])
        assert silent is not None, down  # the gateway's check, not QuickFIX's (2.4 heartbeats)
        assert 2 * heartbeat_s <= float(silent[1]) < 2.4 * heartbeat_s
        # the dead session's last round trip (under a millisecond) read as a healthy link
        assert gw.status()["heartbeat_rtt_ms"] is None
        proxy.resume()
        log.first(lambda e: e["type"] == "session.up", timeout=15)
        assert buy(gw, log, "after-silence")["cum_qty"] == "0.1"


def test_a_slow_link_delays_but_loses_nothing(proxied: tuple[LocalStack, FaultProxy]) -> None:
    stack, proxy = proxied
    with start(stack) as gw:
        log = EventLog(gw)
        proxy.delay_s = 0.3
        for n in range(3):
            assert buy(gw, log, f"slow-{n}")["cum_qty"] == "0.1"
        assert not [e for e in log.seen if e["type"] == "session.down"]
        assert gw.status()["session"] == "up"


def test_orders_held_up_by_an_exchange_not_reading_all_go_out_once_it_reads_again(
    make_stack: StackFactory,
) -> None:
    """The gateway's socket fills while the exchange does not read, so QuickFIX queues the rest
    of the orders itself. Once the exchange reads again the queue goes out at once, not at
    one message per tick of the loop."""
    stack = make_stack(start=False)
    proxy = between(stack, receive_buffer=4096)
    stack.gateway_overrides["session"]["send_buffer_bytes"] = 16384
    orders = [f"held-{n}" for n in range(2000)]
    try:
        with start(stack) as gw:
            log = EventLog(gw)
            proxy.choke()
            for cl_ord_id in orders:
                gw.new_order(
                    cl_ord_id=cl_ord_id,
                    symbol="LTC/USD",
                    side="buy",
                    type="limit",
                    qty="0.1",
                    price="1",
                )
            proxy.release()
            accepted: set[str] = set()

            def all_accepted(event: dict[str, Any]) -> bool:
                if event["type"] == "order.accepted":
                    accepted.add(event["cl_ord_id"])
                return len(accepted) == len(orders)

            log.first(all_accepted, timeout=20)
            assert gw.status()["session"] == "up"
    finally:
        proxy.close()


def garble(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]] | None:
    """Execution reports for orders named `garble-*` come back garbled, each its own way;
    answers to status requests (ExecType I) come through clean."""
    values = dict(fields)
    if values.get(35) != b"8" or values.get(150) == b"I":
        return fields
    match values.get(11):
        case b"garble-unknown-tag":
            return [*fields, (9999, b"venue-extra")]
        case b"garble-bad-value":
            return [(tag, b"Z" if tag == 39 else value) for tag, value in fields]
        case b"garble-unexpected-type":
            return [(tag, b"D" if tag == 35 else value) for tag, value in fields]
        case b"garble-unreadable-qty":
            return [(tag, b"1e" if tag == 14 else value) for tag, value in fields]
    return fields


def test_garbled_or_unexpected_fix_from_the_exchange_never_stops_the_gateway(
    proxied: tuple[LocalStack, FaultProxy],
) -> None:
    stack, proxy = proxied
    rewrite: Rewrite = garble
    proxy.rewrite = rewrite
    with start(stack) as gw:
        log = EventLog(gw)
        assert buy(gw, log, "garble-unknown-tag")["cum_qty"] == "0.1"  # tolerated
        for name in ("bad-value", "unexpected-type", "unreadable-qty"):
            gw.new_order(
                cl_ord_id=f"garble-{name}", symbol="BTC/USD", side="buy", type="market", qty="0.1"
            )
            # its report could not be read, so the gateway asks the exchange about the order
            # it names; the answer (clean) brings the order to its true state
            assert log.find(f"garble-{name}", "order.filled")["cum_qty"] == "0.1"
            wait_until(lambda: gw.status()["ready"], 15, "the open orders to be checked")
        assert buy(gw, log, "clean-after-garbage")["cum_qty"] == "0.1"
        status = gw.status()
        assert status["session"] == "up" and status["callback_errors"] == 0
        rejected = metric(
            stack, 'fixgw_fix_messages_total{direction="out",msg_type="3"}'
        )  # QuickFIX answered the quantity that is no number with a Reject (and fixgw read
        # that report all the same); the OrdStatus the dialect lacks is the dialect's to read
        assert rejected >= 1
        assert metric(stack, 'fixgw_inbound_refused_total{msg_type="8"}') >= 1
        assert stack.gateway is not None and stack.gateway.running
        assert not [e for e in log.seen if e["type"] == "session.down"]
        unreadable = [e["cl_ord_id"] for e in log.seen if e["type"] == "order.anomaly"]
        assert sorted(set(unreadable)) == [
            "garble-bad-value",
            "garble-unexpected-type",
            "garble-unreadable-qty",
        ]
    assert "unreadable message from the exchange" in stack.gateway.log()


def start_losing_one(
    proxied: tuple[LocalStack, FaultProxy], msg_type: bytes
) -> tuple[LocalStack, Client, list[dict[int, bytes]]]:
    """The stack, started behind a proxy that loses the first message of `msg_type` the
    gateway sends (kept in the list returned) and lets anything else through, a late resend
    of it (PossDupFlag) included."""
    stack, proxy = proxied
    lost: list[dict[int, bytes]] = []

    def rewrite(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]] | None:
        values = dict(fields)
        if values.get(35) == msg_type and not lost:
            lost.append(values)
            return None
        return fields

    proxy.rewrite_outbound = rewrite
    return stack, start(stack), lost


def rest(gw: Client, cl_ord_id: str) -> None:
    gw.new_order(
        cl_ord_id=cl_ord_id, symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="1"
    )


def requests_the_exchange_took(stack: LocalStack) -> str:
    """The simulator's log of every order and cancel it received."""
    return (stack.root / "sim-store" / "orders.jsonl").read_text()


@pytest.mark.parametrize("connection_lost", [True, False], ids=["with-connection", "mid-session"])
def test_an_order_the_exchange_missed_is_gap_filled_not_sent_late_and_reported_rejected(
    proxied: tuple[LocalStack, FaultProxy], connection_lost: bool
) -> None:
    """With the connection lost, the exchange asks for what it missed after the logon; mid-
    session, when the gateway's next message (its periodic TestRequest) shows it the gap.
    Either way the order is gap filled, and the gateway, which knows the exchange never
    got it, reports it rejected there and then."""
    stack, gw, lost = start_losing_one(proxied, b"D")
    proxy = proxied[1]
    with gw:
        log = EventLog(gw)
        rest(gw, "missed")
        wait_until(lambda: lost, 5, "the NewOrderSingle to be lost")
        if connection_lost:
            proxy.drop()
        rejected = log.find("missed", "order.rejected", timeout=20)
        assert rejected["reason"] == "not_delivered"
        assert "did not reach the exchange" in rejected["text"]
        wait_until(lambda: gw.status()["ready"], 15, "the open orders to be checked")
        assert buy(gw, log, "after-the-gap")["cum_qty"] == "0.1"
        downs = [e for e in log.seen if e["type"] == "session.down"]
        assert len(downs) == (1 if connection_lost else 0)
    assert stack.gateway is not None
    assert "stale message not resent; gap filled instead" in stack.gateway.log()
    took = requests_the_exchange_took(stack)
    assert "after-the-gap" in took and "11=missed" not in took


def test_a_cancel_the_exchange_missed_is_gap_filled_and_the_order_reported_open(
    proxied: tuple[LocalStack, FaultProxy],
) -> None:
    stack, gw, lost = start_losing_one(proxied, b"F")
    with gw:
        log = EventLog(gw)
        rest(gw, "kept")
        log.find("kept", "order.accepted")
        assert gw.cancel_order(cl_ord_id="kept")["status"] == "pending_cancel"
        wait_until(lambda: lost, 5, "the cancel to be lost")
        refused = log.find("kept", "order.cancel_rejected", timeout=20)
        assert refused["reason"] == "not_delivered"
        wait_until(lambda: gw.status()["ready"], 15, "the open orders to be checked")
        assert [o["status"] for o in gw.orders() if o["cl_ord_id"] == "kept"] == ["new"]
        gw.cancel_order(cl_ord_id="kept")
        assert log.find("kept", "order.canceled")["leaves_qty"] == "0"
    assert requests_the_exchange_took(stack).count("35=F") == 1


@pytest.mark.parametrize("msg_type", ["D", "F"], ids=["order", "cancel"])
def test_an_order_or_cancel_the_exchange_never_answers_is_asked_about_and_settled(
    make_stack: StackFactory, msg_type: str
) -> None:
    """The simulator acts on the message and says nothing; after `orders.ack_timeout_s` the
    gateway asks the order's status, and the answer brings the order to its true state,
    while new orders keep going through."""
    stack = make_stack(sim={"unanswered": [msg_type]}, orders={"ack_timeout_s": 1})
    with stack.client() as gw:
        gw.subscribe(["orders", "errors"])
        log = EventLog(gw)
        rest(gw, "quiet")
        if msg_type == "D":
            assert log.find("quiet", "order.accepted")["order_id"]
        else:
            log.find("quiet", "order.accepted")
            gw.cancel_order(cl_ord_id="quiet")
            assert log.find("quiet", "order.canceled")["leaves_qty"] == "0"
        assert gw.status()["ready"]
        assert buy(gw, log, "after-the-silence")["cum_qty"] == "0.1"
    assert stack.gateway is not None
    assert "no answer from the exchange; asking the status" in stack.gateway.log()


def test_an_order_in_the_throttle_queue_when_the_connection_drops_is_never_sent(
    proxied: tuple[LocalStack, FaultProxy],
) -> None:
    """Its turn would come after the next logon, while reconciliation holds new orders back,
    checked against a price from before the outage: it ends rejected, never sent, when the
    session goes down. It never left the gateway: reconciliation does not ask about it."""
    stack, proxy = proxied
    stack.gateway_overrides["throttle"] = {"limits": {"new_order": {"per_s": 0.125, "burst": 1}}}
    with start(stack) as gw:
        log = EventLog(gw)
        rest(gw, "first")
        rest(gw, "held")  # its turn comes in eight seconds
        log.find("first", "order.accepted")
        proxy.drop()
        log.first(lambda e: e["type"] == "session.down")
        rejected = log.find("held", "order.rejected")
        assert (rejected["reason"], rejected["text"]) == (
            "not_delivered",
            "not sent: the session went down",
        )
        log.first(lambda e: e["type"] == "session.up", timeout=6)
        wait_until(lambda: gw.status()["ready"], 10, "the gateway to reconcile")
        held = [e["type"] for e in log.seen if e.get("cl_ord_id") == "held"]
        assert held == ["order.pending_new", "order.rejected"]
        assert gw.order_status(cl_ord_id="held")["status"] == "rejected"
    assert "11=held" not in requests_the_exchange_took(stack)


def test_a_refused_status_request_leaves_an_unanswered_order_open(
    make_stack: StackFactory,
) -> None:
    """The exchange takes the order without a word, and then cannot serve the status request
    the gateway sends after `orders.ack_timeout_s`: that says nothing about the order, which
    is live at the exchange, so it stays pending rather than being reported rejected."""
    stack = make_stack(sim={"unanswered": ["D"], "unavailable": ["H"]}, orders={"ack_timeout_s": 1})
    with stack.client() as gw:
        gw.subscribe(["orders", "errors"])
        log = EventLog(gw)
        rest(gw, "quiet")
        error = log.first(lambda e: e["type"] == "exchange.error", timeout=10)
        assert (error["cl_ord_id"], error["source"]) == ("quiet", "exception")
        assert [o["status"] for o in gw.orders() if o["cl_ord_id"] == "quiet"] == ["pending_new"]
        assert gw.status()["ready"]
        gw.cancel_order(cl_ord_id="quiet")  # it is there to cancel
        assert log.find("quiet", "order.canceled")["leaves_qty"] == "0"
        assert not [e for e in log.seen if e["type"] == "order.rejected"]
    assert stack.gateway is not None
    assert "order status request refused; the order is left as it is" in stack.gateway.log()


def test_an_unreadable_fill_during_reconciliation_is_found_by_a_check_after_it(
    proxied: tuple[LocalStack, FaultProxy],
) -> None:
    """After a reconnect the answer to the first status request goes astray, so
    reconciliation waits; meanwhile another firm fills the order and the fill arrives
    garbled. The answers under way cannot be trusted to include it, so once this
    reconciliation is over the gateway asks again, and the fill is reported."""
    stack, proxy = proxied
    stack.sim_overrides["accounts"] = [OTHER_FIRM]
    stack.gateway_overrides["session"] = {"port": proxy.port, "reconcile_timeout_s": 4}
    lost: list[bytes] = []

    def lose_first_status_and_garble_the_fill(
        fields: list[tuple[int, bytes]],
    ) -> list[tuple[int, bytes]] | None:
        values = dict(fields)
        if values.get(35) != b"8" or values.get(11) != b"mine":
            return fields
        if values.get(150) == b"I" and not lost:  # made an answer about no order of ours
            lost.append(values[17])
            return [(tag, b"elsewhere" if tag in (11, 37) else value) for tag, value in fields]
        if values.get(150) not in (b"0", b"I"):  # the fill
            return [(tag, b"1e" if tag == 14 else value) for tag, value in fields]
        return fields

    with start(stack) as gw:
        log = EventLog(gw)
        gw.new_order(
            cl_ord_id="mine", symbol="LTC/USD", side="sell", type="limit", qty="1", price="80"
        )
        log.find("mine", "order.accepted")
        other = another_gateway(stack, "other", session={"sender_comp_id": OTHER_FIRM["comp_id"]})
        other.api_key, other.secret = OTHER_FIRM["api_key"], OTHER_FIRM["secret_key"]
        other.start_gateway()
        try:
            with other.client() as taker:
                proxy.rewrite = lose_first_status_and_garble_the_fill
                proxy.drop()
                log.first(lambda e: e["type"] == "session.up", timeout=15)
                wait_until(lambda: lost, 5, "the first status answer to go astray")
                assert gw.status()["reconciling"] == 1
                taker.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="80")
                filled = log.find("mine", "order.filled", timeout=20)
                assert (filled["cum_qty"], filled["last_px"]) == ("1", "80")
        finally:
            other.stop()
    assert stack.gateway is not None
    assert "open orders to be asked about again after this check" in stack.gateway.log()
