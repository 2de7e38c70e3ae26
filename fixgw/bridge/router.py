"""The loop side of the bridge, wired: each OMS message to the part that takes its type
(orders: `orders.OmsOrders`; market data: `market_data.OmsMarketData`), and the gateway's
events back to the OMS sessions (`reports.OrderReports`, and the market data's own)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from fixgw.bridge import translate
from fixgw.bridge.acceptor import REJECT, BridgeAcceptor, OmsHappening, OmsInbound
from fixgw.bridge.market_data import OmsMarketData
from fixgw.bridge.orders import OmsOrders
from fixgw.bridge.outbox import Outbox
from fixgw.bridge.owners import OrderOwners, say_orders_of_sessions_not_configured
from fixgw.bridge.refusals import RefusedOrders
from fixgw.bridge.reported import ReportedMarks, record_store
from fixgw.bridge.reports import OrderReports
from fixgw.bridge.tables import BUSINESS_REJECT_OTHER, BUSINESS_REJECT_UNSUPPORTED
from fixgw.bridge.unanswered import UnansweredRequests
from fixgw.config import BridgeConfig, standard_fix44_dictionary
from fixgw.fix.message import FixMessage, redact
from fixgw.fix.qf import Inbox
from fixgw.fix.tags import Tag

if TYPE_CHECKING:
    from fixgw.gateway import Gateway

log = structlog.get_logger("fixgw.bridge")

THIRD_PARTY_ROUTING = {
    Tag.ON_BEHALF_OF_COMP_ID: "OnBehalfOfCompID",
    Tag.ON_BEHALF_OF_SUB_ID: "OnBehalfOfSubID",
    Tag.ON_BEHALF_OF_LOCATION_ID: "OnBehalfOfLocationID",
    Tag.DELIVER_TO_COMP_ID: "DeliverToCompID",
    Tag.DELIVER_TO_SUB_ID: "DeliverToSubID",
    Tag.DELIVER_TO_LOCATION_ID: "DeliverToLocationID",
}
"""Header fields of FIX 4.4's third-party routing. The bridge keeps no routing per order to
send the order's reports on to whom they name, so it takes no message carrying one: refused
rather than dropped. The refusal goes back as `translate.ROUTED_BACK` says."""


class Bridge:
    def __init__(
        self,
        config: BridgeConfig,
        passwords: Mapping[str, str],
        gateway: Gateway,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.logged_on: set[str] = set()
        """The OMS sessions logged on now (`fixgw_bridge_oms_logged_on`)."""
        gateway.metrics.bridge_oms_logged_on.set_function(lambda: len(self.logged_on))
        self.acceptor = BridgeAcceptor(
            config,
            passwords,
            Inbox(loop, self.on_inbound),
            Path(config.dictionary) if config.dictionary else standard_fix44_dictionary(),
            lambda reason: gateway.metrics.bridge_connections_closed.labels(reason).inc(),
        )
        self.outbox = Outbox(self.acceptor, loop)
        owners = OrderOwners(config, gateway.placed_by)
        unanswered = UnansweredRequests(Path(config.store_dir) / "unanswered")
        self.refusals = RefusedOrders(Path(config.store_dir))
        store = Path(config.store_dir)
        record_store(Path(gateway.config.journal.path), store)
        self.marks = ReportedMarks(store, owners.prefixes)
        self.reports = OrderReports(gateway, owners, self.outbox, self.marks)
        self.orders = OmsOrders(
            config, gateway, owners, self.outbox, self.reports, unanswered, self.refusals
        )
        self.market_data = OmsMarketData(gateway, self.outbox)
        self._handlers: dict[str, Callable[[str, FixMessage], None]] = {
            "D": self.orders.new_order,
            "F": self.orders.cancel,
            "G": self.orders.replace,
            "H": self.orders.status,
            "V": self.market_data.on_request,
            REJECT: self._reject_received,
        }

    def start(self) -> None:
        say_orders_of_sessions_not_configured(
            (o.cl_ord_id for o in self.gateway.open_orders() if o.cl_ord_id is not None),
            self.gateway.placed_by,
            self.reports.owners.prefixes,
        )
        for oms, path in self.marks.left_behind().items():
            log.info(
                "OMS reports' mark of a session not configured, kept: told from it when the "
                "session is configured again; it holds `journal compact` back (delete the "
                "file for a session gone for good)",
                oms=oms,
                file=str(path),
            )
        self.orders.sessions_ended()
        self.acceptor.start()
        self.reports.start()
        self.orders.answer_left()

    def send_held(self) -> None:
        """On the loop, before `stop`: the reports held for the journal go out while the OMS
        sessions are still logged on."""
        self.reports.send_held()

    def stop(self) -> None:
        """Off the loop (it waits for the OMS sessions' Logouts)."""
        self.acceptor.stop()

    def close(self) -> None:
        """On the loop, once the gateway's journal is closed (its last write sent the last
        reports held, to QuickFIX's store)."""
        self.reports.close()
        self.refusals.close()

    def on_inbound(self, item: OmsInbound) -> None:
        try:
            if item.what is OmsHappening.APP:
                self._on_oms_message(item.oms, translate.parse_oms(item.raw))
                # on disk before QuickFIX counts the message received (acceptor.fromApp)
                self.gateway.flush_journal()
            elif item.what is OmsHappening.LOGON:
                self.logged_on.add(item.oms)
                log.info("OMS logged on", oms=item.oms)
            elif item.what is OmsHappening.SESSION_REJECT:
                self._reject_received(item.oms, translate.parse_oms(item.raw))
            else:
                self.logged_on.discard(item.oms)
                if item.ended_by == "logout":
                    log.info("OMS logged out", oms=item.oms)
                elif item.ended_by == "stop":
                    log.info("OMS logged out", oms=item.oms, by="the gateway stopping")
                else:
                    log.warning(
                        "OMS session ended without its Logout: the connection was lost, or "
                        "QuickFIX ended it (its log says why)",
                        oms=item.oms,
                    )
                self.market_data.oms_gone(item.oms)
                self.orders.oms_gone(item.oms)
        except Exception:
            log.exception("OMS message failed", oms=item.oms, msg=redact(item.raw))

    def _on_oms_message(self, oms: str, msg: FixMessage) -> None:
        """Every OMS message gets an answer, but a reject: one the bridge does not take, or
        fails on, a BusinessMessageReject."""
        routing = [tag for tag in THIRD_PARTY_ROUTING if tag in msg.fields]
        if routing and msg.msg_type != REJECT:
            self._refuse_third_party(oms, msg, routing)
            return
        handler = self._handlers.get(msg.msg_type)
        if handler is None:
            log.warning("OMS message not supported", oms=oms, msg_type=msg.msg_type)
            self.outbox.send(
                oms,
                translate.business_reject(
                    msg,
                    BUSINESS_REJECT_UNSUPPORTED,
                    f"MsgType {msg.msg_type} is not supported: the bridge takes "
                    + ", ".join(sorted(self._handlers)),
                ),
            )
            return
        try:
            handler(oms, msg)
        except Exception:
            log.exception("OMS message failed", oms=oms, msg=redact(msg.raw))
            if msg.msg_type != REJECT:  # never a reject of a reject
                self.outbox.send(oms, self.outbox.failed(msg))

    def _refuse_third_party(self, oms: str, msg: FixMessage, routing: list[Tag]) -> None:
        """BusinessRejectReason 0 (other): none of FIX 4.4's fits. 4, application not
        available, says to try again later, and 7, DeliverTo firm not available at this
        time, that the bridge routes; this refusal is for good."""
        named = ", ".join(f"{THIRD_PARTY_ROUTING[t]} ({t}) = {msg.fields[t]}" for t in routing)
        log.warning("OMS message refused: third-party routing", oms=oms, routing=named)
        self.outbox.send(
            oms,
            translate.business_reject(
                msg,
                BUSINESS_REJECT_OTHER,
                f"third-party routing is not supported: {named}; the bridge takes no "
                "message sent on behalf of or to another firm",
            ),
        )

    def _reject_received(self, oms: str, msg: FixMessage) -> None:
        """A Reject (3) or BusinessMessageReject (j) from the OMS is logged and counted, and
        never answered: a reject of a reject would ping-pong for ever with a counterparty
        that does the same."""
        f = msg.fields
        self.gateway.metrics.bridge_rejects_received.labels(oms=oms, msg_type=msg.msg_type).inc()
        log.warning(
            "the OMS rejected a message of ours",
            oms=oms,
            msg_type=msg.msg_type,
            ref_seq_num=f.get(Tag.REF_SEQ_NUM),
            ref_msg_type=f.get(Tag.REF_MSG_TYPE),
            ref_tag=f.get(Tag.REF_TAG_ID),
            reason=f.get(Tag.SESSION_REJECT_REASON) or f.get(Tag.BUSINESS_REJECT_REASON),
            text=f.get(Tag.TEXT),
        )
