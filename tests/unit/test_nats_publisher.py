"""The NATS publisher's catch-up logic against a fake broker (no NATS here; the real one is in
integration/test_nats.py): in order, windowed, each acknowledged event once past the cursor;
on a refusal, a missing acknowledgement or a lost connection it starts again from the first
event not acknowledged, and what the broker already holds it drops as a duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import nats.js.errors
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from fixgw.journal import Journal, sealed
from fixgw.nats.cursor import Cursor
from fixgw.nats.legacy_ids import LegacyIds
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.publisher import CURSOR_EVERY_S, Ack, EventPublisher, PublishFailed
from fixgw.nats.stream import jetstream_unavailable
from fixgw.nats.subjects import Subjects, covers, overlaps, token
from fixgw.nats.tail import JournalTail


class FakeBroker:
    """A stream with a duplicate window as long as the test: what it stores, in order, and
    the acknowledgements it sends (now, late, never, or refusals) as the test says."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.ids: set[str] = set()
        self.published: list[str] = []
        self.publisher: EventPublisher | None = None
        self.refuse: set[str] = set()
        self.silent: set[str] = set()
        self.hold_acks = False
        self.held: list[tuple[str, Ack]] = []
        self.gone_after: int | None = None

    async def publish(self, subject: str, data: bytes, msg_id: str, reply_to: str) -> None:
        if self.gone_after is not None and len(self.published) >= self.gone_after:
            raise ConnectionError("connection lost")
        self.published.append(msg_id)
        assert data.startswith(b'{"seq":')
        if msg_id in self.silent:
            self.silent.discard(msg_id)  # lost once: not stored, no acknowledgement
            return
        if msg_id in self.refuse:
            self.refuse.discard(msg_id)
            ack = Ack(error="maximum messages exceeded")
        elif msg_id in self.ids:
            ack = Ack(duplicate=True)
        else:
            self.ids.add(msg_id)
            self.stored.append(msg_id)
            ack = Ack()
        if self.hold_acks:
            self.held.append((reply_to, ack))
        else:
            asyncio.get_running_loop().call_soon(self._ack, reply_to, ack)

    def release(self) -> None:
        for reply_to, ack in self.held:
            self._ack(reply_to, ack)
        self.held.clear()

    def _ack(self, reply_to: str, ack: Ack) -> None:
        assert self.publisher is not None
        _, run, seq = reply_to.rsplit(".", 2)
        self.publisher.acknowledged(int(run), int(seq), ack)


def append(journal: Journal, seqs: range) -> None:
    for seq in seqs:
        journal.append(
            seq,
            sealed(
                seq, b'{"type":"order.accepted","ts":"2026-12-05T10:00:00Z","symbol":"BTC/USD"}'
            ),
        )
    journal.flush()


def make(
    tmp_path: Path, window: int = 8, ack_timeout_s: float = 5.0, prefix: str = "fixgw"
) -> tuple[Journal, EventPublisher, FakeBroker]:
    journal = Journal(tmp_path / "journal.jsonl", fsync=False)
    cursor = Cursor(tmp_path / "journal.jsonl.nats", "FIXGW", "gw1")
    publisher = EventPublisher(
        JournalTail(journal),
        cursor,
        Subjects(prefix, "gw1"),
        NatsMetrics(CollectorRegistry()),
        window=window,
        ack_timeout_s=ack_timeout_s,
        reply_prefix="_INBOX.test",
        legacy_ids=LegacyIds(tmp_path / "journal.jsonl.nats.legacy-ids", "FIXGW", "gw1"),
    )
    journal.on_written.append(lambda: publisher.written(journal.written_bytes))
    broker = FakeBroker()
    broker.publisher = publisher
    return journal, publisher, broker


def ids(seqs: range) -> list[str]:
    return [f"fixgw.gw1:{seq}" for seq in seqs]


