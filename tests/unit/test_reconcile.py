"""The reconciler decides when the gateway takes orders again after a logon."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import msgspec

from fixgw.config import ThrottleConfig, ThrottleLimit
from fixgw.domain import (
    Event,
    ExecKind,
    ExecutionReport,
    OrderAnomaly,
    OrderEvent,
    OrderStatus,
    Side,
    utc_now,
)
from fixgw.engine.order_index import Order
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.tracker import OrderTracker
from tests.unit.engine_kit import Clock, Engine
from tests.unit.orders_made import limit_buy


def tracker_with_open_orders(*ids: str) -> OrderTracker:
    tracker = OrderTracker()
    for cl_ord_id in ids:
        submit(tracker, cl_ord_id)
    return tracker


def submit(tracker: OrderTracker, cl_ord_id: str) -> Order:
    tracker.submit(limit_buy(cl_ord_id))
    order = tracker.get(cl_ord_id)
    assert order is not None
    return order


def recording_query() -> tuple[list[str], Callable[[Order], float | None]]:
    """A status query that always goes out at once, and the ClOrdIDs it was asked for."""
    asked: list[str] = []

    def query(order: Order) -> float | None:
        asked.append(order.cl_ord_id)
        return 0.0

    return asked, query


def status(cl_ord_id: str, state: OrderStatus, cum: str) -> ExecutionReport:
    return ExecutionReport(
        exec_id=f"s-{cl_ord_id}",
        kind=ExecKind.ORDER_STATUS,
        status=state,
        cl_ord_id=cl_ord_id,
        order_id=f"X-{cl_ord_id}",
        symbol="BTC/USD",
        side=Side.BUY,
        cum_qty=D(cum),
        leaves_qty=D(1) - D(cum),
        avg_px=D("100"),
        ts=utc_now(),
    )


def test_not_ready_until_every_open_order_is_answered() -> None:
    async def scenario() -> tuple[list[bool], list[Event], list[str]]:
        tracker = tracker_with_open_orders("a", "b")
        asked, query = recording_query()
        events: list[Event] = []

        reconciler = Reconciler(tracker, query, events.append, timeout_s=30)
        readiness = [reconciler.ready]
        reconciler.start()
        readiness.append(reconciler.ready)
        assert reconciler.on_status(status("a", OrderStatus.NEW, "0"))
        readiness.append(reconciler.ready)
        assert reconciler.on_status(status("b", OrderStatus.FILLED, "1"))
        readiness.append(reconciler.ready)
        assert not reconciler.on_status(status("b", OrderStatus.FILLED, "1"))  # not asked twice
        return readiness, events, asked

    readiness, events, asked = asyncio.run(scenario())
    assert readiness == [False, False, False, True]
    assert asked == ["a", "b"]
    # b was filled while away: no accepted event is invented for it.
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled"]


def test_ready_at_once_without_open_orders_and_after_a_timeout_without_answers() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        empty = Reconciler(OrderTracker(), lambda o: 0.0, lambda e: None, timeout_s=30)
        empty.start()
        silent = Reconciler(
            tracker_with_open_orders("a"), lambda o: 0.0, lambda e: None, timeout_s=0.05
        )
        silent.start()
        before = silent.ready
        await asyncio.sleep(0.2)
        return empty.ready, before, silent.ready

    assert asyncio.run(scenario()) == (True, False, True)


def status_limit(per_s: float) -> ThrottleConfig:
    return ThrottleConfig(limits={"status": ThrottleLimit(per_s=per_s, burst=1)})


def test_a_reload_slowing_the_status_rate_moves_the_time_out_to_the_last_questions_new_turn(
    clock: Clock, tmp_path: Path
) -> None:
    """Six open orders, two questions a second, a second's time-out: the last question was
    to go at +2.5 s, the time-out at +3.5 s. Right after the logon a reload slows the rate
    to one question every 4 s: those still held go at +4, +8 ... +20, and reconciliation
    waits for a second after the last, not for the old +3.5 s (where it had new orders
    taken before the exchange was asked about c2 to c5)."""
    engine = Engine(clock, tmp_path, throttle=status_limit(2), reconcile_timeout_s=1)
    engine.logon()
    for n in range(6):
        engine.place(f"c{n}")
    engine.down()
    engine.session.take()
    engine.logon()

    clock.call(engine.throttle.reconfigure, status_limit(0.25))
    clock.advance(19.9)

    assert [m.get(11) for m in engine.session.take()] == ["c0", "c1", "c2", "c3", "c4"]
    assert not engine.reconciler.ready
    clock.advance(0.1)
    assert [m.get(11) for m in engine.session.take()] == ["c5"]
    clock.advance(0.9)
    assert not engine.reconciler.ready
    clock.advance(0.1)
    assert engine.reconciler.ready  # the exchange said nothing: taking orders anyway


def test_a_check_asks_about_a_few_orders_and_settles_them_while_orders_keep_flowing() -> None:
    async def scenario() -> tuple[list[str], int, list[bool], list[Event]]:
        tracker = OrderTracker()
        asked, query = recording_query()
        events: list[Event] = []

        reconciler = Reconciler(tracker, query, events.append, timeout_s=30)
        reconciler.start()  # a logon with nothing open: ready at once
        unanswered = [submit(tracker, "ack-lost"), submit(tracker, "order-lost")]
        checked = reconciler.check(unanswered)
        answers = [
            reconciler.ready,
            reconciler.on_status(status("ack-lost", OrderStatus.NEW, "0")),
            reconciler.on_status(status("order-lost", OrderStatus.REJECTED, "0")),
            reconciler.on_status(status("ack-lost", OrderStatus.NEW, "0")),
            reconciler.ready,
        ]
        return asked, checked, answers, events

    asked, checked, answers, events = asyncio.run(scenario())
    assert (asked, checked) == (["ack-lost", "order-lost"], 2)
    assert answers == [True, True, True, False, True]  # ready throughout; each answer taken once
    assert [(type(e).__name__, e.cl_ord_id) for e in events] == [  # type: ignore[attr-defined]
        ("OrderAccepted", "ack-lost"),
        ("OrderRejected", "order-lost"),
    ]


def test_a_refused_status_request_leaves_the_order_as_it_is_and_is_not_waited_for() -> None:
    async def scenario() -> tuple[bool, list[Event], OrderStatus]:
        tracker = tracker_with_open_orders("a", "b")
        _, query = recording_query()
        events: list[Event] = []
        reconciler = Reconciler(tracker, query, events.append, timeout_s=30)
        reconciler.start()
        assert reconciler.on_status(status("a", OrderStatus.NEW, "0"))
        assert reconciler.asking("b")
        reconciler.refused("b")
        order = tracker.get("b")
        assert order is not None and not reconciler.asking("b")
        return reconciler.ready, events, order.status

    ready, events, left = asyncio.run(scenario())
    assert ready
    assert [e.cl_ord_id for e in events if isinstance(e, OrderEvent)] == ["a"]
    assert left is OrderStatus.PENDING_NEW


def test_a_gap_fill_asks_about_open_orders_unless_a_round_not_yet_answered_covers_it() -> None:
    """Answers taken before a gap fill may predate what it skipped; those after it cannot.
    A logon's round has taken none when the gap fill answering its ResendRequest arrives."""

    async def scenario() -> list[list[str]]:
        tracker = tracker_with_open_orders("a", "b")
        asked, query = recording_query()
        reconciler = Reconciler(tracker, query, lambda e: None, timeout_s=30)
        seen = []
        reconciler.start()
        reconciler.gap_filled("gap filled at the logon", "")  # nothing answered yet: covered
        reconciler.on_status(status("a", OrderStatus.NEW, "0"))
        reconciler.on_status(status("b", OrderStatus.NEW, "0"))
        seen.append(asked[:])
        reconciler.gap_filled("gap filled mid-session", "")  # ready: asked at once
        reconciler.on_status(status("a", OrderStatus.NEW, "0"))
        seen.append(asked[:])
        reconciler.gap_filled("gap filled mid-round", "")  # a's answer may predate it
        reconciler.on_status(status("b", OrderStatus.NEW, "0"))  # round over: asked again
        seen.append(asked[:])
        return seen

    assert asyncio.run(scenario()) == [
        ["a", "b"],
        ["a", "b", "a", "b"],
        ["a", "b", "a", "b", "a", "b"],
    ]


