"""What the exchange session reports, routed: its changes of state to the session's
lifecycle, each application message read by the venue and handed on as a venue report,
and what could not be read or never reached the exchange, accounted for. Nothing the
exchange sends is dropped."""

from __future__ import annotations

import structlog

from fixgw.domain import ErrorSource, ExchangeError, OrderAnomaly, utc_now
from fixgw.engine.ack_watchdog import AckWatchdog
from fixgw.engine.kill_switch import KillSwitch
from fixgw.engine.order_events import OrderEvents
from fixgw.engine.order_index import Order
from fixgw.engine.ports import Publisher
from fixgw.engine.reconcile import Reconciler
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.tracker import OrderTracker
from fixgw.engine.venue_reports import VenueReports
from fixgw.errors import DialectError
from fixgw.fix.initiator import Happening, Inbound
from fixgw.fix.message import (
    FixMessage,
    FixParseError,
    GroupMiscounted,
    SecretValues,
    parse,
    redact,
)
from fixgw.fix.qf import header_of, raw_field
from fixgw.fix.tags import MsgType, Tag
from fixgw.journal import Journal
from fixgw.marketdata.streams import MarketData
from fixgw.ops.prometheus import Metrics
from fixgw.venues.base import MessageIds, Venue

log = structlog.get_logger("fixgw.inbound")

NOT_DELIVERED = (
    "did not reach the exchange: it asked for this message again after losing it, "
    "and a stale order or cancel is never resent"
)


