"""Orders through their lives among the engine's real services (`engine_kit.Engine`), each
step a captured message: the events the tracker's transitions make of them, as the order
events service publishes, counts and notes them; and the other reports (a cancel reject,
the account) to where they belong."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from fixgw.api.protocol import CancelOrderRequest
from fixgw.domain import (
    AccountBalance,
    CancelRejectReason,
    CurrencyBalance,
    OrderCanceled,
    OrderCancelRejected,
    OrderRejected,
    OrderStatus,
    RejectReason,
    Side,
)
from fixgw.fix.tags import MsgType
from fixgw.results import CancelAccepted
from tests.unit.engine_kit import Clock, Engine


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path, symbols=("BTC/USD", "LTC/USD", "DOGE/USD"))
    engine.logon()
    engine.bus.take()
    return engine


def open_orders(engine: Engine) -> int:
    return engine.orders.open_count()


def test_a_market_order_filled_in_two_parts(engine: Engine) -> None:
    engine.place("market-1", symbol="BTC/USD", side=Side.SELL, qty="2", price=None)
    assert open_orders(engine) == 1
    engine.feed("execution_report_partial_fill")
    engine.feed("execution_report_fill")
    engine.feed("execution_report_fill")  # a duplicate ExecID: dropped

    assert engine.bus.types() == ["order.pending_new", "order.partially_filled", "order.filled"]
    order = engine.order("market-1")
    assert (order.status, order.cum_qty, order.avg_px, order.order_id) == (
        OrderStatus.FILLED,
        D(2),
        D("29987.5"),
        "hohd4bojt7-14",
    )
    assert [(f.qty, f.price, f.exec_id) for f in engine.fills.last("BTC/USD", 10)] == [
        (D("1.5"), D(29990), "Ehohd4bojt7-9"),
        (D("0.5"), D(29980), "Ehohd4bojt7-10"),
    ]
    assert open_orders(engine) == 0
    assert engine.orders.status_counts[OrderStatus.FILLED] == 1


def test_a_resting_order_cancelled(engine: Engine) -> None:
    engine.place("resting-1", owner="client-a")
    engine.feed("execution_report_new_resting")
    accepted: CancelAccepted = engine.clock.call(
        engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1")
    )
    engine.feed("execution_report_canceled")  # the captured answer to that cancel

    assert accepted.cancel_cl_ord_id == "fxhohd4cko07-1"
    assert engine.bus.types() == [
        "order.pending_new",
        "order.accepted",
        "order.pending_cancel",
        "order.canceled",
    ]
    [canceled] = engine.bus.of(OrderCanceled)
    assert (canceled.cl_ord_id, canceled.leaves_qty) == ("resting-1", D(0))
    assert open_orders(engine) == 0


def test_an_order_the_exchange_refuses(engine: Engine) -> None:
    engine.place("doge-1", symbol="DOGE/USD")
    engine.feed("execution_report_rejected_unknown_symbol")
    [rejected] = engine.bus.of(OrderRejected)
    assert (rejected.cl_ord_id, rejected.reason, rejected.text, rejected.order_id) == (
        "doge-1",
        RejectReason.UNKNOWN_SYMBOL,
        "unknown symbol DOGE/USD",
        None,  # OKCoin's `refused` is no order id
    )
    assert engine.metrics.registry.get_sample_value(
        "fixgw_rejects_total", {"reason": "order:unknown_symbol"}
    )


def test_a_cancel_refused_leaves_the_order_open(engine: Engine) -> None:
    engine.place("resting-1")
    engine.feed("execution_report_new_resting")
    engine.clock.call(engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1"))
    engine.session.take()
    engine.feed("order_cancel_reject_order_still_new")

    [rejected] = engine.bus.of(OrderCancelRejected)
    assert (rejected.cl_ord_id, rejected.reason, rejected.status, rejected.text) == (
        "resting-1",
        CancelRejectReason.TOO_LATE_TO_CANCEL,
        OrderStatus.NEW,
        "busy, try later",
    )
    order = engine.order("resting-1")
    assert (order.status, order.cancel_pending) == (OrderStatus.NEW, None)
    assert engine.session.sent == []  # it agrees with what the gateway holds: nothing to ask
    counts = engine.orders.status_counts  # fixgw_orders{status}: new again, not pending_cancel
    assert (counts[OrderStatus.NEW], counts[OrderStatus.PENDING_CANCEL]) == (1, 0)


def test_a_cancel_reject_that_disputes_the_orders_state_has_it_asked_about(
    engine: Engine,
) -> None:
    engine.resting()
    engine.clock.call(engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1"))
    engine.session.take()
    engine.feed("order_cancel_reject_order_still_new", {39: "2"})  # "it is filled"

    [question] = engine.session.take()
    assert (question.msg_type, question.get(11)) == (MsgType.ORDER_STATUS_REQUEST, "resting-1")


def test_a_cancel_reject_for_an_order_nobody_tracks_is_published_as_it_came(
    engine: Engine,
) -> None:
    engine.feed("order_cancel_reject_unknown_order")
    [rejected] = engine.bus.of(OrderCancelRejected)
    assert (rejected.cl_ord_id, rejected.order_id, rejected.status, rejected.reason) == (
        "nope",
        "nope",
        OrderStatus.REJECTED,
        CancelRejectReason.UNKNOWN_ORDER,
    )


def test_the_accounts_balances_are_published(engine: Engine) -> None:
    engine.feed("account_info_response")
    [balance] = engine.bus.of(AccountBalance)
    assert (balance.currency, balance.balance, balance.balances["LTC"]) == (
        "USD",
        [D(1000000)],
        CurrencyBalance(free=D(1000), frozen=D(0)),
    )
