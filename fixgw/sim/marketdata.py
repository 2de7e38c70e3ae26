"""The simulator's market data: answers MarketDataRequest (V) from the matching book.

A subscription gets a snapshot (W), then one incremental refresh (X) per operation that
changed its view of the book (top `depth` levels, diffed against what it was last sent)
or traded. Bids and offers, and trades, may be asked for together or apart (OKCoin's
clients asked for them apart).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from fixgw.config import LoadFeed
from fixgw.domain import BookSide, Level, LevelAction, MdEntryKind, MdRejectReason, MdSubscription
from fixgw.errors import UnknownCode
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import MsgType, Tag
from fixgw.sim.matching import Fill, OrderBook
from fixgw.venues.okcoin.enums import (
    MD_ENTRY_TYPE,
    MD_REQ_REJ_REASON,
    MD_UPDATE_ACTION,
    SIDE,
    SUBSCRIPTION_REQUEST_TYPE,
)
from fixgw.venues.okcoin.outbound import fix_decimal

log = structlog.get_logger("fixgw.sim.marketdata")

Send = Callable[[str, FixMessage], None]

_ENTRY = {
    BookSide.BID: MD_ENTRY_TYPE.encode(MdEntryKind.BID),
    BookSide.ASK: MD_ENTRY_TYPE.encode(MdEntryKind.ASK),
}
_TRADE = MD_ENTRY_TYPE.encode(MdEntryKind.TRADE)
MAX_DEPTH = 1000


class _Refused(Exception):
    def __init__(self, reason: MdRejectReason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(slots=True)
class _Subscription:
    client: str
    md_req_id: str
    symbol: str
    depth: int
    book: bool
    trades: bool
    sent: dict[BookSide, dict[Decimal, Decimal]] = field(
        default_factory=lambda: {BookSide.BID: {}, BookSide.ASK: {}}
    )


class MarketDataPublisher:
    def __init__(
        self,
        books: Mapping[str, OrderBook],
        send: Send,
        load_feeds: Mapping[str, LoadFeed] | None = None,
    ) -> None:
        self._books = books
        self._send = send
        self._load_feeds = dict(load_feeds or {})
        self._subscriptions: dict[tuple[str, str], _Subscription] = {}

    def on_request(self, msg: FixMessage, client: str) -> None:
        md_req_id = msg.fields.get(Tag.MD_REQ_ID, "")
        try:
            self._serve(msg, client, md_req_id)
        except _Refused as refused:
            self._send(
                client,
                FixMessage(
                    MsgType.MARKET_DATA_REQUEST_REJECT,
                    {
                        Tag.MD_REQ_ID: md_req_id,
                        Tag.MD_REQ_REJ_REASON: MD_REQ_REJ_REASON.encode(refused.reason),
                        Tag.TEXT: refused.text,
                    },
                ),
            )

    def _serve(self, msg: FixMessage, client: str, md_req_id: str) -> None:
        try:
            kind = SUBSCRIPTION_REQUEST_TYPE.decode(
                msg.fields.get(Tag.SUBSCRIPTION_REQUEST_TYPE, "")
            )
        except UnknownCode as exc:
            raise _Refused(MdRejectReason.UNSUPPORTED_SUBSCRIPTION, str(exc)) from None
        if kind is MdSubscription.UNSUBSCRIBE:
            if self._subscriptions.pop((client, md_req_id), None) is not None:
                log.info("market data unsubscribed", client=client, md_req_id=md_req_id)
            return
        if (client, md_req_id) in self._subscriptions:
            raise _Refused(MdRejectReason.DUPLICATE_MD_REQ_ID, f"MDReqID {md_req_id} is in use")
        symbols = [e.get(Tag.SYMBOL, "") for e in msg.group(Tag.NO_RELATED_SYM)]
        if len(symbols) == 1 and symbols[0] in self._load_feeds:
            self._start_load_feed(client, md_req_id, symbols[0], kind)
            return
        if len(symbols) != 1 or symbols[0] not in self._books:
            raise _Refused(MdRejectReason.UNKNOWN_SYMBOL, f"unknown symbol {','.join(symbols)}")
        depth_text = msg.fields.get(Tag.MARKET_DEPTH, "")
        if not depth_text.isdigit() or int(depth_text) > MAX_DEPTH:
            raise _Refused(
                MdRejectReason.UNSUPPORTED_DEPTH,
                f"MarketDepth must be 0 (full book) to {MAX_DEPTH}",
            )
        try:
            kinds = {
                MD_ENTRY_TYPE.decode(e.get(Tag.MD_ENTRY_TYPE, ""))
                for e in msg.group(Tag.NO_MD_ENTRY_TYPES)
            }
        except UnknownCode as exc:
            raise _Refused(MdRejectReason.UNSUPPORTED_ENTRY_TYPE, str(exc)) from None
        sub = _Subscription(
            client=client,
            md_req_id=md_req_id,
            symbol=symbols[0],
            depth=int(depth_text),
            book=bool(kinds & {MdEntryKind.BID, MdEntryKind.ASK}),
            trades=MdEntryKind.TRADE in kinds,
        )
        self._snapshot(sub)
        if kind is MdSubscription.SUBSCRIBE:
            self._subscriptions[(client, md_req_id)] = sub
            log.info(
                "market data subscribed",
                client=client,
                md_req_id=md_req_id,
                symbol=sub.symbol,
                book=sub.book,
                trades=sub.trades,
                depth=sub.depth,
            )

    def _snapshot(self, sub: _Subscription) -> None:
        entries: list[dict[int, str]] = []
        if sub.book:
            bids, asks = self._books[sub.symbol].depth(sub.depth)
            for side, levels in ((BookSide.BID, bids), (BookSide.ASK, asks)):
                sub.sent[side] = dict(levels)
                entries.extend(
                    {
                        Tag.MD_ENTRY_TYPE: _ENTRY[side],
                        Tag.MD_ENTRY_PX: fix_decimal(p),
                        Tag.MD_ENTRY_SIZE: fix_decimal(s),
                    }
                    for p, s in levels
                )
        self._send(
            sub.client,
            FixMessage(
                MsgType.MARKET_DATA_SNAPSHOT,
                {Tag.MD_REQ_ID: sub.md_req_id, Tag.SYMBOL: sub.symbol},
                {Tag.NO_MD_ENTRIES: tuple(entries)} if entries else {Tag.NO_MD_ENTRIES: ()},
            ),
        )

    def book_changed(self, symbol: str, fills: list[Fill]) -> None:
        """After an operation on `symbol`: one X per subscription whose view changed."""
        book = self._books[symbol]
        for sub in self._subscriptions.values():
            if sub.symbol != symbol:
                continue
            entries: list[dict[int, str]] = []
            if sub.trades:
                entries.extend(
                    {
                        Tag.MD_UPDATE_ACTION: MD_UPDATE_ACTION.encode(LevelAction.NEW),
                        Tag.MD_ENTRY_TYPE: _TRADE,
                        Tag.MD_ENTRY_PX: fix_decimal(f.price),
                        Tag.MD_ENTRY_SIZE: fix_decimal(f.qty),
                        Tag.SYMBOL: symbol,
                        Tag.SIDE: SIDE.encode(f.taker.side),
                    }
                    for f in fills
                )
            if sub.book:
                bids, asks = book.depth(sub.depth)
                entries.extend(self._diff(sub, BookSide.BID, bids))
                entries.extend(self._diff(sub, BookSide.ASK, asks))
            if entries:
                self._send(
                    sub.client,
                    FixMessage(
                        MsgType.MARKET_DATA_INCREMENTAL,
                        {Tag.MD_REQ_ID: sub.md_req_id},
                        {Tag.NO_MD_ENTRIES: tuple(entries)},
                    ),
                )

    def _diff(
        self, sub: _Subscription, side: BookSide, levels: list[Level]
    ) -> list[dict[int, str]]:
        before = sub.sent[side]
        after = dict(levels)
        changes: list[tuple[LevelAction, Decimal, Decimal]] = [
            (LevelAction.DELETE, p, Decimal(0)) for p in before if p not in after
        ]
        changes += [
            (LevelAction.NEW if p not in before else LevelAction.CHANGE, p, s)
            for p, s in levels
            if before.get(p) != s
        ]
        sub.sent[side] = after
        return [
            {
                Tag.MD_UPDATE_ACTION: MD_UPDATE_ACTION.encode(action),
                Tag.MD_ENTRY_TYPE: _ENTRY[side],
                Tag.MD_ENTRY_PX: fix_decimal(price),
                **({} if action is LevelAction.DELETE else {Tag.MD_ENTRY_SIZE: fix_decimal(size)}),
                Tag.SYMBOL: sub.symbol,
            }
            for action, price, size in changes
        ]

    def _start_load_feed(
        self, client: str, md_req_id: str, symbol: str, kind: MdSubscription
    ) -> None:
        """A snapshot of a synthetic book, then `messages` refreshes changing its level sizes,
        from a thread of its own, as fast as messages can be built."""
        feed = self._load_feeds[symbol]
        half = max(1, feed.entries // 2)
        prices = {
            BookSide.BID: [Decimal(100) - Decimal(j) / 100 for j in range(half)],
            BookSide.ASK: [Decimal(101) + Decimal(j) / 100 for j in range(half)],
        }
        self._send(
            client,
            FixMessage(
                MsgType.MARKET_DATA_SNAPSHOT,
                {Tag.MD_REQ_ID: md_req_id, Tag.SYMBOL: symbol},
                {
                    Tag.NO_MD_ENTRIES: tuple(
                        {
                            Tag.MD_ENTRY_TYPE: _ENTRY[side],
                            Tag.MD_ENTRY_PX: fix_decimal(p),
                            Tag.MD_ENTRY_SIZE: "1",
                        }
                        for side, ps in prices.items()
                        for p in ps
                    )
                },
            ),
        )
        if kind is not MdSubscription.SUBSCRIBE:
            return
        key = (client, md_req_id)
        self._subscriptions[key] = _Subscription(client, md_req_id, symbol, 0, False, False)
        change = MD_UPDATE_ACTION.encode(LevelAction.CHANGE)
        levels = [(side, fix_decimal(p)) for side, ps in prices.items() for p in ps]

        def run() -> None:
            for i in range(feed.messages):
                if key not in self._subscriptions:
                    return
                size = f"{1 + i % 997}.{i % 10}"
                entries: tuple[Mapping[int, str], ...] = tuple(
                    {
                        Tag.MD_UPDATE_ACTION: change,
                        Tag.MD_ENTRY_TYPE: _ENTRY[side],
                        Tag.MD_ENTRY_PX: px,
                        Tag.MD_ENTRY_SIZE: size,
                        Tag.SYMBOL: symbol,
                    }
                    for side, px in levels[: feed.entries]
                )
                self._send(
                    client,
                    FixMessage(
                        MsgType.MARKET_DATA_INCREMENTAL,
                        {Tag.MD_REQ_ID: md_req_id},
                        {Tag.NO_MD_ENTRIES: entries},
                    ),
                )
            log.info("load feed done", client=client, md_req_id=md_req_id, messages=feed.messages)

        threading.Thread(target=run, name=f"load-feed-{md_req_id}", daemon=True).start()

    def client_gone(self, client: str) -> None:
        for key in [k for k in self._subscriptions if k[0] == client]:
            del self._subscriptions[key]
