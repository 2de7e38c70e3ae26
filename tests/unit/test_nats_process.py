"""The publisher process's plumbing, without a broker: the shared mark of where the journal's
written lines end, the journal as the process reads it, and the state it reports, counted
across its restarts. (Publishing through it to a real nats-server: tests/integration/
test_nats.py.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from fixgw.config import NatsConfig
from fixgw.journal import Journal, offset_before, sealed
from fixgw.nats import publisher_main, publisher_process
from fixgw.nats.mark import WrittenMark, mark_path
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.publisher_main import (
    EXIT_NOT_STOPPED,
    HEARTBEAT_S,
    ApartState,
    JournalView,
    PublisherApart,
    Spec,
    take_log_settings,
)
from fixgw.nats.publisher_process import SILENT_AFTER_S, PublisherProcess
from fixgw.nats.tail import JournalTail


def journal_with(tmp_path: Path, events: int) -> Journal:
    journal = Journal(tmp_path / "journal.jsonl", fsync=False)
    for seq in range(1, events + 1):
        journal.append(seq, sealed(seq, b'{"type":"order.accepted","ts":"2026-12-06T00:00:00Z"}'))
    journal.flush()
    return journal


def test_the_mark_shows_the_reader_what_the_writer_stored(tmp_path: Path) -> None:
    path = mark_path(tmp_path / "journal.jsonl")
    writer = WrittenMark(path, writer=True)
    reader = WrittenMark(path, writer=False)
    assert tuple(reader.load()) == (0, 0, 0)
    writer.store(4096, 17, 32)
    assert tuple(reader.load()) == (4096, 17, 32)
    assert path.stat().st_mode & 0o777 == 0o600
    writer.close()
    reader.close()


def test_the_process_reads_only_what_the_mark_says_is_written(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, 3000)
    writer = WrittenMark(mark_path(journal.path), writer=True)
    view = JournalView(journal.path, WrittenMark(mark_path(journal.path), writer=False))
    tail = JournalTail(view)
    tail.seek(0)
    assert tail.read(10) == []  # nothing marked written yet
    lines = journal.path.read_bytes().splitlines(keepends=True)
    writer.store(sum(map(len, lines[:5])), 5, 5)
    assert [line.seq for line in tail.read(100)] == [1, 2, 3, 4, 5]
    writer.store(journal.written_bytes, journal.last_seq, journal.last_seq)
    tail.seek(2500)  # from the index of every 1024th line, not from the start
    assert view.offset_before(2500) > 0
    assert [line.seq for line in tail.read(3)] == [2501, 2502, 2503]


def test_a_seek_after_a_long_read_starts_near_its_seq_not_at_the_old_index(
    tmp_path: Path,
) -> None:
    """The process indexes the journal once, at its start; what it read since, the tail
    indexes itself, so a reconnect does not read the journal again from there."""
    journal = journal_with(tmp_path, 10)
    writer = WrittenMark(mark_path(journal.path), writer=True)
    view = JournalView(journal.path, WrittenMark(mark_path(journal.path), writer=False))
    for seq in range(11, 5001):
        journal.append(seq, sealed(seq, b'{"type":"order.accepted"}'))
    journal.flush()
    writer.store(journal.written_bytes, journal.last_seq, journal.last_seq)
    tail = JournalTail(view)
    tail.seek(0)
    while tail.read(1000):
        pass
    assert view.offset_before(4500) == 0  # the view's index knows only the first 10 lines
    tail.seek(4500)
    assert [line.seq for line in tail.read(2)] == [4501, 4502]
    lines = journal.path.read_bytes().splitlines(keepends=True)
    tail.seek(4500)
    assert offset_before(tail._seen, 4500) == sum(map(len, lines[:4096]))  # seq 4097's line
    assert tail._offset == sum(map(len, lines[:4500]))  # read on from there to seq 4501's


def test_the_state_counts_across_restarts_of_the_process(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, 1)
    config = msgspec.convert({"servers": ["nats://127.0.0.1:1"], "gateway": "gw"}, NatsConfig)
    metrics = NatsMetrics(CollectorRegistry())

    async def run() -> PublisherProcess:
        process = PublisherProcess(config, {}, journal, metrics, fsync=False, log_config=None)
        process._take(msgspec.json.encode(ApartState(connected=True, acked_seq=5, published=5)))
        process._base = process.state  # what _supervise does when it starts the next one
        process._take(msgspec.json.encode(ApartState(acked_seq=7, published=2, duplicates=1)))
        process._take(b"not json\n")
        return process

    process = asyncio.run(run())
    state = process.state
    assert (state.acked_seq, state.published, state.duplicates) == (7, 7, 1)
    assert metrics.stored._value.get() == 7 and metrics.duplicate._value.get() == 1


class Clock:
    """`time.monotonic` as the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_process_whose_state_stays_the_same_still_reports_every_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    clock = Clock()
    monkeypatch.setattr(publisher_main.time, "monotonic", clock)
    mark, spec = journal_for_a_publisher(tmp_path)
    apart = PublisherApart(spec)
    try:
        apart.report()
        clock.now += HEARTBEAT_S / 2
        apart.report()
        assert len(capsysbinary.readouterr().out.splitlines()) == 1, "nothing new to say yet"
        clock.now += HEARTBEAT_S / 2
        apart.report()
        assert len(capsysbinary.readouterr().out.splitlines()) == 1, "the heartbeat"
    finally:
        apart.publisher.close()
        mark.close()


