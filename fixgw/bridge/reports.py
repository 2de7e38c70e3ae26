"""The gateway's order events back to the OMS that placed each order: ExecutionReports (8)
under its own ids, and OrderCancelRejects (9) for its cancels that failed.

A report is held until its event's journal line is written, as a client's line is: an OMS
is never told what a restarted gateway would not know (`reported.ReportedMark` says what
happens on the other side of that write, and how a session taken out of the config is told
what it missed once it is back).

The bridge's answers to an OMS's own requests that tell an order's state (a cancel's or a
replace's reject, a status answer, the answer to an order sent again) wait behind that
order's reports still held (`OrderReports.answer`): the OMS is never told a state before
the report of the event that made it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from fixgw.bridge import translate
from fixgw.bridge.outbox import Outbox
from fixgw.bridge.owners import OrderOwners
from fixgw.bridge.reported import ReportedMarks
from fixgw.bridge.tables import OTHER
from fixgw.domain import (
    GATEWAY_REJECT_REASONS,
    Event,
    OrderAnomaly,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderPendingCancel,
    OrderStatus,
    OrderStatusReported,
)
from fixgw.fix.codes import CXL_REJ_REASON
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import Tag

if TYPE_CHECKING:
    from fixgw.gateway import Gateway

log = structlog.get_logger("fixgw.bridge")


class OrderReports:
    def __init__(
        self, gateway: Gateway, owners: OrderOwners, outbox: Outbox, reported: ReportedMarks
    ) -> None:
        self.gateway = gateway
        self.owners = owners
        self.outbox = outbox
        self.reported = reported
        self._held: list[tuple[int | None, str, FixMessage]] = []
        """Reports of events whose journal lines are not yet written (with the event's
        seq), and the answers waiting behind them (seq None: `answer`)."""
        self._held_orders: set[str] = set()
        """The orders (the gateway's ClOrdIDs) with a report among those held."""
        self._after_held: list[Callable[[], None]] = []
        """Called once what is held now has gone out (`after_held`)."""
        self._held_upto = 0
        """The seq of the last order event seen."""
        self._resending = False
        self._resend_from: dict[str, int | None] = {}
        """While resending: each session's mark, after which its reports go again."""

    def start(self) -> None:
        """Cancels pending before a restart are known again; the reports of events after
        each session's mark are sent again to it (PossResend); then each order event comes.
        After the acceptor starts: QuickFIX has no session to send on before."""
        for order in self.gateway.open_orders():
            if order.cl_ord_id is not None:
                self.owners.note_cancel(order.cl_ord_id, order.cancel_cl_ord_id)
        last = self.gateway.journal.last_seq
        starts = {oms: self.reported.start_of(oms) for oms in self.reported.of}
        marked = [seq for seq in starts.values() if seq is not None]
        if marked and min(marked) < last:
            self._resend_from = starts
            self._resend_after(min(marked))
        self.reported.write_all(last)
        self.gateway.journal.on_written.append(self._journaled)
        self.gateway.subscribe_events(self, ["orders"])

    def send_held(self) -> None:
        """What is held goes out if the journal can write it; else a restart sends it."""
        try:
            self.gateway.flush_journal()
        except OSError:
            log.error("OMS reports held: the journal cannot be written; a restart sends them")

    def close(self) -> None:
        """After the journal's last write, which sent what was held: every event is told,
        the API clients' since the last report too, so the next start reads nothing again."""
        if self._journaled in self.gateway.journal.on_written:
            self.gateway.journal.on_written.remove(self._journaled)
        if not self._held:
            self.reported.write_all(self.gateway.journal.last_seq)
        self.reported.close()

    def _resend_after(self, seq: int) -> None:
        self._resending = True
        replayed: set[str] = set()
        try:
            for event_seq, event in self.gateway.journal.numbered_events(seq, "order."):
                if isinstance(event, OrderEvent) and event.cl_ord_id not in replayed:
                    replayed.add(event.cl_ord_id)
                    self._cancel_of_closed_order(event.cl_ord_id)
                self.on_event(event_seq, event)
        finally:
            self._resending = False
            self._resend_from = {}
        resent = len(self._held)
        self._journaled()
        if resent:
            log.warning(
                "OMS reports sent again after a restart, marked PossResend",
                after_seq=seq,
                reports=resent,
            )

    def _cancel_of_closed_order(self, cl_ord_id: str) -> None:
        """An order closed since the mark (`start` maps the open ones' pending cancels): its
        last cancel, under which its PendingCancel and Canceled reports went out, so that
        the report sent again is the same report (ClOrdID the cancel's, OrigClOrdID the
        order's). Its events after the mark map and end it as they did the first time. An
        order forgotten since is mapped by its `order.canceled`, which names the cancel it
        answers (`_names_its_cancel`); this is for the lines written before it did."""
        order = self.gateway.order(cl_ord_id)
        cancels = self.gateway.cancels_of(cl_ord_id)
        if order is not None and order.status.is_terminal and cancels:
            self.owners.note_cancel(cl_ord_id, cancels[-1])

    def answer(self, oms: str, cl_ord_id: str | None, message: FixMessage) -> None:
        """An answer to the OMS's own request that tells the state of order `cl_ord_id` (the
        gateway's ClOrdID; None: no order's): sent now, or, while a report of that order is
        held for the journal, behind it (and sent with it): the gateway's state may already
        be that report's event (a second cancel refused as too late before the report of
        the first cancel's Canceled). No journal write of its own: the flush after each OMS
        message, or the one due in this turn of the loop, sends it."""
        if cl_ord_id is not None and cl_ord_id in self._held_orders:
            self._held.append((None, oms, message))
        else:
            self.outbox.send(oms, message)

    def after_held(self, callback: Callable[[], None]) -> None:
        """`callback` now, or once what is held has gone out (an answer among it)."""
        if self._held:
            self._after_held.append(callback)
        else:
            callback()

    def _journaled(self) -> None:
        """The journal wrote its lines: the reports held for them go out, and the answers
        behind them."""
        if not self._held:
            return
        held, self._held = self._held, []
        self._held_orders.clear()
        for seq, oms, report in held:
            self.outbox.send(oms, report)
            if seq is not None:
                # after each: a crash in a burst leaves the fewest to send again
                self.reported.told(oms, seq)
        self.reported.write_all(self._held_upto)
        after, self._after_held = self._after_held, []
        for callback in after:
            callback()

    def _send(self, oms: str, cl_ord_id: str, report: FixMessage) -> None:
        if self._resending:
            told_upto = self._resend_from.get(oms)
            if told_upto is None or self._held_upto <= told_upto:
                return
            report = FixMessage(
                report.msg_type, {**report.fields, Tag.POSS_RESEND: "Y"}, report.groups
            )
        self._held.append((self._held_upto, oms, report))
        self._held_orders.add(cl_ord_id)

    def on_event(self, seq: int, event: Event) -> None:
        """The bus calls this with each order event. `OrderStatusReported` answers go to
        whoever asked (an OMS's, `OmsOrders.status`); cancel rejects, and an anomaly
        `cancel_lost`, are answered as 9 (a cancel not the OMS's own, as a restatement);
        the rest of the anomalies stay with the gateway."""
        self._held_upto = seq
        try:
            if isinstance(event, OrderCancelRejected):
                self._cancel_rejected(seq, event)
            elif isinstance(event, OrderAnomaly):
                if event.problem == "cancel_lost":
                    self._cancel_lost(seq, event)
            elif isinstance(event, OrderEvent) and not isinstance(event, OrderStatusReported):
                self._order_event(seq, event)
        except Exception:
            log.exception("event not bridged", seq=seq, event=repr(event)[:300])

    def _order_event(self, seq: int, event: OrderEvent) -> None:
        owner = self.owners.owner(event.cl_ord_id)
        if owner is None:
            return
        oms, oms_cl_ord_id = owner
        if isinstance(event, OrderPendingCancel) or (
            isinstance(event, OrderCanceled) and _names_its_cancel(event)
        ):
            self.owners.note_cancel(event.cl_ord_id, event.cancel_cl_ord_id)
        cancel_id = self.owners.cancel_of(event.cl_ord_id)
        if isinstance(event, OrderPendingCancel | OrderCanceled) and cancel_id is not None:
            report = translate.execution_report(event, seq, cancel_id, orig_cl_ord_id=oms_cl_ord_id)
        else:
            report = translate.execution_report(event, seq, oms_cl_ord_id)
        if event.status.is_terminal:
            self.owners.cancel_ended(event.cl_ord_id)
        self._send(oms, event.cl_ord_id, report)

    def _cancel_rejected(self, seq: int, event: OrderCancelRejected) -> None:
        owner = self.owners.owner(event.cl_ord_id)
        if owner is None:
            return
        cancel = self.owners.cancel_owner(event.cancel_cl_ord_id)
        if cancel is None or cancel[0] != owner[0]:
            # another's cancel this gateway sent: its PendingCancel went to the OMS
            if event.cancel_cl_ord_id in self.gateway.cancels_of(event.cl_ord_id):
                why = event.text or str(event.reason)
                self._other_cancel_failed(seq, owner, event.cl_ord_id, why)
            return
        oms, cancel_id = cancel
        self.owners.cancel_ended(event.cl_ord_id, cancel_id)
        text = event.text or str(event.reason)
        # the gateway's own reasons (not_delivered) have no FIX code: 99, Text says why
        reason = (
            OTHER if event.reason in GATEWAY_REJECT_REASONS else CXL_REJ_REASON.encode(event.reason)
        )
        self._send_cancel_reject(
            oms, event.cl_ord_id, cancel_id, owner[1], text, event.order_id, event.status, reason
        )

    def _cancel_lost(self, seq: int, event: OrderAnomaly) -> None:
        """Reconciliation found the order open after its cancel was lost on the way to the
        exchange; the OMS, in PendingCancel, learns its cancel failed and may send another.
        A cancel not its own (none mapped) was told to it as a PendingCancel too."""
        cl_ord_id = event.cl_ord_id or ""
        owner = self.owners.owner(cl_ord_id)
        cancel_id = self.owners.cancel_ended(cl_ord_id)
        order = self.gateway.order(cl_ord_id)
        if owner is None or order is None:
            return
        if cancel_id is None:
            self._other_cancel_failed(seq, owner, cl_ord_id, "it did not reach the exchange")
            return
        text = "the cancel did not reach the exchange; the order is still open"
        self._send_cancel_reject(
            owner[0], cl_ord_id, cancel_id, owner[1], text, order.order_id, order.status, OTHER
        )

    def _other_cancel_failed(
        self, seq: int, owner: tuple[str, str], cl_ord_id: str, why: str
    ) -> None:
        """A cancel of the OMS's order that it did not send (an API client's, a halt's,
        cancel on disconnect's) failed, after the OMS was told the order's PendingCancel: an
        unsolicited restatement (ExecType D, FIX 4.4's for a change the OMS did not ask for)
        tells it the order stands, as it is now. Nothing for an order closed or with
        another cancel pending since: their reports tell it."""
        order = self.gateway.order(cl_ord_id)
        if order is None or order.status.is_terminal or order.cancel_cl_ord_id is not None:
            return
        text = f"a cancel this session did not send failed ({why}): the order is not cancelled"
        oms, oms_cl_ord_id = owner
        self._send(
            oms,
            cl_ord_id,
            translate.restated(order, oms_cl_ord_id, translate.event_exec_id(seq), text),
        )

    def _send_cancel_reject(
        self,
        oms: str,
        cl_ord_id: str,
        cancel_id: str,
        oms_cl_ord_id: str,
        text: str,
        order_id: str | None,
        status: OrderStatus | None,
        reason: str,
    ) -> None:
        message = FixMessage(
            msg_type="F", fields={Tag.CL_ORD_ID: cancel_id, Tag.ORIG_CL_ORD_ID: oms_cl_ord_id}
        )
        self._send(
            oms, cl_ord_id, translate.cancel_reject(message, text, order_id, status, reason=reason)
        )


def _names_its_cancel(event: OrderCanceled) -> bool:
    """Of a tracked order, naming the cancel pending then: mapped as its PendingCancel was,
    though that came before the mark the reports are sent again from."""
    return event.cancel_cl_ord_id is not None and not event.of_untracked_order
