"""Order entry end to end: socket client -> gateway -> FIX -> simulator -> FIX -> events.

The simulator seeds BTC/USD with bids of 1.5 @ 29990 and 0.3 @ 29980 and an ask of
1.2 @ 30010; LTC/USD starts empty, so orders there rest until another order crosses them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.ids import base36
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.test_controls import fixgw_cli, gone

pytestmark = pytest.mark.integration


def test_gateway_logs_on_and_reports_session_up(stack: LocalStack) -> None:
    with stack.client() as gw:
        result = gw.subscribe(["session"], since=0)
        assert result["replayed"] >= 1
        event = gw.next_event(5)
        assert event["type"] == "session.up"
        assert event["session_id"] == "FIX.4.4:fixgw-it-0f4c6b1e->OKSERVER"
        status = gw.status()
    assert status["session"] == "up"
    assert status["seq_nums"]["next_sender"] >= 2


def test_bad_credentials_are_refused_with_okcoins_logout_reason(make_stack: StackFactory) -> None:
    stack = make_stack(start=False)
    stack.secret = "not-the-secret"
    stack.start_sim()
    stack.start_gateway(wait_for_logon=False)
    with stack.client() as gw:
        gw.subscribe(["session"], since=0)
        down = gw.wait_for(lambda e: e["type"] == "session.down", timeout=15)
        assert down["logout_reason"] == "invalid_credentials"
        assert gw.status()["session"] != "up"
        with pytest.raises(ApiError) as refused:
            gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="1")
        assert refused.value.code == "not_connected"
    assert "not-the-secret" not in stack.gateway.log()  # type: ignore[union-attr]


def test_limit_order_rests_on_the_book(gw: Client, events: EventLog) -> None:
    result = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="2.5", price="60.5")
    assert result["status"] == "pending_new"
    cl_ord_id = result["cl_ord_id"]
    pending = events.find(cl_ord_id, "order.pending_new")
    accepted = events.find(cl_ord_id, "order.accepted")
    assert (pending["qty"], pending["price"]) == ("2.5", "60.5")
    assert accepted["status"] == "new" and accepted["order_id"]
    assert accepted["leaves_qty"] == "2.5" and accepted["cum_qty"] == "0"
    [listed] = [o for o in gw.orders() if o["cl_ord_id"] == cl_ord_id]
    assert listed["status"] == "new"


def test_a_wait_for_an_event_that_does_not_come_says_no_event_matched(gw: Client) -> None:
    """The Python client's `wait_for` said "no answer from the gateway", as if it were gone,
    when the order's events had all come and none was a fill."""
    resting = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="20")
    ours = resting["cl_ord_id"]
    gw.wait_for(lambda e: e["type"] == "order.accepted" and e["cl_ord_id"] == ours)
    with pytest.raises(TimeoutError, match=r"^no matching event within 0.5s$"):
        gw.wait_for(lambda e: e["type"] == "order.filled" and e["cl_ord_id"] == ours, 0.5)


def test_polling_with_no_wait_hands_over_the_events_that_have_come(stack: LocalStack) -> None:
    """`next_event(0)`, `wait_for(..., 0)` and `events(0)` raised TimeoutError before
    reading anything, kept or waiting in the socket: a strategy polling without blocking was
    told "no event" while its fill was there, and quoted again on that belief."""
    with stack.client() as gw, stack.client() as poller:
        poller.subscribe(["orders"])
        gw.subscribe(["orders"])
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30010")
        gw.wait_for(lambda e: e["type"] == "order.filled", 10)
        time.sleep(0.3)  # the poller's lines, written in the same turn, are in its socket
        kinds = []
        for _ in range(10):
            try:
                kinds.append(poller.next_event(0)["type"])
            except TimeoutError:
                break
        assert kinds == ["order.pending_new", "order.accepted", "order.filled"]

        resting = gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="20")
        gw.wait_for(lambda e: e["type"] == "order.accepted", 10)
        time.sleep(0.3)
        found = poller.wait_for(lambda e: e["cl_ord_id"] == resting["cl_ord_id"], 0)
        assert found["type"] == "order.pending_new"
        rest = []
        with pytest.raises(TimeoutError):  # `events` ends as `next_event` does: nothing more
            for event in poller.events(0):
                rest.append(event["type"])
        assert rest == ["order.accepted"]


