"""The rest of OKCoin's dialect against the simulator: account info, exception responses,
session and business rejects, order mass status, and the gateway's own trades."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.api.client import ApiError
from fixgw.config import bundled_dictionary
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration

START = {"BTC": "10", "LTC": "1000", "USD": "1000000"}


def test_account_info_and_a_refresh_after_every_burst_of_fills(make_stack: StackFactory) -> None:
    stack = make_stack(sim={"accounts": []})
    with stack.client() as gw:
        gw.subscribe(["account"])
        before = gw.request("account")
        assert before["currency"] == "USD"
        assert {c: b["free"] for c, b in before["balances"].items()} == START
        assert before["balance"] == ["1000000"]
        # Buy 0.5 BTC at the seeded ask (30010) and rest a sell of 1 LTC at 99.
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30010")
        gw.new_order(symbol="LTC/USD", side="sell", type="limit", qty="1", price="99")
        # Nobody asks: the gateway refreshes the balances itself after the fill.
        balance = EventLog(gw).first(
            lambda e: e["type"] == "account.balance" and e["balances"]["BTC"]["free"] != "10"
        )
        now = gw.request("account")
    assert balance["balances"]["BTC"] == {"free": "10.5", "frozen": "0"}
    assert Decimal(now["balances"]["USD"]["free"]) == 1_000_000 - Decimal("0.5") * 30010
    assert now["balances"]["LTC"] == {"free": "999", "frozen": "1"}


def test_the_exchange_refuses_what_the_account_cannot_pay_for_and_frees_what_a_cancel_held(
    make_stack: StackFactory,
) -> None:
    """The account holds 10 BTC and 1,000,000 USD: a sell of 11 BTC, or a buy for more USD
    than is free, is rejected by the exchange (OrdRejReason 3, order exceeds limit); a
    resting buy holds its cost until it is cancelled."""
    stack = make_stack(sim={"accounts": []})
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        gw.new_order(
            symbol="BTC/USD", side="sell", type="limit", qty="11", price="40000", cl_ord_id="big"
        )
        rejected = events.find("big", "order.rejected")
        assert rejected["reason"] == "exceeds_limit" and "insufficient BTC" in rejected["text"]
        gw.new_order(
            symbol="BTC/USD", side="buy", type="limit", qty="30", price="20000", cl_ord_id="held"
        )
        events.find("held", "order.accepted")
        usd = gw.request("account")["balances"]["USD"]
        assert usd == {"free": "400000", "frozen": "600000"}
        gw.new_order(
            symbol="BTC/USD", side="buy", type="limit", qty="21", price="20000", cl_ord_id="more"
        )
        assert events.find("more", "order.rejected")["reason"] == "exceeds_limit"
        gw.new_order(symbol="BTC/USD", side="sell", type="market", qty="10.5", cl_ord_id="mkt")
        assert "insufficient BTC" in events.find("mkt", "order.rejected")["text"]
        gw.cancel_order(cl_ord_id="held")
        events.find("held", "order.canceled")
        assert gw.request("account")["balances"]["USD"] == {"free": "1000000", "frozen": "0"}
        gw.new_order(
            symbol="BTC/USD", side="buy", type="limit", qty="21", price="20000", cl_ord_id="fits"
        )
        events.find("fits", "order.accepted")


def test_balances_are_refreshed_at_the_configured_interval(make_stack: StackFactory) -> None:
    stack = make_stack(account={"refresh_s": 0.3, "after_fill": False})
    with stack.client() as gw:
        gw.subscribe(["account"])
        log = EventLog(gw)
        first = log.first(lambda e: e["type"] == "account.balance", timeout=5)
        log.first(lambda e: e["type"] == "account.balance" and e["seq"] > first["seq"], timeout=5)


def test_an_exception_response_fails_the_request_and_is_published(make_stack: StackFactory) -> None:
    stack = make_stack(sim={"unavailable": ["Z1000"]})
    with stack.client() as gw:
        gw.subscribe(["errors"])
        with pytest.raises(ApiError) as err:
            gw.request("account")
        assert err.value.code == "exchange_error"
        event = EventLog(gw).first(lambda e: e["type"] == "exchange.error")
    assert (event["source"], event["acc_req_id"]) == ("exception", event["acc_req_id"])
    assert event["acc_req_id"] and "cannot be served" in event["text"]


def test_a_business_reject_names_the_request_and_fails_it(make_stack: StackFactory) -> None:
    stack = make_stack(sim={"unsupported": ["AF"]})
    with stack.client() as gw:
        gw.subscribe(["errors"])
        with pytest.raises(ApiError) as err:
            gw.request("orders", from_exchange=True)
        assert err.value.code == "exchange_error"
        event = EventLog(gw).first(lambda e: e["type"] == "exchange.error")
    assert (event["source"], event["ref_msg_type"], event["reason"]) == (
        "business_reject",
        "AF",
        "3",
    )


def test_a_session_reject_of_an_order_rejects_the_order(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """An exchange whose dictionary wants Text (58) on every order rejects ours at the session
    level, naming only the sequence number; the gateway ties it to the ClOrdID."""
    stricter = tmp_path / "stricter.xml"
    text = bundled_dictionary().read_text()
    marker = '<message name="NewOrderSingle" msgtype="D" msgcat="app">'
    stricter.write_text(text.replace(marker, marker + '\n   <field name="Text" required="Y" />'))
    stack = make_stack(sim={"dictionary": str(stricter)})
    with stack.client() as gw:
        gw.subscribe(["orders", "errors"])
        cl_ord_id = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="10")[
            "cl_ord_id"
        ]
        log = EventLog(gw)
        error = log.first(lambda e: e["type"] == "exchange.error")
        rejected = log.find(cl_ord_id, "order.rejected")
    assert (error["source"], error["cl_ord_id"], error["ref_msg_type"]) == (
        "session_reject",
        cl_ord_id,
        "D",
    )
    assert "58" in (error["reason"] or "") + (error["text"] or "")
    assert rejected["status"] == "rejected" and "session_reject" in rejected["text"]


def test_orders_from_the_exchange_by_mass_status(make_stack: StackFactory) -> None:
    stack = make_stack()
    with stack.client() as gw:
        assert gw.request("orders", from_exchange=True)["orders"] == []
        for price in ("10", "11"):
            gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price=price)
        gw.new_order(symbol="BTC/USD", side="sell", type="limit", qty="1", price="40000")
        everything = gw.request("orders", from_exchange=True)["orders"]
        ltc = gw.request("orders", from_exchange=True, symbol="LTC/USD")["orders"]
    assert sorted(o["price"] for o in everything) == ["10", "11", "40000"]
    assert {o["status"] for o in everything} == {"new"}
    assert sorted(o["price"] for o in ltc) == ["10", "11"]


def test_orders_of_one_symbol_are_that_symbols_only(make_stack: StackFactory) -> None:
    """`symbol` without `from_exchange` was dropped: asking for LTC/USD's open orders gave
    BTC/USD's too, which a strategy cancelling its LTC/USD orders would have cancelled."""
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        for cl_ord_id, symbol, price in (
            ("btc-1", "BTC/USD", "100"),
            ("ltc-1", "LTC/USD", "10"),
            ("ltc-2", "LTC/USD", "11"),
        ):
            gw.new_order(
                symbol=symbol, side="buy", type="limit", qty="1", price=price, cl_ord_id=cl_ord_id
            )
            log.find(cl_ord_id, "order.accepted")
        gw.cancel_order(cl_ord_id="ltc-2")
        log.find("ltc-2", "order.canceled")
        open_ltc = gw.request("orders", symbol="LTC/USD")["orders"]
        every_ltc = gw.request("orders", symbol="LTC/USD", all=True)["orders"]
        every_order = gw.request("orders", all=True)["orders"]
    assert [o["cl_ord_id"] for o in open_ltc] == ["ltc-1"]
    assert sorted(o["cl_ord_id"] for o in every_ltc) == ["ltc-1", "ltc-2"]
    assert sorted(o["cl_ord_id"] for o in every_order) == ["btc-1", "ltc-1", "ltc-2"]


