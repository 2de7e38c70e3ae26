"""Reconciliation: orders filled and cancelled on the simulator while the gateway is stopped
are reported by the restarted gateway, exactly once each."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration

OTHER_FIRM = {"comp_id": "other-firm-5d1e", "api_key": "other-key", "secret_key": "other-secret"}


def rest(gw: Client, side: str, qty: str, price: str, cl_ord_id: str) -> None:
    gw.new_order(
        symbol="LTC/USD", side=side, type="limit", qty=qty, price=price, cl_ord_id=cl_ord_id
    )
    EventLog(gw).find(cl_ord_id, "order.accepted")


def another_gateway(main: LocalStack, name: str, **overrides: Any) -> LocalStack:
    root = main.root / name
    root.mkdir()
    return LocalStack(
        root=root,
        sim_port=main.sim_port,
        books={},
        symbols=main.symbols,
        gateway_overrides=overrides,
    )


def test_changes_made_while_the_gateway_was_stopped_are_reported_once(
    make_stack: StackFactory,
) -> None:
    main = make_stack(sim={"accounts": [OTHER_FIRM]})
    with main.client() as gw:
        gw.subscribe(["orders"])
        rest(gw, "buy", "1", "60", "will-fill")
        rest(gw, "buy", "2", "59", "will-half-fill")
        rest(gw, "sell", "1", "80", "will-cancel")
        rest(gw, "sell", "1", "81", "unchanged")
        order_id_to_cancel = next(
            o["order_id"] for o in gw.orders() if o["cl_ord_id"] == "will-cancel"
        )
        last_seq = gw.status()["last_event_seq"]
    assert main.gateway is not None and main.gateway.stop() == 0

    # Another firm trades against two of the orders.
    other = another_gateway(main, "other", session={"sender_comp_id": OTHER_FIRM["comp_id"]})
    other.api_key, other.secret = OTHER_FIRM["api_key"], OTHER_FIRM["secret_key"]
    other.start_gateway()
    with other.client() as gw:
        gw.subscribe(["orders"])
        taker = gw.new_order(symbol="LTC/USD", side="sell", type="limit", qty="2", price="59")[
            "cl_ord_id"
        ]
        EventLog(gw).find(taker, "order.filled")
    other.stop()

    # An operator's tool, on the same FIX session and store, cancels one by its exchange id.
    tool = another_gateway(main, "tool", session={"store_dir": str(main.root / "store")})
    tool.start_gateway()
    with tool.client() as gw:
        gw.subscribe(["orders"])
        gw.cancel_order(order_id=order_id_to_cancel, symbol="LTC/USD", side="sell")
        EventLog(gw).first(
            lambda e: e["type"] == "order.canceled" and e["order_id"] == order_id_to_cancel
        )
    tool.stop()

    main.start_gateway()
    wait_until(lambda: main.status()["ready"], 15, "reconciliation")
    expected = [
        ("will-cancel", "order.canceled"),
        ("will-fill", "order.filled"),
        ("will-half-fill", "order.partially_filled"),
    ]
    with main.client() as gw:
        gw.subscribe(["orders"], since=last_seq)
        log = EventLog(gw)
        for cl_ord_id, type_ in expected:
            log.find(cl_ord_id, type_)
        with contextlib.suppress(TimeoutError):
            while True:  # and nothing more
                log.seen.append(gw.next_event(1.0))
        seen = log.seen
        orders = {o["cl_ord_id"]: o for o in gw.orders(all=True)}
    changes = [(e["cl_ord_id"], e["type"]) for e in seen]
    assert sorted(changes) == expected, changes
    fill = next(e for e in seen if e["cl_ord_id"] == "will-fill")
    assert (fill["last_qty"], fill["last_px"], fill["cum_qty"]) == ("1", "60", "1")
    half = next(e for e in seen if e["cl_ord_id"] == "will-half-fill")
    assert (Decimal(half["last_qty"]), Decimal(half["last_px"])) == (1, 59)
    assert [
        orders[k]["status"] for k in ("will-fill", "will-half-fill", "will-cancel", "unchanged")
    ] == ["filled", "partially_filled", "canceled", "new"]
