"""A client's question about an order the gateway does not know is that client's business:
its reply, never an event for every subscriber nor a journal line. 300 `order_status`
requests for an unknown order_id made 300 `order.anomaly` events (cl_ord_id "NONE")."""

from __future__ import annotations

import pytest

from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration


def test_status_answers_about_orders_nobody_tracks_go_to_the_asker_only(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(orders={"keep_closed": 0})
    with stack.client("watcher") as watcher, stack.client("asker") as asker:
        watcher.subscribe(["orders", "errors", "session", "account"])
        asker.subscribe(["orders"])
        asker_events = EventLog(asker)
        forgotten = asker.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="9")
        order_id = asker_events.find(forgotten["cl_ord_id"], "order.accepted")["order_id"]
        asker.cancel_order(cl_ord_id=forgotten["cl_ord_id"])
        asker_events.find(forgotten["cl_ord_id"], "order.canceled")  # closed, then forgotten

        for n in range(30):
            unknown = asker.order_status(order_id=f"no-such-{n}", symbol="LTC/USD", side="buy")
            assert (unknown["source"], unknown["status"]) == ("exchange", "rejected")
            assert unknown["text"] == "unknown order"
            assert unknown["cl_ord_id"] is None  # was the venue's placeholder, "NONE"
        known_there = asker.order_status(order_id=order_id, symbol="LTC/USD", side="buy")
        assert (known_there["status"], known_there["cl_ord_id"]) == (
            "canceled",
            forgotten["cl_ord_id"],
        )

        marker = asker.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="8")
        seen = EventLog(watcher)
        seen.find(marker["cl_ord_id"], "order.accepted")  # every event before it has arrived
        assert [e for e in seen.seen if e["type"] == "order.anomaly"] == []
        assert [e for e in asker_events.seen if e["type"] == "order.anomaly"] == []
    journal = (stack.root / "journal.jsonl").read_text()
    assert "order.anomaly" not in journal and "no-such-" not in journal