async def run_until(publisher: EventPublisher, broker: FakeBroker, seq: int) -> None:
    """Run the publisher until the cursor reaches `seq` (or it fails: re-raised)."""
    task = asyncio.get_running_loop().create_task(publisher.run(broker))
    try:
        async with asyncio.timeout(5):
            while publisher.acked_seq < seq:
                if task.done():
                    task.result()
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_every_written_event_goes_out_once_in_order_within_the_window(tmp_path: Path) -> None:
    journal, publisher, broker = make(tmp_path, window=8)

    async def scenario() -> None:
        append(journal, range(1, 101))
        await run_until(publisher, broker, 100)

    asyncio.run(scenario())
    assert broker.stored == ids(range(1, 101))
    assert broker.published == ids(range(1, 101))
    assert publisher.published == 100 and publisher.duplicates == 0
    assert Cursor(tmp_path / "journal.jsonl.nats", "FIXGW", "gw1").seq == 100


def test_no_more_than_the_window_is_in_flight(tmp_path: Path) -> None:
    journal, publisher, broker = make(tmp_path, window=8)
    broker.hold_acks = True

    async def scenario() -> None:
        append(journal, range(1, 51))
        task = asyncio.get_running_loop().create_task(publisher.run(broker))
        await asyncio.sleep(0.05)
        assert len(broker.published) == 8 and publisher.in_flight == 8
        assert publisher.acked_seq == 0
        broker.hold_acks = False
        broker.release()
        async with asyncio.timeout(5):
            await publisher.caught_up()
        assert publisher.acked_seq == 50
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert broker.stored == ids(range(1, 51))


def test_lines_not_written_yet_wait(tmp_path: Path) -> None:
    """Only what the journal wrote to its file goes out: a line still in memory waits."""
    journal, publisher, broker = make(tmp_path)

    async def scenario() -> None:
        append(journal, range(1, 4))
        journal.append(4, sealed(4, b'{"type":"session.up","ts":"2026-12-05T10:00:00Z"}'))
        task = asyncio.get_running_loop().create_task(publisher.run(broker))
        await asyncio.sleep(0)  # the journal's own flush is due on the loop: not yet run
        await run_until(publisher, broker, 3)
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert broker.stored[:3] == ids(range(1, 4))


def test_a_refusal_starts_again_from_the_first_event_not_acknowledged(tmp_path: Path) -> None:
    journal, publisher, broker = make(tmp_path, window=8)
    broker.refuse = {"fixgw.gw1:5"}

    async def scenario() -> None:
        append(journal, range(1, 21))
        with pytest.raises(PublishFailed, match="refused seq 5"):
            await run_until(publisher, broker, 20)
        assert publisher.acked_seq == 4
        await run_until(publisher, broker, 20)

    asyncio.run(scenario())
    # 6..8 were stored in the first run and dropped as duplicates in the second; 5 came
    # after them: the one case where the stream's order is not the journal's (docs/nats.md)
    assert sorted(broker.stored, key=lambda i: int(i.rpartition(":")[2])) == ids(range(1, 21))
    assert publisher.duplicates == 3


def test_a_lost_event_is_published_again_after_the_ack_timeout(tmp_path: Path) -> None:
    journal, publisher, broker = make(tmp_path, window=4, ack_timeout_s=0.05)
    broker.silent = {"fixgw.gw1:3"}

    async def scenario() -> None:
        append(journal, range(1, 11))
        with pytest.raises(PublishFailed, match="no acknowledgement for seq 3"):
            await run_until(publisher, broker, 10)
        await run_until(publisher, broker, 10)

    asyncio.run(scenario())
    assert sorted(broker.stored, key=lambda i: int(i.rpartition(":")[2])) == ids(range(1, 11))
    assert len(broker.stored) == 10, "each event stored once"


def test_a_lost_connection_starts_from_the_cursor_and_late_acks_are_ignored(
    tmp_path: Path,
) -> None:
    journal, publisher, broker = make(tmp_path, window=8)
    broker.gone_after = 12
    broker.hold_acks = True

    async def scenario() -> None:
        append(journal, range(1, 31))
        task = asyncio.get_running_loop().create_task(publisher.run(broker))
        await asyncio.sleep(0.02)
        broker.release()  # the first 8 acknowledged; 9..12 published, not acknowledged
        with pytest.raises(ConnectionError):
            async with asyncio.timeout(5):
                await task
        assert publisher.acked_seq == 8
        late = [(reply_to, ack) for reply_to, ack in broker.held]
        broker.held.clear()
        broker.gone_after = None
        broker.hold_acks = False
        for reply_to, ack in late:  # acknowledgements of the lost run: ignored
            broker._ack(reply_to, ack)
        await run_until(publisher, broker, 30)

    asyncio.run(scenario())
    assert broker.stored == ids(range(1, 31))
    assert publisher.duplicates == 4  # 9..12, stored before the connection went


