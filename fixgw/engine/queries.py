"""Questions a client asks the exchange: an order's status, the account, the open orders.
Each goes out through the venue and waits on its answer (`PendingRequests`)."""

from __future__ import annotations

from functools import partial

from fixgw.api.protocol import OrderStatusRequest
from fixgw.domain import QueryOrder, RequestAccountInfo, RequestOrderMassStatus, utc_now
from fixgw.engine.order_entry import OrderEntry
from fixgw.engine.order_index import Order
from fixgw.engine.pending import PendingRequests
from fixgw.engine.ports import SessionPort
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.throttle_queue import ThrottleQueue
from fixgw.engine.tracker import OrderTracker
from fixgw.fix.message import FixMessage
from fixgw.ids import ClOrdIdGenerator
from fixgw.results import Account, OrderStatusAnswer, OrderView
from fixgw.venues.base import Venue


class Queries:
    def __init__(
        self,
        *,
        venue: Venue,
        session: SessionPort,
        lifecycle: SessionLifecycle,
        tracker: OrderTracker,
        pending: PendingRequests,
        throttle: ThrottleQueue,
        entry: OrderEntry,
    ) -> None:
        self._venue = venue
        self._session = session
        self._lifecycle = lifecycle
        self._tracker = tracker
        self._pending = pending
        self._throttle = throttle
        self._entry = entry
        self.new_req_id = ClOrdIdGenerator(prefix="rq")

    async def order_status(self, req: OrderStatusRequest) -> OrderStatusAnswer:
        """The exchange's answer; the local state where the exchange has not acknowledged."""
        order, _, order_id, symbol, side = self._entry.locate(req)
        if order_id is None:
            assert order is not None
            return OrderStatusAnswer(
                **self._tracker.snapshot(order),
                cancel_cl_ord_id=order.cancel_pending,
                source="local",
            )
        self._lifecycle.require()
        queued_s = await self._throttle.wait_turn("status", self._pending.timeout_s)
        cmd = QueryOrder(
            ts=utc_now(),
            order_id=order_id,
            cl_ord_id=order.cl_ord_id if order else req.cl_ord_id,
            symbol=symbol,
            side=side,
        )
        message = self._venue.order_status(cmd)
        return await self._pending.order_status(
            cmd,
            order is None,
            partial(self._send_status, message),
            self._lifecycle.not_connected(),
            queued_s,
        )

    def _send_status(self, message: FixMessage) -> bool:
        """A status request the rate let out (at once, or at its turn); one the session could
        not send after all (it went down meanwhile) gives its token back: the venue counted
        nothing."""
        if self._session.send(message):
            return True
        self._throttle.unpace("status", 0.0)
        return False

    def ask_about(self, order: Order) -> float | None:
        """OrderID is required on H; before the exchange has named the order, ask by
        ClOrdID. Paced by the `status` rate limit: seconds until the question goes, or None
        if it is not asked. An order still in the throttle's queue was never sent: nothing
        to ask."""
        if self._throttle.holds(order.cl_ord_id):
            return None
        cmd = QueryOrder(
            ts=utc_now(),
            order_id=order.order_id or "NONE",
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
        )
        message = self._venue.order_status(cmd)
        return self._throttle.own(
            "status", _asking_about(order), lambda: self._session.send(message)
        )

    def turn_of_question(self, order: Order) -> float | None:
        """Seconds until the status request `ask_about` made about the order goes out; None
        if the rate limit does not hold one."""
        return self._throttle.turn(_asking_about(order))

    async def account(self) -> Account:
        self._lifecycle.require()
        acc_req_id = self.new_req_id()
        message = self._venue.account(RequestAccountInfo(ts=utc_now(), acc_req_id=acc_req_id))
        return await self._pending.account(
            acc_req_id, lambda: self._session.send(message), self._lifecycle.not_connected()
        )

    def request_account(self, acc_req_id: str) -> bool:
        """One the gateway asks on its own (`AccountRefresh`)."""
        cmd = RequestAccountInfo(ts=utc_now(), acc_req_id=acc_req_id)
        return self._session.send(self._venue.account(cmd))

    async def orders_from_exchange(self, symbol: str | None) -> list[OrderView]:
        """Paced as a status request: a venue's status limit counts it."""
        self._lifecycle.require()
        queued_s = await self._throttle.wait_turn("status", self._pending.timeout_s)
        req_id = self.new_req_id()
        cmd = RequestOrderMassStatus(ts=utc_now(), mass_status_req_id=req_id, symbol=symbol)
        message = self._venue.mass_status(cmd)
        reports = await self._pending.mass_status(
            req_id, partial(self._send_status, message), self._lifecycle.not_connected(), queued_s
        )
        return [
            OrderView(
                cl_ord_id=r.cl_ord_id,
                order_id=r.order_id,
                symbol=r.symbol,
                side=r.side,
                order_type=r.order_type,
                qty=r.qty,
                price=r.price,
                status=r.status,
                cum_qty=r.cum_qty,
                leaves_qty=r.leaves_qty,
                avg_px=r.avg_px,
            )
            for r in reports
            if r.order_id is not None
        ]


def _asking_about(order: Order) -> str:
    """What the throttle's queue holds the gateway's own status request about `order` as."""
    return f"status of {order.cl_ord_id}"
