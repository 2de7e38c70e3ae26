"""The append-only event journal: every event except market data, as the line clients get.

A line is appended before it is fanned out. Writes are flushed once per turn of the
loop (with `fsync: always`, synced too), so a burst costs one system call. At start the
journal gives back the last `seq` and every order event, from which the order tracker is
rebuilt; `subscribe ... since=N` replays from it.

Each line carries its own check: `{"seq":N,...,"crc":C}`, C the CRC-32 of the line's bytes
before `,"crc":` (`sealed`), so the line stays the very JSON line clients receive. At start
every line is checked. A torn last line (a crash mid-write) is cut, its bytes kept in
`<journal>.damaged`; damage anywhere else stops the start (`JournalDamaged`) with nothing
changed: readable history after it is never thrown away. `fixgw journal check` lists the
damaged records, `fixgw journal repair` moves them to `<journal>.damaged` and keeps every
other record as it was (a whole record found in a damaged line, on a line of its own). Lines
written before checksums (no `crc`) are read as before: whole JSON with `seq` and `type`,
`seq` increasing (`scan` says which of two lines out of order is set aside).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import fcntl
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import msgspec
import structlog

from fixgw.domain import AnyEvent
from fixgw.errors import FixgwError, StartupError

log = structlog.get_logger("fixgw.journal")


STATE_FILE_BYTES = 21
"""A state file beside the journal holds one number in 20 digits and a newline."""


def preallocate(fd: int, size: int) -> None:
    """Give an empty state file its bytes (spaces, read as nothing) at start, so that
    rewriting it in place later needs no new block of the disk: it can still be written
    when the disk is full. A failure here is left to the first real write to say."""
    if os.fstat(fd).st_size == 0:
        with contextlib.suppress(OSError):
            os.pwrite(fd, b" " * (size - 1) + b"\n", 0)


def write_at(fd: int, data: bytes, offset: int) -> None:
    """All of `data` at `offset`, or OSError: a write the disk takes only part of (a short
    write: a full disk) is carried on, and the next part raises why it cannot be written."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def warn_if_unreadable(fd: int, path: Path, then: str) -> bool:
    """A state file (beside the journal, or the bridge's `reported.seq`) holds one number,
    or nothing yet; anything else is damage (the disk, a hand), read as nothing: said once,
    at start. True if it is."""
    text = os.pread(fd, 32, 0).strip()
    if text and not text.isdigit():
        log.warning("unreadable state file read as empty", file=str(path), then=then)
        return True
    return False


def compacted_record(path: Path) -> Path:
    """Where `fixgw journal compact` records its horizon: the seq at or below which the
    journal keeps only what a restart needs, so that a `since` replay from below it is
    incomplete."""
    return path.with_name(path.name + ".compacted")


def compacted_through(path: Path) -> int:
    """The horizon of the journal at `path` (0: never compacted, or the record unreadable:
    said)."""
    return compaction_record(path)[0]


def compaction_record(path: Path) -> tuple[int, int | None]:
    """The horizon of the journal at `path` and the `orders.keep_closed` whose ids it was
    compacted to keep, one line each (0, None: never compacted, or the record unreadable:
    said)."""
    record = compacted_record(path)
    try:
        fields = record.read_bytes()[:64].split()
    except FileNotFoundError:
        return 0, None
    except OSError as exc:
        log.warning("compaction record unreadable", file=str(record), error=str(exc))
        return 0, None
    if not fields or not all(field.isdigit() for field in fields[:2]):
        log.warning("compaction record unreadable", file=str(record))
        return 0, None
    return int(fields[0]), int(fields[1]) if len(fields) > 1 else None


_decoder = msgspec.json.Decoder(AnyEvent)


class _Head(msgspec.Struct):
    seq: int
    type: str


_CRC = b',"crc":'
FILE_MODE = 0o640
"""The journal and the files beside it: the order flow is no business of other users."""


def sealed(seq: int, event_json: bytes) -> bytes:
    """The line for an event's JSON object: `seq` spliced in front, its CRC-32 at the end.

    One CRC over the bytes already encoded: about 0.3 us more per line than without."""
    line = b'{"seq":%d,%s' % (seq, event_json[1:-1])
    return b'%s,"crc":%d}\n' % (line, zlib.crc32(line))


