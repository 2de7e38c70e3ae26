"""The journal: what was appended comes back, across a restart and a torn last line, and
the order tracker is rebuilt from it."""

from __future__ import annotations

import asyncio
import resource
import signal
from decimal import Decimal as D
from pathlib import Path

import pytest

from fixgw.bus import EventBus
from fixgw.domain import (
    CancelOrder,
    ExecKind,
    ExecutionReport,
    OrderStatus,
    SessionUp,
    Side,
    utc_now,
)
from fixgw.journal import Journal
from fixgw.orders import OrderTracker
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
    assert path.read_bytes().endswith(b'"session_id":"s"}\n')


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
            await handled(10, b'{"seq":1,"type":"order.accepted"}\n'),
            await handled(11),  # market data: nothing journaled
            await handled(12, b'{"seq":2,"type":"order.filled"}\n'),
            await handled(13),
        ]

    assert asyncio.run(scenario()) == [10, 10, 12, 12]
    journal.close()
    assert Journal(path, fsync=False).inbound_checkpoint() == 13


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
