"""Order entry among the engine's real services (`engine_kit.Engine`): every refusal sends
and journals nothing; an order is on disk before the exchange can know of it; one the
session could not send is rejected; the throttle's queue paces orders, and a cancel takes
one still waiting out of it so that the exchange never hears of it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.protocol import CancelOrderRequest, ErrorCode, NewOrder, OrderStatusRequest
from fixgw.bus import EventBus
from fixgw.config import RiskConfig, SymbolLimits, ThrottleConfig, ThrottleKind, ThrottleLimit
from fixgw.decimals import PlainDecimal
from fixgw.domain import (
    OrderCanceled,
    OrderPendingNew,
    OrderRejected,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from fixgw.engine.throttle_queue import NOT_SENT
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import MsgType
from fixgw.journal import Journal
from fixgw.results import CancelAccepted
from tests.unit.engine_kit import Clock, Engine, refused, sample


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path)
    engine.logon()
    return engine


def ltc(**changes: object) -> NewOrder:
    fields: dict[str, object] = {
        "symbol": "LTC/USD",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "qty": "1",
        "price": "60",
        "cl_ord_id": "resting-1",
    }
    fields.update(changes)
    return NewOrder(**fields)  # type: ignore[arg-type]


def halted(engine: Engine) -> None:
    engine.kill_switch.halt("desk", "runaway strategy")


def not_logged_on(engine: Engine) -> None:
    engine.down()


def reconciling(engine: Engine) -> None:
    engine.maker()
    engine.down()
    engine.logon()  # maker-1 asked about, not yet answered


def taken(engine: Engine) -> None:
    engine.place("resting-1")


def nothing(engine: Engine) -> None:
    pass


@pytest.mark.parametrize(
    ("before", "order", "code", "said"),
    [
        (nothing, ltc(symbol="DOGE/USD"), ErrorCode.UNKNOWN_SYMBOL, "unknown symbol 'DOGE/USD'"),
        (nothing, ltc(qty="0"), ErrorCode.INVALID_QTY, "qty"),
        (nothing, ltc(price=None), ErrorCode.INVALID_PRICE, "a limit order needs a price"),
        (nothing, ltc(type=OrderType.MARKET), ErrorCode.INVALID_PRICE, "takes no price"),
        (halted, ltc(), ErrorCode.HALTED, "trading is halted (by desk: runaway strategy)"),
        (
            nothing,
            ltc(time_in_force=TimeInForce.IOC),
            ErrorCode.NOT_OFFERED,
            "the venue (okcoin) cannot carry time_in_force ioc; it takes none",
        ),
        (not_logged_on, ltc(), ErrorCode.NOT_CONNECTED, "not logged on (down)"),
        (reconciling, ltc(), ErrorCode.NOT_READY, "reconciling 1 open orders"),
        (taken, ltc(), ErrorCode.DUPLICATE_CL_ORD_ID, "'resting-1' is already in use"),
        (nothing, ltc(qty="6"), ErrorCode.RISK, "risk limit max_qty: qty 6 is above the limit 5"),
    ],
    ids=[
        "unknown symbol",
        "no quantity",
        "limit without price",
        "market with price",
        "halted",
        "time in force not offered",
        "not logged on",
        "not reconciled",
        "cl_ord_id in use",
        "risk limit",
    ],
)
def test_a_refused_order_is_neither_sent_nor_journaled(
    clock: Clock,
    tmp_path: Path,
    before: Callable[[Engine], None],
    order: NewOrder,
    code: ErrorCode,
    said: str,
) -> None:
    engine = Engine(clock, tmp_path, risk=RiskConfig(default=SymbolLimits(max_qty=PlainDecimal(5))))
    engine.logon()
    before(engine)
    engine.session.take()
    engine.bus.take()

    error = refused(lambda: clock.call(engine.entry.new_order, order))

    assert error.code == code
    assert said in error.message
    assert engine.session.sent == [] and engine.bus.events == []
    assert engine.throttle.queued() == 0
    if code == ErrorCode.RISK:
        assert sample(engine.metrics, "fixgw_risk_rejects_total", limit="max_qty") == 1


def test_an_order_is_on_disk_before_it_is_sent(clock: Clock, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "events.jsonl", fsync=False)
    engine = Engine(clock, tmp_path, publish=EventBus(journal).publish, journal=journal)
    engine.logon()
    on_disk_when_sent: list[bytes] = []

    def sending(message: FixMessage) -> None:
        on_disk_when_sent.append(journal.path.read_bytes())

    engine.session.on_send = sending

    engine.place("resting-1")

    [on_disk] = on_disk_when_sent
    [line] = [line for line in on_disk.splitlines() if b'"order.pending_new"' in line]
    assert b'"cl_ord_id":"resting-1"' in line
    journal.close()


@contextlib.contextmanager
def journal_refusing_writes(journal: Journal) -> Iterator[None]:
    """The journal's file descriptor made read-only underneath it: its writes fail as a
    refusing disk's would (EBADF rather than ENOSPC), and work again afterwards."""
    with fd_read_only(journal._fd, journal.path):
        yield


