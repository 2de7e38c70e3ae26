"""Journaled events to the JetStream stream, in order, each once, never on the order path.

The publisher reads what the journal has written (`tail.JournalTail`), from the last seq the
stream acknowledged (`cursor.Cursor`) on, and publishes each line on its subject with
`Nats-Msg-Id: <prefix>.<gateway>:<seq>`. Up to `window` events are in flight on one
connection: the broker stores a connection's messages in the order they arrive, so
pipelining keeps the order. The cursor moves over each acknowledged event, in seq order.

On any failure (an event not acknowledged in time, one the stream refused, the connection
gone) `run` raises and the transport starts it again, after a pause, from the first event
not acknowledged: those published again that the stream already holds it drops as
duplicates (by message id, within its duplicate window). Acknowledgements of an earlier
run are ignored. The order path never waits for any of it: a broker that is away only makes
the backlog grow, read back from the journal file when it returns.

Order is kept unless the broker refuses or loses one message and stores a later one from
the same connection (a clustered stream whose leader changes mid-burst can): the event
published again then lands after it. docs/nats.md says so.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import datetime
from typing import NamedTuple, Protocol

import structlog

from fixgw.config import NatsConfig
from fixgw.nats.cursor import Cursor, cursor_path
from fixgw.nats.legacy_ids import LegacyIds, legacy_ids_path
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.subjects import Subjects
from fixgw.nats.tail import JournalTail, TailedJournal

log = structlog.get_logger("fixgw.nats")

WRITES_KEPT = 65_536
"""Journal writes remembered for the lag (one per turn of the loop that wrote); a line
written before them counts from its event's own time."""
CURSOR_EVERY_S = 0.1
"""The cursor is written at most this often (a file replaced whole: four system calls), and
this long after the stream has acknowledged all there is, if it was written less than this
ago. Writing it each time the stream caught up cost the order path, one order at a time."""


class PublishFailed(Exception):
    """Publishing stopped; it starts again from the first event not acknowledged."""


class Link(Protocol):
    """The broker, as the publisher needs it (`transport.NatsTransport` is the real one; a
    unit test brings its own)."""

    async def publish(self, subject: str, data: bytes, msg_id: str, reply_to: str) -> None:
        """Send one message; its acknowledgement comes to `reply_to`, for
        `EventPublisher.acknowledged`."""
        ...


class Ack(NamedTuple):
    duplicate: bool = False
    error: str | None = None
    """Why the stream refused the event."""


class _InFlight:
    __slots__ = ("ack", "deadline", "published_before", "seq", "ts", "written_at")

    def __init__(
        self,
        seq: int,
        ts: str | None,
        written_at: float | None,
        deadline: float,
        published_before: bool,
    ) -> None:
        self.seq = seq
        self.published_before = published_before
        """Published before (or held by the stream): a duplicate of it is expected."""
        self.ts = ts
        self.written_at = written_at
        """When the journal wrote it (wall clock), if this process saw it written."""
        self.deadline = deadline
        self.ack: Ack | None = None

    def journal_time(self) -> float | None:
        if self.written_at is not None:
            return self.written_at
        return None if self.ts is None else datetime.fromisoformat(self.ts).timestamp()


