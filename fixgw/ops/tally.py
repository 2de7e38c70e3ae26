"""Counts kept on the per-message path as plain numbers, exported at scrape time.

A prometheus_client counter takes a lock and several calls per increment, for every FIX
message and every order; these take one dict or list update. Compiled (setup.py), an
update runs whole while it holds the GIL, so a scrape on the metrics server's thread copies
a consistent state (`snapshot`)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


class Tally:
    """A counter by label values."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, ...], int] = {}

    def add(self, labels: tuple[str, ...]) -> None:
        counts = self._counts
        counts[labels] = counts.get(labels, 0) + 1

    def snapshot(self) -> dict[tuple[str, ...], int]:
        return dict(self._counts)


class Buckets:
    """A histogram: how many values fell at or below each bound, and their sum."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = sorted(bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        """Per bucket, not cumulative; the last is above every bound."""
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1
        self._sum += value

    def snapshot(self) -> tuple[list[int], float]:
        """Cumulative counts, one per bound and one for +Inf; the sum."""
        counts, total = list(self._counts), self._sum
        running, cumulative = 0, []
        for count in counts:
            running += count
            cumulative.append(running)
        return cumulative, total
