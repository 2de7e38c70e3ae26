"""An OMS's orders into the gateway's order path: NewOrderSingle (D), OrderCancelRequest (F),
OrderCancelReplaceRequest (G, refused: the exchange has none) and OrderStatusRequest (H).
What the gateway refuses is answered here; what becomes of an order comes back as its
events (`reports.OrderReports`). An answer that tells an order's state goes behind that
order's reports still held for the journal (`OrderReports.answer`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import structlog

from fixgw.api.protocol import ErrorCode, OrderStatusRequest
from fixgw.bridge import translate
from fixgw.bridge.outbox import Outbox
from fixgw.bridge.owners import OrderOwners
from fixgw.bridge.refusals import RefusedOrders
from fixgw.bridge.reports import OrderReports
from fixgw.bridge.tables import (
    CXL_REJ_BROKER_OPTION,
    CXL_REJ_REASON_OF_ERROR,
    CXL_REJ_UNKNOWN_ORDER,
    ORD_REJ_REASON_OF_ERROR,
    OTHER,
)
from fixgw.bridge.translate import Refused
from fixgw.bridge.unanswered import UnansweredRequests
from fixgw.config import BridgeConfig
from fixgw.errors import FixgwError, RequestError
from fixgw.fix.message import FixMessage, FixParseError
from fixgw.fix.tags import Tag
from fixgw.results import OrderView

if TYPE_CHECKING:
    from fixgw.gateway import Gateway

log = structlog.get_logger("fixgw.bridge")


class OmsOrders:
    def __init__(
        self,
        config: BridgeConfig,
        gateway: Gateway,
        owners: OrderOwners,
        outbox: Outbox,
        reports: OrderReports,
        unanswered: UnansweredRequests,
        refusals: RefusedOrders,
    ) -> None:
        self.gateway = gateway
        self.owners = owners
        self.outbox = outbox
        self.reports = reports
        self.unanswered = unanswered
        self.refusals = refusals
        self.prefixes = owners.prefixes
        self.time_in_force = gateway.venue.time_in_force
        """What the venue's orders carry: an OMS's TimeInForce among them goes on as the
        order's; the field table (`fields.tables`) decides the rest."""
        self._cancel_on_disconnect = {
            oms.comp_id for oms in config.sessions if oms.cancel_on_disconnect
        }
        self._started = int(time.time() * 1000)
        self._exec_ids = 0
        """For the ExecIDs the bridge makes up (`_exec_id`)."""

    def new_order(self, oms: str, msg: FixMessage) -> None:
        if translate.possibly_resent(msg) and self._answered_before(oms, msg):
            return
        try:
            request = translate.new_order(msg, self.prefixes[oms], self.time_in_force)
        except Refused as exc:
            self._refuse(oms, msg, exc.text, exc.reason)
            return
        try:
            self.gateway.new_order(request, owner=f"bridge:{oms}", oms=oms)
        except FixgwError as exc:
            if exc.code == ErrorCode.DUPLICATE_CL_ORD_ID or self.gateway.order(
                request.cl_ord_id or ""
            ):
                # another order's ClOrdID, or refused once an order (its events tell it):
                # no refusal of its own to keep
                self.reports.answer(oms, request.cl_ord_id, self._refused(msg, exc))
            else:
                reason = ORD_REJ_REASON_OF_ERROR.get(exc.code, OTHER)
                self._refuse(oms, msg, f"{exc.code}: {exc.message}", reason)

    def _answered_before(self, oms: str, msg: FixMessage) -> bool:
        """A NewOrderSingle sent again whose ClOrdID the gateway has processed is never acted
        on again: an order it has is answered with its status; one it refused, with that
        refusal; one it has forgotten (`orders.keep_closed`), not at all, as its state is
        gone and FIX 4.4 lets a resend of what was processed go unanswered."""
        oms_cl_ord_id = msg.fields.get(Tag.CL_ORD_ID, "")
        cl_ord_id = self.prefixes[oms] + oms_cl_ord_id
        known = self._its_order(oms, cl_ord_id)
        if known is not None:
            log.info("OMS order sent again; answered with its status", oms=oms, cl_ord_id=cl_ord_id)
            self._send_status(oms, cl_ord_id, oms_cl_ord_id, known)
            return True
        if self.gateway.forgotten(cl_ord_id):
            log.warning(
                "OMS order sent again after the gateway forgot it (orders.keep_closed); "
                "not placed again, and not answered: its state is no longer known",
                oms=oms,
                cl_ord_id=cl_ord_id,
            )
            return True
        refusal = self.refusals.refusal(oms, oms_cl_ord_id)
        if refusal is not None:
            log.info(
                "OMS order sent again; answered with its refusal", oms=oms, cl_ord_id=cl_ord_id
            )
            self.outbox.send(
                oms,
                translate.refused_order(
                    msg, self._exec_id("status"), refusal.text, "I", refusal.reason
                ),
            )
            return True
        return False

    def _refuse(self, oms: str, msg: FixMessage, text: str, reason: str) -> None:
        """ExecType 8 for an order refused before it became one, kept (`RefusedOrders`)."""
        cl_ord_id = msg.fields.get(Tag.CL_ORD_ID)
        if cl_ord_id is not None:
            self.refusals.refused(oms, cl_ord_id, reason, text)
        self.outbox.send(
            oms, translate.refused_order(msg, self._exec_id("refused"), text, reason=reason)
        )

    def _refused(self, msg: FixMessage, exc: FixgwError, exec_type: str = "8") -> FixMessage:
        return translate.refused_order(
            msg,
            self._exec_id("refused"),
            f"{exc.code}: {exc.message}",
            exec_type,
            ORD_REJ_REASON_OF_ERROR.get(exc.code, OTHER),
        )

    def cancel(self, oms: str, msg: FixMessage) -> None:
        """The cancel reaches the exchange as prefix + the OMS's ClOrdID for it, so its
        events name it; refusals are answered here with OrderCancelReject."""
        prefix = self.prefixes[oms]
        try:
            request = translate.cancel_request(msg, prefix)
        except Refused as exc:
            order_key = self._order_named(oms, prefix + msg.fields.get(Tag.ORIG_CL_ORD_ID, ""))
            order = self._its_order(oms, order_key)
            self.reports.answer(
                oms,
                order_key,
                translate.cancel_reject(
                    msg,
                    exc.text,
                    order.order_id if order else None,
                    order.status if order else None,
                    reason=exc.reason,
                ),
            )
            return
        cancel_id = request.cancel_cl_ord_id or ""
        order_key = self._order_named(oms, request.cl_ord_id or "")
        request = msgspec.structs.replace(request, cl_ord_id=order_key)
        if translate.possibly_resent(msg) and self.gateway.order_of_cancel(cancel_id) == order_key:
            log.info(
                "OMS cancel sent again; its reports went out already", cancel_cl_ord_id=cancel_id
            )
            return
        if not self.owners.may_reach(oms, order_key):
            log.warning("OMS cancel refused: not its order", oms=oms, cl_ord_id=order_key)
            self.outbox.send(
                oms,
                translate.cancel_reject(
                    msg,
                    f"{ErrorCode.UNKNOWN_ORDER}: {self._not_its(order_key)}",
                    None,
                    None,
                    reason=CXL_REJ_UNKNOWN_ORDER,
                ),
            )
            return
        order = self.gateway.order(order_key)
        mismatch = translate.another_order(msg, order) if order is not None else None
        if order is not None and mismatch is not None:
            log.warning("OMS cancel refused: it names two orders", oms=oms, why=mismatch)
            self.reports.answer(
                oms,
                order_key,
                translate.cancel_reject(
                    msg,
                    f"{mismatch}: the cancel names two orders; nothing was done",
                    order.order_id,
                    order.status,
                    reason=OTHER,
                ),
            )
            return
        # Mapped before the gateway acts: an order still in the throttle's queue is canceled
        # there and then, with no pending_cancel, and its order.canceled answers this cancel.
        before = self.owners.cancel_sent(order_key, msg.fields[Tag.CL_ORD_ID])
        try:
            self.gateway.cancel_order(request)
        except FixgwError as exc:
            self.owners.cancel_refused(order_key, before)
            order = self.gateway.order(order_key)
            # behind the order's reports held for the journal: an order the gateway has
            # closed (order_closed) is told Canceled or Filled first, then this
            if order is not None and exc.code == ErrorCode.CANCEL_PENDING:
                self.reports.answer(oms, order_key, self._already_pending(oms, msg, order))
                return
            self.reports.answer(
                oms,
                order_key,
                translate.cancel_reject(
                    msg,
                    f"{exc.code}: {exc.message}",
                    order.order_id if order else None,
                    order.status if order else None,
                    reason=CXL_REJ_REASON_OF_ERROR.get(exc.code, OTHER),
                ),
            )

    def _order_named(self, oms: str, cl_ord_id: str) -> str:
        """The gateway's ClOrdID of the order an OMS's id names (prefixed): the order's own,
        or the ClOrdID of a cancel of it the gateway sent for this OMS and the exchange did
        not refuse. FIX 4.4 has the OMS know an order by its last such cancel's ClOrdID
        (OrigClOrdID 41: "ClOrdID of the previous non rejected order"), and the bridge tells
        PendingCancel and Canceled under it."""
        if self.gateway.order(cl_ord_id) is not None:
            return cl_ord_id
        order_key = self.gateway.order_of_cancel(cl_ord_id)
        owner = self.owners.owner(order_key) if order_key else None
        if order_key and owner is not None and owner[0] == oms:
            return order_key
        return cl_ord_id

    def _its_order(self, oms: str, cl_ord_id: str) -> OrderView | None:
        """The order under the OMS's prefix, if the OMS may reach it (`OrderOwners.may_reach`):
        an API client's whose id took the prefix before the session was added is not."""
        return self.gateway.order(cl_ord_id) if self.owners.may_reach(oms, cl_ord_id) else None

    @staticmethod
    def _not_its(cl_ord_id: str) -> str:
        """Said as of an unknown order, and as the gateway says that (`OrderEntry`)."""
        return f"no order with cl_ord_id {cl_ord_id!r} placed by this session"

    def _already_pending(self, oms: str, msg: FixMessage, order: OrderView) -> FixMessage:
        """One cancel of an order at a time, whoever sent the pending one (the gateway's
        rule, `OrderEntry.cancel_order`): CxlRejReason 3, as venues do, and Text naming the
        pending cancel only if it is this session's."""
        pending = self.owners.cancel_owner(order.cancel_cl_ord_id or "")
        whose = f"ClOrdID {pending[1]}" if pending and pending[0] == oms else "not this session's"
        return translate.cancel_reject(
            msg,
            f"a cancel of this order is pending already ({whose}); wait for its answer",
            order.order_id,
            order.status,
            reason=CXL_REJ_REASON_OF_ERROR[ErrorCode.CANCEL_PENDING],
        )

    def replace(self, oms: str, msg: FixMessage) -> None:
        """Refused whatever it says (CxlRejReason 2); Text also names a Symbol or Side that
        is not the order's, as a cancel of it would be refused for that."""
        named = self._order_named(oms, self.prefixes[oms] + msg.fields.get(Tag.ORIG_CL_ORD_ID, ""))
        order = self._its_order(oms, named)
        mismatch = translate.another_order(msg, order) if order is not None else None
        self.reports.answer(
            oms,
            named,
            translate.cancel_reject(
                msg,
                "the exchange cannot replace an order: cancel it and send a new one"
                + (f"; and {mismatch}" if mismatch else ""),
                order.order_id if order else None,
                order.status if order else None,
                response_to="2",
                reason=CXL_REJ_BROKER_OPTION if order else CXL_REJ_UNKNOWN_ORDER,
            ),
        )

    def status(self, oms: str, msg: FixMessage) -> None:
        """Kept on disk until answered (`UnansweredRequests`): QuickFIX counts it received
        when this returns, and a crash before the exchange's answer must not lose it."""
        kept = self.unanswered.taken(oms, msg.raw)
        self.outbox.spawn(oms, msg, self._answer_status(oms, msg), self._once_sent(kept))

    def answer_left(self) -> None:
        """Status requests taken before a crash (or a stop) and never answered: each is
        answered as any other, once the gateway is logged on and reconciled again, or
        `api.request_timeout_s` after the start if it is not by then (the answer then says
        why the exchange did not)."""
        for kept, oms, raw in self.unanswered.left():
            if oms not in self.prefixes:  # or the file's first line is damaged
                self.unanswered.set_aside(kept, f"no OMS configured as {oms!r}")
                continue
            try:
                msg = translate.parse_oms(raw)
            except FixParseError as exc:
                self.unanswered.set_aside(kept, f"not a FIX message: {exc}")
                continue
            if msg.msg_type != "H":
                self.unanswered.set_aside(kept, "not a status request (MsgType not H)")
                continue
            log.info(
                "answering a status request taken before the restart",
                oms=oms,
                cl_ord_id=msg.fields.get(Tag.CL_ORD_ID),
                ord_status_req_id=msg.fields.get(Tag.ORD_STATUS_REQ_ID),
            )
            self.outbox.spawn(oms, msg, self._answer_once_ready(oms, msg), self._once_sent(kept))

    def _once_sent(self, kept: Path | None) -> Callable[[], None]:
        """A status request's file goes once its answer has gone out, which may have waited
        behind the order's reports held for the journal (`OrderReports.answer`)."""
        return partial(self.reports.after_held, partial(self.unanswered.answered, kept))

    async def _answer_once_ready(self, oms: str, msg: FixMessage) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self.gateway.became_ready.wait(), self.gateway.config.api.request_timeout_s
            )
        await self._answer_status(oms, msg)

    async def _answer_status(self, oms: str, msg: FixMessage) -> None:
        """The order ClOrdID names (the order's own, or its cancel's: `_order_named`), also
        when the request's Symbol or Side is another's: the answer carries the order's own,
        and Text says which differ. "Unknown order" (OrdStatus 8) would tell the OMS that a
        live order was rejected."""
        cl_ord_id = self._order_named(oms, self.prefixes[oms] + msg.fields.get(Tag.CL_ORD_ID, ""))
        if not self.owners.may_reach(oms, cl_ord_id):
            exc = RequestError(self._not_its(cl_ord_id), code=ErrorCode.UNKNOWN_ORDER)
            self.outbox.send(oms, self._refused(msg, exc, exec_type="I"))
            return
        named = self.gateway.order(cl_ord_id)
        if named is None and (by_order_id := translate.status_request_by_order_id(msg)):
            await self._answer_from_the_exchange(oms, msg, cl_ord_id, by_order_id)
            return
        mismatch = translate.another_order(msg, named) if named is not None else None
        try:
            request = translate.status_request(msg, self.prefixes[oms])
            answer = await self.gateway.order_status(
                msgspec.structs.replace(request, cl_ord_id=cl_ord_id)
            )
        except Refused as exc:
            self.reports.answer(
                oms,
                cl_ord_id,
                translate.refused_order(msg, self._exec_id("refused"), exc.text, "I"),
            )
            return
        except FixgwError as exc:
            known = self.gateway.order(cl_ord_id)
            if known is None or known.order_type is None or known.qty is None:
                self.reports.answer(oms, cl_ord_id, self._refused(msg, exc, exec_type="I"))
            else:
                # The order stands as the gateway last heard, not rejected: OrdStatus is
                # always the order's current status. Text says the exchange did not confirm.
                text = f"as last reported; the exchange did not answer ({exc.code}: {exc.message})"
                self._send_status(
                    oms,
                    cl_ord_id,
                    msg.fields[Tag.CL_ORD_ID],
                    known,
                    translate.status_echo(msg),
                    "; ".join(t for t in (text, mismatch) if t),
                )
            return
        self._send_status(
            oms,
            cl_ord_id,
            msg.fields.get(Tag.CL_ORD_ID, ""),
            answer,
            translate.status_echo(msg),
            "; ".join(t for t in (answer.text, mismatch) if t) or None,
        )

    async def _answer_from_the_exchange(
        self, oms: str, msg: FixMessage, cl_ord_id: str, request: OrderStatusRequest
    ) -> None:
        """An order the gateway does not keep (forgotten: `orders.keep_closed`), asked
        about with its OrderID: the exchange is asked by it, as the API's `order_status` by
        `order_id` asks, and its answer goes back if it is this order (its ClOrdID the one
        the request names, under this session's prefix). An order the exchange does not
        know either, or knows as another's, is unknown to the OMS (OrdStatus 8,
        OrdRejReason 5); one the gateway keeps under another ClOrdID is not asked about."""
        order_id = request.order_id or ""
        if self.gateway.tracks_order_id(order_id):
            self._unknown(oms, msg, f"{self._not_its(cl_ord_id)}; OrderID {order_id} is another's")
            return
        try:
            answer = await self.gateway.order_status(request)
        except FixgwError as exc:
            self.outbox.send(oms, self._refused(msg, exc, exec_type="I"))
            return
        if answer.cl_ord_id != cl_ord_id or answer.order_type is None or answer.qty is None:
            said = f" (the exchange: {answer.text})" if answer.text else ""
            self._unknown(oms, msg, f"{self._not_its(cl_ord_id)} with OrderID {order_id}{said}")
            return
        log.info(
            "OMS status request for an order the gateway forgot: answered by the exchange",
            oms=oms,
            cl_ord_id=cl_ord_id,
            order_id=order_id,
        )
        self._send_status(
            oms, cl_ord_id, msg.fields[Tag.CL_ORD_ID], answer, translate.status_echo(msg)
        )

    def _unknown(self, oms: str, msg: FixMessage, text: str) -> None:
        """A status request's answer for an order unknown to the OMS: OrdStatus 8, 5."""
        exc = RequestError(text, code=ErrorCode.UNKNOWN_ORDER)
        self.outbox.send(oms, self._refused(msg, exc, exec_type="I"))

    def _send_status(
        self,
        oms: str,
        order_key: str,
        cl_ord_id: str,
        order: OrderView,
        echo: Mapping[int, str] | None = None,
        text: str | None = None,
    ) -> None:
        """ExecType I: where the order stands, under the OMS's ClOrdID (`cl_ord_id`), behind
        the order's (`order_key`, the gateway's ClOrdID) reports held for the journal: never
        a state before the report of it."""
        self.reports.answer(
            oms,
            order_key,
            translate.status_report(order, cl_ord_id, self._exec_id("status"), echo, text),
        )

    def _exec_id(self, kind: str) -> str:
        """An ExecID for a report no gateway event stands behind (the rest carry the
        exchange's ExecID or the event's seq): unique in the OMS's session, across restarts
        too, as the run's start time is in it."""
        self._exec_ids += 1
        return f"{kind}-{self._started}-{self._exec_ids}"

    def oms_gone(self, oms: str) -> None:
        """An OMS session that asked for it (`cancel_on_disconnect`) has its open orders
        cancelled when it logs out: now, or once the exchange session is back and reconciled,
        and again should the exchange refuse (a cancel the OMS sent before it left too)."""
        if oms in self._cancel_on_disconnect:
            self._owe_cancels(oms, f"logout of OMS {oms}")

    def sessions_ended(self) -> None:
        """At start no OMS is logged on: the sessions of the last run ended with it, also in
        a crash that left no time to log them out, so the open orders of every OMS that asked
        for `cancel_on_disconnect` are cancelled once the gateway is reconciled."""
        for oms in sorted(self._cancel_on_disconnect):
            self._owe_cancels(oms, f"restart: OMS {oms} not logged on")

    def _owe_cancels(self, oms: str, by: str) -> None:
        self.gateway.owe_cancels(
            by,
            [
                order.cl_ord_id
                for order in self.gateway.open_orders()
                if order.cl_ord_id is not None
                and (owner := self.owners.owner(order.cl_ord_id)) is not None
                and owner[0] == oms
            ],
        )
