"""`fixgw journal compact`: a journal kept to what a restart needs restores the very state
the whole one does; what holds the horizon back holds it."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from fixgw.bridge.reported import record_store, store_record
from fixgw.bus import EventBus
from fixgw.cli.main import main
from fixgw.compaction import Holder, bridge_stores, compact, holders, precompact_path
from fixgw.config import read_gateway_config
from fixgw.domain import (
    CancelOrder,
    ExecKind,
    ExecutionReport,
    OrderAnomaly,
    OrderStatus,
    SessionUp,
    Side,
    TradingHalted,
    TradingResumed,
    utc_now,
)
from fixgw.engine.fills import Fills
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import StartupError
from fixgw.journal import Journal, JournalDamaged, compacted_through, compaction_record, lock
from fixgw.nats.cursor import record_cursor
from tests.unit.orders_made import limit_buy

KEEP_CLOSED = 10
"""Ten closed orders kept whole, the ids of the last 100 forgotten still refused."""


def execution(
    cl_ord_id: str, kind: ExecKind, status: OrderStatus, cum: str, leaves: str, **extra: object
) -> ExecutionReport:
    fields: dict[str, object] = {
        "exec_id": f"{cl_ord_id}-{kind.value}-{cum}",
        "kind": kind,
        "status": status,
        "cl_ord_id": cl_ord_id,
        "order_id": f"X-{cl_ord_id}",
        "symbol": "BTC/USD",
        "side": Side.BUY,
        "cum_qty": D(cum),
        "leaves_qty": D(leaves),
        "avg_px": D("100") if D(cum) else D(0),
        "ts": utc_now(),
    }
    fields.update(extra)
    return ExecutionReport(**fields)  # type: ignore[arg-type]


def trading(path: Path, filled: int, left_open: int) -> OrderTracker:
    """A day of a gateway: `filled` orders placed, acknowledged and filled in two (every
    tenth cancelled first, its cancel refused), `left_open` acknowledged and half filled,
    a halt and a resume, then another halt left in force. As the gateway journals them."""
    bus = EventBus(Journal(path, fsync=False))
    tracker = OrderTracker(KEEP_CLOSED)

    def place(cl_ord_id: str) -> None:
        bus.publish(tracker.submit(limit_buy(cl_ord_id, qty="2")))
        bus.publish_all(
            tracker.apply_execution(execution(cl_ord_id, ExecKind.NEW, OrderStatus.NEW, "0", "2"))
        )

    def fill(cl_ord_id: str, cum: str, leaves: str) -> None:
        status = OrderStatus.FILLED if leaves == "0" else OrderStatus.PARTIALLY_FILLED
        kind = ExecKind.FILL if leaves == "0" else ExecKind.PARTIAL_FILL
        report = execution(cl_ord_id, kind, status, cum, leaves, last_qty=D("1"), last_px=D("100"))
        bus.publish_all(tracker.apply_execution(report))

    bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    for n in range(left_open):
        place(f"open-{n}")
        fill(f"open-{n}", "1", "1")
    for n in range(filled):
        cl_ord_id = f"fill-{n}"
        place(cl_ord_id)
        if n % 10 == 0:
            pending = tracker.cancel_requested(
                CancelOrder(
                    ts=utc_now(), cl_ord_id=f"cancel-{n}", orig_cl_ord_id=cl_ord_id,
                    order_id=None, symbol="BTC/USD", side=Side.BUY,
                )
            )  # fmt: skip
            assert pending is not None
            bus.publish(pending)
        fill(cl_ord_id, "1", "1")
        fill(cl_ord_id, "2", "0")
        tracker.prune()
        if n == filled // 3:
            bus.publish(TradingHalted(ts=utc_now(), by="test", reason="a pause", cancelling=[]))
            bus.publish(TradingResumed(ts=utc_now(), by="test"))
    bus.publish(TradingHalted(ts=utc_now(), by="test", reason="for the night", cancelling=[]))
    bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    bus.journal.close()
    return tracker


def restored(path: Path, keep_closed: int = KEEP_CLOSED) -> tuple[OrderTracker, Fills, Journal]:
    """What the gateway restores at start (`fixgw.app.build_gateway`)."""
    journal = Journal(path, fsync=False)
    tracker, fills = OrderTracker(keep_closed), Fills()
    tracker.restore(fills.noting(journal.events(prefix="order.")))
    tracker.prune()
    return tracker, fills, journal


def test_the_compacted_journal_restores_the_same_orders_forgotten_ids_exec_ids_and_halt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    trading(path, filled=400, left_open=20)
    whole_copy = tmp_path / "whole.jsonl"
    shutil.copyfile(path, whole_copy)
    before = path.read_bytes()

    done = compact(path, KEEP_CLOSED, keep_days=0, held=[], keep_trades=50)

    whole, whole_fills, whole_journal = restored(whole_copy)
    kept, kept_fills, kept_journal = restored(path)
    assert kept.index.state() == whole.index.state()
    assert [o.cl_ord_id for o in kept.open_orders()] == [f"open-{n}" for n in range(20)]
    closed = [o.cl_ord_id for o in kept.all_orders() if not o.is_open]
    assert closed == [f"fill-{n}" for n in range(390, 400)]
    assert kept.forgotten("fill-300") and kept.forgotten("cancel-300")  # still refused
    assert not kept.forgotten("fill-100") and not whole.forgotten("fill-100")
    assert [o.exec_ids for o in kept.all_orders()] == [o.exec_ids for o in whole.all_orders()]
    assert kept_fills.last(None, 50) == whole_fills.last(None, 50)  # --keep-trades 50
    assert kept_journal.last_seq == whole_journal.last_seq  # the next seq follows the last
    said = [e for e in kept_journal.events(prefix="session.") if not isinstance(e, SessionUp)]
    assert [type(e) for e in said] == [TradingHalted, TradingResumed, TradingHalted]

    assert done.horizon == kept_journal.last_seq - 1
    assert done.bytes_after == path.stat().st_size < done.bytes_before / 2
    assert precompact_path(path).read_bytes() == before
    assert compacted_through(path) == done.horizon == kept_journal.compacted_through
    assert whole_journal.compacted_through == 0


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "fixgw.yaml"
    path.write_text(
        f"""
