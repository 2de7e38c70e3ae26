"""Market data: one upstream subscription per symbol and kind, shared by every client.

Bids and offers are one upstream request, trades another (as OKCoin's clients did); the
first client to want either starts it, the last to leave ends it. Each symbol's book is
built from the snapshot and the incremental refreshes. A book that breaks (crossed, an
update for a level it does not hold) is announced as stale and asked for afresh; so is every
book after a reconnect or after the exchange skipped messages (`messages_skipped`), and
every stream a message of which could not be read. A book silent for `stale_after_s` is
only refreshed: asked for afresh while it is still served (a venue sends incrementals only
on change, so a quiet book is no trouble), and announced stale only if that request is not
answered within `stale_after_s` as well, or its answer cannot be used. A
trades stream that sends a trade at a price or size of 0 or below is asked for afresh too,
that trade and those after it in its message told to nobody, as a book refuses such a level.
After a reconnect or skipped messages, clients of a live trades stream are told it may have
missed trades (stale), as book clients are. A trades stream needs no snapshot to start: its
first W or X is the answer.

Asked for afresh means at once for a live stream that has had no trouble for a minute;
otherwise (its first answer was unusable, or it keeps breaking) after a back-off of 1 s
doubling to 60 s (`fixgw.marketdata.backoff`), so that nothing a venue sends can make the
gateway ask again and again in a loop. Only trouble counts: a refresh of a quiet book that
is answered usably neither grows the back-off nor interrupts the minute live that resets it.
What a venue sends that the gateway has no use for (named by its reader in `passed_over`,
and here: the trades of a full refresh, an entry under the request of the symbol's other
stream) is counted by entry and logged once per kind and stream.

The reference price the risk checks use is only ever taken from a live stream: the last
trade seen on the current request (its full refresh's last one included), else the mid of
a live book. A stream that stops, is asked for afresh after trouble, is refused, or loses
its session forgets what it knew; a quiet book being refreshed is still live, its mid too.
Streams the gateway holds for itself (`hold`) come back after a refusal: asked for again on
the next tick after a backoff, and at every logon.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from fixgw.decimals import EXACT
from fixgw.domain import (
    BookDelta,
    BookSnapshot,
    BookSnapshotReport,
    BookStale,
    BookUpdateReport,
    Event,
    MarketDataRejected,
    MarketDataRejectReport,
    MdEntryKind,
    MdSubscription,
    RequestMarketData,
    TradeReported,
    utc_now,
)
from fixgw.errors import MarketDataRefused, RequestError
from fixgw.ids import ClOrdIdGenerator
from fixgw.marketdata.backoff import RETRY_CEILING_S, next_backoff
from fixgw.marketdata.book import BookIntegrityError, OrderBook
from fixgw.marketdata.holds import Holds
from fixgw.results import BookLevels, StreamState

log = structlog.get_logger("fixgw.marketdata.streams")

BOOK = "book"
TRADES = "trades"
_KINDS = {BOOK: (MdEntryKind.BID, MdEntryKind.ASK), TRADES: (MdEntryKind.TRADE,)}
HALF = Decimal("0.5")
"""The mid is the best bid and ask's sum times this: exact, every digit of a venue's prices
kept (the sum and `/ 2` in the default context round to 28, which moves a price band)."""

LIVE = "live"
REQUESTED = "requested"
"""Asked for; no snapshot yet."""
BACKING_OFF = "backing_off"
"""To be asked for again once its back-off is over (`next_request_at`)."""
WAITING_FOR_LOGON = "waiting_for_logon"
"""To be asked for at the next logon."""
_NOT_LIVE = {
    REQUESTED: "its snapshot is awaited from the exchange (md.snapshot follows it)",
    BACKING_OFF: "it is stale and asked for again after a back-off (md.stale said so)",
    WAITING_FOR_LOGON: "it is asked for again at the next logon (the session is down)",
}
"""What `book` says of a subscribed book that is not live, by its state."""

TRADE_IN_SNAPSHOT = (
    "a trade in a full refresh (W): told to nobody, the last one the reference price"
)
"""A trades stream's W holds trades from before the request (`MarketData._take_last_trade`)."""
TRADE_UNDER_BOOK_REQUEST = "a trade under the book request's MDReqID"
LEVEL_UNDER_TRADES_REQUEST = "a bid or offer under the trades request's MDReqID"
"""Entries of the kind the symbol's other request asked for: FIX 4.4's venue sends each
request the MDEntryTypes it names. Passed over, so that a venue that sends every entry
under every request (its trades, say, under both) never has one told or applied twice."""

