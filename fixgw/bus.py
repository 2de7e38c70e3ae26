"""Events in, one encoded line out to every subscriber of the event's topic.

Each event is encoded to JSON once, whatever the number of subscribers; the gateway-wide
`seq` is spliced in front. Subscribers in the process that want the event itself (the FIX
bridge) subscribe apart (`subscribe_events`) and get the event object and its seq, never a
line to decode; the lines' subscribers pay nothing for them.

Every event but market data is appended to the journal before it is fanned out, with its
checksum at the end (`journal.sealed`; clients get the same line), and `replay` serves a
reconnecting client what it missed from there. The API server writes a client's lines only
once the journal has its lines on disk (`ClientConnection.flush`), the bridge its reports
likewise: nobody is told an event a restart would not know.
Market data is not journaled: a client that missed deltas needs a fresh book, not old deltas.
Its seqs are covered by a block reserved in the journal, so a restart never reuses one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

from fixgw.domain import Event
from fixgw.journal import Journal, sealed
from fixgw.wire import encode_event

TOPIC_OF_TYPE = {
    "order": "orders",
    "session": "session",
    "account": "account",
    "exchange": "errors",
}
"""The topic of a journaled event, by the part of its type before the dot."""


class Subscriber(Protocol):
    def deliver(self, line: bytes) -> None: ...


class EventSubscriber(Protocol):
    def on_event(self, seq: int, event: Event) -> None:
        """Called on the loop's thread as the event is published, after the line subscribers
        of its topic; must not raise (the publisher is the order path)."""
        ...


S = TypeVar("S")


SEQ_BLOCK = 100_000
"""Seqs reserved in the journal at a time: one small write per block, and a restart skips
at most this many."""


def market_data_line(seq: int, event: Event) -> bytes:
    """A market-data event's line: the seq spliced in front, no checksum (not journaled)."""
    return b'{"seq":%d,%s\n' % (seq, encode_event(event)[1:])


class EventBus:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.seq = max(journal.last_seq, journal.reserved_seq)
        """The last seq handed out, or after a restart the highest one that may have been."""
        self._reserved = self.seq
        self._subscribers: dict[str, tuple[Subscriber, ...]] = {}
        """Replaced, never changed in place: a subscriber may leave while an event is being
        delivered (a slow client is dropped from inside `deliver`)."""
        self._event_subscribers: dict[str, tuple[EventSubscriber, ...]] = {}
        """The same, for the subscribers of events as objects."""

    def publish(self, event: Event) -> int:
        self.seq += 1
        if self.seq > self._reserved and self.journal.reserve_seq(self.seq + SEQ_BLOCK - 1):
            self._reserved = self.seq + SEQ_BLOCK - 1
        topic = event.route()
        if topic.startswith("md:"):
            line = market_data_line(self.seq, event)
        else:
            line = sealed(self.seq, encode_event(event))
            self.journal.append(self.seq, line)
        seq = self.seq
        for subscriber in self._subscribers.get(topic, ()):
            subscriber.deliver(line)
        for event_subscriber in self._event_subscribers.get(topic, ()):
            event_subscriber.on_event(seq, event)
        return seq

    def publish_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)

    def subscribe(self, subscriber: Subscriber, topics: Iterable[str]) -> None:
        _add(self._subscribers, subscriber, topics)

    def unsubscribe(self, subscriber: Subscriber, topics: Iterable[str] | None = None) -> None:
        _remove(self._subscribers, subscriber, topics)

    def subscribe_events(self, subscriber: EventSubscriber, topics: Iterable[str]) -> None:
        """`subscriber.on_event(seq, event)` for each event on `topics` from now on."""
        _add(self._event_subscribers, subscriber, topics)

    def unsubscribe_events(
        self, subscriber: EventSubscriber, topics: Iterable[str] | None = None
    ) -> None:
        _remove(self._event_subscribers, subscriber, topics)

    def replay(
        self, since: int, topics: frozenset[str], until: int | None = None
    ) -> Iterator[bytes]:
        """The journaled lines after `since` (up to `until`) on `topics`, in order."""
        for _, type_, line in self.journal.lines(since, until):
            if TOPIC_OF_TYPE.get(type_.partition(".")[0]) in topics:
                yield line


def _add(table: dict[str, tuple[S, ...]], subscriber: S, topics: Iterable[str]) -> None:
    for topic in topics:
        current = table.get(topic, ())
        if subscriber not in current:
            table[topic] = (*current, subscriber)


def _remove(table: dict[str, tuple[S, ...]], subscriber: S, topics: Iterable[str] | None) -> None:
    for topic in list(table) if topics is None else topics:
        current = table.get(topic, ())
        if subscriber in current:
            remaining = tuple(s for s in current if s is not subscriber)
            if remaining:
                table[topic] = remaining
            else:
                del table[topic]
