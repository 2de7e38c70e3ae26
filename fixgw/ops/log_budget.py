"""A bound on the log lines of one kind of event that a peer can cause at will (a connection
refused, a wrong password): without it, a flood of connections fills the log and the disk.

Per kind, a token bucket: `BURST` lines at once, then `PER_S` a second. An event past it is
not written but counted, and the next line written of that kind says how many were left out
before it (`left_out`). If the flood stops, its last event left out is written once the
bucket allows a line again (within 1 / `PER_S` s), carrying the count of the others. So every
line written stands for itself and `left_out` more: the events are the lines plus the sum of
their `left_out`. The metrics count every event; only the lines are bounded.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

BURST = 10
"""Lines written at once before the bound applies: a new flood's first lines are never
left out."""
PER_S = 1.0
"""Lines a second past the burst."""

Later = Callable[[float, Callable[[], None]], None]
"""Calls the function given after the delay given (s), on a thread of its own."""


def _after(delay_s: float, then: Callable[[], None]) -> None:
    timer = threading.Timer(delay_s, then)
    timer.daemon = True
    timer.name = "fixgw-log-budget"
    timer.start()


_ALL: weakref.WeakSet[LogBudget] = weakref.WeakSet()


def write_left_out() -> None:
    """At exit: each budget's last event left out written now, with the count of the others,
    rather than lost with a catch-up still waiting on its timer."""
    for budget in list(_ALL):
        budget.write_left_out()


class LogBudget:
    """The lines of one kind of event, at `level` on `logger`. Thread-safe: the bridge's
    logon gate and QuickFIX's callbacks each log from a thread of their own."""

    def __init__(
        self,
        logger: Any,
        level: str = "warning",
        burst: int = BURST,
        per_s: float = PER_S,
        clock: Callable[[], float] = time.monotonic,
        later: Later = _after,
    ) -> None:
        self._logger = logger
        self._level = level
        self._burst = burst
        self._per_s = per_s
        self._clock = clock
        self._later = later
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._filled_at = clock()
        self._left_out = 0
        self._last_left_out: tuple[str, dict[str, Any]] | None = None
        self._catch_up_due = False
        """A catch-up is scheduled: it writes the last event left out, if no line has since."""
        _ALL.add(self)

    def line(self, event: str, **fields: Any) -> None:
        """`logger.<level>(event, **fields)` if the budget allows, with `left_out` when
        lines were left out before it; counted and left out if not."""
        with self._lock:
            if not self._take():
                self._left_out += 1
                self._last_left_out = (event, fields)
                self._schedule_catch_up()
                return
            left_out = self._left_out
            self._left_out = 0
            self._last_left_out = None
        self._write(event, fields, left_out)

    def _catch_up(self) -> None:
        with self._lock:
            self._catch_up_due = False
            if self._last_left_out is None:
                return
            if not self._take():
                self._schedule_catch_up()
                return
            event, fields = self._last_left_out
            left_out = self._left_out - 1  # the last one is this line
            self._left_out = 0
            self._last_left_out = None
        self._write(event, fields, left_out)

    def write_left_out(self) -> None:
        """The last event left out written now, whatever the budget allows."""
        with self._lock:
            if self._last_left_out is None:
                return
            event, fields = self._last_left_out
            left_out = self._left_out - 1
            self._left_out = 0
            self._last_left_out = None
        self._write(event, fields, left_out)

    def _take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * self._per_s)
        self._filled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _schedule_catch_up(self) -> None:
        if self._catch_up_due:
            return
        self._catch_up_due = True
        self._later((1 - self._tokens) / self._per_s, self._catch_up)

    def _write(self, event: str, fields: dict[str, Any], left_out: int) -> None:
        if left_out:
            fields = {**fields, "left_out": left_out}
        getattr(self._logger, self._level)(event, **fields)
