"""The OMS orders the bridge refused before they became orders, kept on disk: a NewOrderSingle
sent again (PossDupFlag or PossResend) under one of their ClOrdIDs is answered with its
refusal, never placed.

The gateway keeps no order for what it refuses before taking it (a halt, a risk limit, the
session down, an attribute the venue cannot carry), so its order index cannot tell such a
resend from a new order. An OMS that lost its connection before the refusal reached it sends
the order again marked so at its next logon (FIX 4.4: checked against the ClOrdIDs already
processed); placed then, it would live at the exchange under a ClOrdID the OMS holds as
rejected.

One line per refusal, written at the end of the last whole line by position (not fsync'd: it
survives the process being killed, as QuickFIX's own store does). A line the disk took only
part of (a full disk: a short write) is cut off again and counts as not written, so a later
line never joins it. The last `KEPT` are remembered, and the file is written again (synced,
then renamed) with those alone once it holds twice as many. A line a crash cut short is
passed over, and cut at start.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import msgspec
import structlog

from fixgw.journal import write_at

log = structlog.get_logger("fixgw.bridge")

FILE_NAME = "refused.jsonl"
KEPT = 10_000
"""The refusals remembered, the latest: a few hundred bytes each."""


class Refusal(NamedTuple):
    reason: str
    """OrdRejReason (103)."""
    text: str


class _Line(msgspec.Struct, array_like=True):
    oms: str
    cl_ord_id: str
    reason: str
    text: str


class RefusedOrders:
    def __init__(self, store_dir: Path, kept: int = KEPT) -> None:
        self.path = store_dir / FILE_NAME
        self._kept = kept
        self._refused: OrderedDict[tuple[str, str], Refusal] = OrderedDict()
        """(OMS, its ClOrdID) -> the refusal, oldest first."""
        self._lines = 0
        """In the file: compacted past twice `kept`."""
        self._end = self._read()
        """Where the last whole line ends: the next one is written there."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        self._cut_back()

    def _read(self) -> int:
        """Remember the refusals in the file; where its last whole line ends."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        whole = data.rfind(b"\n") + 1
        decoder = msgspec.json.Decoder(_Line)
        for raw in data[:whole].splitlines():
            self._lines += 1
            try:
                line = decoder.decode(raw)
            except msgspec.DecodeError:
                log.warning("refused order record unreadable; passed over", file=str(self.path))
                continue
            self._remember(line.oms, line.cl_ord_id, Refusal(line.reason, line.text))
        if whole < len(data):
            log.warning("refused order record cut short; passed over", file=str(self.path))
        return whole

    def refusal(self, oms: str, cl_ord_id: str) -> Refusal | None:
        return self._refused.get((oms, cl_ord_id))

    def refused(self, oms: str, cl_ord_id: str, reason: str, text: str) -> None:
        """On disk before the OMS message counts as received; if it cannot be written
        (logged), remembered until a restart only."""
        self._remember(oms, cl_ord_id, Refusal(reason, text))
        try:
            line = _encoded(oms, cl_ord_id, reason, text)
            write_at(self._fd, line, self._end)
        except (OSError, ValueError) as exc:  # ValueError: text not UTF-8
            self._cut_back()
            log.error("refused order not kept for a restart", oms=oms, error=str(exc))
            return
        self._end += len(line)
        self._lines += 1
        if self._lines > 2 * self._kept:
            self._compact()

    def _cut_back(self) -> None:
        """Drop what follows the last whole line. Should that fail too, the next line is
        written over it all the same, and what is left of it is passed over at start."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._end)

    def _remember(self, oms: str, cl_ord_id: str, refusal: Refusal) -> None:
        key = (oms, cl_ord_id)
        self._refused.pop(key, None)
        self._refused[key] = refusal
        while len(self._refused) > self._kept:
            self._refused.popitem(last=False)

    def _compact(self) -> None:
        """The file written again with what is remembered, whole or not at all, also across
        a power loss: synced before the rename, and the rename synced."""
        partial = self.path.with_suffix(".tmp")
        data = b"".join(
            _encoded(oms, cl_ord_id, *refusal)
            for (oms, cl_ord_id), refusal in self._refused.items()
        )
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_at(fd, data, 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            partial.replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            log.error("refused orders file not compacted", file=str(self.path), error=str(exc))
            return
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        self._end = len(data)
        self._lines = len(self._refused)
        try:
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            log.error("refused orders file compacted, its rename not synced", error=str(exc))

    def close(self) -> None:
        os.close(self._fd)


def _encoded(oms: str, cl_ord_id: str, reason: str, text: str) -> bytes:
    return msgspec.json.encode(_Line(oms, cl_ord_id, reason, text)) + b"\n"
