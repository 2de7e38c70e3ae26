"""Up to which seq the stream may hold this gateway's events under the message id of before
the prefix was in it (`<gateway>:<seq>`), kept across restarts beside the cursor
(`<cursor>.legacy-ids`).

The first start after the upgrade finds it (the gateway's last event in the stream has the
old id) and writes it before publishing anything under the new id: from then on the
stream's last event has the new id and says nothing of those before it. Events up to it are
published again under the old id at every later start too (the cursor may be behind them:
written at most every 0.1 s, or not at all on a full disk), so the stream drops them as
duplicates rather than storing them a second time. One small JSON file, replaced whole and
synced; like the cursor, it names the stream and gateway it counts for.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec
import structlog

log = structlog.get_logger("fixgw.nats")


class _Saved(msgspec.Struct, frozen=True):
    stream: str
    gateway: str
    through: int


class LegacyIds:
    def __init__(self, path: Path, stream: str, gateway: str) -> None:
        self.path = path
        self.stream = stream
        self.gateway = gateway
        self.through = self._load()

    def _load(self) -> int:
        try:
            saved = msgspec.json.decode(self.path.read_bytes(), type=_Saved)
        except FileNotFoundError:
            return 0
        except (OSError, msgspec.DecodeError) as exc:
            log.error(
                "nats old-id mark unreadable: events the stream holds under their old ids "
                "after the cursor may be stored again",
                path=str(self.path),
                error=str(exc),
            )
            return 0
        if (saved.stream, saved.gateway) != (self.stream, self.gateway):
            return 0
        return saved.through

    def keep(self, through: int) -> None:
        """Written and synced before it returns, if it moves up; raises OSError if it
        cannot be (nothing may go under a new id until it is)."""
        if through <= self.through:
            return
        temporary = self.path.with_name(self.path.name + ".new")
        data = msgspec.json.encode(_Saved(self.stream, self.gateway, through)) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self.through = through


def legacy_ids_path(cursor: Path) -> Path:
    return cursor.with_name(cursor.name + ".legacy-ids")