session: {{sender_comp_id: client}}
credentials: {{api_key: {{env: NOT_READ}}, secret_key: {{env: NOT_READ}}}}
symbols: [BTC/USD]
journal: {{path: {tmp_path / "events.jsonl"}}}
orders: {{keep_closed: {KEEP_CLOSED}}}
{extra}"""
    )
    return path


def test_the_nats_cursor_and_the_bridge_mark_hold_the_horizon_back(tmp_path: Path) -> None:
    """Events the stream has not acknowledged, or no OMS was told, are read from the journal
    at the next start: they stay, whatever `keep_days` says."""
    path = tmp_path / "events.jsonl"
    trading(path, filled=300, left_open=5)
    seqs = [seq for seq, _, _ in Journal(path, fsync=False).lines()]
    bridge_store = tmp_path / "bridge-store"
    bridge_store.mkdir()
    (bridge_store / "reported.seq").write_text(f"{seqs[500]:020d}\n")
    (tmp_path / "events.jsonl.nats").write_text(
        f'{{"stream":"FIXGW","gateway":"gw1","seq":{seqs[400]}}}\n'
    )
    config = config_file(
        tmp_path,
        f"""
nats: {{servers: ["nats://127.0.0.1:4222"], gateway: gw1}}
bridge: {{port: 9999, store_dir: {bridge_store}, sessions: [{{comp_id: OMS1}}]}}
""",
    )
    held = holders(read_gateway_config(config), path)
    assert held == [
        Holder(seqs[400], f"the NATS cursor ({tmp_path / 'events.jsonl.nats'})"),
        Holder(seqs[500], f"the FIX bridge's reported.seq ({bridge_store / 'reported.seq'})"),
    ]
    whole = path.read_bytes().splitlines(keepends=True)

    done = compact(path, KEEP_CLOSED, keep_days=0, held=held)

    assert (done.horizon, done.set_by) == (seqs[400], [held[0].by])
    kept = path.read_bytes().splitlines(keepends=True)
    assert kept[-(len(whole) - 401) :] == whole[401:]  # every line after the cursor, as it was
    assert len(kept) < len(whole)

    (tmp_path / "events.jsonl.nats").unlink()  # NATS on, no cursor: the stream decides
    [unknown] = holders(read_gateway_config(config), path)[:1]
    assert unknown.seq == 0 and "no NATS cursor" in unknown.by


def test_the_bridge_marks_hold_the_horizon_while_the_bridge_is_off_and_each_sessions_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `bridge` taken out of the config the bridge's mark was not read: the journal lost
    what the bridge, put back, sends from it. A session's own mark (one not configured now
    among them) holds too. The store is the one the last bridge recorded beside the journal
    (from any working directory), else the default one."""
    path = tmp_path / "events.jsonl"
    trading(path, filled=300, left_open=5)
    seqs = [seq for seq, _, _ in Journal(path, fsync=False).lines()]
    store = tmp_path / "bridge-store"
    store.mkdir()
    (store / "reported.seq").write_text(f"{seqs[500]:020d}\n")
    (store / "reported.OMS1.seq").write_text(f"{seqs[300]:020d}\n")
    record_store(path, store)
    config = read_gateway_config(config_file(tmp_path))
    monkeypatch.chdir(tmp_path / "..")

    held = holders(config, path)
    done = compact(path, KEEP_CLOSED, keep_days=0, held=held)

    assert held == [
        Holder(seqs[500], f"the FIX bridge's reported.seq ({store / 'reported.seq'})"),
        Holder(seqs[300], f"OMS OMS1's reports' mark ({store / 'reported.OMS1.seq'})"),
    ]
    assert (done.horizon, done.set_by) == (seqs[300], [held[1].by])

    store_record(path).unlink()  # no bridge ever recorded: the default store
    monkeypatch.chdir(tmp_path)
    shutil.copytree(store, tmp_path / "var" / "bridge-store")
    assert bridge_stores(config, path) == [tmp_path / "var" / "bridge-store"]
    assert [h.seq for h in holders(config, path)] == [seqs[500], seqs[300]]


