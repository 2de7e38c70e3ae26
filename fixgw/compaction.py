"""`fixgw journal compact`: the journal made smaller, offline, so that a gateway started on it
behaves as on the whole one, except that a `since` replay from before the horizon is
incomplete (and says so: `compacted_through`).

The horizon H is a seq: every line after it is kept byte for byte. It is the lowest of the
seq before the first event newer than `keep_days`, the NATS publisher's cursor (what the
stream has not acknowledged is published from the journal), the FIX bridge's marks (what
no OMS was told is sent from the journal: `reported.seq` and each session's, a session's not
configured now too, and while `bridge` is off), and the seq before the last line (the next
seq follows the last line).

Of the lines up to H, those a start reads are kept: every order event of each order that
the replay the gateway makes at start (`OrderTracker.restore`) holds at H (open, or closed
and kept) or still refuses an id of because forgetting it put the id there (forgotten, its
ClOrdID or a cancel's among the ids kept; an earlier order of the same id, replayed, would
put it elsewhere); of each order with one of the last `keep_trades` fills (overall and of
each symbol: `trades`); and every `session.halted` and `session.resumed` (the kill
switch). Orders are told apart by their life in that replay, not by ClOrdID, which a later
order may take again once it is no longer refused. Before anything is replaced, the journal
written is replayed as a start would, and must give the same orders, closed orders,
forgotten ids and ExecIDs as the whole one, and the same last fills: otherwise nothing
changes.

It runs under the journal's lock (refused while a gateway runs), on an undamaged journal; a
torn last line is kept as it was, for the gateway to cut at start as usual. The previous
journal stays as `<journal>.precompact` (a hard link: no copy), and the horizon and the
`keep_closed` whose ids are kept are recorded in `<journal>.compacted` before the new journal
takes the old one's name in one rename.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from fixgw.bridge.reported import FILE_NAME as REPORTED_FILE
from fixgw.bridge.reported import recorded_store, session_marks
from fixgw.config import BRIDGE_STORE_DIR, GatewayConfig
from fixgw.domain import AnyEvent, OrderFilled, OrderPartiallyFilled
from fixgw.engine.fills import TRADES_KEPT, Fills
from fixgw.engine.order_index import IDS_KEPT_PER_CLOSED_ORDER, OrderIndex
from fixgw.engine.tracker import OrderTracker
from fixgw.errors import FixgwError
from fixgw.journal import (
    FILE_MODE,
    JournalDamaged,
    compacted_record,
    compaction_record,
    lock,
    lock_path,
    scan,
)
from fixgw.nats.cursor import Cursor, cursor_path, recorded_cursor

KILL_SWITCH_TYPES = frozenset({"session.halted", "session.resumed"})
"""The lines `KillSwitch.restore` reads at start."""

_OTHER, _ORDER, _KILL_SWITCH = 0, 1, 2
_NONE = -1
"""A line's order life: none."""
_CATEGORIES = ("open", "closed", "ids", "trades")
"""Why an order's lines are kept, in the order a reason is given: open at H, closed and kept
at H, forgotten with its ids still refused, one of the last fills."""


class CompactionRefused(FixgwError):
    code = "compaction_refused"


class Holder(NamedTuple):
    """Something that holds the horizon back: history after `seq` must stay whole."""

    seq: int
    by: str


class _Stamp(msgspec.Struct):
    seq: int
    type: str
    ts: datetime | None = None


class _Symbol(msgspec.Struct):
    symbol: str | None = None


_decoder = msgspec.json.Decoder(AnyEvent)


class Compacted(NamedTuple):
    horizon: int
    set_by: list[str]
    lines_before: int
    bytes_before: int
    lines_after: int
    bytes_after: int
    orders_kept: dict[str, int]
    """Orders whose lines up to the horizon are kept, by why (`_CATEGORIES`)."""
    kill_switch_lines: int
    previous: Path | None
    """The journal as it was (None: a dry run, or nothing to drop)."""

    @property
    def dropped(self) -> bool:
        return self.lines_after < self.lines_before


def precompact_path(path: Path) -> Path:
    return path.with_name(path.name + ".precompact")


