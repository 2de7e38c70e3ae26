"""Where the journal's written lines end, shared with the publisher process without a system
call: a small file beside the journal, mapped into both processes' memory.

The gateway stores three numbers after each journal write (the end of the lines on disk,
the last seq, the highest seq reserved); the publisher apart reads them when it looks for
work, until two reads agree. They only grow while one gateway runs."""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import NamedTuple

_LAYOUT = struct.Struct("<QQQ")


class Written(NamedTuple):
    end: int
    """The byte offset where the lines written to the journal file end."""
    last_seq: int
    reserved_seq: int


def mark_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".written")


class WrittenMark:
    def __init__(self, path: Path, *, writer: bool) -> None:
        """`writer`: the gateway, which creates the file (mode 0600) and zeroes it."""
        flags = os.O_RDWR | os.O_CREAT if writer else os.O_RDONLY
        fd = os.open(path, flags, 0o600)
        try:
            if writer:
                os.ftruncate(fd, _LAYOUT.size)
                os.pwrite(fd, bytes(_LAYOUT.size), 0)
            access = mmap.ACCESS_WRITE if writer else mmap.ACCESS_READ
            self._map = mmap.mmap(fd, _LAYOUT.size, access=access)
        finally:
            os.close(fd)

    def store(self, end: int, last_seq: int, reserved_seq: int) -> None:
        _LAYOUT.pack_into(self._map, 0, end, last_seq, reserved_seq)

    def load(self) -> Written:
        """Read until two reads agree: a store under way is not taken half done."""
        last = _LAYOUT.unpack_from(self._map, 0)
        while (now := _LAYOUT.unpack_from(self._map, 0)) != last:
            last = now
        return Written(*now)

    def close(self) -> None:
        self._map.close()
