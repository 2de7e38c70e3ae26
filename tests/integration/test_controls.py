"""The controls a firm puts in front of the exchange, against the simulator: pre-trade
limits, the outbound throttle, the kill switch and cancel on disconnect."""

from __future__ import annotations

import json
import re
import signal
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration

LIMITS = {
    "max_open_orders": 3,
    "symbols": {
        "BTC/USD": {"max_qty": "2", "max_notional": "45000", "price_band_pct": "1"},
        "LTC/USD": {"sides": ["sell"]},
    },
}


def sent_to_exchange(stack: LocalStack, last: str | None = None) -> list[str]:
    """ClOrdIDs of the NewOrderSingles the simulator received (once `last` is among them:
    what was sent before it arrived before it)."""
    if last is not None:
        wait_until(lambda: last in sent_to_exchange(stack), 10, f"{last} at the exchange")
    path = stack.root / "sim-store" / "orders.jsonl"
    return [
        raw.split("\x0111=")[1].split("\x01")[0]
        for line in path.read_text().splitlines()
        if "\x0135=D\x01" in (raw := json.loads(line).get("raw", ""))
    ]


def rest(gw: Client, cl_ord_id: str, price: str = "29900", **extra: Any) -> None:
    fields = {"symbol": "BTC/USD", "side": "buy", "type": "limit", "qty": "0.1", "price": price}
    gw.new_order(cl_ord_id=cl_ord_id, **{**fields, **extra})


@pytest.mark.parametrize(
    ("order", "limit"),
    [
        ({"qty": "3"}, "max_qty"),
        ({"qty": "1.9", "price": "29990"}, "max_notional"),
        ({"price": "30400"}, "price_band"),  # 1% of the mid, 30000
        ({"symbol": "LTC/USD", "price": "70"}, "side"),
    ],
)
def test_an_order_over_a_limit_is_refused_locally_and_never_reaches_the_exchange(
    make_stack: StackFactory, order: dict[str, Any], limit: str
) -> None:
    stack = make_stack(risk=LIMITS)
    with stack.client() as gw:
        wait_until(lambda: gw.status()["market_data"]["BTC/USD:book"]["live"], 10, "the book")
        with pytest.raises(ApiError) as refused:
            rest(gw, "over", **order)
        assert refused.value.code == "risk_rejected"
        assert limit in refused.value.message
        rest(gw, "within")  # the same path, inside every limit
    assert sent_to_exchange(stack, last="within") == ["within"]


def test_open_orders_are_capped(make_stack: StackFactory) -> None:
    stack = make_stack(risk=LIMITS)
    with stack.client() as gw:
        wait_until(lambda: gw.status()["market_data"]["BTC/USD:book"]["live"], 10, "the book")
        for n in range(3):
            rest(gw, f"resting-{n}")
        with pytest.raises(ApiError, match="max_open_orders"):
            rest(gw, "fourth")
        gw.cancel_order(cl_ord_id="resting-0")
        gw.subscribe(["orders"])
        EventLog(gw).find("resting-0", "order.canceled")
        rest(gw, "fourth")


def test_the_throttle_queues_orders_over_the_rate_and_sends_them_spaced(
    make_stack: StackFactory,
) -> None:
    # one order a second: the three over the burst are still queued when `status` asks
    stack = make_stack(throttle={"limits": {"new_order": {"per_s": 1, "burst": 1}}})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        for n in range(4):
            assert (
                gw.new_order(
                    cl_ord_id=f"t{n}",
                    symbol="BTC/USD",
                    side="buy",
                    type="limit",
                    qty="0.1",
                    price="29000",
                )["status"]
                == "pending_new"
            )
        assert gw.status()["throttle_queued"] == 3
        accepted = [log.find(f"t{n}", "order.accepted") for n in range(4)]
        assert gw.status()["throttle_queued"] == 0
    assert sent_to_exchange(stack, last="t3") == ["t0", "t1", "t2", "t3"]
    assert [a["seq"] for a in accepted] == sorted(a["seq"] for a in accepted)


def test_the_reject_policy_refuses_over_the_rate(make_stack: StackFactory) -> None:
    stack = make_stack(
        throttle={"limits": {"new_order": {"per_s": 0.1, "burst": 2}}, "policy": "reject"}
    )
    with stack.client() as gw:
        rest(gw, "r0")
        rest(gw, "r1")
        with pytest.raises(ApiError) as refused:
            rest(gw, "r2")
        assert refused.value.code == "throttled"
    assert sent_to_exchange(stack, last="r1") == ["r0", "r1"]