def _fault(line: bytes) -> tuple[str | None, _Head | None, int]:
    """(why a whole line, newline included, cannot be read, or None; its head; where its
    checksum starts, -1 if it has none). Whether its seq follows the lines before it is
    `scan`'s to say."""
    at = line.rfind(_CRC)
    if at >= 0:
        digits = line[at + len(_CRC) : -2]
        if not (line.endswith(b"}\n") and digits.isdigit() and len(digits) <= 10):
            return "its checksum is unreadable", None, at
        if zlib.crc32(memoryview(line)[:at]) != int(digits):
            return "its checksum does not match its bytes", None, at
    try:
        head = msgspec.json.decode(line, type=_Head)
        if at < 0:  # written before checksums: it must at least be an event, whole
            _decoder.decode(line)
    except msgspec.DecodeError:
        return "not a journal record (not JSON with seq and type)", None, at
    return None, head, at


_SEALED_END = re.compile(rb',"crc":(\d{1,10})\}')


def _pieces(line: bytes, offset: int) -> list[tuple[int, bytes, _Head | None]]:
    """A damaged line taken apart: (byte offset, bytes, head) of each whole checksummed
    record in it (its head given), and of the bytes between them (head None), in order.

    A record is whole when it starts at `{"seq":` and its own checksum matches its bytes:
    a block of zeros a crash left before it, or a newline turned into another byte by a
    flip, does not take it down with the damage. Only a damaged line is taken apart, so a
    good journal costs nothing more. Each piece is the file's bytes exactly (the line's
    newline with the last). No whole record in the line: the line, as one piece."""
    body = len(line) - 1  # the line without its newline
    starts = [m.start() for m in _SEQ.finditer(line, 0, body)]
    pieces: list[tuple[int, bytes, _Head | None]] = []
    done = 0
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else body
        at = line.rfind(_CRC, start, end)
        tail = _SEALED_END.match(line, at, end) if at >= 0 else None
        if tail is None or zlib.crc32(memoryview(line)[start:at]) != int(tail.group(1)):
            continue
        stop = tail.end() + 1 if tail.end() == body else tail.end()
        record = line[start:stop]
        try:
            head = msgspec.json.decode(record, type=_Head)
        except msgspec.DecodeError:  # a checksum that matches by chance
            continue
        if start > done:
            pieces.append((offset + done, line[done:start], None))
        pieces.append((offset + start, record, head))
        done = stop
    if not pieces:
        return [(offset, line, None)]
    if done < len(line):
        pieces.append((offset + done, line[done:], None))
    return pieces


def _why_piece(piece: bytes, whole: list[_Head]) -> str:
    """Why bytes between the whole records of a damaged line are damaged."""
    why, head, _ = _fault(piece if piece.endswith(b"\n") else piece + b"\n")
    if head is not None:
        why = "a record without a checksum, in one line with damage"
    seqs = ", ".join(str(h.seq) for h in whole)
    return f"{why}; in one line with the whole record(s) seq {seqs}, read as lines of their own"


class Damage(NamedTuple):
    line: int
    """1-based line number."""
    offset: int
    """Byte offset of the line's start."""
    raw: bytes
    why: str

    @property
    def seq(self) -> str:
        """The seq the line seems to carry (the first `{"seq":` in it), for people: damaged,
        it may be wrong."""
        found = _SEQ.search(self.raw)
        return found.group(1).decode() if found else "?"

    def describe(self) -> str:
        return (
            f"line {self.line} (byte {self.offset}, {len(self.raw)} bytes, seq {self.seq}): "
            f"{self.why}"
        )


_SEQ = re.compile(rb'\{"seq":(\d{1,20})')


class Scan(NamedTuple):
    last_seq: int
    every_1024th: list[tuple[int, int]]
    """(seq, byte offset) of every 1024th good line."""
    good_end: int
    """Where the last whole line ends: a torn tail follows it."""
    size: int
    damaged: list[Damage]
    """In the order of the file."""
    lines: int
    """Good records."""
    rewritten: dict[int, bytes]
    """What `repair` writes in place of the damaged line at a byte offset that holds whole
    records (`_pieces`): those of them whose seqs follow, each as a line of its own (its
    bytes, and a newline)."""