def test_a_restart_resumes_from_the_saved_cursor(tmp_path: Path) -> None:
    journal, publisher, broker = make(tmp_path)

    async def first() -> None:
        append(journal, range(1, 2001))
        await run_until(publisher, broker, 2000)

    asyncio.run(first())
    journal.close()
    journal, publisher, again = make(tmp_path)
    again.ids, again.stored = broker.ids, broker.stored

    async def second() -> None:
        append(journal, range(2001, 2011))
        await run_until(publisher, again, 2010)

    asyncio.run(second())
    assert again.published == ids(range(2001, 2011)), "only what came after the cursor"
    assert again.stored == ids(range(1, 2011))


def test_skipping_to_what_the_stream_holds(tmp_path: Path) -> None:
    """A cursor behind the stream (not written before a kill) moves to the stream's last."""
    journal, publisher, broker = make(tmp_path)

    async def scenario() -> None:
        append(journal, range(1, 11))
        publisher.skip_to(7)
        await run_until(publisher, broker, 10)

    asyncio.run(scenario())
    assert broker.published == ids(range(8, 11))


def test_the_cursor_of_another_stream_or_gateway_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    cursor = Cursor(path, "FIXGW", "gw1")
    cursor.seq = 42
    cursor.save()
    assert Cursor(path, "FIXGW", "gw1").seq == 42
    assert Cursor(path, "OTHER", "gw1").seq == 0
    assert Cursor(path, "FIXGW", "gw2").seq == 0
    path.write_text("{torn")
    assert Cursor(path, "FIXGW", "gw1").seq == 0
    assert not path.with_name("cursor.new").exists()


def test_subjects() -> None:
    s = Subjects("fixgw", "gw1")
    assert s.event("order.filled", "BTC/USD") == "fixgw.gw1.ev.orders.BTC/USD"
    assert s.event("order.accepted", "A.B *>") == "fixgw.gw1.ev.orders.A_B___"
    assert s.event("session.up", None) == "fixgw.gw1.ev.session"
    assert s.event("account.balance", None) == "fixgw.gw1.ev.account"
    assert s.event("exchange.error", None) == "fixgw.gw1.ev.errors"
    assert s.commands == "fixgw.gw1.cmd"
    assert s.market_data("BTC/USD", "trades") == "fixgw.gw1.md.BTC/USD.trades"
    assert s.topic("orders") == "fixgw.gw1.ev.orders.>"
    assert token("") == "_"


@pytest.mark.parametrize(
    ("pattern", "subjects", "expected"),
    [
        ("fixgw.*.ev.>", "fixgw.gw1.ev.>", True),
        ("fixgw.>", "fixgw.gw1.ev.>", True),
        ("fixgw.gw1.ev.>", "fixgw.gw1.ev.>", True),
        ("fixgw.gw2.ev.>", "fixgw.gw1.ev.>", False),
        ("fixgw.gw1.ev.orders.>", "fixgw.gw1.ev.>", False),
        ("fixgw.*.ev.*", "fixgw.gw1.ev.>", False),
        ("fixgw.*.ev.*", "fixgw.gw1.ev.session", True),
        ("fixgw.gw1", "fixgw.gw1.ev.>", False),
        (">", "fixgw.gw1.cmd", True),
    ],
)
def test_covers(pattern: str, subjects: str, expected: bool) -> None:
    assert covers(pattern, subjects) is expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("fixgw.acct-1.ev.orders.>", "fixgw.acct-1.ev.>", True),
        ("fixgw.*.ev.orders.>", "fixgw.acct-1.ev.>", True),
        ("fixgw.acct-2.ev.>", "fixgw.acct-1.ev.>", False),
        ("fixgw.acct-1.ev", "fixgw.acct-1.ev.>", False),
        ("fixgw.acct-1.ev.session", "fixgw.acct-1.ev.>", True),
        ("fixgw.*.ev.*", "fixgw.acct-1.ev.orders.BTC/USD", False),
        ("audit.>", "fixgw.acct-1.ev.>", False),
        (">", "fixgw.acct-1.cmd", True),
    ],
)
def test_overlaps(first: str, second: str, expected: bool) -> None:
    assert overlaps(first, second) is expected
    assert overlaps(second, first) is expected


