"""Requests that wait on the exchange's answer: `PendingRequests` built alone (a tracker, a
clock of its own) and given the captured answers as OKCoin's dialect reads them; then through
the engine's real services (`Queries` out, the inbound router in) for what names the request:
an ExceptionResponse naming the AccReqID, a BusinessMessageReject of a mass status request,
the status of an order nobody tracks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fixgw.api.protocol import ErrorCode, OrderStatusRequest
from fixgw.config import ThrottleConfig, ThrottleLimit
from fixgw.domain import (
    AccountInfoReport,
    CurrencyBalance,
    ErrorSource,
    ExchangeError,
    ExecutionReport,
    OrderStatus,
    OrderType,
    QueryOrder,
    Side,
    SubmitOrder,
    utc_now,
)
from fixgw.engine.pending import PendingRequests
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import RequestError
from fixgw.fix.tags import MsgType
from fixgw.results import Account
from tests.unit.engine_kit import RECEIVED, Clock, Engine, message, okcoin

TIMEOUT_S = 10.0
NOT_SENT = RequestError("not sent", code=ErrorCode.NOT_CONNECTED)
REFUSED = RequestError("refused by the exchange", code=ErrorCode.EXCHANGE_ERROR)
RESTING_ID = "hohd4bojt7-13"
"""The exchange's id of the captured `resting-1`."""
RESTING = QueryOrder(
    ts=RECEIVED, order_id=RESTING_ID, cl_ord_id=None, symbol="LTC/USD", side=Side.BUY
)
"""A status request for it by the exchange's id."""


def read(name: str) -> Any:
    return okcoin().read(message(name), RECEIVED)


def report(name: str) -> ExecutionReport:
    r = read(name)
    assert isinstance(r, ExecutionReport)
    return r


def tracker_with_resting() -> OrderTracker:
    tracker = OrderTracker()
    tracker.submit(
        SubmitOrder(
            ts=utc_now(),
            cl_ord_id="resting-1",
            symbol="LTC/USD",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=D(1),
            price=D(60),
        )
    )
    tracker.apply_execution(report("execution_report_new_resting"))
    return tracker


class Sender:
    """The `send` a request is given: counts the calls, says whether it went out."""

    def __init__(self, goes_out: bool = True) -> None:
        self.calls = 0
        self.goes_out = goes_out

    def __call__(self) -> bool:
        self.calls += 1
        return self.goes_out


def failure(task: asyncio.Task[Any]) -> RequestError:
    error = task.exception()
    assert isinstance(error, RequestError), error
    return error


@pytest.fixture
def pending(clock: Clock) -> PendingRequests:
    return PendingRequests(clock, tracker_with_resting(), TIMEOUT_S)


# ---------------------------------------------------------------- order status


def test_the_status_answer_reaches_everyone_who_asked(
    clock: Clock, pending: PendingRequests
) -> None:
    send = Sender()
    first = clock.start(pending.order_status(RESTING, False, send, NOT_SENT))
    second = clock.start(pending.order_status(RESTING, False, send, NOT_SENT))
    assert send.calls == 2 and not first.done() and pending.asking_status(RESTING_ID)

    pending.status_answered(report("execution_report_order_status"))
    clock.settle()

    for task in (first, second):
        answer = task.result()
        assert (answer.source, answer.cl_ord_id, answer.status, answer.leaves_qty) == (
            "exchange",
            "resting-1",
            OrderStatus.NEW,
            D(1),
        )
    assert not pending.asking_status(RESTING_ID)


def test_a_refused_status_request_fails_who_asked(clock: Clock, pending: PendingRequests) -> None:
    task = clock.start(pending.order_status(RESTING, False, Sender(), NOT_SENT))
    pending.status_refused(RESTING_ID, REFUSED)
    clock.settle()
    assert failure(task) is REFUSED
    assert not pending.asking_status(RESTING_ID)