def offset_before(index: list[tuple[int, int]], since: int) -> int:
    """From an index of (seq, byte offset) in seq order: the offset of the last line indexed
    at or before `since`, where reading for the lines after `since` starts (0: none)."""
    start = 0
    for seq, offset in index:
        if seq > since:
            break
        start = offset
    return start


class _Line(NamedTuple):
    number: int
    offset: int
    raw: bytes
    seq: int
    before: int
    """The seq of the good line before it."""


class _Order:
    """`scan`'s judge of a readable record whose seq does not follow the last good one's,
    or that comes after an unchecked line held (`contested`). A good journal never gets
    here: `scan` takes a record that follows by itself."""

    def __init__(self, index: list[tuple[int, int]], damaged: list[Damage]) -> None:
        self.index = index
        self.damaged = damaged
        self.last_seq = 0
        self.count = 0
        self.unchecked: _Line | None = None
        """The last unchecked good line (the last good line if its seq is `last_seq`)."""
        self.contested: _Line | None = None
        """An unchecked line whose seq does not follow the unchecked line before it but
        follows the line before that: the next line says which of the two is set aside."""

    def take(self, line: _Line, checked: bool) -> None:
        if self.count % 1024 == 0:
            self.index.append((line.seq, line.offset))
        self.count += 1
        self.last_seq = line.seq
        if not checked:
            self.unchecked = line

    def drop_unchecked(self, why: str) -> None:
        """Set aside the last good line, an unchecked one, after all."""
        line = self.unchecked
        assert line is not None
        self.damaged.append(Damage(line.number, line.offset, line.raw, why))
        if self.index and self.index[-1][1] == line.offset:
            self.index.pop()
        self.count -= 1
        self.last_seq = line.before

    def settle(self, seq: int | None) -> None:
        """Decide on `contested` with the next good line's seq (None: no good line next)."""
        held, self.contested = self.contested, None
        unchecked = self.unchecked
        assert held is not None and unchecked is not None
        if seq is not None and held.seq < seq <= self.last_seq:  # two against one
            self.drop_unchecked(
                f"its seq {unchecked.seq} is not below those of the two lines after it "
                f"({held.seq}, {seq}), which follow {unchecked.before}; it carries no "
                "checksum to show it is right"
            )
            self.take(held._replace(before=self.last_seq), checked=False)
        elif seq is not None and held.seq < seq:  # the next follows both: either may be wrong
            self.damaged.append(
                _out_of_order(held, self.last_seq)._replace(
                    why=f"its seq {held.seq} does not follow {self.last_seq}, or line "
                    f"{unchecked.number} (seq {unchecked.seq}, no checksum) is the damaged one: "
                    f"both follow {unchecked.before}, the line after both follows either, and "
                    "neither carries a checksum; the one set aside is in the .damaged file"
                )
            )
        else:
            self.damaged.append(_out_of_order(held, self.last_seq))

    def judge(self, number: int, offset: int, raw: bytes, head: _Head, checked: bool) -> bool:
        """A readable record against the good ones before it: False if it is set aside
        (an unchecked one may be held, to be decided on with the next line)."""
        if self.contested is not None:
            self.settle(head.seq)
        line = _Line(number, offset, raw, head.seq, self.last_seq)
        if head.seq > self.last_seq:
            self.take(line, checked)
            return True
        unchecked = self.unchecked
        if unchecked is not None and unchecked.seq == self.last_seq and head.seq > unchecked.before:
            if not checked:
                self.contested = line
                return True
            self.drop_unchecked(
                f"its seq {unchecked.seq} is not below the checked seq {head.seq} of line "
                f"{number} after it, which follows {unchecked.before}; it carries no "
                "checksum to show it is right"
            )
            self.take(line._replace(before=self.last_seq), checked)
            return True
        self.damaged.append(_out_of_order(line, self.last_seq))
        return False


def _out_of_order(line: _Line, after: int) -> Damage:
    return Damage(line.number, line.offset, line.raw, f"its seq {line.seq} does not follow {after}")


