"""The orders the tracker holds, found by ClOrdID, by the exchange's OrderID, or by a
cancel's ClOrdID; the closed ones forgotten beyond `keep_closed`."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from decimal import Decimal
from typing import Final, NamedTuple

import msgspec

from fixgw.decimals import EXACT
from fixgw.domain import (
    TERMINAL_STATUSES,
    ExecKind,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderRejected,
    OrderRestated,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from fixgw.engine import unpriced
from fixgw.engine.unpriced import Ranges
from fixgw.errors import RequestError

ZERO = Decimal(0)
_CANCELED: Final = OrderStatus.CANCELED

UNTRACKED = ""
"""What a cancel's order is for an order this gateway did not send (known by the exchange's
id only): no ClOrdID of ours."""


class Order:
    """One order as the tracker holds it. A class of its own rather than a dataclass:
    compiled (setup.py), its `__init__` is too, and one is made per order."""

    __slots__ = (
        "asked_with_cancel",
        "avg_px",
        "cancel_ids",
        "cancel_on_disconnect",
        "cancel_pending",
        "cl_ord_id",
        "closed",
        "cum_qty",
        "exec_ids",
        "leaves_qty",
        "oms",
        "order_id",
        "order_type",
        "price",
        "qty",
        "rejected_by_inference",
        "side",
        "stated",
        "status",
        "symbol",
        "taken_back",
        "taken_back_px",
        "time_in_force",
        "unpriced_ranges",
        "unread",
        "unvalued_ranges",
    )

    def __init__(
        self,
        cl_ord_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: Decimal,
        price: Decimal | None,
        status: OrderStatus = OrderStatus.PENDING_NEW,
        order_id: str | None = None,
        cum_qty: Decimal = ZERO,
        leaves_qty: Decimal = ZERO,
        avg_px: Decimal = ZERO,
        cancel_pending: str | None = None,
        exec_ids: tuple[str, ...] = (),
        cancel_ids: tuple[str, ...] = (),
        stated: tuple[ExecKind, ...] = (),
        closed: bool = False,
        rejected_by_inference: bool = False,
        cancel_on_disconnect: bool = False,
        unread: bool = False,
        time_in_force: TimeInForce | None = None,
        oms: str | msgspec.UnsetType | None = msgspec.UNSET,
    ) -> None:
        self.cl_ord_id = cl_ord_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.qty = qty
        self.price = price
        self.status = status
        """The venue's last word on the order (PENDING_NEW until it speaks)."""
        self.order_id = order_id
        self.cum_qty = cum_qty
        self.leaves_qty = leaves_qty
        self.avg_px = avg_px
        self.cancel_pending = cancel_pending
        """The ClOrdID of a cancel request sent and not yet answered."""
        self.asked_with_cancel: str | None = None
        """`cancel_pending` when the gateway last asked the exchange about the order
        (reconciliation, a check): only an answer asked while a cancel was out can show that
        cancel lost; one asked before it went out cannot."""
        self.exec_ids = exec_ids
        """Seen, to drop duplicates. A tuple: most orders have one or two, and a set costs
        four times the memory of a one-entry tuple."""
        self.cancel_ids = cancel_ids
        self.stated = stated
        """Of NEW, CANCELED and REJECTED, those whose event (`order.accepted`, `.canceled`,
        `.rejected`, or an `order.restated` that canceled it) clients were sent: a report
        of the same kind again is a repeat."""
        self.closed = closed
        """Counted among the closed orders the tracker keeps."""
        self.rejected_by_inference = rejected_by_inference
        """Rejected on the gateway's own inference (`not_delivered`, `unknown_at_exchange`:
        the exchange never got it, or said it had no such order before it acknowledged it),
        not on the exchange's word: the exchange's word about it since (an ack, a fill, a
        status answer that knows it) outweighs that."""
        self.cancel_on_disconnect = cancel_on_disconnect
        self.time_in_force = time_in_force
        """Placed by an API client that asked for cancel on disconnect (`OrderPendingNew`)."""
        self.unread = unread
        """A report of it could not be read (an `order.anomaly` `unreadable`), or showed
        fills at no price (a `fill_gap` saying the order is asked about), and the
        exchange has not answered the status request that made the gateway send since (its
        answer ends with an `order.status`): asked about at every logon, closed or not, until
        it does (`Reconciler`)."""
        self.unpriced_ranges: Ranges = unpriced.NONE
        """The spans of `cum_qty` a report showed filled at a price it did not give (an
        `order.restated` after a `fill_gap`), no fill told for them yet: a later fill report
        whose own span lies in one (`fills_in_unpriced`) tells it, at its LastPx."""
        self.unvalued_ranges: Ranges = unpriced.NONE
        """Of `unpriced_ranges`, the spans `avg_px` leaves out: `avg_px` is the average of
        `cum_qty` less these (`valued_qty`). A venue's AvgPx above 0 is of its whole CumQty,
        so once one is taken as `avg_px` every span is in it, its price unknown but its
        value known; where the venue gave none (AvgPx 0), `avg_px` is that of the fills told
        and the spans shown at no price since are left out. While any is, the price of
        more quantity cannot be read off an AvgPx (`missed_fill_px`)."""
        self.oms = oms
        self.taken_back = ZERO
        """Fills told, then taken back by a status answer (`fills_taken_back`) and not
        shown again since: a later report whose cum_qty shows them restores them, at
        `taken_back_px` (the average they were told at), and they are never told twice."""
        self.taken_back_px = ZERO
        """The OMS session that placed it, None for an API client's (`OrderPendingNew.oms`);
        UNSET for one restored from a line that did not record it."""

    def __repr__(self) -> str:
        return (
            f"Order({self.cl_ord_id!r}, {self.symbol!r}, {self.side}, {self.status}, "
            f"order_id={self.order_id!r}, cum_qty={self.cum_qty}, leaves_qty={self.leaves_qty})"
        )

    @property
    def shown_status(self) -> OrderStatus:
        if self.cancel_pending is not None and self.status not in TERMINAL_STATUSES:
            return OrderStatus.PENDING_CANCEL
        return self.status

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    @property
    def unpriced_qty(self) -> Decimal:
        """Of `cum_qty`, what is filled at no price, no fill told for it yet."""
        return unpriced.total(self.unpriced_ranges)

    @property
    def valued_qty(self) -> Decimal:
        """Of `cum_qty`, what `avg_px` is the average of (`unvalued_ranges`)."""
        return EXACT.subtract(self.cum_qty, unpriced.total(self.unvalued_ranges))


