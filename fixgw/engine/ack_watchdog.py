"""Orders and cancels the exchange has not answered: asked about after
`orders.ack_timeout_s`, while new orders keep flowing, and asked about again while the
answers do not settle them (a question dropped, an answer that lags the venue's reports),
at twice the wait each time, up to ASK_AGAIN_MAX_S; the next logon's reconciliation asks
about every order anyway. An exchange that drops a message without a word leaves no order
pending.

Also times each order's round trip, `new_order` to its first execution report."""

from __future__ import annotations

import asyncio
import time

from fixgw.domain import OrderStatus
from fixgw.engine.order_index import Order
from fixgw.engine.tracker import OrderTracker
from fixgw.ops.prometheus import Metrics

ASK_AGAIN_MAX_S = 60.0
"""The longest wait between two questions about one order or cancel still unanswered."""


class AckWatchdog:
    def __init__(
        self,
        timeout_s: float,
        tracker: OrderTracker,
        metrics: Metrics,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.timeout_s = timeout_s
        """0: off."""
        self._tracker = tracker
        self._metrics = metrics
        self._loop = loop
        self._arrived: dict[str, float] = {}
        """new_order arrival time (perf counter) by ClOrdID, until its first report."""
        self._unanswered: dict[str, tuple[float, str]] = {}
        """Orders and cancels sent and not yet answered: the loop's time when sent, and the
        order's ClOrdID, by the request's ClOrdID, oldest first."""
        self._asked: dict[str, tuple[float, str, float]] = {}
        """Those asked about already, by the request's ClOrdID: the loop's time to ask
        again, the order's ClOrdID, and the wait before that."""

    def arrived(self, cl_ord_id: str, at: float) -> None:
        self._arrived[cl_ord_id] = at

    def forget(self, cl_ord_id: str) -> None:
        """An order that never went out: no round trip to time."""
        self._arrived.pop(cl_ord_id, None)

    def await_answer(self, request: str, cl_ord_id: str | None) -> None:
        """`request`: the order's or the cancel's ClOrdID; `cl_ord_id`: the order's (None for
        one this gateway does not track: nothing to ask about)."""
        if cl_ord_id is not None and self.timeout_s:
            self._unanswered[request] = (self._loop.time(), cl_ord_id)

    def answered(self, request: str | None) -> None:
        key = request or ""
        arrived = self._arrived.pop(key, None)
        self._unanswered.pop(key, None)
        if self._asked:
            self._asked.pop(key, None)
        if arrived is not None:
            self._metrics.order_round_trip.observe(time.perf_counter() - arrived)

    def not_delivered(self, request: str) -> None:
        self._arrived.pop(request, None)
        self._unanswered.pop(request, None)
        self._asked.pop(request, None)

    def clear(self) -> None:
        """The session went down: the next logon's reconciliation asks about every order, and
        no round trip across the outage is timed."""
        self._unanswered.clear()
        self._arrived.clear()
        self._asked.clear()

    def overdue(self) -> list[Order]:
        """The orders whose order or cancel is unanswered past the timeout, and those asked
        about before whose answer did not settle them, when their next wait is over."""
        if not self._unanswered and not self._asked:
            return []  # empty too when the check is off (`await_answer`)
        now = self._loop.time()
        due = now - self.timeout_s
        overdue: dict[str, Order] = {}
        while self._unanswered:
            request, (sent, cl_ord_id) = next(iter(self._unanswered.items()))
            if sent > due:
                break
            del self._unanswered[request]
            self._ask(overdue, request, cl_ord_id, now, self.timeout_s)
        for request, (again_at, cl_ord_id, wait) in list(self._asked.items()):
            if again_at <= now:
                self._ask(overdue, request, cl_ord_id, now, wait)
        return list(overdue.values())

    def _ask(
        self, overdue: dict[str, Order], request: str, cl_ord_id: str, now: float, wait: float
    ) -> None:
        order = self._tracker.get(cl_ord_id)
        waiting = order is not None and (
            order.status is OrderStatus.PENDING_NEW
            if request == cl_ord_id
            else (order.cancel_pending == request)
        )
        if order is None or not waiting:
            self._asked.pop(request, None)
            return
        overdue[cl_ord_id] = order
        wait = min(2 * wait, max(ASK_AGAIN_MAX_S, self.timeout_s))
        self._asked[request] = (now + wait, cl_ord_id, wait)
