"""The journal's lines as they are written, read from the file in order from a seq on.

What the NATS publisher sends: only lines already written to the journal (a line still in
memory, or one the disk refused, waits), so nothing reaches the stream that a crash could
take out of the journal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Protocol

import msgspec

from fixgw.journal import offset_before

INDEX_EVERY = 1024
CHUNK_BYTES = 262_144
"""Read from the file at most this much at a time (more only for a longer line)."""


class _Head(msgspec.Struct):
    seq: int
    type: str
    ts: str | None = None
    symbol: str | None = None


_decoder = msgspec.json.Decoder(_Head)


class Line(NamedTuple):
    seq: int
    type: str
    ts: str | None
    """The event's time, ISO 8601 UTC."""
    symbol: str | None
    data: bytes
    """The journal's line, as socket clients get it, without its newline."""
    end: int
    """The byte offset just after it in the journal file."""


class TailedJournal(Protocol):
    """The journal as the tail reads it: `journal.Journal` in the gateway, the publisher
    process's view of the same file."""

    path: Path

    @property
    def written_bytes(self) -> int:
        """Where the whole lines written to the file end."""
        ...

    def offset_before(self, since: int) -> int: ...


class JournalTail:
    def __init__(self, journal: TailedJournal) -> None:
        self._journal = journal
        self._fd = os.open(journal.path, os.O_RDONLY)
        self._offset = 0
        self._after = 0
        self._seen: list[tuple[int, int]] = []
        """(seq, byte offset) of every INDEX_EVERY-th line read: a seek after a reconnect
        starts near its seq, however long ago the journal's own index was made."""
        self._counted_to = 0
        self._unread = 0
        """The whole lines from `_offset` to `_counted_to`: `unread` counts only what was
        written since it last counted."""

    def seek(self, after_seq: int) -> None:
        """Read from the first line with a seq above `after_seq` on."""
        start = max(self._journal.offset_before(after_seq), offset_before(self._seen, after_seq))
        offset = self._first_after(start, after_seq)
        if self._offset <= self._counted_to and offset <= self._offset:
            self._unread += self._lines_between(offset, self._offset)
        else:
            self._counted_to, self._unread = offset, 0
        self._offset = offset
        self._after = after_seq

    def _first_after(self, offset: int, after_seq: int) -> int:
        """The offset of the first written line from `offset` on with a seq above
        `after_seq` (the written end if none is)."""
        end = self._journal.written_bytes
        size = CHUNK_BYTES
        while offset < end:
            data = os.pread(self._fd, min(size, end - offset), offset)
            start = 0
            while (newline := data.find(b"\n", start)) >= 0:
                if _decoder.decode(data[start:newline]).seq > after_seq:
                    return offset + start
                start = newline + 1
            if start == 0:
                if len(data) == end - offset:
                    break  # no whole line left (the journal writes whole lines)
                size *= 2
                continue
            offset += start
            size = CHUNK_BYTES
        return offset

    def _lines_between(self, start: int, end: int) -> int:
        count = 0
        while start < end:
            data = os.pread(self._fd, min(CHUNK_BYTES, end - start), start)
            if not data:
                break
            count += data.count(b"\n")
            start += len(data)
        return count

    def behind(self) -> bool:
        """Written lines wait to be read."""
        return self._offset < self._journal.written_bytes

    def unread(self) -> int:
        """The whole lines written after the last one read."""
        end = self._journal.written_bytes
        if end > self._counted_to:
            self._unread += self._lines_between(self._counted_to, end)
            self._counted_to = end
        return self._unread

    def read(self, max_lines: int) -> list[Line]:
        """The next written lines, at most `max_lines`; none if nothing more is written."""
        end = self._journal.written_bytes
        out: list[Line] = []
        size = CHUNK_BYTES
        while len(out) < max_lines and self._offset < end:
            data = os.pread(self._fd, min(size, end - self._offset), self._offset)
            if not data:
                break
            start = 0
            while len(out) < max_lines:
                newline = data.find(b"\n", start)
                if newline < 0:
                    break
                raw = data[start:newline]
                line_at = self._offset + start
                start = newline + 1
                head = _decoder.decode(raw)
                if not self._seen or head.seq >= self._seen[-1][0] + INDEX_EVERY:
                    self._seen.append((head.seq, line_at))
                if head.seq > self._after:
                    end_at = self._offset + start
                    out.append(Line(head.seq, head.type, head.ts, head.symbol, raw, end_at))
                    self._after = head.seq
            if start == 0:
                if len(data) == end - self._offset:
                    break  # no whole line left (cannot happen: the journal writes whole lines)
                size *= 2  # a line longer than what was read: read more of it
                continue
            self._consumed(start, data.count(b"\n", 0, start))
            size = CHUNK_BYTES
        return out

    def _consumed(self, length: int, lines: int) -> None:
        self._offset += length
        if self._offset <= self._counted_to:
            self._unread -= lines
        else:
            self._counted_to, self._unread = self._offset, 0

    def close(self) -> None:
        os.close(self._fd)
