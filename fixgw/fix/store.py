"""QuickFIX's FileStore (`session.store_dir`) when it cannot be written: a full disk, an
I/O error.

QuickFIX stores each message before it sends it. A store write that fails throws inside
QuickFIX: the message is not sent (an order, a heartbeat, a Logon alike), and QuickFIX only
tells its log (`Log.onEvent`, a line starting with `FAILURE`); `Session.send` returns
false. The error
stays with the store's open files (C stdio's error flag is never cleared), so every later
write fails too, even once the disk has room, until the store is reopened
(`Session.refresh`, which reads it back from its files)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import structlog

from fixgw.fix.qf import expected_sender_num, expected_target_num

log = structlog.get_logger("fixgw.fix.store")

FAILURE = "IO Error: "
"""How a line of QuickFIX's session log starts when its store failed: what QuickFIX throws
then (FileStore.cpp: "Unable to write to file ...", "Unable to flush file ...", "Cannot seek
to end of ...") is an IOException, which no other part of its session throws."""

TEST_WRITE_BYTES = 4096
"""A block: what a message or two needs on any file system."""


def is_store_failure(text: str) -> bool:
    """Whether a line of QuickFIX's session log is its store failing."""
    return text.startswith(FAILURE)


def write_error(directory: Path) -> str | None:
    """Why a file in `directory` cannot be written now (the OS error), or None if it can:
    a test file of `TEST_WRITE_BYTES`, removed at once."""
    try:
        fd, name = tempfile.mkstemp(prefix=".fixgw-write-test-", dir=directory)
    except OSError as exc:
        return str(exc)
    try:
        with os.fdopen(fd, "wb") as test:
            test.write(bytes(TEST_WRITE_BYTES))
            test.flush()
    except OSError as exc:
        return str(exc)
    finally:
        os.unlink(name)
    return None


def reopen(session: Any) -> None:
    """Reopen the store, with the sequence numbers the session ran with.

    Reopening reads them back from the store's files, which hold what was last written
    there: if a write of them failed, the session's own are ahead, and going back would send
    numbers the exchange has seen (it logs out at "MsgSeqNum too low"). Sequence numbers
    only go back to 1 when the operator or the exchange says so."""
    sender, target = expected_sender_num(session), expected_target_num(session)
    session.refresh()
    read = expected_sender_num(session), expected_target_num(session)
    if read != (sender, target):
        log.warning(
            "QuickFIX's store reopened with other sequence numbers than the session's; "
            "the session's kept",
            next_sender=sender,
            next_target=target,
            in_store=read,
        )
        session.setNextSenderMsgSeqNum(sender)
        session.setNextTargetMsgSeqNum(target)
