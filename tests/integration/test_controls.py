"""The controls a firm puts in front of the exchange, against the simulator: pre-trade
limits, the outbound throttle, the kill switch and cancel on disconnect."""

from __future__ import annotations

import itertools
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import DEFAULT_BOOKS, EventLog, StackFactory
from tests.integration.faultproxy import FaultProxy, Rewrite, between, is_snapshot, md_refusal

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


def rest_accepted(gw: Client, log: EventLog, prefix: str, count: int) -> None:
    """`count` resting orders, `<prefix>0` on, each acknowledged by the exchange."""
    for n in range(count):
        rest(gw, f"{prefix}{n}")
        log.find(f"{prefix}{n}", "order.accepted")


def dropped_and_logged_on_again(proxy: FaultProxy, log: EventLog, timeout: float) -> None:
    """The connection to the exchange dropped; returns once the session is up again."""
    proxy.drop()
    down = log.first(lambda e: e["type"] == "session.down")
    log.first(lambda e: e["type"] == "session.up" and e["seq"] > down["seq"], timeout=timeout)


@pytest.mark.parametrize(
    ("order", "limit"),
    [
        ({"qty": "3"}, "max_qty"),
        ({"qty": "1.9", "price": "29990"}, "max_notional"),
        ({"price": "30400"}, "price_band_pct"),  # 1% of the mid, 30000
        ({"symbol": "LTC/USD", "price": "70"}, "sides"),
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
        assert refused.value.message.startswith(f"risk limit {limit}: ")  # the config key
        rest(gw, "within")  # the same path, inside every limit
    assert sent_to_exchange(stack, last="within") == ["within"]


def market_buy(gw: Client, cl_ord_id: str, qty: str) -> None:
    gw.new_order(cl_ord_id=cl_ord_id, symbol="BTC/USD", side="buy", type="market", qty=qty)


def book_live(gw: Client) -> bool:
    return bool(gw.status()["market_data"]["BTC/USD:book"]["live"])


def test_a_notional_cap_alone_keeps_a_price_for_market_orders(make_stack: StackFactory) -> None:
    stack = make_stack(risk={"symbols": {"BTC/USD": {"max_notional": "40000"}}})
    with stack.client() as gw:  # nobody subscribes: the gateway holds the book itself
        wait_until(lambda: book_live(gw), 10, "the book held for the limit")
        with pytest.raises(ApiError, match="max_notional"):
            market_buy(gw, "too-big", "1.5")  # 45000 at the mid, 30000
        market_buy(gw, "fits", "1")
    assert sent_to_exchange(stack, last="fits") == ["fits"]


def test_after_an_outage_a_market_order_is_checked_against_the_market_not_an_old_trade(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False, risk={"symbols": {"BTC/USD": {"max_notional": "40000"}}})
    proxy = between(stack)
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client("trader") as gw, stack.client("watcher") as watcher:
            watcher.request("md_subscribe", symbol="BTC/USD", what=["book"])
            gw.subscribe(["orders", "session"])
            gw.request("md_subscribe", symbol="BTC/USD", what=["trades"])
            log = EventLog(gw)
            rest(gw, "sell", price="29990", side="sell", qty="1.3")  # trades at 29990
            rest(gw, "buy", price="30010", qty="1.2")  # takes the only ask: trades at 30010
            log.first(lambda e: e["type"] == "md.trade" and e["price"] == "30010")
            gw.request("md_unsubscribe", symbol="BTC/USD", what=["trades"])
            rest(gw, "ask", price="39000", side="sell")
            rest(gw, "bid", price="38000")  # the market is now 38000 / 39000, with no trade
            log.find("bid", "order.accepted")
            dropped_and_logged_on_again(proxy, log, timeout=20)
            wait_until(lambda: book_live(gw), 10, "the book again")
            # 1.3 at the mid, 38500, is 50050; at the trade before the outage it was 39013
            with pytest.raises(ApiError, match="max_notional"):
                market_buy(gw, "market", "1.3")
    finally:
        proxy.close()
    assert "market" not in sent_to_exchange(stack, last="bid")


def test_a_held_book_the_exchange_refused_is_asked_for_again(make_stack: StackFactory) -> None:
    stack = make_stack(start=False, risk={"symbols": {"BTC/USD": {"price_band_pct": "1"}}})
    proxy = between(stack)
    refusing = threading.Event()
    refusing.set()
    refused: list[bytes] = []

    def refuse_the_book(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if refusing.is_set() and is_snapshot(fields, b"BTC/USD", book=True):
            refused.append(dict(fields)[262])
            return md_refusal(fields)
        return fields

    proxy.rewrite = refuse_the_book
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            wait_until(lambda: bool(refused), 15, "the exchange to refuse the book")
            with pytest.raises(ApiError, match="no_reference_price"):
                rest(gw, "no-price", price="30000")
            refusing.clear()
            wait_until(lambda: book_live(gw), 15, "the held book to be asked for again")
            rest(gw, "within-band", price="30000")
            # through the proxy before it closes: the order may still be on its way
            assert sent_to_exchange(stack, last="within-band") == ["within-band"]
    finally:
        proxy.close()


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


def test_orders_the_throttle_holds_at_a_stop_are_rejected_as_never_sent_and_told(
    make_stack: StackFactory,
) -> None:
    """SIGTERM with orders waiting their turn under the rate limit: each is rejected, never
    delivered, while its client is still connected; and the journal keeps it so after the
    restart nothing of them is pending."""
    stack = make_stack(throttle={"limits": {"new_order": {"per_s": 0.05, "burst": 1}}})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        for n in range(3):
            rest(gw, f"s{n}")
        log.find("s0", "order.accepted")
        assert gw.status()["throttle_queued"] == 2
        assert stack.gateway is not None and stack.gateway.popen is not None
        stack.gateway.popen.send_signal(signal.SIGTERM)
        for n in (1, 2):
            rejected = log.find(f"s{n}", "order.rejected")
            assert rejected["reason"] == "not_delivered"
            assert "gateway stopped" in str(rejected["text"])
    assert stack.gateway.stop() == 0
    stack.start_gateway()
    with stack.client() as gw:
        assert [o["cl_ord_id"] for o in gw.request("orders")["orders"]] == ["s0"]
        assert gw.order_status(cl_ord_id="s1")["status"] == "rejected"
    assert sent_to_exchange(stack, last="s0") == ["s0"]


def test_a_status_request_the_throttle_holds_at_a_stop_is_answered_before_the_connection_closes(
    make_stack: StackFactory,
) -> None:
    """SIGTERM while a client's `order_status` waits its turn under the status rate: it is
    refused `throttled`, saying the gateway stopped, before its connection closes. It
    saw only the connection closed, as after a crash."""
    stack = make_stack(
        throttle={"limits": {"status": {"per_s": 0.01, "burst": 1}}},
        api={"request_timeout_s": 120},  # its turn, in 100 s, comes within it: held
    )
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        rest_accepted(gw, log, "a", 1)
        gw.order_status(cl_ord_id="a0")  # the one token
        with stack.client("asking") as asking:
            answer: list[object] = []

            def ask() -> None:
                try:
                    answer.append(asking.order_status(cl_ord_id="a0"))
                except (ApiError, ConnectionError) as exc:
                    answer.append(exc)

            waiting = threading.Thread(target=ask)
            waiting.start()
            wait_until(lambda: gw.status()["throttle_queued"] == 1, 10, "the request held")
            assert stack.gateway is not None and stack.gateway.popen is not None
            stack.gateway.popen.send_signal(signal.SIGTERM)
            waiting.join(30)
            assert not waiting.is_alive()
    [refused] = answer
    assert isinstance(refused, ApiError), refused
    assert refused.code == "throttled"
    assert "the gateway stopped" in str(refused)
    assert stack.gateway.stop() == 0


def test_a_status_request_whose_turn_comes_after_request_timeout_s_is_refused_at_once(
    make_stack: StackFactory,
) -> None:
    """One status request per 20 s, `api.request_timeout_s` 5: an `order_status` or `orders`
    from the exchange over the rate could not be answered in time, so it is refused
    `throttled` at once and never sent, and the cancel written behind it on the same
    connection is not held back by it. Under the rate again, it is answered."""
    stack = make_stack(throttle={"limits": {"status": {"per_s": 0.05, "burst": 1}}})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        rest_accepted(gw, log, "a", 1)
        assert gw.order_status(cl_ord_id="a0")["source"] == "exchange"  # the one token
        with pytest.raises(ApiError) as mass_status:
            gw.request("orders", from_exchange=True)
        with stack.client("asking") as asking:
            asking.send_raw(
                b'{"id": "asked", "op": "order_status", "cl_ord_id": "a0"}\n'
                b'{"id": "cancelled", "op": "cancel_order", "cl_ord_id": "a0"}\n'
            )
            asked, cancelled = asking.read_message(3), asking.read_message(3)
        log.find("a0", "order.canceled")
        assert gw.status()["throttle_queued"] == 0
    assert (mass_status.value.code, asked["error"]["code"]) == ("throttled", "throttled")
    assert asked["error"]["message"].startswith(
        "over the status rate limit: its turn would come in "
    )
    assert asked["error"]["message"].endswith(
        "s, after api.request_timeout_s (5s); not sent, try again then"
    )
    assert (asked["id"], cancelled["id"]) == ("asked", "cancelled")
    assert cancelled["result"]["status"] == "pending_cancel"


def test_reconciliation_keeps_its_status_requests_to_the_status_rate_limit(
    make_stack: StackFactory,
) -> None:
    """`throttle.limits.status` is the account's: the gateway's own status requests after a
    logon are spaced out by it as a client's are, and reconciliation still completes (its
    time-out counts from the last request out)."""
    stack = make_stack(
        start=False,
        throttle={"limits": {"status": {"per_s": 2, "burst": 1}}, "policy": "reject"},
        session={"reconcile_timeout_s": 1},
    )
    proxy = between(stack)
    asked_at: list[float] = []

    def timed(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if dict(fields).get(35) == b"H":
            asked_at.append(time.monotonic())
        return fields

    proxy.rewrite_outbound = timed
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders", "session"])
            log = EventLog(gw)
            rest_accepted(gw, log, "r", 4)
            dropped_and_logged_on_again(proxy, log, timeout=15)
            wait_until(lambda: gw.status()["ready"], 15, "reconciled")
            assert not [e for e in log.seen if e["type"] == "order.anomaly"]
        assert stack.gateway is not None and "taking orders anyway" not in stack.gateway.log()
        gaps = [later - sooner for sooner, later in itertools.pairwise(asked_at)]
        assert len(asked_at) == 4 and min(gaps) >= 0.45, gaps
    finally:
        proxy.close()


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
        rest_accepted(gw, log, "h", 3)
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


def refusing_the_first_cancel(refused: list[bytes]) -> Rewrite:
    """Turns the exchange's report of the first cancel it made into an OrderCancelReject
    that says the order is still new, and notes the order's ClOrdID in `refused`."""

    def rewrite(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        values = dict(fields)
        if values.get(35) != b"8" or values.get(150) != b"4" or refused:
            return fields
        refused.append(values[41])
        return [
            (35, b"9"),
            *((tag, value) for tag, value in fields if tag in (34, 49, 52, 56, 37, 11, 41)),
            (39, b"0"),
            (434, b"1"),
            (102, b"0"),
            (58, b"busy, try later"),
        ]

    return rewrite


@pytest.mark.parametrize("throttled", [False, True], ids=["at once", "cancels queued"])
def test_a_cancel_refused_while_halted_is_checked_with_the_exchange_and_not_left_open(
    make_stack: StackFactory, throttled: bool
) -> None:
    """The exchange's answer to the halt's first cancel arrives as an OrderCancelReject with
    the order still open (the proxy turns the cancel's report into one), so the gateway
    thinks the order live: it asks the exchange about it shortly after, and finds it
    canceled (one the exchange still had open would be cancelled again then). Only that
    order is asked about: with the cancel rate limited, the others' cancels wait in the
    throttle's queue, and are neither reported lost nor sent twice."""
    limits = {"cancel": {"per_s": 1, "burst": 1}} if throttled else {}
    stack = make_stack(start=False, throttle={"limits": limits})
    proxy = between(stack)
    refused: list[bytes] = []
    proxy.rewrite = refusing_the_first_cancel(refused)
    orders = 4 if throttled else 2
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders"])
            log = EventLog(gw)
            rest_accepted(gw, log, "r", orders)
            gw.request("halt")
            wait_until(lambda: refused, 10, "a cancel refused")
            rejected = log.find(refused[0].decode(), "order.cancel_rejected")
            assert rejected["status"] == "new" and rejected["text"] == "busy, try later"
            for n in range(orders):
                log.find(f"r{n}", "order.canceled", timeout=15)
            assert gw.orders() == []
            kinds = [e["type"] for e in log.seen]
            assert kinds.count("order.cancel_rejected") == 1
            assert "order.anomaly" not in kinds
    finally:
        proxy.close()


def test_while_the_exchange_goes_on_refusing_a_cancel_it_is_asked_less_and_less_often(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    proxy = between(stack)
    asked: list[float] = []

    def garble_cancels(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        kind = dict(fields).get(35)
        if kind == b"H":
            asked.append(time.monotonic())
        if kind != b"F":
            return fields
        return [(tag, b"no-such-order" if tag in (37, 41) else value) for tag, value in fields]

    def open_in_rejects(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if dict(fields).get(35) != b"9":
            return fields
        return [(tag, b"0" if tag == 39 else value) for tag, value in fields]

    proxy.rewrite_outbound = garble_cancels
    proxy.rewrite = open_in_rejects
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders"])
            log = EventLog(gw)
            rest_accepted(gw, log, "s", 1)
            gw.request("halt")
            halted_at = time.monotonic()
            time.sleep(6.5)  # asked after about 1 s, 3 s (1 + 2), then 7 s (+ 4)
            asks = [t - halted_at for t in asked]
            assert 2 <= len(asks) <= 3, asks
            first = log.first(lambda e: e["type"] == "order.cancel_rejected")
            log.first(lambda e: e["type"] == "order.cancel_rejected" and e["seq"] > first["seq"])
            assert gw.orders()[0]["cl_ord_id"] == "s0"  # still open: the exchange has it
    finally:
        proxy.close()


def fixgw_cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `fixgw` command against this stack's gateway."""
    return subprocess.run(
        [sys.executable, "-m", "fixgw", *args, "--socket", str(stack.socket_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_halt_while_the_session_is_down_cancels_every_order_once_it_is_back(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    proxy = between(stack)
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders", "session"])
            log = EventLog(gw)
            rest_accepted(gw, log, "d", 3)
            proxy.refusing = True
            proxy.drop()
            down = log.first(lambda e: e["type"] == "session.down")

            # a plain cancel-all says what it could not cancel, and is done
            cancel_all = fixgw_cli(stack, "cancel-all")
            assert cancel_all.returncode == 4, cancel_all.stderr
            result = json.loads(cancel_all.stdout)
            assert result["cancelling"] == []
            assert sorted(o["cl_ord_id"] for o in result["not_cancelled"]) == ["d0", "d1", "d2"]
            assert {o["code"] for o in result["not_cancelled"]} == {"not_connected"}

            halt = fixgw_cli(stack, "halt", "--reason", "exchange unreachable")
            assert halt.returncode == 4, halt.stderr
            halted = json.loads(halt.stdout)
            assert halted["halted"] is True and halted["cancelling"] == []
            assert sorted(o["cl_ord_id"] for o in halted["waiting"]) == ["d0", "d1", "d2"]
            assert all("once the session is back" in o["reason"] for o in halted["waiting"])
            assert "3 open orders not cancelled now" in halt.stderr
            event = log.first(lambda e: e["type"] == "session.halted")
            assert event["waiting"] == halted["waiting"]  # the reply's shape

            proxy.refusing = False
            log.first(lambda e: e["type"] == "session.up" and e["seq"] > down["seq"], timeout=20)
            for n in range(3):
                log.find(f"d{n}", "order.canceled")
                at_exchange = gw.request("order_status", cl_ord_id=f"d{n}")
                assert (at_exchange["source"], at_exchange["status"]) == ("exchange", "canceled")
            assert gw.orders() == []
    finally:
        proxy.close()


def test_a_halt_over_the_cancel_rate_limit_cancels_the_rest_as_the_limit_allows(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(
        throttle={"limits": {"cancel": {"per_s": 2, "burst": 1}}, "policy": "reject"}
    )
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        rest_accepted(gw, log, "t", 3)
        halted = gw.request("halt")
        assert len(halted["cancelling"]) == 1
        assert {o["code"] for o in halted["waiting"]} == {"throttled"}
        assert len(halted["waiting"]) == 2
        for n in range(3):
            log.find(f"t{n}", "order.canceled")
        assert gw.orders() == []


def test_sigusr1_halts(make_stack: StackFactory) -> None:
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["session"])
        assert stack.gateway is not None and stack.gateway.popen is not None
        stack.gateway.popen.send_signal(signal.SIGUSR1)
        event = gw.wait_for(lambda e: e["type"] == "session.halted")
        assert event["by"] == "SIGUSR1"
        assert gw.status()["halted"]["by"] == "SIGUSR1"


def a_uid_with_no_name() -> int:
    """A user id the passwd database does not know, as `docker run --user 1234:0` or an
    OpenShift pod's arbitrary uid runs with."""
    for uid in itertools.count(54321):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("unreachable")


def test_the_kill_switch_works_from_a_shell_whose_uid_has_no_name() -> None:
    """In a container run under an arbitrary uid of group 0, with no passwd entry and no
    $USER or $LOGNAME, every client command died in getpass.getuser() before it sent
    anything: a traceback (KeyError; OSError from Python 3.13, told as "cannot reach the
    gateway"). The name is only the journal's label: the uid's number stands for it. As root
    (as CI runs the tests), the real `fixgw` runs as that uid, with a cleared environment."""
    root = Path(tempfile.mkdtemp(prefix="fixgw-nameless-"))
    root.chmod(0o710)  # group 0 may reach the socket (mode 0660, the gateway's group)
    stack = LocalStack(root=root, sim_port=free_port(), books=DEFAULT_BOOKS, symbols=["BTC/USD"])
    uid = a_uid_with_no_name()
    shell = {"PATH": "/usr/bin:/bin"} | (
        {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
    )
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client("desk") as gw:
            gw.subscribe(["orders"])
            log = EventLog(gw)
            rest_accepted(gw, log, "nameless", 1)
            halt = subprocess.run(
                [
                    *("setpriv", f"--reuid={uid}", "--regid=0", "--clear-groups"),
                    *(sys.executable, "-m", "fixgw", "halt", "--reason", "from a container"),
                    *("--socket", stack.socket_path, "--json"),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=shell,
            )
            assert (halt.returncode, halt.stderr) == (0, "")
            assert json.loads(halt.stdout)["cancelling"] == ["nameless0"]
            log.find("nameless0", "order.canceled")
            halted = gw.status()["halted"]
            assert re.fullmatch(rf"api client \d+ \(fixgw-cli:uid:{uid}\)", halted["by"])
            assert halted["reason"] == "from a container"
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


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


def test_a_later_hello_changes_cancel_on_disconnect_for_the_orders_placed_after_it_only(
    make_stack: StackFactory,
) -> None:
    """Each order keeps the word its client gave when it was placed, as the journal keeps it
    for a restart after a crash: a `hello` that asks for cancel on disconnect does not reach
    back to an order placed before, and one that says nothing of it (to read `seq`, say)
    does not let off the orders placed while it was asked for."""
    stack = make_stack()
    with stack.client("watcher") as watcher:
        watcher.subscribe(["orders"])
        log = EventLog(watcher)
        careful = Client.connect(stack.socket_path, name="careful")
        rest(careful, "placed-before-asking")
        careful.request("hello", name="careful", cancel_on_disconnect=True)
        rest(careful, "placed-asking")
        careful.request("hello", name="careful")
        rest(careful, "placed-after-asking")
        for cl_ord_id in ("placed-before-asking", "placed-asking", "placed-after-asking"):
            log.find(cl_ord_id, "order.accepted")
        careful.close()
        log.find("placed-asking", "order.canceled")
        # the exchange answers after any cancel the gateway might wrongly have sent
        watcher.request("order_status", cl_ord_id="placed-after-asking")
        statuses = {o["cl_ord_id"]: o["status"] for o in watcher.orders()}
    assert statuses == {"placed-before-asking": "new", "placed-after-asking": "new"}


def gone(stack: LocalStack, name: str) -> bool:
    """The gateway has seen the API client `name` go away."""
    assert stack.gateway is not None
    return any(
        '"client gone"' in line and f'"name":"{name}"' in line
        for line in stack.gateway.log().splitlines()
    )


def test_cancel_on_disconnect_while_the_session_is_down_cancels_once_it_is_back(
    make_stack: StackFactory,
) -> None:
    """As a halt's: the cancel owed when the client went away waits for the session, and
    goes out once it is back and reconciled."""
    stack = make_stack(start=False)
    proxy = between(stack)
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client("watcher") as watcher:
            watcher.subscribe(["orders", "session"])
            log = EventLog(watcher)
            careful = Client.connect(stack.socket_path, name="careful", cancel_on_disconnect=True)
            rest(careful, "gone-in-outage")
            log.find("gone-in-outage", "order.accepted")
            proxy.refusing = True
            proxy.drop()
            down = log.first(lambda e: e["type"] == "session.down")
            careful.close()
            wait_until(lambda: gone(stack, "careful"), 10, "the client gone")

            proxy.refusing = False
            log.first(lambda e: e["type"] == "session.up" and e["seq"] > down["seq"], timeout=20)
            log.find("gone-in-outage", "order.canceled")
            at_exchange = watcher.request("order_status", cl_ord_id="gone-in-outage")
            assert (at_exchange["source"], at_exchange["status"]) == ("exchange", "canceled")
    finally:
        proxy.close()


def test_a_clean_stop_cancels_on_disconnect_as_the_cancel_rate_allows(
    make_stack: StackFactory,
) -> None:
    """SIGTERM closes the careful client's connection, which owes its three orders a cancel;
    the cancel rate holds two of them back: the stop sends them at their turn before it logs
    out (within `session.logout_timeout_s`), rather than leave the orders live."""
    stack = make_stack(throttle={"limits": {"cancel": {"per_s": 2, "burst": 1}}})
    careful = Client.connect(stack.socket_path, name="careful", cancel_on_disconnect=True)
    with stack.client("watcher") as watcher:
        watcher.subscribe(["orders"])
        log = EventLog(watcher)
        for n in range(3):
            rest(careful, f"cod{n}")
            log.find(f"cod{n}", "order.accepted")
    assert stack.gateway is not None and stack.gateway.stop() == 0
    careful.close()
    sent = cancels_sent(stack)
    assert sorted(sent) == ["cod0", "cod1", "cod2"]


def test_a_halt_during_a_stop_sends_no_cancel_after_the_logout_and_says_so(
    make_stack: StackFactory,
) -> None:
    """SIGUSR1 once a SIGTERM stop has sent its Logout (the exchange slow to answer it), the
    cancel rate holding all but one cancel back: FIX sends nothing after a Logout, so no
    cancel goes; each order is said `waiting` and stays open, none left `pending_cancel` with
    its cancel queued and never sent. The halt is recorded, in its file too (no "could not
    be opened" error), and the next start cancels them. (A halt before the Logout has its
    cancels sent as the rate allows: the stop's drain waits for them.)"""
    stack = make_stack(
        start=False,
        throttle={"limits": {"cancel": {"per_s": 2, "burst": 1}}},
        session={"logout_timeout_s": 1},
    )
    proxy = between(stack)
    logouts: list[bytes] = []

    def logout_unanswered(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]] | None:
        if dict(fields).get(35) == b"5" and not logouts:
            logouts.append(dict(fields)[34])
            return None
        return fields

    proxy.rewrite_outbound = logout_unanswered
    orders = ["h0", "h1", "h2"]
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders"])
            rest_accepted(gw, EventLog(gw), "h", len(orders))
        assert stack.gateway is not None and stack.gateway.popen is not None
        stack.gateway.popen.send_signal(signal.SIGTERM)
        wait_until(lambda: logouts, 10, "the stop's Logout sent")
        stack.gateway.popen.send_signal(signal.SIGUSR1)
        assert stack.gateway.stop() == 0

        journal_path = stack.root / "journal.jsonl"
        journal = [json.loads(line) for line in journal_path.read_text().splitlines()]
        halted = next(e for e in journal if e["type"] == "session.halted")
        assert (halted["by"], halted["cancelling"]) == ("SIGUSR1", [])
        assert [w["cl_ord_id"] for w in halted["waiting"]] == orders
        assert all("the gateway is stopping" in w["reason"] for w in halted["waiting"])
        assert not [e for e in journal if e["type"] == "order.pending_cancel"]
        assert cancels_sent(stack) == []
        assert "kill switch file not written" not in stack.gateway.log()
        assert '"by":"SIGUSR1"' in (stack.root / "journal.jsonl.halt").read_text()

        stack.start_gateway()
        with stack.client() as gw:
            assert gw.status()["halted"]["by"] == "SIGUSR1"
            wait_until(lambda: gw.orders() == [], 15, "the halt's orders cancelled")
        assert sorted(cancels_sent(stack)) == orders
    finally:
        proxy.close()


def cancels_sent(stack: LocalStack) -> list[str]:
    """OrigClOrdIDs of the OrderCancelRequests the simulator received."""
    path = stack.root / "sim-store" / "orders.jsonl"
    return [
        raw.split("\x0141=")[1].split("\x01")[0]
        for line in path.read_text().splitlines()
        if "\x0135=F\x01" in (raw := json.loads(line).get("raw", ""))
    ]


def test_cancel_on_disconnect_holds_across_a_crash(make_stack: StackFactory) -> None:
    """A stop ends the connection and cancels; a crash ends it with no time to: the order
    says it was placed with cancel on disconnect, and the restarted gateway cancels it once
    reconciled, as a stop would have. The order of a client that did not ask stays open."""
    stack = make_stack()
    with stack.client("keeper") as keeper:
        rest(keeper, "kept")
        careful = Client.connect(stack.socket_path, name="careful", cancel_on_disconnect=True)
        rest(careful, "placed-before-the-stop")
        wait_until(lambda: {o["status"] for o in keeper.orders()} == {"new"}, 10, "both accepted")
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    careful.close()
    Path(stack.socket_path).unlink(missing_ok=True)

    stack.start_gateway()

    with stack.client("watcher") as watcher:
        wait_until(
            lambda: [o["cl_ord_id"] for o in watcher.orders()] == ["kept"],
            15,
            "the careful client's order cancelled",
        )
        at_exchange = watcher.request("order_status", cl_ord_id="placed-before-the-stop")
        assert (at_exchange["source"], at_exchange["status"]) == ("exchange", "canceled")


def test_a_cancel_on_disconnect_the_exchange_refuses_is_checked_and_sent_again(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    proxy = between(stack)
    refused: list[bytes] = []
    proxy.rewrite = refusing_the_first_cancel(refused)
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client("watcher") as watcher:
            watcher.subscribe(["orders"])
            log = EventLog(watcher)
            careful = Client.connect(stack.socket_path, name="careful", cancel_on_disconnect=True)
            rest(careful, "refused-once")
            log.find("refused-once", "order.accepted")
            careful.close()
            wait_until(lambda: refused, 10, "the cancel refused")
            rejected = log.find("refused-once", "order.cancel_rejected")
            assert rejected["status"] == "new"
            log.find("refused-once", "order.canceled", timeout=15)
            assert watcher.orders() == []
    finally:
        proxy.close()


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
            halted = gw.request("halt")
            assert (halted["cancelling"], halted["withdrawn"]) == (["first"], ["held"])
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
        with pytest.raises(ApiError) as full:
            rest(gw, "no-room")
        assert (full.value.code, full.value.message) == (
            "throttled",
            "over the new_order rate limit, and its throttle queue is full (queue_max 1); "
            "try again shortly",
        )


def test_a_status_request_abandoned_in_the_throttle_queue_gives_its_place_back(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(
        throttle={"limits": {"status": {"per_s": 0.2, "burst": 1}}, "queue_max": 1},
        api={"request_timeout_s": 10},  # a turn 5 s off comes within it: held
    )
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
