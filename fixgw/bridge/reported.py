"""How far the OMS sessions have been told: the seq of the last journaled event whose report
the bridge handed to QuickFIX, kept in a file beside the bridge's FIX store.

An OMS's report goes out only once its event is on disk (`reports.OrderReports`), and this
mark is written after it. A crash between the journal and the report, or between the
report and the mark, leaves the mark behind: the restarted bridge sends the reports of the
events after it again, with PossResend (97=Y), FIX's flag for "may have been sent under
another MsgSeqNum", and the OMS knows each fill by its ExecID. Without the mark, a fill told
before the crash and not yet journaled came back from the exchange's resend as new, and was
told again as a fresh message.

A mark that cannot be read (damaged on disk) could be anywhere behind: it is said, naming
the file, and read as the start of the journal, so every report is sent again (PossResend)
rather than one the OMS may be owed never.

Each OMS session has a mark of its own (`reported.<comp_id>.seq`), beside the bridge's
(`reported.seq`, the last event whose report went out to any session). A session taken out
of `bridge.sessions` keeps its mark where it was: the events after it that the restarts
without it passed over are its own to be told once it is configured again, PossResend, as
after a crash. A session with no mark of its own (one new, or a store written before there
were session marks) starts from the bridge's, as every session did then. The store's
directory is recorded beside the journal (`<journal>.bridge`), so that `journal compact`
finds the marks while `bridge` is off, or named from another working directory
(`fixgw.compaction.holders`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import structlog

from fixgw.journal import STATE_FILE_BYTES, preallocate, warn_if_unreadable
from fixgw.place_records import record_place, recorded_place

log = structlog.get_logger("fixgw.bridge")

FILE_NAME = "reported.seq"
_SESSION_FILES = "reported.*.seq"


def session_file_name(comp_id: str) -> str:
    """`reported.<comp_id>.seq`, the CompID quoted (a `/` in it names no directory)."""
    return f"reported.{quote(comp_id, safe='')}.seq"


def session_marks(store_dir: Path) -> Iterator[tuple[str, Path]]:
    """The session marks in a store: (comp_id, file)."""
    for path in sorted(store_dir.glob(_SESSION_FILES)):
        yield unquote(path.name[len("reported.") : -len(".seq")]), path


def store_record(journal_path: Path) -> Path:
    """Beside the journal: the bridge's store directory, as the last bridge to start used it."""
    return Path(f"{journal_path}.bridge")


def record_store(journal_path: Path, store_dir: Path) -> None:
    """Written at the bridge's start when it names another directory; a failure is a
    warning."""
    record = store_record(journal_path)
    error = record_place(record, store_dir)
    if error is not None:
        log.warning(
            "bridge store not recorded beside the journal: `journal compact` with `bridge` "
            "off finds its marks only in the default store",
            file=str(record),
            error=str(error),
        )


def recorded_store(journal_path: Path) -> Path | None:
    return recorded_place(store_record(journal_path))


class ReportedMark:
    def __init__(self, store_dir: Path, comp_id: str | None = None) -> None:
        """The bridge's mark; `comp_id`: that session's."""
        self.path = store_dir / (FILE_NAME if comp_id is None else session_file_name(comp_id))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        text = os.pread(self._fd, 32, 0).strip()
        self.seq: int | None = int(text) if text.isdigit() else None
        """None before the first write: a store the bridge has not told from yet."""
        if warn_if_unreadable(
            self._fd,
            self.path,
            "OMS reports are sent again from the start of the journal, marked PossResend",
        ):
            self.seq = 0
        preallocate(self._fd, STATE_FILE_BYTES)
        self._failing = False

    def write(self, seq: int) -> None:
        """A mark that cannot be written (the store's disk full, failing) is logged once and
        left behind: the reports go out all the same, and a restart sends those after the
        mark on disk again, PossResend. Raising here would stop the reports held behind."""
        if seq == self.seq:
            return
        try:
            written = os.pwrite(self._fd, b"%020d\n" % seq, 0)
            if written != STATE_FILE_BYTES:
                raise OSError(f"{written} of {STATE_FILE_BYTES} bytes written")
        except OSError as exc:
            if not self._failing:
                log.error(
                    "OMS reports' mark not written; a restart sends the reports after the "
                    "last mark written again, marked PossResend",
                    file=str(self.path),
                    error=str(exc),
                )
            self._failing = True
            return
        if self._failing:
            log.warning("OMS reports' mark written again", file=str(self.path))
            self._failing = False
        self.seq = seq

    def close(self) -> None:
        os.close(self._fd)


class ReportedMarks:
    """The bridge's mark and those of the sessions configured."""

    def __init__(self, store_dir: Path, sessions: Iterable[str]) -> None:
        self.store_dir = store_dir
        self.shared = ReportedMark(store_dir)
        self.of = {oms: ReportedMark(store_dir, oms) for oms in sessions}

    def start_of(self, oms: str) -> int | None:
        """The session's mark, else the bridge's (None: nothing told from this store)."""
        own = self.of[oms].seq
        return self.shared.seq if own is None else own

    def left_behind(self) -> dict[str, Path]:
        """Marks in the store of sessions not configured, by comp_id."""
        return {oms: path for oms, path in session_marks(self.store_dir) if oms not in self.of}

    def told(self, oms: str, seq: int) -> None:
        """A report of event `seq` handed over to `oms`."""
        self.of[oms].write(seq)
        self.shared.write(seq)

    def write_all(self, seq: int) -> None:
        """Every event up to `seq` told to every session configured, as owed."""
        for mark in self.of.values():
            mark.write(seq)
        self.shared.write(seq)

    def close(self) -> None:
        for mark in self.of.values():
            mark.close()
        self.shared.close()
