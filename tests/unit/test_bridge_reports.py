"""The gateway's order events, as objects, to the OMS that placed each order: the
ExecutionReport each kind becomes, the ExecID rule, and the cancels an OMS waits on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog.testing

from fixgw.bridge import translate
from fixgw.bridge.owners import OrderOwners
from fixgw.bridge.reported import ReportedMark, ReportedMarks
from fixgw.bridge.reports import OrderReports
from fixgw.config import BridgeConfig, BridgeSessionConfig
from fixgw.domain import (
    CancelRejectReason,
    Event,
    OrderAccepted,
    OrderAnomaly,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderStatus,
    OrderStatusReported,
    OrderType,
    RejectReason,
    Side,
)
from fixgw.fix.message import FixMessage
from fixgw.results import OrderStatusAnswer, OrderView

TS = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
ORDER: dict[str, Any] = {
    "ts": TS,
    "cl_ord_id": "OMS-A-1",
    "order_id": "X-9",
    "symbol": "BTC/USD",
    "side": Side.BUY,
    "order_type": OrderType.LIMIT,
    "qty": D("0.50"),
    "price": D("30000.10"),
    "cum_qty": D("0"),
    "leaves_qty": D("0.50"),
    "avg_px": D("0"),
}


def order(status: OrderStatus = OrderStatus.NEW, **changes: Any) -> dict[str, Any]:
    return {**ORDER, "status": status, **changes}


def test_an_order_event_is_sent_with_its_seq_as_exec_id_and_its_own_exec_type() -> None:
    report = translate.execution_report(OrderAccepted(**order()), 42, "1")
    assert report.msg_type == "8"
    assert report.fields == {
        37: "X-9",
        11: "1",
        17: "seq-42",
        150: "0",
        39: "0",
        55: "BTC/USD",
        54: "1",
        38: "0.5",
        40: "2",
        14: "0",
        151: "0.5",
        6: "0",
        60: "20261125-10:00:00.123",
        44: "30000.1",
    }


def test_a_fill_carries_the_exchanges_exec_id_and_what_was_filled() -> None:
    fill = OrderFilled(
        **order(OrderStatus.FILLED, cum_qty=D("0.5"), leaves_qty=D("0"), avg_px=D("30000")),
        exec_id="T-7",
        last_qty=D("0.5"),
        last_px=D("30000"),
    )
    f = translate.execution_report(fill, 43, "1").fields
    assert (f[17], f[150], f[39], f[32], f[31]) == ("T-7", "F", "2", "0.5", "30000")


def test_a_rejected_order_says_why_and_a_cancel_names_the_order_it_cancelled() -> None:
    rejected = OrderRejected(**order(OrderStatus.REJECTED), reason=RejectReason.OTHER, text="no")
    f = translate.execution_report(rejected, 7, "1").fields
    assert (f[150], f[103], f[58]) == ("8", "99", "no")
    canceled = OrderCanceled(**order(OrderStatus.CANCELED), text=None)
    f = translate.execution_report(canceled, 8, "CXL-1", orig_cl_ord_id="1").fields
    assert (f[150], f[11], f[41]) == ("4", "CXL-1", "1") and 58 not in f


def test_a_status_answer_is_exec_type_i_with_the_request_echoed() -> None:
    fields = {k: v for k, v in order().items() if k != "ts"}
    answer = OrderStatusAnswer(**fields, source="exchange", text="resting")
    f = translate.status_report(answer, "1", "status-1-1", {790: "ask-1"}).fields
    assert (f[17], f[150], f[39], f[58], f[790]) == ("status-1-1", "I", "0", "resting", "ask-1")
    with pytest.raises(ValueError, match="not known"):
        translate.status_report(OrderView(**{**fields, "order_type": None}), "1", "s-2")


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, FixMessage]] = []

    def send(self, oms: str, message: FixMessage) -> None:
        self.sent.append((oms, message))


class Journal:
    """The journal as the bridge's reports see it: events by seq, and `write` to run its
    `on_written` callbacks as a write of its pending lines does."""

    def __init__(self, *events: tuple[int, Event]) -> None:
        self.events = list(events)
        self.last_seq = events[-1][0] if events else 0
        self.on_written: list[Callable[[], None]] = []

    def numbered_events(self, since: int, prefix: str) -> Iterator[tuple[int, Event]]:
        return iter([(seq, e) for seq, e in self.events if seq > since])

    def write(self) -> None:
        for callback in self.on_written:
            callback()


class Gateway:
    def __init__(
        self,
        *orders: OrderView,
        journal: Journal | None = None,
        cancels: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.orders = {o.cl_ord_id: o for o in orders}
        self.cancels = cancels or {}
        """The cancels sent for each order, by its ClOrdID, oldest first."""
        self.topics: list[str] = []
        self.journal = journal or Journal()
        self.placers: dict[str, str | None] = {}
        """Who placed each order, as the journal records it (an OMS, None: an API client)."""

    def open_orders(self) -> Iterator[OrderView]:
        return iter(self.orders.values())

    def order(self, cl_ord_id: str) -> OrderView | None:
        return self.orders.get(cl_ord_id)

    def cancels_of(self, cl_ord_id: str) -> tuple[str, ...]:
        return self.cancels.get(cl_ord_id, ())

    def placed_by(self, cl_ord_id: str) -> str | msgspec.UnsetType | None:
        """UNSET where not recorded (a 0.1.0 journal): the OMS its prefix names."""
        return self.placers.get(cl_ord_id, msgspec.UNSET)

    def subscribe_events(self, subscriber: object, topics: list[str]) -> None:
        self.topics += topics

    def flush_journal(self) -> None:
        self.journal.write()


CONFIG = BridgeConfig(
    port=9999, sessions=[BridgeSessionConfig(comp_id="OMS-A"), BridgeSessionConfig(comp_id="B")]
)


def reports_to(
    outbox: Outbox,
    gateway: Gateway,
    store: Path,
    owners: OrderOwners | None = None,
    config: BridgeConfig = CONFIG,
) -> OrderReports:
    """The bridge's reports, started, for `gateway`, its marks in `store`."""
    reports = OrderReports(
        gateway,  # type: ignore[arg-type]
        owners or OrderOwners(config, gateway.placed_by),
        outbox,  # type: ignore[arg-type]
        ReportedMarks(store, [oms.comp_id for oms in config.sessions]),
    )
    reports.start()
    return reports


