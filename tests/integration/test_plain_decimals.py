"""Quantities and prices are plain decimals at every door: the socket API and the FIX bridge
(config files: tests/unit/test_config.py). Anything else is refused, never journaled, never
sent: `1_000` went out as 38=1000, Arabic-Indic digits as 38=12345."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from fixgw.api.client import ApiError
from fixgw.testing import free_port
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.oms import Oms

pytestmark = pytest.mark.integration

NOT_PLAIN = [
    "1_000",
    "\u0661\u0662\u0663\u0664\u0665",  # Arabic-Indic 12345
    "\uff11",  # fullwidth 1
    " 1 ",
    "+1",
    "1.",
    ".5",
    "1e1",
]
NOW = "20261125-10:00:00.000"


def sent_to_the_exchange(root: Path) -> str:
    return (root / "sim-store" / "orders.jsonl").read_text()


def test_the_api_refuses_a_quantity_or_price_that_is_not_a_plain_decimal(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        for n, odd in enumerate(NOT_PLAIN):
            for field, code in (("qty", "invalid_qty"), ("price", "invalid_price")):
                order = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1"}
                order["price"] = "10"
                order[field] = odd
                with pytest.raises(ApiError) as refused:
                    gw.new_order(cl_ord_id=f"odd-{field}-{n}", **order)
                assert refused.value.code == code, odd
                assert "ASCII digits with at most one '.'" in refused.value.message
        plain = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1.5"}
        gw.new_order(cl_ord_id="plain", price="10.25", **plain)
        EventLog(gw).find("plain", "order.accepted")
        assert [o["cl_ord_id"] for o in gw.orders(all=True)] == ["plain"]
    assert "odd-" not in (stack.root / "journal.jsonl").read_text()
    assert "odd-" not in sent_to_the_exchange(stack.root)


def test_the_bridge_refuses_an_oms_quantity_or_price_that_is_not_a_plain_decimal(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """What QuickFIX's own check of a FIX float lets through (`1.`, `.5`) is refused as from
    an API client: an ExecutionReport 39=8 naming the rule; nothing reaches the exchange."""
    comp_id = f"OMS-{uuid.uuid4().hex[:8]}"
    stack = make_stack(start=False)
    port = free_port()
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": comp_id}],
    }
    stack.start_sim()
    stack.start_gateway()
    oms = Oms(tmp_path / comp_id, port, comp_id)
    oms.start()
    try:
        oms.wait_logged_on()
        odd = [(38, "1."), (38, ".5"), (44, "30010."), (44, ".5")]
        for n, (tag, value) in enumerate(odd):
            fields = {11: f"ODD-{n}", 55: "BTC/USD", 54: "1", 38: "1", 60: NOW, 40: "2", 44: "1"}
            fields[tag] = value
            oms.send("D", fields)
            rejected = oms.report(f"ODD-{n}", "8")
            assert rejected[39] == "8", rejected
            assert "ASCII digits with at most one '.'" in rejected[58], rejected
        oms.send("D", {11: "PLAIN", 55: "BTC/USD", 54: "1", 38: "0.5", 60: NOW, 40: "2", 44: "1"})
        oms.report("PLAIN", "0")
    finally:
        oms.stop()
    assert "ODD-" not in sent_to_the_exchange(stack.root)
    assert "PLAIN" in sent_to_the_exchange(stack.root)