_STATED_BY: dict[type, ExecKind] = {
    OrderAccepted: ExecKind.NEW,
    OrderCanceled: ExecKind.CANCELED,
    OrderRejected: ExecKind.REJECTED,
}
"""The report kind each of these events states."""


def stating(order: Order, event: OrderEvent) -> None:
    """A restatement that closes the order as canceled states the cancel: clients were told
    the venue ended it, so its cancel report after is a repeat, not news."""
    kind = _STATED_BY.get(type(event))
    if kind is None and isinstance(event, OrderRestated) and event.status is _CANCELED:
        kind = ExecKind.CANCELED
    if kind is not None and kind not in order.stated:
        order.stated += (kind,)


class IndexState(NamedTuple):
    orders: list[tuple[object, ...]]
    closed: list[str]
    forgotten_ids: list[str]
    order_ids: list[tuple[str, str]]
    cancels: list[tuple[str, str, bool]]


IDS_KEPT_PER_CLOSED_ORDER = 10
"""For each closed order kept whole, the ClOrdIDs of this many forgotten ones are kept, so
that no client can take them again meanwhile: an id costs about 150 bytes, an order 1 KB.
`keep_closed` 0 keeps the ids as 1 does: else an order sent again (a FIX bridge's OMS
resend) the moment it closed could not be told from a new one, and was placed twice."""