def test_a_nats_cursor_of_its_own_holds_the_horizon_while_nats_is_off(tmp_path: Path) -> None:
    """With `nats` out of the config only `<journal>.nats` was read: a `nats.cursor_path`
    elsewhere held nothing, and the events the stream never got went. The place the last
    transport recorded (`<journal>.nats-cursor`) is read too; the one beside the journal
    still is, once."""
    path = tmp_path / "events.jsonl"
    trading(path, filled=300, left_open=5)
    seqs = [seq for seq, _, _ in Journal(path, fsync=False).lines()]
    cursor = tmp_path / "nats" / "cursor.json"
    cursor.parent.mkdir()
    cursor.write_text(f'{{"stream":"FIXGW","gateway":"gw1","seq":{seqs[400]}}}\n')
    record_cursor(path, cursor)
    config = read_gateway_config(config_file(tmp_path))

    held = holders(config, path)
    done = compact(path, KEEP_CLOSED, keep_days=0, held=held)

    assert held == [Holder(seqs[400], f"the NATS cursor ({cursor})")]
    assert (done.horizon, done.set_by) == (seqs[400], [held[0].by])
    beside = tmp_path / "events.jsonl.nats"
    beside.write_text(f'{{"stream":"FIXGW","gateway":"gw1","seq":{seqs[450]}}}\n')
    assert [h.seq for h in holders(config, path)] == [seqs[450], seqs[400]]
    record_cursor(path, beside)
    assert holders(config, path) == [Holder(seqs[450], f"the NATS cursor ({beside})")]


