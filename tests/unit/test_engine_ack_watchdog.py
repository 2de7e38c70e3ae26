"""The ack watchdog: built alone (a tracker, metrics, a clock of its own), and among the
engine's real services fed captured answers: an order or a cancel the exchange has not
answered within the time-out is asked about, and again at twice the wait while the answers do
not settle it; any answer counts; nothing is awaited across the end of a session; each
order's round trip is timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw.api.protocol import CancelOrderRequest
from fixgw.domain import OrderStatus, Side
from fixgw.engine.ack_watchdog import ASK_AGAIN_MAX_S, AckWatchdog
from fixgw.engine.tracker import OrderTracker
from fixgw.fix.tags import MsgType
from fixgw.ops.prometheus import Metrics
from fixgw.results import CancelAccepted
from tests.unit.engine_kit import Clock, Engine, sample
from tests.unit.orders_made import limit_buy

TIMEOUT_S = 5.0


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path, ack_timeout_s=TIMEOUT_S)
    engine.logon()
    return engine


def alone(clock: Clock, timeout_s: float = TIMEOUT_S) -> tuple[AckWatchdog, OrderTracker]:
    tracker = OrderTracker()
    return AckWatchdog(timeout_s, tracker, Metrics(), clock), tracker


def overdue(watchdog: AckWatchdog) -> list[str]:
    return [o.cl_ord_id for o in watchdog.overdue()]


def test_an_order_unanswered_past_the_time_out_is_overdue(clock: Clock) -> None:
    watchdog, tracker = alone(clock)
    tracker.submit(limit_buy("a"))
    watchdog.await_answer("a", "a")
    clock.advance(3)
    tracker.submit(limit_buy("b"))
    watchdog.await_answer("b", "b")

    clock.advance(TIMEOUT_S - 3 - 0.001)
    assert overdue(watchdog) == []
    clock.advance(0.001)
    assert overdue(watchdog) == ["a"]
    assert overdue(watchdog) == []  # asked: not again until twice the wait is over
    clock.advance(3)
    assert overdue(watchdog) == ["b"]


def test_an_order_the_answers_leave_unsettled_is_asked_about_again_at_twice_the_wait(
    clock: Clock,
) -> None:
    """The question dropped, or its answer lagging the venue's own reports (`stale_status`,
    nothing changed): asked once, the order stayed pending until the next logon, which on a
    session that stays up may be a day."""
    watchdog, tracker = alone(clock)
    tracker.submit(limit_buy("a"))
    watchdog.await_answer("a", "a")
    asked, waited = [], 0.0
    while len(asked) < 8 and waited <= 2 * ASK_AGAIN_MAX_S:
        clock.advance(0.5)
        waited += 0.5
        if overdue(watchdog):
            asked.append(waited)
            waited = 0.0
    assert asked == [5, 10, 20, 40, 60, 60, 60, 60]


def test_an_order_settled_or_answered_is_not_asked_about_again(clock: Clock) -> None:
    watchdog, tracker = alone(clock)
    for cl_ord_id in ("answered", "refused", "asked"):
        tracker.submit(limit_buy(cl_ord_id))
        watchdog.await_answer(cl_ord_id, cl_ord_id)
    clock.advance(TIMEOUT_S)
    assert sorted(overdue(watchdog)) == ["answered", "asked", "refused"]
    watchdog.answered("answered")
    tracker.refused("refused", "refused", limit_buy("refused").ts)
    clock.advance(2 * TIMEOUT_S)
    assert overdue(watchdog) == ["asked"]
    watchdog.clear()  # the session went down: the next logon asks about every order
    clock.advance(ASK_AGAIN_MAX_S)
    assert overdue(watchdog) == []


def test_a_zero_time_out_watches_nothing(clock: Clock) -> None:
    watchdog, tracker = alone(clock, timeout_s=0)
    tracker.submit(limit_buy("a"))
    watchdog.await_answer("a", "a")
    clock.advance(3600)
    assert overdue(watchdog) == []


def test_what_never_reached_the_exchange_or_moved_on_is_not_overdue(clock: Clock) -> None:
    watchdog, tracker = alone(clock)
    for cl_ord_id in ("gap-filled", "forgotten", "untracked"):
        tracker.submit(limit_buy(cl_ord_id))
    watchdog.await_answer("gap-filled", "gap-filled")
    watchdog.await_answer("forgotten", "forgotten")
    watchdog.await_answer("untracked", None)  # a cancel of an order known only by its id
    watchdog.not_delivered("gap-filled")
    tracker.refused("forgotten", "refused", limit_buy("forgotten").ts)  # closed meanwhile
    clock.advance(2 * TIMEOUT_S)
    assert overdue(watchdog) == []


def test_an_acknowledged_order_is_not_asked_about_and_its_round_trip_is_timed(
    engine: Engine, clock: Clock
) -> None:
    engine.place("maker-1", side=Side.SELL, qty="2", price="70")
    assert sample(engine.metrics, "fixgw_order_round_trip_seconds_count") == 0
    engine.feed("execution_report_new")
    assert sample(engine.metrics, "fixgw_order_round_trip_seconds_count") == 1
    clock.advance(2 * TIMEOUT_S)
    assert overdue(engine.watchdog) == []


def test_an_unanswered_order_is_asked_about_by_its_cl_ord_id_and_the_answer_settles_it(
    engine: Engine, clock: Clock
) -> None:
    engine.place("resting-1")
    engine.session.take()
    clock.advance(TIMEOUT_S)

    late = engine.watchdog.overdue()
    assert engine.reconciler.check(late) == 1  # what the periodic check does with them

    [question] = engine.session.take()
    assert (question.msg_type, question.get(11), question.get(37)) == (
        MsgType.ORDER_STATUS_REQUEST,
        "resting-1",
        "NONE",  # the exchange has not named it yet
    )
    engine.feed("execution_report_order_status")
    order = engine.order("resting-1")
    assert (order.status, order.order_id) == (OrderStatus.NEW, "hohd4bojt7-13")
    assert sample(engine.metrics, "fixgw_order_round_trip_seconds_count") == 1


def cancel(engine: Engine) -> CancelAccepted:
    accepted: CancelAccepted = engine.clock.call(
        engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1")
    )
    return accepted


def test_an_unanswered_cancel_is_overdue(engine: Engine, clock: Clock) -> None:
    engine.resting()
    clock.advance(TIMEOUT_S)
    cancel(engine)
    clock.advance(TIMEOUT_S - 0.001)
    assert overdue(engine.watchdog) == []
    clock.advance(0.001)
    assert overdue(engine.watchdog) == ["resting-1"]


@pytest.mark.parametrize(
    "answer", ["execution_report_canceled", "order_cancel_reject_order_still_new"]
)
def test_a_cancels_answer_counts_whether_it_cancels_or_refuses(
    engine: Engine, clock: Clock, answer: str
) -> None:
    engine.resting()
    accepted = cancel(engine)
    assert accepted.cancel_cl_ord_id is not None
    engine.feed(answer, {11: accepted.cancel_cl_ord_id})
    clock.advance(2 * TIMEOUT_S)
    assert overdue(engine.watchdog) == []


def test_the_end_of_a_session_clears_what_was_awaited(engine: Engine, clock: Clock) -> None:
    engine.place("resting-1")
    engine.down()  # the next logon's reconciliation asks about every open order
    clock.advance(2 * TIMEOUT_S)
    assert overdue(engine.watchdog) == []
    engine.logon()
    engine.watchdog.answered("resting-1")  # an answer after the outage is not a round trip
    assert sample(engine.metrics, "fixgw_order_round_trip_seconds_count") == 0