def test_a_status_request_that_could_not_be_sent_fails_at_once(
    clock: Clock, pending: PendingRequests
) -> None:
    task = clock.start(pending.order_status(RESTING, False, Sender(False), NOT_SENT))
    assert failure(task) is NOT_SENT
    assert not pending.asking_status(RESTING_ID)


def test_an_unanswered_status_request_times_out(clock: Clock, pending: PendingRequests) -> None:
    task = clock.start(pending.order_status(RESTING, False, Sender(), NOT_SENT))
    clock.advance(TIMEOUT_S - 0.001)
    assert not task.done()
    clock.advance(0.001)
    error = failure(task)
    assert (error.code, error.message) == (
        ErrorCode.TIMEOUT,
        f"no answer from the exchange within {TIMEOUT_S}s",
    )
    assert not pending.asking_status(RESTING_ID)


def test_the_status_of_an_order_nobody_tracks_answers_that_question_only(clock: Clock) -> None:
    pending = PendingRequests(clock, OrderTracker(), TIMEOUT_S)
    answer = report("execution_report_order_status")
    assert pending.untracked_asked(answer) == ()  # nobody asked

    task = clock.start(pending.order_status(RESTING, True, Sender(), NOT_SENT))
    assert pending.untracked_asked(answer) == (RESTING_ID,)
    pending.status_answered(answer, RESTING_ID)
    clock.settle()
    assert (task.result().cl_ord_id, task.result().source) == ("resting-1", "exchange")

    tracked = PendingRequests(clock, tracker_with_resting(), TIMEOUT_S)
    clock.start(tracked.order_status(RESTING, True, Sender(), NOT_SENT))
    assert tracked.untracked_asked(answer) == ()  # an order tracked here: an event


def test_an_answer_naming_no_order_answers_the_one_question_with_its_symbol_and_side(
    clock: Clock,
) -> None:
    """OKCoin asks about an order placed elsewhere by OrderID alone, and a venue that does
    not know it answers naming no order (OrderID NONE, no ClOrdID): the answer is the one
    question's waiting with its Symbol and Side. Two waiting with them cannot be told
    apart: neither is answered by it."""
    pending = PendingRequests(clock, OrderTracker(), TIMEOUT_S)
    unknown = msgspec.structs.replace(
        report("execution_report_order_status"),  # LTC/USD, buy
        order_id=None,
        cl_ord_id=None,
        status=OrderStatus.REJECTED,
        text="order not found",
    )
    ltc = clock.start(pending.order_status(RESTING, True, Sender(), NOT_SENT))
    btc = clock.start(
        pending.order_status(
            msgspec.structs.replace(RESTING, order_id="V-BTC", symbol="BTC/USD"),
            True,
            Sender(),
            NOT_SENT,
        )
    )
    assert pending.untracked_asked(unknown) == (RESTING_ID,)
    pending.status_answered(unknown, RESTING_ID)
    clock.settle()
    assert (ltc.result().order_id, ltc.result().status, ltc.result().text) == (
        RESTING_ID,
        OrderStatus.REJECTED,
        "order not found",
    )
    assert not btc.done()

    for order_id in ("V-LTC-1", "V-LTC-2"):
        clock.start(
            pending.order_status(
                msgspec.structs.replace(RESTING, order_id=order_id), True, Sender(), NOT_SENT
            )
        )
    assert pending.untracked_asked(unknown) == ("V-LTC-1", "V-LTC-2")


# ---------------------------------------------------------------- account


def test_the_account_answer_reaches_who_asked_and_only_that_one(
    clock: Clock, pending: PendingRequests
) -> None:
    mine = clock.start(pending.account("rqhot0ltxawq-1", Sender(), NOT_SENT))
    other = clock.start(pending.account("rqhot0ltxawq-2", Sender(), NOT_SENT))
    answer = read("account_info_response")
    assert isinstance(answer, AccountInfoReport)

    pending.account_answered(answer)
    clock.settle()

    assert mine.result() == Account(
        currency="USD",
        balance=[D(1000000)],
        balances={
            "BTC": CurrencyBalance(free=D(10), frozen=D(0)),
            "LTC": CurrencyBalance(free=D(1000), frozen=D(0)),
            "USD": CurrencyBalance(free=D(1000000), frozen=D(0)),
        },
    )
    assert not other.done()
    pending.account_refused("rqhot0ltxawq-2", REFUSED)
    clock.settle()
    assert failure(other) is REFUSED