def scan(path: Path) -> Scan:
    """Read the journal once: the last seq, an index of every 1024th line, and every line
    that cannot be trusted. A tail without its newline (a torn last line) is not counted
    as damage: `size` - `good_end` bytes of it.

    A damaged line is taken apart (`_pieces`): a whole checksummed record in it is good.

    Each good record's seq must follow the one before it. A checksum shows that a line's
    seq is the one written; a line written before checksums (no `crc`, an upgraded journal)
    shows nothing, so when the seq of such a line is not below the seq of the line after
    it, the one set aside is the one the evidence is against:
    - the unchecked line, when the line after it is checked and follows the line before
      it (a checked seq is right), or when the two lines after it both do (two against
      one): a flip that raised its seq does not condemn the good lines after it;
    - otherwise the line after it, as for checked lines (one against one, or a line that
      follows neither). When the two lines after it carry the same seq as it, or the one
      after next follows all three, nothing tells which is wrong (a flip raising the
      unchecked seq by one, or lowering the next by one, look alike): the later is set
      aside, and its damage names the unchecked line as the other suspect.
    Only a record that does not follow by itself goes to `_Order`."""
    index: list[tuple[int, int]] = []
    damaged: list[Damage] = []
    rewritten: dict[int, bytes] = {}
    order = _Order(index, damaged)
    last_seq = 0
    count = 0
    unchecked: _Line | None = None
    held = False
    offset = 0
    good_end = 0
    number = 0
    if path.exists():
        with path.open("rb") as f:
            for line in f:
                number += 1
                if not line.endswith(b"\n"):
                    break  # torn: the last line, cut short by a crash
                why, head, crc_at = _fault(line)
                if head is not None and head.seq > last_seq and not held:
                    if count % 1024 == 0:
                        index.append((head.seq, offset))
                    count += 1
                    if crc_at < 0:
                        unchecked = _Line(number, offset, line, head.seq, last_seq)
                    last_seq = head.seq
                else:
                    if not held:  # else nothing was taken since: `order` has it
                        order.last_seq, order.count, order.unchecked = last_seq, count, unchecked
                    if head is not None:
                        order.judge(number, offset, line, head, crc_at >= 0)
                    else:
                        rewritten.update(_judge_pieces(order, number, offset, line, why))
                    last_seq, count, unchecked = order.last_seq, order.count, order.unchecked
                    held = order.contested is not None  # the next line goes to `order` too
                offset += len(line)
                good_end = offset
        if held:
            order.settle(None)
            last_seq, count = order.last_seq, order.count
        size = path.stat().st_size
    else:
        size = 0
    if damaged:
        damaged.sort(key=lambda d: d.offset)
    return Scan(last_seq, index, good_end, size, damaged, count, rewritten)


def _judge_pieces(
    order: _Order, number: int, offset: int, line: bytes, why: str | None
) -> dict[int, bytes]:
    """A damaged line's pieces (`_pieces`) to `order`: what `repair` writes in its place if
    it holds whole records (an empty dict if not)."""
    pieces = _pieces(line, offset)
    whole = [head for _, _, head in pieces if head is not None]
    kept = b""
    for at, piece, head in pieces:
        if head is None:
            said = _why_piece(piece, whole) if whole else why or "unreadable"
            order.damaged.append(Damage(number, at, piece, said))
        elif order.judge(number, at, piece, head, True):
            kept += piece if piece.endswith(b"\n") else piece + b"\n"
    return {offset: kept} if whole else {}


class JournalDamaged(FixgwError):
    """Records in the middle of the journal cannot be trusted: the gateway does not start
    on it (it would forget what they and the lines after them say), and changes nothing."""

    code = "journal_damaged"

    def __init__(self, path: Path, damaged: list[Damage]) -> None:
        self.path = path
        self.damaged = damaged
        more = f", and {len(damaged) - 1} more" if len(damaged) > 1 else ""
        super().__init__(
            f"journal.path: {path} has {len(damaged)} damaged record(s): "
            f"{damaged[0].describe()}{more}; nothing was cut or changed"
        )


def side_file(path: Path) -> Path:
    """Where damaged records and torn tails are set aside, one JSON line each."""
    return path.with_name(path.name + ".damaged")