def test_connect_gives_up_within_its_timeout_on_a_gateway_that_does_not_answer(
    stack: LocalStack,
) -> None:
    """A stalled gateway (SIGSTOP stands in for a swap storm or a debugger): `Client.connect`
    with `timeout=1` waited 10 s, its `hello` answered by nothing under the default timeout."""
    assert stack.gateway is not None and stack.gateway.popen is not None
    pid = stack.gateway.popen.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError, match="no answer to hello from the gateway within 1 s"):
            Client.connect(stack.socket_path, timeout=1)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_resting_order_partially_filled_then_filled_by_later_orders(
    gw: Client, events: EventLog
) -> None:
    maker = gw.new_order(
        symbol="LTC/USD", side="sell", type="limit", qty="2", price="70", cl_ord_id="maker-1"
    )["cl_ord_id"]
    events.find(maker, "order.accepted")

    taker1 = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="0.5", price="70.5")[
        "cl_ord_id"
    ]
    taker1_filled = events.find(taker1, "order.filled")
    maker_partial = events.find(maker, "order.partially_filled")
    assert (taker1_filled["last_px"], taker1_filled["avg_px"]) == ("70", "70")
    assert (maker_partial["cum_qty"], maker_partial["leaves_qty"]) == ("0.5", "1.5")
    assert maker_partial["last_qty"] == "0.5"

    taker2 = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1.5", price="70")[
        "cl_ord_id"
    ]
    events.find(taker2, "order.filled")
    maker_filled = events.find(maker, "order.filled")
    assert [Decimal(maker_filled[k]) for k in ("cum_qty", "leaves_qty", "avg_px")] == [2, 0, 70]
    assert maker not in {o["cl_ord_id"] for o in gw.orders()}


def test_market_order_fills_against_the_seeded_book(gw: Client, events: EventLog) -> None:
    cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.5")["cl_ord_id"]
    filled = events.find(cl_ord_id, "order.filled")
    assert (filled["last_qty"], filled["last_px"], filled["avg_px"]) == ("0.5", "30010", "30010")


def test_market_order_sweeps_the_book_fill_by_fill_and_the_rest_is_canceled(
    gw: Client, events: EventLog
) -> None:
    cl_ord_id = gw.new_order(symbol="BTC/USD", side="sell", type="market", qty="2")["cl_ord_id"]
    canceled = events.find(cl_ord_id, "order.canceled")
    fills = [
        e
        for e in events.seen
        if e.get("cl_ord_id") == cl_ord_id and e["type"] == "order.partially_filled"
    ]
    assert [(f["last_qty"], f["last_px"], f["cum_qty"]) for f in fills] == [
        ("1.5", "29990", "1.5"),
        ("0.3", "29980", "1.8"),
    ]
    notional = Decimal("1.5") * 29990 + Decimal("0.3") * 29980
    assert Decimal(fills[1]["avg_px"]) == notional / Decimal("1.8")
    assert (canceled["cum_qty"], canceled["leaves_qty"]) == ("1.8", "0")
    assert "liquidity" in canceled["text"]


def test_cancel_of_a_resting_order(gw: Client, events: EventLog) -> None:
    cl_ord_id = gw.new_order(symbol="LTC/USD", side="sell", type="limit", qty="1", price="99")[
        "cl_ord_id"
    ]
    events.find(cl_ord_id, "order.accepted")
    result = gw.cancel_order(cl_ord_id=cl_ord_id)
    assert result["status"] == "pending_cancel"
    assert events.find(cl_ord_id, "order.pending_cancel")["status"] == "pending_cancel"
    canceled = events.find(cl_ord_id, "order.canceled")
    assert (canceled["status"], canceled["leaves_qty"]) == ("canceled", "0")
    with pytest.raises(ApiError) as closed:
        gw.cancel_order(cl_ord_id=cl_ord_id)
    assert closed.value.code == "order_closed"


def test_cancel_of_an_order_the_exchange_does_not_know_is_rejected(
    gw: Client, events: EventLog
) -> None:
    result = gw.cancel_order(order_id="no-such-order", symbol="BTC/USD", side="buy")
    rejected = gw.wait_for(
        lambda e: (
            e["type"] == "order.cancel_rejected"
            and e["cancel_cl_ord_id"] == result["cancel_cl_ord_id"]
        )
    )
    assert (rejected["reason"], rejected["order_id"]) == ("unknown_order", "no-such-order")
    # no order of the gateway's: what the exchange's answer tells, and nulls for the rest
    unknown = ("symbol", "side", "order_type", "qty", "price", "cum_qty", "leaves_qty", "avg_px")
    assert {k: rejected[k] for k in unknown} == dict.fromkeys(unknown)


