"""OMS status requests the bridge has taken and not answered yet, kept on disk.

QuickFIX counts an OMS message received once the bridge has acted on it (`acceptor.fromApp`),
so the OMS never sends it again. An order or a cancel is journaled by then, and its reports
follow from the gateway's state even after a crash. An OrderStatusRequest (H) has nothing
journaled: its answer waits on the exchange, so a crash in between would leave it unanswered
for good. Each is kept as a file from before it counts as received until its answer is sent
(to the OMS or, while it is away, to QuickFIX's store); what is left at start is answered
then (`OmsOrders.answer_left`).

A file is written whole or not at all (renamed into place) and not fsync'd: it survives the
process being killed, as QuickFIX's own store, which is not fsync'd either, does.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from fixgw.files import private_directory

log = structlog.get_logger("fixgw.bridge")

KEPT = ".fix"
BEING_WRITTEN = ".tmp"
"""A file a crash cut short: its message was not counted received yet, so the OMS sends it
again; the file is dropped at start."""
UNREADABLE = ".damaged"
"""Added to the name of a kept file whose request cannot be read (damaged on disk): kept for
a person to look at, never read again."""


class UnansweredRequests:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        private_directory(directory)
        self._run = int(time.time() * 1000)
        self._taken = 0
        """File names: this run's start time and a count, so that they sort oldest first
        across restarts too."""

    def taken(self, oms: str, raw: str) -> Path | None:
        """Kept until `answered`; None if it could not be written (logged): the request is
        still answered, only not after a crash."""
        self._taken += 1
        path = self.directory / f"{self._run}-{self._taken:012d}{KEPT}"
        partial = path.with_suffix(BEING_WRITTEN)
        try:
            # the raw message as QuickFIX handed it: a byte that is not UTF-8 (in Text) is
            # a lone surrogate there
            partial.write_bytes(f"{oms}\n{raw}".encode(errors="surrogateescape"))
            partial.replace(path)
        except OSError as exc:
            log.error("status request not kept for a restart", oms=oms, error=str(exc))
            return None
        return path

    def answered(self, path: Path | None) -> None:
        if path is not None:
            path.unlink(missing_ok=True)

    def left(self) -> list[tuple[Path, str, str]]:
        """What a run before this one took and did not answer: (file, OMS, raw message),
        oldest first."""
        for partial in self.directory.glob(f"*{BEING_WRITTEN}"):
            partial.unlink(missing_ok=True)
        left = []
        for path in sorted(self.directory.glob(f"*{KEPT}")):
            oms, _, raw = path.read_bytes().decode(errors="surrogateescape").partition("\n")
            left.append((path, oms, raw))
        return left

    def set_aside(self, path: Path, why: str) -> Path:
        """A kept request that cannot be read, renamed out of the way (as the journal sets a
        torn last line aside): the start goes on, and it is not read again."""
        aside = path.with_name(path.name + UNREADABLE)
        path.replace(aside)
        log.warning(
            "unreadable status request set aside", file=str(path), set_aside_as=str(aside), why=why
        )
        return aside
