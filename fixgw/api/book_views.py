"""The book events of socket clients that asked for a depth, cut to it.

The reply to `md_subscribe` with `depth` N holds the top N levels of each side; what follows
on `md:<symbol>` must take that book, and no other, to the next top N. So those clients get
the events of a view of the book at their depth: an `md.snapshot` of the top N, and an
`md.delta` of what changed in the top N since the view's last event (a level that leaves
it is deleted, one that enters it is new, deletes first), none when nothing there changed.
`md.stale` and `md.rejected` go out as they are.

One view per symbol and depth, shared by its clients: per book event that reaches its top
N levels it costs one read of them, one comparison and one encoding, however many clients
share it; an event whose changes all lie below them, a price comparison each. Clients
that asked for the whole book (depth 0) are not here: they get the bus's own line.

A view reads the gateway's book as the event is published (the bus calls `on_event` then),
so between events its levels are the top N of the gateway's book, the levels `md_subscribe`
answers with.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal

from fixgw.api.protocol import md_topics
from fixgw.bus import Subscriber, market_data_line
from fixgw.domain import (
    BookDelta,
    BookSide,
    BookSnapshot,
    Event,
    Level,
    LevelUpdate,
    MarketDataEvent,
)
from fixgw.gateway import Gateway
from fixgw.marketdata.book import changes_between


@dataclass(slots=True)
class _View:
    symbol: str
    depth: int
    clients: tuple[Subscriber, ...] = ()
    """Replaced, never changed in place: a client may be dropped while a line is delivered."""
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    """The levels its clients hold, price -> size: the top `depth` as of its last event."""
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_bid: Decimal | None = None
    """The lowest bid it holds if it holds `depth` bids (a level below cannot enter it);
    else None."""
    last_ask: Decimal | None = None

    def untouched_by(self, changes: list[LevelUpdate]) -> bool:
        """Each change is below the levels the view holds in full on its side: none of its
        levels can change, nor one enter it. The common case needs no read of the book."""
        for change in changes:
            if change.side is BookSide.BID:
                if self.last_bid is None or change.price >= self.last_bid:
                    return False
            elif self.last_ask is None or change.price <= self.last_ask:
                return False
        return True


class BookViews:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._views: dict[tuple[str, int], _View] = {}
        self._placed: dict[tuple[Subscriber, str], _View] = {}
        """Each client's view, by symbol."""

    def topics_of(self, client: Subscriber) -> set[str]:
        """The book topics the client gets through a view (not as the bus's line)."""
        return {t for held, s in self._placed if held is client for t in md_topics(s, ["book"])}

    def place(self, client: Subscriber, symbol: str, depth: int) -> None:
        """From now on the client gets `symbol`'s book events cut to `depth` (> 0)."""
        view = self._placed.get((client, symbol))
        if view is not None and view.depth == depth:
            return
        self.leave(client, symbol)
        view = self._views.get((symbol, depth))
        if view is None:
            if not any(s == symbol for s, _ in self._views):
                self.gateway.subscribe_events(self, md_topics(symbol, ["book"]))
            view = _View(symbol, depth)
            self._read(view)
            self._views[(symbol, depth)] = view
        view.clients = (*view.clients, client)
        self._placed[(client, symbol)] = view

    def leave(self, client: Subscriber, symbol: str | None = None) -> None:
        """The client leaves its view of `symbol` (None: of every symbol)."""
        for held, placed_symbol in list(self._placed):
            if held is not client or symbol not in (None, placed_symbol):
                continue
            view = self._placed.pop((held, placed_symbol))
            view.clients = tuple(c for c in view.clients if c is not client)
            if view.clients:
                continue
            del self._views[(view.symbol, view.depth)]
            if not any(s == view.symbol for s, _ in self._views):
                self.gateway.unsubscribe_events(self, md_topics(view.symbol, ["book"]))

    def leave_topics(self, client: Subscriber, topics: AbstractSet[str]) -> None:
        """The client leaves its views of the books whose topics are among `topics`."""
        for held, symbol in list(self._placed):
            if held is client and md_topics(symbol, ["book"]) <= topics:
                self.leave(client, symbol)

    def on_event(self, seq: int, event: Event) -> None:
        """Each book event of a symbol with a view, as it is published."""
        if not isinstance(event, MarketDataEvent):
            return
        as_is: bytes | None = None
        for view in [v for v in self._views.values() if v.symbol == event.symbol]:
            if isinstance(event, BookSnapshot):
                bids, asks = self._read(view)
                line = market_data_line(
                    seq, BookSnapshot(ts=event.ts, symbol=event.symbol, bids=bids, asks=asks)
                )
            elif isinstance(event, BookDelta):
                if view.untouched_by(event.changes):
                    continue
                before = (view.bids, view.asks)
                self._read(view)
                changes = changes_between(before, (view.bids, view.asks))
                if not changes:
                    continue
                line = market_data_line(
                    seq, BookDelta(ts=event.ts, symbol=event.symbol, changes=changes)
                )
            else:
                if as_is is None:
                    as_is = market_data_line(seq, event)
                line = as_is
            for client in view.clients:
                client.deliver(line)

    def _read(self, view: _View) -> tuple[list[Level], list[Level]]:
        """The top levels of the gateway's book now, which the view's clients are about to
        hold."""
        book = self.gateway.subscribed_book(view.symbol, view.depth)
        view.bids, view.asks = dict(book.bids), dict(book.asks)
        full = view.depth
        view.last_bid = book.bids[-1][0] if len(book.bids) == full else None
        view.last_ask = book.asks[-1][0] if len(book.asks) == full else None
        return book.bids, book.asks