def test_a_refused_cancel_of_a_partly_filled_order_carries_the_whole_order(
    make_stack: StackFactory,
) -> None:
    """docs/protocol.md: every order event carries the whole order. The exchange answers
    cancels with a BusinessMessageReject; the order it refuses to cancel has filled 1.2 of 2."""
    stack = make_stack(sim={"unsupported": ["F"]})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        order = gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="2", price="30010")
        cl_ord_id = order["cl_ord_id"]
        filled = log.find(cl_ord_id, "order.partially_filled")
        gw.cancel_order(cl_ord_id=cl_ord_id)
        rejected = log.find(cl_ord_id, "order.cancel_rejected")
    whole = ("order_id", "symbol", "side", "order_type", "qty", "price", "status")
    assert {k: rejected[k] for k in whole} == {k: filled[k] for k in whole}
    assert [rejected[k] for k in ("cum_qty", "leaves_qty", "avg_px")] == ["1.2", "0.8", "30010"]
    assert rejected["status"] == "partially_filled"


def test_cancel_of_an_order_unknown_to_the_gateway_is_refused_locally(
    gw: Client, events: EventLog
) -> None:
    with pytest.raises(ApiError) as err:
        gw.cancel_order(cl_ord_id="never-sent")
    assert err.value.code == "unknown_order"


def test_status_request_is_answered_by_the_exchange(gw: Client, events: EventLog) -> None:
    cl_ord_id = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="3", price="50")[
        "cl_ord_id"
    ]
    accepted = events.find(cl_ord_id, "order.accepted")
    status = gw.order_status(cl_ord_id=cl_ord_id)
    assert status["source"] == "exchange"
    assert (status["status"], status["order_id"], status["leaves_qty"]) == (
        "new",
        accepted["order_id"],
        "3",
    )
    status_event = events.find(cl_ord_id, "order.status")
    assert status_event["status"] == "new"

    unknown = gw.order_status(order_id="no-such-order", symbol="LTC/USD", side="buy")
    assert (unknown["status"], unknown["text"]) == ("rejected", "unknown order")


def test_requests_written_together_are_answered_in_order_and_after_the_client_stops_sending(
    stack: LocalStack, gw: Client, events: EventLog
) -> None:
    """The status request waits on the exchange; the order and the status behind it, written
    in the same call, are answered after it. The client then shuts its side: every reply
    still arrives before the gateway closes the connection."""
    cl_ord_id = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="40")[
        "cl_ord_id"
    ]
    events.find(cl_ord_id, "order.accepted")
    requests = [
        {"id": 1, "op": "order_status", "cl_ord_id": cl_ord_id},
        {"id": 2, "op": "new_order", "symbol": "LTC/USD", "side": "buy", "type": "limit"}
        | {"qty": "1", "price": "41"},
        {"id": 3, "op": "status"},
    ]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(stack.socket_path)
        raw.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        raw.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    replies = [json.loads(line) for line in received.splitlines()]
    assert [(r["id"], r["ok"]) for r in replies] == [(1, True), (2, True), (3, True)]
    assert (replies[0]["result"]["source"], replies[0]["result"]["status"]) == ("exchange", "new")
    assert replies[1]["result"]["status"] == "pending_new"
    assert replies[2]["result"]["session"] == "up"


@pytest.mark.parametrize("behind_a_wait", [False, True], ids=["at once", "behind a wait"])
def test_a_last_request_without_its_newline_is_answered_when_the_client_stops_sending(
    stack: LocalStack, gw: Client, events: EventLog, behind_a_wait: bool
) -> None:
    """A client that shut its side after a last line with no newline got no reply to it:
    it is answered, or refused if it is not a request, then the connection closes."""
    cl_ord_id = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="38")[
        "cl_ord_id"
    ]
    events.find(cl_ord_id, "order.accepted")
    first = {"id": 1, "op": "order_status" if behind_a_wait else "orders", "cl_ord_id": cl_ord_id}
    if not behind_a_wait:
        del first["cl_ord_id"]
    for last, answer in (
        (b'{"id": 2, "op": "status"}', (2, True)),
        (b'{"id": 2, "op": "sta', (None, False)),
    ):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(stack.socket_path)
            raw.sendall(json.dumps(first).encode() + b"\n" + last)
            raw.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := raw.recv(65536):
                received += chunk
        replies = [json.loads(line) for line in received.splitlines()]
        assert [(r["id"], r["ok"]) for r in replies] == [(1, True), answer], replies
        if not answer[1]:
            assert replies[1]["error"]["code"] == "invalid_json"


