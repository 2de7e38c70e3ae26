"""The kill switch: `halt` refuses new orders and cancels every open one, and goes on
cancelling while halted (after each logon's reconciliation, after the cancel rate limit,
and when the exchange refuses a cancel: it is asked about the order, and a cancel sent
again while it is still open, each round waiting twice as long, up to a minute). `resume`
lifts it; a halt holds across restarts (read back from the journal, and from the kill switch
file beside it, which a full disk does not stop: `fixgw.halt_record`). `cancel_all` cancels
without halting, once.

Cancel on disconnect owes the orders of a client that went away a cancel (`owe_cancels`), and
pays it as a halt does: those no cancel can be sent for now are cancelled once the session
is back and reconciled, and those whose cancel the exchange refuses are asked about and
cancelled again while they stay open. Only those orders: a halt's reach is every order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable

import structlog

from fixgw.api.protocol import CancelOrderRequest, ErrorCode
from fixgw.domain import AnyEvent, NotCancelled, TradingHalted, TradingResumed, utc_now
from fixgw.engine.order_index import Order
from fixgw.engine.ports import Publisher
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import RequestError
from fixgw.halt_record import HaltRecord
from fixgw.results import CancelAllResult, HaltResult, ResumeResult

log = structlog.get_logger("fixgw.kill_switch")

HALT_RETRY_S = 1.0
"""While halted, how soon cancels the rate limit refused are tried again, and how soon the
exchange is first asked about an order whose cancel it refused."""
HALT_RECHECK_MAX_S = 60.0
"""The longest wait between such questions while the exchange goes on refusing."""

_CANCELLED_LATER = {
    ErrorCode.NOT_CONNECTED.value: "cancelled once the session is back and reconciled",
    ErrorCode.THROTTLED.value: f"tried again in {HALT_RETRY_S:g} s",
}
"""What a halt does about an order it could not send a cancel for, by the error's code."""