def test_an_unreadable_bridge_mark_holds_everything_as_the_bridge_sends_everything_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    trading(path, filled=100, left_open=2)
    bridge_store = tmp_path / "bridge-store"
    bridge_store.mkdir()
    mark = bridge_store / "reported.seq"
    config = config_file(
        tmp_path,
        f"bridge: {{port: 9999, store_dir: {bridge_store}, sessions: [{{comp_id: OMS1}}]}}",
    )
    mark.write_bytes(b"")  # none written yet: nothing is sent again
    assert holders(read_gateway_config(config), path) == []
    mark.write_bytes(b"\x00\x00\x00\x00")  # damaged: read as 0 by the bridge (`ReportedMark`)

    held = holders(read_gateway_config(config), path)
    done = compact(path, KEEP_CLOSED, keep_days=0, held=held)

    assert held == [Holder(0, f"the FIX bridge's reported.seq, unreadable ({mark})")]
    assert (done.horizon, done.dropped, done.set_by) == (0, False, [held[0].by])


def test_an_order_id_taken_again_is_told_apart_by_the_orders_life(tmp_path: Path) -> None:
    """`again` is filled, forgotten and no longer refused, then placed again and left open:
    its first life's lines go, its second's stay, and the open order is the second."""
    path = tmp_path / "events.jsonl"
    bus = EventBus(Journal(path, fsync=False))
    tracker = OrderTracker(1)
    for cl_ord_id in ["again", *(f"fill-{n}" for n in range(30))]:
        bus.publish(tracker.submit(limit_buy(cl_ord_id, qty="2")))
        report = execution(
            cl_ord_id, ExecKind.FILL, OrderStatus.FILLED, "2", "0", last_qty=D("2"), last_px=D(100)
        )
        bus.publish_all(tracker.apply_execution(report))
        tracker.prune()
    bus.publish(tracker.submit(limit_buy("again", qty="2", price="101")))
    bus.journal.close()
    whole_copy = tmp_path / "whole.jsonl"
    shutil.copyfile(path, whole_copy)

    compact(path, 1, keep_days=0, held=[], keep_trades=0)

    assert restored(path, 1)[0].index.state() == restored(whole_copy, 1)[0].index.state()
    [again] = restored(path, 1)[0].open_orders()
    assert (again.cl_ord_id, again.price) == ("again", D("101"))
    assert path.read_bytes().count(b'"cl_ord_id":"again"') == 1


def test_an_oms_numbering_its_orders_from_1_each_day_keeps_one_order_per_id_refused(
    tmp_path: Path,
) -> None:
    """Each day the OMS places ids 1 to 30 again (the gateway takes them: the day before's
    are no longer refused), all open at once, and they close in another order each day. The
    forgotten ids still refused are those of the last day's last closed, in the order they
    closed: the lines kept are that day's orders of those ids, not every day's (an earlier
    day's, replayed, would put its id where it then closed)."""
    path = tmp_path / "events.jsonl"
    bus = EventBus(Journal(path, fsync=False))
    tracker = OrderTracker(2)  # the last 20 forgotten ids refused

    def order(cl_ord_id: str, day: int) -> None:
        tracker.refuse_if_in_use(cl_ord_id)  # as the gateway does: taken
        bus.publish(tracker.submit(limit_buy(cl_ord_id, qty="2")))
        bus.publish_all(tracker.apply_execution(execution(
            cl_ord_id, ExecKind.NEW, OrderStatus.NEW, "0", "2",
            order_id=f"X-{day}-{cl_ord_id}", exec_id=f"{day}-{cl_ord_id}-new",
        )))  # fmt: skip

    def fill(cl_ord_id: str, day: int) -> None:
        bus.publish_all(tracker.apply_execution(execution(
            cl_ord_id, ExecKind.FILL, OrderStatus.FILLED, "2", "0", last_qty=D("2"),
            last_px=D(100), order_id=f"X-{day}-{cl_ord_id}", exec_id=f"{day}-{cl_ord_id}-fill",
        )))  # fmt: skip
        tracker.prune()

    for day in range(6):
        for n in range(30):  # the night's orders of another desk
            order(f"night-{day}-{n}", day)
            fill(f"night-{day}-{n}", day)
        numbers = [str(n) for n in range(1, 31)]
        for cl_ord_id in numbers:
            order(cl_ord_id, day)
        for cl_ord_id in numbers[day % 2 :: 2] + numbers[1 - day % 2 :: 2][::-1]:
            fill(cl_ord_id, day)
    order("open", 6)
    bus.journal.close()
    whole_copy = tmp_path / "whole.jsonl"
    shutil.copyfile(path, whole_copy)

    done = compact(path, 2, keep_days=0, held=[], keep_trades=0)

    assert done.dropped and done.orders_kept["ids"] == 20
    whole, kept = restored(whole_copy, 2)[0], restored(path, 2)[0]
    assert kept.index.state() == whole.index.state()
    # day 5 closed 2, 4 ... 30, then 29, 27 ... 1; 3 and 1 are kept closed
    refused = {n for n in range(1, 31) if kept.forgotten(str(n))}
    assert refused == {*range(5, 31, 2), *range(18, 31, 2)}
    assert b'"order_id":"X-0-' not in path.read_bytes()
    assert b'"order_id":"X-4-' not in path.read_bytes()


