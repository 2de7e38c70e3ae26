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
rather than one the OMS may be owed never."""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from fixgw.journal import STATE_FILE_BYTES, preallocate, warn_if_unreadable

log = structlog.get_logger("fixgw.bridge")

FILE_NAME = "reported.seq"


class ReportedMark:
    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / FILE_NAME
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