class Bridged:
    """Events in, as the bus hands them, the OMS's messages out once the journal wrote."""

    def __init__(self, reports: OrderReports, gateway: Gateway) -> None:
        self.reports, self.gateway = reports, gateway

    def on_event(self, seq: int, event: Event) -> None:
        self.reports.on_event(seq, event)
        self.gateway.journal.write()


@pytest.fixture
def bridge(tmp_path: Path) -> tuple[Bridged, OrderOwners, Outbox]:
    outbox, gateway = Outbox(), Gateway()
    owners = OrderOwners(CONFIG, gateway.placed_by)
    return Bridged(reports_to(outbox, gateway, tmp_path, owners), gateway), owners, outbox


def test_an_order_under_an_oms_prefix_is_reported_to_it_only_if_it_placed_it(
    tmp_path: Path,
) -> None:
    """The journal says who placed each order: an API client's `OMS-A-1` (its id chosen
    before the session OMS-A was added) is nobody's at the bridge; an order journaled
    before that was recorded (0.1.0) is the OMS's its prefix names, as it was then."""
    outbox, gateway = Outbox(), Gateway()
    gateway.placers = {"OMS-A-1": None, "OMS-A-2": "OMS-A"}
    reports = Bridged(reports_to(outbox, gateway, tmp_path), gateway)
    for seq, cl_ord_id in enumerate(("OMS-A-1", "OMS-A-2", "OMS-A-3"), start=5):
        reports.on_event(seq, OrderAccepted(**order(cl_ord_id=cl_ord_id)))
    assert [(oms, m.fields[11]) for oms, m in outbox.sent] == [("OMS-A", "2"), ("OMS-A", "3")]


def test_an_oms_cancel_is_answered_under_its_own_id_until_the_order_is_done(
    bridge: tuple[Bridged, OrderOwners, Outbox],
) -> None:
    reports, owners, outbox = bridge
    assert owners.cancel_sent("OMS-A-1", "CXL-1") is None
    pending = OrderPendingCancel(
        **order(OrderStatus.PENDING_CANCEL), cancel_cl_ord_id="OMS-A-CXL-1"
    )
    reports.on_event(5, pending)
    reports.on_event(6, OrderCanceled(**order(OrderStatus.CANCELED), text=None))
    assert [(oms, m.fields[11], m.fields.get(41), m.fields[150]) for oms, m in outbox.sent] == [
        ("OMS-A", "CXL-1", "1", "6"),
        ("OMS-A", "CXL-1", "1", "4"),
    ]
    assert owners.cancel_of("OMS-A-1") is None


