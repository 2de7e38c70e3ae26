"""The kill switch's last word in a file beside the journal (`<journal>.halt`), so that a
halt holds across a restart also when the journal cannot write its `session.halted` line
(a full disk): a halt must take effect at once, and cannot wait for the disk.

The file is given its whole size at start and rewritten in place, synced, at each halt and
resume: on a disk that fills later, that write needs no new block and succeeds where an
append fails. It holds the seq of the event it records, so that at start the later of the
file and the journal's last `session.halted`/`session.resumed` is what holds."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import msgspec
import structlog

from fixgw.domain import TradingHalted
from fixgw.journal import FILE_MODE, Journal, preallocate, write_at

log = structlog.get_logger("fixgw.kill_switch")

RECORD_BYTES = 4096
TEXT_BYTES = 1900
"""The most of `by` and `reason` the file keeps, each, in bytes as its JSON has them (the
journal's line keeps them whole): with the rest of a record (under 100 bytes) it always fits
the file, whatever characters they are (a character takes up to 6 bytes there)."""
CUT = " [cut]"
"""The end of a `by` or `reason` the file could not keep whole."""


class _Halt(msgspec.Struct, frozen=True):
    ts: datetime
    by: str
    reason: str | None


class Recorded(msgspec.Struct, frozen=True):
    seq: int
    halted: _Halt | None

    def event(self) -> TradingHalted | None:
        """The halt as the kill switch holds it; which orders it was cancelling the journal
        did not keep: the reconciliation after the logon finds the open ones again."""
        h = self.halted
        return (
            None if h is None else TradingHalted(ts=h.ts, by=h.by, reason=h.reason, cancelling=[])
        )


def record_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".halt")


class HaltRecord:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.path = record_path(journal.path)
        self.recorded: Recorded | None = None
        """What the file said at start (None: nothing yet, or unreadable)."""
        self._fd: int | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        except OSError as exc:
            log.error("kill switch file cannot be opened", file=str(self.path), error=str(exc))
            return
        self._fd = fd
        text = os.pread(fd, RECORD_BYTES, 0).strip()
        if text:
            try:
                self.recorded = msgspec.json.decode(text, type=Recorded)
            except msgspec.DecodeError:
                log.warning("unreadable kill switch file read as empty", file=str(self.path))
        preallocate(fd, RECORD_BYTES)

    def write(self, seq: int, halted: TradingHalted | None) -> str | None:
        """Record the kill switch as `halted` (None: off), synced: the event of `seq` just
        published. If the file cannot be written, the journal's line is written now instead.
        None if either holds it, else why neither does (logged): a restart would not know."""
        record = Recorded(
            seq,
            None
            if halted is None
            else _Halt(
                halted.ts,
                _kept(halted.by),
                None if halted.reason is None else _kept(halted.reason),
            ),
        )
        line = msgspec.json.encode(record)
        try:
            if self._fd is None:
                raise OSError(f"{self.path} could not be opened at start")
            write_at(self._fd, line.ljust(RECORD_BYTES - 1) + b"\n", 0)
            os.fsync(self._fd)
        except OSError as exc:
            file_error = f"{self.path}: {exc}"
        else:
            return None
        what = "halt" if halted is not None else "resume"
        try:
            self._journal.flush()
        except OSError as exc:
            warning = (
                f"this {what} is in force but not recorded: a restart would not know of it "
                f"({file_error}; {exc})"
            )
            log.error("kill switch " + warning)
            return warning
        log.error("kill switch file not written; the journal has the " + what, error=file_error)
        return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _kept(text: str) -> str:
    """`text`, or as much of it as takes `TEXT_BYTES` with `CUT` after it: cut between
    characters, never inside one."""
    if len(msgspec.json.encode(text)) <= TEXT_BYTES:
        return text
    kept = text.encode()[: TEXT_BYTES - len(CUT) - 2].decode("utf-8", "ignore")
    while (over := len(msgspec.json.encode(kept + CUT)) - TEXT_BYTES) > 0:
        kept = kept[: -(over // 6 + 1)]  # each character takes 1 to 6 of the bytes over
    return kept + CUT