def test_a_status_request_the_exchange_lost_is_asked_once_more_then_left() -> None:
    async def scenario() -> tuple[list[str], bool, bool]:
        tracker = tracker_with_open_orders("a", "b")
        asked, query = recording_query()
        reconciler = Reconciler(tracker, query, lambda e: None, timeout_s=30)
        reconciler.start()
        a = tracker.get("a")
        assert a is not None
        reconciler.ask_again(a)
        reconciler.ask_again(a)  # lost again: left as it is, not waited for
        assert reconciler.on_status(status("b", OrderStatus.NEW, "0"))
        return asked, reconciler.asking("a"), reconciler.ready

    assert asyncio.run(scenario()) == (["a", "b", "a"], False, True)


def test_an_order_asked_about_again_before_a_readable_answer_waits_its_turn() -> None:
    """Each unreadable message about an order has it asked about; one that comes before any
    readable answer (the answer itself unreadable) does not have it asked again at once. A
    readable answer ends the wait: the next message about the order asks at once."""

    async def scenario() -> list[list[str]]:
        tracker = tracker_with_open_orders("a", "b")
        asked, query = recording_query()
        reconciler = Reconciler(tracker, query, lambda e: None, timeout_s=30)
        reconciler.start()
        reconciler.on_status(status("a", OrderStatus.NEW, "0"))
        reconciler.on_status(status("b", OrderStatus.NEW, "0"))
        a, b = tracker.get("a"), tracker.get("b")
        assert a is not None and b is not None
        seen = []
        asked.clear()
        reconciler.ask_about([a], "a message about it could not be read")
        seen.append(asked[:])
        for _ in range(3):
            reconciler.ask_about([a], "a message about it could not be read")
        reconciler.ask_about([b], "a message about it could not be read")
        seen.append(asked[:])
        reconciler.on_status(status("a", OrderStatus.NEW, "0"))
        reconciler.ask_about([a], "a message about it could not be read")
        seen.append(asked[:])
        reconciler.stop()
        return seen

    assert asyncio.run(scenario()) == [["a"], ["a", "b"], ["a", "b", "a"]]