@contextlib.contextmanager
def fd_read_only(fd: int | None, path: Path) -> Iterator[None]:
    assert fd is not None
    saved = os.dup(fd)
    read_only = os.open(path, os.O_RDONLY)
    try:
        os.dup2(read_only, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(read_only)


def test_an_order_the_journal_cannot_take_is_neither_sent_nor_left_open(
    clock: Clock, tmp_path: Path
) -> None:
    """`Journal.flush` raises when the disk refuses the lines (they are kept and written
    later). The order is not sent, and it ends rejected (not delivered) at once: nothing
    would end it before the next logon, a halt would cancel it, and it would count against
    `risk.max_open_orders`."""
    journal = Journal(tmp_path / "events.jsonl", fsync=False)
    engine = Engine(clock, tmp_path, publish=EventBus(journal).publish, journal=journal)
    engine.logon()
    with journal_refusing_writes(journal):
        error = refused(lambda: engine.place("resting-1"))

    assert error.code == ErrorCode.INTERNAL_ERROR
    assert "the order was not sent" in error.message
    assert engine.session.sent == []
    order = engine.tracker.get("resting-1")
    assert order is not None and not order.is_open
    [rejected] = engine.bus.of(OrderRejected)
    assert (rejected.cl_ord_id, rejected.reason) == ("resting-1", RejectReason.NOT_DELIVERED)
    assert engine.watchdog.overdue() == []
    journal.flush()  # the disk takes them again: both lines kept, in order
    assert [type(e) for e in journal.events(prefix="order.")] == [OrderPendingNew, OrderRejected]
    journal.close()


def test_orders_the_journal_cannot_take_give_their_throttle_token_and_place_back(
    clock: Clock, tmp_path: Path
) -> None:
    """Refused, never sent: neither keeps what the throttle gave it. They kept them, so that
    after the disk was freed the queue looked full with nothing in it (`throttle_queued`
    above 0) and orders over the rate were refused `throttled` until a restart."""
    journal = Journal(tmp_path / "events.jsonl", fsync=False)
    throttle = ThrottleConfig(limits={"new_order": ThrottleLimit(per_s=1, burst=1)}, queue_max=1)
    engine = Engine(
        clock, tmp_path, publish=EventBus(journal).publish, journal=journal, throttle=throttle
    )
    engine.logon()
    with journal_refusing_writes(journal):
        at_once = refused(lambda: engine.place("at-once-1"))  # took the token
        queued = refused(lambda: engine.place("queued-1"))  # took the queue's place
    assert "the order was not sent" in at_once.message
    assert "the order was not sent" in queued.message
    assert engine.throttle.queued() == 0

    engine.place("first-1")
    engine.place("second-1")

    assert [m.get(11) for m in engine.session.take()] == ["first-1"]
    assert engine.throttle.queued() == 1
    clock.advance(1)
    assert [m.get(11) for m in engine.session.take()] == ["second-1"]
    journal.close()


def test_an_order_the_session_could_not_send_is_rejected_and_the_client_told(
    engine: Engine,
) -> None:
    engine.session.ending = True  # QuickFIX is leaving the session inside a poll

    error = refused(lambda: engine.place("resting-1"))

    assert (error.code, error.message) == (
        ErrorCode.NOT_CONNECTED,
        "the exchange session is not logged on (it is ending); nothing was sent",
    )
    [rejected] = engine.bus.of(OrderRejected)
    assert (rejected.cl_ord_id, rejected.reason, rejected.text) == (
        "resting-1",
        RejectReason.NOT_DELIVERED,
        NOT_SENT,
    )
    assert engine.watchdog.overdue() == []


@pytest.fixture
def paced(clock: Clock, tmp_path: Path) -> Engine:
    """One new order a second: the second waits its turn in the throttle's queue."""
    throttle = ThrottleConfig(limits={"new_order": ThrottleLimit(per_s=1, burst=1)})
    engine = Engine(clock, tmp_path, throttle=throttle, ack_timeout_s=5)
    engine.logon()
    engine.place("first-1", price="59")
    engine.place("resting-1")
    return engine


def test_an_order_over_the_rate_goes_out_in_its_turn_and_is_watched(
    paced: Engine, clock: Clock
) -> None:
    assert [m.get(11) for m in paced.session.take()] == ["first-1"]
    assert paced.order("resting-1").status is OrderStatus.PENDING_NEW
    assert paced.throttle.holds("resting-1")
    clock.advance(1)
    assert [m.get(11) for m in paced.session.take()] == ["resting-1"]
    clock.advance(5)
    assert [o.cl_ord_id for o in paced.watchdog.overdue()] == ["first-1", "resting-1"]


def test_a_cancel_withdraws_an_order_still_in_the_throttle_queue(
    paced: Engine, clock: Clock
) -> None:
    paced.session.take()
    accepted: CancelAccepted = clock.call(
        paced.entry.cancel_order,
        CancelOrderRequest(cl_ord_id="resting-1", cancel_cl_ord_id="cancel-1"),
    )

    assert (accepted.status, accepted.cancel_cl_ord_id) == (OrderStatus.CANCELED, "cancel-1")
    [canceled] = paced.bus.of(OrderCanceled)
    assert canceled.cl_ord_id == "resting-1"
    assert canceled.text == "canceled before it was sent (it was waiting in the throttle queue)"
    assert paced.throttle.queued() == 0
    clock.advance(10)
    assert paced.session.sent == []  # neither the order nor a cancel
    assert [o.cl_ord_id for o in paced.watchdog.overdue()] == ["first-1"]
    assert refused(lambda: paced.place("cancel-1")).code == ErrorCode.DUPLICATE_CL_ORD_ID


def cancel(engine: Engine, cl_ord_id: str = "resting-1") -> CancelAccepted:
    accepted: CancelAccepted = engine.clock.call(
        engine.entry.cancel_order, CancelOrderRequest(cl_ord_id=cl_ord_id)
    )
    return accepted


def new_order_not_connected(engine: Engine) -> None:
    assert refused(lambda: engine.place("unsent-1")).code == ErrorCode.NOT_CONNECTED


def cancel_not_connected(engine: Engine) -> None:
    assert refused(lambda: cancel(engine)).code == ErrorCode.NOT_CONNECTED


def status_check(engine: Engine) -> int:
    """The gateway's own status request about resting-1; how many were asked."""
    asked: int = engine.clock.call(engine.reconciler.check, [engine.order("resting-1")])
    return asked


def status_check_not_sent(engine: Engine) -> None:
    assert status_check(engine) == 0


@pytest.mark.parametrize(
    ("kind", "unsent", "then"),
    [
        ("new_order", new_order_not_connected, lambda engine: engine.place("next-1")),
        ("cancel", cancel_not_connected, cancel),
        ("status", status_check_not_sent, status_check),
    ],
    ids=["new order", "cancel", "the gateway's own status request"],
)
def test_a_message_the_rate_let_through_but_the_session_could_not_send_gives_its_token_back(
    clock: Clock,
    tmp_path: Path,
    kind: ThrottleKind,
    unsent: Callable[[Engine], None],
    then: Callable[[Engine], object],
) -> None:
    """QuickFIX leaving the session inside a poll: the message is refused `not_connected`,
    nothing went out, so the venue counted nothing. The next one goes at once, not a
    token's wait later."""
    throttle = ThrottleConfig(limits={kind: ThrottleLimit(per_s=0.1, burst=1)})
    engine = Engine(clock, tmp_path, throttle=throttle)
    engine.logon()
    engine.resting()
    clock.advance(10)  # the token resting-1 took is back
    engine.session.take()
    engine.session.ending = True

    unsent(engine)

    engine.session.ending = False
    then(engine)
    assert len(engine.session.take()) == 1
    assert engine.throttle.queued() == 0


def test_a_cancel_goes_out_naming_the_order_and_the_exchanges_id(engine: Engine) -> None:
    engine.resting()
    engine.session.take()
    accepted = cancel(engine)
    [sent] = engine.session.take()
    assert (sent.msg_type, sent.get(11), sent.get(41), sent.get(37)) == (
        MsgType.ORDER_CANCEL_REQUEST,
        accepted.cancel_cl_ord_id,
        "resting-1",
        "hohd4bojt7-13",
    )
    assert engine.order("resting-1").cancel_pending == accepted.cancel_cl_ord_id


def test_a_second_cancel_while_one_is_pending_is_refused_and_nothing_is_sent(
    engine: Engine,
) -> None:
    """Whoever sends it (an API client, an OMS through the bridge): the exchange's answers
    name the pending cancel, and each cancel gets its own answer."""
    engine.resting()
    engine.session.take()
    first = cancel(engine)
    engine.session.take()

    second = refused(lambda: cancel(engine))

    assert (second.code, second.message) == (
        ErrorCode.CANCEL_PENDING,
        f"a cancel of order resting-1 is pending already ({first.cancel_cl_ord_id}); "
        "wait for its answer",
    )
    assert engine.session.sent == []
    assert engine.order("resting-1").cancel_pending == first.cancel_cl_ord_id


@pytest.mark.parametrize("how", ["down", "ending"])
def test_a_cancel_that_could_not_be_sent_leaves_the_order_as_it_was(
    engine: Engine, how: str
) -> None:
    engine.resting()
    engine.session.take()
    if how == "down":
        engine.down()
    else:
        engine.session.ending = True

    assert refused(lambda: cancel(engine)).code == ErrorCode.NOT_CONNECTED

    order = engine.order("resting-1")
    assert (order.status, order.cancel_pending) == (OrderStatus.NEW, None)
    assert engine.session.sent == []


def test_a_cancel_of_an_unknown_or_closed_order_is_refused(engine: Engine) -> None:
    assert refused(lambda: cancel(engine, "nope")).code == ErrorCode.UNKNOWN_ORDER
    engine.maker()
    engine.feed("execution_report_fill_with_parties")
    closed = refused(lambda: cancel(engine, "maker-1"))
    assert (closed.code, closed.message) == (
        ErrorCode.ORDER_CLOSED,
        "order maker-1 is already filled",
    )


@pytest.mark.parametrize(
    ("names", "which"),
    [
        ({"cl_ord_id": "maker-1", "order_id": "hohd4bojt7-13"}, "order_id"),  # resting-1's
        ({"cl_ord_id": "resting-1", "symbol": "BTC/USD"}, "symbol"),
        ({"cl_ord_id": "resting-1", "side": Side.SELL}, "side"),
        ({"order_id": "hohd4bojt7-13", "symbol": "LTC/USD", "side": Side.SELL}, "side"),
        ({"cl_ord_id": "unacked-1", "order_id": "hohd4bojt7-13"}, "order_id"),
    ],
)
def test_a_cancel_or_status_request_naming_two_orders_is_refused_and_nothing_is_sent(
    engine: Engine, names: dict[str, Any], which: str
) -> None:
    """A cancel with one order's cl_ord_id and another's order_id, symbol and side
    cancelled the first."""
    engine.resting()
    engine.maker()
    engine.place("unacked-1")
    engine.session.take()
    before = {o: engine.order(o).status for o in ("resting-1", "maker-1", "unacked-1")}
    cancelling = refused(
        lambda: engine.clock.call(engine.entry.cancel_order, CancelOrderRequest(**names))
    )
    asking = refused(lambda: engine.entry.locate(OrderStatusRequest(**names)))
    for error in (cancelling, asking):
        assert error.code == ErrorCode.INVALID_REQUEST
        assert f"`{which}`" in error.message and "names two orders" in error.message
    assert engine.session.sent == []
    assert {o: engine.order(o).status for o in before} == before


def test_ids_a_symbol_and_a_side_that_name_one_order_are_taken(engine: Engine) -> None:
    engine.resting()
    engine.session.take()
    names = {"order_id": "hohd4bojt7-13", "symbol": "LTC/USD", "side": Side.BUY}
    assert engine.entry.locate(OrderStatusRequest(**names)).cl_ord_id == "resting-1"
    request = CancelOrderRequest(cl_ord_id="resting-1", **names)
    accepted = engine.clock.call(engine.entry.cancel_order, request)
    assert accepted.order_id == "hohd4bojt7-13"
    assert [m.get(41) for m in engine.session.take()] == ["resting-1"]