def test_a_process_silent_past_the_bound_is_shown_stuck_and_its_backlog_counted_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its last word was "connected, nothing waiting"; the journal has 3 events after the
    cursor it reported. Silent past SILENT_AFTER_S, it is taken for stuck."""
    clock = Clock()
    monkeypatch.setattr(publisher_process.time, "monotonic", clock)
    journal = journal_with(tmp_path, 3)
    config = msgspec.convert({"servers": ["nats://127.0.0.1:1"], "gateway": "gw"}, NatsConfig)

    async def run() -> PublisherProcess:
        process = PublisherProcess(
            config, {}, journal, NatsMetrics(CollectorRegistry()), fsync=False, log_config=None
        )
        process._take(msgspec.json.encode(ApartState(connected=True, backlog=0)))
        return process

    process = asyncio.run(run())
    clock.now += SILENT_AFTER_S
    assert (process.connected, process.backlog, process.silence) == (True, 0, None)
    clock.now += 2
    assert (process.connected, process.backlog) == (False, 3)
    silent_s = SILENT_AFTER_S + 2
    assert process.silence == f"the publisher process has not reported for {silent_s:.0f} s"
    process._take(msgspec.json.encode(ApartState(connected=True, acked_seq=3, backlog=0)))
    assert (process.connected, process.backlog, process.silence) == (True, 0, None)
    journal.close()


def test_log_settings_the_process_cannot_take_are_warned_of_and_leave_it_running(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A line after the Spec that is not log settings, or names no level: warned, not fatal."""
    for line in (b"not json\n", b'{"level":"loud","format":"json"}\n', b'{"level":1}\n'):
        take_log_settings(line)
        said = "".join(capfd.readouterr())
        assert "log settings not taken" in said and "log settings changed" not in said


def journal_for_a_publisher(tmp_path: Path) -> tuple[WrittenMark, Spec]:
    """A journal of 3 events, its mark held as the gateway holds it, and the Spec a
    publisher process is started with, its broker unreachable."""
    journal_with(tmp_path, 3).close()
    mark = WrittenMark(mark_path(tmp_path / "journal.jsonl"), writer=True)
    spec = Spec(
        config=NatsConfig(servers=["nats://127.0.0.1:9"], gateway="acct-1"),
        secrets={},
        journal_path=str(tmp_path / "journal.jsonl"),
        fsync=False,
    )
    return mark, spec


STUCK_ON_THE_WAY_OUT = """
import asyncio, sys
from fixgw.nats import connection, publisher_main
publisher_main.LEAVE_BY_S = 1.0

async def never(self):
    await asyncio.Event().wait()

connection.BrokerConnection.close = never  # as nats-py's close may never return
publisher_main.main()
"""


def test_a_publisher_whose_way_out_hangs_still_leaves_once_its_stdin_ends(
    tmp_path: Path,
) -> None:
    """A publisher left over from a SIGKILLed gateway held the cursor's lock for good: every
    later one gave up on it, and the stream got no more events. Once its stdin ends, it is
    gone within LEAVE_BY_S whatever it awaits (here: its broker connection's close)."""
    mark, spec = journal_for_a_publisher(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_ON_THE_WAY_OUT],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(msgspec.json.encode(spec) + b"\n")
        process.stdin.close()  # the gateway gone
        assert process.wait(timeout=30) == EXIT_NOT_STOPPED
    finally:
        process.kill()
        process.wait()
        mark.close()
    assert process.stderr is not None
    assert b"did not stop in time" in process.stderr.read()


def test_a_publisher_whose_gateway_was_killed_leaves_quietly_without_a_traceback(
    tmp_path: Path,
) -> None:
    """A SIGKILLed gateway reads no more state: the publisher's report to it fails with a
    broken pipe. That ends the reports, not the process, and leaves no traceback."""
    mark, spec = journal_for_a_publisher(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "fixgw.nats.publisher_main"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(msgspec.json.encode(spec) + b"\n")
        process.stdin.flush()
        process.stdout.readline()  # its first report: it runs
        process.stdout.close()  # the gateway gone: nobody reads its state
        time.sleep(2)  # its broker unreachable meanwhile: its state changes
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
        mark.close()
    assert process.stderr is not None
    said = process.stderr.read().decode()
    assert "Traceback" not in said and "BrokenPipe" not in said, said
    assert "nats publisher process stopped" in said