def canceled_owed_an_answer() -> OrderTracker:
    """Order a, canceled with nothing filled, then a report of it the gateway could not read
    (a trade that crossed the cancel): restored from the journal, as after a restart before
    the exchange answered the status request that report made the gateway send."""
    live = tracker_with_open_orders("a")
    journal: list[Event] = [*live.apply_execution(status("a", OrderStatus.NEW, "0"))]
    canceled = status("a", OrderStatus.CANCELED, "0")
    journal += live.apply_execution(
        msgspec.structs.replace(canceled, kind=ExecKind.CANCELED, exec_id="x-a")
    )
    journal.append(
        OrderAnomaly(
            ts=utc_now(), cl_ord_id="a", order_id="X-a", exec_id="f-a", problem="unreadable",
            detail="a fill without LastPx",
        )
    )  # fmt: skip
    restored = OrderTracker()
    restored.restore([live_submitted("a"), *journal])
    return restored


def live_submitted(cl_ord_id: str) -> Event:
    return OrderTracker().submit(limit_buy(cl_ord_id))


def test_a_closed_order_owed_an_answer_when_the_gateway_stopped_is_asked_at_the_logon() -> None:
    """The answer (canceled, 0.2 filled) is applied as the one to the unreadable report's
    question: the trade told, the order canceled still, then an `order.status` that says
    the question was answered, so the next logon does not ask again."""

    async def scenario() -> tuple[list[str], list[Event], list[str]]:
        tracker = canceled_owed_an_answer()
        asked, query = recording_query()
        events: list[Event] = []
        reconciler = Reconciler(tracker, query, events.append, timeout_s=30)
        reconciler.start()
        answer = status("a", OrderStatus.CANCELED, "0.2")
        assert reconciler.on_status(msgspec.structs.replace(answer, leaves_qty=D(0)))
        first = list(asked)
        reconciler.start()
        return first, events, asked[len(first) :]

    asked, events, asked_again = asyncio.run(scenario())
    assert asked == ["a"]
    assert [(type(e).__name__, getattr(e, "status", None)) for e in events] == [
        ("OrderPartiallyFilled", OrderStatus.CANCELED),
        ("OrderStatusReported", OrderStatus.CANCELED),
    ]
    assert asked_again == []


def test_a_clients_answer_about_an_order_owed_one_is_taken_as_the_gateways_own() -> None:
    """Asked about after a trade bust while the session was down (not asked yet), the order
    is asked about by a client: the answer is the exchange's word after the bust, and takes
    the fills back."""
    tracker = tracker_with_open_orders("a")
    tracker.apply_execution(status("a", OrderStatus.NEW, "0"))
    filled = msgspec.structs.replace(
        status("a", OrderStatus.FILLED, "1"),
        kind=ExecKind.FILL,
        exec_id="f-a",
        leaves_qty=D(0),
        last_qty=D(1),
        last_px=D(100),
    )
    tracker.apply_execution(filled)
    events: list[Event] = []
    reconciler = Reconciler(
        tracker, lambda o: 0.0, events.append, timeout_s=30, session_up=lambda: False
    )
    order = tracker.get("a")
    assert order is not None
    reconciler.ask_about([order], "a message about it could not be read", unreadable=True)
    assert reconciler.on_status(status("a", OrderStatus.NEW, "0"))
    assert [type(e).__name__ for e in events] == [
        "OrderAnomaly",
        "OrderRestated",
        "OrderStatusReported",
    ]
    assert (order.status, order.cum_qty, order.unread) == (OrderStatus.NEW, D(0), False)