class InboundRouter:
    def __init__(
        self,
        *,
        venue: Venue,
        lifecycle: SessionLifecycle,
        reports: VenueReports,
        tracker: OrderTracker,
        orders: OrderEvents,
        reconciler: Reconciler,
        kill_switch: KillSwitch,
        watchdog: AckWatchdog,
        market_data: MarketData,
        journal: Journal,
        bus: Publisher,
        metrics: Metrics,
        secrets: SecretValues,
    ) -> None:
        self._venue = venue
        self._lifecycle = lifecycle
        self._reports = reports
        self._tracker = tracker
        self._orders = orders
        self._reconciler = reconciler
        self._kill_switch = kill_switch
        self._watchdog = watchdog
        self._market_data = market_data
        self._journal = journal
        self._bus = bus
        self._metrics = metrics
        self._secrets = secrets
        self.callback_errors = 0
        self.dialect_errors = 0
        self.inbound_refused = 0
        """Application messages QuickFIX refused and the gateway read from the raw text."""

    def on_inbound(self, item: Inbound) -> None:
        try:
            what = item.what
            if what is Happening.APP:
                self._take(item)
            elif what is Happening.LOGON_SENT:
                self._lifecycle.logon_sent()
            elif what is Happening.LOGON:
                self._lifecycle.logged_on()
            elif what is Happening.NUMBERING_RESET:
                self._numbering_reset(item.raw)
            elif what is Happening.DOWN:
                self._lifecycle.ended()
            elif what is Happening.LOGOUT_RECEIVED:
                self._lifecycle.logout_received(parse(item.raw))
            elif what is Happening.PROTOCOL_ERROR:
                self._lifecycle.protocol_error(item.raw)
            elif what is Happening.STORE_FAILED:
                self._lifecycle.store_failed(item.raw)
            elif what is Happening.LOGOUT_SENT:
                self._lifecycle.logout_sent(parse(item.raw))
            elif what is Happening.LOGON_FAILED:
                self._lifecycle.logon_failed(item.raw)
            elif what is Happening.APP_REFUSED:
                self._refused_by_quickfix(item)
            elif what is Happening.MESSAGES_SKIPPED:
                self._messages_skipped(item.raw)
            elif what is Happening.NOT_RESENT:
                self._not_delivered(item.raw)
            elif what is Happening.REJECT_RECEIVED:
                self._reject_received(item)
        except Exception:
            self.callback_errors += 1
            log.exception("inbound handling failed", what=item.what, msg=redact(item.shown))

    def _reject_received(self, item: Inbound) -> None:
        """A session-level Reject: an `exchange.error`; one of our Logon fails the logon."""
        reject = parse(item.raw)
        self._reports.exchange_error(self._venue.session_reject(reject, item.received))
        if reject.get(Tag.REF_MSG_TYPE) == MsgType.LOGON and not self._lifecycle.up:
            self._lifecycle.logon_rejected(reject)

    def on_callback_error(self, where: str, exc: BaseException) -> None:
        """Called from inside a QuickFIX callback: count and log, never raise."""
        self.callback_errors += 1
        self._metrics.callback_errors.inc()
        log.error("QuickFIX callback failed", callback=where, error=repr(exc))

    def _take(self, item: Inbound) -> None:
        msg_type, msg_seq_num = header_of(item.raw)
        self._metrics.inbound(msg_type)
        msg: FixMessage | None = None
        try:
            msg = parse(item.raw, self._venue.groups)
            report = self._venue.read(msg, item.received)
        except (DialectError, FixParseError) as exc:
            if isinstance(exc, GroupMiscounted):
                msg = exc.message
            self._unreadable(item, msg, exc)
        else:
            self._reports.handle(report)
        self._journal.mark_inbound(msg_seq_num)

    def _numbering_reset(self, raw: str) -> None:
        """The exchange numbers its messages from its Logon again: the checkpoint follows, so
        that a restart asks again for every message after the Logon, not after the last one
        handled of the old numbering."""
        msg_seq_num = header_of(raw)[1]
        log.info("the exchange reset its sequence numbers", msg_seq_num=msg_seq_num)
        self._journal.mark_inbound(msg_seq_num)

    def _messages_skipped(self, sequence_reset: str) -> None:
        """The exchange skipped messages it will never deliver (`Happening.MESSAGES_SKIPPED`):
        FIX 4.4 lets a sender gap fill application messages too. Any of them may have
        changed a book, so every live book is asked for afresh; or carried an execution, so
        every open order is asked about, as for a message that could not be read
        (`Reconciler.gap_filled`)."""
        _, msg_seq_num = header_of(sequence_reset)
        last = int(raw_field(sequence_reset, Tag.NEW_SEQ_NO) or 0) - 1
        gap_fill = raw_field(sequence_reset, Tag.GAP_FILL_FLAG) == "Y"
        skipped = f"{msg_seq_num}-{last}" if gap_fill else f"up to {last}"
        reason = f"the exchange skipped messages it will never deliver (SequenceReset: {skipped})"
        log.warning(
            "the exchange skipped messages it will never deliver; any may have carried an "
            "execution or changed a book",
            skipped=skipped,
            gap_fill=gap_fill,
        )
        self._market_data.messages_skipped(reason)
        self._reconciler.gap_filled(reason, redact(sequence_reset))

    def _refused_by_quickfix(self, item: Inbound) -> None:
        """An application message QuickFIX refused at session level: read all the same."""
        if not item.raw:
            self._reconciler.check_all_again(
                "QuickFIX refused a message from the exchange", item.raw
            )
            return
        self.inbound_refused += 1
        self._metrics.inbound_refused.labels(header_of(item.raw)[0]).inc()
        self._take(item)

    def _unreadable(self, item: Inbound, msg: FixMessage | None, exc: Exception) -> None:
        """Nothing the exchange sends is dropped: it is journaled as it came (secrets
        masked), as an `order.anomaly` of the order it names, which is then asked about, or
        else as an `exchange.error`; an account request it names fails, a market-data stream
        it names is asked for afresh, and a message that names nothing may have carried an
        execution: every open order is asked about. Why it could not be read may quote a
        value of it, a secret the exchange quoted back included: masked as the message is."""
        self.dialect_errors += 1
        shown = redact(item.shown)
        why = self._secrets.masked(str(exc))
        log.error("unreadable message from the exchange", error=why, msg=shown)
        ids = self._venue.ids_named(msg) if msg is not None else None
        order = self._named_order(ids) if ids is not None else None
        if order is not None:
            assert ids is not None
            self._orders.publish(
                [
                    OrderAnomaly(
                        ts=item.received,
                        cl_ord_id=order.cl_ord_id,
                        order_id=order.order_id,
                        exec_id=ids.exec_id,
                        problem="unreadable",
                        detail=f"{why}: {shown}",
                    )
                ]
            )
            self._reconciler.ask_about(
                [order], "a message about it could not be read", unreadable=True
            )
            return
        error = ExchangeError(
            ts=item.received,
            source=ErrorSource.UNREADABLE,
            text=why,
            reason=None,
            ref_msg_type=ids.msg_type if ids else None,
            cl_ord_id=ids.cl_ord_id if ids else None,
            acc_req_id=ids.acc_req_id if ids else None,
            md_req_id=ids.md_req_id if ids else None,
            mass_status_req_id=ids.mass_status_req_id if ids else None,
            raw=shown,
        )
        if ids is not None and ids.acc_req_id and not ids.names_an_order:
            if self._reports.account_unreadable(
                ids.acc_req_id,
                f"the exchange's account answer could not be read: {why}",
                item.received,
            ):
                self._bus.publish(error)
            return
        self._bus.publish(error)
        md_req_id = ids.md_req_id if ids is not None else None
        if md_req_id and self._market_data.ask_again(md_req_id, why):
            return
        self._reconciler.check_all_again("an unreadable message from the exchange", shown)

    def _named_order(self, ids: MessageIds) -> Order | None:
        t = self._tracker
        for order in (
            t.get(ids.cl_ord_id or ""),
            t.get(ids.orig_cl_ord_id or ""),
            t.by_order_id(ids.order_id or ""),
        ):
            if order is not None:
                return order
        return None

    def _not_delivered(self, raw: str) -> None:
        """A message of ours the exchange asked for again, gap filled instead of resent
        (`fix.initiator`): the exchange never got it, unless it acknowledged it already. An
        order ends rejected, a cancel refused, both with reason `not_delivered`, if the
        exchange had not acknowledged it (`OrderTracker.refused`); a query fails whoever
        waits on it, or is asked again if the gateway asked it on its own
        (`VenueReports.query_not_delivered`); a market-data request is asked for afresh
        (`MarketData.not_delivered`)."""
        ids = self._venue.ids_named(parse(raw, self._venue.groups))
        log.warning(
            "a message the exchange never got, not resent",
            msg_type=ids.msg_type,
            cl_ord_id=ids.cl_ord_id,
        )
        if ids.msg_type == MsgType.MARKET_DATA_REQUEST:
            self._market_data.not_delivered(ids.md_req_id)
            return
        if ids.msg_type not in (MsgType.NEW_ORDER_SINGLE, MsgType.ORDER_CANCEL_REQUEST):
            self._reports.query_not_delivered(ids)
            return
        if ids.cl_ord_id is None:
            return
        self._watchdog.not_delivered(ids.cl_ord_id)
        self._reconciler.refused(ids.cl_ord_id)
        self._orders.publish(
            self._tracker.refused(ids.cl_ord_id, NOT_DELIVERED, utc_now(), not_delivered=True)
        )
        if ids.msg_type == MsgType.ORDER_CANCEL_REQUEST:
            self._kill_switch.recheck_left_open()