async def until(check: Callable[[], bool]) -> None:
    for _ in range(5000):
        if check():
            return
        await asyncio.sleep(0.001)
    raise TimeoutError("the check never held")


def test_the_backlog_counts_events_after_the_cursor_not_seqs(tmp_path: Path) -> None:
    """Seqs skip (a restart's reserved block, market data): the backlog is lines, in flight
    or not read yet, and the same after a failure sends the publisher back to the cursor."""
    journal, publisher, broker = make(tmp_path, window=4)
    append(journal, range(1, 4))
    append(journal, range(100_001, 100_006))
    assert publisher.backlog == 8
    broker.hold_acks = True

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(publisher.run(broker))
        await until(lambda: len(broker.published) == 4)
        assert publisher.backlog == 8  # 4 in flight, 4 not read yet
        broker.release()
        await until(lambda: publisher.acked_seq == 100_001)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert publisher.backlog == 4
        publisher.skip_to(100_003)
        assert publisher.backlog == 2
        append(journal, range(100_006, 100_008))
        assert publisher.backlog == 4

    asyncio.run(scenario())


def test_the_cursor_is_written_at_most_every_tenth_of_a_second_and_soon_after_catching_up(
    tmp_path: Path,
) -> None:
    """One event at a time, each acknowledged before the next: the file is replaced at most
    every CURSOR_EVERY_S, not once per event, and holds the last seq within that of the
    stream catching up, with the publisher still running."""
    journal, publisher, broker = make(tmp_path)
    path = tmp_path / "journal.jsonl.nats"
    seen: set[int] = set()
    """The seqs the cursor's file held, looked at after each event's acknowledgement."""

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(publisher.run(broker))
        for seq in range(1, 51):
            append(journal, range(seq, seq + 1))
            async with asyncio.timeout(5):
                while publisher.acked_seq < seq:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.001)
            seen.add(Cursor(path, "FIXGW", "gw1").seq)
        await asyncio.sleep(CURSOR_EVERY_S * 1.5)
        assert Cursor(path, "FIXGW", "gw1").seq == 50, "not written once caught up"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert len(seen) < 10, f"the cursor was written at least {len(seen)} times for 50 events"


def test_a_gateway_of_the_same_name_under_another_prefix_has_ids_of_its_own(
    tmp_path: Path,
) -> None:
    """desk1.gw1 and desk2.gw1 on one stream: neither's events are the other's duplicates."""
    (tmp_path / "desk1").mkdir()
    (tmp_path / "desk2").mkdir()
    broker = FakeBroker()
    for prefix in ("desk1", "desk2"):
        journal, publisher, _ = make(tmp_path / prefix, prefix=prefix)
        broker.publisher = publisher

        async def scenario(journal: Journal, publisher: EventPublisher) -> None:
            append(journal, range(1, 4))
            await run_until(publisher, broker, 3)

        asyncio.run(scenario(journal, publisher))
        assert publisher.duplicates == 0 and publisher.last_error is None
    assert broker.stored == [f"{p}.gw1:{seq}" for p in ("desk1", "desk2") for seq in (1, 2, 3)]


def test_duplicates_of_events_this_journal_never_published_are_logged_and_in_last_error(
    tmp_path: Path,
) -> None:
    """Another journal published seqs 1..3 under this name: the stream drops this one's."""
    journal, publisher, broker = make(tmp_path)
    broker.ids = set(ids(range(1, 4)))

    async def scenario() -> None:
        append(journal, range(1, 6))
        await run_until(publisher, broker, 5)

    with capture_logs() as logs:
        asyncio.run(scenario())
    assert broker.stored == ids(range(4, 6))
    assert publisher.duplicates == 3
    assert "seq 3 of gateway gw1 as a duplicate" in str(publisher.last_error)
    errors = [x for x in logs if x["log_level"] == "error"]
    assert [x["seq"] for x in errors] == [1], "one line for the run of them"


