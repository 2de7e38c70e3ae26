"""The simulator's memory across restarts, a crash included.

Every order-changing request (NewOrderSingle, OrderCancelRequest) is appended, as received,
before it is handled; with the order-id stem written first. At start the simulator replays
them through its deterministic matching engine with reports switched off, which rebuilds
books, orders and balances exactly as they were. What it had sent stays in QuickFIX's own
store, which resends it to a client that asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import msgspec
import structlog

from fixgw.fixmsg import mask_secrets

log = structlog.get_logger("fixgw.sim")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, str])


class OrderLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def read(self) -> tuple[str | None, list[tuple[str, str]]]:
        """The stem, and (client, raw FIX) in arrival order; a torn last line is dropped."""
        if not self.path.exists():
            return None, []
        stem: str | None = None
        commands: list[tuple[str, str]] = []
        with self.path.open("rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    entry = _decoder.decode(line)
                except msgspec.DecodeError:
                    log.warning("order log: unreadable line dropped", line=number)
                    continue
                if "stem" in entry:
                    stem = entry["stem"]
                else:
                    commands.append((entry["client"], entry["raw"]))
        return stem, commands

    def open(self, stem: str) -> None:
        """For appending; a torn last line (a crash mid-write) is cut first."""
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                with self.path.open("r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("ab")
        if new:
            self._write({"stem": stem})

    def append(self, client: str, raw: str) -> None:
        """Secrets (Account holds apiKey,secretKey) are masked: replay does not check them."""
        self._write({"client": client, "raw": mask_secrets(raw)})

    def _write(self, entry: dict[str, str]) -> None:
        """Flushed to the kernel at once: a killed process loses nothing it wrote."""
        assert self._file is not None
        self._file.write(_encoder.encode(entry) + b"\n")
        self._file.flush()
