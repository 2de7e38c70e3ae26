"""`fixgw journal compact`: a gateway stopped, its journal compacted, started again, goes on
as it would have on the whole journal: the same open and closed orders, the halt in force,
the ids still refused, seqs after the last one, reconciliation, fills told once. Only a
`since` replay from before the horizon is incomplete, and says so."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError
from fixgw.journal import compacted_through
from fixgw.testing import LocalStack
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.test_journal_damage import fixgw

pytestmark = pytest.mark.integration

RESTING = 8
FILLED = 300
KEEP_CLOSED = 20
CLOSED = ("filled", "canceled", "rejected")
TOPICS = ["orders", "session", "errors", "account"]
"""20 closed orders kept whole; the ids of the last 200 forgotten still refused."""


def place(stack: LocalStack) -> None:
    """`RESTING` buys of LTC/USD left open (at 10 to 17), `FILLED` buys of BTC/USD that fill."""
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        for n in range(RESTING):
            gw.new_order(cl_ord_id=f"rest-{n}", symbol="LTC/USD", side="buy", type="limit",
                         qty="1", price=f"{10 + n}")  # fmt: skip
        for n in range(FILLED):
            gw.new_order(cl_ord_id=f"fill-{n}", symbol="BTC/USD", side="buy", type="limit",
                         qty="0.001", price="30010")  # fmt: skip
        for n in range(RESTING):
            events.find(f"rest-{n}", "order.accepted")
        for n in range(FILLED):
            events.find(f"fill-{n}", "order.filled")
        halted = gw.request("halt", reason="compaction test")
        assert sorted(halted["cancelling"]) == sorted(f"rest-{n}" for n in range(RESTING))
        for n in range(RESTING):  # the exchange refuses cancels: they stay open, halted
            events.find(f"rest-{n}", "order.cancel_rejected")


def known(stack: LocalStack) -> dict[str, Any]:
    with stack.client() as gw:
        orders = gw.orders(all=True)
        return {
            "open": [(o["cl_ord_id"], o["order_id"]) for o in orders if o["status"] not in CLOSED],
            "closed": [(o["cl_ord_id"], o["cum_qty"]) for o in orders if o["status"] in CLOSED],
            "halted": gw.status()["halted"],
            "trades": gw.request("trades", limit=10_000)["trades"],
        }  # fmt: skip


def test_a_gateway_started_on_its_compacted_journal_goes_on_as_on_the_whole_one(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(sim={"unsupported": ["F"]}, orders={"keep_closed": KEEP_CLOSED})
    place(stack)
    before = known(stack)
    assert [o[0] for o in before["open"]] == [f"rest-{n}" for n in range(RESTING)]
    assert [o[0] for o in before["closed"]] == [f"fill-{n}" for n in range(280, 300)]
    assert before["halted"]["reason"] == "compaction test"
    assert stack.gateway is not None and stack.gateway.stop() == 0
    journal = stack.root / "journal.jsonl"
    whole = journal.read_bytes()
    last_seq = int(whole.splitlines()[-1].split(b",")[0].removeprefix(b'{"seq":'))
    config = str(stack.root / "gateway.yaml")

    done = fixgw(stack, "journal", "compact", "-c", config, "--keep-days", "0",
                 "--keep-trades", "50")  # fmt: skip

    assert done.returncode == 0, done.stderr
    compacted = journal.read_bytes()
    horizon = compacted_through(journal)
    assert f"horizon seq {horizon}" in done.stdout
    assert f"{RESTING} open orders, {KEEP_CLOSED} closed ones kept" in done.stdout
    assert "200 forgotten ones whose ids are still refused" in done.stdout
    assert len(compacted) < len(whole) * 0.8  # the lines of 80 orders of 308 gone
    assert b'"cl_ord_id":"fill-0"' not in compacted and b'"cl_ord_id":"fill-100"' in compacted
    assert (stack.root / "journal.jsonl.precompact").read_bytes() == whole

    stack.start_gateway()  # logged on and reconciled: every open order asked about
    after = known(stack)
    assert after["open"] == before["open"]
    assert after["closed"] == before["closed"]
    assert after["halted"] == before["halted"]
    assert after["trades"] == before["trades"][-len(after["trades"]) :]
    assert len(after["trades"]) >= 50
    with stack.client() as gw:
        replay = gw.subscribe(TOPICS, since=0)
        assert replay["compacted_through"] == horizon
        assert 0 < replay["replayed"] < whole.count(b"\n")
        gw.take_events()
        gw.request("unsubscribe")
        since_horizon = gw.subscribe(TOPICS, since=horizon)
        assert "compacted_through" not in since_horizon
        replayed = gw.take_events()
        assert [e["seq"] for e in replayed if e["seq"] <= last_seq] == [last_seq]
        assert all(e["seq"] > last_seq for e in replayed[1:])  # seqs go on after the last

        with pytest.raises(ApiError) as refused:
            gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="10")
        assert refused.value.code == "halted"
        gw.request("resume")
        with pytest.raises(ApiError) as taken:
            gw.new_order(cl_ord_id="fill-150", symbol="BTC/USD", side="buy", type="limit",
                         qty="0.001", price="30010")  # fmt: skip
        assert taken.value.code == "duplicate_cl_ord_id"  # forgotten, still refused

        events = EventLog(gw)
        gw.new_order(cl_ord_id="taker", symbol="LTC/USD", side="sell", type="limit",
                     qty="1", price="17")  # fmt: skip
        filled = events.find("rest-7", "order.filled")
        events.find("taker", "order.filled")
        assert filled["seq"] > last_seq
        gw.status()  # every event sent before its reply is here now
        events.seen += gw.take_events()
        fills = [
            e for e in events.seen if e["type"] == "order.filled" and e["cl_ord_id"] == "rest-7"
        ]
        assert fills == [filled]  # told once
        trades = gw.request("trades", limit=10)["trades"]
        assert [t["cl_ord_id"] for t in trades].count("rest-7") == 1

    raised = "journal compacted with a lower orders.keep_closed"
    assert stack.gateway is not None and raised not in stack.gateway.log()
    assert stack.gateway.stop() == 0
    stack.gateway_overrides["orders"]["keep_closed"] = KEEP_CLOSED * 2
    stack.start_gateway()  # the ids of 400 forgotten orders refused: the journal has 200
    [warning] = [json.loads(line) for line in stack.gateway.log().splitlines() if raised in line]
    assert (warning["keep_closed"], warning["compacted_with"]) == (40, KEEP_CLOSED)
    assert warning["compacted_through"] == horizon


def test_compaction_is_refused_while_the_gateway_runs(make_stack: StackFactory) -> None:
    stack = make_stack()
    journal = stack.root / "journal.jsonl"
    before = hashlib.sha256(journal.read_bytes()).hexdigest()

    done = fixgw(stack, "journal", "compact", "-c", str(stack.root / "gateway.yaml"),
                 "--keep-days", "0")  # fmt: skip

    assert done.returncode == 1
    assert "is in use by another process" in done.stderr and "stop the gateway" in done.stderr
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    assert not Path(f"{journal}.precompact").exists()
    assert stack.status()["session"] == "up"