def test_an_unanswered_account_request_times_out(clock: Clock, pending: PendingRequests) -> None:
    task = clock.start(pending.account("rq-1", Sender(), NOT_SENT))
    clock.advance(TIMEOUT_S)
    assert failure(task).message == f"no account info from the exchange within {TIMEOUT_S}s"


# ---------------------------------------------------------------- mass status


MASS_STATUS_ID = "rqhot0m3they-3"
"""The MassStatusReqID the captured answers name."""


def test_mass_status_is_answered_by_the_report_with_last_rpt_requested(
    clock: Clock, pending: PendingRequests
) -> None:
    task = clock.start(pending.mass_status(MASS_STATUS_ID, Sender(), NOT_SENT))
    assert pending.take_mass_status(report("execution_report_mass_status"))
    clock.settle()
    assert not task.done()
    assert pending.take_mass_status(report("execution_report_mass_status_last"))
    clock.settle()
    assert [r.cl_ord_id for r in task.result()] == ["fxhot0m3thds-1", "fxhot0m3thds-2"]
    assert not pending.take_mass_status(report("execution_report_mass_status_last"))  # over


def test_mass_status_without_last_rpt_requested_is_what_came_within_the_time_out(
    clock: Clock, pending: PendingRequests
) -> None:
    task = clock.start(pending.mass_status(MASS_STATUS_ID, Sender(), NOT_SENT))
    pending.take_mass_status(report("execution_report_mass_status"))
    clock.advance(TIMEOUT_S - 0.001)
    assert not task.done()
    clock.advance(0.001)
    assert [r.order_id for r in task.result()] == ["hot0m29drk-4"]


def test_mass_status_with_no_answer_at_all_times_out(
    clock: Clock, pending: PendingRequests
) -> None:
    task = clock.start(pending.mass_status(MASS_STATUS_ID, Sender(), NOT_SENT))
    clock.advance(TIMEOUT_S)
    error = failure(task)
    assert (error.code, error.message) == (
        ErrorCode.TIMEOUT,
        f"no order mass status from the exchange within {TIMEOUT_S}s",
    )
    assert not pending.take_mass_status(report("execution_report_mass_status"))


# ---------------------------------------------------------------- all


def test_the_end_of_the_session_fails_everything_under_way(
    clock: Clock, pending: PendingRequests
) -> None:
    gone = RequestError("the session went down", code=ErrorCode.NOT_CONNECTED)
    tasks = [
        clock.start(pending.order_status(RESTING, False, Sender(), NOT_SENT)),
        clock.start(pending.account("rq-1", Sender(), NOT_SENT)),
        clock.start(pending.mass_status(MASS_STATUS_ID, Sender(), NOT_SENT)),
    ]
    pending.fail_all(gone)
    clock.settle()
    assert [failure(t) for t in tasks] == [gone, gone, gone]
    assert not pending.asking_status(RESTING_ID)


# ---------------------------------------------------------------- through the engine


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path, request_timeout_s=TIMEOUT_S)
    engine.logon()
    return engine


def asked(engine: Engine, start: Callable[[], Any]) -> tuple[asyncio.Task[Any], int]:
    """A client's request started; the MsgSeqNum it went out as."""
    task = engine.clock.start(start())
    assert not task.done()
    return task, engine.session.seq


def test_an_exception_response_naming_the_account_request_fails_it_and_is_published(
    engine: Engine,
) -> None:
    task, _ = asked(engine, engine.queries.account)
    [request] = engine.session.take()
    assert request.msg_type == "Z1000"
    acc_req_id = str(request.get(8000))

    engine.feed("exception_response_account_request", {8000: acc_req_id})

    error = failure(task)
    assert error.code == ErrorCode.EXCHANGE_ERROR
    assert "Z1000 cannot be served at the moment" in error.message
    [published] = engine.bus.of(ExchangeError)
    assert (published.source, published.acc_req_id) == (ErrorSource.EXCEPTION, acc_req_id)


