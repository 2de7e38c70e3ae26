"""When each order of a run is sent, and what its latency is.

At a fixed rate, order i is due at start + i / rate and its latency is counted from then,
not from when it actually went out: a stall delays every order behind it, and those delays
are counted (coordinated omission corrected, as HdrHistogram's fixed-rate mode does). Flat
out, orders go as fast as a window of WINDOW unanswered orders lets them, counted from the
actual send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WINDOW = 64


class Pacer:
    def __init__(self, orders: int, rate: float | None) -> None:
        self.orders = orders
        self.rate = rate
        self.due = [0.0] * orders
        self.done = [0.0] * orders
        self._answered = threading.Semaphore(WINDOW)
        self._all_done = threading.Event()
        self._left = orders
        self._lock = threading.Lock()
        self._cpu_start = self._cpu_s = 0.0
        """The sender's own CPU time (all its threads) from the first order to the last answer."""

    def send_all(self, send: Callable[[int], None]) -> None:
        self._cpu_start = time.process_time()
        start = time.perf_counter() + 0.01
        for i in range(self.orders):
            if self.rate:
                due = start + i / self.rate
                while (now := time.perf_counter()) < due:
                    time.sleep(max(0.0, due - now - 0.0002))
                self.due[i] = due
            else:
                self._answered.acquire()
                self.due[i] = time.perf_counter()
            send(i)

    def answered(self, i: int) -> None:
        self.done[i] = time.perf_counter()
        self._answered.release()
        with self._lock:
            self._left -= 1
            if not self._left:
                self._all_done.set()

    def wait(self, timeout: float) -> None:
        if not self._all_done.wait(timeout):
            raise SystemExit(f"{self._left} orders unanswered")
        self._cpu_s = time.process_time() - self._cpu_start

    def result(self) -> dict[str, object]:
        elapsed = max(self.done) - self.due[0]
        return {
            "latency_us": [(d - s) * 1e6 for s, d in zip(self.due, self.done, strict=True)],
            "orders_per_s": self.orders / elapsed,
            "cpu_s": self._cpu_s,
        }
