"""The last seq the stream acknowledged, kept across restarts: a restart publishes from there.

One small JSON file, replaced whole (written beside, then renamed), so a crash leaves the
old cursor or the new one, never a torn one. It names the stream and the gateway it counts
for: a cursor of another stream or name counts as none. A cursor a little behind is
harmless: what is published again within the stream's duplicate window is dropped by the
broker. Only when there is no cursor to go by (`found` false) does the stream's own last
event of the gateway say where to start; a cursor read is never moved past an event the
stream has not acknowledged, since a later event in the stream proves nothing about the
ones before it (one refused by a stream limit, say).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec
import structlog

from fixgw.config import NatsConfig
from fixgw.place_records import record_place, recorded_place

log = structlog.get_logger("fixgw.nats")


class _Saved(msgspec.Struct, frozen=True):
    stream: str
    gateway: str
    seq: int


class Cursor:
    def __init__(self, path: Path, stream: str, gateway: str, fsync: bool = False) -> None:
        self.path = path
        self.stream = stream
        self.gateway = gateway
        self.fsync = fsync
        self.found = False
        """A cursor of this stream and gateway was read."""
        self.seq = self._load()
        self._saved = self.seq
        self._failing = False

    def _load(self) -> int:
        try:
            saved = msgspec.json.decode(self.path.read_bytes(), type=_Saved)
        except FileNotFoundError:
            return 0
        except (OSError, msgspec.DecodeError) as exc:
            log.warning(
                "nats cursor unreadable; publishing after this gateway's last event in the stream",
                path=str(self.path),
                error=str(exc),
            )
            return 0
        if (saved.stream, saved.gateway) != (self.stream, self.gateway):
            log.info(
                "nats cursor is another stream's or gateway's; starting afresh",
                path=str(self.path),
                stream=saved.stream,
                gateway=saved.gateway,
            )
            return 0
        self.found = True
        return saved.seq

    def save(self) -> None:
        """Write `seq` if it moved; a failure is logged once and tried again next time."""
        if self.seq == self._saved:
            return
        temporary = self.path.with_name(self.path.name + ".new")
        data = msgspec.json.encode(_Saved(self.stream, self.gateway, self.seq)) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                os.write(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._failing:
                log.error(
                    "nats cursor not written; a restart publishes again from an older seq",
                    path=str(self.path),
                    error=str(exc),
                )
            self._failing = True
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        self._failing = False
        self._saved = self.seq


def cursor_path(config: NatsConfig, journal_path: Path) -> Path:
    """`nats.cursor_path`, else beside the journal."""
    return Path(config.cursor_at(journal_path))


def cursor_record(journal_path: Path) -> Path:
    """Beside the journal: where the cursor is, as the last NATS transport to start had it,
    so that `journal compact` finds a `nats.cursor_path` of its own while `nats` is off
    (`fixgw.compaction.holders`)."""
    return Path(f"{journal_path}.nats-cursor")


def record_cursor(journal_path: Path, cursor: Path) -> None:
    """Written at the transport's start; a failure is a warning."""
    record = cursor_record(journal_path)
    error = record_place(record, cursor)
    if error is not None:
        log.warning(
            "nats cursor's place not recorded beside the journal: `journal compact` with "
            "`nats` off finds the cursor only beside the journal",
            file=str(record),
            error=str(error),
        )


def recorded_cursor(journal_path: Path) -> Path | None:
    return recorded_place(cursor_record(journal_path))


def say_if_behind_compaction(cursor: Path, seq: int, compacted_through: int) -> None:
    """At start: a cursor (`seq`, 0 for none) below the journal's compaction horizon, left
    by a compaction that did not know of it, goes on over a journal whose events between
    may be gone, and the stream never gets those. Said loudly; publishing goes on from the
    cursor with what the journal has."""
    if 0 < seq < compacted_through:
        log.error(
            "nats cursor is behind the journal's compaction horizon: events the stream never "
            "acknowledged may have been compacted away, and are not published",
            cursor=str(cursor),
            cursor_seq=seq,
            compacted_through=compacted_through,
        )