def test_thousands_of_lines_behind_a_request_that_waits_are_all_answered_in_order(
    stack: LocalStack, gw: Client, events: EventLog
) -> None:
    """More lines than the gateway holds back while a request waits: it stops reading from
    the client, and reads on once the answer is in."""
    cl_ord_id = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="39")[
        "cl_ord_id"
    ]
    events.find(cl_ord_id, "order.accepted")
    lines = [{"id": 0, "op": "order_status", "cl_ord_id": cl_ord_id}]
    lines += [{"id": n, "op": "orders"} for n in range(1, 3001)]
    with stack.client() as raw:
        padded = (json.dumps(line).encode() + b" " * 200 + b"\n" for line in lines)
        raw.send_raw(b"".join(padded))  # more than one read of the socket
        replies = [raw.read_message(10) for _ in lines]
    assert [r["id"] for r in replies] == list(range(3001))
    assert [r for r in replies if not r["ok"]] == []
    assert replies[0]["result"]["source"] == "exchange"


def write_and_close(stack: LocalStack, name: str, requests: list[dict[str, object]]) -> None:
    """A client that writes `requests` back to back and closes its connection at once,
    reading no reply."""
    with Client.connect(stack.socket_path, name=name) as gw:
        gw.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in requests))


def ever_placed(stack: LocalStack, cl_ord_id: str) -> bool:
    with stack.client("checker") as checker:
        return cl_ord_id in [o["cl_ord_id"] for o in checker.orders(all=True)]


@pytest.mark.parametrize(
    ("request_timeout_s", "lines_behind"),
    [(60, 0), (2, 1197)],
    ids=["seen-closing-at-once", "more-lines-than-held-back"],
)
def test_a_client_that_closes_while_a_request_waits_has_nothing_behind_it_served(
    make_stack: StackFactory, request_timeout_s: float, lines_behind: int
) -> None:
    """The exchange never answers the status request; the client closes its connection (not
    only its sending side). The order it wrote behind the status request is never placed.
    With few lines behind it, the gateway sees the close at once and the client is gone
    then, not once the wait is over. With more lines than it holds back, it stops reading
    the connection and sees the close only when the wait is over: the lines it holds, the
    order among them, are dropped rather than served."""
    stack = make_stack(sim={"unanswered": ["H"]}, api={"request_timeout_s": request_timeout_s})
    order = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1"}
    with stack.client("resting") as gw:
        gw.new_order(cl_ord_id="asked-about", price="40", **order)
    write_and_close(
        stack,
        "gave-up",
        [
            {"id": 1, "op": "order_status", "cl_ord_id": "asked-about"},
            {"id": 2, "op": "new_order", "cl_ord_id": "behind-the-wait", "price": "41"} | order,
            *({"id": n, "op": "orders"} for n in range(3, 3 + lines_behind)),
        ],
    )
    wait_until(lambda: gone(stack, "gave-up"), 10, "the client gone")
    assert not ever_placed(stack, "behind-the-wait")


def test_a_gateway_that_waits_longer_on_the_exchange_says_so_and_the_client_waits_for_its_answer(
    make_stack: StackFactory,
) -> None:
    """`api.request_timeout_s` 12, above the client's own 10 s: the `hello` reply says it,
    and a status request the exchange never answers gets the gateway's `timeout` error on
    a connection that stays open, not the client's TimeoutError and a closed connection."""
    stack = make_stack(sim={"unanswered": ["H"]}, api={"request_timeout_s": 12})
    order = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1", "price": "40"}
    with stack.client("patient") as gw:
        assert gw.request("hello", name="patient")["request_timeout_s"] == 12
        gw.new_order(cl_ord_id="asked-about", **order)
        # acknowledged, so that order_status asks the exchange (it names the OrderID)
        wait_until(lambda: gw.orders()[0]["status"] == "new", 10, "the exchange's ack")
        with pytest.raises(ApiError) as err:
            gw.order_status(cl_ord_id="asked-about")
        assert err.value.code == "timeout"
        assert [o["cl_ord_id"] for o in gw.orders()] == ["asked-about"]