def test_a_business_reject_of_the_mass_status_fails_it_and_is_published_naming_it(
    engine: Engine,
) -> None:
    task, seq = asked(engine, lambda: engine.queries.orders_from_exchange(None))
    [request] = engine.session.take()
    assert request.msg_type == MsgType.ORDER_MASS_STATUS_REQUEST
    req_id = str(request.get(584))

    engine.feed("business_message_reject_mass_status", {45: str(seq), 379: req_id})

    assert failure(task).code == ErrorCode.EXCHANGE_ERROR
    [published] = engine.bus.of(ExchangeError)
    assert (
        published.source,
        published.ref_msg_type,
        published.reason,
        published.mass_status_req_id,
    ) == (ErrorSource.BUSINESS_REJECT, "AF", "3", req_id)


def test_a_mass_status_that_finds_no_open_order_is_an_empty_list(engine: Engine) -> None:
    task, _ = asked(engine, lambda: engine.queries.orders_from_exchange("LTC/USD"))
    [request] = engine.session.take()
    engine.feed("execution_report_mass_status_none_open", {584: str(request.get(584))})
    assert task.result() == []
    assert engine.bus.of(ExchangeError) == [] and engine.tracker.get("NONE") is None


def test_mass_status_requests_keep_to_the_status_rate_with_order_status_requests(
    clock: Clock, tmp_path: Path
) -> None:
    """A venue's status limit counts an OrderMassStatusRequest as it does an
    OrderStatusRequest: one status request a second, the second and third wait their
    turns, whichever kind each is. They went out all at once, whatever the limit."""
    status_limit = ThrottleConfig(limits={"status": ThrottleLimit(per_s=1, burst=1)})
    engine = Engine(clock, tmp_path, throttle=status_limit, request_timeout_s=TIMEOUT_S)
    engine.logon()
    engine.resting()
    engine.session.take()
    clock.start(engine.queries.orders_from_exchange(None))
    clock.start(engine.queries.order_status(OrderStatusRequest(cl_ord_id="resting-1")))
    clock.start(engine.queries.orders_from_exchange("LTC/USD"))

    assert [m.msg_type for m in engine.session.take()] == [MsgType.ORDER_MASS_STATUS_REQUEST]
    assert engine.throttle.queued() == 2
    clock.advance(1)
    assert [m.msg_type for m in engine.session.take()] == [MsgType.ORDER_STATUS_REQUEST]
    clock.advance(1)
    assert [m.msg_type for m in engine.session.take()] == [MsgType.ORDER_MASS_STATUS_REQUEST]


def test_the_status_of_an_order_nobody_tracks_is_the_askers_reply_not_an_event(
    engine: Engine,
) -> None:
    engine.bus.take()
    ask = OrderStatusRequest(order_id=RESTING_ID, symbol="LTC/USD", side=Side.BUY)
    task, _ = asked(engine, lambda: engine.queries.order_status(ask))
    [request] = engine.session.take()
    assert (request.msg_type, request.get(37), request.get(11)) == (
        MsgType.ORDER_STATUS_REQUEST,
        RESTING_ID,
        None,
    )

    engine.feed("execution_report_order_status")

    assert (task.result().cl_ord_id, task.result().status) == ("resting-1", OrderStatus.NEW)
    assert engine.bus.events == []  # no order.anomaly for every subscriber, nothing journaled


def test_a_request_while_not_logged_on_is_refused_with_the_state(engine: Engine) -> None:
    engine.down()
    task = engine.clock.start(engine.queries.account())
    error = failure(task)
    assert (error.code, error.message) == (
        ErrorCode.NOT_CONNECTED,
        "the exchange session is not logged on (down); nothing was sent",
    )
    assert engine.session.sent == []