UPDATES_BEFORE_SNAPSHOT = "incremental refreshes (X) came, but no snapshot (W) to start from"
"""A book's trouble when the exchange sends updates for a request it sent no snapshot for:
they are ignored (the dialect sends a W first). A trades stream needs no snapshot: an X of
trades under its request is an answer, as a W is, and its trades are told."""


@dataclass(slots=True)
class _Stream:
    """One upstream subscription: the book or the trades of one symbol."""

    symbol: str
    what: str
    clients: set[Hashable] = field(default_factory=set)
    md_req_id: str | None = None
    live: bool = False
    """A snapshot has arrived for the current request."""
    requested_at: float = 0.0
    last_update: float = 0.0
    live_since: float = 0.0
    """When it last went live after trouble (or at its first snapshot): a refresh of a quiet
    book does not move it."""
    refreshing: bool = False
    """A live book silent for `stale_after_s`, asked for afresh (`md_req_id`) and still served
    from what it holds until that answer comes."""
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    last_trade: tuple[Decimal, float] | None = None
    """A trades stream's last trade on its current request: (price, when)."""
    retry_at: float | None = None
    """Asked for afresh, waiting out its back-off: when the request goes out."""
    backoff_s: float | None = None
    """The last wait before asking afresh (0: asked at once); None: no trouble lately."""
    passed_over: set[str] = field(default_factory=set)
    """What the venue sent on it that the gateway has no use for, each logged once."""
    joining: set[Hashable] = field(default_factory=set)
    """Clients a `subscribe` still waiting added: a refusal fails that call."""
    trouble: str | None = None
    """Why the exchange's last answer could not be used, until it goes live."""