def test_a_request_the_client_gave_up_on_closes_its_connection_so_none_runs_behind_its_back(
    make_stack: StackFactory,
) -> None:
    """The exchange never answers status requests. The client gives up on one before the
    gateway does: the connection is closed, so the order the strategy places next cannot
    wait behind the unanswered request and be placed after the strategy was told it had no
    answer. It connects again, and the order is placed once."""
    stack = make_stack(sim={"unanswered": ["H"]})
    order = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1", "price": "40"}
    with stack.client("strategy") as gw:
        gw.new_order(cl_ord_id="s1", **order)
        # acknowledged, so that order_status asks the exchange (it names the OrderID)
        wait_until(lambda: gw.orders()[0]["status"] == "new", 10, "the exchange's ack")
        with pytest.raises(TimeoutError, match=r"the connection is closed.*connect again"):
            gw.order_status(cl_ord_id="s1", timeout=1)
        with pytest.raises(ConnectionError, match="connect again"):
            gw.new_order(cl_ord_id="s2", **order)
    with stack.client("strategy") as again:
        again.new_order(cl_ord_id="s2", **order)
    with stack.client("checker") as checker:
        assert sorted(o["cl_ord_id"] for o in checker.orders()) == ["s1", "s2"]


def test_a_new_order_given_up_on_says_it_may_be_placed_and_how_to_ask(stack: LocalStack) -> None:
    """The gateway places an order as soon as it reads it: a client that gave up waiting for
    the reply is told the outcome is unknown, and which question finds it out."""
    order = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1", "price": "40"}
    with stack.client("impatient") as gw, pytest.raises(TimeoutError) as unanswered:
        gw.new_order(cl_ord_id="maybe", timeout=0, **order)
    with stack.client("impatient") as gw, pytest.raises(TimeoutError) as unnamed:
        gw.new_order(timeout=0, **order)
    assert "unknown" in str(unanswered.value)
    assert "order_status with cl_ord_id 'maybe'" in str(unanswered.value)
    assert "choose your own cl_ord_id" in str(unnamed.value)
    with stack.client("impatient") as gw:
        wait_until(lambda: gw.order_status(cl_ord_id="maybe")["status"] == "new", 10, "placed")


def test_order_the_exchange_rejects_becomes_order_rejected(make_stack: StackFactory) -> None:
    stack = make_stack(symbols=["BTC/USD", "LTC/USD", "DOGE/USD"])
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id = gw.new_order(
            symbol="DOGE/USD", side="buy", type="limit", qty="10", price="0.1"
        )["cl_ord_id"]
        rejected = EventLog(gw).find(cl_ord_id, "order.rejected")
    assert (rejected["reason"], rejected["status"]) == ("unknown_symbol", "rejected")
    assert rejected["order_id"] is None


def test_fixgw_order_new_exits_3_when_the_exchange_rejects_the_order_and_0_when_it_fills(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(symbols=["BTC/USD", "LTC/USD", "DOGE/USD"])  # the exchange lacks DOGE
    rejected = fixgw_cli(stack, "order", "new", "DOGE/USD", "buy", "10", "--price", "0.1")
    assert rejected.returncode == 3, rejected.stderr
    last = json.loads(rejected.stdout.splitlines()[-1])
    assert (last["type"], last["reason"]) == ("order.rejected", "unknown_symbol")
    assert "the exchange rejected the order" in rejected.stderr
    filled = fixgw_cli(stack, "order", "new", "BTC/USD", "buy", "0.5", "--price", "30010")
    assert filled.returncode == 0, filled.stderr
    assert json.loads(filled.stdout.splitlines()[-1])["status"] == "filled"


def test_duplicate_cl_ord_id_is_refused_locally(gw: Client, events: EventLog) -> None:
    gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="10", cl_ord_id="dup-7")
    with pytest.raises(ApiError) as err:
        gw.new_order(
            symbol="LTC/USD", side="buy", type="limit", qty="1", price="10", cl_ord_id="dup-7"
        )
    assert err.value.code == "duplicate_cl_ord_id"


