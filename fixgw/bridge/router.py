"""The loop side of the bridge: OMS messages into the gateway's order path, the gateway's
order and market-data events back to the OMS session that owns them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from fixgw.api.protocol import CancelOrderRequest, md_topics
from fixgw.bridge import translate
from fixgw.bridge.acceptor import REJECT, BridgeAcceptor, OmsHappening, OmsInbound
from fixgw.bridge.tables import (
    BUSINESS_REJECT_OTHER,
    BUSINESS_REJECT_UNSUPPORTED,
    CXL_REJ_BROKER_OPTION,
    CXL_REJ_REASON_OF_ERROR,
    CXL_REJ_UNKNOWN_ORDER,
    INCREMENTAL,
    ORD_REJ_REASON_OF_ERROR,
    OTHER,
)
from fixgw.bridge.translate import Refused
from fixgw.config import BridgeConfig, standard_fix44_dictionary
from fixgw.domain import (
    GATEWAY_REJECT_REASONS,
    CancelRejectReason,
    Level,
    MdEntryKind,
    OrderStatus,
)
from fixgw.errors import FixgwError
from fixgw.fix.codes import CXL_REJ_REASON, MD_ENTRY_TYPE
from fixgw.fix.message import FixMessage, redact
from fixgw.fix.qf import Inbox
from fixgw.fix.tags import Tag
from fixgw.marketdata.streams import BOOK, TRADES
from fixgw.results import OrderView

if TYPE_CHECKING:
    from fixgw.gateway import Gateway

log = structlog.get_logger("fixgw.bridge")

_decode = msgspec.json.Decoder().decode

SKIPPED_EVENTS = frozenset({"order.status", "order.anomaly", "order.cancel_rejected"})
"""order.status answers go to whoever asked; cancel rejects, and an anomaly `cancel_lost`,
are answered as 9, below."""


BOOK_KINDS = frozenset({MdEntryKind.BID, MdEntryKind.ASK})


@dataclass
class _MdSubscription:
    oms: str
    md_req_id: str
    symbol: str
    depth: int
    kinds: frozenset[MdEntryKind] = BOOK_KINDS
    """What the OMS asked for (NoMDEntryTypes): bids, offers, trades."""
    live: bool = False
    """The first snapshot is in and sent; until then `task` waits for it."""
    task: asyncio.Task[None] | None = None
    incremental: bool = False
    """The OMS asked for incremental refreshes (X) after the first full one (W)."""
    sent: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] | None = None
    """The book as the OMS has it (bids, asks); None until a full refresh of a book that
    can be trusted has gone out."""
    trusted: bool = True
    """False from a stale book until a fresh snapshot."""
    last_trade: tuple[Decimal, Decimal] | None = None
    """The last trade (price, size) sent on this subscription, for a full refresh."""

    @property
    def book(self) -> bool:
        return bool(self.kinds & BOOK_KINDS)

    @property
    def trades(self) -> bool:
        return MdEntryKind.TRADE in self.kinds

    @property
    def streams(self) -> set[str]:
        """The gateway's market data it needs: `book`, `trades` or both."""
        return {s for s, wanted in ((BOOK, self.book), (TRADES, self.trades)) if wanted}

    def wants(self, event_type: str) -> bool:
        return self.trades if event_type == "md.trade" else self.book


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
        self.loop = loop
        self.prefixes = {oms.comp_id: oms.prefix for oms in config.sessions}
        self.time_in_force = gateway.venue.time_in_force
        """What the venue's orders carry: an OMS's TimeInForce among them goes on as the
        order's; the field table (`fields.tables`) decides the rest."""
        self._cancel_on_disconnect = {
            oms.comp_id for oms in config.sessions if oms.cancel_on_disconnect
        }
        self._cancel_of_order: dict[str, str] = {}
        """The gateway's ClOrdID of an order -> the OMS's ClOrdID of its latest cancel."""
        self._md: dict[tuple[str, str], _MdSubscription] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = int(time.time() * 1000)
        self._exec_ids = 0
        """For the ExecIDs the bridge makes up (`_exec_id`)."""
        self._handlers: dict[str, Callable[[str, FixMessage], None]] = {
            "D": self._on_new_order,
            "F": self._on_cancel,
            "G": self._on_replace,
            "H": self._on_status,
            "V": self._on_market_data_request,
            REJECT: self._reject_received,
        }
        self.acceptor = BridgeAcceptor(
            config,
            passwords,
            Inbox(loop, self.on_inbound),
            Path(config.dictionary) if config.dictionary else standard_fix44_dictionary(),
        )

    def start(self) -> None:
        for order in self.gateway.open_orders():  # cancels pending before a restart
            if order.cl_ord_id is not None:
                self._note_cancel(order.cl_ord_id, order.cancel_cl_ord_id)
        self.gateway.subscribe(self, ["orders"])
        self.acceptor.start()

    def stop(self) -> None:
        self.acceptor.stop()

    # ------------------------------------------------------------ from the OMS

    def on_inbound(self, item: OmsInbound) -> None:
        try:
            if item.what is OmsHappening.APP:
                self._on_oms_message(item.oms, translate.parse_oms(item.raw))
                # on disk before QuickFIX counts the message received (acceptor.fromApp)
                self.gateway.flush_journal()
            elif item.what is OmsHappening.LOGON:
                log.info("OMS logged on", oms=item.oms)
            elif item.what is OmsHappening.SESSION_REJECT:
                self._reject_received(item.oms, translate.parse_oms(item.raw))
            else:
                self._oms_gone(item.oms)
        except Exception:
            log.exception("OMS message failed", oms=item.oms, msg=redact(item.raw))

    def _on_oms_message(self, oms: str, msg: FixMessage) -> None:
        """Every OMS message gets an answer, but a reject: one the bridge does not take, or
        fails on, a BusinessMessageReject."""
        handler = self._handlers.get(msg.msg_type)
        if handler is None:
            log.warning("OMS message not supported", oms=oms, msg_type=msg.msg_type)
            self.acceptor.send(
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
                self.acceptor.send(oms, self._failed(msg))

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

    @staticmethod
    def _failed(msg: FixMessage) -> FixMessage:
        return translate.business_reject(
            msg,
            BUSINESS_REJECT_OTHER,
            "the gateway failed on this message and may not have acted on it; "
            "ask the order's status",
        )

    def _on_new_order(self, oms: str, msg: FixMessage) -> None:
        try:
            request = translate.new_order(msg, self.prefixes[oms], self.time_in_force)
        except Refused as exc:
            self.acceptor.send(
                oms,
                translate.refused_order(msg, self._exec_id("refused"), exc.text, reason=exc.reason),
            )
            return
        known = self.gateway.order(request.cl_ord_id or "")
        if known is not None and translate.possibly_resent(msg):
            log.info(
                "OMS order sent again; answered with its status", oms=oms, cl_ord_id=known.cl_ord_id
            )
            self._send_status(oms, msg.fields[Tag.CL_ORD_ID], known)
            return
        try:
            self.gateway.new_order(request, owner=f"bridge:{oms}")
        except FixgwError as exc:
            self.acceptor.send(oms, self._refused(msg, exc))

    def _refused(self, msg: FixMessage, exc: FixgwError, exec_type: str = "8") -> FixMessage:
        return translate.refused_order(
            msg,
            self._exec_id("refused"),
            f"{exc.code}: {exc.message}",
            exec_type,
            ORD_REJ_REASON_OF_ERROR.get(exc.code, OTHER),
        )

    def _on_cancel(self, oms: str, msg: FixMessage) -> None:
        """The cancel reaches the exchange as prefix + the OMS's ClOrdID for it, so its
        events name it; refusals are answered here with OrderCancelReject."""
        try:
            request = translate.cancel_request(msg, self.prefixes[oms])
        except Refused as exc:
            self.acceptor.send(oms, translate.cancel_reject(msg, exc.text, reason=exc.reason))
            return
        cancel_id = request.cancel_cl_ord_id or ""
        if translate.possibly_resent(msg) and self.gateway.in_use(cancel_id):
            log.info(
                "OMS cancel sent again; its reports went out already", cancel_cl_ord_id=cancel_id
            )
            return
        # Mapped before the gateway acts: an order still in the throttle's queue is canceled
        # there and then, with no pending_cancel, and its order.canceled answers this cancel.
        order_key = request.cl_ord_id or ""
        mapped_before = self._cancel_of_order.get(order_key)
        self._cancel_of_order[order_key] = msg.fields[Tag.CL_ORD_ID]
        try:
            self.gateway.cancel_order(request)
        except FixgwError as exc:
            if mapped_before is None:  # refused: the order's earlier cancel, if any, stands
                self._cancel_of_order.pop(order_key, None)
            else:
                self._cancel_of_order[order_key] = mapped_before
            order = self.gateway.order(order_key)
            self.acceptor.send(
                oms,
                translate.cancel_reject(
                    msg,
                    f"{exc.code}: {exc.message}",
                    order.order_id if order else None,
                    order.status if order else None,
                    reason=CXL_REJ_REASON_OF_ERROR.get(exc.code, OTHER),
                ),
            )

    def _on_replace(self, oms: str, msg: FixMessage) -> None:
        order = self.gateway.order(self.prefixes[oms] + msg.fields.get(Tag.ORIG_CL_ORD_ID, ""))
        self.acceptor.send(
            oms,
            translate.cancel_reject(
                msg,
                "the exchange cannot replace an order: cancel it and send a new one",
                order.order_id if order else None,
                order.status if order else None,
                response_to="2",
                reason=CXL_REJ_BROKER_OPTION if order else CXL_REJ_UNKNOWN_ORDER,
            ),
        )

    def _on_status(self, oms: str, msg: FixMessage) -> None:
        self._spawn(oms, msg, self._answer_status(oms, msg))

    async def _answer_status(self, oms: str, msg: FixMessage) -> None:
        try:
            answer = await self.gateway.order_status(
                translate.status_request(msg, self.prefixes[oms])
            )
        except Refused as exc:
            self.acceptor.send(
                oms, translate.refused_order(msg, self._exec_id("refused"), exc.text, "I")
            )
            return
        except FixgwError as exc:
            self.acceptor.send(oms, self._refused(msg, exc, exec_type="I"))
            return
        self._send_status(
            oms, msg.fields.get(Tag.CL_ORD_ID, ""), answer, translate.status_echo(msg)
        )

    def _send_status(
        self,
        oms: str,
        cl_ord_id: str,
        order: OrderView,
        echo: Mapping[int, str] | None = None,
    ) -> None:
        """ExecType I: where the order stands, under the OMS's ClOrdID."""
        self.acceptor.send(
            oms,
            translate.execution_report(
                {**msgspec.structs.asdict(order), "type": "order.status"},
                cl_ord_id,
                exec_id=self._exec_id("status"),
                echo=echo,
            ),
        )

    def _exec_id(self, kind: str) -> str:
        """An ExecID for a report no gateway event stands behind (the rest carry the
        exchange's ExecID or the event's seq): unique in the OMS's session, across restarts
        too, as the run's start time is in it."""
        self._exec_ids += 1
        return f"{kind}-{self._started}-{self._exec_ids}"

    def _on_market_data_request(self, oms: str, msg: FixMessage) -> None:
        md_req_id = msg.fields.get(Tag.MD_REQ_ID, "")
        kind = msg.fields.get(Tag.SUBSCRIPTION_REQUEST_TYPE, "0")
        if kind == "2":
            sub = self._md.pop((oms, md_req_id), None)
            if sub is not None:
                self._release_book(sub)
            return
        refusals = translate.screen(msg)  # fields.MARKET_DATA_REQUEST
        if refusals:
            text = "; ".join(r.text for r in refusals)
            self.acceptor.send(
                oms, translate.market_data_reject(md_req_id, text, refusals[0].reason)
            )
            return
        if (oms, md_req_id) in self._md:
            self.acceptor.send(
                oms, translate.market_data_reject(md_req_id, "MDReqID already in use", "1")
            )
            return
        kinds = frozenset(  # the field table lets only the codes of MD_ENTRY_TYPE through
            MD_ENTRY_TYPE.decode(e.get(Tag.MD_ENTRY_TYPE, ""))
            for e in msg.groups.get(Tag.NO_MD_ENTRY_TYPES, ())
        )
        if not kinds:
            text = "NoMDEntryTypes (267): name at least one of 0 (bid), 1 (offer), 2 (trade)"
            self.acceptor.send(oms, translate.market_data_reject(md_req_id, text, "8"))
            return
        symbols = [e[Tag.SYMBOL] for e in msg.groups.get(Tag.NO_RELATED_SYM, ())]
        if len(symbols) != 1:
            self.acceptor.send(
                oms, translate.market_data_reject(md_req_id, "one symbol per request", "5")
            )
            return
        depth = int(msg.fields.get(Tag.MARKET_DEPTH, "0") or 0)
        if depth < 0:
            self.acceptor.send(
                oms, translate.market_data_reject(md_req_id, "MarketDepth must be 0 or more", "5")
            )
            return
        sub = _MdSubscription(oms, md_req_id, symbols[0], depth, kinds)
        sub.incremental = kind == "1" and msg.fields.get(Tag.MD_UPDATE_TYPE) == INCREMENTAL
        # Known while it waits for the first snapshot, so that an unsubscribe or a logout
        # then ends the wait (and the hold) instead of being lost.
        self._md[(oms, md_req_id)] = sub
        sub.task = self._spawn(oms, msg, self._serve_book(sub, subscribe=kind == "1"))

    async def _serve_book(self, sub: _MdSubscription, subscribe: bool) -> None:
        md = self.gateway.market_data
        try:
            md.validate(sub.symbol, 0)
            await md.subscribe(
                _holder(sub), sub.symbol, sub.streams, self.gateway.config.api.request_timeout_s
            )
        except FixgwError as exc:
            self._forget(sub)
            self.acceptor.send(sub.oms, translate.market_data_reject(sub.md_req_id, exc.message))
            return
        except BaseException:
            self._forget(sub)
            raise
        self._send_book(sub)
        if subscribe:
            sub.live = True
            self.gateway.bus.subscribe(self, md_topics(sub.symbol, sub.streams))
        else:
            self._forget(sub)
            md.unsubscribe(_holder(sub), sub.symbol, sub.streams)

    def _forget(self, sub: _MdSubscription) -> None:
        """Out of `_md`, unless the OMS has since used its MDReqID for another request."""
        key = (sub.oms, sub.md_req_id)
        if self._md.get(key) is sub:
            del self._md[key]

    def _levels(self, sub: _MdSubscription) -> tuple[list[Level], list[Level]]:
        """The sides of the book the OMS asked for, as far as it can be trusted."""
        if not (sub.book and sub.trusted):
            return [], []
        bids, asks = self.gateway.market_data.books[sub.symbol].levels(sub.depth)
        return (
            bids if MdEntryKind.BID in sub.kinds else [],
            asks if MdEntryKind.ASK in sub.kinds else [],
        )

    def _send_book(self, sub: _MdSubscription) -> None:
        """A full refresh (W); to an incremental subscription that has had one, what
        changed in the levels it sees (X), if anything did."""
        sub.trusted = True
        bids, asks = self._levels(sub)
        now = (dict(bids), dict(asks))
        message: FixMessage | None
        if sub.sent is None:
            message = self._full_refresh(sub, bids, asks)
        elif sub.incremental:
            message = translate.book_changes(sub.md_req_id, sub.symbol, sub.sent, now)
        else:  # a full refresh only if what the OMS sees changed (not a side it did not ask for)
            message = None if now == sub.sent else self._full_refresh(sub, bids, asks)
        sub.sent = now
        if message is not None:
            self.acceptor.send(sub.oms, message)

    def _full_refresh(
        self, sub: _MdSubscription, bids: list[Level], asks: list[Level]
    ) -> FixMessage:
        trade = sub.last_trade if sub.trades else None
        return translate.book_snapshot(sub.md_req_id, sub.symbol, bids, asks, sub.depth, trade)

    def _send_trade(self, sub: _MdSubscription, event: Mapping[str, Any]) -> None:
        """An incremental subscription gets the trade as a new entry (X); a full one, a
        full refresh with it as the last trade."""
        sub.last_trade = (Decimal(event["price"]), Decimal(event["size"]))
        if sub.incremental:
            message = translate.trade_entry(sub.md_req_id, sub.symbol, *sub.last_trade)
        else:
            message = self._full_refresh(sub, *self._levels(sub))
        self.acceptor.send(sub.oms, message)

    def _send_unavailable(self, sub: _MdSubscription) -> None:
        """A book that cannot be trusted goes out as an empty one: FIX 4.4 has no way to
        pause a subscription, and a MarketDataRequestReject would end it. The next book
        goes out whole (W) to an incremental subscription too."""
        sub.sent = None
        sub.trusted = False
        self.acceptor.send(
            sub.oms, translate.book_snapshot(sub.md_req_id, sub.symbol, [], [], sub.depth)
        )

    def _release_book(self, sub: _MdSubscription) -> None:
        """Ends a subscription taken out of `_md`: a wait for its first snapshot is
        cancelled, which takes its hold back; a live one lets go of its hold."""
        if not sub.live:
            if sub.task is not None:
                sub.task.cancel()
            return
        self.gateway.market_data.unsubscribe(_holder(sub), sub.symbol, sub.streams)
        still = {
            stream
            for s in self._md.values()
            if s.symbol == sub.symbol and s.live
            for stream in s.streams
        }
        self.gateway.bus.unsubscribe(self, md_topics(sub.symbol, sub.streams - still))

    def _oms_gone(self, oms: str) -> None:
        log.info("OMS logged out", oms=oms)
        for key, sub in list(self._md.items()):
            if sub.oms == oms:
                del self._md[key]
                self._release_book(sub)
        if oms in self._cancel_on_disconnect:
            prefix = self.prefixes[oms]
            for order in list(self.gateway.open_orders()):
                cl_ord_id = order.cl_ord_id or ""
                if cl_ord_id.startswith(prefix) and order.cancel_cl_ord_id is None:
                    try:
                        self.gateway.cancel_order(CancelOrderRequest(cl_ord_id=cl_ord_id))
                    except FixgwError as exc:
                        log.error("cancel on OMS disconnect failed", error=exc.message)

    def _spawn(
        self, oms: str, msg: FixMessage, work: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """Runs `work` (which waits on the exchange); if it fails, `msg` is answered as
        `_on_oms_message` answers a message it fails on."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("OMS message failed", oms=oms, msg=redact(msg.raw))
                self.acceptor.send(oms, self._failed(msg))

        task = self.loop.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------ to the OMS

    def deliver(self, line: bytes) -> None:
        """The bus calls this with each event, as the JSON line clients get."""
        try:
            event = _decode(line)
            kind = event["type"]
            if kind.startswith("md."):
                self._market_data(kind, event)
            elif kind == "order.cancel_rejected":
                self._cancel_rejected(event)
            elif kind == "order.anomaly" and event["problem"] == "cancel_lost":
                self._cancel_lost(event)
            elif kind not in SKIPPED_EVENTS:
                self._order_event(event)
        except Exception:
            log.exception("event not bridged", line=line[:300])

    def _market_data(self, kind: str, event: dict[str, Any]) -> None:
        """A stale book goes out empty until a fresh snapshot; a refused stream (`what`: book
        or trades) ends the OMS subscriptions that need it with a MarketDataRequestReject
        (Y), and only those."""
        subs = [s for s in self._md.values() if s.live and s.symbol == event.get("symbol")]
        for sub in subs:
            if kind == "md.rejected":
                if event["what"] not in sub.streams:
                    continue
            elif not sub.wants(kind):
                continue
            if kind == "md.trade":
                self._send_trade(sub, event)
            elif kind == "md.stale":
                self._send_unavailable(sub)
            elif kind == "md.rejected":
                del self._md[(sub.oms, sub.md_req_id)]
                self._release_book(sub)
                text = f"the exchange refused market data: {event.get('text') or event['reason']}"
                self.acceptor.send(sub.oms, translate.market_data_reject(sub.md_req_id, text, None))
            else:  # md.snapshot or md.delta: only a live book has them
                self._send_book(sub)

    def _owner(self, cl_ord_id: str) -> tuple[str, str] | None:
        """The OMS that placed an order (or a cancel), and its own id for it. The prefix
        says so, across restarts too: prefixes never overlap (`BridgeConfig`) and API
        clients may not choose an id that starts with one (`ApiServer`)."""
        oms = self.config.oms_of(cl_ord_id)
        if oms is None:
            return None
        return oms.comp_id, cl_ord_id[len(oms.prefix) :]

    def _note_cancel(self, cl_ord_id: str, cancel_cl_ord_id: str | None) -> None:
        """The cancel now pending for an order: an OMS's cancel of its own order is mapped,
        any other (the API's, a halt's) ends the mapping, as the gateway no longer waits for
        the OMS's."""
        owner = self._owner(cl_ord_id)
        cancel = self._owner(cancel_cl_ord_id or "")
        if owner is not None and cancel is not None and cancel[0] == owner[0]:
            self._cancel_of_order[cl_ord_id] = cancel[1]
        else:
            self._cancel_of_order.pop(cl_ord_id, None)

    def _order_event(self, event: dict[str, Any]) -> None:
        owner = self._owner(event["cl_ord_id"])
        if owner is None:
            return
        oms, oms_cl_ord_id = owner
        kind = event["type"]
        if kind == "order.pending_cancel":
            self._note_cancel(event["cl_ord_id"], event.get("cancel_cl_ord_id"))
        cancel_id = self._cancel_of_order.get(event["cl_ord_id"])
        if kind in ("order.pending_cancel", "order.canceled") and cancel_id is not None:
            report = translate.execution_report(event, cancel_id, orig_cl_ord_id=oms_cl_ord_id)
        else:
            report = translate.execution_report(event, oms_cl_ord_id)
        if OrderStatus(event["status"]).is_terminal:
            self._cancel_of_order.pop(event["cl_ord_id"], None)
        self.acceptor.send(oms, report)

    def _cancel_rejected(self, event: dict[str, Any]) -> None:
        cancel = self._owner(event["cancel_cl_ord_id"])
        owner = self._owner(event["cl_ord_id"])
        if cancel is None or owner is None or cancel[0] != owner[0]:
            return
        oms, cancel_id = cancel
        if self._cancel_of_order.get(event["cl_ord_id"]) == cancel_id:
            del self._cancel_of_order[event["cl_ord_id"]]
        status = OrderStatus(event["status"]) if event.get("status") else None
        text = event.get("text") or str(event["reason"])
        refused = CancelRejectReason(event["reason"])
        # the gateway's own reasons (not_delivered) have no FIX code: 99, Text says why
        reason = OTHER if refused in GATEWAY_REJECT_REASONS else CXL_REJ_REASON.encode(refused)
        self._send_cancel_reject(
            oms, cancel_id, owner[1], text, event.get("order_id"), status, reason
        )

    def _cancel_lost(self, event: dict[str, Any]) -> None:
        """Reconciliation found the order open after its cancel was lost on the way to the
        exchange; the OMS, in PendingCancel, learns its cancel failed and may send another."""
        cl_ord_id = event.get("cl_ord_id") or ""
        owner = self._owner(cl_ord_id)
        cancel_id = self._cancel_of_order.pop(cl_ord_id, None)
        order = self.gateway.order(cl_ord_id)
        if owner is None or cancel_id is None or order is None:
            return
        text = "the cancel did not reach the exchange; the order is still open"
        self._send_cancel_reject(
            owner[0], cancel_id, owner[1], text, order.order_id, order.status, OTHER
        )

    def _send_cancel_reject(
        self,
        oms: str,
        cancel_id: str,
        oms_cl_ord_id: str,
        text: str,
        order_id: str | None,
        status: OrderStatus | None,
        reason: str,
    ) -> None:
        message = FixMessage(
            msg_type="F", fields={Tag.CL_ORD_ID: cancel_id, Tag.ORIG_CL_ORD_ID: oms_cl_ord_id}
        )
        self.acceptor.send(
            oms, translate.cancel_reject(message, text, order_id, status, reason=reason)
        )


def _holder(sub: _MdSubscription) -> str:
    return f"bridge:{sub.oms}:{sub.md_req_id}"