def test_a_cancel_by_someone_else_ends_the_oms_cancels_mapping(
    bridge: tuple[Bridged, OrderOwners, Outbox],
) -> None:
    reports, owners, outbox = bridge
    owners.cancel_sent("OMS-A-1", "CXL-1")
    reports.on_event(
        5, OrderPendingCancel(**order(OrderStatus.PENDING_CANCEL), cancel_cl_ord_id="api-1")
    )
    assert owners.cancel_of("OMS-A-1") is None
    assert [(m.fields[11], m.fields[150]) for _, m in outbox.sent] == [("1", "6")]


def test_cancel_rejects_go_to_the_oms_whose_cancel_it_was_and_status_answers_to_no_one(
    bridge: tuple[Bridged, OrderOwners, Outbox],
) -> None:
    reports, owners, outbox = bridge
    owners.cancel_sent("OMS-A-1", "CXL-1")
    rejected = {
        "ts": TS,
        "cl_ord_id": "OMS-A-1",
        "order_id": "X-9",
        "symbol": "BTC/USD",
        "status": OrderStatus.FILLED,
        "text": None,
    }
    reports.on_event(
        9,
        OrderCancelRejected(
            **rejected, cancel_cl_ord_id="B-CXL", reason=CancelRejectReason.TOO_LATE_TO_CANCEL
        ),
    )  # another OMS's cancel of this one's order: nobody's
    reports.on_event(
        10,
        OrderCancelRejected(
            **rejected, cancel_cl_ord_id="OMS-A-CXL-1", reason=CancelRejectReason.NOT_DELIVERED
        ),
    )
    reports.on_event(11, OrderStatusReported(**order(), text=None))
    reports.on_event(
        12,
        OrderAnomaly(
            ts=TS, cl_ord_id="OMS-A-1", order_id=None, exec_id=None, problem="late", detail="x"
        ),
    )
    ((oms, reject),) = outbox.sent
    assert oms == "OMS-A" and reject.msg_type == "9"
    f = reject.fields
    assert (f[11], f[41], f[39], f[102], f[58]) == ("CXL-1", "1", "2", "99", "not_delivered")
    assert owners.cancel_of("OMS-A-1") is None


def test_pending_cancels_of_before_a_restart_are_known_again_at_start(tmp_path: Path) -> None:
    resting = OrderView(
        **{k: v for k, v in order(OrderStatus.PENDING_CANCEL).items() if k != "ts"},
        cancel_cl_ord_id="OMS-A-CXL-1",
    )
    gateway = Gateway(resting)
    owners = OrderOwners(CONFIG, gateway.placed_by)
    reports_to(Outbox(), gateway, tmp_path, owners)
    assert owners.cancel_of("OMS-A-1") == "CXL-1" and gateway.topics == ["orders"]


def test_a_report_waits_for_its_event_to_be_journaled_and_the_mark_follows(
    tmp_path: Path,
) -> None:
    gateway, outbox = Gateway(), Outbox()
    reports = reports_to(outbox, gateway, tmp_path)
    reports.on_event(7, OrderAccepted(**order()))
    assert outbox.sent == []
    gateway.journal.write()
    assert [m.fields[17] for _, m in outbox.sent] == ["seq-7"]
    assert ReportedMark(tmp_path).seq == 7


def test_after_a_crash_the_reports_after_the_mark_are_sent_again_marked_poss_resend(
    tmp_path: Path,
) -> None:
    fill = OrderFilled(
        **order(OrderStatus.FILLED, cum_qty=D("0.5"), leaves_qty=D("0"), avg_px=D("30000")),
        exec_id="T-7",
        last_qty=D("0.5"),
        last_px=D("30000"),
    )
    journal = Journal((4, OrderAccepted(**order())), (5, fill))
    ReportedMark(tmp_path).write(4)
    gateway, outbox = Gateway(journal=journal), Outbox()
    reports = reports_to(outbox, gateway, tmp_path)
    assert [(oms, m.fields[17], m.fields[97]) for oms, m in outbox.sent] == [("OMS-A", "T-7", "Y")]
    assert ReportedMark(tmp_path).seq == 5
    reports.on_event(6, OrderCanceled(**order(OrderStatus.CANCELED), text=None))
    gateway.journal.write()
    assert 97 not in outbox.sent[-1][1].fields