def holders(config: GatewayConfig, path: Path) -> list[Holder]:
    """The NATS cursor and the FIX bridge's marks, from the files the config names, or left
    while that part is off. A mark the bridge cannot read holds everything, as it then sends
    every report again (`ReportedMark`); an empty one (none written yet) holds nothing."""
    held: list[Holder] = []
    if config.nats is not None:
        nats = config.nats
        cursor = Cursor(cursor_path(nats, path), nats.stream.name, nats.gateway)
        if cursor.found:
            held.append(Holder(cursor.seq, f"the NATS cursor ({cursor.path})"))
        else:  # the publisher starts after the stream's last event: which, only it knows
            held.append(Holder(0, f"no NATS cursor of this stream and gateway ({cursor.path})"))
    else:
        held.extend(cursors_left(path))
    for store in bridge_stores(config, path):
        held.extend(_bridge_marks(store))
    return held


def bridge_stores(config: GatewayConfig, path: Path) -> list[Path]:
    """Where the FIX bridge's marks are: `bridge.store_dir` (from this working directory)
    and the store the last bridge to start used, recorded beside the journal
    (`<journal>.bridge`), which finds it whatever the working directory; with neither, the
    default store, as a bridge turned on again with its defaults would use it."""
    places: list[Path] = []
    if config.bridge is not None:
        places.append(Path(config.bridge.store_dir))
    recorded = recorded_store(path)
    if recorded is not None:
        places.append(recorded)
    if not places:
        places.append(Path(BRIDGE_STORE_DIR))
    found: list[Path] = []
    for place in places:
        if all(not _same_place(place, p) for p in found):
            found.append(place.absolute())
    return found