def test_closed_orders_from_the_exchange_are_refused_not_dropped(make_stack: StackFactory) -> None:
    """The exchange lists its open orders only: `all` with `from_exchange` was dropped
    silently; it is refused, and nothing is asked of the exchange."""
    stack = make_stack()
    with stack.client() as gw, pytest.raises(ApiError) as refused:
        gw.request("orders", all=True, from_exchange=True)
    assert refused.value.code == "invalid_request"
    assert "open orders only" in refused.value.message


def test_a_symbol_not_in_the_config_is_refused_by_orders_and_trades(
    make_stack: StackFactory,
) -> None:
    """They answered a misspelt symbol with an empty list, as if there were no fills or open
    orders; `orders` with `from_exchange` even asked the exchange about it."""
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30010")
        EventLog(gw).first(lambda e: e["type"] == "order.filled")
        for op, fields in (
            ("trades", {}),
            ("orders", {}),
            ("orders", {"all": True}),
            ("orders", {"from_exchange": True}),
        ):
            with pytest.raises(ApiError) as refused:
                gw.request(op, symbol="BTC-USD", **fields)
            assert refused.value.code == "unknown_symbol", (op, fields)
            assert "known: BTC/USD, LTC/USD" in refused.value.message
    sent = "".join(body.read_text() for body in (stack.root / "store").glob("*.body"))
    assert "\x0155=BTC/USD\x01" in sent  # the order: the store holds what was sent
    assert "\x0155=BTC-USD\x01" not in sent


def test_trades_are_this_gateways_fills(make_stack: StackFactory) -> None:
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id = gw.new_order(symbol="BTC/USD", side="sell", type="market", qty="1.6")[
            "cl_ord_id"
        ]
        EventLog(gw).find(cl_ord_id, "order.filled")
        trades = gw.request("trades", symbol="BTC/USD")["trades"]
        assert gw.request("trades", symbol="LTC/USD")["trades"] == []
        assert gw.request("trades", limit=1)["trades"] == trades[-1:]
    assert [(t["qty"], t["price"], t["cl_ord_id"]) for t in trades] == [
        ("1.5", "29990", cl_ord_id),
        ("0.1", "29980", cl_ord_id),
    ]
    assert stack.gateway is not None
    stack.gateway.stop()
    stack.start_gateway()
    with stack.client() as gw:
        assert gw.request("trades")["trades"] == trades  # read back from the journal
