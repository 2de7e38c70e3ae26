"""Commands in OKCoin's form: the tags, the Account rule, and decimals as plain strings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from fixgw.domain import CancelOrder, OrderType, QueryOrder, Side, SubmitOrder
from fixgw.fix.tags import MsgType
from fixgw.venues.okcoin import outbound

TS = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
OPTIONS = outbound.DialectOptions(api_key="key", secret_key="secret")


def test_limit_order_carries_account_and_okcoin_codes() -> None:
    msg = outbound.new_order_single(
        SubmitOrder(
            ts=TS,
            cl_ord_id="c1",
            symbol="BTC/USD",
            side=Side.SELL,
            order_type=OrderType.LIMIT,
            qty=D("0.50"),
            price=D("3E+4"),
        ),
        OPTIONS,
    )
    assert msg.msg_type == "D"
    assert dict(msg.fields) == {
        1: "key,secret",
        11: "c1",
        38: "0.50",
        40: "2",
        54: "2",
        55: "BTC/USD",
        60: "20261125-10:00:00.123",
        44: "30000",
    }


def test_market_order_has_no_price() -> None:
    msg = outbound.new_order_single(
        SubmitOrder(
            ts=TS,
            cl_ord_id="c2",
            symbol="BTC/USD",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty=D("1"),
        ),
        OPTIONS,
    )
    assert (msg.get(40), msg.get(44)) == ("1", None)


def test_cancel_sends_our_cl_ord_id_as_orig_and_the_venue_id_beside_it() -> None:
    msg = outbound.order_cancel_request(
        CancelOrder(
            ts=TS,
            cl_ord_id="k1",
            orig_cl_ord_id="c1",
            order_id="X9",
            symbol="BTC/USD",
            side=Side.BUY,
        ),
        OPTIONS,
    )
    assert (msg.msg_type, msg.get(11), msg.get(41), msg.get(37), msg.get(1)) == (
        "F",
        "k1",
        "c1",
        "X9",
        None,
    )


@pytest.mark.parametrize("account_on", [frozenset({"D", "F", "H"}), frozenset()])
def test_account_goes_where_the_config_says(account_on: frozenset[str]) -> None:
    options = outbound.DialectOptions(api_key="key", secret_key="secret", account_on=account_on)
    status = outbound.order_status_request(
        QueryOrder(ts=TS, order_id="X9", cl_ord_id=None, symbol="BTC/USD", side=Side.BUY), options
    )
    assert status.msg_type == MsgType.ORDER_STATUS_REQUEST
    assert (status.get(1) is not None) == ("H" in account_on)


def test_logon_fields_and_the_secret_stays_out_of_repr() -> None:
    assert outbound.logon_fields(OPTIONS, reset_seq_num=False) == {553: "key", 554: "secret"}
    assert outbound.logon_fields(OPTIONS, reset_seq_num=True)[141] == "Y"
    assert "secret" not in repr(OPTIONS)