def test_a_journal_path_linked_to_another_disk_is_compacted_there(tmp_path: Path) -> None:
    """The gateway writes the file the link names: that file shrinks, and stays as it was
    beside itself; the link stays, and the record is beside it, where the gateway reads it."""
    data = tmp_path / "data"
    data.mkdir()
    real = data / "events.jsonl"
    trading(real, filled=100, left_open=2)
    whole = real.read_bytes()
    link = tmp_path / "events.jsonl"
    link.symlink_to(real)

    done = compact(link, KEEP_CLOSED, keep_days=0, held=[], keep_trades=0)

    assert link.is_symlink() and link.resolve() == real
    assert real.stat().st_size == done.bytes_after < len(whole)
    assert done.previous == precompact_path(real) and not done.previous.is_symlink()
    assert done.previous.read_bytes() == whole and not precompact_path(link).exists()
    assert compacted_through(link) == done.horizon and not Path(f"{real}.compacted").exists()
    (tmp_path / "whole.jsonl").write_bytes(whole)
    assert restored(link)[0].index.state() == restored(tmp_path / "whole.jsonl")[0].index.state()


def test_the_record_says_which_keep_closed_the_ids_kept_are_for(tmp_path: Path) -> None:
    """Compacted with `keep_closed` 2, the journal keeps the ids of 20 forgotten orders: a
    gateway started with 10 refuses fewer than 10 would (it warns). Compacted again with 10,
    the record says 2 until the ids 10 refuses are all of orders placed after the horizon
    recorded."""
    path = tmp_path / "events.jsonl"

    def orders(prefix: str, n: int) -> None:
        bus = EventBus(Journal(path, fsync=False))
        tracker = OrderTracker(10)
        for i in range(n):
            bus.publish(tracker.submit(limit_buy(f"{prefix}-{i}", qty="2")))
            report = execution(f"{prefix}-{i}", ExecKind.FILL, OrderStatus.FILLED, "2", "0",
                               last_qty=D("2"), last_px=D(100))  # fmt: skip
            bus.publish_all(tracker.apply_execution(report))
        bus.journal.close()

    orders("a", 60)
    first = compact(path, 2, keep_days=0, held=[], keep_trades=0)
    assert compaction_record(path) == (first.horizon, 2)
    assert Journal(path, fsync=False).compacted_keep_closed == 2

    orders("b", 100)  # 90 forgotten: the ids 10 refuses reach back before the first horizon
    again = compact(path, 10, keep_days=0, held=[], keep_trades=0)
    assert again.dropped and compaction_record(path) == (again.horizon, 2)

    orders("c", 120)
    last = compact(path, 10, keep_days=0, held=[], keep_trades=0)
    assert last.dropped and compaction_record(path) == (last.horizon, 10)


