"""The inbound router among the engine's real services (`engine_kit.Engine`), given what the
session reports as `Inbound` items around captured messages: nothing the exchange sends is
dropped. An unreadable message is its order's anomaly (and the order asked about) or an
exchange error (and every open order asked about); a message of ours the exchange never got
ends its order or cancel; one QuickFIX refused is read all the same; a Logout refusing the
credentials holds the logons; a session Reject is tied to the request it names."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from fixgw.api.protocol import CancelOrderRequest, ErrorCode
from fixgw.domain import (
    CancelRejectReason,
    ErrorSource,
    ExchangeError,
    LogoutReason,
    OrderAnomaly,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    RejectReason,
    SessionDown,
)
from fixgw.engine.inbound import NOT_DELIVERED
from fixgw.engine.kill_switch import HALT_RETRY_S
from fixgw.fix.initiator import Happening
from fixgw.fix.tags import MsgType
from fixgw.results import CancelAccepted
from tests.unit.engine_kit import Clock, Engine, captured, refused, sample, status_of


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path)
    engine.logon()
    return engine


def asked_about(engine: Engine) -> list[tuple[str, str | None]]:
    return [(m.msg_type, m.get(11)) for m in engine.session.take()]


# ---------------------------------------------------------------- unreadable


@pytest.mark.parametrize(
    ("garbled", "shown"),
    [
        ({}, "|14=not-a-number|"),
        ({14: "2", 150: "Z"}, "|150=Z|"),
        ({14: "2", 39: ""}, "|39=|"),
    ],
    ids=["CumQty not a number", "an ExecType OKCoin never listed", "no OrdStatus"],
)
def test_an_unreadable_report_naming_an_order_is_its_anomaly_and_the_order_is_asked_about(
    engine: Engine, garbled: dict[int, str], shown: str
) -> None:
    engine.maker()
    engine.session.take()
    engine.bus.take()

    engine.feed("execution_report_fill_unreadable_cum_qty", garbled)

    [anomaly] = engine.bus.events
    assert isinstance(anomaly, OrderAnomaly)
    assert (anomaly.cl_ord_id, anomaly.order_id, anomaly.exec_id, anomaly.problem) == (
        "maker-1",
        "hohd4bojt7-11",
        "Ehohd4bojt7-2",
        "unreadable",
    )
    assert shown in anomaly.detail
    assert asked_about(engine) == [(MsgType.ORDER_STATUS_REQUEST, "maker-1")]
    assert engine.order("maker-1").status is OrderStatus.NEW  # left as it was
    assert engine.router.dialect_errors == 1
    engine.journal.flush(checkpoint=True)
    assert engine.journal.inbound_checkpoint() == 3  # handled: not asked for again at a restart


@pytest.mark.parametrize(
    ("name", "changes", "msg_type", "cl_ord_id"),
    [
        ("news_maintenance", {}, "B", None),
        (
            "execution_report_fill_unreadable_cum_qty",
            {11: "ghost-1", 37: "ghost"},
            "8",
            "ghost-1",
        ),
    ],
    ids=["a message type the gateway does not take", "a report naming no order tracked here"],
)
def test_an_unreadable_message_naming_no_order_is_an_exchange_error_and_all_are_asked_about(
    engine: Engine, name: str, changes: dict[int, str], msg_type: str, cl_ord_id: str | None
) -> None:
    engine.resting()
    maker = engine.maker()
    engine.session.take()

    engine.feed(name, changes)

    [error] = engine.bus.of(ExchangeError)
    assert (error.source, error.ref_msg_type, error.cl_ord_id) == (
        ErrorSource.UNREADABLE,
        msg_type,
        cl_ord_id,
    )
    assert error.raw is not None and error.raw.startswith("8=FIX.4.4|")
    assert asked_about(engine) == [
        (MsgType.ORDER_STATUS_REQUEST, "resting-1"),
        (MsgType.ORDER_STATUS_REQUEST, "maker-1"),
    ]
    # it may have carried an execution: no new order until every open order is answered
    assert refused(lambda: engine.place("next-1")).code == ErrorCode.NOT_READY
    engine.feed("execution_report_order_status")
    engine.feed("execution_report_order_status", status_of(maker, "E-status-maker"))
    assert engine.ready()


def test_a_refused_message_that_could_not_be_recovered_has_every_open_order_asked_about(
    engine: Engine,
) -> None:
    engine.resting()
    engine.session.take()
    engine.happens(Happening.APP_REFUSED, "")
    assert asked_about(engine) == [(MsgType.ORDER_STATUS_REQUEST, "resting-1")]
    assert engine.router.inbound_refused == 0


# ---------------------------------------------------------------- read all the same


def test_a_message_quickfix_refused_is_read_all_the_same_and_counted(engine: Engine) -> None:
    engine.maker()
    engine.happens(Happening.APP_REFUSED, captured("execution_report_fill_with_custom_group"))

    [filled] = engine.bus.of(OrderFilled)
    assert (filled.cl_ord_id, filled.exec_id, filled.last_qty, filled.last_px) == (
        "maker-1",
        "Ehohd4bojt7-2",
        D(2),
        D(70),
    )
    assert engine.router.inbound_refused == 1
    assert sample(engine.metrics, "fixgw_inbound_refused_total", msg_type="8") == 1
    assert engine.bus.of(OrderAnomaly) == []


def test_a_fill_carrying_a_parties_group_is_read(engine: Engine) -> None:
    engine.maker()
    engine.feed("execution_report_fill_with_parties")
    [filled] = engine.bus.of(OrderFilled)
    assert (filled.status, filled.cum_qty, filled.avg_px) == (OrderStatus.FILLED, D(2), D(70))
    assert engine.router.dialect_errors == 0 and engine.router.inbound_refused == 0


# ---------------------------------------------------------------- never delivered


def test_a_new_order_the_exchange_never_got_is_rejected_not_delivered(
    engine: Engine, clock: Clock
) -> None:
    engine.place("resting-1")
    ours = engine.session.raw_sent[engine.session.seq]

    engine.happens(Happening.NOT_RESENT, ours)

    [rejected] = engine.bus.of(OrderRejected)
    assert (rejected.cl_ord_id, rejected.reason, rejected.text) == (
        "resting-1",
        RejectReason.NOT_DELIVERED,
        NOT_DELIVERED,
    )
    clock.advance(60)
    assert engine.watchdog.overdue() == []  # no answer awaited for it


def cancel(engine: Engine) -> CancelAccepted:
    accepted: CancelAccepted = engine.clock.call(
        engine.entry.cancel_order, CancelOrderRequest(cl_ord_id="resting-1")
    )
    return accepted


def test_a_cancel_the_exchange_never_got_is_refused_and_the_order_stays_open(
    engine: Engine,
) -> None:
    engine.resting()
    accepted = cancel(engine)
    ours = engine.session.raw_sent[engine.session.seq]

    engine.happens(Happening.NOT_RESENT, ours)

    [rejected] = engine.bus.of(OrderCancelRejected)
    assert (rejected.cancel_cl_ord_id, rejected.reason, rejected.status) == (
        accepted.cancel_cl_ord_id,
        CancelRejectReason.NOT_DELIVERED,
        OrderStatus.NEW,
    )
    order = engine.order("resting-1")
    assert (order.status, order.cancel_pending) == (OrderStatus.NEW, None)


def test_while_halted_a_cancel_the_exchange_never_got_has_the_order_asked_about(
    engine: Engine, clock: Clock
) -> None:
    engine.resting()
    engine.kill_switch.halt("desk")
    ours = engine.session.raw_sent[engine.session.seq]
    engine.session.take()

    engine.happens(Happening.NOT_RESENT, ours)
    clock.advance(HALT_RETRY_S)

    assert asked_about(engine) == [(MsgType.ORDER_STATUS_REQUEST, "resting-1")]


def test_a_question_the_exchange_never_got_needs_nothing(engine: Engine) -> None:
    engine.resting()
    engine.reconciler.check([engine.order("resting-1")])
    ours = engine.session.raw_sent[engine.session.seq]
    engine.bus.take()
    engine.happens(Happening.NOT_RESENT, ours)
    assert engine.bus.events == []


# ---------------------------------------------------------------- session messages


def test_a_logout_refusing_the_credentials_holds_further_logons(engine: Engine) -> None:
    engine.happens(Happening.LOGOUT_RECEIVED, captured("logout_invalid_credentials"))
    engine.down()

    assert engine.reconnector.held == (
        "the exchange refused the credentials: Rejected Logon Attempt: invalid credentials"
    )
    assert sample(engine.metrics, "fixgw_credentials_refused") == 1
    [down] = engine.bus.of(SessionDown)
    assert (down.reason, down.logout_reason) == (
        "Rejected Logon Attempt: invalid credentials",
        LogoutReason.INVALID_CREDENTIALS,
    )


def test_a_logout_for_another_reason_holds_nothing(engine: Engine) -> None:
    engine.happens(
        Happening.LOGOUT_RECEIVED,
        captured("logout_invalid_credentials", {58: "idle", 8500: "2"}),
    )
    engine.down()
    assert engine.reconnector.held is None
    assert engine.bus.of(SessionDown)[0].logout_reason is LogoutReason.TIMEOUT


def test_a_session_reject_naming_an_order_by_its_sequence_number_rejects_it(
    engine: Engine,
) -> None:
    engine.place("resting-1")
    seq = engine.session.seq

    engine.happens(
        Happening.REJECT_RECEIVED,
        captured("session_reject_new_order_missing_text", {45: str(seq)}),
    )

    [error] = engine.bus.of(ExchangeError)
    assert (error.source, error.cl_ord_id, error.ref_msg_type, error.reason) == (
        ErrorSource.SESSION_REJECT,
        "resting-1",
        "D",
        "1 (tag 58)",
    )
    [rejected] = engine.bus.of(OrderRejected)
    assert rejected.cl_ord_id == "resting-1"
    assert rejected.text == "the exchange answered with session_reject: Required tag missing"
    # the refusal is the order's answer: its round trip is timed, its arrival time let go
    assert sample(engine.metrics, "fixgw_order_round_trip_seconds_count") == 1


def test_rejects_are_counted_by_their_fix_reason_code_whatever_text_a_venue_puts_there(
    engine: Engine,
) -> None:
    """`fixgw_rejects_total{reason}`: a series per reason code, never one per text a venue
    wrote, nor per tag it named (each label value is a series Prometheus keeps)."""
    for reason, tag in [
        ("1", "58"),
        ("1", "44"),
        ("99", "1"),
        ("bad order #1", "58"),
        ("x" * 50, ""),
    ]:
        engine.happens(
            Happening.REJECT_RECEIVED,
            captured("session_reject_new_order_missing_text", {373: reason, 371: tag}),
        )
    assert len(engine.bus.of(ExchangeError)) == 5
    assert rejects_counted(engine) == {
        "session_reject:1": 2,
        "session_reject:99": 1,
        "session_reject:other": 2,
    }


def rejects_counted(engine: Engine) -> dict[str, float]:
    """`fixgw_rejects_total` by reason."""
    return {
        s.labels["reason"]: s.value
        for metric in engine.metrics.registry.collect()
        if metric.name == "fixgw_rejects"
        for s in metric.samples
        if s.name == "fixgw_rejects_total"
    }


@pytest.mark.parametrize(
    ("arrives_as", "refusal", "naming_the_order", "counted_as"),
    [
        (
            Happening.REJECT_RECEIVED,
            "session_reject_new_order_missing_text",
            {},
            "session_reject:1",
        ),
        (
            Happening.APP,
            "business_message_reject_mass_status",
            {372: "D", 379: "resting-1"},
            "business_reject:3",
        ),
    ],
)
def test_a_session_or_business_reject_of_an_order_counts_once_under_its_source(
    engine: Engine,
    arrives_as: Happening,
    refusal: str,
    naming_the_order: dict[int, str],
    counted_as: str,
) -> None:
    """One reject from the exchange is one count: the order it ends rejected is the same
    refusal, not an `order:other` besides."""
    engine.place("resting-1")
    seq = engine.session.seq

    engine.happens(arrives_as, captured(refusal, {45: str(seq), **naming_the_order}))

    [rejected] = engine.bus.of(OrderRejected)
    assert rejected.cl_ord_id == "resting-1"
    assert rejects_counted(engine) == {counted_as: 1}


def test_an_order_the_exchange_never_got_is_no_reject_from_the_exchange(engine: Engine) -> None:
    engine.place("resting-1")
    engine.happens(Happening.NOT_RESENT, engine.session.raw_sent[engine.session.seq])

    [rejected] = engine.bus.of(OrderRejected)
    assert rejected.reason is RejectReason.NOT_DELIVERED
    assert rejects_counted(engine) == {}


def test_what_cannot_be_handled_is_counted_and_never_raised(engine: Engine) -> None:
    engine.happens(Happening.APP, "not a FIX message")
    assert engine.router.callback_errors == 1
    engine.router.on_callback_error("fromApp", RuntimeError("boom"))
    assert engine.router.callback_errors == 2
    assert sample(engine.metrics, "fixgw_callback_errors_total") == 1


def test_an_unreadable_account_answer_fails_who_asked_and_holds_no_order_back(
    engine: Engine,
) -> None:
    """A message that names nothing may have carried an execution, so every open order is
    asked about and new orders wait. An AccountInfoResponse names its AccReqID and carries
    no execution: only the request it answers fails."""
    engine.resting()
    engine.session.take()
    asking = engine.clock.start(engine.queries.account())
    [request] = engine.session.take()

    engine.feed("account_info_response", {8000: str(request.get(8000)), 8001: "10/not-a-number"})

    [error] = engine.bus.of(ExchangeError)
    assert (error.source, error.acc_req_id) == (ErrorSource.UNREADABLE, request.get(8000))
    assert asking.done()
    assert engine.session.sent == []
    assert engine.ready()