class MarketData:
    def __init__(
        self,
        symbols: frozenset[str],
        request: Callable[[RequestMarketData], bool],
        publish: Callable[[Event], Any],
        stale_gauge: Callable[[str], Any],
        count_passed_over: Callable[[str], Any],
        *,
        upstream_depth: int,
        stale_after_s: float,
        max_depth: int,
    ) -> None:
        self._symbols = symbols
        self._request = request
        self._publish = publish
        self._stale_gauge = stale_gauge
        """symbol -> a gauge child: 1 while that book is stale."""
        self._count_passed_over = count_passed_over
        """Counts one entry passed over, by what its reader named it."""
        self.upstream_depth = upstream_depth
        self.stale_after_s = stale_after_s
        self.max_depth = max_depth
        self.books = {s: OrderBook(s) for s in symbols}
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._by_req_id: dict[str, _Stream] = {}
        self._new_req_id = ClOrdIdGenerator(prefix="md")
        self.session_up = False
        self._holds = Holds()
        self.refused_clients: Callable[[Hashable, str, str], Any] = lambda *_: None
        """Told (client, symbol, what) of each client, not a holder, that a refusal took off
        a stream it held (`on_reject`): its subscription ends with the stream."""
        self._abandoned: dict[str, _Stream] = {}
        """Requests given up that the exchange has not answered yet (nobody wants them any
        more, or they went unanswered for `stale_after_s`), by MDReqID, with the stream
        they were for, which may since have asked again under another MDReqID: never
        unsubscribed before they are granted (a venue refuses an unsubscribe of a stream it
        never started), and unsubscribed, by this MDReqID, at their first W or X."""

    def set_symbols(self, symbols: frozenset[str]) -> None:
        """New symbols get a book; a dropped one keeps serving clients already on it."""
        self._symbols = symbols
        for symbol in symbols.difference(self.books):
            self.books[symbol] = OrderBook(symbol)

    # ------------------------------------------------------------ client side

    def validate(self, symbol: str, depth: int) -> None:
        if symbol not in self._symbols:
            raise RequestError(f"unknown symbol {symbol!r}", code="unknown_symbol")
        if not 0 <= depth <= self.max_depth:
            raise RequestError(
                f"depth must be 0 (whole book) to {self.max_depth}, got {depth}",
                code="invalid_depth",
            )

    async def subscribe(
        self, client: Hashable, symbol: str, what: AbstractSet[str], within_s: float
    ) -> None:
        """Returns once every stream asked for is live as the caller resumes; raises if the
        exchange refuses one. A book broken after its first snapshot, in the same batch of
        venue messages, is asked for again and waited for again, so that a caller never
        reads a book the gateway already knows is broken. On failure the client leaves only
        the streams this call added it to."""
        added: set[str] = set()
        for kind in sorted(what):
            stream = self._streams.setdefault((symbol, kind), _Stream(symbol, kind))
            if client not in stream.clients:
                stream.clients.add(client)
                stream.joining.add(client)
                added.add(kind)
            self._ask_if_idle(stream)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        try:
            while waits := self._waiters(symbol, what):
                await asyncio.wait_for(asyncio.gather(*waits), max(0.0, deadline - loop.time()))
        except TimeoutError:
            why = self._troubles(symbol, what)
            self.unsubscribe(client, symbol, added)
            raise RequestError(
                f"no market data for {symbol} from the exchange within {within_s}s{why}",
                code="timeout",
            ) from None
        except (RequestError, asyncio.CancelledError):
            self.unsubscribe(client, symbol, added)
            raise
        finally:
            for kind in added:
                if (joined := self._streams.get((symbol, kind))) is not None:
                    joined.joining.discard(client)

    def _troubles(self, symbol: str, what: AbstractSet[str]) -> str:
        """Why the exchange's last answers for `symbol`'s streams `what` could not be used, if
        they could not: for a timeout's error."""
        said = [
            f"{kind}: {stream.trouble}"
            for kind in sorted(what)
            if (stream := self._streams.get((symbol, kind))) is not None and stream.trouble
        ]
        return f" that could be used ({'; '.join(said)})" if said else ""

    def _waiters(self, symbol: str, what: AbstractSet[str]) -> list[asyncio.Future[None]]:
        """One future per stream of `what` that is not live, done when it is."""
        waits: list[asyncio.Future[None]] = []
        for kind in sorted(what):
            stream = self._streams.setdefault((symbol, kind), _Stream(symbol, kind))
            self._ask_if_idle(stream)
            if not stream.live:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                stream.waiters.append(waiter)
                waits.append(waiter)
        return waits

    def unsubscribe(self, client: Hashable, symbol: str, what: AbstractSet[str]) -> None:
        for kind in what:
            stream = self._streams.get((symbol, kind))
            if stream is None:
                continue
            stream.clients.discard(client)
            if not stream.clients:
                self._stop(stream)

    def hold(self, holder: Hashable, symbol: str, what: AbstractSet[str]) -> None:
        """Keep streams open for the gateway itself (price checks), without waiting on them;
        one the exchange refuses is asked for again (see `check_staleness`)."""
        for kind in sorted(what):
            self._holds.add(holder, (symbol, kind))
            self._attach(holder, symbol, kind)

    def release(self, holder: Hashable, symbol: str, what: AbstractSet[str]) -> None:
        """End a `hold`."""
        for kind in what:
            self._holds.remove(holder, (symbol, kind))
        self.unsubscribe(holder, symbol, what)

    def holders(self, symbol: str, kind: str) -> frozenset[Hashable]:
        return self._holds.holders((symbol, kind))

    def _attach(self, holder: Hashable, symbol: str, kind: str) -> None:
        stream = self._streams.setdefault((symbol, kind), _Stream(symbol, kind))
        stream.clients.add(holder)
        self._ask_if_idle(stream)

    def reference_price(self, symbol: str, now: float | None = None) -> Decimal | None:
        """The last trade on a live trades stream if it is at most `stale_after_s` old (0:
        any age), else the mid of a live book (exact), else None."""
        trades = self._streams.get((symbol, TRADES))
        if trades is not None and trades.live and trades.last_trade is not None:
            price, at = trades.last_trade
            age = (time.monotonic() if now is None else now) - at
            if self.stale_after_s <= 0 or age <= self.stale_after_s:
                return price
        stream = self._streams.get((symbol, BOOK))
        if stream is None or not stream.live:
            return None
        bids, asks = self.books[symbol].levels(1)
        if not bids or not asks:
            return None
        return EXACT.multiply(EXACT.add(bids[0][0], asks[0][0]), HALF)

    def client_gone(self, client: Hashable) -> None:
        for (symbol, kind), stream in list(self._streams.items()):
            if client in stream.clients:
                self.unsubscribe(client, symbol, {kind})

    def subscriptions_of(self, client: Hashable) -> list[tuple[str, str]]:
        return [key for key, stream in self._streams.items() if client in stream.clients]

    def book_levels(
        self, symbol: str, depth: int, to_subscribe: str = "md_subscribe to it first"
    ) -> BookLevels:
        """`to_subscribe`: what the error says to do when nobody holds the book."""
        self.validate(symbol, depth)
        stream = self._streams.get((symbol, BOOK))
        if stream is None:
            raise RequestError(f"no live book for {symbol}: {to_subscribe}", code="not_subscribed")
        if not stream.live:
            raise RequestError(
                f"no live book for {symbol} now: subscribed, and {_NOT_LIVE[self._state(stream)]}",
                code="not_subscribed",
            )
        bids, asks = self.books[symbol].levels(depth)
        return BookLevels(symbol=symbol, bids=bids, asks=asks)

    def status(self) -> dict[str, StreamState]:
        """Every stream, with the held streams the exchange refused that wait to be asked
        for again."""
        now, wall = time.monotonic(), utc_now()
        streams = {
            f"{s}:{k}": StreamState(
                clients=len(st.clients),
                live=st.live,
                md_req_id=st.md_req_id,
                state=self._state(st),
                next_request_at=_wall_time(st.retry_at, now, wall) if self.session_up else None,
            )
            for (s, k), st in self._streams.items()
        }
        for (symbol, kind), due in self._holds.waiting().items():
            if (symbol, kind) in self._streams:
                continue
            streams[f"{symbol}:{kind}"] = StreamState(
                clients=len(self._holds.holders((symbol, kind))),
                live=False,
                md_req_id=None,
                state=BACKING_OFF if self.session_up else WAITING_FOR_LOGON,
                next_request_at=_wall_time(due, now, wall) if self.session_up else None,
            )
        return streams

    def _state(self, stream: _Stream) -> str:
        if stream.live:
            return LIVE
        if not self.session_up:
            return WAITING_FOR_LOGON
        return REQUESTED if stream.retry_at is None else BACKING_OFF

    # ------------------------------------------------------------ upstream

    def _ask_if_idle(self, stream: _Stream) -> None:
        """Ask for a stream that has no request, unless it is waiting out a back-off."""
        if stream.md_req_id is None and stream.retry_at is None:
            self._start(stream)

    def _start(self, stream: _Stream) -> None:
        stream.live = False
        stream.refreshing = False
        stream.last_trade = None
        stream.retry_at = None
        self._ask(stream, time.monotonic())

    def _ask(self, stream: _Stream, now: float) -> None:
        stream.md_req_id = md_req_id = self._new_req_id()
        stream.requested_at = now
        self._by_req_id[md_req_id] = stream
        if self.session_up:
            self._send(md_req_id, stream, MdSubscription.SUBSCRIBE)

    def _refresh(self, stream: _Stream, now: float) -> None:
        """A live book silent for `stale_after_s`: a venue sends incrementals only on change,
        so silence is no trouble, but a feed that died without a word looks the same. Its
        request is ended and the book asked for afresh at once, as after trouble, but it stays
        live and served (and the reference price) until the answer, which replaces it; what
        the old request still had on the way is dropped, the answer holding it. Not answered
        usably within `stale_after_s`: trouble (`check_staleness`, `on_snapshot`)."""
        log.info(
            "market data quiet; asking for a fresh snapshot",
            symbol=stream.symbol,
            stream=stream.what,
            quiet_for_s=round(now - stream.last_update, 3),
        )
        self._end_request(stream)
        stream.refreshing = True
        self._ask(stream, now)

    def _stop(self, stream: _Stream) -> None:
        self._end_request(stream)
        self._discard(stream)

    def _end_request(self, stream: _Stream, answered: bool = False) -> None:
        """Unsubscribe a granted request (live, or `answered`: the exchange sent something
        for it); leave one not yet answered to be unsubscribed if the exchange grants it
        after all."""
        if stream.md_req_id is None:
            return
        self._by_req_id.pop(stream.md_req_id, None)
        granted = stream.live and not stream.refreshing
        stream.refreshing = False
        if granted or answered:
            if self.session_up:
                self._send(stream.md_req_id, stream, MdSubscription.UNSUBSCRIBE)
        elif self.session_up:
            self._abandoned[stream.md_req_id] = stream

    def _discard(self, stream: _Stream) -> None:
        """Gone, with what it knew: its book, or its last trade. A book nobody keeps is no
        stale book: its gauge goes back to 0."""
        if stream.what == BOOK:
            self.books[stream.symbol].clear()
            self._stale_gauge(stream.symbol).set(0)
        stream.last_trade = None
        if self._streams.get((stream.symbol, stream.what)) is stream:
            del self._streams[(stream.symbol, stream.what)]

    def _send(self, md_req_id: str, stream: _Stream, subscription: MdSubscription) -> None:
        """`md_req_id` named, not the stream's: an unsubscribe of a request given up goes
        out when the stream has asked again under another, or is waiting to."""
        self._request(
            RequestMarketData(
                ts=utc_now(),
                md_req_id=md_req_id,
                symbol=stream.symbol,
                subscription=subscription,
                depth=self.upstream_depth,
                kinds=_KINDS[stream.what],
            )
        )

    def _restart(
        self,
        stream: _Stream,
        reason: str,
        *,
        answered: bool = False,
        now: float | None = None,
        lost: bool = False,
    ) -> None:
        """Announce the stream as stale and ask for it afresh under a new MDReqID, at once or
        after the back-off. `answered`: the exchange sent something for the request being
        ended, so it has started it and is told to stop. `lost`: the exchange never got the
        request, asked for again at once unless the stream is in trouble already."""
        now = time.monotonic() if now is None else now
        wait = self._wait_to_ask_again(stream, now, lost)
        log.warning(
            "market data stale; asking again",
            symbol=stream.symbol,
            stream=stream.what,
            reason=reason,
            after_s=wait,
        )
        self._end_request(stream, answered)
        stream.trouble = reason
        if stream.what == BOOK:
            self._stale_gauge(stream.symbol).set(1)
        self._publish(
            BookStale(ts=utc_now(), symbol=stream.symbol, reason=reason, what=stream.what)
        )
        if wait > 0:
            stream.md_req_id = None
            stream.live = False
            stream.last_trade = None
            stream.retry_at = now + wait
        else:
            self._start(stream)

    @staticmethod
    def _wait_to_ask_again(stream: _Stream, now: float, lost: bool = False) -> float:
        """0 for a live stream's first trouble since it ran a minute live, or a `lost`
        request's first; else the next back-off. The minute runs from when it went live after
        its last trouble: a quiet book's refreshes, answered, are no trouble and do not restart
        it, while a venue whose books break right after each snapshot never gets there."""
        if stream.live and now - stream.live_since >= RETRY_CEILING_S:
            stream.backoff_s = None
        if stream.backoff_s is None:
            stream.backoff_s = 0.0
            if stream.live or lost:
                return 0.0
        stream.backoff_s = next_backoff(stream.backoff_s)
        return stream.backoff_s

    def ask_again(self, md_req_id: str, reason: str) -> bool:
        """A message of a stream's the gateway could not read: its book cannot be trusted,
        so it is asked for afresh (see `_restart`). False if no current stream has that
        MDReqID."""
        stream = self._by_req_id.get(md_req_id)
        if stream is None:
            return False
        self._restart(stream, reason, answered=True)
        return True

    def not_delivered(self, md_req_id: str | None) -> None:
        """A request of ours the exchange asked for again, gap filled rather than resent: it
        never got it, so its stream is asked for afresh (see `_restart`), and a request given
        up is never unsubscribed."""
        if md_req_id is None or self._abandoned.pop(md_req_id, None) is not None:
            return
        stream = self._by_req_id.get(md_req_id)
        if stream is not None and (not stream.live or stream.refreshing):
            self._restart(stream, "the exchange never got the request (gap filled)", lost=True)
            self._abandoned.pop(md_req_id, None)

    def messages_skipped(self, reason: str) -> None:
        """The exchange skipped messages in the session, never to deliver them: any may have
        changed a book, so every live book is announced stale and asked for afresh (see
        `_restart`), as after a session drop. Any may have carried trades, lost for good:
        the clients of every live trades stream are told, and it carries on (a fresh
        request would bring none of them back)."""
        for stream in list(self._streams.values()):
            if not stream.live:
                continue
            if stream.what == BOOK:
                self._restart(stream, reason, answered=True)
            else:
                self._publish(
                    BookStale(ts=utc_now(), symbol=stream.symbol, reason=reason, what=TRADES)
                )

    def on_session_up(self) -> None:
        self.session_up = True
        for stream in list(self._streams.values()):
            self._start(stream)
        for key in self._holds.due():
            self._reattach(key)

    def on_session_down(self) -> None:
        self.session_up = False
        self._abandoned.clear()
        for stream in self._streams.values():
            if stream.md_req_id is not None:
                self._by_req_id.pop(stream.md_req_id, None)
            stream.md_req_id = None
            stream.last_trade = None
            stream.refreshing = False
            was_live, stream.live = stream.live, False
            if not was_live:
                continue
            if stream.what == BOOK:
                self._stale_gauge(stream.symbol).set(1)
            self._publish(
                BookStale(
                    ts=utc_now(),
                    symbol=stream.symbol,
                    reason="exchange session down",
                    what=stream.what,
                )
            )

    def check_staleness(self, now: float | None = None) -> None:
        """The periodic tick: ask afresh for books silent too long and for trades asked for
        and not answered as long (a live trades stream may be silent: nothing trades), and
        again for streams whose back-off is over: held streams the exchange refused, and
        streams asked for afresh."""
        if not self.session_up:
            return
        now = time.monotonic() if now is None else now
        for key in self._holds.due(now):
            self._reattach(key)
        for stream in list(self._streams.values()):
            if stream.retry_at is not None:
                if now >= stream.retry_at:
                    self._start(stream)
                continue
            if self.stale_after_s <= 0 or (stream.live and stream.what != BOOK):
                continue
            if stream.live and not stream.refreshing:
                if now - stream.last_update > self.stale_after_s:
                    self._refresh(stream, now)
            elif stream.refreshing and now - stream.requested_at > self.stale_after_s:
                why = (
                    f"no update for {self.stale_after_s:g}s, and no answer to the request for "
                    f"a fresh snapshot for {self.stale_after_s:g}s"
                )
                self._restart(stream, why, now=now)
            elif not stream.live and now - stream.requested_at > self.stale_after_s:
                why = f"no answer to the request for {self.stale_after_s:g}s"
                self._restart(stream, why, now=now)

    # ------------------------------------------------------------ reports

    def _ended_if_abandoned(self, md_req_id: str | None) -> bool:
        """Whether `md_req_id` is a request given up before the exchange answered it: its
        first answer, a W or an X, has it unsubscribed."""
        abandoned = self._abandoned.pop(md_req_id or "", None)
        if abandoned is None or md_req_id is None:
            return False
        if self.session_up:
            self._send(md_req_id, abandoned, MdSubscription.UNSUBSCRIBE)
        return True

    def on_snapshot(self, report: BookSnapshotReport) -> None:
        if self._ended_if_abandoned(report.md_req_id):
            return
        stream = self._by_req_id.get(report.md_req_id or "")
        if stream is None:
            log.debug("snapshot for a request no longer active", md_req_id=report.md_req_id)
            return
        self._note_passed_over(stream, report.passed_over)
        if stream.what == BOOK:
            book = self.books[stream.symbol]
            try:
                book.apply_snapshot(report.bids, report.asks)
            except BookIntegrityError as exc:
                self._restart(stream, str(exc), answered=True)
                return
            bids, asks = book.levels()  # best first, one level a price, whatever the W's order
            self._publish(BookSnapshot(ts=report.ts, symbol=stream.symbol, bids=bids, asks=asks))
            self._note_passed_over(stream, (TRADE_UNDER_BOOK_REQUEST,) * len(report.trades))
        else:
            levels = len(report.bids) + len(report.asks)
            self._note_passed_over(stream, (LEVEL_UNDER_TRADES_REQUEST,) * levels)
            if not self._take_last_trade(stream, report):
                return
        self._went_live(stream)

    def _take_last_trade(self, stream: _Stream, report: BookSnapshotReport) -> bool:
        """A trades stream's full refresh: the trades it holds happened before the request
        (OKCoin's W of trades; each re-request after a drop or a broken book repeats them),
        so none is told again as `md.trade`; the last one listed is the reference price. A
        trade at a price or size of 0 or below is refused as in an incremental refresh:
        False, the stream asked for afresh."""
        for trade in report.trades:
            if trade.price <= 0 or trade.size <= 0:
                broken = f"{stream.symbol}: trade at {trade.price} with size {trade.size}"
                self._restart(stream, broken, answered=True)
                return False
        if report.trades:
            stream.last_trade = (report.trades[-1].price, time.monotonic())
            self._note_passed_over(stream, (TRADE_IN_SNAPSHOT,) * len(report.trades))
        return True

    def _went_live(self, stream: _Stream) -> None:
        if not stream.live:
            stream.live_since = time.monotonic()
        stream.live = True
        stream.refreshing = False
        stream.trouble = None
        self._holds.granted((stream.symbol, stream.what))
        if stream.what == BOOK:
            self._stale_gauge(stream.symbol).set(0)
        stream.last_update = time.monotonic()
        for waiter in stream.waiters:
            if not waiter.done():
                waiter.set_result(None)
        stream.waiters.clear()

    def _note_passed_over(self, stream: _Stream, passed_over: tuple[str, ...]) -> None:
        """Counted by entry, logged once per kind and stream: a venue may send them in every
        message."""
        for what in passed_over:
            self._count_passed_over(what)
            if what not in stream.passed_over:
                stream.passed_over.add(what)
                log.info(
                    "market data the gateway has no use for, passed over",
                    symbol=stream.symbol,
                    stream=stream.what,
                    passed_over=what,
                )

    def on_update(self, report: BookUpdateReport) -> None:
        if self._ended_if_abandoned(report.md_req_id):
            return
        now = time.monotonic()
        named = self._by_req_id.get(report.md_req_id or "")
        if named is not None:
            self._note_passed_over(named, report.passed_over)
        for symbol, trades in report.trades.items():
            stream = self._streams.get((symbol, TRADES))
            if stream is None or stream.md_req_id != report.md_req_id:
                if named is not None and named.symbol == symbol:
                    self._note_passed_over(named, (TRADE_UNDER_BOOK_REQUEST,) * len(trades))
                continue
            if not stream.live:
                self._went_live(stream)  # its trades need nothing before them: the answer
            stream.last_update = now
            for trade in trades:
                if trade.price <= 0 or trade.size <= 0:
                    broken = f"{symbol}: trade at {trade.price} with size {trade.size}"
                    self._restart(stream, broken, answered=True, now=now)
                    break
                stream.last_trade = (trade.price, now)
                self._publish(
                    TradeReported(
                        ts=report.ts,
                        symbol=symbol,
                        price=trade.price,
                        size=trade.size,
                        aggressor=trade.aggressor,
                    )
                )
        for symbol, changes in report.levels.items():
            stream = self._streams.get((symbol, BOOK))
            if stream is None or stream.md_req_id != report.md_req_id:
                if named is not None and named.symbol == symbol:
                    self._note_passed_over(named, (LEVEL_UNDER_TRADES_REQUEST,) * len(changes))
                continue
            if not stream.live or stream.refreshing:
                stream.trouble = UPDATES_BEFORE_SNAPSHOT
                continue
            stream.last_update = now
            try:
                applied = self.books[symbol].apply(changes)
            except BookIntegrityError as exc:
                self._restart(stream, str(exc), answered=True, now=now)
                continue
            if applied:
                self._publish(BookDelta(ts=report.ts, symbol=symbol, changes=applied))

    def on_reject(self, report: MarketDataRejectReport) -> None:
        """One refusal per subscription: clients waiting on this stream leave the other
        stream of the same symbol they were waiting on too (their `md_subscribe` fails as a
        whole), so its refusal, if it comes, ends a request nobody wants, quietly. Clients
        that held it are told (`refused_clients`) after the event."""
        if self._abandoned.pop(report.md_req_id, None) is not None:
            return
        stream = self._by_req_id.pop(report.md_req_id, None)
        if stream is None:
            log.info(
                "market data reject for no request of ours passed over",
                md_req_id=report.md_req_id,
                reason=report.reason,
                text=report.text,
            )
            return
        was_live = stream.live
        stream.md_req_id = None  # over at the exchange: a client leaving now sends no unsubscribe
        stream.live = False
        stream.refreshing = False
        self._publish(
            MarketDataRejected(
                ts=report.ts,
                symbol=stream.symbol,
                what=stream.what,
                reason=report.reason,
                text=report.text,
            )
        )
        held = self._holds.holders((stream.symbol, stream.what))
        for client in stream.clients - stream.joining - held:
            self.refused_clients(client, stream.symbol, stream.what)
        if not was_live:
            self._leave_siblings(stream)
        error = MarketDataRefused(
            f"the exchange refused market data for {stream.symbol}: "
            f"{report.reason} ({report.text})",
            reason=report.reason,
        )
        for waiter in stream.waiters:
            if not waiter.done():
                waiter.set_exception(error)
        stream.waiters.clear()
        self._discard(stream)
        key = (stream.symbol, stream.what)
        if key in self._holds:
            log.warning(
                "held market data refused; asking again later",
                symbol=stream.symbol,
                stream=stream.what,
                retry_in_s=self._holds.refused(key, time.monotonic()),
            )

    def _leave_siblings(self, refused: _Stream) -> None:
        waiting = refused.clients - self._holds.holders((refused.symbol, refused.what))
        for kind in _KINDS:
            sibling = self._streams.get((refused.symbol, kind))
            if sibling is None or sibling is refused or sibling.live:
                continue
            sibling.clients -= waiting
            if not sibling.clients:
                self._stop(sibling)

    def _reattach(self, key: tuple[str, str]) -> None:
        symbol, kind = key
        for holder in self._holds.holders(key):
            self._attach(holder, symbol, kind)


def _wall_time(due: float | None, now: float, wall: datetime) -> datetime | None:
    """Monotonic `due` as a UTC time, given that monotonic `now` is `wall`."""
    return None if due is None else wall + timedelta(seconds=max(0.0, due - now))