def _same_place(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()


def _bridge_marks(store: Path) -> list[Holder]:
    held: list[Holder] = []
    marks = [("the FIX bridge's reported.seq", store / REPORTED_FILE)]
    marks += [(f"OMS {oms}'s reports' mark", mark) for oms, mark in session_marks(store)]
    for what, mark in marks:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            text = mark.read_bytes()[:32].strip()
            if text.isdigit():
                held.append(Holder(int(text), f"{what} ({mark})"))
            elif text:
                held.append(Holder(0, f"{what}, unreadable ({mark})"))
    return held


def cursors_left(path: Path) -> list[Holder]:
    """The NATS cursors left while `nats` is off: NATS turned on again would publish from
    one. Beside the journal, and where the last transport to start had it
    (`<journal>.nats-cursor`: a `nats.cursor_path` of its own)."""
    held: list[Holder] = []
    places = [Path(f"{path}.nats")]
    recorded = recorded_cursor(path)
    if recorded is not None and not _same_place(recorded, places[0]):
        places.append(recorded)
    for place in places:
        try:
            seq = msgspec.json.decode(place.read_bytes()).get("seq")
        except (OSError, msgspec.DecodeError, AttributeError):
            continue
        if isinstance(seq, int):
            held.append(Holder(seq, f"the NATS cursor ({place})"))
    return held


def compact(
    path: Path,
    keep_closed: int,
    keep_days: float,
    held: list[Holder],
    keep_trades: int = TRADES_KEPT,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Compacted:
    """Compact the journal at `path` (see the module). StartupError while a gateway runs on
    it, JournalDamaged on damage, CompactionRefused if the lines kept would not restore
    the same gateway; in each case nothing is changed. A dry run takes no lock and writes
    nothing. `path` a symbolic link, the file it names is compacted where it is (the
    gateway writes there); the lock and the record stay beside `path`, where the gateway
    looks for them."""
    original = os.stat(path)
    held_lock: int | None = None
    if not dry_run:
        lock_made = not lock_path(path).exists()
        held_lock = lock(path)
        if lock_made:
            _owned_like(held_lock, original)
    try:
        return _Compaction(path, keep_closed, keep_trades).run(
            keep_days, held, now or datetime.now(UTC), original, dry_run
        )
    finally:
        if held_lock is not None:
            os.close(held_lock)


class _Compaction:
    def __init__(self, configured: Path, keep_closed: int, keep_trades: int) -> None:
        self.configured = configured
        """`journal.path`: the gateway's lock and `<journal>.compacted` are beside it."""
        self.path = configured.resolve()
        """The file itself: it is replaced, and stays as `.precompact`, where it is."""
        self.keep_closed = keep_closed
        self.keep_trades = keep_trades
        self.seqs = array("q")
        self.kinds = bytearray()
        self.life = array("q")
        """The order life (a number, in the order they began) each line up to H is of."""
        self.why: dict[int, str] = {}
        """Order lives kept, and why."""
        self.lives: list[int] = []
        """The line each order life began at."""

    def run(
        self,
        keep_days: float,
        held: list[Holder],
        now: datetime,
        original: os.stat_result,
        dry_run: bool,
    ) -> Compacted:
        found = scan(self.path)
        if found.damaged:
            raise JournalDamaged(self.path, found.damaged)
        self.good_end = found.good_end
        oldest_kept = self._read_stamps(_cutoff(now, keep_days))
        candidates = [Holder(oldest_kept, f"keep-days {keep_days:g}"), *held]
        if len(self.seqs) >= 2:
            candidates.append(Holder(self.seqs[-2], "the journal's last line (always kept)"))
        else:
            candidates.append(Holder(0, "the journal's last line (always kept)"))
        horizon = max(0, min(h.seq for h in candidates))
        set_by = [h.by for h in candidates if max(0, h.seq) == horizon]
        whole = self._replay(horizon)
        keep = self._kept_lines(horizon)
        kept_lines = sum(keep)
        kept_bytes = 0
        kill_switch_lines = 0
        for n, line in enumerate(self._lines()):
            if keep[n]:
                kept_bytes += len(line)
                if self.seqs[n] <= horizon and self.kinds[n] == _KILL_SWITCH:
                    kill_switch_lines += 1
        torn = found.size - found.good_end
        counts = {c: sum(1 for w in self.why.values() if w == c) for c in _CATEGORIES}
        result = Compacted(
            horizon=horizon,
            set_by=set_by,
            lines_before=len(self.seqs),
            bytes_before=found.size,
            lines_after=kept_lines,
            bytes_after=kept_bytes + torn,
            orders_kept=counts,
            kill_switch_lines=kill_switch_lines,
            previous=None,
        )
        if dry_run or not result.dropped:
            if result.dropped:
                self._check(whole, self._kept(keep))
            return result
        temporary = self.path.with_name(self.path.name + ".compacting")
        self._write(temporary, keep, original)
        try:
            self._check(whole, _lines_of(temporary))
        except BaseException:
            temporary.unlink()
            raise
        previous = precompact_path(self.path)
        try:
            previous.unlink(missing_ok=True)
            os.link(self.path, previous, follow_symlinks=False)
            self._record(horizon, original)
        except BaseException:
            temporary.unlink()
            raise
        os.replace(temporary, self.path)
        _sync_directory(self.path.parent)
        return result._replace(previous=previous)

    def _record(self, horizon: int, original: os.stat_result) -> None:
        """`<journal>.compacted`: the highest horizon, and the `keep_closed` whose ids the
        journal keeps: an earlier compaction's lower one, while the ids it dropped would
        still be refused."""
        through, keep_closed = compaction_record(self.configured)
        if keep_closed is None or keep_closed >= self.keep_closed or self._refused_since(through):
            keep_closed = self.keep_closed
        record = compacted_record(self.configured)
        temporary = record.with_name(record.name + ".new")
        with _created(temporary, original) as out:
            out.write(b"%020d\n%020d\n" % (max(horizon, through), keep_closed))
        os.replace(temporary, record)

    def _refused_since(self, seq: int) -> bool:
        """The ids refused at the horizon are as many as `keep_closed` refuses, all of
        orders placed after `seq`: those of orders closed before it would be refused no
        longer, whatever `keep_closed` their lines were dropped with."""
        refused = self._forgotten_at_horizon
        if len(refused) < IDS_KEPT_PER_CLOSED_ORDER * max(self.keep_closed, 1):
            return False
        return refused[0] != _NONE and self.seqs[self.lives[refused[0]]] > seq

    def _lines(self) -> Iterator[bytes]:
        """The journal's whole lines (a torn tail left out)."""
        return _lines_of(self.path, self.good_end)

    def _read_stamps(self, cutoff: datetime) -> int:
        """Each line's seq and kind; returns the seq before the first event newer than
        `cutoff` (the last seq if none is)."""
        before_newer: int | None = None
        previous = 0
        for line in self._lines():
            stamp = msgspec.json.decode(line, type=_Stamp)
            self.seqs.append(stamp.seq)
            if stamp.type in KILL_SWITCH_TYPES:
                self.kinds.append(_KILL_SWITCH)
            elif stamp.type.startswith("order."):
                self.kinds.append(_ORDER)
            else:
                self.kinds.append(_OTHER)
            if before_newer is None and stamp.ts is not None and stamp.ts > cutoff:
                before_newer = previous
            previous = stamp.seq
        return previous if before_newer is None else before_newer

    def _replay(self, horizon: int) -> tuple[OrderTracker, Fills]:
        """The whole journal restored as the gateway restores it at start, each line up to
        the horizon marked with the order life it was of; the orders held at the horizon,
        and those forgotten whose ids are still refused there, marked kept."""
        tracker = OrderTracker(self.keep_closed)
        fills = Fills()
        lives = self.lives
        self._forgotten_at_horizon: list[int] = []
        """The life that put each forgotten id still refused at the horizon there."""
        self._last_fills: deque[int] = deque(maxlen=self.keep_trades)
        self._last_fills_of: dict[str, deque[int]] = {}
        tracker.restore(fills.noting(self._attributed(tracker, horizon, lives)))
        tracker.prune()
        self._mark_remembered()
        return tracker, fills

    def _attributed(
        self, tracker: OrderTracker, horizon: int, lives: list[int]
    ) -> Iterator[AnyEvent]:
        """The journal's order events, to `restore`: before each is handed on, the one before
        it has been applied (and the orders beyond `keep_closed` forgotten), so what it
        changed can be seen."""
        index = tracker.index
        life_of: dict[int, int] = {}
        """id() of each order held -> its life."""
        named_by: dict[str, int] = {}
        """Each ClOrdID (an order's or a cancel's) -> the life whose line last named it, since
        it was last remembered as forgotten."""
        self._remembered_by: dict[str, int] = {}
        """Each forgotten id still refused -> the life whose forgetting put it where it is
        among them (an id remembered again while still there keeps its place)."""
        newest: str | None = None
        at_horizon = False
        for n, line in enumerate(self._lines()):
            seq = self.seqs[n]
            if seq > horizon and not at_horizon:
                at_horizon = True
                self._note_horizon(tracker, life_of)
            if self.kinds[n] != _ORDER:
                if seq <= horizon:
                    self.life.append(_NONE)
                continue
            event = _decoder.decode(line)
            if isinstance(event, OrderPartiallyFilled | OrderFilled):
                self._note_fill(n, event.symbol)
            if seq > horizon:
                yield event
                continue
            cl_ord_id = getattr(event, "cl_ord_id", None) or ""
            cancel_cl_ord_id: str | None = getattr(event, "cancel_cl_ord_id", None)
            before = index.get(cl_ord_id)
            was_forgotten = index.forgotten(cl_ord_id)
            yield event
            if before is not None:
                life = life_of.get(id(before), _NONE)
            else:
                after = index.get(cl_ord_id)
                if after is not None or (not was_forgotten and index.forgotten(cl_ord_id)):
                    life = len(lives)
                    lives.append(n)
                    if after is not None:
                        life_of[id(after)] = life
                else:
                    life = _NONE
            self.life.append(life)
            if life != _NONE:
                named_by[cl_ord_id] = life
                if cancel_cl_ord_id:
                    named_by[cancel_cl_ord_id] = life
            newest = self._note_remembered(index, newest, named_by)
            if n % 65_536 == 0:  # forget the lives of orders forgotten meanwhile, and ids
                life_of = {id(o): life_of[id(o)] for o in index.all_orders() if id(o) in life_of}
                self._remembered_by = {
                    i: by for i, by in self._remembered_by.items() if index.forgotten(i)
                }
        if not at_horizon:
            self._note_horizon(tracker, life_of)

    def _note_remembered(
        self, index: OrderIndex, newest: str | None, named_by: dict[str, int]
    ) -> str | None:
        """The ids the last event's replay remembered as forgotten (those newer than
        `newest`, the newest before it), each noted as put there by the life that last
        named it; returns the newest now."""
        newest_first = index.forgotten_ids_newest_first()
        now = next(newest_first, None)
        if now is None or now == newest:
            return now
        remembered: str | None = now
        while remembered is not None and remembered != newest:
            by = named_by.pop(remembered, None)
            if by is not None:
                self._remembered_by[remembered] = by
            remembered = next(newest_first, None)
        return now

    def _note_horizon(self, tracker: OrderTracker, life_of: dict[int, int]) -> None:
        for order in tracker.all_orders():
            life = life_of.get(id(order), _NONE)
            if life != _NONE:
                self.why[life] = "open" if order.is_open else "closed"
        self._forgotten_at_horizon = [
            self._remembered_by.get(i, _NONE) for i in tracker.index.state().forgotten_ids
        ]

    def _note_fill(self, n: int, symbol: str) -> None:
        self._last_fills.append(n)
        of_symbol = self._last_fills_of.get(symbol)
        if of_symbol is None:
            of_symbol = self._last_fills_of[symbol] = deque(maxlen=self.keep_trades)
        of_symbol.append(n)

    def _mark_remembered(self) -> None:
        """The forgotten orders whose forgetting put an id still refused at the horizon
        where it is: of the orders that took a ClOrdID in turn, the one that did (replayed,
        an earlier one would put it elsewhere); and the orders of the last fills."""
        for life in self._forgotten_at_horizon:
            if life != _NONE:
                self.why.setdefault(life, "ids")
        last = len(self.life)
        for of in (self._last_fills, *self._last_fills_of.values()):
            for n in of:
                if n < last and self.life[n] != _NONE:
                    self.why.setdefault(self.life[n], "trades")

    def _kept_lines(self, horizon: int) -> bytearray:
        keep = bytearray(len(self.seqs))
        for n, seq in enumerate(self.seqs):
            keep[n] = (
                seq > horizon
                or self.kinds[n] == _KILL_SWITCH
                or (self.kinds[n] == _ORDER and self.life[n] in self.why)
            )
        return keep

    def _kept(self, keep: bytearray) -> Iterator[bytes]:
        return (line for n, line in enumerate(self._lines()) if keep[n])

    def _write(self, temporary: Path, keep: bytearray, original: os.stat_result) -> None:
        with _created(temporary, original) as out:
            for line in self._kept(keep):
                out.write(line)
            with self.path.open("rb") as source:  # a torn tail, as it was
                source.seek(self.good_end)
                out.write(source.read())

    def _check(self, whole: tuple[OrderTracker, Fills], kept: Iterator[bytes]) -> None:
        """The lines kept restore what the whole journal does, or CompactionRefused."""
        tracker = OrderTracker(self.keep_closed)
        fills = Fills()
        tracker.restore(fills.noting(_order_events(kept)))
        tracker.prune()
        whole_tracker, whole_fills = whole
        expected, restored = whole_tracker.index.state(), tracker.index.state()
        differs = [
            what.replace("_", " ")
            for what in expected._fields
            if getattr(expected, what) != getattr(restored, what)
        ]
        for symbol in (None, *self._last_fills_of):
            mine, theirs = fills.last(symbol, TRADES_KEPT), whole_fills.last(symbol, TRADES_KEPT)
            wanted = min(len(theirs), self.keep_trades)
            if len(mine) < wanted or mine[len(mine) - wanted :] != theirs[len(theirs) - wanted :]:
                differs.append(f"fills{'' if symbol is None else ' of ' + symbol}")
        if differs:
            raise CompactionRefused(
                f"{self.configured}: the lines kept would not restore the same "
                f"{', '.join(differs)} as the whole journal (a ClOrdID used by two orders?); "
                "nothing was changed"
            )


def _cutoff(now: datetime, keep_days: float) -> datetime:
    """The time before which events may go: `keep_days` (`inf`, say) reaching further back
    than a datetime can, none."""
    try:
        return now - timedelta(days=keep_days)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _order_events(lines: Iterator[bytes]) -> Iterator[AnyEvent]:
    """What the gateway restores its orders from: `Journal.events(prefix="order.")`."""
    for line in lines:
        if msgspec.json.decode(line, type=_Stamp).type.startswith("order."):
            yield _decoder.decode(line)


def _lines_of(path: Path, end: int | None = None) -> Iterator[bytes]:
    with path.open("rb") as f:
        offset = 0
        for line in f:
            offset += len(line)
            if end is not None and offset > end:
                return
            if line.endswith(b"\n"):
                yield line


def _owned_like(fd: int, original: os.stat_result) -> None:
    made = os.fstat(fd)
    if (made.st_uid, made.st_gid) != (original.st_uid, original.st_gid):
        os.fchown(fd, original.st_uid, original.st_gid)


@contextlib.contextmanager
def _created(path: Path, original: os.stat_result) -> Iterator[BinaryIO]:
    """A new file beside the journal, owned and moded as it is, written and synced; through
    no link planted at `path` (compaction is run as root on a directory the service user
    owns). Removed if the block fails."""
    path.unlink(missing_ok=True)  # one left by a compaction that died, or planted
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, original.st_mode & FILE_MODE
    )
    try:
        with os.fdopen(fd, "wb") as out:
            _owned_like(fd, original)
            yield out
            out.flush()
            os.fsync(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
