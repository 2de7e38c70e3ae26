"""Requests that wait on the exchange's answer: an order's status, the account, the open
orders (mass status). One correlator for the three: each waiter is keyed by what the
answer will name, answered by it, failed by the exchange's refusal of the request, by the
session going down, or by the time-out (`api.request_timeout_s`)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fixgw.api.protocol import ErrorCode
from fixgw.domain import AccountInfoReport, ExecutionReport, QueryOrder, Side
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import RequestError
from fixgw.results import Account, OrderStatusAnswer

UNTRACKED_KEPT = 1024
"""How many exchange order ids asked about that no tracked order has are remembered."""


class PendingRequests:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, tracker: OrderTracker, timeout_s: float
    ) -> None:
        self._loop = loop
        self._tracker = tracker
        self.timeout_s = timeout_s
        self._status: dict[str, list[asyncio.Future[OrderStatusAnswer]]] = {}
        """By the exchange's order id."""
        self._untracked: OrderedDict[str, tuple[str, Side]] = OrderedDict()
        """Exchange order ids a client asked the status of that no tracked order has, with
        the symbol and side asked: the answer is that client's reply, not an event."""
        self._account: dict[str, asyncio.Future[Account]] = {}
        self._mass_status: dict[str, tuple[asyncio.Future[None], list[ExecutionReport]]] = {}

    def _left(self, queued_s: float) -> float:
        """What is left of the time-out for a request that waited `queued_s` already."""
        return max(0.0, self.timeout_s - queued_s)

    def timeout(self, what: str) -> RequestError:
        return RequestError(
            f"no {what} from the exchange within {self.timeout_s}s", code=ErrorCode.TIMEOUT
        )

    # ------------------------------------------------------------ order status

    async def order_status(
        self,
        cmd: QueryOrder,
        untracked: bool,
        send: Callable[[], bool],
        not_sent: RequestError,
        queued_s: float = 0.0,
    ) -> OrderStatusAnswer:
        """`send` the request `cmd`; `not_sent` is raised if it could not be. `queued_s`:
        how long it waited in the throttle's queue, which the time-out counts."""
        order_id = cmd.order_id
        if untracked:
            self._untracked[order_id] = (cmd.symbol, cmd.side)
            self._untracked.move_to_end(order_id)
            if len(self._untracked) > UNTRACKED_KEPT:
                self._untracked.popitem(last=False)
        waiter: asyncio.Future[OrderStatusAnswer] = self._loop.create_future()
        self._status.setdefault(order_id, []).append(waiter)
        try:
            if not send():
                raise not_sent
            return await asyncio.wait_for(waiter, self._left(queued_s))
        except TimeoutError:
            raise RequestError(
                f"no answer from the exchange within {self.timeout_s}s", code=ErrorCode.TIMEOUT
            ) from None
        finally:
            waiters = self._status.get(order_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._status.pop(order_id, None)

    def asking_status(self, order_id: str | None) -> bool:
        return order_id is not None and order_id in self._status

    def untracked_asked(self, report: ExecutionReport) -> tuple[str, ...]:
        """The exchange ids of the orders nobody tracks whose status a client asked that
        this status answer may answer: that client's reply only, neither published to every
        subscriber nor journaled. Empty: none.

        An answer that does not know the order names none (OrderID NONE): it answers the
        question its ClOrdID names, which for such an order is the exchange's id (FIX 4.4's
        request carries it there); one without a ClOrdID either answers a request without
        one, which only a question about such an order is (OKCoin's names it by OrderID
        alone, while the gateway's own carry its ClOrdID, which FIX 4.4 has an answer
        echo): the one waiting with the answer's Symbol and Side. Several waiting with
        those cannot be told apart: each is left to its own answer, or its time-out."""
        t = self._tracker
        if t.get(report.cl_ord_id or ""):
            return ()
        if report.order_id is not None:
            known = report.order_id in self._untracked and not t.by_order_id(report.order_id)
            return (report.order_id,) if known else ()
        if report.cl_ord_id is not None:
            return (report.cl_ord_id,) if report.cl_ord_id in self._asked_untracked() else ()
        return tuple(
            order_id
            for order_id, asked in self._asked_untracked().items()
            if asked == (report.symbol, report.side)
        )

    def _asked_untracked(self) -> dict[str, tuple[str, Side]]:
        """The questions about orders nobody tracks still waiting, by the exchange's id."""
        return {
            order_id: self._untracked[order_id]
            for order_id, waiters in self._status.items()
            if order_id in self._untracked and not all(w.done() for w in waiters)
        }

    def status_answered(self, report: ExecutionReport, untracked_id: str | None = None) -> None:
        """Answers those waiting on the order's status. An exchange that no longer knows the
        order answers without its OrderID: the order is then found by ClOrdID, or is the
        order nobody tracks `untracked_id` (`untracked_asked`)."""
        if untracked_id is not None:
            order_id: str | None = untracked_id
            order = None
        elif report.order_id is not None:
            order_id = report.order_id
            order = self._tracker.by_order_id(report.order_id)
        else:
            order = self._tracker.get(report.cl_ord_id or "")
            order_id = order.order_id if order is not None else None
        if order_id is None:
            return
        answer = (
            OrderStatusAnswer(
                **self._tracker.snapshot(order),
                cancel_cl_ord_id=order.cancel_pending,
                source="exchange",
                text=report.text,
            )
            if order is not None
            else OrderStatusAnswer(
                cl_ord_id=_its_cl_ord_id(report, order_id),
                order_id=order_id,
                symbol=report.symbol,
                side=report.side,
                order_type=report.order_type,
                qty=report.qty,
                price=report.price,
                status=report.status,
                cum_qty=report.cum_qty,
                leaves_qty=report.leaves_qty,
                avg_px=report.avg_px,
                source="exchange",
                text=report.text,
            )
        )
        for waiter in self._status.get(order_id, []):
            if not waiter.done():
                waiter.set_result(answer)

    def status_refused(self, order_id: str, error: RequestError) -> None:
        for waiter in self._status.get(order_id, []):
            if not waiter.done():
                waiter.set_exception(error)

    # ------------------------------------------------------------ account

    async def account(
        self, acc_req_id: str, send: Callable[[], bool], not_sent: RequestError
    ) -> Account:
        waiter: asyncio.Future[Account] = self._loop.create_future()
        self._account[acc_req_id] = waiter
        try:
            if not send():
                raise not_sent
            return await asyncio.wait_for(waiter, self.timeout_s)
        except TimeoutError:
            raise self.timeout("account info") from None
        finally:
            self._account.pop(acc_req_id, None)

    def account_answered(self, report: AccountInfoReport) -> None:
        waiter = self._account.get(report.acc_req_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Account(currency=report.currency, balance=report.balance, balances=report.balances)
            )

    def account_refused(self, acc_req_id: str | None, error: RequestError) -> None:
        waiter = self._account.get(acc_req_id or "")
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # ------------------------------------------------------------ mass status

    async def mass_status(
        self, req_id: str, send: Callable[[], bool], not_sent: RequestError, queued_s: float = 0.0
    ) -> list[ExecutionReport]:
        """The answers end with LastRptRequested=Y; a venue that does not send it is answered
        with what arrived within the time-out (which counts `queued_s`, as `order_status`)."""
        done: asyncio.Future[None] = self._loop.create_future()
        reports: list[ExecutionReport] = []
        self._mass_status[req_id] = (done, reports)
        try:
            if not send():
                raise not_sent
            try:
                await asyncio.wait_for(done, self._left(queued_s))
            except TimeoutError:
                if not reports:
                    raise self.timeout("order mass status") from None
        finally:
            self._mass_status.pop(req_id, None)
        return reports

    def take_mass_status(self, report: ExecutionReport) -> bool:
        """True if the report answers a mass status request under way."""
        entry = self._mass_status.get(report.mass_status_req_id or "")
        if entry is None:
            return False
        done, reports = entry
        reports.append(report)
        if report.last_report and not done.done():
            done.set_result(None)
        return True

    def mass_status_refused(self, req_id: str | None, error: RequestError) -> None:
        entry = self._mass_status.get(req_id or "")
        if entry is not None and not entry[0].done():
            entry[0].set_exception(error)

    # ------------------------------------------------------------ all

    def fail_all(self, error: RequestError) -> None:
        """The session went down: nothing under way will be answered."""
        waiters: list[asyncio.Future[Any]] = [w for ws in self._status.values() for w in ws]
        waiters += [*self._account.values(), *(d for d, _ in self._mass_status.values())]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)


def _its_cl_ord_id(report: ExecutionReport, order_id: str) -> str | None:
    """The ClOrdID a status answer about an order nobody here tracks gives the order, or None
    where what it carries is not the order's: an answer naming no order (the exchange does
    not know it) carries NONE or the question's own id; one naming it may echo the exchange's
    id, which a FIX 4.4 question carries there."""
    if report.order_id is None or report.cl_ord_id in ("NONE", order_id):
        return None
    return report.cl_ord_id
