"""An OMS's market data: MarketDataRequest (V) in, served from the gateway's book; full
refreshes (W), incremental ones (X) and MarketDataRequestReject (Y) out, as the gateway's
market-data events come."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from fixgw.api.protocol import md_topics
from fixgw.bridge import translate
from fixgw.bridge.outbox import Outbox
from fixgw.bridge.tables import (
    INCREMENTAL,
    MD_REJECT_REASONS_PASSED_ON,
    MD_REQ_REJ_REASON_OF_ERROR,
)
from fixgw.domain import (
    BookStale,
    Event,
    Level,
    MarketDataEvent,
    MarketDataRejected,
    MdEntryKind,
    MdRejectReason,
    TradeReported,
)
from fixgw.errors import FixgwError, MarketDataRefused
from fixgw.fix.codes import MD_ENTRY_TYPE, MD_REQ_REJ_REASON
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import Tag
from fixgw.marketdata.streams import BOOK, TRADES

if TYPE_CHECKING:
    from fixgw.gateway import Gateway

log = structlog.get_logger("fixgw.bridge")

BOOK_KINDS = frozenset({MdEntryKind.BID, MdEntryKind.ASK})
_serials = itertools.count(1)


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
    serial: int = field(default_factory=lambda: next(_serials))
    """This subscription's own: one that reuses its MDReqID after it ended is another."""

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

    def wants(self, event: MarketDataEvent) -> bool:
        return self.trades if isinstance(event, TradeReported) else self.book

    @property
    def holder(self) -> tuple[str, str, str, int]:
        """Its name as a client of the gateway's market data: its own, whatever characters
        CompIDs and MDReqIDs hold, and whichever request of the OMS's used the MDReqID before."""
        return ("bridge", self.oms, self.md_req_id, self.serial)


def _reason_of_error(exc: FixgwError) -> str | None:
    """The MDReqRejReason (281) of a request the gateway could not serve, if one fits."""
    if isinstance(exc, MarketDataRefused):
        return _exchange_reason(exc.reason)
    return MD_REQ_REJ_REASON_OF_ERROR.get(exc.code)


def _exchange_reason(reason: MdRejectReason) -> str | None:
    """The exchange's reason for refusing a stream, as the OMS gets it: the same whether
    the refusal answers its request or ends its live subscription."""
    return MD_REQ_REJ_REASON.encode(reason) if reason in MD_REJECT_REASONS_PASSED_ON else None