def test_a_cancel_reusing_a_cl_ord_id_in_use_is_refused_locally(
    gw: Client, events: EventLog
) -> None:
    for cl_ord_id in ("reuse-1", "reuse-2"):
        gw.new_order(
            symbol="LTC/USD", side="buy", type="limit", qty="1", price="10", cl_ord_id=cl_ord_id
        )
        events.find(cl_ord_id, "order.accepted")
    with pytest.raises(ApiError) as an_order_id:
        gw.cancel_order(cl_ord_id="reuse-2", cancel_cl_ord_id="reuse-1")
    assert an_order_id.value.code == "duplicate_cl_ord_id"
    gw.cancel_order(cl_ord_id="reuse-2", cancel_cl_ord_id="reuse-cxl")
    events.find("reuse-2", "order.canceled")
    with pytest.raises(ApiError) as a_cancel_id:
        gw.cancel_order(cl_ord_id="reuse-1", cancel_cl_ord_id="reuse-cxl")
    assert a_cancel_id.value.code == "duplicate_cl_ord_id"
    assert {o["cl_ord_id"]: o["status"] for o in gw.orders()} == {"reuse-1": "new"}


def test_a_refused_cancels_id_stays_in_use_while_its_order_is_open_and_after_a_restart(
    make_stack: StackFactory,
) -> None:
    """The exchange refuses cancels (E1000). The refused cancel's ClOrdID was freed while
    its order stayed open: a second cancel and then a new order took it, and each was sent
    to the exchange, which had had it already (FIX wants ClOrdIDs unique); after a restart
    the same new order was refused. It is refused both times now, and sent once."""
    stack = make_stack(sim={"unavailable": ["F"]})
    order = {"symbol": "LTC/USD", "side": "sell", "type": "limit", "qty": "1", "price": "99"}
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        gw.new_order(**order, cl_ord_id="open-1")
        log.find("open-1", "order.accepted")
        gw.cancel_order(cl_ord_id="open-1", cancel_cl_ord_id="refused-cxl")
        assert log.find("open-1", "order.cancel_rejected")["status"] == "new"
        with pytest.raises(ApiError) as a_cancel:
            gw.cancel_order(cl_ord_id="open-1", cancel_cl_ord_id="refused-cxl")
        with pytest.raises(ApiError) as an_order:
            gw.new_order(**order, cl_ord_id="refused-cxl")
        assert [a_cancel.value.code, an_order.value.code] == ["duplicate_cl_ord_id"] * 2
    sent = "".join(body.read_text() for body in (stack.root / "store").glob("*.body"))
    assert sent.count("\x0111=refused-cxl\x01") == 1
    assert stack.gateway is not None and stack.gateway.stop() == 0
    stack.start_gateway()
    with stack.client() as gw, pytest.raises(ApiError) as after_a_restart:
        gw.new_order(**order, cl_ord_id="refused-cxl")
    assert after_a_restart.value.code == "duplicate_cl_ord_id"


def test_a_client_may_not_choose_an_id_the_gateway_could_make_up(gw: Client) -> None:
    """A client that chose the gateway's next id (`fx<start time>-<n>`) made another
    client's order without an id fail as `duplicate_cl_ord_id`."""
    order = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1", "price": "10"}
    made = gw.new_order(**order)["cl_ord_id"]
    stem, _, n = made.rpartition("-")
    following = [f"{stem}-{base36(int(n, 36) + k)}" for k in (1, 2)]
    with pytest.raises(ApiError) as an_order:
        gw.new_order(**order, cl_ord_id=following[0])
    with pytest.raises(ApiError) as a_cancel:
        gw.cancel_order(cl_ord_id=made, cancel_cl_ord_id=following[1])
    for refused in (an_order, a_cancel):
        assert refused.value.code == "invalid_field"
        assert "starts with 'fx'" in refused.value.message
    assert gw.new_order(**order)["cl_ord_id"] == following[0]
    assert gw.cancel_order(cl_ord_id=made)["cancel_cl_ord_id"] == following[1]


def test_generated_cl_ord_ids_are_unique_across_gateway_restarts(stack: LocalStack) -> None:
    with stack.client() as gw:
        first = {
            gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="10")[
                "cl_ord_id"
            ]
            for _ in range(5)
        }
    assert stack.gateway is not None and stack.gateway.stop() == 0
    stack.start_gateway()
    with stack.client() as gw:
        second = {
            gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="10")[
                "cl_ord_id"
            ]
            for _ in range(5)
        }
    assert len(first | second) == 10


