"""The simulator restarted: it comes back as it was, refused requests and all. Whatever it
refused stays refused, and every order keeps the id it was reported under."""

from __future__ import annotations

from typing import Any

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.faultproxy import between

pytestmark = pytest.mark.integration


def wrong_account_for(cl_ord_id: bytes) -> Any:
    """A rewrite that gives that one NewOrderSingle an Account the exchange refuses."""

    def rewrite(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if (35, b"D") in fields and (11, cl_ord_id) in fields:
            return [(tag, b"k,WRONG" if tag == 1 else value) for tag, value in fields]
        return fields

    return rewrite


def rest(gw: Client, cl_ord_id: str, symbol: str = "BTC/USD") -> None:
    gw.new_order(
        cl_ord_id=cl_ord_id, symbol=symbol, side="buy", type="limit", qty="1", price="29000"
    )


def restart_sim(stack: LocalStack, log: EventLog) -> None:
    assert stack.sim is not None
    stack.sim.stop()
    down = log.first(lambda e: e["type"] == "session.down", timeout=15)
    stack.start_sim()
    log.first(lambda e: e["type"] == "session.up" and e["seq"] > down["seq"], timeout=20)


def at_exchange(gw: Client, order_id: str) -> tuple[str, str, str]:
    status = gw.order_status(order_id=order_id, symbol="BTC/USD", side="buy")
    assert status["source"] == "exchange"
    return status["cl_ord_id"], status["order_id"], status["status"]


def test_a_restart_brings_back_no_refused_request_and_shifts_no_order_id(
    make_stack: StackFactory,
) -> None:
    # DOGE/USD is a symbol of the gateway's the exchange does not list
    stack = make_stack(start=False, symbols=["BTC/USD", "LTC/USD", "DOGE/USD"])
    proxy = between(stack)
    proxy.rewrite_outbound = wrong_account_for(b"bad-account")
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders", "session"])
            log = EventLog(gw)
            rest(gw, "bad-account")
            assert log.find("bad-account", "order.rejected")["text"] == (
                "Account (1) must be apiKey,secretKey"
            )
            rest(gw, "bad-symbol", symbol="DOGE/USD")
            assert log.find("bad-symbol", "order.rejected")["reason"] == "unknown_symbol"
            rest(gw, "kept")
            kept = log.find("kept", "order.accepted")["order_id"]
            rest(gw, "canceled")
            canceled = log.find("canceled", "order.accepted")["order_id"]
            gw.cancel_order(cl_ord_id="canceled")
            log.find("canceled", "order.canceled")

            restart_sim(stack, log)

            assert at_exchange(gw, kept) == ("kept", kept, "new")
            assert at_exchange(gw, canceled) == ("canceled", canceled, "canceled")
            open_at_exchange = gw.request("orders", from_exchange=True)["orders"]
            assert [(o["cl_ord_id"], o["order_id"]) for o in open_at_exchange] == [("kept", kept)]
            gw.cancel_order(cl_ord_id="kept")  # by the id it was reported under
            log.find("kept", "order.canceled")
            assert at_exchange(gw, kept) == ("kept", kept, "canceled")
            assert gw.request("orders", from_exchange=True)["orders"] == []
    finally:
        proxy.close()
