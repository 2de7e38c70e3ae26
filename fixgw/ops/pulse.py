"""The event loop's pulse, for a thread that must tell whether the loop still runs.

`/healthz` answers from the metrics server's thread, so it answered while the loop was
stuck; under systemd the watchdog catches that, under Docker only the HEALTHCHECK can."""

from __future__ import annotations

import asyncio
import time

STUCK_AFTER_S = 30.0
"""No beat for this long: the loop is stuck (as WatchdogSec in config/fixgw.service). A
replay or a slow fsync holds the loop for seconds at most."""


class LoopPulse:
    """A beat every `every_s` from the loop; `silent_s` from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every_s: float = 1.0) -> None:
        self._loop = loop
        self._every_s = every_s
        self._last = time.monotonic()
        self._next: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._beat()

    def stop(self) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next = None

    def silent_s(self) -> float:
        return time.monotonic() - self._last

    def _beat(self) -> None:
        self._last = time.monotonic()
        self._next = self._loop.call_later(self._every_s, self._beat)
