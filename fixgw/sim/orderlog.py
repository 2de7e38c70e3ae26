"""The simulator's memory across restarts, a crash included.

Every order-changing request (NewOrderSingle, OrderCancelRequest) is appended, as received,
with what the simulator decided (taken, with the order id it gave, or refused), once decided
and before anything is done or reported; the order-id stem is written first. At start the
simulator replays the taken ones through its deterministic matching engine with reports
switched off, which rebuilds books, orders, ids and balances exactly as they were. Refused
ones are kept for the record but never replayed: some refusals (a wrong Account, masked
here) cannot be decided again. What it had sent stays in QuickFIX's own store, which
resends it to a client that asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec
import structlog

from fixgw.fix.message import mask_secrets

log = structlog.get_logger("fixgw.sim")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, str])


TAKEN = "taken"
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    client: str
    raw: str
    outcome: str | None
    """TAKEN or REFUSED; None in a log written before outcomes were recorded."""
    order_id: str | None = None
    """The id a taken NewOrderSingle was given."""


class OrderLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def read(self) -> tuple[str | None, list[LoggedRequest]]:
        """The stem, and the requests in arrival order; a torn last line is dropped."""
        if not self.path.exists():
            return None, []
        stem: str | None = None
        commands: list[LoggedRequest] = []
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
                    commands.append(
                        LoggedRequest(
                            entry["client"],
                            entry["raw"],
                            entry.get("outcome"),
                            entry.get("order_id"),
                        )
                    )
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

    def append(self, client: str, raw: str, outcome: str, order_id: str | None = None) -> None:
        """Secrets (Account holds apiKey,secretKey) are masked: replay does not check them."""
        entry = {"client": client, "raw": mask_secrets(raw), "outcome": outcome}
        if order_id is not None:
            entry["order_id"] = order_id
        self._write(entry)

    def _write(self, entry: dict[str, str]) -> None:
        """Flushed to the kernel at once: a killed process loses nothing it wrote."""
        assert self._file is not None
        self._file.write(_encoder.encode(entry) + b"\n")
        self._file.flush()