class OmsMarketData:
    def __init__(self, gateway: Gateway, outbox: Outbox) -> None:
        self.gateway = gateway
        self.outbox = outbox
        self._md: dict[tuple[str, str], _MdSubscription] = {}

    # ------------------------------------------------------------ from the OMS

    def on_request(self, oms: str, msg: FixMessage) -> None:
        """A MarketDataRequest (V): a snapshot, a subscription, or the end of one."""
        md_req_id = msg.fields.get(Tag.MD_REQ_ID, "")
        kind = msg.fields.get(Tag.SUBSCRIPTION_REQUEST_TYPE, "0")
        if kind == "2":
            sub = self._md.pop((oms, md_req_id), None)
            if sub is not None:
                self._release(sub)
            return
        refusals = translate.screen(msg)  # fields.MARKET_DATA_REQUEST
        if refusals:
            text = "; ".join(r.text for r in refusals)
            self._reject(oms, md_req_id, text, refusals[0].reason)
            return
        if (oms, md_req_id) in self._md:
            self._reject(oms, md_req_id, "MDReqID already in use", "1")
            return
        kinds = frozenset(  # the field table lets only the codes of MD_ENTRY_TYPE through
            MD_ENTRY_TYPE.decode(e.get(Tag.MD_ENTRY_TYPE, ""))
            for e in msg.groups.get(Tag.NO_MD_ENTRY_TYPES, ())
        )
        if not kinds:
            text = "NoMDEntryTypes (267): name at least one of 0 (bid), 1 (offer), 2 (trade)"
            self._reject(oms, md_req_id, text, "8")
            return
        symbols = [e[Tag.SYMBOL] for e in msg.groups.get(Tag.NO_RELATED_SYM, ())]
        if len(symbols) != 1:
            self._reject(oms, md_req_id, "one symbol per request", "5")
            return
        depth = int(msg.fields.get(Tag.MARKET_DEPTH, "0") or 0)
        if depth < 0:
            self._reject(oms, md_req_id, "MarketDepth must be 0 or more", "5")
            return
        sub = _MdSubscription(oms, md_req_id, symbols[0], depth, kinds)
        sub.incremental = kind == "1" and msg.fields.get(Tag.MD_UPDATE_TYPE) == INCREMENTAL
        # Known while it waits for the first snapshot, so that an unsubscribe or a logout
        # then ends the wait (and the hold) instead of being lost.
        self._md[(oms, md_req_id)] = sub
        sub.task = self.outbox.spawn(oms, msg, self._serve(sub, subscribe=kind == "1"))

    def _reject(self, oms: str, md_req_id: str, text: str, reason: str | None) -> None:
        self.outbox.send(oms, translate.market_data_reject(md_req_id, text, reason))

    async def _serve(self, sub: _MdSubscription, subscribe: bool) -> None:
        try:
            await self.gateway.md_subscribe(
                sub.holder, sub.symbol, sub.streams, self.gateway.config.api.request_timeout_s
            )
        except FixgwError as exc:
            self._forget(sub)
            self._reject(sub.oms, sub.md_req_id, exc.message, _reason_of_error(exc))
            return
        except BaseException:
            self._forget(sub)
            raise
        self._send_book(sub)
        if subscribe:
            sub.live = True
            self.gateway.subscribe_events(self, md_topics(sub.symbol, sub.streams))
        else:
            self._forget(sub)
            self.gateway.md_unsubscribe(sub.holder, sub.symbol, sub.streams)

    def _forget(self, sub: _MdSubscription) -> None:
        """Out of `_md`, unless the OMS has since used its MDReqID for another request."""
        key = (sub.oms, sub.md_req_id)
        if self._md.get(key) is sub:
            del self._md[key]

    def _release(self, sub: _MdSubscription) -> None:
        """Ends a subscription taken out of `_md`: a wait for its first snapshot is
        cancelled, which takes its hold back; a live one lets go of its hold."""
        if not sub.live:
            if sub.task is not None:
                sub.task.cancel()
            return
        self.gateway.md_unsubscribe(sub.holder, sub.symbol, sub.streams)
        still = {
            stream
            for s in self._md.values()
            if s.symbol == sub.symbol and s.live
            for stream in s.streams
        }
        self.gateway.unsubscribe_events(self, md_topics(sub.symbol, sub.streams - still))

    def oms_gone(self, oms: str) -> None:
        for key, sub in list(self._md.items()):
            if sub.oms == oms:
                del self._md[key]
                self._release(sub)

    # ------------------------------------------------------------ to the OMS

    def on_event(self, seq: int, event: Event) -> None:
        """The bus calls this with each market-data event of a symbol an OMS subscribes to.
        A stale book goes out empty until a fresh snapshot; a refused stream (`what`: book
        or trades) ends the OMS subscriptions that need it with a MarketDataRequestReject
        (Y), and only those."""
        try:
            if isinstance(event, MarketDataEvent):
                self._market_data(event)
        except Exception:
            log.exception("event not bridged", seq=seq, event=repr(event)[:300])

    def _market_data(self, event: MarketDataEvent) -> None:
        subs = [s for s in self._md.values() if s.live and s.symbol == event.symbol]
        for sub in subs:
            if isinstance(event, MarketDataRejected | BookStale):
                if event.what not in sub.streams:
                    continue
            elif not sub.wants(event):
                continue
            if isinstance(event, TradeReported):
                self._send_trade(sub, event)
            elif isinstance(event, BookStale) and event.what == TRADES:
                self._send_trades_unavailable(sub)
            elif isinstance(event, BookStale):
                self._send_unavailable(sub)
            elif isinstance(event, MarketDataRejected):
                del self._md[(sub.oms, sub.md_req_id)]
                self._release(sub)
                text = f"the exchange refused market data: {event.text or event.reason}"
                self._reject(sub.oms, sub.md_req_id, text, _exchange_reason(event.reason))
            else:  # a snapshot or a delta: only a live book has them
                self._send_book(sub)

    def _levels(self, sub: _MdSubscription) -> tuple[list[Level], list[Level]]:
        """The sides of the book the OMS asked for, as far as it can be trusted."""
        if not (sub.book and sub.trusted):
            return [], []
        book = self.gateway.subscribed_book(sub.symbol, sub.depth)
        return (
            book.bids if MdEntryKind.BID in sub.kinds else [],
            book.asks if MdEntryKind.ASK in sub.kinds else [],
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
            self.outbox.send(sub.oms, message)

    def _full_refresh(
        self, sub: _MdSubscription, bids: list[Level], asks: list[Level]
    ) -> FixMessage:
        trade = sub.last_trade if sub.trades else None
        return translate.book_snapshot(sub.md_req_id, sub.symbol, bids, asks, sub.depth, trade)

    def _send_trade(self, sub: _MdSubscription, event: TradeReported) -> None:
        """An incremental subscription gets the trade as a new entry (X); a full one, a
        full refresh with it as the last trade."""
        sub.last_trade = (event.price, event.size)
        if sub.incremental:
            message = translate.trade_entry(sub.md_req_id, sub.symbol, *sub.last_trade)
        else:
            message = self._full_refresh(sub, *self._levels(sub))
        self.outbox.send(sub.oms, message)

    def _send_trades_unavailable(self, sub: _MdSubscription) -> None:
        """Trades asked for afresh (some may be missed) go out as a full refresh (W) without
        a last trade: the book in it, if asked for, as the OMS has it."""
        sub.last_trade = None
        bids, asks = self._levels(sub)
        if sub.trusted:
            sub.sent = (dict(bids), dict(asks))
        self.outbox.send(sub.oms, self._full_refresh(sub, bids, asks))

    def _send_unavailable(self, sub: _MdSubscription) -> None:
        """A book that cannot be trusted goes out as an empty one: FIX 4.4 has no way to
        pause a subscription, and a MarketDataRequestReject would end it. The next book
        goes out whole (W) to an incremental subscription too."""
        sub.sent = None
        sub.trusted = False
        self.outbox.send(
            sub.oms, translate.book_snapshot(sub.md_req_id, sub.symbol, [], [], sub.depth)
        )