class KillSwitch:
    def __init__(
        self,
        tracker: OrderTracker,
        owners: dict[str, Hashable],
        cancel: Callable[[CancelOrderRequest], object],
        reconciler: Reconciler,
        bus: Publisher,
        ready: Callable[[], bool],
        held: Callable[[str], bool],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """`held`: whether the throttle's queue still holds the order (never sent)."""
        self._tracker = tracker
        self._owners = owners
        self._cancel = cancel
        self._reconciler = reconciler
        self._bus = bus
        self._ready = ready
        self._held = held
        self._loop = loop
        self.halted: TradingHalted | None = None
        """As last journaled: it holds across restarts."""
        self._owed: dict[str, str] = {}
        """ClOrdID -> who went away, of the orders cancel on disconnect owes a cancel, until
        they are closed."""
        self._retry: asyncio.TimerHandle | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._recheck_s = HALT_RETRY_S
        self._rechecking: set[str] = set()
        """The orders the last recheck round asked about, until each is answered."""
        self._record: HaltRecord | None = None

    def restore(
        self, numbered: Iterable[tuple[int, AnyEvent]], record: HaltRecord | None = None
    ) -> None:
        """From the journal's events (with their seqs) and the kill switch file, whichever
        spoke last. `record` is written at each halt and resume from now on."""
        said_at = 0
        for seq, event in numbered:
            if isinstance(event, TradingHalted | TradingResumed):
                self.halted = event if isinstance(event, TradingHalted) else None
                said_at = seq
        self._record = record
        recorded = record.recorded if record is not None else None
        if recorded is not None and recorded.seq > said_at:
            self.halted = recorded.event()
            log.warning(
                "kill switch as its file says: the journal did not write its last word",
                file=str(record.path) if record is not None else None,
                halted=self.halted is not None,
                seq=recorded.seq,
            )

    def stop(self) -> None:
        for timer in (self._retry, self._recheck):
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """The last step of a stop, just before the journal closes: a halt taken while the
        session logs out is still recorded."""
        if self._record is not None:
            self._record.close()

    def refuse_new_orders(self) -> None:
        if self.halted is not None:
            raise RequestError(
                f"trading is halted (by {self.halted.by}"
                + (f": {self.halted.reason}" if self.halted.reason else "")
                + "); `resume` lifts it",
                code=ErrorCode.HALTED,
            )

    def halt(self, by: str, reason: str | None = None) -> HaltResult:
        """Block new orders at once and cancel every open order at the exchange. An order no
        cancel can be sent for now is `waiting`: cancelled as soon as the gateway can."""
        done = self.cancel_all(by)
        waiting = [
            NotCancelled(
                cl_ord_id=refused.cl_ord_id,
                code=refused.code,
                reason=f"{refused.reason}; {_CANCELLED_LATER[refused.code]}",
            )
            if refused.code in _CANCELLED_LATER
            else refused
            for refused in done.not_cancelled
        ]
        event = TradingHalted(
            ts=utc_now(),
            by=by,
            reason=reason,
            cancelling=done.cancelling,
            waiting=list(waiting),
            withdrawn=done.withdrawn,
        )
        self.halted = event
        self._recheck_s = HALT_RETRY_S
        warning = self._recorded(self._bus.publish(event), event)
        log.warning(
            "trading halted",
            by=by,
            reason=reason,
            cancelling=len(done.cancelling),
            waiting=len(waiting),
            withdrawn=len(done.withdrawn),
        )
        self._retry_if_throttled(done.not_cancelled)
        return HaltResult(
            halted=True,
            cancelling=done.cancelling,
            waiting=waiting,
            withdrawn=done.withdrawn,
            warning=warning,
        )

    def resume(self, by: str) -> ResumeResult:
        warning = None
        if self.halted is not None:
            self.halted = None
            if self._recheck is not None and not self._owed:
                self._recheck.cancel()
                self._recheck = None
            warning = self._recorded(self._bus.publish(TradingResumed(ts=utc_now(), by=by)), None)
            log.warning("trading resumed", by=by)
        return ResumeResult(halted=False, warning=warning)

    def _recorded(self, seq: int, halted: TradingHalted | None) -> str | None:
        """Written down before the answer: why not, if it could not be."""
        return None if self._record is None else self._record.write(seq, halted)

    def cancel_all(
        self, by: str, owner: Hashable | None = None, only_without_cancel: bool = False
    ) -> CancelAllResult:
        """A cancel for every open order (of `owner` only, if given): `cancelling`, the
        ClOrdIDs of those with a cancel under way, `withdrawn`, those taken out of the
        throttle's queue (never sent: canceled at once, no cancel goes out), and
        `not_cancelled`, those no cancel could be sent for, with why. `only_without_cancel`:
        leave out of `cancelling` those that already had one."""
        orders = [
            order
            for order in self._tracker.open_orders()
            if owner is None or self._owners.get(order.cl_ord_id) == owner
        ]
        return self._cancel_each(orders, by, only_without_cancel)

    def _cancel_each(
        self, orders: list[Order], by: str, only_without_cancel: bool
    ) -> CancelAllResult:
        cancelling: list[str] = []
        withdrawn: list[str] = []
        not_cancelled: list[NotCancelled] = []
        for order in orders:
            if order.cancel_pending is not None:
                if not only_without_cancel:
                    cancelling.append(order.cl_ord_id)
                continue
            held = self._held(order.cl_ord_id)
            try:
                self._cancel(CancelOrderRequest(cl_ord_id=order.cl_ord_id))
                (withdrawn if held else cancelling).append(order.cl_ord_id)
            except RequestError as exc:
                log.error("cancel not sent", cl_ord_id=order.cl_ord_id, by=by, error=exc.message)
                not_cancelled.append(
                    NotCancelled(cl_ord_id=order.cl_ord_id, code=str(exc.code), reason=exc.message)
                )
        return CancelAllResult(
            cancelling=cancelling, withdrawn=withdrawn, not_cancelled=not_cancelled
        )

    def client_gone(self, owner: Hashable) -> None:
        """Its orders placed with cancel on disconnect are owed a cancel: each order's own
        flag, as a restart after a crash reads it from the journal, not the connection's last
        word (a later `hello` changes it for later orders only)."""
        its = [cl_ord_id for cl_ord_id, whose in self._owners.items() if whose == owner]
        self.owe_cancels(
            f"disconnect of {owner}",
            [
                cl_ord_id
                for cl_ord_id in its
                if (order := self._tracker.get(cl_ord_id)) is not None
                and order.cancel_on_disconnect
            ],
        )
        for cl_ord_id in its:
            del self._owners[cl_ord_id]

    def owe_cancels(self, by: str, cl_ord_ids: Iterable[str]) -> None:
        """Cancel on disconnect: each of these orders still open is cancelled now if the
        gateway is ready, or once it is (after the next logon's reconciliation), and again
        while the exchange refuses and it stays open. Those with a cancel under way already
        are owed one too, should the exchange refuse it."""
        owed = [cl_ord_id for cl_ord_id in cl_ord_ids if self._open(cl_ord_id) is not None]
        if not owed:
            return
        if not self._owed and self.halted is None:
            self._recheck_s = HALT_RETRY_S
        for cl_ord_id in owed:
            self._owed[cl_ord_id] = by
        log.warning("client gone: its open orders to be cancelled", by=by, orders=owed)
        self.cancel_left_open()

    @property
    def cancelling_left_open(self) -> bool:
        """Halted, or a cancel owed: an order found open is to be cancelled."""
        return self.halted is not None or bool(self._owed)

    def _open(self, cl_ord_id: str) -> Order | None:
        order = self._tracker.get(cl_ord_id)
        return order if order is not None and order.is_open else None

    def _owed_orders(self) -> list[Order]:
        """The open orders cancels are owed; those closed since are owed nothing more."""
        orders: list[Order] = []
        for cl_ord_id in list(self._owed):
            order = self._open(cl_ord_id)
            if order is None:
                del self._owed[cl_ord_id]
            else:
                orders.append(order)
        return orders

    # ------------------------------------------------------------ while cancels are left

    def cancel_left_open(self) -> None:
        """While halted, a cancel for every open order that has none under way; and for
        every order a cancel is owed (`owe_cancels`): after each reconciliation (so after a
        logon, once the exchange has said what is open), and again shortly after the cancel
        rate limit refused some. (An order a recheck round finds open: `found_open`.)"""
        if not self.cancelling_left_open:
            return
        if not self._ready():
            self._withdraw_held()
            return
        if self.halted is not None:
            done = self.cancel_all(self.halted.by, only_without_cancel=True)
            if done.cancelling or done.not_cancelled:
                log.warning(
                    "halted: cancelling the open orders left",
                    cancelling=done.cancelling,
                    not_cancelled=[r.cl_ord_id for r in done.not_cancelled],
                )
            self._retry_if_throttled(done.not_cancelled)
        for order in self._owed_orders():
            if order.cancel_pending is None:
                by = self._owed[order.cl_ord_id]
                owed = self._cancel_each([order], by, only_without_cancel=True)
                if owed.cancelling:
                    log.warning("cancel on disconnect sent", cl_ord_id=order.cl_ord_id, by=by)
                self._retry_if_throttled(owed.not_cancelled)

    def _withdraw_held(self) -> None:
        """An owed order still in the throttle's queue needs no session, nor reconciliation,
        to be cancelled: it is taken out of the queue at once, never sent. (A halt takes
        them out as it starts.)"""
        for order in self._owed_orders():
            if self._held(order.cl_ord_id):
                self._cancel_each([order], self._owed[order.cl_ord_id], only_without_cancel=True)

    def found_open(self, cl_ord_id: str) -> None:
        """A check's answer found the order open (applied already). Asked by a recheck round
        (which waited its turn), it is cancelled again now, if no cancel of it is out. Any
        other answer (a cancel reject's dispute, the ack watchdog's question) waits for the
        next round: an answer never sends a cancel without the round's doubling wait, so
        an exchange that refuses each cancel and answers each question at once is not
        asked and cancelled in a tight loop."""
        if not self.cancelling_left_open:
            return
        if cl_ord_id not in self._rechecking:
            self.recheck_left_open()
            return
        self._rechecking.discard(cl_ord_id)
        order = self._open(cl_ord_id)
        if order is None or order.cancel_pending is not None or not self._ready():
            return
        by = self._owed.get(cl_ord_id) or (self.halted.by if self.halted is not None else None)
        if by is None:
            return  # resumed, and no cancel owed for this one
        done = self._cancel_each([order], by, only_without_cancel=True)
        if done.cancelling:
            log.warning(
                "cancelling again an order the exchange still has open", cl_ord_id=cl_ord_id, by=by
            )
        self._retry_if_throttled(done.not_cancelled)

    def recheck_left_open(self) -> None:
        """While halted or a cancel is owed, a cancel the exchange refused may leave an
        order open that nothing would cancel again: the exchange is asked about it, and an
        answer to that round that finds it still open has it cancelled again (`found_open`)."""
        if self.cancelling_left_open and self._recheck is None:
            self._recheck = self._loop.call_later(self._recheck_s, self._recheck_open_orders)

    def _recheck_open_orders(self) -> None:
        """Asks about the open orders to be cancelled that no cancel is under way for (one
        out or queued by the throttle counts), without holding anything back. While the
        exchange goes on refusing, each round waits twice as long as the one before, up to
        a minute."""
        self._recheck = None
        if not self.cancelling_left_open or not self._ready():
            return  # after a logon, reconciliation asks about every open order anyway
        to_cancel = (
            list(self._tracker.open_orders()) if self.halted is not None else self._owed_orders()
        )
        uncancelled = [o for o in to_cancel if o.cancel_pending is None]
        self._rechecking = {o.cl_ord_id for o in uncancelled}
        if uncancelled and self._reconciler.check(uncancelled):
            log.warning(
                "asking the exchange about orders it refused to cancel",
                orders=[o.cl_ord_id for o in uncancelled],
            )
            self._recheck_s = min(2 * self._recheck_s, HALT_RECHECK_MAX_S)

    def _retry_if_throttled(self, not_cancelled: list[NotCancelled]) -> None:
        throttled = any(r.code == ErrorCode.THROTTLED for r in not_cancelled)
        if throttled and self._retry is None:
            self._retry = self._loop.call_later(HALT_RETRY_S, self._retry_cancels)

    def _retry_cancels(self) -> None:
        self._retry = None
        self.cancel_left_open()