def set_aside(path: Path, records: list[Damage], by: str) -> Path:
    """Append `records` to the journal's side file (created 0600), synced: their bytes
    exactly (`raw_b64`), where they were, and why they were set aside. All of them or, with
    OSError, none: what the disk took of them is cut off again."""
    target = side_file(path)
    now = datetime.now(UTC).isoformat()
    lines = b"".join(
        msgspec.json.encode(
            {
                "journal": str(path),
                "set_aside": now,
                "by": by,
                "line": d.line,
                "offset": d.offset,
                "seq": d.seq,
                "why": d.why,
                "bytes": len(d.raw),
                "raw_b64": base64.b64encode(d.raw).decode(),
                "text": d.raw.decode("utf-8", "replace"),
            }
        )
        + b"\n"
        for d in records
    )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        end = os.fstat(fd).st_size
        try:
            write_at(fd, lines, end)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)
    return target


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def lock(path: Path) -> int:
    """Take the journal's lock (`<journal>.lock`, never replaced) for as long as the
    returned descriptor is open: one gateway per journal, and no repair under a running
    gateway. StartupError if another process has it."""
    target = lock_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except OSError as exc:
        raise StartupError(f"journal.path: cannot create {target}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StartupError(
                f"journal.path: {path} is in use by another process (a gateway running on "
                f"it?): {target} is locked"
            ) from None
        raise StartupError(f"journal.path: cannot lock {target}: {exc.strerror}") from None
    return fd