def test_after_a_crash_a_closed_orders_cancel_report_comes_again_under_the_cancels_id(
    tmp_path: Path,
) -> None:
    """The order is closed at the start, so no pending cancel maps it: its 4 went out again
    under the order's ClOrdID, with no OrigClOrdID, and the OMS's cancel had no answer."""
    pending = OrderPendingCancel(
        **order(OrderStatus.PENDING_CANCEL), cancel_cl_ord_id="OMS-A-CXL-1"
    )
    journal = Journal((5, pending), (6, OrderCanceled(**order(OrderStatus.CANCELED), text=None)))
    ReportedMark(tmp_path).write(5)
    closed = OrderView(**{k: v for k, v in order(OrderStatus.CANCELED).items() if k != "ts"})
    gateway = Gateway(closed, journal=journal, cancels={"OMS-A-1": ("OMS-A-CXL-1",)})
    outbox = Outbox()
    reports_to(outbox, gateway, tmp_path)
    assert [(oms, m.fields[11], m.fields.get(41), m.fields[17]) for oms, m in outbox.sent] == [
        ("OMS-A", "CXL-1", "1", "seq-6")
    ]


def test_a_store_never_told_from_sends_nothing_again(tmp_path: Path) -> None:
    journal = Journal((4, OrderAccepted(**order())))
    outbox = Outbox()
    reports_to(outbox, Gateway(journal=journal), tmp_path)
    assert outbox.sent == [] and ReportedMark(tmp_path).seq == 4


def test_a_damaged_mark_is_said_and_every_report_is_sent_again_marked_poss_resend(
    tmp_path: Path,
) -> None:
    """It was read as a store never told from, silently: a fill journaled and not yet
    reported at a crash never reached the OMS. How far behind the mark was is lost: every
    report in the journal goes again, and the OMS drops those it has by ExecID."""
    fill = OrderFilled(
        **order(OrderStatus.FILLED, cum_qty=D("0.5"), leaves_qty=D("0"), avg_px=D("30000")),
        exec_id="T-7",
        last_qty=D("0.5"),
        last_px=D("30000"),
    )
    journal = Journal((4, OrderAccepted(**order())), (5, fill))
    (tmp_path / "reported.seq").write_bytes(b"0000000000000000001x\n")
    outbox = Outbox()
    with structlog.testing.capture_logs() as logs:
        reports_to(outbox, Gateway(journal=journal), tmp_path)
    [said] = [e for e in logs if e["event"] == "unreadable state file read as empty"]
    assert said["file"] == str(tmp_path / "reported.seq")
    assert [(m.fields[17], m.fields[97]) for _, m in outbox.sent] == [("seq-4", "Y"), ("T-7", "Y")]
    assert ReportedMark(tmp_path).seq == 5


def test_a_clean_stop_marks_every_event_told_the_api_clients_too(tmp_path: Path) -> None:
    """An API client's order after the last OMS report moves the mark only at the stop: the
    next start reads nothing again."""
    gateway, outbox = Gateway(), Outbox()
    reports = reports_to(outbox, gateway, tmp_path)
    reports.on_event(1, OrderAccepted(**order()))
    gateway.journal.write()
    gateway.journal.last_seq = 2
    reports.on_event(2, OrderAccepted(**order(cl_ord_id="api-7")))
    gateway.journal.write()
    assert ReportedMark(tmp_path).seq == 1 and len(outbox.sent) == 1
    reports.close()
    assert ReportedMark(tmp_path).seq == 2


