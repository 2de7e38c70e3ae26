"""The kill switch among the engine's real services (`engine_kit.Engine`: a fake session, a
recording bus, the real tracker and OKCoin's dialect), driven by captured messages on a clock
of its own; and built alone, for a halt read back from the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw.api.protocol import CancelOrderRequest, ErrorCode
from fixgw.bus import EventBus
from fixgw.config import ThrottleConfig, ThrottleLimit
from fixgw.domain import (
    OrderAccepted,
    OrderAnomaly,
    OrderCanceled,
    OrderCancelRejected,
    OrderStatus,
    Side,
    TradingHalted,
    TradingResumed,
    utc_now,
)
from fixgw.engine.kill_switch import HALT_RECHECK_MAX_S, HALT_RETRY_S, KillSwitch
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.tracker import OrderTracker
from fixgw.fix.tags import MsgType
from fixgw.halt_record import RECORD_BYTES, HaltRecord
from fixgw.journal import Journal
from tests.unit.engine_kit import Clock, Engine, refused, status_of
from tests.unit.test_engine_order_entry import fd_read_only, journal_refusing_writes


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path)
    engine.logon()
    return engine


def test_a_halt_cancels_every_open_order_and_refuses_new_ones(engine: Engine) -> None:
    engine.resting()
    engine.maker()
    engine.session.take()

    result = engine.kill_switch.halt("desk", "runaway strategy")

    assert (result.halted, result.cancelling, result.waiting) == (
        True,
        ["resting-1", "maker-1"],
        [],
    )
    cancels = engine.session.take()
    assert [(m.msg_type, m.get(41), m.get(37)) for m in cancels] == [
        (MsgType.ORDER_CANCEL_REQUEST, "resting-1", "hohd4bojt7-13"),
        (MsgType.ORDER_CANCEL_REQUEST, "maker-1", "hohd4bojt7-11"),
    ]
    [halted] = engine.bus.of(TradingHalted)
    assert (halted.by, halted.reason, halted.cancelling, halted.waiting) == (
        "desk",
        "runaway strategy",
        ["resting-1", "maker-1"],
        [],
    )
    blocked = refused(lambda: engine.place("blocked"))
    assert blocked.code == ErrorCode.HALTED
    assert "by desk: runaway strategy" in blocked.message
    assert engine.session.sent == [] and engine.tracker.get("blocked") is None

    engine.feed("execution_report_canceled")  # the captured answer to the first cancel
    assert engine.order("resting-1").status is OrderStatus.CANCELED
    assert engine.order("maker-1").cancel_pending == cancels[1].get(11)


def test_orders_no_cancel_can_be_sent_for_wait_and_are_cancelled_once_reconciled(
    engine: Engine,
) -> None:
    engine.resting()
    maker = engine.maker()
    engine.down()
    engine.session.take()

    result = engine.kill_switch.halt("desk")

    assert result.cancelling == []
    assert [(w.cl_ord_id, w.code) for w in result.waiting] == [
        ("resting-1", ErrorCode.NOT_CONNECTED),
        ("maker-1", ErrorCode.NOT_CONNECTED),
    ]
    assert result.waiting[0].reason == (
        "the exchange session is not logged on (down); nothing was sent; "
        "cancelled once the session is back and reconciled"
    )
    assert engine.bus.of(TradingHalted)[0].waiting == result.waiting  # one shape, journaled
    assert engine.session.sent == []

    engine.logon()
    questions = engine.session.take()
    assert [(m.msg_type, m.get(11)) for m in questions] == [
        (MsgType.ORDER_STATUS_REQUEST, "resting-1"),
        (MsgType.ORDER_STATUS_REQUEST, "maker-1"),
    ]
    engine.feed("execution_report_order_status")  # resting-1: still new
    assert engine.session.sent == []  # not before every open order is answered
    engine.feed("execution_report_order_status", status_of(maker, "E-status-maker"))
    assert engine.ready()
    assert [(m.msg_type, m.get(41)) for m in engine.session.take()] == [
        (MsgType.ORDER_CANCEL_REQUEST, "resting-1"),
        (MsgType.ORDER_CANCEL_REQUEST, "maker-1"),
    ]


def test_cancels_the_rate_limit_refused_are_tried_again_after_halt_retry_s(
    clock: Clock, tmp_path: Path
) -> None:
    engine = Engine(
        clock,
        tmp_path,
        throttle=ThrottleConfig(
            limits={"cancel": ThrottleLimit(per_s=1, burst=1)}, policy="reject"
        ),
    )
    engine.logon()
    engine.resting()
    engine.maker()
    engine.session.take()

    result = engine.kill_switch.halt("desk")

    assert result.cancelling == ["resting-1"]
    [waiting] = result.waiting
    assert (waiting.cl_ord_id, waiting.code) == ("maker-1", ErrorCode.THROTTLED)
    assert waiting.reason.endswith(f"; tried again in {HALT_RETRY_S:g} s")
    assert [m.get(41) for m in engine.session.take()] == ["resting-1"]
    clock.advance(HALT_RETRY_S - 0.01)
    assert engine.session.sent == []
    clock.advance(0.01)
    assert [(m.msg_type, m.get(41)) for m in engine.session.take()] == [
        (MsgType.ORDER_CANCEL_REQUEST, "maker-1")
    ]


def test_a_halt_withdraws_orders_still_waiting_in_the_throttle_queue(
    clock: Clock, tmp_path: Path
) -> None:
    throttle = ThrottleConfig(limits={"new_order": ThrottleLimit(per_s=1, burst=1)})
    engine = Engine(clock, tmp_path, throttle=throttle)
    engine.logon()
    engine.resting()
    engine.place("queued-1", price="59")  # waits its turn
    engine.session.take()

    result = engine.kill_switch.halt("desk")

    assert (result.cancelling, result.withdrawn) == (["resting-1"], ["queued-1"])
    [halted] = engine.bus.of(TradingHalted)
    assert (halted.cancelling, halted.withdrawn) == (["resting-1"], ["queued-1"])
    assert engine.order("queued-1").status is OrderStatus.CANCELED
    clock.advance(10)
    assert [(m.msg_type, m.get(41)) for m in engine.session.take()] == [
        (MsgType.ORDER_CANCEL_REQUEST, "resting-1")  # the queued order never reaches it
    ]


def test_a_cancel_refused_while_halted_has_the_order_asked_about_less_and_less_often(
    engine: Engine, clock: Clock
) -> None:
    """The exchange refuses each cancel with the order still new (as the integration test's
    proxy makes it): the order is asked about, and the answer that finds it open has it
    cancelled again; each round waits twice as long as the one before, up to a minute."""
    engine.resting()
    engine.session.take()
    engine.kill_switch.halt("desk")
    waits: list[float] = []
    for n in range(9):
        [cancel] = engine.session.take()
        assert (cancel.msg_type, cancel.get(41)) == (MsgType.ORDER_CANCEL_REQUEST, "resting-1")
        engine.feed("order_cancel_reject_order_still_new", {11: str(cancel.get(11))})
        waits.append(clock.run_until(lambda: engine.session.sent, limit_s=2 * HALT_RECHECK_MAX_S))
        [question] = engine.session.take()
        assert (question.msg_type, question.get(37)) == (
            MsgType.ORDER_STATUS_REQUEST,
            "hohd4bojt7-13",
        )
        engine.feed("execution_report_order_status", {17: f"E-status-{n}"})  # still open
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert len(engine.bus.of(OrderCancelRejected)) == 9
    assert len(engine.bus.of(TradingHalted)) == 1


def test_resume_lifts_the_halt_and_cancels_the_recheck(engine: Engine, clock: Clock) -> None:
    engine.resting()
    engine.kill_switch.halt("desk")
    engine.feed("order_cancel_reject_order_still_new")  # the recheck is due in a second
    engine.session.take()

    engine.kill_switch.resume("operator")

    [resumed] = engine.bus.of(TradingResumed)
    assert resumed.by == "operator" and engine.kill_switch.halted is None
    clock.advance(2 * HALT_RECHECK_MAX_S)
    assert engine.session.sent == []  # nobody asks about the order any more
    engine.place("after-resume", price="61")
    assert [m.get(11) for m in engine.session.take()] == ["after-resume"]
    engine.kill_switch.resume("operator")  # not halted: nothing to say
    assert len(engine.bus.of(TradingResumed)) == 1


def test_a_client_gone_has_its_own_open_orders_cancelled_only(engine: Engine) -> None:
    engine.place("resting-1", owner="client-a", cancel_on_disconnect=True)
    engine.feed("execution_report_new_resting")
    engine.place("maker-1", side=Side.SELL, qty="2", price="70", owner="client-b")
    engine.feed("execution_report_new")
    engine.session.take()

    engine.kill_switch.client_gone("client-a")

    assert [m.get(41) for m in engine.session.take()] == ["resting-1"]
    assert engine.orders.owners == {"maker-1": "client-b"}
    assert engine.kill_switch.halted is None


def test_a_client_gone_has_cancelled_the_orders_it_placed_asking_for_it_only(
    engine: Engine,
) -> None:
    """Each order keeps the word it was placed with, as the journal does for a restart: a
    later `hello` without cancel on disconnect does not take it back, and one that asks for
    it does not reach the orders placed before."""
    engine.place("resting-1", owner="client-a", cancel_on_disconnect=True)
    engine.feed("execution_report_new_resting")
    engine.place("maker-1", side=Side.SELL, qty="2", price="70", owner="client-a")
    engine.feed("execution_report_new")
    engine.session.take()

    engine.kill_switch.client_gone("client-a")

    assert [m.get(41) for m in engine.session.take()] == ["resting-1"]
    assert engine.orders.owners == {}


def test_an_order_the_throttle_held_when_the_session_went_down_owes_no_cancel(
    clock: Clock, tmp_path: Path
) -> None:
    """The order still waiting its turn under the rate limit when the session goes down is
    rejected then, never sent (`ThrottleQueue.session_down`); its client gone while the
    gateway reconciles after the next logon, nothing is owed for it, nor sent."""
    engine = Engine(
        clock,
        tmp_path,
        throttle=ThrottleConfig(limits={"new_order": ThrottleLimit(per_s=0.05, burst=1)}),
    )
    engine.logon()
    engine.place("resting-1", owner="client-a", cancel_on_disconnect=True)
    engine.feed("execution_report_new_resting")
    engine.place("held-1", owner="client-a", cancel_on_disconnect=True)
    assert engine.throttle.holds("held-1")
    engine.down()
    assert engine.order("held-1").status is OrderStatus.REJECTED
    assert not engine.throttle.holds("held-1")
    engine.logon()  # reconciliation asks about resting-1, and waits for the answer
    engine.session.take()
    assert not engine.ready()

    engine.kill_switch.client_gone("client-a")

    clock.advance(60)
    sent = engine.session.take()
    assert all("held-1" not in (m.get(11), m.get(41)) for m in sent)


def test_cancel_all_without_a_halt_cancels_once(engine: Engine, clock: Clock) -> None:
    engine.resting()
    engine.session.take()
    done = engine.kill_switch.cancel_all("desk")
    assert (done.cancelling, done.not_cancelled) == (["resting-1"], [])
    again = engine.kill_switch.cancel_all("desk")  # a cancel is under way: none sent twice
    assert again.cancelling == ["resting-1"] and len(engine.session.take()) == 1
    engine.feed("order_cancel_reject_order_still_new")
    clock.advance(2 * HALT_RECHECK_MAX_S)
    assert engine.session.sent == []  # not halted: a refused cancel is the client's to retry


def test_a_halt_holds_across_a_restart_read_back_from_the_journal(
    clock: Clock, tmp_path: Path
) -> None:
    """Built alone: a tracker, a reconciler, a stand-in for the cancel, the real journal."""
    path = tmp_path / "events.jsonl"
    cancels: list[CancelOrderRequest] = []

    def kill_switch(journal: Journal) -> KillSwitch:
        tracker = OrderTracker()
        reconciler = Reconciler(tracker, lambda _: 0.0, lambda _: None, timeout_s=30)
        return KillSwitch(
            tracker,
            {},
            cancels.append,
            reconciler,
            EventBus(journal),
            lambda: True,
            lambda _: False,
            clock,
        )

    with Journal(path, fsync=False) as journal:
        kill_switch(journal).halt("desk", "runaway strategy")
    with Journal(path, fsync=False) as journal:
        restarted = kill_switch(journal)
        restarted.restore(journal.numbered_events(prefix="session."))
        assert restarted.halted is not None
        assert (restarted.halted.by, restarted.halted.reason) == ("desk", "runaway strategy")
        assert refused(restarted.refuse_new_orders).code == ErrorCode.HALTED
        restarted.resume("operator")
    with Journal(path, fsync=False) as journal:
        again = kill_switch(journal)
        again.restore(journal.numbered_events(prefix="session."))
        assert again.halted is None
        again.refuse_new_orders()
    assert cancels == []  # nothing was open


def test_a_halt_journaled_with_bare_ids_waiting_still_holds_after_a_restart(
    clock: Clock, tmp_path: Path
) -> None:
    """A `session.halted` line written before `waiting` carried each order's code and
    reason (ClOrdIDs only) is read back as it was written."""
    path = tmp_path / "events.jsonl"
    with Journal(path, fsync=False) as journal:
        old = TradingHalted(
            ts=utc_now(), by="desk", reason="runaway", cancelling=[], waiting=["resting-1"]
        )
        EventBus(journal).publish(old)
    assert '"waiting":["resting-1"]' in path.read_text()
    with Journal(path, fsync=False) as journal:
        tracker = OrderTracker()
        reconciler = Reconciler(tracker, lambda _: 0.0, lambda _: None, timeout_s=30)
        restarted = KillSwitch(
            tracker,
            {},
            lambda _: None,
            reconciler,
            EventBus(journal),
            lambda: True,
            lambda _: False,
            clock,
        )
        restarted.restore(journal.numbered_events(prefix="session."))
    assert restarted.halted is not None and restarted.halted.waiting == ["resting-1"]
    assert refused(restarted.refuse_new_orders).code == ErrorCode.HALTED


def test_a_halt_neither_the_kill_switch_file_nor_the_journal_can_keep_says_so(
    clock: Clock, tmp_path: Path
) -> None:
    """The halt is in force at once all the same; the answer and the log say a restart
    would not know it. With the file writable, the journal's failure is no matter: the file
    holds it across a restart."""
    path = tmp_path / "events.jsonl"

    def kill_switch(journal: Journal, record: HaltRecord) -> KillSwitch:
        tracker = OrderTracker()
        reconciler = Reconciler(tracker, lambda _: 0.0, lambda _: None, timeout_s=30)
        switch = KillSwitch(
            tracker,
            {},
            lambda _: None,
            reconciler,
            EventBus(journal),
            lambda: True,
            lambda _: False,
            clock,
        )
        switch.restore(journal.numbered_events(prefix="session."), record)
        return switch

    with Journal(path, fsync=False) as journal:
        record = HaltRecord(journal)
        switch = kill_switch(journal, record)
        with journal_refusing_writes(journal), fd_read_only(record._fd, record.path):
            result = switch.halt("desk", "runaway strategy")
            assert result.warning is not None
            assert "in force but not recorded: a restart would not know of it" in result.warning
            assert switch.halted is not None
            assert refused(switch.refuse_new_orders).code == ErrorCode.HALTED
        with journal_refusing_writes(journal):
            assert switch.resume("desk").warning is None
            assert switch.halt("desk", "again").warning is None
            journal._pending.clear()  # lost, as in a stop with the disk still full
    with Journal(path, fsync=False) as journal:
        restarted = kill_switch(journal, HaltRecord(journal))
        assert restarted.halted is not None
        assert restarted.halted.reason == "again"


def test_a_halt_whose_reason_takes_more_bytes_than_the_file_holds_is_kept_cut_and_says_so(
    tmp_path: Path,
) -> None:
    """1000 characters of `reason` were kept, but a character takes up to 4 bytes in UTF-8
    (6 escaped): the record ran past the file's 4096 bytes, and read back as damage, a
    halt the file no longer knew. Cut by bytes, between characters, it fits."""
    reason = "\U0001f6a8" * 990 + "\x01" * 10
    with Journal(tmp_path / "events.jsonl", fsync=False) as journal:
        record = HaltRecord(journal)
        halt = TradingHalted(ts=utc_now(), by="desk", reason=reason, cancelling=[])
        assert record.write(7, halt) is None
        record.close()
        recorded = HaltRecord(journal).recorded
    assert recorded is not None and recorded.seq == 7
    restored = recorded.event()
    assert restored is not None and restored.by == "desk"
    assert restored.reason is not None and restored.reason.endswith(" [cut]")
    assert reason.startswith(restored.reason.removesuffix(" [cut]"))
    assert (tmp_path / "events.jsonl.halt").stat().st_size == RECORD_BYTES


def test_an_order_canceled_while_halted_is_not_cancelled_again(
    engine: Engine, clock: Clock
) -> None:
    engine.resting()
    engine.kill_switch.halt("desk")
    engine.feed("execution_report_canceled")
    engine.session.take()
    engine.kill_switch.cancel_left_open()
    clock.advance(2 * HALT_RECHECK_MAX_S)
    assert engine.session.sent == []
    assert [e.cl_ord_id for e in engine.bus.of(OrderCanceled)] == ["resting-1"]


def a_venue_whose_order_entry_lags(
    engine: Engine, clock: Clock, says: str, seconds: float, limit: int = 400
) -> list[tuple[str, str]]:
    """For `seconds` of the clock's time, a venue that has taken the orders and not yet
    acknowledged them (or lags on them): it refuses each cancel, and answers each status
    request, saying the order is `says` (an OrdStatus). The cancels and questions the
    gateway sent (their MsgType and the order), at most `limit` of them: a loop is cut short
    there."""
    end = clock.now + seconds
    sent: list[tuple[str, str]] = []
    while clock.now < end and len(sent) < limit:
        for message in engine.session.take():
            order = engine.order(str(message.get(41) or message.get(11)))
            sent.append((message.msg_type, order.cl_ord_id))
            named = {37: order.order_id or f"V-{order.cl_ord_id}", 39: says}
            if message.msg_type == MsgType.ORDER_CANCEL_REQUEST:
                engine.feed(
                    "order_cancel_reject_order_still_new",
                    {11: str(message.get(11)), 41: order.cl_ord_id, **named},
                )
            elif message.msg_type == MsgType.ORDER_STATUS_REQUEST:
                assert order.price is not None
                engine.feed(
                    "execution_report_order_status",
                    {
                        11: order.cl_ord_id,
                        17: f"S-{len(sent)}",
                        38: str(order.qty),
                        44: str(order.price),
                        55: order.symbol,
                        151: str(order.qty),
                        **named,
                    },
                )
        if not engine.session.sent:
            clock.advance(0.05)
    return sent


@pytest.mark.parametrize("acknowledged", [False, True], ids=["pending_new", "new"])
def test_a_halt_whose_cancels_are_refused_saying_pending_new_keeps_its_doubling_wait(
    engine: Engine, clock: Clock, acknowledged: bool
) -> None:
    """The venue's order entry lags: it refuses the halt's cancels, and answers the status
    requests, saying the order is Pending New (39=A). Whatever answer finds the order open,
    it is cancelled again only in the kill switch's rounds, 1 s, 2 s, 4 s apart: not in a
    loop of a cancel and a question each time the venue answers. A pending order the
    answer says is Pending New stays pending (no `order.accepted`); an acknowledged one
    stays new."""
    if acknowledged:
        engine.resting()
    else:
        engine.place("resting-1")
    engine.session.take()
    engine.kill_switch.halt("desk")
    sent = a_venue_whose_order_entry_lags(engine, clock, "A", seconds=7.5)
    cancels = [m for m in sent if m[0] == MsgType.ORDER_CANCEL_REQUEST]
    questions = [m for m in sent if m[0] == MsgType.ORDER_STATUS_REQUEST]
    assert len(cancels) == 4, sent  # the halt's, then one a round: after 1 s, 3 s, 7 s
    assert len(questions) <= 2 * len(cancels), sent
    order = engine.order("resting-1")
    status = OrderStatus.NEW if acknowledged else OrderStatus.PENDING_NEW
    assert (order.status, order.is_open) == (status, True)
    accepted = [e for e in engine.bus.of(OrderAccepted) if e.cl_ord_id == "resting-1"]
    assert len(accepted) == (1 if acknowledged else 0)
    assert engine.bus.of(OrderAnomaly) == []


def test_a_recheck_round_cancels_each_order_once_its_own_answer_finds_it_open(
    engine: Engine, clock: Clock
) -> None:
    """The round asks about two orders; the first answer must not send the second order's
    cancel while its question is still out: that answer, asked before the cancel, would
    then be read as the cancel lost (a false `cancel_lost`, and a second cancel of the
    order while the first is out)."""
    engine.resting()
    engine.maker()
    engine.session.take()
    engine.kill_switch.halt("desk")
    cancels = engine.session.take()
    for cancel in cancels:
        engine.feed(
            "order_cancel_reject_order_still_new",
            {11: str(cancel.get(11)), 41: str(cancel.get(41)), 37: "X"},
        )
    clock.run_until(lambda: len(engine.session.sent) == 2, limit_s=2)
    questions = engine.session.take()
    assert {q.msg_type for q in questions} == {MsgType.ORDER_STATUS_REQUEST}
    first, second = (engine.order(str(q.get(11))) for q in questions)
    engine.feed("execution_report_order_status", status_of(first, "S-1"))  # still open
    [again] = engine.session.take()
    assert (again.msg_type, again.get(41)) == (MsgType.ORDER_CANCEL_REQUEST, first.cl_ord_id)
    assert second.cancel_pending is None
    engine.feed("execution_report_order_status", status_of(second, "S-2"))  # still open
    [again] = engine.session.take()
    assert (again.msg_type, again.get(41)) == (MsgType.ORDER_CANCEL_REQUEST, second.cl_ord_id)
    assert engine.bus.of(OrderAnomaly) == []
    assert (first.cancel_pending, second.cancel_pending) != (None, None)


def test_an_answer_asked_before_a_cancel_went_out_does_not_call_the_cancel_lost(
    engine: Engine, clock: Clock
) -> None:
    """A check asks about the order; a cancel goes out; then the answer, written before the
    exchange had the cancel, says the order is open. The cancel stays out: only an answer
    asked while it was out could show it lost."""
    order = engine.resting()
    engine.session.take()
    assert clock.call(engine.reconciler.check, [order]) == 1
    accepted = clock.call(engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1"))
    assert order.cancel_pending == accepted.cancel_cl_ord_id
    engine.feed("execution_report_order_status", status_of(order, "S-1"))  # still new
    assert engine.bus.of(OrderAnomaly) == []
    assert order.cancel_pending == accepted.cancel_cl_ord_id
    assert [m.msg_type for m in engine.session.take()] == [
        MsgType.ORDER_STATUS_REQUEST,
        MsgType.ORDER_CANCEL_REQUEST,
    ]


def test_an_answer_asked_while_a_cancel_was_out_that_says_open_calls_the_cancel_lost(
    engine: Engine, clock: Clock
) -> None:
    """The other way round: the cancel went out, then the order was asked about, and the
    answer says it is open, no cancel pending: the cancel was lost."""
    order = engine.resting()
    clock.call(engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1"))
    assert clock.call(engine.reconciler.check, [order]) == 1
    engine.feed("execution_report_order_status", status_of(order, "S-1"))  # still new
    [lost] = engine.bus.of(OrderAnomaly)
    assert (lost.cl_ord_id, lost.problem) == ("resting-1", "cancel_lost")
    assert order.cancel_pending is None
