"""Records beside the journal of where a part keeps its state elsewhere (the bridge's store,
a NATS cursor of its own), so that `journal compact` finds that state while the part is off
(`fixgw.compaction.holders`). One line, the place's absolute path, replaced whole."""

from __future__ import annotations

import os
from pathlib import Path


def record_place(record: Path, place: Path) -> OSError | None:
    """`place` written to `record` (left alone if it says so already); the error if it could
    not be, for the caller to say what is lost by it."""
    line = f"{place.resolve()}\n"
    try:
        if record.read_text() == line:
            return None
    except (OSError, UnicodeDecodeError):
        pass
    temporary = record.with_name(record.name + ".new")
    try:
        temporary.write_text(line)
        os.replace(temporary, record)
    except OSError as exc:
        return exc
    return None


def recorded_place(record: Path) -> Path | None:
    try:
        text = record.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(text) if text else None