class EventPublisher:
    def __init__(
        self,
        tail: JournalTail,
        cursor: Cursor,
        subjects: Subjects,
        metrics: NatsMetrics,
        *,
        window: int,
        ack_timeout_s: float,
        reply_prefix: str,
        legacy_ids: LegacyIds,
    ) -> None:
        self._tail = tail
        self.cursor = cursor
        self._legacy_ids = legacy_ids
        self._subjects = subjects
        self._metrics = metrics
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.reply_prefix = reply_prefix
        """Acknowledgements come to `<reply_prefix>.<run>.<seq>`."""
        self._published_through = cursor.seq
        """The highest seq this gateway is known to have published (or the stream to hold):
        a duplicate above it is another journal's event under this name."""
        self._unexpected_run = 0
        """Unexpected duplicates in a row: logged when a run of them starts."""
        self.last_error: str | None = None
        """Events dropped as duplicates that this gateway never published."""
        self._run = 0
        self._in_flight: deque[_InFlight] = deque()
        self._by_seq: dict[int, _InFlight] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        """Set while the stream has acknowledged everything written."""
        self._writes: deque[tuple[int, float]] = deque(maxlen=WRITES_KEPT)
        """(where the journal's written lines ended, when): each line's journal time."""
        self._cursor_saved_at = 0.0
        self._cursor_timer: asyncio.TimerHandle | None = None
        self.lag_s: float | None = None
        self.published = 0
        self.duplicates = 0
        tail.seek(cursor.seq)

    @property
    def acked_seq(self) -> int:
        return self.cursor.seq

    @property
    def backlog(self) -> int:
        """The journal's events after the cursor: those waiting to be published, and those
        published and not yet acknowledged (seqs skip; events are counted)."""
        return len(self._in_flight) + self._tail.unread()

    def stream_holds_through(self, seq: int, legacy_ids: bool) -> None:
        """The stream holds an event of this gateway with seq `seq` (its last, found at the
        start of a run): those up to it may come back as duplicates, as expected.
        `legacy_ids`: it was stored under the id of before the prefix was in it, and so
        may those before it be: they are published again under that id, at this start and
        every later one (`legacy_ids.LegacyIds`, kept before anything goes under a new id)."""
        self._published_through = max(self._published_through, seq)
        if legacy_ids:
            try:
                self._legacy_ids.keep(seq)
            except OSError as exc:
                raise PublishFailed(
                    f"the old-id mark {self._legacy_ids.path} cannot be written ({exc}); "
                    "nothing is published under a new id until it is"
                ) from exc

    def skip_to(self, seq: int) -> None:
        """Start after `seq` (the stream's last event of this gateway, when there is no
        cursor to go by, or when the stream is ahead of the journal)."""
        if seq > self.cursor.seq:
            self.cursor.seq = seq
            self.cursor.save()
            self._in_flight.clear()
            self._by_seq.clear()
            self._tail.seek(seq)

    def written(self, end: int) -> None:
        """The journal wrote lines up to byte `end` (its `on_written`)."""
        self._writes.append((end, time.time()))
        self.wake()

    def _written_at(self, end: int) -> float | None:
        """When the line ending at `end` was written, if this process saw it."""
        writes = self._writes
        while writes and writes[0][0] < end:
            writes.popleft()
        return writes[0][1] if writes else None

    def wake(self) -> None:
        """Something to do: lines written to the journal, or an acknowledgement."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def caught_up(self) -> None:
        """Until the stream has acknowledged every line written to the journal so far."""
        while self._tail.behind() or self._in_flight or not self._idle.is_set():
            self._idle.clear()
            self.wake()
            await self._idle.wait()

    def acknowledged(self, run: int, seq: int, ack: Ack) -> None:
        """The stream's answer to an event published in run `run`."""
        if run != self._run:
            return  # an earlier run's: that event is published again, or already counted
        entry = self._by_seq.get(seq)
        if entry is not None and entry.ack is None:
            entry.ack = ack
            self.wake()

    async def run(self, link: Link) -> None:
        """Publish from the first event not acknowledged until something fails (raises
        PublishFailed, or what the link raised); cancelled when the connection ends."""
        self._run += 1
        run = self._run
        self._in_flight.clear()
        self._by_seq.clear()
        self._tail.seek(self.cursor.seq)
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._settle()
                room = self.window - len(self._in_flight)
                while room > 0:
                    lines = self._tail.read(room)
                    if not lines:
                        break
                    self._idle.clear()
                    room -= len(lines)
                    for line in lines:
                        entry = _InFlight(
                            line.seq,
                            line.ts,
                            self._written_at(line.end),
                            time.monotonic() + self.ack_timeout_s,
                            line.seq <= self._published_through,
                        )
                        self._published_through = max(self._published_through, line.seq)
                        self._in_flight.append(entry)
                        self._by_seq[line.seq] = entry
                        await link.publish(
                            self._subjects.event(line.type, line.symbol),
                            line.data,
                            self._message_id(line.seq),
                            f"{self.reply_prefix}.{run}.{line.seq}",
                        )
                self._settle()
                if not self._in_flight:
                    self._save_cursor_soon(loop)
                    if not self._tail.behind():
                        self._idle.set()
                self._waiter = loop.create_future()
                head = self._in_flight[0] if self._in_flight else None
                if (head is not None and head.ack is not None) or (
                    self._tail.behind() and len(self._in_flight) < self.window
                ):
                    continue  # woken while publishing: nothing to wait for
                timer = (
                    loop.call_at(
                        loop.time() + max(0.0, head.deadline - time.monotonic()), self.wake
                    )
                    if head is not None
                    else None
                )
                try:
                    await self._waiter
                finally:
                    if timer is not None:
                        timer.cancel()
        finally:
            self._waiter = None
            if self._cursor_timer is not None:
                self._cursor_timer.cancel()
                self._cursor_timer = None
            self.cursor.save()

    def _message_id(self, seq: int) -> str:
        if seq <= self._legacy_ids.through:
            return self._subjects.legacy_message_id(seq)
        return self._subjects.message_id(seq)

    def _settle(self) -> None:
        """Move the cursor over the acknowledged events at the head, in order; raise on the
        first refused or overdue one."""
        in_flight = self._in_flight
        last: _InFlight | None = None
        refused: PublishFailed | None = None
        stored = duplicates = 0
        while in_flight and in_flight[0].ack is not None:
            ack = in_flight[0].ack
            assert ack is not None
            if ack.error is not None:
                refused = PublishFailed(f"the stream refused seq {in_flight[0].seq}: {ack.error}")
                break
            entry = in_flight.popleft()
            del self._by_seq[entry.seq]
            if ack.duplicate:
                duplicates += 1
                if not entry.published_before:
                    self._unexpected_duplicate(entry.seq)
            else:
                stored += 1
                self._unexpected_run = 0
            last = entry
        if last is not None:
            self.cursor.seq = last.seq
            self.published += stored
            self.duplicates += duplicates
            if stored:
                self._metrics.stored.inc(stored)
            if duplicates:
                self._metrics.duplicate.inc(duplicates)
            journal_time = last.journal_time()
            if journal_time is not None:
                self.lag_s = max(0.0, time.time() - journal_time)
                self._metrics.publish_lag.set(self.lag_s)
            self._save_cursor_if_due()
        if refused is not None:
            raise refused
        if in_flight and in_flight[0].deadline <= time.monotonic():
            raise PublishFailed(
                f"no acknowledgement for seq {in_flight[0].seq} within {self.ack_timeout_s:g} s"
            )

    def _unexpected_duplicate(self, seq: int) -> None:
        """The stream already holds an id this gateway never published: another journal
        published under this name (docs/nats.md: names are identities). Logged when a run
        of them starts; in `last_error`."""
        self._unexpected_run += 1
        self.last_error = (
            f"the stream dropped seq {seq} of gateway {self._subjects.gateway} as a duplicate, "
            "though this journal never published it: is another journal publishing under "
            "this name?"
        )
        if self._unexpected_run == 1:
            log.error(
                "nats stream dropped an event this journal never published as a duplicate",
                seq=seq,
                message_id=self._message_id(seq),
            )

    def _save_cursor_if_due(self) -> bool:
        now = time.monotonic()
        if now - self._cursor_saved_at < CURSOR_EVERY_S:
            return False
        self.cursor.save()
        self._cursor_saved_at = now
        return True

    def _save_cursor_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Caught up: the cursor now if it was last written long enough ago, else once that
        is so (at most one timer waits)."""
        if self._cursor_timer is not None or self._save_cursor_if_due():
            return

        def save() -> None:
            self._cursor_timer = None
            self.cursor.save()
            self._cursor_saved_at = time.monotonic()

        self._cursor_timer = loop.call_later(CURSOR_EVERY_S, save)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def close(self) -> None:
        """The cursor saved, the journal file closed."""
        self.cursor.save()
        self._tail.close()


def journal_publisher(
    config: NatsConfig, journal: TailedJournal, metrics: NatsMetrics, fsync: bool
) -> EventPublisher:
    """The publisher of `journal` to the stream `config` names, from its cursor on."""
    path = cursor_path(config, journal.path)
    return EventPublisher(
        JournalTail(journal),
        Cursor(path, config.stream.name, config.gateway, fsync),
        Subjects(config.subject_prefix, config.gateway),
        metrics,
        window=config.window,
        ack_timeout_s=config.ack_timeout_s,
        reply_prefix="_INBOX.unset",
        legacy_ids=LegacyIds(legacy_ids_path(path), config.stream.name, config.gateway),
    )