class OrderIndex:
    """`keep_closed`: how many closed orders (filled, canceled, rejected) are remembered, the
    most recently closed; older ones are forgotten by `prune`, so that memory follows the
    open orders, not the day's order count. The exchange still answers for a forgotten one.
    The ClOrdIDs (the order's and its cancels') of the last `IDS_KEPT_PER_CLOSED_ORDER *
    keep_closed` forgotten (`keep_closed` at least 1 there) are still refused to a new order
    or cancel."""

    def __init__(self, keep_closed: int = 10_000) -> None:
        self._orders: dict[str, Order] = {}
        self._by_order_id: dict[str, Order] = {}
        self._cancels: dict[str, str] = {}
        """Cancel ClOrdIDs -> the order's ClOrdID (`UNTRACKED` for an order known only by
        the exchange's id)."""
        self._answered: set[str] = set()
        """The ClOrdIDs of the cancels of kept orders that were answered, refused or not
        delivered (`cancel_done`): the exchange may have had them, so they stay in use as
        long as their order is kept, as the journal's replay keeps them (`restore`)."""
        self._acknowledged: set[str] = set()
        """The cancels (of `_cancels`) the exchange said are pending (ExecType 6): it has
        them."""
        self._keep_closed = keep_closed
        self._closed: deque[Order] = deque()
        self._forgotten_ids: OrderedDict[str, None] = OrderedDict()
        """The ids of forgotten orders, oldest first (a set that keeps its order)."""
        self._keep_forgotten_ids = IDS_KEPT_PER_CLOSED_ORDER * max(keep_closed, 1)

    def in_use(self, cl_ord_id: str) -> bool:
        """Names an order or a cancel this gateway tracks."""
        return (
            cl_ord_id in self._orders or cl_ord_id in self._cancels or cl_ord_id in self._answered
        )

    def forgotten(self, cl_ord_id: str) -> bool:
        """Names an order (or a cancel) forgotten, among the ids still refused."""
        return cl_ord_id in self._forgotten_ids

    def forgotten_ids_newest_first(self) -> Iterator[str]:
        """The forgotten ids still refused, the last remembered first: `fixgw journal
        compact` watches which order put each one there."""
        return reversed(self._forgotten_ids)

    def refuse_if_in_use(self, cl_ord_id: str) -> None:
        if self.in_use(cl_ord_id) or cl_ord_id in self._forgotten_ids:
            raise RequestError(
                f"cl_ord_id {cl_ord_id!r} is already in use", code="duplicate_cl_ord_id"
            )

    def add(self, order: Order) -> None:
        self._orders[order.cl_ord_id] = order

    def get(self, cl_ord_id: str) -> Order | None:
        return self._orders.get(cl_ord_id)

    def by_order_id(self, order_id: str) -> Order | None:
        return self._by_order_id.get(order_id)

    def all_orders(self) -> Iterator[Order]:
        return iter(self._orders.values())

    def open_orders(self) -> Iterator[Order]:
        return (o for o in self._orders.values() if o.is_open)

    def name(self, order: Order, order_id: str | None) -> None:
        """The exchange's OrderID, the first time it gives one."""
        if order.order_id is None and order_id is not None:
            order.order_id = order_id
            self._by_order_id[order_id] = order

    def cancel_sent(self, cancel_cl_ord_id: str, cl_ord_id: str) -> None:
        """`cl_ord_id`: the order's (`UNTRACKED` for one known by the exchange's id only)."""
        self._cancels[cancel_cl_ord_id] = cl_ord_id

    def cancel_of(self, cancel_cl_ord_id: str) -> str | None:
        """The ClOrdID of the order a cancel was for; None: not a cancel this gateway sent."""
        return self._cancels.get(cancel_cl_ord_id)

    def cancel_done(self, cancel_cl_ord_id: str) -> None:
        """A cancel answered (refused, not delivered; an untracked order's carried out): no
        longer out, but its id is still in use while its order is kept."""
        self._acknowledged.discard(cancel_cl_ord_id)
        cl_ord_id = self._cancels.pop(cancel_cl_ord_id, None)
        if cl_ord_id in self._orders:
            self._answered.add(cancel_cl_ord_id)

    def cancel_unsent(self, cancel_cl_ord_id: str) -> None:
        """A cancel that never left (session down): the exchange never had its id, nor the
        journal, so it is free again."""
        self._acknowledged.discard(cancel_cl_ord_id)
        self._cancels.pop(cancel_cl_ord_id, None)

    def cancel_acknowledged(self, cancel_cl_ord_id: str) -> None:
        """The exchange said this cancel is pending: it got it."""
        if cancel_cl_ord_id in self._cancels:
            self._acknowledged.add(cancel_cl_ord_id)

    def acknowledged(self, cancel_cl_ord_id: str) -> bool:
        return cancel_cl_ord_id in self._acknowledged

    def find(
        self, cl_ord_id: str | None, orig_cl_ord_id: str | None, order_id: str | None
    ) -> Order | None:
        """The order a report is about: its ClOrdID may be the order's or a cancel's."""
        for key in (cl_ord_id, orig_cl_ord_id):
            if key is None:
                continue
            order = self._orders.get(key) or self._orders.get(self._cancels.get(key, ""))
            if order is not None:
                return order
        return self._by_order_id.get(order_id) if order_id is not None else None

    def note_closed(self, order: Order) -> None:
        if not order.closed and order.status in TERMINAL_STATUSES:
            order.closed = True
            self._closed.append(order)

    def prune(self) -> list[Order]:
        """Forget the closed orders beyond `keep_closed`, oldest closed first; returns them."""
        forgotten = []
        while len(self._closed) > self._keep_closed:
            order = self._closed.popleft()
            if self._orders.get(order.cl_ord_id) is not order:
                continue
            if order.status not in TERMINAL_STATUSES:
                order.closed = False  # reopened by a status answer; noted again when it closes
                continue
            del self._orders[order.cl_ord_id]
            if order.order_id is not None and self._by_order_id.get(order.order_id) is order:
                del self._by_order_id[order.order_id]
            for cancel_id in order.cancel_ids:
                self._cancels.pop(cancel_id, None)
                self._acknowledged.discard(cancel_id)
                self._answered.discard(cancel_id)
            forgotten.append(order)
            self._remember_ids(order)
        return forgotten

    def state(self) -> IndexState:
        """Everything the index holds, in the order it holds it: the orders (every field),
        the closed ones in the order they are forgotten, the forgotten ids still refused
        (oldest first), the exchange's ids and the cancels'. Two indexes of equal state
        answer alike, now and after the same events: `fixgw journal compact` checks the
        journal it writes by it."""
        return IndexState(
            [_fields(o) for o in self._orders.values()],
            [o.cl_ord_id for o in self._closed],
            list(self._forgotten_ids),
            sorted((k, o.cl_ord_id) for k, o in self._by_order_id.items()),
            sorted((k, v, k in self._acknowledged) for k, v in self._cancels.items()),
        )

    def _remember_ids(self, order: Order) -> None:
        ids = self._forgotten_ids
        for cl_ord_id in (order.cl_ord_id, *order.cancel_ids):
            ids[cl_ord_id] = None
        while len(ids) > self._keep_forgotten_ids:
            ids.popitem(last=False)


def _fields(o: Order) -> tuple[object, ...]:
    return (
        o.cl_ord_id, o.symbol, o.side, o.order_type, o.qty, o.price, o.status, o.order_id,
        o.cum_qty, o.leaves_qty, o.avg_px, o.cancel_pending, o.exec_ids, o.cancel_ids,
        o.stated, o.closed, o.rejected_by_inference, o.cancel_on_disconnect, o.unread, o.oms,
        o.unpriced_ranges, o.unvalued_ranges, o.taken_back, o.taken_back_px,
    )  # fmt: skip