def test_a_mark_that_cannot_be_written_holds_back_no_report_and_is_said_once(
    tmp_path: Path,
) -> None:
    """The mark is written after each report held for a journal write: one that raised (its
    disk full) stopped the reports behind it, and out of the journal's write. They all go
    out; the mark stays behind, so a restart sends them again, PossResend."""
    gateway, outbox = Gateway(), Outbox()
    reports = reports_to(outbox, gateway, tmp_path)
    mark = reports.reported.shared
    os.close(mark._fd)
    mark._fd = os.open(mark.path, os.O_RDONLY)  # every write fails, as on a full disk
    for seq in (7, 8, 9):
        reports.on_event(seq, OrderAccepted(**order(cl_ord_id=f"OMS-A-{seq}")))
    with structlog.testing.capture_logs() as logs:
        gateway.journal.write()
    assert [m.fields[17] for _, m in outbox.sent] == ["seq-7", "seq-8", "seq-9"]
    assert [e["log_level"] for e in logs if "mark not written" in e["event"]] == ["error"]
    assert ReportedMark(tmp_path).seq == 0  # behind: none of them marked told


def test_a_session_taken_out_of_the_config_and_back_is_told_what_it_missed_from_its_mark(
    tmp_path: Path,
) -> None:
    """OMS-A's order filled while a restart ran without OMS-A and with B: B's reports moved
    the one mark the bridge had past the fill, and OMS-A, back, was never told of it."""
    fill = OrderFilled(
        **order(OrderStatus.FILLED, cum_qty=D("0.5"), leaves_qty=D("0"), avg_px=D("30000")),
        exec_id="T-7",
        last_qty=D("0.5"),
        last_px=D("30000"),
    )
    b_order = OrderAccepted(**order(cl_ord_id="B-1", order_id="X-10"))
    placers: dict[str, str | None] = {"OMS-A-1": "OMS-A", "B-1": "B"}
    journal = Journal((4, OrderAccepted(**order())))
    gateway, outbox = Gateway(journal=journal), Outbox()
    gateway.placers = placers
    reports_to(outbox, gateway, tmp_path).close()  # OMS-A told up to 4

    b_only = BridgeConfig(port=9999, sessions=[BridgeSessionConfig(comp_id="B")])
    gateway, outbox = Gateway(journal=journal), Outbox()
    gateway.placers = placers
    without_a = reports_to(outbox, gateway, tmp_path, config=b_only)
    journal.events += [(5, fill), (6, b_order)]
    journal.last_seq = 6
    without_a.on_event(5, fill)
    without_a.on_event(6, b_order)
    gateway.journal.write()
    without_a.close()
    assert [(oms, m.fields[17]) for oms, m in outbox.sent] == [("B", "seq-6")]

    gateway, outbox = Gateway(journal=journal), Outbox()
    gateway.placers = placers
    reports_to(outbox, gateway, tmp_path).close()
    assert [(oms, m.fields[17], m.fields[97]) for oms, m in outbox.sent] == [("OMS-A", "T-7", "Y")]
    assert ReportedMark(tmp_path, "OMS-A").seq == ReportedMark(tmp_path, "B").seq == 6


def test_an_answer_about_an_order_waits_behind_its_report_held_for_the_journal(
    tmp_path: Path,
) -> None:
    """The gateway's state already has the order canceled while the report of it waits for
    the journal: a reject (or status answer) telling that state goes out behind the report,
    in the same write; one about another order goes at once; a request's file goes (its
    callback) once the answer has gone out."""
    outbox, gateway = Outbox(), Gateway()
    owners = OrderOwners(CONFIG, gateway.placed_by)
    reports = reports_to(outbox, gateway, tmp_path, owners)
    owners.cancel_sent("OMS-A-1", "CXL-1")
    reports.on_event(5, OrderCanceled(**order(OrderStatus.CANCELED), text=None))
    reject = FixMessage("9", {11: "CXL-2", 39: "4"})
    other = FixMessage("8", {11: "2", 150: "I"})
    reports.answer("OMS-A", "OMS-A-1", reject)
    reports.answer("OMS-A", "OMS-A-2", other)
    gone: list[str] = []
    reports.after_held(lambda: gone.append("file"))
    assert [m.fields[11] for _, m in outbox.sent] == ["2"] and gone == []

    gateway.journal.write()
    assert [(m.fields[11], m.fields.get(150)) for _, m in outbox.sent] == [
        ("2", "I"),
        ("CXL-1", "4"),
        ("CXL-2", None),
    ]
    assert gone == ["file"]
    reports.answer("OMS-A", "OMS-A-1", reject)  # nothing held: at once
    reports.after_held(lambda: gone.append("now"))
    assert len(outbox.sent) == 4 and gone == ["file", "now"]
    assert ReportedMark(tmp_path, "OMS-A").seq == 5