def test_events_the_stream_holds_from_before_an_upgrade_keep_their_ids(tmp_path: Path) -> None:
    """Seqs 1..5 stored under `<gateway>:<seq>` (before the prefix was in the id), the
    cursor at 2 (a kill): 3..5 go again under their old ids and are dropped as expected
    duplicates; what comes after gets the new id."""
    journal, publisher, broker = make(tmp_path)
    broker.ids = {f"gw1:{seq}" for seq in range(1, 6)}
    publisher.cursor.seq = 2

    async def scenario() -> None:
        append(journal, range(1, 8))
        publisher.stream_holds_through(5, legacy_ids=True)
        await run_until(publisher, broker, 7)

    asyncio.run(scenario())
    assert broker.published == ["gw1:3", "gw1:4", "gw1:5", *ids(range(6, 8))]
    assert broker.stored == ids(range(6, 8))
    assert publisher.duplicates == 3 and publisher.last_error is None


def test_events_held_under_old_ids_keep_them_after_the_stream_has_a_new_id_last(
    tmp_path: Path,
) -> None:
    """The upgraded gateway's first run publishes 3..5 again under the old ids and 6..7
    under new ones, and its cursor is left at 2 (killed within the cursor's lag, or a full
    disk). At the next start the stream's last event (7) has a new id: 3..5 still go under
    their old ids and are dropped, never stored again."""
    journal, first, broker = make(tmp_path)
    broker.ids = {f"gw1:{seq}" for seq in range(1, 6)}
    first.cursor.seq = 2

    async def upgraded_run() -> None:
        append(journal, range(1, 8))
        first.stream_holds_through(5, legacy_ids=True)
        await run_until(first, broker, 7)

    asyncio.run(upgraded_run())
    assert broker.stored == ids(range(6, 8))

    cursor = Cursor(tmp_path / "journal.jsonl.nats", "FIXGW", "gw1")
    cursor.seq = 2
    restarted = EventPublisher(
        JournalTail(journal),
        cursor,
        Subjects("fixgw", "gw1"),
        NatsMetrics(CollectorRegistry()),
        window=8,
        ack_timeout_s=5.0,
        reply_prefix="_INBOX.test",
        legacy_ids=LegacyIds(tmp_path / "journal.jsonl.nats.legacy-ids", "FIXGW", "gw1"),
    )
    broker.publisher = restarted
    broker.published.clear()

    async def next_start() -> None:
        restarted.stream_holds_through(7, legacy_ids=False)
        await run_until(restarted, broker, 7)

    asyncio.run(next_start())
    assert broker.published == ["gw1:3", "gw1:4", "gw1:5", *ids(range(6, 8))]
    assert broker.stored == ids(range(6, 8)), "nothing stored twice"
    assert restarted.duplicates == 5 and restarted.last_error is None


def test_nothing_goes_under_a_new_id_while_the_old_id_mark_cannot_be_written(
    tmp_path: Path,
) -> None:
    _, publisher, broker = make(tmp_path)
    (tmp_path / "journal.jsonl.nats.legacy-ids.new").mkdir()
    with pytest.raises(PublishFailed, match=r"old-id mark .* cannot be written"):
        publisher.stream_holds_through(5, legacy_ids=True)
    assert broker.published == []


@pytest.mark.parametrize(
    ("err_code", "description", "said"),
    [
        (10039, "jetstream not enabled for account", "JetStream is not enabled for this user's"),
        (10008, "JetStream system temporarily unavailable", "JetStream is unavailable (JetStream"),
        (None, None, "JetStream is unavailable (no answer): not enabled on the broker, or"),
    ],
)
def test_a_jetstream_that_cannot_serve_is_not_called_disabled_for_the_account(
    err_code: int | None, description: str | None, said: str
) -> None:
    """A cluster without a leader for a moment answers 503 too: "not enabled for this
    user's account" would send the operator to a config that is right."""
    exc = nats.js.errors.ServiceUnavailableError(
        code=503, err_code=err_code, description=description
    )
    assert str(jetstream_unavailable(exc)).startswith(said)
