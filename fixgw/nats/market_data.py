"""Market data for `nats.market_data` on plain subjects, and what a consumer is told when
some of it did not go out.

The lines are the bus's (`md.snapshot`, `md.delta`, `md.trade`, `md.stale`,
`md.rejected`), queued on the gateway's loop and published on the gateway's own
connection. A consumer cannot see that it missed one (a gap in `seq` is normal), so the
gateway tells it: whenever a subject's lines were dropped (no connection to the broker, the
queue's bound, a line the broker refused), the next line on the subject restores the truth,
before any later delta:

- a book: a fresh `md.snapshot` of the gateway's book (if live; else `md.stale`: the
  stream's own snapshot follows once it is live), or `md.stale` if the snapshot is larger
  than the broker takes;
- trades: `md.stale` (`what: trades`): those missed do not come back.

Each new connection starts with a snapshot of every book (nothing tells whether the lines
the last connection had taken went out, and the first connection gives a consumer that
listened from the start its first book), and `md.stale` of the trades that missed some.
While connected and nothing was dropped, a line costs what it did: one flag looked at.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

import structlog
from nats.aio.client import Client as NatsConnection
from prometheus_client import Counter

from fixgw.bus import market_data_line
from fixgw.domain import BookSnapshot, BookStale, utc_now
from fixgw.errors import RequestError
from fixgw.results import BookLevels

log = structlog.get_logger("fixgw.nats")

MARKET_DATA_QUEUED_MAX = 10_000
"""Market-data lines waiting to go out; past it, those waiting are dropped, and each of
their subjects starts again from a fresh snapshot (or `md.stale`)."""
REFUSED_LOG_INTERVAL_S = 60.0
"""A subject whose lines the broker refuses is logged at once, then at most this often."""

BOOK, TRADES = "book", "trades"


class MarketDataSource(Protocol):
    """`Gateway`, as the market-data publisher needs it."""

    @property
    def last_seq(self) -> int: ...

    def book(self, symbol: str, depth: int) -> BookLevels: ...

    def subscribed_book(self, symbol: str, depth: int) -> BookLevels: ...


class MarketDataPublisher:
    """The lines of the `subjects` (subject -> (symbol, `book` or `trades`)), queued by
    `queue` (the bus's subscribers), sent by `send` while a connection is `resume`d."""

    def __init__(
        self,
        gateway: MarketDataSource,
        subjects: dict[str, tuple[str, str]],
        dropped: Counter,
    ) -> None:
        self._gateway = gateway
        self._subjects = subjects
        self._dropped = dropped
        self._queue: deque[tuple[str, bytes]] = deque()
        self._ready = asyncio.Event()
        self._open = False
        """A connection takes lines, and none waits to be told a gap: `queue`'s fast path."""
        self._gaps: dict[str, str] = {}
        """Subjects whose consumers missed lines, and why: told at the next connection."""
        self._max_payload = 0
        self._refused_said: dict[str, tuple[float, int]] = {}

    # ------------------------------------------------------------ the bus's side

    def queue(self, subject: str, line: bytes) -> None:
        if not self._open:
            self._gaps.setdefault(subject, "no connection to the broker")
            self._dropped.inc()
            return
        if len(self._queue) >= MARKET_DATA_QUEUED_MAX:
            self._overflow(subject, line)
            return
        self._queue.append((subject, line))
        self._ready.set()

    def _overflow(self, subject: str, line: bytes) -> None:
        """What waits is dropped; each subject of it (and this line's) starts again from the
        gateway's state now, which this line is part of already for a live book."""
        why = f"more than {MARKET_DATA_QUEUED_MAX} market-data lines waited for the broker"
        dropped = {s for s, _ in self._queue}
        self._dropped.inc(len(self._queue))
        self._queue.clear()
        dropped.add(subject)
        log.warning("nats market data dropped", reason=why, subjects=sorted(dropped))
        covered = False
        for s in sorted(dropped):
            covered |= self._tell(s, why) and s == subject
        if covered:
            self._dropped.inc()
        else:
            self._queue.append((subject, line))
        self._ready.set()

    # ------------------------------------------------------------ the connection's side

    def resume(self, nc: NatsConnection) -> None:
        """A connection starts: every book's snapshot, each gap told, then lines flow."""
        self._max_payload = nc.max_payload
        gaps, self._gaps = self._gaps, {}
        for subject, (_, kind) in self._subjects.items():
            if kind == BOOK:
                self._tell(subject, gaps.get(subject))
            elif subject in gaps:
                self._tell(subject, gaps[subject])
        self._open = True
        self._ready.set()

    def pause(self, why: str) -> None:
        """The connection ended: what waited is dropped, and whether what it took went out
        is unknown; every subject is told at the next connection."""
        self._open = False
        self._dropped.inc(len(self._queue))
        self._queue.clear()
        for subject in self._subjects:
            self._gaps.setdefault(subject, why)

    async def send(self, nc: NatsConnection) -> None:
        queue = self._queue
        while True:
            await self._ready.wait()
            self._ready.clear()
            while queue:
                subject, line = queue.popleft()
                try:
                    await nc.publish(subject, line.rstrip(b"\n"))
                except Exception as exc:
                    if not nc.is_connected:
                        return  # the connection ended: `pause` takes it from here
                    self._refused(subject, line, exc)

    def _refused(self, subject: str, line: bytes, exc: Exception) -> None:
        """A line the broker would not take (larger than its max_payload, say): logged (at
        once, then at most once a minute a subject), and the subject's consumers told
        `md.stale` before anything else of it; the other subjects go on."""
        self._dropped.inc()
        error = str(exc) or type(exc).__name__
        now = time.monotonic()
        said_at, since = self._refused_said.get(subject, (-REFUSED_LOG_INTERVAL_S, 0))
        if now - said_at >= REFUSED_LOG_INTERVAL_S:
            log.error(
                "nats market data line refused",
                subject=subject,
                bytes=len(line),
                max_payload=self._max_payload,
                error=error,
                refused_since_last_said=since,
            )
            self._refused_said[subject] = (now, 0)
        else:
            self._refused_said[subject] = (said_at, since + 1)
        symbol, kind = self._subjects[subject]
        why = f"a line of {len(line)} bytes could not be published: {error}"
        self._queue.appendleft((subject, self._stale(symbol, kind, why)))

    # ------------------------------------------------------------ telling a gap

    def _tell(self, subject: str, why: str | None) -> bool:
        """Queue what restores the truth on `subject`: True if it is a snapshot of the book
        as it is now (a line of it just published is in it)."""
        symbol, kind = self._subjects[subject]
        if kind == TRADES:
            assert why is not None
            self._queue.append((subject, self._stale(symbol, TRADES, f"trades missed: {why}")))
            return False
        try:
            self._gateway.book(symbol, 1)  # live?
        except RequestError:
            if why is not None:
                stale = f"updates missed ({why}), and the book is not live: its snapshot follows"
                self._queue.append((subject, self._stale(symbol, BOOK, stale)))
            return False
        levels = self._gateway.subscribed_book(symbol, 0)
        event = BookSnapshot(ts=utc_now(), symbol=symbol, bids=levels.bids, asks=levels.asks)
        line = market_data_line(self._gateway.last_seq, event)
        if self._max_payload and len(line) - 1 > self._max_payload:
            too_large = (
                f"the book's snapshot ({len(line) - 1} bytes) is larger than the broker's "
                f"max_payload ({self._max_payload} bytes)"
            )
            if why is not None:
                too_large = f"updates missed ({why}), and {too_large}"
            log.error("nats market data snapshot too large", subject=subject, reason=too_large)
            self._queue.append((subject, self._stale(symbol, BOOK, too_large)))
            return True
        self._queue.append((subject, line))
        return True

    def _stale(self, symbol: str, what: str, reason: str) -> bytes:
        event = BookStale(ts=utc_now(), symbol=symbol, reason=reason, what=what)
        return market_data_line(self._gateway.last_seq, event)
