"""SIGKILL in the middle of a burst of orders with fills, of the simulator and of the
gateway: after a restart every execution report the simulator sent reaches the client
exactly once, and the gateway's orders end as the simulator has them."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.fix.message import parse
from fixgw.testing import LocalStack
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration

BURST = 1000
KILL_AFTER = 400
BOOKS = {"BTC/USD": {"bids": [["29000", "1"]], "asks": [["31000", "1"]]}}
"""Nothing near 30000: each buy at 30000 fills against the sell placed just before it."""


def order_fields(n: int) -> dict[str, Any]:
    side = "sell" if n % 2 == 0 else "buy"
    return {"symbol": "BTC/USD", "side": side, "type": "limit", "price": "30000", "qty": "0.01"}


class Burst:
    """Places BURST orders one after another through one client, riding out the outage:
    a refused order (no session, not reconciled yet) is placed again under a new id."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.events: list[dict[str, Any]] = []
        self.placed: list[str] = []
        self.refused = 0
        self.reconnects = 0
        self.last_seq = 0
        self.gw = self._connect()

    def _connect(self) -> Client:
        gw = self.stack.client()
        gw.subscribe(["orders"], since=self.last_seq or None)
        return gw

    def _take(self, event: dict[str, Any]) -> None:
        assert event["seq"] > self.last_seq, "an event came twice or out of order"
        self.last_seq = event["seq"]
        self.events.append(event)

    def drain(self, until: float = 0.0) -> None:
        deadline = time.monotonic() + until
        while True:
            try:
                self._take(self.gw.next_event(max(0.05, deadline - time.monotonic())))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    return

    def run(self) -> None:
        n = 0
        while len(self.placed) < BURST:
            cl_ord_id = f"o{n:05d}"
            n += 1
            try:
                self.gw.new_order(cl_ord_id=cl_ord_id, **order_fields(len(self.placed)))
                self.placed.append(cl_ord_id)
            except ApiError as exc:
                assert exc.code in ("not_connected", "not_ready"), exc
                self.refused += 1
                time.sleep(0.02)
            except (ConnectionError, OSError):
                self.gw.close()
                self.reconnects += 1
                self._reconnect()
            for event in self.gw.take_events():
                self._take(event)

    def _reconnect(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.gw = self._connect()
                return
            except (ConnectionError, OSError):
                assert time.monotonic() < deadline, "the gateway did not come back"
                time.sleep(0.1)


class Killer(threading.Thread):
    """Kills and restarts a process once KILL_AFTER orders are placed; `finish` waits for it
    and raises what the restart raised."""

    def __init__(self, burst: Burst, restart: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.burst = burst
        self.restart = restart
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            while len(self.burst.placed) < KILL_AFTER:
                time.sleep(0.001)
            self.restart()
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        self.join(60)
        assert not self.is_alive(), "the restart did not finish"
        if self.error is not None:
            raise self.error


def sent_by_simulator(stack: LocalStack) -> list[dict[int, str]]:
    """Every execution report in the simulator's QuickFIX store: what it sent.

    The store is appended to, and a later message under the same MsgSeqNum replaces an
    earlier one: a simulator killed after storing a message but before counting it reuses
    its number after the restart, so that message never went out and cannot be resent."""
    (body,) = (stack.root / "sim-store").glob("*.body")
    stored = {}
    for part in body.read_text().split("8=FIX.4.4\x01")[1:]:
        fields = parse("8=FIX.4.4\x01" + part).fields
        stored[fields[34]] = fields
    return [fields for fields in stored.values() if fields[35] == "8"]


def fills_of(burst: Burst) -> list[dict[str, Any]]:
    return [e for e in burst.events if e["type"] in ("order.filled", "order.partially_filled")]


def fills_sent_by_simulator(stack: LocalStack) -> set[str]:
    return {r[17] for r in sent_by_simulator(stack) if r[150] in ("1", "2", "F")}


def settle(burst: Burst, stack: LocalStack) -> None:
    """Until the gateway is reconciled, no order waits for the exchange's answer and every
    fill the simulator sent has come in: the end of the burst, however slow the machine."""
    deadline = time.monotonic() + 60
    while True:
        burst.drain(until=0.2)
        orders = burst.gw.request("orders", all=True)["orders"]
        if (
            burst.gw.status()["ready"]
            and all(o["status"] != "pending_new" for o in orders)
            and fills_sent_by_simulator(stack) <= {e["exec_id"] for e in fills_of(burst)}
        ):
            burst.drain(until=0.5)  # and anything late would show up as a double
            return
        assert time.monotonic() < deadline, "the burst did not settle"


def check_nothing_lost_nothing_doubled(burst: Burst, stack: LocalStack) -> None:
    settle(burst, stack)
    fills = fills_of(burst)
    exec_ids = Counter(e["exec_id"] for e in fills)
    assert max(exec_ids.values()) == 1, "a fill reached the client twice"
    sent_fills = fills_sent_by_simulator(stack)
    assert sent_fills <= set(exec_ids), "a fill the simulator sent never reached the client"
    filled: dict[str, Decimal] = {}
    for e in fills:
        filled[e["cl_ord_id"]] = filled.get(e["cl_ord_id"], Decimal(0)) + Decimal(e["last_qty"])

    orders = {o["cl_ord_id"]: o for o in burst.gw.request("orders", all=True)["orders"]}
    assert set(burst.placed) <= set(orders)
    known_to_exchange = orders_the_simulator_took(stack)
    for cl_ord_id, order in orders.items():
        if cl_ord_id not in known_to_exchange:
            assert order["status"] == "rejected", order  # never reached the exchange
            continue
        exchange = burst.gw.request("order_status", cl_ord_id=cl_ord_id)
        assert exchange["source"] == "exchange"
        assert (order["status"], order["cum_qty"]) == (exchange["status"], exchange["cum_qty"])
        assert filled.get(cl_ord_id, Decimal(0)) == Decimal(order["cum_qty"])
    assert burst.placed[-1] in known_to_exchange, "orders stopped reaching the exchange"
    sides = Counter(orders[cl_ord_id]["side"] for cl_ord_id in known_to_exchange)
    left_resting = abs(sides["buy"] - sides["sell"])
    filled_orders = sum(1 for o in orders.values() if o["status"] == "filled")
    assert filled_orders == len(known_to_exchange) - left_resting, "an order did not cross"


def orders_the_simulator_took(stack: LocalStack) -> set[str]:
    """ClOrdIDs of the NewOrderSingles in the simulator's order log (it survives its kill)."""
    took = set()
    for line in (stack.root / "sim-store" / "orders.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "raw" in entry and (msg := parse(entry["raw"])).msg_type == "D":
            took.add(msg.fields[11])
    return took


def test_the_simulator_killed_mid_burst(make_stack: StackFactory) -> None:
    stack = make_stack(books=BOOKS, symbols=["BTC/USD"])
    burst = Burst(stack)

    def kill_and_restart() -> None:
        assert stack.sim is not None
        stack.sim.stop(signal.SIGKILL)
        stack.start_sim()

    killer = Killer(burst, kill_and_restart)
    burst.run()
    killer.finish()
    assert burst.refused > 0, "the kill fell outside the burst"
    check_nothing_lost_nothing_doubled(burst, stack)


def burst_with_a_gateway_kill(stack: LocalStack) -> Burst:
    """A burst of orders, with the gateway SIGKILLed and started again in the middle of it."""
    burst = Burst(stack)

    def kill_and_restart() -> None:
        assert stack.gateway is not None
        stack.gateway.stop(signal.SIGKILL)
        Path(stack.socket_path).unlink(missing_ok=True)
        stack.start_gateway(wait_for_logon=False)

    killer = Killer(burst, kill_and_restart)
    burst.run()
    killer.finish()
    assert burst.reconnects > 0, "the kill fell outside the burst"
    return burst


def test_the_gateway_killed_mid_burst(make_stack: StackFactory) -> None:
    stack = make_stack(books=BOOKS, symbols=["BTC/USD"])
    check_nothing_lost_nothing_doubled(burst_with_a_gateway_kill(stack), stack)


def test_seq_after_a_kill_passes_every_seq_seen_before_market_data_included(
    make_stack: StackFactory,
) -> None:
    """Market data takes seqs but is not journaled: a client that last saw an md event
    must still get, with `since`, the order events of the restarted gateway. (A clean stop
    journals `session.down` last, which hid this.)"""
    stack = make_stack(market_data={"stale_after_s": 0.3})  # a quiet book: a snapshot each 0.3 s
    seen: list[dict[str, Any]] = []

    def market_data_came_last(count: int) -> bool:
        orders = [e["seq"] for e in seen if e["type"] == "order.accepted"]
        md = [e["seq"] for e in seen if e["type"].startswith("md.")]
        return bool(orders) and len([s for s in md if s > max(orders)]) >= count

    with stack.client("watcher") as watcher, stack.client("trader") as trader:
        watcher.subscribe(["orders"])
        watcher.request("md_subscribe", symbol="BTC/USD")
        trader.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="29000")
        while not market_data_came_last(5):
            seen.append(watcher.next_event(10))
        last_md = seen[-1]["seq"]
        highest = max(last_md, watcher.request("hello", name="watcher")["seq"])
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    stack.start_gateway()
    with stack.client("watcher") as watcher, stack.client("trader") as trader:
        watcher.subscribe(["orders"])
        after = trader.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="50")
        pending = EventLog(watcher).find(after["cl_ord_id"], "order.pending_new")
        assert pending["seq"] > highest
        with stack.client("late") as late:
            late.subscribe(["orders"], since=last_md)
            replayed = [e["seq"] for e in late.take_events() if e["type"].startswith("order.")]
        assert pending["seq"] in replayed
