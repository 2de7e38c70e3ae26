"""The append-only event journal: every event except market data, as the line clients get.

A line is appended before it is fanned out. Writes are flushed once per turn of the
loop (with `fsync: always`, synced too), so a burst costs one system call. At start the
journal gives back the last `seq` and every order event, from which the order tracker is
rebuilt; `subscribe ... since=N` replays from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import structlog

from fixgw.domain import AnyEvent

log = structlog.get_logger("fixgw.journal")

_decoder = msgspec.json.Decoder(AnyEvent)


class _Head(msgspec.Struct):
    seq: int
    type: str


class Journal:
    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self.last_seq = 0
        self._index: list[tuple[int, int]] = []
        """(seq, byte offset) of every 1024th line, to find `since` without reading it all."""
        self._size = 0
        self._repair_and_index()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
        """Written at `_size` by position: a failed write leaves nothing that counts, and
        the next one writes the same lines over whatever part of them reached the file."""
        self._pending: list[bytes] = []
        """Lines not yet on disk; they stay here until a write succeeds."""
        self._flush_scheduled = False
        self._write_failing = False
        self._retry_scheduled = False
        self._checkpoint_path = path.with_name(path.name + ".fixseq")
        self._checkpoint_fd = os.open(self._checkpoint_path, os.O_RDWR | os.O_CREAT, 0o640)
        self._inbound_seq = self._written_inbound_seq = self.inbound_checkpoint()
        self._checkpoint_written_at = 0.0
        self._seq_mark_fd = os.open(
            path.with_name(path.name + ".seqmark"), os.O_RDWR | os.O_CREAT, 0o640
        )
        text = os.pread(self._seq_mark_fd, 32, 0).strip()
        self.reserved_seq = int(text) if text.isdigit() else 0
        """The highest `seq` that may have been handed out (see `reserve_seq`)."""
        self._reserve_failing = False

    @property
    def size_bytes(self) -> int:
        return self._size + sum(map(len, self._pending))

    def _repair_and_index(self) -> None:
        """Read the journal once: find the last seq, and cut a torn last line (a crash
        mid-write) so that appends start on a line of their own."""
        if not self.path.exists():
            return
        offset = 0
        good_end = 0
        count = 0
        with self.path.open("rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    head = msgspec.json.decode(line, type=_Head)
                except msgspec.DecodeError:
                    log.error("journal line unreadable; journal cut there", offset=offset)
                    break
                if count % 1024 == 0:
                    self._index.append((head.seq, offset))
                count += 1
                self.last_seq = head.seq
                offset += len(line)
                good_end = offset
        if good_end != self.path.stat().st_size:
            log.warning("journal ended in a torn line; cut", kept_bytes=good_end)
            with self.path.open("r+b") as f:
                f.truncate(good_end)
        self._size = good_end

    def append(self, seq: int, line: bytes) -> None:
        self._pending.append(line)
        self._index_if_due(seq)
        self.last_seq = seq
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self._flush)
            except RuntimeError:  # no loop (tools, tests): write now
                self._flush()

    def mark_inbound(self, msg_seq_num: int) -> None:
        """The exchange's MsgSeqNum of the last message fully handled: its events are
        appended. Written after them, so that a restart asks the exchange again for every
        message after it (a crash between QuickFIX's store and this journal loses none).

        Written with the lines it follows; when there are none (market data, a duplicate),
        at most once a second: a restart then takes a few messages again, which is harmless
        (duplicates are dropped by ExecID, old market data by its MDReqID), and a flood of
        market data costs no system call per message."""
        self._inbound_seq = msg_seq_num
        self._schedule_flush()

    def reserve_seq(self, upto: int) -> bool:
        """Record that seqs up to `upto` may be handed out, before one of them is.

        Market data takes seqs but is not journaled, so the last journaled seq alone would
        let a restart hand out numbers clients have already seen. False if it could not be
        written (logged): the caller asks again with its next seq."""
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
        if not self._flush(checkpoint):
            raise OSError(f"journal {self.path} cannot be written (see the log)")

    def _flush(self, checkpoint: bool = False) -> bool:
        """`checkpoint`: write the inbound checkpoint even if no line was written. False if
        lines could not be written."""
        self._flush_scheduled = False
        wrote = bool(self._pending)
        if wrote and not self._write_pending():
            return False  # the checkpoint must not pass lines that are not on disk
        if self._inbound_seq == self._written_inbound_seq or self._inbound_seq is None:
            return True
        now = time.monotonic()
        if wrote or checkpoint or now - self._checkpoint_written_at >= 1.0:
            os.pwrite(self._checkpoint_fd, b"%020d\n" % self._inbound_seq, 0)
            if self.fsync:
                os.fsync(self._checkpoint_fd)
            self._written_inbound_seq = self._inbound_seq
            self._checkpoint_written_at = now
        return True

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
            if not self._write_failing:
                log.error(
                    "journal write failed; its lines are kept and written again",
                    error=str(exc),
                    pending_lines=len(self._pending),
                )
            self._write_failing = True
            self._pending = [data]
            self._retry_later()
            return False
        if self._write_failing:
            log.warning("journal written again", lines_bytes=len(data))
            self._write_failing = False
        self._pending.clear()
        self._size += len(data)
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

    def close(self) -> None:
        self._flush(checkpoint=True)
        if self._pending:
            log.error(
                "journal closed with lines not written", lines_bytes=self.size_bytes - self._size
            )
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
        start = 0
        for seq, offset in self._index:
            if seq > since:
                break
            start = offset
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
        for line in unwritten:  # a failing disk: clients had them, a replay has them too
            head = msgspec.json.decode(line, type=_Head)
            if until is not None and head.seq > until:
                return
            if head.seq > since:
                yield head.seq, head.type, line

    def events(self, since: int = 0, prefix: str = "") -> Iterator[AnyEvent]:
        """The journaled events after `since` whose type starts with `prefix`, typed."""
        for _, type_, line in self.lines(since):
            if type_.startswith(prefix):
                yield _decoder.decode(line)