def test_damage_a_running_gateway_and_a_young_journal_are_refused_or_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    trading(path, filled=50, left_open=2)
    whole = path.read_bytes()

    young = compact(path, KEEP_CLOSED, keep_days=7, held=[])  # every event is from today
    assert (young.horizon, young.dropped) == (0, False) and young.set_by == ["keep-days 7"]
    assert path.read_bytes() == whole and not precompact_path(path).exists()

    dry = compact(
        path, KEEP_CLOSED, keep_days=7, held=[], dry_run=True, now=utc_now() + timedelta(days=8)
    )
    assert dry.dropped and dry.lines_after < dry.lines_before and dry.previous is None
    assert path.read_bytes() == whole and not precompact_path(path).exists()

    held = lock(path)  # as a running gateway does
    with pytest.raises(StartupError, match="in use by another process"):
        compact(path, KEEP_CLOSED, keep_days=0, held=[])
    os.close(held)
    assert path.read_bytes() == whole

    lines = whole.splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"qty":"2"', b'"qty":"7"')
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalDamaged):
        compact(path, KEEP_CLOSED, keep_days=0, held=[])
    assert not precompact_path(path).exists()


def test_a_torn_last_line_is_left_for_the_gateway_to_cut(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    trading(path, filled=50, left_open=2)
    with path.open("ab") as f:
        f.write(b'{"seq":99999,"type":"sess')

    compact(path, KEEP_CLOSED, keep_days=0, held=[])

    assert path.read_bytes().endswith(b'}\n{"seq":99999,"type":"sess')
    assert Journal(path, fsync=False).last_seq < 99999  # cut at start, as always


def test_if_larger_than_leaves_a_smaller_journal_alone_for_an_exec_start_pre(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    trading(path, filled=100, left_open=2)
    whole = path.read_bytes()
    config = str(config_file(tmp_path))
    compact_ = ["journal", "compact", "-c", config, "--keep-days", "0"]

    assert main([*compact_, "--if-larger-than", "1MB"]) == 0
    assert path.read_bytes() == whole and not precompact_path(path).exists()
    assert f"({len(whole)} bytes), not larger than 1.0 MiB (1048576 bytes): left as it is" in (
        capsys.readouterr().out
    )

    assert main([*compact_, "--if-larger-than", f"{len(whole) // 1024 - 1}K"]) == 0
    assert len(path.read_bytes()) < len(whole)
    out = capsys.readouterr().out
    assert "set by the journal's last line (always kept)" in out
    assert f"as it was: {precompact_path(path)}, {len(whole) / 1024:.1f} KiB" in out

    with pytest.raises(SystemExit):
        main([*compact_, "--if-larger-than", "lots"])


def test_keep_days_further_back_than_any_date_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    trading(path, filled=20, left_open=1)
    whole = path.read_bytes()
    config = str(config_file(tmp_path))

    for keep_days in ("inf", "1000000"):
        assert main(["journal", "compact", "-c", config, "--keep-days", keep_days]) == 0
        out = capsys.readouterr().out
        assert f"set by keep-days {float(keep_days):g}" in out and "nothing to drop" in out
        assert path.read_bytes() == whole and not precompact_path(path).exists()


def test_a_closed_order_owed_an_answer_after_an_unreadable_report_is_owed_it_after_compaction(
    tmp_path: Path,
) -> None:
    """Its `order.anomaly` `unreadable` is kept with its other lines: the compacted journal
    still has the restarted gateway ask about it (`Order.unread`, in the state compared)."""
    path = tmp_path / "events.jsonl"
    trading(path, filled=30, left_open=2)
    bus = EventBus(Journal(path, fsync=False))
    bus.publish(
        OrderAnomaly(
            ts=utc_now(), cl_ord_id="fill-29", order_id="X-fill-29", exec_id="B-1",
            problem="unreadable", detail="ExecType H is not read",
        )
    )  # fmt: skip
    bus.publish(SessionUp(ts=utc_now(), session_id="s"))
    bus.journal.close()
    whole_copy = tmp_path / "whole.jsonl"
    shutil.copyfile(path, whole_copy)

    compact(path, KEEP_CLOSED, keep_days=0, held=[], keep_trades=0)

    kept, whole = restored(path)[0], restored(whole_copy)[0]
    assert [o.cl_ord_id for o in kept.all_orders() if o.unread] == ["fill-29"]
    assert kept.index.state() == whole.index.state()