def test_halt_cancels_everything_blocks_new_orders_and_holds_across_a_restart(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    with stack.client("desk") as gw:
        gw.subscribe(["orders", "session"])
        log = EventLog(gw)
        for n in range(3):
            rest(gw, f"h{n}")
            log.find(f"h{n}", "order.accepted")
        halted = gw.request("halt", reason="runaway strategy")
        assert sorted(halted["cancelling"]) == ["h0", "h1", "h2"]
        for n in range(3):
            log.find(f"h{n}", "order.canceled")
        event = log.first(lambda e: e["type"] == "session.halted")
        assert re.fullmatch(r"api client \d+ \(desk\)", event["by"])  # numbered as it connected
        assert event["reason"] == "runaway strategy"
        with pytest.raises(ApiError) as refused:
            rest(gw, "blocked")
        assert refused.value.code == "halted" and "runaway strategy" in refused.value.message

    assert stack.gateway is not None and stack.gateway.stop() == 0
    stack.start_gateway()
    with stack.client() as gw:
        assert gw.status()["halted"]["reason"] == "runaway strategy"
        with pytest.raises(ApiError, match="halted"):
            rest(gw, "still-blocked")
        assert gw.request("resume") == {"halted": False}
        rest(gw, "after-resume")
    assert "blocked" not in sent_to_exchange(stack, last="after-resume")


def test_sigusr1_halts(make_stack: StackFactory) -> None:
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["session"])
        assert stack.gateway is not None and stack.gateway.popen is not None
        stack.gateway.popen.send_signal(signal.SIGUSR1)
        event = gw.wait_for(lambda e: e["type"] == "session.halted")
        assert event["by"] == "SIGUSR1"
        assert gw.status()["halted"]["by"] == "SIGUSR1"


def test_cancel_on_disconnect_cancels_only_that_clients_orders(make_stack: StackFactory) -> None:
    stack = make_stack()
    with stack.client("watcher") as watcher, stack.client("keeper") as keeper:
        watcher.subscribe(["orders"])
        log = EventLog(watcher)
        rest(keeper, "kept")
        careful = Client.connect(stack.socket_path, name="careful", cancel_on_disconnect=True)
        rest(careful, "dropped-with-me")
        log.find("dropped-with-me", "order.accepted")
        careful.close()
        log.find("dropped-with-me", "order.canceled")
        # the exchange answers after any cancel the gateway might wrongly have sent
        at_exchange = watcher.request("order_status", cl_ord_id="kept")
        assert (at_exchange["source"], at_exchange["status"]) == ("exchange", "new")
        statuses = {o["cl_ord_id"]: o["status"] for o in watcher.orders()}
        assert statuses["kept"] == "new"


def exchange_requests(stack: LocalStack) -> str:
    """The simulator's log of every order and cancel it received."""
    return (stack.root / "sim-store" / "orders.jsonl").read_text()


@pytest.mark.parametrize("how", ["cancel", "halt"])
def test_an_order_still_in_the_throttle_queue_is_withdrawn_locally_and_never_sent(
    make_stack: StackFactory, how: str
) -> None:
    # one order every two seconds: "held" waits in the gateway while it is cancelled
    stack = make_stack(throttle={"limits": {"new_order": {"per_s": 0.5, "burst": 1}}})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        rest(gw, "first")
        rest(gw, "held")
        assert gw.status()["throttle_queued"] == 1
        if how == "cancel":
            reply = gw.cancel_order(cl_ord_id="held")
            assert reply["status"] == "canceled"
        else:
            assert sorted(gw.request("halt")["cancelling"]) == ["first", "held"]
            log.find("first", "order.canceled")
        canceled = log.find("held", "order.canceled")
        assert (canceled["leaves_qty"], canceled["order_id"]) == ("0", None)
        assert "throttle queue" in canceled["text"]
        assert gw.status()["throttle_queued"] == 0
        if how == "halt":
            gw.request("resume")
        rest(gw, "after")  # would go after "held" had "held" still been queued
        log.find("after", "order.accepted")
        held = [e["type"] for e in log.seen if e.get("cl_ord_id") == "held"]
        assert held == ["order.pending_new", "order.canceled"]
        assert {o["cl_ord_id"]: o["status"] for o in gw.orders(all=True)}["held"] == "canceled"
    assert sent_to_exchange(stack, last="after") == ["first", "after"]
    assert "held" not in exchange_requests(stack)  # no cancel for it either


def test_a_duplicate_cl_ord_id_over_the_rate_takes_no_place_in_the_throttle_queue(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(
        throttle={"limits": {"new_order": {"per_s": 0.2, "burst": 1}}, "queue_max": 1}
    )
    with stack.client() as gw:
        rest(gw, "taken")
        for _ in range(3):
            with pytest.raises(ApiError) as refused:
                rest(gw, "taken")
            assert refused.value.code == "duplicate_cl_ord_id"
        assert gw.status()["throttle_queued"] == 0
        assert (
            gw.new_order(
                cl_ord_id="queued",
                symbol="BTC/USD",
                side="buy",
                type="limit",
                qty="0.1",
                price="29900",
            )["status"]
            == "pending_new"
        )
        assert gw.status()["throttle_queued"] == 1


def test_a_status_request_abandoned_in_the_throttle_queue_gives_its_place_back(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(throttle={"limits": {"status": {"per_s": 0.2, "burst": 1}}, "queue_max": 1})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        rest(gw, "asked")
        EventLog(gw).find("asked", "order.accepted")
        assert gw.order_status(cl_ord_id="asked")["source"] == "exchange"  # the burst
        with stack.client() as impatient:
            # a reply left unread: closing then resets the connection, not just ends it
            impatient.send_raw(
                b'{"id": 1, "op": "status"}\n'
                b'{"id": 2, "op": "order_status", "cl_ord_id": "asked"}\n'
            )
            wait_until(lambda: gw.status()["throttle_queued"] == 1, 5, "the request to queue")
        wait_until(lambda: gw.status()["throttle_queued"] == 0, 3, "its place to be given back")
        answer = gw.order_status(cl_ord_id="asked")  # queued, not refused as throttled
        assert (answer["source"], answer["status"]) == ("exchange", "new")