def _open(path: Path, flags: int) -> int:
    """Open a journal file 0640 or tighter: one created by an older version (0644) is
    tightened too."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    mode = os.fstat(fd).st_mode & 0o777
    if mode & ~FILE_MODE:
        os.fchmod(fd, mode & FILE_MODE)
    return fd


class JournalClosed(FixgwError):
    """Something was to be written once the journal had closed (the gateway has stopped):
    refused, never written to a descriptor that is closed, whose number another file may
    have taken since."""

    code = "journal_closed"

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"journal {path} is closed (the gateway has stopped): {what} not written")


class Journal:
    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = _open(path, os.O_WRONLY)
        except OSError as exc:
            raise StartupError(f"journal.path: cannot open {path}: {exc.strerror}") from None
        """Written at `_size` by position: a failed write leaves nothing that counts, and
        the next one writes the same lines over whatever part of them reached the file."""
        self.last_seq = 0
        self._index: list[tuple[int, int]] = []
        """(seq, byte offset) of every 1024th line, to find `since` without reading it all."""
        self._size = 0
        try:
            self._check_and_index()
        except BaseException:
            os.close(self._fd)
            raise
        self.compacted_through, self.compacted_keep_closed = compaction_record(path)
        """`fixgw journal compact`'s horizon: a replay from below it is incomplete; and the
        `orders.keep_closed` whose ids it kept (None: not compacted)."""
        self._pending: list[bytes] = []
        """Lines not yet on disk; they stay here until a write succeeds."""
        self.written_seq = self.last_seq
        """The seq of the last line on disk: no client is sent a line after it."""
        self._flush_scheduled = False
        self.write_error: str | None = None
        """Why the last write of lines failed, while they are not on disk: new orders are
        refused until a write succeeds (`/readyz` says so)."""
        self._checkpoint_failing = False
        self._retry_scheduled = False
        self._checkpoint_path = path.with_name(path.name + ".fixseq")
        self._checkpoint_fd = self._open_state_file(self._checkpoint_path)
        self._inbound_seq = self._written_inbound_seq = self.inbound_checkpoint()
        self._checkpoint_written_at = 0.0
        self._seq_mark_fd = self._open_state_file(path.with_name(path.name + ".seqmark"))
        text = os.pread(self._seq_mark_fd, 32, 0).strip()
        self.reserved_seq = int(text) if text.isdigit() else 0
        warn_if_unreadable(
            self._checkpoint_fd,
            self._checkpoint_path,
            "no checkpoint: a message the exchange sent before a crash that was not journaled "
            "is not asked for again",
        )
        warn_if_unreadable(
            self._seq_mark_fd,
            path.with_name(path.name + ".seqmark"),
            "market data after the last journaled event may get seqs clients have seen",
        )
        """The highest `seq` that may have been handed out (see `reserve_seq`)."""
        self._reserve_failing = False
        preallocate(self._checkpoint_fd, STATE_FILE_BYTES)
        preallocate(self._seq_mark_fd, STATE_FILE_BYTES)
        self.on_written: list[Callable[[], None]] = []
        """Called after lines reach the file, where the NATS publisher reads them."""
        self.closed = False
        """Its files are closed: whatever asks to write is refused (`JournalClosed`)."""

    def _open_state_file(self, path: Path) -> int:
        try:
            return _open(path, os.O_RDWR)
        except OSError as exc:
            os.close(self._fd)
            raise StartupError(f"journal.path: cannot open {path}: {exc.strerror}") from None

    @property
    def size_bytes(self) -> int:
        return self._size + sum(map(len, self._pending))

    @property
    def unwritten(self) -> bool:
        """Lines are waiting to be written: on a failing disk, or until the flush due in this
        turn of the loop."""
        return bool(self._pending)

    @property
    def written_bytes(self) -> int:
        """Where the lines written to the file end: the lines before are whole."""
        return self._size

    def _check_and_index(self) -> None:
        """Read the journal once: find the last seq, refuse damage, and cut a torn last
        line (a crash mid-write) so that appends start on a line of their own."""
        found = scan(self.path)
        if found.damaged:
            for damage in found.damaged:
                log.error("journal record damaged", path=str(self.path), record=damage.describe())
            raise JournalDamaged(self.path, found.damaged)
        if found.good_end != found.size:
            with self.path.open("rb") as f:
                f.seek(found.good_end)
                torn = f.read()
            cut = Damage(found.lines + 1, found.good_end, torn, "a torn last line, cut at start")
            try:
                aside = set_aside(self.path, [cut], "gateway start")
            except OSError as exc:
                raise StartupError(
                    f"journal.path: {self.path} ends in a torn line ({len(torn)} bytes), not "
                    f"cut: its bytes could not be written to {side_file(self.path)}: "
                    f"{exc.strerror}"
                ) from None
            log.warning(
                "journal ended in a torn line; cut",
                kept_bytes=found.good_end,
                cut_bytes=len(torn),
                set_aside_in=str(aside),
            )
            try:
                os.ftruncate(self._fd, found.good_end)
            except OSError as exc:
                raise StartupError(
                    f"journal.path: cannot cut the torn last line of {self.path}: {exc.strerror}"
                ) from None
        self.last_seq = found.last_seq
        self._index = found.every_1024th
        self._size = found.good_end

    def append(self, seq: int, line: bytes) -> None:
        if self.closed:  # on the order path: the text made only when needed
            raise JournalClosed(self.path, f"the line of seq {seq}")
        self._pending.append(line)
        self._index_if_due(seq)
        self.last_seq = seq
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.write_due)
            except RuntimeError:  # no loop (tools, tests): write now
                self._flush()

    def write_due(self) -> None:
        """The flush due in this turn of the loop, now if it has not been made: whoever is
        about to hand lines to a client calls this first, so that the lines reach the disk
        before anyone is told of them. The same one write per turn, only earlier."""
        if self._flush_scheduled:
            self._flush()

    def mark_inbound(self, msg_seq_num: int) -> None:
        """The exchange's MsgSeqNum of the last message fully handled: its events are
        appended. Written after them, so that a restart asks the exchange again for every
        message after it (a crash between QuickFIX's store and this journal loses none).

        Written with the lines it follows; when there are none (market data, a duplicate),
        at most once a second: a restart then takes a few messages again, which is harmless
        (duplicates are dropped by ExecID, old market data by its MDReqID), and a flood of
        market data costs no system call per message.

        A number lower than the one written (the exchange's numbering started again: its
        Logon with ResetSeqNumFlag, the operator's reset) is written at once: until it is,
        a restart would take the messages of the new numbering up to the old number for
        handled, and ask for none of them."""
        if self.closed:
            raise JournalClosed(self.path, f"the inbound checkpoint {msg_seq_num}")
        self._inbound_seq = msg_seq_num
        written = self._written_inbound_seq
        if written is not None and msg_seq_num < written:
            self._flush(checkpoint=True)
        else:
            self._schedule_flush()

    def reserve_seq(self, upto: int) -> bool:
        """Record that seqs up to `upto` may be handed out, before one of them is.

        Market data takes seqs but is not journaled, so the last journaled seq alone would
        let a restart hand out numbers clients have already seen. False if it could not be
        written (logged): the caller asks again with its next seq. Once closed, False (as
        for market data handed out while a stop ends: nothing it could reuse is written)."""
        if self.closed:
            return False
        try:
            os.pwrite(self._seq_mark_fd, b"%020d\n" % upto, 0)
            if self.fsync:
                os.fsync(self._seq_mark_fd)
        except OSError as exc:
            if not self._reserve_failing:
                log.error("seq reservation not written; a restart may reuse seqs", error=str(exc))
            self._reserve_failing = True
            return False
        self._reserve_failing = False
        self.reserved_seq = upto
        return True

    def inbound_checkpoint(self) -> int | None:
        text = os.pread(self._checkpoint_fd, 32, 0).strip()
        return int(text) if text.isdigit() else None

    def _index_if_due(self, seq: int) -> None:
        if not self._index or seq - self._index[-1][0] >= 1024:
            self._index.append((seq, self.size_bytes))

    def flush(self, checkpoint: bool = False) -> None:
        """Write now (a new order is on disk before it is sent). Raises OSError if the
        lines cannot be written; they are kept and written again later."""
        if self.closed:
            raise JournalClosed(self.path, "a flush")
        if not self._flush(checkpoint):
            raise OSError(f"journal {self.path} cannot be written (see the log)")

    def _flush(self, checkpoint: bool = False) -> bool:
        """`checkpoint`: write the inbound checkpoint even if no line was written. False if
        lines could not be written. Closed, nothing (a retry due after the close)."""
        self._flush_scheduled = False
        if self.closed:
            return not self._pending
        wrote = bool(self._pending)
        if wrote and not self._write_pending():
            return False  # the checkpoint must not pass lines that are not on disk
        if self._inbound_seq == self._written_inbound_seq or self._inbound_seq is None:
            return True
        now = time.monotonic()
        if wrote or checkpoint or now - self._checkpoint_written_at >= 1.0:
            self._write_checkpoint(self._inbound_seq, now)
        return True

    def _write_checkpoint(self, inbound_seq: int, now: float) -> None:
        """A checkpoint that cannot be written is logged once and written again at the next
        flush: until then a restart asks the exchange for a few messages more, whose
        duplicates are dropped. The lines themselves are written: nothing is refused."""
        try:
            os.pwrite(self._checkpoint_fd, b"%020d\n" % inbound_seq, 0)
            if self.fsync:
                os.fsync(self._checkpoint_fd)
        except OSError as exc:
            if not self._checkpoint_failing:
                log.error(
                    "journal checkpoint write failed; written again at the next flush",
                    file=str(self._checkpoint_path),
                    error=str(exc),
                )
            self._checkpoint_failing = True
            self._checkpoint_written_at = now
            self._retry_later()
            return
        if self._checkpoint_failing:
            log.warning("journal checkpoint written again", file=str(self._checkpoint_path))
            self._checkpoint_failing = False
        self._written_inbound_seq = inbound_seq
        self._checkpoint_written_at = now

    def _write_pending(self) -> bool:
        data = b"".join(self._pending)
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.pwrite(self._fd, view[done:], self._size + done)
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            if self.write_error is None:
                log.error(
                    "journal write failed; its lines are kept and written again",
                    error=str(exc),
                    pending_lines=len(self._pending),
                )
            self.write_error = str(exc)
            self._pending = [data]
            self._retry_later()
            return False
        if self.write_error is not None:
            log.warning("journal written again", lines_bytes=len(data))
            self.write_error = None
        self._pending.clear()
        self._size += len(data)
        self.written_seq = self.last_seq
        for callback in self.on_written:
            callback()
        return True

    def _retry_later(self) -> None:
        """Nothing else may come to flush again soon. Without a loop, the next append or
        flush tries again."""
        if not self._retry_scheduled:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_later(1.0, self._retry)
                self._retry_scheduled = True

    def _retry(self) -> None:
        self._retry_scheduled = False
        self._schedule_flush()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self._flush(checkpoint=True)
        if self._pending:
            log.error(
                "journal closed with lines not written; no client was sent them, and a "
                "restart asks the exchange again for what they told",
                path=str(self.path),
                lines_bytes=self.size_bytes - self._size,
                seqs=f"{self.written_seq + 1}-{self.last_seq}",
            )
        elif self._checkpoint_failing:
            log.error(
                "journal closed with its checkpoint not written; a restart asks the exchange "
                "again for messages already journaled (their duplicates are dropped)",
                file=str(self._checkpoint_path),
            )
        self.closed = True
        os.close(self._fd)
        os.close(self._checkpoint_fd)
        os.close(self._seq_mark_fd)

    def lines(self, since: int = 0, until: int | None = None) -> Iterator[tuple[int, str, bytes]]:
        """(seq, type, line) of every entry after `since` (and up to `until`), oldest first.

        Only what was appended when the first line is asked for: a caller may read on
        while more is appended."""
        self._flush()
        end = self._size
        unwritten = b"".join(self._pending).splitlines(keepends=True)
        start = self.offset_before(since)
        with self.path.open("rb") as f:
            f.seek(start)
            offset = start
            for line in f:
                offset += len(line)
                if offset > end:
                    break
                head = msgspec.json.decode(line, type=_Head)
                if until is not None and head.seq > until:
                    return
                if head.seq > since:
                    yield head.seq, head.type, line
        for line in unwritten:  # a failing disk: a replay's tail, sent once they are written
            head = msgspec.json.decode(line, type=_Head)
            if until is not None and head.seq > until:
                return
            if head.seq > since:
                yield head.seq, head.type, line

    def offset_before(self, since: int) -> int:
        """The byte offset of a line at or before the first line after `since` (from the
        index of every 1024th line): where reading for the lines after `since` starts."""
        return offset_before(self._index, since)

    def events(self, since: int = 0, prefix: str = "") -> Iterator[AnyEvent]:
        """The journaled events after `since` whose type starts with `prefix`, typed."""
        for _, event in self.numbered_events(since, prefix):
            yield event

    def numbered_events(self, since: int = 0, prefix: str = "") -> Iterator[tuple[int, AnyEvent]]:
        """`events`, each with its seq."""
        for seq, type_, line in self.lines(since):
            if type_.startswith(prefix):
                yield seq, _decoder.decode(line)


class Repaired(NamedTuple):
    kept: int
    """Records kept, byte for byte."""
    set_aside: list[Damage]
    """Damaged records, and a torn tail, moved to the side file."""
    side_file: Path | None


def _owned_like(fd: int, original: os.stat_result) -> None:
    made = os.fstat(fd)
    if (made.st_uid, made.st_gid) != (original.st_uid, original.st_gid):
        os.fchown(fd, original.st_uid, original.st_gid)


def repair(path: Path) -> Repaired:
    """Keep every line that can be trusted, byte for byte and in order; move the others
    (and a torn tail) to the side file first. Under the journal's lock (StartupError while
    a gateway runs on it); the journal is replaced in one rename.

    The files it makes keep the journal's owner and group, as the journal keeps its mode:
    repair is run as root (sudo) on the journal of a gateway that runs as its own user. So
    it follows no symbolic link to the files it writes: the service user owns the directory
    and could plant one, to have root write over a file of its choosing."""
    original = os.stat(path)
    lock_made = not lock_path(path).exists()
    held = lock(path)
    try:
        if lock_made:
            _owned_like(held, original)
        found = scan(path)
        records = list(found.damaged)
        if found.good_end != found.size:
            with path.open("rb") as f:
                f.seek(found.good_end)
                records.append(
                    Damage(
                        found.lines + len(records) + 1, found.good_end, f.read(), "a torn last line"
                    )
                )
        if not records:
            return Repaired(found.lines, [], None)
        temporary = path.with_name(path.name + ".repairing")
        temporary.unlink(missing_ok=True)  # one left by a repair that died, or planted
        fd = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
            original.st_mode & FILE_MODE,
        )
        try:
            _owned_like(fd, original)
        except OSError:
            os.close(fd)
            temporary.unlink()
            raise
        damaged_at = {d.offset for d in found.damaged}
        rewritten = found.rewritten
        with os.fdopen(fd, "wb") as out, path.open("rb") as source:
            side_made = not side_file(path).exists()
            aside = set_aside(path, records, "fixgw journal repair")
            if side_made:
                os.chown(aside, original.st_uid, original.st_gid, follow_symlinks=False)
            offset = 0
            for line in source:
                if offset >= found.good_end:
                    break
                if offset in rewritten:
                    out.write(rewritten[offset])
                elif offset not in damaged_at:
                    out.write(line)
                offset += len(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return Repaired(found.lines, records, aside)
    finally:
        os.close(held)
