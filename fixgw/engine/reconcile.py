"""Reconciliation after every logon (first start, reconnect, restart).

The gateway asks the exchange for the status of every order it believes open, one
OrderStatusRequest each (OKCoin's answer to OrderMassStatusRequest was never confirmed),
turns the answers into the events of what changed while it was away, and only then takes
new orders. Executions the exchange resends on logon arrive before the answers and are
applied as usual; an answer then finds nothing left to report.

`check` asks about a few orders the same way while new orders keep flowing: those the
exchange has not acknowledged in time. `ask_about` and `check_all_again` do it for what a
message the gateway could not read may have been about; while a reconciliation is under
way (whose answers may predate that message) they have every open order asked about again
once it is over. `gap_filled` does it for messages the exchange gap filled rather than
resent. A status request the exchange asked for again (it lost it; it was gap filled, not
resent) is asked once more (`ask_again`).

An order asked about because a report of it could not be read (`Order.unread`) is asked
about at every logon, closed too, until the exchange answers; the journal keeps that (the
`order.anomaly` `unreadable`, then the answer's `order.status`), so a restart asks again.

An order `ask_about` asked about is asked about again, until the exchange answers about it
in a way the gateway can read, only after a wait that doubles from 1 s to a minute: an
exchange whose answer to the question is itself unreadable would otherwise be asked again
as fast as it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from fixgw.domain import Event, ExecutionReport
from fixgw.engine.order_index import Order
from fixgw.engine.tracker import OrderTracker
from fixgw.marketdata.backoff import next_backoff

log = structlog.get_logger("fixgw.engine.reconcile")


@dataclass(slots=True)
class _AskedAbout:
    """An order `ask_about` asked about that has no readable answer since."""

    wait_s: float
    """Before it is asked about again."""
    timer: asyncio.TimerHandle | None = None
    """The next question about it, while one waits."""


class Reconciler:
    def __init__(
        self,
        tracker: OrderTracker,
        query: Callable[[Order], float | None],
        publish: Callable[[Event], object],
        timeout_s: float,
        on_ready: Callable[[], object] = lambda: None,
        session_up: Callable[[], bool] = lambda: True,
        turn: Callable[[Order], float | None] = lambda _: None,
        answers_take_back_fills: bool = True,
    ) -> None:
        self._tracker = tracker
        self._answers_take_back_fills = answers_take_back_fills
        """The venue's (`Venue.answers_take_back_fills`)."""
        self._turn = turn
        """Seconds until the status request about the order, still held by the rate limit,
        goes out; None if it is not held (out already, or never asked)."""
        self._session_up = session_up
        self._again: str | None = None
        """Why every open order is to be asked about again once this round is over."""
        self._query = query
        """Asks the exchange about the order: seconds until the question goes (the status
        rate limit paces them), or None if it is not asked."""
        self._publish = publish
        self._on_ready = on_ready
        self.timeout_s = timeout_s
        self.ready = False
        self._pending: set[str] = set()
        self._checking: set[str] = set()
        self._asked_again: set[str] = set()
        """Orders whose status request the exchange lost, asked once more."""
        self._asked_about: dict[str, _AskedAbout] = {}
        self._answered = 0
        """Answers this round has taken."""
        self._changed = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self.ready = False
        self._changed = 0
        self._answered = 0
        orders = [*self._tracker.open_orders(), *self._closed_unread()]
        asked = {o.cl_ord_id: delay for o in orders if (delay := self._ask(o)) is not None}
        self._pending = set(asked)
        last = max(asked.values(), default=0.0)
        log.info(
            "reconciling open orders", orders=len(orders), asked=len(self._pending), paced_s=last
        )
        self._time_out_after(last)
        self._finish_if_done()

    def _time_out_after(self, last: float) -> None:
        """The time-out counts from the last question out, however the rate spaces them."""
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.timeout_s + last, self._give_up)

    def turns_changed(self) -> None:
        """A reload changed the status rate: the questions still held go out at new turns,
        and the time-out counts from the new turn of the last of them (from the old one, a
        slower rate had it given up, and new orders taken, before the exchange was even
        asked about some open orders)."""
        if self._timer is None:
            return
        held = [
            turn
            for cl_ord_id in self._pending
            if (order := self._tracker.get(cl_ord_id)) is not None
            and (turn := self._turn(order)) is not None
        ]
        if held:
            self._time_out_after(max(held))

    def _ask(self, order: Order) -> float | None:
        """`query`, noting the cancel out as it is asked (`Order.asked_with_cancel`): the
        answer can show only that cancel lost, not one sent after the question."""
        delay = self._query(order)
        if delay is not None:
            order.asked_with_cancel = order.cancel_pending
        return delay

    def check(self, orders: list[Order]) -> int:
        """Ask about these orders without holding new ones back; returns how many were asked.
        Each answer settles its order as an answer after a logon does."""
        asked = [
            o.cl_ord_id
            for o in orders
            if o.cl_ord_id not in self._pending and self._ask(o) is not None
        ]
        self._checking.update(asked)
        return len(asked)

    def ask_about(self, orders: list[Order], why: str, unreadable: bool = False) -> None:
        """A status request for each, now; or every open order once this round is over. An
        order asked about before and not answered readably since waits its turn first.
        `unreadable`: a report of theirs could not be read (`Order.unread`): each is asked
        about until the exchange answers, closed too, also after a restart."""
        if unreadable:
            for order in orders:
                order.unread = True
        if not self._session_up():
            return  # the next logon asks about every open order, and these
        orders = [o for o in orders if self._asking_now(o.cl_ord_id, why)]
        if orders:
            self._ask_about(orders, why)

    def _asking_now(self, cl_ord_id: str, why: str) -> bool:
        asked = self._asked_about.get(cl_ord_id)
        if asked is None:
            self._asked_about[cl_ord_id] = _AskedAbout(wait_s=next_backoff(0))
            return True
        if asked.timer is None:
            loop = asyncio.get_running_loop()
            asked.timer = loop.call_later(asked.wait_s, self._ask_about_later, cl_ord_id, why)
            log.warning(
                "asking the exchange about the order again later",
                cl_ord_id=cl_ord_id,
                why=why,
                wait_s=asked.wait_s,
            )
            asked.wait_s = next_backoff(asked.wait_s)
        return False

    def _ask_about_later(self, cl_ord_id: str, why: str) -> None:
        """An order's turn has come: asked about if it is still open, or still owed an answer
        after an unreadable report (a closed one too). While a round is under way (which
        asked about it), it waits once more."""
        asked = self._asked_about.get(cl_ord_id)
        if asked is None:
            return
        asked.timer = None
        order = self._tracker.get(cl_ord_id)
        if order is None or not (order.is_open or order.unread) or not self._session_up():
            del self._asked_about[cl_ord_id]
        elif not self.ready:
            self._asking_now(cl_ord_id, why)
        else:
            self._ask_about([order], why)

    def _forget_asked_about(self, cl_ord_id: str) -> None:
        asked = self._asked_about.pop(cl_ord_id, None)
        if asked is not None and asked.timer is not None:
            asked.timer.cancel()

    def _ask_about(self, orders: list[Order], why: str) -> None:
        if not self.ready:
            log.warning("open orders to be asked about again after this check", why=why)
            self._again = why
            return
        if self.check(orders):
            log.warning(
                "asking the exchange about orders", why=why, orders=[o.cl_ord_id for o in orders]
            )

    def check_all_again(self, why: str, shown: str) -> None:
        """A message the gateway could not take may have carried an execution: every open
        order is asked about, as after a logon, before new orders are taken. `shown`: the
        message, secrets masked, for the log."""
        if not self._session_up():
            return
        if not self.ready:
            log.warning("open orders to be asked about again after this check", why=why, msg=shown)
            self._again = why
            return
        log.warning("asking the exchange about open orders again", why=why, msg=shown)
        self.start()

    def gap_filled(self, why: str, shown: str) -> None:
        """The exchange gap filled messages it sent: any may have carried an execution, so
        every open order is asked about (`check_all_again`). Not while a reconciliation that
        has taken no answer yet is under way: each of its answers comes after the gap fill,
        and tells what the skipped messages did (a logon's reconciliation asks after the
        ResendRequest the gap fill answers). `shown`: the SequenceReset, for the log."""
        if not self.ready and self._pending and not self._answered:
            log.info("the reconciliation under way covers the messages gap filled", why=why)
            return
        self.check_all_again(why, shown)

    def ask_again(self, order: Order) -> None:
        """The exchange lost our status request about `order` (it asked for it again, and it
        was gap filled): asked once more, paced as ever. Lost again, the order is left as
        when the exchange will not answer (`refused`): a venue asking for every one again
        is not asked for ever."""
        if not self.asking(order.cl_ord_id):
            return
        if order.cl_ord_id in self._asked_again or self._ask(order) is None:
            log.warning(
                "the exchange lost the status request again; the order is left as it is",
                cl_ord_id=order.cl_ord_id,
            )
            self.refused(order.cl_ord_id)
            return
        self._asked_again.add(order.cl_ord_id)
        log.warning("the exchange lost a status request; asked again", cl_ord_id=order.cl_ord_id)

    def asking(self, cl_ord_id: str) -> bool:
        """A status request for this order is out and unanswered."""
        return cl_ord_id in self._pending or cl_ord_id in self._checking

    def refused(self, cl_ord_id: str) -> None:
        """The exchange would not answer a status request: the order stays as it is, unknown,
        until the next logon asks again; reconciliation does not wait for it."""
        self._asked_again.discard(cl_ord_id)
        if cl_ord_id in self._pending:
            self._pending.discard(cl_ord_id)
            self._finish_if_done()
        self._checking.discard(cl_ord_id)

    def stop(self) -> None:
        """The session went down: not ready until the next logon has reconciled again."""
        self.ready = False
        self._again = None  # the next logon asks anyway
        self._pending.clear()
        self._checking.clear()
        self._asked_again.clear()
        for cl_ord_id in list(self._asked_about):
            self._forget_asked_about(cl_ord_id)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_status(self, report: ExecutionReport) -> bool:
        """Take a status answer if reconciliation or a `check` asked for it, or if its order
        is owed one after an unreadable report (whoever asked: it is the exchange's word
        after that report)."""
        order = self._tracker.resolve(report)
        if order is None:
            return False
        self._forget_asked_about(order.cl_ord_id)
        if order.cl_ord_id in self._pending:
            self._changed += self._settle(report, order)
            self._answered += 1
            self._pending.discard(order.cl_ord_id)
            self._asked_again.discard(order.cl_ord_id)
            self._finish_if_done()
            return True
        if order.cl_ord_id in self._checking:
            self._settle(report, order)
            self._checking.discard(order.cl_ord_id)
            self._asked_again.discard(order.cl_ord_id)
            return True
        if order.unread:
            self._settle(report, order)
            return True
        return False

    def _settle(self, report: ExecutionReport, order: Order) -> int:
        """The answer's events; of an order owed it after an unreadable report, then an
        `order.status`, which tells (and journals) that it was answered."""
        unread, order.unread = order.unread, False
        events = self._tracker.reconcile(
            report, after_unreadable=unread, takes_back=self._answers_take_back_fills
        )
        if unread:
            events.append(self._tracker.stated(order, report))
        for event in events:
            self._publish(event)
        return len(events)

    def _closed_unread(self) -> list[Order]:
        """The closed orders still to be asked about after an unreadable report (an open one
        is asked with the rest), as the journal's replay left them too (`restore`)."""
        return [o for o in self._tracker.all_orders() if o.unread and not o.is_open]

    def _finish_if_done(self) -> None:
        if self._pending:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.ready = True
        log.info("reconciled; taking orders", events=self._changed)
        self._on_ready()
        why, self._again = self._again, None
        if why is not None and self._session_up():
            log.warning("asking the exchange about open orders again", why=why)
            self.start()

    def _give_up(self) -> None:
        self._timer = None
        log.error(
            "no status from the exchange for some open orders; taking orders anyway",
            unanswered=sorted(self._pending),
            after_s=self.timeout_s,
        )
        self._pending.clear()
        self._finish_if_done()
