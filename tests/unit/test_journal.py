"""The journal: what was appended comes back, across a restart and a torn last line, and
the order tracker is rebuilt from it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import resource
import signal
import stat
import zlib
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog.testing

from fixgw.bus import EventBus
from fixgw.domain import (
    AnyEvent,
    CancelOrder,
    ExecKind,
    ExecutionReport,
    OrderCancelRejected,
    OrderStatus,
    SessionUp,
    Side,
    TradingHalted,
    utc_now,
)
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import StartupError
from fixgw.journal import (
    Journal,
    JournalClosed,
    JournalDamaged,
    repair,
    scan,
    sealed,
    side_file,
)
from fixgw.wire import encode_event
from tests.unit.orders_made import limit_buy


def test_seq_and_events_survive_a_restart_and_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    bus = EventBus(Journal(path, fsync=True))
    for _ in range(2500):
        bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    bus.journal.close()
    with path.open("ab") as f:
        f.write(b'{"seq":2501,"type":"sess')  # the process died mid-write
    journal = Journal(path, fsync=False)
    assert journal.last_seq == 2500
    assert [seq for seq, _, _ in journal.lines(since=2497)] == [2498, 2499, 2500]
    assert EventBus(journal).publish(SessionUp(ts=utc_now(), session_id="s")) > 2500
    journal.close()
    assert re.search(rb'"session_id":"s","crc":\d+}\n$', path.read_bytes())
    [aside] = side_file(path).read_text().splitlines()  # the torn bytes, kept
    assert base64.b64decode(json.loads(aside)["raw_b64"]) == b'{"seq":2501,"type":"sess'


def test_a_torn_line_that_cannot_be_set_aside_stops_the_start_naming_the_journal(
    tmp_path: Path,
) -> None:
    """Its bytes go to `<journal>.damaged` before the cut, and that file cannot be written
    (a full disk; here a directory in its place): the start said only the OSError, and the
    gateway put it down to `session`. Nothing is cut."""
    path = tmp_path / "j.jsonl"
    torn = _session_up(1) + b'{"seq":2,"type":"sess'
    path.write_bytes(torn)
    side_file(path).mkdir()
    with pytest.raises(StartupError) as refused:
        Journal(path, fsync=False)
    said = str(refused.value)
    assert said.startswith(f"journal.path: {path} ends in a torn line")
    assert f"could not be written to {side_file(path)}" in said
    assert path.read_bytes() == torn


def test_the_tracker_is_rebuilt_from_journaled_order_events(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    bus = EventBus(Journal(path, fsync=False))
    tracker = OrderTracker()
    for cl_ord_id in ("open-1", "done-1"):
        bus.publish(tracker.submit(limit_buy(cl_ord_id)))
    fill = ExecutionReport(
        exec_id="e1",
        kind=ExecKind.PARTIAL_FILL,
        status=OrderStatus.PARTIALLY_FILLED,
        cl_ord_id="open-1",
        order_id="X1",
        symbol="BTC/USD",
        side=Side.BUY,
        cum_qty=D("0.4"),
        leaves_qty=D("0.6"),
        avg_px=D("100"),
        last_qty=D("0.4"),
        last_px=D("100"),
        ts=utc_now(),
    )
    bus.publish_all(tracker.apply_execution(fill))
    bus.publish_all(
        tracker.apply_execution(
            ExecutionReport(
                exec_id="e2",
                kind=ExecKind.FILL,
                status=OrderStatus.FILLED,
                cl_ord_id="done-1",
                order_id="X2",
                symbol="BTC/USD",
                side=Side.BUY,
                cum_qty=D("1"),
                leaves_qty=D("0"),
                avg_px=D("99"),
                last_qty=D("1"),
                last_px=D("99"),
                ts=utc_now(),
            )
        )
    )
    pending = tracker.cancel_requested(
        CancelOrder(
            ts=utc_now(),
            cl_ord_id="k1",
            orig_cl_ord_id="open-1",
            order_id="X1",
            symbol="BTC/USD",
            side=Side.BUY,
        )
    )
    assert pending is not None
    bus.publish(pending)
    bus.journal.close()

    rebuilt = OrderTracker()
    assert rebuilt.restore(Journal(path, fsync=False).events(prefix="order.")) == 1
    [open_order] = rebuilt.open_orders()
    assert (
        open_order.cl_ord_id,
        open_order.order_id,
        open_order.cum_qty,
        open_order.shown_status,
    ) == ("open-1", "X1", D("0.4"), OrderStatus.PENDING_CANCEL)
    assert rebuilt.apply_execution(fill) == []  # its fill is known: a resend changes nothing
    done = rebuilt.get("done-1")
    assert done is not None and (done.status, done.avg_px) == (OrderStatus.FILLED, D("99"))


def test_the_last_handled_inbound_seq_num_is_kept_beside_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    journal = Journal(path, fsync=False)
    assert journal.inbound_checkpoint() is None
    for seq_num in (7, 8, 1234):
        journal.mark_inbound(seq_num)
    journal.close()
    assert Journal(path, fsync=False).inbound_checkpoint() == 1234
    after_reset = Journal(path, fsync=False)
    after_reset.mark_inbound(3)  # lower after the operator reset sequence numbers
    after_reset.close()
    assert Journal(path, fsync=False).inbound_checkpoint() == 3


def test_the_checkpoint_follows_journaled_lines_at_once_and_other_messages_lazily(
    tmp_path: Path,
) -> None:
    """As in the gateway: a message's events are appended and its MsgSeqNum marked in one
    turn of the loop, and the journal writes both at the end of it."""
    path = tmp_path / "events.jsonl"
    journal = Journal(path, fsync=False)

    async def handled(seq_num: int, line: bytes | None = None) -> int | None:
        if line is not None:
            journal.append(journal.last_seq + 1, line)
        journal.mark_inbound(seq_num)
        await asyncio.sleep(0)
        return journal.inbound_checkpoint()

    async def scenario() -> list[int | None]:
        return [
            await handled(10, sealed(1, b'{"type":"order.accepted"}')),
            await handled(11),  # market data: nothing journaled
            await handled(12, sealed(2, b'{"type":"order.filled"}')),
            await handled(13),
        ]

    assert asyncio.run(scenario()) == [10, 10, 12, 12]
    journal.close()
    assert Journal(path, fsync=False).inbound_checkpoint() == 13


def test_a_checkpoint_set_back_by_a_reset_of_the_numbering_is_written_at_once(
    tmp_path: Path,
) -> None:
    """Until it is, a crash would leave the old number, and a restart would take the first
    messages of the new numbering for handled."""
    path = tmp_path / "events.jsonl"
    journal = Journal(path, fsync=False)

    async def handled(seq_num: int) -> int | None:
        journal.mark_inbound(seq_num)
        await asyncio.sleep(0)
        return journal.inbound_checkpoint()

    async def scenario() -> list[int | None]:
        return [await handled(n) for n in (7, 1, 2, 0)]

    assert asyncio.run(scenario()) == [7, 1, 1, 0]
    journal.close()


def test_lines_a_failing_disk_refused_are_kept_and_written_later_and_hold_back_the_checkpoint(
    tmp_path: Path,
) -> None:
    """A real file past RLIMIT_FSIZE: the kernel writes part of a flush, then refuses."""
    path = tmp_path / "events.jsonl"
    journal = Journal(path, fsync=False)

    def line(seq: int) -> bytes:
        return b'{"seq":%d,"type":"order.accepted","pad":"%s"}\n' % (seq, b"x" * 40)

    async def handled(seqs: range, seq_num: int) -> None:
        for seq in seqs:
            journal.append(seq, line(seq))
        journal.mark_inbound(seq_num)
        await asyncio.sleep(0)

    asyncio.run(handled(range(1, 1001), 10))
    assert journal.inbound_checkpoint() == 10
    limit = journal.size_bytes + 5 * len(line(1)) + 20  # the next flush stops mid-line
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    sigxfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        asyncio.run(handled(range(1001, 1201), 11))  # 1025 gets an index entry
        assert journal.inbound_checkpoint() == 10
        assert path.stat().st_size == limit  # part of a line reached the file
        with pytest.raises(OSError):  # the gateway's flush before sending an order
            journal.flush()
        assert [seq for seq, _, _ in journal.lines(since=1190)] == list(range(1191, 1201))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, sigxfsz)
    asyncio.run(handled(range(1201, 1203), 12))
    assert journal.inbound_checkpoint() == 12
    assert path.stat().st_size == journal.size_bytes
    assert [seq for seq, _, _ in journal.lines(since=1030)] == list(range(1031, 1203))
    journal.close()
    assert path.read_bytes() == b"".join(line(seq) for seq in range(1, 1203))


def test_an_event_published_once_the_journal_closed_is_refused_and_lands_in_no_other_file(
    tmp_path: Path,
) -> None:
    """A halt that comes as a stop ends: the journal's descriptors are closed and their
    numbers free for the next files opened. Nothing may be written through them."""
    path = tmp_path / "journal.jsonl"
    bus = EventBus(Journal(path, fsync=False))
    bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    bus.journal.close()
    journaled = path.read_bytes()
    others = [tmp_path / f"other-{n}" for n in range(3)]  # the freed numbers, taken again
    fds = [os.open(other, os.O_RDWR | os.O_CREAT, 0o600) for other in others]
    try:
        halt = TradingHalted(ts=utc_now(), by="SIGUSR1", reason="kill switch", cancelling=[])
        with pytest.raises(JournalClosed, match=r"is closed .*: the line of seq 2 not written"):
            bus.publish(halt)
        with pytest.raises(JournalClosed, match="a flush not written"):
            bus.journal.flush()
        bus.journal.close()  # a second close closes nothing another file holds
        assert [os.fstat(fd).st_size for fd in fds] == [0, 0, 0]
    finally:
        for fd in fds:
            os.close(fd)
    assert path.read_bytes() == journaled


def _session_up(seq: int) -> bytes:
    """A line as fixgw wrote them before lines carried a checksum."""
    return (
        b'{"seq":%d,"type":"session.up","ts":"2026-11-25T10:00:00.000000Z","session_id":"s"}\n'
        % seq
    )


def test_every_line_carries_a_checksum_of_its_own_bytes_and_stays_the_line_clients_get(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    bus = EventBus(Journal(path, fsync=False))
    delivered: list[bytes] = []

    class Sink:
        def deliver(self, line: bytes) -> None:
            delivered.append(line)

    bus.subscribe(Sink(), ["session"])
    bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    bus.journal.close()
    [line] = path.read_bytes().splitlines(keepends=True)
    assert delivered == [line]
    body, _, crc = line.rstrip(b"}\n").rpartition(b',"crc":')
    assert zlib.crc32(body) == int(crc)
    assert json.loads(line)["session_id"] == "s"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda line: line.replace(b'"session_id":"s"', b'"session_id":"t"'), "checksum does not"),
        (lambda line: line[:30] + line[-20:], "checksum does not"),
        (lambda line: line.replace(b'"crc":', b'"crc":x'), "checksum is unreadable"),
        (lambda line: b"\x00" * (len(line) - 1) + b"\n", "not a journal record"),
        (lambda line: b"\n", "not a journal record"),
    ],
)
def test_a_damaged_line_in_the_middle_stops_the_start_and_nothing_is_cut(
    tmp_path: Path, change: Any, why: str
) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, fsync=False) as journal:
        bus = EventBus(journal)
        for _ in range(10):
            bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = change(lines[4])
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalDamaged) as damaged:
        Journal(path, fsync=False)
    assert f"line 5 (byte {sum(map(len, lines[:4]))}" in damaged.value.message
    assert why in damaged.value.message
    assert path.read_bytes() == b"".join(lines)
    assert [d.line for d in scan(path).damaged] == [5]


def test_lines_written_before_checksums_are_read_and_checked_as_events(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"".join(_session_up(seq) for seq in (1, 2, 5)))
    with Journal(path, fsync=False) as journal:  # old lines, then new ones after them
        assert journal.last_seq == 5
        EventBus(journal).publish(SessionUp(ts=utc_now(), session_id="s"))
    with Journal(path, fsync=False) as journal:
        assert [seq for seq, _, _ in journal.lines()] == [1, 2, 5, 6]
    for bad in (
        _session_up(2),  # seq going back
        b'{"seq":9,"type":"session.up"}\n',  # JSON, but no event
        b'{"seq":9,"type":"session.up","ts":"2026-11-25T10:00:00.000000Z","session_id":"s"\n',
    ):
        old = tmp_path / "old.jsonl"
        old.write_bytes(_session_up(1) + _session_up(3) + bad + _session_up(10))
        assert [d.line for d in scan(old).damaged] == [3], bad


def test_repair_sets_damaged_records_and_a_torn_tail_aside_and_keeps_the_rest_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, fsync=False) as journal:
        bus = EventBus(journal)
        for _ in range(6):
            bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"s"', b'"x"')
    lines[3] = b"garbage\n"
    path.write_bytes(b"".join(lines) + b'{"seq":7,"ty')
    repaired = repair(path)
    assert [d.line for d in repaired.set_aside] == [2, 4, 7]
    assert path.read_bytes() == b"".join(lines[n] for n in (0, 2, 4, 5))
    aside = [json.loads(line) for line in side_file(path).read_text().splitlines()]
    assert [base64.b64decode(a["raw_b64"]) for a in aside] == [
        lines[1],
        lines[3],
        b'{"seq":7,"ty',
    ]
    assert [a["seq"] for a in aside] == ["2", "?", "7"]
    assert repair(path).set_aside == []  # nothing left to repair
    with Journal(path, fsync=False) as journal:
        assert journal.last_seq == 6


def test_repair_writes_through_no_link_planted_beside_the_journal(tmp_path: Path) -> None:
    """Repair runs as root in a directory the service user owns: a link planted where it
    writes (its temporary, the side file, the lock) must not have root write elsewhere."""
    path = tmp_path / "j.jsonl"
    with Journal(path, fsync=False) as journal:
        bus = EventBus(journal)
        for _ in range(3):
            bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"garbage\n" + lines[2])
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    planted = path.with_name(path.name + ".repairing")
    planted.symlink_to(victim)
    repaired = repair(path)
    assert [d.line for d in repaired.set_aside] == [2]
    assert path.read_bytes() == lines[0] + lines[2]
    assert victim.read_bytes() == b"precious\n"

    path.write_bytes(lines[0] + b"garbage\n" + lines[2])
    side_file(path).unlink()
    side_file(path).symlink_to(victim)
    with pytest.raises(OSError):
        repair(path)
    assert victim.read_bytes() == b"precious\n"
    assert path.read_bytes() == lines[0] + b"garbage\n" + lines[2]  # nothing replaced

    side_file(path).unlink()
    lock_file = path.with_name(path.name + ".lock")
    lock_file.unlink()
    lock_file.symlink_to(victim)
    with pytest.raises(StartupError):
        repair(path)
    assert victim.read_bytes() == b"precious\n"


def test_the_journal_and_the_files_beside_it_are_0640_or_tighter(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(_session_up(1))
    path.chmod(0o644)  # as an older version left it
    old_umask = os.umask(0o022)
    try:
        with Journal(path, fsync=False) as journal:
            journal.reserve_seq(100)
    finally:
        os.umask(old_umask)
    for name in ("j.jsonl", "j.jsonl.fixseq", "j.jsonl.seqmark"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) & 0o137 == 0, name


_CANCEL_REJECTED_BEFORE_THE_ORDER = (
    b'{"type":"order.cancel_rejected","ts":"2026-12-06T18:04:59.951094Z","cl_ord_id":"pf-1",'
    b'"cancel_cl_ord_id":"k1","order_id":"X1","symbol":"BTC/USD","status":"partially_filled",'
    b'"reason":"other","text":"message type F is not supported"}'
)
"""An `order.cancel_rejected` as fixgw journaled it before the event carried the whole order
(no side, qty, price, cum_qty, leaves_qty, avg_px)."""


def test_a_journal_from_before_cancel_rejects_carried_the_order_still_loads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    bus = EventBus(Journal(path, fsync=False))
    tracker = OrderTracker()
    bus.publish(tracker.submit(limit_buy("pf-1", "2", "100")))
    fill = ExecutionReport(
        exec_id="e1",
        kind=ExecKind.PARTIAL_FILL,
        status=OrderStatus.PARTIALLY_FILLED,
        cl_ord_id="pf-1",
        order_id="X1",
        symbol="BTC/USD",
        side=Side.BUY,
        cum_qty=D("1.2"),
        leaves_qty=D("0.8"),
        avg_px=D("100"),
        last_qty=D("1.2"),
        last_px=D("100"),
        ts=utc_now(),
    )
    bus.publish_all(tracker.apply_execution(fill))
    cancel = CancelOrder(
        ts=utc_now(),
        cl_ord_id="k1",
        orig_cl_ord_id="pf-1",
        order_id="X1",
        symbol="BTC/USD",
        side=Side.BUY,
    )
    pending = tracker.cancel_requested(cancel)
    assert pending is not None
    bus.publish(pending)
    bus.journal.append(bus.seq + 1, sealed(bus.seq + 1, _CANCEL_REJECTED_BEFORE_THE_ORDER))
    bus.journal.close()

    with Journal(path, fsync=False) as journal:
        *_, old = journal.events(prefix="order.")
        assert isinstance(old, OrderCancelRejected)
        assert (old.status, old.cum_qty, old.leaves_qty, old.avg_px) == (
            OrderStatus.PARTIALLY_FILLED,
            None,
            None,
            None,
        )
        rebuilt = OrderTracker()
        assert rebuilt.restore(journal.events(prefix="order.")) == 1
    [order] = rebuilt.open_orders()
    assert (order.shown_status, order.cancel_pending, order.cum_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        None,
        D("1.2"),
    )
    # the same refusal told today carries the whole order, and reads back as it was written
    rebuilt.cancel_requested(msgspec.structs.replace(cancel, cl_ord_id="k2"))
    [now] = rebuilt.refused("k2", "message type F is not supported", utc_now())
    assert msgspec.json.decode(encode_event(now), type=AnyEvent) == now
    assert (now.side, now.qty, now.cum_qty, now.leaves_qty, now.avg_px) == (
        Side.BUY,
        D("2"),
        D("1.2"),
        D("0.8"),
        D("100"),
    )


def test_a_damaged_state_file_beside_the_journal_is_said_and_read_as_empty(
    tmp_path: Path,
) -> None:
    """The checkpoint and the seq mark hold one number each: damage is read as nothing, as
    before, but no longer silently (what it may cost is in the line)."""
    path = tmp_path / "events.jsonl"
    with Journal(path, fsync=False):
        pass
    path.with_name(path.name + ".fixseq").write_bytes(b"\x00garbage")
    path.with_name(path.name + ".seqmark").write_bytes(b"12x")
    with structlog.testing.capture_logs() as logs, Journal(path, fsync=False) as journal:
        assert (journal.inbound_checkpoint(), journal.reserved_seq) == (None, 0)
    said = [e for e in logs if e["event"] == "unreadable state file read as empty"]
    assert [Path(e["file"]).suffix for e in said] == [".fixseq", ".seqmark"]
    assert "not asked for again" in said[0]["then"]


def _unsealed(line: bytes) -> bytes:
    """The line as fixgw wrote it before lines carried a checksum."""
    return line[: line.rindex(b',"crc":')] + b"}\n"


def _upgraded(path: Path) -> list[bytes]:
    """Lines 1-6 written before checksums, 7-10 after (an upgraded gateway's journal)."""
    with Journal(path, fsync=False) as journal:
        bus = EventBus(journal)
        for _ in range(10):
            bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    lines = path.read_bytes().splitlines(keepends=True)
    return [_unsealed(line) for line in lines[:6]] + lines[6:]


@pytest.mark.parametrize(
    ("number", "flipped", "blamed"),
    [
        (2, 6, 2),  # raised: the unchecked lines after it say so, two against one
        (6, 7, 6),  # raised to the seq of the checked line after it
        (4, 0, 4),  # lowered: it follows none
    ],
)
def test_a_flipped_seq_in_a_line_without_checksum_is_set_aside_not_the_good_lines_after_it(
    tmp_path: Path, number: int, flipped: int, blamed: int
) -> None:
    """One bit flipped in the seq of a line written before checksums (`"seq":2` read
    `"seq":6`): check named the good lines after it, repair set them aside (a fill among
    them, in the field) and kept the flipped one under its false seq."""
    path = tmp_path / "j.jsonl"
    lines = _upgraded(path)
    lines[number - 1] = lines[number - 1].replace(
        b'{"seq":%d,' % number, b'{"seq":%d,' % flipped, 1
    )
    path.write_bytes(b"".join(lines))
    assert [d.line for d in scan(path).damaged] == [blamed]
    with pytest.raises(JournalDamaged) as refused:
        Journal(path, fsync=False)
    assert f"has 1 damaged record(s): line {blamed} (" in refused.value.message
    assert f"seq {flipped}): " in refused.value.message
    repaired = repair(path)
    assert [d.line for d in repaired.set_aside] == [blamed]
    assert path.read_bytes() == b"".join(lines[: blamed - 1] + lines[blamed:])
    with Journal(path, fsync=False) as journal:
        assert [seq for seq, _, _ in journal.lines()] == [
            seq for seq in range(1, 11) if seq != blamed
        ]


@pytest.mark.parametrize(("number", "flipped"), [(2, 3), (3, 2)])
def test_two_unchecked_lines_with_one_seq_name_each_other_as_the_suspects(
    tmp_path: Path, number: int, flipped: int
) -> None:
    """Line 2's seq raised by one, or line 3's lowered by one: the two lines read alike
    (seq 3 and 3, or 2 and 2) and line 4 follows both, so nothing tells which is wrong.
    The later is set aside, as between checked lines; its damage names the other as the
    other suspect, so the operator compares the two."""
    path = tmp_path / "j.jsonl"
    lines = _upgraded(path)
    lines[number - 1] = lines[number - 1].replace(
        b'{"seq":%d,' % number, b'{"seq":%d,' % flipped, 1
    )
    path.write_bytes(b"".join(lines))
    [damage] = scan(path).damaged
    same = max(number, flipped) if number < flipped else flipped
    assert (damage.line, damage.seq) == (3, str(same))
    assert damage.why == (
        f"its seq {same} does not follow {same}, or line 2 (seq {same}, no checksum) is the "
        "damaged one: both follow 1, the line after both follows either, and neither carries "
        "a checksum; the one set aside is in the .damaged file"
    )


def test_a_checked_line_out_of_order_after_an_unchecked_line_that_follows_is_set_aside(
    tmp_path: Path,
) -> None:
    """The unchecked line before it is in order with the lines before it: nothing speaks
    against it, so the checked line (a copy of an earlier one) is the one set aside."""
    path = tmp_path / "j.jsonl"
    lines = _upgraded(path)
    copy = lines[1].replace(b'"session_id":"s"}', b'"session_id":"s"')[:-1]
    copy += b',"crc":%d}\n' % zlib.crc32(copy)  # seq 2, checked
    path.write_bytes(b"".join([*lines[:6], copy, *lines[6:]]))
    assert [d.line for d in scan(path).damaged] == [7]
    assert [d.line for d in repair(path).set_aside] == [7]
    assert path.read_bytes() == b"".join(lines)


def _sealed_lines(path: Path, count: int) -> list[bytes]:
    with Journal(path, fsync=False) as journal:
        bus = EventBus(journal)
        for _ in range(count):
            bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    return path.read_bytes().splitlines(keepends=True)


def test_a_whole_record_after_a_block_of_zeros_is_kept_and_the_zeros_set_aside(
    tmp_path: Path,
) -> None:
    """A crash can leave a block of the file never written (zeros) before data that was:
    the record after the zeros, its checksum intact, was set aside with them, as `seq ?`."""
    path = tmp_path / "j.jsonl"
    lines = _sealed_lines(path, 6)
    zeros = b"\x00" * 300
    path.write_bytes(b"".join(lines[:3]) + zeros + b"".join(lines[3:]))
    found = scan(path)
    assert [(d.line, d.offset, d.raw, d.seq) for d in found.damaged] == [
        (4, sum(map(len, lines[:3])), zeros, "?")
    ]
    assert "whole record(s) seq 4" in found.damaged[0].why
    assert (found.lines, found.last_seq) == (6, 6)
    with pytest.raises(JournalDamaged) as refused:
        Journal(path, fsync=False)
    assert "1 damaged record(s): line 4 (" in refused.value.message
    assert [d.raw for d in repair(path).set_aside] == [zeros]
    assert path.read_bytes() == b"".join(lines)  # the record kept, byte for byte
    [aside] = side_file(path).read_text().splitlines()
    assert base64.b64decode(json.loads(aside)["raw_b64"]) == zeros
    with Journal(path, fsync=False) as journal:
        assert journal.last_seq == 6

    side_file(path).unlink()  # a whole record out of order after the zeros: set aside too
    path.write_bytes(b"".join(lines[:3]) + zeros + lines[1] + b"".join(lines[3:]))
    found = scan(path)
    at = sum(map(len, lines[:3]))
    assert [(d.line, d.offset, d.raw, d.seq) for d in found.damaged] == [
        (4, at, zeros, "?"),
        (4, at + 300, lines[1], "2"),
    ]
    assert found.damaged[1].why == "its seq 2 does not follow 3"
    assert found.lines == 6
    assert [d.raw for d in repair(path).set_aside] == [zeros, lines[1]]
    assert path.read_bytes() == b"".join(lines)


def test_records_joined_by_a_flipped_newline_are_kept_and_a_damaged_one_named_by_its_seq(
    tmp_path: Path,
) -> None:
    """A newline flipped to 0x0B joins two lines: both were set aside as one record, named
    by the first's seq only, though each (or the second) was whole."""
    path = tmp_path / "j.jsonl"
    lines = _sealed_lines(path, 6)
    path.write_bytes(b"".join(lines[:1]) + lines[1][:-1] + b"\x0b" + b"".join(lines[2:]))
    found = scan(path)
    at = sum(map(len, lines[:2])) - 1
    assert [(d.line, d.offset, d.raw) for d in found.damaged] == [(2, at, b"\x0b")]
    assert "whole record(s) seq 2, 3" in found.damaged[0].why
    assert found.lines == 6
    repair(path)
    assert path.read_bytes() == b"".join(lines)  # each record a line of its own again

    damaged = lines[1].replace(b'"session_id":"s"', b'"session_id":"t"')[:-1] + b"\x0b"
    path.write_bytes(lines[0] + damaged + b"".join(lines[2:]))
    found = scan(path)
    assert [(d.line, d.raw, d.seq) for d in found.damaged] == [(2, damaged, "2")]
    assert "seq 3, read as lines of their own" in found.damaged[0].why
    assert found.lines == 5
    repair(path)
    assert path.read_bytes() == lines[0] + b"".join(lines[2:])