def test_sigterm_logs_out_and_exits_cleanly(stack: LocalStack) -> None:
    assert stack.gateway is not None and stack.sim is not None
    assert stack.gateway.stop(signal.SIGTERM) == 0
    wait_until(
        lambda: "client logged out" in stack.sim.log(), 10, "the simulator to see the logout"
    )  # type: ignore[union-attr]
    assert "gateway stopped" in stack.gateway.log()


def test_secrets_never_reach_the_logs(stack: LocalStack, gw: Client, events: EventLog) -> None:
    cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")["cl_ord_id"]
    events.find(cl_ord_id, "order.filled")
    assert stack.gateway is not None and stack.sim is not None
    stack.gateway.stop()
    for log in (stack.gateway.log(), stack.sim.log()):
        assert "it-secret-key" not in log
        assert "554=" not in log or "554=***" in log
    assert "fix out" in stack.gateway.log()  # debug message logging was on, masked
    store = Path(stack.gateway_config()["session"]["store_dir"])
    assert "it-secret-key" in "".join(f.read_text(errors="replace") for f in store.iterdir())
    assert stat.S_IMODE(store.stat().st_mode) == 0o700  # so the store is the service's alone


def test_logs_name_every_order_event_and_decode_fix_with_tag_names(
    stack: LocalStack, gw: Client, events: EventLog
) -> None:
    cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")["cl_ord_id"]
    filled = events.find(cl_ord_id, "order.filled")
    gateway = stack.gateway
    assert gateway is not None

    def logged() -> list[dict[str, str]]:
        return [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]

    # Order-event lines are held for a moment (HOLD_S) after the event reaches clients.
    wait_until(lambda: any(x["event"] == "order.filled" for x in logged()), 10, "the fill's line")
    lines = logged()
    fill_log = next(x for x in lines if x["event"] == "order.filled")
    assert (fill_log["cl_ord_id"], fill_log["order_id"], fill_log["symbol"]) == (
        cl_ord_id,
        filled["order_id"],
        "BTC/USD",
    )
    fix_out = next(x["msg"] for x in lines if x["event"] == "fix out" and "ClOrdID(11)" in x["msg"])
    assert "MsgType(35)=D" in fix_out and "Account(1)=***" in fix_out
    assert any(x["event"] == "fix in" and "ExecType(150)=" in x["msg"] for x in lines)


def test_closed_orders_beyond_keep_closed_are_forgotten_and_the_exchange_answers_for_them(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(orders={"keep_closed": 1})
    with stack.client() as gw:
        events = EventLog(gw)
        gw.subscribe(["orders"])
        closed = []
        for n in range(3):
            cl_ord_id = gw.new_order(
                symbol="LTC/USD", side="buy", type="limit", qty="1", price=str(10 + n)
            )["cl_ord_id"]
            order_id = events.find(cl_ord_id, "order.accepted")["order_id"]
            gw.cancel_order(cl_ord_id=cl_ord_id)
            events.find(cl_ord_id, "order.canceled")
            closed.append((cl_ord_id, order_id))
        resting = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="5")
        events.find(resting["cl_ord_id"], "order.accepted")

        for cl_ord_id, _ in closed[:2]:
            with pytest.raises(ApiError) as forgotten:
                gw.order_status(cl_ord_id=cl_ord_id)
            assert forgotten.value.code == "unknown_order"
        with pytest.raises(ApiError) as kept:
            gw.cancel_order(cl_ord_id=closed[2][0])
        assert kept.value.code == "order_closed"
        answer = gw.order_status(order_id=closed[0][1], symbol="LTC/USD", side="buy")
        assert (answer["source"], answer["status"]) == ("exchange", "canceled")
        assert gw.status()["open_orders"] == 1

    assert stack.gateway is not None and stack.gateway.stop() == 0
    stack.start_gateway()
    with stack.client() as gw:
        assert gw.order_status(cl_ord_id=resting["cl_ord_id"])["status"] == "new"
        with pytest.raises(ApiError) as after_restart:
            gw.order_status(cl_ord_id=closed[1][0])
        assert after_restart.value.code == "unknown_order"
        assert gw.status()["open_orders"] == 1
