"""Events in, one encoded line out to every subscriber of the event's topic.

Each event is encoded to JSON once, whatever the number of subscribers; the gateway-wide
`seq` is spliced in front. Recent lines are kept in a bounded ring so that a client that
reconnects can ask for what it missed (`subscribe` with `since`); market data is not kept,
since a client that missed deltas needs a fresh book (`md_subscribe`), not old deltas.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Protocol

import msgspec

from fixgw.domain import Event


class Subscriber(Protocol):
    def deliver(self, line: bytes) -> None: ...


_encoder = msgspec.json.Encoder(decimal_format="string")


class EventBus:
    def __init__(self, history: int = 100_000) -> None:
        self.seq = 0
        self._subscribers: dict[str, tuple[Subscriber, ...]] = {}
        """Replaced, never changed in place: a subscriber may leave while an event is being
        delivered (a slow client is dropped from inside `deliver`)."""
        self._history: deque[tuple[int, str, bytes]] = deque(maxlen=history)

    def publish(self, event: Event) -> int:
        self.seq += 1
        body = _encoder.encode(event)
        line = b'{"seq":%d,%s\n' % (self.seq, body[1:])
        topic = event.route()
        if not topic.startswith("md:"):
            self._history.append((self.seq, topic, line))
        for subscriber in self._subscribers.get(topic, ()):
            subscriber.deliver(line)
        return self.seq

    def publish_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)

    def subscribe(self, subscriber: Subscriber, topics: Iterable[str]) -> None:
        for topic in topics:
            current = self._subscribers.get(topic, ())
            if subscriber not in current:
                self._subscribers[topic] = (*current, subscriber)

    def unsubscribe(self, subscriber: Subscriber, topics: Iterable[str] | None = None) -> None:
        for topic in list(self._subscribers) if topics is None else topics:
            current = self._subscribers.get(topic, ())
            if subscriber in current:
                remaining = tuple(s for s in current if s is not subscriber)
                if remaining:
                    self._subscribers[topic] = remaining
                else:
                    del self._subscribers[topic]

    @property
    def oldest_seq(self) -> int:
        return self._history[0][0] if self._history else self.seq + 1

    def replay(self, since: int, topics: frozenset[str]) -> Iterator[bytes]:
        """Lines after `since` on `topics`; the caller checks `since >= oldest_seq - 1`."""
        for seq, topic, line in self._history:
            if seq > since and topic in topics:
                yield line
