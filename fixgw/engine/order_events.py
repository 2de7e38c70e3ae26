"""Order events out: to the bus (journal first, then clients), counted by status, fills
noted for `trades`, the exchange's rejects counted, each logged with the ids an operator
searches by; orders the tracker forgets, forgotten here too."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Hashable

import structlog

from fixgw.domain import (
    GATEWAY_REJECT_REASONS,
    TERMINAL_STATUSES,
    Event,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderStatus,
)
from fixgw.engine.fills import Fills
from fixgw.engine.ports import Publisher
from fixgw.engine.tracker import OrderTracker
from fixgw.ops.logging import HeldInfoLines, enabled_for
from fixgw.ops.prometheus import Metrics

log = structlog.get_logger("fixgw.orders")


class OrderEvents:
    def __init__(
        self,
        tracker: OrderTracker,
        bus: Publisher,
        fills: Fills,
        metrics: Metrics,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.tracker = tracker
        self._bus = bus
        self._fills = fills
        self._metrics = metrics
        self._status_of = {o.cl_ord_id: o.shown_status for o in tracker.all_orders()}
        self.status_counts = Counter(self._status_of.values())
        """Orders by status, kept from the order events: read per new order and per scrape
        without walking every order."""
        self._loop = loop
        self._unlogged: list[Event] = []
        """Order events published this turn, their log lines made once it is over."""
        self._log_lines = HeldInfoLines(log, loop)
        self.owners: dict[str, Hashable] = {}
        """ClOrdID -> the API client that placed it, for cancel on disconnect."""

    def open_count(self) -> int:
        count = 0
        for status, n in self.status_counts.items():
            if status not in TERMINAL_STATUSES:
                count += n
        return count

    def publish(self, events: list[Event], *, reject_counted: bool = False) -> None:
        """The log lines of a whole turn of the loop are made together after it, after the
        journal, the FIX message and the clients' writes, and held to be written with
        those of the next turns: nobody waits on them.

        An `order.rejected` counts in `fixgw_rejects_total` once per reject the exchange
        sent: not when `reject_counted` (a session or business reject, counted under its
        source as it came), nor for the gateway's own reasons (`GATEWAY_REJECT_REASONS`: the
        exchange never got the order, or, asked, says it has none: it refused nothing)."""
        for event in events:
            self._bus.publish(event)
            if isinstance(event, OrderEvent) and not _of_untracked_order(event):
                self._count(event.cl_ord_id, event.status)
            elif isinstance(event, OrderCancelRejected):
                self._cancel_refused(event)
            if isinstance(event, OrderRejected):
                if not reject_counted and event.reason not in GATEWAY_REJECT_REASONS:
                    self._metrics.rejects.labels(f"order:{event.reason}").inc()
            elif isinstance(event, OrderPartiallyFilled | OrderFilled):
                self._fills.note(event)
        if events and enabled_for(logging.INFO):
            if not self._unlogged:
                self._loop.call_soon(self._log_events)
            self._unlogged += events
        for order in self.tracker.prune():
            status = self._status_of.pop(order.cl_ord_id, None)
            if status is not None:
                self.status_counts[status] -= 1
            self.owners.pop(order.cl_ord_id, None)

    def _cancel_refused(self, event: OrderCancelRejected) -> None:
        """A tracked order pending_cancel no more: counted under the status it is back to."""
        if event.status is not None and event.cl_ord_id in self._status_of:
            self._count(event.cl_ord_id, event.status)

    def _count(self, cl_ord_id: str, status: OrderStatus) -> None:
        before = self._status_of.get(cl_ord_id)
        if before is not None:
            self.status_counts[before] -= 1
        self._status_of[cl_ord_id] = status
        self.status_counts[status] += 1

    def _log_events(self) -> None:
        events, self._unlogged = self._unlogged, []
        self._log_lines.add(
            [
                (
                    str(type(event).__struct_config__.tag),
                    {
                        "cl_ord_id": getattr(event, "cl_ord_id", None),
                        "order_id": getattr(event, "order_id", None),
                        "symbol": getattr(event, "symbol", None),
                        "status": getattr(event, "status", None),
                    },
                )
                for event in events
            ]
        )


def _of_untracked_order(event: OrderEvent) -> bool:
    """An order this gateway did not send, known from its cancel only: not one it counts."""
    return isinstance(event, OrderCanceled) and event.of_untracked_order
