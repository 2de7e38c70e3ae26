"""The event bus: one encoding per event, topics, replay, subscribers leaving mid-delivery."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fixgw.bus import EventBus
from fixgw.domain import BookStale, Event, SessionUp, utc_now
from fixgw.journal import Journal


@pytest.fixture
def bus(tmp_path: Path) -> EventBus:
    return EventBus(Journal(tmp_path / "journal.jsonl", fsync=False))


class Sink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def deliver(self, line: bytes) -> None:
        self.lines.append(line)


class Quitter(Sink):
    """Leaves the bus from inside `deliver`, as a slow client being dropped does."""

    def __init__(self, bus: EventBus) -> None:
        super().__init__()
        self.bus = bus

    def deliver(self, line: bytes) -> None:
        super().deliver(line)
        self.bus.unsubscribe(self)


def up() -> SessionUp:
    return SessionUp(ts=utc_now(), session_id="s")


def test_a_subscriber_leaving_during_delivery_does_not_cost_the_others_the_event(
    bus: EventBus,
) -> None:
    first, quitter, last = Sink(), Quitter(bus), Sink()
    for s in (first, quitter, last):
        bus.subscribe(s, ["session"])
    bus.publish(up())
    bus.publish(up())
    assert (len(first.lines), len(quitter.lines), len(last.lines)) == (2, 1, 2)


def test_lines_carry_an_increasing_seq_and_only_reach_their_topic(bus: EventBus) -> None:
    session, orders = Sink(), Sink()
    bus.subscribe(session, ["session"])
    bus.subscribe(orders, ["orders"])
    bus.publish(up())
    bus.publish(up())
    decoded = [msgspec.json.decode(line) for line in session.lines]
    assert [(d["seq"], d["type"]) for d in decoded] == [(1, "session.up"), (2, "session.up")]
    assert all(line.endswith(b"\n") for line in session.lines)
    assert orders.lines == []


def test_replay_gives_what_came_after_since_on_the_asked_topics(bus: EventBus) -> None:
    for _ in range(3):
        bus.publish(up())
    assert [msgspec.json.decode(line)["seq"] for line in bus.replay(1, frozenset({"session"}))] == [
        2,
        3,
    ]
    assert list(bus.replay(0, frozenset({"orders"}))) == []


def test_seq_never_goes_back_after_a_restart_even_past_unjournaled_market_data(
    tmp_path: Path,
) -> None:
    """Market data takes seqs without being journaled; a restart, clean or not (the journal
    is not closed), must not hand any of them out again."""
    path = tmp_path / "journal.jsonl"
    seen = 0
    for _ in range(3):
        bus = EventBus(Journal(path, fsync=False))
        assert bus.publish(up()) > seen
        for _ in range(5):
            seen = bus.publish(BookStale(ts=utc_now(), symbol="BTC/USD", reason="test"))
        bus.journal.flush()  # as a kill -9 leaves it: written, never closed
    replayed = EventBus(Journal(path, fsync=False)).replay(0, frozenset({"session"}))
    seqs = [msgspec.json.decode(line)["seq"] for line in replayed]
    assert seqs == sorted(seqs) and len(seqs) == 3


class Events:
    """A subscriber of events as objects (the FIX bridge's kind)."""

    def __init__(self) -> None:
        self.got: list[tuple[int, object]] = []

    def on_event(self, seq: int, event: Event) -> None:
        self.got.append((seq, event))


def test_event_subscribers_get_the_event_itself_with_the_seq_its_line_carries(
    bus: EventBus,
) -> None:
    lines, events, elsewhere = Sink(), Events(), Events()
    bus.subscribe(lines, ["session"])
    bus.subscribe_events(events, ["session"])
    bus.subscribe_events(elsewhere, ["orders"])
    first, second = up(), up()
    bus.publish(first)
    bus.publish(second)
    seqs = [msgspec.json.decode(line)["seq"] for line in lines.lines]
    assert events.got == [(seqs[0], first), (seqs[1], second)]
    assert events.got[0][1] is first and elsewhere.got == []


def test_event_subscribers_are_kept_apart_from_line_subscribers(bus: EventBus) -> None:
    lines, events = Sink(), Events()
    bus.subscribe(lines, ["md:BTC/USD"])
    bus.subscribe_events(events, ["md:BTC/USD", "session"])
    bus.unsubscribe(lines)  # all its topics: the event subscriber stays
    stale = BookStale(ts=utc_now(), symbol="BTC/USD", reason="test")
    bus.publish(stale)
    bus.unsubscribe_events(events, ["md:BTC/USD"])
    bus.publish(stale)
    bus.publish(up())
    assert lines.lines == [] and [e for _, e in events.got] == [stale, events.got[1][1]]
    assert isinstance(events.got[1][1], SessionUp)
